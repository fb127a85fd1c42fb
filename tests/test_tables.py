"""Real exports in, Excel-safe CSV out, nothing lost: each case with a file made here."""

import csv
import io
import os

import pandas as pd
import pytest

from pipeline.cli import main
from pipeline.predict import PRED_COLUMNS
from pipeline.tables import InputError, excel_safe, find_columns, open_table

REVIEWS = ["质量太差了，用两天就坏", "快递太慢，等了一周", "第一次网购，点错了给了差评"]


def run_score(tmp_path, src, model, *extra):
    out = tmp_path / "out.csv"
    code = main(["score", str(src), "-o", str(out), "--model", str(model), "-q", *extra])
    return code, out


def read_out(path, bom=True):
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") == bom
    return list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline="")))


def test_gbk_export_with_chinese_headers(tmp_path, tiny_model_path):
    src = tmp_path / "qianniu.csv"
    pd.DataFrame({"评价编号": ["1001", "1002", "1003"], "评分": ["1", "差评", "3星"], "评价内容": REVIEWS}).to_csv(
        src, index=False, encoding="gbk")
    code, out = run_score(tmp_path, src, tiny_model_path)
    assert code == 0
    rows = read_out(out)
    assert rows[0][:3] == ["评价编号", "评分", "评价内容"] and rows[0][3:] == PRED_COLUMNS
    assert [r[0] for r in rows[1:]] == ["1001", "1002", "1003"]
    assert [r[2] for r in rows[1:]] == REVIEWS
    assert open_table(src).encoding == "gb18030"


def test_utf8_bom_and_explicit_encoding(tmp_path, tiny_model_path):
    src = tmp_path / "bom.csv"
    src.write_text("review,id\n" + "\n".join(f"{t},{i}" for i, t in enumerate(REVIEWS)), encoding="utf-8-sig")
    assert open_table(src).roles["text"] == "review"  # BOM not glued to the first header
    code, out = run_score(tmp_path, src, tiny_model_path, "--no-bom")
    assert code == 0
    rows = read_out(out, bom=False)
    assert [r[1] for r in rows[1:]] == ["0", "1", "2"] and [r[2] for r in rows[1:]] == ["0", "1", "2"]
    # a wrong --encoding is a clear error naming the file
    gbk = tmp_path / "gbk.csv"
    gbk.write_bytes("text\n质量很差\n".encode("gbk"))
    with pytest.raises(InputError, match=r"gbk.csv: .*not decodable as utf-8"):
        list(open_table(gbk, encoding="utf-8").chunks())


def test_xlsx_input(tmp_path, tiny_model_path):
    src = tmp_path / "jd.xlsx"
    pd.DataFrame({"商品": ["杯子"] * 3, "评论内容": REVIEWS, "评分": [1, 2, 3]}).to_excel(src, index=False)
    code, out = run_score(tmp_path, src, tiny_model_path)
    assert code == 0
    rows = read_out(out)
    assert [r[1] for r in rows[1:]] == REVIEWS and [r[3] for r in rows[1:]] == ["1", "2", "3"]


def test_newlines_quotes_blank_rows_and_long_text(tmp_path, tiny_model_path):
    long = "质量很差" * 2500  # 10,000 characters
    frame = pd.DataFrame({"id": ["a", "b", "c", "d", "e"],
                          "text": ['第一行\n第二行，"引号"也在', "", "  ", long, "快递慢,\r\n还压坏了"]})
    src = tmp_path / "messy.csv"
    frame.to_csv(src, index=False)
    code, out = run_score(tmp_path, src, tiny_model_path)
    assert code == 0
    rows = read_out(out)[1:]
    assert [r[0] for r in rows] == ["a", "b", "c", "d", "e"]
    assert rows[0][1] == '第一行\n第二行，"引号"也在' and rows[3][1] == long and rows[4][1] == "快递慢,\r\n还压坏了"
    causes = [r[3] for r in rows]
    assert causes[1] == causes[2] == "empty" and causes[3] not in ("empty", "")


