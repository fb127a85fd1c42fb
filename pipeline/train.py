"""Training: cross-validation beside the baseline, the final fit, and the MLflow registry.

The only module that talks to MLflow. Three concerns, three parts:

* :func:`cross_validate` — out-of-fold decisions of the project Predictor **and** of the plain
  baseline (:func:`pipeline.model.build_baseline`) on the same folds, with figures per slice
  (real, each product category, appliances, food delivery, constructed, traditional, the random
  stratum) and the difference between the two;
* :func:`fit` — the Predictor fitted on every labelled review;
* :func:`run` — tracking: params (``Predictor.get_params``), metrics of both models, artefacts,
  the label files with their hashes, the model logged as a self-contained pyfunc
  (:mod:`pipeline.serving`) and registered; ``@champion`` moves only when the new model is not
  worse than the champion on the same data (else ``@challenger``; ``promote=True`` forces).

Honesty rules: folds are stratified by each review's rarest cause and grouped by normalised
text; thresholds are tuned inside training folds only; authored examples only ever train.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import re
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold

from pipeline import __version__
from pipeline.data import indicator, load_labelled, primary_index, text_key  # noqa: F401 (text_key: part of this module's API)
from pipeline.evaluate import metrics, plot_confusion, primary_confusion, report
from pipeline.model import build_baseline, build_model, fit_model, strata_of
from pipeline.paths import DEFAULT_MODEL, ROOT
from pipeline.predict import Predictor
from pipeline.segment import current_backend
from pipeline.tables import InputError
from pipeline.taxonomy import CAUSE_IDS, MALICIOUS

DEFAULT_TRACKING_URI = f"sqlite:///{ROOT / 'mlflow.db'}"
EXPERIMENT = "reviewcause"
REGISTERED_MODEL = "reviewcause"
CHAMPION, CHALLENGER = "champion", "challenger"
TRAIN_ONLY = ("authored",)
HEADLINE = ("primary_accuracy", "macro_f1")


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def use_experiment(name: str = EXPERIMENT) -> None:
    """Select (creating if needed) an experiment whose artefacts live beside the sqlite store; a
    store that cannot be opened (an unknown scheme, a file that is no database) is one line."""
    import mlflow

    uri = tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        _select_experiment(name, uri)
    except Exception as exc:  # MLflow and SQLAlchemy raise many kinds for a store it cannot use
        from pipeline.tables import InputError, first_line

        first = first_line(exc)
        cause = f"{type(exc).__name__}: {first[:160]}{'…' if len(first) > 160 else ''}" if first else type(exc).__name__
        raise InputError(f"MLflow store {uri}: cannot be opened ({cause}); check MLFLOW_TRACKING_URI "
                         f"(unset: the project's sqlite:///…/mlflow.db)") from None


def _select_experiment(name: str, uri: str) -> None:
    import mlflow

    if mlflow.get_experiment_by_name(name) is None and uri.startswith("sqlite:///"):
        root = Path(uri[len("sqlite:///"):]).resolve().parent / "mlartifacts"
        mlflow.create_experiment(name, artifact_location=root.as_uri())
    exp = mlflow.set_experiment(name)
    if exp.tags.get("mlflow.experimentKind") != "custom_model_development":
        # the UI then opens on the runs table, not on an empty GenAI overview
        mlflow.MlflowClient().set_experiment_tag(exp.experiment_id, "mlflow.experimentKind", "custom_model_development")


def ui_url(port: int = 5000) -> str:
    """The address of the project's runs page in ``make ui``."""
    import mlflow

    use_experiment(EXPERIMENT)
    exp = mlflow.get_experiment_by_name(EXPERIMENT)
    return f"http://127.0.0.1:{port}/#/experiments/{exp.experiment_id}/runs"


def data_hash(frame: pd.DataFrame) -> str:
    """A short hash of the labelled data (texts, ratings, labels), for names and promotion."""
    h = hashlib.sha256()
    for row in frame[["text", "rating", "labels", "primary"]].itertuples(index=False):
        h.update(f"{row.text}\x1f{row.rating}\x1f{'|'.join(row.labels)}\x1f{row.primary}\x1e".encode("utf-8"))
    return h.hexdigest()[:10]


