"""Stage 1 — normalise review text.

* width: Unicode NFKC (full-width ``ＡＢＣ１２３！`` → half-width ``ABC123!``, compatibility
  ideographs → unified ones);
* noise: HTML tags and entities, URLs (kept as the marker ``URL``: a link in a review is itself a
  cue), zero-width characters, stray BOMs, control characters, runs of whitespace;
* runs of one character longer than three are cut to three (``哈哈哈哈哈`` keeps its meaning as
  ``哈哈哈``, and ``！！！`` survives as ``!!!``); emoji are kept;
* variants: a few regional/IME variant phrases are folded (想像 → 想象, 什幺 → 什么);
* script: traditional → simplified with OpenCC ``tw2sp`` (Taiwan vocabulary too: 軟體 → 软件),
  **only when the text contains a character that cannot be simplified Chinese** — one that is
  outside GB2312 and that OpenCC would change. Text that is already simplified is left alone, so
  OpenCC's one-way merges cannot corrupt it (plain ``t2s`` turns 坏 into 坯 and 覆盖 into 复盖).

Every function here is a module-level function so that estimators using it pickle.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Iterable
from functools import lru_cache

import opencc

#: Texts longer than this are scored on their first MAX_CHARS characters.
MAX_CHARS = 2000

URL_MARKER = "URL"

_TAG = re.compile(r"</?[A-Za-z][^<>]{0,300}>|<!--.*?-->", re.S)
_URL = re.compile(
    r"(?:https?:/{0,2}|www\.)[A-Za-z0-9\-._~:/?#\[\]@!$&'*+,;=%]+"
    r"|\b(?:[A-Za-z0-9-]+\.)+(?:com|cn|net|org|tv|cc|me|io|hk|tw)(?:/[A-Za-z0-9\-._~/?#@!$&'*+,;=%]*)?",
    re.I,
)
# zero-width space/joiners, word joiner, BOM, soft hyphen, and lone surrogates (not encodable text)
_INVISIBLE = re.compile("[\u200b-\u200f\u2028\u2029\u2060-\u2064\ufeff\u00ad\ud800-\udfff]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_SPACES = re.compile(r"\s+")
_RUNS = re.compile(r"(.)\1{3,}", re.S)

#: Regional and input-method variants folded to the mainland form after the script step, so a
#: review reads the same whether it was written in simplified or converted from traditional
#: (Taiwan's 想像 survives tw2sp; 什幺 is a common IME slip for 什么 that s2t→t2s turns into 什么).
VARIANT_PHRASES = {
    "想像": "想象", "什幺": "什么", "怎幺": "怎么", "这幺": "这么", "那幺": "那么", "多幺": "多么", "要幺": "要么",
}
_VARIANTS = re.compile("|".join(map(re.escape, VARIANT_PHRASES)))

# CJK Unified Ideographs and Extension A: the characters OpenCC can map.
_CJK_RANGES = ((0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF))


@lru_cache(maxsize=None)
def _converter() -> opencc.OpenCC:
    return opencc.OpenCC("tw2sp")


def _is_gb2312(ch: str) -> bool:
    try:
        ch.encode("gb2312")
    except UnicodeEncodeError:
        return False
    return True


@lru_cache(maxsize=None)
def _traditional_only() -> re.Pattern[str]:
    """A character class of every character that marks a text as traditional script.

    Built from OpenCC itself: the characters that ``t2s`` changes and that are not in GB2312
    (the simplified-Chinese character set). 坏 and 覆 are in GB2312, so they never trigger.
    """
    t2s = opencc.OpenCC("t2s")
    chars = [chr(cp) for lo, hi in _CJK_RANGES for cp in range(lo, hi + 1)]
    converted = t2s.convert("\n".join(chars)).split("\n")
    marks = [c for c, s in zip(chars, converted) if s != c and not _is_gb2312(c)]
    return re.compile("[" + "".join(re.escape(c) for c in marks) + "]")


def is_traditional(text: str) -> bool:
    """True when ``text`` holds at least one character that only traditional script uses."""
    return _traditional_only().search(text) is not None


@lru_cache(maxsize=None)
def _to_traditional() -> opencc.OpenCC:
    return opencc.OpenCC("s2tw")


def to_traditional(text: str) -> str:
    """Simplified → traditional (used only to find a quoted span in a traditional original)."""
    return _to_traditional().convert(text)


def to_simplified(text: str) -> str:
    """Traditional (incl. Taiwan/HK vocabulary) → simplified; simplified text is returned as is."""
    if not is_traditional(text):
        return text
    return _converter().convert(text)


def strip_noise(text: str) -> str:
    """Drop HTML, URLs (→ ``URL``), invisible and control characters; fold whitespace."""
    text = _INVISIBLE.sub("", text)
    if "&" in text:
        text = html.unescape(text)
    if "<" in text:
        text = _TAG.sub(" ", text)
    text = _URL.sub(f" {URL_MARKER} ", text)
    text = _CONTROL.sub(" ", text)
    return _SPACES.sub(" ", text).strip()


def normalize(text: object) -> str:
    """Normalise one review. ``None``/NaN/non-text become ``""``; never raises."""
    if not isinstance(text, str):
        if text is None or (isinstance(text, float) and text != text):
            return ""
        text = str(text)
    text = unicodedata.normalize("NFKC", text[: MAX_CHARS * 2])
    text = strip_noise(text)
    text = to_simplified(text)
    text = _VARIANTS.sub(lambda m: VARIANT_PHRASES[m.group()], text)
    text = _RUNS.sub(r"\1\1\1", text)
    # NFKC again: OpenCC output is already NFKC in practice; this keeps normalize idempotent.
    return unicodedata.normalize("NFKC", text)[:MAX_CHARS].strip()


def normalize_many(texts: Iterable[object]) -> list[str]:
    """Vectorised entry point used as the first step of the model pipeline.

    Accepts any iterable of texts, and also a DataFrame (its ``text`` column, else its first
    column) or a 2-D array, as MLflow's pyfunc wrapper passes them."""
    columns = getattr(texts, "columns", None)
    if columns is not None:
        texts = texts["text"] if "text" in columns else texts.iloc[:, 0]
    elif getattr(texts, "ndim", 1) == 2:
        texts = texts[:, 0]
    return [normalize(t) for t in texts]
