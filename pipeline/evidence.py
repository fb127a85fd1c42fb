"""The words behind each cause, as text a seller can read and quote.

For every cause that passes, the linear model's per-feature contributions (feature value ×
the cause's weight) are ranked; the strongest text features (jieba words, word bigrams,
character n-grams) are located in the review, overlapping ones merged into spans, and the best
spans quoted — taken from the original text when it contains them (traditional script, full
width), else from the normalised text:

    product_quality「鞋底开胶」; stockout_logistics「等了一个星期」

Buyer-side and malicious causes (5–8) also get the cue phrases of ``causes.md`` that matched
(e.g. ``索要钱财 demands money「返50」``), and a malicious cause says when the text names no detail
of the order. A rating that weighed in says so (``评分2星 rating 2``).
"""

from __future__ import annotations

import re
from functools import lru_cache

import numpy as np

from pipeline.cues import BY_NAME, CUES, match_cues, recent_matches
from pipeline.taxonomy import BUYER_SIDE, CAUSE_IDS, MALICIOUS

#: cues naming the order itself (causes 1–4): their absence is a sign of sweeping defamation
COMPLAINT_CUES = frozenset(c.name for c in CUES if c.cause and c.cause not in BUYER_SIDE
                           and c.name not in ("sv_party", "lg_delivery"))
_TOP_FEATURES = 12


def _surface(name: str) -> str | None:
    """The text a feature stands for, or None for non-text features (cues, rating, vectors)."""
    if name.startswith(("cue:", "rating_", "emb:")):
        return None
    if name.startswith("#"):
        return name[1:]
    return name.replace(" ", "")


_CLAUSE = re.compile(r"[^，。！？,.!?；;、~…\s]+")
MAX_QUOTE = 12


def _spans(text: str, feats: list[tuple[str, float]], limit: int) -> list[str]:
    """The clauses of ``text`` that carry most of the features' weight, each cut to the
    ``MAX_QUOTE`` characters around its strongest point; the ``limit`` best, in text order.

    Each feature's contribution is spread over the characters it covers (every occurrence), so
    a clause scores by the words that drove the cause, whether they came as words, word pairs or
    character n-grams.
    """
    low = text.lower()
    weight = np.zeros(len(text))
    for surface, w in feats:
        if not surface:
            continue
        at = low.find(surface)
        while at >= 0:
            weight[at : at + len(surface)] += w / len(surface)
            at = low.find(surface, at + 1)
    if not weight.any():
        return []
    clauses = []
    for m in _CLAUSE.finditer(text):
        a, b = m.span()
        score = weight[a:b].sum()
        if score <= 0:
            continue
        if b - a > MAX_QUOTE:  # the window of MAX_QUOTE characters with the most weight
            sums = np.convolve(weight[a:b], np.ones(MAX_QUOTE), mode="valid")
            a = a + int(sums.argmax())
            b = a + MAX_QUOTE
        clauses.append((score, a, b))
    best = sorted(clauses, key=lambda c: -c[0])[:limit]
    return [text[a:b] for _, a, b in sorted(best, key=lambda c: c[1])]


def _in_original(span: str, original: str) -> str:
    """The span as written in the original text when it can be found there."""
    if span in original:
        return span
    try:
        from pipeline.normalize import to_traditional

        trad = to_traditional(span)
        if trad in original:
            return trad
    except Exception:  # no converter: quote the normalised text
        pass
    return span


def cue_evidence(norm: str, causes: set[str], found: dict[str, list[str]] | None = None) -> list[str]:
    """Cue phrases behind buyer-side/malicious causes, and the no-detail sign for 7/8."""
    found = match_cues(norm) if found is None else found
    parts = []
    for name, snippets in found.items():
        cue = BY_NAME[name]
        if cue.cause in causes and cue.cause in BUYER_SIDE:
            quoted = "」「".join(dict.fromkeys(s.strip() for s in snippets))[:60]
            parts.append(f"{cue.label}「{quoted}」")
    if causes & MALICIOUS and not found.keys() & COMPLAINT_CUES:
        parts.append("未提及任何订单细节 no detail of the order")
    return parts


