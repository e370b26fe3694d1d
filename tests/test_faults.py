"""Preemption, numerical faults and failed writes: each injected, each survived without losing work."""
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import yaml

from lorasum import faults
from lorasum.cli import main
from lorasum.train import latest_checkpoint

pytestmark = pytest.mark.slow

# Runs the CLI in a fresh process after installing one fault: a signal sent to itself at a
# chosen moment, or a file size limit. The patches wrap lorasum's functions; nothing in
# lorasum knows about them.
DRIVER = textwrap.dedent('''
    import os, resource, signal, sys
    mode, sig, argv = sys.argv[1], getattr(signal, sys.argv[2]), sys.argv[3:]

    sent = []

    def send():  # once: a second SIGINT means "stop now" by design
        if not sent:
            sent.append(1)
            os.kill(os.getpid(), sig)

    from lorasum import faults
    import lorasum.train as train
    if mode.startswith("step:"):
        at, original = int(mode[5:]), faults.FiniteWatch.step
        def step(self, n, norm):
            original(self, n, norm)
            if n == at:
                send()
        faults.FiniteWatch.step = step
    elif mode == "validation":
        original_val = train.Trainer.validation_loss
        def validation_loss(self):
            send()
            return original_val(self)
        train.Trainer.validation_loss = validation_loss
    elif mode == "checkpoint":
        original_save = faults.save_tensors
        def save(obj, path):
            if str(path).endswith("optimizer.pt"):
                send()
            return original_save(obj, path)
        faults.save_tensors = save
    elif mode == "generation":
        import lorasum.generate as generate
        original_batches = generate.length_batches
        def length_batches(*a, **k):
            send()
            return original_batches(*a, **k)
        generate.length_batches = length_batches
    elif mode.startswith("fsize:"):  # files written after step N may not exceed 2000 bytes
        at, original = int(mode[6:]), faults.FiniteWatch.step
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a kill
        def step(self, n, norm):
            original(self, n, norm)
            if n == at:
                resource.setrlimit(resource.RLIMIT_FSIZE, (2000, resource.RLIM_INFINITY))
        faults.FiniteWatch.step = step
    from lorasum.cli import main
    sys.exit(main(argv))
''')


def _drive(tmp_path, mode, sig, argv) -> subprocess.CompletedProcess:
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    return subprocess.run([sys.executable, str(script), mode, sig, *argv], capture_output=True, text=True,
                          env=env, timeout=300)


@pytest.fixture(scope="module")
def run_yaml(tiny_mt5, tmp_path_factory, tiny_run_config):
    cfg = tiny_run_config(tiny_mt5, "lora", training__eval_every=2)
    path = tmp_path_factory.mktemp("config") / "run.yaml"
    path.write_text(yaml.safe_dump(cfg.to_dict()))
    return str(path)


@pytest.fixture(scope="module")
def uninterrupted(run_yaml, tmp_path_factory):
    out = tmp_path_factory.mktemp("whole") / "run"
    assert main(["train", run_yaml, "-o", str(out), "--no-progress"]) == 0
    return json.loads((out / "metrics.json").read_text())


def _same_results(a: dict, b: dict) -> None:
    assert a["rouge"] == b["rouge"]
    assert a["losses"] == b["losses"]
    assert a["efficiency"]["train_steps"] == b["efficiency"]["train_steps"]


@pytest.mark.parametrize("mode,sig,saved_step,resume", [
    ("step:3", "SIGTERM", 3, True),  # between checkpoints
    ("validation", "SIGTERM", 2, False),  # validation at step 2 finishes, then the checkpoint
    ("checkpoint", "SIGINT", 2, False),  # the checkpoint being written completes first
])
def test_signal_during_training_saves_a_checkpoint_and_resumes_exactly(mode, sig, saved_step, resume, run_yaml,
                                                                       tmp_path, uninterrupted):
    out = tmp_path / "run"
    argv = ["train", run_yaml, "-o", str(out), "--no-progress"]
    proc = _drive(tmp_path, mode, sig, argv)
    assert proc.returncode == faults.EXIT_PREEMPTED, proc.stderr
    assert "Traceback" not in proc.stderr
    last = [ln for ln in proc.stderr.splitlines() if ln.startswith("lorasum:")][-1]
    assert f"stopped by {sig}" in last and f"resume with: lorasum train {run_yaml} -o {out}" in last, last
    ckpt = latest_checkpoint(out / "checkpoints")
    assert ckpt is not None and ckpt.name == f"step-{saved_step:07d}" and str(ckpt) in last
    assert not list((out / "checkpoints").glob(".tmp-*"))
    assert not (out / "metrics.json").exists()
    if resume:  # one resume is enough to compare; each costs a whole run
        assert main(argv) == 0
        _same_results(json.loads((out / "metrics.json").read_text()), uninterrupted)


