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
    proc = subprocess.Popen([str(bindir / "reviewcause"), "serve", "--model", str(tiny_model_path), "--port", str(port),
                             "--timeout", "900"],
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
        # records lacking a key under "instances": every row, with its own cells (MLflow shifted them)
        shifted = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", headers={"Content-Type": "application/json"},
                                         data=json.dumps({"instances": RECORDS}).encode())
        got = json.loads(urllib.request.urlopen(shifted, timeout=60).read())["predictions"]
        assert [(r["review_id"], r["cause"]) for r in got] == [tuple(r) for r in load_predictor(tiny_model_path).predict(
            pd.DataFrame.from_records(RECORDS))[["review_id", "cause"]].values]
        # a malformed body: one line naming where, not MLflow's echo of the whole request
        broken = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", headers={"Content-Type": "application/json"},
                                        data=json.dumps({"dataframe_records": RECORDS}).encode()[:-2] + b",]}")
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(broken, timeout=60)
        answer = json.loads(info.value.read())
        assert info.value.code == 400 and answer["message"].startswith("request: the body is not valid JSON (Expecting value at line 1")
        assert "\n" not in answer["message"] and len(answer["message"]) < 200  # MLflow quoted the whole body
        for path in ("/health", "/version"):
            assert urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10).status == 200
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


# --- reviewcause serve's request filter, in process (MLflow's app behind serving.RequestFilter) ---


def _asgi(app, method: str, path: str, body: bytes = b"", content_type: str = "application/json"):
    """One request to an ASGI app, without a server or an HTTP client: (status, body bytes)."""
    import asyncio

    async def run():
        sent, out = False, {"status": None, "body": b""}

        async def receive():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await asyncio.sleep(3600)  # the client stays: no disconnect

        async def send(message):
            if message["type"] == "http.response.start":
                out["status"] = message["status"]
            elif message["type"] == "http.response.body":
                out["body"] += message.get("body", b"")

        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
                 "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
                 "headers": [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())],
                 "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 80)}
        await app(scope, receive, send)
        return out["status"], out["body"]

    return asyncio.run(run())


@pytest.fixture(scope="module")
def rest(logged):
    """What `reviewcause serve` runs, in this process: MLflow's scoring app for the logged model
    behind the request filter. ``rest(body)`` posts to /invocations: (status, parsed answer)."""
    import mlflow

    from pipeline.serving import rest_app

    with pytest.MonkeyPatch.context() as mp:  # MLflow's init marks the process as serving
        mp.setenv("_MLFLOW_IS_IN_SERVING_ENVIRONMENT", "false")
        app = rest_app(mlflow.pyfunc.load_model(str(logged)))

    def post(body, content_type="application/json"):
        raw = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
        status, answer = _asgi(app, "POST", "/invocations", raw, content_type)
        return status, json.loads(answer)

    post.app = app
    return post


def _rows(answer) -> list[tuple]:
    return [(r["review_id"], r["cause"]) for r in answer["predictions"]]


def _one_line_400(status, answer) -> str:
    assert status == 400, answer
    message = answer["message"]
    assert "\n" not in message and len(message) < 400 and not answer.get("stack_trace"), answer
    return message


RECORDS = [{"评价编号": "A1", "评价内容": "快递太慢了，等了一个星期"}, {"评价编号": "A2", "评分": 1},
           {"评分": 5, "评价内容": "返我50块就改好评，不然一直差评"}]


def test_records_under_instances_keep_every_row_and_its_own_cells(rest, tiny_model):
    """MLflow turns `instances` records into columns key by key: a record lacking a key shifted
    the next records' cells into its row (3 reviews came back as 2, fields of different reviews
    mixed). Every shape of the same records answers the same rows, in order, as the API does."""
    expected = [tuple(r) for r in tiny_model.predict(pd.DataFrame.from_records(RECORDS))[["review_id", "cause"]].values]
    assert [e[0] for e in expected] == ["A1", "A2", "3"] and expected[1][1] == "empty"
    for shape in ("instances", "inputs", "dataframe_records"):
        status, answer = rest({shape: RECORDS})
        assert status == 200 and _rows(answer) == expected, shape
    status, answer = rest({"instances": [{"评价内容": "快递太慢了"}, {"评分": 5}]})
    assert status == 200 and [c for _, c in _rows(answer)] == [tiny_model.predict(["快递太慢了"]).loc[0, "cause"], "empty"]
    status, answer = rest({"instances": [{"评价内容": "快递太慢了"}, "很差"]})
    assert "mixes records and texts (item 2" in _one_line_400(status, answer)


