"""Every fast path of the scorer gives exactly what the reference code gives, on real reviews.

The fast paths (issue 13) replace Python loops over strings by whole-chunk numpy work; the
reference implementations they replaced live on here as the oracle. Thousands of real reviews
from ``data/raw`` (simplified, traditional, emoji, Latin, long and empty ones) plus hostile
strings go through both, and the outputs must be equal — bit for bit for the feature matrices,
character for character for the texts.
"""

from __future__ import annotations

from itertools import repeat

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from pipeline.paths import ROOT

HOSTILE = [
    "", " ", "a b", "x\x00y", "\x00", "ΑΣ ΣΑ ς", "İstanbul KELVIN \u212a ſ", "哈哈哈 😂😂", "质量\n差", "\t\r\n",
    "ＡＢＣ１２３！！！", "返我50块就改好评", "加我vx 看我头像", "URL URL", "#1 #色差 # #", "a  b", "色差" * 300,
    "好" * 5000, "<b>差评</b> &amp; http://x.cn/a?b=1", "東西壞了，客服態度惡劣", "\u200b\ufeff看不见",
]


def _reviews(n: int, seed: int) -> list[str]:
    frames = [pd.read_csv(ROOT / "data" / "raw" / f, dtype=str, keep_default_na=False)
              for f in ("online_shopping_neg.csv", "waimai_neg.csv")]
    texts = pd.concat([f["text"] for f in frames], ignore_index=True)
    pick = np.random.default_rng(seed).choice(len(texts), size=min(n, len(texts)), replace=False)
    return texts.iloc[pick].tolist()


@pytest.fixture(scope="module")
def raw_reviews() -> list[str]:
    return _reviews(4000, 7) + HOSTILE


@pytest.fixture(scope="module")
def norm_reviews(raw_reviews) -> list[str]:
    from pipeline.normalize import normalize

    return [normalize(t) for t in raw_reviews]


# --- TF-IDF features ----------------------------------------------------------------------------

def _reference_ids(docs, vocabulary, analyzer):
    """What TfidfFeatures.transform counted before: every analyze() string looked up."""
    rows, cols = [], []
    for i, d in enumerate(docs):
        ids = [j for j in map(vocabulary.get, analyzer(d), repeat(-1)) if j >= 0]
        rows.extend([i] * len(ids))
        cols.extend(ids)
    return np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)


def _pairs(rows, cols):
    order = np.lexsort((cols, rows))
    return np.stack([rows[order], cols[order]])


@pytest.fixture(scope="module")
def fitted_tfidf(norm_reviews):
    from pipeline.model import TfidfFeatures

    return TfidfFeatures().fit(norm_reviews[:1500])


@pytest.mark.parametrize("backend", ["rjieba", "jieba"])
def test_tfidf_equals_sklearn_on_real_reviews(fitted_tfidf, norm_reviews, raw_reviews, backend):
    from sklearn.feature_extraction.text import TfidfVectorizer

    from pipeline.model import _Analyzer
    from pipeline.segment import current_backend, use_backend

    before = current_backend()
    use_backend(backend)
    try:
        ref = TfidfVectorizer(analyzer=_Analyzer((1, 2, 3), True), sublinear_tf=True, dtype=np.float32)
        ref.vocabulary_, ref.idf_ = fitted_tfidf.vocabulary_, fitted_tfidf.idf_
        docs = norm_reviews[1500:] + raw_reviews[-300:]  # unseen reviews, and texts never normalised
        a, b = fitted_tfidf.transform(docs), ref.transform(docs)
        assert a.shape == b.shape and a.dtype == b.dtype
        a.sort_indices()
        b.sort_indices()
        np.testing.assert_array_equal(a.indptr, b.indptr)
        np.testing.assert_array_equal(a.indices, b.indices)
        np.testing.assert_array_equal(a.data, b.data)
    finally:
        use_backend(before)