def test_signal_during_generation_resumes_into_evaluation(run_yaml, tmp_path, uninterrupted):
    out = tmp_path / "run"
    argv = ["train", run_yaml, "-o", str(out), "--no-progress"]
    proc = _drive(tmp_path, "generation", "SIGTERM", argv)
    assert proc.returncode == faults.EXIT_PREEMPTED, proc.stderr
    assert "during generation" in proc.stderr and "resume with: lorasum train" in proc.stderr
    assert (out / "adapter").is_dir() and (out / "train_result.json").is_file()
    assert not (out / "metrics.json").exists()
    trained = (out / "adapter" / "adapter_model.safetensors").stat().st_mtime_ns
    assert main(argv) == 0
    assert (out / "adapter" / "adapter_model.safetensors").stat().st_mtime_ns == trained  # not trained again
    _same_results(json.loads((out / "metrics.json").read_text()), uninterrupted)


def test_file_size_limit_during_checkpoint_keeps_the_last_good_one(run_yaml, tmp_path, uninterrupted):
    out = tmp_path / "run"
    argv = ["train", run_yaml, "-o", str(out), "--no-progress"]
    proc = _drive(tmp_path, "fsize:3", "SIGTERM", argv)
    assert proc.returncode == faults.EXIT_WRITE_FAILED, proc.stderr
    line = proc.stderr.strip().splitlines()[-1]
    assert "Traceback" not in proc.stderr and "File too large" in line, proc.stderr
    assert ".tmp-step-0000004" in line and f"kept {out / 'checkpoints' / 'step-0000002'}" in line
    assert latest_checkpoint(out / "checkpoints").name == "step-0000002"
    assert not list((out / "checkpoints").glob(".tmp-*"))
    assert main(argv) == 0  # space freed: the run resumes from step 2
    _same_results(json.loads((out / "metrics.json").read_text()), uninterrupted)


# -- numerical faults ---------------------------------------------------------------------------

def test_nan_loss_stops_at_its_step_and_keeps_finite_checkpoint(run_yaml, tmp_path, monkeypatch, capsys):
    import lorasum.train as train

    calls = []
    original = train.label_loss  # the training step's loss (the LM head at label positions)

    def nan_at_third(*args, **kwargs):
        calls.append(1)
        loss = original(*args, **kwargs)
        return loss * float("nan") if len(calls) == 3 else loss

    monkeypatch.setattr(train, "label_loss", nan_at_third)
    out = tmp_path / "run"
    code = main(["train", run_yaml, "-o", str(out), "--no-progress"])
    err = capsys.readouterr().err
    assert code == faults.EXIT_DIVERGED, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "diverged at step 3: loss = nan" in err and "learning rate" in err and "fp16" in err
    failure = json.loads((out / "failure.json").read_text())
    assert failure["step"] == 3 and failure["what"] == "loss"
    ckpt = latest_checkpoint(out / "checkpoints")
    assert ckpt.name == "step-0000002" and failure["last_good_checkpoint"] == str(ckpt)
    weights = torch.load(ckpt / "trainable.pt", weights_only=True)
    assert all(torch.isfinite(t).all() for t in weights.values())
    monkeypatch.setattr(train, "token_loss", original)  # the cause is gone: a rerun resumes from step 2
    assert main(["train", run_yaml, "-o", str(out), "--no-progress"]) == 0
    assert not (out / "failure.json").exists() and (out / "metrics.json").exists()


