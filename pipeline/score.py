"""Stage 4 — batch scoring: a review file in, one prediction row per input row out.

Rows are read and scored in chunks (memory stays flat however large the file), optionally on
several processes (``jobs``), and written in input order to an Excel-safe CSV. Blank texts are
kept as rows with ``cause=empty``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import joblib
import numpy as np
import pandas as pd

from pipeline.cues import BY_NAME, match_cues
from pipeline.model import decide
from pipeline.normalize import normalize_many
from pipeline.paths import DEFAULT_MODEL
from pipeline.tables import InputError, Table, atomic_csv, open_table
from pipeline.taxonomy import BUYER_SIDE, BY_ID, CAUSE_IDS, EMPTY, MALICIOUS, SEP, UNCERTAIN

PRED_COLUMNS = ["review_id", "cause", "cause_zh", "confidence", "causes", "dsr", "remedy", "suspected_malicious", "evidence"] + [
    f"p_{c}" for c in CAUSE_IDS
]

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


def score_texts(model, texts: list[str], ratings: np.ndarray | None = None) -> Scored:
    """Probabilities and decisions for raw texts (optionally with 1–5 ratings, NaN = unknown)."""
    steps = model.named_steps
    norm = normalize_many(texts)
    empty = np.array([not t for t in norm], dtype=bool)
    k = len(CAUSE_IDS)
    proba, prim = np.zeros((len(norm), k)), np.zeros((len(norm), k + 1))
    prim[:, k] = 1.0
    live = np.flatnonzero(~empty)
    clf = steps["clf"]
    if len(live):
        X = steps["features"].transform([norm[i] for i in live])
        proba[live] = clf.predict_proba(X)
        pp = clf.primary_proba(X)
        prim = None if pp is None else _scatter(prim, live, pp)
    d = decide(proba, clf.thresholds_, prim if getattr(clf, "primary_", None) is not None else None)
    primary = np.where(empty, EMPTY, d.primary).astype(object)
    passed = d.passed & ~empty[:, None]
    confidence = np.where(empty, 0.0, d.confidence)
    evidence = [_evidence(norm[i], passed[i]) if passed[i].any() else "" for i in range(len(norm))]
    return Scored(proba, passed, primary, confidence, empty, evidence)


def _scatter(base: np.ndarray, rows: np.ndarray, values: np.ndarray) -> np.ndarray:
    base[rows] = values
    return base


def _evidence(text: str, passed: np.ndarray) -> str:
    """Quoted cue matches supporting the buyer-side/malicious causes that passed."""
    wanted = {CAUSE_IDS[j] for j in np.flatnonzero(passed)} & BUYER_SIDE
    if not wanted:
        return ""
    parts = []
    for name, snippets in match_cues(text).items():
        cue = BY_NAME[name]
        if cue.cause in wanted:
            quoted = "」「".join(dict.fromkeys(s.strip() for s in snippets))[:60]
            parts.append(f"{cue.label}「{quoted}」")
    return "; ".join(parts)


def prediction_rows(s: Scored, ids: list[str]) -> Iterator[list[object]]:
    """Output cells in ``PRED_COLUMNS`` order."""
    malicious = s.passed[:, _MAL_IDX].any(axis=1) | np.isin(s.primary, list(MALICIOUS))
    for i in range(len(ids)):
        cause = s.primary[i]
        info = BY_ID.get(cause)
        on = [CAUSE_IDS[j] for j in np.flatnonzero(s.passed[i])]
        if cause == UNCERTAIN:  # keep the top candidates visible when abstaining
            on = [CAUSE_IDS[j] for j in np.argsort(-s.proba[i])[:2]]
        yield [
            ids[i], cause, info.zh if info else ("无法判断" if cause == UNCERTAIN else "空评价"),
            f"{s.confidence[i]:.4f}", SEP.join(on), info.dsr if info else "", info.remedy if info else "",
            "true" if malicious[i] else "false", s.evidence[i],
            *(f"{p:.4f}" for p in s.proba[i]),
        ]


# --- worker processes -------------------------------------------------------------------------

_worker: dict[str, object] = {}


def _init_worker(model_path: str, backend: str) -> None:
    from pipeline.segment import use_backend

    use_backend(backend)
    _worker["model"] = load_model(model_path)


def _score_chunk(payload: tuple[list[str], list[object]]) -> Scored:
    texts, ratings = payload
    return score_texts(_worker["model"], texts, np.asarray(ratings, dtype=float))


@lru_cache(maxsize=4)
def _cached_model(path: str, mtime: float):
    return load_model(path)


def default_jobs() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


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
) -> dict[str, object]:
    """Score ``src`` into ``dst``. Returns a summary (rows, counts per cause, roles found)."""
    from pipeline.segment import current_backend

    src, dst = Path(src), Path(dst)
    model_path = Path(model_path)
    if not model_path.exists():
        raise InputError(f"{model_path}: no model file there; train one with 'make train' or pass --model")
    table = open_table(src, encoding=encoding, chunksize=chunksize, overrides=overrides)
    model = _cached_model(str(model_path), model_path.stat().st_mtime)
    roles = table.roles
    own = set(PRED_COLUMNS) | {f"p_{c}" for c in CAUSE_IDS}
    keep = [c for c in table.columns if c not in own]
    counts: dict[str, int] = {}
    n = 0
    bar = _progress(progress)
    pool = None
    try:
        payloads = (_payload(chunk, roles) for chunk in table.chunks())
        if jobs > 1:
            import multiprocessing as mp

            pool = mp.get_context("fork").Pool(jobs, _init_worker, (str(model_path), current_backend()))
            pairs = _ordered_window(pool, payloads, window=2 * jobs)
        else:
            pairs = ((score_texts(model, t, np.asarray(r, dtype=float)), (c, ids)) for t, r, c, ids in payloads)
        with atomic_csv(dst, bom=bom) as out:
            out.header(keep + PRED_COLUMNS)
            for s, (chunk, ids) in pairs:
                base = chunk[keep].to_numpy(dtype=object) if keep else np.empty((len(ids), 0), dtype=object)
                out.rows([*b, *p] for b, p in zip(base.tolist(), prediction_rows(s, ids)))
                for c in s.primary:
                    counts[c] = counts.get(c, 0) + 1
                n += len(ids)
                if bar is not None:
                    bar.update(len(ids))
    finally:
        if pool is not None:
            pool.terminate()
        if bar is not None:
            bar.close()
    return {"rows": n, "counts": counts, "roles": roles, "encoding": table.encoding, "output": str(dst)}


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


def _ordered_window(pool, payloads, window: int):
    """Score chunks on the pool with at most ``window`` in flight; yield results in input order.
    (``Pool.imap`` would read the whole input ahead of the workers.)"""
    from collections import deque

    pending: deque = deque()
    for texts, ratings, chunk, ids in payloads:
        pending.append((pool.apply_async(_score_chunk, ((texts, ratings),)), (chunk, ids)))
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


def read_predictions(path: Path | str) -> pd.DataFrame:
    """Read a predictions CSV back (strings; ``'``-escaped cells are left escaped)."""
    return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")


__all__ = ["PRED_COLUMNS", "Table", "load_model", "parse_rating", "score_file", "score_texts", "read_predictions"]
