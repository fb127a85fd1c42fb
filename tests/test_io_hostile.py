"""A hostile-input battery: every file is built here, byte by byte, and every case asserts the
exact outcome — exit status, the one stderr line (naming file, row, column), and the cells
written back. Either every input row comes out, in order, with its id, or there is one line.

Sections
  1. the battery (``CASES``): encodings, delimiters, quoting, line ends, odd/huge cells, odd
     headers, binary and empty files — each run through ``reviewcause score``;
  2. decoding internals: block-wise decoding at every block size, a bad byte at data row 50,000;
  3. Excel input: which sheet, other sheets, formulas without a saved value, odd headers;
  4. output: ``.xlsx`` workbooks, ``--zh-headers``, refused extensions, output = input, file
     modes, a full disk;
  5. label files;
  6. the Makefile with file names holding spaces, brackets and quotes.
"""

from __future__ import annotations

import csv
import errno
import io
import os
import re
import shutil
import stat
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.tables import (ZH_COLUMNS, InputError, _codec_for, _text_blocks, display_name, open_table,
                             plausibility)
from pipeline.taxonomy import CAUSES

REPO = Path(__file__).resolve().parents[1]
R = ["质量太差了，用两天就坏", "快递太慢，等了一周", "第一次网购，点错了给了差评"]
T = ["質量太差了，用兩天就壞", "快遞太慢，等了一週", "第一次網購，點錯了給了差評"]  # the same in traditional script


def table_bytes(header, rows, enc="utf-8", sep=",", nl="\n") -> bytes:
    buf = io.StringIO(newline="")
    w = csv.writer(buf, delimiter=sep, lineterminator=nl)
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue().encode(enc)


def basic(enc="utf-8", sep=",", nl="\n", texts=R, header=("评价编号", "评价内容")) -> bytes:
    return table_bytes(list(header), [[str(i + 1), t] for i, t in enumerate(texts)], enc, sep, nl)


def run_score(tmp_path, capsys, src, model, *extra, out="out.csv"):
    out_path = tmp_path / out
    code = main(["score", str(src), "-o", str(out_path), "--model", str(model), "-q", *extra])
    return code, out_path, capsys.readouterr().err


def read_csv_out(path: Path, sep=","):
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline=""), delimiter=sep))
    return rows[0], rows[1:]


# --- 1. the battery ---------------------------------------------------------------------------


@dataclass
class Case:
    """One hostile file. Success: ``header`` (the input header as written back), ``rows`` (the
    input cells of every row, in order) and ``ids`` (the review_id column). Failure: ``error``,
    the exact message after ``<file>: ``."""

    name: str
    data: bytes
    header: list[str] | None = None
    rows: list[list[str]] | None = None
    ids: list[str] | None = None
    error: str | None = None
    suffix: str = ".csv"
    extra: tuple[str, ...] = ()
    warnings: list[str] = field(default_factory=list)  # exact warning lines, '{src}' = the input path
    causes: dict[int, str] = field(default_factory=dict)  # row index → expected cause


H = ["评价编号", "评价内容"]
ROWS = [["1", R[0]], ["2", R[1]], ["3", R[2]]]
IDS = ["1", "2", "3"]
BIG = "质量很差" * 75_000  # 300,000 characters in one cell
OVER_BLOCK = "质" * 600_000  # 1.8 MB of UTF-8 in one cell: crosses the 1 MB read blocks
WIDE = [f"c{i}" for i in range(2_000)]
CTRL = "a\x01b\x07c\x1b[31m红\x7f\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029d"
EMOJI = ["👨‍👩‍👧 质量差😡", "Bad quality, 太差 !!!", "品質が悪い（日本語）", "جودة سيئة", "𠮷野家的盒子漏了"]
TEXT_AFTER_QUOTE = "评价编号,评价内容\n1,\"很差\"吧\n".encode()