def test_formula_injection_escaped(tmp_path, tiny_model_path):
    src = tmp_path / "evil.csv"
    pd.DataFrame({"text": ['=HYPERLINK("http://x","点我")', "+1+1 太差", "@SUM(A1)", "\t=1", "正常评价"],
                  "days": ["-3", "=2+3", "+1.5", "5", "-1e3"]}).to_csv(src, index=False)
    code, out = run_score(tmp_path, src, tiny_model_path)
    rows = read_out(out)[1:]
    assert [r[0] for r in rows] == ["'=HYPERLINK(\"http://x\",\"点我\")", "'+1+1 太差", "'@SUM(A1)", "'\t=1", "正常评价"]
    assert [r[1] for r in rows] == ["-3", "'=2+3", "+1.5", "5", "-1e3"]  # plain numbers stay numbers
    assert excel_safe("\r=1") == "'\r=1" and excel_safe("-") == "'-"


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "the file is empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(64), "this is a PNG image, not a CSV file"),
        (b"PK\x03\x04" + bytes(32), "a ZIP archive"),
        (b"a,b\x00c\n1,2\n", "binary data"),
        ("买家,评分\n张三,1\n".encode(), "no review text column found (columns seen: 买家, 评分)"),
    ],
)
def test_bad_files_fail_in_one_line(tmp_path, tiny_model_path, capsys, content, message):
    src = tmp_path / "upload.csv"
    src.write_bytes(content)
    code, out = run_score(tmp_path, src, tiny_model_path)
    err = capsys.readouterr().err
    assert code == 2 and not out.exists()
    assert err.count("\n") == 1 and "upload.csv" in err and message in err and "Traceback" not in err


def test_corrupt_model_is_a_clear_error(tmp_path, capsys):
    bad = tmp_path / "model.joblib"
    bad.write_bytes(b"not a pickle")
    src = tmp_path / "r.csv"
    src.write_text("text\n好\n", encoding="utf-8")
    code, _ = run_score(tmp_path, src, bad)
    err = capsys.readouterr().err
    assert code == 2 and "model.joblib: not a reviewcause model" in err and err.count("\n") == 1


def test_crash_leaves_no_half_written_csv(tmp_path, tiny_model_path, monkeypatch):
    import pipeline.run as score

    src = tmp_path / "r.csv"
    pd.DataFrame({"text": REVIEWS * 4}).to_csv(src, index=False)
    out = tmp_path / "out.csv"
    out.write_text("previous result", encoding="utf-8")
    calls = {"n": 0}
    real = score.format_rows

    def boom(*a, **k):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("disk on fire")
        return real(*a, **k)

    monkeypatch.setattr(score, "format_rows", boom)
    with pytest.raises(RuntimeError):
        score.score_file(src, out, model_path=tiny_model_path, chunksize=4, batch=False)
    assert out.read_text(encoding="utf-8") == "previous result"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out.csv")] == []


@pytest.mark.parametrize("jobs", [1, 2])
def test_chunks_and_processes_keep_every_row_in_order(tmp_path, tiny_model_path, jobs):
    texts = [f"{t}{i}" for i in range(37) for t in REVIEWS[:1]]
    texts[5] = ""
    src = tmp_path / "many.csv"
    pd.DataFrame({"text": texts}).to_csv(src, index=False)
    from pipeline.run import score_file

    summary = score_file(src, tmp_path / "o.csv", model_path=tiny_model_path, chunksize=5, jobs=jobs)
    rows = read_out(tmp_path / "o.csv")[1:]
    assert summary["rows"] == 37 and [r[1] for r in rows] == [str(i) for i in range(1, 38)]
    assert [r[0] for r in rows] == texts and rows[5][2] == "empty"