def test_joined_segmentation_equals_per_review(norm_reviews, raw_reviews):
    """The fast path cuts a chunk in one call, reviews joined by NUL: both backends give each
    review's tokens exactly as cutting it alone."""
    from pipeline.fast_ngrams import SEP
    from pipeline.segment import segment_with

    docs = [d.lower() for d in norm_reviews[:3000] + raw_reviews[:500] if SEP not in d]
    for backend in ("rjieba", "jieba"):
        joined = segment_with(SEP.join(docs), backend)
        split, cur = [], []
        for t in joined:
            if t == SEP:
                split.append(cur)
                cur = []
            else:
                cur.append(t)
        split.append(cur)
        assert split == [segment_with(d, backend) for d in docs], backend


def test_feature_ids_fallbacks_equal_reference(norm_reviews):
    """Odd vocabularies (a term with NUL, a three-word term, '#' terms with spaces) and odd
    reviews (NUL inside) take the string path and still count the same."""
    from pipeline.fast_ngrams import NgramTables, feature_ids
    from pipeline.model import _Analyzer

    docs = norm_reviews[:400] + ["x\x00y 色差", "\x00", "", "色差 太大"]
    analyzer = _Analyzer((1, 2, 3), True)
    base = {}
    for d in docs[:200]:
        for f in analyzer(d):
            base.setdefault(f, len(base))
    for extra in ({}, {"\x00": 0}, {"a b c": 0}, {"#色 差": 0}, {"#" + "长" * 9: 0}):
        vocab = dict(base)
        for term in extra:
            vocab.setdefault(term, len(vocab))
        for orders, bigrams in (((1, 2, 3), True), ((2, 3), False), ((), True), ((1, 2, 3, 4, 5), True)):
            an = _Analyzer(orders, bigrams)
            tables = NgramTables(vocab, orders, bigrams)
            got = _pairs(*feature_ids(docs, tables, an))
            want = _pairs(*_reference_ids(docs, vocab, an))
            np.testing.assert_array_equal(got, want)


CLAUSE_CASES = [
    "3.5寸屏幕，很好...不错", "好的...太差了!!", "1.5匹的空调.不制冷，客服不回", "a.b测试，Σα.β", "ΑΣ.Β好，差",
    "  空格 很多  ，好", "，，，", "。好。", "x\x00y，z", "色 差，太大", "www.jd.com 退货，慢", "~~质量差~~发货慢…",
    "v2.0版本,卡顿;死机、发热", "好评!差评?中评", "质量\n差，快递\t慢",
]


def _clause_reference(docs, vocabulary, analyzer):
    from pipeline.primary import Clauses

    c = Clauses(docs)
    rows, cols = _reference_ids(c.texts, vocabulary, analyzer)
    return c, rows, cols


@pytest.mark.parametrize("backend", ["rjieba", "jieba"])
def test_clause_features_from_the_review_tokens_equal_cutting_the_clauses(fitted_tfidf, norm_reviews, backend):
    """The clauses' n-grams taken from the review's own tokens by position (``clauses=True``) are
    exactly the n-grams of the clause texts cut one by one — reviews with '.', '...', decimals,
    whitespace, NUL and a Σ included — and the clauses are the stacker's, in its order."""
    from pipeline.fast_ngrams import feature_ids, tables_for
    from pipeline.segment import current_backend, use_backend

    before = current_backend()
    use_backend(backend)
    try:
        docs = norm_reviews[:3000] + CLAUSE_CASES
        an = fitted_tfidf.build_analyzer()
        rows, cols, cl = feature_ids(docs, tables_for(fitted_tfidf), an, clauses=True)
        np.testing.assert_array_equal(_pairs(rows, cols), _pairs(*_reference_ids(docs, fitted_tfidf.vocabulary_, an)))
        ref, r_rows, r_cols = _clause_reference(docs, fitted_tfidf.vocabulary_, an)
        assert len(ref.texts) > 5000
        np.testing.assert_array_equal(cl.count, ref.count)
        np.testing.assert_array_equal(cl.owner, ref.owner)
        np.testing.assert_array_equal(cl.pos, ref.pos)
        np.testing.assert_array_equal(_pairs(cl.rows, cl.cols), _pairs(r_rows, r_cols))
    finally:
        use_backend(before)


