"""The study report as a reader sees it: built from a crafted study (Arabic, empty and multi-line
predictions; a one-seed and a several-seed learning curve), checked in its files and, where
Chromium is installed, rendered headless and checked on the screenshot and the laid-out DOM."""
from __future__ import annotations

import json
import re
import shutil
import subprocess

import numpy as np
import pytest
from markdown_it import MarkdownIt

from lorasum.io import write_json, write_jsonl
from lorasum.study import study_report

ARABIC = "قال الوزير يوم الاثنين إن الأسعار ارتفعت في المدينة"
MULTILINE = "first line of the summary\nsecond line | with a pipe"
WORDS = "the minister said on monday that prices rose in the city".split()


def _prediction(lang: str, method: str, i: int, keep: int) -> str:
    if lang == "ar":
        return " ".join(ARABIC.split()[: keep + i % 3])
    if i == 0 and method == "lora":
        return ""
    if i == 1 and method == "full":
        return MULTILINE
    return " ".join(WORDS[: keep + i % 3] + ["something"] * (len(WORDS) - keep - i % 3))


def _cell(root, *, lang, method, seed, shots, score):
    variant = "full" if method == "full" else "lora-r8-attention"
    cell_id = f"low_data/{lang}/{variant}/shots{shots}/seed{seed}"
    d = root / "runs" / cell_id
    write_json(d / "cell.json", {
        "cell_id": cell_id, "scenario": "low_data", "regime": "low_data", "method": method, "variant": variant,
        "rank": None if method == "full" else 8, "targets": None if method == "full" else "attention", "seed": seed,
        "shots": shots, "train_langs": [lang], "test_langs": [lang], "config_hash": f"{cell_id}-hash"})
    stat = {"mean": score, "mean_ci": [score - 3, score + 3], "mid": score, "mid_ci": [score - 3, score + 3]}
    block = {"rouge1": stat, "rouge2": stat, "rougeL": stat, "n": 10}
    write_json(d / "metrics.json", {
        "run": {"model": "tiny", "train_examples": {lang: shots}},
        "rouge": {"overall": {**block, "n_langs": 1}, "per_lang": {lang: block}},
        "efficiency": {"trainable_params": 4096 if method == "lora" else 400_000, "trainable_share": 0.01 if
                       method == "lora" else 1.0, "artifact_mb": 0.02 if method == "lora" else 1.6},
        "losses": {}})
    keep = 4 if method == "full" else 6
    ref = " ".join(WORDS) if lang != "ar" else ARABIC
    write_jsonl(d / "predictions.jsonl", [
        {"id": f"{lang}-{i}", "lang": lang, "reference": ref, "prediction": _prediction(lang, method, i, keep)}
        for i in range(10)])


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("crafted")
    for shots, base in ((16, 20.0), (64, 30.0)):
        for method, gain in (("full", 0.0), ("lora", 2.0)):
            for seed in range(3):  # en: three seeds, a band
                _cell(root, lang="en", method=method, seed=seed, shots=shots, score=base + gain + seed)
            _cell(root, lang="ar", method=method, seed=0, shots=shots, score=base + gain - 5)  # ar: one seed
    return study_report(root, resamples=400)  # enough for 8 Holm-adjusted tests to reach p < 0.05


def test_report_files_put_findings_first_and_keep_sample_rows_whole(report):
    page = report.read_text(encoding="utf-8")
    sections = re.findall(r"<section id='([^']+)'>", page)
    assert sections[0] == "findings"
    # LoRA's Arabic summaries keep more words on every item: significant even after Holm over 8 tests
    assert "LoRA (r=8, attention) beats full fine-tuning on ar at 64 examples (seed 0) by +16.4 ROUGE-L" in page
    assert page.count('class="t prose" dir="auto"') == 3 * 4  # 2 items x 2 languages, 3 text columns
    assert page.count("<span class='empty'") == 1 and ARABIC in page
    md = (report.parent / "summary.md").read_text(encoding="utf-8")
    assert md.index("## Findings") < md.index("## Low data")
    # every table line has its header's cell count (a raw line break would leave a short row and a stray line)
    for block in re.findall(r"(?:^\|.*\n?)+", md, re.M):
        lines = block.strip("\n").split("\n")
        widths = {len(re.split(r"(?<!\\)\|", line)) for line in lines}
        assert len(widths) == 1, block
    rendered = MarkdownIt("commonmark").enable("table").render(md)
    assert "<em>(empty)</em>" in rendered and "first line of the summary<br>second line | with a pipe" in rendered


