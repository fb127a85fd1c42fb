"""Reading shop exports and writing Excel-safe tables.

Input
  * text files (``.csv``, ``.tsv``, ``.txt`` or any other name): the encoding is detected from
    the bytes — a BOM (UTF-8, UTF-16/32 LE/BE), else strict UTF-8, else GB18030 (⊃ GBK ⊃ GB2312)
    or Big5 (cp950, Big5-HKSCS), chosen by how plausible each decoding is as Chinese text (share
    of common simplified/traditional characters). Anything else (Shift-JIS, latin-1 …) is refused
    with a hint to pass ``encoding=``. The delimiter (comma, tab, semicolon; Excel's ``sep=`` line)
    is sniffed from the header. Rows are parsed by :mod:`csv` (strict quoting) as they are decoded,
    so an undecodable byte or a broken quote is reported with its data row and line.
  * Excel ``.xlsx``/``.xlsm``: the first sheet with a review-text column; formula cells without a
    saved value and other sheets holding data are reported.

  Headers are kept exactly as written (duplicates and blanks too: internally a repeated name
  carries a ``\\x00<n>`` suffix that :func:`display_name` strips on output). Columns are found by
  header aliases, compared after OpenCC t2s, lower-casing and removing spaces, ``_`` and ``-``.
  Every row is read as text, in order; nothing is dropped.

Output (:func:`atomic_csv`): ``.csv``/``.txt`` (comma) or ``.tsv`` (tab) as UTF-8 with BOM and
formula-looking cells escaped with ``'``; ``.xlsx`` as a workbook with a ``predictions`` sheet
(cells are typed text, so nothing is evaluated) and a ``summary`` sheet. Written to a temporary
file beside the target, renamed into place; file mode follows the umask or the replaced file.
"""

from __future__ import annotations

import codecs
import csv
import errno
import io
import itertools
import math
import os
import re
import stat
import sys
import tempfile
import unicodedata
import warnings
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

# one review may be megabytes long (the default limit is 128 KB)
csv.field_size_limit(max(csv.field_size_limit(), (1 << 31) - 1))


class InputError(Exception):
    """A problem with the user's input, reported as one line without a traceback."""


# --- notes and warnings on stderr -------------------------------------------------------------


@dataclass
class _Session:
    quiet: bool = False
    zh_headers: bool = False


_SESSION = _Session()


@contextmanager
def session(quiet: bool = False, zh_headers: bool = False):
    """Options of one command: ``quiet`` silences notes (warnings still print); ``zh_headers``
    writes the prediction columns under Chinese names."""
    global _SESSION
    previous, _SESSION = _SESSION, _Session(quiet=quiet, zh_headers=zh_headers)
    try:
        yield _SESSION
    finally:
        _SESSION = previous


#: code points no message or page shows as they are: C0/C1 controls and DEL, the line and
#: paragraph separators, bidi controls (U+202E turns the text after it around) and the
#: noncharacters U+FFFE/U+FFFF — escaped in messages (:func:`one_line`), dropped from the report's
#: user values (``report._DISPLAY``)
UNSAFE_CODES = (*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0), 0x061C, 0x200E, 0x200F, 0x2028, 0x2029,
                *range(0x202A, 0x202F), *range(0x2066, 0x206A), 0xFFFE, 0xFFFF)
