"""Composition of LoRA adapters: exact weighted sums in weight space, refusals, learnt weights."""
import json

import pytest
import torch
from peft import PeftModel

from lora_factory import delta_weights, make_adapter
from lorasum.cli import main
from lorasum.compose import compose, learn_weights
from lorasum.errors import LorasumError
from lorasum.models.load import load_base


@pytest.fixture(scope="module")
def sources(tiny_mt5, tmp_path_factory):
    root = tmp_path_factory.mktemp("adapters")
    return {
        "en": make_adapter(tiny_mt5, root / "en", r=4, alpha=8, seed=1),
        "ru": make_adapter(tiny_mt5, root / "ru", r=2, alpha=16, seed=2),
        "fr": make_adapter(tiny_mt5, root / "fr", r=4, alpha=4, seed=3),
    }


def _deltas(base_dir, adapter_dir):
    model, _, _ = load_base(str(base_dir))
    return delta_weights(PeftModel.from_pretrained(model, str(adapter_dir)), "default")


def _weighted_sum(base_dir, adapters, weights):
    total = None
    for path, w in zip(adapters, weights):
        d = _deltas(base_dir, path)
        total = {k: w * v for k, v in d.items()} if total is None else {k: total[k] + w * v for k, v in d.items()}
    return total


@pytest.mark.parametrize("method, svd_rank", [("cat", None), ("svd", 6)])
def test_exact_methods_give_the_weighted_sum_of_updates(tiny_mt5, sources, tmp_path, method, svd_rank):
    weights = [0.7, -1.3]
    out = compose({"en": sources["en"], "ru": sources["ru"]}, weights, tmp_path / "mix", method=method,
                  svd_rank=svd_rank)
    got = _deltas(tiny_mt5, out)
    want = _weighted_sum(tiny_mt5, [sources["en"], sources["ru"]], weights)
    assert got.keys() == want.keys() and len(got) == 6  # q, v of encoder, decoder self- and cross-attention
    for k in want:
        assert torch.allclose(got[k], want[k], atol=1e-5), k
    meta = json.loads((out / "compose.json").read_text())
    assert meta["exact"] is True and meta["weights"] == {"en": 0.7, "ru": -1.3}


def test_linear_is_labelled_not_exact_and_is_not_the_weighted_sum(tiny_mt5, sources, tmp_path):
    weights = [0.9, -0.4]
    out = compose({"en": sources["en"], "fr": sources["fr"]}, weights, tmp_path / "lin", method="linear")
    got = _deltas(tiny_mt5, out)
    want = _weighted_sum(tiny_mt5, [sources["en"], sources["fr"]], weights)
    assert json.loads((out / "compose.json").read_text())["exact"] is False
    assert not all(torch.allclose(got[k], want[k], atol=1e-3) for k in want)


def test_one_adapter_at_weight_one_reproduces_itself(tiny_mt5, sources, tmp_path):
    from lorasum.config import GenerationConfig
    from lorasum.evaluate import load_for_inference
    from lorasum.generate import generate_summaries

    out = compose({"en": sources["en"]}, [1.0], tmp_path / "self", method="cat")
    got, want = _deltas(tiny_mt5, out), _deltas(tiny_mt5, sources["en"])
    for k in want:
        assert torch.allclose(got[k], want[k], atol=1e-6), k
    gen = GenerationConfig(num_beams=2, max_target_length=12, max_source_length=64, batch_size=4)
    texts = ["The council met on Monday to vote on the budget.", "Rain is expected across the north."]
    summaries = []
    for adapter in (sources["en"], out):
        m, tok, fam = load_for_inference(str(tiny_mt5), str(adapter))
        summaries.append(generate_summaries(m, tok, texts, gen, progress=False))
    base_m, tok, _ = load_for_inference(str(tiny_mt5))
    assert summaries[0] == summaries[1]
    assert generate_summaries(base_m, tok, texts, gen, progress=False) != summaries[0]  # the adapter acts


