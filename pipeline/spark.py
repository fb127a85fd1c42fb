"""``reviewcause score --engine spark``: the same answers as the laptop, on Spark.

Nothing here decides anything about a review. The steps:

1. **Input** — CSV/TSV/Excel are read by :func:`pipeline.tables.open_table`, the local scorer's
   own reader (encodings, ``sep=`` lines, blank lines kept as rows, ragged rows, the one-line
   errors with row and line), and staged as Parquet parts of ``chunksize`` rows with a dense
   row index ``_idx``. Parquet input (a file or a folder of parts, in file-name order) is staged
   the same way, every cell as text. Spark reads the staged parts, one partition per part.
   (Spark's own CSV reader skips blank lines and handles neither ``sep=`` lines nor the
   strict-quote errors, so it cannot give the local row numbering; with ``multiLine`` it reads
   a file in one task anyway.)
2. **Per-row decisions** — ``mapInPandas`` calls :meth:`Predictor.score_chunk` (the broadcast
   Predictor loaded from the model file) on runs of consecutive row indexes, so default ids
   (the row number) are the local ones. Its MinHash signatures are kept as 12 columns.
3. **Batch signals** — DataFrame operations with the Predictor's policy parameters:
   campaigns by LSH banding of those signatures (6 bands of 2: each row is joined to the first
   row of its bucket, the pair kept at ≥ 7/12 signature agreement — exactly the local rule),
   connected components by min-label propagation with joins, clusters with ≥ ``campaign_min``
   rows and distinct buyers, numbered by their smallest row index; serial buyers by
   ``groupBy``; bursts by a ``rangeBetween`` window. ``campaigns="mllib"`` uses Spark MLlib's
   ``MinHashLSH.approxSimilarityJoin`` on the same 3-gram shingles of the same skeleton instead
   (exact Jaccard ≥ 7/12 among candidates): it finds the planted campaigns too, but borderline
   pairs differ from the local rule, so it is not the default.
4. **Output columns** — a second ``mapInPandas`` rebuilds :class:`Scored` and the rows'
   :class:`Signals` and calls :meth:`Predictor.finish`; the result is sorted by row index,
   written by Spark to Parquet parts and streamed by the driver into the output file with the
   local scorer's writer (CSV/TSV/XLSX, atomic rename) or into one Parquet file.

PySpark is optional: :func:`session` raises a one-line :class:`InputError` naming what to
install when PySpark or a Java runtime is missing.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline import batch as B
from pipeline.predict import PRED_COLUMNS, TRUSTED_COLUMNS
from pipeline.tables import InputError, first_line
from pipeline.run import _check_interrupt, interruptible

ROLE_NAMES = ("id", "text", "rating", "buyer", "item", "date")
IDX = "_idx"
INSTALL_PYSPARK = "pip install '.[spark]'"
INSTALL_JAVA = "apt-get install default-jre-headless (or set JAVA_HOME)"
#: Spark settings for a one-machine run; any of them can be overridden by ``conf``
DEFAULT_CONF = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.execution.arrow.maxRecordsPerBatch": "20000",
    # one partition per staged part: the cost of opening a file outweighs packing parts together
    "spark.sql.files.openCostInBytes": str(256 << 20),
    "spark.sql.files.maxPartitionBytes": str(256 << 20),
    "spark.python.worker.reuse": "true",
}
SIG_COLS = [f"_s{j}" for j in range(B.SIG_SIZE)]
P_COLS = [f"_p{j}" for j in range(8)]
Q_COLS = [f"_q{j}" for j in range(8)]


# --- availability -----------------------------------------------------------------------------


def _java_binary() -> str | None:
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").exists():
        return str(Path(home) / "bin" / "java")
    return shutil.which("java")


def java_version(binary: str) -> int | None:
    """The major version of a Java runtime (8, 11, 17, 21 …), None when it does not run."""
    try:
        out = subprocess.run([binary, "-version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if not m:
        return None
    major = int(m.group(1))
    return int(m.group(2) or 0) if major == 1 else major


def check_available() -> None:
    """InputError (one line) unless PySpark and a suitable Java runtime are installed."""
    try:
        import pyspark
    except ImportError:
        raise InputError(f"--engine spark needs PySpark, which is not installed: {INSTALL_PYSPARK} "
                         f"(or make score ENGINE=spark, which installs it)") from None
    java = _java_binary()
    if java is None:
        raise InputError(f"--engine spark needs a Java runtime and none was found: {INSTALL_JAVA}")
    need = 17 if int(pyspark.__version__.split(".")[0]) >= 4 else 8
    have = java_version(java)
    if have is None:
        raise InputError(f"--engine spark needs a Java runtime; {java} does not run: {INSTALL_JAVA}")
    if have < need:
        raise InputError(f"--engine spark: PySpark {pyspark.__version__} needs Java {need} or newer, {java} is Java {have}: "
                         f"{INSTALL_JAVA}")


def unavailable() -> str | None:
    """Why the Spark engine cannot run here (one line), or None."""
    try:
        check_available()
    except InputError as exc:
        return str(exc)
    return None


#: where the JVM's own stderr goes when the session is started quietly (the CLI)
JVM_LOG = Path(tempfile.gettempdir()) / "reviewcause-spark.log"


@contextmanager
def _stderr_to(path: Path | None):
    """Run the block with file descriptor 2 on ``path`` (appended; restarted past 16 MB): the JVM
    started in it, and the Python workers it forks, keep writing there, not on the terminal."""
    if path is None:
        yield
        return
    try:
        if path.exists() and path.stat().st_size > 16 << 20:
            path.unlink()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    except OSError:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    os.dup2(fd, 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(fd)


def session(master: str | None = None, conf: dict[str, str] | None = None, quiet: bool = False):
    """A SparkSession (``master`` default: $SPARK_MASTER, else ``local[*]``) whose Python
    workers run this interpreter; an already running session is reused as it is.
    ``quiet``: the JVM's stderr (start-up banners, log lines) goes to :data:`JVM_LOG`."""
    check_available()
    import warnings

    warnings.filterwarnings("ignore", message=".*pandas >= 3.0.0.*")  # PySpark 4.x warns on pandas 3; tested here
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    master = master or os.environ.get("SPARK_MASTER") or "local[*]"
    builder = SparkSession.builder.master(master).appName("reviewcause")
    settings = dict(DEFAULT_CONF)
    if master.startswith("local"):
        settings["spark.driver.memory"] = os.environ.get("SPARK_DRIVER_MEMORY", "4g")
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # one machine: listen on loopback only
    settings.update(conf or {})
    # errors only on stderr (the JVM's INFO/WARN lines would bury the one-line summary)
    quiet = f"-Dlog4j2.configurationFile={_log_config().as_uri()}"
    settings["spark.driver.extraJavaOptions"] = " ".join(x for x in (settings.get("spark.driver.extraJavaOptions"), quiet) if x)
    for k, v in settings.items():
        builder = builder.config(k, v)
    log = JVM_LOG if quiet else None
    try:
        with _stderr_to(log):
            spark = builder.getOrCreate()
    except Exception as exc:  # the JVM did not start: a broken Java, a bad master URL
        first = first_line(exc) or type(exc).__name__
        where = f"; its log: {log}" if log else ""
        raise InputError(f"--engine spark: Spark did not start with master {master!r} ({first[:200]}); "
                         f"check the Java runtime ({INSTALL_JAVA}) and --master{where}") from None
    spark.sparkContext.setLogLevel("ERROR")
    if "spark.sql.shuffle.partitions" not in (conf or {}):
        spark.conf.set("spark.sql.shuffle.partitions", str(max(2, 2 * spark.sparkContext.defaultParallelism)))
    return spark


