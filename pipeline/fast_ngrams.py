"""Vocabulary column ids of :func:`pipeline.model.analyze`'s features for a whole chunk at once.

``TfidfFeatures.transform`` used to build every feature of every review as a Python string (jieba
words, ``"a b"`` word bigrams, ``"#"`` + character n-grams: ~180 strings for a 45-character
review) and look each up in the vocabulary. Here the same features are counted without making
the strings:

* **segmentation** — one call of :func:`pipeline.segment.segment` on the chunk's lower-cased
  texts joined by ``"\\x00"``: jieba and jieba-rs cut each run of Chinese/alphanumeric characters
  on its own, and ``"\\x00"`` is never part of such a run, so it comes out as a token of its own
  between the reviews' tokens (``tests/test_speed_equivalence.py`` checks this for both
  backends);
* **words** — one ``dict.get`` per token, mapped in C;
* **word bigrams** — each token that is a component of some vocabulary bigram gets a small
  integer; a pair of them is one ``int64`` key, looked up in a hash index of the vocabulary's
  bigram keys (no ``a + " " + b`` strings);
* **character n-grams** — the code points of the joined tokens as one numpy array, mapped to a
  dense alphabet of the characters that occur in the vocabulary's ``#``-terms (a character outside
  it cannot be part of a vocabulary n-gram); an n-gram is a base-``M`` integer of its dense codes,
  looked up in a hash index. N-grams running over the ``"\\x00"`` between two reviews contain the
  code 0 and drop out by themselves.

A review for which an assumption does not hold (it contains ``"\\x00"``, or a token with a space
in it) goes through ``analyze`` itself, string by string. The counts are then the same as
sklearn's; ``tests/test_model.py::test_fast_tfidf_equals_sklearn`` and
``tests/test_speed_equivalence.py`` check equality on thousands of real reviews.
"""

from __future__ import annotations

import weakref
from itertools import repeat

import numpy as np
import pandas as pd
import scipy.sparse as sp

SEP = "\x00"
_MAX_CODE = 0x110000

_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class NgramTables:
    """Lookup tables built once per fitted vocabulary (about 30 ms for 40k terms)."""

    def __init__(self, vocabulary: dict[str, int], char_orders, word_bigrams: bool):
        self.vocabulary = vocabulary
        self.char_orders = tuple(int(n) for n in char_orders)
        self.word_bigrams = bool(word_bigrams)
        # joining with SEP is safe only when no vocabulary term holds it
        self.joinable = not any(SEP in t for t in vocabulary)

        # word bigrams: "a b" → (component id of a, component id of b)
        comp: dict[str, int] = {}
        keys, ids = [], []
        self.bigram_ok = True
        for term, j in vocabulary.items():
            if " " not in term:
                continue
            a, _, b = term.partition(" ")
            if not a or not b or " " in b:  # not a bigram of two space-free tokens: use strings
                self.bigram_ok = False
                break
            keys.append((comp.setdefault(a, len(comp)), comp.setdefault(b, len(comp))))
            ids.append(j)
        self.components = comp
        self.n_components = max(len(comp), 1)
        if self.bigram_ok and keys:
            k = np.asarray(keys, dtype=np.int64)
            self.bigram_index = pd.Index(k[:, 0] * self.n_components + k[:, 1])
            self.bigram_ids = np.asarray(ids, dtype=np.int64)
        else:
            self.bigram_index, self.bigram_ids = None, np.zeros(0, dtype=np.int64)

        # character n-grams: "#" + g with len(g) in char_orders and no space in g
        grams = [(term[1:], j) for term, j in vocabulary.items()
                 if term.startswith("#") and len(term) - 1 in self.char_orders and " " not in term]
        alphabet = sorted({ch for g, _ in grams for ch in g})
        self.alpha = np.zeros(_MAX_CODE, dtype=np.int32)
        if alphabet:
            self.alpha[np.fromiter(map(ord, alphabet), dtype=np.int64, count=len(alphabet))] = np.arange(1, len(alphabet) + 1, dtype=np.int32)
        self.base = len(alphabet) + 1
        top = max(self.char_orders, default=0)
        # keys must fit in int64: order tag × base**top + base-`base` digits
        self.char_ok = self.joinable and SEP not in alphabet and (self.base ** top) * (top + 1) < 2 ** 62
        self.char_index, self.char_ids = None, np.zeros(0, dtype=np.int64)
        if self.char_ok and grams:
            self.char_index = pd.Index(self._keys([g for g, _ in grams]))
            self.char_ids = np.asarray([j for _, j in grams], dtype=np.int64)
            if not self.char_index.is_unique:  # cannot happen: distinct terms have distinct keys
                self.char_ok = False

    def _key(self, digits: list[int]) -> int:
        key = 0
        for d in digits:
            key = key * self.base + d
        return key + len(digits) * self.base ** max(self.char_orders)

    def _keys(self, grams: list[str]) -> np.ndarray:
        """``[self._key(dense codes of g) for g in grams]`` for all grams at once (int64)."""
        lens = np.fromiter(map(len, grams), dtype=np.int64, count=len(grams))
        dense = self.alpha[_code_points("".join(grams))].astype(np.int64)
        starts = np.cumsum(lens) - lens
        key = np.zeros(len(grams), dtype=np.int64)
        for t in range(int(lens.max(initial=0))):
            m = lens > t
            key[m] = key[m] * self.base + dense[starts[m] + t]
        return key + lens * self.base ** max(self.char_orders)

    def matches(self, vocabulary, char_orders, word_bigrams) -> bool:
        return (vocabulary is self.vocabulary and tuple(int(n) for n in char_orders) == self.char_orders
                and bool(word_bigrams) == self.word_bigrams)


