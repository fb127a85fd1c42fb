"""``--engine spark``: the same rows as the local scorer, on a local[2] Spark.

Skipped with the reason when PySpark or a Java runtime is missing — except under CI
(``CI=true``), where a missing Spark is a failure: .ci/run installs both."""

from __future__ import annotations

import csv
import os
import sys

import numpy as np
import pandas as pd
import pytest

from pipeline.tables import InputError

from pipeline import spark as sp
from pipeline.cli import main
from pipeline.paths import SAMPLE
from pipeline.run import score_file

IN_CI = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _need_spark() -> None:
    reason = sp.unavailable()
    if reason:
        if IN_CI:
            pytest.fail(f"CI=true and the Spark engine cannot run: {reason}")
        pytest.skip(reason)


@pytest.fixture(scope="module")
def spark():
    _need_spark()
    session = sp.session("local[2]", {
        "spark.sql.shuffle.partitions": "4",
        "spark.default.parallelism": "2",
        # a short-lived test JVM: the C1 compiler alone starts it twice as fast here
        "spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1",
    })
    yield session
    session.stop()


def _rows(path):
    with open(path, encoding="utf-8-sig", newline="") as fh:
        return list(csv.reader(fh))


def _assert_same_rows(local, spark_out):
    a, b = _rows(local), _rows(spark_out)
    assert a[0] == b[0], "headers differ"
    assert len(a) == len(b), f"{len(a) - 1} local rows, {len(b) - 1} spark rows"
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            diff = {a[0][j]: (x[j], y[j]) for j in range(len(x)) if x[j] != y[j]}
            pytest.fail(f"row {i} differs (local, spark): {diff}")


# --- without Spark: the one-line errors ------------------------------------------------------


