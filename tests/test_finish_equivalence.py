"""The whole-array output path (issue 13) equals the row-by-row code it replaced.

``Predictor.finish_columns`` / ``finish`` against ``finish_reference`` (with and without the
batch signals, with abstentions, empty and happy rows, campaigns, serial buyers and bursts), the
column-wise cell formatting against the DataFrame one, and ``CsvText`` (rows rendered in a
worker) against ``CsvOut.rows`` on hostile cells.
"""

from __future__ import annotations

import csv
import io

import numpy as np
import pandas as pd
import pytest

from pipeline.predict import PRED_COLUMNS


def _frame(n: int, seed: int) -> pd.DataFrame:
    from tests.test_speed_equivalence import HOSTILE, _reviews

    rng = np.random.default_rng(seed)
    texts = _reviews(n, seed) + HOSTILE + ["这家店是骗子，大家千万别买，去隔壁那家买正品！！"] * 6 + ["很好很满意"] * 5
    m = len(texts)
    return pd.DataFrame({
        "评价内容": texts, "评分": rng.choice(["1", "2", "3", "4", "5", "", "五星"], m),
        "买家昵称": [f"b{i % 97}" if i % 5 else "t***1" for i in range(m)], "商品名称": [f"i{i % 4}" for i in range(m)],
        "评价时间": [f"2026-01-0{1 + i % 3} 1{i % 10}:00" for i in range(m)],
    })


@pytest.fixture(scope="module")
def scored(shipped_model_path):
    from pipeline.persist import load_predictor

    p = load_predictor(shipped_model_path)
    s = p.score_chunk(_frame(1500, 21), with_signatures=True)
    collector = p.collector()
    collector.add(s.sig, s.eligible, s.buyers, s.items, s.dates, s.ratings)
    return p, s, collector.finish()


def test_finish_equals_reference(scored):
    p, s, signals = scored
    assert (s.primary == "uncertain").any() and (s.primary == "empty").any() and (s.primary == "no_complaint").any()
    assert (signals.cluster_id >= 0).any() and (signals.serial_reviews > 0).any() and (signals.burst > 0).any()
    for sig in (signals, None):
        ref = p.finish_reference(s, sig)
        fast = p.finish(s, sig)
        pd.testing.assert_frame_equal(fast, ref)
        assert list(fast.columns) == PRED_COLUMNS
    # a part of the file: rows offset … of the signals
    half = len(s) // 2
    part = type(s)(**{f: (None if v is None else v[half:]) for f, v in vars(s).items()})
    pd.testing.assert_frame_equal(p.finish(part, signals, half), p.finish_reference(part, signals, half))


def test_column_cells_equal_frame_cells(scored):
    from pipeline.run import format_rows

    p, s, signals = scored
    by_rows = format_rows(p.finish_reference(s, signals))
    cols = format_rows(p.finish_columns(s, signals), columns=True)
    assert [list(r) for r in zip(*cols)] == by_rows


def test_uncertain_top_two_as_rowwise_argsort():
    from pipeline.predict import _SUBSETS
    from pipeline.taxonomy import CAUSE_IDS, SEP

    rng = np.random.default_rng(5)
    proba = np.round(rng.random((5000, 8)), 2)  # many ties
    proba[::7] = 0.5
    fast = np.argsort(-proba, axis=1)[:, :2]
    assert all((fast[i] == np.argsort(-proba[i])[:2]).all() for i in range(len(proba)))
    assert all(_SUBSETS[m] == SEP.join(c for j, c in enumerate(CAUSE_IDS) if m >> j & 1) for m in range(256))


@pytest.mark.parametrize("delimiter", [",", "\t"])
@pytest.mark.parametrize("escape", [True, False])
def test_csv_text_equals_csv_rows(delimiter, escape):
    from pipeline.tables import CsvOut

    hostile = ["", "a", "=1+1", "+x", "-2", "-2x", "@SUM(A1)", "\tx", "\rx", "\"q\"", "a,b", "a\tb", "a\nb", "好评",
               "'=x", "1e5", "+1.5", "-.5", " =x"]
    rng = np.random.default_rng(1)
    columns = ["keep1", "keep2", "cause", "evidence", "p_x"]
    rows = [[hostile[int(k)] for k in rng.integers(0, len(hostile), len(columns))] for _ in range(400)]
    rows.append([None, "", "", "", ""])
    trusted = {"cause", "p_x"}
    a, b = io.StringIO(), io.StringIO()
    w = CsvOut(a, escape, delimiter=delimiter)
    w.header(columns, trusted=trusted)
    w.rows([list(r) for r in rows])
    w2 = CsvOut(b, escape, delimiter=delimiter)
    w2.header(columns, trusted=trusted)
    w2.text(w2.renderer().text([list(c) for c in zip(*rows)]))
    assert a.getvalue() == b.getvalue()
    assert len(list(csv.reader(io.StringIO(a.getvalue()), delimiter=delimiter))) == len(rows) + 1


def test_ngram_keys_vectorised_equal_per_gram(shipped_model_path):
    from pipeline.fast_ngrams import NgramTables
    from pipeline.persist import load_predictor

    p = load_predictor(shipped_model_path)
    vec = p.model_.named_steps["features"].transformer_list[0][1].named_steps["vec"]
    t = NgramTables(vec.vocabulary_, vec.char_orders, vec.word_bigrams)
    grams = [term[1:] for term in vec.vocabulary_ if term.startswith("#") and len(term) - 1 in t.char_orders and " " not in term]
    assert len(grams) > 1000
    assert t._keys(grams).tolist() == [t._key([int(t.alpha[ord(ch)]) for ch in g]) for g in grams]


def test_tally_and_chunk_sizes_as_row_by_row(tmp_path, tiny_model_path):
    from pipeline.run import bounded_chunks

    texts = ["短评", "x" * 2500, "", "中等长度的评价" * 10] * 50
    frame = pd.DataFrame({"t": texts})
    mixed = frame.astype(object)
    mixed.loc[3, "t"] = float("nan")
    for f in (frame, mixed):
        parts = list(bounded_chunks(iter([f]), "t", max_chars=5000))
        assert pd.concat(parts).equals(f)
        for part in parts:
            assert sum(min(len(t), 2000) + 1 if isinstance(t, str) else 1 for t in part["t"]) <= 5000 or len(part) == 1


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_top_positive_by_length_equals_by_segment(seed):
    """Segments stacked by length and sorted with argsort(axis=1) pick what one np.argsort per
    segment picks, ties included (few distinct values, lengths from 0 to 2,000)."""
    from pipeline.evidence import _top_positive, _top_positive_by_segment

    rng = np.random.default_rng(seed)
    cnt = np.concatenate([rng.integers(0, 40, 3000), rng.integers(0, 400, 300), rng.integers(1000, 2000, 5)])
    rng.shuffle(cnt)
    total = int(cnt.sum())
    contrib = np.where(rng.random(total) < 0.5, rng.integers(-3, 6, total) * 0.25, rng.normal(0, 1, total))
    contrib[rng.random(total) < 0.05] = -0.0
    first = np.cumsum(cnt) - cnt
    for k in (12, 1, 3):
        a, b = _top_positive(contrib, first, cnt, k), _top_positive_by_segment(contrib, first, cnt, k)
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])