def _code_points(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)


def tables_for(vectorizer) -> NgramTables:
    """The (cached) tables of a fitted ``TfidfFeatures``."""
    t = _CACHE.get(vectorizer)
    if t is None or not t.matches(vectorizer.vocabulary_, vectorizer.char_orders, vectorizer.word_bigrams):
        t = NgramTables(vectorizer.vocabulary_, vectorizer.char_orders, vectorizer.word_bigrams)
        _CACHE[vectorizer] = t
    return t


def _lookup(index: pd.Index | None, ids: np.ndarray, keys: np.ndarray) -> np.ndarray:
    if index is None or not len(keys):
        return np.full(len(keys), -1, dtype=np.int64)
    at = index.get_indexer(keys)
    return np.where(at >= 0, ids[at], -1)


def _factorize(tokens: list[str]) -> tuple[np.ndarray, list[str]]:
    """``pd.factorize(tokens)`` (codes in order of first appearance, and the distinct tokens as a
    list) by Arrow's dictionary encoding, which hashes the strings in C++ without a numpy object
    array; pandas when Arrow cannot hold a token (a lone surrogate)."""
    try:
        import pyarrow as pa

        encoded = pa.array(tokens, type=pa.string()).dictionary_encode()
        return encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64), encoded.dictionary.to_pylist()
    except (ImportError, UnicodeError, ValueError, TypeError):  # pa.ArrowInvalid is a ValueError
        codes, uniq = pd.factorize(np.asarray(tokens, dtype=object), use_na_sentinel=False)
        return codes, (uniq.tolist() if hasattr(uniq, "tolist") else list(uniq))


def _raw_tokens(text: str) -> list[str]:
    """The backend's tokens of ``text`` before :func:`pipeline.segment.segment` drops the
    whitespace ones (dropped here per distinct token instead of per token)."""
    from pipeline import segment as seg

    backend = seg.current_backend()
    try:
        if backend == "rjieba":
            return seg._rjieba().cut(text, False)
        if backend == "jieba":
            return seg._jieba().lcut(text, HMM=False)
    except AttributeError:  # the segment module changed: its public function is always right
        pass
    return seg.segment(text)


class ClauseIds:
    """The clause-level features of :func:`feature_ids` (``clauses=True``): ``(rows, cols)``
    occurrences where a row is a clause — the clauses of every review of more than one, in
    order, as :class:`pipeline.primary.Clauses` lists them — with each clause's review
    (``owner``), its position there (``pos``) and the clauses per review (``count``, 1 for a
    review of one clause or none)."""

    def __init__(self, rows, cols, owner, pos, count):
        self.rows, self.cols, self.owner, self.pos, self.count = rows, cols, owner, pos, count


