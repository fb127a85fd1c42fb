import pandas as pd
import pytest

from pipeline.data import indicator, load_labelled, primary_index, read_labelled_csv
from pipeline.train import TRAIN_ONLY, text_key


@pytest.fixture(scope="module")
def labelled():
    return load_labelled()


def test_sources_and_counts(labelled):
    from pipeline.paths import DATA, RAW

    assert set(labelled["source"]) <= {"real", "appliance", "waimai", "constructed", "authored"}
    assert labelled["text"].str.len().min() > 0 and labelled["id"].is_unique
    assert indicator(labelled["labels"]).shape == (len(labelled), 8)
    assert set(primary_index(labelled["primary"])) <= set(range(9))
    # every shipped single-reader label is there once: as its double reading, or still single
    dev = set(pd.read_csv(RAW / "labels_dev.csv", dtype=str)["id"]) | set(pd.read_csv(DATA / "jd_labels.csv", dtype=str)["id"])
    assert dev <= set(labelled["id"])
    assert (labelled["source"] == "constructed").sum() == 240


def test_double_read_labels_carry_provenance():
    from pipeline.data import DOUBLE_READ

    d = pd.read_csv(DOUBLE_READ, dtype=str, keep_default_na=False)
    assert set(d["source"]) <= {"online_shopping", "jd_aircon", "waimai"}
    assert set(d["agreement"]) <= {"both", "primary", "split"} and set(d["adjudicated"]) <= {"true", "false"}
    # a split reading is always settled by the adjudicator
    assert (d.loc[d["agreement"] == "split", "adjudicated"] == "true").all()
    assert d["id"].is_unique


def test_authored_reviews_never_duplicate_evaluated_ones(labelled):
    """Authored rows train in every fold; a copy of an evaluated review would leak into its test fold."""
    keys = labelled["text"].map(text_key)
    authored = set(keys[labelled["source"] == "authored"])
    evaluated = set(keys[~labelled["source"].isin(TRAIN_ONLY)])
    assert authored.isdisjoint(evaluated)


def test_an_authored_twin_of_a_labelled_review_is_dropped_not_the_review():
    """A label round that draws a text an engineer also wrote (還 可 以 吧 / 还可以吧): the
    authored copy goes, the real review and every other authored row stay, in order."""
    from pipeline.data import without_authored_twins

    frame = pd.DataFrame({"id": ["os1", "aw1", "aw2", "wm1"],
                          "text": ["还 可 以 吧", "還可以吧", "返我50块就改好评", "送餐太慢"],
                          "source": ["real", "authored", "authored", "waimai"]})
    out = without_authored_twins(frame)
    assert out["id"].tolist() == ["os1", "aw2", "wm1"]
    assert without_authored_twins(frame.iloc[[1, 2]])["id"].tolist() == ["aw1", "aw2"]


def test_primary_is_one_of_the_labels(labelled):
    ok = [p == "none" or p in ls for p, ls in zip(labelled["primary"], labelled["labels"])]
    assert all(ok)


def test_user_label_file_errors_name_row_and_column(tmp_path):
    bad = tmp_path / "mine.csv"
    pd.DataFrame({"text": ["好", "差"], "labels": ["prank", "quality"]}).to_csv(bad, index=False)
    with pytest.raises(ValueError, match=r"mine.csv: row 3, column 'labels': unknown cause"):
        read_labelled_csv(bad)
    by_id = tmp_path / "ids.csv"
    pd.DataFrame({"id": ["os00001", "nope"], "labels": ["expectation_gap", "none"]}).to_csv(by_id, index=False)
    with pytest.raises(ValueError, match="1 id\\(s\\) have no text column and are not in online_shopping_neg.csv"):
        read_labelled_csv(by_id)


def test_a_label_files_followup_column_is_read_with_the_review_as_score_reads_it(tmp_path):
    """evaluate and train read only the first review: score got both right, evaluate said 0.0; a row
    with the complaint in the 追评 and a blank first review was refused."""
    from pipeline.data import read_labelled_csv

    src = tmp_path / "fu.csv"
    src.write_text("评价内容,追评,评分,labels\n还行吧,用了三天就坏了，质量太差,3,product_quality\n"
                   ",快递太慢了等了一个星期才到,2,stockout_logistics\n质量差,暂无追评,1,product_quality\n", encoding="utf-8")
    got = read_labelled_csv(src)
    assert got["text"].tolist() == ["还行吧\n用了三天就坏了，质量太差", "快递太慢了等了一个星期才到", "质量差"]
