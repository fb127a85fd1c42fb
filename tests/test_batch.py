import numpy as np
import pandas as pd
import pytest

from pipeline.batch import Collector, Signals, epoch_seconds, parse_dates, signatures
from pipeline.cli import main
from pipeline.normalize import normalize_many

CAMPAIGN = [
    "这家店是骗子，东西全是假货，大家千万别买！！",
    "这家店是骗子,东西全是假货,大家千万别买!!!",
    "这家店是骗子 东西全是假货 大家千万别买😡",
    "这家店是骗子，东西全都是假货，大家千万别买",
    "這家店是騙子，東西全是假貨，大家千萬別買！",
]


def _collect(texts, buyers=None, items=None, dates=None, ratings=None):
    sig, eligible = signatures(normalize_many(texts))
    c = Collector()
    c.add(sig, eligible, buyers, items, dates, ratings)
    return c.finish()


def test_signatures_ignore_punctuation_and_emoji():
    sig, eligible = signatures(normalize_many(CAMPAIGN[:3] + ["太差了"]))
    assert (sig[0] == sig[1]).all() and (sig[0] == sig[2]).all()
    assert eligible.tolist() == [True, True, True, False]


def test_campaign_across_five_buyers():
    texts = CAMPAIGN + ["物流太慢了，等了一个星期才到货，包装也破了"]
    s = _collect(texts, buyers=["a1", "b2", "c3", "d4", "e5", "f6"])
    assert s.cluster_id.tolist() == [1, 1, 1, 1, 1, -1]
    assert s.cluster_authors.tolist() == [5, 5, 5, 5, 5, 0]


def test_same_buyer_repeating_is_not_a_campaign():
    s = _collect(CAMPAIGN[:3], buyers=["same", "same", "same"])
    assert s.cluster_id.tolist() == [-1, -1, -1]
    # masked nicknames cannot tell buyers apart: rows count instead
    assert _collect(CAMPAIGN[:3], buyers=["t***1", "t***1", "t***1"]).cluster_id.tolist() == [1, 1, 1]


def test_serial_buyer_across_items():
    texts = ["质量太差了用一天就坏", "衣服起球严重做工很差", "物流慢得要死等了十天", "还不错挺喜欢的东西"]
    s = _collect(texts, buyers=["老王", "老王", "老王", "小李"], items=["杯子", "衣服", "台灯", "杯子"],
                 ratings=[1, 1, 2, 5])
    assert s.serial_reviews.tolist() == [3, 3, 3, 0]
    assert s.serial_items.tolist() == [3, 3, 3, 0]
    # on one item only, or with a good rating, it is not serial
    assert _collect(texts[:3], buyers=["老王"] * 3, items=["杯子"] * 3).serial_reviews.tolist() == [0, 0, 0]
    assert _collect(texts[:3], buyers=["老王"] * 3, items=["a", "b", "c"], ratings=[1, 5, 5]).serial_reviews.tolist() == [0, 0, 0]


@pytest.mark.parametrize("name", ["匿名用户", "匿名買家", " AliExpress Shopper ", "Anonymous", "匿名用户123", "-", "N/A",
                                  "张＊＊", "ｔ＊＊１", "\u200b"])
def test_anonymous_placeholder_names_tell_no_buyer_apart(name):
    """Every anonymous review carries the platform's same placeholder: never one serial buyer of
    different customers, and a campaign among them counts rows, as for masked nicknames."""
    texts = ["质量太差了用一天就坏", "衣服起球严重做工很差", "物流慢得要死等了十天"]
    s = _collect(texts, buyers=[name] * 3, items=["杯子", "衣服", "台灯"], ratings=[1, 1, 2])
    assert s.serial_reviews.tolist() == [0, 0, 0]
    assert _collect(CAMPAIGN[:3], buyers=[name] * 3).cluster_id.tolist() == [1, 1, 1]


def test_real_names_that_mention_users_still_count():
    from pipeline.batch import is_masked

    assert not any(map(is_masked, ["用户小王", "老王", "buyer_007", "t123456", "买家秀达人"]))


