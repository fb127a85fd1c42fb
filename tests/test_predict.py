"""The Predictor owns the decision: ratings, evidence, aliases, and one answer at every door."""

import numpy as np
import opencc
import pandas as pd
import pytest

from pipeline.paths import RAW, SAMPLE
from pipeline.persist import load_predictor
from pipeline.predict import PRED_COLUMNS, parse_rating
from pipeline.taxonomy import CAUSE_IDS


@pytest.fixture(scope="module")
def model(shipped_model_path):
    return load_predictor(shipped_model_path)


@pytest.mark.parametrize(
    "value, rating",
    [("1", 1.0), ("4.0", 4.0), ("3星", 3.0), ("★★", 2.0), ("四星", 4.0), ("好评", 5.0), ("中评", 3.0), ("差评", 1.0),
     ("", None), ("9", None), ("n/a", None), ("５", 5.0), ("５星", 5.0), ("4.5分", 4.5), ("4/5", 4.0), ("5 stars", 5.0),
     ("1e3", None), ("4/10", None), ("0.5", None), ("0", None), ("-1", None), ("99", None), ("4，5", None), (5, 5.0),
     (0, None), (True, None), ("★★★★☆", 4.0), ("五星好评", 5.0), ("三颗星", 3.0), ("四星级", 4.0), ("二分", 2.0),
     # a Chinese digit begins many words that are no rating: 一般 is neutral, not one star
     ("一般", None), ("二手", None), ("四分之三", None), ("三天", None), ("★★★★★★", None),
     ("2星半", 2.5), ("4分半", 4.5), ("5星半", None),
     # the half in every spelling the whole number takes; "of five" written with decimals
     ("4颗星半", 4.5), ("三星半", 3.5), ("两星半", 2.5), ("三分半", 3.5), ("五星半", None), ("4.0/5.0", 4.0), ("4.5/5.0", 4.5)],
)
def test_parse_rating(value, rating):
    got = parse_rating(value)
    assert (np.isnan(got) and rating is None) or got == rating


def test_praise_at_five_stars_is_no_complaint_and_a_complaint_keeps_its_cause(model):
    frame = pd.DataFrame({"评价内容": ["很好，很满意，安装师傅也很专业", "质量太差了，用两天就坏了", "非常不满意，要求退款", "东西挺好的"],
                          "评分": ["5", "5", "1", "1"]})
    out = model.predict(frame)
    assert out["cause"].tolist()[:2] == ["no_complaint", "product_quality"]
    assert out.loc[0, "causes"] == "" and out.loc[0, "suspected_malicious"] == False  # noqa: E712
    assert "5星且未提出问题" in out.loc[0, "evidence"]
    # negated praise is not praise: 「不满意」 at one star is not a novice buyer
    assert out.loc[2, "cause"] != "novice_buyer"
    assert out.loc[3, "cause"] == "novice_buyer" and "评分1星" in out.loc[3, "evidence"]


def test_a_complaint_at_five_stars_keeps_its_cause_in_any_category(model):
    """The rating is read after the text: a concrete complaint rated ★5 — cosmetics, shoes, food,
    categories the labels hardly hold — is no "no complaint"; praise is, whatever the category."""
    complaints = ["用了没效果，还过敏了", "擦了脸上刺痛，起红疹", "鞋底开胶了，穿了两天", "快递太慢了，等了一个星期",
                  "客服态度很差，问了不回"]
    praise = ["口红颜色很正，很喜欢", "鞋子很舒服，尺码合适"]
    out = model.predict(pd.DataFrame({"text": complaints + praise, "rating": [5] * 7}))
    assert "no_complaint" not in out["cause"].tolist()[:5], out["cause"].tolist()
    assert out["cause"].tolist()[5:] == ["no_complaint", "no_complaint"]
    assert not out["causes"].str.contains("novice_buyer").any()
    unrated = model.predict(complaints)["cause"].tolist()
    assert out["cause"].tolist()[:5] == unrated  # the rating does not move a complaint
    # praise with a concrete complaint beside it: the complaint is the primary, not "no complaint"
    from sklearn.base import clone

    mixed = pd.DataFrame({"text": ["质量很好，包装破损了"], "rating": [5]})
    # the default: the primary head decides between the praise and the complaint (version 0.6.0's
    # head names the complaint; earlier ones the praise)
    assert model.predict(mixed).loc[0, "cause"] in ("no_complaint", "stockout_logistics")
    told = clone(model).set_params(complaint_beside_praise=True)
    told.__dict__.update({k: v for k, v in model.__dict__.items() if k.endswith("_")})
    out = told.predict(mixed)
    assert out.loc[0, "cause"] == "stockout_logistics" and out.loc[0, "causes"] == "stockout_logistics"


