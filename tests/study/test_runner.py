"""Study state, locks, shards, resume and dry-run, with the fake runner (no training)."""
import copy
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fakes import SMALL_STUDY
from lorasum.errors import LorasumError
from lorasum.study import load_study, run_study, study_results
from lorasum.study.runner import CellLock, cell_dir

ROOT = Path(__file__).resolve().parents[2]


def count_calls(runner):
    calls = []

    def wrapped(config, run_dir, *, progress=True):
        calls.append(Path(run_dir))
        return runner(config, run_dir, progress=progress)

    return wrapped, calls


def test_dry_run_lists_grid_without_running(write_spec, tmp_path, local_data, capsys):
    spec = copy.deepcopy(SMALL_STUDY)
    spec["base"]["data"]["source"] = str(local_data)
    out = run_study(write_spec(spec), out_dir=tmp_path / "s", dry_run=True,
                    runner=lambda *a, **k: pytest.fail("dry run trained"))
    text = capsys.readouterr().out
    assert out["dry_run"] and len(out["cells"]) == 26
    assert "low_data/en/lora-r8-attention/shots64/seed1" in text
    assert "estimated work" in text
    cell = {c["id"]: c for c in out["cells"]}
    assert cell["low_data/en/full/shots64/seed0"]["steps"] == 16  # 64 examples / batch 4, 1 epoch
    assert cell["zero_shot/en-to-fr+ru/full/seed0"]["train_examples"] == 100  # counted from the file
    assert not (tmp_path / "s").exists()


def test_runs_every_cell_once_and_skips_finished(write_spec, tmp_path, fake_runner):
    runner, calls = count_calls(fake_runner)
    out = run_study(write_spec(), out_dir=tmp_path / "s", runner=runner, progress=False)
    assert len(out["ran"]) == 26 and not out["failed"] and not out["waiting"]
    assert len(calls) == 26
    manifest = json.loads((tmp_path / "s" / "study.json").read_text())
    assert manifest["counts"] == {"done": 26}
    # few-shot cells were given their zero-shot parent's folder to continue from
    few = yaml_load(tmp_path / "s" / "runs" / "few_shot/en-to-fr/lora-r8-attention/shots16/seed0" / "config.yaml")
    assert few["init_from"].endswith("runs/zero_shot/en-to-fr+ru/lora-r8-attention/seed0")
    again = run_study(write_spec(), out_dir=tmp_path / "s", runner=runner, progress=False)
    assert len(again["skipped"]) == 26 and not again["ran"] and len(calls) == 26


def yaml_load(path):
    import yaml

    return yaml.safe_load(Path(path).read_text())


def test_changed_config_is_detected_not_reused(write_spec, tmp_path, fake_runner):
    spec = copy.deepcopy(SMALL_STUDY)
    run_study(write_spec(spec), out_dir=tmp_path / "s", runner=fake_runner, progress=False,
              cells=["low_data/en/*/shots16/seed0"])
    spec["per_method"]["lora"]["training"]["lr"] = 3e-3
    path = write_spec(spec)
    with pytest.raises(LorasumError, match="different config.*--rerun-changed"):
        run_study(path, out_dir=tmp_path / "s", runner=fake_runner, progress=False)
    out = run_study(path, out_dir=tmp_path / "s", runner=fake_runner, progress=False, rerun_changed=True,
                    cells=["low_data/en/*/shots16/seed0"])
    assert out["ran"] == ["low_data/en/lora-r8-attention/shots16/seed0"]
    assert out["skipped"] == ["low_data/en/full/shots16/seed0"]
    assert (tmp_path / "s" / "stale").is_dir()