def _log_config() -> Path:
    path = Path(tempfile.gettempdir()) / "reviewcause-spark-log4j2.properties"
    text = ("rootLogger.level = error\nrootLogger.appenderRef.stderr.ref = console\n"
            "appender.console.type = Console\nappender.console.name = console\nappender.console.target = SYSTEM_ERR\n"
            "appender.console.layout.type = PatternLayout\nappender.console.layout.pattern = spark: %p %c{1}: %m%n\n")
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    return path


# --- staging the input ------------------------------------------------------------------------


def _is_parquet(path: Path) -> bool:
    if path.is_dir():
        return any(path.glob("*.parquet"))
    return path.suffix.lower() == ".parquet"


def _text_cell(v) -> str:
    """A Parquet/pandas cell as the text the CSV reader would give: the API's reading of a cell
    (missing → blank, bytes decoded), a whole float without its '.0'."""
    from pipeline.predict import _as_text

    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return _as_text(v)


class Staged:
    """The input as Parquet parts: ``_idx`` and ``_c0 … _cK`` (text), with its columns and roles."""

    def __init__(self, folder: Path, columns: list[str], roles: dict[str, str | None], encoding: str | None):
        self.folder, self.columns, self.roles, self.encoding = folder, columns, roles, encoding
        self.rows = 0
        self.parts = 0

    def col(self, name: str) -> str:
        return f"_c{self.columns.index(name)}"


