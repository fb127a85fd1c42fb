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
import itertools
import re
import unicodedata
from collections.abc import Iterable
from functools import lru_cache

import numpy as np
import opencc

#: Texts longer than this are scored on their first MAX_CHARS characters.
MAX_CHARS = 2000

URL_MARKER = "URL"

#: an image or video marker an export writes in the text for a photo the buyer attached ([图片],
#: 【视频】, (img)): no words of the buyer's (a placeholder's shape; no Chinese a gloss should stop at)
MEDIA_MARK = re.compile(r"[\[【(（]\s*(?:图片|视频|图|img|image|photo|pic|video)\s*[\]】)）]", re.I)
_MEDIA_OPEN = frozenset("[【(（")


def strip_media(text: str, by: str = "") -> str:
    """``text`` without its :data:`MEDIA_MARK` markers (each replaced by ``by``)."""
    return MEDIA_MARK.sub(by, text) if not _MEDIA_OPEN.isdisjoint(text) else text

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

#: Written Cantonese (Hong Kong shops and delivery platforms) → the Mandarin the model learnt, after
#: the script step (so in simplified form: 係 has become 系, 搵 揾, 諗 谂). Applied only to a text
#: holding one of CANTONESE_MARKS — characters Mandarin reviews do not use — so 好易 or 但系 in
#: any other text stay as they are. Longest first; 唔好 is 不好 at the end of a clause, else 不要
#: (唔好买: don't buy).
CANTONESE_MARKS = "唔冇嘅咗佢哋啲嘢睇嚟喺畀揾谂啱嘥嗰攞攰咁"
CANTONESE_PHRASES = {
    "唔该": "谢谢", "唔系": "不是", "系唔系": "是不是", "系咪": "是不是", "但系": "但是", "真系": "真是", "就系": "就是",
    "都系": "都是", "仲系": "还是", "仲未": "还没", "仲要": "还要", "仲有": "还有", "点解": "为什么", "边度": "哪里",
    "边个": "哪个", "几钱": "多少钱", "几多": "多少", "质素": "质量", "铺头": "店铺", "呢间": "这家", "呢个": "这个",
    "呢度": "这里", "呢啲": "这些", "嗰个": "那个", "嗰啲": "那些", "佢哋": "他们", "我哋": "我们", "你哋": "你们",
    "乜嘢": "什么", "啲嘢": "东西", "睇落": "看起来", "好易": "很容易", "啱啱": "刚刚", "而家": "现在", "成日": "总是",
    "琴日": "昨天", "听日": "明天", "今日": "今天", "落单": "下单", "屋企": "家里", "嘥钱": "浪费钱",
    "唔": "不", "冇": "没有", "嘅": "的", "咗": "了", "佢": "他", "哋": "们", "啲": "些", "嘢": "东西", "睇": "看",
    "嚟": "来", "喺": "在", "畀": "给", "揾": "找", "谂": "想", "啱": "对", "嘥": "浪费", "嗰": "那", "攞": "拿", "攰": "累",
    "咁": "这么",
    # 唔好 + a verb of taste or use is "not good to …" (唔好食: not tasty), not "don't"; 唔好意思: sorry
    "唔好意思": "不好意思", "唔好食": "不好吃", "唔好饮": "不好喝", "唔好用": "不好用", "唔好睇": "不好看",
    "唔好玩": "不好玩", "唔好闻": "不好闻", "唔好彩": "运气不好", "好食": "好吃", "好饮": "好喝", "好睇": "好看",
    "喺度": "在这里",
}
#: phrases that are also the start of a Mandarin word (但系统, 然而家具, 两边度数): not folded there
_CANTONESE_NOT_BEFORE = {"系": "统列数", "而家": "具居", "边度": "数", "今日": "头"}
def _cantonese_pattern(phrase: str) -> str:
    tail = next((v for k, v in _CANTONESE_NOT_BEFORE.items() if phrase.endswith(k)), None)
    return re.escape(phrase) + (f"(?![{tail}])" if tail else "")


