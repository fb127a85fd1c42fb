"""The Predictor: the one object that owns the decision.

A fitted :class:`Predictor` takes a DataFrame of reviews — the text and, when present, rating,
buyer, item and date, under any header alias the CLI accepts (评价内容, 评分, 买家昵称 …) — and
returns the prediction columns of the CSV (:data:`PRED_COLUMNS`): cause, causes, probabilities,
DSR dimension, remedy, the suspected-malicious flag and score, the campaign cluster and the
evidence. Thresholds, abstention, the rating's effect, evidence and the scoring policy (flag
threshold, signal weights, rating cut-offs, campaign sizes) live in it and are saved with it.

Every front door enters here: ``reviewcause score`` (:mod:`pipeline.run`, a loop over chunks
that uses :meth:`Predictor.score_chunk` and :meth:`Predictor.finish`, exactly the two halves of
:meth:`Predictor.predict`), the Python API, the MLflow model (:mod:`pipeline.serving`), REST
and Spark. So they agree by construction.
"""

from __future__ import annotations

import gc
import re
import unicodedata
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from pipeline import batch as batch_signals
from pipeline.evidence import explain
from pipeline.gloss import LANGUAGE_NAMES, gloss_many
from pipeline.model import NONE_CLASS, as_frame, build_model, feature_names, fit_model
from pipeline.normalize import normalize_many, strip_media
from pipeline.primary import PrimaryStack, features_with_clauses
from pipeline.taxonomy import BY_ID, CAUSE_IDS, EMPTY, MALICIOUS, NO_COMPLAINT, SEP, UNCERTAIN

PRED_COLUMNS = ["review_id", "cause", "cause_zh", "confidence", "causes", "dsr", "remedy", "suspected_malicious",
                "malicious_score", "cluster_id", "evidence"] + [f"p_{c}" for c in CAUSE_IDS]
#: prediction columns that never hold user text (review_id and evidence quote the input)
TRUSTED_COLUMNS = frozenset(PRED_COLUMNS) - {"review_id", "evidence"}
#: Chinese names of the special outcomes
SPECIAL_ZH = {UNCERTAIN: "无法判断", EMPTY: "空评价", NO_COMPLAINT: "无差评内容"}
_NOVICE = CAUSE_IDS.index("novice_buyer")
_MAL_IDX = np.array([CAUSE_IDS.index(c) for c in CAUSE_IDS if c in MALICIOUS])
#: per primary outcome: Chinese name, DSR dimension, remedy (finish's lookups)
_ZH = {c: BY_ID[c].zh if c in BY_ID else SPECIAL_ZH[c] for c in (*CAUSE_IDS, *SPECIAL_ZH)}
_DSR = {c: BY_ID[c].dsr if c in BY_ID else "" for c in _ZH}
_REMEDY = {c: BY_ID[c].remedy if c in BY_ID else "" for c in _ZH}
#: ``causes`` text of every subset of the eight causes, indexed by its bit mask
_BITS = 1 << np.arange(len(CAUSE_IDS), dtype=np.int64)
#: the cause indices of every subset (``np.flatnonzero`` of its row of ``passed``), by bit mask
_CAUSE_INDICES = [np.flatnonzero(m >> np.arange(len(CAUSE_IDS)) & 1) for m in range(1 << len(CAUSE_IDS))]
_SUBSETS = np.array([SEP.join(c for j, c in enumerate(CAUSE_IDS) if m >> j & 1) for m in range(1 << len(CAUSE_IDS))],
                    dtype=object)

_STARS = re.compile(r"[★⭐]")
_RATING_WORDS = {"好评": 5.0, "中评": 3.0, "差评": 1.0, "positive": 5.0, "neutral": 3.0, "negative": 1.0,
                 "neg": 1.0, "pos": 5.0}
_ZH_DIGITS = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5}
_RATING_NUMBER = re.compile(r"([0-9]+(?:\.[0-9]+)?)")
_ZH_RATING = re.compile(r"([一二两三四五])\s*(?:(?:颗星|星级|星|分)(半)?)?\s*(?:好评|中评|差评)?$")
#: what may follow "4" for four and a half: 星半, 分半, 颗星半
_HALF = re.compile(r"(?:颗)?[星分]半")
_SIMPLE_RATINGS = {f"{k}{tail}": float(k) for k in range(1, 6) for tail in ("", ".0", "星", "分")}


#: what platforms write in place of a review the buyer did not write (JD, Taobao, Meituan …):
#: no text, so ``empty`` — not a cause (compared without punctuation or spaces, simplified)
PLACEHOLDERS = frozenset({
    "此用户没有填写评价", "此用户没有填写评论", "此用户未填写评价内容", "该用户未填写评价内容", "用户未填写评价内容",
    "该用户觉得商品较好未填写评价内容", "该用户觉得商品非常好未填写评价内容", "该用户未作出评价系统默认好评", "系统默认好评",
    "默认好评", "用户未及时评价系统默认好评", "买家未及时评价系统默认好评", "评价方未及时做出评价系统默认好评",
    "用户未评价", "买家未填写评价", "此用户未及时评价系统默认好评", "该用户没有填写评价", "未填写评价内容",
    "该用户未填写文字评价", "用户未填写文字评价", "此用户没有填写文字评价", "该用户暂未填写评价",
})
_PLACEHOLDER_MAX = 40
_NOT_LETTERS = re.compile(r"[\W_]+")
#: the shapes of the platforms' texts for a review not written, beyond the list above (letters only):
#: 此用户未填写文字评价, 该用户未及时主动评价系统默认好评, 默认评价 …; image and video markers alone
#: ([图片], 【视频】); a follow-up not written (暂无追评, 该用户未追评, 无); what a spreadsheet leaves
#: (N/A, null, nan)
_PLACEHOLDER_SHAPE = re.compile(
    r"(?:此|该)?(?:用户|买家|评价方)?(?:觉得商品(?:较好|很好|非常好))?暂?(?:没有|未)(?:及时)?(?:主动)?(?:做出|作出)?"
    r"(?:填写|给出)?(?:文字)?(?:评价|评论)(?:内容)?(?:系统)?(?:默认)?(?:好评)?"
    r"|(?:系统)?默认(?:好评|评价)"
    r"|(?:图片|视频|图|img|image|images|photo|photos|pic|pics|video)+"
    r"|(?:此|该)?(?:用户|买家)?暂?(?:无|没有|未)(?:填写|发表)?(?:追评|追加评价|追加评论)(?:内容)?|系统默认追评|暂无"
    r"|na|n/a|none|null|nan|无内容", re.I)
