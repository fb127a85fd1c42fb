"""Stage 3 — the model: one scikit-learn ``Pipeline`` from reviews to eight cause probabilities.

    prepare   DataFrame/list → (normalised text, rating): NFKC, OpenCC, noise (``normalize``)
      → features: TF-IDF over jieba words, word bigrams and character n-grams   (``ngrams``)
                  ⊕ cue-lexicon features of ``causes.md``                        (``cues``)
                  ⊕ the star rating, one-hot (low / middling / high / unknown)    (``rating``)
                  ⊕ the mean word2vec vector of its words, learnt from the
                    unlabelled reviews as well (:mod:`pipeline.embed`)            (``vectors``)
      → CauseClassifier: one logistic regression per cause with thresholds tuned on inner
                         folds of the training data, plus a primary-cause head (causes + none):
                         a multinomial logistic regression averaged with a complement naive
                         Bayes over the same features (``primary_nb``).

Every hyper-parameter is a constructor argument of one of these estimators, so ``set_params``
and ``GridSearchCV`` reach all of them (``features__ngrams__char_orders``, ``clf__C`` …) and
``get_params`` is what is logged. The rating branch is there for models that read the rating as
a feature beside the text (``Predictor(ratings="feature")``); the default Predictor reads the
text alone and the rating after it (``Predictor(ratings="after")``: praise under five stars is
no complaint, a complaint keeps its cause whatever the rating), so this branch sees no rating.

:func:`build_baseline` is the plain reference every improvement is measured against (issue 9):
TF-IDF over jieba words and character 1–3-grams, one-vs-rest logistic regression, 0.5
thresholds, primary = most probable cause.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin, clone
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.utils.validation import check_is_fitted

from pipeline.cues import CueFeatures
from pipeline.normalize import normalize_many
from pipeline.segment import segment
from pipeline.taxonomy import CAUSE_IDS

NONE_CLASS = len(CAUSE_IDS)  # index of "none" in the primary head


# --- inputs -----------------------------------------------------------------------------------

def as_frame(X) -> pd.DataFrame:
    """Model input as a DataFrame with ``text`` and ``rating`` (1–5, NaN unknown).

    Accepts a list/Series/array of texts or a DataFrame with a ``text`` column (and optionally
    ``rating``). Column aliases (评价内容, 评分 …) are resolved by the Predictor, not here.
    """
    if isinstance(X, pd.DataFrame):
        if "text" not in X.columns:
            raise ValueError(f"model input needs a 'text' column (columns seen: {', '.join(map(str, X.columns))})")
        # by position: X may carry any index (a fold's rows), the new frame is numbered 0..n-1
        rating = star_ratings(X["rating"]) if "rating" in X.columns else np.nan
        return pd.DataFrame({"text": text_column(X["text"].tolist()), "rating": rating}, index=range(len(X)))
    texts = list(X)
    return pd.DataFrame({"text": text_column(texts), "rating": np.full(len(texts), np.nan)})


def star_ratings(column: pd.Series) -> np.ndarray:
    """A rating column read as scoring reads it (:func:`pipeline.predict.parse_rating`: ``4星``,
    ``★★★★``, ``好评`` …; 1–5, NaN for anything else) — one reading for training and scoring."""
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        r = column.to_numpy(dtype=float)
        return np.where((r >= 1) & (r <= 5), r, np.nan)
    from pipeline.predict import parse_rating

    return np.array([parse_rating(v) for v in column.tolist()], dtype=float)


def text_column(texts: list, index=None) -> pd.Series:
    """Texts as an object column: the model reads them back as lists, which then costs nothing
    (pandas' Arrow strings would be built here and taken apart again, ~8 µs per review)."""
    return pd.Series(texts, dtype=object, index=index)


class Prepare(TransformerMixin, BaseEstimator):
    """Normalise the text column (stage 1) and carry the rating along."""

    def fit(self, X, y=None):
        self.n_features_in_ = 2
        return self

    def transform(self, X):
        check_is_fitted(self, "n_features_in_")
        frame = as_frame(X)
        frame["text"] = text_column(normalize_many(frame["text"].tolist()), frame.index)
        return frame

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.input_tags.two_d_array = False
        return tags


def texts_of(frame: pd.DataFrame) -> list[str]:
    """The normalised texts of a prepared frame (a top-level function: pipelines pickle)."""
    return frame["text"].tolist()


def ratings_of(frame: pd.DataFrame) -> np.ndarray:
    return frame["rating"].to_numpy(dtype=float)


# --- features ---------------------------------------------------------------------------------

def analyze(doc: str, char_orders: tuple[int, ...] = (1, 2, 3), word_bigrams: bool = True) -> list[str]:
    """Features of one normalised review: jieba words, word bigrams, character n-grams (``#``)."""
    words = segment(doc.lower())
    feats = list(words)
    if word_bigrams:
        feats.extend([a + " " + b for a, b in zip(words, words[1:])])
    if char_orders:
        s = "".join(words)
        for n in char_orders:
            feats.extend(["#" + s[i : i + n] for i in range(len(s) - n + 1)])
    return feats


class _Analyzer:
    """Picklable analyzer bound to its settings (a top-level class, never a lambda)."""

    def __init__(self, char_orders, word_bigrams):
        self.char_orders, self.word_bigrams = tuple(char_orders), bool(word_bigrams)

    def __call__(self, doc: str) -> list[str]:
        return analyze(doc, self.char_orders, self.word_bigrams)


class TfidfFeatures(TfidfVectorizer):
    """TF-IDF over jieba words (+ bigrams) and character n-grams of prepared text.

    Fitting is sklearn's own; ``transform`` counts the same features as column ids for a whole
    chunk at once (:mod:`pipeline.fast_ngrams`: one segmentation call, numpy keys for bigrams and
    character n-grams, no feature strings) instead of sklearn's Python loop
    (``tests/test_model.py`` and ``tests/test_speed_equivalence.py`` check the output equals
    sklearn's exactly).
    """

    def __init__(self, *, char_orders=(1, 2, 3), word_bigrams=True, min_df=2, max_features=300_000, sublinear_tf=True):
        self.char_orders = char_orders
        self.word_bigrams = word_bigrams
        super().__init__(min_df=min_df, max_features=max_features, sublinear_tf=sublinear_tf, dtype=np.float32)

    def build_analyzer(self):
        return _Analyzer(self.char_orders, self.word_bigrams)

    def get_params(self, deep=True):
        return {k: getattr(self, k) for k in ("char_orders", "word_bigrams", "min_df", "max_features", "sublinear_tf")}

    def transform(self, raw_documents):
        check_is_fitted(self, msg="The TF-IDF vectorizer is not fitted")
        from pipeline.fast_ngrams import counts_matrix, feature_ids, tables_for

        docs = raw_documents if isinstance(raw_documents, list) else list(raw_documents)
        # the features of analyze() as column ids for the whole chunk, without their strings
        rows, cols = feature_ids(docs, tables_for(self), self.build_analyzer())
        X = counts_matrix(rows, cols, (len(docs), len(self.vocabulary_)), self.dtype)
        return self._tfidf.transform(X, copy=False)

    def transform_with_clauses(self, raw_documents):
        """``(transform(docs), clauses)``: the same matrix, and the term counts of every review's
        clauses taken from the same segmentation (:class:`pipeline.fast_ngrams.ClauseIds`, with
        ``counts`` a CSR matrix, a row per clause); :meth:`weigh` turns rows of it into TF-IDF."""
        check_is_fitted(self, msg="The TF-IDF vectorizer is not fitted")
        from pipeline.fast_ngrams import counts_matrix, feature_ids, tables_for

        docs = raw_documents if isinstance(raw_documents, list) else list(raw_documents)
        rows, cols, clauses = feature_ids(docs, tables_for(self), self.build_analyzer(), clauses=True)
        shape = (len(docs), len(self.vocabulary_))
        X = counts_matrix(rows, cols, shape, self.dtype)
        clauses.counts = counts_matrix(clauses.rows, clauses.cols, (len(clauses.owner), shape[1]), self.dtype)
        clauses.rows = clauses.cols = None
        return self._tfidf.transform(X, copy=False), clauses

    def weigh(self, counts):
        """TF-IDF of a term-count matrix (what :meth:`transform` does after counting)."""
        return self._tfidf.transform(counts, copy=True)


RATING_FEATURES = ("rating_low", "rating_mid", "rating_high", "rating_unknown")


class RatingFeatures(TransformerMixin, BaseEstimator):
    """The star rating one-hot: ≤ ``low_at`` / middling / ≥ ``high_at`` / unknown."""

    def __init__(self, low_at=2.0, high_at=4.0):
        self.low_at, self.high_at = low_at, high_at

    def fit(self, X, y=None):
        self.n_features_in_ = 1
        return self

    def transform(self, X):
        check_is_fitted(self, "n_features_in_")
        r = np.asarray(X, dtype=float)
        known = ~np.isnan(r)
        low = known & (r <= self.low_at)
        high = known & (r >= self.high_at)
        cols = np.column_stack([low, known & ~low & ~high, high, ~known]).astype(np.float64)
        return sp.csr_matrix(cols)

    def get_feature_names_out(self, input_features=None):
        return np.asarray(RATING_FEATURES, dtype=object)


def _branch(select, estimator) -> Pipeline:
    from sklearn.preprocessing import FunctionTransformer

    return Pipeline([("select", FunctionTransformer(select, validate=False)), ("vec", estimator)])


# --- classifier -------------------------------------------------------------------------------

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
    nxt = ps[best + 1] if best + 1 < len(ps) else ps[best] / 2
    return float(max(floor, (ps[best] + nxt) / 2))


class CauseClassifier(ClassifierMixin, BaseEstimator):
    """Multi-label classifier: one L2 logistic regression per cause, tuned thresholds, and a
    multinomial primary-cause head over the eight causes and ``none``.

    ``fit(X, Y, primary=None, sample_weight=None)``: ``Y`` is an ``(n, 8)`` 0/1 indicator in
    ``CAUSE_IDS`` order; ``primary`` the primary cause index (8 = none). Rows weighted below 1
    train the model but are left out when thresholds are tuned (real class balance).
    ``tune_thresholds=False`` keeps ``fixed_threshold`` for every cause (the baseline). Inside a
    :class:`pipeline.predict.Predictor` with the primary stacker, the thresholds are tuned on the
    stacker's inner folds instead (:meth:`thresholds_from`; ``threshold_folds`` is then unused).

    The primary head's probabilities are ``(1 − primary_nb) × logistic regression +
    primary_nb × complement naive Bayes`` (:class:`sklearn.naive_bayes.ComplementNB`,
    ``primary_nb_alpha``) over the same features. The two err differently: naive Bayes weighs
    every n-gram of a review by its own evidence, where the regression spreads weight over
    correlated n-grams of the categories it was trained on. Screened on the same five folds and on
    nine held-out domains (README, "Experiments"): in-domain +0.007, held-out domains +0.010.
    """

    primary_solver = "lbfgs"  # what a classifier pickled before the parameter existed used
    primary_nb = 0.0  # and what one pickled before the naive Bayes half existed used
    primary_nb_alpha = 0.1

    def __init__(self, C=10.0, class_weight="balanced", tune_thresholds=True, threshold_folds=5, threshold_floor=0.15,
                 fixed_threshold=0.5, primary_C=10.0, primary_class_weight="balanced", primary_blend=1.0,
                 primary_solver="newton-cg", primary_nb=0.5, primary_nb_alpha=0.1, seed=13):
        self.C = C
        self.primary_nb = primary_nb
        self.primary_nb_alpha = primary_nb_alpha
        self.primary_solver = primary_solver
        self.primary_class_weight = primary_class_weight
        self.primary_blend = primary_blend
        self.class_weight = class_weight
        self.tune_thresholds = tune_thresholds
        self.threshold_folds = threshold_folds
        self.threshold_floor = threshold_floor
        self.fixed_threshold = fixed_threshold
        self.primary_C = primary_C
        self.seed = seed

    def _base(self):
        return LogisticRegression(C=self.C, class_weight=self.class_weight, solver="liblinear", max_iter=1000)

    def _fit_weights(self, X, Y, w):
        from joblib import Parallel, delayed

        k = Y.shape[1]
        coef = np.zeros((k, X.shape[1]))
        intercept = np.full(k, -20.0)  # a cause never seen in training is never predicted
        todo = [j for j in range(k) if 0 < Y[:, j].sum() < len(Y)]
        # the causes' regressions side by side on the machine's cores (up to 2) for a large
        # training set — liblinear gives the same weights in any process; inside a worker of the
        # stacker's inner folds joblib runs them one after the other
        jobs = min(2, os.cpu_count() or 1) if X.shape[0] >= PARALLEL_FROM else 1
        if jobs > 1 and sp.issparse(X):
            # what the first fit would do in place anyway; the workers get a read-only copy
            X.sum_duplicates()
        fitted = Parallel(n_jobs=jobs)(delayed(_fit_one)(self._base(), X, Y[:, j], w) for j in todo)
        for j, (c, b) in zip(todo, fitted):
            coef[j], intercept[j] = c, b
        return coef, intercept

    def fit(self, X, Y, primary=None, sample_weight=None):
        Y = np.asarray(Y, dtype=int)
        if Y.ndim != 2 or Y.shape[1] != len(CAUSE_IDS):
            raise ValueError(f"Y must be an (n, {len(CAUSE_IDS)}) indicator matrix, got shape {Y.shape}")
        if len(Y) == 0 or Y.sum() == 0:
            raise ValueError("no labelled cause in the training data: every row is 'none' or empty")
        w = np.ones(len(Y)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
        self.classes_ = np.asarray(CAUSE_IDS)
        self.n_features_in_ = X.shape[1]
        self.coef_, self.intercept_ = self._fit_weights(X, Y, w)
        if self.tune_thresholds:
            self.thresholds_ = self._tune_thresholds(X, Y, w)
        else:
            self.thresholds_ = np.full(Y.shape[1], float(self.fixed_threshold))
        self.primary_ = None
        if primary is not None and self.primary_C and len(np.unique(primary)) > 1:
            cw = None if self.primary_class_weight in (None, "none") else self.primary_class_weight
            # newton-cg: ~7 iterations where lbfgs needs ~130 on these features, 4× faster, the same
            # decisions on 99.9 % of held-out reviews (measured on a cross-validation fold)
            self.primary_ = LogisticRegression(C=self.primary_C, class_weight=cw, solver=self.primary_solver, max_iter=3000)
            self.primary_.fit(X, np.asarray(primary), sample_weight=w)
            if self.primary_nb:
                from sklearn.naive_bayes import ComplementNB

                counts = X.maximum(0) if sp.issparse(X) else np.maximum(X, 0)  # counts: never negative
                nb = ComplementNB(alpha=self.primary_nb_alpha).fit(counts, np.asarray(primary), sample_weight=w)
                self.primary_nb_log_ = nb.feature_log_prob_.T.copy()  # (features, classes of the head)
        return self

    def _head_proba(self, X) -> np.ndarray:
        """The primary head over the classes it saw: regression and naive Bayes, averaged."""
        p = self.primary_.predict_proba(X)
        if self.primary_nb and getattr(self, "primary_nb_log_", None) is not None:
            # ComplementNB.predict_proba without its checks: softmax of X · log θ (no class prior
            # term: ComplementNB adds one only when a single class was seen)
            jll = np.asarray(X @ self.primary_nb_log_)
            jll -= jll.max(axis=1, keepdims=True)
            nb = np.exp(jll)
            nb /= nb.sum(axis=1, keepdims=True)
            p = (1.0 - self.primary_nb) * p + self.primary_nb * nb
        return p

    def _tune_thresholds(self, X, Y, w):
        k = Y.shape[1]
        strata = strata_of(Y)
        folds = min(self.threshold_folds, np.bincount(strata).max())
        if folds < 2:
            return np.full(k, 0.5)
        oof = np.zeros(Y.shape)
        splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=self.seed)
        for tr, te in splitter.split(np.zeros(len(Y)), clip_strata(strata, folds)):
            coef, intercept = self._fit_weights(X[tr], Y[tr], w[tr])
            oof[te] = _sigmoid(X[te] @ coef.T + intercept)
        return self.thresholds_from(Y, oof, w)

    def thresholds_from(self, Y, oof, w) -> np.ndarray:
        """Per-cause thresholds tuned on out-of-fold probabilities ``oof`` of the training rows
        (rows weighted below 1 — authored reviews — left out: the real class balance)."""
        Y, w = np.asarray(Y), np.asarray(w, dtype=float)
        full = w >= 1.0
        if Y[full].sum(axis=0).min() == 0:
            full = np.ones(len(Y), bool)
        return np.array([_best_threshold(Y[full, j], oof[full, j], self.threshold_floor) for j in range(Y.shape[1])])

    def decision_function(self, X):
        check_is_fitted(self, "coef_")
        return np.asarray(X @ self.coef_.T) + self.intercept_

    def predict_proba(self, X):
        """``(n, 8)`` independent per-cause probabilities (rows need not sum to 1)."""
        return _sigmoid(self.decision_function(X))

    def primary_proba(self, X, proba=None):
        """``(n, 9)`` probabilities of the primary cause (eight causes, then none).

        Without a primary head: the per-cause probabilities renormalised, ``none`` = the
        probability that no cause applies (product of complements). ``proba``: the rows'
        :meth:`predict_proba` when the caller has it already.
        """
        check_is_fitted(self, "coef_")
        head = None
        if self.primary_ is not None:
            head = np.zeros((X.shape[0], len(CAUSE_IDS) + 1))
            head[:, self.primary_.classes_] = self._head_proba(X)
            if self.primary_blend == 1.0:
                return head
        p = self.predict_proba(X) if proba is None else proba
        none = np.prod(1 - p, axis=1, keepdims=True)
        ovr = np.hstack([p, none])
        ovr /= ovr.sum(axis=1, keepdims=True)
        if head is None:
            return ovr
        return self.primary_blend * head + (1 - self.primary_blend) * ovr

    def predict(self, X):
        return (self.predict_proba(X) >= self.thresholds_).astype(int)


#: training sets of this many reviews or more fit the causes' regressions in parallel
PARALLEL_FROM = 5000


def _fit_one(base, X, y, w):
    lr = clone(base).fit(X, y, sample_weight=w)
    return lr.coef_[0], lr.intercept_[0]


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-np.clip(z, -35, 35)))


