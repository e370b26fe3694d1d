"""generation.backend: ctranslate2 against the transformers backend on the same weights."""
import json
from pathlib import Path

import pytest
import torch

pytest.importorskip("ctranslate2")

from lorasum.backends import ctranslate2 as ct2  # noqa: E402
from lorasum.config import GenerationConfig  # noqa: E402
from lorasum.demo import DATA  # noqa: E402
from lorasum.errors import LorasumError  # noqa: E402
from lorasum.generate import generate_summaries  # noqa: E402
from lorasum.models.tiny import demo_model_path  # noqa: E402

# demo test articles, 6 per language: the pretrained demo mT5 writes real (template) summaries of them
ROWS = [r for r in map(json.loads, Path(DATA).read_text(encoding="utf-8").splitlines()) if r["split"] == "test"]
ROWS = [r for lang in ("en", "fr", "ru", "ar", "zh-CN") for r in [x for x in ROWS if x["lang"] == lang][:6]]
TEXTS, LANGS, GOLD = [r["text"] for r in ROWS], [r["lang"] for r in ROWS], [r["summary"] for r in ROWS]


def _both(model, tok, cache=None, **settings) -> tuple[list[str], list[str]]:
    cfg = GenerationConfig(max_source_length=128, max_target_length=48, batch_size=8, **settings)
    hf = generate_summaries(model, tok, TEXTS, cfg, langs=LANGS, progress=False)
    fast = ct2.generate_summaries(model, tok, TEXTS, cfg.model_copy(update={"backend": "ctranslate2"}), langs=LANGS,
                                  progress=False, cache=cache)
    return hf, fast


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The demo mT5 (pretrained, not fine-tuned) and a cache folder."""
    from lorasum.evaluate import load_for_inference

    model, tok, _ = load_for_inference(str(demo_model_path()))
    return model, tok, tmp_path_factory.mktemp("ct2-cache")


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory, tiny_run_config):
    """A LoRA run on the demo mT5, trained long enough to write article-specific summaries and
    evaluated by CTranslate2: (run folder, metrics, conversions made, cache folder)."""
    from lorasum.run import train_and_evaluate

    root = tmp_path_factory.mktemp("ct2-run")
    calls = []
    real_convert = ct2.convert
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LORASUM_CACHE", str(root / "cache"))
        mp.setattr(ct2, "convert", lambda *a, **k: calls.append(1) or real_convert(*a, **k))
        cfg = tiny_run_config(demo_model_path(), "lora", data__languages=["en", "fr", "ru", "ar", "zh-CN"],
                              data__train_examples=32, data__test_examples=2, training__lr=1e-2,
                              training__max_steps=12, training__batch_size=16, training__max_source_length=128,
                              training__max_target_length=64, training__checkpoint_every=50,
                              method__r=8, method__alpha=16, method__targets="attention+ffn",
                              generation__backend="ctranslate2", generation__num_beams=1,
                              generation__max_source_length=128, generation__max_target_length=48)
        metrics = train_and_evaluate(cfg, root / "run", progress=False)
    return root / "run", metrics, len(calls), root / "cache"


@pytest.fixture(scope="module")
def lora_model(lora_run):
    from lorasum.evaluate import load_for_inference

    model, tok, _ = load_for_inference(str(lora_run[0]))
    return model, tok


def _repeats(text: str, tok, n: int) -> bool:
    ids = tok(text, add_special_tokens=False)["input_ids"]
    grams = [tuple(ids[i:i + n]) for i in range(len(ids) - n + 1)]
    return len(grams) != len(set(grams))


@pytest.mark.parametrize("settings", [{"num_beams": 1},
                                      {"num_beams": 4, "length_penalty": 0.6, "no_repeat_ngram_size": 0}],
                         ids=["greedy", "beam4-lp0.6"])
def test_ctranslate2_decodes_a_lora_run_as_transformers_does(lora_run, lora_model, settings, monkeypatch):
    model, tok = lora_model
    monkeypatch.setenv("LORASUM_CACHE", str(lora_run[3]))
    hf, fast = _both(model, tok, **settings)
    agree = ct2.agreement(hf, fast, GOLD, LANGS)
    assert agree["identical"] >= 0.95 and abs(agree["rougeL_diff"]) < 0.5, agree
    assert agree["rougeL_reference"] > 30 and len(set(hf)) > len(hf) // 3  # article-specific summaries


def test_ctranslate2_blocks_repeated_ngrams(lora_run, lora_model, monkeypatch):
    """Blocking holds; CTranslate2 renormalizes the remaining tokens after the ban, so beams may differ."""
    model, tok = lora_model
    monkeypatch.setenv("LORASUM_CACHE", str(lora_run[3]))
    settings = {"num_beams": 4, "length_penalty": 0.6, "max_source_length": 128, "max_target_length": 48}
    unblocked = ct2.generate_summaries(model, tok, TEXTS, GenerationConfig(backend="ctranslate2",
                                                                           no_repeat_ngram_size=0, **settings),
                                       langs=LANGS, progress=False)
    assert any(_repeats(s, tok, 2) for s in unblocked)  # the check below has something to catch
    blocked = ct2.generate_summaries(model, tok, TEXTS, GenerationConfig(backend="ctranslate2",
                                                                         no_repeat_ngram_size=2, **settings),
                                     langs=LANGS, progress=False)
    assert not any(_repeats(s, tok, 2) for s in blocked)


def test_a_lora_run_is_merged_converted_once_and_recorded(lora_run, lora_model, monkeypatch):
    import ctranslate2

    from lorasum.evaluate import load_for_inference

    run, metrics, conversions, cache = lora_run
    assert metrics["generation"]["backend"] == "ctranslate2"
    assert metrics["generation"]["ctranslate2"]["version"] == ctranslate2.__version__
    assert metrics["generation"]["ctranslate2"]["compute_type"] == "float32"
    assert conversions == 1
    monkeypatch.setenv("LORASUM_CACHE", str(cache))
    calls = []
    real_convert = ct2.convert
    monkeypatch.setattr(ct2, "convert", lambda *a, **k: calls.append(1) or real_convert(*a, **k))

    model, tok = lora_model
    assert hasattr(model, "peft_config")
    gen = GenerationConfig(backend="ctranslate2", num_beams=1, max_source_length=128, max_target_length=48)
    fast = generate_summaries(model, tok, TEXTS, gen, langs=LANGS, progress=False)
    assert calls == []  # the weights the run was evaluated with, loaded again: the conversion is reused
    assert not any(getattr(m, "merged", False) for m in model.modules())  # the caller's model is left unmerged
    base, base_tok, _ = load_for_inference(str(demo_model_path()))
    assert generate_summaries(base, base_tok, TEXTS, gen, langs=LANGS, progress=False) != fast  # the adapter acts
    assert len(calls) == 1

    changed, _, _ = load_for_inference(str(run))
    with torch.no_grad():  # another adapter: new weights, new cache entry
        next(p for n, p in changed.named_parameters() if "lora_B" in n).add_(0.5)
    generate_summaries(changed, tok, TEXTS[:2], gen, langs=LANGS[:2], progress=False)
    assert len(calls) == 2
    assert len(list((cache / "ctranslate2").iterdir())) == 3


def test_a_conversion_finished_by_another_process_is_used(demo, tmp_path, monkeypatch):
    model, tok, _ = demo
    real_convert = ct2.convert
    key = ct2.weights_key(model, tok, "float32")

    def racing(m, t, out_dir, compute_type):
        real_convert(m, t, tmp_path / "cache" / key, compute_type)  # the other process renames first
        return real_convert(m, t, out_dir, compute_type)

    monkeypatch.setattr(ct2, "convert", racing)
    path = ct2.converted_model(model, tok, "float32", cache=tmp_path / "cache")
    assert path == tmp_path / "cache" / key and (path / "model.bin").is_file()
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [key]  # no temporary folder left behind


def test_settings_ctranslate2_cannot_reproduce_are_refused(demo, tiny_bart, tiny_run_config):
    from lorasum.config import parse_run_config
    from lorasum.evaluate import load_for_inference

    model, tok, cache = demo
    with pytest.raises(LorasumError, match=r"^generation\.backend: ctranslate2 decodes T5/mT5 models only; its n-gram"):
        generate_summaries(model, tok, TEXTS[:1], GenerationConfig(backend="ctranslate2"), is_decoder_only=True,
                           progress=False)
    bart, bart_tok, _ = load_for_inference(str(tiny_bart))
    with pytest.raises(LorasumError, match=r"^generation\.backend: ctranslate2 decodes T5/mT5 .*not bart\."):
        generate_summaries(bart, bart_tok, TEXTS[:1], GenerationConfig(backend="ctranslate2"), progress=False)
    with pytest.raises(LorasumError, match=r"^generation\.compute_type: float16 is not available on cpu"):
        ct2.generate_summaries(model, tok, TEXTS[:1], GenerationConfig(backend="ctranslate2", compute_type="float16"),
                               progress=False, cache=cache)
    cfg = tiny_run_config(demo_model_path(), "lora").to_dict()
    cfg["generation"]["compute_type"] = "int8"
    with pytest.raises(LorasumError, match=r"generation: compute_type applies to backend: ctranslate2"):
        parse_run_config(cfg, "run.yaml")


def test_the_default_backend_leaves_run_configs_and_their_hashes_as_before(tiny_run_config):
    from lorasum.study.cells import config_hash

    default = tiny_run_config(demo_model_path(), "lora")
    assert "backend" not in default.to_dict()["generation"] and "compute_type" not in default.to_dict()["generation"]
    fast = tiny_run_config(demo_model_path(), "lora", generation__backend="ctranslate2")
    assert fast.to_dict()["generation"]["backend"] == "ctranslate2"
    assert config_hash(fast) != config_hash(default)


def test_evaluate_command_takes_the_backend_flags(lora_run, monkeypatch, capsys):
    from lorasum.cli import main

    run, _, _, cache = lora_run
    monkeypatch.setenv("LORASUM_CACHE", str(cache))
    assert main(["evaluate", str(run), "--name", "hf", "--backend", "transformers", "--no-progress",
                 "--resamples", "20"]) == 0
    assert main(["evaluate", str(run), "--name", "int8", "--backend", "ctranslate2", "--compute-type", "int8",
                 "--no-progress", "--resamples", "20"]) == 0
    hf = json.loads((run / "evaluations" / "hf" / "metrics.json").read_text(encoding="utf-8"))["generation"]
    int8 = json.loads((run / "evaluations" / "int8" / "metrics.json").read_text(encoding="utf-8"))["generation"]
    assert hf["backend"] == "transformers" and "ctranslate2" not in hf
    assert int8["ctranslate2"]["compute_type"] == "int8" and int8["ctranslate2"]["options"]["beam_size"] == 1
    # the run itself was evaluated by ctranslate2 in float32: transformers wrote the same summaries
    assert (run / "evaluations" / "hf" / "predictions.jsonl").read_text(encoding="utf-8") == \
        (run / "predictions.jsonl").read_text(encoding="utf-8")
    assert main(["evaluate", str(run), "--backend", "transformers", "--compute-type", "int8", "--no-progress"]) == 2
    assert "compute_type applies to backend: ctranslate2" in capsys.readouterr().err
