"""The training loop reads values back to the host (``.item()``) only at logging steps.

Only calls made by lorasum's own code are counted: PyTorch's optimizers read their step
counters with ``.item()``, but those live on the CPU and cost no device sync.
"""
import functools
import sys
from pathlib import Path

import pytest
import torch

import lorasum
from lorasum.data.features import encode_seq2seq
from lorasum.models.load import load_base
from lorasum.train import Trainer

pytestmark = pytest.mark.slow
LORASUM_DIR = Path(lorasum.__file__).resolve().parent


@functools.lru_cache(maxsize=None)
def is_lorasum_code(filename: str) -> bool:
    """Whether a frame's file is part of the lorasum package (not merely on a path that mentions it)."""
    return Path(filename).resolve().is_relative_to(LORASUM_DIR)


def test_only_files_of_the_lorasum_package_count_as_lorasum_code():
    assert is_lorasum_code(str(LORASUM_DIR / "train.py"))
    assert is_lorasum_code(str(LORASUM_DIR / "data" / "features.py"))
    assert not is_lorasum_code("/home/x/lorasum-venv/lib/python3.11/site-packages/torch/optim/adamw.py")
    assert not is_lorasum_code(str(LORASUM_DIR.parent / "lorasum-venv" / "lib" / "torch" / "optim" / "adam.py"))
    assert not is_lorasum_code(torch.optim.AdamW.step.__code__.co_filename)


def test_item_is_called_only_when_logging(tiny_mt5, tiny_run_config, tmp_path, monkeypatch):
    import json

    from lorasum.demo import DATA

    cfg = tiny_run_config(tiny_mt5, "full", training__max_steps=40, training__batch_size=2,
                          training__checkpoint_every=1000)
    model, tok, _ = load_base(str(tiny_mt5))
    rows = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines()[:16]]
    features = encode_seq2seq(rows, tok, 64, 32)
    trainer = Trainer(model, features, [], cfg.training, tmp_path, pad_token_id=tok.pad_token_id, progress=False)
    assert trainer.log_every == 2

    calls = []
    original = torch.Tensor.item

    def counting_item(self):
        if is_lorasum_code(sys._getframe(1).f_code.co_filename):
            calls.append(sys._getframe(1).f_lineno)
        return original(self)

    monkeypatch.setattr(torch.Tensor, "item", counting_item)
    result = trainer.train()
    monkeypatch.setattr(torch.Tensor, "item", original)
    assert result.steps == 40
    logs = 40 // 2
    assert 0 < len(calls) <= 3 * logs, f"{len(calls)} host syncs for {logs} logging steps: lines {sorted(set(calls))}"
