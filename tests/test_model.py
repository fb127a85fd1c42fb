import pickle

import joblib
import numpy as np
import pandas as pd

from pipeline.model import CauseClassifier, RatingFeatures, _best_threshold, analyze, build_baseline, fit_model
from pipeline.taxonomy import CAUSE_IDS


def test_analyze_words_bigrams_and_chars():
    assert analyze("色差太大", (2, 3)) == ["色差", "太", "大", "色差 太", "太 大", "#色差", "#差太", "#太大", "#色差太", "#差太大"]
    assert analyze("色差太大", (1,), word_bigrams=False) == ["色差", "太", "大", "#色", "#差", "#太", "#大"]
    assert analyze("色差", ()) == ["色差", ]


def test_pickle_round_trip(tiny_model, tmp_path):
    texts = ["返我50块就改好评", "快递太慢了", "東西壞了"]
    before = tiny_model.predict_proba(texts)
    again = pickle.loads(pickle.dumps(tiny_model))
    np.testing.assert_allclose(again.predict_proba(texts), before)
    joblib.dump(tiny_model, tmp_path / "m.joblib")
    np.testing.assert_allclose(joblib.load(tmp_path / "m.joblib").predict_proba(texts), before)


def test_tiny_model_learns_the_fixture(tiny_model, fixture_frame):
    out = tiny_model.predict(fixture_frame["text"].tolist())
    assert (out["cause"].to_numpy() == fixture_frame["primary"].to_numpy()).mean() >= 0.9


def test_every_hyper_parameter_reachable_by_set_params(tiny_model):
    params = tiny_model.get_params(deep=True)
    for key in ("model__clf__C", "model__clf__primary_C", "model__features__ngrams__vec__char_orders",
                "model__features__ngrams__vec__min_df", "flag_at", "campaign_weight", "high_rating", "abstain_below"):
        assert key in params
    assert "word_bigrams" not in {k.rsplit("__", 1)[-1] for k in params if "clf" in k}


def test_rating_features_one_hot():
    X = RatingFeatures().fit([1.0]).transform(np.array([1.0, 3.0, 5.0, np.nan, 2.0, 4.0]))
    assert X.toarray().tolist() == [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1], [1, 0, 0, 0], [0, 0, 1, 0]]


def test_model_input_reads_ratings_as_scoring_does():
    """Training reads a rating column the way scoring does (parse_rating): 4星 is 4, ★★ is 2,
    好评 is 5; a number outside 1–5 or any other text is unknown — in text and numeric columns."""
    from pipeline.model import as_frame
    from pipeline.predict import parse_rating

    cells = ["4星", "★★", "好评", "５", "10", "0.5", "4/10", "很好", None, 3]
    got = as_frame(pd.DataFrame({"text": ["x"] * len(cells), "rating": cells}))["rating"].to_numpy()
    np.testing.assert_array_equal(got, [4.0, 2.0, 5.0, 5.0, np.nan, np.nan, np.nan, np.nan, np.nan, 3.0])
    np.testing.assert_array_equal(got, [parse_rating(c) for c in cells])
    numeric = as_frame(pd.DataFrame({"text": ["x"] * 5, "rating": [1, 5, 0, 9, np.nan]}))["rating"].to_numpy()
    np.testing.assert_array_equal(numeric, [1.0, 5.0, np.nan, np.nan, np.nan])


def test_baseline_is_the_plain_recipe(fixture_frame):
    from pipeline.data import indicator

    base = fit_model(build_baseline(), fixture_frame["text"].tolist(), indicator(fixture_frame["labels"]))
    clf = base.named_steps["clf"]
    assert clf.C == 10.0 and clf.class_weight == "balanced" and clf.primary_ is None
    np.testing.assert_array_equal(clf.thresholds_, np.full(8, 0.5))
    assert base.named_steps["features"].transformer_list[0][1].named_steps["vec"].char_orders == (1, 2, 3)


def test_best_threshold_separates():
    y = np.array([0, 0, 1, 1])
    p = np.array([0.1, 0.2, 0.7, 0.8])
    assert 0.2 < _best_threshold(y, p, floor=0.0) < 0.7


def test_unseen_cause_never_predicted():
    from scipy import sparse

    X = sparse.csr_matrix(np.eye(6))
    Y = np.zeros((6, 8), int)
    Y[:3, 0] = 1
    Y[3:, 3] = 1
    clf = CauseClassifier(threshold_folds=2).fit(X, Y)
    assert clf.predict_proba(X)[:, CAUSE_IDS.index("prank")].max() < 1e-6


def test_all_none_labels_refused():
    import pytest
    from scipy import sparse

    with pytest.raises(ValueError, match="no labelled cause"):
        CauseClassifier().fit(sparse.csr_matrix(np.eye(3)), np.zeros((3, 8), int))


