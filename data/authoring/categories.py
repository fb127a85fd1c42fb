"""Reviews of product categories that ``data/`` lacks, written and double-read by the guide.

The shipped corpora cover nine online-shopping categories, food delivery and air conditioners;
sellers of cosmetics, shoes, furniture, pet food … get reviews in words those corpora never use.
So writers (helper sessions) wrote reviews of 20 other categories by ``shared/spec/causes.md`` —
many near pairs across its taste-vs-performs-badly boundary — each with the writer's labels
(reading A). A second reader labelled the texts alone, blind to the writer's labels (reading B),
and a third settled every disagreement. Training only (weight 0.5, like ``authored.jsonl``);
never evaluated, since they are not real reviews.

    python data/authoring/categories.py prepare   # wN.csv → ids, wN.txt (texts for reader B)
    python data/authoring/categories.py check     # every reading complete and valid
    python data/authoring/categories.py disagree  # wN.disagree.txt for the adjudicator
    python data/authoring/categories.py build     # → data/authored_categories.jsonl

Files in ``categories/``: ``wN.csv`` (writer: category,text,labels,primary), ``wN.ids.csv``
(the same rows with ids), ``wN.txt`` (id, category, text), ``wN.B.csv`` (reader B:
id,labels,primary,confidence), ``wN.adj.csv`` (adjudication: id,labels,primary,confidence,note).
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent / "categories"
OUT = HERE.parent.parent / "authored_categories.jsonl"
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository: the cause ids of pipeline/taxonomy.py (no dependencies)
from pipeline.taxonomy import CAUSE_IDS  # noqa: E402

CAUSES = list(CAUSE_IDS)
VALID = set(CAUSES) | {"none"}


def writers() -> list[str]:
    return sorted(p.stem for p in HERE.glob("w*.csv") if "." not in p.stem)  # not wN.B / wN.adj / wN.ids


def _read(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def _labels(row: dict[str, str]) -> tuple[str, ...]:
    return tuple(sorted(x.strip() for x in (row.get("labels") or "").split("|") if x.strip()))


def problems(rows: list[dict[str, str]], want: list[str] | None, name: str) -> list[str]:
    out = []
    for i, r in enumerate(rows, start=2):
        labels = _labels(r)
        if not labels or not set(labels) <= VALID or ("none" in labels and len(labels) > 1):
            out.append(f"{name} line {i}: labels {r.get('labels')!r} invalid")
        if (r.get("primary") or "").strip() not in labels:
            out.append(f"{name} line {i}: primary {r.get('primary')!r} not among labels")
    if want is not None:
        got = [r["id"] for r in rows]
        if got != want:
            out.append(f"{name}: ids differ from the batch (missing {sorted(set(want) - set(got))[:5]}, "
                       f"extra {sorted(set(got) - set(want))[:5]}, or out of order)")
    return out


def prepare() -> None:
    for w in writers():
        rows = [r for r in _read(HERE / f"{w}.csv") if (r.get("text") or "").strip()]
        errs = problems(rows, None, f"{w}.csv")
        if errs:
            raise SystemExit("\n".join(errs))
        with open(HERE / f"{w}.ids.csv", "w", encoding="utf-8", newline="") as fh:
            out = csv.writer(fh)
            out.writerow(["id", "category", "text", "labels", "primary"])
            for k, r in enumerate(rows, start=1):
                out.writerow([f"a{w}{k:03d}", r["category"], r["text"].strip(), r["labels"], r["primary"]])
        with open(HERE / f"{w}.txt", "w", encoding="utf-8") as fh:
            for k, r in enumerate(rows, start=1):
                fh.write(f"a{w}{k:03d}\t{r['category']}\t{' ⏎ '.join(r['text'].strip().splitlines())}\n")
        print(w, len(rows))


def check() -> int:
    bad = 0
    for w in writers():
        want = [r["id"] for r in _read(HERE / f"{w}.ids.csv")]
        for suffix in ("B", "adj"):
            path = HERE / f"{w}.{suffix}.csv"
            if path.exists():
                rows = _read(path)
                errs = problems(rows, want if suffix == "B" else None, path.name)
                print("\n".join(errs) if errs else f"{path.name}: OK {len(rows)} rows")
                bad += bool(errs)
    return 1 if bad else 0


def disagree() -> None:
    for w in writers():
        a = {r["id"]: r for r in _read(HERE / f"{w}.ids.csv")}
        b = _read(HERE / f"{w}.B.csv")
        n = 0
        with open(HERE / f"{w}.disagree.txt", "w", encoding="utf-8") as fh:
            for r in b:
                x = a[r["id"]]
                if _labels(x) != _labels(r) or x["primary"] != r["primary"]:
                    n += 1
                    fh.write(f"{r['id']}\t{x['category']}\t{x['text']}\n  A: {x['labels']} (primary {x['primary']})\n"
                             f"  B: {r['labels']} (primary {r['primary']})\n\n")
        print(f"{w}: {len(b)} rows, primary agreement {sum(a[r['id']]['primary'] == r['primary'] for r in b) / len(b):.3f}, "
              f"to adjudicate {n}")


def build() -> None:
    rows = []
    for w in writers():
        a = _read(HERE / f"{w}.ids.csv")
        b = {r["id"]: r for r in _read(HERE / f"{w}.B.csv")}
        adj_path = HERE / f"{w}.adj.csv"
        adj = {r["id"]: r for r in _read(adj_path)} if adj_path.exists() else {}
        for x in a:
            y = b[x["id"]]
            same = _labels(x) == _labels(y) and x["primary"] == y["primary"]
            if not same and x["id"] not in adj:
                raise SystemExit(f"{w}: {x['id']} disagrees and is not adjudicated yet")
            final = x if same else adj[x["id"]]
            rows.append({"id": x["id"], "text": x["text"], "labels": list(_labels(final)),
                         "primary": final["primary"].strip(), "category": x["category"],
                         "agreement": "both" if same else ("primary" if x["primary"] == y["primary"] else "split"),
                         "adjudicated": not same})
    with open(OUT, "w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    agree = sum(r["agreement"] != "split" for r in rows) / max(len(rows), 1)
    print(f"{len(rows)} reviews → {OUT} (writer and reader agree on the primary for {agree:.3f})")


if __name__ == "__main__":
    step = sys.argv[1] if len(sys.argv) > 1 else ""
    if step == "check":
        sys.exit(check())
    {"prepare": prepare, "disagree": disagree, "build": build}.get(step, lambda: sys.exit(__doc__))()
