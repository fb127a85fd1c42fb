"""Shared fixtures: a tiny labelled set covering all eight causes (simplified and traditional)
and a model fitted on it once per session."""

from __future__ import annotations

import os

import pandas as pd
import pytest

from hypothesis import settings

# CI replays a fixed set of generated examples (a red CI must mean a real change); local runs
# explore new examples each time and keep failures in .hypothesis/.
settings.register_profile("ci", derandomize=True, deadline=None)
if os.environ.get("CI"):
    settings.load_profile("ci")

# (text, labels) — three or more per cause, some in traditional script.
FIXTURE = [
    ("衣服和图片差太多了，色差严重", "expectation_gap"),
    ("尺码偏大，和描述不符，款式也不喜欢", "expectation_gap"),
    ("顏色跟照片差很多，跟描述不一樣", "expectation_gap"),
    ("没有想象中好，不值这个价", "expectation_gap"),
    ("客服态度太差了，问什么都不回复", "service_attitude"),
    ("售后推卸责任，踢皮球，不给处理", "service_attitude"),
    ("客服說話難聽，態度惡劣", "service_attitude"),
    ("客服已读不回，态度冷淡", "service_attitude"),
    ("发货太慢了，等了一个星期才发", "stockout_logistics"),
    ("快递太慢，物流停滞好几天", "stockout_logistics"),
    ("發錯貨了，少發了一件", "stockout_logistics"),
    ("包装破损，快递压坏了", "stockout_logistics"),
    ("质量太差，用了两天就坏了", "product_quality"),
    ("做工粗糙，开线掉色起球", "product_quality"),
    ("假貨，質量很差，有異味", "product_quality"),
    ("水果不新鲜，烂了好几个", "product_quality"),
    ("第一次网购不会评价，东西挺好的，给个中评", "novice_buyer"),
    ("点错了，本来想给好评的，不知道怎么改", "novice_buyer"),
    ("第一次在網上買東西，還可以，給三顆星", "novice_buyer"),
    ("手滑给了差评，东西没毛病，抱歉", "novice_buyer"),
    ("哈哈哈逗你玩的，给个差评吓吓你", "prank"),
    ("心情不好，就想给个差评试试", "prank"),
    ("哈哈哈開玩笑的，別當真😂", "prank"),
    ("阿巴阿巴阿巴 嘿嘿", "prank"),
    ("骗子店铺，大家千万别买，去隔壁那家买", "competitor_sabotage"),
    ("垃圾店，都别买，加我微信告诉你哪里有正品", "competitor_sabotage"),
    ("騙子店 大家小心 私訊我告訴你哪家比較便宜", "competitor_sabotage"),
    ("同款进价才10块，别家只卖29，千万别买", "competitor_sabotage"),
    ("返我50块就改好评，不然一直差评", "extortion"),
    ("不赔三倍就投诉到12315，差评挂着", "extortion"),
    ("不退我五百塊，我就每天來這裡留負評", "extortion"),
    ("给我发个红包，差评立马删", "extortion"),
]


@pytest.fixture(scope="session")
def fixture_frame() -> pd.DataFrame:
    from pipeline.taxonomy import parse_labels

    df = pd.DataFrame(FIXTURE, columns=["text", "labels"])
    df["labels"] = df["labels"].map(parse_labels)
    df["id"] = [f"f{i:02d}" for i in range(len(df))]
    df["primary"] = df["labels"].str[0]
    df["source"] = "real"
    df["script"] = "simplified"
    return df


def tiny_predictor():
    """The default Predictor with settings for a 32-review fixture."""
    from pipeline.model import build_model
    from pipeline.predict import Predictor

    return Predictor(model=build_model()).set_params(model__features__ngrams__vec__min_df=1, model__clf__threshold_folds=2,
                                                      # word vectors from the fixture itself, not the 26k unlabelled reviews
                                                      model__features__vectors__vec__unlabelled=False)


@pytest.fixture(scope="session")
def tiny_model(fixture_frame):
    from pipeline.train import fit

    return fit(fixture_frame.assign(rating=float("nan")), tiny_predictor())


@pytest.fixture(scope="session")
def tiny_model_path(tiny_model, tmp_path_factory):
    from pipeline.persist import save

    path = tmp_path_factory.mktemp("model") / "tiny.joblib"
    return save(tiny_model, path, {"note": "test fixture"})


@pytest.fixture(scope="session")
def shipped_model_path(tmp_path_factory):
    """The model shipped in models/ when it is current (content hash of its training inputs);
    else the default recipe fitted on the data in data/ (no cross-validation: a minute or two)."""
    from pipeline.data import load_labelled
    from pipeline.paths import DEFAULT_MODEL
    from pipeline.persist import load_predictor, read_meta, save
    from pipeline.train import fit, inputs_hash

    try:
        load_predictor(DEFAULT_MODEL)
        if read_meta(DEFAULT_MODEL).get("inputs_hash") == inputs_hash():
            return DEFAULT_MODEL
    except Exception:
        pass
    path = tmp_path_factory.mktemp("shipped") / "model.joblib"
    return save(fit(load_labelled()), path, {"note": "test fixture"})
