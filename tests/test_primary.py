"""The stacked primary cause (pipeline/primary.py): clauses, their features, and a decision a bag
of n-grams cannot make — which of two complaints the buyer named first."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from pipeline.primary import Clauses, PrimaryStack, in_question, stack_features
from pipeline.taxonomy import CAUSE_IDS

LOGISTICS = ["快递太慢了", "物流停了好几天", "发货拖了一个星期", "包裹压坏了", "等了十天才到", "送货员不送上楼"]
QUALITY = ["质量很差", "用两天就坏了", "做工粗糙", "开胶了", "有异味", "屏幕有坏点"]


def test_clauses_split_at_punctuation_and_keep_order():
    c = Clauses(["快递太慢了，质量很差！", "一句话", "", "客服不回；发错货。还漏液"])
    assert c.texts == ["快递太慢了", "质量很差", "客服不回", "发错货", "还漏液"]
    assert c.owner.tolist() == [0, 0, 3, 3, 3]
    assert c.pos.tolist() == [0, 1, 0, 1, 2]
    assert c.count.tolist() == [2, 1, 1, 3]  # a review of one clause (or none) is its own clause


def test_only_the_reviews_in_question_are_split_the_same_way_in_training_and_scoring():
    texts = ["快递太慢了，质量很差！", "一句话", "客服不回；发错货。还漏液", "包装破了，少发一件"]
    k = len(CAUSE_IDS)
    proba = np.zeros((4, k))
    proba[0, [2, 3]] = [0.9, 0.6]  # two causes likely: in question
    proba[2, [1, 2]] = [0.8, 0.1]  # one cause stands out: not in question at gate 0.2
    proba[3, [0, 2]] = [0.2, 0.7]  # exactly at the gate: in question
    keep = in_question(proba, 0.2)
    assert keep.tolist() == [True, False, False, True]
    direct = Clauses(texts, keep=keep)  # scoring: only those reviews are split
    every = Clauses(texts)
    gated, stay = every.only(keep)  # training: split everything once, then gate
    assert direct.texts == gated.texts == ["快递太慢了", "质量很差", "包装破了", "少发一件"]
    assert direct.owner.tolist() == gated.owner.tolist() == [0, 0, 3, 3]
    assert direct.pos.tolist() == gated.pos.tolist() == [0, 1, 0, 1]
    assert direct.count.tolist() == gated.count.tolist() == [2, 1, 1, 2]
    assert stay.tolist() == [True, True, False, False, False, True, True]
    # the stacker's training features equal what scoring builds from the gated clauses
    cp = np.random.default_rng(0).random((len(every.texts), k))
    head = np.full((4, k + 1), 1 / (k + 1))
    r = np.array([1.0, np.nan, 5.0, 3.0])
    st = PrimaryStack(gate=0.2)
    np.testing.assert_array_equal(st.features(proba, head, every, cp, r), stack_features(proba, head, direct, cp[stay], r))
    # gate 0 splits every review of several clauses, as the stacker did before the gate
    st.gate = 0.0
    np.testing.assert_array_equal(st.features(proba, head, every, cp, r), stack_features(proba, head, every, cp, r))
    assert in_question(np.zeros((2, 1)), 0.0).tolist() == [False, False]  # one cause: nothing in question


def test_stack_features_mark_the_cause_named_first():
    k = len(CAUSE_IDS)
    a, b = CAUSE_IDS.index("stockout_logistics"), CAUSE_IDS.index("product_quality")
    clauses = Clauses(["快递太慢了，质量很差，质量很差", "质量很差"])
    cp = np.zeros((3, k))
    cp[0, a], cp[1, b], cp[2, b] = 0.9, 0.8, 0.7
    proba = np.zeros((2, k))
    proba[0, [a, b]] = 0.9
    proba[1, b] = 0.9
    head = np.full((2, k + 1), 1 / (k + 1))
    F = stack_features(proba, head, clauses, cp, np.array([1.0, np.nan]))
    earliest, where, share = F[:, 17:25], F[:, 25:33], F[:, 33:41]
    assert earliest[0, a] == 1 and earliest[0, b] == 0  # logistics came first …
    assert share[0, b] > share[0, a]  # … quality is dwelt on longer
    assert where[0, a] == 0 and where[0, b] == pytest.approx(1 / 3)
    assert earliest[1, b] == 1 and where[1, a] == 1.5  # one clause: the review itself; a cause not named
    assert F[0, 49:53].tolist() == [0, 1, 0, 0] and F[1, 49:53].tolist() == [1, 0, 0, 0]  # rating 1, unknown


def _pairs(phrases_a, phrases_b):
    """Reviews naming a logistics and a quality complaint in both orders; primary = the first."""
    rows = []
    for x, y in itertools.product(phrases_a, phrases_b):
        rows.append((f"{x}，{y}", "stockout_logistics|product_quality", "stockout_logistics"))
        rows.append((f"{y}，{x}", "stockout_logistics|product_quality", "product_quality"))
    return rows


@pytest.fixture(scope="module")
def order_models():
    from pipeline.model import build_model
    from pipeline.predict import Predictor
    from pipeline.train import fit

    train = pd.DataFrame(_pairs(LOGISTICS[:4], QUALITY[:4]) + [(x, "stockout_logistics", "stockout_logistics")
                                                            for x in LOGISTICS] +
                         [(y, "product_quality", "product_quality") for y in QUALITY],
                         columns=["text", "labels", "primary"])
    train["labels"] = train["labels"].str.split("|")
    train["rating"], train["source"] = np.nan, "real"
    base = Predictor(model=build_model()).set_params(model__features__ngrams__vec__min_df=1, model__clf__threshold_folds=2,
                                                      # word vectors from the fixture itself, not the 26k unlabelled reviews
                                                      model__features__vectors__vec__unlabelled=False)
    return fit(train, base), fit(train, base.set_params(stack="head"))


def test_the_stack_knows_which_complaint_came_first_the_head_cannot(order_models):
    stacked, head = order_models
    test = pd.DataFrame(_pairs(LOGISTICS[4:], QUALITY[4:]), columns=["text", "labels", "primary"])
    assert stacked.stack_ is not None and stacked.stack_.lr_ is not None
    assert head.stack_ is None
    acc_stack = (stacked.predict(test[["text"]])["cause"].to_numpy() == test["primary"].to_numpy()).mean()
    acc_head = (head.predict(test[["text"]])["cause"].to_numpy() == test["primary"].to_numpy()).mean()
    assert acc_stack >= 0.85, acc_stack
    assert acc_head <= 0.75, acc_head  # the same words in either order: the head can only guess


def test_stack_parameters_are_reachable_and_a_tiny_set_falls_back_to_the_head(fixture_frame):
    from pipeline.predict import Predictor
    from pipeline.train import fit

    p = Predictor(stack=PrimaryStack(folds=3, C=0.5))
    assert p.get_params()["stack__C"] == 0.5
    one = fixture_frame.head(2).assign(rating=np.nan)  # two reviews: no inner folds possible
    from conftest import tiny_predictor

    m = fit(one, tiny_predictor().set_params(model__clf__tune_thresholds=False))
    assert m.stack_ is not None and m.stack_.lr_ is None  # fitted, and the head decides
    out = m.predict(pd.DataFrame({"text": ["质量太差了"]}))
    assert len(out) == 1


def test_thresholds_are_tuned_on_the_stackers_out_of_fold_probabilities(fixture_frame):
    """With the stacker on, the per-cause regressions of its inner folds give the out-of-fold
    probabilities the thresholds are tuned on (not a second set of fold fits), and the fitted
    classifier reports thresholds tuned as before; the stacker keeps nothing of them."""
    from conftest import tiny_predictor

    from pipeline.data import indicator, primary_index
    from pipeline.train import fit

    frame = fixture_frame.assign(rating=np.nan)
    m = fit(frame, tiny_predictor())
    clf = m.model_.named_steps["clf"]
    assert clf.tune_thresholds and not hasattr(m.stack_, "_oof_proba")
    prepared = m.model_.named_steps["prepare"].transform(frame[["text", "rating"]])
    Y, primary = indicator(frame["labels"]), primary_index(frame["primary"])
    oof = m.stack_.out_of_fold(m.model_, prepared, Y, primary, np.ones(len(frame)))[0]
    np.testing.assert_array_equal(clf.thresholds_, clf.thresholds_from(Y, oof, np.ones(len(frame))))
    head = fit(frame, tiny_predictor().set_params(stack="head"))  # no stacker: the classifier's own folds
    assert head.model_.named_steps["clf"].thresholds_.shape == (len(CAUSE_IDS),)


def test_the_classifier_fitted_beside_the_inner_folds_is_fit_models(fixture_frame):
    """With the stacker on, the classifier on every row is fitted in the same pool as the five
    inner folds — the very classifier `fit_model` fits on its own (weights, head, naive Bayes),
    the features fitted once."""
    from conftest import tiny_predictor
    from sklearn.base import clone

    from pipeline.data import indicator, primary_index
    from pipeline.model import fit_model
    from pipeline.train import fit

    frame = fixture_frame.assign(rating=np.nan)
    m = fit(frame, tiny_predictor())
    got = m.model_.named_steps["clf"]
    X, Y, primary = m._text_first(frame[["text", "rating"]], indicator(frame["labels"]), primary_index(frame["primary"]))
    ref_model = clone(tiny_predictor().model)
    ref_model.named_steps["clf"].set_params(tune_thresholds=False)
    ref = fit_model(ref_model, X, Y, primary, np.ones(len(frame))).named_steps["clf"]
    # equal to the last bits: a worker process sums with one BLAS thread, the main process with
    # two, so weights may differ in their 16th digit (as the inner folds' always did)
    for a, b in [(got.coef_, ref.coef_), (got.intercept_, ref.intercept_), (got.primary_.coef_, ref.primary_.coef_),
                 (got.primary_nb_log_, ref.primary_nb_log_)]:
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    Xf = m.model_.named_steps["features"].transform(m.model_.named_steps["prepare"].transform(X))
    np.testing.assert_array_equal(got.primary_proba(Xf, got.predict_proba(Xf)).argmax(1),
                                  ref.primary_proba(Xf, ref.predict_proba(Xf)).argmax(1))
    assert m.model_.named_steps["features"].transform(m.model_.named_steps["prepare"].transform(X)).shape[1] == got.n_features_in_
    assert m.stack_.lr_ is not None and got.tune_thresholds