def test_exploding_gradient_norm_stops_the_run(tiny_mt5, tiny_run_config, tmp_path, capsys):
    cfg = tiny_run_config(tiny_mt5, "full", training__max_grad_norm_abort=1e-6)
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(cfg.to_dict()))
    code = main(["train", str(path), "-o", str(tmp_path / "run"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == faults.EXIT_DIVERGED
    assert "diverged at step 1: gradient norm (limit 1e-06)" in err and "no checkpoint was saved" in err
    assert latest_checkpoint(tmp_path / "run" / "checkpoints") is None


def test_finite_watch_names_the_first_bad_step_read_later():
    watch = faults.FiniteWatch("cpu", max_grad_norm=100.0)
    for step in range(1, 9):
        watch.micro(torch.tensor(float("inf") if step == 5 else 1.0))
        watch.micro(torch.tensor(2.0))
        watch.step(step, torch.tensor(500.0 if step == 7 else 1.0))
        if step < 5:
            watch.check(step, Path("nowhere"))  # nothing bad yet: no error
    with pytest.raises(faults.NumericalFault) as info:
        watch.check(8, Path("nowhere"))
    assert info.value.step == 5 and info.value.what == "loss" and info.value.value == float("inf")
    norm_watch = faults.FiniteWatch("cpu", max_grad_norm=100.0)
    norm_watch.micro(torch.tensor(1.0))
    norm_watch.step(1, torch.tensor(500.0))
    with pytest.raises(faults.NumericalFault, match="step 1: gradient norm .limit 100. = 500"):
        norm_watch.check(1, Path("nowhere"))


def test_checkpoint_with_nan_weights_is_never_written(tmp_path):
    with pytest.raises(faults.LorasumError, match="weight w holds NaN"):
        faults.assert_finite_state({"w": torch.tensor([1.0, float("nan")])}, tmp_path / "step-0000001")


# -- disk space and unwritable output -----------------------------------------------------------

def test_too_little_free_space_is_refused_before_training(run_yaml, tmp_path, monkeypatch, capsys):
    import shutil

    monkeypatch.setattr(faults.shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(10**9, 10**9, 1000))
    out = tmp_path / "run"
    code = main(["train", run_yaml, "-o", str(out), "--no-progress"])
    err = capsys.readouterr().err
    assert code == faults.EXIT_WRITE_FAILED and str(out) in err and "KiB needed" in err and "1000 B free" in err, err
    assert not (out / "checkpoints").exists()


def test_unwritable_output_folder_is_one_line(run_yaml, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    code = main(["train", run_yaml, "-o", str(blocker / "run"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and str(blocker) in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


# -- studies -----------------------------------------------------------------------------------

def test_study_marks_a_diverged_cell_failed_and_stops_on_a_signal(tmp_path):
    sys.path.insert(0, str(Path(__file__).parent / "study"))
    from fakes import SMALL_STUDY, fake_train_and_evaluate

    from lorasum.study import run_study

    spec = tmp_path / "study.yaml"
    spec.write_text(yaml.safe_dump(SMALL_STUDY, sort_keys=False))
    calls = []

    def runner(config, run_dir, *, progress=True):
        calls.append(Path(run_dir))
        if len(calls) == 1:
            raise faults.NumericalFault(7, "loss", float("nan"), None)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGTERM)  # arrives while this cell runs: it finishes, no next cell
        return fake_train_and_evaluate(config, run_dir, progress=progress)

    with faults.SignalGuard(), pytest.raises(faults.Preempted, match="SIGTERM during study"):
        run_study(spec, out_dir=tmp_path / "s", runner=runner, progress=False)
    assert len(calls) == 2
    failed = json.loads((calls[0] / "cell.json").read_text())
    assert "diverged at step 7" in failed["error"]
    assert (calls[1] / "metrics.json").is_file()
    assert not list((tmp_path / "s").rglob(".lock"))
    assert faults.stop_requested() is None  # the guard is gone: signals behave as before


def test_second_sigint_interrupts_at_once():
    with faults.SignalGuard() as guard, pytest.raises(KeyboardInterrupt) as info:
        os.kill(os.getpid(), signal.SIGINT)
        assert guard.signum == signal.SIGINT and faults.stop_requested() == signal.SIGINT
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(1000):
            pass
    assert not isinstance(info.value, faults.Preempted)
