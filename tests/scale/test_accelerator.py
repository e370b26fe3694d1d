"""The run's Accelerator: the run config decides precision, global batches are split across processes."""
import logging

from lorasum.config import TrainingConfig
from lorasum.train import make_accelerator


def test_run_config_precision_wins_over_the_launcher_and_batches_are_split(monkeypatch, caplog):
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "bf16")
    with caplog.at_level(logging.WARNING, logger="lorasum.train"):
        acc = make_accelerator(TrainingConfig(precision="fp32"))
    assert acc.mixed_precision == "no"
    assert "training.precision=fp32 wins" in caplog.text
    assert acc.dataloader_config.split_batches is True
