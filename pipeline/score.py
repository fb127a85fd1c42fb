"""Stage 4 — batch scoring: a review file in, one prediction row per input row out.

Rows are read and scored in chunks (memory stays flat however large the file), optionally on
several processes (``jobs``), and written in input order to an Excel-safe CSV. Blank texts are
kept as rows with ``cause=empty``.
"""

from __future__ import annotations

import pickle
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import joblib
import numpy as np
import pandas as pd

from pipeline.batch import Collector, Signals, flag_malicious, signatures
from pipeline.cues import BY_NAME, CUES, match_cues
from pipeline.model import predict_features
from pipeline.normalize import normalize_many
from pipeline.paths import DEFAULT_MODEL
from pipeline.tables import InputError, atomic_csv, open_table
from pipeline.taxonomy import BUYER_SIDE, BY_ID, CAUSE_IDS, EMPTY, MALICIOUS, SEP, UNCERTAIN

ORDER_CAUSES = frozenset(c for c in CAUSE_IDS if c not in BUYER_SIDE)

PRED_COLUMNS = ["review_id", "cause", "cause_zh", "confidence", "causes", "dsr", "remedy", "suspected_malicious",
                "malicious_score", "cluster_id", "evidence"] + [
    f"p_{c}" for c in CAUSE_IDS
]

#: prediction columns that never hold user text (review_id and evidence quote the input)
TRUSTED_COLUMNS = frozenset(PRED_COLUMNS) - {"review_id", "evidence"}

_MAL_IDX = np.array([CAUSE_IDS.index(c) for c in CAUSE_IDS if c in MALICIOUS])


def load_model(path: Path | str = DEFAULT_MODEL):
    """Load a fitted model; a clear InputError when the path is wrong or is not a model."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no model file there; train one with 'make train' or pass --model")
    try:
        model = joblib.load(path)
    except Exception as exc:
        raise InputError(f"{path}: not a reviewcause model ({type(exc).__name__}: {exc})") from None
    steps = getattr(model, "named_steps", {})
    if "clf" not in steps or not hasattr(steps["clf"], "thresholds_"):
        raise InputError(f"{path}: not a reviewcause model (a fitted pipeline with a 'clf' step is expected)")
    return model


_STARS = re.compile(r"[★⭐]")
_RATING_WORDS = {"好评": 5.0, "中评": 3.0, "差评": 1.0, "positive": 5.0, "neutral": 3.0, "negative": 1.0}
_ZH_DIGITS = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5}


def parse_rating(value: object) -> float:
    """1–5 from ``4``, ``4.0``, ``4星``, ``★★★★``, ``四星``, ``好评/中评/差评``; NaN otherwise."""
    s = str(value).strip() if value is not None else ""
    if not s:
        return float("nan")
    if s in _RATING_WORDS:
        return _RATING_WORDS[s]
    stars = len(_STARS.findall(s))
    if stars:
        return float(min(stars, 5))
    m = re.match(r"^([0-9]+(?:\.[0-9]+)?)", s)
    if m:
        v = float(m.group(1))
        return v if 0 < v <= 5 else float("nan")
    if s[0] in _ZH_DIGITS:
        return float(_ZH_DIGITS[s[0]])
    return float("nan")


@dataclass
class Scored:
    """Predictions for a batch of texts, column by column."""

    proba: np.ndarray  # (n, 8)
    passed: np.ndarray  # (n, 8) bool
    primary: np.ndarray  # (n,) object
    confidence: np.ndarray  # (n,)
    empty: np.ndarray  # (n,) bool
    evidence: list[str]
    sig: np.ndarray | None = None  # (n, SIG_SIZE) MinHash signatures for campaign detection
    eligible: np.ndarray | None = None

    @property
    def model_malicious(self) -> np.ndarray:
        """The model's malicious probability: max of p(competitor_sabotage), p(extortion)."""
        return self.proba[:, _MAL_IDX].max(axis=1)


