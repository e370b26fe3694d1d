"""A small sample of a large file is drawn without loading the file (peak memory, measured)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc")

CHILD = r"""
import json, sys
from lorasum.config import parse_run_config
from lorasum.data.stream import sample_examples

def hwm_kb():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])

cfg = parse_run_config({"data": {"source": sys.argv[1], "languages": ["en", "de"]}}).data
sample_examples(cfg, "train", ["en", "de"], 5, 0)  # warm imports before measuring
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # reset the peak to the current resident size
before = hwm_kb()
out = sample_examples(cfg, "train", ["en", "de"], 50, 0)
print(json.dumps({"growth_mb": (hwm_kb() - before) / 1024, "n": {k: len(v) for k, v in out.items()},
                  "ids": [ex["id"] for ex in out["de"][:3]]}))
"""


def test_sampling_50_rows_from_a_200_mb_jsonl_stays_far_below_its_size(tmp_path):
    path = tmp_path / "big.jsonl"
    body = ("Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 180).strip()
    with open(path, "w", encoding="utf-8") as f:
        i = 0
        while f.tell() < 200 * 2**20:
            lang = "de" if i % 3 == 0 else "en"
            f.write(json.dumps({"id": f"r{i}", "lang": lang, "split": "train", "text": f"{i} {body}",
                                "summary": f"summary {i}"}) + "\n")
            i += 1
    size_mb = path.stat().st_size / 2**20
    res = subprocess.run([sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True, check=True,
                         timeout=600)
    report = json.loads(res.stdout.strip().splitlines()[-1])
    assert report["n"] == {"en": 50, "de": 50}
    print(f"file {size_mb:.0f} MB, rows {i}, peak RSS growth while sampling {report['growth_mb']:.1f} MB")
    assert report["growth_mb"] < 40, report