def test_shards_split_the_study_and_merge_by_copying(write_spec, tmp_path, fake_runner):
    import shutil

    path = write_spec()
    ran = []
    for i in (1, 2, 3):
        out = run_study(path, out_dir=tmp_path / f"m{i}", shard=f"{i}/3", runner=fake_runner, progress=False)
        assert not out["waiting"]  # few-shot cells follow their parent's shard
        ran += out["ran"]
    assert sorted(ran) == sorted(c.id for c in load_study(path)[1])
    merged = tmp_path / "merged"
    for i in (1, 2, 3):
        shutil.copytree(tmp_path / f"m{i}" / "runs", merged / "runs", dirs_exist_ok=True)
    whole = run_study(path, out_dir=tmp_path / "whole", runner=fake_runner, progress=False)
    assert len(whole["ran"]) == 26
    a = study_results(merged, write=False).drop(columns=["run_dir"])
    b = study_results(tmp_path / "whole", write=False).drop(columns=["run_dir"])
    assert a.equals(b)
    assert not run_study(path, out_dir=merged, runner=fake_runner, progress=False)["ran"]


def test_bad_shard_is_refused(write_spec, tmp_path):
    with pytest.raises(LorasumError, match="--shard"):
        run_study(write_spec(), out_dir=tmp_path, shard="3/2", dry_run=True)
    with pytest.raises(LorasumError, match="--shard"):
        run_study(write_spec(), out_dir=tmp_path, shard="one/2", dry_run=True)


def test_failed_cell_is_recorded_and_children_wait(write_spec, tmp_path, fake_runner):
    def flaky(config, run_dir, *, progress=True):
        if "zero_shot" in str(run_dir) and config.method.name == "lora":
            raise RuntimeError("out of memory")
        return fake_runner(config, run_dir, progress=progress)

    out = run_study(write_spec(), out_dir=tmp_path / "s", runner=flaky, progress=False)
    assert out["failed"] == ["zero_shot/en-to-fr+ru/lora-r8-attention/seed0"]
    assert sorted(out["waiting"]) == ["few_shot/en-to-fr/lora-r8-attention/shots16/seed0",
                                      "few_shot/en-to-ru/lora-r8-attention/shots16/seed0"]
    info = json.loads((cell_dir(tmp_path / "s", out["failed"][0]) / "cell.json").read_text())
    assert "out of memory" in info["error"]
    again = run_study(write_spec(), out_dir=tmp_path / "s", runner=fake_runner, progress=False)
    assert sorted(again["ran"]) == sorted(out["failed"] + out["waiting"])


HOLD_LOCK = """
import sys, time
sys.path[:0] = [{root!r}]
from lorasum.study.runner import CellLock
lock = CellLock({path!r})
assert lock.acquire()[0]
print("held", flush=True)
time.sleep(120)
"""


def test_lock_of_a_killed_process_is_free_and_a_live_holder_is_named(tmp_path):
    path = tmp_path / "cell" / ".lock"
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK.format(root=str(ROOT), path=str(path))],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        ok, info = CellLock(path).acquire()
        assert not ok and info["pid"] == holder.pid and info["host"] == socket.gethostname()
        assert CellLock(path).busy()
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    assert path.exists()  # left behind by the killed process, and free all the same
    assert not CellLock(path).busy()
    lock = CellLock(path)
    assert lock.acquire()[0]
    assert json.loads(lock.info_path.read_text())["pid"] == os.getpid()
    assert not CellLock(path).acquire()[0]  # a second lock object in the same process is refused too
    lock.release()
    assert not path.exists() and not lock.info_path.exists()


def test_a_lock_file_naming_a_reused_pid_does_not_block(tmp_path):
    # a holder file left by a dead runner whose pid now belongs to a live process (this one)
    path = tmp_path / "cell" / ".lock"
    path.parent.mkdir()
    path.write_text("")
    (tmp_path / "cell" / ".lock.json").write_text(json.dumps({"pid": os.getpid(), "host": "elsewhere", "since": 0}))
    lock = CellLock(path)
    assert lock.acquire()[0]
    lock.release()


