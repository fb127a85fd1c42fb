"""Check one reading file against its batch: every id once, in order, valid labels.

    python data/labelling/check.py data/labelling/readings/new01.A.csv

The batch is found from the file name (``<batch>.<reader>.csv``). Exit 0 and "OK n rows" when
the file is complete; otherwise one line per problem and exit 1.
"""
from __future__ import annotations

import csv
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository: the cause ids of pipeline/taxonomy.py (no dependencies)
from pipeline.taxonomy import CAUSE_IDS  # noqa: E402

CAUSES = list(CAUSE_IDS)
VALID = set(CAUSES) | {"none"}
CONFIDENCE = {"high", "medium", "low"}
HERE = Path(__file__).resolve().parent


def problems(path: Path) -> tuple[list[str], int]:
    batch = path.name.split(".")[0]
    with open(HERE / "batches" / f"{batch}.csv", encoding="utf-8", newline="") as fh:
        want = [r["id"] for r in csv.DictReader(fh)]
    if path.name.endswith(".adj.csv"):  # adjudication covers only the disagreements
        want = None
    out: list[str] = []
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None or reader.fieldnames[:4] != ["id", "labels", "primary", "confidence"]:
            return [f"{path}: header must be id,labels,primary,confidence (got {reader.fieldnames})"], 0
        rows = list(reader)
    seen = []
    for i, r in enumerate(rows, start=2):
        labels = [x.strip() for x in (r["labels"] or "").split("|") if x.strip()]
        if not labels:
            out.append(f"line {i} ({r['id']}): no labels")
        bad = [x for x in labels if x not in VALID]
        if bad:
            out.append(f"line {i} ({r['id']}): unknown label(s) {bad}")
        if "none" in labels and len(labels) > 1:
            out.append(f"line {i} ({r['id']}): 'none' together with causes")
        if (r["primary"] or "").strip() not in labels:
            out.append(f"line {i} ({r['id']}): primary {r['primary']!r} is not among labels {labels}")
        if (r["confidence"] or "").strip() not in CONFIDENCE:
            out.append(f"line {i} ({r['id']}): confidence must be high/medium/low")
        seen.append(r["id"])
    if want is not None:
        missing = [x for x in want if x not in set(seen)]
        extra = [x for x in seen if x not in set(want)]
        dup = {x for x in seen if seen.count(x) > 1}
        if missing:
            out.append(f"{len(missing)} id(s) missing, first: {missing[:5]}")
        if extra:
            out.append(f"{len(extra)} id(s) not in the batch: {extra[:5]}")
        if dup:
            out.append(f"duplicate id(s): {sorted(dup)[:5]}")
        if not missing and not extra and not dup and seen != want:
            out.append("ids are not in the batch's order")
    return out, len(rows)


if __name__ == "__main__":
    status = 0
    for arg in sys.argv[1:]:
        errs, n = problems(Path(arg))
        for e in errs:
            print(f"{arg}: {e}")
        if errs:
            status = 1
        else:
            print(f"{arg}: OK {n} rows")
    sys.exit(status)
