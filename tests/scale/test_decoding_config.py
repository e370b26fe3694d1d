"""Decoding is lorasum's alone: a checkpoint's own generation settings never change the summaries."""
import json
import shutil

import pytest
import torch

from lorasum.config import DataConfig, GenerationConfig
from lorasum.evaluate import evaluate, load_for_inference
from lorasum.generate import generate_summaries

from .conftest import COPY_EXAMPLES, COPY_TEMPLATE

pytestmark = pytest.mark.slow  # trains a tiny model (once per session)

TEXTS = [ex["text"] for ex in COPY_EXAMPLES]
LANGS = [ex["lang"] for ex in COPY_EXAMPLES]


def _summaries(model_dir, **gen):
    model, tok, _ = load_for_inference(str(model_dir))
    cfg = GenerationConfig(**{"max_source_length": 200, "max_target_length": 24, "batch_size": 3, **gen})
    return generate_summaries(model, tok, TEXTS, cfg, langs=LANGS, is_decoder_only=True,
                              prompt_template=COPY_TEMPLATE, progress=False)


def _shipping_sampling_settings(model_dir, out_dir):
    """A copy of ``model_dir`` whose generation_config.json asks for sampling, penalties and suppressed tokens."""
    shutil.copytree(model_dir, out_dir)
    path = out_dir / "generation_config.json"
    settings = json.loads(path.read_text())
    first_letters = sorted({ord(ex["summary"][0]) + 3 for ex in COPY_EXAMPLES})  # byte ids: byte + 3
    settings.update(do_sample=True, top_k=5, temperature=2.0, repetition_penalty=3.0, min_length=20,
                    min_new_tokens=20, suppress_tokens=first_letters)
    path.write_text(json.dumps(settings))
    return out_dir


def test_a_checkpoints_sampling_settings_do_not_change_the_summaries(copying_llama, tmp_path):
    shipped = _shipping_sampling_settings(copying_llama, tmp_path / "shipped")
    for num_beams in (1, 2):
        clean = _summaries(copying_llama, num_beams=num_beams)
        assert clean == [ex["summary"] for ex in COPY_EXAMPLES]
        for seed in range(4):
            torch.manual_seed(seed)
            assert _summaries(shipped, num_beams=num_beams) == clean, (num_beams, seed)
    # the shipped settings are real: transformers' own generate follows them
    model, tok, _ = load_for_inference(str(shipped))
    torch.manual_seed(0)
    prompt = tok(["Summarize: Anna won the race.\nSummary:"], add_special_tokens=False, return_tensors="pt")
    with torch.inference_mode():
        plain = tok.decode(model.generate(**prompt, max_new_tokens=24)[0, prompt["input_ids"].shape[1]:],
                           skip_special_tokens=True)
    assert not plain.startswith("Anna")
    assert model.generation_config.do_sample is True  # and generating left the model's own config in place


def test_metrics_record_the_complete_decoding_settings(copying_llama, tmp_path):
    shipped = _shipping_sampling_settings(copying_llama, tmp_path / "shipped")
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps({**ex, "split": "test"}) + "\n" for ex in COPY_EXAMPLES))
    metrics = evaluate(str(shipped), DataConfig(source=str(data), languages=["en", "fr"]), tmp_path / "eval",
                       generation=GenerationConfig(max_target_length=8, max_source_length=200), progress=False,
                       resamples=10)
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text())["generation"] == metrics["generation"]
    gen = metrics["generation"]
    assert gen["no_repeat_ngram_size"] == 2 and gen["no_repeat_ngram_scope"] == "generated tokens"
    decoding = gen["transformers"]
    assert decoding["do_sample"] is False and decoding["early_stopping"] is False
    assert (decoding["num_beams"], decoding["length_penalty"], decoding["max_new_tokens"]) == (4, 0.6, 8)
    assert (decoding["repetition_penalty"], decoding["min_length"]) == (1.0, 0)
    assert (decoding["eos_token_id"], decoding["pad_token_id"]) == (1, 0)
    assert not {"top_k", "temperature", "min_new_tokens", "suppress_tokens"} & set(decoding)
