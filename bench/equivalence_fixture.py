"""A 30,000-row scoring fixture for byte-identity checks of speed work (issue 13).

Real reviews (online shopping + food delivery) with ratings in every accepted form, buyers (some
serial), items, dates (with a burst), a planted campaign, hostile texts and hostile cells in the
kept columns (formula prefixes, quotes, line breaks, tabs). Deterministic for a given seed.

    python bench/equivalence_fixture.py OUT.csv [--rows 30000] [--seed 13]

Score it with a fixed model before and after a change and compare the outputs with ``cmp``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

HOSTILE = [
    "", " ", "a b", "ΑΣ ΣΑ ς", "İstanbul KELVIN \u212a ſ", "哈哈哈 😂😂", "质量\n差", "\t\r\n",
    "ＡＢＣ１２３！！！", "返我50块就改好评", "加我vx 看我头像", "URL URL", "#1 #色差 # #", "a  b", "色差" * 300,
    "好" * 5000, "<b>差评</b> &amp; http://x.cn/a?b=1", "東西壞了，客服態度惡劣", "\u200b\ufeff看不见",
    "=HYPERLINK(\"http://x\")", "+1+1", "-2", "@SUM(A1)", "\"引号\"，\"\"双引号\"\"", "很好，非常满意", "五星好评，物流快",
]
RATINGS = ["1", "2", "3", "4", "5", "4.0", "4星", "★★★★", "★", "五星", "四星", "好评", "中评", "差评", "", "nan", "7", "x"]


def build(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    texts = pd.concat([pd.read_csv(ROOT / "data" / "raw" / f, dtype=str, keep_default_na=False)["text"]
                       for f in ("online_shopping_neg.csv", "waimai_neg.csv")], ignore_index=True).tolist()
    out = [texts[i] for i in rng.integers(0, len(texts), rows)]
    for i in rng.choice(rows, 600, replace=False):  # hostile texts
        out[i] = HOSTILE[int(rng.integers(len(HOSTILE)))]
    campaign = "这家店是骗子，大家千万别买，去隔壁那家买正品！！"
    for k, i in enumerate(rng.choice(rows, 40, replace=False)):  # a planted campaign with small edits
        out[i] = campaign + ("" if k % 3 else "真的") + ("!" * (k % 4))
    ids = [f"r{i:06d}" for i in range(rows)]
    for i in rng.choice(rows, 300, replace=False):
        ids[i] = ""  # default ids
    buyers = [f"buyer{int(b)}" for b in rng.integers(0, rows // 2, rows)]
    for i in rng.choice(rows, 200, replace=False):
        buyers[i] = "serial_buyer_" + str(i % 5)
    items = [f"item{int(x)}" for x in rng.integers(0, 50, rows)]
    base = np.datetime64("2026-01-01T00:00")
    minutes = rng.integers(0, 60 * 24 * 90, rows)
    dates = [str(base + np.timedelta64(int(m), "m")).replace("T", " ") for m in minutes]
    for i in rng.choice(rows, 100, replace=False):  # a burst on one item
        items[i] = "item_burst"
        dates[i] = "2026-02-01 1" + str(int(rng.integers(0, 10))) + ":00"
    for i in rng.choice(rows, 100, replace=False):
        dates[i] = ["", "not a date", "2026/3/4", "昨天"][i % 4]
    category = [["手机", "=cmd|' /C calc'!A0", "+x", "a\nb", "\"q\"", "x\ty", "衣服"][int(c)] for c in rng.integers(0, 7, rows)]
    return pd.DataFrame({"评价ID": ids, "评价内容": out, "评分": [RATINGS[int(r)] for r in rng.integers(0, len(RATINGS), rows)],
                         "买家昵称": buyers, "商品名称": items, "评价时间": dates, "category": category})


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out")
    p.add_argument("--rows", type=int, default=30_000)
    p.add_argument("--seed", type=int, default=13)
    a = p.parse_args()
    build(a.rows, a.seed).to_csv(a.out, index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