def test_header_aliases_and_overrides():
    roles = find_columns(["订单编号", "买家昵称", "宝贝名称", "评价时间", "初评内容", "商家回复", "星级"])
    assert roles == {"text": "初评内容", "id": "订单编号", "rating": "星级", "buyer": "买家昵称", "item": "宝贝名称",
                     "date": "评价时间", "reply": "商家回复", "followup": None}
    assert find_columns(["Review Text", "Order_ID"])["text"] == "Review Text"
    assert find_columns(["正文", "x"], {"text": "正文"})["text"] == "正文"
    with pytest.raises(InputError, match="no column named 'y'"):
        find_columns(["正文"], {"text": "y"})


def test_blank_lines_are_rows_with_row_number_ids(tmp_path, tiny_model_path):
    src = tmp_path / "blank.csv"
    src.write_text("id,text\n1,质量差\n\n3,快递慢\n,\n5,好\n", encoding="utf-8")
    code, out = run_score(tmp_path, src, tiny_model_path)
    rows = read_out(out)[1:]
    assert code == 0 and [r[2] for r in rows] == ["1", "2", "3", "4", "5"]
    assert [r[3] for r in rows][1] == "empty" and [r[3] for r in rows][3] == "empty"


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_a_title_row_above_the_header_is_looked_past(tmp_path, tiny_model_path, capsys, suffix):
    """Exports that open with a title (千牛评价导出 2024-05-01) and a line of notes above the header:
    the header is found below, every review row is scored, the title rows are named in a warning;
    a one-column file whose reviews hold commas is still one column, and a title with no header
    below is the first row's own one-line error."""
    src = tmp_path / f"titled{suffix}"
    if suffix == ".csv":
        src.write_text("千牛评价导出 2024-05-01\n\n导出人：店长\n评价编号,评价内容,评分\nA1,快递太慢了,1\nA2,\"质量差,坏了\",2\n",
                       encoding="utf-8")
    else:
        from openpyxl import Workbook

        wb = Workbook()
        ws = wb.active
        ws.append(["千牛评价导出 2024-05-01"])
        ws.merge_cells("A1:C1")
        ws.append([])
        ws.append(["评价编号", "评价内容", "评分"])
        ws.append(["A1", "快递太慢了", 1])
        ws.append(["A2", "质量差,坏了", 2])
        wb.save(src)
    capsys.readouterr()
    code = main(["score", str(src), "-o", str(tmp_path / "out.csv"), "--model", str(tiny_model_path)])
    err = capsys.readouterr().err
    assert code == 0
    rows = read_out(tmp_path / "out.csv")
    assert rows[0][:3] == ["评价编号", "评价内容", "评分"]
    assert [r[:4] for r in rows[1:]] == [["A1", "快递太慢了", "1", "A1"], ["A2", "质量差,坏了", "2", "A2"]]
    header_at = "line 4" if suffix == ".csv" else "row 3"
    assert f"row(s) above the header read as a title, not as reviews (first: '千牛评价导出 2024-05-01'); header on {header_at}" in err
    assert ("2 row(s)" if suffix == ".csv" else "1 row(s)") in err


def test_a_title_row_in_a_file_of_cr_line_ends(tmp_path, tiny_model_path):
    for name, data in (("cr.csv", "店铺评价导出\r评价编号,评价内容\r1,质量差\r2,快递慢\r"),
                       ("mixed.csv", "店铺评价导出\r\n评价编号,评价内容\r1,质量差\r2,快递慢\r")):
        src = tmp_path / name
        src.write_text(data, encoding="utf-8", newline="")
        code, out = run_score(tmp_path, src, tiny_model_path)
        assert code == 0 and [r[:2] for r in read_out(out)] == [["评价编号", "评价内容"], ["1", "质量差"], ["2", "快递慢"]]