def explain(model, names: np.ndarray, X, rows: list[tuple[int, np.ndarray]], norms: list[str], originals: list[str],
            spans: int = 2) -> list[str]:
    """Evidence text for each ``(row of X, passing cause indices)``.

    The same text as :func:`explain_reference`, computed for blocks of reviews at once: the
    contributions of every (review, cause) in one numpy product, the occurrences of the quoted
    features found by vectorised character comparison, the per-character weights added in the
    reference's order (``np.add.at``), the clause scores summed exactly as ``ndarray.sum`` sums
    them (pairwise, :func:`_pairwise_sums`) and the 12-character windows as ``np.convolve``
    sums them — so ties are broken as before and the output is byte-identical."""
    clf = model.named_steps["clf"]
    info = _feature_info(names)
    X = _quotable(X, info.limit)
    out: list[str] = [""] * len(rows)
    # blocks of at most _BLOCK reviews and _BLOCK_ENTRIES (feature, cause) contributions
    nnz = np.diff(X.indptr)
    entries = np.cumsum([int(nnz[r]) * len(causes) for r, causes in rows]) if rows else np.zeros(0)
    b0 = 0
    while b0 < len(rows):
        base = int(entries[b0 - 1]) if b0 else 0
        b1 = min(b0 + _BLOCK, max(int(np.searchsorted(entries, base + _BLOCK_ENTRIES, "right")), b0 + 1))
        out[b0:b1] = _explain_block(clf, info, X, rows[b0:b1], norms[b0:b1], originals[b0:b1], spans, names)
        b0 = b1
    return out


def explain_reference(model, names: np.ndarray, X, rows: list[tuple[int, np.ndarray]], norms: list[str], originals: list[str],
            spans: int = 2) -> list[str]:
    """Evidence text for each ``(row of X, passing cause indices)``, one review at a time: the
    reference that :func:`explain` must equal (``tests/test_speed_equivalence.py``); it also
    serves the rare review whose lower-cased text is not as long as the text."""
    clf = model.named_steps["clf"]
    X = _quotable(X, _vector_start(names))
    out = []
    for (r, causes), norm, original in zip(rows, norms, originals):
        lo, hi = X.indptr[r], X.indptr[r + 1]
        idx, vals = X.indices[lo:hi], X.data[lo:hi]
        parts: list[str] = []
        notes: set[str] = set()
        wanted = {CAUSE_IDS[j] for j in causes}
        found = match_cues(norm) if wanted & BUYER_SIDE else None
        for j in causes:
            contrib = vals * clf.coef_[j, idx]
            order = np.argsort(-contrib)[:_TOP_FEATURES]
            feats, rating = [], None
            for o in order:
                if contrib[o] <= 0:
                    break
                name = names[idx[o]]
                if name.startswith("rating_") and name != "rating_unknown":
                    rating = name
                s = _surface(name)
                if s is not None:
                    feats.append((s, float(contrib[o])))
            quoted = "".join(f"「{_in_original(s, original)}」" for s in _spans(norm, feats, spans))
            cause = CAUSE_IDS[j]
            if quoted:
                parts.append(f"{cause}{quoted}")
            elif cause not in BUYER_SIDE:
                parts.append(f"{cause}「{norm[:20]}」")
            if rating is not None:
                notes.add(_RATING_NOTE[rating])
        if found is not None:
            parts.extend(cue_evidence(norm, wanted, found))
        parts.extend(sorted(notes))
        out.append("; ".join(dict.fromkeys(parts)))
    return out


# --- the vectorised path of explain() -----------------------------------------------------------

_BLOCK = 4096  # reviews per block: bounds the transient arrays
_BLOCK_ENTRIES = 1 << 20  # (feature, cause) contributions per block: long reviews hold thousands
_MAX_CODE = 0x110000
_SHIFT = 21  # code points fit in 21 bits


def _vector_start(names: np.ndarray) -> int:
    """Where the word-vector columns (``emb:…``, the last branch of the model) begin: a vector
    dimension is no word a seller can read, so the evidence never weighs them."""
    k = len(names)
    while k and str(names[k - 1]).startswith("emb:"):
        k -= 1
    return k