def weights_of(frame: pd.DataFrame, authored_weight: float = 0.5) -> np.ndarray:
    return np.where(frame["source"].to_numpy() == "authored", float(authored_weight), 1.0)


def fit(frame: pd.DataFrame, predictor: Predictor | None = None, authored_weight: float = 0.5) -> Predictor:
    """Fit the Predictor on a labelled frame (text, rating, labels, primary, source)."""
    from sklearn.base import clone

    p = Predictor() if predictor is None else clone(predictor)
    return p.fit(frame[["text", "rating"]], indicator(frame["labels"]), primary_index(frame["primary"]),
                 weights_of(frame, authored_weight))


def _baseline_decisions(frame_tr: pd.DataFrame, frame_te: pd.DataFrame):
    model = fit_model(build_baseline(), frame_tr["text"].tolist(), indicator(frame_tr["labels"]))
    proba = model.predict_proba(frame_te["text"].tolist())
    return proba, proba >= 0.5, np.asarray(CAUSE_IDS, dtype=object)[proba.argmax(axis=1)]


@dataclass
class CVResult:
    frame: pd.DataFrame  # evaluated rows with fold and both models' out-of-fold decisions
    metrics: dict[str, float]  # project model; baseline_* and delta_* beside it
    slices: pd.DataFrame  # per slice: n, both models' macro-F1 and primary accuracy, difference
    seconds: float


def cross_validate(frame: pd.DataFrame, predictor: Predictor | None = None, folds: int = 5, seed: int = 13,
                   authored_weight: float = 0.5, baseline: bool = True, traditional: bool = True, log=print) -> CVResult:
    """Out-of-fold decisions of the Predictor (and the baseline) for every evaluated review."""
    t0 = time.perf_counter()
    frame = frame.reset_index(drop=True)
    Y_all = indicator(frame["labels"])
    ev_idx = np.flatnonzero(~frame["source"].isin(TRAIN_ONLY).to_numpy())
    train_only = np.flatnonzero(frame["source"].isin(TRAIN_ONLY).to_numpy())
    groups = frame["text"].map(text_key).to_numpy()
    strata = strata_of(Y_all)
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    n, k = len(frame), len(CAUSE_IDS)
    out = {name: np.zeros((n, k)) for name in ("proba", "base_proba")}
    passed, base_passed, trad_passed = (np.zeros((n, k), bool) for _ in range(3))
    primary, base_primary, trad_primary = (np.full(n, "", dtype=object) for _ in range(3))
    fold_of = np.full(n, -1)
    for f, (tr, te) in enumerate(splitter.split(ev_idx, strata[ev_idx], groups[ev_idx])):
        log(f"  fold {f + 1}/{folds}: fitting on {len(tr) + len(train_only)} reviews, testing on {len(te)}")
        tr_rows, te_rows = np.concatenate([ev_idx[tr], train_only]), ev_idx[te]
        model = fit(frame.iloc[tr_rows], predictor, authored_weight)
        model.set_params(batch=False)
        test = frame.iloc[te_rows][["text", "rating"]]
        s = model.score_chunk(test)
        out["proba"][te_rows], passed[te_rows], primary[te_rows] = s.proba, s.passed, s.primary
        if traditional:
            t = model.score_chunk(test.assign(text=_to_traditional(test["text"])))
            trad_passed[te_rows], trad_primary[te_rows] = t.passed, t.primary
        if baseline:
            b = _baseline_decisions(frame.iloc[tr_rows[~frame["source"].iloc[tr_rows].isin(TRAIN_ONLY).to_numpy()]],
                                    frame.iloc[te_rows])
            out["base_proba"][te_rows], base_passed[te_rows], base_primary[te_rows] = b
        fold_of[te_rows] = f
    ev = frame.iloc[ev_idx].copy()
    ev["fold"] = fold_of[ev_idx]
    ev["primary_pred"], ev["baseline_primary"] = primary[ev_idx], base_primary[ev_idx]
    ev["causes_pred"] = ["|".join(c for c, on in zip(CAUSE_IDS, r) if on) for r in passed[ev_idx]]
    for j, c in enumerate(CAUSE_IDS):
        ev[f"p_{c}"] = out["proba"][ev_idx, j].round(4)
    Y, prim = Y_all[ev_idx], ev["primary"].to_numpy()
    m = metrics(Y, passed[ev_idx], prim, primary[ev_idx])
    if baseline:
        mb = metrics(Y, base_passed[ev_idx], prim, base_primary[ev_idx])
        m |= {f"baseline_{key}": v for key, v in mb.items() if not key.startswith("support_")}
        m |= {f"delta_{key}": m[key] - mb[key] for key in ("macro_f1", "micro_f1", "primary_accuracy")}
    truth = (Y[:, [CAUSE_IDS.index(c) for c in sorted(MALICIOUS)]].sum(axis=1) > 0) | np.isin(prim, list(MALICIOUS))
    p = predictor if predictor is not None else Predictor()
    mal = out["proba"][ev_idx][:, [CAUSE_IDS.index(c) for c in sorted(MALICIOUS)]].max(axis=1)
    flag = np.isin(primary[ev_idx], list(MALICIOUS)) | (mal >= p.flag_at)
    tp = float((flag & truth).sum())
    m["suspected_precision"] = tp / flag.sum() if flag.sum() else 0.0
    m["suspected_recall"] = tp / truth.sum() if truth.sum() else 0.0
    if traditional:
        mt = metrics(Y, trad_passed[ev_idx], prim, trad_primary[ev_idx])
        m["script_invariance"] = float((primary[ev_idx] == trad_primary[ev_idx]).mean())
        m["traditional_macro_f1"], m["traditional_primary_accuracy"] = mt["macro_f1"], mt["primary_accuracy"]
    ev["_passed"], ev["_base_passed"] = list(passed[ev_idx]), list(base_passed[ev_idx])
    slices = slice_table(ev, Y, baseline)
    ev = ev.drop(columns=["_passed", "_base_passed"])
    return CVResult(ev, m, slices, time.perf_counter() - t0)


