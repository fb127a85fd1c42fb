import csv
import subprocess
import sys

import numpy as np
import pandas as pd

import pytest

from pipeline.cli import main
from pipeline.predict import PRED_COLUMNS
from pipeline.tables import InputError
from pipeline.taxonomy import CAUSE_IDS


def test_score_writes_every_row_with_its_columns(tmp_path, tiny_model_path, capsys):
    src = tmp_path / "reviews.csv"
    src.write_text(
        "评价编号,评分,评价内容\n"
        "A1,1,快递太慢了，等了一个星期才发\n"
        "A2,1,\n"
        "A3,2,返我50块就改好评，不然一直差评\n",
        encoding="utf-8",
    )
    out = tmp_path / "pred.csv"
    assert main(["score", str(src), "-o", str(out), "--model", str(tiny_model_path), "-q"]) == 0
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # BOM for Excel
    rows = list(csv.reader(raw.decode("utf-8-sig").splitlines()))
    assert rows[0] == ["评价编号", "评分", "评价内容"] + PRED_COLUMNS
    body = [dict(zip(rows[0], r)) for r in rows[1:]]
    assert [r["review_id"] for r in body] == ["A1", "A2", "A3"]
    assert [r["cause"] for r in body] == ["stockout_logistics", "empty", "extortion"]
    assert body[0]["cause_zh"] == "缺货与物流" and body[0]["dsr"] == "发货速度/物流服务"
    assert body[1]["causes"] == "" and body[1]["confidence"] == "0.0000"
    assert body[2]["suspected_malicious"] == "true" and "改好评" in body[2]["evidence"]
    assert "extortion" in body[2]["causes"].split("|")
    for r in body:
        assert set(f"p_{c}" for c in CAUSE_IDS) <= r.keys()
        assert all(0.0 <= float(r[f"p_{c}"]) <= 1.0 for c in CAUSE_IDS)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["score", "missing.csv"], "missing.csv: no such file"),
        (["score", "{src}", "--model", "nope.joblib"], "nope.joblib: no model file there"),
        (["score", "{src}", "--text-col", "正文"], "no column named '正文'"),
        (["train", "--param", "C"], "expected KEY=VALUE"),
    ],
)
def test_user_errors_are_one_line(tmp_path, tiny_model_path, capsys, argv, message):
    src = tmp_path / "r.csv"
    src.write_text("text\n好\n", encoding="utf-8")
    argv = [a.format(src=src) for a in argv]
    if "--model" not in argv and argv[0] == "score":
        argv += ["--model", str(tiny_model_path)]
    assert main(argv + ["-o", str(tmp_path / "o.csv")] if argv[0] == "score" else argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("reviewcause: error: ") and message in err and "\n" not in err


def test_python_dash_m_and_help():
    out = subprocess.run([sys.executable, "-m", "pipeline", "score", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "example: reviewcause score" in out.stdout
    out = subprocess.run([sys.executable, "-m", "pipeline", "causes"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.count("\n") == 8 and "职业差评师敲诈" in out.stdout


def test_own_labels_without_primary_take_the_first_label(tmp_path):
    from pipeline.data import read_labelled_csv

    mine = tmp_path / "mine.csv"
    mine.write_text("text,labels\n快递太慢了,stockout_logistics|service_attitude\n质量太差,product_quality\n", encoding="utf-8")
    frame = read_labelled_csv(mine)
    assert frame["primary"].tolist() == ["stockout_logistics", "product_quality"]


def test_evaluate_counts_none_labels_honestly(tmp_path, tiny_model_path, capsys):
    """A review labelled `none` is right only when the model abstains; complaints it calls
    causes are wrong, so this file cannot score 1.0."""
    import json

    mine = tmp_path / "none.csv"
    mine.write_text("text,labels\n快递太慢了，等了一个星期,none\n返我50块就改好评,none\n质量太差，用两天就坏了,product_quality\n",
                    encoding="utf-8")
    assert main(["evaluate", str(mine), "--model", str(tiny_model_path)]) == 0
    out = capsys.readouterr().out
    figures = json.loads(out[out.index("{"):])
    assert figures["primary_accuracy"] == pytest.approx(1 / 3, abs=1e-3)


@pytest.mark.parametrize("header", ["rating", "评分", "星级"])
def test_evaluate_reads_the_label_files_ratings(tmp_path, tiny_model_path, capsys, header):
    """A label file's rating (under `rating` or any header `score` reads as the rating) is read
    as scoring reads it: ★5 praise labelled `none` is the model's `no_complaint`, right — not
    praise under no rating (`novice_buyer`), wrong."""
    import json

    from pipeline.data import read_labelled_csv

    mine = tmp_path / "rated.csv"
    mine.write_text(f"text,labels,{header}\n很好很满意，下次还来,none,5\n质量很好，物流也快,none,5星\n非常满意,none,★★★★★\n"
                    f"鞋底开胶了,product_quality,1\n客服不理人,service_attitude,\n", encoding="utf-8")
    frame = read_labelled_csv(mine)
    assert frame["rating"].tolist()[:4] == [5.0, 5.0, 5.0, 1.0] and np.isnan(frame["rating"].iloc[4])
    assert main(["evaluate", str(mine), "--model", str(tiny_model_path)]) == 0
    out = capsys.readouterr().out
    figures = json.loads(out[out.index("{"):])
    rated = main(["score", str(mine), "-o", str(tmp_path / "p.csv"), "--model", str(tiny_model_path), "-q"])
    scored = pd.read_csv(tmp_path / "p.csv")
    # scoring the same file reads its ratings (no rating, no `no_complaint`), and evaluate agrees
    assert rated == 0 and (scored["cause"].iloc[:3] == "no_complaint").any()
    right = int(scored["cause"].iloc[:3].isin(["no_complaint", "uncertain"]).sum()) + int(
        (scored["cause"].iloc[3:].to_numpy() == np.array(["product_quality", "service_attitude"])).sum())
    assert figures["primary_accuracy"] == pytest.approx(right / 5, abs=1e-3)


def test_param_values_take_the_type_of_the_default():
    from pipeline.cli import _parse_params
    from pipeline.primary import PrimaryStack

    p = _parse_params(["stack=head", "model__clf__C=4", "model__clf__primary_class_weight=none",
                       "model__features__ngrams__vec__char_orders=2,3", "flag_at=0.9"])
    assert p.stack == "head" and p.get_params()["model__clf__C"] == 4.0
    assert p.get_params()["model__clf__primary_class_weight"] == "none"
    assert p.get_params()["model__features__ngrams__vec__char_orders"] == (2, 3) and p.flag_at == 0.9
    assert isinstance(p.set_params(stack=PrimaryStack(C=0.5)).get_params()["stack__C"], float)
    # the stacker's own parameters are reachable, with the defaults' types
    q = _parse_params(["stack__gate=0", "stack__folds=3"])
    assert q.get_params()["stack__gate"] == 0.0 and q.get_params()["stack__folds"] == 3
    assert isinstance(q.stack, PrimaryStack) and q.stack.C == PrimaryStack().C
    with pytest.raises(InputError, match="only 'head'"):
        _parse_params(["stack=clauses"])


@pytest.mark.parametrize("delay", [0.05, 0.2, 0.5])
def test_ctrl_c_while_the_libraries_load_is_one_line(tmp_path, delay):
    """Ctrl-C in the first second (imports of pandas, scikit-learn …) printed a traceback or a
    broken C-extension import; now the one line of every interrupted run, status 130."""
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "p.csv"
    # the delay counts from when this machine's interpreter has started (a signal before that
    # reaches no code of the project: on a loaded machine that alone can take 0.05 s)
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import pipeline"], check=True, cwd=tmp_path)
    started = time.perf_counter() - t
    p = subprocess.Popen([sys.executable, "-m", "pipeline", "score", "-o", str(out), "-q"], stderr=subprocess.PIPE,
                         text=True, cwd=tmp_path)
    time.sleep(started + delay)
    p.send_signal(signal.SIGINT)
    err = p.communicate(timeout=120)[1]
    # 130, or killed by SIGINT itself (-2, which a shell shows as 130 too) when the interpreter
    # ends by re-raising the signal after the message
    assert p.returncode in (130, -2) and err == "reviewcause: interrupted; no output written\n", err
    assert not out.exists()


@pytest.mark.parametrize("param, message", [
    ("campaign_weight=2", "--param campaign_weight=2.0: must be between 0.0 and 1.0"),
    ("flag_at=-1", "--param flag_at=-1.0: must be between 0.0 and 1.0"),
    ("evidence_spans=-1", "--param evidence_spans=-1: must be a whole number at least 1"),
    ("burst_hours=-5", "--param burst_hours=-5: must be above 0"),
    ("model__features__ngrams__vec__char_orders=0,9", "character n-gram orders are distinct whole numbers from 1 to 6"),
    # the learners' own numbers, and parts that are no values (tracebacks or late library errors before)
    ("model__clf__C=-1", "--param model__clf__C=-1.0: must be above 0"),
    ("stack__gate=5", "--param stack__gate=5.0: must be between 0.0 and 1.0"),
    ("model__clf__primary_nb=2", "--param model__clf__primary_nb=2.0: must be between 0.0 and 1.0"),
    ("model__clf__primary_blend=nan", "--param model__clf__primary_blend=nan: must be between 0.0 and 1.0"),
    ("stack__folds=0", "--param stack__folds=0: must be a whole number at least 2"),
    ("stack__n_jobs=abc", "--param stack__n_jobs='abc': must be a whole number other than 0, or none"),
    ("batch=maybe", "--param batch='maybe': expected true or false"),
    ("model=x", "--param model: is a part of the model (Pipeline), not a value; set its own parameters (model__…)"),
    ("model__features__ngrams__select__func=x", "is a part of the model (function), not a value; --param cannot set it"),
])
def test_train_refuses_parameters_out_of_range_before_any_work(tmp_path, capsys, param, message):
    """A campaign weight of 2 made malicious scores of 2.0 that report and suspects then refused;
    char_orders=0 ended in an IndexError traceback."""
    src = tmp_path / "l.csv"
    src.write_text("text,labels\n质量差,product_quality\n物流慢,stockout_logistics\n", encoding="utf-8")
    code = main(["train", "--no-shipped", "--labels", str(src), "--model", str(tmp_path / "m.joblib"), "--param", param])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1 and not (tmp_path / "m.joblib").exists()


def test_train_on_labels_sharing_no_word_is_one_line_naming_the_file(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'ml.db'}")
    src = tmp_path / "l4.csv"
    src.write_text("text,labels\n质量差,product_quality\n物流慢,stockout_logistics\n做工粗糙,product_quality\n"
                   "快递太慢,stockout_logistics\n", encoding="utf-8")
    code = main(["train", "--no-shipped", "--labels", str(src), "--folds", "2", "--model", str(tmp_path / "m.joblib"), "-q"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith(f"reviewcause: error: {src}: too few reviews share any word") and err.count("\n") == 1


@pytest.mark.parametrize("uri, kind", [("foo://bar", "UnsupportedModelRegistryStoreURIException"), ("sqlite:///{tmp}/notdb.db", "DatabaseError")])
def test_an_mlflow_store_that_cannot_open_is_one_line(tmp_path, capsys, monkeypatch, uri, kind):
    (tmp_path / "notdb.db").write_text("not a database", encoding="utf-8")
    uri = uri.format(tmp=tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    src = tmp_path / "l.csv"
    src.write_text("text,labels\n" + "".join(f"质量差{i},product_quality\n物流慢{i},stockout_logistics\n" for i in range(6)), encoding="utf-8")
    code = main(["train", "--no-shipped", "--labels", str(src), "--folds", "2", "--model", str(tmp_path / "m.joblib")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith(f"reviewcause: error: MLflow store {uri}: cannot be opened ({kind}") and err.count("\n") == 1


def test_score_options_checked_and_help_says_each_default_once(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["score", "--jobs", "0", "-o", str(tmp_path / "p.csv")])
    assert exit_.value.code == 2 and "argument --jobs: 0: give at least 1" in capsys.readouterr().err
    assert main(["score", "--master", "local[2]", "-o", str(tmp_path / "p.csv")]) == 2
    assert capsys.readouterr().err == "reviewcause: error: --master local[2]: a Spark master is used only with --engine spark\n"
    assert not (tmp_path / "p.csv").exists()
    with pytest.raises(SystemExit):
        main(["score", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: None)" not in text and "(default: 1)" in text
    assert "(default: detected: UTF-8" in text and "found by header name)" in text and "(default: None" not in text


def test_errors_show_control_characters_of_file_names_escaped(tmp_path, capsys):
    """A file name with a line break broke the one-line error in two; one with a terminal escape
    sequence acted on the terminal."""
    for name, shown in (("a\nb.csv", "a\\x0ab.csv"), ("nope\x1b]0;T\x07.csv", "nope\\x1b]0;T\\x07.csv")):
        code = main(["score", str(tmp_path / name), "-o", str(tmp_path / "o.csv"), "-q"])
        err = capsys.readouterr().err
        assert code == 2 and err == f"reviewcause: error: {tmp_path}/{shown}: no such file\n"


def test_export_headers_placeholders_and_excel_text_ids_read_as_meant(tmp_path, capsys, tiny_model_path):
    """内容 beside a 评价 of 好评/差评 is the text; a product name, not its SKU, is the item;
    JD/AliExpress headers are known; a platform's 'no review written' text is empty (it was a
    cause); ="0012" is the id 0012; the summary is one line whatever the names hold."""
    src = tmp_path / "a.csv"
    src.write_text("订单号,评价,内容,用户昵称,评价星级,Feedback Time,宝贝名称,SKU\n"
                   '="0012",差评,质量太差了,u1,1,2024-05-01,鞋,颜色:黑\n'
                   "0002,好评,此用户没有填写评价。,u2,5,2024-05-02,鞋,颜色:白\n", encoding="utf-8")
    out = tmp_path / "p.csv"
    assert main(["score", str(src), "-o", str(out), "--model", str(tiny_model_path)]) == 0
    err = capsys.readouterr().err
    assert "(text=内容, id=订单号, rating=评价星级, buyer=用户昵称, item=宝贝名称, date=Feedback Time)" in err
    got = pd.read_csv(out, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    assert got["review_id"].tolist() == ["0012", "0002"] and got["cause"].tolist()[1] == "empty"
    assert got["cause"].tolist()[0] != "empty"
    odd = tmp_path / "评价\n导出.csv"
    odd.write_text("评价内容\n质量差\n", encoding="utf-8")
    assert main(["score", str(odd), "-o", str(tmp_path / "q.csv"), "--model", str(tiny_model_path)]) == 0
    first = capsys.readouterr().err.splitlines()[0]
    assert first.startswith("scored 1 rows of ") and "评价\\x0a导出.csv" in first
    # a column named by an option is never taken by another role
    assert main(["score", str(src), "-o", str(tmp_path / "r.csv"), "--model", str(tiny_model_path), "--rating-col", "评价"]) == 0
    assert "(text=内容, id=订单号, rating=评价," in capsys.readouterr().err


def test_a_follow_up_review_is_scored_with_the_first(tmp_path, tiny_model_path, capsys):
    """追评 columns were never read: a complaint in the follow-up was lost, a blank first review
    with a follow-up was 'empty'. Now the follow-up is scored with the first review (alone when
    that is blank or a platform placeholder), and its words are the evidence."""
    src = tmp_path / "fu.csv"
    src.write_text("订单号,评价内容,追评内容\n0001,此用户没有填写评价。,物流太慢了\n0002,,物流太慢了\n0003,还行吧,\n", encoding="utf-8")
    out = tmp_path / "p.csv"
    assert main(["score", str(src), "-o", str(out), "--model", str(tiny_model_path)]) == 0
    assert "followup=追评内容" in capsys.readouterr().err
    got = pd.read_csv(out, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    assert got["cause"].tolist()[:2] == [got["cause"][1]] * 2 and got["cause"][1] not in ("empty", "uncertain")
    assert "「物流太慢了」" in got["evidence"][0] and "没有填写" not in got["evidence"][0]
    assert got["追评内容"].tolist() == ["物流太慢了", "物流太慢了", ""]  # the input cells as they were
    assert got["review_id"].tolist() == ["0001", "0002", "0003"]


def test_train_stopped_by_sigterm_says_so_and_leaves_no_worker_running(tmp_path):
    """SIGTERM killed train silently; joblib's workers lived on for five minutes holding the
    caller's pipes (a capture hung that long), then printed 'leaked semlock' warnings."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from pipeline.data import load_labelled

    f = load_labelled()
    f = f[f.source == "real"].sample(600, random_state=1)
    f.assign(labels=f["labels"].map(lambda ls: "|".join(ls) or "none"))[["text", "labels"]].to_csv(tmp_path / "l.csv", index=False)
    env = dict(os.environ, MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'ml.db'}")
    p = subprocess.Popen([sys.executable, "-m", "pipeline", "train", "--labels", str(tmp_path / "l.csv"), "--no-shipped",
                          "--model", str(tmp_path / "m.joblib"), "--folds", "2"], stderr=subprocess.PIPE,
                         stdout=subprocess.DEVNULL, text=True, start_new_session=True, env=env, cwd=tmp_path)
    time.sleep(8)  # inside the cross-validation's parallel fits
    p.send_signal(signal.SIGTERM)
    err = p.communicate(timeout=60)[1]
    assert p.returncode == 143 and err.rstrip().endswith("reviewcause: interrupted by SIGTERM; no output written"), err
    assert not (tmp_path / "m.joblib").exists()
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            os.killpg(p.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        pytest.fail("worker processes of the stopped train are still running")