def test_fast_tfidf_equals_sklearn(fixture_frame):
    from sklearn.feature_extraction.text import TfidfVectorizer

    from pipeline.model import TfidfFeatures, _Analyzer
    from pipeline.normalize import normalize_many

    texts = normalize_many(fixture_frame["text"]) + ["没见过的词语组合", "", "色差色差色差 色差"]
    fast = TfidfFeatures(char_orders=(1, 2, 3), min_df=1).fit(texts[:20])
    ref = TfidfVectorizer(analyzer=_Analyzer((1, 2, 3), True), sublinear_tf=True, min_df=1, dtype=np.float32).fit(texts[:20])
    a, b = fast.transform(texts), ref.transform(texts)
    assert a.shape == b.shape
    np.testing.assert_array_equal(a.toarray(), b.toarray())


def _head_data(seed=0):
    rng = np.random.default_rng(seed)
    import scipy.sparse as sp

    X = sp.random(120, 40, density=0.2, random_state=seed, format="csr")
    primary = rng.integers(0, 3, 120)
    primary[X[:, 0].toarray().ravel() > 0.5] = 8  # some "none" rows, tied to a feature
    Y = np.zeros((120, len(CAUSE_IDS)), int)
    Y[primary < 8, primary[primary < 8]] = 1
    return X, Y, primary


def test_primary_head_averages_regression_and_complement_naive_bayes():
    """The head is (1 − w)·logistic regression + w·ComplementNB, the latter exactly sklearn's."""
    from sklearn.naive_bayes import ComplementNB

    X, Y, primary = _head_data()
    w = np.linspace(0.5, 1.0, len(primary))
    clf = CauseClassifier(tune_thresholds=False, primary_nb=0.3, primary_nb_alpha=0.2).fit(X, Y, primary, sample_weight=w)
    nb = ComplementNB(alpha=0.2).fit(X, primary, sample_weight=w)
    expected = np.zeros((X.shape[0], len(CAUSE_IDS) + 1))
    expected[:, clf.primary_.classes_] = 0.7 * clf.primary_.predict_proba(X) + 0.3 * nb.predict_proba(X)
    np.testing.assert_allclose(clf.primary_proba(X), expected, atol=1e-10)
    np.testing.assert_allclose(clf.primary_proba(X).sum(axis=1), 1.0)
    # primary_nb=0 is the regression alone; so is a classifier pickled before the parameter existed
    alone = CauseClassifier(tune_thresholds=False, primary_nb=0.0).fit(X, Y, primary, sample_weight=w)
    np.testing.assert_allclose(alone.primary_proba(X)[:, alone.primary_.classes_], alone.primary_.predict_proba(X))
    state = clf.__getstate__()
    for key in ("primary_nb", "primary_nb_alpha", "primary_nb_log_"):
        state.pop(key)
    old = CauseClassifier.__new__(CauseClassifier)
    old.__setstate__(state)
    np.testing.assert_allclose(old.primary_proba(X)[:, clf.primary_.classes_], clf.primary_.predict_proba(X))
    assert old.get_params()["primary_nb"] == 0.0


def test_primary_head_naive_bayes_ignores_negative_features():
    """Naive Bayes takes counts: a negative feature (a signed branch) is read as 0 in fitting
    instead of failing the fit."""
    X, Y, primary = _head_data(1)
    signed = X.copy()
    signed.data[::7] *= -1
    clf = CauseClassifier(tune_thresholds=False).fit(signed, Y, primary)
    assert np.isfinite(clf.primary_proba(signed)).all()


def test_causes_regressions_in_parallel_give_the_same_weights(monkeypatch):
    """A large training set fits the per-cause regressions on two cores: the same weights as one
    after the other (liblinear is deterministic), and a cause never seen keeps its -20 bias."""
    import scipy.sparse as sp

    import pipeline.model as model

    X, Y, primary = _head_data()
    X = sp.csr_matrix((X.data, X.indices, X.indptr), shape=X.shape)
    X.has_sorted_indices = False
    X.indices[X.indptr[0]:X.indptr[1]] = X.indices[X.indptr[0]:X.indptr[1]][::-1]  # unsorted, as hstack leaves them
    X.data[X.indptr[0]:X.indptr[1]] = X.data[X.indptr[0]:X.indptr[1]][::-1]
    w = np.linspace(0.5, 1.0, len(primary))
    serial = CauseClassifier()._fit_weights(X.copy(), Y, w)
    monkeypatch.setattr(model, "PARALLEL_FROM", 10)
    parallel = CauseClassifier()._fit_weights(X, Y, w)  # a read-only copy in each worker
    np.testing.assert_array_equal(serial[0], parallel[0])
    np.testing.assert_array_equal(serial[1], parallel[1])
    assert (parallel[1][Y.sum(axis=0) == 0] == -20.0).all() and (Y.sum(axis=0) == 0).any()
