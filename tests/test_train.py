"""End to end: train on the tiny fixture with MLflow tracking under tmp_path, read the run back,
then score with the saved model."""

import json

import mlflow
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from conftest import TINY_PARAMS
from pipeline.report import read_predictions
from pipeline.score import score_file
from pipeline.train import ALIAS, REGISTERED_MODEL, run
from pipeline.taxonomy import CAUSE_IDS


@pytest.fixture()
def tracking(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


def test_train_tracks_run_and_registers_model(fixture_frame, tmp_path, tracking):
    model_path = tmp_path / "models" / "m.joblib"
    result = run(TINY_PARAMS, frame=fixture_frame, model_path=model_path, folds=2, log=lambda m: None)
    client = MlflowClient(tracking_uri=tracking)
    r = client.get_run(result["run_id"])
    for key in ["macro_f1", "primary_accuracy", "script_invariance", "fit_seconds"] + [f"f1_{c}" for c in CAUSE_IDS]:
        assert key in r.data.metrics
    assert 0.0 <= r.data.metrics["macro_f1"] <= 1.0
    assert r.data.params["C"] == "10.0" and r.data.params["min_df"] == "1"
    artifacts = {a.path for a in client.list_artifacts(result["run_id"], "evaluation")}
    assert {"evaluation/confusion_matrix.png", "evaluation/classification_report.txt", "evaluation/slices.csv"} <= artifacts
    mv = client.get_model_version_by_alias(REGISTERED_MODEL, ALIAS)
    assert str(mv.version) == result["registered_version"] and mv.run_id == result["run_id"]
    # the registered model loads through pyfunc and returns eight probabilities per review
    mlflow.set_tracking_uri(tracking)
    loaded = mlflow.pyfunc.load_model(f"models:/{REGISTERED_MODEL}@{ALIAS}")
    assert loaded.predict(pd.DataFrame({"text": ["快递太慢", "返我50改好评"]})).shape == (2, 8)
    meta = json.loads(model_path.with_suffix(".json").read_text(encoding="utf-8"))
    assert meta["mlflow"]["run_id"] == result["run_id"] and len(meta["train_keys"]) == len(fixture_frame)

    # train → score on the same tiny model
    src = tmp_path / "in.csv"
    pd.DataFrame({"评价内容": ["快递太慢了，等了一个星期", "返我50块就改好评，不然一直差评"]}).to_csv(src, index=False)
    score_file(src, tmp_path / "out.csv", model_path=model_path)
    out, _ = read_predictions(tmp_path / "out.csv")
    assert out["review_id"].tolist() == ["1", "2"]
    assert out["cause"].tolist() == ["stockout_logistics", "extortion"]
    assert out["suspected_malicious"].tolist() == ["false", "true"]


def test_evaluate_only_keeps_the_model(fixture_frame, tmp_path, tracking):
    result = run(TINY_PARAMS, frame=fixture_frame, model_path=None, folds=2, log=lambda m: None)
    assert "registered_version" not in result
    assert MlflowClient(tracking_uri=tracking).get_run(result["run_id"]).data.tags["kind"] == "eval"
