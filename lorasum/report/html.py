"""Writing the study report: one self-contained HTML page and a Markdown summary.

The page embeds its figures as base64 PNGs (it opens anywhere, offline, as one file); the
same PNGs are saved beside it in ``figures/`` for papers and for the Markdown summary.
A section whose data the study lacks is replaced by a one-line note saying what it needs.
"""
from __future__ import annotations

import base64
import html
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from lorasum.io import atomic_write_bytes, atomic_write_text

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1200px;color:#222;padding:0 1rem}
h1{margin-bottom:.2rem} h2{border-bottom:1px solid #ddd;padding-bottom:.2rem;margin-top:2.2rem}
.meta{color:#666} .note{color:#8a6d3b;background:#fcf8e3;padding:.5rem .8rem;border-radius:4px}
img{max-width:100%;border:1px solid #eee} table{border-collapse:collapse;font-size:.85rem;margin:.6rem 0}
th,td{border:1px solid #ddd;padding:.25rem .5rem;text-align:right;vertical-align:top} th{background:#f5f5f5}
td.t{text-align:left} .win{color:#1a7f37;font-weight:600} .loss{color:#b42318;font-weight:600}
.samples td{text-align:left;max-width:22rem;font-size:.8rem} caption{text-align:left;font-weight:600;padding:.3rem 0}
td.prose{text-align:start;white-space:pre-wrap;overflow-wrap:anywhere} .samples th{text-align:left}
.empty{color:#888;font-style:italic;font-family:ui-monospace,monospace;font-size:.75rem;border:1px dashed #aaa;
border-radius:3px;padding:0 .3em;background:#f6f6f6;user-select:none}
ul.findings li{margin:.3rem 0}
"""
# how an empty prediction (or reference) shows: a marker no real text can look like (styled in
# HTML; emphasised in Markdown, where the same text written by a model would come out escaped)
EMPTY_HTML = "<span class='empty' title='empty text'>(empty)</span>"
EMPTY_MARKDOWN = "*(empty)*"


@dataclass
class Section:
    """One part of the report: a figure and/or tables, or a note saying why it is empty."""

    key: str
    title: str
    intro: str = ""
    png: bytes | None = None
    tables_html: list[str] = field(default_factory=list)
    markdown: str = ""
    note: str | None = None


def table_html(df: pd.DataFrame, caption: str = "", text_cols: tuple[str, ...] = (), classes: dict | None = None,
               prose_cols: tuple[str, ...] = ()) -> str:
    """A plain HTML table; ``classes`` maps row index -> CSS class for the whole row's diff cell.

    ``prose_cols`` hold model or human text (predictions, references): their cells get
    ``dir="auto"`` (right-to-left scripts read right to left), keep their line breaks, and an
    empty text shows as a greyed "(empty)" marker instead of a collapsed cell.
    """
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    body = []
    for i, (_, r) in enumerate(df.iterrows()):
        tds = []
        for c in df.columns:
            v = r[c]
            if c in prose_cols:
                text = EMPTY_HTML if isinstance(v, str) and not v.strip() else html.escape(_fmt(v))
                tds.append(f'<td class="t prose" dir="auto">{text}</td>')
                continue
            cls = ' class="t"' if c in text_cols else ""
            if classes and c == "Δ ROUGE-L [95% CI]" and classes.get(i):
                cls = f' class="{classes[i]}"'
            tds.append(f"<td{cls}>{html.escape(_fmt(v))}</td>")
        body.append("<tr>" + "".join(tds) + "</tr>")
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def markdown_cell(text: str, *, prose: bool = False) -> str:
    """``text`` safe inside one Markdown table cell: pipes escaped, line breaks as ``<br>``.

    ``prose`` (model or human text) also escapes Markdown and HTML markup, so the text shows
    as written, and writes an empty text as :data:`EMPTY_MARKDOWN`.
    """
    if prose:
        if not text.strip():
            return EMPTY_MARKDOWN
        text = html.escape(text, quote=False)
        text = re.sub(r"([\\`*_{}\[\]#+!~])", r"\\\1", text)
    text = text.replace("|", "\\|")
    return re.sub(r"\r\n|\r|\n|\u2028|\u2029|\x85", "<br>", text)


def table_markdown(df: pd.DataFrame, prose_cols: tuple[str, ...] = ()) -> str:
    """A GitHub-flavoured Markdown table; every cell stays on its row (see :func:`markdown_cell`)."""
    lines = ["| " + " | ".join(markdown_cell(str(c)) for c in df.columns) + " |", "|" + "---|" * len(df.columns)]
    for _, r in df.iterrows():
        cells = []
        for c in df.columns:
            v = r[c]
            prose = c in prose_cols and isinstance(v, str)
            cells.append(markdown_cell(v if prose else _fmt(v), prose=prose))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and pd.isna(v)) or v is pd.NA:
        return "–"
    if isinstance(v, float):
        return f"{v:.2f}"
    return str(v)


def render_html(title: str, subtitle: str, sections: list[Section]) -> str:
    parts = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             f"<style>{CSS}</style></head><body>",
             f"<h1>{html.escape(title)}</h1><p class='meta'>{subtitle}</p>"]
    parts.append("<nav><ul>" + "".join(f"<li><a href='#{s.key}'>{html.escape(s.title)}</a></li>" for s in sections)
                 + "</ul></nav>")
    for s in sections:
        parts.append(f"<section id='{s.key}'><h2>{html.escape(s.title)}</h2>")
        if s.intro:
            parts.append(f"<p>{html.escape(s.intro)}</p>")
        if s.note:
            parts.append(f"<p class='note'>{html.escape(s.note)}</p>")
        if s.png:
            data = base64.b64encode(s.png).decode()
            parts.append(f"<img alt='{html.escape(s.title)}' id='fig-{s.key}' src='data:image/png;base64,{data}'>")
        parts.extend(s.tables_html)
        parts.append("</section>")
    parts.append(f"<p class='meta'>Generated {time.strftime('%Y-%m-%d %H:%M')} by lorasum.</p></body></html>")
    return "\n".join(parts)


def render_markdown(title: str, subtitle: str, sections: list[Section]) -> str:
    out = [f"# {title}", "", subtitle, ""]
    for s in sections:
        out += [f"## {s.title}", ""]
        if s.note:
            out += [f"_{s.note}_", ""]
        if s.png:
            out += [f"![{s.title}](figures/{s.key}.png)", ""]
        if s.markdown:
            out += [s.markdown, ""]
    return "\n".join(out)


def write_report(out_dir: Path, title: str, subtitle_html: str, subtitle_md: str, sections: list[Section]) -> Path:
    """Write ``index.html``, ``summary.md`` and ``figures/*.png`` into ``out_dir`` (atomically)."""
    for s in sections:
        if s.png:
            atomic_write_bytes(out_dir / "figures" / f"{s.key}.png", s.png)
    atomic_write_text(out_dir / "summary.md", render_markdown(title, subtitle_md, sections))
    return atomic_write_text(out_dir / "index.html", render_html(title, subtitle_html, sections))