def score_texts(model, texts: list[str], ratings: np.ndarray | None = None, with_signatures: bool = False) -> Scored:
    """Probabilities and decisions for raw texts (optionally with 1–5 ratings, NaN = unknown)."""
    steps = model.named_steps
    norm = normalize_many(texts)
    n, k = len(norm), len(CAUSE_IDS)
    empty = np.array([not t for t in norm], dtype=bool)
    proba, passed = np.zeros((n, k)), np.zeros((n, k), dtype=bool)
    primary, confidence = np.full(n, EMPTY, dtype=object), np.zeros(n)
    live = np.flatnonzero(~empty)
    if len(live):
        X = steps["features"].transform([norm[i] for i in live])
        proba[live], d = predict_features(steps["clf"], X)
        passed[live], primary[live], confidence[live] = d.passed, d.primary, d.confidence
    notes = [""] * n
    matched: dict[int, dict[str, list[str]]] = {}  # cue matches, computed at most once per row

    def cues(i: int) -> dict[str, list[str]]:
        if i not in matched:
            matched[i] = match_cues(norm[i])
        return matched[i]

    if ratings is not None:
        apply_rating(cues, np.asarray(ratings, dtype=float), proba, passed, primary, confidence, notes)
    evidence = [_evidence(cues, i, passed[i], notes[i], proba[i]) for i in range(n)]
    scored = Scored(proba, passed, primary, confidence, empty, evidence)
    if with_signatures:
        scored.sig, scored.eligible = signatures(norm)
    return scored


#: Cues that mean the text complains about the order itself (causes 1–4).
COMPLAINT_CUES = frozenset(c.name for c in CUES if c.cause in ORDER_CAUSES and c.name not in ("sv_party", "lg_delivery"))
PRAISE_CUES = frozenset({"nb_praise", "nb_nofault"})
NOVICE = CAUSE_IDS.index("novice_buyer")
LOW_RATING, HIGH_RATING = 3.0, 4.0


def apply_rating(cues, ratings, proba, passed, primary, confidence, notes) -> None:
    """Rating-aware decisions, in place (``causes.md``: a low rating on positive text is strong
    evidence of a novice buyer).

    * rating ≤ 3 and text that praises without complaining about the order → ``novice_buyer``
      passes and becomes primary unless a malicious cause is primary; evidence says so;
    * rating ≥ 4: not a bad review, so praise is not novice evidence — ``novice_buyer`` is
      dropped from the causes (and from primary, which falls back to the next passing cause).

    ``cues(i)`` returns row ``i``'s cue matches (computed once per row, shared with evidence).
    """
    for i in np.flatnonzero(~np.isnan(ratings)):
        if primary[i] == EMPTY:
            continue
        r = ratings[i]
        if r <= LOW_RATING:
            found = cues(i).keys()
            if found & PRAISE_CUES and not found & COMPLAINT_CUES:
                passed[i, NOVICE] = True
                if primary[i] not in MALICIOUS:
                    primary[i] = "novice_buyer"
                    confidence[i] = max(confidence[i], proba[i, NOVICE])
                notes[i] = f"好评文字配{r:g}星低分 praising text under a {r:g}-star rating"
        elif r >= HIGH_RATING and passed[i, NOVICE]:
            passed[i, NOVICE] = False
            if primary[i] == "novice_buyer":
                rest = np.where(passed[i], proba[i], -1.0)
                primary[i] = CAUSE_IDS[int(rest.argmax())] if rest.max() >= 0 else UNCERTAIN
                confidence[i] = proba[i].max() if rest.max() < 0 else rest.max()


def _evidence(cues, i: int, passed: np.ndarray, note: str = "", proba: np.ndarray | None = None) -> str:
    """Why a buyer-side or malicious cause passed: the quoted cue phrases, a rating note, and for
    7/8 whether the text names any detail of the order (sweeping claims without one are a cue)."""
    wanted = {CAUSE_IDS[j] for j in np.flatnonzero(passed)} & BUYER_SIDE
    if not wanted:
        return note
    parts = [note] if note else []
    found = cues(i)
    for name, snippets in found.items():
        cue = BY_NAME[name]
        if cue.cause in wanted:
            quoted = "」「".join(dict.fromkeys(s.strip() for s in snippets))[:60]
            parts.append(f"{cue.label}「{quoted}」")
    if wanted & MALICIOUS:
        if not found.keys() & COMPLAINT_CUES:
            parts.append("未提及任何订单细节 no detail of the order")
        if proba is not None and not any(BY_NAME[n].cause in wanted & MALICIOUS for n in found):
            best = max(wanted & MALICIOUS, key=lambda c: proba[CAUSE_IDS.index(c)])
            parts.append(f"模型判断 model: p({best})={proba[CAUSE_IDS.index(best)]:.2f}")
    return "; ".join(parts)


