"""Stage 3 — the model: one scikit-learn ``Pipeline`` from raw text to eight cause probabilities.

    normalize (OpenCC, width, noise)
      → features: TF-IDF over word uni/bi-grams (jieba) and character bi/tri-grams
                  ⊕ cue-lexicon features (``pipeline.cues``)
      → CauseClassifier: one logistic regression per cause, per-cause thresholds chosen on
                         inner cross-validation folds of the training data only.

Decisions (which causes pass, the primary cause, abstention) are made by :func:`decide`, which
reads only probabilities and the thresholds the classifier learned, so training, evaluation and
scoring share one rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from itertools import repeat

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils.validation import check_is_fitted

from pipeline.cues import CueFeatures
from pipeline.normalize import normalize_many
from pipeline.segment import segment
from pipeline.taxonomy import BUYER_SIDE, CAUSE_IDS, UNCERTAIN

#: Default hyper-parameters; train.py logs exactly this dict (merged with overrides) to MLflow.
DEFAULT_PARAMS: dict[str, object] = {
    "C": 10.0,
    "class_weight": "balanced",
    "min_df": 2,
    "max_features": 200_000,
    "char_ngrams": "2",
    "word_bigrams": True,
    "cue_weight": 0.2,
    "threshold_folds": 5,
    "threshold_floor": 0.15,
    "seed": 13,
    "primary_C": 10.0,
    "authored_weight": 0.5,
    "abstain_below": 0.25,
}


def analyze(doc: str, chars: tuple[int, ...] = (2, 3)) -> list[str]:
    """Features of one normalised review: jieba words, word bigrams, character n-grams (``#``).

    Module-level (never a lambda or bound method) so the fitted pipeline pickles; the n-gram
    orders are bound with ``functools.partial``, which pickles too.
    """
    words = segment(doc.lower())
    feats = list(words)
    feats.extend([a + " " + b for a, b in zip(words, words[1:])])
    if chars:
        s = "".join(words)
        for n in chars:
            feats.extend(["#" + s[i : i + n] for i in range(len(s) - n + 1)])
    return feats


def _char_orders(spec: object) -> tuple[int, ...]:
    text = str(spec).strip().lower()
    return () if text in ("", "none", "0") else tuple(int(x) for x in text.split(","))


class TfidfFeatures(TfidfVectorizer):
    """``TfidfVectorizer`` with a faster ``transform``: features are looked up with ``dict.get``
    mapped in C and counted by scipy, instead of sklearn's Python loop per feature. Fitting is
    sklearn's own; ``tests/test_model.py`` checks the output equals sklearn's exactly."""

    def transform(self, raw_documents):
        check_is_fitted(self, msg="The TF-IDF vectorizer is not fitted")
        analyze = self.build_analyzer()
        get = self.vocabulary_.get
        lengths, ids = [], []
        for doc in raw_documents:
            feats = analyze(doc)
            lengths.append(len(feats))
            ids.extend(map(get, feats, repeat(-1, len(feats))))
        idx = np.asarray(ids, dtype=np.int64)
        rows = np.repeat(np.arange(len(lengths)), lengths)
        keep = idx >= 0
        X = sp.coo_array(
            (np.ones(int(keep.sum()), dtype=self.dtype), (rows[keep], idx[keep])),
            shape=(len(lengths), len(self.vocabulary_)),
        ).tocsr()  # sums duplicates, sorted indices
        X.sum_duplicates()
        if self.binary:
            X.data.fill(1)
        return self._tfidf.transform(X, copy=False)


def _best_threshold(y: np.ndarray, p: np.ndarray, floor: float) -> float:
    """The probability cut that maximises F1 of one cause on out-of-fold predictions."""
    if y.sum() == 0:
        return 0.5
    order = np.argsort(-p)
    ys, ps = y[order], p[order]
    tp = np.cumsum(ys)
    k = np.arange(1, len(ys) + 1)
    f1 = 2 * tp / (k + ys.sum())
    best = int(np.argmax(f1))
    # midway between the last accepted and the next probability, never below the floor
    nxt = ps[best + 1] if best + 1 < len(ps) else ps[best] / 2
    return float(max(floor, (ps[best] + nxt) / 2))


class CauseClassifier(ClassifierMixin, BaseEstimator):
    """Multi-label classifier: one L2 logistic regression per cause plus tuned thresholds.

    ``fit(X, Y)`` takes a feature matrix and an ``(n, 8)`` 0/1 indicator matrix in
    ``CAUSE_IDS`` order. Thresholds are chosen on out-of-fold probabilities of an inner
    stratified split of the training data, so they never see the data they are judged on.
    """

    def __init__(self, C=4.0, class_weight="balanced", threshold_folds=5, threshold_floor=0.15, seed=13, primary_C=None, abstain_below=0.0):
        self.C = C
        self.class_weight = class_weight
        self.threshold_folds = threshold_folds
        self.threshold_floor = threshold_floor
        self.seed = seed
        self.primary_C = primary_C
        self.abstain_below = abstain_below

    def _base(self):
        return LogisticRegression(C=self.C, class_weight=self.class_weight, solver="liblinear", max_iter=1000)

    def _fit_weights(self, X, Y, w):
        k = Y.shape[1]
        coef = np.zeros((k, X.shape[1]))
        intercept = np.full(k, -20.0)  # a cause never seen in training is never predicted
        for j in range(k):
            if 0 < Y[:, j].sum() < len(Y):
                lr = clone(self._base()).fit(X, Y[:, j], sample_weight=w)
                coef[j], intercept[j] = lr.coef_[0], lr.intercept_[0]
        return coef, intercept

    def fit(self, X, Y, primary=None, sample_weight=None):
        """Fit on features ``X`` and the ``(n, 8)`` indicator ``Y``.

        ``primary``: optional (n,) primary-cause indices (8 = none) for the primary head; without
        it :func:`decide` ranks the causes itself. ``sample_weight``: optional per-row weights;
        rows weighted below 1 (e.g. examples written for training) train the model but are left
        out when thresholds are tuned, so thresholds reflect the real class balance.
        """
        Y = np.asarray(Y, dtype=int)
        if Y.ndim != 2 or Y.shape[1] != len(CAUSE_IDS):
            raise ValueError(f"Y must be an (n, {len(CAUSE_IDS)}) indicator matrix, got shape {Y.shape}")
        w = np.ones(len(Y)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
        self.classes_ = np.asarray(CAUSE_IDS)
        self.coef_, self.intercept_ = self._fit_weights(X, Y, w)
        self.thresholds_ = self._tune_thresholds(X, Y, w)
        self.primary_ = None
        if primary is not None and self.primary_C and len(np.unique(primary)) > 1:
            self.primary_ = LogisticRegression(C=self.primary_C, class_weight=self.class_weight, max_iter=2000)
            self.primary_.fit(X, primary, sample_weight=w)
        return self

    def primary_proba(self, X):
        """``(n, 9)`` probabilities of the primary cause (eight causes, then none), or None."""
        if self.primary_ is None:
            return None
        out = np.zeros((X.shape[0], len(CAUSE_IDS) + 1))
        out[:, self.primary_.classes_] = self.primary_.predict_proba(X)
        return out

    def _tune_thresholds(self, X, Y, w):
        k = Y.shape[1]
        strata = _strata(Y)
        folds = min(self.threshold_folds, np.bincount(strata).max())
        if folds < 2:
            return np.full(k, 0.5)
        oof = np.zeros(Y.shape)
        splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=self.seed)
        # rare strata smaller than the fold count only warn; they still land in some fold
        for tr, te in splitter.split(np.zeros(len(Y)), _clip_strata(strata, folds)):
            coef, intercept = self._fit_weights(X[tr], Y[tr], w[tr])
            oof[te] = _sigmoid(X[te] @ coef.T + intercept)
        full = w >= 1.0
        if Y[full].sum(axis=0).min() == 0:  # a cause only down-weighted rows show: use every row for it
            full = np.ones(len(Y), bool)
        return np.array([_best_threshold(Y[full, j], oof[full, j], self.threshold_floor) for j in range(k)])

    def decision_function(self, X):
        return np.asarray(X @ self.coef_.T) + self.intercept_

    def predict_proba(self, X):
        """``(n, 8)`` independent per-cause probabilities (rows need not sum to 1)."""
        return _sigmoid(self.decision_function(X))

    def predict(self, X):
        return (self.predict_proba(X) >= self.thresholds_).astype(int)


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-np.clip(z, -35, 35)))


def _strata(Y: np.ndarray) -> np.ndarray:
    """A stratum per row for splitting: its rarest cause (or 'none')."""
    freq = Y.sum(axis=0)
    order = np.argsort(freq)  # rarest first
    out = np.full(len(Y), Y.shape[1])
    for j in order[::-1]:
        out[Y[:, j] == 1] = j
    return out


def _clip_strata(strata: np.ndarray, folds: int) -> np.ndarray:
    """Merge strata too small to split into a common one, so StratifiedKFold accepts them."""
    counts = np.bincount(strata)
    return np.where(counts[strata] < folds, -1, strata) + 1


def build(params: dict[str, object] | None = None) -> Pipeline:
    """The whole model as one sklearn Pipeline, from raw review strings."""
    p = {**DEFAULT_PARAMS, **(params or {})}
    tfidf = TfidfFeatures(
        analyzer=partial(analyze, chars=_char_orders(p["char_ngrams"])),
        sublinear_tf=True,
        min_df=int(p["min_df"]),
        max_features=int(p["max_features"]),
        dtype=np.float32,
    )
    features = FeatureUnion(
        [("ngrams", tfidf), ("cues", CueFeatures())],
        transformer_weights={"ngrams": 1.0, "cues": float(p["cue_weight"])},
    )
    clf = CauseClassifier(
        C=float(p["C"]),
        class_weight=p["class_weight"] if p["class_weight"] not in ("none", None) else None,
        threshold_folds=int(p["threshold_folds"]),
        threshold_floor=float(p["threshold_floor"]),
        seed=int(p["seed"]),
        primary_C=float(p["primary_C"]) or None,
        abstain_below=float(p["abstain_below"]),
    )
    return Pipeline(
        [
            ("normalize", FunctionTransformer(normalize_many, validate=False)),
            ("features", features),
            ("clf", clf),
        ]
    )


@dataclass
class Decision:
    """Vectorised decisions for a batch of reviews."""

    passed: np.ndarray  # (n, 8) bool: cause at or above its threshold
    primary: np.ndarray  # (n,) object: cause id or UNCERTAIN
    confidence: np.ndarray  # (n,) float: probability of the primary (or top) cause


def decide(
    proba: np.ndarray, thresholds: np.ndarray, primary_proba: np.ndarray | None = None, abstain_below: float = 0.0
) -> Decision:
    """Apply thresholds and choose the primary cause.

    * A cause passes when its probability reaches its threshold.
    * With a primary head (``primary_proba``: eight causes then ``none``), the primary cause is
      its most probable class; the primary cause always counts among the passing causes. The
      model abstains (``uncertain``) when that class is ``none`` or its probability is below
      ``abstain_below`` (no cause is probable).
    * Without one, the primary is the passing cause furthest above its threshold (probability /
      threshold), a passing buyer-side or malicious cause (5–8) first, as ``causes.md`` asks;
      when no cause passes, the model abstains.
    """
    proba = np.asarray(proba, dtype=float)
    passed = proba >= thresholds
    rows = np.arange(len(proba))
    ids = np.asarray(CAUSE_IDS, dtype=object)
    if primary_proba is not None:
        top = primary_proba.argmax(axis=1)
        abstain = (top == len(CAUSE_IDS)) | (primary_proba[rows, top] < abstain_below)
        top = np.where(abstain, proba.argmax(axis=1), top)
        passed[rows[~abstain], top[~abstain]] = True
        primary = np.where(abstain, UNCERTAIN, ids[top])
        confidence = np.where(abstain, proba[rows, top], primary_proba[rows, top])
        return Decision(passed=passed, primary=primary.astype(object), confidence=confidence)
    ratio = proba / thresholds
    buyer = np.array([c in BUYER_SIDE for c in CAUSE_IDS])
    # rank: passing buyer-side causes above passing order causes above everything else
    rank = ratio + np.where(passed, 10.0, 0.0) + np.where(passed & buyer, 10.0, 0.0)
    top = rank.argmax(axis=1)
    primary = np.where(passed.any(axis=1), ids[top], UNCERTAIN)
    confidence = proba[rows, top]
    return Decision(passed=passed, primary=primary.astype(object), confidence=confidence)


def predict(model: Pipeline, texts) -> tuple[np.ndarray, Decision]:
    """Probabilities and decisions of a fitted pipeline for raw texts."""
    steps = model.named_steps
    X = steps["features"].transform(steps["normalize"].transform(texts))
    return predict_features(steps["clf"], X)


def predict_features(clf: CauseClassifier, X) -> tuple[np.ndarray, Decision]:
    proba = clf.predict_proba(X)
    return proba, decide(proba, clf.thresholds_, clf.primary_proba(X), getattr(clf, "abstain_below", 0.0))
