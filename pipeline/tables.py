"""Reading shop exports and writing Excel-safe CSV.

Input: CSV in UTF-8 (with or without BOM) or GBK/GB18030 (detected; ``encoding=`` overrides),
or Excel ``.xlsx``. Columns are found by header aliases (Chinese and English) for the text, id,
rating, buyer, item, date and seller reply. Every row is read as text, in order; nothing is
dropped.

Output: UTF-8 with BOM (Excel shows Chinese correctly), cells that Excel would run as formulas
escaped with a leading ``'``, written to a temporary file and renamed into place.
"""

from __future__ import annotations

import codecs
import csv
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd


class InputError(Exception):
    """A problem with the user's input, reported as one line without a traceback."""


#: Header aliases per role, compared after lower-casing and removing spaces, '_' and '-'.
ALIASES: dict[str, tuple[str, ...]] = {
    "text": ("text", "review", "reviewtext", "content", "comment", "body", "评价内容", "评论内容", "评价", "评论",
             "内容", "买家评价", "初评内容", "评价详情", "评语", "feedback", "buyerfeedback"),
    "id": ("id", "reviewid", "commentid", "评价编号", "评价id", "评论id", "评论编号", "编号", "序号", "订单号", "订单编号",
           "子订单编号", "orderid", "orderno"),
    "rating": ("rating", "score", "star", "stars", "评分", "评级", "星级", "打分", "评价等级", "评价类型", "商品评分", "描述相符评分"),
    "buyer": ("buyer", "buyernick", "nickname", "user", "username", "买家昵称", "买家", "昵称", "用户名", "会员名", "用户", "买家账号"),
    "item": ("item", "product", "sku", "goods", "商品", "商品名称", "宝贝", "宝贝名称", "产品", "商品标题", "商品id", "shop", "店铺"),
    "date": ("date", "time", "created", "createdat", "datetime", "评价时间", "评论时间", "时间", "日期", "创建时间", "下单时间"),
    "reply": ("reply", "sellerreply", "商家回复", "卖家回复", "回复", "掌柜回复", "解释"),
}
ROLES = tuple(ALIASES)

EXCEL_SUFFIXES = {".xlsx", ".xlsm"}
_MAGIC = {
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"GIF8": "a GIF image",
    b"%PDF": "a PDF document",
    b"PK\x03\x04": "a ZIP archive (an .xlsx file? give it the .xlsx suffix)",
    b"\xd0\xcf\x11\xe0": "an old binary Excel/Office file (.xls): save it as .xlsx or CSV",
    b"\x1f\x8b": "a gzip archive",
}


def _key(name: object) -> str:
    return re.sub(r"[\s_\-\ufeff]+", "", str(name)).lower()


def find_columns(columns: list[str], overrides: dict[str, str | None] | None = None, where: str = "input") -> dict[str, str | None]:
    """Map each role to a column name (or None). ``overrides`` name columns explicitly."""
    overrides = {k: v for k, v in (overrides or {}).items() if v}
    roles: dict[str, str | None] = {}
    keys = {_key(c): c for c in reversed(columns)}  # first column wins on duplicates
    taken: set[str] = set()
    for role in ROLES:
        if role in overrides:
            name = overrides[role]
            if name not in columns:
                raise InputError(f"{where}: no column named {name!r} for --{role}-col (columns seen: {', '.join(map(str, columns))})")
            roles[role] = name
        else:
            roles[role] = next((keys[a] for a in map(_key, ALIASES[role]) if a in keys and keys[a] not in taken), None)
        if roles[role]:
            taken.add(roles[role])
    if roles["text"] is None:
        raise InputError(
            f"{where}: no review text column found (columns seen: {', '.join(map(str, columns)) or 'none'}); "
            f"name it with --text-col"
        )
    return roles


def sniff_encoding(path: Path, sample_bytes: int = 1 << 20) -> str:
    """``utf-8-sig`` on a BOM, ``utf-8`` if the sample decodes, else ``gb18030`` (a superset of
    GBK and GB2312), else charset-normalizer's best guess. Raises InputError for binary files."""
    with open(path, "rb") as fh:
        head = fh.read(sample_bytes)
    for magic, what in _MAGIC.items():
        if head.startswith(magic):
            raise InputError(f"{path}: this is {what}, not a CSV file")
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if b"\x00" in head:
        raise InputError(f"{path}: binary data (NUL bytes), not a CSV text file")
    for enc in ("utf-8", "gb18030"):
        try:
            codecs.getincrementaldecoder(enc)().decode(head, final=len(head) < sample_bytes)
            return enc
        except UnicodeDecodeError:
            continue
    from charset_normalizer import from_bytes

    best = from_bytes(head).best()
    if best is None:
        raise InputError(f"{path}: cannot tell the text encoding; give it with --encoding (e.g. gb18030)")
    return best.encoding


