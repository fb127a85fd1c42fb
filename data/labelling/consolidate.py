"""Build ``data/labels.csv`` — every double-read label with its provenance — and the agreement table.

    python data/labelling/consolidate.py        (make data/labels.csv)

For each batch whose readings are complete (both readings, and an adjudication file when they
disagree) every row gets: ``id, source, category, rating, stratum, labels, primary,
agreement`` (``both`` = same primary and same causes, ``primary`` = same primary only, ``split``
= different primaries), ``adjudicated`` (true when a third reading settled it), ``readers`` (the
readings behind it). Old batches (second readings of ``raw/labels_dev.csv`` / ``jd_labels.csv``)
use the shipped label as reading A. Texts stay in ``raw/`` and are joined by id.

Writes ``data/labelling/agreement.csv``: raw agreement and Cohen's κ on the primary cause per
source and stratum.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
from sklearn.metrics import cohen_kappa_score

HERE = Path(__file__).resolve().parent
import sys  # noqa: E402

sys.path.insert(0, str(HERE))
from disagreements import compare  # noqa: E402

OUT = HERE.parent / "labels.csv"


def batches() -> list[str]:
    """new01 … new99, new100 …, then old01 …: by number (as text new100 would sort before new11)."""
    return sorted((p.stem for p in (HERE / "batches").glob("*.csv")), key=lambda s: (s[:3], int(s[3:])))


def complete(batch: str) -> bool:
    """Both readings exist and pass the checker (every id once, in order, valid labels)."""
    from check import problems

    r = HERE / "readings"
    need = [r / f"{batch}.B.csv"] + ([] if batch.startswith("old") else [r / f"{batch}.A.csv"])
    return all(p.exists() and not problems(p)[0] for p in need)


def consolidate() -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    rows, waiting = [], []
    for batch in batches():
        if not complete(batch):
            waiting.append(batch)
            continue
        m = compare(batch)
        adj_path = HERE / "readings" / f"{batch}.adj.csv"
        disagree = ~(m.agree_primary & m.agree_labels)
        adj = pd.read_csv(adj_path, dtype=str, keep_default_na=False) if adj_path.exists() else None
        if disagree.any() and (adj is None or not set(m.loc[disagree, "id"]) <= set(adj["id"])):
            waiting.append(batch + " (adjudication)")
            continue
        m["labels"], m["primary"] = m["labels_b"], m["primary_b"]
        agreed = ~disagree
        m.loc[agreed, "labels"] = m.loc[agreed, "labels_a"]
        if adj is not None:
            a = adj.set_index("id")
            for i in m.index[disagree]:
                m.at[i, "labels"], m.at[i, "primary"] = a.at[m.at[i, "id"], "labels"], a.at[m.at[i, "id"], "primary"]
        m["agreement"] = "split"
        m.loc[m.agree_primary, "agreement"] = "primary"
        m.loc[m.agree_primary & m.agree_labels, "agreement"] = "both"
        m["adjudicated"] = disagree
        m["readers"] = ("shipped+B" if batch.startswith("old") else "A+B") + m["adjudicated"].map({True: "+adjudicator", False: ""})
        m["batch"] = batch
        rows.append(m)
    frame = pd.concat(rows, ignore_index=True)
    cols = ["id", "source", "category", "rating", "stratum", "labels", "primary", "agreement", "adjudicated", "readers",
            "batch", "primary_a", "primary_b"]
    frame = frame[cols]
    stats = []
    for (source, stratum), g in frame.groupby(["source", "stratum"]):
        stats.append({"source": source, "stratum": stratum, "n": len(g),
                      "raw_agreement_primary": round((g.primary_a == g.primary_b).mean(), 4),
                      "cohen_kappa_primary": round(cohen_kappa_score(g.primary_a, g.primary_b), 4),
                      "adjudicated": int(g.adjudicated.sum())})
    for source, g in frame.groupby("source"):
        stats.append({"source": source, "stratum": "all", "n": len(g),
                      "raw_agreement_primary": round((g.primary_a == g.primary_b).mean(), 4),
                      "cohen_kappa_primary": round(cohen_kappa_score(g.primary_a, g.primary_b), 4),
                      "adjudicated": int(g.adjudicated.sum())})
    return frame, pd.DataFrame(stats), waiting


if __name__ == "__main__":
    frame, stats, waiting = consolidate()
    frame.drop(columns=["primary_a", "primary_b"]).assign(adjudicated=frame.adjudicated.map({True: "true", False: "false"})) \
        .to_csv(OUT, index=False)
    stats.to_csv(HERE / "agreement.csv", index=False)
    print(f"{len(frame)} double-read labels → {OUT}")
    print(stats.to_string(index=False))
    if waiting:
        print("not yet complete:", ", ".join(waiting))
