import pytest

from pipeline.normalize import MAX_CHARS, is_traditional, normalize, normalize_many


@pytest.mark.parametrize(
    "raw, expected",
    [
        # simplified text is never corrupted by OpenCC's one-way merges
        ("万一坏了怎么办", "万一坏了怎么办"),
        ("覆盖面很广，但是覆盖不全", "覆盖面很广,但是覆盖不全"),
        # traditional → simplified, with Taiwan vocabulary
        ("這個軟體很好用，萬一壞了怎麼辦", "这个软件很好用,万一坏了怎么办"),
        ("後來覆蓋了", "后来覆盖了"),
        ("滑鼠不好用，記憶體太小", "鼠标不好用,内存太小"),
        # regional / input-method variants read the same in both scripts
        ("沒有想像中好", "没有想象中好"),
        ("什幺东西", "什么东西"),
        ("質量很差，客服態度惡劣", "质量很差,客服态度恶劣"),
        # full width → half width; runs over three cut to three; emoji kept
        ("ＡＢＣ１２３！！！！！哈哈哈哈哈", "ABC123!!!哈哈哈"),
        ("太差了！！！😂😂", "太差了!!!😂😂"),
        # HTML, entities, URLs, BOM, zero-width characters, whitespace
        ("<p>好&amp;坏</p> 看 http://t.cn/abc我", "好&坏 看 URL 我"),
        ("\ufeff差评\u200b了   \n 真的", "差评了 真的"),
        ("坏\ud800了", "坏了"),
        ("去 www.taobao.com/shop?id=1 买", "去 URL 买"),
        (None, ""),
        (float("nan"), ""),
        (123, "123"),
    ],
)
def test_normalize_exact(raw, expected):
    assert normalize(raw) == expected


def test_script_detection():
    assert is_traditional("東西壞了")
    assert not is_traditional("东西坏了，覆盖")
    assert not is_traditional("hello 😂")


def test_long_text_bounded():
    assert len(normalize("差" * 50_000)) <= MAX_CHARS
    assert len(normalize("质量差。" * 5_000)) == MAX_CHARS


def test_normalize_many_accepts_frames():
    import pandas as pd

    assert normalize_many(pd.DataFrame({"x": [1], "text": ["壞了"]})) == ["坏了"]
    assert normalize_many(["ＡＢ", None]) == ["AB", ""]


@pytest.mark.parametrize("noise", [" " * 4500, "\n" * 4100, '<div style="color:red">' * 200, "&nbsp;" * 700, "坏" * 4001])
def test_a_complaint_after_a_long_run_of_noise_is_read(noise):
    """The raw window normalised first (2 × MAX_CHARS) is read further when noise ate it, so
    spaces, blank lines, markup or a run before the complaint do not turn it into nothing."""
    from pipeline.normalize import _normalize_chunk

    text = noise + "鞋底开胶了，质量太差"
    out = normalize(text)
    assert out.endswith("鞋底开胶了,质量太差") and len(out) <= MAX_CHARS
    assert _normalize_chunk([text, "好"]) == [out, "好"]


def test_a_long_review_is_still_cut_to_max_chars():
    text = "质量太差了" * 2000
    assert normalize(text) == text[:MAX_CHARS] and normalize_many([text]) == [text[:MAX_CHARS]]
