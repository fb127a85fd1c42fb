"""Reports over a predictions CSV: the appeal export, the cause/DSR summary and the seller's view.

* :func:`suspects` — the appeal export (CSV/TSV/XLSX), suspected malicious reviews grouped by
  campaign, then buyer, strongest first (:func:`suspect_groups` does the grouping).
* :func:`summary` / :func:`terminal_summary` — the count of causes with DSR dimension and
  remedy, as a DataFrame and as an aligned plain-text table (CJK width-aware).
* :func:`write_report` — one self-contained HTML page (no script, style or font fetched from the
  network) with Vega-Lite charts built with Altair; the Vega/Vega-Lite/Vega-Embed JavaScript is
  inlined from vl-convert's bundle, and vl-convert also exports each chart as PNG (no browser).

Every value that comes from the input (review texts, item names, buyer nicknames, evidence
quotes, ids) is HTML-escaped in the page, and chart data is JSON with ``<``, ``>`` and ``&``
escaped, so a review cannot inject markup or script.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.batch import is_masked, parse_dates
from pipeline.predict import PRED_COLUMNS, SPECIAL_ZH, parse_rating
from pipeline.tables import (UNSAFE_CODES, InputError, _same_file, _writable_place, _write_error, atomic_csv, atomic_file,
                             english_headers, excel_unsafe, find_columns, note, ooxml_unescape, read_frame)
from pipeline.taxonomy import BY_ID, CAUSE_IDS, CAUSES, EMPTY, NO_COMPLAINT, UNCERTAIN

REQUIRED = ("review_id", "cause", "suspected_malicious", "malicious_score", "cluster_id", "evidence")
SUSPECT_COLUMNS = [
    "group", "group_kind", "group_size", "group_strength", "review_id", "buyer", "item", "date", "rating",
    "text", "cause", "cause_zh", "malicious_score", "evidence", "what_to_do",
]
#: outcomes that are not a cause, counted apart in every report
SPECIALS = (NO_COMPLAINT, UNCERTAIN, EMPTY)
SPECIAL_EN = {NO_COMPLAINT: "no complaint", UNCERTAIN: "uncertain", EMPTY: "empty"}


def read_predictions(path: Path | str, overrides: dict[str, str | None] | None = None) -> tuple[pd.DataFrame, dict[str, str | None]]:
    """A predictions file written by ``reviewcause score`` — CSV, or the ``predictions`` sheet of
    an Excel workbook, with English or Chinese (``--zh-headers``) column names — and the roles of
    its input columns, found by header name or named by ``overrides`` (the ``--text-col`` …
    options ``score`` was given, for the input columns it kept)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        df = _read_workbook(path)
        df = df[_report_columns(list(df.columns), path, overrides)]
    else:
        # decoded like any input (UTF-8/16, GBK, Big5; comma, tab or semicolon): a predictions
        # CSV opened in Excel and saved again ("CSV", "Unicode text") still reads. Only the
        # columns a report reads are held (not the probabilities nor unused input columns).
        df, _ = read_frame(path, keep=lambda columns: _report_columns(columns, path, overrides))
        df = df.fillna("").astype(str)
        df = df.apply(excel_unsafe)  # score's CSV escaped formula-like cells with a 
    df.columns = english_headers(list(df.columns))
    blank = (df.astype(str).apply(lambda col: col.str.strip()) == "").all(axis=1)
    if blank.any():  # rows Excel leaves after "clear contents" (or a blank line at the end): no review
        note(f"{path}: {int(blank.sum())} blank row(s) skipped (first: data row {int(df.index[blank.to_numpy()][0]) + 1})")
        df = df[~blank.to_numpy()]
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise InputError(f"{path}: not a predictions file from 'reviewcause score' (missing column(s): {', '.join(missing)})")
    _check_values(df, path)
    inputs = [c for c in df.columns if c not in PRED_COLUMNS]
    return df, find_columns(inputs, overrides, where=str(path))


#: what the cause column of a predictions file may hold
_OUTCOMES = frozenset(CAUSE_IDS) | frozenset(SPECIAL_ZH)


def _check_values(df: pd.DataFrame, path: Path) -> None:
    """The prediction cells a report and the appeal export rely on, as ``score`` writes them: a
    known cause, true/false, scores in [0, 1]. A hand-edited file is refused at its first bad cell
    instead of being counted wrong."""
    def bad(mask, column: str, what: str) -> None:
        rows = np.flatnonzero(np.asarray(mask))
        if len(rows):
            value = df[column].iloc[rows[0]]
            raise InputError(f"{path}: data row {int(df.index[rows[0]]) + 1}, column '{column}': {value!r} is not {what}"
                             f"{f' ({len(rows)} such rows)' if len(rows) > 1 else ''}")

    bad(~df["cause"].isin(_OUTCOMES), "cause", f"a cause id ({', '.join(CAUSE_IDS)}, or {', '.join(SPECIAL_ZH)})")
    bad(~df["suspected_malicious"].astype(str).str.lower().isin(["true", "false"]), "suspected_malicious", "true or false")
    for column in ("malicious_score", "confidence"):
        if column in df.columns:
            v = pd.to_numeric(df[column], errors="coerce")
            bad(v.isna() | ~np.isfinite(v) | (v < 0) | (v > 1), column, "a probability between 0 and 1")


#: prediction columns a report or the appeal export reads
_READ = frozenset(REQUIRED) | {"confidence"}


def _report_columns(columns: list[str], path: Path, overrides: dict[str, str | None] | None = None) -> list[str]:
    """The columns of a predictions file that the report reads: the prediction columns it uses
    and the input columns that have a role (text, id, rating, buyer, item, date …); every column
    when no text column is found, so that the error names them all."""
    names = english_headers(columns)
    inputs = [c for c, n in zip(columns, names) if n not in PRED_COLUMNS]
    try:
        roles = set(filter(None, find_columns(inputs, overrides, where=str(path)).values()))
    except InputError:
        return columns
    return [c for c, n in zip(columns, names) if n in _READ or c in roles]


def _read_workbook(path: Path) -> pd.DataFrame:
    import zipfile

    try:
        book = pd.ExcelFile(path, engine="openpyxl")
    except (zipfile.BadZipFile, OSError, ValueError, KeyError) as exc:
        raise InputError(f"{path}: not an Excel workbook ({type(exc).__name__})") from None
    sheet = "predictions" if "predictions" in book.sheet_names else None
    if sheet is None:  # a predictions CSV opened in Excel and saved as .xlsx: its one sheet has the file's name
        for name in book.sheet_names:
            header = english_headers([str(c) for c in book.parse(name, nrows=0).columns])
            if {"review_id", "cause"} <= set(header):
                sheet = name
                break
    if sheet is None:
        raise InputError(f"{path}: no sheet named 'predictions' nor one with the columns review_id and cause "
                         f"(sheets: {', '.join(book.sheet_names)}); write it with 'reviewcause score … -o FILE.xlsx'")
    return book.parse(sheet, dtype=str, keep_default_na=False).fillna("").apply(ooxml_unescape)


def _single_names(ids: list[str]) -> list[str]:
    """``R:<id>`` per review, one review per name: a repeated id is numbered ``R:<id>#1``, ``#2`` …,
    skipping any name another review holds already (ids ``x``, ``x``, ``x#1``)."""
    from collections import Counter

    names = ["R:" + str(i) for i in ids]
    count = Counter(names)
    taken = set(names)
    nth: dict[str, int] = {}
    out = []
    for name in names:
        if count[name] == 1:
            out.append(name)
            continue
        k = nth.get(name, 0) + 1
        while f"{name}#{k}" in taken:
            k += 1
        nth[name] = k
        taken.add(f"{name}#{k}")
        out.append(f"{name}#{k}")
    return out