@dataclass
class Table:
    """An opened input: its columns, the role of each, and its rows in chunks."""

    path: Path
    columns: list[str]
    roles: dict[str, str | None]
    encoding: str | None
    _chunks: Iterator[pd.DataFrame] = field(repr=False)

    def chunks(self) -> Iterator[pd.DataFrame]:
        return self._chunks


def _check_file(path: Path) -> None:
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, not a file")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: the file is empty")


def open_table(
    path: Path | str,
    encoding: str | None = None,
    chunksize: int = 20_000,
    overrides: dict[str, str | None] | None = None,
) -> Table:
    """Open a CSV or Excel file for streaming. All cells come back as ``str`` ('' when blank)."""
    path = Path(path)
    _check_file(path)
    if path.suffix.lower() in EXCEL_SUFFIXES:
        try:
            frame = pd.read_excel(path, dtype=str, keep_default_na=False, engine="openpyxl")
        except Exception as exc:  # openpyxl raises many types for a broken workbook
            raise InputError(f"{path}: cannot read as Excel ({type(exc).__name__}: {exc})") from None
        frame = frame.fillna("").astype(object)
        columns = [str(c) for c in frame.columns]
        frame.columns = columns
        if not columns:
            raise InputError(f"{path}: the first sheet has no header row")
        roles = find_columns(columns, overrides, str(path))
        chunks = (frame.iloc[i : i + chunksize] for i in range(0, max(len(frame), 1), chunksize))
        return Table(path, columns, roles, None, chunks)
    enc = encoding or sniff_encoding(path)
    try:
        codecs.lookup(enc)
    except LookupError:
        raise InputError(f"{path}: unknown encoding {enc!r}") from None
    try:
        header = pd.read_csv(path, encoding=enc, dtype=object, nrows=0, skip_blank_lines=False)
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not decodable as {enc} ({exc.reason} at byte {exc.start}); try --encoding") from None
    except pd.errors.EmptyDataError:
        raise InputError(f"{path}: the file is empty (no header row)") from None
    except pd.errors.ParserError as exc:
        raise InputError(f"{path}: not a readable CSV ({exc})") from None
    columns = [str(c) for c in header.columns]
    roles = find_columns(columns, overrides, str(path))
    return Table(path, columns, roles, enc, _csv_chunks(path, enc, chunksize))


def _csv_chunks(path: Path, enc: str, chunksize: int) -> Iterator[pd.DataFrame]:
    reader = pd.read_csv(
        path, encoding=enc, dtype=object, keep_default_na=False, na_filter=False,
        chunksize=chunksize, skip_blank_lines=False, encoding_errors="strict",
    )
    done = 0
    try:
        for chunk in reader:
            chunk = chunk.astype(object)
            chunk.columns = [str(c) for c in chunk.columns]
            done += len(chunk)
            yield chunk
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: row {done + 2} onwards is not decodable as {enc} ({exc.reason}); try --encoding") from None
    except pd.errors.ParserError as exc:
        raise InputError(f"{path}: malformed CSV near row {done + 2}: {exc}") from None


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def excel_safe(value: object) -> str:
    """Escape a cell Excel would evaluate (CSV/formula injection): prefix it with ``'``.
    Plain numbers such as ``-3`` or ``+1.5`` are left as they are."""
    s = "" if value is None else str(value)
    if s.startswith(_FORMULA_START) and not _PLAIN_NUMBER.match(s):
        return "'" + s
    return s


class CsvOut:
    """Rows written through ``csv.writer`` with formula escaping.

    ``header(columns, trusted=...)`` names columns this program fills from fixed vocabularies
    and numbers (never user text); they skip the escaping check, every other cell is escaped."""

    def __init__(self, fh, escape: bool = True):
        self._w = csv.writer(fh, lineterminator="\r\n")
        self._escape = escape
        self._cols: list[int] = []

    def header(self, columns: list[str], trusted: frozenset[str] | set[str] = frozenset()) -> None:
        self._cols = [i for i, c in enumerate(columns) if c not in trusted]
        self._w.writerow([excel_safe(c) for c in columns] if self._escape else columns)

    def rows(self, rows) -> None:
        if self._escape:
            rows = list(rows)
            for row in rows:
                for k in self._cols:
                    row[k] = excel_safe(row[k])
        self._w.writerows(rows)


@contextmanager
def atomic_csv(path: Path | str, bom: bool = True, escape: bool = True):
    """Yield a ``CsvOut`` writing to a temp file beside ``path``; rename into place on success.
    On any error the temp file is removed and ``path`` is left untouched."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path}: is a directory; give an output file name")
    if not path.parent.exists():
        raise InputError(f"{path}: folder {path.parent} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8-sig" if bom else "utf-8", newline="") as fh:
            yield CsvOut(fh, escape)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