def test_a_malformed_body_is_a_one_line_400_that_echoes_nothing(rest):
    """MLflow answers a JSON syntax error or a body that is not UTF-8 with the whole request in
    the message (hundreds of KB over many lines, phone numbers and all); the filter names the
    problem and where it is, in one line."""
    reviews = [{"评价编号": f"R{i}", "评价内容": f"快递太慢，电话13912345{i:03d}", "评分": 1} for i in range(2000)]
    body = json.dumps({"dataframe_records": reviews}, ensure_ascii=False, indent=1)
    broken = body[: body.rindex("}") - 1].rstrip() + ",\n ]\n}"  # a trailing comma after the last record
    message = _one_line_400(*rest(broken.encode()))
    assert message.startswith("request: the body is not valid JSON (") and "line" in message and "column" in message
    assert "139123" not in message and "快递" not in message
    # a CSV body is read as the CLI reads a file: a GBK export scores; its ids stay text
    gbk_csv = ("评价编号,评价内容,评分\n" + "".join(f"00{i},快递太慢 13912345{i:03d},1\n" for i in range(2000))).encode("gbk")
    status, answer = rest(gbk_csv, "text/csv")
    assert status == 200 and len(answer["predictions"]) == 2000 and _rows(answer)[0][0] == "000"
    message = _one_line_400(*rest(json.dumps({"inputs": ["快递太慢 13912345678"]}, ensure_ascii=False).encode("gbk")))
    assert message.startswith("request: the JSON body is not UTF-8") and "139123" not in message
    message = _one_line_400(*rest('评价内容,评分\n"快递太慢 13912345678,1\n'.encode(), "text/csv"))  # a quote never closed
    assert message.startswith("request: the CSV body: data row 1: a quoted cell opened on line 2 is never closed") and "139123" not in message
    assert "input: no review text column found (columns seen: 买家, 评分)" in _one_line_400(*rest("买家,评分\n张三,1\n".encode(), "text/csv"))
    assert "exactly one of" in _one_line_400(*rest({"reviews": reviews[:2]}))
    assert "is a list, not an object" in _one_line_400(*rest(reviews[:2]))
    assert "the body is empty" in _one_line_400(*rest(b""))
    status, answer = _asgi(rest.app, "POST", "/invocations", b"{}", content_type="")  # MLflow: a 500
    assert "no Content-Type header" in _one_line_400(status, json.loads(answer))
    # what worked still works: a CSV body, the four JSON shapes, the other routes
    status, answer = rest("评价编号,评价内容\nA1,快递太慢了\n".encode(), "text/csv")
    assert status == 200 and _rows(answer)[0][0] == "A1"
    status, answer = rest({"dataframe_split": {"columns": ["评价内容"], "data": [["快递太慢了"], ["很差"]]}})
    assert status == 200 and len(answer["predictions"]) == 2
    status, answer = rest({"inputs": ["快递太慢了", "很差"]})
    assert status == 200 and [r for r, _ in _rows(answer)] == ["1", "2"]
    for path in ("/ping", "/health", "/version"):
        assert _asgi(rest.app, "GET", path)[0] == 200