def slice_metric_keys(names: list[str]) -> dict[str, str]:
    """An MLflow metric key per slice name, distinct for distinct names: letters and digits of any
    script kept (MLflow accepts ``slice_real_书籍``), every other run of characters one ``_``;
    a key already taken gets ``_2``, ``_3`` …"""
    keys: dict[str, str] = {}
    taken: set[str] = set()
    for name in names:
        base = "slice_" + re.sub(r"_+", "_", "".join(ch if ch.isalnum() else "_" for ch in str(name))).strip("_")
        key, k = base, 1
        while key in taken:
            k += 1
            key = f"{base}_{k}"
        keys[name] = key
        taken.add(key)
    return keys


def slice_masks(ev: pd.DataFrame) -> dict[str, np.ndarray]:
    src = ev["source"].to_numpy()
    masks = {
        "all": np.ones(len(ev), bool),
        "real": src == "real",
        "real (random stratum, double-read)": (src == "real") & (ev["stratum"] == "random").to_numpy(),
        "appliance": src == "appliance",
        "waimai": src == "waimai",
        "constructed": src == "constructed",
        "traditional": (ev["script"] == "traditional").to_numpy(),
        "rated 4-5": (ev["rating"] >= 4).to_numpy(),
        "rated 1-3": (ev["rating"] <= 3).to_numpy(),
    }
    for cat in sorted(ev.loc[ev["source"] == "real", "category"].dropna().unique()):
        masks[f"real: {cat}"] = (src == "real") & (ev["category"] == cat).to_numpy()
    return {k: v for k, v in masks.items() if v.any()}