def stage_input(src: Path, folder: Path, encoding=None, overrides=None, chunksize=20_000) -> Staged:
    """Read ``src`` as the local scorer does and write it as Parquet parts under ``folder``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipeline.tables import find_columns, header_repeats, open_table, say_header_repeats

    folder.mkdir(parents=True, exist_ok=True)
    if _is_parquet(src):
        import pyarrow.dataset as ds

        arrow_errors = (OSError, pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError)
        try:
            files = sorted(src.glob("*.parquet")) if src.is_dir() else [src]
            schemas = [pq.read_schema(f) for f in files]
            # a folder's parts must hold the same columns: a dataset takes the first part's and
            # silently drops a column only a later part has
            for f, sch in zip(files[1:], schemas[1:]):
                if list(sch.names) != list(schemas[0].names):
                    raise InputError(f"{f}: its columns ({', '.join(sch.names)}) are not those of {files[0].name} "
                                     f"({', '.join(schemas[0].names)}); give the parts one set of columns")
            # one type per column over all parts (a column all null in one part is null-typed there)
            unified = pa.unify_schemas(schemas, promote_options="permissive")
            dataset = ds.dataset([str(f) for f in files], format="parquet", schema=unified)
        except arrow_errors as exc:
            raise InputError(f"{src}: not a readable Parquet file ({first_line(exc) or type(exc).__name__})") from None
        columns = list(dataset.schema.names)
        roles = find_columns(columns, overrides, str(src))
        staged = Staged(folder, columns, roles, None)

        def frames():
            try:
                for batch in dataset.to_batches(batch_size=chunksize):
                    frame = batch.to_pandas()
                    yield pd.DataFrame({c: [_text_cell(v) for v in frame[c].tolist()] for c in columns})
            except arrow_errors as exc:
                raise InputError(f"{src}: a Parquet part cannot be read ({first_line(exc) or type(exc).__name__})") from None
    else:
        table = open_table(src, encoding=encoding, chunksize=chunksize, overrides=overrides)
        staged = Staged(folder, list(table.columns), table.roles, table.encoding)

        def frames():
            yield from table.chunks()

    names = [IDX] + [f"_c{j}" for j in range(len(staged.columns))]
    schema = pa.schema([(IDX, pa.int64())] + [(n, pa.string()) for n in names[1:]])
    text = staged.roles.get("text")
    for frame in frames():
        n = len(frame)
        if n == 0 and staged.parts:
            continue
        if text is not None:  # the scorer blanks these rows' text (the same test, row by row)
            repeats = header_repeats(frame, staged.columns, text)
            if len(repeats):
                say_header_repeats(str(src), staged.rows + int(repeats[0]) + 1, len(repeats))
        arrays = [pa.array(np.arange(staged.rows, staged.rows + n, dtype=np.int64))]
        arrays += [pa.array(frame.iloc[:, j].tolist(), type=pa.string()) for j in range(len(staged.columns))]
        pq.write_table(pa.Table.from_arrays(arrays, schema=schema), folder / f"part-{staged.parts:06d}.parquet")
        staged.parts += 1
        staged.rows += n
    return staged


# --- per-row decisions: mapInPandas over the Predictor ----------------------------------------


def _runs(idx: np.ndarray) -> list[slice]:
    """Slices of ``idx`` holding consecutive row indexes."""
    if not len(idx):
        return []
    cuts = np.flatnonzero(np.diff(idx) != 1) + 1
    bounds = [0, *cuts.tolist(), len(idx)]
    return [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:])]


def _scored_schema(keep: list[str]) -> str:
    fields = [f"{IDX} long", "id string", "primary string", "confidence double", "evidence string", "rating double",
              "buyer string", "item string", "date string", "eligible boolean", "bad boolean", "when long",
              "buyer_key string", "item_key string"]
    fields += [f"{c} double" for c in P_COLS] + [f"{c} boolean" for c in Q_COLS] + [f"{c} long" for c in SIG_COLS]
    fields += [f"{c} string" for c in keep] + ["text_skeleton string"]
    return ", ".join(fields)


def _make_scorer(bc, backend: str, roles: dict[str, str], keep: list[str], with_sig: bool, with_skeleton: bool,
                 header: tuple[list[str], list[str]] | None = None):
    """The function mapInPandas runs: batches of staged rows → Scored rows (flattened).
    ``header``: the staged columns and the input's header names; a row repeating the header
    is read with a blank text (``empty``), as the local scorer reads it."""

    def score(batches):
        from pipeline.segment import use_backend
        from pipeline.tables import header_repeats

        use_backend(backend)
        predictor = bc.value
        for pdf in batches:
            idx = pdf[IDX].to_numpy(dtype=np.int64)
            for run in _runs(idx):
                part = pdf.iloc[run]
                frame = pd.DataFrame({r: part[c].tolist() for r, c in roles.items()})
                if header is not None and "text" in roles:
                    repeats = header_repeats(part[header[0]], header[1], roles["text"])
                    if len(repeats):
                        frame.iloc[repeats, frame.columns.get_loc("text")] = ""
                offset = int(idx[run.start])
                s = predictor.score_chunk(frame, with_signatures=with_sig, offset=offset)
                out = _flatten(predictor, part, s, keep, with_sig)
                if with_skeleton:  # the skeleton of the text the model read (for MLlib's MinHashLSH)
                    prepared = predictor.model_.named_steps["prepare"].transform(
                        predictor.resolve(frame, offset=offset)[["text", "rating"]])
                    out["text_skeleton"] = [B.skeleton(t) for t in prepared["text"].tolist()]
                yield out

    return score


def _flatten(predictor, part: pd.DataFrame, s, keep: list[str], with_sig: bool) -> pd.DataFrame:
    n = len(s)
    sig = s.sig if with_sig and s.sig is not None else np.zeros((n, B.SIG_SIZE), dtype=np.uint32)
    eligible = s.eligible if with_sig and s.eligible is not None else np.zeros(n, dtype=bool)
    # the collector's own parsing of dates and its bad-review rule, row by row
    c = predictor.collector()
    c.add(sig, eligible, None, None, s.dates, s.ratings)
    when, bad = c._time[-1], c._bad[-1]
    buyers = s.buyers if s.buyers is not None else [None] * n
    items = s.items if s.items is not None else [None] * n
    out = {
        IDX: part[IDX].to_numpy(dtype=np.int64), "id": s.ids, "primary": s.primary.astype(str),
        "confidence": s.confidence.astype(float), "evidence": s.evidence, "rating": s.ratings.astype(float),
        "buyer": buyers, "item": items, "date": s.dates if s.dates is not None else [None] * n,
        "eligible": eligible.astype(bool), "bad": bad.astype(bool), "when": when.astype(np.int64),
        "buyer_key": [None if (b is None or B.is_masked(str(b))) else str(b).strip() for b in buyers],
        "item_key": [None if (i is None or not str(i).strip()) else str(i).strip() for i in items],
    }
    for j, col in enumerate(P_COLS):
        out[col] = s.proba[:, j].astype(float)
    for j, col in enumerate(Q_COLS):
        out[col] = s.passed[:, j].astype(bool)
    for j, col in enumerate(SIG_COLS):
        out[col] = sig[:, j].astype(np.int64)
    for col in keep:
        out[col] = part[col].tolist()
    out["text_skeleton"] = [None] * n
    return pd.DataFrame(out)


# --- batch signals with DataFrame operations ---------------------------------------------------


def campaigns(scored, minimum: int, workdir: Path, method: str = "bands"):
    """``(_idx, cluster_id, cluster_authors)`` of the rows in a campaign, numbered 1, 2 … by the
    smallest row index of each cluster, as :func:`pipeline.batch._campaigns` numbers them.
    ``workdir``: a folder for the rounds of the components (read lazily: keep it until the
    result has been used)."""
    from pyspark.sql import functions as F

    rows = scored.where(F.col("eligible") & F.col("bad"))
    who = F.when(F.col("buyer_key").isNotNull(), F.concat(F.lit("b:"), F.col("buyer_key"))) \
        .otherwise(F.concat(F.lit("r:"), F.col(IDX).cast("string")))
    rows = rows.select(IDX, who.alias("who"), *SIG_COLS, "text_skeleton")
    edges = _edges_mllib(rows) if method == "mllib" else _edges_bands(rows)
    labels = _components(edges, Path(workdir) / "components")
    return _clusters(rows, labels, minimum)


def _clusters(rows, labels, minimum: int):
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    comp = rows.select(IDX, "who").join(labels, rows[IDX] == labels["v"], "left") \
        .select(IDX, "who", F.coalesce(F.col("label"), F.col(IDX)).alias("root"))
    per = comp.groupBy("root").agg(F.count("*").alias("size"), F.countDistinct("who").alias("cluster_authors")) \
        .where((F.col("size") >= minimum) & (F.col("cluster_authors") >= minimum))
    numbered = per.select("root", "cluster_authors",
                          F.row_number().over(Window.orderBy("root")).cast("long").alias("cluster_id"))
    return comp.join(numbered, "root").select(IDX, "cluster_id", "cluster_authors")


def _edges_bands(rows):
    """Each row joined to the first (smallest-index) row of its bucket in every band, kept when
    the two signatures agree on ≥ AGREEMENT of their places: the local rule of batch._campaigns."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    width = B.SIG_SIZE // B.BANDS
    need = int(np.ceil(B.AGREEMENT * B.SIG_SIZE))
    keys = [f"k{k}" for k in range(width)]
    bands = rows.select(IDX, F.explode(F.array(*[
        F.struct(F.lit(b).alias("band"), *[F.col(SIG_COLS[b * width + k]).alias(keys[k]) for k in range(width)])
        for b in range(B.BANDS)])).alias("x")).select(IDX, "x.*")
    first = F.min(IDX).over(Window.partitionBy("band", *keys))
    pairs = bands.select(IDX, first.alias("first")).where(F.col(IDX) != F.col("first")).distinct()
    a = rows.select(F.col(IDX).alias("a"), *[F.col(c).alias(f"a{c}") for c in SIG_COLS])
    b = rows.select(F.col(IDX).alias("b"), *[F.col(c).alias(f"b{c}") for c in SIG_COLS])
    joined = pairs.join(a, pairs[IDX] == a["a"]).join(b, pairs["first"] == b["b"])
    agree = sum((F.col(f"a{c}") == F.col(f"b{c}")).cast("int") for c in SIG_COLS)
    return joined.where(agree >= need).select(F.col("a").alias("src"), F.col("b").alias("dst"))


