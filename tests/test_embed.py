"""Word vectors (pipeline/embed.py): what they learn, the chunk path against the review-by-review
reference, the corpus they learn from, and that they never reach the evidence."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.embed import WordVectors

def _contexts() -> list[str]:
    """物流 and 快递 used in the same contexts, 质量 and 做工 in others."""
    import random

    rng = random.Random(0)
    slow = ["太慢", "等了", "一周", "送货", "上门", "配送", "延误", "没到"]
    poor = ["很差", "坏了", "粗糙", "异味", "开胶", "掉色", "不行", "劣质"]
    out = []
    for _ in range(600):
        out.append(rng.choice(["物流", "快递"]) + "".join(rng.sample(slow, 3)))
        out.append(rng.choice(["质量", "做工"]) + "".join(rng.sample(poor, 3)))
    return out


CONTEXTS = _contexts()


@pytest.fixture(scope="module")
def vectors():
    return WordVectors(dim=24, min_count=1, epochs=20, unlabelled=False, workers=1).fit(CONTEXTS)


def _cos(v, a, b):
    x, y = v.vectors_[v.index_[a]], v.vectors_[v.index_[b]]
    return float(x @ y / np.linalg.norm(x) / np.linalg.norm(y))


def test_words_used_alike_get_close_vectors(vectors):
    assert _cos(vectors, "物流", "快递") > 0.9 and _cos(vectors, "质量", "做工") > 0.9
    assert _cos(vectors, "物流", "质量") < 0.6


def test_chunk_path_equals_the_review_by_review_reference(vectors):
    from pipeline.normalize import normalize

    docs = [normalize(t) for t in ["物流太慢了", "质量很差，快递也慢", "", "   ", "完全陌生", "x\x00y 物流",
                                   "物流" * 500, "質量很差", "ＡＢＣ 快递"]] + CONTEXTS[:50]
    got = vectors.transform(docs).toarray()
    want = vectors.reference(docs)
    assert got.shape == (len(docs), 24)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    norms = np.linalg.norm(got, axis=1)
    assert norms[2] == norms[3] == norms[4] == 0  # empty, blank, no known word: zeros
    np.testing.assert_allclose(norms[[0, 1, 5, 6, 7, 8]], 1.0, rtol=1e-5)


def test_the_corpus_holds_no_labelled_review_and_leaves_out_a_held_out_domain():
    from pipeline.data import load_labelled, unlabelled_texts
    from pipeline.normalize import normalize_many

    corpus = unlabelled_texts()
    # the raw reviews no label round has drawn: since round 20 (version 0.11.0) only the 36 real
    # reviews kept out for the sample (943 at version 0.9.0, 5,079 at 0.8.0); the vectors learn
    # from the training reviews as well
    assert len(corpus) >= 30
    labelled = load_labelled(authored=False)
    real = labelled[labelled["source"].isin(["real", "appliance", "waimai"])]
    assert not set(normalize_many(real["text"].tolist())) & set(corpus) - {""}
    no_jd = unlabelled_texts(("appliance",))
    jd = pd.read_csv(__import__("pipeline.paths", fromlist=["RAW"]).RAW / "jd_aircon.csv", dtype=str)["text"]
    assert len(corpus) - len(no_jd) >= 15  # the sample's 20 JD reviews (907 unlabelled ★5 at 0.9.0)
    assert not set(normalize_many(jd.tolist())) & set(no_jd) - {""}


@pytest.fixture(scope="module")
def vector_model(fixture_frame):
    """The tiny fixture model with word vectors switched on (they are off by default)."""
    from conftest import tiny_predictor

    from pipeline.train import fit

    p = tiny_predictor().set_params(model__features__vectors__vec__dim=16, model__features__vectors__vec__min_count=1)
    return fit(fixture_frame.assign(rating=float("nan")), p)


def test_vectors_are_off_by_default_and_cost_nothing(tiny_model):
    assert tiny_model.get_params()["model__features__vectors__vec__dim"] == 0
    assert not any(str(n).startswith("emb:") for n in tiny_model.features_)


def test_a_fitted_model_scores_without_the_corpus(vector_model, monkeypatch):
    """The vectors travel in the model: scoring reads no corpus."""
    import pipeline.data

    def boom(*a, **k):
        raise AssertionError("the corpus was read at scoring time")

    monkeypatch.setattr(pipeline.data, "unlabelled_texts", boom)
    assert sum(str(n).startswith("emb:") for n in vector_model.features_) == 16
    out = vector_model.predict(["快递太慢了，质量也差", "返我50块就改好评"])
    assert len(out) == 2


def test_the_evidence_never_quotes_a_vector_dimension(vector_model):
    from pipeline.evidence import _vector_start

    names = vector_model.features_
    k = _vector_start(names)
    assert k < len(names) and all(str(n).startswith("emb:") for n in names[k:])
    assert not any(str(n).startswith("emb:") for n in names[:k])
    out = vector_model.predict(["快递太慢了，等了一个星期", "质量太差，用两天就坏了", "客服态度恶劣"])
    assert not out["evidence"].str.contains("emb:").any()
    assert (out["evidence"] != "").all()


def test_leave_one_domain_out_keeps_the_held_out_domain_out_of_the_vectors():
    from pipeline.train import _unseen

    p = _unseen(None, "waimai")
    assert p.get_params()["model__features__vectors__vec__exclude"] == ("waimai",)
    assert _unseen(p, "蒙牛").get_params()["model__features__vectors__vec__exclude"] == ("waimai", "蒙牛")
    assert p.get_params()["model__features__vectors__vec__exclude"] == ("waimai",)  # a clone: the caller's is untouched