def _clause_runs(codes_raw, uniq, u_sep, fast_rows, n_docs):
    """Clause number (global run of clause tokens, -1 for a separator token) of every raw token,
    the first run of each review, runs per review, and the reviews where a token holds clause
    and separator characters both (those are split the string way)."""
    from pipeline.evidence import _clause_chars

    u = len(uniq)
    u_len = np.fromiter(map(len, uniq), dtype=np.int64, count=u)
    inside = _clause_chars()[_code_points("".join(uniq))].astype(np.int64)
    u_in = np.add.reduceat(inside, np.cumsum(u_len) - u_len) if u else np.zeros(0, dtype=np.int64)
    u_clause = (u_in == u_len) & ~u_sep  # SEP is a clause character of the regex, not of a review
    u_mixed = (u_in > 0) & (u_in < u_len) & ~u_sep
    is_c = u_clause[codes_raw]
    start = is_c.copy()
    start[1:] &= ~is_c[:-1]
    run = np.where(is_c, np.cumsum(start) - 1, -1).astype(np.int32)  # int32: one per character later
    doc = fast_rows[np.cumsum(u_sep[codes_raw])] if len(codes_raw) else np.zeros(0, dtype=np.int64)
    runs = np.bincount(doc[start], minlength=n_docs)
    first = np.full(n_docs, 0, dtype=np.int64)
    at = np.flatnonzero(start)
    if len(at):
        d = doc[at]
        lead = np.concatenate([[True], d[1:] != d[:-1]])
        first[d[lead]] = run[at[lead]]
    mixed = np.unique(doc[u_mixed[codes_raw]]) if u_mixed.any() else np.zeros(0, dtype=np.int64)
    return run, first, runs, mixed


