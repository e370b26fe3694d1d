"""Merged export: a standalone model that plain transformers loads and that decodes like base + adapter."""
import pytest
import torch
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

from lora_factory import make_adapter
from lorasum.cli import main
from lorasum.io import write_yaml

TEXTS = ["The council met on Monday to vote on the new budget for schools.",
         "Heavy rain is expected across the north of the country this weekend.",
         "A short one."]


def _ids(model, tok, num_beams):
    batch = tok(TEXTS, return_tensors="pt", padding=True)
    with torch.no_grad():
        # a random model predicts pad everywhere; banning it makes the outputs tell models apart
        return model.generate(**batch, num_beams=num_beams, max_new_tokens=12, do_sample=False, suppress_tokens=[0])


@pytest.mark.parametrize("num_beams", [1, 4])
def test_merged_model_loads_without_peft_and_generates_the_same_ids(tiny_mt5, tiny_run_config, tmp_path, num_beams):
    from lorasum.evaluate import load_for_inference

    run = tmp_path / "run"
    make_adapter(tiny_mt5, run / "adapter", seed=5, scale=1.0, targets=("q", "v", "wi_0", "wi_1", "wo"))
    write_yaml(run / "config.yaml", tiny_run_config(tiny_mt5, "lora").to_dict())
    out = tmp_path / "merged"
    assert main(["merge", str(run), "--out", str(out)]) == 0
    assert (out / "model.safetensors").exists() and not list(out.glob("*.bin"))
    assert not (out / "adapter_config.json").exists()

    merged = AutoModelForSeq2SeqLM.from_pretrained(out).eval()
    tok = AutoTokenizer.from_pretrained(out)
    assert not any("lora" in n for n, _ in merged.named_parameters())
    peft_model, peft_tok, _ = load_for_inference(str(run))
    want = _ids(peft_model, peft_tok, num_beams)
    assert torch.equal(_ids(merged, tok, num_beams), want)
    base, base_tok, _ = load_for_inference(str(tiny_mt5))
    assert not torch.equal(_ids(base, base_tok, num_beams), want)  # the adapter changes the output


def test_merge_refuses_a_folder_without_adapter(tiny_mt5, tmp_path, capsys):
    assert main(["merge", str(tiny_mt5), "--out", str(tmp_path / "m")]) == 2
    assert "no LoRA adapter here" in capsys.readouterr().err


def test_merge_refuses_an_adapter_on_a_tied_output_layer(tiny_mt5, tmp_path, capsys):
    adapter = make_adapter(tiny_mt5, tmp_path / "tied", targets=("q", "lm_head"))
    assert main(["merge", str(adapter), "--out", str(tmp_path / "m")]) == 2
    assert "ties to its input embeddings" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()