#: what only a follow-up column means by "none": 无, 没有 (as a review, 没有 under ★1 is an answer)
_NO_FOLLOWUP = re.compile(r"无|没有|未")
#: a cell a spreadsheet formula failed in (VLOOKUP's #N/A …): no review either
_SHEET_ERROR = re.compile(r"#(?:N/A|REF!|VALUE!|DIV/0!|NAME\?|NUM!|NULL!|SPILL!|CALC!|GETTING_DATA|FIELD!|BLOCKED!|UNKNOWN!)")
#: filler a cell holds when nothing was written ("*", "-", "/", "……", "。。。"): a text of only these
#: says nothing — unlike "???", "!!!", ":(", "-_-", "^_^" (a face or a cry is a review)
_NOTHING = re.compile(r"[\s*/\\|.,，。、…·~～]+|-+|—+")


def _bare_text(text: str) -> str:
    return _NOT_LETTERS.sub("", text)


def is_placeholder(text: str, followup: bool = False) -> bool:
    """True for a text that is no review: blank, a platform's placeholder for a review (or a
    follow-up) not written, an image marker alone, a spreadsheet error value, or filler only
    (``*``, ``-``, ``……``; emoji, "???" and faces are a review). ``followup``: 无 and 没有 are
    "no follow-up" too."""
    if len(text) > _PLACEHOLDER_MAX * 2:
        return False
    t = strip_media(text).strip()  # 此用户没有填写评价 [图片]
    if not t:
        return True
    if len(t) > _PLACEHOLDER_MAX:
        return False
    if _SHEET_ERROR.fullmatch(t) or _NOTHING.fullmatch(t):
        return True
    bare = _bare_text(t)
    if followup and _NO_FOLLOWUP.fullmatch(bare):
        return True
    return bare in PLACEHOLDERS or _PLACEHOLDER_SHAPE.fullmatch(bare) is not None


