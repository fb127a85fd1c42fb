"""Second reading of the two evaluation-only sets (data/foreign_reviews.csv, data/cantonese_reviews.csv).

The writer's labels are reading A; a second helper labelled the texts blind (reading B, in
``readings/<set>_B.csv``); a third settled the primary-cause disagreements (``readings/<set>_adj.csv``).
This script reports raw agreement and Cohen's kappa on the primary cause, lists the disagreements
(``--disagreements``) and writes the provenance columns into the set (``--apply``):
``reading_b_labels, reading_b_primary, agreement`` (A and B agree on the primary), ``adjudicated``.
The set's ``labels``/``primary`` become the adjudicator's where the readers split.

    python data/labelling/evalsets/second_reading.py foreign [--disagreements | --apply]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd
from sklearn.metrics import cohen_kappa_score

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent
SETS = {"foreign": DATA / "foreign_reviews.csv", "cantonese": DATA / "cantonese_reviews.csv"}
CAUSES = {"expectation_gap", "service_attitude", "stockout_logistics", "product_quality", "novice_buyer", "prank",
          "competitor_sabotage", "extortion", "none"}


def read(path: Path, ids) -> pd.DataFrame:
    df = pd.read_csv(path, dtype=str, keep_default_na=False).set_index("id")
    missing = set(ids) - set(df.index)
    if missing or df.index.duplicated().any():
        sys.exit(f"{path}: {len(missing)} ids missing or ids repeated")
    for col in ("labels", "primary"):
        if col in df:
            bad = [v for v in df[col] for c in v.split("|") if c not in CAUSES]
            if bad:
                sys.exit(f"{path}: invalid label {bad[0]!r} in {col}")
    return df.loc[list(ids)]


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("name", choices=SETS)
    p.add_argument("--disagreements", action="store_true")
    p.add_argument("--apply", action="store_true")
    a = p.parse_args()
    base = pd.read_csv(SETS[a.name], dtype=str, keep_default_na=False)
    A = base.set_index("id")
    B = read(HERE / "readings" / f"{a.name}_B.csv", A.index)
    agree = A["primary"].to_numpy() == B["primary"].to_numpy()
    print(f"{a.name}: {len(A)} reviews, raw agreement on the primary {agree.mean():.3f}, "
          f"Cohen's kappa {cohen_kappa_score(A['primary'], B['primary']):.3f}; {int((~agree).sum())} to adjudicate")
    if a.disagreements:
        text_col = [c for c in base.columns if c not in ("labels", "primary", "reading_b_labels", "reading_b_primary",
                                                         "agreement", "adjudicated")]
        out = base.set_index("id").loc[~agree, [c for c in text_col if c != "id"]]
        out = out.assign(reading_1_labels=A.loc[~agree, "labels"], reading_1_primary=A.loc[~agree, "primary"],
                         reading_2_labels=B.loc[~agree, "labels"], reading_2_primary=B.loc[~agree, "primary"])
        out.to_csv(HERE / "readings" / f"{a.name}_disagreements.csv")
    if a.apply:
        adj = read(HERE / "readings" / f"{a.name}_adj.csv", A.index[~agree])
        base["reading_b_labels"] = B["labels"].to_numpy()
        base["reading_b_primary"] = B["primary"].to_numpy()
        base["agreement"] = agree.astype(int)
        base["adjudicated"] = (~agree).astype(int)
        at = base["id"].isin(adj.index).to_numpy()
        base.loc[at, "labels"] = adj.loc[base.loc[at, "id"], "labels"].to_numpy()
        base.loc[at, "primary"] = adj.loc[base.loc[at, "id"], "primary"].to_numpy()
        base.to_csv(SETS[a.name], index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
