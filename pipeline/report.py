"""Reports over a predictions CSV: the appeal export and the cause/DSR summary."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.batch import is_masked
from pipeline.predict import PRED_COLUMNS
from pipeline.tables import InputError, atomic_csv, find_columns
from pipeline.taxonomy import BY_ID, CAUSES, EMPTY, UNCERTAIN

REQUIRED = ("review_id", "cause", "suspected_malicious", "malicious_score", "cluster_id", "evidence")
SUSPECT_COLUMNS = [
    "group", "group_kind", "group_size", "group_strength", "review_id", "buyer", "item", "date", "rating",
    "text", "cause", "cause_zh", "malicious_score", "evidence", "what_to_do",
]


def read_predictions(path: Path | str) -> tuple[pd.DataFrame, dict[str, str | None]]:
    """A predictions CSV written by ``reviewcause score`` and the roles of its input columns."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InputError(f"{path}: not a predictions CSV ({type(exc).__name__})") from None
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise InputError(f"{path}: not a predictions file from 'reviewcause score' (missing column(s): {', '.join(missing)})")
    inputs = [c for c in df.columns if c not in PRED_COLUMNS]
    return df, find_columns(inputs, where=str(path))


def suspects(pred_path: Path | str, out_path: Path | str, bom: bool = True) -> dict[str, int]:
    """Write the suspected malicious reviews, grouped by campaign, then buyer, strongest first."""
    df, roles = read_predictions(pred_path)
    sus = df[df["suspected_malicious"].str.lower() == "true"].copy()

    def col(role: str) -> pd.Series:
        return sus[roles[role]] if roles.get(role) else pd.Series("", index=sus.index)

    sus["_score"] = pd.to_numeric(sus["malicious_score"], errors="coerce").fillna(0.0)
    buyer = col("buyer")
    repeat = buyer.map(buyer.value_counts()) >= 2
    use_buyer = repeat & ~buyer.map(is_masked)
    kind = np.where(sus["cluster_id"] != "", "campaign", np.where(use_buyer, "buyer", "single"))
    group = np.where(kind == "campaign", sus["cluster_id"], np.where(kind == "buyer", "B:" + buyer, "R:" + sus["review_id"]))
    sus["group"], sus["group_kind"] = group, kind
    sus["group_size"] = sus.groupby("group")["review_id"].transform("size")
    sus["group_strength"] = sus.groupby("group")["_score"].transform("max")
    sus = sus.sort_values(["group_strength", "group_size", "group", "_score"], ascending=[False, False, True, False], kind="stable")
    out = pd.DataFrame({
        "group": sus["group"], "group_kind": sus["group_kind"], "group_size": sus["group_size"],
        "group_strength": sus["group_strength"].map("{:.4f}".format), "review_id": sus["review_id"],
        "buyer": col("buyer"), "item": col("item"), "date": col("date"), "rating": col("rating"), "text": col("text"),
        "cause": sus["cause"], "cause_zh": sus["cause"].map(lambda c: BY_ID[c].zh if c in BY_ID else ""),
        "malicious_score": sus["malicious_score"], "evidence": sus["evidence"],
        "what_to_do": sus["cause"].map(lambda c: BY_ID[c].remedy if c in BY_ID and BY_ID[c].malicious else "向平台申诉，附上证据"),
    })
    with atomic_csv(out_path, bom=bom) as w:
        w.header(SUSPECT_COLUMNS)
        w.rows(out[SUSPECT_COLUMNS].astype(str).to_numpy().tolist())
    return {"rows": len(df), "suspects": len(out), "groups": int(out["group"].nunique())}


def summary(pred_path: Path | str) -> pd.DataFrame:
    """Count of primary causes with their share, DSR dimension and the seeds' remedy."""
    df, _ = read_predictions(pred_path)
    counts = df["cause"].value_counts()
    rows = []
    for c in CAUSES:
        n = int(counts.get(c.id, 0))
        rows.append({"cause": c.id, "zh": c.zh, "reviews": n, "dsr": c.dsr, "remedy": c.remedy})
    for special in (UNCERTAIN, EMPTY):
        if counts.get(special, 0):
            rows.append({"cause": special, "zh": "", "reviews": int(counts[special]), "dsr": "", "remedy": ""})
    out = pd.DataFrame(rows)
    total = max(int(out["reviews"].sum()), 1)
    out.insert(3, "share", (out["reviews"] / total).map("{:.1%}".format))
    out["suspected_malicious"] = [int(((df["cause"] == c) & (df["suspected_malicious"] == "true")).sum()) for c in out["cause"]]
    return out
