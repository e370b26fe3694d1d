"""Each cell in its own process: crashes, global state and thread counts stay in the cell."""
import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from fakes import fake_train_and_evaluate
from lorasum.errors import LorasumError
from lorasum.study import run_study
from lorasum.study.runner import cell_dir, cell_threads, load_study
from lorasum.study.worker import CellProcessError, run_forked

SPEC = {
    "name": "iso",
    "base": {"model": "google/mt5-small", "data": {"source": "data.jsonl"}, "training": {"epochs": 1}},
    "axes": {"method": ["lora"], "rank": [8], "targets": ["attention"], "seed": [0]},
    "scenarios": [{"regime": "low_data", "languages": ["en"], "shots": [1, 2, 3, 4]}],
}
CELL = "low_data/en/lora-r8-attention/shots{}/seed0"
_LEAKED: list = []


def _observe(run_dir: Path) -> None:
    import torch

    (Path(run_dir) / "observed.json").parent.mkdir(parents=True, exist_ok=True)
    (Path(run_dir) / "observed.json").write_text(json.dumps({
        "pid": os.getpid(), "threads": torch.get_num_threads(), "env": os.environ.get("LORASUM_TEST_LEAK"),
        "leaked": len(_LEAKED),
    }))


def observed(study, shots):
    return json.loads((cell_dir(study, CELL.format(shots)) / "observed.json").read_text())


def crashing_runner(config, run_dir, *, progress=True):
    shots = config.data.train_examples
    _observe(run_dir)
    if shots == 1:
        os._exit(3)
    if shots == 2:
        os.kill(os.getpid(), signal.SIGKILL)
    if shots == 3:
        raise MemoryError("cannot allocate 12 GiB")
    return fake_train_and_evaluate(config, run_dir, progress=progress)


def test_a_crashing_cell_fails_alone_and_the_study_goes_on(write_spec, tmp_path):
    study = tmp_path / "s"
    out = run_study(write_spec(SPEC), out_dir=study, runner=crashing_runner, isolation="process", progress=False)
    assert out["failed"] == [CELL.format(k) for k in (1, 2, 3)]
    assert out["ran"] == [CELL.format(4)]
    errors = {k: json.loads((cell_dir(study, CELL.format(k)) / "cell.json").read_text())["error"] for k in (1, 2, 3)}
    assert errors[1] == "the cell's process exited with status 3 without a result"
    assert errors[2].startswith("the cell's process was killed by SIGKILL")
    assert errors[3] == "MemoryError: cannot allocate 12 GiB"
    pids = {observed(study, k)["pid"] for k in (1, 2, 3, 4)}
    assert len(pids) == 4 and os.getpid() not in pids  # one process per cell, none of them this one
    assert not (cell_dir(study, CELL.format(2)) / ".lock").exists()  # the study released the crashed cell's lock
    again = run_study(write_spec(SPEC), out_dir=study, runner=fake_train_and_evaluate, isolation="process",
                      progress=False)
    assert sorted(again["ran"]) == sorted(out["failed"])


def leaking_runner(config, run_dir, *, progress=True):
    import torch

    _observe(run_dir)
    # what a cell may change in its process: an env var, torch's threads, memory held by a module
    os.environ["LORASUM_TEST_LEAK"] = "1"
    torch.set_num_threads(3)
    _LEAKED.append(bytearray(32 * 2**20))
    return fake_train_and_evaluate(config, run_dir, progress=progress)


def test_global_state_of_a_cell_does_not_reach_the_next(write_spec, tmp_path, monkeypatch):
    monkeypatch.delenv("LORASUM_TEST_LEAK", raising=False)
    study = tmp_path / "s"
    out = run_study(write_spec(SPEC), out_dir=study, runner=leaking_runner, isolation="process", progress=False,
                    threads=2)
    assert len(out["ran"]) == 4
    for k in (1, 2, 3, 4):
        seen = observed(study, k)
        assert seen["env"] is None and seen["threads"] == 2 and seen["leaked"] == 0
    assert "LORASUM_TEST_LEAK" not in os.environ and not _LEAKED


def test_in_process_isolation_shares_the_process(write_spec, tmp_path, monkeypatch):
    # the debugging mode really runs in this process: the leak shows, which is why cells fork
    monkeypatch.delenv("LORASUM_TEST_LEAK", raising=False)
    study = tmp_path / "s"
    try:
        run_study(write_spec(SPEC), out_dir=study, runner=leaking_runner, isolation="none", progress=False,
                  threads=1, cells=[CELL.format(1), CELL.format(2)])
        assert observed(study, 1)["pid"] == os.getpid()
        assert observed(study, 2)["env"] == "1" and observed(study, 2)["leaked"] == 1
    finally:
        _LEAKED.clear()
        os.environ.pop("LORASUM_TEST_LEAK", None)
        import torch

        torch.set_num_threads(1)


def threads_runner(config, run_dir, *, progress=True):
    import torch

    # tensor maths on several threads in a forked child: hangs if the study process forked
    # with a started OpenMP pool
    a = torch.randn(300, 300)
    (a @ a).sum().item()
    _observe(run_dir)
    return fake_train_and_evaluate(config, run_dir, progress=progress)


