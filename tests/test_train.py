"""End to end: train on the tiny fixture with MLflow tracking under tmp_path, read the run back,
check promotion, then score with the saved model."""

import json

import mlflow
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from conftest import tiny_predictor
from pipeline.report import read_predictions
from pipeline.run import score_file
from pipeline.taxonomy import CAUSE_IDS
from pipeline.train import CHALLENGER, CHAMPION, REGISTERED_MODEL, run


@pytest.fixture()
def tracking(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


def _frame(fixture_frame):
    return fixture_frame.assign(rating=float("nan"), category="fixture", stratum="fixture", reading="fixture")


def test_train_tracks_run_registers_and_scores(fixture_frame, tmp_path, tracking):
    model_path = tmp_path / "models" / "m.joblib"
    result = run(tiny_predictor(), frame=_frame(fixture_frame), model_path=model_path, folds=2, aliases=True, log=lambda m: None)
    client = MlflowClient(tracking_uri=tracking)
    r = client.get_run(result["run_id"])
    for key in ["macro_f1", "primary_accuracy", "baseline_primary_accuracy", "delta_primary_accuracy", "script_invariance",
                "fit_seconds"] + [f"f1_{c}" for c in CAUSE_IDS]:
        assert key in r.data.metrics
    assert r.data.params["model__clf__C"] == "10.0" and r.data.params["model__features__ngrams__vec__min_df"] == "1"
    assert r.info.run_name.startswith("train-") and r.data.tags["reviewcause.data_hash"] == result["data_hash"]
    artifacts = {a.path for a in client.list_artifacts(result["run_id"], "evaluation")}
    assert {"evaluation/confusion_matrix.png", "evaluation/classification_report.txt", "evaluation/slices.csv"} <= artifacts
    mv = client.get_model_version_by_alias(REGISTERED_MODEL, CHAMPION)
    assert str(mv.version) == result["registered_version"] and mv.run_id == result["run_id"]
    assert "cross-validated primary_accuracy" in mv.description
    # the registered model answers with the decision columns, under the export's own headers
    mlflow.set_tracking_uri(tracking)
    loaded = mlflow.pyfunc.load_model(f"models:/{REGISTERED_MODEL}@{CHAMPION}")
    out = loaded.predict(pd.DataFrame({"评价内容": ["快递太慢", "返我50改好评"], "评分": [1, 1]}))
    assert out["cause"].tolist() == ["stockout_logistics", "extortion"]
    meta = json.loads(model_path.with_suffix(".json").read_text(encoding="utf-8"))
    assert meta["mlflow"]["run_id"] == result["run_id"] and len(meta["train_keys"]) == len(fixture_frame)

    src = tmp_path / "in.csv"
    pd.DataFrame({"评价内容": ["快递太慢了，等了一个星期", "返我50块就改好评，不然一直差评"]}).to_csv(src, index=False)
    score_file(src, tmp_path / "out.csv", model_path=model_path)
    out, _ = read_predictions(tmp_path / "out.csv")
    assert out["review_id"].tolist() == ["1", "2"]
    assert out["cause"].tolist() == ["stockout_logistics", "extortion"]
    assert out["suspected_malicious"].tolist() == ["false", "true"]


def test_champion_moves_only_when_not_worse(fixture_frame, tmp_path, tracking):
    frame = _frame(fixture_frame)
    first = run(tiny_predictor(), frame=frame, model_path=tmp_path / "a.joblib", folds=2, aliases=True, log=lambda m: None)
    assert first["alias"] == CHAMPION
    worse = tiny_predictor().set_params(model__clf__C=0.001, model__clf__primary_C=0.001)
    second = run(worse, frame=frame, model_path=tmp_path / "b.joblib", folds=2, aliases=True, log=lambda m: None)
    assert second["alias"] == CHALLENGER and "worse than champion" in second["promotion"]
    client = MlflowClient(tracking_uri=tracking)
    assert str(client.get_model_version_by_alias(REGISTERED_MODEL, CHAMPION).version) == first["registered_version"]
    forced = run(worse, frame=frame, model_path=tmp_path / "c.joblib", folds=2, promote=True, log=lambda m: None)
    assert str(client.get_model_version_by_alias(REGISTERED_MODEL, CHAMPION).version) == forced["registered_version"]


def test_a_model_of_ones_own_does_not_take_over_serving(fixture_frame, tmp_path, tracking):
    """train --model elsewhere registers a version but leaves @champion alone (it is what `serve`
    serves by default); serving a model file serves exactly that file's version."""
    from pipeline.serving import champion_uri

    frame = _frame(fixture_frame)
    first = run(tiny_predictor(), frame=frame, model_path=tmp_path / "a.joblib", folds=2, aliases=True, log=lambda m: None)
    mine = run(tiny_predictor(), frame=frame.iloc[::-1], model_path=tmp_path / "mine.joblib", folds=2, log=lambda m: None)
    assert mine["alias"] is None and "not promoted" in mine["promotion"]
    client = MlflowClient(tracking_uri=tracking)
    assert str(client.get_model_version_by_alias(REGISTERED_MODEL, CHAMPION).version) == first["registered_version"]
    assert champion_uri(tmp_path / "mine.joblib", log=lambda m: None) == f"models:/{REGISTERED_MODEL}/{mine['registered_version']}"
    assert champion_uri(tmp_path / "a.joblib", log=lambda m: None) == f"models:/{REGISTERED_MODEL}/{first['registered_version']}"
    # a model file whose version is not in this store (a fresh clone) is registered as a new version
    json_path = tmp_path / "mine.json"
    meta = json.loads(json_path.read_text(encoding="utf-8"))
    meta["mlflow"]["version"] = "999"
    json_path.write_text(json.dumps(meta), encoding="utf-8")
    uri = champion_uri(tmp_path / "mine.joblib", log=lambda m: None)
    assert uri.startswith(f"models:/{REGISTERED_MODEL}/") and uri != f"models:/{REGISTERED_MODEL}/999"


def test_evaluate_only_keeps_the_model(fixture_frame, tmp_path, tracking):
    result = run(tiny_predictor(), frame=_frame(fixture_frame), model_path=None, folds=2, log=lambda m: None)
    assert "registered_version" not in result
    assert MlflowClient(tracking_uri=tracking).get_run(result["run_id"]).data.tags["kind"] == "eval"


def test_ensure_model_keeps_a_current_model_and_retrains_a_stale_one(tiny_model, tmp_path, monkeypatch):
    import pipeline.train as train
    from pipeline.persist import save

    calls = []
    monkeypatch.setattr(train, "run", lambda **kw: calls.append(kw))
    path = tmp_path / "m.joblib"
    save(tiny_model, path, {"inputs_hash": train.inputs_hash()})
    assert train.ensure_model(path, log=lambda m: None) == "current" and calls == []
    save(tiny_model, path, {"inputs_hash": "something-else"})
    assert train.ensure_model(path, log=lambda m: None) == "trained" and len(calls) == 1
    path.write_bytes(b"not a model")  # the recorded hash no longer matches: refused, then retrained
    assert train.ensure_model(path, log=lambda m: None) == "trained" and len(calls) == 2


def test_saving_a_model_never_writes_over_a_file_named_like_its_temporary(tiny_model, tmp_path):
    """The model and its sidecar go through temporary files of their own (a labels file named
    `m.joblib.tmp` was once dumped over and renamed away); readable as the umask allows."""
    import os
    import stat

    from pipeline.persist import load_predictor, save

    path = tmp_path / "m.joblib"
    kept = {tmp_path / "m.joblib.tmp": b"text,labels\n", tmp_path / "m.json.tmp": b"mine"}
    for p, data in kept.items():
        p.write_bytes(data)
    save(tiny_model, path, {"inputs_hash": "x"})
    assert all(p.read_bytes() == data for p, data in kept.items())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.joblib", "m.joblib.tmp", "m.json", "m.json.tmp"]
    assert load_predictor(path).predict(["快递太慢"]).loc[0, "cause"] == tiny_model.predict(["快递太慢"]).loc[0, "cause"]
    mask = os.umask(0o022)
    os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask


def test_progress_estimate_counts_rows(tmp_path):
    from pipeline.run import estimate_rows

    src = tmp_path / "r.csv"
    src.write_text("text\n" + "差评\n" * 120, encoding="utf-8")
    assert estimate_rows(src) == 120


def test_leave_one_domain_out_never_trains_on_the_held_out_domain(fixture_frame, tracking, monkeypatch):
    import pipeline.train as train

    base = _frame(fixture_frame)
    # two "categories" with the same reviews, authored rows that only ever train
    frame = pd.concat([base.assign(category="书籍", id=base["id"] + "a"), base.assign(category="衣服", id=base["id"] + "b"),
                       base.assign(source="authored", category="美妆", id=base["id"] + "c")], ignore_index=True)
    seen = []
    real_fit = train.fit

    def spy(tr, predictor=None, authored_weight=0.5):
        seen.append(set(tr["category"]))
        return real_fit(tr, predictor, authored_weight)

    monkeypatch.setattr(train, "fit", spy)
    table = train.run_domains(tiny_predictor(), frame=frame, min_reviews=10, log=lambda m: None)
    assert list(table.index) == ["书籍", "衣服", "mean over domains"]  # authored is never held out
    assert seen == [{"衣服", "美妆"}, {"书籍", "美妆"}]
    assert table.loc["书籍", "n"] == len(base) and table.loc["mean over domains", "n"] == 2 * len(base)
    # trained on the other category's identical reviews, the model gets most of them right
    assert table.loc["书籍", "primary_accuracy"] >= 0.75
    mean = table.loc["mean over domains"]
    assert mean["primary_accuracy"] == pytest.approx(table.iloc[:2]["primary_accuracy"].mean())
    runs = MlflowClient(tracking_uri=tracking).search_runs(
        [mlflow.get_experiment_by_name(train.EXPERIMENT).experiment_id], "tags.kind = 'domains'")
    assert len(runs) == 1 and "mean_primary_accuracy" in runs[0].data.metrics
    with pytest.raises(train.InputError, match="no labelled reviews of domain"):
        train.leave_domain_out(frame, tiny_predictor(), ["化妆品"])
    only = train.leave_domain_out(frame, tiny_predictor(), ["衣服"], log=lambda m: None)
    assert list(only.index) == ["衣服", "mean over domains"] and seen[-1] == {"书籍", "美妆"}


def test_slice_metric_keys_keep_chinese_category_names_apart():
    """Every product-category slice gets its own MLflow key (they were all logged as slice_real_*)."""
    from mlflow.utils.validation import _validate_metric_name

    from pipeline.train import slice_metric_keys

    names = ["all", "real", "real: 书籍", "real: 衣服", "real: 蒙牛", "rated 4-5", "real (random stratum, double-read)", "real:书籍"]
    keys = slice_metric_keys(names)
    assert keys["real"] == "slice_real" and keys["real: 书籍"] == "slice_real_书籍" and keys["rated 4-5"] == "slice_rated_4_5"
    assert keys["real (random stratum, double-read)"] == "slice_real_random_stratum_double_read"
    assert keys["real:书籍"] == "slice_real_书籍_2"
    assert len(set(keys.values())) == len(names)
    for k in keys.values():
        _validate_metric_name(f"{k}_primary_accuracy")
