"""The MLflow model: the same Predictor, self-contained, for ``mlflow.pyfunc`` and REST.

``log_pyfunc`` logs a :class:`ReviewcauseModel` whose artefact is the saved Predictor (with its
user dictionary inside) and whose code is this package (``code_paths``), with pinned
requirements of the libraries it imports — nothing of the repository is read at predict time,
so ``mlflow.pyfunc.load_model("models:/reviewcause@champion")`` works from any directory and in a
fresh environment built from the model's own ``requirements.txt``.

The signature declares the output columns (:data:`PRED_COLUMNS`) and **no input schema**:
MLflow silently drops every input column a schema does not name, so a schema of aliases would
lose 'Review Text', 評價內容 or ' 评价内容 ' — header forms the CLI reads. Without one, the
Predictor finds the columns itself, by the same aliases as the CLI (listed in the model's
metadata as ``input_aliases``, with an input example); ``mlflow models serve`` therefore accepts
an export's own headers and answers with the full decision columns.
"""

from __future__ import annotations

import signal
from pathlib import Path

import mlflow.pyfunc
from mlflow.exceptions import MlflowException
import numpy as np
import pandas as pd

from pipeline.predict import PRED_COLUMNS, _single

REQUIREMENTS = ("scikit-learn", "numpy", "scipy", "pandas", "jieba", "rjieba", "opencc", "joblib", "charset-normalizer",
                "openpyxl", "cloudpickle")


class RequestError(MlflowException):
    """A request's mistake, answered with the CLI's one line. MLflow's scoring server rewrites the
    message of an exception the model raises as "Failed to predict data '<the request's first
    rows>'. Error: …" — many lines that echo the reviews back — so this message keeps the value
    it was made with."""

    @property
    def message(self) -> str:
        return self.__dict__["_line"]

    @message.setter
    def message(self, value: str) -> None:
        self.__dict__.setdefault("_line", value)


class ReviewcauseModel(mlflow.pyfunc.PythonModel):
    """pyfunc wrapper: ``predict(DataFrame)`` → the Predictor's decision columns."""

    # no type-hint validation: ``predict`` reads every shape a request may take itself, and MLflow
    # would otherwise warn at import, in yellow, that it has no type hints
    _skip_type_hint_validation = True

    def load_context(self, context):
        import joblib

        self.predictor = joblib.load(context.artifacts["predictor"])

    def predict(self, context, model_input, params=None):
        """The Predictor's columns; a request's mistakes (no text column …) are the CLI's one-line
        message as a 400 answer, an empty request an empty answer, a list of texts (``inputs``)
        one review per text, a list of records one review per record, a single text or one record
        (a dict of single values) one review."""
        from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

        from pipeline.tables import InputError

        if isinstance(model_input, np.ndarray) and model_input.ndim == 0:
            model_input = model_input.item()
        model_input = _nan_strings_missing(model_input)
        if isinstance(model_input, (str, bytes)):
            model_input = [model_input]  # one review
        if isinstance(model_input, (list, tuple, pd.Series)) or (isinstance(model_input, np.ndarray) and model_input.ndim == 1):
            model_input = list(model_input)  # texts, or records ({"inputs": [{"评价内容": …}, …]})
            records = [isinstance(v, dict) for v in model_input]
            if any(records):
                if not all(records):
                    raise RequestError("the request's inputs mix records and texts; send a list of texts or "
                                          "a list of records", error_code=INVALID_PARAMETER_VALUE)
                model_input = pd.DataFrame.from_records(model_input)
        elif isinstance(model_input, dict) and model_input and all(_single(v) for v in model_input.values()):
            # one record ({"inputs": {"评价内容": "很差", "评分": 1}}): one review, not pandas' "If
            # using all scalar values, you must pass an index"
            model_input = pd.DataFrame({k: [v.item() if isinstance(v, np.ndarray) else v] for k, v in model_input.items()})
        elif isinstance(model_input, np.ndarray) and model_input.ndim > 1:
            pass  # a 2-D array ({"inputs": [["很差"]]}): the Predictor refuses it by name (no column names)
        elif not isinstance(model_input, pd.DataFrame):
            try:
                model_input = pd.DataFrame(model_input)
            except (ValueError, TypeError) as exc:  # ragged columns, a scalar of another type …
                raise RequestError(f"the request's inputs are not a table of reviews ({exc}); send "
                                      f"columns of equal length, records, or a list of texts",
                                      error_code=INVALID_PARAMETER_VALUE) from None
        if len(model_input) == 0:
            if isinstance(model_input, pd.DataFrame) and len(model_input.columns):  # no rows, but a header to check
                try:
                    self.predictor.resolve(model_input)
                except InputError as exc:
                    raise RequestError(str(exc), error_code=INVALID_PARAMETER_VALUE) from None
            return pd.DataFrame({c: pd.Series([], dtype=object) for c in PRED_COLUMNS})
        try:
            return self.predictor.predict(model_input)
        except InputError as exc:
            raise RequestError(str(exc), error_code=INVALID_PARAMETER_VALUE) from None


