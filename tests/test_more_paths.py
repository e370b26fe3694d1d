"""Hub loading (with the hub replaced by a fake), evaluate on a run folder, early stopping."""
import json

import pytest

from lorasum.cli import main
from lorasum.config import DataConfig
from lorasum.data.sources import load_examples


def test_hub_xlsum_uses_language_config_names(monkeypatch):
    import datasets

    calls = []

    def fake_load_dataset(path, name, split, streaming=False):
        assert streaming  # rows one at a time: a sample never holds the corpus
        calls.append((path, name, split))
        return [{"id": "1", "text": "t", "summary": "s"}, {"id": "2", "text": "", "summary": "s"}]

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    out = load_examples(DataConfig(languages=["english", "zh-CN"]), "validation", ["en", "zh-CN"])
    assert calls == [("csebuetnlp/xlsum", "english", "validation"),
                     ("csebuetnlp/xlsum", "chinese_simplified", "validation")]
    assert out["zh-CN"] == [{"id": "1", "lang": "zh-CN", "text": "t", "summary": "s", "summary_lang": "zh-CN"}]


def test_hub_failure_is_a_clear_error(monkeypatch):
    import datasets

    from lorasum.errors import LorasumError

    def offline(*a, **k):
        raise ConnectionError("no network")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(LorasumError, match="could not load csebuetnlp/xlsum config 'russian'.*local JSONL"):
        load_examples(DataConfig(languages=["ru"]), "train", ["ru"])


@pytest.mark.slow
def test_evaluate_a_run_folder_with_paired_test(tiny_run_config, tiny_mt5, tmp_path, capsys):
    from lorasum.demo import DATA
    from lorasum.run import train_and_evaluate

    train_and_evaluate(tiny_run_config(tiny_mt5, "lora"), tmp_path / "run", progress=False)
    code = main(["evaluate", str(tmp_path / "run"), "--data", str(DATA), "--lang", "fr", "--test-examples", "2",
                 "--resamples", "50", "-o", str(tmp_path / "ev"), "--no-progress"])
    assert code == 0
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert metrics["test_examples"] == {"fr": 2} and set(metrics["rouge"]["per_lang"]) == {"fr"}
    code = main(["evaluate", str(tmp_path / "run"), "--data", str(DATA), "--lang", "fr", "--test-examples", "2",
                 "--resamples", "50", "-o", str(tmp_path / "ev2"), "--no-progress",
                 "--against", str(tmp_path / "ev" / "predictions.jsonl")])
    assert code == 0
    paired = json.loads((tmp_path / "ev2" / "metrics.json").read_text())["paired_test"]
    assert paired["overall"]["rougeL"]["diff"] == 0  # same model and settings: same predictions


@pytest.mark.slow
def test_early_stopping_stops_and_restores_best(tiny_run_config, tiny_mt5, tmp_path):
    from lorasum.run import train_and_evaluate

    # a huge learning rate makes the validation loss rise after the first evaluation
    cfg = tiny_run_config(tiny_mt5, "full", training__lr=5.0, training__max_steps=12, training__eval_every=1,
                          training__early_stopping_patience=2, training__max_grad_norm=None)
    metrics = train_and_evaluate(cfg, tmp_path / "run", progress=False)
    losses = metrics["losses"]
    assert losses["stopped_early"] and metrics["efficiency"]["train_steps"] < 12
    assert losses["best_validation_loss"] < losses["final_validation_loss"]
    # the saved model holds the best evaluation's weights, not the last step's
    import torch
    from transformers import AutoModelForSeq2SeqLM

    saved = dict(AutoModelForSeq2SeqLM.from_pretrained(tmp_path / "run" / "model").named_parameters())
    best = torch.load(tmp_path / "run" / "checkpoints" / "best.pt")
    last = torch.load(max((tmp_path / "run" / "checkpoints").glob("step-*")) / "trainable.pt")
    assert all(torch.equal(saved[k], best[k]) for k in best)
    assert any(not torch.equal(saved[k], last[k]) for k in last)