def test_burst_on_one_item():
    dates = ["2024-06-01 10:00", "2024-06-01 10:30", "2024-06-01 11:00", "2024-06-01 12:00", "2024-06-01 15:00",
             "2024-06-09 10:00"]
    s = _collect(["差评内容第%d条很差" % i for i in range(6)], items=["杯子"] * 6, dates=dates)
    assert s.burst.tolist() == [5, 5, 5, 5, 5, 0]
    spread = [f"2024-06-{d:02d} 10:00" for d in range(1, 7)]
    assert _collect(["差评内容第%d条很差" % i for i in range(6)], items=["杯子"] * 6, dates=spread).burst.tolist() == [0] * 6


def test_placeholder_dates_are_no_dates_and_never_refuse_a_file():
    """Exports put 9999-12-31, 0001-01-01 or 1970-01-01 where a date is unknown: read as no date
    (not a burst of their own, not an out-of-bounds error refusing the file); zones may mix."""
    assert parse_dates(["2024/5/1 12:00", "2024年5月1日 8:30", "2024.05.01", "2024-05-01T12:00+08:00"]).tolist() == [
        pd.Timestamp("2024-05-01 12:00"), pd.Timestamp("2024-05-01 08:30"), pd.Timestamp("2024-05-01"), pd.Timestamp("2024-05-01 04:00")]
    assert epoch_seconds(["9999-12-31", "0001-01-01", "1970-01-01 00:00:00", "昨天", None, "2024-05-01"]).tolist() == [
        -1, -1, -1, -1, -1, 1714521600]
    assert epoch_seconds(["2024-05-01 10:00:00+08:00", "2024-05-01 02:00:00"]).tolist() == [1714528800] * 2
    s = _collect(["差评内容第%d条很差" % i for i in range(6)], items=["杯子"] * 6, dates=["9999-12-31"] * 6)
    assert s.burst.tolist() == [0] * 6
    # SQL Server datetime2 / .NET: 7-digit fractions made pandas read the column in nanoseconds,
    # where a placeholder beside them was out of bounds — an error that refused the file
    for placeholder in ("9999-12-31", "0001-01-01", "1677-09-21", "2262-04-12", "-2024-05-01"):
        assert parse_dates(["2024-05-01 10:00:00.1234567", placeholder]).tolist() == [
            pd.Timestamp("2024-05-01 10:00:00.123456"), pd.NaT], placeholder
    assert parse_dates(["May 1, 9999", "2024-05-01 10:00:00.123456789"]).tolist()[1] == pd.Timestamp("2024-05-01 10:00:00.123456")


def test_score_and_report_read_placeholder_dates(tmp_path, capsys, tiny_model_path):
    src = tmp_path / "d.csv"
    src.write_text("评价编号,评价内容,评分,评价时间\n1,质量太差了,1,2024-05-01 10:00:00.1234567\n2,快递太慢,2,9999-12-31\n3,客服不理人,1,0001-01-01\n",
                   encoding="utf-8")
    assert main(["score", str(src), "-o", str(tmp_path / "p.csv"), "--model", str(tiny_model_path), "-q"]) == 0
    out = pd.read_csv(tmp_path / "p.csv", dtype=str)
    assert out["review_id"].tolist() == ["1", "2", "3"]
    assert main(["report", str(tmp_path / "p.csv"), "-o", str(tmp_path / "r.html")]) == 0, capsys.readouterr().err


def test_noisy_or_score():
    s = Signals(np.array([1, -1, -1, -1]), np.array([5, 0, 0, 0]), np.array([0, 3, 0, 0]), np.array([0, 2, 0, 0]),
                np.array([0, 0, 6, 0]))
    np.testing.assert_allclose(s.score(np.array([0.2, 0.6, 0.5, 0.5])), [0.8, 0.8, 0.65, 0.5])


