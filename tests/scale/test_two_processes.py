"""Two CPU processes (gloo, torchrun) train the same model as one process with twice the batch.

``training.batch_size`` is per process and accelerate splits each global batch across the
processes (``split_batches=True``), so 2 processes x 2 see the same batches as 1 process x 4;
the loss is the mean over all label tokens of a global batch, so the gradients agree too.
"""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from lorasum.run import train_and_evaluate

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


def _config(model_dir, batch_size):
    from lorasum.demo import DATA

    return {
        "model": str(model_dir),
        "data": {"source": str(DATA), "languages": ["en", "ru"], "train_examples": 8, "validation_examples": 3,
                 "test_examples": 3},
        "method": {"name": "lora", "r": 4, "alpha": 8, "dropout": 0.0},
        "training": {"max_steps": 4, "batch_size": batch_size, "lr": 1e-2, "checkpoint_every": 2, "seed": 1,
                     "max_source_length": 64, "max_target_length": 32, "label_smoothing": 0.1},
        # greedy, and 3 generation batches: rank 0 decodes two of them, rank 1 one
        "generation": {"num_beams": 1, "max_source_length": 64, "max_target_length": 8, "batch_size": 2},
    }


@pytest.fixture(scope="module")
def no_dropout_mt5(tmp_path_factory):
    from lorasum.models.tiny import build_tiny_model

    path = build_tiny_model(tmp_path_factory.mktemp("models") / "mt5", "mt5", d_model=32, layers=1)
    config = json.loads((path / "config.json").read_text())
    config["dropout_rate"] = 0.0  # dropout masks depend on the batch shape, which differs per process
    (path / "config.json").write_text(json.dumps(config))
    return path


def test_two_processes_match_one_process_with_the_same_global_batch(no_dropout_mt5, tmp_path):
    from lorasum.config import parse_run_config

    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or shutil.which("torchrun")
    assert torchrun, "torchrun (from PyTorch) is needed"
    (tmp_path / "two.yaml").write_text(yaml.safe_dump(_config(no_dropout_mt5, 2)))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
           "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run([torchrun, "--standalone", "--nproc_per_node", "2", "-m", "lorasum.cli", "train",
                           str(tmp_path / "two.yaml"), "-o", str(tmp_path / "two"), "--no-progress"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.stdout.count("results in") == 1, "only the main process prints"

    one = tmp_path / "one"
    train_and_evaluate(parse_run_config(_config(no_dropout_mt5, 4)), one, progress=False)
    two = tmp_path / "two"

    # the main process alone wrote the files: one artifact, one metrics file, one TensorBoard log
    assert (two / "metrics.json").exists() and (two / "adapter" / "adapter_model.safetensors").exists()
    assert not (two / "model").exists() and not list(two.glob(".*.tmp")) and not list(two.glob("checkpoints/.tmp*"))
    assert len(list((two / "logs").glob("events.out.tfevents*"))) == 1
    assert [p.name for p in (two / "checkpoints").glob("step-*")] == ["step-0000004"]

    a, b = (json.loads((d / "train_result.json").read_text()) for d in (one, two))
    assert b["train_tokens"] == a["train_tokens"] and b["epochs_done"] == a["epochs_done"] == 1.0
    loss_a = [h["train_loss"] for h in a["history"] if "train_loss" in h]
    loss_b = [h["train_loss"] for h in b["history"] if "train_loss" in h]
    assert len(loss_a) == 4 and loss_b == pytest.approx(loss_a, rel=1e-5)
    assert b["final_validation_loss"] == pytest.approx(a["final_validation_loss"], rel=1e-5)
    wa, wb = (load_file(d / "adapter" / "adapter_model.safetensors") for d in (one, two))
    assert wa.keys() == wb.keys()
    assert all(torch.allclose(wa[k], wb[k], atol=1e-5) for k in wa)
    assert any(wa[k].abs().max() > 1e-3 for k in wa if "lora_B" in k), "training changed nothing"

    # generation was split across the processes and gathered back in input order
    rows_a = (one / "predictions.jsonl").read_text().splitlines()
    rows_b = (two / "predictions.jsonl").read_text().splitlines()
    assert len(rows_b) == 6 and rows_b == rows_a
    ma, mb = (json.loads((d / "metrics.json").read_text()) for d in (one, two))
    assert mb["rouge"] == ma["rouge"]
