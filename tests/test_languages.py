"""Any BCP-47 language tag is a language; XL-Sum codes and names keep their meaning."""
from __future__ import annotations

import pytest

from lorasum.config import parse_run_config
from lorasum.data.causal import lang_name
from lorasum.errors import LorasumError
from lorasum.languages import base_name, normalize_lang


@pytest.mark.parametrize("given, code", [
    ("it", "it"), ("nl", "nl"), ("pl", "pl"), ("pt-BR", "pt-BR"), ("pt_br", "pt-BR"), ("zh-Hant", "zh-Hant"),
    ("iw", "he"), ("en", "en"), ("english", "en"), ("zh-cn", "zh-CN"), ("sr_latn", "sr-Latn"),
])
def test_bcp47_tags_are_accepted_in_standard_form(given, code):
    assert normalize_lang(given) == code


@pytest.mark.parametrize("bad", ["xx", "english!", "x-private", "und", "", "it-ZZZZZ"])
def test_malformed_or_unregistered_tags_are_clear_errors(bad):
    with pytest.raises(LorasumError, match="not a registered BCP-47 tag"):
        normalize_lang(bad, "data.languages")


def test_config_accepts_any_language_and_names_the_field_on_error():
    cfg = parse_run_config({"data": {"languages": ["it", "pl", "pt-BR"]}})
    assert cfg.data.languages == ["it", "pl", "pt-BR"]
    with pytest.raises(LorasumError, match="run.yaml: data.languages: unknown language 'klingon!'"):
        parse_run_config({"data": {"languages": ["it", "klingon!"]}}, "run.yaml")


def test_prompt_and_scorer_names():
    assert lang_name("pl") == "Polish"
    assert lang_name("pt-BR") == "Portuguese (Brazil)"
    assert lang_name("zh-CN") == "Chinese Simplified"
    assert base_name("pt-BR") == "portuguese"
    assert base_name("nb") == "norwegian"
    assert base_name("zh-TW") == "chinese_traditional"


def test_prompt_names_the_summary_language():
    from lorasum.data.causal import split_template

    template = "Summarize this {lang_name} article in {summary_lang_name} ({summary_lang}).\n{text}\nSummary:"
    assert split_template(template, "fr", "en")[0] == "Summarize this French article in English (en).\n"
    assert split_template(template, "pl")[0] == "Summarize this Polish article in Polish (pl).\n"