CASES = [
    # --- encodings
    Case("utf8", basic(), H, ROWS, IDS),
    Case("utf8_bom", basic("utf-8-sig"), H, ROWS, IDS),
    Case("gbk", basic("gbk"), H, ROWS, IDS),
    Case("gb18030_four_byte", basic("gb18030", texts=["𠮷野家的盒子漏了😡", R[1], R[2]]), H,
         [["1", "𠮷野家的盒子漏了😡"], ROWS[1], ROWS[2]], IDS),
    Case("big5_taiwan_export", basic("cp950", texts=T, header=("評價編號", "評價內容")), ["評價編號", "評價內容"],
         [["1", T[0]], ["2", T[1]], ["3", T[2]]], IDS),
    Case("big5_one_short_row", table_bytes(["評價內容"], [["很差，退貨"]], "cp950"), ["評價內容"], [["很差，退貨"]], ["1"]),
    Case("big5_given", basic("cp950", texts=T, header=("評價編號", "評價內容")), ["評價編號", "評價內容"],
         [["1", T[0]], ["2", T[1]], ["3", T[2]]], IDS, extra=("--encoding", "big5")),
    Case("utf16le_excel_unicode_text", b"\xff\xfe" + basic("utf-16-le", sep="\t", nl="\r\n"), H, ROWS, IDS, suffix=".txt"),
    Case("utf16be_bom", b"\xfe\xff" + basic("utf-16-be"), H, ROWS, IDS),
    Case("utf16le_without_bom", basic("utf-16-le", sep="\t", nl="\r\n"), H, ROWS, IDS, suffix=".txt"),
    Case("utf32_bom", basic("utf-32"), H, ROWS, IDS),
    Case("shift_jis", table_bytes(["番号", "内容"], [["1", "品質が悪いです。がっかりしました"], ["2", "配送が遅かったです"]], "shift_jis"),
         error="cannot tell the text encoding with confidence (not UTF-8, UTF-16, GBK/GB18030 or Big5 Chinese; "
               "it looks like Japanese Shift-JIS (--encoding shift_jis)); give it with --encoding"),
    Case("latin1", table_bytes(["id", "text"], [["1", "très déçu, qualité médiocre"], ["2", "à éviter"]], "latin-1"),
         error="cannot tell the text encoding with confidence (not UTF-8, UTF-16, GBK/GB18030 or Big5 Chinese; "
               "it looks like Western latin-1/cp1252 (--encoding cp1252)); give it with --encoding"),
    # a short GBK export of common characters also decodes as all-Hangul EUC-KR: Chinese wins
    Case("gbk_tiny_reads_as_korean_too", table_bytes(["评价编号", "评价内容", "评分"], [["1", "差评", "1"], ["2", "坏了", "1"],
                                                                                   ["3", "假货", "1"]], "gbk"),
         ["评价编号", "评价内容", "评分"], [["1", "差评", "1"], ["2", "坏了", "1"], ["3", "假货", "1"]], IDS),
    # UTF-16 without BOM, one column of long Chinese lines: few NULs (only the line ends' high bytes)
    Case("utf16le_without_bom_long_lines", ("评价内容\n" + ("这个东西质量太差了用了两天就坏掉了真失望这个东西质量太差了\n" * 5)).encode("utf-16-le"),
         ["评价内容"], [["这个东西质量太差了用了两天就坏掉了真失望这个东西质量太差了"]] * 5, ["1", "2", "3", "4", "5"]),
    # many 一 (U+4E00: a NUL low byte) and few ASCII characters: the NULs of the characters outnumber
    # the line ends' — the byte order whose decoding holds line ends wins (was refused as binary)
    *(Case(f"utf16{enc[-2:]}_without_bom_many_yi", ("评价内容\r\n" + "一直说一周内发货，结果等了一个月，一点消息都没有\r\n" * 4).encode(enc),
           ["评价内容"], [["一直说一周内发货，结果等了一个月，一点消息都没有"]] * 4, ["1", "2", "3", "4"])
      for enc in ("utf-16-le", "utf-16-be")),
    Case("euc_kr", table_bytes(["번호", "내용"], [["1", "품질이 너무 나쁘고 배송도 늦었습니다"], ["2", "다시는 안 삽니다"]], "euc_kr"),
         error="cannot tell the text encoding with confidence (not UTF-8, UTF-16, GBK/GB18030 or Big5 Chinese; "
               "it looks like Korean EUC-KR (--encoding euc-kr) — or Chinese gb18030 (--encoding gbk) if it is Chinese); "
               "give it with --encoding"),
    Case("utf8_bad_byte_row_3", basic().replace("第一次".encode(), b"\xff" + "第一次".encode()),
         error="data row 3 (line 4) is not decodable as utf-8 (invalid start byte: 0xff); the file is not all utf-8 "
               "— give its encoding with --encoding"),
    Case("gbk_bad_byte_row_2", basic("gbk").replace("快递".encode("gbk"), b"\x80" + "快递".encode("gbk")),
         error="data row 2 (line 3) is not decodable as gb18030 (illegal multibyte sequence: 0x80); the file is not "
               "all gb18030 — give its encoding with --encoding"),
    Case("utf16_given_for_utf8", basic(), extra=("--encoding", "utf-16"),
         error="read as utf-16 the text is garbled; it looks like utf-8 — drop --encoding or give the right one"),
    Case("gbk_given_for_utf8", basic(), extra=("--encoding", "gbk"),
         error="not decodable as gbk (illegal multibyte sequence on line 1); it looks like utf-8 — drop --encoding or "
               "give the right one"),
    Case("unknown_encoding", basic(), extra=("--encoding", "klingon"),
         error="unknown encoding 'klingon' (e.g. utf-8, gb18030, big5, utf-16)"),
    Case("double_bom", "\ufeff".encode() + basic("utf-8-sig"), ["\ufeff评价编号", "评价内容"], ROWS, IDS),
    Case("bom_only", b"\xef\xbb\xbf", error="the file is empty (no header row)"),
    # --- delimiters
    Case("tsv", basic(sep="\t"), H, ROWS, IDS, suffix=".tsv"),
    Case("semicolon", basic(sep=";"), H, ROWS, IDS),
    Case("tab_with_commas_in_cells", basic(sep="\t", texts=["差,很差,非常差", "一般;还行", "好"]), H,
         [["1", "差,很差,非常差"], ["2", "一般;还行"], ["3", "好"]], IDS, suffix=".txt"),
    Case("excel_sep_line", b"sep=;\n" + basic(sep=";"), H, ROWS, IDS),
    Case("pipe_is_not_a_delimiter", basic(sep="|"),
         error="no review text column found (columns seen: 评价编号|评价内容); name it with --text-col"),
    # --- quoting
    Case("quoted_newlines_quotes_delimiters", basic(texts=['第一行\n第二行，"引号"也在', "逗号,分号;\r\n换行", '""']), H,
         [["1", '第一行\n第二行，"引号"也在'], ["2", "逗号,分号;\r\n换行"], ["3", '""']], IDS),
    Case("quoted_header", '"评价编号","评价内容"\n"1","很差"\n'.encode(), H, [["1", "很差"]], ["1"]),
    Case("quote_inside_unquoted_cell", '评价编号,评价内容\n1,他说"好"吧\n'.encode(), H, [["1", '他说"好"吧']], ["1"]),
    Case("unclosed_quote", '评价编号,评价内容\n1,很差\n2,"没有结尾\n3,还行\n'.encode(),
         error="data row 2: a quoted cell opened on line 3 is never closed (a stray '\"'?)"),
    Case("text_after_closing_quote", TEXT_AFTER_QUOTE,
         error="data row 1 (line 2): malformed CSV (',' expected after '\"'); a quoted cell must end at its closing quote"),
    # --- line ends
    Case("crlf", basic(nl="\r\n"), H, ROWS, IDS),
    Case("cr_only", basic(nl="\r"), H, ROWS, IDS),
    Case("mixed_line_ends", "评价编号,评价内容\r\n1,很差\n2,一般\r3,还行\r\n".encode(), H,
         [["1", "很差"], ["2", "一般"], ["3", "还行"]], IDS),
    Case("no_final_newline", basic().rstrip(b"\n"), H, ROWS, IDS),
    Case("blank_lines_inside_and_after", "评价编号,评价内容\na,很差\n\nb,一般\n\n".encode(), H,
         [["a", "很差"], ["", ""], ["b", "一般"], ["", ""]], ["a", "2", "b", "4"], causes={1: "empty", 3: "empty"}),
    Case("blank_lines_before_header", b"\n\r\n" + basic(), H, ROWS, IDS),
    # --- cells
    Case("blank_and_space_texts", table_bytes(H, [["1", ""], ["2", "   "], ["3", "\t"]]), H,
         [["1", ""], ["2", "   "], ["3", "'\t"]], IDS, causes={0: "empty", 1: "empty", 2: "empty"}),  # tab-first: escaped
    Case("huge_cell", table_bytes(H, [["1", BIG], ["2", R[1]]]), H, [["1", BIG], ["2", R[1]]], ["1", "2"]),
    Case("cell_longer_than_a_read_block", table_bytes(H, [["1", R[0]], ["2", OVER_BLOCK], ["3", R[2]]]), H,
         [["1", R[0]], ["2", OVER_BLOCK], ["3", R[2]]], IDS),
    Case("control_characters", table_bytes(H, [["1", CTRL], ["2", R[1]]]), H, [["1", CTRL], ["2", R[1]]], ["1", "2"]),
    Case("nul_byte", basic().replace("快递".encode(), b"\x00" + "快递".encode()),
         error="binary data (a NUL byte on line 3), not a CSV text file"),
    Case("emoji_and_mixed_scripts", table_bytes(H, [[str(i), t] for i, t in enumerate(EMOJI, 1)]), H,
         [[str(i), t] for i, t in enumerate(EMOJI, 1)], ["1", "2", "3", "4", "5"]),
    Case("leading_zero_and_long_ids", table_bytes(H, [["007", R[0]], ["1234567890123456789", R[1]]]), H,
         [["007", R[0]], ["1234567890123456789", R[1]]], ["007", "1234567890123456789"]),
    # --- shapes and headers
    Case("header_only", "评价编号,评价内容\n".encode(), H, [], []),
    Case("one_column_with_commas", "评价内容\n质量差,退货\n还行;一般\n".encode(), ["评价内容"],
         [["质量差,退货"], ["还行;一般"]], ["1", "2"]),
    Case("very_wide_rows", table_bytes(WIDE[:1000] + ["评价内容"] + WIDE[1000:], [[*"x" * 1000, R[0], *"y" * 1000]] * 2),
         WIDE[:1000] + ["评价内容"] + WIDE[1000:], [[*"x" * 1000, R[0], *"y" * 1000]] * 2, ["1", "2"]),
    Case("duplicate_headers", table_bytes(["备注", "评价内容", "备注", "评价内容"], [["a", R[0], "b", "另一列"]]),
         ["备注", "评价内容", "备注", "评价内容"], [["a", R[0], "b", "另一列"]], ["1"],
         warnings=["{src}: column '评价内容' appears 2 times (columns 2, 4); column 2 is read as the text (the first); "
                   "all are written back unchanged"]),
    Case("blank_headers", table_bytes(["评价编号", "", "评价内容", ""], [["1", "x", R[0], "y"]]), ["评价编号", "", "评价内容", ""],
         [["1", "x", R[0], "y"]], ["1"]),
    Case("trailing_comma_every_row", "评价编号,评价内容\n1,很差,\n2,一般,\n3,还行,\n".encode(), H,
         [["1", "很差"], ["2", "一般"], ["3", "还行"]], IDS),
    Case("trailing_comma_header_too", "评价编号,评价内容,\n1,很差,\n2,一般,\n".encode(), ["评价编号", "评价内容", ""],
         [["1", "很差", ""], ["2", "一般", ""]], ["1", "2"]),
    Case("short_rows_padded", "评价编号,评分,评价内容\n1\n2,5,还行\n".encode(), ["评价编号", "评分", "评价内容"],
         [["1", "", ""], ["2", "5", "还行"]], ["1", "2"],
         warnings=["{src}: 1 row(s) have fewer fields than the header (first: data row 1 (line 2): 1 of 3); padded with "
                   "blanks — a line break inside an unquoted cell would also look like this"]),
    Case("unquoted_comma_in_text", "评价编号,评价内容\n1,很差\n2,质量差,退货\n".encode(),
         error="data row 2 (line 3) has 3 fields but the header has 2; a cell with an unquoted ',' in it? Quote that cell"),
    Case("traditional_headers", table_bytes(["評價編號", "評分", "買家暱稱", "商品名稱", "評價內容", "商家回覆"],
                                            [["A1", "1", "t***1", "杯子", T[0], "抱歉"]]),
         ["評價編號", "評分", "買家暱稱", "商品名稱", "評價內容", "商家回覆"], [["A1", "1", "t***1", "杯子", T[0], "抱歉"]], ["A1"]),
    # --- not text at all
    Case("gzip", b"\x1f\x8b\x08\x00" + bytes(40), error="this is a gzip archive, not a CSV file"),
    Case("pdf", b"%PDF-1.7\n" + bytes(40), error="this is a PDF document, not a CSV file"),
    Case("csv_named_xlsx", basic(), suffix=".xlsx", error="not an Excel workbook (text? if it is a CSV file, give it the .csv suffix)"),
    Case("old_xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(64), suffix=".xls",
         error="this is an old binary Excel/Office file (.xls), not a CSV file: save it as .xlsx or CSV"),
    Case("png_named_xlsx", b"\x89PNG\r\n\x1a\n" + bytes(64), suffix=".xlsx", error="this is a PNG image, not an Excel workbook"),
    Case("empty", b"", error="the file is empty"),
    Case("whitespace_only", b"\n\n\r\n", error="the file is empty (no header row)"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_input(tmp_path, capsys, tiny_model_path, case):
    src = tmp_path / f"{case.name}{case.suffix}"
    src.write_bytes(case.data)
    code, out, err = run_score(tmp_path, capsys, src, tiny_model_path, *case.extra)
    if case.error is not None:
        assert err == f"reviewcause: error: {src}: {case.error}\n"
        assert code == 2 and not out.exists()
        return
    assert code == 0, err
    assert err.splitlines() == [f"reviewcause: warning: {w.format(src=src)}" for w in case.warnings]
    header, rows = read_csv_out(out)
    n = len(case.header)
    assert header[:n] == case.header and header[n] == "review_id"
    assert len(rows) == len(case.rows)
    assert [r[:n] for r in rows] == case.rows
    assert [r[n] for r in rows] == case.ids
    for i, cause in case.causes.items():
        assert rows[i][n + 1] == cause


def test_battery_is_large_enough():
    assert len(CASES) >= 40


# --- 2. decoding internals --------------------------------------------------------------------

TRICKY = "id,text\r\n1,\"多行\r\n内容\"\r2,质量差😡\n3,\"a\"\"b\"\r\n\r\n4,末行"


@pytest.mark.parametrize("enc", ["utf-8", "gb18030", "utf-16-le", "utf-16-be"])
def test_block_decoding_cuts_only_at_line_ends(tmp_path, enc):
    """Every block size, so that a cut falls inside every multi-byte character and between every
    CR and LF: the text comes back whole and every block ends with a whole line."""
    src = tmp_path / "t.csv"
    src.write_bytes(TRICKY.encode(enc))
    c = _codec_for(enc, b"")
    for block in range(1, 40):
        parts = list(_text_blocks(src, c, block=block))
        assert "".join(parts) == TRICKY
        assert all(p.endswith(("\n", "\r")) for p in parts[:-1])
        assert not any(p.startswith("\n") and q.endswith("\r") for q, p in zip(parts, parts[1:]))


def test_bad_byte_at_data_row_50000_is_reported_there(tmp_path):
    """A multi-line cell before it, so data row and line differ; 50,000 rows cross the read blocks."""
    rows = [[str(i), f"第{i}条：质量太差"] for i in range(1, 60_001)]
    rows[10][1] = "两行\n的评价"
    data = table_bytes(["id", "text"], rows)
    at = data.index("第50000条".encode())
    src = tmp_path / "big.csv"
    src.write_bytes(data[:at] + b"\xfe" + data[at:])
    table = open_table(src, chunksize=20_000)
    assert table.encoding == "utf-8"
    seen = 0
    with pytest.raises(InputError) as info:
        for chunk in table.chunks():
            seen += len(chunk)
    assert str(info.value) == (f"{src}: data row 50000 (line 50002) is not decodable as utf-8 (invalid start byte: 0xfe); "
                               f"the file is not all utf-8 — give its encoding with --encoding")
    assert seen == 40_000  # the chunks before the bad one were whole


def test_bad_byte_late_in_a_gbk_file(tmp_path):
    rows = [[str(i), f"第{i}条：质量太差"] for i in range(1, 30_001)]
    data = table_bytes(["id", "text"], rows, "gbk")
    at = data.index("第29999条".encode("gbk"))
    src = tmp_path / "late.csv"
    src.write_bytes(data[:at] + b"\xff" + data[at:])
    table = open_table(src)
    assert table.encoding == "gb18030"
    with pytest.raises(InputError, match=r"late.csv: data row 29999 \(line 30000\) is not decodable as gb18030"):
        list(table.chunks())


def test_plausibility_tells_big5_from_gbk():
    gbk, big5 = "\n".join(R).encode("gbk"), "\n".join(T).encode("cp950")
    assert plausibility(gbk.decode("gb18030")) == 1.0 and plausibility(big5.decode("cp950")) == 1.0
    assert plausibility(big5.decode("gb18030")) < 0.5


@pytest.mark.parametrize("text", ["Очень плохое качество, не рекомендую", "très déçu, qualité médiocre", "déçu",
                                  "Produto chegou quebrado", "Kargo çok geç geldi", "המוצר הגיע שבור"])
def test_valid_utf8_foreign_reviews_are_read_as_utf8(tmp_path, text):
    """An AliExpress export in French, Russian … is valid UTF-8: read as such, never as a GBK
    misreading (Очень → 袨褔械薪褜), with a Chinese header or not."""
    for header in (["id", "review"], ["评价编号", "评价内容"]):
        src = tmp_path / "foreign.csv"
        src.write_bytes(table_bytes(header, [["1", text], ["2", text[:4]]]))
        table = open_table(src)
        assert table.encoding == "utf-8"
        assert next(table.chunks())[header[1]].tolist() == [text, text[:4]]


def test_short_chinese_files_keep_their_encoding(tmp_path):
    """Two characters of Big5 are Big5 (read as GBK they turn into kana: 失望 → ア辨); short GBK
    stays GBK."""
    for text, enc, expected in (("失望", "cp950", "cp950"), ("差评", "gbk", "gb18030"), ("坏了", "gbk", "gb18030"),
                                ("質量太差", "cp950", "cp950")):
        src = tmp_path / "short.csv"
        src.write_bytes(f"text\n{text}\n".encode(enc))
        table = open_table(src)
        assert table.encoding == expected, text
        assert next(table.chunks())["text"].tolist() == [text]


def test_a_utf8_bom_before_a_legacy_body_is_read_as_the_body_is_written(tmp_path):
    """A tool that prepends a UTF-8 BOM to a GBK or Big5 export: read by the body's encoding, the
    BOM skipped (not in the first header) — found alone, or given with --encoding (which was
    refused as 'it looks like utf-8 (with BOM)', while the sniffed reading was refused too)."""
    for enc, expected, head, text in (("gbk", "gb18030", "评价编号,评价内容", "鞋底开胶了"),
                                      ("cp950", "cp950", "評價編號,評價內容", "鞋底開膠了，質量太差")):
        src = tmp_path / f"bom_{enc}.csv"
        src.write_bytes(b"\xef\xbb\xbf" + f"{head}\r\n1,{text}\r\n".encode(enc))
        for given in (None, enc):
            table = open_table(src, encoding=given)
            assert table.columns == head.split(",") and (given or table.encoding == expected)
            assert next(table.chunks())[head.split(",")[1]].tolist() == [text]


def test_a_stray_byte_in_a_small_utf8_file_names_its_row(tmp_path):
    """UTF-8 with a lone surrogate (or bytes no Chinese encoding reads) is UTF-8 with a bad row —
    named — not 'cannot tell the encoding'."""
    head = "评价编号,评价内容,评分\na,质量差,1\n".encode()
    for name, bad in (("surrogate", b"b,\xed\xa0\x80x,1\n"), ("junk", b"b,\x80\x80\xff\xfe,1\n")):
        src = tmp_path / f"{name}.csv"
        src.write_bytes(head + bad)
        with pytest.raises(InputError, match=rf"{name}.csv: data row 2 \(line 3\) is not decodable as utf-8"):
            list(open_table(src).chunks())


@pytest.mark.parametrize("legacy, text", [("gbk", "物流太慢了，等了一个星期"), ("cp950", "物流太慢了，等了一個星期")])
def test_legacy_lines_inside_a_utf8_file_are_read_in_their_encoding(tmp_path, capsys, tiny_model_path, legacy, text):
    """A GBK (or Big5) export joined to a UTF-8 one: its lines are read in their encoding, with one
    warning naming the first (they were a one-line error refusing the whole file)."""
    rows = "评价编号,评价内容\n".encode() + "".join(f"u{i},质量太差了{i}\n" for i in range(300)).encode()
    rows += f"g1,{text}\ng2,{text}\n".encode(legacy) + "u300,客服态度很差\n".encode()
    src = tmp_path / "joined.csv"
    src.write_bytes(rows)
    out = tmp_path / "o.csv"
    capsys.readouterr()
    assert main(["score", str(src), "-o", str(out), "--model", str(tiny_model_path)]) == 0
    label = {"gbk": "gb18030", "cp950": "big5 (cp950)"}[legacy]
    assert f"2 lines (the first: line 302) are {label} inside a UTF-8 file" in capsys.readouterr().err
    got = {r[0]: r[1] for r in read_csv_out(out)[1]}
    assert got["g1"] == got["g2"] == text and got["u300"] == "客服态度很差" and len(got) == 303


def test_encoding_with_the_wrong_byte_order_is_refused(tmp_path):
    """--encoding utf-16-be on a file with a UTF-16-LE BOM reads garbage: refused, naming the
    right one (utf-16 and utf-16-le are fine)."""
    from pipeline.tables import _choose_encoding

    src = tmp_path / "le.csv"
    src.write_bytes(b"\xff\xfe" + "评价内容,评分\n质量太差了,1\n".encode("utf-16-le"))
    with pytest.raises(InputError, match="read as utf-16-be the text is garbled; it looks like utf-16-le"):
        _choose_encoding(src, "utf-16-be")
    assert _choose_encoding(src, "utf-16-le")[0] == "utf-16-le" and _choose_encoding(src, "utf-16")[0] == "utf-16"


def test_roles_from_traditional_headers(tmp_path):
    src = tmp_path / "tw.csv"
    src.write_bytes(table_bytes(["評價編號", "評分", "買家暱稱", "商品名稱", "評價時間", "評價內容", "商家回覆"], [["A1", "1", "x", "杯", "2024-01-01", T[0], "抱歉"]],
                                "cp950"))
    table = open_table(src)
    assert table.encoding == "cp950"
    assert table.roles == {"text": "評價內容", "id": "評價編號", "rating": "評分", "buyer": "買家暱稱", "item": "商品名稱",
                           "date": "評價時間", "reply": "商家回覆", "followup": None}


def test_duplicate_columns_keep_their_cells(tmp_path):
    src = tmp_path / "dup.csv"
    src.write_bytes(table_bytes(["评价内容", "评价内容", "备注", "备注", ""], [["甲", "乙", "丙", "丁", "戊"]]))
    table = open_table(src)
    chunk = next(table.chunks())
    assert [display_name(c) for c in table.columns] == ["评价内容", "评价内容", "备注", "备注", ""]
    assert table.roles["text"] == "评价内容" and chunk[table.roles["text"]].tolist() == ["甲"]
    assert chunk.to_numpy().tolist() == [["甲", "乙", "丙", "丁", "戊"]]


# --- 3. Excel input ---------------------------------------------------------------------------


def workbook(path: Path, sheets: dict[str, list[list[object]]]) -> Path:
    from openpyxl import Workbook

    wb = Workbook()
    wb.remove(wb.active)
    for title, rows in sheets.items():
        ws = wb.create_sheet(title)
        for row in rows:
            ws.append(row)
    wb.save(path)
    return path


def test_xlsx_reports_the_sheet_read_and_other_sheets_with_data(tmp_path, capsys, tiny_model_path):
    src = workbook(tmp_path / "export.xlsx", {
        "说明": [["本文件由千牛导出"]],
        "评价": [["评价编号", "评价内容", "评分"], ["A1", R[0], 1], [None, None, None], ["A3", R[2], 2.0]],
        "汇总": [["合计", 3]],
        "空白": [],
    })
    code = main(["score", str(src), "-o", str(tmp_path / "o.csv"), "--model", str(tiny_model_path)])
    err = capsys.readouterr().err.splitlines()
    assert code == 0
    assert err[0] == (f"reviewcause: warning: {src}: read sheet '评价' (2 of 4); sheet(s) '说明', '汇总' also hold data and were "
                      f"not read — move the reviews to one sheet or save that sheet as CSV")
    header, rows = read_csv_out(tmp_path / "o.csv")
    assert header[:4] == ["评价编号", "评价内容", "评分", "review_id"]
    assert [r[:4] for r in rows] == [["A1", R[0], "1", "A1"], ["", "", "", "2"], ["A3", R[2], "2", "A3"]]


def _damage_sheet(src: Path, out: Path, edit) -> Path:
    """A copy of the workbook ``src`` with its first sheet's XML passed through ``edit``."""
    import zipfile

    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                data = edit(data)
            zout.writestr(item, data)
    return out


@pytest.mark.parametrize("name, edit, detail", [
    ("broken_xml", lambda x: x[: x.index(b'<row r="4"')] + b"<row", "ParseError"),
    ("shared_string_out_of_range", lambda x: re.sub(rb'<c r="B4"[^>]*>.*?</c>', b'<c r="B4" t="s"><v>999</v></c>', x), "IndexError"),
    ("number_cell_holding_text", lambda x: re.sub(rb'<c r="A4"[^>]*>.*?</c>', b'<c r="A4" t="n"><v>abc</v></c>', x), "ValueError"),
])
def test_xlsx_damaged_after_its_first_rows_is_one_line(tmp_path, capsys, tiny_model_path, name, edit, detail):
    """A workbook damaged past its header (a cut download, a broken writer) stops with one line
    naming the file, the sheet and the last row read — never openpyxl's traceback."""
    good = workbook(tmp_path / "good.xlsx", {"评价": [["评价编号", "评价内容", "评分"]] + [[f"r{i}", R[i % 3], 1] for i in range(1, 6)]})
    src = _damage_sheet(good, tmp_path / f"{name}.xlsx", edit)
    out = tmp_path / "o.csv"
    code = main(["score", str(src), "-o", str(out), "--model", str(tiny_model_path), "-q"])
    err = capsys.readouterr().err
    assert code == 2 and not out.exists() and len(err.splitlines()) == 1, err
    assert err.startswith(f"reviewcause: error: {src} (sheet '评价'): the workbook is damaged after row ") and detail in err
    assert "open it in Excel and save it again" in err


def _rows_of(x: bytes) -> list[bytes]:
    return re.findall(rb"<row .*?</row>", x, re.S)


@pytest.mark.parametrize("name, edit, detail", [
    # rows 1, 4, 2, 3: openpyxl's streaming reader would blank rows 2 and 3 (their ids and texts lost)
    ("rows_out_of_order", lambda x: x.replace(b"".join(_rows_of(x)), b"".join(_rows_of(x)[i] for i in (0, 3, 1, 2))),
     "row 2 is stored after row 4"),
    # the cells of row 2 as C, B, A: its id and text would be lost
    ("cells_out_of_order", lambda x: x.replace(_rows_of(x)[1], re.sub(
        rb"(<row [^>]*>)(.*)(</row>)", lambda m: m.group(1) + b"".join(re.findall(rb"<c .*?</c>", m.group(2), re.S)[::-1]) + m.group(3),
        _rows_of(x)[1], flags=re.S)), "cell B2 is stored after a cell to its right"),
    ("row_twice", lambda x: x.replace(_rows_of(x)[2], _rows_of(x)[2] * 2), "row 3 is stored after row 3"),
])
def test_xlsx_stored_out_of_order_is_refused_not_half_read(tmp_path, capsys, tiny_model_path, name, edit, detail):
    """Excel writes rows and cells in order; a sheet whose XML does not (a script's, an attacker's)
    would lose rows silently in the streaming reader: one line names the file, the sheet and where."""
    good = workbook(tmp_path / "good.xlsx", {"评价": [["评价编号", "评价内容", "评分"], ["1", R[0], 1], ["2", R[1], 2], ["3", R[2], 1]]})
    code = main(["score", str(good), "-o", str(tmp_path / "ok.csv"), "--model", str(tiny_model_path), "-q"])
    assert code == 0 and [r[:2] for r in read_csv_out(tmp_path / "ok.csv")[1]] == [["1", R[0]], ["2", R[1]], ["3", R[2]]]
    src = _damage_sheet(good, tmp_path / f"{name}.xlsx", edit)
    out = tmp_path / "o.csv"
    code = main(["score", str(src), "-o", str(out), "--model", str(tiny_model_path), "-q"])
    err = capsys.readouterr().err
    assert code == 2 and not out.exists() and err == (
        f"reviewcause: error: {src} (sheet '评价'): the sheet's rows or cells are stored out of order ({detail}), which Excel "
        f"never writes and which would lose rows; open the file in Excel and save it again, or save the sheet as CSV\n")


def test_xlsx_hidden_sheet_is_read_only_when_no_visible_one_will_do(tmp_path, capsys, tiny_model_path):
    from openpyxl import Workbook

    wb = Workbook()
    old = wb.active
    old.title = "旧数据"
    for row in (["评价内容"], ["上个月的旧评价"]):
        old.append(row)
    old.sheet_state = "hidden"
    new = wb.create_sheet("评价")
    for row in (["评价编号", "评价内容"], ["A1", R[0]]):
        new.append(row)
    wb.save(tmp_path / "h.xlsx")
    code = main(["score", str(tmp_path / "h.xlsx"), "-o", str(tmp_path / "o.csv"), "--model", str(tiny_model_path)])
    err = capsys.readouterr().err.splitlines()
    assert code == 0 and err[0] == (f"reviewcause: warning: {tmp_path / 'h.xlsx'}: read sheet '评价' (2 of 2); sheet(s) '旧数据' "
                                    f"(hidden) also hold data and were not read — move the reviews to one sheet or save that sheet as CSV")
    assert [r[:2] for r in read_csv_out(tmp_path / "o.csv")[1]] == [["A1", R[0]]]


@pytest.mark.parametrize("suffix, tail", [(".xlsx", ""), (".csv", ", not a CSV file")])
def test_password_protected_workbook_is_named(tmp_path, capsys, tiny_model_path, suffix, tail):
    """An encrypted .xlsx is an OLE file holding an "EncryptedPackage" stream: say so (saving it
    again as .xlsx, as for an old .xls, would keep the password)."""
    data = bytearray(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(4096))
    name = "EncryptedPackage".encode("utf-16-le")
    data[1024:1024 + len(name)] = name
    src = tmp_path / f"locked{suffix}"
    src.write_bytes(bytes(data))
    code = main(["score", str(src), "-o", str(tmp_path / "o.csv"), "--model", str(tiny_model_path)])
    assert code == 2 and capsys.readouterr().err == (
        f"reviewcause: error: {src}: this is a password-protected (encrypted) Excel workbook{tail}: open it in Excel, remove the "
        f"password (File → Info → Protect Workbook) and save it again\n")


@pytest.mark.parametrize("codec", ["hex", "base64", "rot13", "zlib"])
def test_a_bytes_codec_is_no_text_encoding(tmp_path, capsys, tiny_model_path, codec):
    src = tmp_path / "a.csv"
    src.write_bytes(basic())
    code = main(["score", str(src), "-o", str(tmp_path / "o.csv"), "--model", str(tiny_model_path), "--encoding", codec])
    assert code == 2 and capsys.readouterr().err == (
        f"reviewcause: error: {src}: unknown encoding {codec!r} (e.g. utf-8, gb18030, big5, utf-16)\n")


@pytest.mark.parametrize("bom", ["", "\ufeff"])
def test_a_header_repeated_mid_file_is_kept_but_not_scored(tmp_path, capsys, tiny_model_path, bom):
    """Two exports joined end to end (`cat jan.csv feb.csv`, the second one's BOM too): the second
    header is a row of the output — nothing is lost — but `empty`, not a review in the cause mix."""
    src = tmp_path / "joined.csv"
    src.write_bytes(basic() + (bom + "评价编号,评价内容\n4,客服不理人\n").encode())
    code = main(["score", str(src), "-o", str(tmp_path / "o.csv"), "--model", str(tiny_model_path)])
    err = capsys.readouterr().err.splitlines()
    assert code == 0 and err[0] == (f"reviewcause: warning: {src}: data row 4 repeats the header row (files joined end to "
                                    f"end?); kept in the output as `empty`, not scored as a review")
    header, rows = read_csv_out(tmp_path / "o.csv")
    cause = header.index("cause")
    assert [r[:2] for r in rows] == ROWS + [[bom + "评价编号", "评价内容"], ["4", "客服不理人"]]
    assert rows[3][cause] == "empty" and all(r[cause] != "empty" for r in rows[:3] + rows[4:])


def test_pipe_or_fifo_input_is_refused_without_blocking(tmp_path, capsys, tiny_model_path):
    """A FIFO (or a pipe such as /dev/stdin under ``cat f |``) is refused before it is opened, so
    an unwritten FIFO cannot hang the job; a redirected regular file is read."""
    fifo = tmp_path / "reviews.csv"
    os.mkfifo(fifo)
    code = main(["score", str(fifo), "-o", str(tmp_path / "o.csv"), "--model", str(tiny_model_path), "-q"])
    assert code == 2
    assert capsys.readouterr().err == (f"reviewcause: error: {fifo}: not a regular file (a pipe or device); "
                                       f"save the export to a file and score that\n")


def test_an_output_that_is_a_fifo_or_a_link_to_one_is_refused(tmp_path, capsys, tiny_model_path):
    """Outputs are written beside the target and renamed over it: over a FIFO or a device (through
    a symlink: /dev/full, /dev/null) that would replace it. score, suspects and report refuse."""
    src = tmp_path / "r.csv"
    src.write_bytes(basic())
    pred = tmp_path / "p.csv"
    assert main(["score", str(src), "-o", str(pred), "--model", str(tiny_model_path), "-q"]) == 0
    capsys.readouterr()
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for name, argv in (("o.csv", ["score", str(src), "--model", str(tiny_model_path)]), ("s.csv", ["suspects", str(pred)]),
                       ("r.html", ["report", str(pred)])):
        for out in (tmp_path / f"direct-{name}", tmp_path / f"link-{name}"):
            if out.name.startswith("direct"):
                os.mkfifo(out)
            else:
                out.symlink_to(fifo)
            assert main([*argv, "-o", str(out), "-q"]) == 2
            assert capsys.readouterr().err == (f"reviewcause: error: {out}: not a regular file (a pipe, device or socket); "
                                               f"give an output file name\n")
            assert stat.S_ISFIFO(os.stat(out).st_mode)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_xlsx_single_sheet_is_named_on_stderr(tmp_path, capsys):
    src = workbook(tmp_path / "one.xlsx", {"Sheet1": [[None], ["评价内容"], [R[0]]]})
    table = open_table(src)
    assert capsys.readouterr().err == f"reviewcause: note: {src}: read sheet 'Sheet1' (1 of 1), header on row 2\n"
    assert next(table.chunks()).to_numpy().tolist() == [[R[0]]]


def test_xlsx_formula_without_saved_value_is_reported(tmp_path, capsys):
    # openpyxl saves formulas without cached values, as a script-made export would
    src = workbook(tmp_path / "f.xlsx", {"评价": [["评价内容", "评分", "备注"], [R[0], "=1+1", "=A2"], [R[1], 3, "x"]]})
    table = open_table(src)
    rows = [r for c in table.chunks() for r in c.to_numpy().tolist()]
    assert rows == [[R[0], "", ""], [R[1], "3", "x"]]
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"reviewcause: warning: {src} (sheet '评价'): 2 formula cell(s) have no saved value and were read as blank "
        f"(first: B2); open the file in Excel and save it to store the values")


def test_xlsx_odd_headers_and_cells(tmp_path, capsys):
    import datetime as dt

    src = workbook(tmp_path / "odd.xlsx", {"S": [["评价内容", None, "评价内容", "日期", "金额"],
                                                 [R[0], "x", "y", dt.datetime(2024, 5, 1, 13, 5), 19.9],
                                                 ["placeholder", None, None, dt.date(2024, 5, 2), 20.0]]})
    from openpyxl import load_workbook

    wb = load_workbook(src)
    wb["S"]["A3"].value = "=不是公式"
    wb["S"]["A3"].data_type = "s"  # text that starts with '=' (not a formula)
    wb.save(src)
    table = open_table(src)
    assert [display_name(c) for c in table.columns] == ["评价内容", "", "评价内容", "日期", "金额"]
    assert next(table.chunks()).to_numpy().tolist() == [[R[0], "x", "y", "2024-05-01 13:05:00", "19.9"],
                                                       ["=不是公式", "", "", "2024-05-02 00:00:00", "20"]]
    assert capsys.readouterr().err == (f"reviewcause: warning: {src} (sheet 'S'): column '评价内容' appears 2 times (columns 1, 3); "
                                       f"column 1 is read as the text (the first); all are written back unchanged\n"
                                       f"reviewcause: note: {src}: read sheet 'S' (1 of 1), header on row 1\n")


def test_xlsx_data_without_header_and_no_text_column(tmp_path, capsys, tiny_model_path):
    src = workbook(tmp_path / "w.xlsx", {"S": [["评价内容"], [R[0], None, "stray"]]})
    code, _, err = run_score(tmp_path, capsys, src, tiny_model_path)
    assert code == 2 and err == (f"reviewcause: error: {src} (sheet 'S'): cell C2 holds data but its column has no header; "
                                 f"give the column a header or clear it\n")
    src = workbook(tmp_path / "n.xlsx", {"S": [["买家", "评分"], ["a", 1]]})
    code, _, err = run_score(tmp_path, capsys, src, tiny_model_path)
    assert code == 2 and err == (f"reviewcause: error: {src} (sheet 'S'): no review text column found (columns seen: 买家, 评分); "
                                 f"name it with --text-col\n")


# --- 4. output --------------------------------------------------------------------------------


@pytest.fixture
def reviews_csv(tmp_path):
    src = tmp_path / "reviews.csv"
    src.write_bytes(table_bytes(["评价编号", "评价内容"], [["1", "=HYPERLINK(\"http://x\",\"点我\")"], ["2", R[1]],
                                                    ["3", "+86 13800000000 返我50块就改好评"], ["4", "@SUM(A1)"], ["5", ""]]))
    return src


def test_xlsx_output_is_a_real_workbook(tmp_path, capsys, tiny_model_path, reviews_csv):
    from openpyxl import load_workbook

    code, out, err = run_score(tmp_path, capsys, reviews_csv, tiny_model_path, out="p.xlsx")
    assert code == 0 and err == ""
    assert out.read_bytes()[:4] == b"PK\x03\x04"
    wb = load_workbook(out)
    assert wb.sheetnames == ["predictions", "summary"]
    ws = wb["predictions"]
    rows = [[c.value for c in r] for r in ws.iter_rows()]
    header = rows[0]
    assert header[:4] == ["评价编号", "评价内容", "review_id", "cause"]
    body = rows[1:]
    assert [r[0] for r in body] == ["1", "2", "3", "4", "5"]
    # formula-looking input stays text, shown as written (no ' prefix needed in a typed cell)
    assert [r[1] for r in body[:4]] == ["=HYPERLINK(\"http://x\",\"点我\")", R[1], "+86 13800000000 返我50块就改好评", "@SUM(A1)"]
    assert {ws.cell(row=i, column=2).data_type for i in range(2, 6)} == {"s"}
    conf = header.index("confidence")
    assert all(isinstance(r[conf], (int, float)) for r in body)
    assert body[4][3] == "empty"
    # the summary: every cause with its Chinese name, DSR dimension and remedy; counts add up
    summary = [[c.value for c in r] for r in wb["summary"].iter_rows()]
    assert summary[0] == ["cause", "cause_zh", "count", "share", "dsr", "remedy"]
    by_id = {r[0]: r for r in summary[1:]}
    for c in CAUSES:
        assert by_id[c.id][1:2] + by_id[c.id][4:] == [c.zh, c.dsr, c.remedy]
    causes = [r[3] for r in body]
    assert all(by_id[k][2] == causes.count(k) for k in set(causes))
    assert by_id["total"][2] == 5 and by_id["total"][3] == 1.0
    assert abs(sum(r[3] for r in summary[1:-1]) - 1.0) < 1e-9


def test_zh_headers_csv_and_xlsx(tmp_path, capsys, tiny_model_path, reviews_csv):
    from openpyxl import load_workbook

    code, out, _ = run_score(tmp_path, capsys, reviews_csv, tiny_model_path, "--zh-headers", out="zh.csv")
    header, rows = read_csv_out(out)
    expected = ["评价编号", "评价内容", "评价标识", "原因", "原因中文", "置信度", "全部原因", "店铺评分维度", "建议", "疑似恶意",
                "恶意分", "相似群组", "证据"] + [f"概率_{c.zh}" for c in CAUSES]
    assert code == 0 and header == expected and len(rows) == 5
    assert rows[0][1] == "'=HYPERLINK(\"http://x\",\"点我\")"  # CSV: escaped against formula injection
    code, out, _ = run_score(tmp_path, capsys, reviews_csv, tiny_model_path, "--zh-headers", out="zh.xlsx")
    wb = load_workbook(out)
    assert code == 0 and [c.value for c in next(wb["predictions"].iter_rows())] == expected
    assert [c.value for c in next(wb["summary"].iter_rows())] == ["原因", "原因中文", "数量", "占比", "店铺评分维度", "建议"]
    assert set(ZH_COLUMNS.values()) == set(expected[2:])


def test_zh_header_that_an_input_column_already_has(tmp_path, capsys, tiny_model_path):
    src = tmp_path / "r.csv"
    src.write_bytes(table_bytes(["评价内容", "建议"], [[R[0], "无"]]))
    code, out, _ = run_score(tmp_path, capsys, src, tiny_model_path, "--zh-headers")
    header, _ = read_csv_out(out)
    assert code == 0 and header[:2] == ["评价内容", "建议"] and "建议(remedy)" in header and header.count("建议") == 1


def test_tsv_output(tmp_path, capsys, tiny_model_path, reviews_csv):
    code, out, _ = run_score(tmp_path, capsys, reviews_csv, tiny_model_path, out="p.tsv")
    header, rows = read_csv_out(out, sep="\t")
    assert code == 0 and header[:3] == ["评价编号", "评价内容", "review_id"] and [r[2] for r in rows] == ["1", "2", "3", "4", "5"]


@pytest.mark.parametrize("name, what", [("p.json", "a .json file"), ("p.xls", "a .xls file"), ("p.parquet", "a .parquet file"),
                                        ("p.xlsm", "a .xlsm file"), ("predictions", "a file without an extension")])
def test_unwritable_output_extension_refused_before_any_work(tmp_path, capsys, name, what):
    src = tmp_path / "r.csv"
    src.write_bytes(basic())
    out = tmp_path / name
    # the model does not exist: the output is checked first
    code = main(["score", str(src), "-o", str(out), "--model", str(tmp_path / "none.joblib"), "-q"])
    assert code == 2 and not out.exists()
    assert capsys.readouterr().err == f"reviewcause: error: {out}: cannot write {what}; name the output .csv, .tsv or .xlsx\n"


def test_output_that_is_an_input_is_refused(tmp_path, capsys, tiny_model_path):
    src = tmp_path / "r.csv"
    src.write_bytes(basic())
    before = src.read_bytes()
    model_copy = tmp_path / "m.csv"  # a model file given a writable-looking name
    shutil.copy(tiny_model_path, model_copy)
    link, hard = tmp_path / "link.csv", tmp_path / "hard.csv"
    link.symlink_to(src)
    os.link(src, hard)
    cases = [
        (src, f"{src}: is the input file itself"),
        (link, f"{link}: is the same file as the input file {src}"),
        (hard, f"{hard}: is the same file as the input file {src}"),
        (tmp_path / "sub" / ".." / "r.csv", None),
    ]
    (tmp_path / "sub").mkdir()
    for out, message in cases:
        code = main(["score", str(src), "-o", str(out), "--model", str(tiny_model_path), "-q"])
        err = capsys.readouterr().err
        assert code == 2 and src.read_bytes() == before
        if message:
            assert err == f"reviewcause: error: {message}; writing the output there would destroy it — choose another output file\n"
        else:
            assert err.startswith(f"reviewcause: error: {out}: is the same file as the input file {src}")
    code = main(["score", str(src), "-o", str(model_copy), "--model", str(model_copy), "-q"])
    assert code == 2 and model_copy.read_bytes() == Path(tiny_model_path).read_bytes()
    assert capsys.readouterr().err == (f"reviewcause: error: {model_copy}: is the model file itself; writing the output there "
                                       f"would destroy it — choose another output file\n")
    # suspects -o its own predictions file
    pred = tmp_path / "pred.csv"
    assert main(["score", str(src), "-o", str(pred), "--model", str(tiny_model_path), "-q"]) == 0
    saved = pred.read_bytes()
    plink = tmp_path / "plink.csv"
    plink.symlink_to(pred)
    for out in (pred, plink):
        code = main(["suspects", str(pred), "-o", str(out), "-q"])
        err = capsys.readouterr().err
        assert code == 2 and pred.read_bytes() == saved and err.count("\n") == 1
        assert "predictions file" in err and "writing the output there would destroy it" in err


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_output_mode_follows_umask_and_kept_on_overwrite(tmp_path, capsys, tiny_model_path, suffix):
    src = tmp_path / "r.csv"
    src.write_bytes(basic())
    out = tmp_path / f"o{suffix}"
    old = os.umask(0o027)
    try:
        assert main(["score", str(src), "-o", str(out), "--model", str(tiny_model_path), "-q"]) == 0
        assert stat.S_IMODE(out.stat().st_mode) == 0o640
        os.umask(0o022)
        assert main(["score", str(src), "-o", str(tmp_path / f"n{suffix}"), "--model", str(tiny_model_path), "-q"]) == 0
        assert stat.S_IMODE((tmp_path / f"n{suffix}").stat().st_mode) == 0o644
        out.chmod(0o600)
        assert main(["score", str(src), "-o", str(out), "--model", str(tiny_model_path), "-q"]) == 0
        assert stat.S_IMODE(out.stat().st_mode) == 0o600
    finally:
        os.umask(old)


def test_output_through_a_symlink_replaces_its_target(tmp_path, capsys, tiny_model_path):
    src = tmp_path / "r.csv"
    src.write_bytes(basic())
    real, link = tmp_path / "real.csv", tmp_path / "link.csv"
    real.write_text("old", encoding="utf-8")
    link.symlink_to(real)
    assert main(["score", str(src), "-o", str(link), "--model", str(tiny_model_path), "-q"]) == 0
    assert link.is_symlink() and read_csv_out(real)[1][0][:2] == ["1", R[0]]


class FullDisk(io.RawIOBase):
    """A file that takes ``room`` bytes, then fails as a full disk does."""

    def __init__(self, fh, room: int):
        self._fh, self._room = fh, room

    def writable(self):
        return True

    def write(self, b):
        if len(b) > self._room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self._room -= len(b)
        return self._fh.write(b)

    def fileno(self):
        return self._fh.fileno()

    def close(self):
        self._fh.close()
        super().close()


@pytest.mark.parametrize("suffix, room", [(".csv", 0), (".csv", 300), (".xlsx", 100)])
def test_full_disk_is_one_line_and_keeps_the_previous_output(tmp_path, capsys, tiny_model_path, monkeypatch, suffix, room):
    import pipeline.tables as tables

    src = tmp_path / "r.csv"
    src.write_bytes(table_bytes(H, [[str(i), R[i % 3]] for i in range(200)]))
    out = tmp_path / f"o{suffix}"
    out.write_bytes(b"previous result")
    real = os.fdopen

    def full(fd, mode="r", *args, encoding=None, newline=None, **kw):
        raw = FullDisk(real(fd, "wb", buffering=0), room)
        buffered = io.BufferedWriter(raw, buffer_size=64)
        return buffered if "b" in mode else io.TextIOWrapper(buffered, encoding=encoding, newline=newline)

    monkeypatch.setattr(tables, "_fdopen", full)
    code = main(["score", str(src), "-o", str(out), "--model", str(tiny_model_path), "-q"])
    assert code == 2
    assert capsys.readouterr().err == f"reviewcause: error: {out}: cannot write (No space left on device); nothing was changed there\n"
    assert out.read_bytes() == b"previous result"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["r.csv", out.name])


