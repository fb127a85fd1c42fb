"""The MLflow model travels on its own and serves the same answers over REST."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest

from pipeline.predict import PRED_COLUMNS


@pytest.fixture(scope="module")
def logged(tiny_model_path, tmp_path_factory):
    """The tiny model logged as the pyfunc to a throwaway store, downloaded to a folder."""
    import mlflow

    from pipeline.serving import log_pyfunc

    root = tmp_path_factory.mktemp("store")
    mlflow.set_tracking_uri(f"sqlite:///{root / 'mlflow.db'}")
    mlflow.set_experiment("serving")
    with mlflow.start_run():
        info = log_pyfunc(tiny_model_path)
    local = mlflow.artifacts.download_artifacts(info.model_uri, dst_path=str(root / "model"))
    return Path(local)


def test_model_folder_is_self_contained(logged):
    files = {p.relative_to(logged).as_posix() for p in logged.rglob("*") if p.is_file()}
    assert "MLmodel" in files and "requirements.txt" in files
    assert any(f.endswith("pipeline/predict.py") for f in files)  # the code travels with the model
    reqs = (logged / "requirements.txt").read_text()
    for name in ("scikit-learn==", "jieba==", "opencc==", "pandas=="):
        assert name in reqs
    import mlflow

    meta = mlflow.models.Model.load(str(logged / "MLmodel"))
    assert "评价内容" in meta.metadata["input_aliases"]["text"]
    assert meta.signature.inputs is None  # MLflow would drop every header a schema does not name
    assert [c.name for c in meta.signature.outputs.inputs] == PRED_COLUMNS


@pytest.mark.parametrize("header", ["评价内容", " 评价内容 ", "評價內容", "Review Text", "review_text", "CONTENT", "评论"])
def test_pyfunc_finds_the_text_under_any_header_the_cli_reads(logged, header):
    import mlflow

    model = mlflow.pyfunc.load_model(str(logged))
    out = model.predict(pd.DataFrame({header: ["返我50块就改好评，不然一直差评"], "評分": [1]}))
    assert list(out.columns) == PRED_COLUMNS
    assert out.loc[0, "cause"] == "extortion"


def test_fresh_venv_from_the_models_requirements_predicts_outside_the_repo(logged, tmp_path):
    """Build a virtualenv from the model's own requirements.txt and predict from a folder
    outside the repository (no editable install, no data/ folder)."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    pip = subprocess.run([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", "-r",
                          str(logged / "requirements.txt")], capture_output=True, text=True)
    assert pip.returncode == 0, pip.stderr[-2000:]
    script = (
        "import json, sys, pandas as pd, mlflow.pyfunc\n"
        f"m = mlflow.pyfunc.load_model({str(logged)!r})\n"
        "df = pd.DataFrame({'评价内容': ['快递太慢了，等了一个星期', '返我50块就改好评'], '评分': [1, 1]})\n"
        "out = m.predict(df)\n"
        "print(json.dumps({'columns': list(out.columns), 'cause': out['cause'].tolist()}))\n"
    )
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    run = subprocess.run([str(py), "-c", script], cwd=outside, capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    got = json.loads(run.stdout.strip().splitlines()[-1])
    assert got["columns"] == PRED_COLUMNS
    assert got["cause"] == ["stockout_logistics", "extortion"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_until_serving(proc, port: int, seconds: float = 180) -> None:
    """Until the server answers /ping; its stderr as the failure when it exits first."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2)
            return
        except OSError:
            if proc.poll() is not None:
                pytest.fail(proc.stderr.read().decode()[-2000:])
            time.sleep(1)
    pytest.fail(f"no answer on port {port} after {seconds:.0f} s")


def test_rest_serving_accepts_the_exports_headers(logged, tmp_path):
    port = _free_port()
    bindir = Path(sys.executable).parent
    env = dict(os.environ, PATH=f"{bindir}:{os.environ.get('PATH', '')}")
    proc = subprocess.Popen([str(bindir / "mlflow"), "models", "serve", "-m", str(logged), "--env-manager", "local",
                             "-h", "127.0.0.1", "-p", str(port)], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_until_serving(proc, port)
        body = {"dataframe_split": {"columns": ["评价编号", "评价内容", "评分"],
                                    "data": [["A1", "快递太慢了，等了一个星期", 1], ["A2", "返我50块就改好评，不然一直差评", 2]]}}
        req = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        answer = json.loads(urllib.request.urlopen(req, timeout=60).read())
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    rows = pd.DataFrame(answer["predictions"])
    assert list(rows.columns) == PRED_COLUMNS
    assert rows["review_id"].tolist() == ["A1", "A2"]
    assert rows["cause"].tolist() == ["stockout_logistics", "extortion"]
    assert rows.loc[1, "suspected_malicious"] in (True, "true")
    assert "extortion「" in rows.loc[1, "evidence"]


def test_reviewcause_serve_answers_mistakes_in_one_line_and_stops_whole(tiny_model_path, tmp_path):
    """`reviewcause serve` serves the model file it is given (registered into a fresh store), a
    request without a text column is a 400 naming the columns (no stack trace), and SIGTERM stops
    the server with its workers: the port is free again."""
    import signal
    import socket

    port = _free_port()
    bindir = Path(sys.executable).parent
    env = dict(os.environ, MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'mlflow.db'}")
    proc = subprocess.Popen([str(bindir / "reviewcause"), "serve", "--model", str(tiny_model_path), "--port", str(port)],
                            cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_until_serving(proc, port)
        body = {"dataframe_records": [{"foo": "快递太慢"}]}
        req = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(req, timeout=60)
        assert info.value.code == 400
        answer = json.loads(info.value.read())
        # the CLI's line itself: not MLflow's "Failed to predict data '<the request's rows>'" around it
        assert answer["message"].startswith("input: no review text column found (columns seen: foo)")
        assert "\n" not in answer["message"] and "Failed to predict" not in answer["message"] and not answer.get("stack_trace")
        ok = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", headers={"Content-Type": "application/json"},
                                    data=json.dumps({"dataframe_records": [{"评价内容": "快递太慢"}]}).encode())
        rows = json.loads(urllib.request.urlopen(ok, timeout=60).read())["predictions"]
        from pipeline.persist import load_predictor

        assert rows[0]["cause"] == load_predictor(tiny_model_path).predict(["快递太慢"]).loc[0, "cause"]
        one = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", headers={"Content-Type": "application/json"},
                                     data=json.dumps({"inputs": "快递太慢"}).encode())  # one text, not a list
        assert [r["cause"] for r in json.loads(urllib.request.urlopen(one, timeout=60).read())["predictions"]] == [rows[0]["cause"]]
        records = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", headers={"Content-Type": "application/json"},
                                         data=json.dumps({"inputs": [{"评价内容": "快递太慢", "评分": 1, "评价编号": "A9"}]}).encode())
        got = json.loads(urllib.request.urlopen(records, timeout=60).read())["predictions"]  # records under "inputs"
        assert [(r["review_id"], r["cause"]) for r in got] == [("A9", rows[0]["cause"])]
        ragged = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", headers={"Content-Type": "application/json"},
                                        data=json.dumps({"inputs": {"评价内容": ["很差", "好"], "评价编号": ["a"]}}).encode())
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(ragged, timeout=60)
        answer = json.loads(info.value.read())
        assert info.value.code == 400 and "not a table of reviews" in answer["message"] and not answer.get("stack_trace")
        # order numbers of 17+ digits as JSON numbers beside a blank: MLflow reads the column as
        # floats and the digits are gone before the model sees them — a 400, not other orders' ids
        big = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", headers={"Content-Type": "application/json"},
                                     data=b'{"dataframe_split": {"columns": ["\u8ba2\u5355\u53f7", "\u8bc4\u4ef7\u5185\u5bb9"], '
                                          b'"data": [[98765432109876543, "\u5f88\u5dee"], [null, "\u597d"]]}}')
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(big, timeout=60)
        answer = json.loads(info.value.read())
        assert info.value.code == 400 and "send them as strings" in answer["message"] and not answer.get("stack_trace")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    deadline = time.time() + 20
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) != 0:
                break
        time.sleep(0.5)
    else:
        pytest.fail(f"port {port} still answers after SIGTERM")