#: a file name with a line break or a terminal escape sequence would break the one line, or act
#: on the terminal: shown escaped
_SHOWN = {c: (f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}") for c in UNSAFE_CODES}


def one_line(message: object) -> str:
    """A message as one printable line: control characters (in file names, cell values) escaped,
    as ``repr`` would show them; a name that is not UTF-8 on disk shown by its bytes."""
    text = str(message).translate(_SHOWN)
    return text.encode("utf-8", "backslashreplace").decode("utf-8") if any("\ud800" <= ch <= "\udfff" for ch in text) else text


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message ('' when it has none): the cause a one-line
    error quotes of a library's many-line message."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""


def note(message: str) -> None:
    """Something the user may like to know (which sheet, which encoding); silenced by ``-q``."""
    if not _SESSION.quiet:
        print(f"reviewcause: note: {one_line(message)}", file=sys.stderr)


def warn(message: str) -> None:
    """Something that changes what is read or written; always printed."""
    print(f"reviewcause: warning: {one_line(message)}", file=sys.stderr)


def _bare(value: object) -> str:
    return str(value).lstrip("\ufeff").strip()


def header_repeats(cells: pd.DataFrame, header: list[str], text: str) -> np.ndarray:
    """Positions of the rows of ``cells`` (the table's columns, in order) that repeat ``header``
    cell for cell, BOM and spaces aside — exports joined end to end (``cat jan.csv feb.csv``).
    Such a row is no review: both engines keep it in the output as ``empty``. ``text`` is the
    column of ``cells`` holding the review text (only rows whose text is the text header's own
    name are compared in full, so a normal chunk costs one vectorised comparison)."""
    if not len(cells):
        return np.empty(0, dtype=np.intp)
    names = [_bare(c) for c in header]
    position = list(cells.columns).index(text)
    column = cells[text].astype(str).str.lstrip("\ufeff").str.strip()
    maybe = np.flatnonzero((column == names[position]).to_numpy())
    return np.asarray([i for i in maybe if [_bare(v) for v in cells.iloc[i].tolist()] == names], dtype=np.intp)


def say_header_repeats(where: str, first_row: int, count: int) -> None:
    """The one warning for :func:`header_repeats` (``first_row``: the 1-based data row)."""
    warn(f"{where}: data row {first_row} repeats the header row (files joined end to end?)"
         + (f", and {count - 1} more in its chunk" if count > 1 else "")
         + "; kept in the output as `empty`, not scored as a review")


# --- columns ----------------------------------------------------------------------------------

#: Header aliases per role, compared after OpenCC t2s, lower-casing and removing spaces, '_' and
#: '-' (so 評價內容 finds 评价内容 and Review_Text finds reviewtext).
ALIASES: dict[str, tuple[str, ...]] = {
    # the most specific first: a table with 评价 (好评/差评) beside 内容 has its text in 内容
    # the specific names before 内容, 评论, 买家评价, 评价: a 评价 (or 买家评价) of 好评/中评/差评 beside
    # 评价详情, 内容 or 评论 is the rating
    "text": ("text", "review", "reviewtext", "reviewcontent", "content", "comment", "commentcontent", "body", "评价内容",
             "评论内容", "评价详情", "初评内容", "评语", "内容", "评论", "买家评价", "评价", "feedback", "feedbackcontent",
             "buyerfeedback", "留言"),
    "id": ("id", "reviewid", "commentid", "评价编号", "评价id", "评论id", "评论编号", "编号", "序号", "订单号", "订单编号",
           "子订单编号", "orderid", "orderno"),
    "rating": ("rating", "score", "star", "stars", "reviewrating", "评分", "评级", "星级", "评价星级", "商品星级", "打分",
               "评价等级", "评价类型", "评价结果", "商品评分", "描述相符评分", "描述相符", "评价", "买家评价"),
    "buyer": ("buyer", "buyernick", "buyername", "nickname", "user", "username", "customer", "customername", "买家昵称",
              "用户昵称", "买家", "昵称", "用户名", "会员名", "用户", "买家账号", "买家名称"),
    # the product before its variant: SKU (颜色:黑;尺码:38) splits one item's burst into many
    "item": ("item", "itemname", "product", "productname", "goods", "商品", "商品名称", "宝贝", "宝贝名称", "产品", "商品标题",
             "商品id", "sku", "shop", "店铺"),
    "date": ("date", "time", "created", "createdat", "datetime", "reviewdate", "reviewtime", "feedbacktime", "commenttime",
             "评价时间", "评论时间", "评价日期", "时间", "日期", "创建时间", "下单时间"),
    "reply": ("reply", "sellerreply", "商家回复", "卖家回复", "回复", "掌柜回复", "解释"),
    # the buyer's follow-up review (追评), where complaints often come: scored with the first one
    "followup": ("followup", "followupreview", "additionalreview", "additionalcomment", "追评内容", "追评", "追加评论",
                 "追加评价", "追加评论内容", "追加评价内容", "追评详情", "二次评价"),
}
ROLES = tuple(ALIASES)

#: Variant characters OpenCC t2s leaves alone but exports use (買家暱稱, 買家帳號).
_HEADER_VARIANTS = str.maketrans({"暱": "昵", "帐": "账"})
_SUFFIX = "\x00"  # internal marker of a repeated header: name + "\x00" + n (a NUL can never be read)


def display_name(column: object) -> str:
    """The header as written in the input (strips the internal duplicate marker)."""
    return str(column).split(_SUFFIX, 1)[0]


@lru_cache(maxsize=4096)
def _key(name: object) -> str:
    from pipeline.normalize import is_traditional

    s = re.sub(r"[\s_\-\ufeff]+", "", display_name(name)).lower()
    if s and (is_traditional(s) or "覆" in s):
        s = _t2s().convert(s)
    return s.translate(_HEADER_VARIANTS)


@lru_cache(maxsize=1)
def _t2s():
    import opencc

    return opencc.OpenCC("t2s")


def _unique(names: list[str]) -> list[str]:
    """Internal column names: the first of a repeated header keeps its name, later ones get a
    ``\\x00<n>`` suffix (shown unchanged on output)."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        k = seen.get(name, 0)
        seen[name] = k + 1
        out.append(name if k == 0 else f"{name}{_SUFFIX}{k}")
    return out


def clip(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters, the last one ``…`` when it was longer."""
    return text if len(text) <= width else text[: width - 1] + "…"


def _listing(columns: list[str], most: int = 30, width: int = 40) -> str:
    """The column names for a message: at most ``most`` of them, each cut to ``width`` characters
    (a file of another kind read as CSV can hold a header of a million characters)."""
    def one(c):
        return clip(display_name(c) or "(blank)", width)

    shown = ", ".join(map(one, columns[:most])) or "none"
    return shown + (f" … and {len(columns) - most} more" if len(columns) > most else "")


def find_columns(columns: list[str], overrides: dict[str, str | None] | None = None, where: str = "input",
                 hint: str = "name it with --text-col", require_text: bool = True) -> dict[str, str | None]:
    """Map each role to a column name (or None). ``overrides`` name columns explicitly; ``hint``
    ends the message when no text column is found (how to name one at this door) — unless
    ``require_text`` is false (a label file may give ids instead of texts)."""
    overrides = {k: v for k, v in (overrides or {}).items() if v}
    roles: dict[str, str | None] = {}
    keys = {_key(c): c for c in reversed(columns)}  # first column wins on duplicates
    taken: set[str] = set()
    by_option: dict[str, str] = {}
    for role in ROLES:  # the columns named by options first: found ones never take them
        if role in overrides:
            name = overrides[role]
            if name not in columns:  # a header's stray spaces ('正文 ') need not be typed
                near = [c for c in columns if str(c).strip() == name.strip()]
                name = near[0] if len(near) == 1 else name
            if name not in columns:
                raise InputError(f"{where}: no column named {name!r} for --{role}-col (columns seen: {_listing(columns)})")
            if name in by_option:  # the text read twice, or a reply scored as the buyer's text
                raise InputError(f"{where}: column {display_name(name)!r} is given to both --{by_option[name]}-col and "
                                 f"--{role}-col; give each option its own column")
            roles[role] = name
            by_option[name] = role
            taken.add(name)
    for role in ROLES:
        if role not in overrides:
            roles[role] = next((keys[a] for a in map(_key, ALIASES[role]) if a in keys and keys[a] not in taken), None)
            if roles[role]:
                taken.add(roles[role])
    roles = {role: roles[role] for role in ROLES}
    if roles["text"] is None and require_text:
        held = next((c for c in by_option if any(_key(c) == _key(a) for a in ALIASES["text"])), None)
        if held is not None:  # --reply-col 评价内容: the option took the one text column
            raise InputError(f"{where}: the review text column {display_name(held)!r} is given to --{by_option[held]}-col; "
                             f"name the review text with --text-col")
        raise InputError(f"{where}: no review text column found (columns seen: {_listing(columns)}); {hint}")
    return roles


#: rows an export may carry above its header (a title, the shop and the date of the export): the
#: header is looked for this many rows further down when the first row is a title (:func:`_title_row`)
TITLE_ROWS = 5


def _filled(cells: list) -> int:
    return sum(1 for c in cells if c is not None and str(c).strip())


def _names_text(cells: list[str], overrides) -> bool:
    """The row, read as a header, has a review-text column (:func:`find_columns`) — or, when
    ``overrides`` is a function of the row's cells (a label file's header: a ``labels`` column),
    what it says."""
    if callable(overrides):
        return bool(overrides([str(c) for c in cells if c is not None]))
    try:
        find_columns(_unique(cells), overrides)
    except InputError:
        return False
    return True


def _title_row(cells: list[str], overrides) -> bool:
    """A first row that is no header but a title above it: one cell at most, not a text column."""
    return _filled(cells) <= 1 and not _names_text(cells, overrides)


def _header_row(cells: list[str], overrides) -> bool:
    """A row below a title that is the header: two cells or more, one of them the review text."""
    return _filled(cells) >= 2 and _names_text(cells, overrides)


def _only_text(cells: list[str], overrides) -> bool:
    """A row that names the review text and no other column ``score`` reads: one cell (a title
    ``评价``) or a group header (``订单信息,,评价``) — a header of an export names more."""
    if callable(overrides):
        return _filled(cells) == 1 and not _title_row(cells, overrides)
    try:
        roles = find_columns(_unique(cells), overrides)
    except InputError:
        return False
    return sum(v is not None for v in roles.values()) == 1


def _plain_header(cells: list[str], overrides) -> bool:
    """A row that is surely a header, not a review with commas in it ("好评,评价,好评"): distinct
    cells, one the review text, and at least one more column ``score`` reads (id, rating …)."""
    names = [str(c).strip() for c in cells if c is not None and str(c).strip()]
    if len(names) < 2 or len(set(names)) < len(names) or callable(overrides):
        return False
    try:
        roles = find_columns(_unique(cells), overrides)
    except InputError:
        return False
    return sum(v is not None for v in roles.values()) >= 2


def _say_titles(where: str, titles: list[tuple[int, list[str]]], header_at: str) -> None:
    if not titles:  # only blank rows above the header
        return
    first = " ".join(str(c).strip() for c in titles[0][1] if c is not None and str(c).strip())
    warn(f"{where}: {len(titles)} row(s) above the header read as a title, not as reviews (first: {first[:60]!r}); "
         f"header on {header_at}")


def _say_duplicates(columns: list[str], roles: dict[str, str | None], where: str) -> None:
    shown = [display_name(c) for c in columns]
    for role, col in roles.items():
        if col is None:
            continue
        places = [i + 1 for i, c in enumerate(shown) if c == display_name(col)]
        if len(places) > 1:
            used = columns.index(col) + 1
            warn(f"{where}: column {display_name(col)!r} appears {len(places)} times (columns "
                 f"{', '.join(map(str, places))}); column {used} is read as the {role}"
                 f"{' (the first)' if used == places[0] else ''}; all are written back unchanged")


# --- encodings --------------------------------------------------------------------------------

EXCEL_SUFFIXES = {".xlsx", ".xlsm"}
_MAGIC = {
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"GIF8": "a GIF image",
    b"%PDF": "a PDF document",
    b"PK\x03\x04": "a ZIP archive (an .xlsx file? give it the .xlsx suffix)",
    b"\xd0\xcf\x11\xe0": "an old binary Excel/Office file (.xls): save it as .xlsx or CSV",
    b"\x1f\x8b": "a gzip archive",
    b"7z\xbc\xaf": "a 7-Zip archive",
    b"Rar!": "a RAR archive",
}
_BOMS = (  # longest first: the UTF-32 LE BOM starts with the UTF-16 LE one
    (codecs.BOM_UTF32_LE, "utf-32-le"), (codecs.BOM_UTF32_BE, "utf-32-be"), (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"),
)
SAMPLE_BYTES = 1 << 20
#: a decoding counts as Chinese text when at least this share of its non-ASCII characters are
#: common simplified/traditional characters or ordinary punctuation (measured: real GBK/Big5
#: reviews ≥ 0.82 even for 10 reviews; Big5 read as GBK ≤ 0.45, Shift-JIS read as GBK 0.24)
PLAUSIBLE = 0.6
_FAMILY = {"gb2312": "gb", "gbk": "gb", "gb18030": "gb", "cp936": "gb", "big5": "big5", "cp950": "big5",
           "big5hkscs": "big5", "utf_8": "utf-8", "utf_8_sig": "utf-8", "utf_16": "utf-16", "utf_16_le": "utf-16",
           "utf_16_be": "utf-16", "utf_32": "utf-32", "utf_32_le": "utf-32", "utf_32_be": "utf-32"}


@lru_cache(maxsize=1)
def _common_chars() -> frozenset[str]:
    """GB2312 level 1 (the 3,755 most used simplified characters) ∪ Big5 level 1 (5,401 常用字)."""
    chars: set[str] = set()
    for lo, hi, trails, enc in ((0xB0, 0xD7, range(0xA1, 0xFF), "gb2312"),
                                (0xA4, 0xC6, [*range(0x40, 0x7F), *range(0xA1, 0xFF)], "big5")):
        for lead in range(lo, hi + 1):
            for trail in trails:
                try:
                    chars.add(bytes((lead, trail)).decode(enc))
                except UnicodeDecodeError:
                    pass
    # ideographs only: Big5's row C6 also holds Japanese kana, and GBK's kana rows are what Big5
    # text read as GBK turns into (失望 → ア辨)
    return frozenset(ch for ch in chars if "\u3400" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff")


_FINE = re.compile(r"[\u2000-\u206f\u2190-\u21ff\u2460-\u24ff\u25a0-\u27bf\u3000-\u303f\uff01-\uff5e"
                   r"\u00b7\u00d7\u00f7\u00b0\u00b1\U0001f000-\U0001faff\ufe0f\u200d]")


def plausibility(text: str) -> float:
    """Share of the non-ASCII characters of ``text`` that are common Chinese characters (either
    script), CJK/full-width punctuation, symbols or emoji; 1.0 for pure ASCII."""
    rest = [ch for ch in text if ch >= "\x80"][:200_000]
    if not rest:
        return 1.0
    common = _common_chars()
    good = sum(1 for ch in rest if ch in common or _FINE.match(ch))
    return good / len(rest)


#: this many characters beyond ASCII that all decode as UTF-8 make a file UTF-8 (GBK text is
#: valid UTF-8 by chance with probability ~0.16 per character: ~2e-5 for six)
UTF8_SURE = 6


def _one_script(text: str) -> bool:
    """Whether the letters beyond ASCII of ``text`` all belong to one script (Latin, Cyrillic,
    Greek, Hebrew, Arabic, Thai …), as in real text — GBK bytes read as UTF-8 scatter."""
    scripts = set()
    for ch in text:
        if ch >= "\x80" and ch.isalpha():
            scripts.add(unicodedata.name(ch, "?").split(" ")[0])
            if len(scripts) > 1:
                return False
    return bool(scripts) and not scripts & {"CJK", "HANGUL", "HIRAGANA", "KATAKANA"}


def _family(enc: str) -> str:
    name = codecs.lookup(enc).name.replace("-", "_")
    return _FAMILY.get(name, name)


def _same_reading(detected: str, given: str) -> bool:
    """Whether a given encoding reads the bytes as the detected one does: the same family, and
    no byte order that contradicts the detected one (a UTF-16-LE BOM given as utf-16-be)."""
    if _family(detected) != _family(given):
        return False
    a, b = codecs.lookup(detected).name, codecs.lookup(given).name
    order = lambda name: name[-3:] if name.endswith(("-le", "-be")) else None  # noqa: E731
    return not (order(a) and order(b) and order(a) != order(b))


def _label(enc: str) -> str:
    return {"utf-8-sig": "utf-8 (with BOM)", "cp950": "big5 (cp950)", "big5hkscs": "big5-hkscs"}.get(enc, enc)


def _read_sample(path: Path) -> bytes:
    """The first MB; for larger files also 256 KB from the middle and the end (each cut at line
    starts), so a file that changes encoding late is not taken for what its head is."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(SAMPLE_BYTES)
        if size <= SAMPLE_BYTES:
            return head
        cut = max(head.rfind(b"\n"), 0)
        pieces = [head[:cut + 1] if cut else head]
        for at in (size // 2, max(size - (SAMPLE_BYTES >> 2), SAMPLE_BYTES)):
            fh.seek(at)
            piece = fh.read(SAMPLE_BYTES >> 2)
            start, end = piece.find(b"\n"), piece.rfind(b"\n")
            if 0 <= start < end:
                pieces.append(piece[start + 1:end + 1])
        return b"".join(pieces)


_ENCRYPTED = "EncryptedPackage".encode("utf-16-le")  # the stream of a password-protected .xlsx (an OLE file)


#: markup a back office saves under .xls or .csv: an HTML table, SpreadsheetML 2003 XML
_MARKUP = ((b"<!doctype html", "an HTML page"), (b"<html", "an HTML page"), (b"<table", "an HTML table"),
           (b"<?xml", "an XML file (SpreadsheetML 2003?)"))


def _zip_kind(path: Path) -> str:
    """What a ZIP file holds, from its member names: a workbook (.xlsx), a binary workbook
    (.xlsb), an OpenDocument file, or an archive of other files."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as z:
            names = set(z.namelist())
    except (zipfile.BadZipFile, OSError, ValueError):
        return "a ZIP archive that cannot be opened (damaged)"
    if "xl/workbook.xml" in names:
        return "an Excel workbook (.xlsx): give it the .xlsx suffix"
    if "xl/workbook.bin" in names:
        return "an Excel binary workbook (.xlsb): open it in Excel and save it as .xlsx or CSV"
    inside = sorted(n for n in names if n.lower().endswith((".csv", ".tsv", ".txt", ".xlsx", ".xlsm")))
    if inside:
        return f"a ZIP archive holding {inside[0]}{f' and {len(inside) - 1} more' if len(inside) > 1 else ''}: unzip it and score the file(s) inside"
    return "a ZIP archive: unzip it and score the CSV or Excel file inside"


def _what_magic(path: Path, head: bytes) -> str | None:
    """What a file of another kind is, from its first bytes (None: none we know)."""
    what = next((w for m, w in _MAGIC.items() if head.startswith(m)), None)
    if head.startswith(b"PK\x03\x04"):
        what = _zip_kind(path)
    start = head[:512].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    markup = next((w for m, w in _MARKUP if start.startswith(m)), None)
    if what is None and markup is not None:
        what = (f"{markup}, not a CSV file (a back-office export saved as {path.suffix or 'text'}?): open it in Excel "
                f"and save it as .xlsx or CSV")
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        try:
            with open(path, "rb") as fh:
                encrypted = _ENCRYPTED in fh.read(1 << 20)
        except OSError:
            encrypted = False
        if encrypted:
            what = ("a password-protected (encrypted) Excel workbook: open it in Excel, remove the password "
                    "(File → Info → Protect Workbook) and save it again")
    return what


def _not_a(what: str, kind: str) -> str:
    """``what`` the file is, "not ``kind``", then the advice that follows ``what``'s first ': '."""
    if "not a CSV file" in what:  # markup: composed already
        return what if kind == "a CSV file" else what.replace("not a CSV file", f"not {kind}")
    head, sep, advice = what.partition(": ")
    return f"{head}, not {kind}{sep}{advice}"


def _check_magic(path: Path, head: bytes) -> None:
    if head.startswith(b"PK\x03\x04") and b"mimetypeapplication/vnd.oasis.opendocument.spreadsheet" in head[:100]:
        raise InputError(f"{path}: this is an OpenDocument spreadsheet (.ods), not a CSV file: save it as .xlsx or CSV")
    what = _what_magic(path, head)
    if what:
        raise InputError(f"{path}: this is {_not_a(what, 'a CSV file')}")


def _utf16_without_bom(head: bytes) -> str | None:
    """UTF-16 without a BOM: NUL bytes (the high bytes of ASCII digits, delimiters and line ends,
    the low bytes of characters such as 一, U+4E00) and a decoding that is plausible text with no
    NUL in it. The byte order whose decoding holds line ends wins (the other turns '\\n' into
    U+0A00); without any, the order whose parity holds clearly more NULs (ASCII high bytes)."""
    probe = head[:1 << 16]
    if len(probe) < 8:
        return None
    even, odd = probe[0::2].count(0) / (len(probe) // 2), probe[1::2].count(0) / (len(probe) // 2)
    if max(even, odd) <= 0.002:
        return None
    found = []
    for enc, zeros, other in (("utf-16-le", odd, even), ("utf-16-be", even, odd)):
        try:
            text = head[: len(head) // 2 * 2].decode(enc)
        except UnicodeDecodeError:
            continue
        if "\x00" in text or plausibility(text) < PLAUSIBLE:
            continue
        lines = "\n" in text or "\r" in text
        if lines or (zeros > 0.05 and other < zeros / 3):
            found.append((lines, zeros - other, enc))
    return max(found)[2] if found else None


def _line_of(data: bytes, pos: int, unit: bytes = b"\n") -> int:
    return data.count(unit, 0, pos) + 1


def _decodes(sample: bytes, enc: str) -> tuple[str, int]:
    """``sample`` decoded with ``enc`` (bad bytes as U+FFFD) and the number of bad bytes."""
    text = sample.decode(enc, errors="replace")
    bad = text.count("\ufffd") - sample.decode(enc, errors="ignore").count("\ufffd")
    return text, bad


def _utf8_before_bad(sample: bytes) -> int:
    """How many characters beyond ASCII decode as UTF-8 before the first byte that does not."""
    try:
        sample.decode("utf-8")
        return 0
    except UnicodeDecodeError as exc:
        return sum(1 for ch in sample[:exc.start].decode("utf-8", errors="ignore") if ch >= "\x80")


def _korean(sample: bytes) -> bool:
    """EUC-KR Hangul occupies the bytes of GB2312's common characters, so Korean text reads as
    plausible (garbled) Chinese. Real Chinese read as EUC-KR is rarely all Hangul — but a short
    export of common characters (评价内容, 差评, 坏了 …) is, so Korean also needs Korean spacing:
    words set apart by spaces (Chinese text has next to none). A Chinese tool takes the
    ambiguous case as Chinese."""
    try:
        text = sample.decode("euc_kr")
    except UnicodeDecodeError:
        return False
    rest = [ch for ch in text if ch >= "\x80"]
    hangul = sum(1 for ch in rest if "\uac00" <= ch <= "\ud7a3")
    if not rest or hangul / len(rest) < 0.9:
        return False
    spaced = len(re.findall("[\uac00-\ud7a3] (?=[\uac00-\ud7a3])", text))
    return spaced >= 0.1 * hangul


def _guess_foreign(sample: bytes) -> str:
    """A hint for a file that is not Chinese text."""
    for enc, what, test in (
        ("cp932", "Japanese Shift-JIS (--encoding shift_jis)", lambda ch: "\u3040" <= ch <= "\u30ff"),
        ("euc_kr", "Korean EUC-KR (--encoding euc-kr)", lambda ch: "\uac00" <= ch <= "\ud7a3"),
        ("euc_jp", "Japanese EUC-JP (--encoding euc-jp)", lambda ch: "\u3040" <= ch <= "\u30ff"),
        ("cp1252", "Western latin-1/cp1252 (--encoding cp1252)", lambda ch: ch.isalpha() and ch < "\u0250"),
    ):
        try:
            text = sample.decode(enc)
        except UnicodeDecodeError:
            continue
        rest = [ch for ch in text if ch >= "\x80"]
        if rest and sum(map(test, rest)) / len(rest) >= 0.3:
            return f"; it looks like {what}"
    return ""


def sniff_encoding(path: Path | str, sample: bytes | None = None) -> str:
    """The encoding of a text file, from its bytes:

    * a BOM: ``utf-8-sig``, ``utf-16-le``/``-be``, ``utf-32-le``/``-be``;
    * NUL bytes on one parity: UTF-16 without BOM; any other NUL: refused as binary;
    * ``utf-8`` when the sample decodes (or nearly: a few bad bytes are reported later with their row);
    * else the most plausible strict decoding as Chinese among ``gb18030`` (GBK), ``cp950`` (Big5)
      and ``big5hkscs``; refused when none reaches :data:`PLAUSIBLE`.
    """
    path = Path(path)
    head = _read_sample(path) if sample is None else sample
    _check_magic(path, head)
    for bom, enc in _BOMS:
        if head.startswith(bom):
            if bom == codecs.BOM_UTF8 and _decodes(head[3:], "utf-8")[1] and _utf8_before_bad(head[3:]) < UTF8_SURE:
                # a GBK/Big5 body behind a UTF-8 BOM (a tool prepended one): the body's own reading
                try:
                    body = sniff_encoding(path, head[3:])
                except InputError:
                    body = enc
                if body in ("gb18030", "cp950", "big5hkscs"):
                    return body
            return enc
    if b"\x00" in head:
        enc = _utf16_without_bom(head)
        if enc:
            return enc
        pos = head.index(b"\x00")
        raise InputError(f"{path}: binary data (a NUL byte on line {_line_of(head, pos)}), not a CSV text file")
    if not head.strip(bytes(range(0x80))):  # pure ASCII
        return "utf-8"
    # a multi-byte character may be cut at the end of the sample
    utf8, utf8_bad = _decodes(head, "utf-8")
    multibyte = sum(1 for ch in utf8 if ch >= "\x80" and ch != "\ufffd")
    if utf8_bad == 0 or (multibyte >= 10 and utf8_bad <= max(1, multibyte // 100)):
        if utf8_bad or plausibility(utf8) >= 0.5:
            return "utf-8"
        # valid UTF-8 that is not Chinese (French, Russian … reviews of an AliExpress export): GBK
        # or Big5 bytes form valid UTF-8 by chance only for a character or two (~1 in 6 each), so
        # a few characters, or text in one script, are UTF-8 — never a Chinese misreading
        if multibyte >= UTF8_SURE or _one_script(utf8):
            return "utf-8"
    elif _utf8_before_bad(head) >= UTF8_SURE:
        # UTF-8 up to a stray byte (a row pasted from a GBK file, a lone surrogate): read as
        # UTF-8, and the reader names the row that is not
        return "utf-8"
    best, best_score = None, 0.0
    for enc in ("gb18030", "cp950", "big5hkscs"):
        text, bad = _decodes(head, enc)
        rest = sum(1 for ch in text if ch >= "\x80")
        if bad and bad > max(1, rest // 100):
            continue
        score = plausibility(text)
        if score > best_score + 1e-9:
            best, best_score = enc, score
    chinese = best is not None and best_score >= PLAUSIBLE
    if chinese and not _korean(head):
        return best
    if utf8_bad == 0:  # valid UTF-8 but not Chinese (Cyrillic, Thai …): UTF-8 is unambiguous
        return "utf-8"
    # read as Chinese too (spaced words of common characters read as spaced Hangul): both named
    both = f" — or Chinese {_label(best)} (--encoding {'gbk' if best == 'gb18030' else best}) if it is Chinese" if chinese else ""
    raise InputError(
        f"{path}: cannot tell the text encoding with confidence (not UTF-8, UTF-16, GBK/GB18030 or Big5 "
        f"Chinese{_guess_foreign(head)}{both}); give it with --encoding"
    )


@dataclass(frozen=True)
class _Codec:
    """How to decode a file block by block: the codec, the BOM to skip, the newline code units."""

    name: str  # as given / detected (shown to the user)
    codec: str  # for bytes.decode (byte order resolved, BOM handled by ``skip``)
    skip: int
    lf: bytes
    cr: bytes

    @property
    def width(self) -> int:
        return len(self.lf)


def _codec_for(enc: str, head: bytes) -> _Codec:
    info = codecs.lookup(enc)
    name = info.name
    if name in ("utf-16", "utf-32"):
        bits = name[-2:]
        bom_le = codecs.BOM_UTF16_LE if bits == "16" else codecs.BOM_UTF32_LE
        bom_be = codecs.BOM_UTF16_BE if bits == "16" else codecs.BOM_UTF32_BE
        if head.startswith(bom_be):
            codec, skip = f"utf-{bits}-be", len(bom_be)
        elif head.startswith(bom_le):
            codec, skip = f"utf-{bits}-le", len(bom_le)
        else:
            codec, skip = f"utf-{bits}-le", 0
    elif name == "utf-8-sig" or name == "utf-8":
        codec, skip = "utf-8", 3 if head.startswith(codecs.BOM_UTF8) else 0
    elif name in ("utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"):
        bom = "\ufeff".encode(name)
        codec, skip = name, len(bom) if head.startswith(bom) else 0
    else:  # a UTF-8 BOM a tool put before a legacy-encoded body (GBK, Big5) is no text of it
        codec, skip = enc, 3 if head.startswith(codecs.BOM_UTF8) and info.name not in ("utf-7",) else 0
    return _Codec(enc, codec, skip, "\n".encode(codec), "\r".encode(codec))


class _BadBytes(Exception):
    def __init__(self, reason: str, byte: bytes):
        super().__init__(reason)
        self.reason, self.byte = reason, byte


class _NulChar(Exception):
    pass


def _rfind_unit(data: bytes, unit: bytes, end: int, width: int) -> int:
    """Last aligned position of ``unit`` in ``data[:end]`` (-1 if none)."""
    pos = data.rfind(unit, 0, end)
    while pos >= 0 and pos % width:
        pos = data.rfind(unit, 0, pos + width - 1)
    return pos


def _cut(data: bytes, c: _Codec) -> int:
    """Where to cut ``data`` so that the first part ends with a complete line (0: no cut found).
    Never between CR and LF, never inside a multi-byte character."""
    w = c.width
    pos = _rfind_unit(data, c.lf, len(data), w)
    if pos >= 0:
        return pos + w
    pos = _rfind_unit(data, c.cr, len(data) - w, w)  # a CR as last unit may be followed by LF
    return pos + w if pos >= 0 else 0


def _line_start(data: bytes, pos: int, c: _Codec) -> int:
    w = c.width
    last = max(_rfind_unit(data, c.lf, pos, w), _rfind_unit(data, c.cr, pos, w))
    return last + w if last >= 0 else 0


#: Chinese legacy encodings in which a line of UTF-8 is not an error but silent garbage (GB18030
#: decodes almost any bytes): such files are read line by line where a line is valid UTF-8.
_LEGACY_CJK = frozenset({"gb18030", "gbk", "gb2312", "big5", "big5hkscs", "cp950"})


def _decode(data: bytes, c: _Codec, legacy: bool | str, mixed: list) -> str:
    """``data.decode(c.codec)``, except for the lines of another encoding in an export joined
    from files of two (:func:`_decode_lines`):

    * ``legacy`` true (a GBK/GB18030/Big5 file): a line whose bytes are valid UTF-8 and read as
      Chinese text better than in the file's encoding is read as UTF-8;
    * ``legacy == "utf8"`` (a UTF-8 file): a line that is not UTF-8 but reads as Chinese in
      GB18030 (GBK) or Big5 is read so.

    ``mixed``: [lines switched, lines before ``data``, first switched line, its encoding] —
    updated in place. A byte no reading accepts raises UnicodeDecodeError at its position in
    ``data``, as a plain decode would."""
    if legacy == "utf8":
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return _decode_lines(data, _utf8_or_chinese, mixed)
    if not legacy:
        return data.decode(c.codec)
    return _decode_lines(data, lambda line: _legacy_or_utf8(line, c.codec), mixed)


def _legacy_or_utf8(line: bytes, codec: str) -> tuple[str, str | None]:
    """A line of a legacy-encoded file: UTF-8 when its bytes are UTF-8 reading as Chinese better
    than in ``codec``, else ``codec``; and the encoding switched to (None: the file's own)."""
    if not line.isascii():
        try:
            as_utf8 = line.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            fit = plausibility(as_utf8)
            try:
                as_legacy = plausibility(line.decode(codec))
            except UnicodeDecodeError:
                as_legacy = -1.0
            if fit >= PLAUSIBLE and fit > as_legacy:
                return as_utf8, "utf-8"
    return line.decode(codec), None


def _utf8_or_chinese(line: bytes) -> tuple[str, str | None]:
    """A line of a UTF-8 file: UTF-8, else GB18030 or Big5 where that reads as Chinese text."""
    try:
        return line.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        best, best_fit = None, PLAUSIBLE - 1e-9
        for enc in ("gb18030", "cp950"):
            try:
                text = line.decode(enc)
            except UnicodeDecodeError:
                continue
            fit = plausibility(text)
            if fit > best_fit:
                best, best_fit = (text, enc), fit
        if best is None:
            raise exc
        return best


def _decode_lines(data: bytes, read_line, mixed: list) -> str:
    """``data`` decoded line by line by ``read_line(line) -> (text, encoding switched to or None)``;
    a line's UnicodeDecodeError is raised at its position in ``data``; ``mixed`` (see
    :func:`_decode`) counts the switched lines once the whole block decodes (after a bad byte the
    caller decodes the lines before it again)."""
    out, at, switched = [], 0, []
    for k, line in enumerate(data.split(b"\n")):
        try:
            text, enc = read_line(line)
        except UnicodeDecodeError as exc:
            raise UnicodeDecodeError(exc.encoding, data, at + exc.start, at + exc.end, exc.reason) from None
        out.append(text)
        if enc is not None:
            switched.append((k, enc))
        at += len(line) + 1
    if switched:
        if not mixed[0]:
            mixed[2], mixed[3] = mixed[1] + switched[0][0] + 1, switched[0][1]
        mixed[0] += len(switched)
    return "\n".join(out)


def _text_blocks(path: Path, c: _Codec, block: int = SAMPLE_BYTES) -> Iterator[str]:
    """The decoded text of ``path``, cut at line ends. A bad byte or a NUL raises after the text
    before its line was yielded, so the CSV reader's position names the line. In a legacy
    Chinese encoding, lines of UTF-8 are read as UTF-8, with one warning at the end."""
    try:
        name = codecs.lookup(c.codec).name
    except LookupError:
        name = ""
    legacy = "utf8" if name == "utf-8" else name in _LEGACY_CJK
    mixed = [0, 0, 0, None]
    try:
        yield from _text_block_loop(path, c, block, legacy, mixed)
    finally:
        if mixed[0]:
            lines = f"{mixed[0]} line{'s' if mixed[0] > 1 else ''} (the first: line {mixed[2]}) {'are' if mixed[0] > 1 else 'is'}"
            if legacy == "utf8":
                warn(f"{path}: {lines} {_label(mixed[3])} inside a UTF-8 file (exports of two encodings joined?); "
                     f"read as {_label(mixed[3])}")
            else:
                warn(f"{path}: {lines} UTF-8 inside a {_label(c.name)} file (exports of two encodings joined?); "
                     f"read as UTF-8")


def _text_block_loop(path: Path, c: _Codec, block: int, legacy: bool | str, mixed: list) -> Iterator[str]:
    with open(path, "rb") as fh:
        fh.seek(c.skip)
        carry = b""
        while True:
            chunk = fh.read(block)
            data = carry + chunk
            if not data:
                return
            if chunk:
                cut = _cut(data, c)
                if cut == 0:  # one very long line: read on
                    carry = data
                    continue
                data, carry = data[:cut], data[cut:]
            else:
                carry = b""
            try:
                text = _decode(data, c, legacy, mixed)
            except UnicodeDecodeError as exc:
                start = _line_start(data, exc.start, c)
                if start:
                    yield _decode(data[:start], c, legacy, mixed)
                raise _BadBytes(exc.reason, data[exc.start:exc.end]) from None
            finally:
                if legacy:
                    mixed[1] += data.count(b"\n")
            nul = text.find("\x00")
            if nul >= 0:
                start = max(text.rfind("\n", 0, nul), text.rfind("\r", 0, nul)) + 1
                if start:
                    yield text[:start]
                raise _NulChar()
            yield text
            if not chunk:
                return


_DELIMITERS = {",": "comma", "\t": "tab", ";": "semicolon"}
_SEP_LINE = re.compile(r"^sep=(.)\r?\n?$", re.I)
_ONE_COLUMN = "\x00"  # a one-column file: no delimiter (NUL never survives decoding)


def _first_line(text: str) -> str:
    m = re.search(r"\r\n|\r|\n", text)
    return text[: m.start()] if m else text


def _sniff_delimiter(text: str, tsv: bool = False, titles: dict[str, str | None] | None = None) -> tuple[str, bool]:
    """The delimiter of the header (and whether an Excel ``sep=`` line comes first). ``tsv``:
    the file is named ``.tsv``, so a header with a tab in it is tab-separated whatever commas its
    names hold (``标签(质量,物流)``). ``titles`` (column overrides): a first line that is a title
    above the header (:func:`_title_row`) is passed over, up to :data:`TITLE_ROWS` lines."""
    found = _sniff_from(text, tsv)
    if titles is None or found != (_ONE_COLUMN, False):
        return found
    lines = re.split(r"\r\n|\r|\n", text.lstrip("\r\n"), maxsplit=TITLE_ROWS + 1)
    if not _title_row([lines[0].strip()], titles):
        # one cell that names a review column ("评价") above a header of several columns is a title too
        if len(lines) > 2 and lines[0].strip():
            below = _sniff_from("\n".join(lines[1:]), tsv)
            if below != (_ONE_COLUMN, False) and _plain_header(next(csv.reader([lines[1]], delimiter=below[0]), []), titles):
                return below
        return found
    for k in range(1, min(TITLE_ROWS, len(lines) - 1) + 1):
        below = _sniff_from("\n".join(lines[k:]), tsv)
        if below != (_ONE_COLUMN, False):
            return below
    return found


# openpyxl's own two-line warning for a workbook some non-Excel writers make without a default
# cell style says nothing about the reviews (the cells read the same)
warnings.filterwarnings("ignore", message="Workbook contains no default style", category=UserWarning)

#: leading lines of nothing but spaces, delimiters and quotes (Excel's ",,," for a blank first row)
_BLANK_LINES = re.compile(r"(?:[ \t,;|\"']*(?:\r\n|\r|\n))+")


def _sniff_from(text: str, tsv: bool) -> tuple[str, bool]:
    m = _BLANK_LINES.match(text)
    text = text[m.end():] if m else text
    first = _first_line(text.lstrip("\r\n"))
    m = _SEP_LINE.match(first)
    if m:
        return m.group(1), True
    if tsv and "\t" in first:
        return "\t", False
    probe = text.lstrip("\r\n")[:1 << 16]
    counts = {}
    for d in _DELIMITERS:
        try:
            reader = csv.reader(io.StringIO(probe, newline=""), delimiter=d)
            header = next(reader, [])
            rows = list(itertools.islice(reader, 50))
        except csv.Error:
            continue
        fit = sum(1 for r in rows if len(r) == len(header) or (len(r) == len(header) + 1 and r[-1] == ""))
        counts[d] = (len(header), fit)
    if not counts or max(n for n, _ in counts.values()) <= 1:
        return _ONE_COLUMN, False
    best = max(counts.values())
    return next(d for d, v in counts.items() if v == best), False


@dataclass
class Table:
    """An opened input: its columns, the role of each, and its rows in chunks."""

    path: Path
    columns: list[str]
    roles: dict[str, str | None]
    encoding: str | None
    _chunks: Iterator[pd.DataFrame] = field(repr=False)
    delimiter: str | None = None
    sheet: str | None = None
    header_row: int = 1  # the header's row as a spreadsheet counts it (1-based)

    def chunks(self) -> Iterator[pd.DataFrame]:
        return self._chunks


def _check_file(path: Path) -> None:
    if not path.exists():
        if str(path) == "-":
            raise InputError("-: reading the reviews from standard input is not supported; save them to a file "
                             "(CSV or Excel) and score that")
        if path.is_symlink():
            try:
                path.resolve(strict=True)
            except RuntimeError:  # a loop (Python < 3.13)
                raise InputError(f"{path}: a symbolic link that loops back on itself; point it at the export") from None
            except OSError as exc:
                if getattr(exc, "errno", None) == errno.ELOOP:
                    raise InputError(f"{path}: a symbolic link that loops back on itself; point it at the export") from None
            raise InputError(f"{path}: a symbolic link to {os.readlink(path)!r}, which does not exist")
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, not a file")
    if not os.access(path, os.R_OK):
        raise InputError(f"{path}: not readable (permission denied)")
    st = path.stat()
    if not stat.S_ISREG(st.st_mode):  # a pipe, FIFO or device: read more than once, and may block
        raise InputError(f"{path}: not a regular file (a pipe or device); save the export to a file and score that")
    if st.st_size == 0:
        raise InputError(f"{path}: the file is empty")


def _frame(rows: list[list[str]], columns: list[str], start: int) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=columns, dtype=object) if rows else pd.DataFrame(
        {c: pd.Series([], dtype=object) for c in columns})
    frame.index = pd.RangeIndex(start, start + len(rows))
    return frame


def _choose_encoding(path: Path, encoding: str | None) -> tuple[str, bytes]:
    sample = _read_sample(path)
    if encoding is None:
        return sniff_encoding(path, sample), sample
    try:
        text_codec = codecs.lookup(encoding)._is_text_encoding
    except LookupError:
        text_codec = False
    if not text_codec:  # unknown, or a bytes-to-bytes codec (hex, base64, zlib, rot13 …)
        raise InputError(f"{path}: unknown encoding {encoding!r} (e.g. utf-8, gb18030, big5, utf-16)")
    _check_magic(path, sample)
    # a given encoding is used as given unless the bytes clearly are something else
    try:
        detected = sniff_encoding(path, sample)
    except InputError:
        detected = None
    if detected is None or _same_reading(detected, encoding):
        given, found = codecs.lookup(encoding).name, codecs.lookup(detected).name if detected else ""
        if given in ("utf-16", "utf-32") and found.startswith(given + "-") and not any(sample.startswith(b) for b, _ in _BOMS):
            return detected, sample  # utf-16 given, no BOM: the byte order the bytes show, not the machine's
        return encoding, sample
    c = _codec_for(encoding, sample)
    body = sample[c.skip:]
    body = body[: len(body) // c.width * c.width]
    try:
        text = body.decode(c.codec)
    except UnicodeDecodeError as exc:
        line = _line_of(body, exc.start, c.lf) if c.width == 1 else None
        where = f" on line {line}" if line else ""
        raise InputError(f"{path}: not decodable as {encoding} ({exc.reason}{where}); it looks like "
                         f"{_label(detected)} — drop --encoding or give the right one") from None
    if "\x00" in text or plausibility(text) < PLAUSIBLE:
        raise InputError(f"{path}: read as {encoding} the text is garbled; it looks like {_label(detected)} "
                         f"— drop --encoding or give the right one")
    return encoding, sample


def _doubled_cr(text: str) -> bool:
    """Most lines of the sample end in CR CR LF: what Python's csv writer (CR LF) gives through
    a file opened in Windows text mode (LF → CR LF again). Read as is, every row would be
    followed by a blank one."""
    lf = text.count("\n")
    return lf > 0 and text.count("\r\r\n") > lf / 2  # line breaks inside quoted cells may be plain


def _open_text(path: Path, encoding: str | None, chunksize: int,
               titles=None) -> tuple[list[str], Iterator[pd.DataFrame], str, str, int]:
    """Columns, chunks, encoding, delimiter and the header's line number of a CSV/TSV file.
    ``titles``: the column overrides of a table that needs a text column, or a function telling
    a header row by its cells — then a title row above the header is looked past
    (:data:`TITLE_ROWS`); None reads the first row as the header, whatever it is."""
    enc, sample = _choose_encoding(path, encoding)
    c = _codec_for(enc, sample)
    label = _label(enc)
    if encoding is None and _family(enc) not in ("utf-8",):
        note(f"{path}: read as {label}")
    blocks = _text_blocks(path, c)
    state = {"line": 0, "row": 0}  # lines consumed before the current record; data rows done

    def bad_bytes(exc: _BadBytes, reader) -> InputError:
        line = (reader.line_num if reader else 0) + 1
        what = f"data row {state['row'] + 1} (line {line})" if state.get("header") else f"the header (line {line})"
        shown = " ".join(f"0x{b:02x}" for b in exc.byte[:4])
        return InputError(f"{path}: {what} is not decodable as {label} ({exc.reason}: {shown}); "
                          f"the file is not all {label} — give its encoding with --encoding")

    def csv_error(exc: csv.Error, reader) -> InputError:
        what = f"data row {state['row'] + 1}" if state.get("header") else "the header"
        if "unexpected end of data" in str(exc):
            return InputError(f"{path}: {what}: a quoted cell opened on line {state['line'] + 1} is never closed "
                              f"(a stray '\"'?)")
        return InputError(f"{path}: {what} (line {reader.line_num}): malformed CSV ({exc}); "
                          f"a quoted cell must end at its closing quote")

    def nul(reader) -> InputError:
        return InputError(f"{path}: binary data (a NUL byte on line {(reader.line_num if reader else 0) + 1}), not a CSV text file")

    tsv = path.suffix.lower() == ".tsv"
    try:
        first = next(blocks, "")
        delimiter, sep_line = _sniff_delimiter(first, tsv, titles)
        if titles is not None and (delimiter, sep_line) == (_ONE_COLUMN, False):
            # a title line alone in the first block (a block ends at a LF: the rest may end in CR)
            more = next(blocks, "")
            if more:
                first += more
                delimiter, sep_line = _sniff_delimiter(first, tsv, titles)
    except _BadBytes as exc:
        raise bad_bytes(exc, None) from None
    except _NulChar:
        raise nul(None) from None
    texts = itertools.chain([first], blocks)
    if _doubled_cr(first):
        note(f"{path}: lines end in CR CR LF (a CSV written through a second Windows line-end conversion); "
             f"each read as one line break")
        # blocks end after a LF (never between CR and LF), so no CR CR LF is cut in two
        texts = (t.replace("\r\r\n", "\r\n") for t in texts)
    lines = itertools.chain.from_iterable(io.StringIO(t, newline="") for t in texts)
    reader = csv.reader(lines, delimiter=delimiter, strict=True)

    def record():
        state["line"] = reader.line_num
        try:
            return next(reader, None)
        except _BadBytes as exc:
            raise bad_bytes(exc, reader) from None
        except _NulChar:
            raise nul(reader) from None
        except csv.Error as exc:
            raise csv_error(exc, reader) from None

    pushed: list = []  # a record read ahead and put back: the first data row

    if sep_line:
        record()
    header = record()
    while header is not None and not _filled(header):  # blank lines before the header (also ",,," or spaces)
        header = record()
    if header is None:
        raise InputError(f"{path}: the file is empty (no header row)")
    header_at = reader.line_num
    if titles is not None and _only_text(header, titles):
        # a row whose one known column is the review text ("评价", "订单信息,,评价") with a sure header
        # of several columns below it: a title
        ahead = record()
        if ahead is not None and _plain_header(ahead, titles):
            _say_titles(str(path), [(header_at, header)], f"line {reader.line_num}")
            header, header_at = ahead, reader.line_num
        elif ahead is not None:
            pushed.append(ahead)
    elif titles is not None and _title_row(header, titles):
        above = [(reader.line_num, header)]
        for _ in range(TITLE_ROWS):
            rec = record()
            if rec is None:
                break
            if _header_row(rec, titles):
                _say_titles(str(path), [a for a in above if _filled(a[1])], f"line {reader.line_num}")
                header, header_at = rec, reader.line_num
                break
            above.append((reader.line_num, rec))
        else:
            rec = None
        if rec is None:  # no header below either: the first row's own message
            if not callable(titles):
                find_columns(_unique(header), titles, str(path))
    state["header"] = True
    header_line = header_at
    columns = _unique([h for h in header])
    width = len(columns)
    dname = {",": "','", "\t": "tab", ";": "';'"}.get(delimiter, repr(delimiter))

    def chunks() -> Iterator[pd.DataFrame]:
        rows: list[list[str]] = []
        start = trimmed = short = 0
        first_short = ""
        line = header_line  # last line of the previous record
        try:
            for rec in itertools.chain(pushed, reader) if pushed else reader:  # the hot loop: one length check per row
                if len(rec) != width:
                    n = len(rec)
                    if n == 0:
                        rec = [""] * width
                    elif n < width:
                        rec = rec + [""] * (width - n)
                        short += 1
                        if short == 1:
                            first_short = f"data row {start + len(rows) + 1} (line {line + 1}): {n} of {width}"
                    elif any(rec[width:]):
                        raise InputError(
                            f"{path}: data row {start + len(rows) + 1} (line {line + 1}) has {n} fields but the "
                            f"header has {width}; a cell with an unquoted {dname} in it? Quote that cell")
                    else:
                        rec = rec[:width]
                        trimmed += 1
                rows.append(rec)
                line = reader.line_num
                if len(rows) >= chunksize:
                    yield _frame(rows, columns, start)
                    start += len(rows)
                    rows = []
        except (_BadBytes, _NulChar, csv.Error) as exc:
            state["row"], state["line"] = start + len(rows), line
            if isinstance(exc, _BadBytes):
                raise bad_bytes(exc, reader) from None
            if isinstance(exc, _NulChar):
                raise nul(reader) from None
            raise csv_error(exc, reader) from None
        if rows or start == 0:
            yield _frame(rows, columns, start)
        if trimmed:
            note(f"{path}: {trimmed} row(s) end with empty extra field(s) (a trailing {dname}); dropped")
        if short:
            warn(f"{path}: {short} row(s) have fewer fields than the header (first: {first_short}); padded with "
                 f"blanks — a line break inside an unquoted cell would also look like this")

    def guarded() -> Iterator[pd.DataFrame]:
        try:
            yield from chunks()
        finally:
            blocks.close()

    return columns, guarded(), enc, delimiter, header_line


# --- Excel input ------------------------------------------------------------------------------


#: a number format Excel shows a plain number with: quoted or escaped text around a pattern of
#: 0/#/, and optional decimals ('000000', '"JD"0000', '0.00', '#,##0') — what an id or a price
#: column carries; anything else (dates, %, E+, colours, sections) is read as General
_NUMBER_FORMAT = re.compile(r'^((?:"[^"]*"|\\.)*)([#0,]*0|#[#,]*#|#)(\.[0#]+)?((?:"[^"]*"|\\.)*)$')
_LITERAL = re.compile(r'"([^"]*)"|\\(.)')
_BRACKETS = re.compile(r"\[[^\]]*\]")
_PADDING = re.compile(r"[_*].")


def _formatted(v: int | float, fmt: str) -> str | None:
    """``v`` as Excel shows it under number format ``fmt`` (see ``_NUMBER_FORMAT``), else None."""
    from decimal import ROUND_HALF_UP, Decimal

    # the positive section, without colours/conditions ([Red]) or padding (_) and fill (*)
    # characters: Chinese Excel's 数值 formats are `0_ ` and `0_);[Red]\(0\)`
    fmt = _PADDING.sub("", _BRACKETS.sub("", fmt.split(";", 1)[0]))
    m = _NUMBER_FORMAT.match(fmt)
    if m is None or (isinstance(v, float) and not math.isfinite(v)) or v < 0:
        return None
    before, whole, frac, after = m.groups()
    if whole.endswith(","):
        return None  # a trailing ',' scales by 1,000
    d = Decimal(v) if isinstance(v, int) else Decimal(format(v, ".15g"))  # Excel keeps 15 digits
    if isinstance(v, float) and abs(v) >= 1e15:
        ROUNDED.append(v)  # a long id under a number format (0_ , #,##0) is rounded as under General
    fixed, optional = (frac.count("0"), frac.count("#")) if frac else (0, 0)
    d = d.quantize(Decimal(1).scaleb(-(fixed + optional)), rounding=ROUND_HALF_UP)
    digits = format(d, "f")
    int_part, _, dec_part = digits.partition(".")
    if optional:
        dec_part = dec_part[:fixed] + dec_part[fixed:].rstrip("0")
    int_part = int_part.lstrip("0")
    int_part = int_part.rjust(whole.count("0"), "0")
    if "," in whole and int_part:
        int_part = f"{int(int_part):,}"
    text = int_part + ("." + dec_part if frac else "")
    lit = lambda part: "".join(t[1] if t[1] is not None else t[2] for t in _LITERAL.finditer(part))  # noqa: E731
    return lit(before) + text + lit(after)


_OOXML_ESCAPE = re.compile(r"_x([0-9A-Fa-f]{4})_")


def _unescape_one(m: re.Match) -> str:
    return chr(int(m.group(1), 16))


def ooxml_unescape(column: pd.Series) -> pd.Series:
    """A text column read from a workbook by another reader (pandas), its OOXML escapes decoded
    as :func:`_cell_text` decodes them."""
    s = column.astype(str)
    has = s.str.contains("_x", regex=False)
    return s.where(~has, s[has].str.replace(_OOXML_ESCAPE, _unescape_one, regex=True)) if has.any() else column


#: numbers of more than 15 digits :func:`_cell_text` read as Excel's 15 (the sheet reader says where)
ROUNDED: list[float] = []


def _cell_text(v: object, fmt: str | None = None) -> str:
    import datetime as dt

    if v is None:
        return ""
    if fmt and fmt != "General" and isinstance(v, (int, float)) and not isinstance(v, bool):
        shown = _formatted(v, fmt)
        if shown is not None:
            return shown
    if isinstance(v, str):
        # OOXML's escapes (_x000D_ for a CR, _x005F_ for a literal '_x…_'): what Excel wrote for
        # characters XML cannot hold; openpyxl's streaming reader hands them over undecoded
        return _OOXML_ESCAPE.sub(_unescape_one, v) if "_x" in v else v
    if isinstance(v, bool):
        return "TRUE" if v else "FALSE"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if v.is_integer() and abs(v) < 1e15:
            return str(int(v))
        if v.is_integer() and abs(v) < 1e21:  # a long id stored as a number: its 15 digits, as Excel's `0` shows it
            from decimal import Decimal

            ROUNDED.append(v)

            return format(Decimal(format(v, ".15g")), "f")
        return format(v, ".15g")
    if isinstance(v, dt.datetime):
        return v.isoformat(sep=" ", timespec="seconds")
    if isinstance(v, (dt.date, dt.time)):
        return v.isoformat()
    return str(v)


_FORMULA = re.compile(rb"<(?:\w+:)?f[ >/]")
_ROW_OR_CELL = re.compile(rb'<(?:\w+:)?(row|c)\b[^>]*?\br="([A-Z]*)(\d+)"')


def _scan_sheet(wb, ws) -> tuple[bool, str | None]:
    """One pass over the sheet's XML: whether it holds formulas, and where it stores a row or
    cell behind one before it (row 4 before row 2, cell C2 before A2, a row twice), else None.
    Excel never writes rows out of order, but a script can, and openpyxl's streaming reader
    silently drops what comes "behind" (rows and cells lost, no error). Rows and cells without an
    ``r`` attribute follow the one before them and cannot be out of order. A layout that cannot
    be read: formulas assumed, order left to the reader itself."""
    formulas, last_row, last_col = False, 0, (0, b"")
    try:
        with wb._archive.open(ws._worksheet_path) as fh:
            tail = b""
            while True:
                piece = fh.read(1 << 20)
                data = tail + piece
                cut = data.rfind(b"<") if piece else len(data)  # whole tags only; the rest waits
                if cut < 0:
                    cut = len(data)
                formulas = formulas or _FORMULA.search(data, 0, cut) is not None
                for tag, letters, digits in _ROW_OR_CELL.findall(data, 0, cut):
                    number = int(digits)
                    if tag == b"row":
                        if number <= last_row:
                            return formulas, f"row {number} is stored after row {last_row}"
                        last_row, last_col = number, (0, b"")
                    elif letters:
                        col = (len(letters), letters)  # A < Z < AA: by length, then letters
                        if last_row and number != last_row:
                            return formulas, f"cell {letters.decode()}{number} is stored inside row {last_row}"
                        if col <= last_col:
                            return formulas, f"cell {letters.decode()}{number} is stored after a cell to its right"
                        last_col = col
                if not piece:
                    return formulas, None
                tail = data[cut:]
    except Exception:
        return True, None


def _hidden(ws) -> bool:
    return getattr(ws, "sheet_state", "visible") != "visible"


def _first_row(ws, titles: dict[str, str | None] | None = None) -> tuple[int, list[str], list] | None:
    """``(row number, cells)`` of the sheet's header — its first non-blank row — and the title rows
    looked past above it (``titles``: the column overrides, as :func:`_open_text` takes them)."""
    found, above, one_cell = None, [], False
    for r, row in enumerate(ws.iter_rows(values_only=True), start=1):
        if row and any(v is not None and _cell_text(v) != "" for v in row):
            values = [_cell_text(v) for v in row]
            while values and values[-1] == "":
                values.pop()
            if found is None:
                found = (r, values, [])
                if titles is None:
                    return found
                if not _title_row(values, titles):
                    if not _only_text(values, titles):
                        return found
                    one_cell = True  # a title that names a review column (评价): only a header right below it
                above.append((r, values))
            elif one_cell:
                return (r, values, above) if _plain_header(values, titles) else found
            elif _header_row(values, titles):
                return r, values, above
            else:
                above.append((r, values))
            if r - found[0] >= TITLE_ROWS:
                break
    return found


_BAD_DATE = re.compile(r"Cell ([A-Z]+)(\d+) is marked as a date but the serial value (\S+) is outside the limits for dates")


def _damage_named(rows, where: str, hrow: int):
    """The sheet's rows (pairs: the row's values, its formula cells or None); a workbook damaged
    past its first rows (broken XML, a bad shared-string index, a CRC error, a number cell holding
    text) stops with a one-line error naming the file, the sheet and the last row read, not
    openpyxl's traceback. A date-formatted cell holding a
    number beyond Excel's dates (an order id formatted as a date) keeps its number — openpyxl
    would make it ``#VALUE!`` with a warning of its own — and one warning names the first."""
    from types import SimpleNamespace

    from openpyxl.utils import column_index_from_string

    done, dates, first_date = hrow, 0, None
    while True:
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                row = next(rows)
        except StopIteration:
            break
        except Exception as exc:  # openpyxl and zipfile raise many types for a damaged sheet
            detail = first_line(exc)[:200]
            raise InputError(f"{where}: the workbook is damaged after row {done} ({type(exc).__name__}: {detail}); "
                             f"open it in Excel and save it again, or export the sheet as CSV") from None
        done += 1
        seen = set()  # the formula pass reads the same cell of the row again
        for w in caught:
            m = _BAD_DATE.match(str(w.message))
            if m is None:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
                continue
            cell = f"{m.group(1)}{m.group(2)}"
            if cell in seen:
                continue
            seen.add(cell)
            dates += 1
            first_date = first_date or cell
            j = column_index_from_string(m.group(1)) - 1
            values, formulas = row
            if j < len(values):  # values, or cells when the sheet has formulas
                kept = SimpleNamespace(value=m.group(3)) if hasattr(values[j], "value") else m.group(3)
                row = ((*values[:j], kept, *values[j + 1:]), formulas)
        yield row
    if dates:
        warn(f"{where}: {dates} date-formatted cell(s) hold a number beyond Excel's dates and were read as that "
             f"number (first: {first_date})")


def _open_excel(path: Path, chunksize: int, overrides, need_text: bool = True, header=None) -> Table:
    """The first sheet (in workbook order) whose header row has a review-text column (with
    ``need_text=False``: the first sheet holding data); its header is its first non-blank row."""
    from openpyxl import load_workbook
    from openpyxl.utils import get_column_letter

    with open(path, "rb") as fh:
        head = fh.read(512)
    if not head.startswith(b"PK\x03\x04"):
        what = _what_magic(path, head)
        if what and "password" in what:
            raise InputError(f"{path}: this is {what}")
        if what:
            raise InputError(f"{path}: this is {_not_a(what, 'an Excel workbook')}")
        raise InputError(f"{path}: not an Excel workbook (text? if it is a CSV file, give it the .csv suffix)")
    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for a broken workbook
        kind = _zip_kind(path)
        if not kind.startswith("an Excel workbook") and "damaged" not in kind:  # .xlsb, an archive of CSVs …
            raise InputError(f"{path}: this is {_not_a(kind, 'an .xlsx workbook')}") from None
        raise InputError(f"{path}: cannot read as Excel ({type(exc).__name__}: {exc})") from None
    sheets = [ws for ws in wb.worksheets if hasattr(ws, "iter_rows")]
    for ws in sheets:
        if hasattr(ws, "reset_dimensions"):
            ws.reset_dimensions()
    try:
        firsts = [(ws, _first_row(ws, (overrides or {}) if need_text else header)) for ws in sheets]
    except Exception as exc:
        wb.close()
        raise InputError(f"{path}: cannot read as Excel ({type(exc).__name__}: {exc})") from None
    # visible sheets first: a hidden sheet (stale data the operator cannot see) is read only
    # when no visible one will do
    filled = sorted(((ws, f) for ws, f in firsts if f is not None), key=lambda p: _hidden(p[0]))
    if not filled:
        wb.close()
        raise InputError(f"{path}: the workbook is empty (no sheet holds any cell)")
    chosen, roles, first_error = None, None, None
    if not need_text and header is not None:  # the first sheet whose header row it tells, else the first
        filled = sorted(filled, key=lambda p: not header([str(c) for c in p[1][1]]))
    for ws, (hrow, cells, above) in filled:
        if not need_text:
            chosen = (ws, hrow, cells, above)
            break
        try:
            roles = find_columns(_unique(cells), overrides, f"{path} (sheet {ws.title!r})")
            chosen = (ws, hrow, cells, above)
            break
        except InputError as exc:
            first_error = first_error or exc
    if chosen is None:
        wb.close()
        raise first_error
    ws, hrow, cells, above = chosen
    columns = _unique(cells)
    where = f"{path} (sheet {ws.title!r})"
    if above:
        _say_titles(where, above, f"row {hrow}")
    if roles:
        _say_duplicates(columns, roles, where)
    others = [repr(o.title) + (" (hidden)" if _hidden(o) else "") for o, _ in filled if o is not ws]
    position = f"{sheets.index(ws) + 1} of {len(sheets)}" + (", a hidden sheet" if _hidden(ws) else "")
    if others:
        warn(f"{path}: read sheet {ws.title!r} ({position}); sheet(s) {', '.join(others)} also hold data "
             f"and were not read — move the reviews to one sheet or save that sheet as CSV")
    else:
        note(f"{path}: read sheet {ws.title!r} ({position}), header on row {hrow}")
    width = len(columns)
    formulas, order = _scan_sheet(wb, ws)
    if order:
        wb.close()
        raise InputError(f"{where}: the sheet's rows or cells are stored out of order ({order}), which Excel never writes "
                         f"and which would lose rows; open the file in Excel and save it again, or save the sheet as CSV")

    def rows_of(sheet):  # cells, not values: a number is read with its number format
        return sheet.iter_rows(min_row=hrow + 1)

    def chunks() -> Iterator[pd.DataFrame]:
        wb_f = load_workbook(path, read_only=True, data_only=False) if formulas else None
        missing: list[str] = []
        rounded: set[int] = set()
        ROUNDED.clear()
        try:
            values_iter = rows_of(ws)
            if wb_f is not None:
                fws = wb_f[ws.title]
                if hasattr(fws, "reset_dimensions"):
                    fws.reset_dimensions()
                formula_iter = rows_of(fws)
            else:
                formula_iter = itertools.repeat(None)
            rows: list[list[str]] = []
            pending_blank = 0  # blank rows kept only if a filled row follows: counted, not held
            start = 0
            for r, (row, frow) in enumerate(_damage_named(zip(values_iter, formula_iter), where, hrow), start=hrow + 1):
                if formulas and frow is not None:
                    for cell, fcell in zip(row, frow):
                        if getattr(fcell, "data_type", None) == "f" and cell.value is None:
                            missing.append(f"{get_column_letter(fcell.column)}{r}")
                values = [_cell_text(cell.value, getattr(cell, "number_format", None)) for cell in row]
                if ROUNDED:  # a long id stored as a number: said once per column
                    ROUNDED.clear()
                    for j, cell in enumerate(row[:width]):
                        v = cell.value
                        if isinstance(v, float) and v.is_integer() and 1e15 <= abs(v) < 1e21 and j not in rounded:
                            rounded.add(j)
                            warn(f"{where}: column {display_name(columns[j])!r} holds numbers of more than 15 digits "
                                 f"(cell {get_column_letter(j + 1)}{r}: {values[j]}); they are read as Excel shows "
                                 f"them, to 15 digits, so ids that differ only after that read as one (a buyer so "
                                 f"rounded is no buyer to the batch signals) — format the column as text (文本) "
                                 f"before exporting")
                if len(values) > width:
                    extra = [i for i in range(width, len(values)) if values[i] != ""]
                    if extra:
                        raise InputError(f"{where}: cell {get_column_letter(extra[0] + 1)}{r} holds data but its column "
                                         f"has no header; give the column a header or clear it")
                    values = values[:width]
                elif len(values) < width:
                    values += [""] * (width - len(values))
                if not any(values):
                    # a sheet formatted down to row 1,048,576 has a million of these: a list
                    # per blank row held them all (~1 GB) before the end of the sheet was known
                    pending_blank += 1
                    continue
                while pending_blank:
                    take = min(pending_blank, max(chunksize - len(rows), 1))
                    rows.extend([""] * width for _ in range(take))
                    pending_blank -= take
                    if len(rows) >= chunksize:
                        yield _frame(rows, columns, start)
                        start += len(rows)
                        rows = []
                rows.append(values)
                if len(rows) >= chunksize:
                    yield _frame(rows, columns, start)
                    start += len(rows)
                    rows = []
            if rows or start == 0:
                yield _frame(rows, columns, start)
            if missing:
                warn(f"{where}: {len(missing)} formula cell(s) have no saved value and were read as blank "
                     f"(first: {missing[0]}); open the file in Excel and save it to store the values")
        finally:
            if wb_f is not None:
                wb_f.close()
            wb.close()

    return Table(path, columns, roles, None, chunks(), None, ws.title, header_row=hrow)


def open_table(
    path: Path | str,
    encoding: str | None = None,
    chunksize: int = 20_000,
    overrides: dict[str, str | None] | None = None,
) -> Table:
    """Open a CSV/TSV or Excel file for streaming. All cells come back as ``str`` ('' when blank);
    the chunks' index is the 0-based data row number."""
    path = Path(path)
    _check_file(path)
    if path.suffix.lower() in EXCEL_SUFFIXES:
        return _open_excel(path, chunksize, overrides)
    columns, chunks, enc, delimiter, line = _open_text(path, encoding, chunksize, titles=overrides or {})
    roles = find_columns(columns, overrides, str(path))
    _say_duplicates(columns, roles, str(path))
    return Table(path, columns, roles, enc, chunks, delimiter, header_row=line)


def read_frame(path: Path | str, encoding: str | None = None, keep=None, header=None) -> tuple[pd.DataFrame, str | None]:
    """A whole table (a label file, a predictions file) read like :func:`open_table` (same
    decoding, delimiter, sheet choice), with no column required. Columns are internal names (see
    :func:`display_name`). ``keep(columns)``: the columns to hold, chosen from the header — the
    file is read in chunks of rows and only those columns are kept, so a large file with many
    unused columns is never held whole. ``header(cells)``: tells the header row, which is then
    looked for below title rows (and in a workbook, on the first sheet that has one), as
    ``score`` looks for its text column. The frame's ``attrs["header_row"]``: the header's row as
    a spreadsheet counts it; its index, the 0-based data row."""
    path = Path(path)
    _check_file(path)
    rows = 1 << 30 if keep is None else 50_000
    if path.suffix.lower() in EXCEL_SUFFIXES:
        table = _open_excel(path, rows, None, need_text=False, header=header)
        columns, chunks, enc, line = table.columns, table.chunks(), None, table.header_row
    else:
        columns, chunks, enc, _, line = _open_text(path, encoding, rows, titles=header)
    wanted = None if keep is None else list(keep(list(columns)))
    frames = [chunk if wanted is None else chunk[wanted] for chunk in chunks]
    frame = pd.concat(frames) if len(frames) > 1 else frames[0]
    frame.attrs["header_row"] = line
    return frame, enc


# --- output -----------------------------------------------------------------------------------

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def excel_safe(value: object) -> str:
    """Escape a cell Excel would evaluate (CSV/formula injection): prefix it with ``'``.
    Plain numbers such as ``-3`` or ``+1.5`` are left as they are."""
    s = "" if value is None else str(value)
    if s.startswith(_FORMULA_START) and not _PLAIN_NUMBER.match(s):
        return "'" + s
    return s


def excel_unsafe(column: pd.Series) -> pd.Series:
    """Undo :func:`excel_safe` on a column read back from a CSV that ``score`` wrote: the ``'``
    it put before ``=``, ``+``, ``-``, ``@``, tab or CR is not part of the id, buyer or text (a
    suspects workbook or the report would show ``'-A1024``)."""
    s = column.astype(str)
    quoted = s.str.startswith("'") & s.str[1:2].isin(list(_FORMULA_START)) & ~s.str[1:].str.match(_PLAIN_NUMBER)
    return s.where(~quoted, s.str[1:]) if quoted.any() else column


#: output suffix → format
OUTPUT_FORMATS = {".csv": "csv", ".txt": "csv", ".tsv": "tsv", ".xlsx": "xlsx"}


def output_format(path: Path | str) -> str:
    """``csv``, ``tsv`` or ``xlsx`` from the output file name; InputError for anything else."""
    path = Path(path)
    fmt = OUTPUT_FORMATS.get(path.suffix.lower())
    if fmt is None:
        what = f"a {path.suffix} file" if path.suffix else "a file without an extension"
        raise InputError(f"{path}: cannot write {what}; name the output .csv, .tsv or .xlsx")
    return fmt


def _same_file(a: Path, b: Path) -> bool:
    try:
        sa, sb = os.stat(a), os.stat(b)
        if (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino):
            return True
    except OSError:
        pass
    return os.path.realpath(a) == os.path.realpath(b)


def _writable_place(path: Path) -> None:
    """Refuse an output path that is a directory, in a missing folder, or (through any symlink) a
    pipe, device or socket: the output is written beside it and renamed over it, which would
    replace the device (/dev/full) or the pipe instead of writing to it."""
    if path.is_dir():
        raise InputError(f"{path}: is a directory; give an output file name")
    if not path.parent.exists():
        raise InputError(f"{path}: folder {path.parent} does not exist")
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return  # a new file (or a dangling symlink: its target is created)
    except OSError as exc:
        raise InputError(f"{path}: cannot write ({exc.strerror}); nothing was changed there") from None
    if not stat.S_ISREG(mode):
        raise InputError(f"{path}: not a regular file (a pipe, device or socket); give an output file name")


def check_output(path: Path | str, inputs: dict[str, Path | str | None] | None = None) -> Path:
    """Refuse, before any work, an output that cannot be written or that is one of ``inputs``
    (``{"input file": src, "model file": model}``; same file also through a symlink or hard link)."""
    path = Path(path)
    output_format(path)
    _writable_place(path)
    for what, src in (inputs or {}).items():
        if src is not None and _same_file(path, Path(src)):
            same = f"the {what} itself" if str(path) == str(src) else f"the same file as the {what} {src}"
            raise InputError(f"{path}: is {same}; writing the output there would destroy it — choose another output file")
    return path


def check_model_output(path: Path | str, inputs: list[tuple[str, Path | str]] | None = None) -> Path:
    """Refuse, before training, a model path that cannot be written: a table or page name (a
    label file mistyped as the model), a directory, a missing or read-only folder, a pipe or
    device, or one of ``inputs`` (also through its ``.json`` sidecar)."""
    path = Path(path)
    if path.suffix.lower() in (".csv", ".tsv", ".txt", ".xlsx", ".xlsm", ".xls", ".json", ".html", ".htm", ".parquet"):
        raise InputError(f"{path}: a model file is a joblib pickle, not a {path.suffix} file; name it .joblib")
    _writable_place(path)
    if not os.access(path.parent, os.W_OK):
        raise InputError(f"{path}: cannot write in folder {path.parent} (permission denied)")
    for what, src in inputs or []:
        for out in (path, path.with_suffix(".json")):
            if src is not None and _same_file(out, Path(src)):
                raise InputError(f"{out}: is the {what} {src}; writing the model there would destroy it — choose another file")
    _only_models_replaced(path)
    return path


def _only_models_replaced(path: Path) -> None:
    """A file already at the model path (or its sidecar) is replaced only when it is a model this
    project wrote: ``--model mlflow.db`` or any other file of the user's is refused, not lost."""
    from pipeline.persist import FORMAT, read_meta, sidecar

    side = sidecar(path)
    ours = read_meta(path).get("format") == FORMAT
    for f in (path, side):
        if (f.exists() or f.is_symlink()) and not ours:
            raise InputError(f"{f}: exists and is not a reviewcause model (no {side.name} written by 'reviewcause train' "
                             f"beside it); refusing to overwrite it — choose another --model file")


def _zh_columns() -> dict[str, str]:
    from pipeline.taxonomy import CAUSES

    names = {"review_id": "评价标识", "cause": "原因", "cause_zh": "原因中文", "confidence": "置信度", "causes": "全部原因",
             "dsr": "店铺评分维度", "remedy": "建议", "suspected_malicious": "疑似恶意", "malicious_score": "恶意分",
             "cluster_id": "相似群组", "evidence": "证据"}
    names.update({f"p_{c.id}": f"概率_{c.zh}" for c in CAUSES})
    return names


#: Chinese names of the prediction columns (``--zh-headers``)
ZH_COLUMNS = _zh_columns()


def output_header(columns: list[str], trusted: frozenset[str] | set[str] = frozenset()) -> list[str]:
    """The header as written: input columns as they were, prediction columns in Chinese with
    ``--zh-headers`` (``原因(cause)`` if an input column already has that name)."""
    shown = [display_name(c) for c in columns]
    if not _SESSION.zh_headers:
        return shown
    inputs = {s for c, s in zip(columns, shown) if c not in ZH_COLUMNS}
    out = []
    for c, s in zip(columns, shown):
        zh = ZH_COLUMNS.get(c)
        out.append(s if zh is None else (f"{zh}({c})" if zh in inputs else zh))
    return out


_ENGLISH = {zh: en for en, zh in ZH_COLUMNS.items()}
_BOTH = re.compile(r"^(?P<zh>.+)\((?P<en>[a-z_]+)\)$")


def english_header(column: object) -> str:
    """The inverse of :func:`output_header` for one column: ``原因`` or ``原因(cause)`` → ``cause``;
    any other name as it is."""
    column = str(column)
    m = _BOTH.match(column)
    if m and ZH_COLUMNS.get(m["en"]) == m["zh"]:
        return m["en"]
    return _ENGLISH.get(column, column)


def english_headers(columns: list) -> list[str]:
    """:func:`english_header` of every column of a predictions file, except that a Chinese name
    whose English name another column also has stays as it is: ``原因`` beside ``cause`` (an
    English-headed file) or beside ``原因(cause)`` (what ``--zh-headers`` writes on such a clash)
    is the user's own input column, not the prediction."""
    names = [english_header(c) for c in columns]
    count = Counter(names)
    out = []
    for c, e in zip(map(str, columns), names):
        bare = e != c and not _BOTH.match(c)  # 原因, not 原因(cause) (what --zh-headers writes on a clash)
        out.append(c if bare and count[e] > 1 else e)
    return out


class _Writer:
    """Common state: the output path (for messages) and OSError → one-line InputError."""

    path: Path

    def _fail(self, exc: OSError):
        return _write_error(self.path, exc)


def _write_error(path: Path, exc: OSError) -> InputError:
    return InputError(f"{path}: cannot write ({exc.strerror or exc}); nothing was changed there")


class CsvOut(_Writer):
    """Rows written through ``csv.writer`` with formula escaping.

    ``header(columns, trusted=...)`` names columns this program fills from fixed vocabularies
    and numbers (never user text); they skip the escaping check, every other cell is escaped."""

    def __init__(self, fh, escape: bool = True, path: Path | None = None, delimiter: str = ","):
        self._w = csv.writer(fh, lineterminator="\r\n", delimiter=delimiter)
        self._fh = fh
        self._delimiter = delimiter
        self._escape = escape
        self._cols: list[int] = []
        self.path = path or Path("output")

    def header(self, columns: list[str], trusted: frozenset[str] | set[str] = frozenset()) -> None:
        self._cols = [i for i, c in enumerate(columns) if c not in trusted]
        names = output_header(list(columns), trusted)
        try:
            self._w.writerow([excel_safe(c) for c in names] if self._escape else names)
        except OSError as exc:
            raise self._fail(exc) from None

    def rows(self, rows) -> None:
        if self._escape:
            rows = list(rows)
            for row in rows:
                for k in self._cols:
                    row[k] = excel_safe(row[k])
        try:
            self._w.writerows(rows)
        except OSError as exc:
            raise self._fail(exc) from None

    def renderer(self) -> CsvText:
        """What another process needs to turn rows into this file's text (:meth:`text`)."""
        return CsvText(self._cols if self._escape else [], self._delimiter)

    def text(self, text: str) -> None:
        """Append rows already rendered by :meth:`renderer` (the same characters :meth:`rows` writes)."""
        try:
            self._fh.write(text)
        except OSError as exc:
            raise self._fail(exc) from None

    def close(self) -> None:
        pass

    def discard(self) -> None:
        pass


_FORMULA_FIRST = frozenset(_FORMULA_START)


def excel_safe_all(values: list) -> list[str]:
    """``[excel_safe(v) for v in values]``, calling it only for cells that may need it."""
    first = _FORMULA_FIRST
    return [v if type(v) is str and v[:1] not in first else excel_safe(v) for v in values]


class CsvText:
    """Rows to CSV text exactly as :meth:`CsvOut.rows` writes them (formula escaping of the
    untrusted columns, ``csv.writer`` with CRLF), from cells given column by column; picklable, so
    worker processes render their rows and the writing process only appends text."""

    def __init__(self, escape_cols: list[int], delimiter: str = ","):
        self.escape_cols, self.delimiter = list(escape_cols), delimiter

    def text(self, columns: list[list]) -> str:
        columns = list(columns)
        for k in self.escape_cols:
            columns[k] = excel_safe_all(columns[k])
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\r\n", delimiter=self.delimiter).writerows(zip(*columns))
        return buf.getvalue()


XLSX_MAX_ROWS = 1_048_576
XLSX_MAX_CELL = 32_767
#: a CR too: XML reads a raw CR as LF (Excel writes it as _x000D_)
_ILLEGAL_XML = re.compile(r"[\x00-\x08\x0b-\x0d\x0e-\x1f\ufffe\uffff]|_(?=x[0-9A-Fa-f]{4}_)")
_NUMERIC = frozenset({"confidence", "malicious_score"} | {c for c in ZH_COLUMNS if c.startswith("p_")})


def _xml_safe(s: str) -> str:
    """OOXML escaping of characters XML cannot hold (``_x0001_``), and of a literal ``_xHHHH_``."""
    # the '_' that opens a literal '_xHHHH_' becomes _x005F_ (a lookahead: '_x005F_x000D_' has two)
    return _ILLEGAL_XML.sub(lambda m: f"_x{ord(m.group()):04X}_", s)


class _Sink:
    """The output file as the zip archive sees it; after a failure, further writes are dropped."""

    def __init__(self, fh):
        self._fh = fh
        self.dead = False

    def write(self, data):
        return len(data) if self.dead else self._fh.write(data)

    def flush(self):
        if not self.dead:
            self._fh.flush()

    def __getattr__(self, name):
        return getattr(self._fh, name)


class XlsxOut(_Writer):
    """A workbook: the rows on a ``predictions`` sheet (all input cells typed text, so a cell
    starting with ``=`` is shown, never run), numbers as numbers, and a ``summary`` sheet with the
    count and share of each cause, its Chinese name, DSR dimension and remedy."""

    def __init__(self, fh, path: Path):
        from openpyxl import Workbook

        self._fh = fh
        self.path = path
        self._wb = Workbook(write_only=True)
        self._ws = None
        self._n = 0
        self._numeric: list[int] = []
        self._cause: int | None = None
        self._counts: dict[str, int] = {}
        self._long: list[str] = []
        self._names: list[str] = []

    def header(self, columns: list[str], trusted: frozenset[str] | set[str] = frozenset()) -> None:
        from openpyxl.cell import WriteOnlyCell
        from openpyxl.styles import Font

        columns = list(columns)
        predictions = "cause" in trusted and any(c.startswith("p_") for c in columns)
        title = "predictions" if predictions else ("suspects" if "group_kind" in columns else "data")
        self._ws = self._wb.create_sheet(title)
        self._ws.freeze_panes = "A2"
        self._numeric = [i for i, c in enumerate(columns) if c in trusted and c in _NUMERIC]
        self._cause = columns.index("cause") if predictions else None
        self._names = output_header(columns, trusted)
        bold = Font(bold=True)
        cells = []
        for name in self._names:
            cell = WriteOnlyCell(self._ws, value=_xml_safe(name)[:XLSX_MAX_CELL])
            cell.data_type = "s"
            cell.font = bold
            cells.append(cell)
        self._ws.append(cells)

    def rows(self, rows) -> None:
        from openpyxl.cell import WriteOnlyCell

        ws, numeric, cause = self._ws, self._numeric, self._cause
        for row in rows:
            if self._n + 1 >= XLSX_MAX_ROWS:
                raise InputError(f"{self.path}: more than {XLSX_MAX_ROWS - 1:,} rows do not fit one Excel sheet; "
                                 f"write CSV (-o name.csv)")
            self._n += 1
            out = []
            for k, v in enumerate(row):
                s = "" if v is None else str(v)
                if not s:
                    out.append(None)
                    continue
                if k in numeric:
                    try:
                        out.append(float(s))
                        continue
                    except ValueError:
                        pass
                if _ILLEGAL_XML.search(s):
                    s = _xml_safe(s)
                if len(s) > XLSX_MAX_CELL:
                    self._long.append(f"data row {self._n}, column {self._names[k]!r}")
                    s = s[:XLSX_MAX_CELL]
                cell = WriteOnlyCell(ws, value=s)
                cell.data_type = "s"  # text, even when it starts with '='
                out.append(cell)
            if cause is not None:
                c = str(row[cause])
                self._counts[c] = self._counts.get(c, 0) + 1
            try:
                ws.append(out)
            except OSError as exc:
                raise self._fail(exc) from None

    def close(self) -> None:
        if self._cause is not None:
            self._summary()
        if self._long:
            warn(f"{self.path}: {len(self._long)} cell(s) longer than Excel's {XLSX_MAX_CELL:,}-character limit were "
                 f"cut (first: {self._long[0]}); write CSV to keep them whole")
        import datetime as dt
        from zipfile import ZIP_DEFLATED, ZipFile

        from openpyxl.writer.excel import ExcelWriter

        sink, archive = _Sink(self._fh), None
        try:
            archive = ZipFile(sink, "w", ZIP_DEFLATED, allowZip64=True)
            self._wb.properties.modified = dt.datetime.now(tz=dt.timezone.utc).replace(tzinfo=None)
            ExcelWriter(self._wb, archive).save()
        except OSError as exc:
            sink.dead = True  # let the half-written archive close quietly (no error when it is collected)
            try:
                if archive is not None:
                    archive.close()
            except Exception:
                pass
            raise self._fail(exc) from None

    def discard(self) -> None:
        """After a failure: close openpyxl's row streams and remove its temporary sheet files."""
        from openpyxl.worksheet import _writer

        for ws in getattr(self._wb, "_sheets", []):
            for gen in (getattr(ws, "_rows", None), getattr(getattr(ws, "_writer", None), "xf", None)):
                try:
                    if gen is not None:
                        gen.close()
                except Exception:
                    pass
            out = getattr(getattr(ws, "_writer", None), "out", None)
            if isinstance(out, str):
                try:
                    os.remove(out)
                    _writer.ALL_TEMP_FILES.remove(out)
                except (OSError, ValueError):
                    pass

    def _summary(self) -> None:
        from openpyxl.cell import WriteOnlyCell
        from openpyxl.styles import Font

        from pipeline.predict import SPECIAL_ZH
        from pipeline.taxonomy import CAUSES, EMPTY, NO_COMPLAINT, UNCERTAIN

        ws = self._wb.create_sheet("summary")
        zh = _SESSION.zh_headers
        names = ["原因", "原因中文", "数量", "占比", "店铺评分维度", "建议"] if zh else \
            ["cause", "cause_zh", "count", "share", "dsr", "remedy"]
        bold = Font(bold=True)
        head = []
        for n in names:
            cell = WriteOnlyCell(ws, value=n)
            cell.font = bold
            head.append(cell)
        ws.append(head)
        total = sum(self._counts.values())
        lines = [(c.id, c.zh, c.dsr, c.remedy) for c in CAUSES]
        specials = (NO_COMPLAINT, UNCERTAIN, EMPTY)  # every outcome, so the lines add up to the total
        lines += [(c, SPECIAL_ZH[c], "", "") for c in specials]
        for cid, name, dsr, remedy in lines:
            n = self._counts.get(cid, 0)
            if cid in specials and not n:
                continue
            share = WriteOnlyCell(ws, value=n / total if total else 0.0)
            share.number_format = "0.0%"
            ws.append([cid, name, n, share, dsr, remedy])
        share = WriteOnlyCell(ws, value=1.0 if total else 0.0)
        share.number_format = "0.0%"
        ws.append(["合计" if zh else "total", "", total, share, "", ""])


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _unlink(path: str | Path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


@contextmanager
def atomic_file(path: Path | str):
    """Yield the path of a new temporary file beside ``path``'s target (through a symlink: the
    file it points to), for the caller to write; when the ``with`` body ends, the temp file is
    synced and renamed over the target, so a reader never sees a half-written file. The temp
    name is ``mkstemp``'s (created new, never an existing file); the file gets the mode of the
    file it replaces, else ``0666 & ~umask``. If the body fails, the temp file is removed and the
    exception passes as it is (``path`` untouched); failing to create, sync or rename is one line
    naming ``path``. The one mechanism behind every output this project writes (tables, report,
    charts, the model and its sidecar, Parquet)."""
    path = Path(path)
    target = Path(os.path.realpath(path))
    try:
        mode = os.stat(target).st_mode & 0o7777
    except OSError:
        mode = 0o666 & ~_umask()
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise _write_error(path, exc) from None
    try:
        os.fchmod(fd, mode)
    except OSError as exc:
        os.close(fd)
        _unlink(tmp)
        raise _write_error(path, exc) from None
    os.close(fd)
    try:
        yield Path(tmp)
    except BaseException:
        _unlink(tmp)
        raise
    try:
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
    except OSError as exc:
        _unlink(tmp)
        raise _write_error(path, exc) from None


#: opening the temporary output (a seam for tests that simulate a full disk)
_fdopen = os.fdopen


@contextmanager
def atomic_csv(path: Path | str, bom: bool = True, escape: bool = True):
    """Yield a writer (``header(columns, trusted)``, ``rows(rows)``) for ``path``: CSV/TSV with
    formula escaping, or an ``.xlsx`` workbook, written through :func:`atomic_file` (a temp
    file renamed into place on success). On any error ``path`` is left untouched; an OSError
    (full disk …) is one line naming ``path``."""
    path = Path(path)
    fmt = output_format(path)
    _writable_place(path)
    with atomic_file(path) as tmp:
        fh = writer = None

        def discard():
            if writer is not None:
                writer.discard()
            if fh is not None:
                try:
                    fh.close()
                except OSError:
                    pass

        try:
            fd = os.open(tmp, os.O_WRONLY)
            try:
                if fmt == "xlsx":
                    fh = _fdopen(fd, "wb")
                else:
                    fh = _fdopen(fd, "w", encoding="utf-8-sig" if bom else "utf-8", newline="")
            except BaseException:
                os.close(fd)
                raise
            writer = XlsxOut(fh, path) if fmt == "xlsx" else CsvOut(fh, escape, path, "\t" if fmt == "tsv" else ",")
        except OSError as exc:
            discard()
            raise _write_error(path, exc) from None
        try:
            yield writer
        except BaseException:  # the caller failed: leave the previous output alone
            discard()
            raise
        try:
            writer.close()
            fh.close()
        except OSError as exc:
            discard()
            raise _write_error(path, exc) from None
        except BaseException:
            discard()
            raise


#: the same writer under a name that says it is not only CSV
atomic_table = atomic_csv