def test_xlsx_output_of_control_characters_and_overlong_cells(tmp_path, capsys, tiny_model_path):
    from openpyxl import load_workbook

    src = tmp_path / "r.csv"
    src.write_bytes(table_bytes(H, [["1", "a\x01b"], ["2", "长" * 40_000], ["3", "_x0041_"]]))
    code, out, err = run_score(tmp_path, capsys, src, tiny_model_path, out="o.xlsx")
    assert code == 0
    assert err == (f"reviewcause: warning: {out}: 1 cell(s) longer than Excel's 32,767-character limit were cut "
                   f"(first: data row 2, column '评价内容'); write CSV to keep them whole\n")
    cells = [r[1] for r in load_workbook(out)["predictions"].iter_rows(min_row=2, values_only=True)]
    # XML cannot hold U+0001: OOXML's escape, which Excel shows as the character; a literal _x0041_ is escaped too
    assert cells == ["a_x0001_b", "长" * 32_767, "_x005F_x0041_"]


# --- 5. label files ---------------------------------------------------------------------------


def test_gbk_tsv_and_xlsx_label_files_are_read(tmp_path):
    from pipeline.data import read_labelled_csv

    gbk = tmp_path / "labels.csv"
    gbk.write_bytes(table_bytes(["text", "labels", "primary"], [[R[0], "product_quality", ""], [R[1], "stockout_logistics|service_attitude", "service_attitude"]], "gbk"))
    df = read_labelled_csv(gbk)
    assert df["text"].tolist() == R[:2] and df["primary"].tolist() == ["product_quality", "service_attitude"]
    assert df["labels"].tolist() == [["product_quality"], ["stockout_logistics", "service_attitude"]]
    xlsx = workbook(tmp_path / "labels.xlsx", {"L": [["text", "labels"], [R[2], "novice_buyer"], [R[0], "none"]]})
    df = read_labelled_csv(xlsx)
    assert df["text"].tolist() == [R[2], R[0]] and df["primary"].tolist() == ["novice_buyer", "none"]
    tsv = tmp_path / "labels.tsv"
    tsv.write_bytes(table_bytes(["text", "labels"], [[R[0], "product_quality|expectation_gap"]], sep="\t"))
    assert read_labelled_csv(tsv)["primary"].tolist() == ["product_quality"]