# Laid-out facts the screenshot cannot tell: computed direction and alignment, line boxes, image
# sizes, cells per row. Written into the page as JSON so --dump-dom carries them out.
PROBE = """<script>
window.addEventListener('load', () => {
  const box = e => { const r = e.getBoundingClientRect(); return {x: r.x, y: r.y + scrollY, w: r.width, h: r.height}; };
  // for text with line breaks: per source line, the visual top of its first and of its last character
  const lineTops = e => { const node = e.firstChild; if (!node || node.nodeType !== 3) return [];
    const top = i => { const r = document.createRange(); r.setStart(node, i); r.setEnd(node, i + 1);
      return Math.round(r.getBoundingClientRect().top); };
    const out = []; let start = 0;
    for (const line of node.data.split('\\n')) { out.push([top(start), top(start + line.length - 1)]);
      start += line.length + 1; }
    return out; };
  const out = {
    height: document.documentElement.scrollHeight,
    sections: [...document.querySelectorAll('section')].map(s => s.id),
    prose: [...document.querySelectorAll('td.prose')].map(td => ({text: td.textContent, tops: lineTops(td),
      dir: getComputedStyle(td).direction, align: getComputedStyle(td).textAlign, ...box(td)})),
    empty: [...document.querySelectorAll('.empty')].map(e => ({color: getComputedStyle(e).color,
      style: getComputedStyle(e).fontStyle, ...box(e)})),
    imgs: [...document.querySelectorAll('img')].map(i => ({id: i.id, natural: i.naturalWidth, ...box(i)})),
    tables: [...document.querySelectorAll('table')].map(t => [...t.tBodies[0].rows].every(
      r => r.cells.length === t.tHead.rows[0].cells.length)),
  };
  const pre = document.createElement('pre'); pre.id = 'probe'; pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>"""


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


def _ink(img: np.ndarray) -> np.ndarray:
    """Pixels that are not the page's near-white background."""
    return img.min(axis=2) < 200


@pytest.mark.skipif(_chromium() is None, reason="headless Chromium is not installed")
def test_report_reads_right_in_headless_chromium(report, tmp_path):
    from PIL import Image

    probe_page = tmp_path / "probe.html"
    probe_page.write_text(report.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"), encoding="utf-8")
    flags = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--hide-scrollbars", f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,1000"]
    dom = subprocess.run([*flags, "--dump-dom", probe_page.as_uri()], capture_output=True, text=True, timeout=60).stdout
    found = re.search(r'<pre id="probe">(.*?)</pre>', dom, re.S)
    assert found, dom[-500:]
    facts = json.loads(found.group(1).replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&"))
    assert facts["sections"][0] == "findings"
    assert all(facts["tables"]), "a table row with more or fewer cells than its header"
    arabic = [c for c in facts["prose"] if c["text"].startswith(ARABIC.split()[0])]
    latin = [c for c in facts["prose"] if c["text"].startswith("the minister")]
    assert arabic and all(c["dir"] == "rtl" and c["align"] in ("start", "right") for c in arabic)
    assert latin and all(c["dir"] == "ltr" for c in latin)
    (multi,) = [c for c in facts["prose"] if c["text"] == MULTILINE]
    (first, second) = multi["tops"]
    # each source line starts a new visual line (the break is kept; the pipe stays inside the cell)
    assert first[0] == first[1] and second[0] > first[1], multi
    (empty,) = facts["empty"]
    assert empty["w"] > 20 and empty["h"] > 8 and empty["style"] == "italic"
    assert [i["id"] for i in facts["imgs"]][:2] == ["fig-learning_curves", "fig-efficiency"]
    assert all(i["natural"] > 300 and i["w"] > 300 for i in facts["imgs"])

    # the whole page in one screenshot, then the regions the DOM located
    height = min(int(facts["height"]) + 10, 16000)
    shot = tmp_path / "report.png"
    flags[-1] = f"--window-size=1280,{height}"
    subprocess.run([*flags, f"--screenshot={shot}", report.as_uri()], capture_output=True, timeout=60)
    img = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert img.shape[:2] == (height, 1280)

    def crop(r, pad=0):
        return img[int(r["y"]) - pad:int(r["y"] + r["h"]) + pad, int(r["x"]) - pad:int(r["x"] + r["w"]) + pad]

    for fig in facts["imgs"]:
        region = crop(fig)
        assert _ink(region).mean() > 0.02, fig["id"]  # axes, lines and text drawn, not a blank box
    curves = crop(facts["imgs"][0])
    red = (abs(curves[..., 0] - 0xd6) < 30) & (abs(curves[..., 1] - 0x27) < 30) & (abs(curves[..., 2] - 0x28) < 30)
    blue = (abs(curves[..., 0] - 0x1f) < 30) & (abs(curves[..., 1] - 0x77) < 30) & (abs(curves[..., 2] - 0xb4) < 30)
    assert red.sum() > 200 and blue.sum() > 200  # both series visible, neither hidden by the other
    marker = crop(empty)
    assert _ink(marker).mean() > 0.05 and marker.std() > 10  # a visible grey box with text, not a gap
    for cell in arabic:
        ink = np.flatnonzero(_ink(crop(cell)[2:-2, 2:-2]).any(axis=0))
        # right to left: the text hugs the cell's right edge, the free space is on the left
        assert ink.size and cell["w"] - 4 - ink.max() < ink.min(), cell
    for cell in latin:
        ink = np.flatnonzero(_ink(crop(cell)[2:-2, 2:-2]).any(axis=0))
        assert ink.size and ink.min() < 12