def _nan_strings_missing(model_input):
    """MLflow turns an ``inputs`` list or column into a numpy string array, where a JSON NaN
    (what pandas' ``to_dict`` gives for a missing cell) becomes the text ``'nan'``: read it as the
    missing cell it was (a buyer ``nan`` would make one serial buyer of every blank one)."""
    def fix(v):
        if isinstance(v, np.ndarray) and v.dtype.kind == "U" and (v == "nan").any():
            v = v.astype(object)
            v[v == "nan"] = None
        return v

    if isinstance(model_input, dict):
        return {k: fix(v) for k, v in model_input.items()}
    return fix(model_input)


def input_aliases() -> dict[str, list[str]]:
    """Header names the Predictor recognises per role (matched ignoring case, spaces, ``_``/``-``
    and script, as in the CLI)."""
    from pipeline.tables import ALIASES

    return {role: list(names) for role, names in ALIASES.items()}


def signature():
    from mlflow.models import ModelSignature
    from mlflow.types.schema import ColSpec, Schema

    kinds = {"confidence": "double", "malicious_score": "double", "suspected_malicious": "boolean"}
    outputs = Schema([ColSpec(kinds.get(c, "double" if c.startswith("p_") else "string"), c) for c in PRED_COLUMNS])
    return ModelSignature(inputs=None, outputs=outputs)


def pip_requirements() -> list[str]:
    from importlib.metadata import PackageNotFoundError, version

    out = []
    for p in REQUIREMENTS:
        try:
            out.append(f"{p}=={version(p)}")
        except PackageNotFoundError:
            continue
    # mlflow-skinny: what loading a pyfunc needs, without the tracking server (a fresh env installs in a minute)
    return out + [f"mlflow-skinny=={version('mlflow')}"]


def log_pyfunc(model_path: Path, registered_model_name: str | None = None, name: str = "model"):
    """Log (and register) the saved Predictor at ``model_path`` as a self-contained pyfunc."""
    example = pd.DataFrame({"评价编号": ["1", "2"], "评价内容": ["鞋底开胶了，质量太差", "物流太慢，等了一个星期"], "评分": [1, 2]})
    return mlflow.pyfunc.log_model(
        name=name,
        python_model=ReviewcauseModel(),
        artifacts={"predictor": str(model_path)},
        code_paths=[str(Path(__file__).resolve().parent)],
        signature=signature(),
        input_example=example,
        metadata={"input_aliases": input_aliases()},
        pip_requirements=pip_requirements(),
        registered_model_name=registered_model_name,
    )


def champion_uri(model_path: Path, log=print) -> str:
    """The registered version of exactly ``model_path`` (what the CLI scores with), so every door
    gives the same answers: the version its metadata names when the store holds that version of
    the same run; else the file is registered now (a fresh clone whose model came with the
    repository, or a model trained against another store) — and made ``@champion`` when the store
    has none yet."""
    import mlflow
    from mlflow.tracking import MlflowClient

    from pipeline.persist import load_predictor, read_meta
    from pipeline.train import CHAMPION, REGISTERED_MODEL, use_experiment

    use_experiment()
    client = MlflowClient()
    meta = read_meta(model_path).get("mlflow") or {}
    version, run_id = meta.get("version"), meta.get("run_id")
    if version and run_id:
        try:
            if client.get_model_version(REGISTERED_MODEL, str(version)).run_id == run_id:
                return f"models:/{REGISTERED_MODEL}/{version}"
        except Exception:  # not in this store
            pass
    load_predictor(model_path)  # verified before it is logged
    log(f"registering {model_path} (its version is not in this store)")
    with mlflow.start_run(run_name="register-model-file"):
        info = log_pyfunc(Path(model_path), registered_model_name=REGISTERED_MODEL)
    version = str(info.registered_model_version)
    try:
        client.get_model_version_by_alias(REGISTERED_MODEL, CHAMPION)
    except Exception:
        client.set_registered_model_alias(REGISTERED_MODEL, CHAMPION, version)
    return f"models:/{REGISTERED_MODEL}/{version}"


