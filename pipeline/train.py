"""Training and cross-validation; the only module that talks to MLflow.

``make train`` → :func:`run`: cross-validate the recipe on all labelled data, fit it on
everything, save ``models/reviewcause.joblib`` (+ ``.json`` metadata) and track the run in MLflow
(params, cross-validated metrics, artefacts, the model registered as ``reviewcause@champion``).
``make eval`` → the same cross-validation and tracking, without replacing the model.

Honesty rules of the cross-validation:
* folds are stratified by each review's rarest cause and grouped by normalised text, so a text
  and its duplicates never sit on both sides;
* thresholds are tuned inside each training fold (``CauseClassifier``), never on the test fold;
* ``authored`` examples only ever train; reported figures are on ``real``, ``constructed`` and
  ``appliance`` reviews, with a slice for each.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold

from pipeline import __version__
from pipeline.data import indicator, load_labelled, primary_index
from pipeline.batch import flag_malicious
from pipeline.evaluate import malicious_flags, metrics, plot_confusion, primary_confusion, report
from pipeline.model import DEFAULT_PARAMS, _strata, build, predict
from pipeline.normalize import normalize
from pipeline.paths import DEFAULT_MODEL, ROOT
from pipeline.segment import current_backend
from pipeline.taxonomy import CAUSE_IDS, MALICIOUS

DEFAULT_TRACKING_URI = f"sqlite:///{ROOT / 'mlflow.db'}"
EXPERIMENT = "reviewcause"
REGISTERED_MODEL = "reviewcause"
ALIAS = "champion"
EVALUATED_SOURCES = ("real", "constructed", "appliance")


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def use_experiment(name: str) -> None:
    """Select (creating if needed) an experiment whose artefacts live beside the sqlite store —
    ``sqlite:///dir/mlflow.db`` → ``dir/mlartifacts`` — rather than in ``./mlruns`` of whatever
    directory the command runs in."""
    import mlflow

    uri = tracking_uri()
    mlflow.set_tracking_uri(uri)
    if mlflow.get_experiment_by_name(name) is None and uri.startswith("sqlite:///"):
        root = Path(uri[len("sqlite:///"):]).resolve().parent / "mlartifacts"
        mlflow.create_experiment(name, artifact_location=root.as_uri())
    mlflow.set_experiment(name)


def text_key(text: str) -> str:
    """Identity of a review for duplicate grouping and train/test overlap checks."""
    return hashlib.sha1("".join(normalize(text).split()).encode("utf-8")).hexdigest()[:16]


@dataclass
class CVResult:
    frame: pd.DataFrame  # evaluated rows with fold, primary_pred, p_<cause>, causes_pred
    proba: np.ndarray
    passed: np.ndarray
    metrics: dict[str, float]
    slices: pd.DataFrame
    invariance: float
    seconds: float
    per_fold_thresholds: list[list[float]] = field(default_factory=list)


def _to_traditional(texts: pd.Series) -> list[str]:
    import opencc

    conv = opencc.OpenCC("s2twp")
    return [conv.convert(t) for t in texts]


def cross_validate(frame: pd.DataFrame, params: dict | None = None, folds: int = 5, seed: int = 13) -> CVResult:
    """Out-of-fold predictions for every ``real``/``constructed`` row of ``frame``."""
    t0 = time.perf_counter()
    frame = frame.reset_index(drop=True)
    Y_all = indicator(frame["labels"])
    evaluable = frame["source"].isin(EVALUATED_SOURCES).to_numpy()
    ev_idx = np.flatnonzero(evaluable)
    train_only = np.flatnonzero(~evaluable)
    groups = frame["text"].map(text_key).to_numpy()
    strata = _strata(Y_all)
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    n, k = len(frame), len(CAUSE_IDS)
    proba, passed, passed_t = np.zeros((n, k)), np.zeros((n, k), bool), np.zeros((n, k), bool)
    primary, primary_t = np.full(n, "", dtype=object), np.full(n, "", dtype=object)
    confidence = np.zeros(n)
    fold_of = np.full(n, -1)
    per_fold = []
    for f, (tr, te) in enumerate(splitter.split(ev_idx, strata[ev_idx], groups[ev_idx])):
        tr_rows = np.concatenate([ev_idx[tr], train_only])
        te_rows = ev_idx[te]
        model = fit(frame.iloc[tr_rows], params)
        proba[te_rows], d = predict(model, frame["text"].iloc[te_rows].tolist())
        passed[te_rows], primary[te_rows], confidence[te_rows] = d.passed, d.primary, d.confidence
        _, d_t = predict(model, _to_traditional(frame["text"].iloc[te_rows]))
        passed_t[te_rows], primary_t[te_rows] = d_t.passed, d_t.primary
        fold_of[te_rows] = f
        per_fold.append([round(float(x), 4) for x in model.named_steps["clf"].thresholds_])
    ev = frame.iloc[ev_idx].copy()
    P, passed, passed_t = proba[ev_idx], passed[ev_idx], passed_t[ev_idx]
    primary, primary_t = primary[ev_idx], primary_t[ev_idx]
    ev["fold"] = fold_of[ev_idx]
    ev["primary_pred"] = primary
    ev["confidence"] = confidence[ev_idx].round(4)
    ev["primary_pred_traditional"] = primary_t
    ev["causes_pred"] = ["|".join(c for c, on in zip(CAUSE_IDS, row) if on) for row in passed]
    for j, c in enumerate(CAUSE_IDS):
        ev[f"p_{c}"] = P[:, j].round(4)
    Y, prim_true = Y_all[ev_idx], ev["primary"].to_numpy()
    m = metrics(Y, passed.astype(int), prim_true, primary)
    m_trad = metrics(Y, passed_t.astype(int), prim_true, primary_t)
    invariance = float((primary == primary_t).mean())
    slices = _slices(ev, Y, passed, primary)
    slices.loc["all→traditional (s2twp)"] = pd.Series(
        {"n": m_trad["n"], "macro_f1": m_trad["macro_f1"], "primary_accuracy": m_trad["primary_accuracy"]}
    )
    # the flag exactly as scoring sets it (before batch signals, which labelled data lacks)
    mal = [CAUSE_IDS.index(c) for c in sorted(MALICIOUS)]
    truth = malicious_flags(Y, prim_true)
    for name, mask in (("", np.ones(len(ev), bool)), ("real_", (ev["source"] == "real").to_numpy())):
        flag = flag_malicious(primary, P[:, mal].max(axis=1))[mask]
        tp = float((flag & truth[mask]).sum())
        m[f"{name}suspected_precision"] = tp / flag.sum() if flag.sum() else 0.0
        m[f"{name}suspected_recall"] = tp / truth[mask].sum() if truth[mask].sum() else 0.0
    m["script_invariance"] = invariance
    m["traditional_macro_f1"] = m_trad["macro_f1"]
    m["traditional_primary_accuracy"] = m_trad["primary_accuracy"]
    return CVResult(ev, P, passed, m, slices, invariance, time.perf_counter() - t0, per_fold)


def _slices(ev: pd.DataFrame, Y: np.ndarray, passed: np.ndarray, primary: np.ndarray) -> pd.DataFrame:
    rows = {}
    masks = {
        "all": np.ones(len(ev), bool),
        "real": (ev["source"] == "real").to_numpy(),
        "constructed": (ev["source"] == "constructed").to_numpy(),
        "appliance": (ev["source"] == "appliance").to_numpy(),
        "simplified": (ev["script"] == "simplified").to_numpy(),
        "traditional": (ev["script"] == "traditional").to_numpy(),
    }
    for name, mask in masks.items():
        if mask.any():
            m = metrics(Y[mask], passed[mask].astype(int), ev["primary"].to_numpy()[mask], primary[mask])
            rows[name] = {k: m[k] for k in ("n", "macro_f1", "micro_f1", "primary_accuracy", "malicious_precision", "malicious_recall")} | {
                f"f1_{c}": m[f"f1_{c}"] for c in CAUSE_IDS
            }
    return pd.DataFrame(rows).T


def fit(frame: pd.DataFrame, params: dict | None = None):
    """Fit the pipeline on a labelled frame (multi-label causes and the primary cause)."""
    p = {**DEFAULT_PARAMS, **(params or {})}
    weight = np.where(frame["source"].to_numpy() == "authored", float(p["authored_weight"]), 1.0)
    return build(p).fit(
        frame["text"].tolist(), indicator(frame["labels"]), clf__primary=primary_index(frame["primary"]), clf__sample_weight=weight
    )


def save(model, path: Path, meta: dict) -> Path:
    """Write the model atomically (temp file + rename) with a JSON sidecar of metadata."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".joblib.tmp")
    joblib.dump(model, tmp, compress=3)
    os.replace(tmp, path)
    path.with_suffix(".json").write_text(json.dumps(meta, ensure_ascii=False, indent=2), encoding="utf-8")
    return path