def _edges_mllib(rows):
    """Near-duplicate pairs from MLlib's MinHashLSH on the skeleton's character 3-grams (exact
    Jaccard ≥ AGREEMENT among the candidates); identical skeletons are joined once."""
    from pyspark.ml.feature import MinHashLSH
    from pyspark.sql import functions as F

    distinct = rows.groupBy("text_skeleton").agg(F.min(IDX).alias("rep"))
    members = rows.select(IDX, "text_skeleton").join(distinct, "text_skeleton").where(F.col(IDX) != F.col("rep")) \
        .select(F.col(IDX).alias("src"), F.col("rep").alias("dst"))
    vectors = distinct.select("rep", _shingle_vector(F.col("text_skeleton")).alias("features"))
    model = MinHashLSH(inputCol="features", outputCol="hashes", numHashTables=B.SIG_SIZE, seed=20240601).fit(vectors)
    pairs = model.approxSimilarityJoin(vectors, vectors, 1.0 - B.AGREEMENT + 1e-9, distCol="distance") \
        .select(F.col("datasetA.rep").alias("src"), F.col("datasetB.rep").alias("dst")).where(F.col("src") < F.col("dst"))
    return members.unionByName(pairs)


def _shingle_vector(col):
    from pyspark.ml.linalg import SparseVector, VectorUDT
    from pyspark.sql import functions as F

    size = 1 << 30  # MinHashLSH hashes indexes modulo the prime 2038074743: keep them under it

    @F.udf(VectorUDT())
    def shingles(sk):
        import zlib

        keys = sorted({zlib.crc32(sk[j:j + 3].encode("utf-8")) % size for j in range(len(sk) - 2)})
        return SparseVector(size, keys, [1.0] * len(keys))

    return shingles(col)