_CANTONESE = re.compile("|".join(map(_cantonese_pattern, sorted([*CANTONESE_PHRASES, "唔好"], key=len, reverse=True))))
_CANTONESE_MARK = re.compile(f"[{CANTONESE_MARKS}]")
_CANTONESE_END = re.compile(r"[\s,.!?;:，。！？；：、~～]")


def _cantonese(m: re.Match) -> str:
    w = m.group()
    if w == "唔好":
        return "不要" if m.end() < len(m.string) and not _CANTONESE_END.match(m.string, m.end()) else "不好"
    if w == "唔" and (m.end() == len(m.string) or _CANTONESE_END.match(m.string, m.end())):
        return "嗯"  # 唔， alone: the interjection (嗯), not "not"
    return CANTONESE_PHRASES[w]


def fold_cantonese(text: str) -> str:
    """Written Cantonese → Mandarin (:data:`CANTONESE_PHRASES`), for a text with a Cantonese mark."""
    if not _CANTONESE_MARK.search(text):
        return text
    return _CANTONESE.sub(_cantonese, text)


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
    window = MAX_CHARS * 2
    out = _after_nfkc(unicodedata.normalize("NFKC", text[:window]))
    while len(out) < MAX_CHARS and len(text) > window:
        # noise (spaces, markup, a run) ate the window: read further, so that a complaint after
        # 4,500 spaces or 200 <div> tags is not lost — at most ~1.3× the cell's own length in all
        window *= 4
        out = _after_nfkc(unicodedata.normalize("NFKC", text[:window]))
    return out


def _after_nfkc(text: str) -> str:
    """The steps of :func:`normalize` after the first NFKC."""
    text = strip_noise(text)
    text = to_simplified(text)
    text = _VARIANTS.sub(lambda m: VARIANT_PHRASES[m.group()], text)
    text = fold_cantonese(text)
    text = _RUNS.sub(r"\1\1\1", text)
    # NFKC again: OpenCC output is already NFKC in practice; this keeps normalize idempotent.
    return unicodedata.normalize("NFKC", text)[:MAX_CHARS].strip()


def normalize_many(texts: Iterable[object]) -> list[str]:
    """Vectorised entry point used as the first step of the model pipeline.

    Accepts any iterable of texts, and also a DataFrame (its ``text`` column, else its first
    column) or a 2-D array, as MLflow's pyfunc wrapper passes them. The result is
    ``[normalize(t) for t in texts]``, computed for the whole chunk at once (:func:`_normalize_chunk`)."""
    columns = getattr(texts, "columns", None)
    if columns is not None:
        texts = texts["text"] if "text" in columns else texts.iloc[:, 0]
    elif getattr(texts, "ndim", 1) == 2:
        texts = texts[:, 0]
    return _normalize_chunk(list(texts))


_MAX_CODE = 0x110000


@lru_cache(maxsize=None)
def _changing_chars() -> np.ndarray:
    """``table[code point]``: after NFKC, a character that some later step of :func:`normalize`
    may act on by itself — invisible and control characters, whitespace other than the plain
    space, ``&`` and ``<`` (HTML), traditional-only characters (OpenCC). (``.`` before an ASCII
    letter or digit, ``http``, variant phrases, double spaces and runs are found separately.)"""
    table = np.zeros(_MAX_CODE, dtype=bool)
    every = "".join(map(chr, range(0x10000)))  # all of these characters are in the BMP
    for rx in (_INVISIBLE, _CONTROL, re.compile(r"[^\S ]"), _traditional_only()):
        for m in rx.finditer(every):
            table[m.start() : m.end()] = True
    table[[ord(c) for c in "&<" + CANTONESE_MARKS]] = True
    return table


