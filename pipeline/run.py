"""The file loop of ``reviewcause score``: a review file in, one prediction row per input row out.

It decides nothing: each chunk goes to :meth:`Predictor.score_chunk` (on ``jobs`` processes),
scored chunks are staged on disk while the whole-batch keys are collected, then
:meth:`Predictor.finish` adds the batch signals and the rows are written in input order — the
same two calls :meth:`Predictor.predict` makes on a DataFrame, so the CSV and the API agree.

Interrupts: Ctrl-C (SIGINT) and SIGTERM stop the workers quietly, remove the temporary output
and the staging folder, keep any previous output intact, and exit 130 / 143 with one line.
"""

from __future__ import annotations

import gc
import os
import pickle
import signal
import tempfile
from collections import Counter, deque
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.persist import load_predictor
from pipeline.predict import PRED_COLUMNS, TRUSTED_COLUMNS, Predictor, Scored
from pipeline.tables import InputError, atomic_csv, header_repeats, open_table, say_header_repeats, warn

ROLE_NAMES = ("id", "text", "rating", "buyer", "item", "date", "followup")


class Interrupted(Exception):
    """Scoring was stopped by a signal; ``status`` is the exit status (130 or 143)."""

    def __init__(self, signum: int):
        self.status = 128 + signum
        super().__init__(f"interrupted by {signal.Signals(signum).name}; no output written")


#: the signals received during this scoring run: an exception raised by a signal handler is lost
#: when the handler happens to run inside a ``__del__`` or a weakref callback ("Exception ignored
#: in …"), so the file loop also checks this list at every chunk and before the output is kept
_RECEIVED: list[int] = []


def _raise_interrupt(signum, frame):
    _RECEIVED.append(signum)
    raise Interrupted(signum)


def _check_interrupt() -> None:
    if _RECEIVED:
        raise Interrupted(_RECEIVED[0])


@contextmanager
def interruptible():
    """SIGTERM, and Ctrl-C unless this process was started with it ignored (a script's `cmd &`,
    where the shell means it to run on), raise :class:`Interrupted` while the block runs; the
    previous handlers come back after it. A KeyboardInterrupt raised another way is one too.
    Both engines run their file loop inside it, and call :func:`_check_interrupt` before an
    output is kept."""
    caught = [signal.SIGTERM] + ([signal.SIGINT] if signal.getsignal(signal.SIGINT) is signal.default_int_handler else [])
    old = {s: signal.getsignal(s) for s in caught}
    _RECEIVED.clear()
    for s in caught:
        signal.signal(s, _raise_interrupt)
    try:
        yield
    except KeyboardInterrupt:
        raise Interrupted(_RECEIVED[0] if _RECEIVED else signal.SIGINT) from None
    except Interrupted:
        raise
    except BaseException:
        if _RECEIVED:  # what the signal broke (a py4j call turns the interrupt into its own error)
            raise Interrupted(_RECEIVED[0]) from None
        raise
    finally:
        for s, h in old.items():
            signal.signal(s, h)


_FOUR: list[np.ndarray] = []


def four_decimals(x: np.ndarray) -> list[str]:
    """``["%.4f" % v for v in x]``: a value that is exactly some k/10000 in [0, 1] (the rounded
    probabilities) is looked up among the 10,001 strings; any other value is formatted."""
    if not _FOUR:
        _FOUR.append(np.asarray(["%.4f" % (k / 10000) for k in range(10001)], dtype=object))
    k = np.rint(x * 10000)
    with np.errstate(invalid="ignore"):
        ok = (k >= 0) & (k <= 10000) & (k / 10000 == x) & ~np.signbit(x)
    out = _FOUR[0][np.where(ok, k, 0).astype(np.int64)]
    for i in np.flatnonzero(~ok):
        out[i] = "%.4f" % x[i]
    return out.tolist()


def kept_columns(src, columns: list) -> list:
    """The input columns written back: all but those named like a prediction column, which the
    predictions replace — with a warning naming them (a predictions file scored again?) when
    ``src`` names the input (None: the columns only, the warning given already)."""
    from pipeline.tables import display_name, english_header

    pred = set(PRED_COLUMNS)
    # the Chinese names --zh-headers writes (原因, 置信度 … or 原因(cause)) count only in a file
    # that carries most of them: one column 原因 (退款原因) of a real export is kept
    english = [english_header(display_name(c)) for c in columns]
    zh_file = len({e for c, e in zip(columns, english) if e in pred and c not in pred}) >= len(pred) // 2
    drop = [c in pred or (zh_file and e in pred) for c, e in zip(columns, english)]
    replaced = list(dict.fromkeys(display_name(c) for c, d in zip(columns, drop) if d))
    if replaced and src is not None:
        warn(f"{src}: input column(s) {', '.join(map(repr, replaced))} have the names of prediction columns and are "
             f"replaced by them (a predictions file scored again?); rename them to keep their values")
    return [c for c, d in zip(columns, drop) if not d]


