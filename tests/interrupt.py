"""A training run interrupted between two checkpoints, for resume tests."""
from __future__ import annotations

import contextlib

from lorasum.train import Trainer


@contextlib.contextmanager
def interrupted_at_step(monkeypatch, step: int):
    """Inside, a run raises KeyboardInterrupt when it would checkpoint ``step``: the steps since
    the last checkpoint are logged, their checkpoint never written. Outside, runs save normally."""
    original = Trainer.save_checkpoint

    def crash(self):
        if self.state["step"] == step:
            raise KeyboardInterrupt("simulated interruption")
        original(self)

    monkeypatch.setattr(Trainer, "save_checkpoint", crash)
    try:
        yield
    finally:
        monkeypatch.setattr(Trainer, "save_checkpoint", original)
