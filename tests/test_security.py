"""No pickle of untrusted files, no remote code unless asked, no paths taken from data."""
import json
import pickle
import re
from pathlib import Path

import pytest
import torch

from lorasum import faults

SOURCE = Path(__file__).resolve().parents[1] / "lorasum"


def _source_lines():
    for path in sorted(SOURCE.rglob("*.py")):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            yield f"{path.relative_to(SOURCE.parent)}:{n}", line


@pytest.mark.parametrize("pattern", [
    r"weights_only\s*=\s*False",
    r"\bpickle\.loads?\(",
    r"trust_remote_code\s*=\s*True",
    r"\bdill\b|\bjoblib\.load\(",
])
def test_source_has_no_unsafe_loading(pattern):
    hits = [where for where, line in _source_lines() if re.search(pattern, line)]
    assert not hits, f"{pattern} in {hits}"


def test_every_torch_load_is_weights_only():
    calls = [(where, line) for where, line in _source_lines() if "torch.load(" in line]
    assert calls, "no torch.load found: the scan is looking in the wrong place"
    unsafe = [where for where, line in calls if "weights_only=True" not in line]
    assert not unsafe, unsafe


class _Exploit:
    def __reduce__(self):
        import os

        return (os.system, ("touch " + str(Path(__file__).parent / "pwned-by-pickle"),))


def test_checkpoint_with_a_malicious_pickle_is_refused(tiny_mt5, tiny_run_config, tmp_path, capsys):
    import yaml

    from lorasum.cli import main

    cfg = tiny_run_config(tiny_mt5, "lora")
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(cfg.to_dict()))
    out = tmp_path / "run"
    ckpt = out / "checkpoints" / "step-0000002"
    ckpt.mkdir(parents=True)
    for name in ("trainable.pt", "scheduler.pt", "rng.pt"):
        torch.save({}, ckpt / name)
    with open(ckpt / "optimizer.pt", "wb") as f:  # loaded with weights_only=False before
        pickle.dump({"state": _Exploit(), "param_groups": []}, f)
    (ckpt / "state.json").write_text(json.dumps({"step": 2}))
    marker = Path(__file__).parent / "pwned-by-pickle"
    code = main(["train", str(path), "-o", str(out), "--no-progress"])
    err = capsys.readouterr().err
    assert not marker.exists(), "the pickle ran"
    assert code == 2 and "optimizer.pt: refused to load" in err and "Traceback" not in err, err


def test_checkpoint_state_round_trips_with_weights_only(tiny_mt5, tiny_run_config, tmp_path):
    """Optimizer, scheduler and every RNG are stored as tensors and plain values."""
    import random

    import numpy as np

    from lorasum.data.features import encode_seq2seq
    from lorasum.demo import DATA
    from lorasum.models.load import load_base
    from lorasum.train import Trainer, _rng_state, _set_rng_state

    cfg = tiny_run_config(tiny_mt5, "full", training__optimizer="adafactor")
    model, tok, _ = load_base(str(tiny_mt5))
    rows = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines()[:4]]
    trainer = Trainer(model, encode_seq2seq(rows, tok, 32, 16), [], cfg.training, tmp_path,
                      pad_token_id=tok.pad_token_id, progress=False)
    trainer.train()
    ckpt = next((tmp_path / "checkpoints").glob("step-*"))
    for name in ("trainable.pt", "optimizer.pt", "scheduler.pt", "rng.pt"):
        torch.load(ckpt / name, weights_only=True)  # raises on anything but plain data
    random.seed(3)
    np.random.seed(3)
    torch.manual_seed(3)
    state = _rng_state()
    faults.save_tensors(state, tmp_path / "rng.pt")
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    _set_rng_state(faults.load_tensors(tmp_path / "rng.pt"))
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected


def test_no_path_is_taken_from_data_content(tmp_path):
    """An id that looks like a path stays a string; nothing is written outside the run folder."""
    from lorasum.config import DataConfig
    from lorasum.data.sources import load_examples

    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps({"id": "../../etc/passwd", "lang": "en", "split": "train", "text": "t",
                                "summary": "s"}) + "\n")
    rows = load_examples(DataConfig(source=str(data), languages=["en"]), "train", ["en"])["en"]
    assert rows[0]["id"] == "../../etc/passwd"
    readers = [SOURCE / "data" / "sources.py", SOURCE / "metrics" / "files.py"]
    for path in readers:  # rows' values never reach open() / Path()
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"(open|Path)\(\s*(row|ex)\[", text), path


def test_models_load_without_remote_code(monkeypatch, tiny_mt5):
    from lorasum.models import load

    seen = []
    import transformers

    original = transformers.AutoConfig.from_pretrained

    def spy(*args, **kwargs):
        seen.append(kwargs.get("trust_remote_code", False))
        return original(*args, **kwargs)

    monkeypatch.setattr(transformers.AutoConfig, "from_pretrained", spy)
    load.load_model_config(str(tiny_mt5), None)
    assert seen and not any(seen)
