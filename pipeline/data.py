"""Labelled data: the shared labels joined to their texts, and user label files.

Every labelled frame has the columns ``id, text, labels (list of cause ids), primary, source,
script``. ``source`` is ``real`` (labels_dev: real reviews), ``constructed`` (constructed_dev:
written for the project), ``appliance`` (data/jd_labels.csv: real JD air-conditioner reviews
rated 1–3, labelled by this project's engineers by the guide) or ``authored``
(data/authored.jsonl: written by this project's engineers; used for training only, never for
reported figures).
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.normalize import is_traditional, normalize
from pipeline.paths import DATA, RAW
from pipeline.tables import InputError
from pipeline.taxonomy import CAUSE_IDS, NONE, SEP, parse_labels

COLUMNS = ["id", "text", "labels", "primary", "source", "script"]
AUTHORED = DATA / "authored.jsonl"
AUTHORED_CATEGORIES = DATA / "authored_categories.jsonl"
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


class LabelFileError(InputError, ValueError):
    """A mistake in a user's label file: one line naming the file, row and column."""


def attach_texts(labels: pd.DataFrame, corpus: Path = CORPUS, where: str = "labels") -> pd.DataFrame:
    """Give a label file without a ``text`` column the texts of the shipped corpus, by ``id``."""
    texts = pd.read_csv(corpus, dtype={"id": str}, usecols=["id", "text"])
    merged = labels.merge(texts, on="id", how="left", validate="one_to_one")
    missing = merged["text"].isna()
    if missing.any():
        ids = ", ".join(merged.loc[missing, "id"].head(5))
        first = f"row {int(np.flatnonzero(missing.to_numpy())[0]) + 2}, column 'id': " if "_row" not in merged else \
            f"row {merged.loc[missing, '_row'].iloc[0]}, column 'id': "
        raise LabelFileError(f"{where}: {first}{missing.sum()} id(s) have no text column and are not in {corpus.name} (e.g. {ids})")
    return merged


#: the columns of a label file, found by name (case, spaces, BOM ignored)
LABEL_COLUMNS = ("id", "text", "labels", "primary", "rating")


def _names_labels(cells: list[str]) -> bool:
    """A label file's header row: it has a ``labels`` column."""
    from pipeline.tables import display_name

    return any(display_name(c).strip().lstrip("\ufeff").lower() == "labels" for c in cells)


