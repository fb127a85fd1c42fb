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

from pipeline.predict import PRED_COLUMNS

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

    def load_context(self, context):
        import joblib

        self.predictor = joblib.load(context.artifacts["predictor"])

    def predict(self, context, model_input, params=None):
        """The Predictor's columns; a request's mistakes (no text column …) are the CLI's one-line
        message as a 400 answer, an empty request an empty answer, a list of texts (``inputs``)
        one review per text, a list of records one review per record, a single text one review."""
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
        elif not isinstance(model_input, pd.DataFrame):
            try:
                model_input = pd.DataFrame(model_input)
            except (ValueError, TypeError) as exc:  # ragged columns, a scalar of another type …
                raise RequestError(f"the request's inputs are not a table of reviews ({exc}); send "
                                      f"columns of equal length, records, or a list of texts",
                                      error_code=INVALID_PARAMETER_VALUE) from None
        if len(model_input) == 0:
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


def serve(model_path: Path, host: str = "127.0.0.1", port: int = 5000, log=print) -> int:
    """Serve ``model_path`` (its registered version) over REST with the venv's own ``mlflow`` (no
    PATH set-up needed)."""
    import os
    import subprocess
    import sys

    uri = champion_uri(model_path, log)
    bindir = Path(sys.executable).parent
    env = dict(os.environ, PATH=f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}")
    log(f"serving {uri} on http://{host}:{port}/invocations (POST JSON: dataframe_split / dataframe_records)")
    cmd = [str(bindir / "mlflow"), "models", "serve", "-m", uri, "--env-manager", "local", "-h", host, "-p", str(port)]
    # its own process group, stopped as a whole: `mlflow models serve` starts uvicorn workers that
    # a SIGTERM to this process alone would leave holding the port
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