def _quotable(X, limit: int):
    X = X.tocsr()
    return X if limit >= X.shape[1] else X[:, :limit]


class _FeatureInfo:
    """Per feature column: the text it stands for and whether it is a rating feature."""

    def __init__(self, names: np.ndarray):
        self.names = names
        self.limit = _vector_start(names)
        surfaces = [_surface(str(n)) for n in names]
        self.surface = surfaces
        self.length = np.fromiter((len(s) if s else 0 for s in surfaces), dtype=np.int64, count=len(surfaces))
        self.rating = [n if (str(n).startswith("rating_") and n != "rating_unknown") else None for n in names]
        self.has_rating = np.fromiter((r is not None for r in self.rating), dtype=bool, count=len(names))
        # the code points of every surface, end to end
        self.chars = _code_points("".join(s or "" for s in surfaces))
        self.offset = np.cumsum(self.length) - self.length


_INFO: list[_FeatureInfo] = []


def _feature_info(names: np.ndarray) -> _FeatureInfo:
    if not _INFO or _INFO[0].names is not names:
        _INFO[:] = [_FeatureInfo(names)]
    return _INFO[0]


@lru_cache(maxsize=None)
def _clause_chars() -> np.ndarray:
    """``table[code point]``: the character belongs to a clause (matches ``_CLAUSE``'s class)."""
    table = np.ones(_MAX_CODE, dtype=bool)  # beyond the BMP: no separator, no whitespace
    table[:0x10000] = False
    every = "".join(map(chr, range(0x10000)))
    for m in _CLAUSE.finditer(every):
        table[m.start() : m.end()] = True
    return table


def _code_points(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32).astype(np.int64)