def read_labelled_csv(path: Path, source: str = "real", corpus: Path = CORPUS) -> pd.DataFrame:
    """A user's label file (CSV/TSV in any encoding ``score`` reads, or ``.xlsx``): ``labels``
    (``|``-separated cause ids, or ``none``) and either ``text`` or an ``id`` found in the shipped
    corpus; ``primary`` is optional (the first label otherwise). Mistakes are one line naming the
    file, row (the header is row 1) and column: an empty file, no ``labels`` column, every label
    blank, an unknown cause id in ``labels`` or ``primary``, a primary that is not one of the row's
    labels, a duplicate id."""
    from pipeline.tables import display_name, find_columns, read_frame

    path = Path(path)
    # the header is the row with a 'labels' column: title rows above it are looked past, and in a
    # workbook the first sheet that has one is read (an instructions sheet before it is not)
    raw, _ = read_frame(path, header=_names_labels)
    wanted = {}
    for col in raw.columns:
        key = display_name(col).strip().lstrip("\ufeff").lower()
        if key in LABEL_COLUMNS and key not in wanted:
            wanted[key] = col
    seen = ", ".join(display_name(c) or "(blank)" for c in raw.columns)
    if "labels" not in wanted:
        raise LabelFileError(f"{path}: no 'labels' column (columns seen: {seen})")
    # the review text and the star rating under any header `score` reads (评价内容, review, 评分 …)
    others = [c for c in raw.columns if c not in wanted.values()]
    found = find_columns([str(c) for c in others], where=str(path), require_text=False) if others else {}
    for role in ("text", "rating"):
        if role not in wanted and found.get(role) is not None:
            wanted[role] = next(c for c in others if str(c) == found[role])
    if "text" not in wanted and "id" not in wanted:
        raise LabelFileError(f"{path}: no 'text' column (nor an 'id' of the shipped corpus) (columns seen: {seen})")
    if not len(raw):
        raise LabelFileError(f"{path}: no labelled rows (only a header)")
    df = pd.DataFrame({k: raw[c].astype(str).to_numpy() for k, c in wanted.items()})
    followup = found.get("followup")
    if followup is not None and "text" in df:  # the 追评, read with the first review as `score` reads it
        from pipeline.predict import with_followups

        column = next(c for c in others if str(c) == followup)
        df["text"] = with_followups(df["text"].tolist(), raw[column].astype(str).tolist())
    # rows as a spreadsheet counts them: below the header, blank rows Excel skips included
    df["_row"] = int(raw.attrs.get("header_row", 1)) + 1 + np.asarray(raw.index, dtype=np.int64)
    labels = df["labels"].str.strip()
    if (labels == "").all():
        raise LabelFileError(f"{path}: column 'labels' is blank on every row; give each review its cause ids "
                             f"('|'-separated) or 'none'")
    parsed = []
    for row, value in zip(df["_row"], labels):
        if not value:
            raise LabelFileError(f"{path}: row {row}, column 'labels': blank; give the cause ids or 'none'")
        if not value.replace(SEP, "").strip():  # '|', '| |': separators around nothing are no 'none'
            raise LabelFileError(f"{path}: row {row}, column 'labels': {value!r} holds no cause id; "
                                 f"give the cause ids or 'none'")
        try:
            parsed.append(parse_labels(value))
        except ValueError as exc:
            raise LabelFileError(f"{path}: row {row}, column 'labels': {exc}") from None
    if "primary" in df:
        for row, value, ls in zip(df["_row"], df["primary"].str.strip(), parsed):
            if not value or value == NONE:
                continue
            if value not in CAUSE_IDS:
                raise LabelFileError(f"{path}: row {row}, column 'primary': unknown cause id {value!r}; "
                                     f"expected one of {list(CAUSE_IDS)} or 'none'")
            if value not in ls:
                raise LabelFileError(f"{path}: row {row}, column 'primary': {value!r} is not one of the row's labels "
                                     f"({SEP.join(ls) or NONE})")
        for row, value, ls in zip(df["_row"], df["primary"].str.strip(), parsed):
            if value == NONE and ls:
                raise LabelFileError(f"{path}: row {row}, column 'primary': 'none' but the row has cause(s) "
                                     f"({SEP.join(ls)}); give one of them, or leave it blank for the first")
        df["primary"] = [p.strip() if p.strip() else (ls[0] if ls else NONE) for p, ls in zip(df["primary"], parsed)]
    else:
        df["primary"] = [ls[0] if ls else NONE for ls in parsed]
    if "id" in df:
        ids = df["id"].str.strip()
        given = ids != ""
        dup = ids.duplicated(keep=False) & given
        if dup.any():
            first_dup = ids[ids.duplicated() & given].iloc[0]
            rows = df.loc[ids == first_dup, "_row"].tolist()
            raise LabelFileError(f"{path}: row {rows[1]}, column 'id': duplicate id {first_dup!r} (also on row {rows[0]})")
        if "text" in df:
            df["id"] = np.where(given, ids, [f"row{r - 1}" for r in df["_row"]])
        else:
            blank = np.flatnonzero(~given.to_numpy())
            if len(blank):
                raise LabelFileError(f"{path}: row {df['_row'].iloc[blank[0]]}, column 'id': blank, and the file has no "
                                     f"'text' column to read instead")
            df["id"] = ids
    else:
        df.insert(0, "id", [f"row{i + 1}" for i in range(len(df))])
    if "text" not in df:
        df = attach_texts(df, corpus=corpus, where=str(path))
    else:
        blank = np.flatnonzero((df["text"].str.strip() == "").to_numpy())  # read_frame gives "" for a blank cell
        if len(blank):
            raise LabelFileError(f"{path}: row {df['_row'].iloc[blank[0]]}, column 'text': blank; a labelled review "
                                 f"needs its text (or drop the row)")
    df["labels"] = pd.Series(parsed, index=df.index, dtype=object)
    df = df.drop(columns="_row")
    out = _finish(df, source)
    if "rating" in df:  # read as scoring reads it (4, 4星, ★★★★, 好评); blank or unreadable: no rating
        from pipeline.model import star_ratings

        out["rating"] = star_ratings(df["rating"].reset_index(drop=True))
    return out


DOUBLE_READ = DATA / "labels.csv"
#: where the texts (and ratings) of each labelled source live, joined by id
CORPORA = {"online_shopping": "online_shopping_neg.csv", "jd_aircon": "jd_aircon.csv", "waimai": "waimai_neg.csv"}
#: the reported slice of each source (``real`` = the online-shopping reviews of labels_dev's corpus)
SLICE = {"online_shopping": "real", "jd_aircon": "appliance", "waimai": "waimai"}


def _texts(raw: Path) -> pd.DataFrame:
    frames = []
    for source, name in CORPORA.items():
        path = raw / name
        if not path.exists():
            continue
        cols = ["id", "text"] + (["rating"] if source == "jd_aircon" else []) + (["category"] if source == "online_shopping" else [])
        df = pd.read_csv(path, dtype=str, usecols=cols, keep_default_na=False)
        if "rating" not in df:
            df["rating"] = ""
        if "category" not in df:
            df["category"] = {"jd_aircon": "空调", "waimai": "外卖"}[source]
        frames.append(df.assign(corpus=source))
    return pd.concat(frames, ignore_index=True)