def strata_of(Y: np.ndarray) -> np.ndarray:
    """A stratum per row for splitting: its rarest cause (or 'none')."""
    freq = Y.sum(axis=0)
    order = np.argsort(freq)
    out = np.full(len(Y), Y.shape[1])
    for j in order[::-1]:
        out[Y[:, j] == 1] = j
    return out


def clip_strata(strata: np.ndarray, folds: int) -> np.ndarray:
    """Merge strata too small to split into a common one, so StratifiedKFold accepts them."""
    counts = np.bincount(strata)
    return np.where(counts[strata] < folds, -1, strata) + 1


# --- builders ---------------------------------------------------------------------------------

def build_model(cue_weight: float = 0.2, rating_weight: float = 1.0, vector_weight: float = 1.0, **clf) -> Pipeline:
    """The project model as one sklearn Pipeline; raw reviews (texts or a text/rating frame) in.
    ``vector_weight``: weight of the word-vector features (:mod:`pipeline.embed`), which are
    switched on and off by their own ``dim`` (off by default)."""
    from pipeline.embed import WordVectors

    features = FeatureUnion(
        [
            ("ngrams", _branch(texts_of, TfidfFeatures())),
            ("cues", _branch(texts_of, CueFeatures())),
            ("rating", _branch(ratings_of, RatingFeatures())),
            ("vectors", _branch(texts_of, WordVectors())),
        ],
        transformer_weights={"ngrams": 1.0, "cues": cue_weight, "rating": rating_weight, "vectors": vector_weight},
    )
    return Pipeline([("prepare", Prepare()), ("features", features), ("clf", CauseClassifier(**clf))])


