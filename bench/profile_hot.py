"""Profile of the scoring hot path (issue 13): one worker's work on 20,000 reviews.

Times (CPU, ``time.process_time``) each part a ``--jobs`` worker does for one chunk —
``score_chunk``, then ``finish`` with the file's batch signals, the cell formatting and the CSV
text of ``_finished_rows`` — and prints cProfile's top functions (by own time) for both halves.

    python bench/profile_hot.py [--rows 20000] [--model PATH] [--input CSV] [--top 30]

The input defaults to the bench's 200k file (``.cache/bench/reviews_200000.csv``, made by
``make bench``), else 20,000 reviews sampled like it.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    import pandas as pd

    from pipeline.persist import load_predictor
    from pipeline.run import _finished_rows, _role_frame
    from pipeline.predict import PRED_COLUMNS, TRUSTED_COLUMNS
    from pipeline.tables import CsvText, find_columns

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=20_000)
    p.add_argument("--model", default=str(ROOT / "models" / "reviewcause.joblib"))
    p.add_argument("--input", default=str(ROOT / ".cache" / "bench" / "reviews_200000.csv"))
    p.add_argument("--top", type=int, default=30)
    p.add_argument("--callers", default="", help="also print the callers of functions matching this pattern")
    p.add_argument("--repeat", type=int, default=3, help="timed runs (min reported) before the profiled one")
    a = p.parse_args()

    src = Path(a.input)
    if src.exists():
        chunk = pd.read_csv(src, dtype=str, keep_default_na=False, nrows=a.rows)
    else:
        sys.path.insert(0, str(ROOT / "bench"))
        from bench import make_input

        tmp = ROOT / ".cache" / "bench" / f"reviews_{a.rows}.csv"
        tmp.parent.mkdir(parents=True, exist_ok=True)
        chunk = pd.read_csv(make_input(a.rows, tmp), dtype=str, keep_default_na=False)
    roles = find_columns([str(c) for c in chunk.columns], where="input")
    frame = _role_frame(chunk, roles)
    keep = [c for c in chunk.columns if c not in PRED_COLUMNS]
    base = chunk[keep].to_numpy(dtype=object).T.tolist()  # as score_file stages it
    render = CsvText([k for k, c in enumerate(keep + PRED_COLUMNS) if c not in TRUSTED_COLUMNS])
    predictor = load_predictor(a.model)
    predictor.warm_up()

    def score():
        return predictor.score_chunk(frame, with_signatures=True)

    def finish(s):
        collector = predictor.collector()
        collector.add(s.sig, s.eligible, s.buyers, s.items, s.dates, s.ratings)
        signals = collector.finish()
        return _finished_rows(predictor, s, base, signals, 0, render)

    t_score, t_finish = [], []
    for _ in range(a.repeat):
        t0 = time.process_time()
        s = score()
        t1 = time.process_time()
        finish(s)
        t2 = time.process_time()
        t_score.append(t1 - t0)
        t_finish.append(t2 - t1)
    n = len(frame)
    print(f"{n} reviews: score_chunk {min(t_score) / n * 1e6:.1f} µs/review, "
          f"finish+format {min(t_finish) / n * 1e6:.1f} µs/review (min of {a.repeat}, CPU time)")
    for label, fn in (("score_chunk", score), ("finish + format", lambda: finish(s))):
        prof = cProfile.Profile()
        prof.enable()
        fn()
        prof.disable()
        buf = io.StringIO()
        st = pstats.Stats(prof, stream=buf).sort_stats("tottime")
        st.print_stats(a.top)
        if a.callers:
            st.print_callers(a.callers)
        print(f"\n=== cProfile: {label} ({n} reviews), by own time ===")
        print("\n".join(line for line in buf.getvalue().splitlines() if line.strip())[:12000])
    return 0


if __name__ == "__main__":
    sys.exit(main())
