"""Logs when output is not a terminal, resume messages, and TensorBoard after a resume."""
import json

import pytest
import yaml

from interrupt import interrupted_at_step

from lorasum.cli import main

pytestmark = pytest.mark.slow


def test_plain_log_lines_resume_and_tensorboard_without_duplicates(tmp_path, tiny_mt5, tiny_run_config,
                                                                  monkeypatch, capsys):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from torch.utils.tensorboard import SummaryWriter

    cfg = tiny_run_config(tiny_mt5, "lora", data__train_examples=4, training__max_steps=6,
                          training__checkpoint_every=3)
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(cfg.to_dict()), encoding="utf-8")
    out = tmp_path / "run"

    add_scalar = SummaryWriter.add_scalar

    def add_and_flush(self, *a, **kw):  # a killed run leaves what it flushed; flush every event
        add_scalar(self, *a, **kw)
        self.flush()

    monkeypatch.setattr(SummaryWriter, "add_scalar", add_and_flush)
    with interrupted_at_step(monkeypatch, 6):  # steps 4-6 are logged, their checkpoint never written
        assert main(["train", str(path), "-o", str(out)]) == 130
        err = capsys.readouterr().err
        assert "step 1/6 loss " in err and " lr " in err and " tok/s eta 0:" in err

    assert main(["train", str(path), "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert "resuming from step 3 of 6" in err and "step 4/6 loss" in err and "step 1/6" not in err

    events = EventAccumulator(str(out / "logs"))
    events.Reload()
    assert [e.step for e in events.Scalars("train/loss")] == [1, 2, 3, 4, 5, 6]
    assert [e.step for e in events.Scalars("validation/loss")] == [2, 4, 6]
    # the test ROUGE of metrics.json, at the last training step
    metrics = json.loads((out / "metrics.json").read_text())
    for tag, value in [("test/rougeL", metrics["rouge"]["overall"]["rougeL"]["mean"]),
                       ("test/ru/rouge2", metrics["rouge"]["per_lang"]["ru"]["rouge2"]["mean"]),
                       ("test/en/rouge1_ci_high", metrics["rouge"]["per_lang"]["en"]["rouge1"]["mean_ci"][1])]:
        assert [(e.step, round(e.value, 4)) for e in events.Scalars(tag)] == [(6, value)], tag

    assert main(["train", str(path), "-o", str(out)]) == 0
    assert "finished run: returning its stored results" in capsys.readouterr().err