def suspect_groups(df: pd.DataFrame, roles: dict[str, str | None]) -> pd.DataFrame:
    """The suspected malicious reviews of a predictions frame (:data:`SUSPECT_COLUMNS`), grouped —
    ``campaign`` (a cluster), ``buyer`` (one unmasked buyer flagged more than once) or ``single`` —
    and sorted by group strength (its highest score), then size."""
    sus = df[df["suspected_malicious"].str.lower() == "true"].copy()

    def col(role: str) -> pd.Series:
        return sus[roles[role]] if roles.get(role) else pd.Series("", index=sus.index)

    sus["_score"] = pd.to_numeric(sus["malicious_score"], errors="coerce").fillna(0.0)
    buyer = col("buyer")
    repeat = buyer.map(buyer.value_counts()) >= 2
    use_buyer = repeat & ~buyer.map(is_masked).astype(bool)
    kind = np.where(sus["cluster_id"] != "", "campaign", np.where(use_buyer, "buyer", "single"))
    single = pd.Series(_single_names(sus["review_id"].tolist()), index=sus.index, dtype=object)
    group = np.where(kind == "campaign", sus["cluster_id"], np.where(kind == "buyer", "B:" + buyer, single))
    sus["group"], sus["group_kind"] = group, kind
    sus["group_size"] = sus.groupby("group")["review_id"].transform("size")
    sus["group_strength"] = sus.groupby("group")["_score"].transform("max")
    sus = sus.sort_values(["group_strength", "group_size", "group", "_score"], ascending=[False, False, True, False], kind="stable")
    out = pd.DataFrame({
        "group": sus["group"], "group_kind": sus["group_kind"], "group_size": sus["group_size"],
        "group_strength": sus["group_strength"].map("{:.4f}".format), "review_id": sus["review_id"],
        "buyer": col("buyer"), "item": col("item"), "date": col("date"), "rating": col("rating"), "text": col("text"),
        "cause": sus["cause"], "cause_zh": sus["cause"].map(lambda c: BY_ID[c].zh if c in BY_ID else ""),
        "malicious_score": sus["malicious_score"], "evidence": sus["evidence"],
        "what_to_do": sus["cause"].map(lambda c: BY_ID[c].remedy if c in BY_ID and BY_ID[c].malicious else "向平台申诉，附上证据"),
    })
    return out[SUSPECT_COLUMNS]


def suspects(pred_path: Path | str, out_path: Path | str, bom: bool = True,
             overrides: dict[str, str | None] | None = None) -> dict[str, int]:
    """Write the suspected malicious reviews, grouped by campaign, then buyer, strongest first."""
    df, roles = read_predictions(pred_path, overrides)
    out = suspect_groups(df, roles)
    with atomic_csv(out_path, bom=bom) as w:
        w.header(SUSPECT_COLUMNS)
        w.rows(out[SUSPECT_COLUMNS].astype(str).to_numpy().tolist())
    return {"rows": len(df), "suspects": len(out), "groups": int(out["group"].nunique())}


def _summary(df: pd.DataFrame) -> pd.DataFrame:
    counts = df["cause"].value_counts()
    rows = []
    for c in CAUSES:
        n = int(counts.get(c.id, 0))
        rows.append({"cause": c.id, "zh": c.zh, "reviews": n, "dsr": c.dsr, "remedy": c.remedy})
    for special in SPECIALS:
        if counts.get(special, 0):
            rows.append({"cause": special, "zh": SPECIAL_ZH[special], "reviews": int(counts[special]), "dsr": "", "remedy": ""})
    out = pd.DataFrame(rows)
    total = max(int(out["reviews"].sum()), 1)
    out.insert(3, "share", (out["reviews"] / total).map("{:.1%}".format))
    flagged = df["suspected_malicious"].str.lower() == "true"
    out["suspected_malicious"] = [int(((df["cause"] == c) & flagged).sum()) for c in out["cause"]]
    return out


def summary(pred_path: Path | str, overrides: dict[str, str | None] | None = None) -> pd.DataFrame:
    """Count of primary causes with their share, DSR dimension and the seeds' remedy; the outcomes
    that are not a cause (no_complaint, uncertain, empty) follow when present."""
    df, _ = read_predictions(pred_path, overrides)
    return _summary(df)


# --- plain-text table -------------------------------------------------------------------------


def display_width(s: str) -> int:
    """Terminal columns of ``s``: 2 for wide/full-width (CJK) characters, 0 for combining marks."""
    w = 0
    for ch in s:
        if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me", "Cf"):
            continue
        w += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return w


def _pad(s: str, width: int, right: bool = False) -> str:
    fill = " " * max(width - display_width(s), 0)
    return fill + s if right else s + fill