def build_baseline() -> Pipeline:
    """The plain baseline of issue 9: TF-IDF (jieba words + char 1–3-grams, sublinear tf),
    one-vs-rest ``LogisticRegression(C=10, class_weight="balanced")``, 0.5 thresholds, primary =
    most probable cause. Same normalisation and tokens as the project model; no cues, no rating,
    no tuned thresholds, no primary head."""
    tfidf = TfidfFeatures(char_orders=(1, 2, 3), word_bigrams=False, min_df=1, max_features=None)
    return Pipeline([
        ("prepare", Prepare()),
        ("features", FeatureUnion([("ngrams", _branch(texts_of, tfidf))])),
        ("clf", CauseClassifier(C=10.0, class_weight="balanced", tune_thresholds=False, fixed_threshold=0.5, primary_C=None)),
    ])


def union_transform(union: FeatureUnion, frame: pd.DataFrame, given: dict | None = None):
    """``union.transform(frame)`` — each branch's output times its weight, side by side — with
    the branches named in ``given`` taken as computed already (their output before weighting)."""
    weights = union.transformer_weights or {}
    parts = []
    for name, branch in union.transformer_list:
        out = given[name] if given and name in given else branch.transform(frame)
        w = weights.get(name)
        parts.append(out if w is None else out * w)
    if any(sp.issparse(p) for p in parts):
        return sp.hstack(parts).tocsr()
    return np.hstack(parts)


def feature_names(model: Pipeline) -> np.ndarray:
    """Names of the model's features in column order (``ngrams`` terms, ``cue:…``, ``rating_…``)."""
    names = []
    for name, branch in model.named_steps["features"].transformer_list:
        vec = branch.named_steps["vec"]
        if isinstance(vec, TfidfVectorizer):
            vocab = vec.vocabulary_
            terms = np.empty(len(vocab), dtype=object)
            for term, j in vocab.items():
                terms[j] = term
            names.append(terms)
        else:
            names.append(np.asarray(vec.get_feature_names_out(), dtype=object))
    return np.concatenate(names)


def fit_model(model: Pipeline, X, Y, primary=None, sample_weight=None) -> Pipeline:
    """Fit a pipeline from :func:`build_model` / :func:`build_baseline` on raw reviews."""
    return model.fit(as_frame(X), Y, clf__primary=primary, clf__sample_weight=sample_weight)