# --- the REST server ----------------------------------------------------------------------------

#: seconds one request may take before its answer is a 504 (MLflow's own default, 60 s, is less
#: than 300,000 reviews take); ``reviewcause serve --timeout`` sets it
DEFAULT_TIMEOUT = 600
#: the environment variable that names the model to the server process (``rest_app_from_env``)
MODEL_ENV = "REVIEWCAUSE_SERVE_MODEL"
_FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")


class BadRequest(ValueError):
    """A request the filter refuses before MLflow parses it: its one line is the 400's message."""


def rest_app(model, timeout: int = DEFAULT_TIMEOUT):
    """MLflow's own scoring app for the loaded pyfunc ``model`` (``/invocations``, ``/ping``,
    ``/health``, ``/version``; ``mlflow.pyfunc.scoring_server.init``) behind
    :class:`RequestFilter`, with a request limit of ``timeout`` seconds."""
    import os

    from mlflow.environment_variables import MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT
    from mlflow.pyfunc import scoring_server

    name = MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT.name
    before = os.environ.get(name)
    os.environ[name] = str(int(timeout))  # init reads its limit from there
    try:
        app = scoring_server.init(model)
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before
    return RequestFilter(app, int(timeout))


def rest_app_from_env():
    """The app of the ``reviewcause serve`` process (``uvicorn --factory``): the model named by
    ``REVIEWCAUSE_SERVE_MODEL``, the limit by ``MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT``."""
    import os

    from mlflow.environment_variables import MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT

    return rest_app(mlflow.pyfunc.load_model(os.environ[MODEL_ENV]), MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT.get())


class RequestFilter:
    """ASGI middleware in front of MLflow's scoring app. A POST to ``/invocations`` is read and
    checked first (:func:`checked_body`): a body MLflow would answer with an error that quotes
    the whole request (a JSON syntax error, bytes that are not UTF-8) is a one-line 400 naming the
    problem and where it is; records under ``instances`` / ``inputs`` are sent on as
    ``dataframe_records``. MLflow's error answers are kept to one line without a stack trace
    (:func:`_one_line_error`), and its 504 names the limit. Everything else passes untouched."""

    def __init__(self, app, timeout: int = DEFAULT_TIMEOUT):
        self.app = app
        self.timeout = timeout

    async def __call__(self, scope, receive, send):
        import asyncio

        if scope["type"] != "http" or scope["path"] != "/invocations" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        chunks, more = [], True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        ctype = next((v.decode("latin-1") for k, v in scope["headers"] if k.lower() == b"content-type"), "")
        try:
            checked = await asyncio.to_thread(checked_body, body, ctype)
        except BadRequest as exc:
            from mlflow.protos.databricks_pb2 import BAD_REQUEST

            await _answer(send, 400, [], MlflowException(str(exc), error_code=BAD_REQUEST).serialize_as_json().encode())
            return
        if checked is not body:
            # a CSV body comes back as JSON (read as the CLI reads a file): its type changes with it
            drop = (b"content-length", b"content-type") if checked.startswith(b"{") else (b"content-length",)
            headers = [(k, v) for k, v in scope["headers"] if k.lower() not in drop]
            if len(drop) == 2:
                headers.append((b"content-type", b"application/json"))
            scope = dict(scope, headers=headers + [(b"content-length", str(len(checked)).encode())])
        sent = False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": checked, "more_body": False}
            return await receive()

        start, held = None, []

        async def answer(message):
            nonlocal start
            if message["type"] == "http.response.start" and message["status"] >= 400:
                start = message  # an error: held back until its body is whole
                return
            if start is None:
                await send(message)
                return
            held.append(message.get("body", b""))
            if not message.get("more_body", False):
                content = b"".join(held)
                status, line = _one_line_error(start["status"], content, self.timeout)
                if line is content:  # not MLflow's JSON error (a 415's text): as it was
                    await send(start)
                    await send({"type": "http.response.body", "body": content})
                else:
                    await _answer(send, status, start.get("headers", []), line)

        await self.app(scope, replay, answer)