def format_table(headers: list[str], rows: list[list[str]], right: set[int] = frozenset(), sep: str = "  ") -> str:
    """Rows aligned in columns by display width (Chinese characters count two); the last column
    is not padded (long remedies run on)."""
    cells = [[str(c) for c in r] for r in [headers, *rows]]
    widths = [max(display_width(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for r in cells:
        parts = [_pad(c, widths[i], i in right) if i < len(r) - 1 or i in right else c for i, c in enumerate(r)]
        lines.append(sep.join(parts).rstrip())
    return "\n".join(lines)


def terminal_summary(pred_path: Path | str, overrides: dict[str, str | None] | None = None) -> str:
    """The cause table for a terminal: cause, reviews, share, DSR, suspects, remedy; then the
    outcomes counted apart."""
    df, _ = read_predictions(pred_path, overrides)
    table = _summary(df)
    caused = table[table["cause"].isin(CAUSE_IDS)]
    total = max(int(caused["reviews"].sum()), 1)
    rows = [[str(BY_ID[r.cause].number), r.zh, r.cause, str(r.reviews), f"{r.reviews / total:.1%}", r.dsr,
             str(r.suspected_malicious), r.remedy] for r in caused.itertuples()]
    out = [format_table(["#", "原因", "cause", "评价", "占比", "店铺评分维度 DSR", "可疑", "建议 remedy"], rows,
                        right={0, 3, 4, 6})]
    apart = [f"{SPECIAL_ZH[s]} {s} {int((df['cause'] == s).sum())}" for s in SPECIALS]
    out.append(f"\n{len(df)} reviews; {int(caused['reviews'].sum())} with a cause (share is of these); "
               f"counted apart: {', '.join(apart)}")
    return "\n".join(out)


# --- the seller's view: data ------------------------------------------------------------------

FONT_STACK = ('"PingFang SC", "Hiragino Sans GB", "Microsoft YaHei", "Noto Sans CJK SC", "Source Han Sans SC", '
              '"WenQuanYi Micro Hei", "Heiti SC", system-ui, sans-serif')
#: one colour per cause, the same in every chart (Tableau 10)
CAUSE_COLORS = dict(zip(CAUSE_IDS, ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#9c755f"]))
BUYER_SIDE_DSR = "— 买家方 buyer side"
DSR_COLORS = {"描述相符": "#4e79a7", "服务态度": "#f28e2b", "发货速度/物流服务": "#59a14f", BUYER_SIDE_DSR: "#bab0ac"}
TOP_ITEMS = 15
EXAMPLES_PER_CAUSE = 3
MAX_GROUPS = 30
MAX_GROUP_ROWS = 10
MAX_TEXT = 300
CHART_WIDTH = 780
MAX_WEEKS = 156  # the weekly trend shows the last three years at most
KIND_ZH = {"campaign": "同文刷评 campaign", "buyer": "连环差评买家 serial buyer", "single": "单条 single review"}
KIND_COLORS = {"campaign": "#e15759", "buyer": "#b07aa1", "single": "#9c755f"}


def _dsr_label(cause: str) -> str:
    dsr = BY_ID[cause].dsr
    return BUYER_SIDE_DSR if dsr in ("—", "", None) else dsr


def _present(causes: pd.Series) -> list[str]:
    """The cause ids found in ``causes``, in taxonomy order."""
    found = set(causes.unique())
    return [c for c in CAUSE_IDS if c in found]


def _label(cause: str) -> str:
    return BY_ID[cause].zh if cause in BY_ID else SPECIAL_ZH.get(cause, cause)


@dataclass
class Reviews:
    """A predictions file in the shape the report needs."""

    df: pd.DataFrame  # cause, confidence, rating, bad, item, date, buyer, text, evidence, review_id
    roles: dict[str, str | None]
    has_rating: bool
    has_item: bool
    has_date: bool
    dated: int = 0

    caused: pd.DataFrame = field(init=False, repr=False)  # the rows with one of the eight causes

    def __post_init__(self) -> None:
        self.caused = self.df[self.df["cause"].isin(CAUSE_IDS)]


def load_reviews(df: pd.DataFrame, roles: dict[str, str | None]) -> Reviews:
    def col(role: str) -> pd.Series:
        return df[roles[role]].astype(str) if roles.get(role) else pd.Series("", index=df.index)

    out = pd.DataFrame({
        "review_id": df["review_id"], "cause": df["cause"], "evidence": df["evidence"],
        "confidence": pd.to_numeric(df.get("confidence", pd.Series("", index=df.index)), errors="coerce").fillna(0.0),
        "suspected": df["suspected_malicious"].str.lower() == "true",
        "text": col("text"), "item": col("item").str.strip(), "buyer": col("buyer"), "date_text": col("date"),
    })
    out["rating"] = col("rating").map(parse_rating) if roles.get("rating") else np.nan
    has_rating = bool(roles.get("rating")) and bool(out["rating"].notna().any())
    # a bad review: rated 3 or less; every row when the file has no rating (as the batch signals count)
    out["bad"] = out["rating"].isna() | (out["rating"] <= 3) if has_rating else True
    out["date"] = parse_dates(out["date_text"]) if roles.get("date") else pd.NaT
    has_item = bool(roles.get("item")) and bool((out["item"] != "").any())
    dated = int(out["date"].notna().sum()) if roles.get("date") else 0
    return Reviews(out, roles, has_rating, has_item, dated > 0, dated)


# --- highlighting -----------------------------------------------------------------------------

_QUOTE = re.compile(r"「([^「」]+)」")


def evidence_spans(evidence: str, cause: str | None = None) -> list[str]:
    """The quoted words of an evidence string (``product_quality「鞋底开胶」`` → ``鞋底开胶``).
    With ``cause``: only the words quoted for that cause and for the cue phrases (``索要钱财
    demands money「返50」``), not those quoted for the other causes the review lists."""
    spans = []
    for part in (evidence or "").split("; "):
        head = part.split("「", 1)[0].strip()
        if cause is not None and head in BY_ID and head != cause:
            continue
        spans.extend(s for s in _QUOTE.findall(part) if s.strip())
    return list(dict.fromkeys(spans))


def _fold(text: str) -> tuple[str, list[int]]:
    """NFKC + lower-cased ``text`` and, for each folded character, its index in ``text``."""
    chars, where = [], []
    for i, ch in enumerate(text):
        f = unicodedata.normalize("NFKC", ch).lower()
        chars.append(f)
        where.extend([i] * len(f))
    return "".join(chars), where


def highlight(text: str, spans: list[str]) -> str:
    """``text`` HTML-escaped with every occurrence of each span wrapped in ``<mark>``. Spans are
    matched width- and case-insensitively, and in traditional script when the text is written so."""
    folded, where = _fold(text)
    marks = np.zeros(len(text) + 1, dtype=bool)
    for span in spans:
        candidates = {span}
        try:
            from pipeline.normalize import to_traditional

            candidates.add(to_traditional(span))
        except Exception:  # no converter: match as written
            pass
        for cand in candidates:
            key = _fold(cand)[0].strip()
            if not key:
                continue
            at = folded.find(key)
            while at >= 0:
                a, b = where[at], where[at + len(key) - 1] + 1
                marks[a:b] = True
                at = folded.find(key, at + 1)
    out, i = [], 0
    while i < len(text):
        j = i
        while j < len(text) and marks[j] == marks[i]:
            j += 1
        chunk = html.escape(text[i:j])
        out.append(f"<mark>{chunk}</mark>" if marks[i] else chunk)
        i = j
    return "".join(out)


def _clip(text: str, limit: int = MAX_TEXT) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def _clip_middle(name: str, limit: int = 40) -> str:
    """A long id or name cut in its middle: its start and its end stay (ids of one export often
    differ only at the end, and chart labels must stay apart)."""
    return name if len(name) <= limit else name[: limit - 10] + "…" + name[-9:]


# --- charts -----------------------------------------------------------------------------------


def _alt():
    import altair as alt

    return alt


def _base_config(chart):
    return chart.configure(font=FONT_STACK, background="white").configure_view(stroke=None).configure_axis(
        labelFontSize=12, titleFontSize=12, labelColor="#333", titleColor="#333", gridColor="#eee",
    ).configure_legend(labelFontSize=12, titleFontSize=12, labelLimit=320).configure_title(fontSize=14, anchor="start")


def _cause_scale(causes: list[str]):
    alt = _alt()
    return alt.Scale(domain=[_label(c) for c in causes], range=[CAUSE_COLORS[c] for c in causes])


def chart_cause_mix(r: Reviews):
    alt = _alt()
    caused = r.caused
    counts = caused["cause"].value_counts()
    flagged = caused[caused["suspected"]]["cause"].value_counts()
    total = max(len(caused), 1)
    rows = [{"cause": c.id, "label": c.zh, "en": c.en, "reviews": int(counts.get(c.id, 0)),
             "share": round(int(counts.get(c.id, 0)) / total, 4), "dsr": _dsr_label(c.id), "remedy": c.remedy,
             "suspected": int(flagged.get(c.id, 0))} for c in CAUSES]
    frame = pd.DataFrame(rows).sort_values("reviews", ascending=False, kind="stable")
    frame["tag"] = [f"{n} · {s:.0%}" for n, s in zip(frame["reviews"], frame["share"])]
    order = frame["label"].tolist()
    base = alt.Chart(frame)
    y = alt.Y("label:N", sort=order, title=None, axis=alt.Axis(labelLimit=200))
    bars = base.mark_bar(cornerRadiusEnd=2).encode(
        y=y, x=alt.X("reviews:Q", title="评价数 reviews (primary cause)", axis=alt.Axis(tickMinStep=1)),
        color=alt.Color("dsr:N", title="店铺评分维度 DSR", scale=alt.Scale(domain=list(DSR_COLORS), range=list(DSR_COLORS.values())),
                        legend=alt.Legend(orient="bottom", columns=2)),
        tooltip=[alt.Tooltip("label:N", title="原因"), alt.Tooltip("en:N", title="cause"),
                 alt.Tooltip("reviews:Q", title="评价 reviews"), alt.Tooltip("share:Q", title="占比 share", format=".1%"),
                 alt.Tooltip("dsr:N", title="DSR"), alt.Tooltip("remedy:N", title="建议 remedy"),
                 alt.Tooltip("suspected:Q", title="可疑 suspected")],
    )
    text = base.mark_text(align="left", dx=4, color="#333").encode(y=y, x="reviews:Q", text="tag:N")
    return _base_config((bars + text).properties(width=CHART_WIDTH - 120, height=alt.Step(26),
                                                 title="差评原因构成 cause mix (share of reviews with a cause)"))


def fix_first_table(r: Reviews) -> pd.DataFrame:
    """Bad reviews per cause, grouped by DSR dimension: dimensions ordered by the bad reviews
    they hold, causes by theirs within; the buyer side (no DSR dimension) last."""
    bad = r.caused[r.caused["bad"]]
    rows = []
    for c in CAUSES:
        sub = bad[bad["cause"] == c.id]
        if not len(sub):
            continue
        ratings = sub["rating"].dropna()
        rows.append({"cause": c.id, "label": c.zh, "en": c.en, "dsr": _dsr_label(c.id), "bad": len(sub),
                     "stars_lost": float((5 - ratings).sum()) if r.has_rating else np.nan,
                     "mean_rating": float(ratings.mean()) if len(ratings) else np.nan, "remedy": c.remedy,
                     "malicious": c.malicious})
    frame = pd.DataFrame(rows, columns=["cause", "label", "en", "dsr", "bad", "stars_lost", "mean_rating", "remedy", "malicious"])
    if frame.empty:
        return frame.assign(dsr_total=[], rank=[])
    frame["dsr_total"] = frame.groupby("dsr")["bad"].transform("sum")
    frame["_side"] = frame["dsr"] == BUYER_SIDE_DSR
    frame = frame.sort_values(["_side", "dsr_total", "dsr", "bad"], ascending=[True, False, True, False], kind="stable")
    frame["rank"] = range(1, len(frame) + 1)
    return frame.drop(columns="_side").reset_index(drop=True)


def chart_fix_first(r: Reviews, table: pd.DataFrame):
    alt = _alt()
    if table.empty:
        return None
    dims = list(dict.fromkeys(table["dsr"]))
    causes = _present(table["cause"])
    frame = table.assign(stars_lost=table["stars_lost"].round(1), mean_rating=table["mean_rating"].round(2))
    totals = frame.groupby("dsr", sort=False)["bad"].sum().reset_index()
    y = alt.Y("dsr:N", sort=dims, title=None, axis=alt.Axis(labelLimit=200))
    tips = [alt.Tooltip("dsr:N", title="DSR"), alt.Tooltip("label:N", title="原因"), alt.Tooltip("bad:Q", title="差评 bad reviews"),
            alt.Tooltip("remedy:N", title="建议 remedy")]
    if r.has_rating:
        tips += [alt.Tooltip("stars_lost:Q", title="失分 stars lost"), alt.Tooltip("mean_rating:Q", title="平均星级 mean rating")]
    bars = alt.Chart(frame).mark_bar().encode(
        y=y, x=alt.X("bad:Q", stack="zero", title="差评数 bad reviews" + (" (rated ≤ 3)" if r.has_rating else "")),
        color=alt.Color("label:N", title="原因 cause", scale=_cause_scale(causes), legend=alt.Legend(orient="bottom", columns=4)),
        order=alt.Order("rank:Q"), tooltip=tips,
    )
    text = alt.Chart(totals).mark_text(align="left", dx=4, color="#333", fontWeight="bold").encode(
        y=y, x="bad:Q", text="bad:Q")
    return _base_config((bars + text).properties(width=CHART_WIDTH - 140, height=alt.Step(34),
                                                 title="先改什么 what to fix first: bad reviews per DSR dimension"))


def items_frame(r: Reviews, top: int = TOP_ITEMS) -> tuple[pd.DataFrame, int]:
    caused = r.caused[r.caused["item"] != ""]
    totals = caused["item"].value_counts()
    keep = totals.index[:top]
    rest = len(totals) - len(keep)
    item = caused["item"].where(caused["item"].isin(keep), f"其他 {rest} 个商品 other items")
    frame = caused.assign(item=item).groupby(["item", "cause"]).size().rename("reviews").reset_index()
    frame["label"] = frame["cause"].map(_label)
    frame["item_total"] = frame["item"].map(frame.groupby("item")["reviews"].sum())
    return frame, rest


def chart_items(r: Reviews):
    alt = _alt()
    frame, rest = items_frame(r)
    if frame.empty:
        return None
    order = frame.drop_duplicates("item").sort_values("item_total", ascending=False, kind="stable")["item"].tolist()
    if rest:  # "other items" last
        order = [i for i in order if not i.startswith("其他 ")] + [i for i in order if i.startswith("其他 ")]
    causes = _present(frame["cause"])
    chart = alt.Chart(frame).mark_bar().encode(
        y=alt.Y("item:N", sort=order, title=None, axis=alt.Axis(labelLimit=260)),
        x=alt.X("reviews:Q", stack="zero", title="评价数 reviews", axis=alt.Axis(tickMinStep=1)),
        color=alt.Color("label:N", title="原因 cause", scale=_cause_scale(causes), legend=alt.Legend(orient="bottom", columns=4)),
        order=alt.Order("cause:N"),
        tooltip=[alt.Tooltip("item:N", title="商品 item"), alt.Tooltip("label:N", title="原因"),
                 alt.Tooltip("reviews:Q", title="评价 reviews"), alt.Tooltip("item_total:Q", title="该商品合计 item total")],
    )
    return _base_config(chart.properties(width=CHART_WIDTH - 260, height=alt.Step(22),
                                         title=f"各商品的差评原因 causes per item (top {TOP_ITEMS})"))


def weekly_frame(r: Reviews) -> pd.DataFrame:
    caused = r.caused[r.caused["date"].notna()]
    if caused.empty:
        return pd.DataFrame(columns=["week", "cause", "label", "reviews"])
    day = caused["date"].dt.normalize()
    week = day - pd.to_timedelta(day.dt.day_of_week, unit="D")  # Monday
    first = max(week.min(), week.max() - pd.Timedelta(weeks=MAX_WEEKS - 1))
    keep = week >= first
    caused, week = caused[keep], week[keep]
    counts = caused.assign(week=week).groupby(["week", "cause"]).size()
    weeks = pd.date_range(first, week.max() + pd.Timedelta(weeks=1), freq="7D")  # + a closing week: the last step shows
    causes = _present(caused["cause"])
    grid = counts.reindex(pd.MultiIndex.from_product([weeks, causes], names=["week", "cause"]), fill_value=0)
    frame = grid.rename("reviews").reset_index()
    frame["label"] = frame["cause"].map(_label)
    frame["week"] = frame["week"].dt.strftime("%Y-%m-%d")
    return frame


def chart_weekly(r: Reviews):
    alt = _alt()
    frame = weekly_frame(r)
    if frame.empty:
        return None
    causes = _present(frame["cause"])
    order = [_label(c) for c in causes]
    n_weeks = frame["week"].nunique()
    mark = alt.Chart(frame)
    mark = mark.mark_area(interpolate="step-after", line=True, opacity=0.8) if n_weeks > 1 else mark.mark_bar(size=20)
    chart = mark.encode(
        x=alt.X("week:T", title="周 week (Monday)", axis=alt.Axis(format="%Y-%m-%d", labelAngle=0, labelOverlap=True)),
        y=alt.Y("reviews:Q", title=None, axis=alt.Axis(tickMinStep=1, tickCount=2)),
        color=alt.Color("label:N", scale=_cause_scale(causes), legend=None),
        tooltip=[alt.Tooltip("week:T", title="周 week of", format="%Y-%m-%d"), alt.Tooltip("label:N", title="原因"),
                 alt.Tooltip("reviews:Q", title="评价 reviews")],
    ).properties(width=CHART_WIDTH - 130, height=46).facet(
        row=alt.Row("label:N", sort=order, title=None, header=alt.Header(labelAngle=0, labelAlign="left", labelFontSize=12)),
        spacing=6, title="每周趋势 weekly trend per cause",
    )
    return _base_config(chart)


def _group_label(kind: str, group: str, size: int) -> str:
    if kind == "campaign":
        return f"{group} 同文刷评 ×{size}"
    if kind == "buyer":
        return f"买家 {_clip_middle(group[2:])} ×{size}"
    return f"评价 {_clip_middle(group[2:])}"


def chart_suspects(groups: pd.DataFrame):
    alt = _alt()
    if groups.empty:
        return None
    g = groups.drop_duplicates("group").head(MAX_GROUPS)
    frame = pd.DataFrame({
        "label": [_group_label(k, grp, s) for k, grp, s in zip(g["group_kind"], g["group"], g["group_size"])],
        "kind": g["group_kind"].map(KIND_ZH), "size": g["group_size"].astype(int),
        "strength": g["group_strength"].astype(float).round(3), "cause": g["cause_zh"],
    })
    frame["label"] = _unique(frame["label"].tolist())
    y = alt.Y("label:N", sort=frame["label"].tolist(), title=None, axis=alt.Axis(labelLimit=240))
    base = alt.Chart(frame)
    bars = base.mark_bar().encode(
        y=y, x=alt.X("strength:Q", title="可疑程度 group strength (highest malicious_score)", scale=alt.Scale(domain=[0, 1])),
        color=alt.Color("kind:N", title="类型 kind", scale=alt.Scale(domain=list(KIND_ZH.values()), range=list(KIND_COLORS.values())),
                        legend=alt.Legend(orient="bottom")),
        tooltip=[alt.Tooltip("label:N", title="组 group"), alt.Tooltip("kind:N", title="类型 kind"),
                 alt.Tooltip("size:Q", title="评价 reviews"), alt.Tooltip("strength:Q", title="strength", format=".2f"),
                 alt.Tooltip("cause:N", title="原因")],
    )
    text = base.mark_text(align="left", dx=4, color="#333").encode(y=y, x="strength:Q", text=alt.Text("strength:Q", format=".2f"))
    return _base_config((bars + text).properties(width=CHART_WIDTH - 240, height=alt.Step(24),
                                                 title="可疑恶意评价分组 suspected-malicious groups, strongest first"))


def _unique(labels: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for lab in labels:
        seen[lab] = seen.get(lab, 0) + 1
        out.append(lab if seen[lab] == 1 else f"{lab} ({seen[lab]})")
    return out


def confidence_frame(r: Reviews, bins: int = 20) -> pd.DataFrame:
    """Reviews per cause (and uncertain) per confidence bin of width 1/bins; bin centres."""
    rows = r.df[r.df["cause"].isin(CAUSE_IDS + (UNCERTAIN,))]
    b = np.minimum((rows["confidence"].clip(0, 1) * bins).astype(int), bins - 1)
    frame = rows.assign(bin=b).groupby(["cause", "bin"]).size().rename("reviews").reset_index()
    frame["confidence"] = (frame["bin"] + 0.5) / bins
    frame["range"] = [f"{lo / bins:.2f}–{(lo + 1) / bins:.2f}" for lo in frame["bin"]]
    frame["label"] = frame["cause"].map(_label)
    return frame


def chart_confidence(r: Reviews):
    alt = _alt()
    frame = confidence_frame(r)
    if frame.empty:
        return None
    causes = _present(frame["cause"])
    order = [_label(c) for c in causes] + ([SPECIAL_ZH[UNCERTAIN]] if (frame["cause"] == UNCERTAIN).any() else [])
    scale = alt.Scale(domain=order, range=[CAUSE_COLORS[c] for c in causes] + ["#999999"] * (len(order) - len(causes)))
    chart = alt.Chart(frame).mark_circle(opacity=0.8).encode(
        y=alt.Y("label:N", sort=order, title=None, axis=alt.Axis(labelLimit=200)),
        x=alt.X("confidence:Q", title="主因概率 confidence of the primary cause", scale=alt.Scale(domain=[0, 1])),
        size=alt.Size("reviews:Q", title="评价 reviews", scale=alt.Scale(range=[40, 600], zero=False),
                      legend=alt.Legend(orient="bottom")),
        color=alt.Color("label:N", scale=scale, legend=None),
        tooltip=[alt.Tooltip("label:N", title="原因"), alt.Tooltip("range:N", title="confidence"),
                 alt.Tooltip("reviews:Q", title="评价 reviews")],
    )
    return _base_config(chart.properties(width=CHART_WIDTH - 120, height=alt.Step(26),
                                         title="模型把握 how sure the model is: reviews per confidence band"))


# --- HTML ---------------------------------------------------------------------------------------

#: what user text may not bring into the page or its charts (``tables.UNSAFE_CODES``): control
#: characters (the chart renderer aborts the whole process on one in an SVG label), bidi controls
#: (U+202E would turn the page's own figures around: a name could fake a date or a rating beside
#: it) and the noncharacters U+FFFE/U+FFFF; tab, line breaks and the line and paragraph separators
#: become spaces
_DISPLAY = {**dict.fromkeys(UNSAFE_CODES), **dict.fromkeys((0x09, 0x0A, 0x0D, 0x2028, 0x2029), " ")}


def e(value: object) -> str:
    """HTML-escaped text of any value (quotes too: safe in attributes)."""
    return html.escape("" if value is None else str(value), quote=True)


def _script_json(obj: object) -> str:
    """JSON safe inside a <script> element: no ``</script>``, ``<!--`` or line separators."""
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    for a, b in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(a, b)
    return text


def _spec(chart, validate: bool = False) -> dict:
    spec = _no_line_separators(chart.to_dict(validate=validate))
    spec.pop("$schema", None)
    return spec


_SEPARATORS = str.maketrans({"\u2028": " ", "\u2029": " "})


def _no_line_separators(obj):
    """The spec with U+2028/U+2029 in its strings as spaces: Vega compiles sort orders (item
    names, ids) into expressions, where a raw line separator is a syntax error and the chart
    stays blank."""
    if isinstance(obj, str):
        return obj.translate(_SEPARATORS) if ("\u2028" in obj or "\u2029" in obj) else obj
    if isinstance(obj, dict):
        return {k: _no_line_separators(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_no_line_separators(v) for v in obj]
    return obj


@dataclass
class Section:
    key: str
    title: str
    intro: str
    chart: object | None = None
    body: str = ""
    empty: str = ""


@dataclass
class Report:
    html: str
    charts: dict[str, dict] = field(default_factory=dict)  # file stem → Vega-Lite spec
    stats: dict[str, object] = field(default_factory=dict)


def _js_bundle() -> str:
    """Vega, Vega-Lite (the version Altair writes) and Vega-Embed as one script, from vl-convert.
    Bundling takes seconds, so it is kept in ``.cache/`` per vl-convert and Vega-Lite version."""
    import altair as alt
    import vl_convert as vlc

    from pipeline.paths import CACHE

    version = "_".join(alt.SCHEMA_VERSION.lstrip("v").split(".")[:2])
    try:
        from importlib.metadata import version as dist_version

        vlc_version = dist_version("vl-convert-python")
    except Exception:
        vlc_version = "unknown"
    cached = CACHE / f"vega-bundle-{vlc_version}-vl{version}.js"
    try:
        return cached.read_text(encoding="utf-8")
    except OSError:
        pass
    try:
        bundle = vlc.javascript_bundle(vl_version=version)
    except Exception:  # vl-convert without this Vega-Lite version: its newest
        bundle = vlc.javascript_bundle()
    bundle = re.sub(r"</(script)", r"<\\/\1", bundle, flags=re.IGNORECASE)
    try:
        CACHE.mkdir(parents=True, exist_ok=True)
        _write_atomic(cached, bundle.encode("utf-8"))
    except (OSError, InputError):  # a read-only checkout: bundle every time
        pass
    return bundle


_CSS = """
:root { --ink: #222; --muted: #666; --line: #e4e4e4; --accent: #c0392b; }
* { box-sizing: border-box; }
body { font-family: FONT_STACK; color: var(--ink); margin: 0; background: #f6f6f4; line-height: 1.55; font-size: 15px; }
main { max-width: 1080px; margin: 0 auto; padding: 24px 28px 48px; background: #fff; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 20px; margin: 36px 0 6px; padding-top: 12px; border-top: 2px solid var(--ink); }
h3 { font-size: 16px; margin: 18px 0 6px; }
.sub, .intro, .note { color: var(--muted); }
.intro { margin: 0 0 10px; }
.kpis { display: flex; flex-wrap: wrap; gap: 10px; margin: 16px 0 4px; }
.kpi { border: 1px solid var(--line); border-radius: 6px; padding: 8px 14px; min-width: 120px; max-width: 190px; }
.kpi b { display: block; font-size: 22px; }
.kpi span { color: var(--muted); font-size: 13px; }
.kpi.alert b { color: var(--accent); }
nav ul { margin: 8px 0 0; padding-left: 0; list-style: none; columns: 2; }
.chart { margin: 8px 0 12px; min-height: 40px; overflow-x: auto; }
table { border-collapse: collapse; width: 100%; margin: 8px 0 14px; font-size: 14px; }
th, td { border-bottom: 1px solid var(--line); padding: 5px 8px; text-align: left; vertical-align: top; }
th { background: #fafafa; font-weight: 600; white-space: nowrap; }
td.n, th.n { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 6px; vertical-align: baseline; }
mark { background: #ffe08a; color: inherit; padding: 0 1px; border-radius: 2px; }
.review { border-left: 3px solid var(--line); padding: 4px 10px; margin: 6px 0; }
.review .text { white-space: pre-wrap; word-break: break-word; }
.review .meta, .evidence { color: var(--muted); font-size: 13px; word-break: break-word; }
.group { border: 1px solid var(--line); border-radius: 6px; padding: 6px 12px; margin: 10px 0; }
.group h3 { margin: 4px 0; }
.group td:nth-child(2) { width: 42%; }
.group td:nth-child(5) { width: 34%; }
.apart { background: #fafafa; border: 1px dashed #ccc; padding: 6px 12px; border-radius: 6px; }
.empty { color: var(--muted); font-style: italic; }
footer { margin-top: 36px; color: var(--muted); font-size: 12px; }
@media print { body { background: #fff; } main { padding: 0; } .chart { break-inside: avoid; } }
"""


def _stars(rating: float) -> str:
    if rating != rating:  # NaN
        return ""
    return f"{rating:g}★"


def _review_html(row, cause: str | None = None) -> str:
    text = _clip(row.text)
    body = highlight(text, evidence_spans(row.evidence, cause))
    meta = [f"#{e(_clip_middle(row.review_id))}"]
    if row.rating == row.rating:
        meta.append(e(_stars(row.rating)))
    if row.item:
        meta.append(f"商品 {e(_clip(row.item, 40))}")
    if row.date_text:
        meta.append(e(row.date_text))
    meta.append(f"confidence {row.confidence:.2f}")
    ev = f'<div class="evidence">证据 evidence: {e(row.evidence)}</div>' if row.evidence else ""
    return (f'<div class="review"><div class="text">{body or "<span class=empty>(空 empty)</span>"}</div>'
            f'<div class="meta">{" · ".join(meta)}</div>{ev}</div>')


def _table(headers: list[tuple[str, str]], rows: list[list[str]]) -> str:
    """``headers``: (label, css class); ``rows``: cells already HTML-safe."""
    head = "".join(f'<th class="{cls}">{e(h)}</th>' for h, cls in headers)
    body = "".join("<tr>" + "".join(f'<td class="{headers[i][1]}">{c}</td>' for i, c in enumerate(r)) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _swatch(color: str) -> str:
    return f'<span class="swatch" style="background:{color}"></span>'


def _apart_html(r: Reviews) -> str:
    parts = []
    for s in SPECIALS:
        n = int((r.df["cause"] == s).sum())
        parts.append(f"<b>{n}</b> {e(SPECIAL_ZH[s])} {e(SPECIAL_EN[s])}")
    return ('<p class="apart">另计 counted apart (not in the shares): ' + " · ".join(parts) +
            ' — 无差评内容: rated ≥ 4 with no complaint in the text; 无法判断: the model abstained; 空评价: blank text.</p>')


def _section_mix(r: Reviews) -> Section:
    caused = r.caused
    counts = caused["cause"].value_counts()
    flagged = caused[caused["suspected"]]["cause"].value_counts()
    total = max(len(caused), 1)
    order = sorted(CAUSES, key=lambda c: -int(counts.get(c.id, 0)))
    rows = [[_swatch(CAUSE_COLORS[c.id]) + f"{e(c.zh)}<br><span class=note>{e(c.en)}</span>",
             str(int(counts.get(c.id, 0))), f"{int(counts.get(c.id, 0)) / total:.1%}", e(_dsr_label(c.id)), e(c.remedy),
             str(int(flagged.get(c.id, 0)))] for c in order]
    body = _table([("原因 cause", ""), ("评价 reviews", "n"), ("占比 share", "n"), ("店铺评分维度 DSR", ""),
                   ("建议 remedy (seed 002)", ""), ("可疑 suspected", "n")], rows) + _apart_html(r)
    return Section("cause-mix", "1 差评原因构成 · Cause mix",
                   f"{len(caused)} reviews have a primary cause; each bar is one cause, coloured by the shop-rating (DSR) "
                   "dimension it lands on. Buyer-side causes (新手, 恶作剧, 同行, 敲诈) land on none: communicate or appeal.",
                   chart_cause_mix(r), body)


def _section_fix(r: Reviews) -> Section:
    table = fix_first_table(r)
    base = "bad reviews (rated ≤ 3)" if r.has_rating else "reviews (the file has no rating column, so every review counts as bad)"
    if table.empty:
        return Section("fix-first", "2 先改什么 · What to fix first", f"No {base} with a cause.", None, "",
                       "没有带原因的差评 no bad review with a cause")
    headers = [("#", "n"), ("店铺评分维度 DSR", ""), ("原因 cause", ""), ("差评 bad", "n")]
    if r.has_rating:
        headers += [("失分 stars lost", "n"), ("平均星级 mean", "n")]
    headers += [("怎么做 what to do", "")]
    rows, seen = [], set()
    for t in table.itertuples():
        dim = "" if t.dsr in seen else f"<b>{e(t.dsr)}</b><br><span class=note>{int(t.dsr_total)} 条</span>"
        seen.add(t.dsr)
        todo = e(t.remedy) + (" <b>(申诉 appeal, do not fix the product)</b>" if t.malicious else "")
        row = [str(t.rank), dim, _swatch(CAUSE_COLORS[t.cause]) + e(t.label), str(int(t.bad))]
        if r.has_rating:
            row += [f"{t.stars_lost:g}", f"{t.mean_rating:.1f}" if t.mean_rating == t.mean_rating else ""]
        rows.append(row + [todo])
    seller = table[table["dsr"] != BUYER_SIDE_DSR]
    top = seller.iloc[0] if len(seller) else None
    lead = (f" Start with <b>{e(top['label'])}</b> ({e(top['dsr'])}): {int(top['bad'])} bad reviews — {e(top['remedy'])}."
            if top is not None else "")
    intro = (f"Causes ranked by the {base} they cost, grouped by the DSR dimension they drag down; dimensions with the most "
             f"bad reviews first, the buyer side (no DSR dimension: communicate or appeal) last."
             + (" Stars lost = Σ(5 − rating)." if r.has_rating else "") + lead)
    return Section("fix-first", "2 先改什么 · What to fix first", intro, chart_fix_first(r, table),
                   _table(headers, rows))


def _section_items(r: Reviews) -> Section:
    title = "3 各商品的差评原因 · Causes per item"
    if not r.has_item:
        return Section("items", title, "", None, "", "这个文件没有商品列 the file has no item column (商品, 宝贝, item …)")
    frame, rest = items_frame(r)
    n_items = r.caused.loc[r.caused["item"] != "", "item"].nunique()
    intro = (f"{n_items} items with a reviewed cause; the {min(n_items, TOP_ITEMS)} with the most reviews, stacked by cause"
             + (f"; the other {rest} items are summed in one bar." if rest else "."))
    return Section("items", title, intro, chart_items(r), "",
                   "" if not frame.empty else "没有带原因的评价 no review with a cause has an item")


def _section_weekly(r: Reviews) -> Section:
    title = "4 每周趋势 · Weekly trend per cause"
    if not r.roles.get("date"):
        return Section("weekly", title, "", None, "", "这个文件没有日期列 the file has no date column (评价时间, date …)")
    chart = chart_weekly(r)
    if chart is None:
        return Section("weekly", title, "", None, "", "日期无法读取 no readable date among the reviews with a cause")
    frame = weekly_frame(r)
    caused = r.caused[r.caused["date"].notna()]
    unread = int(r.df["date"].isna().sum())
    earlier = int((caused["date"].dt.normalize() < pd.Timestamp(frame["week"].min())).sum())
    intro = (f"Reviews with a cause per week (weeks start on Monday), week of {frame['week'].min()} to week of "
             f"{frame['week'].max()}; one row per cause, same scale."
             + (f" {earlier} earlier reviews (more than {MAX_WEEKS} weeks before the last) are left out." if earlier else "")
             + (f" {unread} rows without a readable date are left out." if unread else ""))
    return Section("weekly", title, intro, chart)


def _section_suspects(r: Reviews, groups: pd.DataFrame) -> Section:
    title = "5 可疑恶意评价 · Suspected-malicious groups"
    if groups.empty:
        return Section("suspects", title, "", None, "", "没有可疑恶意评价 no review is flagged suspected malicious")
    n_groups = groups["group"].nunique()
    intro = (f"{len(groups)} flagged reviews in {n_groups} group(s) — campaigns (C1 …: the same text from several buyers), "
             "serial buyers (one buyer, several bad reviews) or single reviews — strongest first, as in the appeal export "
             "(<code>reviewcause suspects</code>). Appeal these with the evidence; do not “fix” the product.")
    blocks = []
    by_id = r.df.set_index("review_id", drop=False)
    by_id = by_id[~by_id.index.duplicated()]
    for gi, (group, sub) in enumerate(groups.groupby("group", sort=False)):
        if gi >= MAX_GROUPS:
            blocks.append(f'<p class="note">… {n_groups - MAX_GROUPS} more group(s) in the appeal export.</p>')
            break
        first = sub.iloc[0]
        head = (f"<h3>{e(_group_label(first['group_kind'], group, int(first['group_size'])))}</h3>"
                f'<div class="note">{e(KIND_ZH[first["group_kind"]])} · {int(first["group_size"])} 条 reviews · '
                f'strength {float(first["group_strength"]):.2f} · 怎么做 what to do: <b>{e(first["what_to_do"])}</b></div>')
        rows = []
        for s in sub.head(MAX_GROUP_ROWS).itertuples():
            row = by_id.loc[s.review_id] if s.review_id in by_id.index else None
            text = highlight(_clip(s.text), evidence_spans(s.evidence))
            who = " · ".join(e(x) for x in (_clip_middle(s.buyer), _clip(s.item, 30), s.date, _stars(row.rating) if row is not None else "") if x)
            rows.append([e(_clip_middle(s.review_id)), f'<div class="text">{text}</div><div class="note">{who}</div>',
                         e(s.cause_zh or s.cause), e(s.malicious_score), f'<span class="evidence">{e(s.evidence)}</span>'])
        more = (f'<p class="note">… and {len(sub) - MAX_GROUP_ROWS} more in the appeal export.</p>'
                if len(sub) > MAX_GROUP_ROWS else "")
        blocks.append(f'<div class="group">{head}' + _table(
            [("评价 id", ""), ("内容 text", ""), ("原因", ""), ("score", "n"), ("证据 evidence", "")], rows) + more + "</div>")
    return Section("suspects", title, intro, chart_suspects(groups), "".join(blocks))


def _section_examples(r: Reviews) -> Section:
    blocks = []
    for c in CAUSES:
        sub = r.df[r.df["cause"] == c.id].sort_values("confidence", ascending=False, kind="stable")
        if sub.empty:
            continue
        reviews = "".join(_review_html(row, c.id) for row in sub.head(EXAMPLES_PER_CAUSE).itertuples())
        blocks.append(f"<h3>{_swatch(CAUSE_COLORS[c.id])}{e(c.zh)} · {e(c.en)} <span class=note>({len(sub)})</span></h3>{reviews}")
    unsure = r.df[r.df["cause"] == UNCERTAIN].sort_values("confidence", ascending=False, kind="stable")
    if len(unsure):
        reviews = "".join(_review_html(row) for row in unsure.head(EXAMPLES_PER_CAUSE).itertuples())
        blocks.append(f"<h3>{e(SPECIAL_ZH[UNCERTAIN])} · uncertain <span class=note>({len(unsure)}, counted apart: "
                      f"read these yourself)</span></h3>{reviews}")
    intro = (f"Up to {EXAMPLES_PER_CAUSE} reviews per cause, the ones the model is surest of, with the words behind the cause "
             "<mark>highlighted</mark> (the quotes of the evidence column). The chart shows how sure the model is of every review.")
    return Section("examples", "6 例子 · Example reviews per cause", intro, chart_confidence(r),
                   "".join(blocks) + _apart_html(r), "" if blocks else "没有带原因的评价 no review with a cause")


def build_report(pred_path: Path | str, title: str | None = None, validate: bool = False,
                 overrides: dict[str, str | None] | None = None) -> Report:
    """The seller's view of a predictions file: the HTML page and its chart specs (``validate``:
    check each spec against the Vega-Lite schema, slower)."""
    df, roles = read_predictions(pred_path, overrides)
    df = df.apply(lambda col: col.astype(str).str.translate(_DISPLAY) if pd.api.types.is_string_dtype(col) else col)
    for role in ("buyer", "item"):  # a very long name quoted in the evidence: cut there as on the rest of the page
        col = roles.get(role)
        if col is not None and col in df and "evidence" in df:
            long = (df[col].str.len() > 40).to_numpy()
            if long.any():
                df.loc[long, "evidence"] = [ev.replace(name, _clip_middle(name)) for ev, name in
                                            zip(df.loc[long, "evidence"], df.loc[long, col])]
    r = load_reviews(df, roles)
    groups = suspect_groups(df, roles)
    sections = [_section_mix(r), _section_fix(r), _section_items(r), _section_weekly(r), _section_suspects(r, groups),
                _section_examples(r)]
    charts: dict[str, dict] = {}
    parts = []
    for i, s in enumerate(sections, 1):
        chart_html = ""
        if s.chart is not None:
            spec = _spec(s.chart, validate)
            charts[f"{i}-{s.key}"] = spec
            cid = f"chart-{s.key}"
            chart_html = (f'<div class="chart" id="{cid}" role="img" aria-label="{e(s.title)}"></div>'
                          f'<script type="application/json" class="vl-spec" data-target="{cid}">{_script_json(spec)}</script>')
        empty = f'<p class="empty">{e(s.empty)}</p>' if s.empty else ""
        intro = f'<p class="intro">{s.intro}</p>' if s.intro else ""
        parts.append(f'<section id="{s.key}"><h2>{e(s.title)}</h2>{intro}{chart_html}{empty}{s.body}</section>')

    caused = r.caused
    bad = int(caused["bad"].sum())
    dates = r.df["date"].dropna()
    span = f"{dates.min():%Y-%m-%d} – {dates.max():%Y-%m-%d}" if len(dates) else ""
    kpis = [(len(r.df), "条评价 reviews in the file"), (len(caused), "条有原因 with a cause"),
            (bad, "条差评 bad reviews" + (" (≤ 3★)" if r.has_rating else "") + " with a cause")]
    kpi_html = "".join(f'<div class="kpi"><b>{n}</b><span>{e(t)}</span></div>' for n, t in kpis)
    kpi_html += (f'<div class="kpi{" alert" if len(groups) else ""}"><b>{len(groups)}</b>'
                 f'<span>条可疑恶意 suspected malicious</span></div>')
    apart = sum(int((r.df["cause"] == s).sum()) for s in SPECIALS)
    kpi_html += f'<div class="kpi"><b>{apart}</b><span>另计 counted apart</span></div>'
    nav = "".join(f'<li><a href="#{s.key}">{e(s.title)}</a></li>' for s in sections)
    name = display_file_name(pred_path)
    title = title or f"差评归因报告 · {name}"
    js = _js_bundle()
    import vl_convert as vlc

    embed = {"renderer": "svg", "actions": False, "formatLocale": vlc.get_format_locale("zh-CN"),
             "timeFormatLocale": vlc.get_time_format_locale("zh-CN")}
    runner = """
(function () {
  var opts = %s;
  var specs = document.querySelectorAll('script.vl-spec');
  var jobs = [];
  specs.forEach(function (el) {
    jobs.push(vegaEmbed('#' + el.getAttribute('data-target'), JSON.parse(el.textContent), opts));
  });
  Promise.all(jobs).then(function () { document.body.setAttribute('data-charts', String(jobs.length)); })
    .catch(function (err) { document.body.setAttribute('data-chart-error', String(err)); console.error(err); });
})();
""" % _script_json(embed)
    csp = ("default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; style-src 'unsafe-inline'; "
           "img-src data: blob:; font-src data:; connect-src 'none'; base-uri 'none'; form-action 'none'")
    page = f"""<!DOCTYPE html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{csp}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="reviewcause">
<title>{e(title)}</title>
<style>{_CSS.replace("FONT_STACK", FONT_STACK)}</style>
</head>
<body>
<main>
<h1>差评归因报告 <span class="sub">· the seller's view</span></h1>
<div class="sub">{e(name)}{" · " + e(span) if span else ""} · generated {datetime.now():%Y-%m-%d %H:%M} by reviewcause</div>
<div class="kpis">{kpi_html}</div>
<nav><ul>{nav}</ul></nav>
<noscript><p class="note">The charts need JavaScript (included in this file, nothing is downloaded); the tables below work without it.</p></noscript>
{"".join(parts)}
<footer>Causes, DSR dimensions and remedies after seed document 002; the model's figures and limits are in the README.
Charts: Vega-Lite via Altair, rendered by Vega-Embed — all inlined, this file works offline.</footer>
</main>
<script>{js}</script>
<script>{runner}</script>
</body>
</html>
"""
    stats = {"rows": len(r.df), "caused": len(caused), "bad": bad, "suspects": len(groups),
             "groups": int(groups["group"].nunique()), "charts": len(charts), "sections": len(sections)}
    return Report(page, charts, stats)


# --- writing ------------------------------------------------------------------------------------


def display_file_name(path: Path | str) -> str:
    """A file's name as text for the page: a name that is not UTF-8 on disk (a GBK name unzipped
    on Linux reaches Python with surrogate escapes, which no page can hold) is read as GB18030,
    else its undecodable bytes shown as �."""
    raw = os.fsencode(Path(path).name)
    for enc in ("utf-8", "gb18030"):
        try:
            return raw.decode(enc)
        except UnicodeDecodeError:
            continue
    return raw.decode("utf-8", "replace")


def check_report_output(path: Path | str, predictions: Path | str) -> Path:
    """Refuse, before any work, an HTML output that cannot be written or is the predictions file."""
    path = Path(path)
    if path.suffix.lower() not in (".html", ".htm"):
        raise InputError(f"{path}: the report is an HTML page; name it .html")
    _writable_place(path)
    if _same_file(path, Path(predictions)):
        raise InputError(f"{path}: is the predictions file itself; choose another output file")
    return path


def _write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through :func:`pipeline.tables.atomic_file` (a temp file beside
    it, renamed into place); one line naming ``path`` when it cannot be written."""
    _writable_place(path)
    with atomic_file(path) as tmp:
        try:
            tmp.write_bytes(data)
        except OSError as exc:
            raise _write_error(path, exc) from None


def cjk_font_available() -> bool | None:
    """True/False when fontconfig can tell whether a Chinese font is installed, else None."""
    fc = shutil.which("fc-list")
    if not fc:
        return None
    try:
        out = subprocess.run([fc, ":lang=zh", "family"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return bool(out.strip())


def export_png(charts: dict[str, dict], folder: Path | str, scale: float = 2.0,
               keep: tuple[Path | str | None, ...] = ()) -> list[Path]:
    """Each chart as ``folder/<n>-<section>.png``, rendered by vl-convert (no browser, offline).
    Refused before anything is written when a chart's file would be one of ``keep`` (the
    predictions read, the report written)."""
    return _render_pngs(charts, check_png_folder(folder, list(charts), keep), scale)


def _render_pngs(charts: dict[str, dict], folder: Path, scale: float = 2.0) -> list[Path]:
    """The charts rendered into a folder :func:`check_png_folder` passed."""
    import vl_convert as vlc

    paths = []
    for name, spec in charts.items():
        path = folder / f"{name}.png"
        _write_atomic(path, vlc.vegalite_to_png(spec, scale=scale))
        paths.append(path)
    return paths


def check_png_folder(folder: Path | str, names: list[str], keep: tuple[Path | str | None, ...] = ()) -> Path:
    """The ``--png`` folder, created, once nothing in it would clash: refused when it is a file,
    cannot be created, or a chart's file would be one of ``keep``."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise InputError(f"{folder}: --png needs a folder, this is a file")
    for other in keep:  # before the folder is made: a refused run leaves nothing behind
        if other is not None and (os.path.abspath(folder) == os.path.abspath(other) or _same_file(folder, Path(other))):
            raise InputError(f"{folder}: is also {other}; --png needs a folder of its own")
    for name in names:
        for other in keep:
            if other is not None and _same_file(folder / f"{name}.png", Path(other)):
                raise InputError(f"{folder / f'{name}.png'}: is {other}; the chart would overwrite it — "
                                 f"choose another --png folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{folder}: cannot create the folder ({exc.strerror})") from None
    if not os.access(folder, os.W_OK):
        raise InputError(f"{folder}: cannot write in the folder (permission denied)")
    return folder


def write_report(pred_path: Path | str, out_path: Path | str | None, png_dir: Path | str | None = None,
                 overrides: dict[str, str | None] | None = None) -> dict[str, object]:
    """Write the HTML report (when ``out_path``) and the chart PNGs (when ``png_dir``)."""
    if out_path is not None:
        check_report_output(out_path, pred_path)
    report = build_report(pred_path, overrides=overrides)
    result: dict[str, object] = dict(report.stats)
    if png_dir is not None:  # its mistakes before the page is written: an error leaves nothing changed
        png_dir = check_png_folder(png_dir, list(report.charts), (pred_path, out_path))
    if out_path is not None:
        _write_atomic(Path(out_path), report.html.encode("utf-8"))
        result["html"] = str(out_path)
        result["bytes"] = len(report.html.encode("utf-8"))
    if png_dir is not None:
        result["png"] = [str(p) for p in _render_pngs(report.charts, png_dir)]
        result["cjk_font"] = cjk_font_available()
    return result