def _components(edges, workdir: Path, max_rounds: int = 200):
    """``(v, label)``: every vertex of ``edges`` (``src``, ``dst``) that is not the smallest of
    its connected component, labelled with that smallest vertex (the smallest one labels itself).

    Alternating large-star and small-star rounds (Kiveris et al., "Connected components in
    MapReduce and beyond", 2014: O(log² n) rounds), each a ``groupBy`` and a join, until the
    edges form one star per component around its smallest vertex. Each round's edges are written
    to Parquet under ``workdir`` and read back: a short plan, and size statistics from the file
    (a checkpoint keeps the estimate of its joins, which multiplies round after round until the
    planner stalls)."""
    from pyspark.sql import functions as F

    spark = edges.sparkSession
    workdir.mkdir(parents=True, exist_ok=True)

    def saved(df, name):
        path = str(workdir / name)
        df.write.mode("overwrite").parquet(path)
        return spark.read.parquet(path)

    def both_ways(e):
        return e.unionByName(e.select(F.col("b").alias("a"), F.col("a").alias("b")))

    e = edges.select(F.least("src", "dst").alias("a"), F.greatest("src", "dst").alias("b")).where(F.col("a") != F.col("b"))
    e = saved(e.distinct(), "edges-0")
    _ROUNDS["last"] = 0
    if not e.limit(1).count():
        return e.select(F.col("b").alias("v"), F.col("a").alias("label"))
    for round_ in range(1, max_rounds + 1):
        # large star: every neighbour larger than u is linked to the smallest of u's closed neighbourhood
        nb = both_ways(e)
        m = nb.groupBy("a").agg(F.least(F.min("b"), F.col("a")).alias("m"))
        large = nb.join(m, "a").where(F.col("b") > F.col("a")).select(F.col("b").alias("a"), F.col("m").alias("b"))
        e = saved(large.where(F.col("a") != F.col("b")).select(F.least("a", "b").alias("a"), F.greatest("a", "b").alias("b"))
                  .distinct(), f"edges-{round_}L")
        # small star: u and its smaller neighbours are linked to the smallest of them
        nb = both_ways(e).where(F.col("b") < F.col("a"))
        m = nb.groupBy("a").agg(F.min("b").alias("m"))
        small = nb.join(m, "a").select(F.col("b").alias("a"), F.col("m").alias("b")) \
            .unionByName(m.select("a", F.col("m").alias("b")))
        e = saved(small.where(F.col("a") != F.col("b")).select(F.least("a", "b").alias("a"), F.greatest("a", "b").alias("b"))
                  .distinct(), f"edges-{round_}S")
        _ROUNDS["last"] = round_
        # done when the edges are stars: no vertex is linked twice as the larger end, and no
        # centre (a smaller end) is the larger end of another edge
        twice = e.groupBy("b").agg(F.count("*").alias("n")).where("n > 1").select("b")
        centre_linked = e.join(e.select(F.col("b").alias("a")).distinct(), "a").select("b")
        if not twice.unionByName(centre_linked).limit(1).count():
            return e.select(F.col("b").alias("v"), F.col("a").alias("label"))
    raise RuntimeError(f"connected components did not converge in {max_rounds} rounds")


