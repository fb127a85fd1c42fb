"""Labelled data: the shared labels joined to their texts, and user label files.

Every labelled frame has the columns ``id, text, labels (list of cause ids), primary, source,
script``. ``source`` is ``real`` (labels_dev: real reviews), ``constructed`` (constructed_dev:
written for the project), ``appliance`` (data/jd_labels.csv: real JD air-conditioner reviews
rated 1–3, labelled by this project's engineers by the guide) or ``authored``
(data/authored.jsonl: written by this project's engineers; used for training only, never for
reported figures).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.normalize import is_traditional
from pipeline.paths import DATA, RAW
from pipeline.taxonomy import CAUSE_IDS, NONE, parse_labels

COLUMNS = ["id", "text", "labels", "primary", "source", "script"]
AUTHORED = DATA / "authored.jsonl"
APPLIANCE = DATA / "jd_labels.csv"
CORPUS = RAW / "online_shopping_neg.csv"


def _script(texts: pd.Series) -> pd.Series:
    return texts.map(lambda t: "traditional" if is_traditional(str(t)) else "simplified")


def _finish(df: pd.DataFrame, source: str) -> pd.DataFrame:
    df = df.copy()
    df["labels"] = df["labels"].map(parse_labels)
    if "primary" not in df:
        df["primary"] = df["labels"].map(lambda ls: ls[0] if ls else NONE)
    df["primary"] = df["primary"].fillna(NONE).astype(str)
    df["source"] = source
    if "script" not in df:
        df["script"] = _script(df["text"])
    df["id"] = df["id"].astype(str)
    df["text"] = df["text"].astype(str)
    return df[COLUMNS].reset_index(drop=True)


def read_jsonl(path: Path, source: str) -> pd.DataFrame:
    return _finish(pd.read_json(path, lines=True, dtype={"id": str}), source)


def attach_texts(labels: pd.DataFrame, corpus: Path = CORPUS, where: str = "labels") -> pd.DataFrame:
    """Give a label file without a ``text`` column the texts of the shipped corpus, by ``id``."""
    texts = pd.read_csv(corpus, dtype={"id": str}, usecols=["id", "text"])
    merged = labels.merge(texts, on="id", how="left", validate="one_to_one")
    missing = merged["text"].isna()
    if missing.any():
        ids = ", ".join(merged.loc[missing, "id"].head(5))
        raise ValueError(f"{where}: {missing.sum()} id(s) have no text column and are not in {corpus.name} (e.g. {ids})")
    return merged


def read_labelled_csv(path: Path, source: str = "real", corpus: Path = CORPUS) -> pd.DataFrame:
    """A user's labelled CSV: ``labels`` (``|``-separated ids, or ``none``) and either ``text``
    or an ``id`` found in the shipped corpus; ``primary`` is optional (first label otherwise)."""
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    if "labels" not in df.columns:
        raise ValueError(f"{path}: no 'labels' column (columns seen: {', '.join(df.columns)})")
    if "id" not in df.columns:
        df.insert(0, "id", [f"row{i + 1}" for i in range(len(df))])
    if "text" not in df.columns:
        df = attach_texts(df, corpus=corpus, where=str(path))
    for i, value in enumerate(df["labels"], start=2):
        try:
            parse_labels(value)
        except ValueError as exc:
            raise ValueError(f"{path}: row {i}, column 'labels': {exc}") from None
    df["primary"] = df["primary"].where(df["primary"] != "", None) if "primary" in df else None
    return _finish(df, source)


def load_labelled(raw: Path = RAW, authored: bool = True) -> pd.DataFrame:
    """All labelled data shipped in ``data/``."""
    frames = [
        read_labelled_csv(raw / "labels_dev.csv", "real"),
        read_jsonl(raw / "constructed_dev.jsonl", "constructed"),
    ]
    if APPLIANCE.exists():
        frames.append(read_labelled_csv(APPLIANCE, "appliance", corpus=raw / "jd_aircon.csv"))
    if authored and AUTHORED.exists():
        frames.append(read_jsonl(AUTHORED, "authored"))
    return pd.concat(frames, ignore_index=True)


def indicator(labels: pd.Series) -> np.ndarray:
    """``(n, 8)`` 0/1 matrix in ``CAUSE_IDS`` order from a Series of label lists."""
    index = {c: j for j, c in enumerate(CAUSE_IDS)}
    Y = np.zeros((len(labels), len(CAUSE_IDS)), dtype=int)
    for i, ls in enumerate(labels):
        for c in ls:
            Y[i, index[c]] = 1
    return Y


def primary_index(primary: pd.Series) -> np.ndarray:
    """Primary cause as an index into ``CAUSE_IDS``; ``none`` is ``len(CAUSE_IDS)``."""
    index = {c: j for j, c in enumerate(CAUSE_IDS)}
    return np.array([index.get(p, len(CAUSE_IDS)) for p in primary], dtype=int)