def slice_table(ev: pd.DataFrame, Y: np.ndarray, baseline: bool = True) -> pd.DataFrame:
    rows = {}
    passed, base = np.stack(ev["_passed"].to_numpy()), np.stack(ev["_base_passed"].to_numpy())
    prim = ev["primary"].to_numpy()
    for name, mask in slice_masks(ev).items():
        m = metrics(Y[mask], passed[mask], prim[mask], ev["primary_pred"].to_numpy()[mask])
        row = {"n": m["n"], "macro_f1": m["macro_f1"], "primary_accuracy": m["primary_accuracy"]}
        if baseline:
            b = metrics(Y[mask], base[mask], prim[mask], ev["baseline_primary"].to_numpy()[mask])
            row |= {"baseline_macro_f1": b["macro_f1"], "baseline_primary_accuracy": b["primary_accuracy"],
                    "delta_primary_accuracy": m["primary_accuracy"] - b["primary_accuracy"]}
        rows[name] = row
    return pd.DataFrame(rows).T


def domains_of(frame: pd.DataFrame) -> np.ndarray:
    """The domain of each review for leave-one-domain-out: its product category for online
    shopping, else its source (food delivery, JD appliances, constructed, authored)."""
    src = frame["source"].to_numpy()
    return np.where(src == "real", frame["category"].astype(str).to_numpy(), src).astype(object)


def _unseen(predictor: Predictor | None, domain: str) -> Predictor:
    """The predictor with the held-out domain's unlabelled reviews out of its word vectors' corpus
    too (:class:`pipeline.embed.WordVectors` ``exclude``), so the domain is wholly unseen."""
    from sklearn.base import clone

    p = clone(predictor) if predictor is not None else Predictor(model=build_model())
    key = "model__features__vectors__vec__exclude"
    if p.model is not None and key in p.get_params():
        p.set_params(**{key: (*p.get_params()[key], domain)})
    return p


def leave_domain_out(frame: pd.DataFrame, predictor: Predictor | None = None, domains: list[str] | None = None,
                     authored_weight: float = 0.5, min_reviews: int = 100, log=print) -> pd.DataFrame:
    """How the model does on a product category or platform it has never seen: for each domain
    (every online-shopping category with ``min_reviews`` or more, food delivery, JD appliances),
    the Predictor and the baseline are fitted on every other domain — authored and constructed
    reviews included, never the held-out one, whose unlabelled reviews are also kept out of the
    word vectors' corpus — and score the held-out domain.

    Returns one row per domain: n, the model's and the baseline's primary accuracy and macro-F1,
    and the difference; the last row is the mean over domains."""
    frame = frame.reset_index(drop=True)
    dom = domains_of(frame)
    known = set(dom)
    unknown = [d for d in domains or [] if d not in known]
    if unknown:
        raise InputError(f"no labelled reviews of domain(s) {', '.join(unknown)}; domains: {', '.join(sorted(map(str, known)))}")
    if domains is None:
        counts = pd.Series(dom[np.isin(frame["source"].to_numpy(), ["real", "waimai", "appliance"])]).value_counts()
        domains = sorted(d for d, n in counts.items() if n >= min_reviews)
    rows = {}
    for d in domains:
        te = dom == d
        tr_frame, te_frame = frame[~te], frame[te]
        log(f"  held out {d}: fitting on {int((~te).sum())} reviews, testing on {int(te.sum())}")
        model = fit(tr_frame, _unseen(predictor, d), authored_weight).set_params(batch=False)
        s = model.score_chunk(te_frame[["text", "rating"]])
        _, b_passed, b_primary = _baseline_decisions(tr_frame[~tr_frame["source"].isin(TRAIN_ONLY)], te_frame)
        Y, prim = indicator(te_frame["labels"]), te_frame["primary"].to_numpy()
        m, b = metrics(Y, s.passed, prim, s.primary), metrics(Y, b_passed, prim, b_primary)
        rows[d] = {"n": int(te.sum()), "primary_accuracy": m["primary_accuracy"],
                   "baseline_primary_accuracy": b["primary_accuracy"],
                   "delta_primary_accuracy": m["primary_accuracy"] - b["primary_accuracy"],
                   "macro_f1": m["macro_f1"], "baseline_macro_f1": b["macro_f1"]}
    table = pd.DataFrame(rows).T
    if len(table):
        mean = table.drop(columns="n").mean()
        table.loc["mean over domains"] = pd.concat([pd.Series({"n": table["n"].sum()}), mean])
    return table