#: rounds of the last components run (for the benchmark)
_ROUNDS = {"last": 0}


def signals(scored, predictor, workdir: Path, campaign_method: str = "bands"):
    """``(_idx, cluster_id, cluster_authors, serial_reviews, serial_items, burst)`` for the rows
    with any batch signal (others have none), with the Predictor's policy parameters."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    camp = campaigns(scored, predictor.campaign_min, workdir, campaign_method)

    has_items = scored.where(F.col("item_key").isNotNull()).limit(1).count() > 0
    bad_buyers = scored.where(F.col("buyer_key").isNotNull() & F.col("bad"))
    per = bad_buyers.groupBy("buyer_key").agg(F.count("*").alias("serial_reviews"),
                                              F.countDistinct("item_key").alias("serial_items"))
    per = per.where((F.col("serial_reviews") >= predictor.serial_min) & ((F.col("serial_items") >= 2) | F.lit(not has_items)))
    serial = bad_buyers.select(IDX, "buyer_key").join(per, "buyer_key").select(IDX, "serial_reviews", "serial_items")

    half = int(predictor.burst_hours) * 3600 // 2
    window = Window.partitionBy("item_key").orderBy("when").rangeBetween(-half, half)
    timed = scored.where(F.col("item_key").isNotNull() & (F.col("when") >= 0) & F.col("bad"))
    burst = timed.select(IDX, F.count("*").over(window).alias("burst")).where(F.col("burst") >= predictor.burst_min)

    return camp.join(serial, IDX, "full").join(burst, IDX, "full")


# --- output columns: mapInPandas over Predictor.finish ------------------------------------------


def _output_schema(keep: list[str]) -> str:
    types = {"confidence": "double", "suspected_malicious": "boolean", "malicious_score": "double"}
    fields = [f"{IDX} long"] + [f"`{c}` {types.get(c, 'double' if c.startswith('p_') else 'string')}" for c in PRED_COLUMNS]
    return ", ".join(fields + [f"{c} string" for c in keep])


def _make_finisher(bc, present: dict[str, bool], keep: list[str], with_signals: bool):
    def finish(batches):
        from pipeline.batch import Signals
        from pipeline.predict import Scored

        predictor = bc.value
        for pdf in batches:
            s = Scored(
                ids=pdf["id"].tolist(), proba=pdf[P_COLS].to_numpy(dtype=float), passed=pdf[Q_COLS].to_numpy(dtype=bool),
                primary=np.asarray(pdf["primary"].tolist(), dtype=object), confidence=pdf["confidence"].to_numpy(dtype=float),
                evidence=pdf["evidence"].tolist(), ratings=pdf["rating"].to_numpy(dtype=float),
                buyers=pdf["buyer"].tolist() if present["buyer"] else None,
                items=pdf["item"].tolist() if present["item"] else None,
                dates=pdf["date"].tolist() if present["date"] else None,
            )
            sig = None
            if with_signals:
                def ints(col, default):
                    return pdf[col].fillna(default).to_numpy().astype(np.int64)

                sig = Signals(ints("cluster_id", -1), ints("cluster_authors", 0), ints("serial_reviews", 0),
                              ints("serial_items", 0), ints("burst", 0))
            out = predictor.finish(s, sig, 0)
            out.insert(0, IDX, pdf[IDX].to_numpy(dtype=np.int64))
            for col in keep:
                out[col] = pdf[col].tolist()
            out["suspected_malicious"] = out["suspected_malicious"].astype(bool)
            yield out

    return finish


# --- the file command --------------------------------------------------------------------------


@contextmanager
def _stage_dir():
    base = os.environ.get("REVIEWCAUSE_SPARK_STAGE")
    if base:
        Path(base).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="reviewcause-spark-", dir=base or None) as d:
        yield Path(d)


def check_output(path, inputs=None) -> Path:
    """:func:`pipeline.tables.check_output`, plus ``.parquet`` outputs."""
    from pipeline.tables import check_output as check

    path = Path(path)
    if path.suffix.lower() != ".parquet":
        return check(path, inputs)
    if path.is_dir():
        raise InputError(f"{path}: is a directory; give an output file name")
    if not path.parent.exists():
        raise InputError(f"{path}: folder {path.parent} does not exist")
    for what, src in (inputs or {}).items():
        if src is not None and Path(src).exists() and path.exists() and os.path.samefile(path, src):
            raise InputError(f"{path}: is the {what}; writing the output there would destroy it — choose another output file")
    return path


def score_file_spark(src, dst, model_path=None, encoding=None, overrides=None, bom=True, batch=True, zh_headers=False,
                     master=None, spark=None, conf=None, chunksize=20_000, campaign_method="bands",
                     timings: dict | None = None) -> dict[str, object]:
    """Score ``src`` into ``dst`` on Spark; the same summary as :func:`pipeline.run.score_file`.

    ``spark``: a running SparkSession to use (else one is started on ``master`` and stopped
    at the end). ``timings`` (a dict) receives the seconds of each step."""
    from pipeline.paths import DEFAULT_MODEL
    from pipeline.persist import load_predictor
    from pipeline.run import kept_columns
    from pipeline.segment import current_backend

    src, dst = Path(src), Path(dst)
    check_available()
    if src.is_dir() and not _is_parquet(src):
        raise InputError(f"{src}: is a directory without .parquet files, not an input file")
    if not src.exists():
        raise InputError(f"{src}: no such file")
    predictor = load_predictor(model_path or DEFAULT_MODEL)
    predictor.set_params(batch=batch)
    t = timings if timings is not None else {}
    if spark is None:  # a session this process already runs is used as it is, and left running
        from pyspark.sql import SparkSession

        spark = SparkSession.getActiveSession()
    own = spark is None
    # Ctrl-C or SIGTERM, from the session's start on, stops the run with the local engine's one
    # line, removes the staging folder (a copy of the input) and keeps no output; py4j reports an
    # interrupted call through the root logger (dozens of traceback lines), which is quiet meanwhile
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.CRITICAL)
    try:
        with interruptible():
            clock = time.perf_counter()
            if own:
                spark = session(master, conf, quiet=True)
            t["session_s"] = round(time.perf_counter() - clock, 2)
            with _stage_dir() as stage:
                clock = time.perf_counter()
                staged = stage_input(src, stage / "input", encoding, overrides, chunksize)
                kept_columns(src, staged.columns)  # the warning for columns the predictions replace
                t["stage_s"] = round(time.perf_counter() - clock, 2)
                clock = time.perf_counter()
                out = _score(spark, predictor, staged, batch, campaign_method, current_backend(), stage)
                t["spark_s"] = round(time.perf_counter() - clock, 2)
                clock = time.perf_counter()
                summary = _write(stage / "output", dst, staged, bom=bom, zh_headers=zh_headers)
                t["write_s"] = round(time.perf_counter() - clock, 2)
                t["partitions"] = out
    finally:
        root.setLevel(level)
        if own and spark is not None:
            try:
                spark.stop()
            except Exception:  # the JVM a group signal stopped first: nothing left to stop
                pass
    return summary | {"roles": staged.roles, "encoding": staged.encoding, "output": str(dst), "engine": "spark"}


def _score(spark, predictor, staged: Staged, batch: bool, campaign_method: str, backend: str, stage: Path) -> int:
    """Run the Spark job; the output rows (sorted by row index) land as Parquet parts in
    ``stage/output``. Returns the number of scoring partitions."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    from pipeline.run import kept_columns

    keep_names = kept_columns(None, staged.columns)
    keep = [staged.col(c) for c in keep_names]
    roles = {r: staged.col(c) for r, c in staged.roles.items() if c}
    present = {r: r in roles for r in ("buyer", "item", "date")}
    bc = spark.sparkContext.broadcast(predictor)
    try:
        data = spark.read.parquet(str(stage / "input"))
        parts = data.rdd.getNumPartitions()
        header = ([staged.col(c) for c in staged.columns], list(staged.columns))
        scorer = _make_scorer(bc, backend, roles, keep, batch, batch and campaign_method == "mllib", header)
        # persisted: the batch signals, the sort's sampling and the output all read it; the
        # model runs once per row
        scored = data.mapInPandas(scorer, _scored_schema(keep)).persist(StorageLevel.MEMORY_AND_DISK)
        if batch:
            joined = scored.join(signals(scored, predictor, stage / "signals", campaign_method), IDX, "left")
        else:
            joined = scored.select("*", *[F.lit(None).cast("long").alias(c) for c in
                                          ("cluster_id", "cluster_authors", "serial_reviews", "serial_items", "burst")])
        final = joined.orderBy(IDX).mapInPandas(_make_finisher(bc, present, keep, batch), _output_schema(keep))
        final.write.mode("overwrite").parquet(str(stage / "output"))
        scored.unpersist()
        return parts
    finally:
        bc.unpersist()