def format_rows(out, columns: bool = False) -> list[list[str]]:
    """Prediction cells as text: probabilities with four decimals, flags as true/false.

    ``out``: :meth:`Predictor.finish`'s DataFrame or :meth:`Predictor.finish_columns`' dict (the
    same cells). A list of rows, or with ``columns=True`` a list of columns."""
    cols = []
    for c in PRED_COLUMNS:
        v = out[c]
        if c == "suspected_malicious":
            cols.append(np.where(np.asarray(v, dtype=bool), "true", "false").tolist())
        elif isinstance(v, pd.Series):
            cols.append(four_decimals(v.to_numpy(dtype=float)) if v.dtype.kind == "f" else v.astype(str).tolist())
        elif isinstance(v, np.ndarray) and v.dtype.kind == "f":
            cols.append(four_decimals(v))
        else:  # text: a list or an object array of str
            cols.append([x if type(x) is str else str(x) for x in v])
    return cols if columns else [list(r) for r in zip(*cols)]


class _CsvWriter:
    def __init__(self, out):
        self._out = out

    def rows(self, rows):
        self._out.rows(rows)

    def text(self, text: str):
        self._out.text(text)

    def renderer(self):
        """A :class:`pipeline.tables.CsvText` for this output, or None (xlsx: rows only)."""
        return self._out.renderer() if hasattr(self._out, "renderer") else None

    def summary(self, causes):
        pass


from contextlib import contextmanager  # noqa: E402


@contextmanager
def open_output(dst, columns, trusted=frozenset(), bom=True, zh_headers=False):
    """A writer for the output file (CSV; rows escaped against formula injection)."""
    with atomic_csv(dst, bom=bom) as out:
        out.header(columns, trusted=trusted)
        yield _CsvWriter(out)


# --- worker processes -------------------------------------------------------------------------

_worker: dict[str, object] = {}


def _init_worker(predictor: Predictor, backend: str) -> None:
    from pipeline.segment import use_backend

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops the pool
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    use_backend(backend)
    _worker["predictor"] = predictor


@dataclass
class _Keys:
    """What the main process needs of a chunk scored and staged by a worker: the collector's
    per-row keys and the primary causes (for the counts)."""

    n: int
    sig: np.ndarray | None
    eligible: np.ndarray | None
    buyers: list | None
    items: list | None
    dates: list | None
    ratings: np.ndarray
    primary: np.ndarray


def _stage_error(where, exc: OSError) -> InputError:
    return InputError(f"{where}: cannot stage scored rows ({exc.strerror or exc}); free space there or set TMPDIR")


def _score_and_stage(payload) -> _Keys:
    """Worker: score a chunk and stage it on disk itself (batch signals on): only the compact
    keys travel back to the main process."""
    frame, offset, path = payload
    s = _worker["predictor"].score_chunk(frame, with_signatures=True, offset=offset)
    keys = _Keys(len(s), s.sig, s.eligible, s.buyers, s.items, s.dates, s.ratings, s.primary)
    s.sig = s.eligible = None
    try:
        with open(path, "wb") as fh:
            pickle.dump(s, fh, protocol=pickle.HIGHEST_PROTOCOL)
    except OSError as exc:
        raise _stage_error(Path(path).parent, exc) from None
    return keys


def _finished_rows(predictor: Predictor, s: Scored, base: list, signals=None, offset: int = 0, render=None):
    """The output of a scored chunk — its input cells (``base``, column by column), then the
    prediction cells — as rows, or as CSV text when ``render`` (a ``CsvText``) is given; its
    count of suspected rows and its causes."""
    cols = predictor.finish_columns(s, signals, offset)
    cells = [*base, *format_rows(cols, columns=True)]
    out = render.text(cells) if render is not None else [list(r) for r in zip(*cells)]
    return out, int(np.count_nonzero(cols["suspected_malicious"])), cols["cause"]