def test_text_and_labels_only_primary_is_the_first_label(tmp_path):
    from pipeline.data import read_labelled_csv

    src = tmp_path / "l.csv"
    src.write_bytes(table_bytes(["text", "labels"], [[R[0], "product_quality|expectation_gap"], [R[1], "stockout_logistics"], [R[2], "none"]]))
    assert read_labelled_csv(src)["primary"].tolist() == ["product_quality", "stockout_logistics", "none"]


LABEL_ERRORS = [
    ("empty", b"", "the file is empty"),
    ("header_only", b"text,labels\n", "no labelled rows (only a header)"),
    ("no_labels_column", "text,label\n好,prank\n".encode(), "no 'labels' column (columns seen: text, label)"),
    ("all_labels_blank", "text,labels\n好,\n差,\n".encode(),
     "column 'labels' is blank on every row; give each review its cause ids ('|'-separated) or 'none'"),
    ("one_label_blank", "text,labels\n好,prank\n差,\n".encode(), "row 3, column 'labels': blank; give the cause ids or 'none'"),
    ("only_separators", "text,labels\n好,prank\n差,| |\n".encode(), "row 3, column 'labels': '| |' holds no cause id"),
    ("unknown_label", "text,labels\n好,prank\n差,quality\n".encode(), "row 3, column 'labels': unknown cause id(s) ['quality']"),
    ("unknown_primary", "text,labels,primary\n好,prank,prank\n差,product_quality,quality\n".encode(),
     "row 3, column 'primary': unknown cause id 'quality'; expected one of "
     "['expectation_gap', 'service_attitude', 'stockout_logistics', 'product_quality', 'novice_buyer', 'prank', "
     "'competitor_sabotage', 'extortion'] or 'none'"),
    ("primary_not_a_label", "text,labels,primary\n差,product_quality,prank\n".encode(),
     "row 2, column 'primary': 'prank' is not one of the row's labels (product_quality)"),
    ("duplicate_ids", "id,text,labels\na,好,prank\nb,差,prank\na,还行,none\n".encode(),
     "row 4, column 'id': duplicate id 'a' (also on row 2)"),
    ("shift_jis", "text,labels\n品質が悪いです。がっかり,product_quality\n".encode("shift_jis"),
     "cannot tell the text encoding with confidence"),
    ("none_with_causes", "text,labels\n差,none|product_quality\n".encode(),
     "row 2, column 'labels': 'none' together with cause(s) ['product_quality']; give either the causes or 'none'"),
    ("primary_none_with_causes", "text,labels,primary\n慢,stockout_logistics,none\n".encode(),
     "row 2, column 'primary': 'none' but the row has cause(s) (stockout_logistics)"),
    ("blank_text", "text,labels\n差,product_quality\n,product_quality\n".encode(),
     "row 3, column 'text': blank; a labelled review needs its text"),
    ("no_text_no_id", "foo,labels\n差,product_quality\n".encode(),
     "no 'text' column (nor an 'id' of the shipped corpus) (columns seen: foo, labels)"),
]