def prediction_rows(s: Scored, ids: list[str], signals: Signals | None = None, offset: int = 0,
                    buyers=None, items=None) -> Iterator[list[object]]:
    """Output cells in ``PRED_COLUMNS`` order; ``signals`` (whole-batch) start at row ``offset``."""
    score = s.model_malicious
    if signals is not None:
        part = signals.rows(offset, offset + len(ids))
        score = part.score(score)
    malicious = flag_malicious(s.primary, score)
    probs = np.char.mod("%.4f", s.proba).tolist()
    conf = np.char.mod("%.4f", s.confidence).tolist()
    scores = np.char.mod("%.4f", score).tolist()
    for i in range(len(ids)):
        cause = s.primary[i]
        info = BY_ID.get(cause)
        on = [CAUSE_IDS[j] for j in np.flatnonzero(s.passed[i])]
        if cause == UNCERTAIN:  # keep the top candidates visible when abstaining
            on = [CAUSE_IDS[j] for j in np.argsort(-s.proba[i])[:2]]
        evidence, cluster = s.evidence[i], ""
        if signals is not None and cause != EMPTY:
            extra = part.evidence(i, buyers[i] if buyers is not None else "", items[i] if items is not None else "")
            evidence = "; ".join(x for x in [evidence, *extra] if x)
            cluster = f"C{part.cluster_id[i]}" if part.cluster_id[i] >= 0 else ""
        yield [
            ids[i], cause, info.zh if info else ("无法判断" if cause == UNCERTAIN else "空评价"),
            conf[i], SEP.join(on), info.dsr if info else "", info.remedy if info else "",
            "true" if malicious[i] and cause != EMPTY else "false", scores[i], cluster, evidence, *probs[i],
        ]


# --- worker processes -------------------------------------------------------------------------

_worker: dict[str, object] = {}


def _init_worker(model_path: str, backend: str) -> None:
    from pipeline.segment import use_backend

    use_backend(backend)
    _worker["model"] = load_model(model_path)


def _score_chunk(payload: tuple[list[str], list[object], bool]) -> Scored:
    texts, ratings, with_signatures = payload
    return score_texts(_worker["model"], texts, np.asarray(ratings, dtype=float), with_signatures)


@lru_cache(maxsize=4)
def _cached_model(path: str, mtime: float):
    return load_model(path)


