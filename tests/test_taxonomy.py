import re
from pathlib import Path

import pytest

from pipeline.taxonomy import BY_ID, CAUSE_IDS, CAUSES, MALICIOUS, parse_labels

SPEC = Path(__file__).resolve().parents[2] / "shared" / "spec" / "causes.md"


def test_eight_causes_in_contract_order():
    assert CAUSE_IDS == (
        "expectation_gap", "service_attitude", "stockout_logistics", "product_quality",
        "novice_buyer", "prank", "competitor_sabotage", "extortion",
    )
    assert [c.number for c in CAUSES] == list(range(1, 9))


def test_malicious_are_seven_and_eight():
    assert MALICIOUS == {"competitor_sabotage", "extortion"}
    assert BY_ID["extortion"].remedy == "不要妥协，向平台投诉维权"
    assert BY_ID["service_attitude"].dsr == "服务态度"


def test_parse_labels():
    assert parse_labels("product_quality|expectation_gap") == ["product_quality", "expectation_gap"]
    assert parse_labels("none") == []
    assert parse_labels(["prank", "prank"]) == ["prank"]
    with pytest.raises(ValueError, match="unknown cause"):
        parse_labels("quality")


@pytest.mark.skipif(not SPEC.exists(), reason="reads ../shared/spec/causes.md beside the repo")
def test_taxonomy_matches_the_labelling_contract():
    """This test reads the shared spec outside the repo: the table of ids and Chinese names."""
    rows = re.findall(r"^\| (\d) \| `(\w+)` \| ([^|]+) \| ([^|]+) \|", SPEC.read_text(encoding="utf-8"), re.M)
    assert [(int(n), i, zh.strip()) for n, i, zh, _ in rows] == [(c.number, c.id, c.zh) for c in CAUSES]