def _write_artifacts(cv: CVResult, out: Path) -> None:
    Y = indicator(cv.frame["labels"])
    (out / "classification_report.txt").write_text(
        report(Y, cv.passed.astype(int), cv.frame["primary"].to_numpy(), cv.frame["primary_pred"].to_numpy()), encoding="utf-8"
    )
    cm = primary_confusion(cv.frame["primary"].to_numpy(), cv.frame["primary_pred"].to_numpy())
    cm.to_csv(out / "confusion_matrix.csv")
    plot_confusion(cm, out / "confusion_matrix.png")
    cv.slices.round(4).to_csv(out / "slices.csv")
    cols = ["id", "source", "script", "fold", "text", "labels", "primary", "primary_pred", "confidence", "primary_pred_traditional", "causes_pred"]
    oof = cv.frame[cols + [f"p_{c}" for c in CAUSE_IDS]].copy()
    oof["labels"] = oof["labels"].map("|".join)
    oof.to_csv(out / "oof_predictions.csv", index=False)
    (out / "cv_metrics.json").write_text(json.dumps(cv.metrics, indent=2), encoding="utf-8")
    fold_thresholds = [dict(zip(CAUSE_IDS, t)) for t in cv.per_fold_thresholds]
    (out / "fold_thresholds.json").write_text(json.dumps(fold_thresholds, indent=2), encoding="utf-8")