def test_clause_features_with_odd_vocabularies_equal_cutting_the_clauses(norm_reviews):
    from pipeline.fast_ngrams import NgramTables, feature_ids
    from pipeline.model import _Analyzer

    docs = norm_reviews[:300] + CLAUSE_CASES
    analyzer = _Analyzer((1, 2, 3), True)
    base = {}
    for d in docs[:150]:
        for f in analyzer(d):
            base.setdefault(f, len(base))
    for extra in ({}, {"\x00": 0}, {"#色 差": 0}):
        vocab = dict(base)
        for term in extra:
            vocab.setdefault(term, len(vocab))
        for orders, bigrams in (((1, 2, 3), True), ((2, 3), False), ((), True)):
            an = _Analyzer(orders, bigrams)
            _, _, cl = feature_ids(docs, NgramTables(vocab, orders, bigrams), an, clauses=True)
            ref, r_rows, r_cols = _clause_reference(docs, vocab, an)
            np.testing.assert_array_equal(cl.count, ref.count)
            np.testing.assert_array_equal(_pairs(cl.rows, cl.cols), _pairs(r_rows, r_cols))


def test_the_stacker_gets_the_same_clause_matrix_either_way(tiny_model, norm_reviews):
    """features_with_clauses gives the model's own feature matrix, and its clause matrix equals
    ``features.transform`` of the clause texts, for any set of reviews in question."""
    from pipeline.primary import Clauses, features_with_clauses

    tiny_model._ensure_ready()
    model = tiny_model.model_
    prepared = model.named_steps["prepare"].transform(pd.DataFrame({"text": norm_reviews[:800] + CLAUSE_CASES}))
    X, source = features_with_clauses(model, prepared)
    X0 = model.named_steps["features"].transform(prepared)
    assert (X != X0).nnz == 0 and X.shape == X0.shape
    keep = np.random.default_rng(3).random(len(prepared)) < 0.6
    clauses = Clauses(prepared["text"].tolist(), keep=keep)
    got = source.matrix(model, clauses, keep)
    want = model.named_steps["features"].transform(clauses.frame())
    assert got.shape == want.shape and (got != want).nnz == 0


def test_tfidf_output_type_unchanged(fitted_tfidf, norm_reviews):
    X = fitted_tfidf.transform(norm_reviews[:50])
    assert sp.issparse(X) and X.format == "csr" and X.dtype == np.float32
    with pytest.raises(ValueError):  # as sklearn's own transform: no rows is an error
        fitted_tfidf.transform([])


# --- evidence --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def shipped(shipped_model_path):
    from pipeline.persist import load_predictor

    p = load_predictor(shipped_model_path)
    p._ensure_ready()
    return p


def _explain_args(predictor, texts, ratings=None):
    """The arguments Predictor.score_chunk passes to explain(), for every review with a cause."""
    frame = predictor.resolve(pd.DataFrame({"text": texts, "rating": ratings if ratings is not None else [""] * len(texts)}))
    read = predictor._probabilities(frame)
    proba, head, X, live, norm = read.proba, read.head, read.X, read.live, read.glossed
    passed = proba >= predictor.model_.named_steps["clf"].thresholds_
    passed[np.arange(len(frame)), head[:, :8].argmax(axis=1)] = True  # more causes than score_chunk keeps
    pos = np.full(len(frame), -1)
    pos[live] = np.arange(len(live))
    want = [(i, np.flatnonzero(passed[i])) for i in live if passed[i].any()]
    return (predictor.model_, predictor.features_, X, [(pos[i], c) for i, c in want], [norm[i] for i, _ in want],
            [texts[i] for i, _ in want])