async def _answer(send, status: int, headers, content: bytes) -> None:
    keep = [(k, v) for k, v in headers if k.lower() not in (b"content-length", b"content-type")]
    await send({"type": "http.response.start", "status": status,
                "headers": keep + [(b"content-type", b"application/json"), (b"content-length", str(len(content)).encode())]})
    await send({"type": "http.response.body", "body": content})


def checked_body(body: bytes, content_type: str) -> bytes:
    """The body to hand MLflow's parser (``body`` itself when it needs no change), or
    :class:`BadRequest` naming what is wrong in one line, without quoting the request.

    JSON: MLflow answers a syntax error or bytes that are not UTF-8 with the whole request in the
    message; here the error names its line and column. The body must be an object with exactly
    one of ``dataframe_split``, ``dataframe_records``, ``instances``, ``inputs`` (MLflow's four
    shapes). Records (dicts) under ``instances`` or ``inputs`` are rewritten as
    ``dataframe_records``: MLflow turns ``instances`` records into columns key by key, so a
    record lacking a key shifted the next records' values into its row; one record (a dict of
    single values) is one review. CSV is read as the CLI reads a file (:func:`_csv_as_json`).
    Other content types pass to MLflow, which answers 415."""
    import json

    if not content_type:  # MLflow fails on it with a 500
        raise BadRequest("request: no Content-Type header; send the body as application/json (or text/csv)")
    mime, *parameters = [part.strip() for part in content_type.split(";")]
    charset = {k.strip(): v.strip() for k, _, v in (p.partition("=") for p in parameters)}
    if set(charset) - {"charset"} or charset.get("charset", "utf-8").lower() != "utf-8":
        return body  # MLflow answers 415
    if mime == "text/csv":
        return _csv_as_json(body)
    if mime == "application/vnd.apache.parquet":
        try:
            import io

            pd.read_parquet(io.BytesIO(body))
        except Exception as exc:
            raise BadRequest(f"request: the Parquet body cannot be read ({type(exc).__name__}: {_flat(exc)})") from None
        return body
    if mime != "application/json":
        return body
    if not body.strip():
        raise BadRequest('request: the body is empty; send JSON such as {"dataframe_records": [{"评价内容": "…"}]}')
    try:
        request = json.loads(body)
    except UnicodeDecodeError as exc:
        raise BadRequest(f"request: the JSON body is not UTF-8 ({_where_bytes(body, exc)}); send it encoded as UTF-8") from None
    except json.JSONDecodeError as exc:
        raise BadRequest(f"request: the body is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}); "
                         f"nothing was scored") from None
    except RecursionError:
        raise BadRequest("request: the JSON body is nested too deeply; nothing was scored") from None
    shapes = ", ".join(_FORMATS)
    if not isinstance(request, dict):
        kind = {list: "a list", str: "a string", bool: "true or false", type(None): "null"}.get(type(request), "a number")
        raise BadRequest(f"request: the JSON body is {kind}, not an object with one of {shapes} "
                         f'(e.g. {{"dataframe_records": [{{"评价内容": "…"}}]}})')
    found = [k for k in _FORMATS if k in request]
    if len(found) != 1:
        seen = ", ".join(repr(str(k)[:30]) for k in list(request)[:6]) + (" …" if len(request) > 6 else "")
        raise BadRequest(f"request: the JSON object must hold exactly one of {shapes} (keys seen: {seen or 'none'})")
    shape, value = found[0], request[found[0]]
    if shape == "dataframe_split" and not (isinstance(value, dict) and isinstance(value.get("data", []), list)
                                           and isinstance(value.get("columns", []), list)):
        raise BadRequest('request: dataframe_split must be an object {"columns": [...], "data": [[...], ...]} '
                         "with data a list of rows; nothing was scored")
    if shape not in ("instances", "inputs"):
        return body
    if isinstance(value, dict) and any(isinstance(v, dict) for v in value.values()):
        return _columns_by_index(shape, value, request)
    if isinstance(value, list) and any(isinstance(v, dict) for v in value):
        odd = next((i for i, v in enumerate(value) if not isinstance(v, dict)), None)
        if odd is not None:
            raise BadRequest(f"request: the {shape} list mixes records and texts (item {odd + 1} is not a record); "
                             f"send a list of texts or a list of records")
        records = value
    elif isinstance(value, dict) and value and not any(isinstance(v, (list, dict)) for v in value.values()):
        records = [value]  # one record
    else:
        return body
    rewritten = {"dataframe_records": records}
    if "params" in request:
        rewritten["params"] = request["params"]
    return json.dumps(rewritten, ensure_ascii=False).encode("utf-8")