def test_locked_cell_is_left_to_its_holder(write_spec, tmp_path, fake_runner):
    cid = "low_data/en/full/shots16/seed0"
    lock = CellLock(cell_dir(tmp_path / "s", cid) / ".lock")
    assert lock.acquire()[0]
    out = run_study(write_spec(), out_dir=tmp_path / "s", runner=fake_runner, progress=False,
                    cells=["low_data/en/*/shots16/seed0"])
    assert out["locked"] == [cid]
    lock.release()


def test_busy_cell_message_names_its_holder(write_spec, tmp_path, fake_runner):
    from rich.console import Console

    cid = "low_data/en/full/shots16/seed0"
    lock = CellLock(cell_dir(tmp_path / "s", cid) / ".lock")
    assert lock.acquire()[0]
    console = Console(record=True, width=400)
    try:
        run_study(write_spec(), out_dir=tmp_path / "s", runner=fake_runner, console=console, cells=[cid])
    finally:
        lock.release()
    text = console.export_text()
    assert f"cell {cid} is being run by pid {os.getpid()} on host {socket.gethostname()} since 20" in text


KILL_SCRIPT = """
import sys
sys.path[:0] = [{root!r}, {tests!r}]
from fakes import fake_train_and_evaluate
from lorasum.study import run_study
run_study({spec!r}, out_dir={out!r}, runner=fake_train_and_evaluate, progress=False)
"""


def test_sigkill_mid_cell_then_resume_equals_uninterrupted(write_spec, tmp_path, fake_runner):
    path = write_spec()
    victim = "low_data/fr/lora-r8-attention/shots16/seed0"
    script = KILL_SCRIPT.format(root=str(ROOT), tests=str(Path(__file__).parent), spec=str(path),
                                out=str(tmp_path / "killed"))
    env = {**os.environ, "FAKE_RUNNER_SLOW_CELL": victim, "FAKE_RUNNER_SLEEP": "60"}
    proc = subprocess.Popen([sys.executable, "-c", script], env=env)
    started = cell_dir(tmp_path / "killed", victim) / "checkpoints" / "started"
    deadline = time.time() + 60
    while not started.exists():
        assert proc.poll() is None and time.time() < deadline, "the study never reached the slow cell"
        time.sleep(0.1)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert (cell_dir(tmp_path / "killed", victim) / ".lock").exists()  # left behind by the dead process
    assert not (cell_dir(tmp_path / "killed", victim) / "metrics.json").exists()
    resumed = run_study(path, out_dir=tmp_path / "killed", runner=fake_runner, progress=False)
    assert victim in resumed["ran"] and not resumed["locked"]
    run_study(path, out_dir=tmp_path / "clean", runner=fake_runner, progress=False)
    a = study_results(tmp_path / "killed", write=False).drop(columns=["run_dir"])
    b = study_results(tmp_path / "clean", write=False).drop(columns=["run_dir"])
    assert len(a) == len(b) and a.equals(b)  # nothing double-counted, nothing lost
    for cid in (victim, "few_shot/en-to-fr/full/shots16/seed0"):
        pa = (cell_dir(tmp_path / "killed", cid) / "predictions.jsonl").read_text()
        assert pa == (cell_dir(tmp_path / "clean", cid) / "predictions.jsonl").read_text()


def test_cell_filter_keeps_parents(write_spec, tmp_path):
    out = run_study(write_spec(), out_dir=tmp_path / "s", dry_run=True, cells=["few_shot/en-to-ru/*"])
    ids = [c["id"] for c in out["cells"]]
    assert ids == ["zero_shot/en-to-fr+ru/full/seed0", "zero_shot/en-to-fr+ru/lora-r8-attention/seed0",
                   "few_shot/en-to-ru/full/shots16/seed0", "few_shot/en-to-ru/lora-r8-attention/shots16/seed0"]
    with pytest.raises(LorasumError, match="no cell"):
        run_study(write_spec(), out_dir=tmp_path / "s", dry_run=True, cells=["nothing/*"])