def test_an_error_from_inside_the_model_is_one_line_and_a_timeout_names_the_limit(logged):
    """MLflow wraps a model's error as "Failed to predict data '<the request's rows>' …" with a
    stack trace, and answers its time limit (60 s by default: 300,000 reviews take longer) with
    a bare 504 text: both become one JSON line, and the limit is reviewcause serve --timeout."""
    import time

    import mlflow
    from mlflow.exceptions import MlflowException

    from pipeline.serving import DEFAULT_TIMEOUT, rest_app

    model = mlflow.pyfunc.load_model(str(logged))

    class Failing:
        metadata = model.metadata

        def __init__(self, slow):
            self.slow = slow

        def predict(self, data, params=None):
            if self.slow:
                time.sleep(2.5)
                return model.predict(data)
            raise MlflowException("the model broke", error_code=1000)

    body = json.dumps({"dataframe_records": [{"评价内容": "快递太慢 13912345678"}]}, ensure_ascii=False).encode()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("_MLFLOW_IS_IN_SERVING_ENVIRONMENT", "false")
        status, answer = _asgi(rest_app(Failing(slow=False)), "POST", "/invocations", body)
        answer = json.loads(answer)
        assert status == 400 and "\n" not in answer["message"] and "139123" not in answer["message"]
        assert not answer.get("stack_trace") and "Failed to predict" not in answer["message"]
        status, answer = _asgi(rest_app(Failing(slow=True), timeout=1), "POST", "/invocations", body)
    answer = json.loads(answer)
    assert status == 504 and answer["message"].startswith("request: scoring took longer than the server's limit of 1 s")
    assert "reviewcause serve --timeout" in answer["message"]
    assert DEFAULT_TIMEOUT >= 600  # MLflow's 60 s is less than 300,000 reviews take


JOINED = pd.DataFrame({"评价编号": ["A1", "评价编号", "A3"], "评价内容": ["快递太慢了，等了一个星期", "评价内容", "质量太差了"],
                       "评分": ["1", "评分", "1"]})


def test_a_row_repeating_the_header_is_empty_at_every_door_as_in_the_cli(rest, tiny_model, tiny_model_path, tmp_path, capsys):
    """Exports joined end to end: the CLI scores the repeated header row as `empty` with a
    warning; the Python API, the pyfunc and REST now do the same (they scored it as a review)."""
    from pipeline.cli import main
    from pipeline.serving import ReviewcauseModel

    src, out = tmp_path / "joined.csv", tmp_path / "pred.csv"
    JOINED.to_csv(src, index=False)
    assert main(["score", str(src), "-o", str(out), "--model", str(tiny_model_path)]) == 0
    cli = [tuple(r) for r in pd.read_csv(out, dtype=str, encoding="utf-8-sig")[["review_id", "cause"]].values]
    assert cli[1] == ("评价编号", "empty") and "repeats the header row" in capsys.readouterr().err
    api = tiny_model.predict(JOINED)
    assert [tuple(r) for r in api[["review_id", "cause"]].values] == cli
    assert "data row 2 repeats the header row" in capsys.readouterr().err
    assert JOINED.loc[1, "评价内容"] == "评价内容"  # the caller's frame is not changed
    m = ReviewcauseModel()
    m.predictor = tiny_model
    assert [tuple(r) for r in m.predict(None, JOINED)[["review_id", "cause"]].values] == cli
    status, answer = rest({"dataframe_records": JOINED.to_dict(orient="records")})
    assert status == 200 and _rows(answer) == cli
    # a row that only shares the text column's name with the header is a review
    assert tiny_model.predict(pd.DataFrame({"评价编号": ["x"], "评价内容": ["评价内容"]})).loc[0, "cause"] != "empty"