BATCH = pd.DataFrame(
    [
        *[(f"c{i}", f"买家{i}", "蓝牙耳机", "1", f"2024-06-01 1{i}:00", t) for i, t in enumerate(CAMPAIGN)],
        ("m1", "王先生", "保温杯", "1", "2024-06-02 09:00", "给我返50块我就改好评，不然这个差评一直挂着，自己看着办"),
        ("g1", "李女士", "电饭煲", "1", "2024-06-02 10:00", "收到就是坏的！！开机就黑屏，必须给我退款！！不退我就打12315！！"),
        ("n1", "张阿姨", "连衣裙", "1", "2024-06-02 11:00", "第一次网购，不小心点错了给了差评，衣服挺好看的，怎么改啊"),
        ("s1", "差评王", "台灯", "1", "2024-06-03 09:00", "垃圾店铺，都别买，骗子"),
        ("s2", "差评王", "雨伞", "1", "2024-06-03 09:10", "黑店，大家不要买，全是骗人的"),
        ("s3", "差评王", "拖鞋", "2", "2024-06-03 09:20", "千万别买这家的东西，无良商家"),
    ],
    columns=["评价编号", "买家昵称", "商品", "评分", "评价时间", "评价内容"],
)


@pytest.fixture(scope="module")
def scored_batch(tmp_path_factory, shipped_model_path):
    d = tmp_path_factory.mktemp("batch")
    BATCH.to_csv(d / "in.csv", index=False, encoding="utf-8-sig")
    assert main(["score", str(d / "in.csv"), "-o", str(d / "pred.csv"), "--model", str(shipped_model_path), "-q"]) == 0
    assert main(["suspects", str(d / "pred.csv"), "-o", str(d / "sus.csv"), "-q"]) == 0
    read = lambda p: pd.read_csv(p, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    return read(d / "pred.csv").set_index("review_id"), read(d / "sus.csv")


def test_batch_flags_and_evidence(scored_batch):
    pred, _ = scored_batch
    assert pred.index.tolist() == BATCH["评价编号"].tolist()  # every row, in order
    campaign = pred.loc[[f"c{i}" for i in range(5)]]
    assert set(campaign["cluster_id"]) == {"C1"}
    assert (campaign["suspected_malicious"] == "true").all()
    assert campaign["evidence"].str.contains("near-duplicate text from 5 buyers").all()
    assert pred.loc["m1", "cause"] == "extortion" and pred.loc["m1", "suspected_malicious"] == "true"
    assert "索要钱财 demands money「返50」" in pred.loc["m1", "evidence"] and "改好评" in pred.loc["m1", "evidence"]
    assert pred.loc["g1", "cause"] == "product_quality" and pred.loc["g1", "suspected_malicious"] == "false"
    assert pred.loc["n1", "cause"] == "novice_buyer" and pred.loc["n1", "suspected_malicious"] == "false"
    assert "点错" in pred.loc["n1", "evidence"]
    serial = pred.loc[["s1", "s2", "s3"]]
    assert serial["evidence"].str.contains("买家差评王在本批留3条差评/3个商品").all()
    # the serial signal joins the model by noisy-OR (weight 0.5); the flag follows the policy exactly
    p = serial[["p_competitor_sabotage", "p_extortion"]].astype(float).max(axis=1)
    score = serial["malicious_score"].astype(float)
    assert ((score - (1 - (1 - p) * 0.5)).abs() < 2e-4).all()
    flagged = serial["cause"].isin(["competitor_sabotage", "extortion"]) | (score >= 0.8)
    assert (serial["suspected_malicious"] == flagged.map({True: "true", False: "false"})).all()
    assert flagged.sum() >= 2
    assert pred.loc[pred["cluster_id"] == "", "cluster_id"].size == len(BATCH) - 5


def test_appeal_export_groups_strongest_first(scored_batch):
    pred, sus = scored_batch
    assert set(sus["review_id"]) == set(pred.index[pred["suspected_malicious"] == "true"])
    assert {"g1", "n1"}.isdisjoint(sus["review_id"])
    groups = sus.groupby("group", sort=False)
    kinds = dict(zip(sus["group"], sus["group_kind"]))
    assert kinds["C1"] == "campaign" and kinds["B:差评王"] == "buyer"
    assert groups.size()["C1"] == 5
    assert groups.size()["B:差评王"] == (pred.loc[["s1", "s2", "s3"], "suspected_malicious"] == "true").sum() >= 2
    strengths = sus.drop_duplicates("group")["group_strength"].astype(float).tolist()
    assert strengths == sorted(strengths, reverse=True)
    assert (sus.loc[sus["cause"] == "extortion", "what_to_do"] == "不要妥协，向平台投诉维权").all()


def test_report_counts_causes_with_dsr_and_remedy(scored_batch, tmp_path, capsys):
    pred, _ = scored_batch
    path = tmp_path / "pred.csv"
    pred.reset_index().to_csv(path, index=False, encoding="utf-8-sig")
    from pipeline.report import summary

    table = summary(path).set_index("cause")
    assert table["reviews"].sum() == len(BATCH)
    assert table.loc["extortion", "reviews"] == (pred["cause"] == "extortion").sum()
    assert table.loc["extortion", "remedy"] == "不要妥协，向平台投诉维权" and table.loc["service_attitude", "dsr"] == "服务态度"
    assert table.loc["competitor_sabotage", "suspected_malicious"] == ((pred["cause"] == "competitor_sabotage") & (pred["suspected_malicious"] == "true")).sum()
    assert main(["report", str(path)]) == 0 and "职业差评师敲诈" in capsys.readouterr().out
    bad = tmp_path / "not_pred.csv"
    bad.write_text("text\n好\n", encoding="utf-8")
    assert main(["report", str(bad)]) == 2
    assert "not a predictions file" in capsys.readouterr().err


def test_words_future_placeholders_and_short_years_as_dates():
    """pandas reads 'now'/'today' as the clock's time and 2099-12-31 is an export's placeholder:
    five such bad reviews of one item made a false '5 bad reviews in 24h' burst."""
    got = parse_dates(["now", "today", "2099-12-31", "2099-12-31 00:00:00", "24-5-1", "24/05/01 10:00", "2024年5月1日"])
    assert got.isna().tolist() == [True, True, True, True, False, False, False]
    assert str(got[4]) == "2024-05-01 00:00:00" and str(got[5]) == "2024-05-01 10:00:00"
    texts = ["质量太差了用一天就坏", "衣服起球严重做工很差", "物流慢得要死等了十天", "客服态度差", "做工粗糙"]
    for placeholder in ("2099-12-31", "today"):
        s = _collect(texts, items=["A"] * 5, dates=[placeholder] * 5, ratings=[2] * 5)
        assert s.burst.tolist() == [0] * 5


def test_excel_serial_numbers_in_a_date_column_are_dates():
    """A workbook storing dates as numbers in General format (45413.4166…) lost every date: the same
    reviews gave a 24 h burst from CSV and none from .xlsx."""
    from pipeline.batch import parse_dates

    got = parse_dates(["45413.4166666667", "45413", "45413.5", "20240501", "12345", "99999", "1714557600"]).tolist()
    assert got[:4] == [pd.Timestamp("2024-05-01 10:00:00"), pd.Timestamp("2024-05-01"), pd.Timestamp("2024-05-01 12:00:00"),
                       pd.Timestamp("2024-05-01")]
    assert all(pd.isna(v) for v in got[4:6])  # outside 1995–2100 as serials: no date


def test_campaigns_in_cyrillic_greek_and_accented_latin_texts():
    """Only CJK and ASCII letters were compared: a Russian review copied by three buyers was no
    campaign (its skeleton was empty). The chunk path equals the reference on these scripts."""
    from pipeline.batch import signatures, signatures_reference

    texts = ["Ужасный товар, не покупайте здесь, обман!", "УЖАСНЫЙ ТОВАР — не покупайте здесь, обман",
             "Το προϊόν ήρθε σπασμένο, ΤΑΣ", "Très déçu, produit cassé ÀÉ", "İstanbul ǅ ẞ ﬁ déjà vu", "质量太差了，客服态度也不好"]
    sig, eligible = signatures(texts)
    ref_sig, ref_eligible = signatures_reference(texts)
    assert (sig == ref_sig).all() and (eligible == ref_eligible).all() and eligible[:4].all()
    assert (sig[0] == sig[1]).all()  # case and punctuation do not tell copies apart


def test_a_russian_review_from_three_buyers_is_a_campaign(tiny_model_path):
    from pipeline.persist import load_predictor

    text = "Ужасный магазин, не покупайте здесь, обман, идите в другой магазин"
    out = load_predictor(tiny_model_path).predict(pd.DataFrame({"text": [text] * 3 + ["质量太差了"],
                                                                "buyer": ["ivan", "olga", "petr", "li"]}))
    assert (out["cluster_id"][:3] != "").all() and out["cluster_id"][3] == ""