def _write(folder: Path, dst: Path, staged: Staged, bom: bool, zh_headers: bool) -> dict[str, object]:
    """Stream the sorted Parquet parts into ``dst`` (checking that every row index 0 … n−1
    comes exactly once, in order)."""
    import pyarrow.parquet as pq

    from pipeline.run import format_rows, kept_columns, open_output

    keep_names = kept_columns(None, staged.columns)
    keep = [staged.col(c) for c in keep_names]
    files = [f for f in folder.glob("part-*.parquet")]
    firsts = []
    for f in files:
        meta = pq.ParquetFile(f)
        if meta.metadata.num_rows:
            first = meta.read_row_group(0, columns=[IDX]).column(0)[0].as_py()
            firsts.append((first, f))
    counts: dict[str, int] = {}
    summary = {"rows": 0, "suspected": 0}

    def frames():
        expected = 0
        for _, f in sorted(firsts):
            pf = pq.ParquetFile(f)
            for rb in pf.iter_batches(batch_size=20_000):
                frame = rb.to_pandas()
                idx = frame[IDX].to_numpy()
                if len(idx) and not (idx == np.arange(expected, expected + len(idx))).all():
                    raise RuntimeError(f"spark output out of order at row {expected}")
                expected += len(idx)
                yield frame
        if expected != staged.rows:
            raise RuntimeError(f"spark output has {expected} rows, the input {staged.rows}")

    def tally(frame):
        for c, k in frame["cause"].value_counts().items():
            counts[c] = counts.get(c, 0) + int(k)
        summary["rows"] += len(frame)
        summary["suspected"] += int(frame["suspected_malicious"].sum())

    if dst.suffix.lower() == ".parquet":
        _write_parquet(frames(), dst, keep, keep_names, tally)
    else:
        with open_output(dst, keep_names + PRED_COLUMNS, trusted=TRUSTED_COLUMNS, bom=bom, zh_headers=zh_headers) as out:
            for frame in frames():
                rows = format_rows(frame)
                base = frame[keep].to_numpy(dtype=object).tolist() if keep else [[] for _ in range(len(frame))]
                out.rows([[*b, *p] for b, p in zip(base, rows)])
                tally(frame)
            _check_interrupt()  # a signal during the write: the previous output stays
    return summary | {"counts": counts}