def test_one_column_files_and_titles_without_a_header_below(tmp_path, tiny_model_path, capsys):
    one = tmp_path / "one.csv"
    one.write_text("评价内容\n很差,质量不好\n好\n", encoding="utf-8")
    code, out = run_score(tmp_path, one, tiny_model_path)
    assert code == 0 and [r[0] for r in read_out(out)[1:]] == ["很差,质量不好", "好"]
    lone = tmp_path / "lone.csv"
    lone.write_text("千牛评价导出\n买家,评分\nb,1\n", encoding="utf-8")
    capsys.readouterr()
    assert run_score(tmp_path, lone, tiny_model_path)[0] == 2
    assert "lone.csv: no review text column found (columns seen: 千牛评价导出); name it with --text-col" in capsys.readouterr().err
    named = tmp_path / "named.csv"  # the header below found by --text-col's name, not an alias
    named.write_text("导出\n买家,正文x\nb,快递太慢\n", encoding="utf-8")
    code, out = run_score(tmp_path, named, tiny_model_path, "--text-col", "正文x")
    assert code == 0 and read_out(out)[1][:2] == ["b", "快递太慢"]


def test_rows_ending_in_cr_cr_lf_are_not_followed_by_blank_rows(tmp_path, tiny_model_path, capsys):
    """csv.writer (CR LF) into a file opened in Windows text mode (LF → CR LF) ends every line in
    CR CR LF; read as is, each row was followed by a blank `empty` row whose row-number id
    collided with the real ids. A line break inside a quoted cell stays in its cell."""
    buf = io.StringIO(newline="")
    csv.writer(buf).writerows([["评价编号", "评价内容"], ["1", "快递太慢"], ["2", "质量差\n坏了"], ["3", "客服不理人"]])
    src = tmp_path / "win.csv"
    src.write_bytes(buf.getvalue().replace("\n", "\r\n").encode("gb18030"))
    capsys.readouterr()
    code = main(["score", str(src), "-o", str(tmp_path / "out.csv"), "--model", str(tiny_model_path)])
    assert code == 0 and "lines end in CR CR LF" in capsys.readouterr().err
    rows = read_out(tmp_path / "out.csv")[1:]
    assert [r[0] for r in rows] == ["1", "2", "3"] and rows[1][1] == "质量差\r\n坏了"
    plain = tmp_path / "plain.csv"  # a blank line in an ordinary file is still a row
    plain.write_bytes("评价编号,评价内容\r\n1,快递太慢\r\n\r\n3,质量差\r\n".encode())
    code, out = run_score(tmp_path, plain, tiny_model_path)
    assert code == 0 and [r[0] for r in read_out(out)[1:]] == ["1", "", "3"]


