"""The seller's view (``reviewcause report PREDICTIONS -o report.html [--png DIR]``): one offline
HTML page with a chart per section, hostile review text escaped, PNG export, the terminal table,
and the page as a browser renders it (headless Chromium; never skipped under CI)."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pandas as pd
import pytest

from pipeline.cli import main
from pipeline.paths import SAMPLE
from pipeline.taxonomy import CAUSE_IDS
from pipeline.report import (
    CAUSE_COLORS, build_report, display_width, evidence_spans, format_table, highlight, terminal_summary,
)

SECTIONS = ["cause-mix", "fix-first", "items", "weekly", "suspects", "examples"]
HOSTILE = "<script>alert(1)</script>"
HOSTILE_ITEM = '</script><img src=x onerror="alert(2)">\u2028'  # a line separator: Vega's sort expressions choked on it
HOSTILE_BUYER = '"><svg onload=alert(3)>'


def _read(path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")


@pytest.fixture(scope="module")
def predictions(tmp_path_factory, shipped_model_path) -> Path:
    """data/sample_reviews.csv scored by the shipped recipe, plus hostile rows: a flagged extortion
    review whose text, item, buyer and evidence carry markup, and one with a script as its text."""
    d = tmp_path_factory.mktemp("report")
    out = d / "pred.csv"
    assert main(["score", str(SAMPLE), "-o", str(out), "--model", str(shipped_model_path), "-q"]) == 0
    df = _read(out)
    extra = df.iloc[[0] * 8].copy()  # enough rows for the hostile item to lead the items chart
    extra["评价编号"] = extra["review_id"] = ["h\u20291"] + [f"h{i}" for i in range(2, 9)]  # the flagged one
    extra["评价内容"] = [f"{HOSTILE} 给我返50块就改好评 <b>bold</b> & 不然一直挂着", HOSTILE] + [f"{HOSTILE} 坏了"] * 6
    extra["商品"] = HOSTILE_ITEM
    extra["买家昵称"] = HOSTILE_BUYER
    extra["评价时间"] = "2024-06-05 10:00:00"
    extra["cause"] = ["extortion", "prank"] + ["product_quality"] * 6
    extra["confidence"] = ["0.9999", "0.9999"] + ["0.5"] * 6
    extra["suspected_malicious"] = ["true"] + ["false"] * 7
    extra["malicious_score"] = ["0.9999"] + ["0.1"] * 7
    extra["evidence"] = ([f"extortion「{HOSTILE}」「改好评」; 索要钱财 demands money「返50」", f"prank「{HOSTILE}」"]
                         + ["product_quality「坏了」"] * 6)
    pd.concat([df, extra], ignore_index=True).to_csv(out, index=False, encoding="utf-8-sig")
    return out


@pytest.fixture(scope="module")
def report_html(predictions) -> Path:
    out = predictions.parent / "report.html"
    assert main(["report", str(predictions), "-o", str(out), "-q"]) == 0
    return out


def _sections(page: str) -> dict[str, str]:
    return dict(re.findall(r'<section id="([a-z-]+)">(.*?)</section>', page, flags=re.S))


def _specs(fragment: str) -> list[dict]:
    blobs = re.findall(r'<script type="application/json" class="vl-spec" data-target="[^"]+">(.*?)</script>', fragment, re.S)
    return [json.loads(b) for b in blobs]


def _data_rows(spec: dict) -> int:
    """Rows of inline data anywhere in a Vega-Lite spec (top level, layers, datasets)."""
    n = sum(len(v) for v in spec.get("datasets", {}).values())
    n += len(spec.get("data", {}).get("values", []))
    return n + sum(_data_rows(s) for s in spec.get("layer", []))


def _strings(obj) -> set[str]:
    if isinstance(obj, str):
        return {obj}
    if isinstance(obj, dict):
        obj = list(obj.values())
    return set().union(*map(_strings, obj)) if isinstance(obj, list) else set()


def test_html_has_a_chart_per_section(report_html):
    page = report_html.read_text(encoding="utf-8")
    sections = _sections(page)
    assert list(sections) == SECTIONS
    for key, body in sections.items():
        assert f'id="chart-{key}"' in body, key
        specs = _specs(body)
        assert len(specs) == 1 and _data_rows(specs[0]) > 0, key
    # the sections carry what they promise
    assert "不要妥协，向平台投诉维权" in sections["cause-mix"] and "描述相符" in sections["cause-mix"]
    for special in ("无差评内容", "无法判断", "空评价"):  # counted apart
        assert special in sections["cause-mix"]
    assert "描述相符" in sections["fix-first"] and "stars lost" in sections["fix-first"]
    assert "<mark>" in sections["examples"]
    assert "申诉" in sections["suspects"] or "投诉" in sections["suspects"]


def test_specs_are_valid_vega_lite(predictions):
    report = build_report(predictions, validate=True)  # altair validates each spec against the schema
    assert list(report.charts) == [f"{i}-{k}" for i, k in enumerate(SECTIONS, 1)]
    assert report.stats["suspects"] >= 3


def test_html_is_self_contained(report_html):
    page = report_html.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and '<meta charset="utf-8">' in page
    assert re.search(r"font-family:[^;]*Noto Sans CJK SC", page) and "Microsoft YaHei" in page
    # nothing is fetched: no script with a src; outside the scripts' bodies (the inlined library's own
    # strings), no src/href/data on any element, no CSS url(), @import or @font-face
    assert not re.search(r"<script\b[^>]*\ssrc\s*=", page, re.I)
    outside = re.sub(r"(<script\b[^>]*>).*?</script>", r"\1</script>", page, flags=re.S | re.I)
    assert not re.search(r"<[a-z]+\b[^>]*\s(src|href|data|srcset|poster)\s*=\s*['\"]?\s*(https?:)?//", outside, re.I)
    assert not re.search(r"<(link|img|iframe|source|embed|object|audio|video|base)\b", outside, re.I)
    assert not re.search(r"url\(", outside, re.I)
    assert "@import" not in outside and "@font-face" not in outside
    # the page forbids network access outright
    assert "default-src 'none'" in page and "connect-src 'none'" in page
    # outside the inlined library no http(s) address appears but in escaped review text
    for url in re.findall(r"https?://[^\s\"'<>&]*", outside):
        assert "example.com" in url, url  # the sample's =HYPERLINK("http://example.com") review, escaped text


def test_hostile_text_is_escaped(report_html):
    page = report_html.read_text(encoding="utf-8")
    assert HOSTILE not in page and "<b>bold</b>" not in page
    assert html.escape(HOSTILE) in page
    assert HOSTILE_ITEM not in page and '<img src=x' not in page and HOSTILE_BUYER not in page
    assert html.escape(HOSTILE_BUYER) in page
    # only our own script elements: the library, the runner and one JSON spec per chart
    assert len(re.findall(r"<script\b", page, re.I)) == 2 + len(SECTIONS)
    # chart data keeps the hostile item name (its line separator a space), as JSON that cannot close its <script>
    items = _specs(_sections(page)["items"])[0]
    assert any(HOSTILE_ITEM.rstrip("\u2028") in v and "\u2028" not in v for v in _strings(items))
    # evidence quoting the hostile text is highlighted as escaped text
    assert f"<mark>{html.escape(HOSTILE)}</mark>" in page


def test_highlight_escapes_and_matches_width_case_and_script():
    assert highlight("a<b>质量太差</b>", ["质量太差"]) == "a&lt;b&gt;<mark>质量太差</mark>&lt;/b&gt;"
    assert highlight("外形外观：还不错", ["外形外观:还不错"]) == "<mark>外形外观：还不错</mark>"  # full width
    assert highlight("東西收到就是壞的", ["东西收到就是坏的"]) == "<mark>東西收到就是壞的</mark>"  # traditional
    assert highlight("VISTA系统", ["vista"]) == "<mark>VISTA</mark>系统"
    assert highlight("太差了，太差了", ["太差"]) == "<mark>太差</mark>了，<mark>太差</mark>了"
    assert highlight("<script>", ["<script>"]) == "<mark>&lt;script&gt;</mark>"
    assert highlight("没有证据", []) == "没有证据"
    ev = "service_attitude「客服不理」; product_quality「坏了」; 索要钱财 demands money「返50」; 低星评分 low star rating"
    assert evidence_spans(ev) == ["客服不理", "坏了", "返50"]
    assert evidence_spans(ev, "product_quality") == ["坏了", "返50"]


def test_png_export(predictions, tmp_path, capsys):
    folder = tmp_path / "charts" / "png"  # created, parents too
    assert main(["report", str(predictions), "--png", str(folder), "-q"]) == 0
    files = sorted(p.name for p in folder.glob("*.png"))
    assert files == [f"{i}-{k}.png" for i, k in enumerate(SECTIONS, 1)]
    from PIL import Image

    for name in files:
        with Image.open(folder / name) as im:
            assert im.format == "PNG" and im.width > 400 and im.height > 100
            assert len(im.convert("RGB").getcolors(1 << 24)) > 20, name  # not blank
    assert "report of" not in capsys.readouterr().out  # --png alone writes no HTML
    # a predictions file with a chart's name in that folder is refused, before anything is written
    kept = folder / files[0]
    kept.write_bytes(predictions.read_bytes())
    before = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    assert main(["report", str(kept), "--png", str(folder), "-q"]) == 2
    assert f"{kept}: is {kept}; the chart would overwrite it" in capsys.readouterr().err
    assert kept.read_bytes() == predictions.read_bytes()
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == before
    # with -o too: the page is not written (nor an old one replaced) when --png is refused
    page = tmp_path / "r.html"
    page.write_text("old", encoding="utf-8")
    (tmp_path / "afile").write_text("x", encoding="utf-8")
    for png, message in ((tmp_path / "afile", "--png needs a folder, this is a file"),
                         (folder, "the chart would overwrite it")):
        assert main(["report", str(kept), "-o", str(page), "--png", str(png), "-q"]) == 2
        assert message in capsys.readouterr().err and page.read_text(encoding="utf-8") == "old"


def test_terminal_table_is_aligned_by_display_width(predictions, capsys):
    assert main(["report", str(predictions)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    rows = [line for line in lines if re.match(r"\s*[1-8]\s", line)]
    assert len(rows) == 8 and "职业差评师敲诈" in out and "counted apart" in out
    # the cause id column starts at the same display column on every row, whatever the Chinese name's length
    starts = set()
    for line in rows:
        cause = re.search(r"[a-z_]{5,}", line)
        starts.add(display_width(line[: cause.start()]))
    assert len(starts) == 1
    assert terminal_summary(predictions) == out.rstrip("\n")


def test_display_width_and_format_table():
    assert display_width("商品质量") == 8 and display_width("ab") == 2 and display_width("ｅ") == 2
    table = format_table(["名", "n"], [["恶作剧", "1"], ["x", "22"]], right={1}).splitlines()
    assert [display_width(line) for line in table] == [10, 10, 10]


def test_report_without_item_date_or_rating(predictions, tmp_path):
    df = _read(predictions).drop(columns=["商品", "评价时间", "评分"])
    bare = tmp_path / "bare.csv"
    df.to_csv(bare, index=False, encoding="utf-8-sig")
    out = tmp_path / "bare.html"
    assert main(["report", str(bare), "-o", str(out), "-q"]) == 0
    sections = _sections(out.read_text(encoding="utf-8"))
    assert "no item column" in sections["items"] and "chart-items" not in sections["items"]
    assert "no date column" in sections["weekly"] and "chart-weekly" not in sections["weekly"]
    assert "every review counts as bad" in sections["fix-first"] and "chart-fix-first" in sections["fix-first"]


def test_report_of_an_empty_predictions_file(predictions, tmp_path):
    empty = tmp_path / "empty.csv"
    _read(predictions).head(0).to_csv(empty, index=False, encoding="utf-8-sig")
    out = tmp_path / "empty.html"
    assert main(["report", str(empty), "-o", str(out), "-q"]) == 0
    page = out.read_text(encoding="utf-8")
    assert "no review is flagged" in page and "<section" in page


def test_report_output_errors(predictions, tmp_path, capsys):
    assert main(["report", str(predictions), "-o", str(tmp_path / "r.csv")]) == 2
    assert "name it .html" in capsys.readouterr().err
    assert main(["report", str(predictions), "-o", str(tmp_path / "missing" / "r.html")]) == 2
    assert "does not exist" in capsys.readouterr().err
    same = tmp_path / "pred.html"
    shutil.copy(predictions, same)
    assert main(["report", str(same), "-o", str(same)]) == 2
    assert "predictions file itself" in capsys.readouterr().err
    assert _read(same).shape[0] > 0  # left alone
    assert main(["report", str(tmp_path / "nope.csv"), "-o", str(tmp_path / "r.html")]) == 2
    assert not (tmp_path / "r.html").exists()


# --- in a browser ---------------------------------------------------------------------------------

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--virtual-time-budget=15000"]


def _chromium() -> str | None:
    for name in ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


def _run_chromium(binary: str, *args: str) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run([binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                              capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL)


def test_report_renders_in_headless_chromium(report_html, tmp_path):
    binary = _chromium()
    if binary is None:
        reason = "no chromium: apt-get install chromium fonts-noto-cjk (.ci/run installs it as root)"
        if os.environ.get("CI", "").lower() in ("true", "1", "yes"):
            pytest.fail(f"browser test cannot be skipped under CI: {reason}")
        pytest.skip(reason)
    url = report_html.resolve().as_uri()
    # every chart rendered to SVG, with no error from Vega-Embed
    dom = _run_chromium(binary, "--dump-dom", url).stdout
    body = re.search(r"<body[^>]*>", dom)
    assert body and f'data-charts="{len(SECTIONS)}"' in body.group(0), (body and body.group(0), dom[-2000:])
    assert len(re.findall(r'<svg[^>]*class="marks"', dom)) == len(SECTIONS)
    # the screenshot is not blank: many colours, and the cause colours of the charts are on it
    shot = tmp_path / "out.png"
    _run_chromium(binary, f"--screenshot={shot}", "--window-size=1200,2400", url)
    assert shot.exists() and shot.stat().st_size > 10_000
    from PIL import Image

    with Image.open(shot) as im:
        rgb = im.convert("RGB")
        colours = {c for _, c in rgb.getcolors(1 << 24)}
    assert len(colours) > 200
    drawn = {tuple(int(h[i : i + 2], 16) for i in (1, 3, 5)) for h in CAUSE_COLORS.values()}
    assert len(drawn & colours) >= 3, "the charts' cause colours are not on the screenshot"


def test_report_and_suspects_read_excel_and_chinese_headers(tiny_model_path, tmp_path):
    """What `score` writes — CSV or workbook, English or --zh-headers — `report` and `suspects` read."""
    from pipeline.report import read_predictions

    csv = tmp_path / "pred.csv"
    assert main(["score", str(SAMPLE), "-o", str(csv), "--model", str(tiny_model_path), "-q"]) == 0
    reference, roles = read_predictions(csv)
    for name, extra in [("zh.csv", ["--zh-headers"]), ("pred.xlsx", []), ("zh.xlsx", ["--zh-headers"])]:
        out = tmp_path / name
        assert main(["score", str(SAMPLE), "-o", str(out), "--model", str(tiny_model_path), "-q", *extra]) == 0
        df, found = read_predictions(out)
        assert found == roles, name
        assert list(df.columns) == list(reference.columns), name
        assert df["cause"].tolist() == reference["cause"].tolist(), name
        assert df["evidence"].tolist() == reference["evidence"].tolist(), name
        assert main(["report", str(out), "-o", str(tmp_path / f"{name}.html"), "-q"]) == 0
        assert "cause-mix" in (tmp_path / f"{name}.html").read_text(encoding="utf-8")
        assert main(["suspects", str(out), "-o", str(tmp_path / f"{name}.suspects.csv"), "-q"]) == 0


@pytest.mark.parametrize("zh", [False, True])
def test_input_columns_named_like_chinese_output_columns(tiny_model_path, tmp_path, zh):
    """An export whose own columns are called 原因, 置信度, 证据 (a seller's notes): `score` keeps
    them, and `report`/`suspects` read the predictions beside them, not the notes."""
    from pipeline.report import read_predictions

    src = tmp_path / "notes.csv"
    src.write_text("评价编号,评价内容,原因,置信度,证据,恶意分\n1,质量差，用两天就坏了,我的备注,高,截图1.png,很高\n"
                   "2,快递太慢了,物流,中,,\n", encoding="utf-8")
    out = tmp_path / "pred.csv"
    assert main(["score", str(src), "-o", str(out), "--model", str(tiny_model_path), "-q"] + (["--zh-headers"] if zh else [])) == 0
    df, roles = read_predictions(out)
    assert roles["text"] in ("评价内容", "评价内容(text)") and len(df) == 2
    assert set(df["cause"]) <= set(CAUSE_IDS) | {"uncertain", "no_complaint", "empty"}
    assert main(["report", str(out), "-o", str(tmp_path / "r.html"), "-q"]) == 0
    assert main(["suspects", str(out), "-o", str(tmp_path / "s.csv"), "-q"]) == 0


def test_a_workbook_without_predictions_is_refused_in_one_line(tmp_path, capsys):
    book = tmp_path / "other.xlsx"
    pd.DataFrame({"x": [1]}).to_excel(book, sheet_name="Sheet1", index=False)
    assert main(["report", str(book), "-o", str(tmp_path / "r.html")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no sheet named 'predictions'" in err[0] and "other.xlsx" in err[0]
    fake = tmp_path / "fake.xlsx"
    fake.write_text("not a zip", encoding="utf-8")
    assert main(["report", str(fake), "-o", str(tmp_path / "r.html")]) == 2
    assert "not an Excel workbook" in capsys.readouterr().err


def test_a_predictions_csv_saved_again_by_excel_still_reads(tiny_model_path, tmp_path):
    """Opened in Excel and saved as "CSV" (GBK on a Chinese Windows) or "Unicode text" (UTF-16,
    tab-separated): report reads the same table."""
    from pipeline.report import read_predictions
    from pipeline.tables import InputError

    predictions = tmp_path / "pred.csv"
    assert main(["score", str(SAMPLE), "-o", str(predictions), "--model", str(tiny_model_path), "-q"]) == 0
    reference, roles = read_predictions(predictions)
    text = Path(predictions).read_text(encoding="utf-8-sig")
    frame = pd.read_csv(predictions, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    gbk = tmp_path / "gbk.csv"
    gbk.write_bytes(text.encode("gbk", errors="replace"))
    utf16 = tmp_path / "unicode.txt"
    frame.to_csv(utf16, sep="\t", index=False, encoding="utf-16")
    for path in (gbk, utf16):
        df, found = read_predictions(path)
        assert found == roles, path.name
        assert list(df.columns) == list(reference.columns), path.name
        assert df["cause"].tolist() == reference["cause"].tolist(), path.name
        assert df["review_id"].tolist() == reference["review_id"].tolist(), path.name
        assert main(["report", str(path), "-o", str(tmp_path / f"{path.name}.html"), "-q"]) == 0
    broken = tmp_path / "broken.csv"
    broken.write_bytes(b"\x00\x01\x02 not a table")
    with pytest.raises(InputError):
        read_predictions(broken)


def test_report_holds_only_the_columns_it_reads(tiny_model_path, tmp_path):
    """A predictions file is read in chunks and only the columns a report reads are held: the
    prediction columns it uses and the input columns that have a role — not the eight
    probabilities nor input columns without a role (a shop's export may have dozens)."""
    from pipeline.report import read_predictions

    src = tmp_path / "export.csv"
    frame = pd.DataFrame({"评价编号": ["a1", "a2", "a3"], "订单备注": ["x", "y", "z"], "评价内容": ["质量太差了", "快递太慢", "还行"],
                          "评分": ["1", "2", "3"], "备用列": ["s", "s", "s"]})
    frame.to_csv(src, index=False)
    pred = tmp_path / "pred.csv"
    assert main(["score", str(src), "-o", str(pred), "--model", str(tiny_model_path), "-q"]) == 0
    df, roles = read_predictions(pred)
    assert roles["text"] == "评价内容" and roles["id"] == "评价编号" and roles["rating"] == "评分"
    assert set(df.columns) == {"评价编号", "评价内容", "评分", "review_id", "cause", "confidence", "suspected_malicious",
                               "malicious_score", "cluster_id", "evidence"}
    assert df["review_id"].tolist() == ["a1", "a2", "a3"]
    assert main(["report", str(pred), "-o", str(tmp_path / "r.html"), "-q"]) == 0


@pytest.mark.parametrize("column, value, message", [
    ("malicious_score", "abc", "'abc' is not a probability between 0 and 1"),
    ("malicious_score", "inf", "'inf' is not a probability between 0 and 1"),
    ("malicious_score", "1.7", "'1.7' is not a probability between 0 and 1"),
    ("suspected_malicious", "maybe", "'maybe' is not true or false"),
    ("cause", "foo_cause", "'foo_cause' is not a cause id"),
])
def test_hand_edited_prediction_cells_are_refused_by_row(predictions, tmp_path, capsys, column, value, message):
    from pipeline.cli import main

    frame = _read(predictions)
    frame.loc[3, column] = value
    bad = tmp_path / "bad.csv"
    frame.to_csv(bad, index=False)
    for argv in (["suspects", str(bad), "-o", str(tmp_path / "s.csv")], ["report", str(bad), "-o", str(tmp_path / "r.html")]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"reviewcause: error: {bad}: data row 4, column '{column}': {message}") and err.count("\n") == 1


def test_duplicate_ids_do_not_merge_single_suspects(predictions, tmp_path):
    from pipeline.report import suspects

    frame = _read(predictions)
    frame["review_id"], frame["suspected_malicious"], frame["cluster_id"] = "dup", "true", ""
    src = tmp_path / "dup.csv"
    frame.to_csv(src, index=False)
    stats = suspects(src, tmp_path / "s.csv")
    out = _read(tmp_path / "s.csv")
    singles = out[out["group_kind"] == "single"]
    assert singles["group"].is_unique and (singles["group_size"].astype(int) == 1).all()
    assert len(out) == len(frame) and stats


def test_single_suspect_names_stay_one_review_each():
    """Ids x, x, x#1: the numbered names of the repeated id skip the name the third id holds."""
    from pipeline.report import _single_names

    assert _single_names(["x", "x", "x#1", "y"]) == ["R:x#2", "R:x#3", "R:x#1", "R:y"]
    assert _single_names(["a", "a", "a"]) == ["R:a#1", "R:a#2", "R:a#3"]


def test_the_formula_escape_of_score_csv_stays_out_of_suspects_and_the_report(tiny_model_path, tmp_path):
    """score's CSV writes an id -A1024 as '-A1024 and a buyer @小明 as '@小明 (against formula
    injection); suspects (.xlsx) and the report read them back as they were written in the export,
    and suspects' own CSV escapes them again."""
    import openpyxl

    from pipeline.report import suspects

    src = tmp_path / "ap.csv"
    src.write_text("评价编号,买家昵称,评分,评价内容\n-A1024,@小明,1,返50元我就改好评，不然差评一直挂着\n", encoding="utf-8")
    pred = tmp_path / "p.csv"
    assert main(["score", str(src), "-o", str(pred), "--model", str(tiny_model_path), "-q"]) == 0
    frame = _read(pred)
    assert frame.loc[0, "评价编号"] == "'-A1024" and frame.loc[0, "review_id"] == "'-A1024"
    frame["suspected_malicious"] = "true"  # whatever the tiny model decided: a suspect
    frame.to_csv(pred, index=False)
    suspects(pred, tmp_path / "s.xlsx")
    row = [c.value for c in list(openpyxl.load_workbook(tmp_path / "s.xlsx").active.iter_rows())[1]]
    assert row[4:6] == ["-A1024", "@小明"]
    suspects(pred, tmp_path / "s.csv")
    assert _read(tmp_path / "s.csv").loc[0, "review_id"] == "'-A1024"
    assert main(["report", str(pred), "-o", str(tmp_path / "r.html"), "-q"]) == 0
    assert "'-A1024" not in (tmp_path / "r.html").read_text(encoding="utf-8")


def test_suspects_and_report_take_the_column_options_score_was_given(tiny_model_path, tmp_path, capsys):
    """An export whose headers no alias knows: score is told its columns; suspects and report
    read the same file when told the same (before, they refused it or lost the buyer, item,
    rating and date columns)."""
    texts = ["加我微信返现50，不然一直挂着差评", "同行来踩一下，垃圾店铺大家别买", "质量太差了用一天就坏",
             "物流慢得要死等了十天", "客服态度差", "衣服起球严重"]
    src = tmp_path / "cols.csv"
    pd.DataFrame({"单号": [f"o{i}" for i in range(6)], "旺旺": ["buyerA"] * 4 + ["b4", "b5"],
                  "宝贝链接": ["i0", "i1", "i2", "i0", "i1", "i2"], "星": ["1"] * 6,
                  "成交时间": [f"2024-05-0{i + 1} 10:00" for i in range(6)], "正文": texts}).to_csv(src, index=False)
    cols = ["--text-col", "正文", "--id-col", "单号", "--buyer-col", "旺旺", "--item-col", "宝贝链接",
            "--rating-col", "星", "--date-col", "成交时间"]
    pred = tmp_path / "p.csv"
    assert main(["score", str(src), "-o", str(pred), "--model", str(tiny_model_path), "-q", *cols]) == 0
    assert main(["suspects", str(pred), "-o", str(tmp_path / "s0.csv"), "-q"]) == 2
    assert "no review text column found" in capsys.readouterr().err
    assert main(["suspects", str(pred), "-o", str(tmp_path / "s.csv"), "-q", *cols]) == 0
    s = pd.read_csv(tmp_path / "s.csv", dtype=str, keep_default_na=False)
    assert len(s) and (s["buyer"] != "").all() and (s["item"] != "").all() and (s["date"] != "").all()
    flagged_a = s[s["buyer"] == "buyerA"]
    assert len(flagged_a) >= 2 and (flagged_a["group"] == "B:buyerA").all()  # one buyer's group, not singles
    assert flagged_a["rating"].eq("1").all()
    assert main(["report", str(pred), "-o", str(tmp_path / "r.html"), "-q", *cols]) == 0
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "i0" in page  # the item section exists: the item column was read
    assert main(["report", str(pred), "--text-col", "正文", "--rating-col", "星"]) == 0
    table = capsys.readouterr().out
    assert "product_quality" in table and "stockout_logistics" in table
    assert main(["report", str(pred), "--text-col", "正文", "--buyer-col", "无此列"]) == 2
    assert "no column named '无此列' for --buyer-col" in capsys.readouterr().err


def test_report_of_a_file_whose_name_is_not_utf8_and_a_png_folder_named_as_the_page(tiny_model_path, tmp_path, capsys):
    """A GBK file name unzipped on Linux (bytes that are not UTF-8) is shown decoded in the page;
    --png naming the page itself is refused before any folder is made."""
    pred = tmp_path / "p.csv"
    assert main(["score", str(SAMPLE), "-o", str(pred), "--model", str(tiny_model_path), "-q"]) == 0
    gbk = Path(os.fsdecode(bytes(tmp_path) + b"/" + "评价.csv".encode("gbk")))
    gbk.write_bytes(pred.read_bytes())
    out = tmp_path / "r.html"
    assert main(["report", str(gbk), "-o", str(out), "-q"]) == 0
    assert "差评归因报告 · 评价.csv" in out.read_text(encoding="utf-8")
    both = tmp_path / "rr.html"
    assert main(["report", str(pred), "-o", str(both), "--png", str(both), "-q"]) == 2
    assert capsys.readouterr().err == f"reviewcause: error: {both}: is also {both}; --png needs a folder of its own\n"
    assert not both.exists()


def test_control_and_bidi_characters_in_user_values_neither_crash_nor_fake_the_page(tiny_model_path, tmp_path, capsys):
    """A control character in an item, id or buyer aborted the whole process in the PNG renderer
    (SIGABRT); U+202E reversed the page's own date and confidence beside a hostile name."""
    src = tmp_path / "c.csv"
    pd.DataFrame({"评价编号": ["id\x08x", "2", "3"], "商品": ["a\x08b", "\u202e好商品", "B\ufffe"], "评分": ["1", "1", "1"],
                  "评价时间": ["2024-05-01", "2024-05-02", "2024-05-03"],
                  "评价内容": ["质量太差了", "快递太慢了\x1b[31m", "加我微信返现50，不然一直挂着差评"]}).to_csv(src, index=False)
    pred = tmp_path / "p.csv"
    assert main(["score", str(src), "-o", str(pred), "--model", str(tiny_model_path), "-q"]) == 0
    out, png = tmp_path / "r.html", tmp_path / "png"
    assert main(["report", str(pred), "-o", str(out), "--png", str(png), "-q"]) == 0
    page = out.read_text(encoding="utf-8")
    assert len(list(png.glob("*.png"))) == 6
    assert not any(ch in page for ch in "\x08\x1b\u202e\ufffe") and "好商品" in page and "ab" in page


def test_blank_rows_in_a_predictions_file_are_skipped_not_refused(tiny_model_path, tmp_path, capsys):
    """Rows of only commas (Excel's "clear contents") or a blank line at the end made report and
    suspects refuse the whole file ('' is not a cause id)."""
    pred = tmp_path / "p.csv"
    assert main(["score", str(SAMPLE), "-o", str(pred), "--model", str(tiny_model_path), "-q"]) == 0
    n = len(pd.read_csv(pred, dtype=str))
    width = len(pd.read_csv(pred, dtype=str, nrows=0).columns)
    edited = tmp_path / "edited.csv"
    edited.write_bytes(pred.read_bytes() + b"\r\n" + b"," * (width - 1) + b"\r\n")
    assert main(["suspects", str(edited), "-o", str(tmp_path / "s.csv")]) == 0
    err = capsys.readouterr().err
    assert f"edited.csv: 2 blank row(s) skipped (first: data row {n + 1})" in err and f"of {n} in" in err
    assert main(["report", str(edited), "-o", str(tmp_path / "r.html"), "-q"]) == 0


def test_very_long_ids_and_buyers_are_shortened_on_the_page(tiny_model_path, tmp_path):
    """20,000-character ids or buyers were written whole (a 1.8 MB page, a 20,000-character group
    heading); like item names they are cut on the page (the CSVs keep them whole)."""
    long_id, long_buyer = "I" * 20_000, "B" * 20_000
    src = tmp_path / "l.csv"
    pd.DataFrame({"评价编号": [long_id + str(i) for i in range(4)], "买家昵称": [long_buyer] * 4,
                  "商品": ["x", "y", "x", "y"], "评分": ["1"] * 4,
                  "评价内容": ["加我微信返现50，不然一直挂着差评", "同行来踩，垃圾店铺大家别买", "质量太差了", "物流太慢"]}).to_csv(src, index=False)
    pred = tmp_path / "p.csv"
    assert main(["score", str(src), "-o", str(pred), "--model", str(tiny_model_path), "-q"]) == 0
    assert main(["report", str(pred), "-o", str(tmp_path / "r.html"), "-q"]) == 0
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "I" * 200 not in page and "B" * 200 not in page


def test_predictions_saved_again_from_excel_are_read(tmp_path, tiny_model_path):
    """A predictions CSV opened in Excel and saved as .xlsx has one sheet named after the file:
    'no sheet named predictions'."""
    from pipeline.report import read_predictions

    src = tmp_path / "in.csv"
    src.write_text("评价编号,评价内容\nA1,质量太差了\nA2,快递太慢\n", encoding="utf-8")
    out = tmp_path / "评价结果.csv"
    assert main(["score", str(src), "-o", str(out), "--model", str(tiny_model_path), "-q", "--zh-headers"]) == 0
    resaved = tmp_path / "评价结果.xlsx"
    pd.read_csv(out, dtype=str, keep_default_na=False, encoding="utf-8-sig").to_excel(resaved, sheet_name="评价结果", index=False)
    df, _ = read_predictions(resaved)
    assert len(df) == 2 and list(df["review_id"]) == ["A1", "A2"]
    assert main(["suspects", str(resaved), "-o", str(tmp_path / "s.csv"), "-q"]) == 0