@pytest.mark.parametrize("spans", [2, 1, 3])
def test_explain_equals_reference(shipped, raw_reviews, spans):
    from pipeline.evidence import explain, explain_reference

    ratings = np.random.default_rng(3).choice(["1", "2", "3", "4", "5", ""], len(raw_reviews)).tolist()
    args = _explain_args(shipped, raw_reviews, ratings)
    assert len(args[3]) > 3000
    fast, ref = explain(*args, spans=spans), explain_reference(*args, spans=spans)
    assert fast == ref


def test_explain_blocks_and_odd_texts(shipped, raw_reviews, monkeypatch):
    """Block boundaries, texts whose lower() changes their length, traditional originals."""
    from pipeline import evidence

    texts = raw_reviews[:600] + ["İİ 质量很差 İstanbul", "ΑΣ 客服态度差", "質量很差，東西壞了，客服態度惡劣", "好" * 3000,
                                 "差评差评差评！！！外套描述的根本不一样！！", "返我50块就改好评，不然一直差评"]
    args = _explain_args(shipped, texts)
    monkeypatch.setattr(evidence, "_BLOCK", 97)
    monkeypatch.setattr(evidence, "_BLOCK_ENTRIES", 5000)
    assert evidence.explain(*args) == evidence.explain_reference(*args)


def test_numpy_sum_emulations():
    from pipeline.evidence import MAX_QUOTE, _pairwise_sums, _sums_are_numpys, _window_sums

    assert _sums_are_numpys() == (True, True)
    rng = np.random.default_rng(11)
    W = rng.random(5000) * 10.0 ** rng.integers(-9, 9, 5000)
    W[rng.random(5000) < 0.5] = 0.0
    starts = rng.integers(0, 4500, 3000)
    lens = rng.integers(1, 400, 3000)
    got = _pairwise_sums(W, starts, lens)
    want = np.array([W[a : a + n].sum() for a, n in zip(starts, lens)])
    np.testing.assert_array_equal(got, want)
    seg = W[1000:1300]
    np.testing.assert_array_equal(_window_sums(W, 1000 + np.arange(300 - MAX_QUOTE + 1)),
                                  np.convolve(seg, np.ones(MAX_QUOTE), mode="valid"))


def test_top_features_order_as_argsort():
    """Ties included: np.argsort's own order among equal contributions."""
    from pipeline.evidence import _top_positive

    rng = np.random.default_rng(2)
    cnt = rng.integers(0, 300, 500)
    contrib = rng.integers(-5, 8, int(cnt.sum())) * 0.125
    first = np.cumsum(cnt) - cnt
    top, seg = _top_positive(contrib, first, cnt, 12)
    want_top, want_seg = [], []
    for s, (a, c) in enumerate(zip(first, cnt)):
        o = np.argsort(-contrib[a : a + c])[:12] + a
        o = o[contrib[o] > 0]
        want_top.extend(o)
        want_seg.extend([s] * len(o))
    np.testing.assert_array_equal(top, want_top)
    np.testing.assert_array_equal(seg, want_seg)


def test_clause_characters_match_the_clause_pattern():
    from pipeline.evidence import _CLAUSE, _clause_chars

    table = _clause_chars()
    sample = "".join(map(chr, range(0, 0x3100))) + "，。！？,.!?；;、~…\u3000\u2028 a质"
    for ch in sample:
        assert table[ord(ch)] == bool(_CLAUSE.fullmatch(ch)), repr(ch)


# --- cues ----------------------------------------------------------------------------------------

def _cue_fuzz(n: int) -> list[str]:
    """Strings made of the characters the cue patterns name, plus case-folding oddities."""
    import random

    from pipeline.cues import CUES

    alphabet = sorted({ch for c in CUES for ch in c.pattern if ch not in "()|?:*+[]{}.\\^$<=!"} | set("İıſK\u212aRMBVXQHE 5二!?\n"))
    rng = random.Random(0)
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30))) for _ in range(n)]


