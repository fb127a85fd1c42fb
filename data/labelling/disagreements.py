"""Write the disagreements of two readings of a batch for the adjudicator.

    python data/labelling/disagreements.py new02          # new batches: readers A and B
    python data/labelling/disagreements.py old01          # old batches: the shipped label is reading A

A disagreement is a different primary cause or a different set of causes. Writes
``readings/<batch>.disagree.txt`` (id, source, text, reading A, reading B) and prints counts.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent


def readings(batch: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    b = pd.read_csv(HERE / "readings" / f"{batch}.B.csv", dtype=str, keep_default_na=False)
    if batch.startswith("old"):
        a = pd.concat([
            pd.read_csv(HERE.parent / "raw" / "labels_dev.csv", dtype=str, keep_default_na=False),
            pd.read_csv(HERE.parent / "jd_labels.csv", dtype=str, keep_default_na=False),
        ])[["id", "labels", "primary"]]
    else:
        a = pd.read_csv(HERE / "readings" / f"{batch}.A.csv", dtype=str, keep_default_na=False)
    return a, b


def compare(batch: str) -> pd.DataFrame:
    src = pd.read_csv(HERE / "batches" / f"{batch}.csv", dtype=str, keep_default_na=False)
    a, b = readings(batch)
    m = src.merge(a[["id", "labels", "primary"]], on="id").merge(
        b[["id", "labels", "primary"]], on="id", suffixes=("_a", "_b"))
    assert len(m) == len(src), f"{batch}: readings do not cover the batch"
    sets = lambda s: s.map(lambda x: "|".join(sorted(x.split("|"))))
    m["agree_primary"] = m.primary_a == m.primary_b
    m["agree_labels"] = sets(m.labels_a) == sets(m.labels_b)
    return m


if __name__ == "__main__":
    for batch in sys.argv[1:]:
        m = compare(batch)
        d = m[~(m.agree_primary & m.agree_labels)]
        with open(HERE / "readings" / f"{batch}.disagree.txt", "w", encoding="utf-8") as fh:
            for r in d.itertuples():
                meta = f"{r.source}/{r.category}" + (f" ★{r.rating}" if r.rating else "")
                text = " ⏎ ".join(str(r.text).splitlines())
                fh.write(f"{r.id}\t{meta}\t{text}\n\tA: {r.labels_a} (primary {r.primary_a})\n\tB: {r.labels_b} (primary {r.primary_b})\n")
        print(f"{batch}: {len(m)} rows, primary agreement {m.agree_primary.mean():.3f}, "
              f"label-set agreement {m.agree_labels.mean():.3f}, to adjudicate {len(d)}")