def chunk_tokens(docs: list[str]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The tokens :func:`pipeline.segment.segment` gives each lower-cased doc, for a whole chunk:
    ``(doc of each token, code of each token, the distinct tokens)``, in order."""
    from pipeline.segment import segment

    lows = [d.lower() for d in docs]
    slow = [i for i, d in enumerate(lows) if SEP in d]
    rows = np.arange(len(docs))
    if slow:
        rows = np.setdiff1d(rows, slow)
    doc_parts, code_parts, uniq = [], [], []
    if len(rows):
        codes, uniq = _factorize(_raw_tokens(SEP.join([lows[i] for i in rows])))
        uniq = list(uniq)
        u_keep = np.fromiter((not t.isspace() for t in uniq), dtype=bool, count=len(uniq))
        codes = codes[u_keep[codes]]
        u_sep = np.fromiter(map(SEP.__eq__, uniq), dtype=bool, count=len(uniq))
        is_sep = u_sep[codes]
        doc_parts.append(rows[np.cumsum(is_sep)][~is_sep])
        code_parts.append(codes[~is_sep])
    if slow:
        index = {t: j for j, t in enumerate(uniq)}
        for i in slow:
            toks = segment(lows[i])
            for t in toks:
                if t not in index:
                    index[t] = len(uniq)
                    uniq.append(t)
            doc_parts.append(np.full(len(toks), i, dtype=np.int64))
            code_parts.append(np.fromiter(map(index.__getitem__, toks), dtype=np.int64, count=len(toks)))
        order = np.argsort(np.concatenate(doc_parts), kind="stable")
        return np.concatenate(doc_parts)[order], np.concatenate(code_parts)[order], uniq
    if not doc_parts:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), []
    return doc_parts[0], code_parts[0], uniq


def feature_ids(docs: list[str], tables: NgramTables, analyze, clauses: bool = False):
    """``(rows, columns)`` of every in-vocabulary feature occurrence of ``docs`` — the multiset
    that ``[vocabulary.get(f) for f in analyze(doc)]`` gives, doc by doc (order aside).

    ``clauses=True`` also returns the same for the clauses of each review (:class:`ClauseIds`):
    what ``feature_ids`` of the clause texts (``pipeline.evidence._CLAUSE``) would give, taken
    from the review's own tokens by position. A clause's tokens are the review's tokens between
    two separator tokens: jieba and jieba-rs cut at every separator but ``.``, and around a ``.``
    the best route is the same on either side (``tests/test_speed_equivalence.py``). A review
    with a token of clause and separator characters both, or a ``Σ`` (whose lower case depends
    on what follows), has its clauses cut the string way."""
    get = tables.vocabulary.get
    n = len(docs)
    lows = [d.lower() for d in docs]
    if tables.joinable and (tables.char_ok or not tables.char_orders):
        slow = [i for i, d in enumerate(lows) if SEP in d]
    else:  # a vocabulary this project never builds: every review the string way
        slow = list(range(n))
    fast_rows = np.arange(n)
    if slow:
        skip = set(slow)
        fast_rows = np.asarray([i for i in range(n) if i not in skip], dtype=np.int64)
        lows = [lows[i] for i in fast_rows]
    rows_out, cols_out, cl_out = [], [], []
    runs = np.zeros(n, dtype=np.int64)
    clause_slow: set[int] = set(slow) | {i for i, d in enumerate(docs) if "\u03a3" in d} if clauses else set()
    if len(lows):
        # every property of a token is computed once per distinct token
        codes, uniq = _factorize(_raw_tokens(SEP.join(lows)))
        u = len(uniq)
        u_keep = np.fromiter((not t.isspace() for t in uniq), dtype=bool, count=u)
        keep = u_keep[codes]
        toks_u = uniq
        u_sep = np.fromiter(map(SEP.__eq__, toks_u), dtype=bool, count=u)
        if clauses:
            run, first, runs, mixed = _clause_runs(codes, uniq, u_sep, fast_rows, n)
            clause_slow.update(mixed.tolist())
            tok_cl = run[keep]
        codes = codes[keep]  # the tokens of segment(): whitespace tokens dropped
        m = len(codes)
        is_sep = u_sep[codes]
        tok_doc = fast_rows[np.cumsum(is_sep)] if m else np.zeros(0, dtype=np.int64)
        u_space = np.fromiter((" " in t for t in toks_u), dtype=bool, count=u) & u_keep
        bad_docs = None
        if u_space.any():  # a token holding a space: its review goes the string way
            bad_docs = np.unique(tok_doc[u_space[codes]])
            slow.extend(bad_docs.tolist())
            clause_slow.update(bad_docs.tolist())
        # words
        wid = np.fromiter(map(get, toks_u, repeat(-1)), dtype=np.int64, count=u)[codes]
        hit = wid >= 0
        rows_out.append(tok_doc[hit])
        cols_out.append(wid[hit])
        if clauses:
            cl_out.append(tok_cl[hit])
        # word bigrams
        if tables.word_bigrams and m > 1:
            if tables.bigram_ok:
                comp = np.fromiter(map(tables.components.get, toks_u, repeat(-1)), dtype=np.int64, count=u)[codes]
                left, right = comp[:-1], comp[1:]
                at = np.flatnonzero((left >= 0) & (right >= 0))  # a SEP token is never a component
                ids = _lookup(tables.bigram_index, tables.bigram_ids, left[at] * tables.n_components + right[at])
            else:
                at = np.flatnonzero(~is_sep[:-1] & ~is_sep[1:])
                ids = np.fromiter((get(toks_u[codes[k]] + " " + toks_u[codes[k + 1]], -1) for k in at),
                                  dtype=np.int64, count=len(at))
            hit = ids >= 0
            rows_out.append(tok_doc[at[hit]])
            cols_out.append(ids[hit])
            if clauses:
                a = at[hit]
                cl_out.append(np.where(tok_cl[a] == tok_cl[a + 1], tok_cl[a], -1))
        # character n-grams of "".join(words), review by review
        if tables.char_orders:
            u_len = np.fromiter(map(len, toks_u), dtype=np.int64, count=u)
            char_doc = np.repeat(tok_doc, u_len[codes])
            u_start = np.cumsum(u_len) - u_len
            # the code points of every distinct token once, then gathered token by token
            u_cps = np.frombuffer("".join(toks_u).encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
            u_dense = tables.alpha[u_cps]
            lens = u_len[codes]
            starts = np.repeat(u_start[codes] - (np.cumsum(lens) - lens), lens) + np.arange(int(lens.sum()))
            dense = u_dense[starts].astype(np.int64)  # 0: not in the alphabet (SEP included)
            if clauses:
                char_cl = np.repeat(tok_cl, lens)
            top = max(tables.char_orders)
            for order in tables.char_orders:
                k = len(dense) - order + 1
                if k <= 0:
                    continue
                key = np.zeros(k, dtype=np.int64)
                ok = np.ones(k, dtype=bool)
                for off in range(order):
                    d = dense[off : off + k]
                    key = key * tables.base + d
                    ok &= d > 0
                at = np.flatnonzero(ok)
                ids = _lookup(tables.char_index, tables.char_ids, key[at] + order * tables.base ** top)
                hit = ids >= 0
                rows_out.append(char_doc[at[hit]])
                cols_out.append(ids[hit])
                if clauses:
                    a = at[hit]
                    c0 = char_cl[a]
                    cl_out.append(np.where(c0 == char_cl[a + order - 1], c0, -1))
        if bad_docs is not None and len(bad_docs):  # drop what the fast path counted for them
            rows = np.concatenate(rows_out)
            cols = np.concatenate(cols_out)
            bad = np.zeros(n, dtype=bool)
            bad[bad_docs] = True
            keep = ~bad[rows]  # np.isin sorts the millions of rows
            rows_out, cols_out = [rows[keep]], [cols[keep]]
            if clauses:
                cl_out = [np.concatenate(cl_out)[keep]]
    fast_cl = None
    if rows_out:  # the fast path's occurrences, joined once (long reviews hold millions)
        rows_out, cols_out = [np.concatenate(rows_out)], [np.concatenate(cols_out)]
        if clauses:
            fast_cl = (rows_out[0], cols_out[0], np.concatenate(cl_out))
            del cl_out
    for i in sorted(set(slow)):
        ids = np.fromiter(map(get, analyze(docs[i]), repeat(-1)), dtype=np.int64)
        ids = ids[ids >= 0]
        rows_out.append(np.full(len(ids), i, dtype=np.int64))
        cols_out.append(ids)
    if not rows_out:
        rows, cols = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    elif len(rows_out) == 1:
        rows, cols = rows_out[0], cols_out[0]
    else:
        rows, cols = np.concatenate(rows_out), np.concatenate(cols_out)
    del rows_out, cols_out
    if not clauses:
        return rows, cols
    return rows, cols, _clause_ids(docs, get, analyze, fast_cl, first if len(lows) else None, runs, clause_slow)


def _clause_ids(docs, get, analyze, fast, first, runs, slow: set[int]) -> ClauseIds:
    """The :class:`ClauseIds` of the chunk from the fast path's clause-tagged occurrences and,
    for the reviews in ``slow``, the clause texts cut and analysed one by one."""
    from pipeline.evidence import _CLAUSE

    n = len(docs)
    count = runs.copy()
    parts = {}
    for i in sorted(slow):
        parts[i] = _CLAUSE.findall(docs[i])
        count[i] = len(parts[i])
    count = np.maximum(count, 1)
    split = count > 1
    n_cl = np.where(split, count, 0)
    offset = np.cumsum(n_cl) - n_cl
    owner = np.repeat(np.arange(n), n_cl)
    pos = np.arange(int(n_cl.sum())) - offset[owner]
    rows_out, cols_out = [], []
    if fast is not None:
        rows, cols, cl = fast
        ok = (cl >= 0) & split[rows]
        if slow:
            cut = np.zeros(n, dtype=bool)
            cut[np.fromiter(slow, dtype=np.int64, count=len(slow))] = True
            ok &= ~cut[rows]
        r = rows[ok]
        rows_out.append(offset[r] + cl[ok] - first[r])
        cols_out.append(cols[ok])
    for i in sorted(slow):
        if count[i] < 2:
            continue
        for k, part in enumerate(parts[i]):
            ids = np.fromiter(map(get, analyze(part), repeat(-1)), dtype=np.int64)
            ids = ids[ids >= 0]
            rows_out.append(np.full(len(ids), offset[i] + k, dtype=np.int64))
            cols_out.append(ids)
    empty = np.zeros(0, dtype=np.int64)
    return ClauseIds(np.concatenate(rows_out) if rows_out else empty, np.concatenate(cols_out) if cols_out else empty,
                     owner, pos, count)


def counts_matrix(rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int], dtype) -> sp.csr_array:
    """The CSR count matrix of the (row, column) occurrences, indices sorted, duplicates summed —
    what ``coo_array(...).tocsr()`` + ``sum_duplicates()`` gives — by one ``np.sort`` of packed
    keys."""
    n_rows, n_cols = shape
    col_bits = max(int(n_cols - 1).bit_length(), 1)
    if not len(rows) or int(n_rows).bit_length() + col_bits > 62:
        X = sp.coo_array((np.ones(len(rows), dtype=dtype), (rows, cols)), shape=shape).tocsr()
        X.sum_duplicates()
        return X
    key = np.sort((rows << col_bits) | cols, kind="stable")  # timsort: the parts come row-ordered
    new = np.concatenate([[True], key[1:] != key[:-1]])
    at = np.flatnonzero(new)
    counts = np.diff(np.append(at, len(key))).astype(dtype)
    unique = key[at]
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(unique >> col_bits, minlength=n_rows), out=indptr[1:])
    index_type = np.int32 if max(n_cols, len(unique)) < 2**31 else np.int64
    X = sp.csr_array((counts, (unique & ((1 << col_bits) - 1)).astype(index_type), indptr.astype(index_type)), shape=shape)
    X.has_sorted_indices = True
    X.has_canonical_format = True
    return X
