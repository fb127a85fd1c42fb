import subprocess
import sys

import pandas as pd
import pytest

from pipeline.normalize import normalize
from pipeline.paths import RAW
from pipeline.segment import BACKENDS, read_userdict, segment, segment_with, use_backend


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "text, tokens",
    [
        ("色差太大了", ["色差", "太", "大", "了"]),
        ("遇到职业差评师了", ["遇到", "职业差评师", "了"]),
        ("商家发错货了", ["商家", "发错货", "了"]),
        ("不支持七天无理由", ["不", "支持", "七天无理由"]),
        ("支持无理由退货吗", ["支持", "无理由退货", "吗"]),
        ("买了运费险", ["买", "了", "运费险"]),
        ("说好的好评返现呢", ["说好", "的", "好评返现", "呢"]),
        ("  空格  不算 ", ["空格", "不算"]),
    ],
)
def test_domain_tokens(backend, text, tokens):
    assert segment_with(text, backend) == tokens


def test_backends_identical_on_real_reviews():
    """The fast backend must give the reference's tokens on real reviews (HMM off on both)."""
    texts = pd.read_csv(RAW / "online_shopping_neg.csv", usecols=["text"])["text"].sample(3000, random_state=1)
    texts = [normalize(t) for t in texts] + [normalize(t) for t in pd.read_csv(RAW / "jd_aircon.csv")["text"].head(1000)]
    diff = [t for t in texts if segment_with(t, "jieba") != segment_with(t, "rjieba")]
    assert diff == []


def test_userdict_is_well_formed():
    words = [w for w, _, _ in read_userdict()]
    assert {"色差", "差评师", "职业差评", "发错货", "七天无理由", "运费险", "好评返现"} <= set(words)
    assert len(words) == len(set(words))


def test_backend_switch():
    use_backend("jieba")
    try:
        assert segment("色差") == ["色差"]
    finally:
        use_backend("rjieba")
    with pytest.raises(ValueError, match="unknown segmenter"):
        use_backend("thulac")


def test_no_jieba_noise_on_stderr():
    code = "from pipeline.segment import segment_with; print(segment_with('色差太大', 'jieba'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['色差', '太', '大']"
    assert out.stderr == ""
