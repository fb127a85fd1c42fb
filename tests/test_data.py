import pandas as pd
import pytest

from pipeline.data import indicator, load_labelled, primary_index, read_labelled_csv
from pipeline.train import EVALUATED_SOURCES, text_key


@pytest.fixture(scope="module")
def labelled():
    return load_labelled()


def test_sources_and_counts(labelled):
    assert labelled["source"].value_counts().to_dict() == {"real": 1650, "authored": 209, "constructed": 240, "appliance": 160}
    assert labelled["text"].str.len().min() > 0
    assert indicator(labelled["labels"]).shape == (2259, 8)
    assert set(primary_index(labelled["primary"])) <= set(range(9))


def test_authored_reviews_never_duplicate_evaluated_ones(labelled):
    """Authored rows train in every fold; a copy of an evaluated review would leak into its test fold."""
    keys = labelled["text"].map(text_key)
    authored = set(keys[labelled["source"] == "authored"])
    evaluated = set(keys[labelled["source"].isin(EVALUATED_SOURCES)])
    assert authored.isdisjoint(evaluated)


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