def _columns_by_index(shape: str, value: dict, request: dict) -> bytes:
    """``{"inputs": {column: {index: value}}}`` — what pandas' ``DataFrame.to_dict()`` gives — as
    the rows the Python API makes of it (pandas lines the columns up by index, in the first
    column's order; a cell a column lacks is blank), handed to MLflow as ``dataframe_split``.
    MLflow itself made each such column one cell (three reviews came back as one) or, beside list
    columns, took the dict's keys as the values (ids 5, 6 instead of A1, A2). A column of single
    values or a list beside such columns is refused: which row is which cannot be told."""
    import json

    odd = next((k for k, v in value.items() if not isinstance(v, dict)), None)
    if odd is not None:
        raise BadRequest(f"request: the {shape} columns mix {{index: value}} objects and other values (column "
                         f"{str(odd)[:40]!r}); send every column as a list, or every column as {{index: value}}")
    order: list[str] = []
    seen: set[str] = set()
    for column in value.values():
        for key in column:
            if key not in seen:
                seen.add(key)
                order.append(key)
    columns = list(value)
    data = [[value[c].get(key) for c in columns] for key in order]
    rewritten = {"dataframe_split": {"columns": columns, "data": data}}
    if "params" in request:
        rewritten["params"] = request["params"]
    return json.dumps(rewritten, ensure_ascii=False).encode("utf-8")


def _csv_as_json(body: bytes) -> bytes:
    """A CSV body read as ``reviewcause score`` reads a file — its encoding detected (UTF-8,
    GBK, Big5, UTF-16), every cell text (``007`` stays ``007``, ``NA`` stays ``NA``), title rows,
    delimiters — and handed to MLflow as ``dataframe_split`` JSON; a body the CLI would refuse is
    :class:`BadRequest` with the CLI's message."""
    import json
    import os
    import tempfile

    from pipeline.tables import InputError, display_name, read_frame

    if not body.strip():
        raise BadRequest("request: the CSV body is empty; send a header row and one row per review")
    fd, name = tempfile.mkstemp(prefix="reviewcause-request-", suffix=".csv")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(body)
        try:  # title rows above the header looked past, as score does
            frame, _ = read_frame(name, header={})
        except InputError as exc:
            if "no review text column found" not in str(exc):
                raise
            frame, _ = read_frame(name)  # no header below a title either: the Predictor names the columns seen
    except InputError as exc:
        raise BadRequest(str(exc).replace(name, "request: the CSV body")) from None
    finally:
        os.unlink(name)
    split = {"columns": [display_name(c) for c in frame.columns], "data": frame.astype(str).to_numpy(dtype=object).tolist()}
    return json.dumps({"dataframe_split": split}, ensure_ascii=False).encode("utf-8")


def _where_bytes(body: bytes, exc: UnicodeDecodeError) -> str:
    line = body.count(b"\n", 0, exc.start) + 1
    return f"line {line}: {exc.reason}, byte 0x{body[exc.start]:02x}"


def _flat(exc: BaseException, limit: int = 200) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[:limit] + " …"


#: an error message is cut at this length (a request of a thousand columns, all "seen")
_MESSAGE_LIMIT = 1000