def run_domains(predictor: Predictor | None = None, frame: pd.DataFrame | None = None, authored_weight: float = 0.5,
                min_reviews: int = 100, domains: list[str] | None = None, log=print) -> pd.DataFrame:
    """:func:`leave_domain_out`, tracked as an MLflow run (``domains-…``) with a metric per domain."""
    import mlflow

    predictor = Predictor() if predictor is None else predictor
    frame = load_labelled() if frame is None else frame
    params = {"authored_weight": authored_weight, "protocol": "leave-one-domain-out"}
    with _tracked_run("domains", predictor, data_hash(frame), params):
        t0 = time.perf_counter()
        table = leave_domain_out(frame, predictor, domains, authored_weight=authored_weight, min_reviews=min_reviews, log=log)
        mlflow.log_metric("domains_seconds", time.perf_counter() - t0)
        for k, (name, row) in enumerate(table.iterrows()):
            key = "mean" if name == "mean over domains" else f"d{k}"
            mlflow.log_metrics({f"{key}_{m}": float(v) for m, v in row.items() if m != "n" and v == v})
        with tempfile.TemporaryDirectory() as tmp:
            table.round(4).to_csv(Path(tmp) / "domains.csv")
            mlflow.log_artifacts(tmp, artifact_path="evaluation")
    return table


def _to_traditional(texts: pd.Series) -> list[str]:
    import opencc

    conv = opencc.OpenCC("s2twp")
    return [conv.convert(str(t)) for t in texts]


def _write_artifacts(cv: CVResult, out: Path) -> None:
    Y = indicator(cv.frame["labels"])
    passed = np.array([[c in s.split("|") for c in CAUSE_IDS] for s in cv.frame["causes_pred"]])
    (out / "classification_report.txt").write_text(
        report(Y, passed, cv.frame["primary"].to_numpy(), cv.frame["primary_pred"].to_numpy()), encoding="utf-8")
    cm = primary_confusion(cv.frame["primary"].to_numpy(), cv.frame["primary_pred"].to_numpy())
    cm.to_csv(out / "confusion_matrix.csv")
    plot_confusion(cm, out / "confusion_matrix.png")
    cv.slices.round(4).to_csv(out / "slices.csv")
    oof = cv.frame.drop(columns=[c for c in cv.frame.columns if c.startswith("_")]).copy()
    oof["labels"] = oof["labels"].map("|".join)
    oof.to_csv(out / "oof_predictions.csv", index=False)
    (out / "cv_metrics.json").write_text(json.dumps(cv.metrics, indent=2), encoding="utf-8")


def logged_params(predictor: Predictor) -> dict[str, object]:
    """Every scalar hyper-parameter of the Predictor, by its ``set_params`` name."""
    out = {}
    plumbing = ("memory", "verbose", "transform_input", "n_jobs", "verbose_feature_names_out")
    for key, value in predictor.get_params(deep=True).items():
        if "__select__" in key or key.rsplit("__", 1)[-1] in plumbing:
            continue
        if isinstance(value, (int, float, str, bool, tuple)) or value is None:
            out[key] = value
    return out