def test_label_file_text_under_the_scorers_headers(tmp_path, tiny_model_path):
    """The review text of a label file is found under any header `score` reads, not only 'text'."""
    from pipeline.data import read_labelled_csv

    src = tmp_path / "words.csv"  # texts that look like missing values are still texts
    src.write_text("text,labels\nNone,novice_buyer\nnan,novice_buyer\n", encoding="utf-8")
    assert read_labelled_csv(src)["text"].tolist() == ["None", "nan"]
    for header in ("review", "评价内容", "評價內容"):
        src = tmp_path / "l.csv"
        src.write_text(f"{header},labels\n质量太差了,product_quality\n快递太慢,stockout_logistics\n", encoding="utf-8")
        frame = read_labelled_csv(src)
        assert frame["text"].tolist() == ["质量太差了", "快递太慢"], header


@pytest.mark.parametrize("rows, folds, message", [
    ("质量差,product_quality\n快递慢,stockout_logistics\n", 5,
     "2 labelled review(s) are too few to cross-validate with 5 folds; give at least 10"),
    ("".join(f"很好{i},none\n" for i in range(6)), 2, "no review has a cause (every row is 'none')"),
    ("鞋底开胶了,product_quality\n物流太慢了,stockout_logistics\n" * 6, 5,
     "the 12 labelled reviews hold only 2 distinct text(s) (after normalising); cross-validating with 5 folds needs at least 5"),
    ("".join(f"质量差{i},product_quality\n" for i in range(6)), 2, "every review has the same cause (product_quality)"),
])
def test_train_refuses_labels_it_cannot_learn_from(tmp_path, capsys, rows, folds, message):
    src = tmp_path / "l.csv"
    src.write_text("text,labels\n" + rows, encoding="utf-8")
    code = main(["train", "--labels", str(src), "--no-shipped", "--folds", str(folds), "--model", str(tmp_path / "m.joblib")])
    err = capsys.readouterr().err
    assert code == 2 and err == f"reviewcause: error: {src}: {message}" + err[len(f"reviewcause: error: {src}: {message}"):]
    assert err.count("\n") == 1 and not (tmp_path / "m.joblib").exists()