def test_blank_sheet_rows_kept_between_reviews_and_dropped_after_the_last(tmp_path):
    """Blank rows between reviews are rows (they come out as `empty`, ids by row number); the
    blank tail of a sheet formatted far below its data is not — counted as it is read, never held
    as a list per row, and cut into chunks of the asked size like any other rows."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    wb = Workbook()
    ws = wb.active
    ws.append(["评价编号", "评价内容"])
    for i in range(3):
        ws.append([f"A{i}", "快递太慢"])
    for _ in range(5):
        ws.append([None, None])
    ws.append(["B", "质量差"])
    ws.cell(row=5000, column=2).font = Font(bold=True)  # formatting, no value
    src = tmp_path / "tail.xlsx"
    wb.save(src)
    chunks = list(open_table(src, chunksize=2).chunks())
    assert [len(c) for c in chunks] == [2, 2, 2, 2, 1]
    whole = pd.concat(chunks)
    assert whole["评价编号"].tolist() == ["A0", "A1", "A2", "", "", "", "", "", "B"]
    assert whole.index.tolist() == list(range(9))


def test_xlsx_cells_round_trip_through_ooxml_escapes(tmp_path, tiny_model_path):
    """Excel stores a CR as _x000D_ and a literal '_x0041_' as _x005F_x0041_; a control character
    as _x0001_. Written by score's .xlsx and read back by score, suspects and report — and read
    from Excel's own files — the texts are as they were (they came back as '_x000D_' and
    '_x005F_x0041_', and a raw CR as LF)."""
    from pipeline.report import read_predictions
    from pipeline.tables import _cell_text

    assert _cell_text("鞋底开胶了_x000D_\n第二行") == "鞋底开胶了\r\n第二行"
    assert _cell_text("订单_x005F_x0041_号") == "订单_x0041_号"
    texts = ["订单_x0041_号 质量差", "换行\r\n第二行 快递慢", "控制\x01符 客服差", "回车\r=cmd 很差", "代码_x005F_x000D_字面 质量差"]
    src = tmp_path / "rt.csv"
    with open(src, "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([["评价编号", "评价内容"], *[[f"a{i}", t] for i, t in enumerate(texts)]])
    book = tmp_path / "o.xlsx"
    assert main(["score", str(src), "-o", str(book), "--model", str(tiny_model_path), "-q"]) == 0
    assert main(["score", str(book), "-o", str(tmp_path / "o2.csv"), "--model", str(tiny_model_path), "-q"]) == 0
    assert [r[1] for r in read_out(tmp_path / "o2.csv")[1:]] == [t if not t.startswith("=") else "'" + t for t in texts]
    frame, roles = read_predictions(book)
    assert frame[roles["text"]].tolist() == texts


def test_atomic_file_replaces_keeps_mode_and_leaves_nothing_on_failure(tmp_path):
    """The one writer behind every output: renamed into place with the replaced file's mode,
    through a symlink to its target; a failing body leaves the old file and no temp file."""
    import stat

    from pipeline.tables import InputError, atomic_file

    out = tmp_path / "o.csv"
    out.write_bytes(b"old")
    os.chmod(out, 0o640)
    with atomic_file(out) as tmp:
        assert tmp.parent == tmp_path and tmp != out and tmp.exists()
        tmp.write_bytes(b"new")
        assert out.read_bytes() == b"old"  # nothing visible before the body ends
    assert out.read_bytes() == b"new"
    assert stat.S_IMODE(out.stat().st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.csv"]

    with pytest.raises(RuntimeError, match="boom"):
        with atomic_file(out) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("boom")
    assert out.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.csv"]

    link = tmp_path / "link.csv"
    link.symlink_to(out)
    with atomic_file(link) as tmp:
        tmp.write_bytes(b"via link")
    assert link.is_symlink() and out.read_bytes() == b"via link"

    missing = tmp_path / "no" / "such" / "o.csv"
    with pytest.raises(InputError, match=r"o\.csv: cannot write \(No such file or directory\); nothing was changed there"):
        with atomic_file(missing) as tmp:
            pass


@pytest.mark.parametrize("text_col", ["评价详情", "买家评价", "内容"])
def test_a_rating_word_column_named_evaluation_is_the_rating_not_the_text(text_col):
    """评价 holding 好评/中评/差评 beside 评价详情 was scored as the text: every review read as 差评."""
    from pipeline.tables import find_columns

    roles = find_columns(["订单号", "评价", text_col, "商家回复"])
    assert roles["text"] == text_col and roles["rating"] == "评价"
    assert find_columns(["订单号", "评分", "评价"])["text"] == "评价"  # alone, 评价 is still the text
    # a 买家评价 of 好评/差评 beside 内容 or 评论内容: the text is 内容 (found in review)
    assert find_columns(["订单号", "买家评价", "内容"])["text"] == "内容"
    assert find_columns(["订单号", "买家评价", "评论内容"])["text"] == "评论内容"
    assert find_columns(["订单号", "买家评价", "评论"])["text"] == "评论"
    roles = find_columns(["订单号", "评价", "买家评价"])
    assert roles["text"] == "买家评价" and roles["rating"] == "评价"


def test_one_column_given_two_roles_is_refused_naming_the_options():
    """--text-col X --followup-col X scored the text twice; --reply-col 评价内容 said 'no review text
    column found' while listing it."""
    from pipeline.tables import InputError, find_columns

    with pytest.raises(InputError, match="'评价内容' is given to both --text-col and --followup-col"):
        find_columns(["订单号", "评价内容"], {"text": "评价内容", "followup": "评价内容"}, "f.csv")
    with pytest.raises(InputError, match="the review text column '评价内容' is given to --reply-col; name the review"):
        find_columns(["订单号", "评价内容", "商家回复"], {"reply": "评价内容"}, "f.csv")

