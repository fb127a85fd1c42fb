"""Metrics: pure functions from true and predicted labels to numbers and reports.

``metrics`` feeds ``mlflow.log_metrics`` directly (flat ``name → float``); the report and
confusion-matrix helpers produce the artefacts logged beside them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import classification_report, confusion_matrix, precision_recall_fscore_support

from pipeline.taxonomy import CAUSE_IDS, EMPTY, MALICIOUS, NO_COMPLAINT, NONE, UNCERTAIN

PRIMARY_CLASSES = list(CAUSE_IDS) + [NONE]


def _primary_as_label(primary: np.ndarray) -> np.ndarray:
    """The model's ``uncertain`` is the data's ``none``."""
    p = np.asarray(primary, dtype=object)
    return np.where(np.isin(p, [UNCERTAIN, NO_COMPLAINT, EMPTY]), NONE, p).astype(object)


def malicious_flags(Y: np.ndarray, primary: np.ndarray) -> np.ndarray:
    """A review is suspected malicious when its primary or any of its causes is 7 or 8."""
    idx = [CAUSE_IDS.index(c) for c in sorted(MALICIOUS)]
    return (np.asarray(Y)[:, idx].sum(axis=1) > 0) | np.isin(np.asarray(primary, dtype=object), list(MALICIOUS))


def metrics(Y_true, Y_pred, primary_true, primary_pred) -> dict[str, float]:
    """Per-cause precision/recall/F1, macro/micro F1, primary accuracy, malicious P/R.

    ``Y_*`` are ``(n, 8)`` indicators in ``CAUSE_IDS`` order. Rows labelled ``none`` count as
    correct for primary accuracy when the model abstains (``uncertain``).
    """
    Y_true, Y_pred = np.asarray(Y_true), np.asarray(Y_pred)
    p, r, f, s = precision_recall_fscore_support(Y_true, Y_pred, average=None, zero_division=0)
    out: dict[str, float] = {}
    for j, c in enumerate(CAUSE_IDS):
        out[f"precision_{c}"], out[f"recall_{c}"], out[f"f1_{c}"] = float(p[j]), float(r[j]), float(f[j])
        out[f"support_{c}"] = float(s[j])
    present = s > 0
    out["macro_f1"] = float(f[present].mean()) if present.any() else 0.0
    _, _, out["micro_f1"], _ = precision_recall_fscore_support(Y_true, Y_pred, average="micro", zero_division=0)
    out["micro_f1"] = float(out["micro_f1"])
    pt, pp = np.asarray(primary_true, dtype=object), _primary_as_label(primary_pred)
    out["primary_accuracy"] = float((pt == pp).mean()) if len(pt) else 0.0
    mt, mp = malicious_flags(Y_true, pt), malicious_flags(Y_pred, pp)
    tp = float((mt & mp).sum())
    out["malicious_precision"] = tp / mp.sum() if mp.sum() else 0.0
    out["malicious_recall"] = tp / mt.sum() if mt.sum() else 0.0
    out["n"] = float(len(pt))
    return out


def report(Y_true, Y_pred, primary_true, primary_pred) -> str:
    """Text report: per-cause multi-label metrics and the primary-cause report."""
    multi = classification_report(
        np.asarray(Y_true), np.asarray(Y_pred), target_names=list(CAUSE_IDS), zero_division=0, digits=3
    )
    prim = classification_report(
        np.asarray(primary_true, dtype=object), _primary_as_label(primary_pred),
        labels=PRIMARY_CLASSES, zero_division=0, digits=3,
    )
    return f"Causes (multi-label, every cause of a review)\n{multi}\nPrimary cause ('uncertain' counted as 'none')\n{prim}"


def primary_confusion(primary_true, primary_pred) -> pd.DataFrame:
    cm = confusion_matrix(np.asarray(primary_true, dtype=object), _primary_as_label(primary_pred), labels=PRIMARY_CLASSES)
    return pd.DataFrame(cm, index=PRIMARY_CLASSES, columns=PRIMARY_CLASSES)


def plot_confusion(cm: pd.DataFrame, path: Path, title: str = "Primary cause: true (rows) vs predicted") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 7))
    norm = cm.div(cm.sum(axis=1).replace(0, 1), axis=0)
    ax.imshow(norm.values, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(cm.columns)), cm.columns, rotation=45, ha="right")
    ax.set_yticks(range(len(cm.index)), cm.index)
    for i in range(len(cm.index)):
        for j in range(len(cm.columns)):
            v = cm.values[i, j]
            if v:
                ax.text(j, i, str(v), ha="center", va="center", color="white" if norm.values[i, j] > 0.5 else "black", fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
