"""Draw the reviews to be double-read and cut them into batches of ~300.

Deterministic (seed 20261201). Writes, for each batch, a canonical CSV
(id,source,category,rating,stratum,text) and a one-line-per-review .txt view for the reader.

    python data/labelling/make_batches.py              # round 1: new01-18, old01-07
    python data/labelling/make_batches.py --round 2    # round 2: new19-22
    python data/labelling/make_batches.py --round 3    # round 3: new23-25
    python data/labelling/make_batches.py --round 4    # round 4: new26-29
    python data/labelling/make_batches.py --round 5    # round 5: new30-33
    python data/labelling/make_batches.py --round 6    # round 6: new34-37
    python data/labelling/make_batches.py --round 7    # round 7: new38-41
    python data/labelling/make_batches.py --round 8    # round 8: new42-44
    python data/labelling/make_batches.py --round 9    # round 9: new45-48
    python data/labelling/make_batches.py --round 10   # round 10: new49-54
    python data/labelling/make_batches.py --round 11   # round 11: new55-60
    python data/labelling/make_batches.py --round 12   # round 12: new61-66
    python data/labelling/make_batches.py --round 13   # round 13: new67-72
    python data/labelling/make_batches.py --round 14   # round 14: new73-78
    python data/labelling/make_batches.py --round 15   # round 15: new79-88
    python data/labelling/make_batches.py --round 16   # round 16: new89-98
    python data/labelling/make_batches.py --round 17   # round 17: new99-108
    python data/labelling/make_batches.py --round 18   # round 18: new109-116
    python data/labelling/make_batches.py --round 19   # round 19: new117-122
    python data/labelling/make_batches.py --round 20   # round 20: new123-125

Strata: ``random`` (uniform within a source/category/rating cell) and ``enriched`` (drawn
among reviews whose wording hints at causes 5-8: cue search). Figures on the random part are
reported apart so class balance stays honest.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
RAW = HERE.parent / "raw"
OUT = HERE / "batches"
SEED = 20261201
BATCH = 300

ENRICH = re.compile(
    "第一次|新手|不会评|点错|手滑|误点|本来想给好评|不知道.{0,4}改|给个中评|哈哈|呵呵|开玩笑|逗你|好玩|任性|试试|无聊|"
    "同行|别家|另一家|其他家|加微信|微信|QQ|扣扣|进价|成本价|骗子|垃圾店|黑店|千万别买|大家别买|有毒|住院|致癌|"
    "返现|返.{0,2}元|赔偿|赔钱|12315|工商|315|假一赔|三倍|十倍|知假|改好评|追评|一直挂|看着办|曝光|媒体"
)

# new reviews per source cell (random stratum)
OS_RANDOM = {"平板": 330, "水果": 330, "洗发水": 360, "衣服": 360, "计算机": 250, "书籍": 250,
             "手机": 220, "蒙牛": 240, "热水器": 60}
OS_ENRICHED = 450
JD_RANDOM = {1: 350, 2: 200, 3: 250, 4: 15, 5: 235}
WM_RANDOM = 1200
WM_ENRICHED = 150


def _flat(text: str) -> str:
    return re.sub(r"\s*[\r\n]+\s*", " ⏎ ", str(text)).strip()


def draw() -> tuple[pd.DataFrame, pd.DataFrame]:
    os_ = pd.read_csv(RAW / "online_shopping_neg.csv", dtype=str)
    jd = pd.read_csv(RAW / "jd_aircon.csv", dtype={"id": str, "rating": int})
    wm = pd.read_csv(RAW / "waimai_neg.csv", dtype=str)
    dev = pd.read_csv(RAW / "labels_dev.csv", dtype=str)
    jdl = pd.read_csv(HERE.parent / "jd_labels.csv", dtype=str)
    sample = pd.read_csv(HERE.parent / "sample_reviews.csv", dtype=str)
    taken = set(dev.id) | set(jdl.id) | set(sample.iloc[:, 0])

    rows = []
    pool = os_[~os_.id.isin(taken)]
    for cat, n in OS_RANDOM.items():
        rows.append(pool[pool.category == cat].sample(n, random_state=SEED).assign(stratum="random"))
    got = set(pd.concat(rows).id)
    pool = pool[~pool.id.isin(got) & pool.text.str.contains(ENRICH)]
    rows.append(pool.sample(OS_ENRICHED, random_state=SEED).assign(stratum="enriched"))
    os_rows = pd.concat(rows).assign(source="online_shopping", rating="")

    jd = jd[~jd.id.isin(taken)]
    jd_rows = pd.concat(jd[jd.rating == r].sample(n, random_state=SEED) for r, n in JD_RANDOM.items())
    jd_rows = jd_rows.assign(source="jd_aircon", category="空调", stratum="random",
                             rating=jd_rows.rating.astype(str))

    wm = wm[~wm.id.isin(taken)]
    wm_r = wm.sample(WM_RANDOM, random_state=SEED).assign(stratum="random")
    rest = wm[~wm.id.isin(wm_r.id) & wm.text.str.contains(ENRICH)]
    wm_e = rest.sample(min(WM_ENRICHED, len(rest)), random_state=SEED).assign(stratum="enriched")
    wm_rows = pd.concat([wm_r, wm_e]).assign(source="waimai", category="外卖", rating="")

    cols = ["id", "source", "category", "rating", "stratum", "text"]
    new = pd.concat([os_rows[cols], jd_rows[cols], wm_rows[cols]]).sample(frac=1, random_state=SEED)

    # second reading of the existing single-reader labels (texts only: readers never see labels)
    old_os = os_.merge(dev[["id"]], on="id").assign(source="online_shopping", rating="", stratum="labels_dev")
    old_jd = jd_all = pd.read_csv(RAW / "jd_aircon.csv", dtype={"id": str, "rating": str}).merge(jdl[["id"]], on="id")
    old_jd = old_jd.assign(source="jd_aircon", category="空调", stratum="jd_labels")
    old = pd.concat([old_os[cols], old_jd[cols]]).sample(frac=1, random_state=SEED)
    return new.reset_index(drop=True), old.reset_index(drop=True)


def write_batch(frame: pd.DataFrame, name: str) -> None:
    """The batch's canonical CSV and the reader's one-line-per-review ``.txt`` view."""
    frame.to_csv(OUT / f"{name}.csv", index=False)
    with open(OUT / f"{name}.txt", "w", encoding="utf-8") as fh:
        for r in frame.itertuples():
            meta = f"{r.source}/{r.category}" + (f" ★{r.rating}" if r.rating else "")
            fh.write(f"{r.id}\t{meta}\t{_flat(r.text)}\n")


def write(frame: pd.DataFrame, prefix: str) -> list[str]:
    names = []
    n = -(-len(frame) // BATCH)
    size = -(-len(frame) // n)
    for i in range(n):
        name = f"{prefix}{i + 1:02d}"
        write_batch(frame.iloc[i * size:(i + 1) * size], name)
        names.append(name)
    return names


# round 2 (2026-12-02): more labels where the model is weakest — the taste-or-defect boundary of
# clothing, shampoo and fruit (random within those cells), the other categories at random, and
# causes 5-8 (a wider cue search, reported as ``enriched``). Drawn among reviews no batch holds.
ROUND2_SEED = 20261202
NOVICE_PRANK = re.compile(
    "不小心|忘了|忘记|不懂|不会用|随便|凑字|就是想|默认|好评|中评|差评.{0,4}(?:改|删)|小白|"
    "嘻嘻|呵呵|哈哈|233|无语|\\?{3}|!{3}"
)
ROUND2 = {  # batch: [(source, category, stratum, n)]
    "new19": [("online_shopping", "衣服", "random", 150), ("online_shopping", "洗发水", "random", 150)],
    "new20": [("online_shopping", "水果", "random", 100), ("online_shopping", "书籍", "random", 50),
              ("online_shopping", "手机", "random", 50), ("online_shopping", "平板", "random", 50),
              ("online_shopping", "计算机", "random", 50)],
    "new21": [("online_shopping", None, "enriched", 300)],
    "new22": [("jd_aircon", None, "enriched", 150), ("waimai", None, "enriched", 150)],
}


# Round 2's batch files are the record of its draw: it was drawn once with a looser cue search,
# then redrawn after that search was fixed, and the redraw also excluded the first draw's
# reviews (nobody had read them). Re-running ``--round 2`` therefore gives other reviews; rounds
# are reproducible from round 3 on, each excluding the batches of earlier rounds.

# round 3: the expectation-gap / product-quality boundary in real wording — reviews that talk
# about taste, fit, look, smell or texture (stratum ``boundary``), and JD ★1-3 at random.
TASTE = re.compile(
    "味道|香味|气味|颜色|色差|手感|质地|偏大|偏小|不喜欢|不适合|太甜|太咸|太辣|口感|款式|版型|尺码|难闻|太香|油腻|不好看"
)
ROUND3 = {
    "new23": [("online_shopping", None, "boundary", 300)],
    "new24": [("online_shopping", None, "boundary", 300)],
    "new25": [("waimai", None, "boundary", 150), ("jd_aircon", None, "random", 150)],
}


# round 4: more JD reviews with their ratings (★1-3, and ★5 — sellers export every review, and a
# praising ★5 is the "no complaint" outcome), online shopping at random over the categories with
# the fewest labels, and food delivery at random. A fifth element of a cell names the ratings.
ROUND4 = {
    "new26": [("jd_aircon", None, "random", 300)],
    "new27": [("jd_aircon", None, "random", 150), ("jd_aircon", None, "random", 150, {"4", "5"})],
    "new28": [("online_shopping", c, "random", n) for c, n in
              [("平板", 60), ("计算机", 60), ("手机", 50), ("书籍", 50), ("蒙牛", 30), ("热水器", 20), ("水果", 30)]],
    "new29": [("waimai", None, "random", 300)],
}

# round 5: the same kinds again (JD ★1-3 and ★5, online shopping across every category, food
# delivery), all at random.
ROUND5 = {
    "new30": [("jd_aircon", None, "random", 200), ("jd_aircon", None, "random", 100, {"4", "5"})],
    "new31": [("online_shopping", c, "random", n) for c, n in
              [("平板", 50), ("计算机", 50), ("手机", 50), ("书籍", 50), ("衣服", 25), ("洗发水", 25), ("水果", 25), ("蒙牛", 25)]],
    "new32": [("waimai", None, "random", 300)],
    "new33": [("jd_aircon", None, "random", 300)],
}

# round 6: JD ★1-3 at random (most of what is left of them), food delivery at random, online
# shopping at random, and a cue search for novice buyers and pranks (``enriched``, the rarest
# causes) in online shopping and food delivery.
ROUND6 = {
    "new34": [("jd_aircon", None, "random", 300)],
    "new35": [("waimai", None, "random", 300)],
    "new36": [("online_shopping", c, "random", 50) for c in ["衣服", "洗发水", "水果", "平板", "计算机", "书籍"]],
    "new37": [("online_shopping", None, "novice_prank", 200), ("waimai", None, "novice_prank", 100)],
}


# round 7: the rarest causes and the boundaries the model gets wrong most — the cue search for
# novice buyers and pranks in online shopping (most of what is left of it), JD ★1-3 at random
# (praise under a low rating is the novice buyer), the taste-or-defect boundary in online shopping
# and food delivery, and JD ★4-5 at random (the no-complaint outcome).
ROUND7 = {
    "new38": [("online_shopping", None, "novice_prank", 300)],
    "new39": [("jd_aircon", None, "random", 300)],
    "new40": [("online_shopping", None, "boundary", 300)],
    "new41": [("waimai", None, "boundary", 150), ("jd_aircon", None, "random", 150, {"4", "5"})],
}

# round 8: the rest of the novice/prank cue search in online shopping, food delivery at random, and
# JD ★1-3 with the least-labelled online-shopping categories at random.
ROUND8 = {
    "new42": [("online_shopping", None, "novice_prank", 300)],
    "new43": [("waimai", None, "random", 300)],
    "new44": [("jd_aircon", None, "random", 150)] + [("online_shopping", c, "random", n) for c, n in
                                                     [("计算机", 40), ("手机", 40), ("书籍", 40), ("蒙牛", 30)]],
}

# round 9: purely random reviews — online shopping over every category as the pool holds them (the
# random stratum the figures are reported on), food delivery, and JD ★4-5 (every review a seller
# exports) beside online shopping's least-labelled categories.
ROUND9 = {
    "new45": [("online_shopping", None, "random", 300)],
    "new46": [("online_shopping", None, "random", 300)],
    "new47": [("waimai", None, "random", 300)],
    "new48": [("jd_aircon", None, "random", 100, {"4", "5"})] + [("online_shopping", c, "random", n) for c, n in
                                                              [("计算机", 50), ("手机", 50), ("书籍", 50), ("平板", 50)]],
}

# round 10: online shopping at random again (three batches), food delivery at random, the
# taste-or-defect boundary in online shopping (the confusion the model makes most, and the one an
# unseen category such as cosmetics turns on), and the last JD ★1-3 reviews with JD ★4-5 and the
# least-labelled online-shopping categories.
ROUND10 = {
    "new49": [("online_shopping", None, "random", 300)],
    "new50": [("online_shopping", None, "random", 300)],
    "new51": [("online_shopping", None, "random", 300)],
    "new52": [("waimai", None, "random", 300)],
    "new53": [("online_shopping", None, "boundary", 300)],
    "new54": [("jd_aircon", None, "random", 30), ("jd_aircon", None, "random", 70, {"4", "5"})]
    + [("online_shopping", c, "random", 50) for c in ["计算机", "书籍", "手机", "蒙牛"]],
}

# round 11: the same, drawn among what round 10 left: online shopping at random (four batches),
# food delivery at random and the taste-or-defect boundary.
ROUND11 = {
    "new55": [("online_shopping", None, "random", 300)],
    "new56": [("online_shopping", None, "random", 300)],
    "new57": [("online_shopping", None, "random", 300)],
    "new58": [("online_shopping", None, "random", 300)],
    "new59": [("waimai", None, "random", 300)],
    "new60": [("online_shopping", None, "boundary", 300)],
}

# round 12: online shopping at random (four batches and a half), food delivery at random, and the
# last of the taste-or-defect boundary cue search.
ROUND12 = {
    "new61": [("online_shopping", None, "random", 300)],
    "new62": [("online_shopping", None, "random", 300)],
    "new63": [("online_shopping", None, "random", 300)],
    "new64": [("online_shopping", None, "random", 300)],
    "new65": [("waimai", None, "random", 300)],
    "new66": [("online_shopping", None, "boundary", 150), ("online_shopping", None, "random", 150)],
}

# round 13: online shopping at random (five batches) and food delivery at random.
ROUND13 = {f"new{k}": [("online_shopping", None, "random", 300)] for k in range(67, 72)}
ROUND13["new72"] = [("waimai", None, "random", 300)]

# round 14: the same kinds as round 13.
ROUND14 = {f"new{k}": [("online_shopping", None, "random", 300)] for k in range(73, 78)}
ROUND14["new78"] = [("waimai", None, "random", 300)]

# round 15 (2026-12-03): online shopping at random (eight batches) and food delivery at random (two).
ROUND15 = {f"new{k}": [("online_shopping", None, "random", 300)] for k in range(79, 87)}
ROUND15.update({f"new{k}": [("waimai", None, "random", 300)] for k in (87, 88)})

# round 16: the same kinds as round 15.
ROUND16 = {f"new{k}": [("online_shopping", None, "random", 300)] for k in range(89, 97)}
ROUND16.update({f"new{k}": [("waimai", None, "random", 300)] for k in (97, 98)})

# round 17: the same kinds again.
ROUND17 = {f"new{k}": [("online_shopping", None, "random", 300)] for k in range(99, 107)}
ROUND17.update({f"new{k}": [("waimai", None, "random", 300)] for k in (107, 108)})

# round 18: the same kinds again (read after version 0.8.0 was trained; the next model's labels).
ROUND18 = {f"new{k}": [("online_shopping", None, "random", 300)] for k in range(109, 115)}
ROUND18.update({f"new{k}": [("waimai", None, "random", 300)] for k in (115, 116)})

# round 19 (2026-12-03): the last of the online-shopping and food-delivery pools at random (a cell
# asks for more than is left and gets the rest: 190 and 349), and JD ★4-5 at random (only ★5 is
# left: the no-complaint outcome a seller exporting every review meets most).
ROUND19 = {f"new{k}": [("online_shopping", None, "random", 300)] for k in (117, 118, 119)}
ROUND19.update({"new120": [("waimai", None, "random", 300)], "new121": [("waimai", None, "random", 400)],
                "new122": [("jd_aircon", None, "random", 300, {"4", "5"})]})

# round 20 (2026-12-04): the last of the JD pool, ★5 at random (the third cell asks for more than is
# left and gets the rest).
ROUND20 = {f"new{k}": [("jd_aircon", None, "random", n, {"4", "5"})] for k, n in ((123, 300), (124, 300), (125, 400))}


def draw_round2(plan: dict | None = None, seed: int = ROUND2_SEED) -> dict[str, pd.DataFrame]:
    plan = ROUND2 if plan is None else plan
    number = lambda name: int(name[3:])  # noqa: E731  new01 … new99, new100 …: by number, not as text
    first = min(map(number, plan))  # the batches of earlier rounds (so a round draws the same again)
    taken = set()
    for path in OUT.glob("*.csv"):
        if path.stem.startswith("old") or number(path.stem) < first:
            taken |= set(pd.read_csv(path, dtype=str).id)
    sample = pd.read_csv(HERE.parent / "sample_reviews.csv", dtype=str)
    taken |= set(sample.iloc[:, 0])
    pools = {
        "online_shopping": pd.read_csv(RAW / "online_shopping_neg.csv", dtype=str).assign(rating=""),
        "jd_aircon": pd.read_csv(RAW / "jd_aircon.csv", dtype=str).assign(category="空调"),
        "waimai": pd.read_csv(RAW / "waimai_neg.csv", dtype=str).assign(category="外卖", rating=""),
    }
    cols = ["id", "source", "category", "rating", "stratum", "text"]
    out = {}
    for batch, cells in plan.items():
        parts = []
        for source, category, stratum, n, *ratings in cells:
            pool = pools[source]
            pool = pool[~pool.id.isin(taken)]
            if category is not None:
                pool = pool[pool.category == category]
            if stratum == "enriched":
                pool = pool[pool.text.str.contains(ENRICH) | pool.text.str.contains(NOVICE_PRANK)]
            if stratum == "novice_prank":
                pool = pool[pool.text.str.contains(NOVICE_PRANK)]
            if stratum == "boundary":
                pool = pool[pool.text.str.contains(TASTE)]
            if source == "jd_aircon" and ratings:
                pool = pool[pool.rating.isin(ratings[0])]
            elif source == "jd_aircon":  # complaints or ★1-3 praise, not the bulk of ★5 praise
                pool = pool[pool.rating.astype(int) <= 3]
            part = pool.sample(min(n, len(pool)), random_state=seed)
            taken |= set(part.id)
            label = "enriched" if stratum == "novice_prank" else stratum
            parts.append(part.assign(source=source, stratum=label)[cols])
        out[batch] = pd.concat(parts).sample(frac=1, random_state=seed).reset_index(drop=True)
    return out


if __name__ == "__main__" and sys.argv[1:2] == ["--round"]:
    plans = {"2": (ROUND2, ROUND2_SEED), "3": (ROUND3, ROUND2_SEED + 1), "4": (ROUND4, ROUND2_SEED + 2),
             "5": (ROUND5, ROUND2_SEED + 3), "6": (ROUND6, ROUND2_SEED + 4),
             "7": (ROUND7, ROUND2_SEED + 5), "8": (ROUND8, ROUND2_SEED + 6),
             "9": (ROUND9, ROUND2_SEED + 7), "10": (ROUND10, ROUND2_SEED + 8),
             "11": (ROUND11, ROUND2_SEED + 9), "12": (ROUND12, ROUND2_SEED + 10),
             "13": (ROUND13, ROUND2_SEED + 11),
             "14": (ROUND14, ROUND2_SEED + 12), "15": (ROUND15, ROUND2_SEED + 13),
             "16": (ROUND16, ROUND2_SEED + 14), "17": (ROUND17, ROUND2_SEED + 15),
             "18": (ROUND18, ROUND2_SEED + 16), "19": (ROUND19, ROUND2_SEED + 17),
             "20": (ROUND20, ROUND2_SEED + 18)}
    for name, frame in draw_round2(*plans[sys.argv[2]]).items():
        write_batch(frame, name)
        print(name, len(frame), frame.groupby(["source", "stratum"]).size().to_dict())
elif __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    new, old = draw()
    print("new:", len(new), new.groupby(["source", "stratum"]).size().to_dict())
    print("second readings:", len(old))
    print(write(new, "new"), write(old, "old"))