def pip_requirements() -> list[str]:
    """Requirements of the logged model, passed explicitly (MLflow's inference is slow)."""
    from importlib.metadata import version

    return [f"{p}=={version(p)}" for p in ("scikit-learn", "numpy", "scipy", "pandas", "jieba", "rjieba", "opencc", "joblib")]


def run(
    params: dict | None = None,
    frame: pd.DataFrame | None = None,
    model_path: Path | None = DEFAULT_MODEL,
    folds: int = 5,
    run_name: str | None = None,
    register: bool = True,
    log=print,
) -> dict:
    """Cross-validate, fit on all data, save and track. ``model_path=None`` only evaluates."""
    import mlflow
    from mlflow.models import infer_signature
    from mlflow.tracking import MlflowClient

    # cloudpickle, not skops: the pipeline's analyzer and normaliser are project functions that
    # skops would have to be told to trust one by one; we log that choice instead of warning.
    logging.getLogger("mlflow.sklearn").setLevel(logging.ERROR)
    params = {**DEFAULT_PARAMS, **(params or {})}
    frame = load_labelled() if frame is None else frame
    use_experiment(EXPERIMENT)
    counts = frame["source"].value_counts().to_dict()
    with mlflow.start_run(run_name=run_name) as active:
        mlflow.log_params(params | {"folds": folds, "segmenter": current_backend()} | {f"n_{k}": v for k, v in counts.items()})
        mlflow.set_tags({"reviewcause.version": __version__, "python": platform.python_version(), "kind": "train" if model_path else "eval"})
        log(f"cross-validating on {sum(counts.get(s, 0) for s in EVALUATED_SOURCES)} labelled reviews ({folds} folds) …")
        cv = cross_validate(frame, params, folds=folds, seed=int(params["seed"]))
        mlflow.log_metrics(cv.metrics | {"cv_seconds": cv.seconds})
        for name, row in cv.slices.iterrows():
            key = "slice_" + "".join(ch if ch.isalnum() else "_" for ch in name).strip("_")
            mlflow.log_metrics({f"{key}_macro_f1": float(row["macro_f1"]), f"{key}_primary_accuracy": float(row["primary_accuracy"])})
        with tempfile.TemporaryDirectory() as tmp:
            _write_artifacts(cv, Path(tmp))
            mlflow.log_artifacts(tmp, artifact_path="evaluation")
        result = {"run_id": active.info.run_id, "metrics": cv.metrics, "slices": cv.slices}
        if model_path is None:
            return result
        t0 = time.perf_counter()
        model = fit(frame, params)
        fit_seconds = time.perf_counter() - t0
        mlflow.log_metric("fit_seconds", fit_seconds)
        thresholds = dict(zip(CAUSE_IDS, map(float, model.named_steps["clf"].thresholds_)))
        mlflow.log_dict(thresholds, "thresholds.json")
        sample = frame["text"].head(5).tolist()
        signature = infer_signature(pd.DataFrame({"text": sample}), model.predict_proba(sample))
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            serialization_format="cloudpickle",
            signature=signature,
            pip_requirements=pip_requirements(),
            pyfunc_predict_fn="predict_proba",
            registered_model_name=REGISTERED_MODEL if register else None,
        )
        version = None
        if register:
            client = MlflowClient()
            version = str(info.registered_model_version)
            client.set_registered_model_alias(REGISTERED_MODEL, ALIAS, version)
        meta = {
            "version": __version__,
            "trained_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "params": params,
            "thresholds": thresholds,
            "cv_metrics": {k: round(v, 4) for k, v in cv.metrics.items()},
            "n_train": counts,
            "fit_seconds": round(fit_seconds, 1),
            "mlflow": {"tracking_uri": tracking_uri(), "run_id": active.info.run_id, "model": f"{REGISTERED_MODEL}@{ALIAS}" if register else None, "version": version},
            "train_keys": sorted(frame["text"].map(text_key)),
        }
        save(model, model_path, meta)
        mlflow.log_artifact(str(model_path.with_suffix(".json")), artifact_path="model_meta")
        result.update(model_path=model_path, registered_version=version, fit_seconds=fit_seconds)
        return result
