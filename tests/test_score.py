import numpy as np
import opencc
import pandas as pd
import pytest

from pipeline.paths import RAW
from pipeline.score import load_model, parse_rating, score_texts


@pytest.fixture(scope="module")
def model(shipped_model_path):
    return load_model(shipped_model_path)


@pytest.mark.parametrize(
    "value, rating",
    [("1", 1.0), ("4.0", 4.0), ("3星", 3.0), ("★★", 2.0), ("四星", 4.0), ("好评", 5.0), ("中评", 3.0), ("差评", 1.0),
     ("", None), ("9", None), ("n/a", None)],
)
def test_parse_rating(value, rating):
    got = parse_rating(value)
    assert (np.isnan(got) and rating is None) or got == rating


def test_praise_under_low_rating_is_a_novice_and_under_high_rating_is_not(model):
    texts = ["东西很好用，很满意", "东西很好用，很满意", "质量太差了，用两天就坏了"]
    s = score_texts(model, texts, np.array([2.0, 5.0, 1.0]))
    assert s.primary[0] == "novice_buyer" and s.passed[0, 4]
    assert s.evidence[0].startswith("好评文字配2星低分 praising text under a 2-star rating")
    assert not s.passed[1, 4] and s.primary[1] != "novice_buyer"
    assert s.primary[2] == "product_quality" and "好评文字" not in s.evidence[2]
    # without a rating the text alone decides
    assert score_texts(model, texts[:1]).evidence[0] != s.evidence[0]


def test_same_primary_cause_in_both_scripts(model):
    texts = pd.read_csv(RAW / "online_shopping_neg.csv", usecols=["text"])["text"].sample(400, random_state=3).tolist()
    conv = opencc.OpenCC("s2twp")
    a = score_texts(model, texts).primary
    b = score_texts(model, [conv.convert(t) for t in texts]).primary
    assert (a == b).mean() >= 0.99
