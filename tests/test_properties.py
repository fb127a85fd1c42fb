"""Property-based tests: arbitrary Unicode never breaks normalisation or segmentation."""

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.normalize import normalize
from pipeline.segment import segment_with

TEXT = st.text(
    alphabet=st.one_of(
        st.characters(),  # anything, surrogates excluded by default
        st.sampled_from(list("壞覆蓋軟體坏覆盖质量差！!？?　 \t\n<>&;😂👍🏻\u200b\ufeff")),
    ),
    max_size=200,
)


@settings(max_examples=300, deadline=None)
@given(TEXT)
def test_normalize_total_and_idempotent(text):
    once = normalize(text)
    assert isinstance(once, str)
    assert normalize(once) == once


@settings(max_examples=200, deadline=None)
@given(TEXT)
def test_segment_total_and_lossless(text):
    norm = normalize(text)
    for backend in ("jieba", "rjieba"):
        tokens = segment_with(norm, backend)
        assert all(t and not t.isspace() for t in tokens)
        assert "".join(tokens) == "".join(norm.split())