def _one_line_error(status: int, content: bytes, timeout: int) -> tuple[int, bytes]:
    """MLflow's error answer as the client gets it: its 504 as a JSON line naming the limit; a
    JSON error without its ``stack_trace`` (logged here instead), and a message of many lines
    or of the request's rows replaced by one line (the original is logged)."""
    import json
    import logging

    log = logging.getLogger("reviewcause.serving")
    if status == 504:
        from mlflow.protos.databricks_pb2 import DEADLINE_EXCEEDED

        line = (f"request: scoring took longer than the server's limit of {timeout} s; send fewer reviews per "
                f"request, or start the server with a longer 'reviewcause serve --timeout'")
        return 504, MlflowException(line, error_code=DEADLINE_EXCEEDED).serialize_as_json().encode()
    try:
        answer = json.loads(content)
    except ValueError:
        return status, content
    if not isinstance(answer, dict) or not isinstance(answer.get("message"), str):
        return status, content
    trace = answer.pop("stack_trace", None)
    message = answer["message"]
    if "\n" in message or "\r" in message:
        # the log gets the error, not the request's rows MLflow put in front of it
        detail = message.rpartition("\nError: ")[2] if message.startswith("Failed to predict data") else message
        log.error("answered %s: %s", status, detail[:2000])
        answer["message"] = (f"request: the model could not score the request ({answer.get('error_code', status)}); "
                             f"the server's log has the details")
    elif len(message) > _MESSAGE_LIMIT:  # one line, of many columns seen …
        answer["message"] = message[:_MESSAGE_LIMIT] + " …"
    if trace:
        log.error("answered %s; stack trace:\n%s", status, trace)
    return status, json.dumps(answer, ensure_ascii=False).encode("utf-8")


def check_port(host: str, port: int) -> None:
    """Refuse, before the model is loaded, a port out of range or one another program holds (the
    server's own message is a traceback of many lines with the cause buried in it)."""
    import socket

    from pipeline.tables import InputError

    if not 0 < port < 65536:
        raise InputError(f"--port {port}: a port is a number from 1 to 65535")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise InputError(f"--host {host}: not an address of this machine ({exc.strerror})") from None
    family, kind, proto, _, addr = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            sock.bind(addr)
        except OSError as exc:
            raise InputError(f"{host}:{port}: cannot listen there ({exc.strerror}); another server holds the port? "
                             f"choose another with --port") from None


def serve(model_path: Path, host: str = "127.0.0.1", port: int = 5000, log=print, timeout: int | None = None) -> int:
    """Serve ``model_path`` (its registered version) over REST: MLflow's scoring app behind
    :class:`RequestFilter` (:func:`rest_app`), run by uvicorn in a process group of its own;
    ``timeout`` (seconds per request) defaults to ``MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT`` when
    set, else :data:`DEFAULT_TIMEOUT`."""
    import os
    import subprocess
    import sys

    from pipeline.tables import InputError
    from pipeline.train import tracking_uri

    if timeout is None:
        raw = os.environ.get("MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT")
        try:
            timeout = int(raw) if raw else DEFAULT_TIMEOUT
        except ValueError:
            raise InputError(f"MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT={raw!r}: not a whole number of seconds") from None
    if timeout < 1:
        raise InputError(f"--timeout {timeout}: give the seconds a request may take (at least 1)")
    check_port(host, port)
    uri = champion_uri(model_path, log)
    env = dict(os.environ, MLFLOW_TRACKING_URI=tracking_uri(), MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT=str(timeout),
               **{MODEL_ENV: uri})
    log(f"serving {uri} on http://{host}:{port}/invocations (POST JSON: dataframe_split / dataframe_records / "
        f"instances / inputs, or CSV; at most {timeout} s a request)")
    # the package this module is in, whatever the working folder holds
    cmd = [sys.executable, "-m", "uvicorn", "--factory", "pipeline.serving:rest_app_from_env",
           "--app-dir", str(Path(__file__).resolve().parent.parent), "--host", host, "--port", str(port)]
    if os.environ.get("MLFLOW_MODELS_WORKERS"):  # as `mlflow models serve` reads it
        cmd += ["--workers", os.environ["MLFLOW_MODELS_WORKERS"]]
    # its own process group, stopped as a whole: uvicorn's workers would otherwise be left
    # holding the port after a SIGTERM to this process alone
    proc = subprocess.Popen(cmd, env=env, start_new_session=True)

    def stop(signum, frame):  # only signal here: waiting inside a handler would deadlock on the main wait
        _signal_group(proc, signal.SIGTERM)

    old = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        return proc.wait()
    finally:
        _stop_group(proc)
        for s, handler in old.items():
            signal.signal(s, handler)


def _signal_group(proc, sig) -> bool:
    """Send ``sig`` to the server's process group; False when nothing of it is left."""
    import os

    try:
        os.killpg(proc.pid, sig)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def _stop_group(proc) -> None:
    """Stop the server and any workers it left behind: SIGTERM, then SIGKILL after 10 s."""
    import subprocess

    if _signal_group(proc, signal.SIGTERM):
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            _signal_group(proc, signal.SIGKILL)
            proc.wait()