def _promotion(client, current: dict[str, float], data: str, promote: bool, log) -> tuple[str, str]:
    """Which alias the new version takes, and why."""
    if promote:
        return CHAMPION, "forced with --promote"
    try:
        champ = client.get_model_version_by_alias(REGISTERED_MODEL, CHAMPION)
    except Exception:
        return CHAMPION, "no champion yet"
    run = client.get_run(champ.run_id)
    if run.data.tags.get("reviewcause.data_hash") != data:
        return CHAMPION, f"the champion (version {champ.version}) was evaluated on other data ({run.data.tags.get('reviewcause.data_hash')})"
    worse = [k for k in HEADLINE if current[k] + 1e-9 < run.data.metrics.get(k, -1)]
    if worse:
        detail = ", ".join(f"{k} {current[k]:.4f} < {run.data.metrics[k]:.4f}" for k in worse)
        return CHALLENGER, f"not promoted: worse than champion version {champ.version} on the same data ({detail})"
    return CHAMPION, f"not worse than champion version {champ.version} on the same data"


@contextmanager
def _tracked_run(kind: str, predictor: Predictor, data: str, params: dict):
    """An MLflow run of the project's experiment named ``<kind>-<data hash>-<time>``, with the
    Predictor's hyper-parameters and ``params`` logged and the version, kind and data tagged."""
    import mlflow

    logging.getLogger("mlflow").setLevel(logging.ERROR)
    use_experiment(EXPERIMENT)
    with mlflow.start_run(run_name=f"{kind}-{data}-{time.strftime('%m%d-%H%M')}") as active:
        mlflow.log_params(logged_params(predictor) | params)
        mlflow.set_tags({"reviewcause.version": __version__, "python": platform.python_version(), "kind": kind,
                         "reviewcause.data_hash": data})
        yield active


def run(predictor: Predictor | None = None, frame: pd.DataFrame | None = None, model_path: Path | None = DEFAULT_MODEL,
        folds: int = 5, seed: int = 13, authored_weight: float = 0.5, register: bool = True, promote: bool = False,
        label_files: list[Path] | None = None, baseline: bool = True, aliases: bool | None = None, log=print) -> dict:
    """Cross-validate (with the baseline), fit on all data, save and track; ``model_path=None``
    only evaluates. The registered version competes for ``@champion`` (what ``serve`` serves by
    default) when ``aliases`` — by default only when it is the default model file, or ``promote``."""
    import mlflow
    from mlflow.tracking import MlflowClient

    from pipeline.persist import save

    predictor = Predictor() if predictor is None else predictor
    frame = load_labelled() if frame is None else frame
    counts = frame["source"].value_counts().to_dict()
    data = data_hash(frame)
    kind = "train" if model_path else "eval"
    params = {"folds": folds, "seed": seed, "authored_weight": authored_weight, "segmenter": current_backend()}
    with _tracked_run(kind, predictor, data, params | {f"n_{k}": v for k, v in counts.items()}) as active:
        for path in label_files or []:
            mlflow.log_artifact(str(path), artifact_path="labels")
            mlflow.set_tag(f"labels.{Path(path).name}.sha256", _file_hash(Path(path)))
        log(f"cross-validating the model and the baseline on {len(frame) - counts.get('authored', 0)} labelled reviews ({folds} folds) …")
        cv = cross_validate(frame, predictor, folds=folds, seed=seed, authored_weight=authored_weight, baseline=baseline, log=log)
        mlflow.log_metrics({k: float(v) for k, v in cv.metrics.items()} | {"cv_seconds": cv.seconds})
        keys = slice_metric_keys(list(cv.slices.index))
        for name, row in cv.slices.iterrows():
            mlflow.log_metrics({f"{keys[name]}_{m}": float(v) for m, v in row.items() if m != "n" and v == v})
        with tempfile.TemporaryDirectory() as tmp:
            _write_artifacts(cv, Path(tmp))
            mlflow.log_artifacts(tmp, artifact_path="evaluation")
        result = {"run_id": active.info.run_id, "metrics": cv.metrics, "slices": cv.slices, "data_hash": data}
        if model_path is None:
            return result
        log("fitting on every labelled review …")
        t0 = time.perf_counter()
        model = fit(frame, predictor, authored_weight)
        fit_seconds = time.perf_counter() - t0
        mlflow.log_metric("fit_seconds", fit_seconds)
        thresholds = dict(zip(CAUSE_IDS, map(float, model.model_.named_steps["clf"].thresholds_)))
        mlflow.log_dict(thresholds, "thresholds.json")
        meta = {
            "version": __version__, "trained_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "data_hash": data,
            "params": logged_params(predictor), "thresholds": thresholds,
            "cv_metrics": {k: round(float(v), 4) for k, v in cv.metrics.items()}, "n_train": counts,
            "fit_seconds": round(fit_seconds, 1), "train_keys": sorted(frame["text"].map(text_key)),
            "mlflow": {"tracking_uri": tracking_uri(), "run_id": active.info.run_id},
            "inputs_hash": inputs_hash() if Path(model_path).resolve() == DEFAULT_MODEL.resolve() else None,
        }
        save(model, Path(model_path), meta)
        version, alias, why = None, None, "not registered"
        if register:
            from pipeline.serving import log_pyfunc

            log("logging and registering the model …")
            info = log_pyfunc(Path(model_path), registered_model_name=REGISTERED_MODEL)
            client = MlflowClient()
            version = str(info.registered_model_version)
            if aliases is None:
                aliases = Path(model_path).resolve() == DEFAULT_MODEL.resolve()
            if promote or aliases:
                alias, why = _promotion(client, cv.metrics, data, promote, log)
                client.set_registered_model_alias(REGISTERED_MODEL, alias, version)
            else:  # a model of one's own, written elsewhere, does not take over what `serve` serves
                alias, why = None, f"not promoted: written to {model_path}, not the default model; --promote makes it @champion"
            headline = ", ".join(f"{k} {cv.metrics[k]:.3f}" for k in HEADLINE)
            client.update_model_version(REGISTERED_MODEL, version,
                                        description=f"data {data}; cross-validated {headline}; "
                                                    f"baseline primary accuracy {cv.metrics.get('baseline_primary_accuracy', float('nan')):.3f}; {why}")
            mlflow.set_tag("reviewcause.alias", alias or "")
            meta["mlflow"] |= {"model": f"{REGISTERED_MODEL}@{alias}" if alias else f"{REGISTERED_MODEL}/{version}",
                               "version": version}
            save(model, Path(model_path), meta)
        mlflow.log_artifact(str(Path(model_path).with_suffix(".json")), artifact_path="model_meta")
        result.update(model_path=model_path, registered_version=version, alias=alias, promotion=why, fit_seconds=fit_seconds)
        return result


