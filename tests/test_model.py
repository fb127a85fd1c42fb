import pickle

import joblib
import numpy as np

from pipeline.model import CauseClassifier, _best_threshold, analyze, decide, predict
from pipeline.taxonomy import CAUSE_IDS, UNCERTAIN


def test_analyze_words_bigrams_and_chars():
    assert analyze("色差太大") == ["色差", "太", "大", "色差 太", "太 大", "#色差", "#差太", "#太大", "#色差太", "#差太大"]
    assert analyze("色差太大", chars=(2,)) == ["色差", "太", "大", "色差 太", "太 大", "#色差", "#差太", "#太大"]
    assert analyze("色差", chars=()) == ["色差"]


def test_pickle_round_trip(tiny_model, tmp_path):
    texts = ["返我50块就改好评", "快递太慢了", "東西壞了"]
    before = tiny_model.predict_proba(texts)
    again = pickle.loads(pickle.dumps(tiny_model))
    np.testing.assert_allclose(again.predict_proba(texts), before)
    joblib.dump(tiny_model, tmp_path / "m.joblib")
    np.testing.assert_allclose(joblib.load(tmp_path / "m.joblib").predict_proba(texts), before)


def test_tiny_model_learns_the_fixture(tiny_model, fixture_frame):
    _, d = predict(tiny_model, fixture_frame["text"].tolist())
    accuracy = (d.primary == fixture_frame["primary"].to_numpy()).mean()
    assert accuracy >= 0.9


def test_decide_rules():
    t = np.full(8, 0.5)
    p = np.array(
        [
            [0.9, 0.1, 0.1, 0.6, 0.1, 0.1, 0.1, 0.1],  # expectation_gap furthest above threshold
            [0.1, 0.1, 0.1, 0.9, 0.1, 0.1, 0.1, 0.55],  # extortion passes: buyer-side takes precedence
            [0.3, 0.2, 0.1, 0.4, 0.1, 0.1, 0.1, 0.1],  # nothing passes: abstain
        ]
    )
    d = decide(p, t)
    assert list(d.primary) == ["expectation_gap", "extortion", UNCERTAIN]
    assert d.passed[0].tolist() == [True, False, False, True, False, False, False, False]
    np.testing.assert_allclose(d.confidence, [0.9, 0.55, 0.4])


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


def test_fast_tfidf_equals_sklearn(fixture_frame):
    from sklearn.feature_extraction.text import TfidfVectorizer

    from pipeline.model import TfidfFeatures
    from pipeline.normalize import normalize_many

    texts = normalize_many(fixture_frame["text"]) + ["没见过的词语组合", "", "色差色差色差 色差"]
    fast = TfidfFeatures(analyzer=analyze, sublinear_tf=True, min_df=1, dtype=np.float32).fit(texts[:20])
    ref = TfidfVectorizer(analyzer=analyze, sublinear_tf=True, min_df=1, dtype=np.float32).fit(texts[:20])
    a, b = fast.transform(texts), ref.transform(texts)
    assert a.shape == b.shape
    np.testing.assert_array_equal(a.toarray(), b.toarray())