def test_refuses_adapters_it_cannot_compose_exactly(tiny_mt5, tiny_bart, sources, tmp_path):
    other_base = make_adapter(tiny_bart, tmp_path / "bart", targets=("q_proj",))
    other_targets = make_adapter(tiny_mt5, tmp_path / "qk", targets=("q", "k"))
    rslora = make_adapter(tiny_mt5, tmp_path / "rs", use_rslora=True)
    dora = make_adapter(tiny_mt5, tmp_path / "dora", use_dora=True)
    cases = [(other_base, "was trained on base"), (other_targets, "targets modules"),
             (rslora, "use_rslora"), (dora, "use_dora")]
    for path, needle in cases:
        with pytest.raises(LorasumError, match=needle):
            compose({"en": sources["en"], "x": path}, [0.5, 0.5], tmp_path / "out")
    cfg_path = tmp_path / "hub" / "adapter_config.json"
    cfg_path.parent.mkdir()
    cfg = json.loads((sources["ru"] / "adapter_config.json").read_text())
    cfg_path.write_text(json.dumps({**cfg, "base_model_name_or_path": "google/mt5-small"}))
    with pytest.raises(LorasumError, match="local folder and the other a hub id"):
        compose({"en": sources["en"], "x": cfg_path.parent}, [0.5, 0.5], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_learned_weights_favour_the_adapter_that_fits_the_examples(tiny_mt5, tmp_path):
    from lorasum.evaluate import load_for_inference

    # the tiny model's logits are near zero whatever attention does; adapting lm_head makes A's effect strong
    targets = ("q", "v", "wo", "lm_head")
    a = make_adapter(tiny_mt5, tmp_path / "a", seed=11, scale=1.0, targets=targets)
    b = make_adapter(tiny_mt5, tmp_path / "b", seed=12, scale=1.0, targets=targets)
    texts = [f"Report number {i}: the river rose by {i * 3} centimetres near the old bridge." for i in range(8)]
    m, tok, _ = load_for_inference(str(tiny_mt5), str(a))
    # A's greedy output restricted to printable ASCII bytes (ids 35..129), so the text tokenizes back to it
    ascii_only = [i for i in range(384) if not 35 <= i <= 129]
    with torch.no_grad():
        ids = m.generate(**tok(texts, return_tensors="pt", padding=True), do_sample=False, num_beams=1,
                         max_new_tokens=16, min_new_tokens=16, suppress_tokens=ascii_only)
    targets = tok.batch_decode(ids, skip_special_tokens=True)
    assert all(targets)
    examples = tmp_path / "target.jsonl"
    examples.write_text("".join(json.dumps({"text": t, "summary": s}) + "\n" for t, s in zip(texts, targets)))
    record = learn_weights({"a": a, "b": b}, examples, tmp_path / "learned", k=8, budget=30, seed=0,
                           max_source_length=64, max_target_length=16)
    w = record["weights"]
    assert w["a"] > 0.5 and w["a"] > abs(w["b"]) + 0.3, w
    saved = json.loads((tmp_path / "learned" / "learned_weights.json").read_text())
    assert saved["evaluations"] == len(saved["curve"]) == 30
    assert min(c["objective"] for c in saved["curve"]) < saved["curve"][0]["objective"]
    composed = _deltas(tiny_mt5, tmp_path / "learned")
    want = _weighted_sum(tiny_mt5, [a, b], [w["a"], w["b"]])
    assert all(torch.allclose(composed[k], want[k], atol=1e-5) for k in want)


def test_compose_command_writes_a_plain_peft_adapter(tiny_mt5, sources, tmp_path, capsys):
    out = tmp_path / "cli"
    assert main(["compose", "--adapters", f"en={sources['en']}", f"ru={sources['ru']}", "--weights", "0.5", "0.5",
                 "--method", "cat", "--out", str(out)]) == 0
    model, _, _ = load_base(str(tiny_mt5))
    assert PeftModel.from_pretrained(model, str(out)).peft_config["default"].r == 6
    assert main(["compose", "--adapters", f"en={sources['en']}", "--weights", "0.5", "0.5", "--out",
                 str(tmp_path / "bad")]) == 2
    assert "one per adapter" in capsys.readouterr().err
