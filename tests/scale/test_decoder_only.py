"""Decoder-only summarization end to end with a tiny local Llama: what a study cell runs."""
import json

import pytest
import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer

from lorasum.data.causal import prompt_ids
from lorasum.run import train_and_evaluate

pytestmark = pytest.mark.slow
# room for the instruction (about 55 byte tokens) and some of the article
LONGER_PROMPTS = {"training__max_source_length": 160, "generation__max_source_length": 160}


def _prompt_logits(model, tok):
    [ids] = prompt_ids(tok, ["Police in Leeds closed the area around the bridge."], ["en"], max_source_length=64,
                       prompt_template="Summarize the following {lang_name} article.\n\n{text}\n\nSummary:")
    with torch.no_grad():
        return model(input_ids=torch.tensor([ids])).logits


def test_decoder_lora_run_targets_llama_modules_and_adapter_reloads_with_plain_peft(tiny_llama, tiny_run_config, tmp_path):
    run = tmp_path / "lora"
    cfg = tiny_run_config(tiny_llama, "lora", method__targets="attention+ffn", **LONGER_PROMPTS)
    metrics = train_and_evaluate(cfg, run, progress=False)
    assert metrics["run"]["family"] == "decoder" and metrics["efficiency"]["train_steps"] == 4
    assert metrics["rouge"]["overall"]["n"] == 6
    decoding = metrics["generation"]["transformers"]  # the complete settings the summaries were decoded with
    assert decoding["do_sample"] is False and (decoding["num_beams"], decoding["max_new_tokens"]) == (2, 8)
    assert metrics["generation"]["no_repeat_ngram_scope"] == "generated tokens"
    losses = metrics["losses"]
    assert losses["final_train_loss"] > 0 and losses["final_validation_loss"] > 0
    adapter_cfg = json.loads((run / "adapter" / "adapter_config.json").read_text())
    assert set(adapter_cfg["target_modules"]) == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                                                  "down_proj"}
    assert adapter_cfg["task_type"] == "CAUSAL_LM"
    rows = [json.loads(line) for line in (run / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 6 and all("Summary:" not in r["prediction"] for r in rows)  # only new tokens decoded

    tok = AutoTokenizer.from_pretrained(tiny_llama)
    base = AutoModelForCausalLM.from_pretrained(tiny_llama).eval()
    tuned = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_llama), run / "adapter").eval()
    assert not torch.allclose(_prompt_logits(base, tok), _prompt_logits(tuned, tok), atol=1e-4), \
        "the adapter did not change the outputs"


def test_decoder_full_run_trains_on_summary_tokens_and_saves_a_model(tiny_llama, tiny_run_config, tmp_path):
    cfg = tiny_run_config(tiny_llama, "full", training__lr=3e-3, training__max_steps=6, **LONGER_PROMPTS)
    metrics = train_and_evaluate(cfg, tmp_path / "full", progress=False)
    assert metrics["efficiency"]["trainable_share"] == 1.0
    history = [h["train_loss"] for h in json.loads((tmp_path / "full" / "train_result.json").read_text())["history"]
               if "train_loss" in h]
    assert history[-1] < history[0], history  # learning the summaries, not diverging
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "full" / "model")
    base = AutoModelForCausalLM.from_pretrained(tiny_llama)
    assert not torch.allclose(model.lm_head.weight, base.lm_head.weight)