def test_cue_matches_equal_reference(norm_reviews, raw_reviews):
    from pipeline.cues import _scanner, match_cues, match_cues_many, recent_matches

    assert _scanner() is not None  # the prefix tables describe every cue of the lexicon
    for texts in (norm_reviews, raw_reviews, _cue_fuzz(20000)):
        fast = match_cues_many(texts)
        for t, found in zip(texts, fast):
            assert list(found.items()) == list(match_cues(t).items()), t  # same snippets, same key order
        assert recent_matches(texts[5]) == match_cues(texts[5])
    assert recent_matches("不在上一批的文本 质量差") == match_cues("不在上一批的文本 质量差")


def test_cue_features_equal_row_by_row(norm_reviews):
    from pipeline.cues import FEATURE_NAMES, SHAPE_NAMES, CueFeatures, cue_vector, shape, shape_many

    texts = norm_reviews + _cue_fuzz(3000)
    got = CueFeatures().fit(texts).transform(texts)
    want = sp.csr_matrix(np.asarray([cue_vector(t) for t in texts], dtype=np.float64).reshape(len(texts), len(FEATURE_NAMES)))
    assert got.dtype == want.dtype and got.shape == want.shape
    assert (got != want).nnz == 0
    ref = np.asarray([[shape(t)[n] for n in SHAPE_NAMES] for t in texts], dtype=np.float64)
    np.testing.assert_array_equal(shape_many(texts), ref)


# --- MinHash signatures --------------------------------------------------------------------------

def test_signatures_equal_reference(norm_reviews, raw_reviews, monkeypatch):
    from pipeline import batch

    extra = ["", "ABCdefGHIjk", "质量" * 3000, "İstanbul ΑΣΣ 질문 ｱｲｳ abcDEF中文字符串", "12345678!!!!", "😂" * 20 + "哈哈哈哈哈哈哈哈"]
    for texts in (norm_reviews, raw_reviews, extra):
        got, want = batch.signatures(texts), batch.signatures_reference(texts)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])
    skip = np.random.default_rng(0).random(len(norm_reviews)) < 0.5
    sig, eligible = batch.signatures(norm_reviews, skip=skip)
    ref, ref_eligible = batch.signatures_reference(norm_reviews)
    np.testing.assert_array_equal(eligible, ref_eligible)
    np.testing.assert_array_equal(sig[~skip], ref[~skip])
    assert not sig[skip].any()
    monkeypatch.setattr(batch, "_TRIGRAMS_PER_BLOCK", 997)  # many blocks
    np.testing.assert_array_equal(batch.signatures(norm_reviews[:2000] + extra)[0],
                                  batch.signatures_reference(norm_reviews[:2000] + extra)[0])


# --- normalisation --------------------------------------------------------------------------------

def _normalize_fuzz(n: int) -> list[str]:
    import random

    rng = random.Random(1)
    pool = list("ａｂＡＢ１２！？　 \t\n\r\x00\x1f\x7f\x85\u200b\ufeff\u00ad\u2028哈哈哈哈！！！！想像什幺東西壞了質量軟體.-…")
    pool += ["www.x.cn", "http://a.b/c?d=1", "HTTPS:", "abc.com", "ﬁ", "①", "㈱", "ｶﾞ", "e\u0301", "\u0301", "&amp;", "<b>",
             "\ue000", "\ue001", "\U0001d400", "ＡＢＣ", "...", "  ", "ſ", "\u212a"]
    return ["".join(rng.choice(pool) for _ in range(rng.randint(0, 40))) for _ in range(n)]


def test_normalize_many_equals_normalize(raw_reviews):
    from pipeline.normalize import normalize, normalize_many

    jd = pd.read_csv(ROOT / "data" / "raw" / "jd_aircon.csv", dtype=str, keep_default_na=False)["text"].tolist()[:2000]
    odd = [None, float("nan"), 3, 4.5, "", " ", "\u0301abc", "abc\u0301", "a" * 5000, "好" * 4001 + "\u0301",
           "\u200b" * 5, "x\ue000\ue001y", "\ue000", "x\ue000"]
    for texts in (raw_reviews, jd, _normalize_fuzz(20000), odd * 3, ["只有一条"], []):
        assert normalize_many(texts) == [normalize(t) for t in texts]
    frame = pd.DataFrame({"id": [1, 2], "text": ["ＡＢＣ！！！！", "東西壞了"]})
    assert normalize_many(frame) == [normalize("ＡＢＣ！！！！"), normalize("東西壞了")]


