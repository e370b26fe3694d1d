"""Model and human text in the report's tables: right-to-left shown right to left, empty shown
as empty, and line breaks or pipes that never break a Markdown table."""
from __future__ import annotations

import re

import pandas as pd
from markdown_it import MarkdownIt

from lorasum.report.html import EMPTY_HTML, EMPTY_MARKDOWN, table_html, table_markdown

ARABIC = "قال الوزير يوم الاثنين إن الأسعار ارتفعت"
TEXTS = ["line one\nline two | still the same cell", "", "   ", ARABIC, "*(empty)*", "<b>not bold</b> & co"]


def _table() -> pd.DataFrame:
    return pd.DataFrame({"lang": ["en", "en", "en", "ar", "en", "en"], "id": [f"x{i}" for i in range(6)],
                         "prediction": TEXTS, "reference": ["ref"] * 6})


def _cells(page: str) -> list[list[str]]:
    return [re.findall(r"<td[^>]*>.*?</td>", row, flags=re.S) for row in re.findall(r"<tr>(.*?)</tr>", page, re.S)][1:]


def test_prose_cells_read_in_their_own_direction_and_show_empty_text_as_a_marker():
    page = table_html(_table(), text_cols=("lang", "id"), prose_cols=("prediction", "reference"))
    rows = _cells(page)
    assert len(rows) == 6 and all(len(r) == 4 for r in rows)
    for r in rows:
        assert 'dir="auto"' not in r[0] + r[1]  # labels keep the page's direction
        assert 'dir="auto"' in r[2] and 'dir="auto"' in r[3]
    assert EMPTY_HTML in rows[1][2] and EMPTY_HTML in rows[2][2]  # empty and blank
    assert ARABIC in rows[3][2]
    # a model that writes the marker's words gets plain text, not the marker
    assert "*(empty)*" in rows[4][2] and EMPTY_HTML not in rows[4][2]
    assert "&lt;b&gt;not bold&lt;/b&gt; &amp; co" in rows[5][2]
    assert "line one\nline two" in rows[0][2]  # kept: the prose cell's CSS keeps line breaks


def test_markdown_table_keeps_every_row_whole_and_marks_empty_text():
    md = table_markdown(_table(), prose_cols=("prediction", "reference"))
    lines = md.split("\n")
    assert len(lines) == 2 + 6  # header, rule, one line per row
    for line in lines:
        assert len(re.split(r"(?<!\\)\|", line)) == 4 + 2, line
    rendered = MarkdownIt("commonmark").enable("table").render(md)
    body = re.findall(r"<tr>(.*?)</tr>", rendered, re.S)[1:]
    cells = [re.findall(r"<td>(.*?)</td>", r, re.S) for r in body]
    assert [len(c) for c in cells] == [4] * 6
    assert cells[0][2] == "line one<br>line two | still the same cell"
    assert cells[1][2] == cells[2][2] == "<em>(empty)</em>" and EMPTY_MARKDOWN == "*(empty)*"
    assert cells[3][2] == ARABIC
    assert cells[4][2] == "*(empty)*"  # the model's own asterisks, shown as written
    assert cells[5][2] == "&lt;b&gt;not bold&lt;/b&gt; &amp; co"


def test_markdown_labels_with_line_breaks_or_pipes_stay_in_their_cell():
    df = pd.DataFrame({"scenario": ["a|b", "c\r\nd"], "n": [1, 2]})
    rendered = MarkdownIt("commonmark").enable("table").render(table_markdown(df))
    cells = [re.findall(r"<td>(.*?)</td>", r, re.S) for r in re.findall(r"<tr>(.*?)</tr>", rendered, re.S)[1:]]
    assert cells == [["a|b", "1"], ["c<br>d", "2"]]