def test_train_refuses_a_model_path_that_would_destroy_or_cannot_hold_it(tmp_path, capsys):
    src = tmp_path / "l.csv"
    src.write_text("text,labels\n质量差,product_quality\n", encoding="utf-8")
    before = src.read_bytes()
    (tmp_path / "dir").mkdir()
    (tmp_path / "side.json").symlink_to(src)
    (tmp_path / "mlflow.db").write_bytes(b"SQLite format 3\x00 runs")  # the MLflow store: never overwritten
    (tmp_path / "notes.json").write_text("{}", encoding="utf-8")  # a user's file where the sidecar would go
    for model, message in ((src, "a model file is a joblib pickle, not a .csv file; name it .joblib"),
                           (tmp_path / "dir", "is a directory; give an output file name"),
                           (tmp_path / "side.joblib", f"is the labels file {src}"),
                           (tmp_path / "mlflow.db", "exists and is not a reviewcause model (no mlflow.json written by "
                                                    "'reviewcause train' beside it); refusing to overwrite it"),
                           (tmp_path / "notes.joblib", "notes.json: exists and is not a reviewcause model")):
        code = main(["train", "--labels", str(src), "--no-shipped", "--model", str(model)])
        err = capsys.readouterr().err
        assert code == 2 and message in err and err.count("\n") == 1, err
    assert src.read_bytes() == before and not list(tmp_path.glob("*.tmp"))
    assert (tmp_path / "mlflow.db").read_bytes() == b"SQLite format 3\x00 runs"