def test_ratings_are_read_by_position_whatever_the_index():
    """A fold's rows carry their own index labels; the ratings go with their texts by position
    (they were matched by label: in cross-validation the ★4–5 relabelling read other rows' ratings)."""
    from pipeline.model import NONE_CLASS, as_frame
    from pipeline.predict import Predictor

    full = pd.DataFrame({"text": ["很好", "很好", "质量差", "很好"], "rating": [1, 5, 5, "5星"]})
    part = full.iloc[[1, 3]]
    assert as_frame(part)["rating"].tolist()[:1] == [5.0]
    Y = np.zeros((2, len(CAUSE_IDS)), dtype=np.int64)
    _, _, primary = Predictor()._text_first(part, Y, np.array([NONE_CLASS, NONE_CLASS]))
    assert primary.tolist() == [CAUSE_IDS.index("novice_buyer")] * 2  # "5星" read as scoring reads it


def test_every_cause_comes_with_the_words_behind_it(model):
    out = model.predict(["鞋底开胶了，穿了两天就坏", "等了一个星期才发货，物流太慢", "返我50块就改好评，不然一直差评"])
    for _, row in out.iterrows():
        for cause in row["causes"].split("|"):
            assert f"{cause}「" in row["evidence"], (cause, row["evidence"])
    assert "开胶" in out.loc[0, "evidence"] and "物流太慢" in out.loc[1, "evidence"]
    assert "索要钱财" in out.loc[2, "evidence"]


def test_aliases_traditional_text_and_blank_rows(model):
    conv = opencc.OpenCC("s2twp")
    frame = pd.DataFrame({"review": ["快递太慢了，等了一个星期", conv.convert("快递太慢了，等了一个星期"), "", None],
                          "stars": ["1", "1", "2", ""]})
    out = model.predict(frame)
    assert out["review_id"].tolist() == ["1", "2", "3", "4"]
    assert out.loc[0, "cause"] == out.loc[1, "cause"] == "stockout_logistics"
    assert out["cause"].tolist()[2:] == ["empty", "empty"]
    assert list(out.columns) == PRED_COLUMNS


def test_same_primary_cause_in_both_scripts(model):
    texts = pd.read_csv(RAW / "online_shopping_neg.csv", usecols=["text"])["text"].sample(400, random_state=3).tolist()
    conv = opencc.OpenCC("s2twp")
    a = model.predict(texts)["cause"].to_numpy()
    b = model.predict([conv.convert(t) for t in texts])["cause"].to_numpy()
    assert (a == b).mean() >= 0.99


