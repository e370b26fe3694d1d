import pytest

from lorasum.config import load_run_config, parse_run_config
from lorasum.errors import LorasumError
from lorasum.languages import normalize_lang, xlsum_config_name


def test_defaults_follow_xlsum_generation_settings():
    cfg = parse_run_config({})
    g = cfg.generation
    assert (g.num_beams, g.length_penalty, g.no_repeat_ngram_size) == (4, 0.6, 2)
    assert (g.max_source_length, g.max_target_length) == (512, 84)
    assert cfg.model.name == "google/mt5-small"


def test_shorthands_for_model_and_method():
    cfg = parse_run_config({"model": "some/model", "method": "full"})
    assert cfg.model.name == "some/model" and cfg.method.name == "full"
    lora = parse_run_config({"method": {"name": "lora", "r": 16, "targets": "attention+ffn"}}).method
    assert (lora.r, lora.targets) == (16, "attention+ffn")


@pytest.mark.parametrize("data, needle", [
    ({"trainig": {}}, "run.yaml: trainig: unknown field"),
    ({"training": {"lr": -1}}, "run.yaml: training.lr:"),
    ({"training": {"precision": "fp8"}}, "run.yaml: training.precision:"),
    ({"method": {"name": "lora", "rank": 8}}, "run.yaml: method.rank: unknown field"),
    ({"method": "prefix"}, "run.yaml: method: method must be 'full' or 'lora'"),
    ({"data": {"languages": ["klingon"]}}, "run.yaml: data.languages: unknown language 'klingon'"),
    ({"method": {"name": "lora", "targets": []}}, "run.yaml: method.targets:"),
])
def test_validation_errors_name_file_and_field(data, needle):
    with pytest.raises(LorasumError) as err:
        parse_run_config(data, "run.yaml")
    assert needle in str(err.value)


def test_yaml_file_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [unclosed\n")
    with pytest.raises(LorasumError, match="bad.yaml:.*not valid YAML"):
        load_run_config(bad)
    with pytest.raises(LorasumError, match="config file not found"):
        load_run_config(tmp_path / "missing.yaml")
    ok = tmp_path / "ok.yaml"
    ok.write_text("model: google/mt5-small\ndata:\n  languages: [english, chinese_simplified]\nmethod: full\n")
    assert load_run_config(ok).data.languages == ["en", "zh-CN"]


@pytest.mark.parametrize("given, code", [
    ("english", "en"), ("EN", "en"), ("russian", "ru"), ("chinese_simplified", "zh-CN"), ("zh-cn", "zh-CN"),
    ("serbian_latin", "sr-Latn"), ("sr_cyrl", "sr-Cyrl"), ("pidgin", "pcm"), ("de", "de"),
])
def test_language_codes_and_names(given, code):
    assert normalize_lang(given) == code


def test_unknown_language_lists_accepted_codes():
    with pytest.raises(LorasumError, match="accepted codes: .*zh-CN"):
        normalize_lang("xx")


def test_hub_config_names():
    assert xlsum_config_name("zh-TW") == "chinese_traditional"
    assert xlsum_config_name("english") == "english"
    with pytest.raises(LorasumError, match="not part of XL-Sum"):
        xlsum_config_name("de")


def test_test_languages_default_to_training_languages():
    cfg = parse_run_config({"data": {"languages": ["en"], "test_languages": ["ukrainian"]}})
    assert cfg.data.eval_languages == ["uk"]
    assert parse_run_config({"data": {"languages": ["en", "ru"]}}).data.eval_languages == ["en", "ru"]


def test_shipped_example_configs_validate():
    from pathlib import Path

    examples = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.yaml"))
    assert examples
    for path in examples:
        load_run_config(path)
