"""Batch signals: what only a whole file of reviews can show.

* **campaigns** — near-duplicate texts (MinHash over character 3-grams of the text's letters,
  LSH buckets, verified by signature agreement) posted by ≥ ``CAMPAIGN_MIN`` different buyers
  (or different rows when buyers are unknown or masked); each campaign gets a ``cluster_id``;
* **serial buyers** — one (unmasked) buyer with ≥ ``SERIAL_MIN`` bad reviews in the batch, on
  ≥ 2 different items when an item column exists;
* **bursts** — ≥ ``BURST_MIN`` bad reviews of one item within a ``BURST_HOURS``-hour window
  centred on a review.

"Bad" means a rating ≤ 3 when a rating column exists, otherwise every row. Signals are combined
with the model's malicious probability by a noisy-OR into ``malicious_score``.

Per-row keys are collected chunk by chunk in compact arrays (a 12-number signature, integer
codes for buyer and item, a timestamp), so a million-row file stays well under a gigabyte.
"""

from __future__ import annotations

import re
import unicodedata
import zlib
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

SIG_SIZE = 12
BANDS = 6  # 6 bands of 2: texts with Jaccard ≥ 0.6 meet in some bucket with high probability
MIN_CHARS = 8  # shorter texts ("差评", "太差了") repeat innocently and are not clustered
AGREEMENT = 7 / 12  # signature agreement that confirms a near-duplicate (≈ Jaccard ≥ 0.58)
CAMPAIGN_MIN = 3
SERIAL_MIN = 3
BURST_MIN = 5
BURST_HOURS = 24
#: noisy-OR weights of each signal in ``malicious_score``
WEIGHTS = {"campaign": 0.75, "serial": 0.5, "burst": 0.3}
#: a review is suspected malicious when its primary cause is 7/8 or its score reaches this
FLAG_AT = 0.8

def flag_malicious(primary: np.ndarray, score: np.ndarray, flag_at: float = FLAG_AT) -> np.ndarray:
    """``suspected_malicious``: the primary cause is 7/8, or the malicious score reaches ``flag_at``."""
    from pipeline.taxonomy import MALICIOUS

    return np.isin(np.asarray(primary, dtype=object), list(MALICIOUS)) | (np.asarray(score) >= flag_at)


#: the letters a campaign is compared on: CJK, and the letters of the Latin (with its accented
#: forms), Greek and Cyrillic scripts — a Russian review copied by three buyers is a campaign too
_SKELETON = re.compile(r"[^\u3400-\u9fffA-Za-z\u00c0-\u024f\u0370-\u03ff\u0400-\u04ff]+")
_WIDE = (0xC0, 0x0500)  # the two-byte letters above (UTF-8 C0–24F, 370–3FF, 400–4FF)
_rng = np.random.default_rng(20240601)
_A = (_rng.integers(1, 2**63, SIG_SIZE, dtype=np.uint64) | np.uint64(1)).astype(np.uint64)
_B = _rng.integers(0, 2**63, SIG_SIZE, dtype=np.uint64).astype(np.uint64)


def skeleton(text: str) -> str:
    """The letters of a normalised text (CJK, Latin, Greek, Cyrillic), lower-cased letter by
    letter (:func:`_lower_table`; not ``str.lower``, whose final sigma and dotted İ depend on
    context or give two characters): punctuation, digits, spaces and emoji do not make a planted
    text different."""
    if not _LOWER:
        _LOWER.append(_lower_table())
    low = _LOWER[0]
    return "".join(chr(low[ord(c)]) if ord(c) < 0x500 else c for c in _SKELETON.sub("", text))