def test_cli_python_api_and_pyfunc_agree_on_the_sample(model, shipped_model_path, tmp_path):
    """One answer at every door: the CSV of `reviewcause score`, Predictor.predict and the
    MLflow pyfunc model give identical prediction columns for data/sample_reviews.csv."""
    import mlflow

    from pipeline.cli import main
    from pipeline.serving import log_pyfunc
    from pipeline.tables import read_frame

    out = tmp_path / "pred.csv"
    assert main(["score", str(SAMPLE), "-o", str(out), "--model", str(shipped_model_path), "-q", "--jobs", "2"]) == 0
    cli, _ = read_frame(out)  # every column, as written
    cli = cli.fillna("").astype(str)
    frame = pd.read_csv(SAMPLE, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    api = model.predict(frame)
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    mlflow.set_experiment("identity")
    with mlflow.start_run():
        info = log_pyfunc(shipped_model_path)
    pyf = mlflow.pyfunc.load_model(info.model_uri).predict(frame)

    from pipeline.run import format_rows

    as_text = lambda df: pd.DataFrame(format_rows(df), columns=PRED_COLUMNS)  # noqa: E731
    pd.testing.assert_frame_equal(as_text(api), cli[PRED_COLUMNS].reset_index(drop=True))
    pd.testing.assert_frame_equal(as_text(pyf), cli[PRED_COLUMNS].reset_index(drop=True))
    assert len(cli) == len(frame)


def test_foreign_pickle_is_never_loaded(tmp_path):
    import pickle

    from pipeline.tables import InputError

    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.joblib"

    class Boom:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    evil.write_bytes(pickle.dumps(Boom()))
    with pytest.raises(InputError, match="not a reviewcause model"):
        load_predictor(evil)
    (tmp_path / "evil.json").write_text('{"format": "reviewcause-predictor/2", "sha256": "0"}')
    with pytest.raises(InputError, match="does not match the hash"):
        load_predictor(evil)
    assert not marker.exists()


def test_the_fast_load_copy_is_used_only_when_it_is_ours_and_intact(tiny_model_path, tmp_path, monkeypatch):
    """The first load writes a plain-pickle copy to the cache; later loads read it (same
    predictions); a copy that does not match its hash, or that others could have written, is
    ignored — never unpickled."""
    import os
    import pickle

    import joblib

    from pipeline import persist, segment

    monkeypatch.setattr(segment, "_cache_dir", lambda: tmp_path)
    digest = persist.read_meta(tiny_model_path)["sha256"]
    pkl, mark = persist._cache_paths(digest)
    assert not pkl.exists()
    first = load_predictor(tiny_model_path)
    assert pkl.exists() and mark.read_text().strip() == f"{digest} {persist.code_digest()} {persist.sha256(pkl)}"
    calls = []
    monkeypatch.setattr(joblib, "load", lambda *a, **k: calls.append(a) or pytest.fail("joblib.load with a valid copy"))
    second = load_predictor(tiny_model_path)
    texts = pd.DataFrame({"text": ["物流太慢了，等了十天", "质量很差，用两天就坏了"]})
    # the copy brings the tables the first load's warm-up built: nothing is built again for it
    from pipeline import evidence, fast_ngrams

    monkeypatch.setattr(fast_ngrams.NgramTables, "__init__", lambda *a, **k: pytest.fail("n-gram tables rebuilt"))
    monkeypatch.setattr(evidence._FeatureInfo, "__init__", lambda *a, **k: pytest.fail("evidence tables rebuilt"))
    assert second is not first and second.model_ is not first.model_
    from_copy = second.predict(texts)
    monkeypatch.undo()
    monkeypatch.setattr(segment, "_cache_dir", lambda: tmp_path)
    assert first.predict(texts).equals(from_copy)
    monkeypatch.undo()
    monkeypatch.setattr(segment, "_cache_dir", lambda: tmp_path)

    marker = tmp_path / "pwned"

    class Boom:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    pkl.write_bytes(pickle.dumps(Boom()))  # a planted copy: its hash is not the recorded one
    assert isinstance(load_predictor(tiny_model_path), type(first)) and not marker.exists()
    # the cache keeps the few most recently used copies, not one per model ever loaded
    for k in range(persist.CACHE_KEEP + 2):
        (tmp_path / "models" / f"{k:064x}.pkl").write_bytes(b"old")
        (tmp_path / "models" / f"{k:064x}.pkl.sha256").write_text("0")
        os.utime(tmp_path / "models" / f"{k:064x}.pkl", (k, k))
    pkl.unlink()
    load_predictor(tiny_model_path)
    left = sorted(p.name for p in (tmp_path / "models").glob("*.pkl"))
    assert len(left) == persist.CACHE_KEEP and pkl.name in left
    assert len(list((tmp_path / "models").glob("*.sha256"))) == persist.CACHE_KEEP
    # the load rewrote a good copy; a planted copy whose hash matches but that the group can write
    pkl.write_bytes(pickle.dumps(Boom()))
    mark.write_text(f"{digest} {persist.code_digest()} {persist.sha256(pkl)}")
    os.chmod(pkl, 0o666)
    assert isinstance(load_predictor(tiny_model_path), type(first)) and not marker.exists()
    # a genuine copy of another model file, renamed to this one's name, is not taken for it
    other = "f" * 64
    persist._cache(other, {"another": "model"})
    o_pkl, o_mark = persist._cache_paths(other)
    os.replace(o_pkl, pkl)
    os.replace(o_mark, mark)
    assert persist._cached(digest) is None
    assert isinstance(load_predictor(tiny_model_path), type(first))
    # a copy made by other code (its tables may be laid out otherwise) is not read either
    assert persist._cached(digest) is not None
    monkeypatch.setattr(persist, "code_digest", lambda: "0" * 64)
    assert persist._cached(digest) is None


def test_rating_read_after_the_text_relabels_only_praise_rated_high():
    """ratings="after": the model is trained on the text alone; a ★4–5 review labelled none (its
    text states no complaint) teaches what praise looks like — novice_buyer's text — and nothing
    else is relabelled; the ratings the model sees are blanked."""
    from pipeline.model import NONE_CLASS
    from pipeline.predict import Predictor

    novice = CAUSE_IDS.index("novice_buyer")
    quality = CAUSE_IDS.index("product_quality")
    frame = pd.DataFrame({"text": ["很好很满意", "质量差", "挺好的", "很好", "。。。"], "rating": [5, 5, 1, np.nan, 4]})
    Y = np.zeros((5, len(CAUSE_IDS)), dtype=np.int64)
    Y[1, quality] = Y[2, novice] = 1
    primary = np.array([NONE_CLASS, quality, novice, NONE_CLASS, NONE_CLASS])
    X2, Y2, p2 = Predictor(ratings="after")._text_first(frame, Y, primary)
    assert p2.tolist() == [novice, quality, novice, NONE_CLASS, novice]
    assert Y2[:, novice].tolist() == [1, 0, 1, 0, 1] and Y2[1, quality] == 1
    assert X2["rating"].isna().all() and X2["text"].tolist() == frame["text"].tolist()
    assert Y[0].sum() == 0 and primary[0] == NONE_CLASS  # the caller's arrays are not changed
    with pytest.raises(ValueError, match="ratings='both': must be 'after' or 'feature'"):
        Predictor(ratings="both").fit(["x"], Y[:1], primary[:1])


def test_api_takes_any_cell_as_text_and_a_string_as_one_review(tiny_model):
    """A plain string is one review (not one per character); numbers, booleans, dates, bytes and
    objects in the text column are scored as their text; a repeated header reads the first column;
    a float id column (one id missing) keeps whole ids whole."""
    assert len(tiny_model.predict("快递太慢")) == 1
    out = tiny_model.predict(pd.DataFrame({"评价内容": [123, True, pd.Timestamp("2024-01-01"), "快递太慢".encode(), None, {"a": 1}]}))
    assert len(out) == 6 and out.loc[4, "cause"] == "empty" and out.loc[3, "cause"] == tiny_model.predict(["快递太慢"]).loc[0, "cause"]
    dup = tiny_model.predict(pd.DataFrame([["快递太慢", "质量差"]], columns=["评价内容", "评价内容"]))
    assert dup["cause"].tolist() == tiny_model.predict(["快递太慢"])["cause"].tolist()
    ids = tiny_model.predict(pd.DataFrame({"评价编号": [1, None, 3], "评价内容": ["快递太慢", "质量差", "客服差"]}))
    assert ids["review_id"].tolist() == ["1", "2", "3"]
    # up to 2**53 a float holds every whole number: 16-digit ids come out whole, not as 1.2e+15
    whole = tiny_model.predict(pd.DataFrame({"订单号": [1234567890123456.0, None], "评价内容": ["快递太慢", "质量差"]}))
    assert whole["review_id"].tolist() == ["1234567890123456", "2"]
    # beyond it the digits were lost before the model saw them: refused, naming column and row
    from pipeline.tables import InputError

    with pytest.raises(InputError, match=r"id column '订单号', row 2: ids of 16 or more digits .* send them as strings"):
        tiny_model.predict(pd.DataFrame({"订单号": [None, 98765432109876543.0], "评价内容": ["快递太慢", "质量差"]}))
    ints = tiny_model.predict(pd.DataFrame({"订单号": [98765432109876543], "评价内容": ["快递太慢"]}))  # int64: exact
    assert ints["review_id"].tolist() == ["98765432109876543"]


def test_numeric_buyer_and_item_columns_read_as_the_cli_reads_them(tiny_model):
    """Buyer and item ids sent as numbers with a blank among them (a float column): 777.0 is buyer
    777 in the evidence, as the CLI reads the file; ids beyond 2**53 have lost digits (three
    buyers rounded to one would make a serial buyer) and are refused, naming column and row."""
    from pipeline.tables import InputError

    texts = ["质量太差了用一天就坏", "衣服起球严重做工很差", "物流慢得要死等了十天", "客服态度差"]
    frame = pd.DataFrame({"评价内容": texts, "评分": [1, 1, 1, 1], "买家昵称": [777, 777, 777, None],
                          "商品": [1001, 1002, 1003, None]})
    out = tiny_model.predict(frame)
    assert out["evidence"].str.contains("买家777在本批").any()
    assert not out["evidence"].str.contains(r"777\.0|1001\.0").any()
    as_text = tiny_model.predict(frame.astype({"买家昵称": object, "商品": object}).fillna("").astype(str)
                                 .replace({"777.0": "777", "1001.0": "1001", "1002.0": "1002", "1003.0": "1003"}))
    assert out["malicious_score"].tolist() == as_text["malicious_score"].tolist()
    with pytest.raises(InputError, match=r"buyer column '买家昵称', row 1: buyers of 16 or more digits"):
        tiny_model.predict(frame.assign(买家昵称=[100000000000000001, 100000000000000002, 100000000000000003, None]))


def test_pyfunc_request_mistakes_are_one_line_and_empty_is_empty(tiny_model):
    from mlflow.exceptions import MlflowException

    from pipeline.serving import ReviewcauseModel

    m = ReviewcauseModel()
    m.predictor = tiny_model
    with pytest.raises(MlflowException, match=r"no review text column found \(columns seen: foo\)") as info:
        m.predict(None, pd.DataFrame({"foo": ["快递太慢"]}))
    assert info.value.get_http_status_code() == 400
    assert list(m.predict(None, pd.DataFrame()).columns) == PRED_COLUMNS and len(m.predict(None, pd.DataFrame())) == 0
    texts = m.predict(None, np.array(["快递太慢", "质量差"], dtype=object))
    assert texts["review_id"].tolist() == ["1", "2"] and texts["cause"].tolist() == tiny_model.predict(["快递太慢", "质量差"])["cause"].tolist()
    # one text alone (REST {"inputs": "很差"} arrives as a 0-d array or a str) is one review
    for one in ("快递太慢", np.array("快递太慢", dtype=object)):
        assert m.predict(None, one)["cause"].tolist() == tiny_model.predict(["快递太慢"])["cause"].tolist()
    with pytest.raises(MlflowException, match=r"not a table of reviews .*All arrays must be of the same length") as info:
        m.predict(None, {"评价内容": ["很差", "好"], "评价编号": ["a"]})  # ragged columns
    assert info.value.get_http_status_code() == 400


def test_missing_cells_are_blank_at_every_door(tiny_model):
    """pandas' NA and NaT (nullable string columns, dates) are missing — a blank text is `empty`,
    a missing id the row number — not the text "<NA>"; Spark's staging reads cells the same way."""
    from pipeline.spark import _text_cell

    frame = pd.DataFrame({"评价编号": pd.array(["a", pd.NA], dtype="string"),
                          "评价内容": pd.array([pd.NA, "快递太慢"], dtype="string"),
                          "买家昵称": pd.array([pd.NA, "b"], dtype="string")})
    out = tiny_model.predict(frame)
    assert out["review_id"].tolist() == ["a", "2"] and out.loc[0, "cause"] == "empty"
    assert [_text_cell(v) for v in (pd.NA, pd.NaT, None, float("nan"), 3.0, "快递".encode(), "x")] == ["", "", "", "", "3", "快递", "x"]


def test_api_inputs_of_other_shapes_are_read_or_refused_in_one_line(tiny_model):
    """A dict of columns is a table (REST's {"inputs": {…}} shape); bytes are one review; None, a
    number or a 2-D array are refused by name (a 2-D array's rows were scored as their repr); a
    text column of numbers beside a null reads 100, not 100.0; long ids in object or categorical
    columns are refused like float ones."""
    from pipeline.tables import InputError

    by_dict = tiny_model.predict({"评价内容": ["质量差", "快递慢"], "评分": [1, 1]})
    assert by_dict["cause"].tolist() == tiny_model.predict(pd.DataFrame({"评价内容": ["质量差", "快递慢"], "评分": [1, 1]}))["cause"].tolist()
    assert tiny_model.predict("快递慢".encode())["cause"].tolist() == tiny_model.predict(["快递慢"])["cause"].tolist()
    for bad, message in ((None, "not NoneType"), (5, "not int"), (np.array([["质量差", "1"]]), "a 2-D array has no column names"),
                         ({"评价内容": ["a", "b"], "评分": [1]}, "not a table")):
        with pytest.raises(InputError, match=message):
            tiny_model.predict(bad)
    numbers = tiny_model.predict(pd.DataFrame({"评价编号": ["a", "b"], "评价内容": [100.0, np.nan]}))
    assert numbers["cause"].tolist()[0] == tiny_model.predict(pd.DataFrame({"评价编号": ["a"], "评价内容": ["100"]}))["cause"][0]
    for ids in (pd.Categorical([98765432109876543.0, np.nan]), pd.Series([98765432109876543.0, 1], dtype=object)):
        with pytest.raises(InputError, match="ids of 16 or more digits"):
            tiny_model.predict(pd.DataFrame({"评价内容": ["a", "b"], "id": ids}))


def test_pyfunc_reads_the_nan_of_a_string_array_as_missing(tiny_model):
    """REST {"inputs": {"买家昵称": ["张三", NaN, NaN]}} reaches the model as a numpy string array
    holding 'nan': a missing buyer, not one buyer 'nan' with three bad reviews (a serial buyer)."""
    from pipeline.serving import ReviewcauseModel

    m = ReviewcauseModel()
    m.predictor = tiny_model
    texts = ["质量太差了", "快递太慢了", "客服态度很差", "颜色和图片不一样"]
    sent = {"评价编号": np.array(["A1", "A2", "A3", "A4"]), "买家昵称": np.array(["张三", "nan", "nan", "nan"]),
            "商品": np.array(["鞋A", "鞋A", "鞋B", "鞋C"]), "评价内容": np.array(texts), "评分": np.array([1, 1, 2, 1])}
    got = m.predict(None, sent)
    want = tiny_model.predict(pd.DataFrame({**{k: list(v) for k, v in sent.items()}, "买家昵称": ["张三", None, None, None]}))
    assert got["malicious_score"].tolist() == want["malicious_score"].tolist()
    assert not got["evidence"].str.contains("买家nan").any()
    assert m.predict(None, np.array(["nan", "快递慢"]))["cause"].tolist()[0] == "empty"


@pytest.mark.parametrize("text", ["[图片]", "【图片】", "[图片][图片]", "此用户没有填写评价 [图片]", "此用户未填写文字评价",
                                  "该用户未及时主动评价，系统默认好评", "*", "……", "#N/A", "#REF!", "N/A"])
def test_placeholders_image_markers_and_sheet_errors_are_empty(tiny_model_path, text):
    from pipeline.persist import load_predictor

    out = load_predictor(tiny_model_path).predict(pd.DataFrame({"text": [text, "质量太差了"]}))
    assert out["cause"][0] == "empty" and out["cause"][1] != "empty"


@pytest.mark.parametrize("text", ["😡😡😡", "图片和实物不符", "质量太差了[图片]", "没有收到货", "无语", "差",
                                  ":(", "-_-", "^_^", "???", "!!!", "没有", "无"])  # a face, a cry, an answer
def test_short_reviews_that_say_something_are_not_placeholders(text):
    from pipeline.predict import is_placeholder

    assert not is_placeholder(text)


def test_a_followup_placeholder_is_no_followup(tiny_model_path):
    """暂无追评 in the 追评 column held the word 追评, an extortion cue: a blank review became a flagged
    extortion case quoting the platform's placeholder."""
    from pipeline.persist import load_predictor

    p = load_predictor(tiny_model_path)
    texts = ["", "快递太慢了", "质量太差了"]
    plain = p.predict(pd.DataFrame({"评价内容": texts}))
    for filler in ("暂无追评", "该用户未追评", "无", "-", "无追评", "此用户未填写追评", "该用户未发表追评", "无追评内容",
                   "系统默认追评", "没有"):
        got = p.predict(pd.DataFrame({"评价内容": texts, "追评内容": [filler] * 3}))
        assert got[["cause", "causes", "evidence", "suspected_malicious"]].equals(
            plain[["cause", "causes", "evidence", "suspected_malicious"]]), filler


def test_a_placeholder_shared_by_many_buyers_is_no_campaign(tiny_model_path):
    from pipeline.persist import load_predictor

    out = load_predictor(tiny_model_path).predict(pd.DataFrame({
        "text": ["该用户未及时评价，系统默认好评"] * 5, "buyer": ["a1", "b2", "c3", "d4", "e5"]}))
    assert (out["cause"] == "empty").all() and (out["cluster_id"] == "").all() and (out["malicious_score"] == 0).all()


@pytest.mark.parametrize("X", [
    [{"评价编号": "A1", "买家": "张三", "评价内容": "很好很满意，物流快"}, {"评价编号": "A2", "评价内容": "质量太差"}],
    {"评价内容": "很差", "评分": 1},
    np.array("快递太慢了"),
    pd.DataFrame({"评价内容": ["质量太差", "评价内容", "[图片]"]}),  # a repeated header row, a placeholder
])
def test_predict_proba_is_predicts_probability_columns(tiny_model_path, X):
    """predict_proba scored each record's repr (id and buyer as words of the review), refused one
    record and raised on a 0-d array."""
    p = load_predictor(tiny_model_path)
    proba = p.predict_proba(X)
    out = p.predict(X)
    assert proba.shape == (len(out), len(CAUSE_IDS))
    assert np.allclose(np.round(proba, 4), out[[f"p_{c}" for c in CAUSE_IDS]].to_numpy(dtype=float))


def test_bytes_are_read_as_utf8_or_gb18030_and_otherwise_refused_by_row(tiny_model_path):
    """GBK bytes in a DataFrame were a UnicodeDecodeError traceback; in a list they were decoded
    with replacement characters and scored as a prank."""
    from pipeline.tables import InputError

    p = load_predictor(tiny_model_path)
    texts = ["质量太差了", "快递太慢了"]
    want = p.predict(texts)["cause"].tolist()
    assert p.predict([texts[0].encode("gbk"), texts[1].encode()])["cause"].tolist() == want
    assert p.predict(pd.DataFrame({"评价内容": [texts[0].encode("gbk"), texts[1]]}))["cause"].tolist() == want
    with pytest.raises(InputError, match="row 2: the text is bytes that are neither UTF-8 nor GB18030"):
        p.predict(["好", b"\xff\xfe\xff"])
