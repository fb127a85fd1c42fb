"""The primary cause, by stacking: which of a review's causes the buyer names first or dwells on.

``causes.md`` defines the primary cause as "the one the buyer complains about most, or the first
one when they weigh the same". A bag of n-grams cannot see *first* or *most*: both live in the
order and extent of the clauses. :class:`PrimaryStack` therefore decides the primary cause from

- the review's eight per-cause probabilities and the classifier's primary head (9 classes);
- per cause, from the same classifier applied to each clause of the review (split at
  punctuation, as the evidence is): whether the cause is the earliest one named (a clause with
  probability ≥ 0.5), the relative position of its first such clause, its share of the summed
  clause probabilities (how much the buyer dwells on it) and its best clause;
- the star rating (unknown / ≤ 2 / 3 / ≥ 4) and the number of clauses,

through a small multinomial logistic regression (eight causes and ``none``). The regression is
trained on **out-of-fold** outputs of the classifier (``folds`` inner folds of the training
data, each a clone of the fitted classifier without threshold tuning), so it learns how the
classifier behaves on reviews it has not seen. Measured by 5-fold cross-validation against the
head alone: README, "Measured figures".

A review of one clause costs nothing extra (its clause is the review); a longer review is
scored once more clause by clause, through the same fitted features, when its primary cause
is in question (``gate``: a second cause is at all likely) — the others are taken as one clause,
in training as in scoring.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.utils.validation import check_is_fitted

from pipeline.evidence import _CLAUSE
from pipeline.model import NONE_CLASS, clip_strata, text_column
from pipeline.taxonomy import CAUSE_IDS

K = len(CAUSE_IDS)
ON = 0.5  # a clause names a cause when its probability reaches this


class Clauses:
    """The clauses of the reviews that have more than one, in order: ``texts``, the review each
    belongs to (``owner``), its position in the review (``pos``) and clauses per review (``count``).
    ``keep``: only these reviews are split (the others count as one clause)."""

    def __init__(self, texts: list[str], keep: np.ndarray | None = None):
        out, owner, pos = [], [], []
        count = np.ones(len(texts), dtype=np.int64)
        rows = range(len(texts)) if keep is None else np.flatnonzero(keep).tolist()
        for i in rows:
            parts = _CLAUSE.findall(texts[i])
            if len(parts) > 1:
                out.extend(parts)
                owner.extend([i] * len(parts))
                pos.extend(range(len(parts)))
                count[i] = len(parts)
        self.texts, self.count = out, count
        self.owner, self.pos = np.asarray(owner, dtype=np.int64), np.asarray(pos, dtype=np.int64)

    def only(self, keep: np.ndarray) -> tuple["Clauses", np.ndarray]:
        """These clauses with only the reviews of ``keep`` split, and which clauses stay."""
        out = Clauses([])
        stay = keep[self.owner] if len(self.owner) else np.zeros(0, dtype=bool)
        out.texts = [t for t, k in zip(self.texts, stay.tolist()) if k]
        out.owner, out.pos = self.owner[stay], self.pos[stay]
        out.count = np.where(keep, self.count, 1)
        return out, stay

    def frame(self) -> pd.DataFrame:
        """The clauses as prepared reviews of unknown rating (the rating is a feature of its own)."""
        return pd.DataFrame({"text": text_column(self.texts), "rating": np.full(len(self.texts), np.nan)})


class ClauseSource:
    """The clause features of a chunk's reviews, counted in the same pass as the reviews' own
    (:meth:`pipeline.model.TfidfFeatures.transform_with_clauses`): :meth:`matrix` gives what
    ``features.transform(clauses.frame())`` gives for the clauses of the reviews in ``keep``
    without segmenting them again. Only the n-grams come from the review pass; cues and rating
    are computed on the clause texts as before."""

    def __init__(self, ids):
        self.counts, self.owner, self.count = ids.counts, ids.owner, ids.count

    def matrix(self, model, clauses: "Clauses", keep: np.ndarray):
        from pipeline.model import union_transform

        union = model.named_steps["features"]
        vec = dict(union.transformer_list)["ngrams"].named_steps["vec"]
        rows = np.flatnonzero(keep[self.owner]) if len(self.owner) else np.zeros(0, dtype=np.int64)
        return union_transform(union, clauses.frame(), {"ngrams": vec.weigh(self.counts[rows])})


def features_with_clauses(model, prepared: pd.DataFrame):
    """``(features.transform(prepared), ClauseSource or None)`` — None when the model's n-gram
    branch cannot count clauses (a model of another shape): the caller cuts them itself."""
    from pipeline.model import union_transform

    union = model.named_steps["features"]
    branches = dict(union.transformer_list)
    ngrams = branches.get("ngrams")
    vec = ngrams.named_steps.get("vec") if ngrams is not None and hasattr(ngrams, "named_steps") else None
    if vec is None or not hasattr(vec, "transform_with_clauses"):
        return union.transform(prepared), None
    Xn, ids = vec.transform_with_clauses(ngrams.named_steps["select"].transform(prepared))
    return union_transform(union, prepared, {"ngrams": Xn}), ClauseSource(ids)


def in_question(proba: np.ndarray, gate: float) -> np.ndarray:
    """The reviews whose primary cause is in question: a second cause reaches ``gate``."""
    if proba.shape[1] < 2:
        return np.zeros(len(proba), dtype=bool)
    return np.partition(proba, -2, axis=1)[:, -2] >= gate


def _log(p: np.ndarray) -> np.ndarray:
    return np.log(np.clip(p, 1e-6, 1.0))


def stack_features(proba: np.ndarray, head: np.ndarray, clauses: Clauses, clause_proba: np.ndarray,
                   ratings: np.ndarray) -> np.ndarray:
    """``(n, 54)`` inputs of the stacker (see the module's docstring); a review of one clause
    is its own clause."""
    n = len(proba)
    multi = clauses.count > 1
    first = np.full((n, K), np.inf)
    dwell, best = np.zeros((n, K)), np.zeros((n, K))
    one = np.flatnonzero(~multi)
    first[one] = np.where(proba[one] >= ON, 0.0, np.inf)
    dwell[one], best[one] = proba[one], proba[one]
    if len(clauses.owner):
        for j in range(K):
            hit = clause_proba[:, j] >= ON
            np.minimum.at(first[:, j], clauses.owner[hit], clauses.pos[hit].astype(float))
            np.add.at(dwell[:, j], clauses.owner, clause_proba[:, j])
            np.maximum.at(best[:, j], clauses.owner, clause_proba[:, j])
    named = np.isfinite(first)
    earliest = named & (first == first.min(axis=1, keepdims=True))
    where = np.where(named, first / clauses.count[:, None], 1.5)
    share = dwell / (dwell.sum(axis=1, keepdims=True) + 1e-9)
    r = np.asarray(ratings, dtype=float)
    with np.errstate(invalid="ignore"):
        rating = np.stack([np.isnan(r), r <= 2, r == 3, r >= 4], axis=1).astype(float)
    return np.hstack([_log(proba), _log(head), earliest, where, share, best, rating,
                      np.log1p(clauses.count)[:, None]])


class PrimaryStack(BaseEstimator):
    """Stacked primary-cause decision over a fitted model :func:`pipeline.model.build_model`.

    ``fit(model, prepared, Y, primary, sample_weight)`` with the model already fitted on the same
    rows; ``primary_proba(model, prepared, X, proba)`` → ``(n, 9)`` (eight causes, then none).
    ``folds`` inner folds (fewer when a class is too small; none at all → the head decides),
    ``C`` of the regression, ``n_jobs`` processes for the inner fits (``None``: up to 2).
    ``gate``: a review is scored clause by clause only when its primary cause is in question —
    a second cause's probability reaches ``gate`` (:func:`in_question`); 0 splits every review of
    several clauses. The same rule holds in training and scoring, so the regression learns what
    it will see.
    """

    gate = 0.0  # what a stacker pickled before the gate existed did

    def __init__(self, folds=5, C=1.0, n_jobs=None, seed=13, gate=0.2):
        self.folds = folds
        self.C = C
        self.n_jobs = n_jobs
        self.seed = seed
        self.gate = gate

    @staticmethod
    def _clause_matrix(model, clauses: Clauses, source: ClauseSource | None, keep: np.ndarray):
        """The features of the clauses of the reviews in ``keep`` (None when there are none):
        from ``source`` when it cut the reviews as ``clauses`` did, else from the clause texts."""
        if not clauses.texts:
            return None
        if source is not None and np.array_equal(np.where(keep, source.count, 1), clauses.count):
            return source.matrix(model, clauses, keep)
        return model.named_steps["features"].transform(clauses.frame())  # no source (never seen otherwise)

    def _clause_proba(self, model, clauses: Clauses, source: ClauseSource | None = None,
                      keep: np.ndarray | None = None) -> np.ndarray:
        Xc = self._clause_matrix(model, clauses, source, keep)
        return np.zeros((0, K)) if Xc is None else model.named_steps["clf"].predict_proba(Xc)

    def out_of_fold(self, model, prepared: pd.DataFrame, Y, primary, sample_weight=None):
        """The classifier's out-of-fold outputs on the training rows — ``(proba, head, clauses,
        clause_proba)`` with every review of several clauses split — or None when the classes
        are too small for inner folds."""
        return self._out_of_fold(model, prepared, Y, primary, sample_weight)[0]

    def _out_of_fold(self, model, prepared: pd.DataFrame, Y, primary, sample_weight=None, final=None):
        """:meth:`out_of_fold`, and the classifier ``final`` fitted on every row in the same pool
        of processes (None when not asked for): ``(outputs, fitted final)``. Five inner fits and
        the final one are six independent fits of the same shape; on two cores they run three
        and three, where the inner folds alone leave a core idle in their last round."""
        from joblib import Parallel, delayed

        clf = model.named_steps["clf"]
        primary = np.asarray(primary)
        w = np.ones(len(primary)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
        folds = min(self.folds, int(np.bincount(primary).max()))
        X, source = features_with_clauses(model, prepared)
        if folds < 2 or len(np.unique(primary)) < 2:
            return None, (None if final is None else _fit_all(final, X, np.asarray(Y), primary, w))
        clauses = Clauses(prepared["text"].tolist())
        Xc = self._clause_matrix(model, clauses, source, np.ones(len(prepared), dtype=bool))
        splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=self.seed)
        parts = list(splitter.split(np.zeros(len(primary)), clip_strata(primary, folds)))
        inner = clone(clf).set_params(tune_thresholds=False)
        jobs = self.n_jobs or min(2, os.cpu_count() or 1)
        tasks = [delayed(_fold)(inner, X, np.asarray(Y), primary, w, tr, te, Xc, clauses.owner) for tr, te in parts]
        if final is not None:  # the largest fit first, so that it never runs alone at the end
            tasks.insert(0, delayed(_fit_all)(final, X, np.asarray(Y), primary, w))
        results = Parallel(n_jobs=min(jobs, len(tasks)))(tasks)
        fitted = results.pop(0) if final is not None else None
        proba, head = np.zeros((len(primary), K)), np.zeros((len(primary), K + 1))
        clause_proba = np.zeros((len(clauses.texts), K))
        for (tr, te), (p, h, cp) in zip(parts, results):
            proba[te], head[te] = p, h
            if Xc is not None:
                clause_proba[np.isin(clauses.owner, te)] = cp
        return (proba, head, clauses, clause_proba), fitted

    def features(self, proba, head, clauses: Clauses, clause_proba, ratings) -> np.ndarray:
        """The regression's inputs from outputs where every review of several clauses was split:
        the reviews not in question (``gate``) count as one clause."""
        gated, stay = clauses.only(in_question(proba, self.gate))
        return stack_features(proba, head, gated, clause_proba[stay], ratings)

    def fit(self, model, prepared: pd.DataFrame, Y, primary, sample_weight=None):
        self.fit_beside(model, prepared, Y, primary, sample_weight)
        return self

    def fit_beside(self, model, prepared: pd.DataFrame, Y, primary, sample_weight=None, final=None):
        """Fit the stacker on the out-of-fold outputs of ``model``'s classifier (``model``'s
        features fitted; its classifier need not be) and, in the same pool of processes, the
        classifier ``final`` on every row. Returns ``(fitted final or None, the out-of-fold
        per-cause probabilities or None)`` — the Predictor tunes the thresholds on the latter."""
        w = None if sample_weight is None else np.asarray(sample_weight, dtype=float)
        self.lr_ = None
        outputs, fitted = self._out_of_fold(model, prepared, Y, primary, w, final)
        if outputs is None:
            return fitted, None
        F = self.features(*outputs, prepared["rating"].to_numpy(dtype=float))
        # newton-cholesky: 54 inputs make a 486 × 486 Hessian — 8 exact Newton steps, ~4 s, to a
        # lower objective than lbfgs reached in 1,250 iterations and ~35 s (lbfgs stopped short)
        self.lr_ = LogisticRegression(C=self.C, solver="newton-cholesky", max_iter=3000).fit(
            F, np.asarray(primary), sample_weight=w)
        return fitted, outputs[0]

    def primary_proba(self, model, prepared: pd.DataFrame, X, proba: np.ndarray,
                      source: ClauseSource | None = None) -> np.ndarray:
        """``(n, 9)`` primary-cause probabilities of prepared reviews whose features are ``X``
        (and ``source`` their clauses' n-grams, from :func:`features_with_clauses`)."""
        check_is_fitted(self, "lr_")
        head = model.named_steps["clf"].primary_proba(X, proba)
        if self.lr_ is None:
            return head
        keep = in_question(proba, self.gate)
        clauses = Clauses(prepared["text"].tolist(), keep=keep)
        F = stack_features(proba, head, clauses, self._clause_proba(model, clauses, source, keep),
                           prepared["rating"].to_numpy(dtype=float))
        out = np.zeros((len(proba), NONE_CLASS + 1))
        out[:, self.lr_.classes_] = self.lr_.predict_proba(F)
        return out


def _fit_all(clf, X, Y, primary, w):
    return clone(clf).fit(X, Y, primary, w)


def _fold(clf, X, Y, primary, w, tr, te, Xc, owner):
    c = clone(clf).fit(X[tr], Y[tr], primary[tr], w[tr])
    cp = c.predict_proba(Xc[np.isin(owner, te)]) if Xc is not None else None
    return c.predict_proba(X[te]), c.primary_proba(X[te]), cp