def test_api_and_pyfunc_read_records_one_record_and_a_0d_text_and_refuse_a_list_of_lists(rest, tiny_model):
    """A list of records is a table (it was scored as each dict's repr), a dict of single values
    one review (pandas' "If using all scalar values, you must pass an index" over REST), a 0-d
    array its one text (a raw TypeError); a list of lists or of records and texts is refused in
    one line (it was scored as the text "['很差']")."""
    import numpy as np
    from mlflow.exceptions import MlflowException

    from pipeline.serving import ReviewcauseModel
    from pipeline.tables import InputError

    table = tiny_model.predict(pd.DataFrame.from_records(RECORDS))
    assert tiny_model.predict(RECORDS).equals(table)
    one = tiny_model.predict(pd.DataFrame({"评价编号": ["A1"], "评价内容": ["快递太慢了"], "评分": [1]}))
    assert tiny_model.predict({"评价编号": "A1", "评价内容": "快递太慢了", "评分": 1}).equals(one)
    assert tiny_model.predict(np.array("快递太慢了")).equals(tiny_model.predict("快递太慢了"))
    for bad, message in (([["很差"]], "a list of lists has no column names"), ([("很差", 1)], "a list of lists"),
                         ([{"评价内容": "很差"}, "好"], "mixes records")):
        with pytest.raises(InputError, match=message) as info:
            tiny_model.predict(bad)
        assert "\n" not in str(info.value)
    m = ReviewcauseModel()
    m.predictor = tiny_model
    zero_d = {"评价编号": np.array("A1"), "评价内容": np.array("快递太慢了"), "评分": np.array(1)}  # REST's one record
    assert m.predict(None, zero_d).equals(one)
    for bad in ([["很差"]], np.array([["很差"]])):
        with pytest.raises(MlflowException, match="no column names") as info:
            m.predict(None, bad)
        assert info.value.get_http_status_code() == 400
    status, answer = rest({"inputs": {"评价编号": "A1", "评价内容": "快递太慢了", "评分": 1}})
    assert status == 200 and _rows(answer) == [("A1", one.loc[0, "cause"])]
    assert "no column names" in _one_line_400(*rest({"inputs": [["很差"]]}))


def test_serve_refuses_a_busy_or_impossible_port_in_one_line(tmp_path, capsys, tiny_model_path):
    """The server's own message for a port in use is dozens of traceback lines; checked first."""
    import socket

    from pipeline.cli import main

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code = main(["serve", "--model", str(tiny_model_path), "--port", str(port)])
        err = capsys.readouterr().err
        assert code == 2 and err == (f"reviewcause: error: 127.0.0.1:{port}: cannot listen there (Address already in use); "
                                     f"another server holds the port? choose another with --port\n")
    assert main(["serve", "--model", str(tiny_model_path), "--port", "99999"]) == 2
    assert capsys.readouterr().err == "reviewcause: error: --port 99999: a port is a number from 1 to 65535\n"


def test_columns_as_index_objects_keep_their_rows_and_a_body_without_reviews_is_refused(rest, tiny_model):
    """{"inputs": df.to_dict()} came back as one review whose id was the dict's repr; beside list
    columns the dict's keys were read as the ids and ratings. Bodies that carry no reviews the CLI
    could read answered 200 with no predictions."""
    frame = pd.DataFrame({"评价编号": ["A1", "A2", "A3"], "评价内容": ["鞋底开胶了", "快递太慢了，等了一个星期", "客服态度很差"],
                          "评分": [1, 2, 1]})
    expected = [tuple(r) for r in tiny_model.predict(frame)[["review_id", "cause"]].values]
    as_dict = json.loads(frame.to_json(orient="columns", force_ascii=False))  # {column: {"0": …, "1": …}}
    for shape in ("inputs", "instances"):
        status, answer = rest({shape: as_dict})
        assert status == 200 and _rows(answer) == expected, shape
    mixed = {"inputs": {"评价内容": ["鞋底开胶了", "很差"], "评价编号": {"5": "A1", "6": "A2"}}}
    assert "mix {index: value} objects and other values" in _one_line_400(*rest(mixed))
    assert "dataframe_split must be an object" in _one_line_400(
        *rest({"dataframe_split": {"columns": ["评价内容"], "data": {"0": ["鞋底开胶了"]}}}))
    assert "no review text column found" in _one_line_400(*rest(b'{"inputs": ["\\u978b"]}', "text/csv"))
    assert "no review text column found" in _one_line_400(*rest(b"foo,bar\n", "text/csv"))
    status, answer = rest({"inputs": []})  # nothing sent, nothing answered
    assert status == 200 and answer["predictions"] == []


def test_a_csv_body_with_title_rows_is_read_as_the_cli_reads_it(rest):
    """The README says a CSV body is read as score reads a file, title rows included: it was refused."""
    body = "千牛评价导出 2024-05-01\n评价编号,评价内容\nA1,快递太慢了\nA2,质量太差\n".encode()
    status, answer = rest(body, "text/csv")
    assert status == 200 and [r for r, _ in _rows(answer)] == ["A1", "A2"]