#: what a trained model is built from: the labelled data and the dictionary. Code changes that
#: need a retrain bump ``pipeline.__version__`` (part of the hash); refactors that keep outputs
#: identical (tests check the fast paths against the reference) do not retrain a shipped model.
TRAIN_INPUTS = ("data/labels.csv", "data/raw/labels_dev.csv", "data/jd_labels.csv", "data/raw/constructed_dev.jsonl",
                "data/authored.jsonl", "data/authored_categories.jsonl", "data/userdict.txt")


def inputs_hash() -> str:
    """SHA-256 over the training inputs' contents and the scikit-learn version (not mtimes, which
    a fresh clone sets arbitrarily)."""
    import sklearn

    h = hashlib.sha256(f"sklearn {sklearn.__version__} reviewcause {__version__}\n".encode())
    for rel in TRAIN_INPUTS:
        path = ROOT / rel
        h.update(rel.encode() + b"\0" + (path.read_bytes() if path.exists() else b"") + b"\0")
    return h.hexdigest()[:16]


def ensure_model(model_path: Path = DEFAULT_MODEL, log=print) -> str:
    """Train only when the model is missing, cannot be loaded, or was built from other inputs."""
    from pipeline.persist import load_predictor, read_meta
    from pipeline.tables import InputError

    want = inputs_hash()
    try:
        load_predictor(model_path)
        if read_meta(model_path).get("inputs_hash") == want:
            return "current"
        reason = "its training inputs changed"
    except InputError as exc:
        reason = str(exc)
    log(f"training the model ({reason}) …")
    run(model_path=Path(model_path), log=log)
    return "trained"


def _file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
