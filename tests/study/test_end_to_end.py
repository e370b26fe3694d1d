"""The demo study with the real pipeline: run, SIGKILL mid-cell, resume, compare, report.

Trains the tiny offline model on the embedded sample (CPU, deterministic): two cells of the
demo study are run once without interruption, and once with the study process killed
(SIGKILL) after the first cell's first checkpoint, then resumed.
"""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lorasum.study import run_study, study_report, study_results
from lorasum.study.runner import cell_dir

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "studies" / "demo.yaml"
CELLS = ["low_data/en/*/shots16/seed0"]
VICTIM = "low_data/en/full/shots16/seed0"  # killed and resumed
OTHER = "low_data/en/lora-r8-attention/shots16/seed0"  # runs after the resume, uninterrupted

pytestmark = pytest.mark.slow

SCRIPT = """
import sys
sys.path.insert(0, {root!r})
from lorasum.study import run_study
run_study({spec!r}, out_dir={out!r}, cells={cells!r}, progress=False)
"""
TIMING = ["train_seconds", "train_tokens_per_second", "peak_memory_mb"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("e2e")
    # the demo study with 16 shots in low_data: 12 optimizer steps, checkpoints every 4
    spec = tmp / "demo16.yaml"
    spec.write_text(DEMO.read_text().replace("shots: [8, 32]", "shots: [16]", 1))
    killed = tmp / "killed"
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT.format(root=str(ROOT), spec=str(spec), out=str(killed),
                                                                 cells=CELLS)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpt = cell_dir(killed, VICTIM) / "checkpoints"
    deadline = time.time() + 300
    while not any(ckpt.glob("step-*/state.json")):
        assert proc.poll() is None, "the study ended before its first checkpoint"
        assert time.time() < deadline, "no checkpoint within 5 minutes"
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = not (cell_dir(killed, VICTIM) / "metrics.json").exists()
    resumed = run_study(spec, out_dir=killed, cells=CELLS, progress=False)
    clean = run_study(spec, out_dir=tmp / "clean", cells=CELLS, progress=False)
    return {"spec": spec, "killed": killed, "clean": tmp / "clean", "resumed": resumed, "clean_out": clean,
            "partial": partial}


def _metrics(study, cid):
    return json.loads((cell_dir(study, cid) / "metrics.json").read_text())


def _predictions(study, cid):
    return [json.loads(x) for x in (cell_dir(study, cid) / "predictions.jsonl").read_text().splitlines()]


def test_killed_study_resumes_without_loss_or_double_counting(runs):
    killed, clean = runs["killed"], runs["clean"]
    assert runs["partial"], "the kill came after the cell had finished"
    assert runs["resumed"]["ran"] == [VICTIM, OTHER] and not runs["resumed"]["failed"]
    assert len(runs["clean_out"]["ran"]) == 2
    assert not (cell_dir(killed, VICTIM) / ".lock").exists()
    # the resumed cell completed every step, from its checkpoint, with the same test items
    a, b = _metrics(killed, VICTIM), _metrics(clean, VICTIM)
    assert a["efficiency"]["train_steps"] == b["efficiency"]["train_steps"] > 4  # past the checkpoint it died after
    assert [(p["id"], p["reference"]) for p in _predictions(killed, VICTIM)] == \
           [(p["id"], p["reference"]) for p in _predictions(clean, VICTIM)]
    # the cell after it is bit-for-bit the uninterrupted one (deterministic CPU run)
    assert _metrics(killed, OTHER)["rouge"] == _metrics(clean, OTHER)["rouge"]
    assert _predictions(killed, OTHER) == _predictions(clean, OTHER)
    # one row per (cell, language): nothing counted twice, nothing lost
    ta, tb = study_results(killed), study_results(clean, write=False)
    keys = ["cell_id", "level", "lang", "n", "train_examples", "train_steps", "trainable_params", "config_hash"]
    assert ta[keys].equals(tb[keys])
    # and a second call finds everything done
    again = run_study(runs["spec"], out_dir=killed, cells=CELLS, progress=False)
    assert again["skipped"] == [VICTIM, OTHER] and not again["ran"]
    assert "id='fig-learning_curves'" in study_report(killed, resamples=100).read_text()


def test_resumed_cell_is_bit_exact(runs):
    assert _predictions(runs["killed"], VICTIM) == _predictions(runs["clean"], VICTIM)
    assert _metrics(runs["killed"], VICTIM)["rouge"] == _metrics(runs["clean"], VICTIM)["rouge"]