def test_tables_limited_to_the_bmp_are_complete():
    """The lookup tables scan only the BMP for speed: nothing beyond it matters to them."""
    import re

    from pipeline.cues import _wild_chars
    from pipeline.evidence import _CLAUSE
    from pipeline.normalize import _CONTROL, _INVISIBLE, _traditional_only

    beyond = "".join(map(chr, range(0x10000, 0x110000)))
    for rx in (_INVISIBLE, _CONTROL, re.compile(r"[^\S ]"), _traditional_only(), re.compile("(?i)[a-z]")):
        assert rx.search(beyond) is None
    assert _CLAUSE.fullmatch(beyond) is not None
    assert sorted(map(int, _wild_chars())) == [0x130, 0x131, 0x17F, 0x212A]


def test_campaigns_equal_reference(norm_reviews):
    from pipeline import batch

    rng = np.random.default_rng(0)
    for _ in range(150):  # random signatures with planted near-duplicates, buyers known and not
        n = int(rng.integers(0, 300))
        base = rng.integers(0, 2**32, (max(n // 5, 1), batch.SIG_SIZE), dtype=np.uint64).astype(np.uint32)
        sig = base[rng.integers(0, len(base), n)].copy()
        flip = rng.random((n, batch.SIG_SIZE)) < rng.choice([0.0, 0.2, 0.5])
        sig[flip] = rng.integers(0, 50, int(flip.sum()))
        eligible = rng.random(n) < rng.choice([0.5, 1.0])
        buyer = rng.integers(-1, max(n // int(rng.choice([1, 3, 10])), 1), n)
        for minimum in (1, 2, 3, 5):
            got, want = batch._campaigns(sig, eligible, buyer, minimum), batch._campaigns_reference(sig, eligible, buyer, minimum)
            np.testing.assert_array_equal(got[0], want[0])
            np.testing.assert_array_equal(got[1], want[1])
    texts = norm_reviews + ["这家店是骗子，大家千万别买，去隔壁那家买正品！！"] * 7 + ["这家店是骗子，大家千万别买，去隔壁那家买正品"] * 3
    sig, eligible = batch.signatures(texts)
    buyer = rng.integers(-1, 500, len(texts))
    got, want = batch._campaigns(sig, eligible, buyer), batch._campaigns_reference(sig, eligible, buyer)
    assert got[0].max() >= 1
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])


# --- chunk sizing ------------------------------------------------------------------------------------

def test_chunks_bounded_by_rows_and_scored_characters():
    from pipeline.run import bounded_chunks

    texts = ["短评"] * 5 + ["长" * 3000] * 4 + ["", "中等长度的评价" * 10] + ["x" * 1999] * 3
    frame = pd.DataFrame({"评价内容": texts, "id": range(len(texts))}, index=pd.RangeIndex(100, 100 + len(texts)))
    parts = list(bounded_chunks(iter([frame, frame.iloc[:0]]), "评价内容", max_chars=4500))
    assert pd.concat(parts[:-1]).equals(frame) and len(parts[-1]) == 0
    for p in parts[:-1]:
        scored = sum(min(len(t), 2000) + 1 for t in p["评价内容"])
        assert scored <= 4500 or len(p) == 1
    assert [p.index[0] for p in parts[:-1]] == sorted(p.index[0] for p in parts[:-1])


@pytest.mark.parametrize("jobs", [1, 2])
def test_scoring_output_independent_of_chunking(tmp_path, tiny_model_path, raw_reviews, jobs):
    from pipeline.run import score_file

    texts = raw_reviews[:700] + ["这家店是骗子，大家千万别买，去隔壁那家买正品！！"] * 4 + ["长评" * 1500] * 3
    n = len(texts)
    rng = np.random.default_rng(4)
    src = tmp_path / "in.csv"
    pd.DataFrame({"评价内容": texts, "评分": rng.choice(["1", "3", "5", ""], n), "买家昵称": [f"b{i % 300}" for i in range(n)],
                  "商品名称": [f"i{i % 7}" for i in range(n)]}).to_csv(src, index=False)
    outs = []
    for chunksize, chars in ((20_000, 10**9), (20_000, 2_000), (97, 10**9)):
        dst = tmp_path / f"out_{chunksize}_{chars}.csv"
        score_file(src, dst, model_path=tiny_model_path, jobs=jobs, chunksize=chunksize, chunk_chars=chars)
        outs.append(dst.read_bytes())
    assert outs[0] == outs[1] == outs[2]


def test_four_decimals_as_printf():
    from pipeline.run import four_decimals

    rng = np.random.default_rng(9)
    x = np.concatenate([np.round(rng.random(20000), 4), rng.random(2000), np.arange(10001) / 10000,
                        [0.0, -0.0, 1.0, 1.00005, -0.00004, 0.99995, 2.5, -3.0, np.nan, np.inf, -np.inf, 1e-300, 0.00005]])
    assert four_decimals(x) == ["%.4f" % v for v in x]
    assert four_decimals(np.zeros(0)) == []


def test_nfkc_shortcut_only_skips_texts_already_in_nfkc():
    """``_may_compose``: a text none of whose characters is flagged, each in NFKC, is in NFKC, so
    the chunk's ``is_normalized`` check may be skipped. Checked on every character alone and on
    random pairs, with the characters that compose with the one before them (Hangul jamo, the
    second of a canonical pair with class 0, e.g. U+0CD5) among them; those are flagged."""
    import random
    import unicodedata

    from pipeline.normalize import _may_compose, normalize_many, normalize

    from pipeline.normalize import _ASSIGNED_BEYOND_BMP

    risky = _may_compose()
    assert risky[0x0301] and risky[0x1161] and risky[0x11A8] and risky[0x0CD5] and risky[0x1D400] and risky[0xD800]
    assert not risky[ord("好")] and not risky[ord("a")] and not risky[0xAC00] and not risky[0x1F600]
    # what the table skips beyond the BMP: NFKC keeps it, it never combines nor composes
    for cp in [*range(_ASSIGNED_BEYOND_BMP, 0xE0000), *range(0xE1000, 0x110000)]:
        ch = chr(cp)
        assert not unicodedata.combining(ch) and not unicodedata.decomposition(ch) and unicodedata.normalize("NFKC", ch) == ch
    composing = {int(d.split()[1], 16) for d in map(unicodedata.decomposition, map(chr, range(0x10000, 0x110000)))
                 if len(d.split()) == 2 and not d.startswith("<")}
    assert all(risky[cp] for cp in composing)
    forms = [unicodedata.normalize("NFKC", chr(cp)) for cp in [*range(0xD800), *range(0xE000, 0x32400)]]
    safe = [f for f in forms if not any(risky[ord(c)] for c in f)]
    assert all(unicodedata.is_normalized("NFKC", f) for f in safe)
    rng = random.Random(7)
    pairs = ["".join(rng.choice(safe) for _ in range(3)) for _ in range(100_000)]
    assert all(unicodedata.is_normalized("NFKC", p) for p in pairs)
    # a text holding the joint's first character goes one by one (the shortcut counts joints)
    pua = ["好\ue000", "cafe\u0301", "\ue000x", "e\u0301", "abc"]
    assert normalize_many(pua) == [normalize(t) for t in pua]
    hangul = ["\u1100\u1161", "\uac00\u11a8", "가\u11a8", "e\u0301", "\u0cc6\u0cd5", "好😀\U0001d400", "\U00011099\U000110ba"]
    assert normalize_many(hangul) == [normalize(t) for t in hangul]
    assert normalize_many(hangul)[:2] == ["가", "각"]