def score_file(
    src: Path | str,
    dst: Path | str,
    model_path: Path | str = DEFAULT_MODEL,
    encoding: str | None = None,
    overrides: dict[str, str | None] | None = None,
    bom: bool = True,
    jobs: int = 1,
    chunksize: int = 20_000,
    progress: bool = False,
    batch: bool = True,
) -> dict[str, object]:
    """Score ``src`` into ``dst``; returns a summary (rows, counts per cause, roles found).

    Pass 1 scores the file chunk by chunk (on ``jobs`` processes) and stages each scored chunk on
    disk while collecting compact batch keys; pass 2 adds the whole-batch signals
    (:mod:`pipeline.batch`) and writes the CSV. ``batch=False`` writes in a single pass.
    """
    from pipeline.segment import current_backend

    src, dst = Path(src), Path(dst)
    model_path = Path(model_path)
    if not model_path.exists():
        raise InputError(f"{model_path}: no model file there; train one with 'make train' or pass --model")
    table = open_table(src, encoding=encoding, chunksize=chunksize, overrides=overrides)
    model = _cached_model(str(model_path), model_path.stat().st_mtime)
    roles = table.roles
    keep = [c for c in table.columns if c not in PRED_COLUMNS]
    counts: dict[str, int] = {}
    summary = {"rows": 0, "suspected": 0}
    collector = Collector() if batch else None
    bar = _progress(progress)
    pool = None

    def column(chunk, role):
        return chunk[roles[role]].tolist() if roles[role] else None

    def emit(out, base, rows):
        joined = []
        for b, p in zip(base, rows):
            summary["suspected"] += p[7] == "true"
            joined.append([*b, *p])
        out.rows(joined)

    try:
        payloads = (_payload(chunk, roles) for chunk in table.chunks())
        if jobs > 1:
            import multiprocessing as mp

            pool = mp.get_context("fork").Pool(jobs, _init_worker, (str(model_path), current_backend()))
            pairs = _ordered_window(pool, payloads, window=2 * jobs, with_signatures=batch)
        else:
            pairs = ((score_texts(model, t, np.asarray(r, dtype=float), batch), (c, ids, r)) for t, r, c, ids in payloads)
        with atomic_csv(dst, bom=bom) as out, tempfile.TemporaryDirectory(prefix="reviewcause-") as stage:
            out.header(keep + PRED_COLUMNS, trusted=TRUSTED_COLUMNS)
            staged: list[Path] = []
            for s, (chunk, ids, ratings) in pairs:
                base = chunk[keep].to_numpy(dtype=object).tolist() if keep else [[] for _ in ids]
                buyers, items = column(chunk, "buyer"), column(chunk, "item")
                if collector is None:
                    emit(out, base, prediction_rows(s, ids))
                else:
                    collector.add(s.sig, s.eligible, buyers, items, column(chunk, "date"), ratings)
                    s.sig = s.eligible = None
                    staged.append(Path(stage) / f"{len(staged):06d}.pkl")
                    with open(staged[-1], "wb") as fh:
                        pickle.dump((base, s, ids, buyers, items), fh, protocol=pickle.HIGHEST_PROTOCOL)
                for c in s.primary:
                    counts[c] = counts.get(c, 0) + 1
                summary["rows"] += len(ids)
                if bar is not None:
                    bar.update(len(ids))
            if collector is not None:
                signals, offset = collector.finish(), 0
                for path in staged:
                    with open(path, "rb") as fh:
                        base, s, ids, buyers, items = pickle.load(fh)
                    emit(out, base, prediction_rows(s, ids, signals, offset, buyers, items))
                    offset += len(ids)
                    path.unlink()
    finally:
        if pool is not None:
            pool.terminate()
        if bar is not None:
            bar.close()
    return summary | {"counts": counts, "roles": roles, "encoding": table.encoding, "output": str(dst)}


def _payload(chunk: pd.DataFrame, roles: dict[str, str | None]):
    texts = chunk[roles["text"]].tolist()
    if roles["rating"]:
        ratings = [parse_rating(v) for v in chunk[roles["rating"]]]
    else:
        ratings = [float("nan")] * len(texts)
    start = int(chunk.index[0]) if len(chunk) else 0
    if roles["id"]:
        ids = [str(v) if str(v).strip() else str(start + i + 1) for i, v in enumerate(chunk[roles["id"]])]
    else:
        ids = [str(start + i + 1) for i in range(len(texts))]
    return texts, ratings, chunk, ids


def _ordered_window(pool, payloads, window: int, with_signatures: bool):
    """Score chunks on the pool with at most ``window`` in flight; yield results in input order.
    (``Pool.imap`` would read the whole input ahead of the workers.)"""
    from collections import deque

    pending: deque = deque()
    for texts, ratings, chunk, ids in payloads:
        pending.append((pool.apply_async(_score_chunk, ((texts, ratings, with_signatures),)), (chunk, ids, ratings)))
        if len(pending) >= window:
            res, meta = pending.popleft()
            yield res.get(), meta
    while pending:
        res, meta = pending.popleft()
        yield res.get(), meta


def _progress(enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(unit=" rows", unit_scale=True, desc="scoring", leave=False)