@lru_cache(maxsize=None)
def _nfkc_table() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every BMP character that NFKC changes → its NFKC form, as arrays: the form's length per
    code point (1 for the others), where its characters start in the third array.
    ``NFKC(mapped) == NFKC(t)`` for any text ``t`` mapped character by character: NFKC begins
    with the compatibility decomposition, which is the same for a character and its NFKC form."""
    length = np.ones(_MAX_CODE, dtype=np.int8)
    start = np.full(_MAX_CODE, -1, dtype=np.int32)
    chars: list[str] = []
    at = 0
    for cp in range(0x10000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        ch = chr(cp)
        nf = unicodedata.normalize("NFKC", ch)
        if nf != ch:
            length[cp], start[cp] = len(nf), at
            chars.append(nf)
            at += len(nf)
    flat = np.frombuffer("".join(chars).encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
    return length, start, flat


_ASSIGNED_BEYOND_BMP = 0x32400  # planes 1–3 end here (CJK extension H ends at U+323AF)


@lru_cache(maxsize=None)
def _may_compose() -> np.ndarray:
    """Per code point: True where a text holding it may not be in NFKC although each of its
    characters is — a combining mark (canonical class ≠ 0), a character that composes with the one
    before it (the second of a canonical decomposition pair; Hangul medial vowels and final
    consonants), a surrogate, or a character beyond the BMP that NFKC changes (the mapping table
    covers the BMP only). A text free of them whose characters each are in NFKC is in NFKC (every
    character passes the quick check with YES, UAX #15), so ``unicodedata.is_normalized`` need not
    read it. Beyond the BMP only planes 1–3 and the variation selectors hold characters of
    interest (the rest is unassigned or private use; ``tests/test_speed_equivalence.py`` checks)."""
    risky = np.zeros(_MAX_CODE, dtype=bool)
    risky[0xD800:0xE000] = True
    for cp in itertools.chain(range(0xD800), range(0xE000, _ASSIGNED_BEYOND_BMP), range(0xE0000, 0xE1000)):
        ch = chr(cp)
        if unicodedata.combining(ch) or (cp > 0xFFFF and unicodedata.normalize("NFKC", ch) != ch):
            risky[cp] = True
        parts = unicodedata.decomposition(ch).split()
        if len(parts) == 2 and not parts[0].startswith("<"):
            risky[int(parts[1], 16)] = True
    risky[0x1161:0x1176] = True  # Hangul V (L + V → LV)
    risky[0x11A8:0x11C3] = True  # Hangul T (LV + T → LVT)
    return risky


_VARIANT_PAIRS = np.asarray([(ord(p[0]) << 21) | ord(p[1]) for p in VARIANT_PHRASES], dtype=np.int64)
#: joins a chunk for the NFKC pass: private-use characters, starters that NFKC keeps as they are
_JOIN = "\ue000\ue001"


def _code_points(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32).astype(np.int64)


def _nfkc_many(prefixes: list[str]) -> list[str]:
    """``NFKC`` of every text: the chunk joined, its characters mapped with numpy by
    :func:`_nfkc_table`; only the texts holding a character of :func:`_may_compose` are then
    checked, and normalised one by one when they are not yet in NFKC."""
    joined = _JOIN.join(prefixes)
    if joined.count(_JOIN[0]) != len(prefixes) - 1:  # a text holds (part of) the joint: one by one
        return [unicodedata.normalize("NFKC", t) for t in prefixes]
    length, start, flat = _nfkc_table()
    cps = _code_points(joined)
    lens = length[cps].astype(np.int64)
    mapped = start[cps].astype(np.int64)
    if (lens == 1).all():
        out = np.where(mapped >= 0, flat[np.maximum(mapped, 0)], cps)
    else:
        at = np.cumsum(lens) - lens
        out = np.empty(int(lens.sum()), dtype=np.int64)
        out[at] = np.where(mapped >= 0, flat[np.maximum(mapped, 0)], cps)
        many = np.flatnonzero(lens > 1)
        for k in range(1, int(lens.max())):
            m = many[lens[many] > k]
            out[at[m] + k] = flat[mapped[m] + k]
    joined = out.astype(np.uint32).tobytes().decode("utf-32-le", "surrogatepass")
    parts = joined.split(_JOIN)
    risky = np.flatnonzero(_may_compose()[out])  # the only places where the mapped text may not be NFKC
    if len(risky):  # the texts that hold them (every U+E000 is a joint: a text holding one goes one by one)
        for k in np.unique(np.searchsorted(np.flatnonzero(out == 0xE000), risky)).tolist():
            p = parts[k]
            if not unicodedata.is_normalized("NFKC", p):
                parts[k] = unicodedata.normalize("NFKC", p)
    return parts


def _normalize_chunk(items: list[object]) -> list[str]:
    """:func:`normalize` of every item. After NFKC (:func:`_nfkc_many`), one numpy pass over the
    chunk's code points finds the texts that a later step could change: a character of
    :func:`_changing_chars`, ``http``, ``.`` after an ASCII letter, digit or ``-`` (URLs), a
    variant phrase, two spaces in a row, a space at either end, or a run of four equal
    characters. For the others every later step is the identity and NFKC is idempotent, so their
    result is the NFKC text cut to MAX_CHARS and stripped; a text whose only change is a run has
    it cut (then NFKC, cut and strip, as :func:`normalize` ends); the rest go through the steps
    of :func:`normalize` after NFKC."""
    out: list[str] = [""] * len(items)
    prefixes: list[str] = []
    where: list[int] = []
    for i, text in enumerate(items):
        if not isinstance(text, str):
            if text is None or (isinstance(text, float) and text != text):
                continue
            text = str(text)
        if text:
            prefixes.append(text[: MAX_CHARS * 2])
            where.append(i)
    if not prefixes:
        return out
    texts = _nfkc_many(prefixes)
    n = len(texts)
    lengths = np.fromiter(map(len, texts), dtype=np.int64, count=n)
    cps = _code_points("".join(texts))
    owner = np.repeat(np.arange(n), lengths)
    starts = np.cumsum(lengths) - lengths
    dirty = np.zeros(n, dtype=bool)
    dirty[owner[_changing_chars()[cps]]] = True
    space = cps == 32
    nonempty = lengths > 0
    dirty[nonempty] |= space[starts[nonempty]] | space[(starts + lengths - 1)[nonempty]]  # stripped mid-way
    runs = np.zeros(n, dtype=bool)
    if len(cps) > 1:
        prev, cur = cps[:-1], cps[1:]
        same_text = owner[:-1] == owner[1:]
        # two spaces in a row
        dirty[owner[np.flatnonzero(same_text & space[:-1] & space[1:])]] = True
        # a URL needs "." after [A-Za-z0-9-] or "http"
        alnum = ((prev | 0x20) >= 97) & ((prev | 0x20) <= 122) | ((prev >= 48) & (prev <= 57)) | (prev == 45)
        dirty[owner[1:][same_text & (cur == 46) & alnum]] = True
        # variant phrases (two characters each)
        dirty[owner[1:][same_text & np.isin((prev << 21) | cur, _VARIANT_PAIRS)]] = True
        if len(cps) > 3:
            low = cps | 0x20  # ASCII letters in lower case (other characters never equal these)
            h = np.flatnonzero((low[:-3] == 104) & (low[1:-2] == 116) & (low[2:-1] == 116) & (low[3:] == 112))
            dirty[owner[h[owner[h] == owner[h + 3]]]] = True
            # runs of four equal characters
            r = np.flatnonzero((cps[:-3] == cps[1:-2]) & (cps[:-3] == cps[2:-1]) & (cps[:-3] == cps[3:]))
            runs[owner[r[owner[r] == owner[r + 3]]]] = True
    for k, (i, text) in enumerate(zip(where, texts)):
        if dirty[k]:
            out[i] = _after_nfkc(text)
        elif runs[k]:
            out[i] = unicodedata.normalize("NFKC", _RUNS.sub(r"\1\1\1", text))[:MAX_CHARS].strip()
        else:
            out[i] = text[:MAX_CHARS].strip()
    for k, i in enumerate(where):  # a window eaten by noise is read further, as normalize() does
        if len(prefixes[k]) == MAX_CHARS * 2 and len(out[i]) < MAX_CHARS:
            raw = items[i] if isinstance(items[i], str) else str(items[i])
            if len(raw) > MAX_CHARS * 2:
                out[i] = normalize(raw)
    return out
