"""Tiny full and LoRA runs through the same code path users take: train, save, reload, generate, score."""
import json
from pathlib import Path

import pytest
import torch
from peft import PeftModel
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

from lorasum.run import train_and_evaluate
from lorasum.train import Trainer

pytestmark = pytest.mark.slow


def test_lora_run_writes_everything_and_adapter_loads_with_plain_peft(tiny_run_config, tiny_mt5, tmp_path):
    run = tmp_path / "lora"
    metrics = train_and_evaluate(tiny_run_config(tiny_mt5, "lora"), run, progress=False)
    for name in ("config.yaml", "metrics.json", "predictions.jsonl", "README.md", "adapter/adapter_config.json"):
        assert (run / name).exists(), name
    assert list((run / "logs").glob("events.out.tfevents*"))
    eff = metrics["efficiency"]
    assert 0 < eff["trainable_share"] < 0.5 and eff["train_steps"] == 4
    # the artifact size is the adapter's weights alone; tokenizer files are counted apart
    assert eff["artifact_bytes"] == (run / "adapter" / "adapter_model.safetensors").stat().st_size
    tok_files = [Path(p).name for p in AutoTokenizer.from_pretrained(tiny_mt5).save_pretrained(tmp_path / "tok")]
    assert eff["tokenizer_bytes"] == sum((run / "adapter" / f).stat().st_size for f in tok_files) > 0
    assert eff["train_tokens_per_second"] > 0 and eff["peak_memory_mb"] > 0
    assert set(metrics["rouge"]["per_lang"]) == {"en", "ru"} and metrics["rouge"]["overall"]["n"] == 6
    rows = [json.loads(line) for line in (run / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 6 and {"id", "lang", "reference", "prediction"} <= set(rows[0])

    tok = AutoTokenizer.from_pretrained(tiny_mt5)
    base = AutoModelForSeq2SeqLM.from_pretrained(tiny_mt5).eval()
    x = tok(["Police in Leeds closed the area around the bridge."], return_tensors="pt")
    with torch.no_grad():
        base_logits = base(**x, decoder_input_ids=torch.zeros((1, 3), dtype=torch.long)).logits
        tuned = PeftModel.from_pretrained(AutoModelForSeq2SeqLM.from_pretrained(tiny_mt5), run / "adapter").eval()
        tuned_logits = tuned(**x, decoder_input_ids=torch.zeros((1, 3), dtype=torch.long)).logits
    assert not torch.allclose(base_logits, tuned_logits, atol=1e-4), "the adapter did not change the outputs"

    # a second call on a complete run folder returns the same metrics without training
    assert train_and_evaluate(tiny_run_config(tiny_mt5, "lora"), run, progress=False) == metrics


def test_full_run_saves_a_from_pretrained_model(tiny_run_config, tiny_mt5, tmp_path):
    run = tmp_path / "full"
    metrics = train_and_evaluate(tiny_run_config(tiny_mt5, "full"), run, progress=False)
    assert metrics["efficiency"]["trainable_share"] == 1.0
    weights = list((run / "model").glob("model*.safetensors"))
    assert weights and metrics["efficiency"]["artifact_bytes"] == sum(p.stat().st_size for p in weights)
    model = AutoModelForSeq2SeqLM.from_pretrained(run / "model")
    base = AutoModelForSeq2SeqLM.from_pretrained(tiny_mt5)
    assert not torch.allclose(model.shared.weight, base.shared.weight)


def test_resume_after_interruption_matches_uninterrupted_run(tiny_run_config, tiny_mt5, tmp_path, monkeypatch):
    # 8 examples in batches of 4: six steps cross three epochs; the crash comes mid-epoch, after step 3
    cfg = tiny_run_config(tiny_mt5, "lora", method__dropout=0.1, data__train_examples=4, training__max_steps=6,
                          training__checkpoint_every=3)
    reference = train_and_evaluate(cfg, tmp_path / "straight", progress=False)

    original = Trainer.save_checkpoint

    def crash_after_first_checkpoint(self):
        original(self)
        raise KeyboardInterrupt("simulated interruption")

    monkeypatch.setattr(Trainer, "save_checkpoint", crash_after_first_checkpoint)
    with pytest.raises(KeyboardInterrupt):
        train_and_evaluate(cfg, tmp_path / "resumed", progress=False)
    assert not (tmp_path / "resumed" / "metrics.json").exists()
    assert (tmp_path / "resumed" / "checkpoints" / "step-0000003" / "state.json").exists()
    monkeypatch.setattr(Trainer, "save_checkpoint", original)
    resumed = train_and_evaluate(cfg, tmp_path / "resumed", progress=False)

    a = torch.load(tmp_path / "straight" / "checkpoints" / "step-0000006" / "trainable.pt")
    b = torch.load(tmp_path / "resumed" / "checkpoints" / "step-0000006" / "trainable.pt")
    assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    assert resumed["rouge"] == reference["rouge"]
    assert resumed["losses"]["final_train_loss"] == pytest.approx(reference["losses"]["final_train_loss"], rel=1e-5)


def test_changed_config_in_existing_run_folder_is_refused(tiny_run_config, tiny_mt5, tmp_path):
    from lorasum.errors import LorasumError

    train_and_evaluate(tiny_run_config(tiny_mt5, "lora"), tmp_path / "r", progress=False)
    with pytest.raises(LorasumError, match="different config"):
        train_and_evaluate(tiny_run_config(tiny_mt5, "lora", training__lr=0.5), tmp_path / "r", progress=False)


def test_interrupted_evaluation_reuses_the_saved_artifact(tiny_run_config, tiny_mt5, tmp_path, monkeypatch):
    cfg = tiny_run_config(tiny_mt5, "lora")
    first = train_and_evaluate(cfg, tmp_path / "r", progress=False)
    (tmp_path / "r" / "metrics.json").unlink()  # as if killed after saving the adapter, before scoring

    def no_training(self):
        raise AssertionError("trained again although the adapter was saved")

    monkeypatch.setattr(Trainer, "train", no_training)
    again = train_and_evaluate(cfg, tmp_path / "r", progress=False)
    assert again["rouge"] == first["rouge"] and again["efficiency"]["trainable_params"] == \
        first["efficiency"]["trainable_params"]