@pytest.mark.timeout(120)
def test_cells_run_with_the_chosen_thread_count(write_spec, tmp_path, monkeypatch):
    import torch

    monkeypatch.delenv("LORASUM_THREADS", raising=False)
    run_study(write_spec(SPEC), out_dir=tmp_path / "a", runner=threads_runner, isolation="process", progress=False,
              threads=2)
    assert [observed(tmp_path / "a", k)["threads"] for k in (1, 2, 3, 4)] == [2, 2, 2, 2]
    monkeypatch.setenv("LORASUM_THREADS", "3")
    run_study(write_spec(SPEC), out_dir=tmp_path / "b", runner=threads_runner, isolation="process", progress=False,
              cells=[CELL.format(1)])
    assert observed(tmp_path / "b", 1)["threads"] == 3
    assert torch.get_num_threads() == 1  # the study process itself stays at one thread
    monkeypatch.setenv("LORASUM_THREADS", "many")
    with pytest.raises(LorasumError, match="LORASUM_THREADS"):
        run_study(write_spec(SPEC), out_dir=tmp_path / "c", runner=threads_runner, progress=False)


def test_tiny_builtin_models_get_one_thread_others_the_default(write_spec, monkeypatch):
    tiny = {**SPEC, "base": {**SPEC["base"], "model": "lorasum:tiny-mt5"}}
    (cell,) = load_study(write_spec(tiny))[1][:1]
    assert cell_threads(cell, None, 8) == 1
    assert cell_threads(cell, 4, 8) == 4
    (real,) = load_study(write_spec(SPEC))[1][:1]
    assert cell_threads(real, None, 8) == 8


def test_ctrl_c_in_the_study_stops_the_cell(tmp_path):
    marker = tmp_path / "child.pid"

    def slow():
        marker.write_text(str(os.getpid()))
        time.sleep(60)

    def interrupt():
        while not marker.exists():
            time.sleep(0.05)
        time.sleep(0.2)
        os.kill(os.getpid(), signal.SIGINT)  # only the study process, as a `kill -INT` would

    threading.Thread(target=interrupt, daemon=True).start()
    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        run_forked(slow, threads=1)
    assert time.monotonic() - t0 < 30
    child = int(marker.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(child, 0)


def test_an_exception_in_the_child_comes_back_with_its_message():
    def boom():
        raise ValueError("bad cell")

    with pytest.raises(CellProcessError, match="ValueError: bad cell"):
        run_forked(boom)
    assert run_forked(lambda: {"x": 1})[0] == {"x": 1}


KILLED_STUDY = """
import os, sys, time
sys.path[:0] = [{root!r}, {tests!r}]
from fakes import fake_train_and_evaluate
from lorasum.study import run_study

def slow(config, run_dir, *, progress=True):
    open({marker!r}, "w").write(str(os.getpid()))
    time.sleep(60)
    return fake_train_and_evaluate(config, run_dir, progress=progress)

run_study({spec!r}, out_dir={out!r}, runner=slow, isolation="process", progress=False)
"""


def test_killing_the_study_kills_its_cell_and_frees_the_lock(write_spec, tmp_path):
    import subprocess
    import sys

    from lorasum.study.runner import CellLock

    marker = tmp_path / "cell.pid"
    script = KILLED_STUDY.format(root=str(Path(__file__).resolve().parents[2]), tests=str(Path(__file__).parent),
                                 marker=str(marker), spec=str(write_spec(SPEC)), out=str(tmp_path / "s"))
    study = subprocess.Popen([sys.executable, "-c", script])
    deadline = time.time() + 60
    while not marker.exists() or not marker.read_text():
        assert study.poll() is None and time.time() < deadline, "the study never started its first cell"
        time.sleep(0.05)
    cell_pid = int(marker.read_text())
    os.kill(study.pid, signal.SIGKILL)
    study.wait()
    deadline = time.time() + 10
    while True:
        try:
            os.kill(cell_pid, 0)
        except ProcessLookupError:
            break
        assert time.time() < deadline, "the cell's process outlived the study"
        time.sleep(0.05)
    assert not CellLock(cell_dir(tmp_path / "s", CELL.format(1)) / ".lock").busy()


def test_a_fork_after_cuda_was_initialised_is_refused(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    with pytest.raises(LorasumError, match="--isolation none"):
        run_forked(lambda: 1)


def stoppable_runner(config, run_dir, *, progress=True):
    """A cell that works until a stop reaches it, as the training loop does between steps."""
    from lorasum import faults

    _observe(run_dir)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        faults.check_stop("cell", saved=str(run_dir))
        time.sleep(0.05)
    return fake_train_and_evaluate(config, run_dir, progress=progress)


def test_a_stop_reaching_the_study_is_passed_on_to_the_running_cell(write_spec, tmp_path):
    """Under the command's signal guard SIGTERM to the study reaches the cell, which stops resumably."""
    from lorasum import faults

    study = tmp_path / "s"
    first = cell_dir(study, CELL.format(1)) / "observed.json"

    def stop_when_running():
        deadline = time.monotonic() + 120
        while not first.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGTERM)

    t0 = time.monotonic()
    with faults.SignalGuard():
        threading.Thread(target=stop_when_running, daemon=True).start()
        with pytest.raises(faults.Preempted):
            run_study(write_spec(SPEC), out_dir=study, runner=stoppable_runner, isolation="process", progress=False)
    assert time.monotonic() - t0 < 50  # the cell did not work on to its own end
    info = json.loads((cell_dir(study, CELL.format(1)) / "cell.json").read_text())
    assert "SIGTERM" in info["error"]
    assert not (cell_dir(study, CELL.format(2)) / "observed.json").exists()  # no later cell started