def _write_parquet(frames, dst: Path, keep: list[str], keep_names: list[str], tally) -> None:
    """One Parquet file: the input columns (text) then the prediction columns (typed), written
    to a temporary file beside ``dst`` and renamed into place."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipeline.tables import atomic_file, display_name, warn

    names = _distinct([display_name(c) for c in keep_names] + PRED_COLUMNS)
    renamed = [f"{display_name(c)!r} → {n!r}" for c, n in zip(keep_names, names) if n != display_name(c)]
    if renamed:  # CSV keeps a repeated header as it is; a Parquet schema cannot
        warn(f"{dst}: Parquet needs distinct column names; renamed {', '.join(renamed[:5])}"
             f"{f' and {len(renamed) - 5} more' if len(renamed) > 5 else ''}")
    with atomic_file(dst) as tmp:
        writer = None
        try:
            for frame in frames:
                table = pa.Table.from_pandas(frame[keep + PRED_COLUMNS].set_axis(names, axis=1), preserve_index=False)
                if writer is None:
                    writer = pq.ParquetWriter(tmp, table.schema)
                writer.write_table(table)
                tally(frame)
            if writer is None:  # no rows: the columns alone
                empty = pd.DataFrame({**{n: pd.Series([], dtype=object) for n in names[:len(keep)]},
                                      **{c: pd.Series([], dtype=_PARQUET_DTYPES.get(c, "float64" if c.startswith("p_") else object))
                                         for c in PRED_COLUMNS}})
                writer = pq.ParquetWriter(tmp, pa.Table.from_pandas(empty, preserve_index=False).schema)
            writer.close()
            writer = None
            _check_interrupt()  # a signal during the write: the previous output stays
        finally:
            if writer is not None:
                writer.close()


_PARQUET_DTYPES = {"confidence": "float64", "suspected_malicious": "bool", "malicious_score": "float64"}


def _distinct(names: list[str]) -> list[str]:
    """The names, a repeated one (or a blank one) numbered as pandas numbers them: ``正文``, ``正文.1``."""
    out: list[str] = []
    taken: set[str] = set()
    for name in names:
        base = name if name.strip() else "Unnamed"
        new, k = base, 0
        while new in taken or (new != name and new in names):
            k += 1
            new = f"{base}.{k}"
        out.append(new)
        taken.add(new)
    return out