@pytest.mark.parametrize("name, data, message", LABEL_ERRORS, ids=[c[0] for c in LABEL_ERRORS])
def test_label_file_errors_are_one_line(tmp_path, capsys, tiny_model_path, name, data, message):
    src = tmp_path / f"{name}.csv"
    src.write_bytes(data)
    code = main(["evaluate", str(src), "--model", str(tiny_model_path)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith(f"reviewcause: error: {src}: {message}") and err.count("\n") == 1


# --- 6. the Makefile --------------------------------------------------------------------------


MAKE = ["make", "-s", "-o", "models/reviewcause.joblib", "-o", ".venv/.installed"]  # the model counts as built


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
@pytest.mark.parametrize("target", ["score", "suspects", "report"])
@pytest.mark.parametrize("name", ["评价 导出 (1).csv", "a b.csv", "it's [copy] & $more;.csv", "out $1 $(HOME) ${x}.csv"])
def test_make_passes_file_names_as_one_word(tmp_path, target, name):
    """The recipes with the interpreter replaced by printf: each argument on its own line, as
    given — a '$' in a name is not make's (IN=… as a user types it in the shell)."""
    src, out = tmp_path / name, tmp_path / f"out {name}"
    run = subprocess.run([*MAKE, target, f"IN={src}", f"OUT={out}",
                          "PY=printf '<%s>\\n'"], cwd=REPO, capture_output=True, text=True, check=True)
    args = run.stdout.splitlines()
    if "<ensure-model>" in args:  # `make score` checks the model first: look at the scoring call
        args = args[args.index("<ensure-model>") + 1:]
    assert f"<{src}>" in args and args[:3] == ["<-m>", "<pipeline>", f"<{target}>"]
    assert f"<--output={out}>" in args and args[-2:] == ["<-->", f"<{src}>"]  # the input after --: never an option


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_passes_names_that_begin_with_a_dash_or_hold_a_dollar(tmp_path):
    """IN=-x.csv was read as an option; PNG=$x was expanded by make and dropped."""
    run = subprocess.run([*MAKE, "report", "IN=-x.csv", f"OUT={tmp_path / 'r.html'}", "PNG=-charts",
                          "PY=printf '<%s>\\n'"], cwd=REPO, capture_output=True, text=True, check=True)
    args = run.stdout.splitlines()
    assert args[-2:] == ["<-->", "<-x.csv>"] and "<--png=-charts>" in args
    dry = subprocess.run([*MAKE, "-n", "report", "IN=p.csv", "OUT=r.html", "PNG=$x"], cwd=REPO, capture_output=True,
                         text=True, check=True)
    assert "--png='$x'" in dry.stdout


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_score_with_spaces_and_brackets_in_the_name(tmp_path, tiny_model_path):
    """The recipe ``make score`` runs (printed by ``-n``) is run by the shell with the tiny model."""
    src = tmp_path / "评价 导出 (1).csv"
    src.write_bytes(basic())
    out = tmp_path / "预测 结果 (1).csv"
    dry = subprocess.run([*MAKE, "-n", "score", f"IN={src}", f"OUT={out}"], cwd=REPO, capture_output=True, text=True, check=True)
    lines = dry.stdout.strip().splitlines()
    assert lines[0].endswith(" -m pipeline ensure-model")  # the model is checked first
    line = lines[-1]
    assert len(lines) == 2 and " -m pipeline score " in line
    run = subprocess.run(["bash", "-c", line.replace(" -- ", f" -q --model '{tiny_model_path}' -- ")], cwd=REPO,
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert [r[:2] for r in read_csv_out(out)[1]] == ROWS


def test_xlsx_date_formatted_big_number_keeps_its_number(tmp_path, capsys, tiny_model_path):
    """An order id formatted as a date (beyond Excel's dates) is read as the number with one
    warning of ours — not openpyxl's two-line warning and a '#VALUE!' id."""
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = "评价"
    ws.append(["评价编号", "评价内容", "评分"])
    ws.append([12345678901234, R[0], 1])
    ws.append(["A2", R[1], 1])
    ws["A2"].number_format = "yyyy-mm-dd"
    for formulas in (False, True):  # a sheet with a formula is read cell by cell, with a second pass
        if formulas:
            ws["D1"], ws["D2"], ws["D3"] = "备注", "=1+1", "x"
        src = tmp_path / f"ids{int(formulas)}.xlsx"
        wb.save(src)
        out = tmp_path / "o.csv"
        assert main(["score", str(src), "-o", str(out), "--model", str(tiny_model_path), "-q"]) == 0
        err = capsys.readouterr().err.splitlines()
        assert err[0] == (f"reviewcause: warning: {src} (sheet '评价'): 1 date-formatted cell(s) hold a number beyond "
                          f"Excel's dates and were read as that number (first: A2)")
        header, rows = read_csv_out(out)
        assert [r[0] for r in rows] == ["12345678901234", "A2"]
        assert [r[header.index("review_id")] for r in rows] == ["12345678901234", "A2"]


def test_xlsx_numbers_read_as_excel_shows_them(tmp_path, tiny_model_path):
    """Ids kept in number cells with a number format come out as Excel shows them: zero-padded,
    with their literal prefix, with fixed decimals; a 19-digit number as Excel's 15 digits."""
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.append(["评价编号", "评价内容", "评分", "价格"])
    cells = [(123, "000000", "000123"), (42, '"JD"0000', "JD0042"), (19.9, "0.00", "19.90"),
             (1234567890123456789, "0", "1234567890123460000"), (7, "General", "7"), (2.5, "0%", "2.5"),
             # long ids under General, text (@) and Chinese Excel's 数值 formats: not 1.23456789012346e+18
             (1234567890123456789, "General", "1234567890123460000"), (1234567890123456789, "@", "1234567890123460000"),
             (1234567890123456789, "0_ ", "1234567890123460000"), (98765, "0_);[Red]\\(0\\)", "98765")]
    for i, (v, fmt, _) in enumerate(cells, start=2):
        ws.append([v, R[i % len(R)], 1, 1234.5])
        ws.cell(row=i, column=1).number_format = fmt
        ws.cell(row=i, column=4).number_format = "#,##0.00"
    src = tmp_path / "ids.xlsx"
    wb.save(src)
    out = tmp_path / "o.csv"
    assert main(["score", str(src), "-o", str(out), "--model", str(tiny_model_path), "-q"]) == 0
    header, rows = read_csv_out(out)
    expected = [shown for _, _, shown in cells]
    assert [r[0] for r in rows] == expected
    assert [r[header.index("review_id")] for r in rows] == expected
    assert {r[3] for r in rows} == {"1,234.50"}


def test_review_id_is_the_id_as_written(tmp_path, tiny_model_path):
    """review_id keeps an id's spaces and tabs (it is how the seller's system spells it); a blank
    id is the row number."""
    src = tmp_path / "ids.csv"
    src.write_bytes(table_bytes(["评价编号", "评价内容", "评分"], [[" 000123 ", R[0], "1"], ["\t42", R[1], "1"], ["  ", R[2], "1"]]))
    out = tmp_path / "o.csv"
    assert main(["score", str(src), "-o", str(out), "--model", str(tiny_model_path), "-q"]) == 0
    header, rows = read_csv_out(out)
    assert [r[header.index("review_id")] for r in rows] == [" 000123 ", "'\t42", "3"]


def test_input_columns_named_like_predictions_are_replaced_with_a_warning(tmp_path, capsys, tiny_model_path):
    src = tmp_path / "again.csv"
    src.write_bytes(table_bytes(["id", "评价内容", "review_id", "cause"], [["a", R[0], "x1", "mine"], ["b", R[1], "x2", "mine"]]))
    out = tmp_path / "o.csv"
    assert main(["score", str(src), "-o", str(out), "--model", str(tiny_model_path), "-q"]) == 0
    err = capsys.readouterr().err
    assert (f"reviewcause: warning: {src}: input column(s) 'review_id', 'cause' have the names of prediction columns "
            f"and are replaced by them") in err
    header, rows = read_csv_out(out)
    assert header.count("review_id") == 1 and [r[header.index("review_id")] for r in rows] == ["a", "b"]
    # a --zh-headers predictions file scored again (with or without --zh-headers): its Chinese
    # prediction columns are replaced too, not doubled as 原因(cause) beside 原因
    zh = tmp_path / "zh.csv"
    assert main(["score", str(src), "-o", str(zh), "--model", str(tiny_model_path), "-q", "--zh-headers"]) == 0
    for flags in (["--zh-headers"], []):
        again = tmp_path / "again_zh.csv"
        capsys.readouterr()
        assert main(["score", str(zh), "-o", str(again), "--model", str(tiny_model_path), *flags]) == 0
        assert "'评价标识', '原因', '原因中文', '置信度'" in capsys.readouterr().err
        assert read_csv_out(again)[0] == read_csv_out(zh if flags else out)[0]
    # one column 原因 of a real export (退款原因) is no predictions file: kept
    refund = tmp_path / "refund.csv"
    refund.write_bytes(table_bytes(["评价内容", "原因"], [[R[0], "尺码不合适"]]))
    assert main(["score", str(refund), "-o", str(out), "--model", str(tiny_model_path), "-q", "--zh-headers"]) == 0
    header, rows = read_csv_out(out)
    assert header[:2] == ["评价内容", "原因"] and rows[0][1] == "尺码不合适" and "原因(cause)" in header


@pytest.mark.parametrize("legacy", ["gb18030", "big5"])
def test_utf8_lines_inside_a_legacy_file_are_read_as_utf8(tmp_path, capsys, tiny_model_path, legacy):
    """Exports of two encodings joined end to end: UTF-8 rows beyond the sampled start of a GBK
    (or Big5) file. GB18030 decodes those bytes without error — as garbage — so they are found
    line by line (valid UTF-8, read as Chinese better than in the file's encoding), read as
    UTF-8, and named in one warning; the file's own lines are untouched."""
    own = ["這個東西質量太差了，用了兩天就壞了，客服也不理人" if legacy == "big5" else
           "这个东西质量太差了，用了两天就坏了，客服也不理人"] * 2000
    joined = ["物流太慢了，等了一个星期才到", "颜色和图片不一样，有色差"]
    src = tmp_path / "joined.csv"
    header = ("評價編號", "評價內容") if legacy == "big5" else tuple(H)
    src.write_bytes(basic(legacy, texts=own, header=header) + f"2001,{joined[0]}\n2002,{joined[1]}\n".encode()
                    + "2003,還行吧\n".encode(legacy))
    code = main(["score", str(src), "-o", str(tmp_path / "o.csv"), "--model", str(tiny_model_path)])
    err = capsys.readouterr().err
    read_as = "big5-hkscs" if legacy == "big5" else legacy  # as the sniffer names it (its note)
    assert code == 0 and f"read as {read_as}" in err
    assert (f"reviewcause: warning: {src}: 2 lines (the first: line 2002) are UTF-8 inside a {read_as} file "
            f"(exports of two encodings joined?); read as UTF-8") in err.splitlines()
    _, rows = read_csv_out(tmp_path / "o.csv")
    assert [r[1] for r in rows] == own + joined + ["還行吧"]


def test_a_legacy_file_alone_reads_without_a_mixed_encoding_warning(tmp_path, capsys, tiny_model_path):
    src = tmp_path / "gbk.csv"
    src.write_bytes(basic("gb18030", texts=["差", "好", "质量太差了，客服也不理人"] * 500))
    assert main(["score", str(src), "-o", str(tmp_path / "o.csv"), "--model", str(tiny_model_path)]) == 0
    assert "UTF-8 inside" not in capsys.readouterr().err


def test_a_tsv_file_whose_header_names_hold_commas_is_read_as_tsv(tmp_path, capsys, tiny_model_path):
    """A `.tsv` whose header has a tab is tab-separated even when a header name holds commas
    (标签(质量,物流,服务)); sniffed alone, the comma would win the header."""
    src = tmp_path / "labels.tsv"
    src.write_text("序号\t评价内容\t标签(质量,物流,服务,价格)\n1\t质量差\tA\n2\t快递太慢了\tB\n", encoding="utf-8")
    assert main(["score", str(src), "-o", str(tmp_path / "o.csv"), "--model", str(tiny_model_path), "-q"]) == 0
    header, rows = read_csv_out(tmp_path / "o.csv")
    assert header[:3] == ["序号", "评价内容", "标签(质量,物流,服务,价格)"] and [r[1] for r in rows] == ["质量差", "快递太慢了"]


def test_text_col_matches_a_header_with_stray_spaces(tmp_path, capsys, tiny_model_path):
    src = tmp_path / "spaces.csv"
    src.write_text("id,正文 \n1,质量差\n", encoding="utf-8")
    assert main(["score", str(src), "-o", str(tmp_path / "o.csv"), "--model", str(tiny_model_path), "-q",
                 "--text-col", "正文"]) == 0
    _, rows = read_csv_out(tmp_path / "o.csv")
    assert rows[0][1] == "质量差"


def test_utf8_lines_before_a_bad_byte_are_counted_once(tmp_path, capsys, tiny_model_path):
    """A legacy file with UTF-8 lines and, later in the same block, a byte neither encoding reads:
    the one-line error, and the UTF-8 lines read before it counted once in the warning."""
    src = tmp_path / "bad.csv"
    src.write_bytes(basic("gb18030", texts=["质量太差了，客服也不理人"] * 3000) + "3001,物流太慢了，等了一个星期才到\n".encode()
                    + b"3002,\xff\xff\n")
    code = main(["score", str(src), "-o", str(tmp_path / "o.csv"), "--model", str(tiny_model_path), "-q"])
    err = capsys.readouterr().err
    assert code == 2 and "data row 3002 (line 3003) is not decodable as gb18030" in err
    assert f"{src}: 1 line (the first: line 3002) is UTF-8 inside a gb18030 file" in err


def test_xlsx_summary_counts_every_outcome(tmp_path):
    """The summary sheet lists every outcome the predictions hold — no_complaint (★4–5 praise),
    uncertain and empty too — so its lines add up to its total."""
    from openpyxl import load_workbook

    from pipeline.predict import TRUSTED_COLUMNS
    from pipeline.tables import atomic_csv

    causes = ["no_complaint", "no_complaint", "product_quality", "uncertain", "empty", "prank"]
    out = tmp_path / "p.xlsx"
    with atomic_csv(out) as w:
        w.header(["review_id", "cause", "p_prank"], trusted=TRUSTED_COLUMNS)
        w.rows([[str(i), c, "0.5"] for i, c in enumerate(causes)])
    summary = [[c.value for c in r] for r in load_workbook(out)["summary"].iter_rows()][1:]
    by_id = {r[0]: r for r in summary}
    assert all(by_id[k][2] == causes.count(k) for k in set(causes))
    assert by_id["no_complaint"][1] == "无差评内容"
    assert sum(r[2] for r in summary[:-1]) == by_id["total"][2] == 6
    assert abs(sum(r[3] for r in summary[:-1]) - 1.0) < 1e-9


@pytest.mark.parametrize("name, data, what", [
    ("big.xls", "<html><body><table>" + "<tr><td>1</td><td>质量太差了</td></tr>" * 20000 + "</table></body></html>", "an HTML page, not a CSV file"),
    ("t.csv", "\ufeff  <!DOCTYPE html><html><table><tr><td>评价内容</td></tr></table>", "an HTML page, not a CSV file"),
    ("t.xls", '<?xml version="1.0"?><Workbook xmlns="urn:schemas-microsoft-com:office:spreadsheet"/>', "an XML file (SpreadsheetML 2003?), not a CSV file"),
    ("t.xlsx", "<html><table><tr><td>评价内容</td></tr></table></html>", "an HTML page, not an Excel workbook"),
])
def test_markup_saved_as_a_table_is_named_in_one_short_line(tmp_path, capsys, tiny_model_path, name, data, what):
    """A back office's HTML or XML 'Excel' export: named for what it is, never echoed (a 20,000-row
    HTML table once made a 1.4 MB 'one-line' error listing its text as column names)."""
    src = tmp_path / name
    src.write_text(data, encoding="utf-8")
    code = main(["score", str(src), "-o", str(tmp_path / "o.csv"), "--model", str(tiny_model_path), "-q"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith(f"reviewcause: error: {src}: this is {what}") and err.count("\n") == 1
    assert len(err) < 300 and "open it in Excel and save it as .xlsx or CSV" in err


def test_no_text_column_message_lists_columns_briefly(tmp_path, capsys, tiny_model_path):
    src = tmp_path / "wide.csv"
    src.write_text(",".join("列" * 100 + str(i) for i in range(100)) + "\n" + ",".join("x" * 100) + "\n", encoding="utf-8")
    code = main(["score", str(src), "-o", str(tmp_path / "o.csv"), "--model", str(tiny_model_path), "-q"])
    err = capsys.readouterr().err
    assert code == 2 and "no review text column found (columns seen: " in err and err.count("\n") == 1
    assert "… and 70 more); name it with --text-col" in err and len(err) < 2000


def test_label_files_with_title_rows_or_an_instructions_sheet_read_as_score_reads(tmp_path, capsys, tiny_model_path):
    """A label file is found like an export: its header is the row with a 'labels' column, below
    title rows, on the first sheet that has one; a mistake names the row as a spreadsheet counts it."""
    import openpyxl

    rows = [["text", "labels"]] + [[f"质量差{i}", "product_quality"] for i in range(3)] + [["物流慢", "quality"]]
    csv_path = tmp_path / "lt.csv"
    csv_path.write_text("千牛评价导出 2024-05-01\n\n" + "\n".join(",".join(r) for r in rows) + "\n", encoding="utf-8")
    book = openpyxl.Workbook()
    book.active.title = "说明"
    book.active["A1"] = "这是说明"
    sheet = book.create_sheet("labels")
    for r in rows:
        sheet.append(r)
    book.save(tmp_path / "li.xlsx")
    titled = openpyxl.Workbook()
    titled.active["A1"] = "标题"
    titled.active["A3"], titled.active["B3"] = "text", "labels"
    for k, r in enumerate(rows[1:], start=4):
        titled.active[f"A{k}"], titled.active[f"B{k}"] = r
    titled.save(tmp_path / "lt.xlsx")
    for name, row in (("lt.csv", 7), ("li.xlsx", 5), ("lt.xlsx", 7)):
        code = main(["evaluate", str(tmp_path / name), "--model", str(tiny_model_path)])
        err = capsys.readouterr().err.strip().splitlines()[-1]
        assert code == 2 and err.startswith(f"reviewcause: error: {tmp_path / name}: row {row}, column 'labels': unknown cause id(s) ['quality']"), err
    # fixed, it reads whole: the four reviews below the title are evaluated (support 1 + 3)
    csv_path.write_text(csv_path.read_text(encoding="utf-8").replace(",quality", ",stockout_logistics"), encoding="utf-8")
    assert main(["evaluate", str(csv_path), "--model", str(tiny_model_path)]) == 0
    report = capsys.readouterr().out
    assert re.search(r"stockout_logistics\s+\S+\s+\S+\s+\S+\s+1\n", report)
    assert re.search(r"product_quality\s+\S+\s+\S+\s+\S+\s+3\n", report)


def test_zip_files_are_named_by_what_they_hold(tmp_path, capsys, tiny_model_path):
    """.xlsb (a binary workbook) and a ZIP of CSVs were told "an .xlsx file? give it the .xlsx
    suffix" — advice that then failed."""
    import zipfile

    def zipped(name, members):
        with zipfile.ZipFile(tmp_path / name, "w") as z:
            for m, data in members.items():
                z.writestr(m, data)
        return tmp_path / name

    cases = [
        (zipped("b.xlsb", {"xl/workbook.bin": b"x"}), "an Excel binary workbook (.xlsb), not a CSV file: open it in Excel and save it as .xlsx or CSV"),
        (zipped("b.xlsx", {"xl/workbook.bin": b"x"}), "an Excel binary workbook (.xlsb), not an .xlsx workbook: open it in Excel"),
        (zipped("c.zip", {"reviews.csv": "评价内容\n差\n"}), "a ZIP archive holding reviews.csv, not a CSV file: unzip it and score the file(s) inside"),
        (zipped("c.xlsx", {"a.csv": "x", "b.csv": "y"}), "a ZIP archive holding a.csv and 1 more, not an .xlsx workbook: unzip it"),
        (zipped("w.csv", {"xl/workbook.xml": "<x/>"}), "an Excel workbook (.xlsx), not a CSV file: give it the .xlsx suffix"),
    ]
    for src, message in cases:
        code = main(["score", str(src), "-o", str(tmp_path / "o.csv"), "--model", str(tiny_model_path), "-q"])
        err = capsys.readouterr().err
        assert code == 2 and err.startswith(f"reviewcause: error: {src}: this is {message}") and err.count("\n") == 1, err


@pytest.mark.parametrize("enc", ["utf-16-le", "utf-16-be"])
def test_encoding_utf16_given_reads_a_bomless_file_in_its_own_byte_order(tmp_path, capsys, tiny_model_path, enc):
    """--encoding utf-16 on a file without a BOM: Python's codec assumes the machine's order
    (little-endian), which garbled a big-endian file; the order the bytes show is read."""
    src = tmp_path / "r.tsv"
    src.write_bytes("评价编号\t评价内容\n1\t质量太差了\n2\t物流很慢\n3\t客服不理人\n".encode(enc))
    code, out, _ = run_score(tmp_path, capsys, src, tiny_model_path, "--encoding", "utf-16")
    header, rows = read_csv_out(out)
    assert code == 0 and header[:2] == ["评价编号", "评价内容"] and [r[1] for r in rows] == ["质量太差了", "物流很慢", "客服不理人"]


def test_spaced_chinese_that_also_reads_as_korean_names_both_readings(tmp_path, capsys, tiny_model_path):
    """Keyword-style GBK reviews with spaces read as spaced Hangul too: the advice names both
    readings (it named only EUC-KR, which would garble them) and --encoding gbk reads them."""
    rows = ["评价编号,评价内容", "1,垃圾 骗人 不发货 差评", "2,客服 不错 发货 慢", "3,假货 大家 别买", "4,感觉 还 不错 好评", "5,价格 贵 不会 再买了"]
    src = tmp_path / "kr_gbk.csv"
    src.write_bytes(("\r\n".join(rows) + "\r\n").encode("gbk"))
    code = main(["score", str(src), "-o", str(tmp_path / "o.csv"), "--model", str(tiny_model_path), "-q"])
    err = capsys.readouterr().err
    assert code == 2 and "it looks like Korean EUC-KR (--encoding euc-kr) — or Chinese gb18030 (--encoding gbk) if it is Chinese" in err
    code, out, _ = run_score(tmp_path, capsys, src, tiny_model_path, "--encoding", "gbk")
    assert code == 0 and [r[1] for r in read_csv_out(out)[1]][0] == "垃圾 骗人 不发货 差评"


@pytest.mark.parametrize("first", [",,,\n", "   \n", '"",""\n', "\t\t\n"])
def test_a_first_line_of_only_delimiters_or_spaces_is_a_blank_line(tmp_path, capsys, tiny_model_path, first):
    """Excel saves a blank first row as ",,,"; that was an IndexError traceback (score and evaluate)."""
    src = tmp_path / "blank_first.csv"
    src.write_text(first + "订单号,评分,评价内容\n1001,1,质量太差了\n1002,2,快递太慢\n", encoding="utf-8")
    code, out, err = run_score(tmp_path, capsys, src, tiny_model_path)
    assert code == 0, err
    header, rows = read_csv_out(out)
    assert header[:3] == ["订单号", "评分", "评价内容"] and [r[0] for r in rows] == ["1001", "1002"]
    labels = tmp_path / "labels.csv"
    labels.write_text(first + "text,labels\n质量太差了,product_quality\n快递太慢,stockout_logistics\n", encoding="utf-8")
    assert main(["evaluate", str(labels), "--model", str(tiny_model_path)]) == 0


def test_long_numeric_ids_in_a_workbook_are_named_and_never_make_a_serial_buyer(tmp_path, capsys, tiny_model_path):
    """18-digit accounts stored as numbers read as Excel's 15 digits: three buyers became one
    "serial buyer, 9 bad reviews" in the evidence, without a word."""
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["订单编号", "买家账号", "商品名称", "评分", "评价内容"])
    texts = ["东西一般，和描述有点差距", "物流有点慢，等了很久", "包装有点简陋，盒子压坏了"]
    for b in (987654321012345100, 987654321012345300, 987654321012345500):
        for k in range(3):
            ws.append([f"o{b % 1000}-{k}", float(b), f"商品{k}", 1, texts[k]])
    src = tmp_path / "long_ids.xlsx"
    wb.save(src)
    code, out, err = run_score(tmp_path, capsys, src, tiny_model_path)
    assert code == 0
    assert "column '买家账号' holds numbers of more than 15 digits (cell B2: 987654321012345000)" in err
    header, rows = read_csv_out(out)
    evidence = [r[header.index("evidence")] for r in rows]
    assert not any("9条差评" in e or "one buyer" in e for e in evidence), evidence


def test_a_title_line_named_like_a_review_column_above_the_real_header(tmp_path, capsys, tiny_model_path):
    """A title "评价" made the export one column: the header scored as a review, order 1001 given
    id "2", ratings dropped, no warning. A one-column file keeps every row."""
    src = tmp_path / "titled.csv"
    src.write_text("评价\n订单号,评分,评价内容\n1001,1,衣服洗了一次就缩水了\n1002,1,快递太慢了\n", encoding="utf-8")
    code, out, err = run_score(tmp_path, capsys, src, tiny_model_path)
    assert code == 0 and "above the header read as a title" in err and "(first: '评价'); header on line 2" in err
    header, rows = read_csv_out(out)
    assert header[:3] == ["订单号", "评分", "评价内容"] and [r[header.index("review_id")] for r in rows] == ["1001", "1002"]
    one = tmp_path / "one.csv"
    one.write_text("评价\n质量差,物流慢\n很好\n一般\n", encoding="utf-8")
    code, out, err = run_score(tmp_path, capsys, one, tiny_model_path, out="one_out.csv")
    header, rows = read_csv_out(out)
    assert code == 0 and [r[0] for r in rows] == ["质量差,物流慢", "很好", "一般"]


def test_a_workbooks_title_named_like_a_review_column_above_the_real_header(tmp_path, capsys, tiny_model_path):
    import openpyxl

    wb = openpyxl.Workbook()
    for row in (["评价"], ["订单号", "评分", "评价内容"], ["1001", 1, "衣服洗了一次就缩水了"], ["1002", 1, "快递太慢了"]):
        wb.active.append(row)
    wb.save(tmp_path / "titled.xlsx")
    code, out, err = run_score(tmp_path, capsys, tmp_path / "titled.xlsx", tiny_model_path)
    assert code == 0 and "(first: '评价'); header on row 2" in err, err
    header, rows = read_csv_out(out)
    assert [r[header.index("review_id")] for r in rows] == ["1001", "1002"]


def test_repeated_review_ids_are_named_once_and_every_row_kept(tmp_path, capsys, tiny_model_path):
    """An id repeated in the export, or a blank id whose row number equals another row's id, made
    rows a join on review_id would mix up, without a word."""
    src = tmp_path / "dup.csv"
    src.write_text("序号,评价内容\n3,质量差\n,物流慢\n3,很好\n5,一般\n", encoding="utf-8")
    for jobs in ("1", "2"):
        code, out, err = run_score(tmp_path, capsys, src, tiny_model_path, "--jobs", jobs, out=f"o{jobs}.csv")
        assert code == 0 and err.count("repeat the review_id") == 1
        assert "1 row(s) repeat the review_id of an earlier row (first: data rows 1 and 3)" in err
        header, rows = read_csv_out(out)
        assert [r[header.index("review_id")] for r in rows] == ["3", "2", "3", "5"]
    ok = tmp_path / "ok.csv"
    ok.write_text("序号,评价内容\n1,质量差\n,物流慢\n", encoding="utf-8")
    code, out, err = run_score(tmp_path, capsys, ok, tiny_model_path, out="ok_out.csv")
    assert code == 0 and "repeat the review_id" not in err


def test_dangling_and_looping_links_and_stdin_are_named_for_what_they_are(tmp_path, capsys, tiny_model_path):
    """Each said 'no such file'."""
    (tmp_path / "loop1").symlink_to(tmp_path / "loop2")
    (tmp_path / "loop2").symlink_to(tmp_path / "loop1")
    (tmp_path / "dangling").symlink_to(tmp_path / "gone.csv")
    for name, message in (("loop1", "a symbolic link that loops back on itself"),
                          ("dangling", f"a symbolic link to '{tmp_path / 'gone.csv'}', which does not exist")):
        code, _, err = run_score(tmp_path, capsys, tmp_path / name, tiny_model_path)
        assert code == 2 and message in err and err.count("\n") == 1, err
    code = main(["score", "-o", str(tmp_path / "o.csv"), "--model", str(tiny_model_path), "--", "-"])
    assert code == 2 and "standard input is not supported" in capsys.readouterr().err


@pytest.mark.parametrize("second", ["好评,评价,好评", "质量差,评价内容一般", "评价,很好"])
def test_a_one_column_file_whose_review_has_commas_and_a_column_name_keeps_every_row(tmp_path, capsys, tiny_model_path,
                                                                                       second):
    """A review like 好评,评价,好评 under a one-column header was taken for a 3-column header: every
    later review came out empty (found in review of the one-cell title rule)."""
    src = tmp_path / "one.csv"
    src.write_text(f"评价内容\n{second}\n质量太差了\n快递太慢\n", encoding="utf-8")
    code, out, err = run_score(tmp_path, capsys, src, tiny_model_path)
    assert code == 0, err
    header, rows = read_csv_out(out)
    assert header[0] == "评价内容" and [r[0] for r in rows] == [second, "质量太差了", "快递太慢"]
    assert rows[1][header.index("cause")] != "empty"


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_a_group_header_naming_the_review_column_above_the_real_header(tmp_path, capsys, tiny_model_path, suffix):
    """订单信息,,评价 above 订单号,评分,评价内容 was taken for the header: the real header scored as a review,
    every id shifted, the ratings lost, no warning. A header whose one known column is the text
    stays the header when no sure header follows (its first row is data)."""
    rows = [["订单信息", "", "评价"], ["订单号", "评分", "评价内容"], ["1001", "1", "质量太差了"], ["1002", "5", "很好"]]
    src = tmp_path / f"group{suffix}"
    if suffix == ".csv":
        src.write_text("".join(",".join(r) + "\n" for r in rows), encoding="utf-8")
    else:
        import openpyxl

        wb = openpyxl.Workbook()
        for r in rows:
            wb.active.append(r)
        wb.save(src)
    code, out, err = run_score(tmp_path, capsys, src, tiny_model_path)
    assert code == 0 and "above the header read as a title" in err, err
    header, got = read_csv_out(out)
    assert [r[header.index("review_id")] for r in got] == ["1001", "1002"]
    plain = tmp_path / "plain.csv"
    plain.write_text("评价,备注\n质量太差了,无\n快递太慢,加急\n", encoding="utf-8")
    code, out, err = run_score(tmp_path, capsys, plain, tiny_model_path, out="plain_out.csv")
    header, got = read_csv_out(out)
    assert code == 0 and [r[0] for r in got] == ["质量太差了", "快递太慢"]