def load_labelled(raw: Path = RAW, authored: bool = True) -> pd.DataFrame:
    """All labelled data shipped in ``data/``, one row per review.

    * ``data/labels.csv`` — double-read labels (two independent readings, disagreements
      adjudicated) of online-shopping, JD appliance and food-delivery reviews, with provenance;
    * ``raw/labels_dev.csv`` and ``jd_labels.csv`` — the original single-reader labels, for the
      reviews whose second reading is not in ``labels.csv`` yet (``reading = single``);
    * ``raw/constructed_dev.jsonl`` (constructed); ``authored.jsonl`` and
      ``authored_categories.jsonl`` (written by the guide, double-read; training only).

    Columns: ``COLUMNS`` + ``rating`` (1–5 or NaN), ``category``, ``stratum``, ``reading``.
    """
    texts = _texts(raw)
    frames = []
    double = pd.read_csv(DOUBLE_READ, dtype=str, keep_default_na=False) if DOUBLE_READ.exists() else None
    seen: set[str] = set()
    if double is not None and len(double):
        d = double.merge(texts[["id", "text"]], on="id", how="left", validate="one_to_one")
        d["labels"] = d["labels"].map(parse_labels)
        d["source"] = d["source"].map(SLICE)
        d["reading"] = "double"
        d["script"] = _script(d["text"])
        frames.append(d)
        seen = set(d["id"])
    for path, source in ((raw / "labels_dev.csv", "real"), (APPLIANCE, "appliance")):
        if path.exists():
            single = pd.read_csv(path, dtype=str, keep_default_na=False)
            single = single[~single["id"].isin(seen)]
            if len(single):
                s = single.merge(texts, on="id", how="left", validate="one_to_one")
                s = s.assign(labels=s["labels"].map(parse_labels), source=source, reading="single",
                             stratum="labels_dev" if source == "real" else "jd_labels", script=_script(s["text"]))
                frames.append(s)
    frames.append(read_jsonl(raw / "constructed_dev.jsonl", "constructed").assign(category="constructed", stratum="constructed",
                                                                                 rating="", reading="constructed"))
    if authored and AUTHORED.exists():
        frames.append(read_jsonl(AUTHORED, "authored").assign(category="authored", stratum="authored", rating="", reading="authored"))
    if authored and AUTHORED_CATEGORIES.exists():
        a = pd.read_json(AUTHORED_CATEGORIES, lines=True, dtype={"id": str})
        frames.append(_finish(a, "authored").assign(category=a["category"].to_numpy(), stratum="authored", rating="",
                                                    reading="authored"))
    cols = COLUMNS + ["rating", "category", "stratum", "reading"]
    out = pd.concat([f[cols] for f in frames], ignore_index=True)
    out["rating"] = pd.to_numeric(out["rating"], errors="coerce")
    out["primary"] = out["primary"].replace("", NONE)
    return without_authored_twins(out)


def text_key(text: str) -> str:
    """Identity of a review for duplicate grouping and train/test overlap checks."""
    return hashlib.sha1("".join(normalize(text).split()).encode("utf-8")).hexdigest()[:16]


def without_authored_twins(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame without the authored reviews whose text (:func:`text_key`) is also a labelled
    review's: authored rows train in every cross-validation fold, so a twin would train in the
    fold that tests the real one. A label round can draw such a text from the corpus later (a
    short "还 可 以 吧" beside the authored "还可以吧"); the real review, read twice, stays."""
    authored = frame["source"].to_numpy() == "authored"
    if not authored.any() or authored.all():
        return frame
    keys = frame["text"].map(text_key)
    twin = authored & keys.isin(set(keys[~authored])).to_numpy()
    return frame[~twin].reset_index(drop=True) if twin.any() else frame


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


def unlabelled_texts(exclude: tuple[str, ...] = (), raw: Path = RAW) -> list[str]:
    """The raw reviews of ``data/raw`` that no label file holds (by id), normalised: the corpus the
    word vectors (:mod:`pipeline.embed`) learn from. A labelled review is never in it, so a
    cross-validated figure never rests on vectors that read its test reviews. ``exclude``: domains
    (as :func:`pipeline.train.domains_of` names them: an online-shopping category, ``waimai``,
    ``appliance``) left out, so a held-out domain is unseen by the vectors too."""
    return list(_unlabelled(tuple(sorted(exclude)), str(raw)))


_DOMAIN_OF_CORPUS = {"jd_aircon": "appliance", "waimai": "waimai"}


def _labelled_ids(raw: Path) -> set[str]:
    ids: set[str] = set()
    for path in (DOUBLE_READ, raw / "labels_dev.csv", APPLIANCE):
        if path.exists():
            ids |= set(pd.read_csv(path, dtype=str, usecols=["id"], keep_default_na=False)["id"])
    return ids


@lru_cache(maxsize=4)
def _unlabelled(exclude: tuple[str, ...], raw: str) -> tuple[str, ...]:
    from pipeline.normalize import normalize_many

    texts = _texts(Path(raw))
    domain = texts["corpus"].map(_DOMAIN_OF_CORPUS).fillna(texts["category"])
    labelled = texts["id"].isin(_labelled_ids(Path(raw)))
    keep = ~labelled & ~domain.isin(exclude) & (texts["text"].str.strip() != "")
    # a review posted twice under two ids: the copy of a labelled one is labelled too
    seen = set(normalize_many(texts.loc[labelled, "text"].tolist()))
    return tuple(t for t in normalize_many(texts.loc[keep, "text"].tolist()) if t not in seen)