def _finish_staged(task):
    """Worker: the output rows of a staged chunk, with its part of the batch signals."""
    scored_path, base_path, part, render = task
    with open(scored_path, "rb") as fh:
        s = pickle.load(fh)
    with open(base_path, "rb") as fh:
        base = pickle.load(fh)
    os.unlink(scored_path)
    os.unlink(base_path)
    return _finished_rows(_worker["predictor"], s, base, part, 0, render)


def _score_and_finish(payload):
    """Worker (no batch signals): score a chunk and return its output (rows or CSV text)."""
    frame, offset, base, render = payload
    predictor = _worker["predictor"]
    s = predictor.score_chunk(frame, with_signatures=False, offset=offset)
    return (*_finished_rows(predictor, s, base, render=render), s.primary, len(s))


class _RepeatedIds:
    """The review ids of the file as the Predictor makes them (:func:`predict.review_ids`), hashed
    (8 bytes a row), to say once at the end when rows share one: a user joining the predictions
    back on ``review_id`` would match the wrong rows (an id repeated in the export, or a blank
    id's row number equal to another row's id)."""

    def __init__(self):
        self.hashes: list[np.ndarray] = []

    def add(self, frame: pd.DataFrame, offset: int):
        from pipeline.predict import review_ids

        ids = review_ids(frame["id"].tolist() if "id" in frame else None, offset, len(frame))
        self.hashes.append(pd.util.hash_array(np.asarray(ids, dtype=object)))
        return frame, offset

    def say(self, where: str) -> None:
        if not self.hashes:
            return
        h = np.concatenate(self.hashes)
        order = np.argsort(h, kind="stable")
        same = np.flatnonzero(h[order][1:] == h[order][:-1])
        if not len(same):
            return
        later = order[same + 1]  # rows whose id an earlier row holds
        first = int(later.min())
        earlier = int(order[same[np.argmin(later)]])
        warn(f"{where}: {len(np.unique(later))} row(s) repeat the review_id of an earlier row (first: data rows "
             f"{earlier + 1} and {first + 1}); every row is scored and written in input order — join the "
             f"predictions back by row order, or give every row its own id")


def _role_frame(chunk: pd.DataFrame, roles: dict[str, str | None], where: str | None = None) -> pd.DataFrame:
    """The columns the Predictor reads, under their role names (the cells as they are: object
    columns, no conversion to Arrow strings and back on the way to the worker). A row that
    repeats the header (exports joined end to end) is no review: its text is read as blank
    (``empty``), its cells stay in the output, and ``where`` (the file) gets one warning."""
    frame = pd.DataFrame({r: chunk[roles[r]].tolist() for r in ROLE_NAMES if roles.get(r)}, index=chunk.index, dtype=object)
    if roles.get("text") is not None:
        repeats = header_repeats(chunk, list(chunk.columns), roles["text"])
        if len(repeats):
            frame.iloc[repeats, frame.columns.get_loc("text")] = ""
            if where is not None:
                say_header_repeats(where, int(chunk.index[repeats[0]]) + 1, len(repeats))
    return frame


#: A chunk holds at most this many characters of review text, each review counted up to the
#: MAX_CHARS (2,000) characters that are scored: 20,000 reviews of 45 characters fit, 500 of
#: 2,000 do — so the scoring arrays stay small whatever the cells (``make bench`` chose it).
CHUNK_CHARS = 1_000_000


def bounded_chunks(chunks, text_col: str | None, max_chars: int = CHUNK_CHARS):
    """The table's chunks (bounded by rows), cut further so that each holds at most
    ``max_chars`` characters of scored text (at least one row each); the row index is kept."""
    from pipeline.normalize import MAX_CHARS

    for chunk in chunks:
        if text_col is None or len(chunk) < 2:
            yield chunk
            continue
        texts = chunk[text_col].tolist()
        if all(map(str.__instancecheck__, texts)):  # the cells of a text file: all str
            size = np.minimum(np.fromiter(map(len, texts), dtype=np.int64, count=len(texts)), MAX_CHARS) + 1
        else:
            size = np.fromiter((min(len(t), MAX_CHARS) + 1 if isinstance(t, str) else 1 for t in texts),
                               dtype=np.int64, count=len(texts))
        total = np.cumsum(size)
        if total[-1] <= max_chars:
            yield chunk
            continue
        start, before = 0, 0
        while start < len(chunk):
            stop = max(int(np.searchsorted(total, before + max_chars, "right")), start + 1)
            yield chunk.iloc[start:stop]
            before = int(total[stop - 1])
            start = stop