def signatures_reference(norm_texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """MinHash signatures review by review: the reference :func:`signatures` must equal."""
    sks = [skeleton(t) for t in norm_texts]
    eligible = np.array([len(s) >= MIN_CHARS for s in sks], dtype=bool)
    sig = np.zeros((len(sks), SIG_SIZE), dtype=np.uint32)
    rows = np.flatnonzero(eligible)
    if not len(rows):
        return sig, eligible
    hashes: list[int] = []
    starts = []
    for i in rows:
        s = sks[i]
        starts.append(len(hashes))
        # crc32, not hash(): str hashes are salted per interpreter, which would make campaign
        # detection differ from run to run on the same file
        hashes.extend({zlib.crc32(s[j : j + 3].encode("utf-8")) for j in range(len(s) - 2)})
    H = np.asarray(hashes, dtype=np.uint64)[:, None]
    mixed = ((H * _A + _B) >> np.uint64(32)).astype(np.uint32)
    sig[rows] = np.minimum.reduceat(mixed, np.asarray(starts), axis=0)
    return sig, eligible


def _advance_tables(byte_table: np.ndarray, m: int) -> np.ndarray:
    """``(4, 256)`` tables of the CRC register advanced over ``m`` zero bytes: the register
    update is linear, so ``advance(R) = T[0][R & 255] ^ T[1][R >> 8 & 255] ^ …``."""
    out = np.zeros((4, 256), dtype=np.uint32)
    for k in range(4):
        r = np.arange(256, dtype=np.uint32) << np.uint32(8 * k)
        for _ in range(m):
            r = byte_table[r & np.uint32(0xFF)] ^ (r >> np.uint32(8))
        out[k] = r
    return out


def _crc_tables():
    """The crc32 byte table, the advance tables for characters of 1, 2 and 3 UTF-8 bytes, and per
    skeleton character (ASCII letters, the two-byte letters of ``_WIDE``, CJK U+3400–U+9FFF) its
    register after it from crc32's start and its own contribution from a zero register (from zlib
    itself)."""
    table = np.arange(256, dtype=np.uint32)
    for _ in range(8):
        table = np.where(table & 1, (table >> np.uint32(1)) ^ np.uint32(0xEDB88320), table >> np.uint32(1)).astype(np.uint32)
    first = np.zeros(0xA000, dtype=np.uint32)
    own = np.zeros(0xA000, dtype=np.uint32)
    for cp in [*range(65, 91), *range(97, 123), *range(*_WIDE), *range(0x3400, 0xA000)]:
        b = chr(cp).encode("utf-8")
        first[cp] = zlib.crc32(b) ^ 0xFFFFFFFF
        own[cp] = zlib.crc32(b, 0xFFFFFFFF) ^ 0xFFFFFFFF
    return _advance_tables(table, 1), _advance_tables(table, 2), _advance_tables(table, 3), first, own


def _lower_table() -> np.ndarray:
    """``str.lower`` of every skeleton character below U+0500 that lowers to one character of the
    skeleton (À → à, Д → д, Σ → σ), else the character itself."""
    low = np.arange(0x500, dtype=np.int64)
    for cp in [*range(65, 91), *range(*_WIDE)]:
        lo = chr(cp).lower()
        if len(lo) == 1 and _SKELETON.fullmatch(lo) is None:
            low[cp] = ord(lo)
    return low


_CRC_TABLES: list = []
_LOWER: list = []
_TRIGRAMS_PER_BLOCK = 1 << 20  # bounds the transient arrays (≈ 40 MB) whatever the chunk


def _crc32_of_trigrams(c0: np.ndarray, c1: np.ndarray, c2: np.ndarray) -> np.ndarray:
    """``zlib.crc32`` of the UTF-8 bytes of each 3-character string of skeleton characters (CJK
    U+3400–U+9FFF, three bytes each, or ASCII letters, one byte): the register after the first
    character from a table, then advanced over each next character's bytes and combined with
    that character's own contribution (crc32 is linear in its register)."""
    if not _CRC_TABLES:
        _CRC_TABLES.extend(_crc_tables())
    one, two, three, first, own = _CRC_TABLES
    reg = first[c0]
    for c in (c1, c2):
        nxt = three[0][reg & 0xFF] ^ three[1][(reg >> 8) & 0xFF] ^ three[2][(reg >> 16) & 0xFF] ^ three[3][reg >> 24]
        for width, adv in ((c < 0x80, one), ((c >= 0x80) & (c < 0x800), two)):  # ASCII: one byte; Cyrillic …: two
            at = np.flatnonzero(width)
            if len(at):
                r = reg[at]
                nxt[at] = adv[0][r & 0xFF] ^ adv[1][(r >> 8) & 0xFF] ^ adv[2][(r >> 16) & 0xFF] ^ adv[3][r >> 24]
        reg = nxt ^ own[c]
    return reg ^ np.uint32(0xFFFFFFFF)


def signatures(norm_texts: list[str], skip: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """MinHash signatures ``(n, SIG_SIZE)`` uint32 and the mask of texts long enough to cluster.

    The same signatures as :func:`signatures_reference`, for the whole chunk at once: the
    skeletons' characters as one numpy array, every 3-gram's crc32 computed with the CRC table,
    the min-hashes by ``np.minimum.reduceat``. ``skip``: rows that cannot join a campaign (not a
    bad review); their signature is left zero, their ``eligible`` flag is still given."""
    n = len(norm_texts)
    sig = np.zeros((n, SIG_SIZE), dtype=np.uint32)
    if not n:
        return sig, np.zeros(0, dtype=bool)
    lengths = np.fromiter(map(len, norm_texts), dtype=np.int64, count=n)
    cps = np.frombuffer("".join(norm_texts).encode("utf-32-le", "surrogatepass"), dtype=np.uint32).astype(np.int64)
    letter = (((cps >= 0x3400) & (cps <= 0x9FFF)) | ((cps >= 65) & (cps <= 90)) | ((cps >= 97) & (cps <= 122))
              | ((cps >= 0xC0) & (cps <= 0x24F)) | ((cps >= 0x370) & (cps <= 0x4FF)))
    owner = np.repeat(np.arange(n), lengths)
    sk_len = np.bincount(owner[letter], minlength=n)
    eligible = sk_len >= MIN_CHARS
    wanted = eligible if skip is None else eligible & ~np.asarray(skip, dtype=bool)
    keep = letter & wanted[owner]
    chars = cps[keep]
    if not _LOWER:
        _LOWER.append(_lower_table())
    small = chars < 0x500
    chars[small] = _LOWER[0][chars[small]]  # lower(): A-Z, À-Þ, Greek and Cyrillic capitals
    rows = np.flatnonzero(wanted)
    grams = sk_len[rows] - 2  # ≥ MIN_CHARS - 2 per row
    char_start = np.cumsum(sk_len[rows]) - sk_len[rows]
    # blocks of rows, so that a chunk of long reviews never builds huge arrays
    bounds = np.searchsorted(np.cumsum(grams), np.arange(_TRIGRAMS_PER_BLOCK, int(grams.sum()) + _TRIGRAMS_PER_BLOCK,
                                                         _TRIGRAMS_PER_BLOCK), "right")
    lo = 0
    for hi in np.unique(np.append(np.maximum(bounds, 1), len(rows))).tolist():
        if hi <= lo:
            continue
        g = grams[lo:hi]
        first = np.cumsum(g) - g
        at = np.repeat(char_start[lo:hi] - first, g) + np.arange(int(g.sum()))
        H = _crc32_of_trigrams(chars[at], chars[at + 1], chars[at + 2]).astype(np.uint64)
        for k in range(SIG_SIZE):
            mixed = ((H * _A[k] + _B[k]) >> np.uint64(32)).astype(np.uint32)
            sig[rows[lo:hi], k] = np.minimum.reduceat(mixed, first)
        lo = hi
    return sig, eligible


#: names platforms show in place of a buyer's own: every anonymous review carries the same one
#: (匿名用户 on Taobao, JD, Meituan and Ele.me, "AliExpress Shopper"), so they tell no buyer apart —
#: compared lower-cased, without spaces, traditional forms included
ANONYMOUS_NAMES = frozenset({
    "匿名", "匿名用户", "匿名用戶", "匿名买家", "匿名買家", "匿名顾客", "匿名顧客", "匿名会员", "匿名會員", "匿名评价",
    "匿名評價", "用户", "用戶", "买家", "買家", "顾客", "顧客", "会员", "會員", "游客", "遊客", "访客", "訪客", "无", "無",
    "aliexpressshopper", "shopper", "customer", "anonymous", "anonymoususer", "anonymousbuyer", "anonymouscustomer",
    "guest", "user", "buyer", "n/a", "na", "null", "none", "nan", "-", "--", "—", "/",
})


@lru_cache(maxsize=1 << 16)  # a batch repeats its names: each distinct one is normalised once
def is_masked(name: str) -> bool:
    """A name that cannot tell buyers apart: masked (``t***1``), blank, or a platform's
    placeholder for an anonymous buyer (:data:`ANONYMOUS_NAMES`, or any name with 匿名 in it)."""
    key = "".join(unicodedata.normalize("NFKC", name).translate(_INVISIBLE).split()).lower()  # ＊ → *, no zero-width
    return (not key or "*" in key or key in ANONYMOUS_NAMES or "匿名" in key or key.startswith("anonymous")
            or _ROUNDED_ID.fullmatch(key.replace(",", "")) is not None)  # 1,234,567,890,123,460,000 too


#: a numeric account of more than 15 digits whose tail is zeros: what a spreadsheet keeps of a long
#: number (15 digits), which many buyers' accounts read as — it cannot tell them apart
_ROUNDED_ID = re.compile(r"\d{15}0+")


#: characters a name may hold that show nothing (a name of only these is blank)
_INVISIBLE = dict.fromkeys([0x00AD, 0x200B, 0x200C, 0x200D, 0x2060, 0xFEFF, 0x180E])


#: dates outside this window are an export's placeholders (1970-01-01, 9999-12-31), not dates
DATE_WINDOW = (pd.Timestamp("1995-01-01"), pd.Timestamp("2100-01-01"))
_YMD = re.compile(r"(\d)\s*[年/.]\s*(\d{1,2})\s*[月/.]\s*(\d{1,2})(?:\s*日)?")


_FRACTION = re.compile(r"(\.\d{6})\d+")
_SERIAL = re.compile(r"\d{5}(?:\.\d+)?")
#: Excel serial days of DATE_WINDOW (1995-01-01 … 2100-01-01)
_EXCEL_EPOCH_WINDOW = (34700, 73051)
_SHORT_YEAR = re.compile(r"^(\d{2})[-/.](\d{1,2})[-/.](\d{1,2})(?=$|[ T])")
_LEADING_YEAR = re.compile(r"^(-?\d{4})(?:[-/.]|$)")


def _to_datetime(s: pd.Series, fmt: str) -> pd.Series:
    """``pd.to_datetime(s, errors="coerce", utc=True)``, cell by cell when one cell's year is out of
    pandas' range for the unit it chose (which "coerce" does not catch)."""
    try:
        return pd.to_datetime(s, errors="coerce", format=fmt, utc=True)
    except (ValueError, OverflowError):  # OutOfBoundsDatetime is a ValueError
        return pd.Series([_one_date(v, fmt) for v in s.tolist()], index=s.index, dtype="datetime64[ns, UTC]")


def _one_date(v: str, fmt: str):
    try:
        return pd.to_datetime(v, errors="coerce", format=fmt, utc=True)
    except (ValueError, OverflowError):
        return pd.NaT


def parse_dates(values) -> pd.Series:
    """Naive datetimes of date cells (ISO fast path, then any other format; 2024年5月1日 and
    2024/5/1 too), NaT when unreadable or outside :data:`DATE_WINDOW`. An explicit UTC offset is
    read as UTC, zones mixed or not; any year parses (no nanosecond Timestamp on the way)."""
    s = pd.Series(list(values), dtype=object).astype(str).str.strip()
    s = s.where(s.str.contains(r"\d"), "")  # pandas reads 'now', 'today' as the clock's time: no date
    # a date a workbook stores as a number in General format (45413.4166… is 2024-05-01 10:00):
    # days since Excel's 1899-12-30, taken only in the window (8-digit 20240501 or 10-digit epoch
    # seconds are never in it)
    serial = pd.to_numeric(s.where(s.str.fullmatch(_SERIAL), ""), errors="coerce")
    serial = serial.where(serial.between(_EXCEL_EPOCH_WINDOW[0], _EXCEL_EPOCH_WINDOW[1]))
    s = s.where(serial.isna(), "")
    s = s.str.replace(_YMD, r"\1-\2-\3", regex=True)
    s = s.str.replace(_SHORT_YEAR, r"20\1-\2-\3", regex=True)  # 24-5-1 is 2024-05-01, not 2001-05-24
    # 7–9 digit fractions (SQL Server datetime2, .NET) make pandas read the whole column in
    # nanoseconds, where a placeholder year (9999, 0001) is out of bounds: cut them to micro-
    # seconds, and leave a cell whose leading year is outside the window unparsed (no date)
    s = s.str.replace(_FRACTION, r"\1", regex=True)
    year = pd.to_numeric(s.str.extract(_LEADING_YEAR, expand=False), errors="coerce")
    s = s.where(~(year < DATE_WINDOW[0].year) & ~(year >= DATE_WINDOW[1].year), "")
    out = _to_datetime(s, "ISO8601")
    rest = out.isna() & (s != "")
    if rest.any():
        out[rest] = _to_datetime(s[rest], "mixed")
    out = out.dt.tz_localize(None)
    if serial.notna().any():
        out[serial.notna()] = (pd.Timestamp("1899-12-30") + pd.to_timedelta(serial[serial.notna()] * 86400, unit="s")).dt.round("s")
    # a review is never dated after today: 2099-12-31 is an export's placeholder (a day's margin
    # for the time zones)
    latest = min(DATE_WINDOW[1], pd.Timestamp.now(tz="UTC").tz_localize(None).normalize() + pd.Timedelta(days=2))
    return out.where((out >= DATE_WINDOW[0]) & (out < latest))


def epoch_seconds(dates) -> np.ndarray:
    """Seconds since the epoch of date cells (:func:`parse_dates`), -1 when there is no date."""
    when = parse_dates(dates).to_numpy().astype("datetime64[s]")
    secs = when.astype(np.int64)
    secs[np.isnat(when)] = -1
    return secs


@dataclass
class Signals:
    """Per-row batch signals, aligned with the input rows."""

    cluster_id: np.ndarray  # int, -1 when not in a campaign
    cluster_authors: np.ndarray  # distinct buyers (or rows) in the campaign
    serial_reviews: np.ndarray  # bad reviews by this row's buyer in the batch (0 if not serial)
    serial_items: np.ndarray
    burst: np.ndarray  # bad reviews of this item in the busiest 24 h window holding this row (0 if none)

    def rows(self, start: int, stop: int) -> Signals:
        """The signals of rows ``start:stop``."""
        return Signals(*(getattr(self, f)[start:stop] for f in self.__dataclass_fields__))

    def score(self, model_score: np.ndarray, weights: dict[str, float] | None = None) -> np.ndarray:
        """Noisy-OR of the model's malicious probability and the batch signals."""
        w = WEIGHTS if weights is None else weights
        keep = 1.0 - np.asarray(model_score, dtype=float)
        keep = keep * np.where(self.cluster_id >= 0, 1 - w["campaign"], 1.0)
        keep = keep * np.where(self.serial_reviews > 0, 1 - w["serial"], 1.0)
        keep = keep * np.where(self.burst > 0, 1 - w["burst"], 1.0)
        return 1.0 - keep

    def evidence(self, i: int, buyer: str = "", item: str = "", burst_hours: int = BURST_HOURS) -> list[str]:
        out = []
        if self.cluster_id[i] >= 0:
            out.append(f"近似文本由{self.cluster_authors[i]}个买家发布 near-duplicate text from "
                       f"{self.cluster_authors[i]} buyers (cluster C{self.cluster_id[i]})")
        if self.serial_reviews[i] > 0:
            where = f"/{self.serial_items[i]}个商品 on {self.serial_items[i]} items" if self.serial_items[i] > 1 else ""
            out.append(f"买家{buyer}在本批留{self.serial_reviews[i]}条差评{where} one buyer, {self.serial_reviews[i]} bad reviews")
        if self.burst[i] > 0:
            out.append(f"商品{item[:20]}在{burst_hours}小时内{self.burst[i]}条差评 burst of {self.burst[i]} bad reviews in {burst_hours}h")
        return out


class Collector:
    """Accumulates compact per-row keys chunk by chunk; ``finish`` computes the signals."""

    def __init__(self, campaign_min: int = CAMPAIGN_MIN, serial_min: int = SERIAL_MIN, burst_min: int = BURST_MIN,
                 burst_hours: int = BURST_HOURS, bad_rating: float = 3.0) -> None:
        self.campaign_min, self.serial_min, self.burst_min = campaign_min, serial_min, burst_min
        self.burst_hours, self.bad_rating = burst_hours, bad_rating
        self._sig: list[np.ndarray] = []
        self._eligible: list[np.ndarray] = []
        self._buyer: list[np.ndarray] = []
        self._item: list[np.ndarray] = []
        self._time: list[np.ndarray] = []
        self._bad: list[np.ndarray] = []
        self._codes: dict[str, dict[str, int]] = {"buyer": {}, "item": {}}

    def _encode(self, kind: str, values, masked=None) -> np.ndarray:
        table = self._codes[kind]
        out = np.empty(len(values), dtype=np.int64)
        for i, v in enumerate(values):
            v = "" if v is None else str(v).strip()
            out[i] = -1 if (not v or (masked is not None and masked(v))) else table.setdefault(v, len(table))
        return out

    def add(self, sig, eligible, buyers=None, items=None, dates=None, ratings=None) -> None:
        n = len(eligible)
        self._sig.append(sig)
        self._eligible.append(eligible)
        self._buyer.append(self._encode("buyer", buyers, is_masked) if buyers is not None else np.full(n, -1))
        self._item.append(self._encode("item", items) if items is not None else np.full(n, -1))
        if dates is not None:
            self._time.append(epoch_seconds(dates))
        else:
            self._time.append(np.full(n, -1, dtype=np.int64))
        r = np.asarray(ratings, dtype=float) if ratings is not None else np.full(n, np.nan)
        self._bad.append(np.isnan(r) | (r <= self.bad_rating))

    def finish(self) -> Signals:
        if not self._eligible:
            z = np.zeros(0, dtype=np.int64)
            return Signals(z - 1, z, z, z, z)
        # each key joined once and kept as the only part, so the chunks' arrays are freed before
        # the clusters are computed (peak memory at 1M rows), and finish can be called again
        sig, eligible, buyer, item, when, bad = (_joined(parts) for parts in
                                                 (self._sig, self._eligible, self._buyer, self._item, self._time, self._bad))
        n = len(eligible)
        cluster_id, authors = _campaigns(sig, eligible & bad, buyer, self.campaign_min)
        serial_reviews, serial_items = _serial(buyer, item, bad, n, self.serial_min)
        burst = _bursts(item, when, bad, n, self.burst_min, self.burst_hours)
        return Signals(cluster_id, authors, serial_reviews, serial_items, burst)


def _joined(parts: list[np.ndarray]) -> np.ndarray:
    """The parts as one array, which then replaces them in the list."""
    whole = np.concatenate(parts)
    parts[:] = [whole]
    return whole


def _campaigns(sig: np.ndarray, eligible: np.ndarray, buyer: np.ndarray, minimum: int = CAMPAIGN_MIN) -> tuple[np.ndarray, np.ndarray]:
    """``(cluster_id, authors)`` per row: the clusters of :func:`_campaigns_reference`, computed
    with whole-array operations. In every band each eligible row is linked to the first eligible
    row with the same band (when their signatures agree on ≥ AGREEMENT of their places); a
    cluster is a connected component of those links (scipy), named by its smallest row, numbered
    in that order and kept when it has ≥ ``minimum`` rows and distinct authors."""
    from scipy.sparse import coo_array
    from scipy.sparse.csgraph import connected_components

    n = len(sig)
    width = SIG_SIZE // BANDS
    cluster_id = np.full(n, -1, dtype=np.int64)
    authors = np.zeros(n, dtype=np.int64)
    rows = np.flatnonzero(eligible)
    m = len(rows)
    if width > 2:  # bands wider than one 64-bit key: the reference
        return _campaigns_reference(sig, eligible, buyer, minimum)
    if not m:
        return cluster_id, authors
    need = int(np.ceil(AGREEMENT * SIG_SIZE))
    src, dst = [], []
    for b in range(BANDS):  # one band's 64-bit keys at a time (not a 64-bit copy of every signature)
        key = sig[rows, b * width].astype(np.uint64)
        if width == 2:
            key = (key << np.uint64(32)) | sig[rows, b * width + 1]
        codes, _ = pd.factorize(key)  # numbered in order of first appearance
        is_first = codes > np.maximum.accumulate(np.concatenate([[-1], codes[:-1]]))
        first = np.flatnonzero(is_first)[codes]  # the first row (position in rows) of each bucket
        i = np.flatnonzero(first != np.arange(m))
        j = first[i]
        agree = np.count_nonzero(sig[rows[i]] == sig[rows[j]], axis=1) >= need
        src.append(i[agree])
        dst.append(j[agree])
    src, dst = np.concatenate(src), np.concatenate(dst)
    graph = coo_array((np.ones(len(src), dtype=np.int8), (src, dst)), shape=(m, m))
    _, label = connected_components(graph, directed=False)
    size = np.bincount(label)
    big = size[label] >= minimum
    if not big.any():
        return cluster_id, authors
    root = np.full(len(size), m, dtype=np.int64)
    np.minimum.at(root, label, np.arange(m))  # the smallest row of each component
    # distinct authors per component: known buyers once each, unknown/masked rows each
    who = buyer[rows]
    known = big & (who >= 0)
    pair = np.sort((label[known].astype(np.int64) << 32) | who[known].astype(np.int64))
    distinct = np.concatenate([[True], pair[1:] != pair[:-1]]) if len(pair) else np.zeros(0, dtype=bool)
    n_who = np.bincount(pair[distinct] >> 32, minlength=len(size)) + np.bincount(label[big & (who < 0)], minlength=len(size))
    keep = (size >= minimum) & (n_who >= minimum)
    order = np.flatnonzero(keep)[np.argsort(root[keep], kind="stable")]
    number = np.zeros(len(size), dtype=np.int64)
    number[order] = np.arange(1, len(order) + 1)
    member = keep[label]
    cluster_id[rows[member]] = number[label[member]]
    authors[rows[member]] = n_who[label[member]]
    return cluster_id, authors


def _campaigns_reference(sig: np.ndarray, eligible: np.ndarray, buyer: np.ndarray, minimum: int = CAMPAIGN_MIN) -> tuple[np.ndarray, np.ndarray]:
    """Campaign clusters row by row (union-find): the reference :func:`_campaigns` must equal."""
    n = len(sig)
    parent = np.arange(n)

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    rows = np.flatnonzero(eligible)
    width = SIG_SIZE // BANDS
    for b in range(BANDS):
        first: dict[bytes, int] = {}
        band = np.ascontiguousarray(sig[rows, b * width : (b + 1) * width])
        need = int(np.ceil(AGREEMENT * SIG_SIZE))
        for i, key in zip(rows, map(bytes, band)):
            j = first.setdefault(key, i)
            if j == i:
                continue
            ri, rj = root(i), root(j)
            if ri != rj and np.count_nonzero(sig[i] == sig[j]) >= need:
                parent[max(ri, rj)] = min(ri, rj)
    roots = np.array([root(i) for i in range(n)]) if n else np.zeros(0, dtype=np.int64)
    cluster_id = np.full(n, -1, dtype=np.int64)
    authors = np.zeros(n, dtype=np.int64)
    members: dict[int, list[int]] = {}
    for i in rows:
        members.setdefault(int(roots[i]), []).append(int(i))
    next_id = 1
    for r, idx in sorted(members.items()):
        if len(idx) < minimum:
            continue
        who = {("b", int(buyer[i])) if buyer[i] >= 0 else ("row", i) for i in idx}
        if len(who) >= minimum:
            cluster_id[idx] = next_id
            authors[idx] = len(who)
            next_id += 1
    return cluster_id, authors


def _serial(buyer: np.ndarray, item: np.ndarray, bad: np.ndarray, n: int, minimum: int = SERIAL_MIN) -> tuple[np.ndarray, np.ndarray]:
    reviews, items = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64)
    mask = (buyer >= 0) & bad
    if not mask.any():
        return reviews, items
    frame = pd.DataFrame({"buyer": buyer[mask], "item": item[mask]})
    per = frame.groupby("buyer").agg(count=("item", "size"), items=("item", lambda s: s[s >= 0].nunique()))
    has_items = (item >= 0).any()
    serial = per[(per["count"] >= minimum) & ((per["items"] >= 2) | (not has_items))]
    hit = mask & np.isin(buyer, serial.index.to_numpy())
    reviews[hit] = serial.loc[buyer[hit], "count"].to_numpy()
    items[hit] = serial.loc[buyer[hit], "items"].to_numpy()
    return reviews, items


def _bursts(item: np.ndarray, when: np.ndarray, bad: np.ndarray, n: int, minimum: int = BURST_MIN,
            hours: int = BURST_HOURS) -> np.ndarray:
    """For each bad review of an item, the bad reviews of that item within ±BURST_HOURS/2 of it;
    kept where that count reaches BURST_MIN (vectorised with one sort and two searchsorted)."""
    out = np.zeros(n, dtype=np.int64)
    mask = (item >= 0) & (when >= 0) & bad
    if mask.sum() < minimum:
        return out
    idx = np.flatnonzero(mask)
    half = hours * 3600 // 2
    key = item[idx].astype(np.int64) * (1 << 40) + when[idx]
    ordered = np.sort(key)
    count = np.searchsorted(ordered, key + half, side="right") - np.searchsorted(ordered, key - half, side="left")
    out[idx] = np.where(count >= minimum, count, 0)
    return out
