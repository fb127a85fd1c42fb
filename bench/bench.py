"""Benchmark for ``make bench``: the figures of the speed issue, and where scoring time goes.

**Issue 13 figures** (the headline): ``score_file`` end to end — read, normalise, segment,
features, model, evidence, batch signals, write — with ``--jobs`` processes and batch signals on,
at each size N (default 200k and 1M reviews sampled with replacement from
``data/raw/online_shopping_neg.csv``), each run paired with the **reference segmenter** measured
in the same bench: jieba (precise mode, HMM off) on one core, on 20,000 of the same normalised
reviews, run just before. The machine is shared, so each pair is repeated (``--repeat``; 1M rows
``--repeat-large``) and min / median are reported; the ratio is taken pair by pair. Peak RSS
is read for the main process and the largest worker, for the 1M-review file and for a file of
20,000 cells of 3,000 characters (``--long``).

**Stages** (``--stages``, default on at the first size), each in a fresh process so that peak
RSS is the stage's own:

* ``io``        — read the CSV in chunks and write it back with the scorer's writer (the floor);
* ``normalize`` — normalisation alone, on texts already in memory;
* ``segment``   — segmentation alone (on normalised texts), default backend;
* ``score``     — ``score_file`` end to end with 1 process (the ``--jobs`` run is the headline);
* ``load``      — loading the model;
* ``spark``     — with ``--spark``: ``score_file_spark`` on a ``local[JOBS]`` Spark (session start,
                  staging, the Spark job, writing), peak memory summed over the driver, the JVM
                  and the Python workers (sampled every 0.2 s).

It prints a table, writes ``bench/results.json`` and ``bench/results.md``, and logs the figures
to the MLflow experiment ``reviewcause-bench``.

    python bench/bench.py --sizes 200000 1000000 --jobs 2 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))


def peak_rss_mb() -> tuple[float, float]:
    """Peak resident memory of this process and of its largest child (MB; Linux reports KB)."""
    me = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return round(me, 1), round(kids, 1)


def make_input(n: int, path: Path) -> Path:
    import numpy as np
    import pandas as pd

    if path.exists():
        return path
    corpus = pd.read_csv(ROOT / "data" / "raw" / "online_shopping_neg.csv", dtype=str)
    rng = np.random.default_rng(n)
    pick = corpus.iloc[rng.integers(0, len(corpus), n)]
    frame = pd.DataFrame({"id": [f"r{i:07d}" for i in range(n)], "category": pick["category"].to_numpy(),
                          "text": pick["text"].to_numpy()})
    tmp = path.with_suffix(".tmp")
    frame.to_csv(tmp, index=False)
    os.replace(tmp, path)
    return path


def make_long_input(rows: int, chars: int, path: Path) -> Path:
    """``rows`` cells of exactly ``chars`` characters: real reviews joined until long enough."""
    import numpy as np
    import pandas as pd

    if path.exists():
        return path
    corpus = pd.read_csv(ROOT / "data" / "raw" / "online_shopping_neg.csv", dtype=str, keep_default_na=False)["text"].tolist()
    rng = np.random.default_rng(rows * chars)
    cells = []
    for _ in range(rows):
        parts, n = [], 0
        while n < chars:
            t = corpus[int(rng.integers(len(corpus)))]
            parts.append(t)
            n += len(t) + 1
        cells.append("，".join(parts)[:chars])
    tmp = path.with_suffix(".tmp")
    pd.DataFrame({"id": [f"L{i:06d}" for i in range(rows)], "text": cells}).to_csv(tmp, index=False)
    os.replace(tmp, path)
    return path


#: reviews the reference segmenter reads in each pairing (its speed, not the file's size, counts)
JIEBA_ROWS = 20_000


def _texts(path: Path) -> list[str]:
    import pandas as pd

    return pd.read_csv(path, dtype=str, keep_default_na=False)["text"].tolist()


def stage(name: str, path: Path, model: Path, jobs: int, backend: str) -> dict:
    """Run one stage in this process and return its figures."""
    from pipeline.segment import use_backend

    if name == "generate":
        if path.stem.startswith("long_"):
            rows, chars = path.stem[len("long_"):].split("x")
            make_long_input(int(rows), int(chars), path)
        else:
            make_input(int(path.stem.rsplit("_", 1)[-1]), path)
        return {"stage": name}

    use_backend(backend)
    size = path.stat().st_size
    if name == "io":
        from pipeline.tables import atomic_csv, open_table

        t0 = time.perf_counter()
        table = open_table(path)
        rows = 0
        with atomic_csv(path.with_suffix(".io.csv")) as out:
            out.header(table.columns)
            for chunk in table.chunks():
                out.rows(chunk.to_numpy(dtype=object).tolist())
                rows += len(chunk)
        seconds = time.perf_counter() - t0
        path.with_suffix(".io.csv").unlink()
    elif name == "jieba_ref":  # the reference: jieba, precise mode, HMM off, one process
        from pipeline.normalize import normalize_many
        from pipeline.segment import segment_with

        norm = normalize_many(_texts(path)[:JIEBA_ROWS])
        rows = len(norm)
        segment_with(norm[0], "jieba")  # build the dictionary before timing
        t0 = time.perf_counter()
        for t in norm:
            segment_with(t, "jieba")
        seconds = time.perf_counter() - t0
        size = sum(len(t.encode("utf-8")) for t in norm)
    elif name in ("normalize", "segment"):
        from pipeline.normalize import normalize_many
        from pipeline.segment import segment

        texts = _texts(path)
        rows = len(texts)
        if name == "normalize":
            t0 = time.perf_counter()
            normalize_many(texts)
        else:
            norm = normalize_many(texts)
            segment(norm[0])  # build the dictionary before timing
            t0 = time.perf_counter()
            for t in norm:
                segment(t)
        seconds = time.perf_counter() - t0
    elif name == "score":
        from pipeline.run import score_file

        t0 = time.perf_counter()
        summary = score_file(path, path.with_suffix(".pred.csv"), model_path=model, jobs=jobs)
        seconds = time.perf_counter() - t0
        rows = summary["rows"]
        path.with_suffix(".pred.csv").unlink()
    elif name == "spark":
        return spark_stage(path, model, jobs, backend, size)
    elif name == "load":
        from pipeline.persist import load_predictor as load_model

        t0 = time.perf_counter()
        load_model(model)
        seconds = time.perf_counter() - t0
        rows = 0
    else:
        raise SystemExit(f"unknown stage {name}")
    me, kids = peak_rss_mb()
    return {"stage": name, "rows": rows, "seconds": round(seconds, 3),
            "reviews_per_s": round(rows / seconds) if rows else None,
            "mb_per_s": round(size / 1e6 / seconds, 2) if rows else None,
            "peak_rss_mb": me, "peak_rss_worker_mb": kids, "jobs": jobs, "backend": backend}


def spark_stage(path: Path, model: Path, jobs: int, backend: str, size: int) -> dict:
    """``score_file_spark`` on local[jobs], with the peak memory of the whole process tree."""
    import threading

    import psutil

    from pipeline.spark import _ROUNDS, score_file_spark

    peak, done = [0], threading.Event()

    def sample():
        me = psutil.Process()
        while not done.is_set():
            total = 0
            for p in [me, *me.children(recursive=True)]:
                try:
                    total += p.memory_info().rss
                except psutil.Error:
                    pass
            peak[0] = max(peak[0], total)
            done.wait(0.2)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    timings: dict = {}
    t0 = time.perf_counter()
    summary = score_file_spark(path, path.with_suffix(".spark.csv"), model_path=model, master=f"local[{jobs}]",
                               timings=timings)
    seconds = time.perf_counter() - t0
    done.set()
    thread.join()
    path.with_suffix(".spark.csv").unlink()
    rows = summary["rows"]
    work = seconds - timings.get("session_s", 0)
    return {"stage": "spark", "rows": rows, "seconds": round(seconds, 3), "reviews_per_s": round(rows / seconds),
            "reviews_per_s_without_start": round(rows / work), "mb_per_s": round(size / 1e6 / seconds, 2),
            "peak_rss_mb": round(peak[0] / 2**20, 1), "peak_rss_worker_mb": 0.0, "jobs": jobs, "backend": backend,
            "spark": timings | {"components_rounds": _ROUNDS["last"]}}


def run_stage(name: str, path: Path, model: Path, jobs: int, backend: str) -> dict:
    out = subprocess.run(
        [sys.executable, str(Path(__file__)), "--stage", name, "--input", str(path), "--model", str(model),
         "--jobs", str(jobs), "--backend", backend],
        capture_output=True, text=True,
    )
    if out.returncode:
        raise SystemExit(f"bench stage {name} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _show(r: dict) -> None:
    print(f"{r['n']:>9} {r['stage']:9} jobs={r['jobs']} {r['backend']:6} {r['seconds']:>8.2f}s {r['reviews_per_s'] or '':>8} rev/s "
          f"{r['mb_per_s'] or '':>6} MB/s  RSS {r['peak_rss_mb']:.0f} MB (workers {r['peak_rss_worker_mb']:.0f} MB)", flush=True)


def main() -> int:
    from pipeline.segment import DEFAULT_BACKEND

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", nargs="+", type=int, default=[200_000, 1_000_000])
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--repeat", type=int, default=3, help="pairs (jieba reference, end to end) per size up to 500k rows")
    p.add_argument("--repeat-large", type=int, default=1, help="pairs per size above 500k rows")
    p.add_argument("--long", nargs=2, type=int, default=[20_000, 3_000], metavar=("ROWS", "CHARS"),
                   help="the long-cell shape: ROWS cells of CHARS characters (0 0: skip)")
    p.add_argument("--stages", choices=("first", "all", "none"), default="first",
                   help="the per-stage table (io, normalize, segment, 1 process, load): at the first size, every size or none")
    p.add_argument("--model", default=str(ROOT / "models" / "reviewcause.joblib"))
    p.add_argument("--backend", default=DEFAULT_BACKEND)
    p.add_argument("--stage", help=argparse.SUPPRESS)
    p.add_argument("--input", help=argparse.SUPPRESS)
    p.add_argument("--no-mlflow", action="store_true", help="do not log the figures to MLflow")
    p.add_argument("--spark", action="store_true", help="add reviewcause score --engine spark on local[JOBS] (needs PySpark and Java)")
    p.add_argument("--only-spark", action="store_true", help="run the Spark rows alone (with --spark)")
    args = p.parse_args()
    if args.stage:
        print(json.dumps(stage(args.stage, Path(args.input), Path(args.model), args.jobs, args.backend)))
        return 0
    model = Path(args.model)
    if not model.exists():
        raise SystemExit(f"{model}: no model; run 'make train' first")
    data_dir = ROOT / ".cache" / "bench"
    data_dir.mkdir(parents=True, exist_ok=True)
    results = []
    for k, n in enumerate(args.sizes):
        path = data_dir / f"reviews_{n}.csv"
        # generated in a child process: ru_maxrss survives fork+exec on Linux, so every stage
        # started from a parent that had held the big frame would report the parent's peak
        run_stage("generate", path, model, 1, args.backend)
        plan = []
        if not args.only_spark:
            # the headline: (reference segmenter, end to end with --jobs and batch signals) pairs
            for _ in range(args.repeat if n <= 500_000 else args.repeat_large):
                plan += [("jieba_ref", 1, "jieba"), ("score", args.jobs, args.backend)]
            if args.stages == "all" or (args.stages == "first" and k == 0):
                plan += [("io", 1, args.backend), ("normalize", 1, args.backend), ("segment", 1, args.backend),
                         ("score", 1, args.backend)]
                if k == 0:
                    plan.append(("load", 1, args.backend))
        if args.spark:
            plan.append(("spark", args.jobs, args.backend))
        for name, jobs, backend in plan:
            r = run_stage(name, path, model, jobs, backend) | {"n": n}
            results.append(r)
            _show(r)
    rows, chars = args.long
    if rows and chars and not args.only_spark:
        path = data_dir / f"long_{rows}x{chars}.csv"
        run_stage("generate", path, model, 1, args.backend)
        r = run_stage("score", path, model, args.jobs, args.backend) | {"n": rows, "shape": f"{rows}x{chars}"}
        results.append(r)
        _show(r)
    summary = summarise(results, args)
    name = "results-spark" if args.only_spark else "results"  # the Spark rows alone keep the full table
    out_json = HERE / f"{name}.json"
    out_json.write_text(json.dumps({"machine": machine(), "results": results, "summary": summary}, indent=1), encoding="utf-8")
    (HERE / f"{name}.md").write_text(markdown(results, summary), encoding="utf-8")
    print(json.dumps(summary, indent=1))
    if not args.no_mlflow:
        log_mlflow(results, summary, args)
    return 0


def machine() -> dict:
    return {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform(),
            "date": time.strftime("%Y-%m-%d %H:%M")}


def _spread(values: list[float]) -> dict:
    import statistics

    return {"min": round(min(values), 3), "median": round(statistics.median(values), 3), "max": round(max(values), 3),
            "runs": [round(v, 3) for v in values]}


#: the issue's targets
TARGET_RATIO = 2.5
TARGET_RSS_MB = 1024


def summarise(results: list[dict], args) -> dict:
    out: dict = {}
    issue: dict = {}
    for n in args.sizes:
        mine = [r for r in results if r["n"] == n and "shape" not in r]
        sp = next((r for r in mine if r["stage"] == "spark"), None)
        if sp:
            out[f"spark_{n}"] = {"spark_local_per_s": sp["reviews_per_s"],
                                 "spark_local_per_s_without_session_start": sp["reviews_per_s_without_start"],
                                 "spark_per_core_per_s": round(sp["reviews_per_s_without_start"] / args.jobs),
                                 "peak_rss_mb": sp["peak_rss_mb"], **sp["spark"]}
        # pairs: each end-to-end run with the reference run just before it
        pairs, ref = [], None
        for r in mine:
            if r["stage"] == "jieba_ref":
                ref = r
            elif r["stage"] == "score" and r["jobs"] == args.jobs and ref is not None:
                pairs.append((ref, r))
                ref = None
        if pairs:
            e2e = [s["reviews_per_s"] for _, s in pairs]
            jieba = [j["reviews_per_s"] for j, _ in pairs]
            ratio = [s["reviews_per_s"] / j["reviews_per_s"] for j, s in pairs]
            issue[str(n)] = {
                f"score_{args.jobs}_processes_batch_on_per_s": _spread(e2e),
                "jieba_reference_1_core_per_s": _spread(jieba),
                "ratio": _spread(ratio),
                "target_ratio": TARGET_RATIO,
                "met": _spread(ratio)["median"] >= TARGET_RATIO,
                "peak_rss_main_mb": max(s["peak_rss_mb"] for _, s in pairs),
                "peak_rss_worker_mb": max(s["peak_rss_worker_mb"] for _, s in pairs),
            }
        get = {(r["stage"], r["jobs"], r["backend"]): r for r in mine}
        if ("segment", 1, args.backend) in get and ("score", 1, args.backend) in get:
            seg = get[("segment", 1, args.backend)]["reviews_per_s"]
            e1 = get[("score", 1, args.backend)]["reviews_per_s"]
            out[str(n)] = {"segment_per_s": seg, "score_1_process_per_s": e1,
                           "ratio_score_to_segment_1_process": round(e1 / seg, 3),
                           "peak_rss_mb_1_process": get[("score", 1, args.backend)]["peak_rss_mb"]}
    long = [r for r in results if "shape" in r]
    if long:
        r = long[-1]
        issue[f"long_{r['shape']}"] = {"score_per_s": r["reviews_per_s"], "peak_rss_main_mb": r["peak_rss_mb"],
                                       "peak_rss_worker_mb": r["peak_rss_worker_mb"],
                                       "met": max(r["peak_rss_mb"], r["peak_rss_worker_mb"]) <= TARGET_RSS_MB}
    big = [k for k in issue if k.isdigit()]
    if big:
        top = issue[max(big, key=int)]
        top["rss_met"] = max(top["peak_rss_main_mb"], top["peak_rss_worker_mb"]) <= TARGET_RSS_MB
    if issue:
        out = {"issue13": issue} | out
    loads = [r for r in results if r["stage"] == "load"]
    if loads:
        out["model_load_s"] = loads[0]["seconds"]
    return out


def markdown(results: list[dict], summary: dict) -> str:
    m = machine()
    lines = [f"# make bench — {m['date']}, Python {m['python']}, {m['cpus']} CPUs", ""]
    issue = summary.get("issue13", {})
    if issue:
        lines += ["## Issue 13: end to end (batch signals on) against the jieba reference on one core", "",
                  "| input | end to end reviews/s (min / median) | jieba reference reviews/s (min / median) | ratio (min / median) | target | peak RSS MB main / worker |",
                  "|---|---:|---:|---:|---|---|"]
        for key, f in issue.items():
            if key.isdigit():
                e2e = next(v for k, v in f.items() if k.startswith("score_"))
                lines.append(f"| {int(key):,} reviews | {e2e['min']:,.0f} / {e2e['median']:,.0f} | "
                             f"{f['jieba_reference_1_core_per_s']['min']:,.0f} / {f['jieba_reference_1_core_per_s']['median']:,.0f} | "
                             f"{f['ratio']['min']:.2f} / {f['ratio']['median']:.2f} | ≥ {f['target_ratio']} "
                             f"{'met' if f['met'] else 'missed'} | {f['peak_rss_main_mb']:.0f} / {f['peak_rss_worker_mb']:.0f} |")
            else:
                rows, chars = key[5:].split("x")
                lines.append(f"| {int(rows):,} cells of {int(chars):,} characters | {f['score_per_s']:,} | — | — | RSS ≤ 1 GB "
                             f"{'met' if f['met'] else 'missed'} | {f['peak_rss_main_mb']:.0f} / {f['peak_rss_worker_mb']:.0f} |")
        lines.append("")
    lines += ["## Every run", "",
              "| rows | stage | jobs | backend | seconds | reviews/s | MB/s | peak RSS MB (main / workers) |",
              "|---:|---|---:|---|---:|---:|---:|---|"]
    for r in results:
        what = f"{r['shape']} long" if "shape" in r else f"{r['n']:,}"
        lines.append(f"| {what} | {r['stage']} | {r['jobs']} | {r['backend']} | {r['seconds']:.2f} | "
                     f"{r['reviews_per_s'] or '—'} | {r['mb_per_s'] or '—'} | {r['peak_rss_mb']:.0f} / {r['peak_rss_worker_mb']:.0f} |")
    lines += ["", "```json", json.dumps(summary, indent=1), "```", ""]
    return "\n".join(lines)


def log_mlflow(results: list[dict], summary: dict, args) -> None:
    import mlflow

    from pipeline.train import use_experiment

    use_experiment("reviewcause-bench")
    with mlflow.start_run(run_name=f"bench {time.strftime('%Y-%m-%d %H:%M')}"):
        mlflow.log_params({"sizes": " ".join(map(str, args.sizes)), "jobs": args.jobs, "backend": args.backend,
                           "repeat": args.repeat, "repeat_large": args.repeat_large, "long": "x".join(map(str, args.long))} | machine())
        for r in results:
            key = f"{r['stage']}_{r['backend']}_j{r['jobs']}_n{r['n']}" + (f"_long{r['shape']}" if "shape" in r else "")
            if r["reviews_per_s"]:
                mlflow.log_metric(f"{key}_reviews_per_s", r["reviews_per_s"])
            mlflow.log_metric(f"{key}_peak_rss_mb", max(r["peak_rss_mb"], r["peak_rss_worker_mb"]))
        for n, s in summary.items():
            if n == "issue13":
                for shape, f in s.items():
                    for k, v in f.items():
                        if isinstance(v, dict):
                            mlflow.log_metrics({f"issue13_{shape}_{k}_min": v["min"], f"issue13_{shape}_{k}_median": v["median"]})
                        elif isinstance(v, (int, float)):
                            mlflow.log_metric(f"issue13_{shape}_{k}", float(v))
            elif isinstance(s, dict):
                mlflow.log_metrics({f"{k}_n{n}": float(v) for k, v in s.items() if isinstance(v, (int, float))})
        if "model_load_s" in summary:
            mlflow.log_metric("model_load_s", summary["model_load_s"])
        name = "results-spark" if args.only_spark else "results"
        mlflow.log_artifact(str(HERE / f"{name}.md"))
        mlflow.log_artifact(str(HERE / f"{name}.json"))


if __name__ == "__main__":
    sys.exit(main())