#: bytes of the input file read at once: a chunk of long cells is read in fewer rows
READ_BYTES = 32 << 20


def read_rows(src: Path, chunksize: int) -> int:
    """Rows to read at once: ``chunksize``, or fewer when the rows of a text file are long
    (its size over its estimated rows), so that ~READ_BYTES of input are held at a time."""
    if src.suffix.lower() in (".xlsx", ".xlsm"):
        return chunksize
    rows = estimate_rows(src)
    try:
        size = src.stat().st_size
    except OSError:
        return chunksize
    if not rows:
        return chunksize
    return int(min(chunksize, max(500, READ_BYTES * rows // max(size, 1))))


def score_file(src, dst, model_path=None, encoding=None, overrides=None, bom=True, jobs=1, chunksize=20_000,
               progress=False, batch=True, zh_headers=False, sheet=None, chunk_chars=CHUNK_CHARS) -> dict[str, object]:
    """Score ``src`` into ``dst``; returns a summary (rows, counts per cause, roles found).

    Input is scored in chunks of at most ``chunksize`` rows and ``chunk_chars`` characters of
    scored text (:func:`bounded_chunks`)."""
    from pipeline.paths import DEFAULT_MODEL
    from pipeline.segment import current_backend

    src, dst = Path(src), Path(dst)
    predictor = load_predictor(model_path or DEFAULT_MODEL)
    predictor.set_params(batch=batch)
    table = open_table(src, encoding=encoding, chunksize=read_rows(src, chunksize), overrides=overrides)
    roles = table.roles
    keep = kept_columns(src, table.columns)
    counts: dict[str, int] = {}
    summary = {"rows": 0, "suspected": 0}
    bar = _progress(progress, table)
    pool = None
    with interruptible():
        try:
            chunks = bounded_chunks(table.chunks(), roles.get("text"), chunk_chars)
            repeats = _RepeatedIds()
            payloads = ((*repeats.add(_role_frame(c, roles, str(src)), int(c.index[0]) if len(c) else 0), c)
                        for c in chunks)
            with open_output(dst, keep + PRED_COLUMNS, trusted=TRUSTED_COLUMNS, bom=bom, zh_headers=zh_headers) as out, \
                    tempfile.TemporaryDirectory(prefix="reviewcause-") as stage:

                render = out.renderer()

                def base_of(chunk):  # the input cells kept in the output, column by column
                    return chunk[keep].to_numpy(dtype=object).T.tolist() if keep else []

                def write(rows, suspected, causes):
                    _check_interrupt()
                    summary["suspected"] += suspected
                    if isinstance(rows, str):
                        out.text(rows)
                    else:
                        out.rows(rows)
                    out.summary(causes)

                def tally(primary, n):
                    _check_interrupt()
                    for c, k in Counter(primary.tolist() if isinstance(primary, np.ndarray) else primary).items():
                        counts[c] = counts.get(c, 0) + k  # in order of first appearance, as row by row
                    summary["rows"] += n
                    if bar is not None:
                        bar.update(n)

                # the model's tables built once, then every object alive so far (the model, its
                # vocabularies, the modules) kept out of the cyclic garbage collector's scans: ~9 %
                # of score_chunk's time went to collections that walked them again and again (and
                # forked workers share those pages instead of copying them when the GC touches them)
                predictor.warm_up()
                gc.freeze()
                if jobs > 1:
                    import multiprocessing as mp

                    pool = mp.get_context("fork").Pool(jobs, _init_worker, (predictor, current_backend()))
                    _score_on_pool(pool, jobs, payloads, predictor, batch, Path(stage), base_of, write, tally, render)
                else:
                    _score_here(payloads, predictor, batch, Path(stage), base_of, write, tally, render)
                _check_interrupt()  # nothing is kept of a run a signal stopped, even one whose exception was lost
            repeats.say(str(src))
        finally:
            gc.unfreeze()
            if pool is not None:
                pool.terminate()
                pool.join()
            if bar is not None:
                bar.close()
    return summary | {"counts": counts, "roles": roles, "encoding": table.encoding, "output": str(dst)}


def _stage(path: Path, obj) -> None:
    try:
        with open(path, "wb") as fh:
            pickle.dump(obj, fh, protocol=pickle.HIGHEST_PROTOCOL)
    except OSError as exc:
        raise _stage_error(path.parent, exc) from None


def _score_here(payloads, predictor: Predictor, batch: bool, stage: Path, base_of, write, tally, render=None) -> None:
    """One process: score each chunk; without batch signals write it at once, with them stage it
    on disk until the whole file's signals are known, then finish and write the chunks in order."""
    collector = predictor.collector() if batch else None
    staged: list[Path] = []
    for frame, offset, chunk in payloads:
        s = predictor.score_chunk(frame, offset=offset)
        if collector is None:
            write(*_finished_rows(predictor, s, base_of(chunk), render=render))
        else:
            collector.add(s.sig, s.eligible, s.buyers, s.items, s.dates, s.ratings)
            s.sig = s.eligible = None
            staged.append(stage / f"{len(staged):06d}.pkl")
            _stage(staged[-1], (base_of(chunk), s))
        tally(s.primary, len(s))
    if collector is not None:
        signals, offset = collector.finish(), 0
        for path in staged:
            with open(path, "rb") as fh:
                base, s = pickle.load(fh)
            write(*_finished_rows(predictor, s, base, signals, offset, render))
            offset += len(s)
            path.unlink()


def _score_on_pool(pool, jobs: int, payloads, predictor: Predictor, batch: bool, stage: Path, base_of, write, tally,
                   render=None) -> None:
    """``jobs`` worker processes score the chunks and, with batch signals, stage them and later
    finish them (output cells) too; the main process reads, collects the batch keys, computes the
    signals and writes, in input order. The same calls as :func:`_score_here`, in other processes."""
    window = 2 * jobs
    if not batch:
        pending: deque = deque()

        def drain(keep: int):
            while len(pending) > keep:
                rows, suspected, causes, primary, n = pending.popleft().get()
                write(rows, suspected, causes)
                tally(primary, n)

        for frame, offset, chunk in payloads:
            pending.append(pool.apply_async(_score_and_finish, ((frame, offset, base_of(chunk), render),)))
            drain(window - 1)
        drain(0)
        return
    collector = predictor.collector()
    staged: list[tuple[Path, Path, int]] = []
    pending = deque()

    def collect(keep: int):
        while len(pending) > keep:
            res, paths = pending.popleft()
            k = res.get()
            collector.add(k.sig, k.eligible, k.buyers, k.items, k.dates, k.ratings)
            staged.append((*paths, k.n))
            tally(k.primary, k.n)

    for frame, offset, chunk in payloads:
        i = len(staged) + len(pending)
        scored, based = stage / f"{i:06d}.scored.pkl", stage / f"{i:06d}.base.pkl"
        pending.append((pool.apply_async(_score_and_stage, ((frame, offset, str(scored)),)), (scored, based)))
        _stage(based, base_of(chunk))
        collect(window - 1)
    collect(0)
    signals, offset = collector.finish(), 0
    finishing: deque = deque()
    for scored, based, n in staged:
        finishing.append(pool.apply_async(_finish_staged, ((str(scored), str(based), signals.rows(offset, offset + n), render),)))
        offset += n
        while len(finishing) >= window:
            write(*finishing.popleft().get())
    while finishing:
        write(*finishing.popleft().get())


def estimate_rows(path: Path) -> int | None:
    """Data rows of an input, for the progress bar: exact for .xlsx and for text files up to
    8 MB, estimated from the first 8 MB (line breaks per byte) beyond that."""
    path = Path(path)
    try:
        if not path.is_file():  # a pipe or device is never opened here (it may block; tables refuses it)
            return None
        if path.suffix.lower() in (".xlsx", ".xlsm"):
            from openpyxl import load_workbook

            wb = load_workbook(path, read_only=True)
            return max(sum(max((ws.max_row or 1) - 1, 0) for ws in wb.worksheets[:1]), 0)
        size = path.stat().st_size
        with open(path, "rb") as fh:
            head = fh.read(8 << 20)
        lines = head.count(b"\n") + (0 if head.endswith(b"\n") else 1)
        if len(head) >= size:
            return max(lines - 1, 0)
        return int(lines * size / len(head))
    except Exception:  # a progress bar never stops the job
        return None


def _progress(enabled: bool, table):
    """A progress bar with total rows, percentage and time left (updated at least every second)."""
    if not enabled:
        return None
    from tqdm import tqdm

    total = estimate_rows(table.path)
    return tqdm(total=total, unit=" rows", unit_scale=True, desc="scoring", leave=False, mininterval=0.5, maxinterval=1.0,
                bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} rows [{elapsed}<{remaining}, {rate_fmt}]"
                if total else None)
