"""The eight bad-review causes: the one place that defines them.

Mirrors ``shared/spec/causes.md`` (the labelling contract) and seed document 002. Every other
module reads ids, names, DSR dimensions, remedies and the malicious flag from here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Cause:
    number: int
    id: str
    zh: str
    en: str
    dsr: str  # shop-rating dimension the cause lands on ("—" when buyer-side or malicious)
    at_fault: str
    remedy: str  # what seed 002 tells the seller to do
    malicious: bool  # suspected malicious: appeal to the platform, do not "fix" the product
    buyer_side: bool  # caused by the reviewer, not by the order (causes 5–8)


CAUSES: tuple[Cause, ...] = (
    Cause(1, "expectation_gap", "沟通不足/期望落差", "expectation gap", "描述相符",
          "seller's listing / pre-sale communication",
          "主动沟通，讲清赠品/款式/色差，赠品放醒目位置", False, False),
    Cause(2, "service_attitude", "客服态度/话术不当", "service attitude", "服务态度",
          "seller's service",
          "礼貌用语，第一时间回复，设置自动回复", False, False),
    Cause(3, "stockout_logistics", "缺货与物流", "stock-out & logistics", "发货速度/物流服务",
          "fulfilment, courier",
          "及时告知发货时间，每天跟踪快递，停滞时主动联系客户", False, False),
    Cause(4, "product_quality", "商品质量", "product quality", "描述相符",
          "product",
          "如实描述不夸大，先沟通、勇于承担、真诚道歉", False, False),
    Cause(5, "novice_buyer", "新手买家不懂评价体系", "novice buyer", "—",
          "buyer (honest, inexperienced)",
          "交易前多说明售后保障（7天无理由、运费险）", False, True),
    Cause(6, "prank", "恶作剧", "prank", "—",
          "buyer (not serious)",
          "好好沟通，通常会改", False, True),
    Cause(7, "competitor_sabotage", "同行恶意竞争", "competitor sabotage", "—",
          "rival seller (malicious)",
          "在差评下回复说明对方是同行", True, True),
    Cause(8, "extortion", "职业差评师敲诈", "professional extortion", "—",
          "professional extortionist (malicious)",
          "不要妥协，向平台投诉维权", True, True),
)

CAUSE_IDS: tuple[str, ...] = tuple(c.id for c in CAUSES)
BY_ID: dict[str, Cause] = {c.id: c for c in CAUSES}
MALICIOUS: frozenset[str] = frozenset(c.id for c in CAUSES if c.malicious)
BUYER_SIDE: frozenset[str] = frozenset(c.id for c in CAUSES if c.buyer_side)

#: Label used in the data when the text names no cause; the model answers it as UNCERTAIN.
NONE = "none"
#: Primary cause written when no cause reaches its threshold (the model abstains).
UNCERTAIN = "uncertain"
#: Primary cause written for a row whose text is blank.
EMPTY = "empty"
#: Outcome for a review rated 4–5 stars whose text states no complaint (sellers export every review).
NO_COMPLAINT = "no_complaint"
#: Separator of multi-label strings, as in ``labels_dev.csv``.
SEP = "|"


def parse_labels(value: object) -> list[str]:
    """Parse a ``|``-separated label string (or a list) into known cause ids.

    ``none`` yields an empty list. Unknown ids raise ``ValueError`` so that a typo in a user's
    label file is reported instead of silently dropped.
    """
    if isinstance(value, (list, tuple)):
        parts = [str(v).strip() for v in value]
    else:
        parts = [p.strip() for p in str(value if value is not None else "").split(SEP)]
    labels = [p for p in parts if p and p != NONE]
    if labels and NONE in parts:
        raise ValueError(f"'none' together with cause(s) {labels}; give either the causes or 'none'")
    unknown = [p for p in labels if p not in BY_ID]
    if unknown:
        raise ValueError(f"unknown cause id(s) {unknown}; expected one of {list(CAUSE_IDS)} or 'none'")
    return list(dict.fromkeys(labels))


def describe(cause_id: str) -> dict[str, object]:
    """A plain dict of one cause, for reports and JSON."""
    c = BY_ID[cause_id]
    return {"id": c.id, "zh": c.zh, "en": c.en, "dsr": c.dsr, "remedy": c.remedy, "malicious": c.malicious}