def parse_rating(value: object) -> float:
    """1–5 from ``4``, ``4.0``, ``4.5分``, ``4星``, ``５``, ``4/5``, ``★★★★``, ``四星``,
    ``好评/中评/差评``; NaN otherwise — a number outside 1–5 (``0.5``, ``9``), one that goes on
    as a number (``1e3``, ``4/10``) or any other text."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        v = float(value)
        return v if 1 <= v <= 5 else float("nan")
    s = str(value).strip() if value is not None else ""
    simple = _SIMPLE_RATINGS.get(s)
    if simple is not None:
        return simple
    s = unicodedata.normalize("NFKC", s).strip()  # full-width digits (５星)
    if not s or s.lower() == "nan":
        return float("nan")
    if s.lower() in _RATING_WORDS:
        return _RATING_WORDS[s.lower()]
    stars = len(_STARS.findall(s))
    if stars:
        return float(stars) if stars <= 5 else float("nan")  # six stars is no rating out of five
    m = _RATING_NUMBER.match(s)
    if m:
        rest = s[m.end():].lstrip()
        if rest.startswith("/"):  # "4/5" is four of five; "4/10" is not a star rating
            if rest[1:].strip() not in ("5", "5.0", "5星", "5分", "5.0分"):
                return float("nan")
        elif rest and (rest[0].isdigit() or rest[0] in ".,eE" or (rest[0].isascii() and rest[0].isalpha()
                                                                 and not rest.lower().startswith("star"))):
            return float("nan")
        v = float(m.group(1)) + (0.5 if _HALF.match(rest) else 0.0)  # 2星半, 2颗星半: two and a half
        return v if 1 <= v <= 5 else float("nan")
    m = _ZH_RATING.match(s)  # 四星, 五星好评, 三星半 — not 一般 (neutral), 二手, 四分之三
    if m:
        v = float(_ZH_DIGITS[m.group(1)]) + (0.5 if m.group(2) else 0.0)
        return v if v <= 5 else float("nan")  # 五星半 is no rating out of five
    return float("nan")


@dataclass
class Probabilities:
    """What the model read and said of a chunk (:meth:`Predictor._probabilities`)."""

    proba: np.ndarray  # (n, 8) per-cause probabilities
    head: np.ndarray  # (n, 9) primary probabilities, `none` last
    X: object  # the features of the live rows (None when there are none)
    live: np.ndarray  # the rows the model read
    empty: np.ndarray  # blank texts and placeholders
    glossed: list  # the normalised texts as the model read them (foreign ones glossed)
    written: list  # the normalised texts as written (what the batch signals compare)
    langs: list  # the language a text was glossed from, None when read as written
    unread: np.ndarray  # foreign texts of which the gloss knows no word


@dataclass
class Scored:
    """Per-row decisions of one chunk, before the whole-batch signals."""

    ids: list[str]
    proba: np.ndarray  # (n, 8)
    passed: np.ndarray  # (n, 8) bool
    primary: np.ndarray  # (n,) object: cause id, uncertain, no_complaint or empty
    confidence: np.ndarray  # (n,)
    evidence: list[str]
    ratings: np.ndarray  # (n,) float, NaN unknown
    buyers: list | None = None
    items: list | None = None
    dates: list | None = None
    sig: np.ndarray | None = None  # (n, SIG_SIZE) MinHash signatures
    eligible: np.ndarray | None = None

    @property
    def model_malicious(self) -> np.ndarray:
        return self.proba[:, _MAL_IDX].max(axis=1)

    def __len__(self) -> int:
        return len(self.ids)


class Predictor(BaseEstimator):
    """Reviews in, decisions out. ``fit`` trains the model; ``predict`` returns PRED_COLUMNS.

    Policy parameters (recorded with the model and in MLflow):
      abstain_below — the primary cause's probability under which the answer is ``uncertain``;
      high_rating   — a review rated at least this whose text states no complaint → ``no_complaint``;
      bad_rating    — reviews rated at most this count as bad reviews for the batch signals;
      flag_at       — malicious_score at which a review is flagged suspected malicious;
      campaign_weight, serial_weight, burst_weight — noisy-OR weights of the batch signals;
      campaign_min, serial_min, burst_min, burst_hours — sizes that make a signal;
      evidence_spans — quoted spans per cause in ``evidence``.
    ratings: how the star rating enters — ``"after"``: the model reads the text alone and the
      rating is read after it: a review rated ``high_rating`` or more whose text states no
      complaint (its primary is a novice buyer's praise or none) is ``no_complaint``, and a
      concrete complaint keeps its cause whatever the rating. In training, a ★4–5 review labelled
      ``none`` (praise, no complaint) teaches the text model what praise looks like, which is what
      ``novice_buyer`` means under an unknown or low rating. ``"feature"``: the rating is one-hot
      features of the model beside the text (what a Predictor pickled before this option used).
    complaint_beside_praise: with ``ratings="after"``, a review rated high whose primary is praise
      but where a concrete cause passes its threshold ("质量很好，包装破损了") takes that cause as
      its primary instead of ``no_complaint``. Off by default: cross-validated, it cost the ★4–5
      reviews 0.13 of primary accuracy (long praising JD reviews pass some cause's threshold).
    stack: how the primary cause is chosen — ``None``: :class:`pipeline.primary.PrimaryStack`
      with its defaults (clause-aware stacking over out-of-fold outputs), a ``PrimaryStack`` to
      set its parameters, or ``"head"``: the classifier's primary head alone.
    """

    stack = "head"  # what a Predictor pickled before the stacker existed used
    ratings = "feature"  # what a Predictor pickled before the rating was read after the text used
    complaint_beside_praise = False  # what a Predictor pickled before this option used

    def __init__(self, model=None, abstain_below=0.25, high_rating=4.0, bad_rating=3.0, flag_at=0.8,
                 campaign_weight=0.75, serial_weight=0.5, burst_weight=0.3, campaign_min=3, serial_min=3,
                 burst_min=5, burst_hours=24, evidence_spans=2, batch=True, stack=None, ratings="after",
                 complaint_beside_praise=False):
        self.model = model
        self.ratings = ratings
        self.complaint_beside_praise = complaint_beside_praise
        self.stack = stack
        self.abstain_below = abstain_below
        self.high_rating = high_rating
        self.bad_rating = bad_rating
        self.flag_at = flag_at
        self.campaign_weight = campaign_weight
        self.serial_weight = serial_weight
        self.burst_weight = burst_weight
        self.campaign_min = campaign_min
        self.serial_min = serial_min
        self.burst_min = burst_min
        self.burst_hours = burst_hours
        self.evidence_spans = evidence_spans
        self.batch = batch

    #: the range of each decision parameter: (low, high, whole number)
    _RANGES = {"abstain_below": (0.0, 1.0, False), "flag_at": (0.0, 1.0, False), "campaign_weight": (0.0, 1.0, False),
               "serial_weight": (0.0, 1.0, False), "burst_weight": (0.0, 1.0, False), "high_rating": (1.0, 5.0, False),
               "bad_rating": (1.0, 5.0, False), "campaign_min": (2, None, True), "serial_min": (2, None, True),
               "burst_min": (2, None, True), "burst_hours": (1e-9, None, False), "evidence_spans": (1, None, True)}

    #: the learners' own numbers (nested names, as --param spells them), checked when present
    _NESTED_RANGES = {"model__clf__C": (1e-12, None, False), "model__clf__primary_C": (1e-12, None, False),
                      "model__clf__primary_blend": (0.0, 1.0, False), "model__clf__primary_nb": (0.0, 1.0, False),
                      "model__clf__primary_nb_alpha": (1e-12, None, False), "model__clf__fixed_threshold": (0.0, 1.0, False),
                      "model__clf__threshold_floor": (0.0, 1.0, False), "model__clf__threshold_folds": (2, None, True),
                      "stack__C": (1e-12, None, False), "stack__folds": (2, None, True), "stack__gate": (0.0, 1.0, False)}

    def check_params(self) -> "Predictor":
        """Refuse a decision parameter out of its range in one line (a campaign weight of 2 made
        malicious scores of 2.0 that the report then refused; a negative window meant nothing;
        stack__gate=5 or primary_nb=2 were taken silently, C=-1 failed inside scikit-learn)."""
        deep = self.get_params(deep=True)
        ranges = {**self._RANGES, **{k: r for k, r in self._NESTED_RANGES.items() if k in deep}}
        for name, (low, high, whole) in ranges.items():
            v = deep[name] if "__" in name else getattr(self, name)
            ok = isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) and v == v
            ok = ok and (not whole or float(v).is_integer()) and v >= low and (high is None or v <= high)
            if not ok:
                span = f"between {low} and {high}" if high is not None else f"at least {low:g}" if low > 1e-6 else "above 0"
                raise ValueError(f"--param {name}={v!r}: must be {'a whole number ' if whole else ''}{span}")
        jobs = deep.get("stack__n_jobs")
        if jobs is not None and not (isinstance(jobs, (int, np.integer)) and not isinstance(jobs, bool) and jobs != 0):
            raise ValueError(f"--param stack__n_jobs={jobs!r}: must be a whole number other than 0, or none")
        if self.ratings not in ("after", "feature"):
            raise ValueError(f"--param ratings={self.ratings!r}: must be 'after' or 'feature'")
        if self.model is not None and "features" in getattr(self.model, "named_steps", {}):
            for _, branch in self.model.named_steps["features"].transformer_list:
                vec = getattr(branch, "named_steps", {}).get("vec")
                if vec is not None and hasattr(vec, "char_orders"):
                    orders = vec.char_orders
                    if not all(isinstance(o, (int, np.integer)) and 1 <= o <= 6 for o in orders) or len(set(orders)) != len(orders):
                        raise ValueError(f"--param …char_orders={orders!r}: character n-gram orders are distinct whole "
                                         f"numbers from 1 to 6 (e.g. 1,2,3)")
        return self

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.input_tags.two_d_array = False
        return tags

    # --- training ---------------------------------------------------------------------------

    def fit(self, X, Y, primary=None, sample_weight=None):
        """Fit on reviews ``X`` (texts, or a frame with text and rating), the ``(n, 8)`` cause
        indicator ``Y`` and the primary cause index (8 = none)."""
        from pipeline.segment import userdict_text

        self.check_params()
        if self.ratings == "after":
            X, Y, primary = self._text_first(X, Y, primary)
        model = build_model() if self.model is None else _clone(self.model)
        stacking = self.stack != "head" and primary is not None
        # with the stacker, the thresholds are tuned on its inner folds' out-of-fold probabilities
        # (the same per-cause regressions on the same kind of folds, fitted once instead of twice)
        deferred = stacking and model.named_steps["clf"].tune_thresholds
        if deferred:
            model.named_steps["clf"].set_params(tune_thresholds=False)
        self.stack_ = None  # "head": the classifier's primary head decides alone
        if not stacking:
            self.model_ = fit_model(model, X, Y, primary, sample_weight)
        else:
            # the features fitted first; then the classifier on every row and the stacker's five
            # inner fits run as one pool of six fits (the same classifier as fit_model's)
            prepared = model.named_steps["prepare"].fit_transform(as_frame(X))
            model.named_steps["features"].fit(prepared)
            stack = PrimaryStack() if self.stack is None else _clone(self.stack)
            clf, oof = stack.fit_beside(model, prepared, Y, primary, sample_weight, final=model.named_steps["clf"])
            model.steps[-1] = ("clf", clf)
            self.model_, self.stack_ = model, stack
            if deferred:
                w = np.ones(len(Y)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
                Yi = np.asarray(Y, dtype=int)
                clf.thresholds_ = (clf.thresholds_from(Yi, oof, w) if oof is not None
                                   else clf._tune_thresholds(model.named_steps["features"].transform(prepared), Yi, w))
                clf.set_params(tune_thresholds=True)
        self.features_ = feature_names(self.model_)
        self.userdict_ = userdict_text()  # travels with the model: no file of the repo is read at predict time
        return self

    def _text_first(self, X, Y, primary):
        """Training data for ``ratings="after"``: the ratings blanked, and each review rated
        ``high_rating`` or more that is labelled ``none`` relabelled ``novice_buyer`` — the text
        of praise or of no complaint, which the rating turns into ``no_complaint`` afterwards."""
        frame = as_frame(X)  # ratings read as scoring reads them (4星, ★★★★★, 好评)
        high = frame["rating"].to_numpy(dtype=float) >= self.high_rating
        if primary is not None:
            Y, primary = np.array(Y, dtype=np.int64, copy=True), np.array(primary, copy=True)
            praise = high & (primary == NONE_CLASS) & (Y.sum(axis=1) == 0)
            primary[praise] = _NOVICE
            Y[praise, _NOVICE] = 1
        return frame.assign(rating=np.nan), Y, primary

    # --- per-row decisions --------------------------------------------------------------------

    def _ensure_ready(self) -> None:
        from pipeline.segment import use_userdict

        check_is_fitted(self, "model_")
        use_userdict(self.userdict_)

    def predict_proba(self, X) -> np.ndarray:
        """``(n, 8)`` per-cause probabilities of reviews: the ``p_`` columns of :meth:`predict`
        (unrounded), for every input :meth:`predict` takes — records, one record, a 0-d array — a
        repeated header row and a placeholder 0."""
        self._ensure_ready()
        frame = self.resolve(_api_input(X))
        return self._probabilities(frame).proba

    def _probabilities(self, frame: pd.DataFrame):
        steps = self.model_.named_steps
        read = frame[["text", "rating"]]
        if self.ratings == "after":  # the model reads the text alone
            read = read.assign(rating=np.nan)
        prepared = steps["prepare"].transform(read)
        written = prepared["text"].tolist()
        empty = np.array([not t or (len(t) <= _PLACEHOLDER_MAX and is_placeholder(t)) for t in written], dtype=bool)
        glossed, langs = gloss_many(written)  # a foreign-language review, read through its gloss
        unread = np.array([lang is not None and not g for g, lang in zip(glossed, langs)], dtype=bool) & ~empty
        if any(langs):
            prepared = prepared.assign(text=glossed)
        n, k = len(frame), len(CAUSE_IDS)
        proba, head, X = np.zeros((n, k)), np.zeros((n, k + 1)), None
        live = np.flatnonzero(~empty & ~unread)
        if len(live):
            stack = getattr(self, "stack_", None)
            rows = prepared.iloc[live]
            if stack is None:
                X, source = steps["features"].transform(rows), None
            else:  # the clauses' n-grams counted in the same pass, for the stacker
                X, source = features_with_clauses(self.model_, rows)
            clf = steps["clf"]
            proba[live] = clf.predict_proba(X)
            head[live] = (clf.primary_proba(X, proba[live]) if stack is None
                          else stack.primary_proba(self.model_, rows, X, proba[live], source))
        return Probabilities(proba, head, X, live, empty, glossed, written, langs, unread)

    def warm_up(self) -> None:
        """Score a few reviews once: the lookup tables of the fast paths (character maps, cue
        prefixes, n-gram keys, the evidence's feature surfaces) are built now — before worker
        processes fork, so they are built once and shared — and :mod:`pipeline.persist` keeps the
        model-bound ones in its fast-load copy (:meth:`warm_tables`)."""
        frame = pd.DataFrame({"text": ["质量太差了，客服态度也不好！！！！", "東西壞了 http://x.cn", "返我50块就改好评", ""],
                              "rating": ["1", "2", "3", ""]})
        self.score_chunk(frame, with_signatures=True)

    def warm_tables(self) -> dict:
        """The tables :meth:`warm_up` built for this model (the n-gram tables of its vectorizers,
        the evidence's feature surfaces, the cue scanner), to travel with it in one pickle — the
        vectorizers and feature names inside are the model's own objects, so the tables find them
        again after unpickling (:meth:`adopt_tables`)."""
        from pipeline import cues, evidence, fast_ngrams

        own = {id(v) for v in self.model_.get_params(deep=True).values()}
        return {"ngrams": [(v, t) for v, t in fast_ngrams._CACHE.items() if id(v) in own],
                "evidence": [i for i in evidence._INFO if i.names is self.features_],
                "cues": cues.SCANNER[:]}

    @staticmethod
    def adopt_tables(tables: dict) -> None:
        """Install tables of :meth:`warm_tables` (unpickled with their model) as this process's."""
        from pipeline import cues, evidence, fast_ngrams

        fast_ngrams._CACHE.update(tables["ngrams"])
        if tables["evidence"]:
            evidence._INFO[:] = tables["evidence"]
        if tables["cues"] and not cues.SCANNER:
            cues.SCANNER[:] = tables["cues"]

    def score_chunk(self, X, with_signatures: bool | None = None, offset: int = 0) -> Scored:
        """Decisions of one chunk of reviews without the whole-batch signals.

        ``offset``: the chunk's first row number (0-based) in the file, for default ids.
        """
        with _collector_paused():
            return self._score_chunk(X, with_signatures, offset)

    def _score_chunk(self, X, with_signatures: bool | None, offset: int) -> Scored:
        self._ensure_ready()
        frame = self.resolve(X, offset=offset)
        read = self._probabilities(frame)
        proba, head, X_live, live, empty, norm = read.proba, read.head, read.X, read.live, read.empty, read.glossed
        n, k = len(frame), len(CAUSE_IDS)
        passed = proba >= self.model_.named_steps["clf"].thresholds_
        top = head.argmax(axis=1)
        conf = head[np.arange(n), top]
        ratings = frame["rating"].to_numpy(dtype=float)
        abstain = (top == NONE_CLASS) | (conf < self.abstain_below)
        high = ratings >= self.high_rating  # NaN compares False
        if self.ratings == "after":  # praise or no complaint in the text, rated high
            passed[high, _NOVICE] = False
            praise = high & ((top == NONE_CLASS) | (top == _NOVICE))
            # complaint_beside_praise: a concrete cause that passes its threshold is the primary
            # ("质量很好，包装破损了" at five stars is a logistics complaint, not "no complaint")
            told = np.flatnonzero(praise & passed.any(axis=1)) if self.complaint_beside_praise else np.zeros(0, int)
            if len(told):
                top[told] = np.where(passed[told], head[told, :k], -1.0).argmax(axis=1)
                conf[told] = head[told, top[told]]
                abstain[told] = False
            happy = praise
            happy[told] = False
        else:
            happy = (top == NONE_CLASS) & high
        primary = np.where(abstain, UNCERTAIN, np.asarray(CAUSE_IDS + ("",), dtype=object)[top]).astype(object)
        primary[happy] = NO_COMPLAINT
        rows = np.flatnonzero(~abstain)
        passed[rows, top[rows]] = True  # the primary cause always counts among the causes
        passed[happy] = False  # no complaint: no cause
        conf = np.where(abstain & ~happy, proba.max(axis=1), conf)
        primary[empty] = EMPTY
        passed[empty] = False
        conf[empty] = 0.0
        proba[empty] = 0.0
        evidence = [""] * n
        if X_live is not None:
            pos = np.full(n, -1)
            pos[live] = np.arange(len(live))
            # the rows with a passing cause and their causes (ascending), for the whole chunk at once
            at = live[passed[live].any(axis=1)]
            causes = [_CAUSE_INDICES[m] for m in (passed[at].astype(np.int64) @ _BITS).tolist()]
            want = at.tolist()
            texts = frame["text"].tolist()
            evidence_rows = explain(
                self.model_, self.features_, X_live, list(zip(pos[at].tolist(), causes)),
                [norm[i] for i in want], [texts[i] for i in want], spans=self.evidence_spans,
            )
            for i, ev in zip(want, evidence_rows):
                evidence[i] = ev
        for i in np.flatnonzero(happy):
            evidence[i] = f"{ratings[i]:g}星且未提出问题 rated {ratings[i]:g} stars, no complaint in the text"
        from pipeline.tables import clip

        for i, lang in enumerate(read.langs):
            if lang is not None and not empty[i]:
                zh, en = LANGUAGE_NAMES.get(lang, (lang, lang))
                note = (f"{zh}评价，译词表无一可读 written in {en}, no word the gloss knows" if read.unread[i]
                        else f"译自{zh} glossed from {en}「{clip(norm[i], 40)}」")
                evidence[i] = f"{evidence[i]}; {note}".lstrip("; ")
        if self.ratings == "after":  # the guide's strong evidence for a novice buyer: a low rating
            for i in np.flatnonzero((primary == CAUSE_IDS[_NOVICE]) & (ratings <= self.bad_rating)):
                evidence[i] = f"{evidence[i]}; 评分{ratings[i]:g}星 rated {ratings[i]:g} stars".lstrip("; ")
        scored = Scored(frame["id"].tolist(), proba, passed, primary, conf, evidence, ratings,
                        _col(frame, "buyer"), _col(frame, "item"), _col(frame, "date"))
        if self.batch if with_signatures is None else with_signatures:
            scored.sig, scored.eligible = batch_signals.signatures(read.written)
            scored.eligible = scored.eligible & ~empty  # a placeholder five buyers share is no campaign
        return scored

    # --- whole-batch signals and output columns -------------------------------------------------

    def collector(self) -> batch_signals.Collector:
        check_is_fitted(self, "model_")
        return batch_signals.Collector(campaign_min=self.campaign_min, serial_min=self.serial_min,
                                       burst_min=self.burst_min, burst_hours=self.burst_hours, bad_rating=self.bad_rating)

    def weights(self) -> dict[str, float]:
        return {"campaign": self.campaign_weight, "serial": self.serial_weight, "burst": self.burst_weight}

    def _flag(self, s: Scored, signals: batch_signals.Signals | None, offset: int):
        """The chunk's batch-signal rows (or None), ``malicious_score``, which rows are special
        (empty, no complaint: never scored nor flagged) and ``suspected_malicious``."""
        score = s.model_malicious
        part = None
        if signals is not None:
            part = signals.rows(offset, offset + len(s))
            score = part.score(score, self.weights())
        special = np.isin(s.primary, [EMPTY, NO_COMPLAINT])
        score = np.where(special, 0.0, score)
        malicious = (np.isin(s.primary, list(MALICIOUS)) | (score >= self.flag_at)) & ~special
        return part, score, special, malicious

    def finish(self, s: Scored, signals: batch_signals.Signals | None = None, offset: int = 0) -> pd.DataFrame:
        """The output columns (:data:`PRED_COLUMNS`) of a scored chunk; ``signals`` are the
        whole-batch signals of the file, whose rows ``offset …`` are this chunk's."""
        cols = self.finish_columns(s, signals, offset)
        out = pd.DataFrame({c: cols[c] for c in PRED_COLUMNS[:11]})
        for c in PRED_COLUMNS[11:]:
            out[c] = cols[c]
        return out

    def finish_columns(self, s: Scored, signals: batch_signals.Signals | None = None, offset: int = 0) -> dict:
        """The columns of :meth:`finish` as lists of text and numpy arrays (numbers rounded to
        four decimals, the flag as bool), without a DataFrame: what the CSV writer needs.
        Whole-array work; the per-row reference is :meth:`finish_reference`."""
        n = len(s)
        part, score, special, malicious = self._flag(s, signals, offset)
        primary = s.primary
        plist = primary.tolist()
        cause_zh = [_ZH[c] for c in plist]
        dsr = [_DSR[c] for c in plist]
        remedy = [_REMEDY[c] for c in plist]
        # causes: the passing causes in CAUSE_IDS order, by a table of every subset
        code = s.passed.astype(np.int64) @ _BITS if n else np.zeros(0, dtype=np.int64)
        causes = _SUBSETS[code].tolist()
        unsure = np.flatnonzero(primary == UNCERTAIN)
        if len(unsure):  # keep the top candidates visible when abstaining (argsort row by row, as before)
            top2 = np.argsort(-s.proba[unsure], axis=1)[:, :2]
            for i, pair in zip(unsure.tolist(), top2.tolist()):  # none when the model read nothing
                causes[i] = SEP.join(CAUSE_IDS[j] for j in pair if s.proba[i, j] > 0)
        evidence = list(s.evidence)
        cluster = [""] * n
        if part is not None:
            flagged = ((part.cluster_id >= 0) | (part.serial_reviews > 0) | (part.burst > 0)) & ~special
            for i in np.flatnonzero(flagged).tolist():
                extra = part.evidence(i, _at(s.buyers, i), _at(s.items, i), self.burst_hours)
                evidence[i] = "; ".join(x for x in [evidence[i], *extra] if x)
                if part.cluster_id[i] >= 0:
                    cluster[i] = f"C{part.cluster_id[i]}"
        out = {
            "review_id": s.ids, "cause": primary, "cause_zh": cause_zh, "confidence": np.round(s.confidence, 4),
            "causes": causes, "dsr": dsr, "remedy": remedy, "suspected_malicious": malicious,
            "malicious_score": np.round(score, 4), "cluster_id": cluster, "evidence": evidence,
        }
        for j, c in enumerate(CAUSE_IDS):
            out[f"p_{c}"] = np.round(s.proba[:, j], 4)
        return out

    def finish_reference(self, s: Scored, signals: batch_signals.Signals | None = None, offset: int = 0) -> pd.DataFrame:
        """:meth:`finish` row by row: the reference the whole-array path must equal."""
        n = len(s)
        part, score, _, malicious = self._flag(s, signals, offset)
        cause_zh, dsr, remedy, causes, evidence, cluster = [], [], [], [], [], []
        for i in range(n):
            c = s.primary[i]
            info = BY_ID.get(c)
            cause_zh.append(info.zh if info else SPECIAL_ZH[c])
            dsr.append(info.dsr if info else "")
            remedy.append(info.remedy if info else "")
            on = [CAUSE_IDS[j] for j in np.flatnonzero(s.passed[i])]
            if c == UNCERTAIN:  # keep the top candidates visible when abstaining
                on = [CAUSE_IDS[j] for j in np.argsort(-s.proba[i])[:2] if s.proba[i, j] > 0]
            causes.append(SEP.join(on))
            ev, cl = s.evidence[i], ""
            if part is not None and c not in (EMPTY, NO_COMPLAINT):
                extra = part.evidence(i, _at(s.buyers, i), _at(s.items, i), self.burst_hours)
                ev = "; ".join(x for x in [ev, *extra] if x)
                cl = f"C{part.cluster_id[i]}" if part.cluster_id[i] >= 0 else ""
            evidence.append(ev)
            cluster.append(cl)
        out = pd.DataFrame({
            "review_id": s.ids, "cause": s.primary, "cause_zh": cause_zh, "confidence": np.round(s.confidence, 4),
            "causes": causes, "dsr": dsr, "remedy": remedy, "suspected_malicious": malicious,
            "malicious_score": np.round(score, 4), "cluster_id": cluster, "evidence": evidence,
        })
        for j, c in enumerate(CAUSE_IDS):
            out[f"p_{c}"] = np.round(s.proba[:, j], 4)
        return out

    def predict(self, X) -> pd.DataFrame:
        """Decisions for a whole batch of reviews (a DataFrame under any header alias, a dict of
        columns, a list of texts or of records, one text): :data:`PRED_COLUMNS`, one row per input
        row, in order. A row repeating the header is ``empty``, with the CLI's warning."""
        s = self.score_chunk(_api_input(X))
        signals = None
        if self.batch:
            collector = self.collector()
            collector.add(s.sig, s.eligible, s.buyers, s.items, s.dates, s.ratings)
            signals = collector.finish()
        return self.finish(s, signals)

    # --- inputs -------------------------------------------------------------------------------

    @staticmethod
    def resolve(X, offset: int = 0, roles: dict[str, str | None] | None = None) -> pd.DataFrame:
        """Reviews as a frame with ``id, text, rating, buyer, item, date``: texts, or a
        DataFrame whose columns are found by the same header aliases as the CLI."""
        from pipeline.tables import InputError, find_columns

        if isinstance(X, dict):  # columns by name, as REST's {"inputs": {…}} sends them
            try:
                X = pd.DataFrame(X)
            except (ValueError, TypeError) as exc:
                raise InputError(f"input: the reviews are not a table ({exc}); give columns of equal length") from None
        if isinstance(X, np.ndarray) and X.ndim > 1:
            raise InputError("input: a 2-D array has no column names; give a DataFrame with a review column "
                             "(评价内容, text …) or a list of texts")
        if X is None or not (isinstance(X, (str, bytes, bytearray, pd.DataFrame)) or hasattr(X, "__iter__")):
            raise InputError(f"input: reviews are a DataFrame, a list of texts or one text, not {type(X).__name__}")
        if not isinstance(X, pd.DataFrame):
            frame = as_frame([_as_text(X)] if isinstance(X, (str, bytes, bytearray)) else [_as_text(t, i + 1) for i, t in enumerate(X)])
            n = len(frame)
            return pd.DataFrame({"id": [str(offset + i + 1) for i in range(n)], "text": frame["text"],
                                 "rating": frame["rating"], "buyer": None, "item": None, "date": None})
        if roles is None:
            roles = find_columns([str(c) for c in X.columns], where="input",
                                 hint="name the review column 评价内容, text or another header the CLI reads")
        n = len(X)

        names = [str(c) for c in X.columns]

        def column(role):  # the first column of that name (a frame may repeat a header, as the CLI reads it)
            col = roles.get(role)
            return X.iloc[:, names.index(str(col))] if col is not None and str(col) in names else None

        def get(role):
            values = column(role)
            return None if values is None else values.tolist()

        texts = [_as_text(t, i + 1) for i, t in enumerate(get("text"))]
        followups = get("followup")
        if followups is not None:
            texts = with_followups(texts, [_as_text(f, i + 1) for i, f in enumerate(followups)])
        for role in ("id", "buyer", "item"):
            _exact_ids(column(role), roles.get(role), role)
        ids = review_ids(get("id"), offset, n)
        raw_ratings = get("rating")
        ratings = np.array([parse_rating(v) for v in raw_ratings], dtype=float) if raw_ratings is not None else np.full(n, np.nan)
        # text columns kept as object columns: the scorer reads them back as lists, which costs
        # nothing then (pandas' Arrow strings would be built here and taken apart again)
        return pd.DataFrame({"id": _objects(ids), "text": _objects(texts), "rating": ratings,
                             "buyer": _objects(_clean(get("buyer"), n)), "item": _objects(_clean(get("item"), n)),
                             "date": _objects(_clean(get("date"), n))})


def review_ids(values, offset: int, n: int) -> list[str]:
    """The ``review_id`` of each row: the id cell as written, or the 1-based row number when there is
    no id column or the cell is blank."""
    if values is None:
        return [str(offset + i + 1) for i in range(n)]
    return [_id_cell(v) or str(offset + i + 1) for i, v in enumerate(values)]


def with_followups(texts: list[str], followups: list[str]) -> list[str]:
    """Each review with its follow-up (追评) on a line of its own — what every door scores, and what
    a label file's row means: the follow-up alone when the first review is blank or a placeholder;
    a follow-up placeholder (暂无追评, 无, -) is no follow-up."""
    followups = ["" if is_placeholder(f, followup=True) else f.strip() for f in followups]
    return [f"{t}\n{f}" if f and not is_placeholder(t) else (f or t) for t, f in zip(texts, followups)]


def _api_input(X):
    """What the Python API, the pyfunc and REST hand :meth:`Predictor.predict`, in the shapes
    :meth:`Predictor.resolve` reads (the CLI hands it role frames and never comes here): a 0-d
    array is its one value; a list of records (dicts) a table, missing keys blank cells; a dict of
    single values one record; a list of lists is refused (no column names; its rows would be
    scored as their repr). A row that repeats the header (exports joined end to end) has its text
    blanked — ``empty``, as the CLI scores it — with the CLI's warning."""
    from pipeline.tables import InputError, find_columns, header_repeats, say_header_repeats

    if isinstance(X, np.ndarray) and X.ndim == 0:
        X = X.item()  # np.array("很差"): one review
    if isinstance(X, (list, tuple)):
        records = [isinstance(v, dict) for v in X]
        if any(records):
            if not all(records):
                raise InputError("input: the list mixes records (dicts) and texts; give a list of texts or a list of records")
            X = pd.DataFrame.from_records(list(X))
        elif any(isinstance(v, (list, tuple, np.ndarray)) for v in X):
            raise InputError("input: a list of lists has no column names; give a DataFrame with a review column "
                             "(评价内容, text …), a list of records (dicts) or a list of texts")
    elif isinstance(X, dict) and X and all(_single(v) for v in X.values()):
        X = pd.DataFrame({k: [v.item() if isinstance(v, np.ndarray) else v] for k, v in X.items()})  # one record
    if isinstance(X, pd.DataFrame) and len(X) and X.shape[1]:
        names = [str(c) for c in X.columns]
        text = find_columns(names, require_text=False)["text"]
        if text is not None:
            at = names.index(text)
            cells = X.iloc[:, at]
            if cells.dtype == object and any(isinstance(v, (bytes, bytearray)) for v in cells.tolist()):
                X = X.copy()  # bytes decoded here, as resolve would, before the header check reads them as text
                X.isetitem(at, np.asarray([_as_text(v, i + 1) for i, v in enumerate(cells.tolist())], dtype=object))
            repeats = header_repeats(X.set_axis(range(len(names)), axis=1), names, at)
            if len(repeats):
                column = X.iloc[:, at].astype(object)  # a copy: the caller's frame is not changed
                column.iloc[repeats] = ""
                X = X.copy()
                X.isetitem(at, column.to_numpy())
                say_header_repeats("input", int(repeats[0]) + 1, len(repeats))
    return X


def _single(v) -> bool:
    """One value (a record's cell), not a column of them."""
    if isinstance(v, np.ndarray):
        return v.ndim == 0
    return not isinstance(v, (list, tuple, set, dict, pd.Series, pd.Index))


def _objects(values):
    return None if values is None else pd.Series(values, dtype=object)


def _missing(v) -> bool:
    """A missing cell: None, NaN, pandas' NA or NaT (not "<NA>" as text)."""
    if v is None:
        return True
    if isinstance(v, str):
        return False
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):  # a list or an array in a cell: a value
        return False


def _cell(v) -> str:
    """A buyer, item or date cell as text; a whole float without its '.0' (a JSON or DataFrame
    column of numbers with a blank among them is float: buyer 777.0 is buyer 777, as the CLI
    reads it)."""
    if type(v) is str:  # nearly every cell: no missing-value check needed
        return v.strip()
    if _missing(v):
        return ""
    if isinstance(v, float) and v.is_integer() and abs(v) < EXACT_FLOAT:
        return str(int(v))
    return str(v).strip()


#: the largest whole number every float holds exactly: an id column of floats (JSON numbers with
#: a blank among them, a DataFrame's float column) beyond it has lost digits before it got here
EXACT_FLOAT = 2**53


def _exact_ids(column: pd.Series | None, name, role: str = "id") -> None:
    """Refuse an id, buyer or item column of floats that cannot hold its values: 16+ digit order
    numbers sent as JSON numbers come here rounded (98765432109876543 → 98765432109876544), and
    writing them back would hand the seller ids of other orders; buyer ids so rounded would make
    one serial buyer of several."""
    if column is None:
        return
    if column.dtype.kind == "f":
        values = np.abs(column.to_numpy(dtype=float))
    else:  # object or categorical: the float cells among the ids
        values = np.array([abs(v) if isinstance(v, float) else 0.0 for v in column.tolist()])
    with np.errstate(invalid="ignore"):
        big = np.flatnonzero(values >= EXACT_FLOAT)
    if len(big):
        from pipeline.tables import InputError

        raise InputError(f"{role} column '{name}', row {int(big[0]) + 1}: {role}s of 16 or more digits sent as numbers "
                         f"have lost digits on the way in (read as {float(column.iloc[int(big[0])])!r}); send them "
                         f"as strings (JSON \"…\")")


def _id_cell(v) -> str:
    """An id exactly as written (spaces and tabs kept); blank when it holds nothing else. A whole
    float is written without its '.0': a JSON or DataFrame id column with a missing value is float."""
    if _missing(v):
        return ""
    if isinstance(v, float) and v.is_integer() and abs(v) < EXACT_FLOAT:
        return str(int(v))
    s = str(v)
    if s.startswith('="') and s.endswith('"') and len(s) >= 3 and '"' not in s[2:-1]:
        s = s[2:-1]  # ="0012": Excel's way of keeping an id's leading zeros and all 18 digits as text
    return s if s.strip() else ""


def _as_text(v, row: int | None = None) -> str:
    """A review cell as text: blank when missing, bytes decoded as UTF-8 or else GB18030 (an export's
    bytes; refused by row when neither reads them — they were decoded with replacement characters
    and scored as a prank), anything else as str() (a number or a date typed into the text column
    of an API or REST request is still scored)."""
    if _missing(v):
        return ""
    if isinstance(v, str):
        return v
    if isinstance(v, (bytes, bytearray)):
        for codec in ("utf-8", "gb18030"):
            try:
                return bytes(v).decode(codec)
            except UnicodeDecodeError:
                pass
        from pipeline.tables import InputError

        at = f"row {row}: " if row is not None else ""
        raise InputError(f"input: {at}the text is bytes that are neither UTF-8 nor GB18030; decode it (bytes.decode) "
                         f"with its encoding before scoring")
    if isinstance(v, float) and v.is_integer() and abs(v) < EXACT_FLOAT:
        return str(int(v))  # 100, not 100.0: a text column of numbers is float beside a null
    return str(v)


def _clean(values, n):
    return None if values is None else [_cell(v) for v in values]


def _col(frame: pd.DataFrame, name: str):
    values = frame[name].tolist()
    return None if all(v is None for v in values) else values


def _at(values, i) -> str:
    return "" if values is None else (values[i] or "")


@contextmanager
def _collector_paused():
    """The cyclic garbage collector paused for one chunk. A chunk builds hundreds of thousands of
    short-lived objects, which set off one or two full collections per chunk — each a walk over
    every object the process holds (the model's vocabulary among them): 0.05–0.2 s of a 20,000-
    review chunk's ~2 s (measured with ``gc.callbacks``). Nothing of a chunk needs the collector
    (reference counts free it); what cycles it leaves are collected once it resumes."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _clone(model):
    from sklearn.base import clone

    return clone(model)


def normalised(texts) -> list[str]:
    return normalize_many(list(texts))