def _pairwise_sums(W: np.ndarray, starts: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """``W[s:s+n].sum()`` for many slices, with numpy's own pairwise summation order (runs under
    8 elements summed one by one from -0.0, up to 128 in eight interleaved accumulators; longer
    slices are summed by numpy itself), so every clause score is bit-identical."""
    out = np.zeros(len(starts))
    if not len(starts):
        return out
    last = len(W) - 1
    small = np.flatnonzero(lens < 8)
    if len(small):
        s, n = starts[small], lens[small]
        acc = np.full(len(s), -0.0)
        for k in range(int(n.max())):
            acc = acc + np.where(k < n, W[np.minimum(s + k, last)], -0.0)
        out[small] = acc
    mid = np.flatnonzero((lens >= 8) & (lens <= 128))
    if len(mid):
        s, n = starts[mid], lens[mid]
        lanes = np.arange(8)
        r = W[s[:, None] + lanes]
        blocks = (n - n % 8) // 8
        for blk in range(1, int(blocks.max())):
            more = (blk < blocks)[:, None]
            r = r + np.where(more, W[np.minimum(s[:, None] + 8 * blk + lanes, last)], -0.0)
        res = ((r[:, 0] + r[:, 1]) + (r[:, 2] + r[:, 3])) + ((r[:, 4] + r[:, 5]) + (r[:, 6] + r[:, 7]))
        rest, base = n % 8, s + 8 * blocks
        for t in range(int(rest.max())):
            res = res + np.where(t < rest, W[np.minimum(base + t, last)], -0.0)
        out[mid] = res
    for i in np.flatnonzero(lens > 128):
        out[i] = W[starts[i] : starts[i] + lens[i]].sum()
    return out


def _window_sums(W: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """``np.convolve(W[a:b], np.ones(MAX_QUOTE), "valid")`` at the given window starts: each
    window summed left to right from 0.0, as numpy's correlate (a BLAS dot) sums 12 numbers."""
    acc = np.zeros(len(starts))
    for t in range(MAX_QUOTE):
        acc = acc + W[starts + t]
    return acc


@lru_cache(maxsize=None)
def _sums_are_numpys() -> tuple[bool, bool]:
    """Check once per process that the two emulations above give numpy's own sums here."""
    rng = np.random.default_rng(1234)
    W = rng.random(4000) * 10.0 ** rng.integers(-8, 8, 4000)
    W[rng.random(4000) < 0.4] = 0.0
    starts = rng.integers(0, 3000, 600)
    lens = rng.integers(1, 300, 600)
    sums = _pairwise_sums(W, starts, lens)
    pairwise = all(sums[i] == W[starts[i] : starts[i] + lens[i]].sum() for i in range(600))
    seg = W[100:400]
    conv = np.convolve(seg, np.ones(MAX_QUOTE), mode="valid")
    windows = bool(np.array_equal(_window_sums(W, 100 + np.arange(len(conv))), conv))
    return pairwise, windows


@lru_cache(maxsize=65536)
def _traditional(span: str) -> str:
    from pipeline.normalize import to_traditional

    return to_traditional(span)


def _quote(span: str, original: str) -> str:
    """:func:`_in_original` with the OpenCC conversion cached."""
    if span in original:
        return span
    try:
        trad = _traditional(span)
        if trad in original:
            return trad
    except Exception:  # no converter: quote the normalised text
        pass
    return span


def _unique_inverse(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(keys, return_inverse=True)`` for non-negative int64 keys, by one ``np.sort``
    of keys packed with their positions (numpy's own unique hashes, which is slow here)."""
    n = len(keys)
    idx_bits = max(n.bit_length(), 1)
    if not n or int(keys.max()).bit_length() + idx_bits > 63:
        return np.unique(keys, return_inverse=True)
    packed = np.sort((keys << idx_bits) | np.arange(n), kind="stable")
    key, pos = packed >> idx_bits, packed & ((1 << idx_bits) - 1)
    new = np.concatenate([[True], key[1:] != key[:-1]])
    inverse = np.empty(n, dtype=np.int64)
    inverse[pos] = np.cumsum(new) - 1
    return key[new], inverse


def _ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Concatenated ``arange(s, s + c)`` for every pair."""
    total = int(counts.sum())
    if not total:
        return np.zeros(0, dtype=np.int64)
    offsets = np.cumsum(counts) - counts
    return np.repeat(starts - offsets, counts) + np.arange(total)


def _top_positive(contrib: np.ndarray, seg_first: np.ndarray, cnt: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """For each segment ``contrib[seg_first[s] : seg_first[s] + cnt[s]]``: the positions of the
    positive values among ``np.argsort(-segment)[:k]``, in that order; and the segment of each.

    np.argsort itself: equal contributions are common (features that always occur together get
    equal weights) and np.argsort's order among equal values is its own, so only np.argsort on
    the same values gives the reference's order. (A vectorised sort with a fallback for ties
    measured slower: a third of the segments hold such ties.) Segments of the same length are
    stacked and sorted by one ``argsort(axis=1)``, which runs the same 1-D sort on each row —
    one call per distinct length instead of one per segment; :func:`_top_positive_by_segment`
    is the one-call-per-segment version (``tests/test_speed_equivalence.py`` compares both with
    tie-heavy segments)."""
    n_seg = len(cnt)
    if not n_seg:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    neg = -contrib
    picks = np.full((n_seg, k), -1, dtype=np.int64)
    by_len = np.argsort(cnt, kind="stable")
    lens = cnt[by_len]
    cuts = np.flatnonzero(np.diff(lens)) + 1
    for group in np.split(by_len, cuts):
        size = int(cnt[group[0]])
        if size == 0:
            continue
        first = seg_first[group]
        block = neg[first[:, None] + np.arange(size)]
        picks[group, : min(k, size)] = block.argsort(axis=1)[:, :k] + first[:, None]
    valid = picks >= 0
    top = picks[valid]
    top_seg = np.nonzero(valid)[0]
    positive = contrib[top] > 0  # sorted descending: the positive ones are a prefix
    return top[positive], top_seg[positive]


def _top_positive_by_segment(contrib: np.ndarray, seg_first: np.ndarray, cnt: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_top_positive` with one np.argsort call per segment."""
    if not len(cnt):
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    neg = -contrib
    picks = [neg[a : a + c].argsort()[:k] for a, c in zip(seg_first.tolist(), cnt.tolist())]
    npick = np.fromiter(map(len, picks), dtype=np.int64, count=len(picks))
    top_seg = np.repeat(np.arange(len(cnt)), npick)
    top = np.concatenate(picks) + seg_first[top_seg]
    positive = contrib[top] > 0  # sorted descending: the positive ones are a prefix
    return top[positive], top_seg[positive]


def _explain_block(clf, info: _FeatureInfo, X, rows, norms, originals, limit: int, names) -> list[str]:
    n_items = len(rows)
    lows = [t.lower() for t in norms]
    odd = [k for k in range(n_items) if len(lows[k]) != len(norms[k])]
    out: list[str] = [""] * n_items
    if odd:  # lower() changed the length ('İ'): the reference, review by review
        ref = explain_reference(_Model(clf), names, X, [rows[k] for k in odd], [norms[k] for k in odd],
                                [originals[k] for k in odd], spans=limit)
        for k, text in zip(odd, ref):
            out[k] = text
    skip = set(odd)
    seg_item_l, seg_cause_l = [], []
    for k, (_, causes) in enumerate(rows):
        if k not in skip:
            for j in causes:
                seg_item_l.append(k)
                seg_cause_l.append(int(j))
    n_seg = len(seg_item_l)
    seg_item = np.asarray(seg_item_l, dtype=np.int64)
    seg_cause = np.asarray(seg_cause_l, dtype=np.int64)
    item_row = np.asarray([int(r) for r, _ in rows], dtype=np.int64)

    # contributions of every (review, cause): feature value × the cause's weight
    seg_row = item_row[seg_item]
    lo = X.indptr[seg_row].astype(np.int64)
    cnt = X.indptr[seg_row + 1].astype(np.int64) - lo
    ent = _ranges(lo, cnt)
    feat = X.indices[ent].astype(np.int64)
    coef = clf.coef_
    # coef[cause, feature] gathered through the flat array (one index per entry, not two)
    contrib = X.data[ent] * np.take(coef.ravel(), np.repeat(seg_cause * coef.shape[1], cnt) + feat)
    seg_first = np.cumsum(cnt) - cnt
    # the strongest positive features of each (review, cause), in np.argsort's order
    top, top_seg = _top_positive(contrib, seg_first, cnt, _TOP_FEATURES)
    top_feat = feat[top]

    seg_rating: dict[int, str] = {}
    for i in np.flatnonzero(info.has_rating[top_feat]):
        seg_rating[int(top_seg[i])] = info.rating[top_feat[i]]

    # the text features among them, in that order
    has_text = info.length[top_feat] > 0
    f_seg, f_feat, f_w = top_seg[has_text], top_feat[has_text], contrib[top[has_text]]
    f_len = info.length[f_feat]
    f_item = seg_item[f_seg]

    # joined texts: code points of the lower-cased (for finding) and normalised (for clauses)
    item_len = np.fromiter(map(len, norms), dtype=np.int64, count=n_items)
    item_start = np.cumsum(item_len + 1) - (item_len + 1)
    low_cps = _code_points("\x00".join(["\x00" * len(norms[k]) if k in skip else lows[k] for k in range(n_items)]))
    norm_cps = _code_points("\x00".join(norms))

    # every occurrence (overlapping ones too, as str.find finds them) of each (review, feature)
    pair_key, f_pair = _unique_inverse(f_item * len(info.length) + f_feat)
    p_item, p_feat = pair_key // len(info.length), pair_key % len(info.length)
    p_len = info.length[p_feat]
    max_len = int(p_len.max()) if len(p_len) else 0
    p_chars = np.zeros((len(pair_key), max(max_len, 1)), dtype=np.int64)
    within = _ranges(np.zeros(len(p_len), dtype=np.int64), p_len)
    p_chars[np.repeat(np.arange(len(pair_key)), p_len), within] = info.chars[np.repeat(info.offset[p_feat], p_len) + within]
    char_item = np.repeat(np.arange(n_items), item_len + 1)[: len(low_cps)]
    # positions of the characters that begin some wanted feature, by (review, character, position)
    pos_bits = max(len(low_cps).bit_length(), len(pair_key).bit_length(), 1)
    wanted_first = np.zeros(int(max(low_cps.max(initial=0), p_chars[:, 0].max(initial=0))) + 1, dtype=bool)
    wanted_first[p_chars[:, 0]] = len(pair_key) > 0
    at = np.flatnonzero(wanted_first[low_cps])
    sorted_key = np.sort((((char_item[at] << _SHIFT) | low_cps[at]) << pos_bits) | at, kind="stable")
    # the wanted (review, first character) pairs, sorted the same way, found by one merge
    p_end = item_start[p_item] + item_len[p_item]
    needle = np.sort((((p_item << _SHIFT) | p_chars[:, 0]) << pos_bits) | np.arange(len(pair_key)), kind="stable")
    which = needle & ((1 << pos_bits) - 1)
    key0 = needle & ~((1 << pos_bits) - 1)
    c_lo = np.empty(len(pair_key), dtype=np.int64)
    c_hi = np.empty(len(pair_key), dtype=np.int64)
    c_lo[which] = np.searchsorted(sorted_key, key0, "left")
    c_hi[which] = np.searchsorted(sorted_key, key0 + (1 << pos_bits), "left")
    c_cnt = c_hi - c_lo
    cand_pair = np.repeat(np.arange(len(pair_key)), c_cnt)
    cand_pos = sorted_key[_ranges(c_lo, c_cnt)] & ((1 << pos_bits) - 1)
    ok = cand_pos + p_len[cand_pair] <= p_end[cand_pair]
    for t in range(1, max_len):
        m = np.flatnonzero(ok & (p_len[cand_pair] > t))
        ok[m] = low_cps[cand_pos[m] + t] == p_chars[cand_pair[m], t]
    occ_pair, occ_pos = cand_pair[ok], cand_pos[ok]
    occ_cnt = np.bincount(occ_pair, minlength=len(pair_key))
    occ_first = np.cumsum(occ_cnt) - occ_cnt

    # per-character weights of each (review, cause), added in the reference's order
    seg_len = item_len[seg_item]
    seg_base = np.cumsum(seg_len) - seg_len
    W = np.zeros(int(seg_len.sum()) + 1)
    n_occ = occ_cnt[f_pair]
    o_f = np.repeat(np.arange(len(f_pair)), n_occ)
    o_pos = occ_pos[_ranges(occ_first[f_pair], n_occ)]
    o_len = f_len[o_f]
    o_at = seg_base[f_seg[o_f]] + o_pos - item_start[f_item[o_f]]
    value = f_w / f_len
    np.add.at(W, _ranges(o_at, o_len), np.repeat(value[o_f], o_len))

    # clauses of each review (runs of clause characters of its normalised text)
    inside = _clause_chars()[norm_cps]
    inside[item_start[1:] - 1] = False  # the joints between reviews
    edge = np.diff(np.concatenate([[False], inside, [False]]).astype(np.int8))
    cl_a, cl_b = np.flatnonzero(edge == 1), np.flatnonzero(edge == -1)
    cl_item = char_item[cl_a] if len(cl_a) else np.zeros(0, dtype=np.int64)
    cl_a, cl_b = cl_a - item_start[cl_item], cl_b - item_start[cl_item]
    cl_count = np.bincount(cl_item, minlength=n_items)
    cl_first = np.cumsum(cl_count) - cl_count

    # score every clause of every (review, cause); keep the `limit` best of each, in text order
    sc_n = cl_count[seg_item]
    sc_seg = np.repeat(np.arange(n_seg), sc_n)
    sc_cl = _ranges(cl_first[seg_item], sc_n)
    sc_a, sc_b = cl_a[sc_cl], cl_b[sc_cl]
    # a clause that no feature touches scores 0 and is never quoted: do not sum it
    weighted = np.concatenate([[0], np.cumsum(W > 0)])
    touched = np.flatnonzero(weighted[seg_base[sc_seg] + sc_b] > weighted[seg_base[sc_seg] + sc_a])
    sc_seg, sc_cl, sc_a, sc_b = sc_seg[touched], sc_cl[touched], sc_a[touched], sc_b[touched]
    exact_sums, exact_windows = _sums_are_numpys()
    if exact_sums:
        score = _pairwise_sums(W, seg_base[sc_seg] + sc_a, sc_b - sc_a)
    else:
        score = np.array([W[seg_base[s] + a : seg_base[s] + b].sum() for s, a, b in zip(sc_seg, sc_a, sc_b)])
    live = np.flatnonzero(score > 0)
    rank_order = live[np.lexsort((sc_cl[live], -score[live], sc_seg[live]))]
    ranked_seg = sc_seg[rank_order]
    first_of = np.searchsorted(ranked_seg, ranked_seg, "left")
    rank = np.arange(len(rank_order)) - first_of
    if limit >= 0:
        chosen = rank_order[rank < limit]
    else:  # sorted(...)[:limit] with a negative limit: all but the last -limit
        per_seg = np.bincount(ranked_seg, minlength=n_seg)
        chosen = rank_order[rank < per_seg[ranked_seg] + limit]
    ch_seg, ch_a, ch_b = sc_seg[chosen], sc_a[chosen].copy(), sc_b[chosen].copy()
    long = np.flatnonzero(ch_b - ch_a > MAX_QUOTE)
    if len(long):  # the MAX_QUOTE-character window with the most weight (first of equals)
        base = seg_base[ch_seg[long]] + ch_a[long]
        n_win = ch_b[long] - ch_a[long] - MAX_QUOTE + 1
        if exact_windows:
            sums = _window_sums(W, _ranges(base, n_win))
            first = np.cumsum(n_win) - n_win
            best = np.maximum.reduceat(sums, first)
            is_best = np.flatnonzero(sums == np.repeat(best, n_win))
            owner = np.repeat(np.arange(len(long)), n_win)[is_best]
            shift = is_best[np.concatenate([[True], owner[1:] != owner[:-1]])] - first
        else:
            shift = np.array([np.convolve(W[b : b + n + MAX_QUOTE - 1], np.ones(MAX_QUOTE), mode="valid").argmax()
                              for b, n in zip(base, n_win)], dtype=np.int64)
        ch_a[long] = ch_a[long] + shift
        ch_b[long] = ch_a[long] + MAX_QUOTE
    in_text = np.lexsort((ch_a, ch_seg))
    quoted = [""] * n_seg
    for s, a, b in zip(ch_seg[in_text].tolist(), ch_a[in_text].tolist(), ch_b[in_text].tolist()):
        k = seg_item_l[s]
        quoted[s] += "「" + _quote(norms[k][a:b], originals[k]) + "」"

    # the evidence text of each review, part by part as the reference writes it
    s = 0
    for k, (_, causes) in enumerate(rows):
        if k in skip:
            continue
        norm = norms[k]
        parts: list[str] = []
        notes: set[str] = set()
        names_k = [CAUSE_IDS[j] for j in seg_cause_l[s : s + len(causes)]]
        wanted = set(names_k)
        for cause in names_k:
            if quoted[s]:
                parts.append(f"{cause}{quoted[s]}")
            elif cause not in BUYER_SIDE:
                parts.append(f"{cause}「{norm[:20]}」")
            rating = seg_rating.get(s)
            if rating is not None:
                notes.add(_RATING_NOTE[rating])
            s += 1
        if wanted & BUYER_SIDE:
            parts.extend(cue_evidence(norm, wanted, recent_matches(norm)))  # matched for the cue features
        parts.extend(sorted(notes))
        out[k] = "; ".join(dict.fromkeys(parts))
    return out


class _Model:
    """The ``named_steps`` that :func:`explain_reference` reads, around a classifier."""

    def __init__(self, clf):
        self.named_steps = {"clf": clf}

_RATING_NOTE = {
    "rating_low": "低星评分 low star rating",
    "rating_mid": "中评星级 middling star rating",
    "rating_high": "高星评分 high star rating",
}