def test_without_pyspark_one_line(monkeypatch, tmp_path, capsys, tiny_model_path):
    monkeypatch.setitem(sys.modules, "pyspark", None)  # import pyspark → ImportError
    status = main(["score", str(SAMPLE), "-o", str(tmp_path / "out.csv"), "--engine", "spark", "--model", str(tiny_model_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1
    assert "pip install '.[spark]'" in err[0] and not (tmp_path / "out.csv").exists()


def test_without_java_one_line(monkeypatch):
    pytest.importorskip("pyspark", reason="PySpark is not installed (the missing-PySpark message is tested above)")
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(sp.InputError) as exc:
        sp.check_available()
    assert "Java runtime" in str(exc.value) and "default-jre-headless" in str(exc.value) and "\n" not in str(exc.value)


def test_runs_of_consecutive_rows():
    assert sp._runs(np.array([], dtype=np.int64)) == []
    runs = sp._runs(np.array([4, 5, 6, 9, 10, 2]))
    assert [(r.start, r.stop) for r in runs] == [(0, 3), (3, 5), (5, 6)]


# --- on Spark -----------------------------------------------------------------------------------


def test_sample_equals_local_scorer(spark, tiny_model_path, tmp_path):
    local, remote = tmp_path / "local.csv", tmp_path / "spark.csv"
    score_file(SAMPLE, local, model_path=tiny_model_path)
    summary = sp.score_file_spark(SAMPLE, remote, model_path=tiny_model_path, spark=spark)
    _assert_same_rows(local, remote)
    assert local.read_bytes() == remote.read_bytes()
    assert summary["rows"] == len(_rows(local)) - 1


def test_cli_engine_spark_without_batch_signals(spark, tiny_model_path, tmp_path, capsys):
    local, remote = tmp_path / "local.csv", tmp_path / "spark.csv"
    score_file(SAMPLE, local, model_path=tiny_model_path, batch=False)
    status = main(["score", str(SAMPLE), "-o", str(remote), "--engine", "spark", "--master", "local[2]", "--no-batch",
                   "--model", str(tiny_model_path)])
    assert status == 0 and f"→ {remote}" in capsys.readouterr().err
    assert local.read_bytes() == remote.read_bytes()
    assert spark.sparkContext._jsc is not None  # the running session was used, not stopped


def test_a_header_repeated_mid_file_is_empty_on_both_engines(spark, tiny_model_path, tmp_path, capsys):
    """Two exports joined end to end: the second header is a row of the output, `empty` and not
    scored, on Spark as locally (the test lives in ``tables.header_repeats``, which both use)."""
    sample = SAMPLE.read_bytes()
    head = sample.split(b"\n", 1)[0].lstrip(b"\xef\xbb\xbf")
    src = tmp_path / "joined.csv"
    src.write_bytes(sample + b"\xef\xbb\xbf" + head + b"\n" + sample.split(b"\n", 1)[1])
    local, remote = tmp_path / "local.csv", tmp_path / "spark.csv"
    score_file(src, local, model_path=tiny_model_path)
    capsys.readouterr()
    sp.score_file_spark(src, remote, model_path=tiny_model_path, spark=spark)
    assert "repeats the header row" in capsys.readouterr().err
    _assert_same_rows(local, remote)
    rows = _rows(remote)
    cause = rows[0].index("cause")
    texts = pd.read_csv(SAMPLE)["评价内容"]
    n = len(texts)
    assert len(rows) == 1 + 2 * n + 1 and rows[1 + n][rows[0].index("评价内容")] == "评价内容"
    assert rows[1 + n][cause] == "empty"
    assert sum(r[cause] == "empty" for r in rows[1:]) == 1 + 2 * int(texts.isna().sum())


def test_parquet_in_and_out(spark, tiny_model_path, tmp_path):
    local = tmp_path / "local.csv"
    score_file(SAMPLE, local, model_path=tiny_model_path)
    frame = pd.read_csv(SAMPLE, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    frame.to_parquet(tmp_path / "in.parquet", index=False)
    sp.score_file_spark(tmp_path / "in.parquet", tmp_path / "out.parquet", model_path=tiny_model_path, spark=spark)
    got = pd.read_parquet(tmp_path / "out.parquet")
    want = pd.read_csv(local, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    assert list(got.columns) == list(want.columns)
    assert got["suspected_malicious"].dtype == bool and got["confidence"].dtype == float
    for col in want.columns:
        if col in ("confidence", "malicious_score") or col.startswith("p_"):
            assert (got[col].map("{:.4f}".format) == want[col]).all(), col
        elif col == "suspected_malicious":
            assert (got[col].map({True: "true", False: "false"}) == want[col]).all()
        else:
            assert got[col].tolist() == want[col].map(lambda v: v[1:] if v.startswith("'") else v).tolist(), col


def test_parquet_folders_of_unlike_parts_and_repeated_headers(spark, tiny_model_path, tmp_path, capsys):
    """A folder whose parts differ: a column all null in one part is read (was an Arrow traceback),
    a column only one part has is refused in one line (was dropped silently); repeated headers get
    distinct names in a Parquet output (was a late error naming no file)."""
    lake = tmp_path / "lake"
    lake.mkdir()
    pd.DataFrame({"评价编号": ["a1", "a2"], "评价内容": ["质量差", "物流慢"], "商家回复": [None, None]}).to_parquet(lake / "p0.parquet", index=False)
    pd.DataFrame({"评价编号": ["b1", "b2"], "评价内容": ["客服差", "假货"], "商家回复": ["抱歉", "已处理"]}).to_parquet(lake / "p1.parquet", index=False)
    sp.score_file_spark(lake, tmp_path / "lake.csv", model_path=tiny_model_path, spark=spark)
    got = pd.read_csv(tmp_path / "lake.csv", dtype=str, keep_default_na=False, encoding="utf-8-sig")
    assert got["评价编号"].tolist() == ["a1", "a2", "b1", "b2"] and got["商家回复"].tolist() == ["", "", "抱歉", "已处理"]
    odd = tmp_path / "odd"
    odd.mkdir()
    pd.DataFrame({"评价编号": ["a1"], "评价内容": ["质量差"]}).to_parquet(odd / "p0.parquet", index=False)
    pd.DataFrame({"评价编号": ["b1"], "评价内容": ["客服差"], "评分": ["1"]}).to_parquet(odd / "p1.parquet", index=False)
    with pytest.raises(InputError, match=r"p1\.parquet: its columns \(评价编号, 评价内容, 评分\) are not those of p0\.parquet"):
        sp.score_file_spark(odd, tmp_path / "odd.csv", model_path=tiny_model_path, spark=spark)
    dup = tmp_path / "dup.csv"
    dup.write_text("编号,正文,备注,正文\n1,质量很差,x,物流慢\n2,客服差,y,假货\n", encoding="utf-8")
    sp.score_file_spark(dup, tmp_path / "dup.parquet", model_path=tiny_model_path, spark=spark, overrides={"text": "正文"})
    assert list(pd.read_parquet(tmp_path / "dup.parquet").columns[:4]) == ["编号", "正文", "备注", "正文.1"]
    assert "Parquet needs distinct column names; renamed '正文' → '正文.1'" in capsys.readouterr().err


CAMPAIGN = [
    "这家店是骗子，东西全是假货，大家千万别买，去隔壁那家买正品！！",
    "这家店是骗子,东西全是假货,大家千万别买,去隔壁那家买正品!!!",
    "这家店是骗子 东西全是假货 大家千万别买 去隔壁那家买正品😡",
    "这家店是骗子，东西全都是假货，大家千万别买，去隔壁那家买正品",
    "這家店是騙子，東西全是假貨，大家千萬別買，去隔壁那家買正品！",
]
PLANTED = [1234, 5678, 9012, 13456, 17890]


def _big_file(path, n=20_000):
    """``n`` real negative reviews with buyers (masked and not), items, times and ratings, and a
    five-buyer campaign planted at rows PLANTED."""
    from pipeline.paths import ROOT

    corpus = pd.read_csv(ROOT / "data" / "raw" / "online_shopping_neg.csv", dtype=str, keep_default_na=False)["text"]
    rng = np.random.default_rng(11)
    texts = corpus.to_numpy()[rng.integers(0, len(corpus), n)]
    names = np.array([f"买家{i}" for i in range(n // 4)])
    buyers = np.where(rng.random(n) < 0.5, [f"{c}***{d}" for c, d in zip(rng.choice(list("abcdt"), n), rng.integers(0, 9, n))],
                      names[rng.integers(0, len(names), n)])
    items = np.array([f"商品{i}" for i in range(40)])[rng.integers(0, 40, n)]
    times = pd.Timestamp("2024-05-01") + pd.to_timedelta(rng.integers(0, 60 * 24 * 3600, n), unit="s")
    frame = pd.DataFrame({"评价编号": [f"r{i:06d}" for i in range(n)], "买家昵称": buyers, "商品": items,
                          "评分": rng.choice(["1", "2", "3", "4", "5", "差评", ""], n),
                          "评价时间": times.strftime("%Y-%m-%d %H:%M:%S"), "评价内容": texts})
    for k, (row, text) in enumerate(zip(PLANTED, CAMPAIGN)):
        frame.loc[row, ["买家昵称", "评分", "评价内容"]] = [f"水军{k + 1}号", "1", text]
    frame.to_csv(path, index=False)
    return frame


def test_20k_rows_with_a_planted_campaign(spark, tiny_model_path, tmp_path):
    src = tmp_path / "big.csv"
    frame = _big_file(src)
    remote, local = tmp_path / "spark.csv", tmp_path / "local.csv"
    summary = sp.score_file_spark(src, remote, model_path=tiny_model_path, spark=spark, chunksize=5_000)
    out = pd.read_csv(remote, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    assert summary["rows"] == len(out) == 20_000
    assert out["review_id"].tolist() == frame["评价编号"].tolist()  # every row, in order
    planted = out.iloc[PLANTED]
    assert planted["cluster_id"].nunique() == 1 and planted["cluster_id"].iloc[0].startswith("C")
    assert (out["cluster_id"] == planted["cluster_id"].iloc[0]).sum() == 5
    assert (planted["suspected_malicious"] == "true").all()
    assert planted["evidence"].str.contains("近似文本由5个买家发布").all()
    score_file(src, local, model_path=tiny_model_path)
    _assert_same_rows(local, remote)  # clusters (numbered alike), serial buyers, bursts: as on the laptop


def test_mllib_minhash_finds_the_same_campaign(spark, tmp_path):
    """MLlib's MinHashLSH + approxSimilarityJoin on the same shingles finds the campaign the local
    banding finds (it is not the default: borderline pairs may differ from the local rule; the
    default banding is checked against the local scorer above)."""
    from pipeline.batch import Collector, signatures, skeleton
    from pipeline.normalize import normalize_many

    texts = CAMPAIGN + ["物流太慢了，等了一个星期才到货，包装也破了", "质量很差，用了两天就坏了，客服也不理人",
                        "物流太慢了，等了一个星期才到货，包装也破了！", "差评"]
    buyers = ["a1", "b2", "c3", "d4", "e5", "f6", "g7", "f6", "h8"]
    norm = normalize_many(texts)
    sig, eligible = signatures(norm)
    c = Collector()
    c.add(sig, eligible, buyers)
    want = c.finish()
    rows = pd.DataFrame({sp.IDX: np.arange(len(texts), dtype=np.int64), "eligible": eligible, "bad": True,
                         "buyer_key": buyers, "text_skeleton": [skeleton(t) for t in norm]})
    for j, col in enumerate(sp.SIG_COLS):
        rows[col] = sig[:, j].astype(np.int64)
    df = spark.createDataFrame(rows)
    for method in ("mllib",):
        got = {r[sp.IDX]: (r["cluster_id"], r["cluster_authors"]) for r in sp.campaigns(df, 3, tmp_path / method, method).collect()}
        ids = [got.get(i, (-1, 0))[0] for i in range(len(texts))]
        assert ids == want.cluster_id.tolist() == [1] * 5 + [-1] * 4, method
        assert [got.get(i, (-1, 0))[1] for i in range(5)] == [5] * 5


def test_components_of_a_long_chain(spark, tmp_path):
    """Large-star/small-star rounds link every vertex of a 60-link chain (in shuffled order) to its
    smallest vertex, and a second component to its own (more links only add rounds: 200 → 6, 2,000 → 9)."""
    rng = np.random.default_rng(3)
    order = rng.permutation(np.arange(100, 161))
    edges = pd.DataFrame({"src": order[:-1].astype(np.int64), "dst": order[1:].astype(np.int64)})
    edges = pd.concat([edges, pd.DataFrame({"src": [9, 7, 9], "dst": [7, 5, 5]})])  # a triangle
    labels = dict(sp._components(spark.createDataFrame(edges), tmp_path).select("v", "label").collect())
    assert {v: labels.get(v, v) for v in (5, 7, 9)} == {5: 5, 7: 5, 9: 5}
    assert {labels.get(int(v), int(v)) for v in order} == {100}


@pytest.mark.parametrize("signum, status", [(15, 143), (2, 130)])
def test_a_signal_stops_a_spark_run_with_one_line_and_leaves_nothing(tiny_model_path, tmp_path, signum, status):
    """SIGTERM killed a Spark run silently and left the staged copy of the input in /tmp; Ctrl-C
    printed py4j tracebacks. Now: the interrupted line, 128+signal, the staging folder removed,
    the previous output intact."""
    import os
    import signal
    import subprocess
    import sys
    import time

    _need_spark()
    src = tmp_path / "in.csv"
    from pipeline.paths import RAW

    texts = pd.read_csv(RAW / "online_shopping_neg.csv", usecols=["text"])["text"]
    pd.DataFrame({"评价内容": pd.concat([texts] * 4, ignore_index=True)}).to_csv(src, index=False)
    out = tmp_path / "pred.csv"
    out.write_text("previous good output\n", encoding="utf-8")
    stage = tmp_path / "stage"
    env = dict(os.environ, REVIEWCAUSE_SPARK_STAGE=str(stage))

    def default_signals():
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)

    proc = subprocess.Popen([sys.executable, "-m", "pipeline", "score", str(src), "-o", str(out), "--model", str(tiny_model_path),
                             "--engine", "spark", "--master", "local[1]", "-q"], env=env, stderr=subprocess.PIPE, text=True,
                            preexec_fn=default_signals)
    deadline = time.time() + 180
    while time.time() < deadline and not any(stage.glob("*/input/part-*")):  # staging: the run is under way
        time.sleep(0.1)
    assert proc.poll() is None, proc.communicate()[1][-2000:]
    proc.send_signal(signum)
    err = proc.communicate(timeout=180)[1]
    lines = [x for x in err.splitlines() if x.strip()]
    assert proc.returncode == status and lines[-1].startswith("reviewcause: interrupted"), err[-2000:]
    assert "Traceback" not in err, err[-2000:]
    assert out.read_text(encoding="utf-8") == "previous good output\n"
    assert list(stage.iterdir()) == []
