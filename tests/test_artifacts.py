"""What travels with an adapter: its card (Hub front matter, licence, usage), its inference
settings, and the upload to the Hub (against a fake of HfApi, never the network)."""
import json

import pytest
import yaml

from lorasum.artifact import dataset_licence, inference_settings
from lorasum.card import write_model_card
from lorasum.cli import main
from lorasum.errors import LorasumError


def _front_matter(text):
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory, tiny_mt5):
    from tests.conftest import _tiny_run_config
    from lorasum.run import train_and_evaluate

    run = tmp_path_factory.mktemp("runs") / "lora"
    train_and_evaluate(_tiny_run_config(tiny_mt5, "lora", training__max_steps=2), run, progress=False)
    return run


@pytest.mark.slow
def test_adapter_folder_carries_card_and_settings(lora_run, tiny_mt5):
    card = (lora_run / "adapter" / "README.md").read_text(encoding="utf-8")
    assert card == (lora_run / "README.md").read_text(encoding="utf-8")
    meta = _front_matter(card)
    assert meta["library_name"] == "peft" and meta["base_model"] == str(tiny_mt5)
    assert meta["license"] == "other" and "local data" in card  # the demo file, not XL-Sum
    assert "CC BY-NC-SA" not in card
    assert set(meta["language"]) == {"en", "ru"}
    metrics = json.loads((lora_run / "metrics.json").read_text(encoding="utf-8"))
    values = {m["type"]: m["value"] for m in meta["model-index"][0]["results"][0]["metrics"]}
    assert values["rougeL"] == round(metrics["rouge"]["overall"]["rougeL"]["mean"], 2)
    saved = json.loads((lora_run / "adapter" / "lorasum.json").read_text(encoding="utf-8"))
    assert saved["generation"]["num_beams"] == 2 and saved["generation"]["max_target_length"] == 8


@pytest.mark.slow
def test_summarize_with_the_adapter_alone_matches_the_run_evaluation(lora_run, tiny_mt5):
    from lorasum.demo import DATA
    from lorasum.evaluate import summarize

    texts = {r["id"]: r["text"] for r in map(json.loads, DATA.read_text(encoding="utf-8").splitlines())}
    preds = [json.loads(line) for line in (lora_run / "predictions.jsonl").read_text(encoding="utf-8").splitlines()]
    en = [p for p in preds if p["lang"] == "en"]
    # the base model folder has no run config: decoding settings come from adapter/lorasum.json
    got = summarize(str(tiny_mt5), [texts[p["id"]] for p in en], "en", adapter=str(lora_run / "adapter"))
    assert got == [p["prediction"] for p in en]


def test_settings_fall_back_to_defaults_and_reject_broken_files(tmp_path):
    prompt, gen = inference_settings(str(tmp_path / "model"), str(tmp_path))
    assert gen.num_beams == 4 and "{text}" in prompt
    (tmp_path / "lorasum.json").write_text("{}", encoding="utf-8")
    with pytest.raises(LorasumError, match="not a lorasum settings file"):
        inference_settings(str(tmp_path / "model"), str(tmp_path))


def test_licence_of_known_and_unknown_sources(tmp_path):
    assert dataset_licence("csebuetnlp/xlsum")[0] == "cc-by-nc-sa-4.0"
    assert dataset_licence("someone/news")[1] == "see the dataset card of someone/news for its licence"
    assert dataset_licence(str(tmp_path))[0] == "other"


def test_decoder_card_uses_causal_lm_and_shows_the_prompt(tmp_path, tiny_run_config, tiny_mt5):
    cfg = tiny_run_config(tiny_mt5, "lora", data__source="csebuetnlp/xlsum")
    (tmp_path / "adapter").mkdir()
    stat = {"mean": 20.0, "mean_ci": [18.0, 22.0]}
    metrics = {"run": {"family": "decoder"},
               "rouge": {"overall": {"n": 6, "rouge1": stat, "rouge2": stat, "rougeL": stat}, "per_lang": {}},
               "efficiency": {"trainable_params": 10, "total_params": 100, "trainable_share": 0.1, "artifact_mb": 1.0,
                              "train_steps": 4, "train_seconds": 1.0, "train_tokens_per_second": 10.0}}
    write_model_card(tmp_path, cfg, metrics)
    card = (tmp_path / "adapter" / "README.md").read_text(encoding="utf-8")
    assert "AutoModelForCausalLM" in card and "AutoModelForSeq2SeqLM" not in card
    assert cfg.model.prompt_template in card
    meta = _front_matter(card)
    assert meta["license"] == "cc-by-nc-sa-4.0" and meta["pipeline_tag"] == "text-generation"
    assert "CC BY-NC-SA 4.0" in card


class FakeHub:
    def __init__(self):
        self.calls = []

    def create_repo(self, **kw):
        self.calls.append(("create_repo", kw))
        return f"http://hub.local/{kw['repo_id']}"

    def upload_folder(self, **kw):
        from pathlib import Path

        self.calls.append(("upload_folder", {**kw, "files": sorted(p.name for p in Path(kw["folder_path"]).iterdir())}))


@pytest.mark.slow
def test_push_uploads_the_adapter_with_its_card(lora_run, monkeypatch, capsys):
    import huggingface_hub

    hub = FakeHub()
    monkeypatch.setattr(huggingface_hub, "HfApi", lambda token=None: hub)
    assert main(["push", str(lora_run), "--repo", "me/tiny-lora", "--private"]) == 0
    (name, create), (name2, upload) = hub.calls
    assert (name, name2) == ("create_repo", "upload_folder")
    assert create["repo_id"] == "me/tiny-lora" and create["private"] is True
    assert upload["folder_path"] == str(lora_run / "adapter")
    assert {"README.md", "adapter_config.json", "lorasum.json"} <= set(upload["files"])
    assert "http://hub.local/me/tiny-lora" in capsys.readouterr().out


def test_push_errors_are_one_line(tmp_path, capsys):
    assert main(["push", str(tmp_path / "none"), "--repo", "me/x"]) == 2
    assert "run folder not found" in capsys.readouterr().err
    assert main(["push", str(tmp_path), "--repo", "me/x"]) == 2
    assert "no trained" in capsys.readouterr().err
