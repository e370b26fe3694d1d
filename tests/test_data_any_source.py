"""Any dataset: hub-style folders, save_to_disk folders, presets, per-language configs,
summary languages, and streamed samples identical to in-memory ones."""
from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lorasum.config import parse_run_config
from lorasum.data.sampling import sample_per_lang
from lorasum.data.sources import load_examples
from lorasum.data.stream import sample_examples
from lorasum.demo import DATA
from lorasum.errors import LorasumError


def demo_rows(lang=None, split=None):
    rows = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines()]
    return [r for r in rows if (lang is None or r["lang"] == lang) and (split is None or r["split"] == split)]


def data_cfg(**data):
    return parse_run_config({"data": data}).data


def write_hub_folder(root, langs_by_config):
    """A dataset repository layout: <config>/train-0000i-of-00002.parquet, <config>/validation/*.jsonl,
    <config>/test-00000-of-00001.parquet; rows carry XL-Sum's columns (no language column)."""
    for config, lang in langs_by_config.items():
        base = root / config
        (base / "validation").mkdir(parents=True)
        train = [{"id": r["id"], "title": "t", "text": r["text"], "summary": r["summary"]} for r in demo_rows(lang, "train")]
        half = len(train) // 2
        for i, part in enumerate((train[:half], train[half:])):
            pq.write_table(pa.Table.from_pylist(part), base / f"train-0000{i}-of-00002.parquet", row_group_size=7)
        with open(base / "validation" / "part-0.jsonl", "w", encoding="utf-8") as f:
            for r in demo_rows(lang, "validation"):
                f.write(json.dumps({"id": r["id"], "text": r["text"], "summary": r["summary"]}) + "\n")
        test = [{"id": r["id"], "text": r["text"], "summary": r["summary"]} for r in demo_rows(lang, "test")]
        pq.write_table(pa.Table.from_pylist(test), base / "test-00000-of-00001.parquet")


def test_hub_style_folder_with_per_language_configs(tmp_path):
    write_hub_folder(tmp_path, {"english": "en", "french": "fr"})
    cfg = data_cfg(source=str(tmp_path), languages=["en", "fr"], subsets={"en": "english", "fr": "french"})
    train = load_examples(cfg, "train", ["en", "fr"])
    assert [ex["id"] for ex in train["en"]] == [r["id"] for r in demo_rows("en", "train")]
    assert {ex["lang"] for ex in train["fr"]} == {"fr"} and len(train["fr"]) == 64
    val = load_examples(cfg, "validation", ["fr"])
    assert [ex["id"] for ex in val["fr"]] == [r["id"] for r in demo_rows("fr", "validation")]
    assert val["fr"][0]["summary_lang"] == "fr"


def test_subsets_must_cover_every_language():
    with pytest.raises(LorasumError, match="data.subsets names no config for language.*ru"):
        data_cfg(source="x/y", languages=["en", "ru"], subsets={"en": "english"})


def test_save_to_disk_dataset_without_language_column(tmp_path):
    import datasets

    splits = {s: datasets.Dataset.from_list([{"id": r["id"], "document": r["text"], "abstract": r["summary"]}
                                             for r in demo_rows("fr", s)]) for s in ("train", "validation", "test")}
    datasets.DatasetDict(splits).save_to_disk(str(tmp_path / "saved"))
    cfg = data_cfg(source=str(tmp_path / "saved"), languages=["fr"], text_field="document", summary_field="abstract")
    test = load_examples(cfg, "test", ["fr"])
    assert [ex["text"] for ex in test["fr"]] == [r["text"] for r in demo_rows("fr", "test")]
    # two languages, no language column, no per-language configs: which row is which is unknown
    two = data_cfg(source=str(tmp_path / "saved"), languages=["fr", "en"], text_field="document",
                   summary_field="abstract")
    with pytest.raises(LorasumError, match="missing field 'lang'"):
        load_examples(two, "test", ["fr", "en"])


def test_presets_fill_fields_and_own_fields_win():
    cfg = data_cfg(preset="xlsum", languages=["en", "zh-CN"])
    assert cfg.source == "csebuetnlp/xlsum" and cfg.subsets["zh-CN"] == "chinese_simplified"
    mlsum = data_cfg(preset="mlsum", languages=["tr"], id_field="title")
    assert mlsum.subsets["tr"] == "tu" and mlsum.id_field == "title" and mlsum.source == "reciTAL/mlsum"
    xw = data_cfg(preset="xwikis", languages=["de", "fr", "cs", "zh"])
    assert xw.summary_lang == "en" and xw.subsets["zh"] == "zh-en"
    for name in ("crosssum", "wikilingua"):
        data_cfg(preset=name, languages=["fr"])
    with pytest.raises(LorasumError, match="unknown data.preset 'xlsumm'.*xlsum"):
        data_cfg(preset="xlsumm")


def test_hub_id_without_network_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    cfg = data_cfg(source="someone/no-such-summaries", subset="xx")
    with pytest.raises(LorasumError, match="could not load someone/no-such-summaries config 'xx' split 'test'"):
        load_examples(cfg, "test", ["en"])


def test_summary_language_from_column_or_setting(tmp_path):
    path = tmp_path / "x.jsonl"
    rows = [{"id": "a", "lang": "fr", "summary_lang": "en", "split": "test", "text": "Le chat dort.", "summary": "The cat sleeps."},
            {"id": "b", "lang": "fr", "split": "test", "text": "Il pleut.", "summary": "Il pleut."}]
    path.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    ex = load_examples(data_cfg(source=str(path), languages=["fr"]), "test", ["fr"])["fr"]
    assert [e["summary_lang"] for e in ex] == ["en", "fr"]
    ex = load_examples(data_cfg(source=str(path), languages=["fr"], summary_lang="de"), "test", ["fr"])["fr"]
    assert [e["summary_lang"] for e in ex] == ["en", "de"]
    path.write_text(json.dumps({**rows[0], "summary_lang": "english!"}), encoding="utf-8")
    with pytest.raises(LorasumError, match=r"x.jsonl:1: field 'summary_lang': unknown language"):
        load_examples(data_cfg(source=str(path), languages=["fr"]), "test", ["fr"])


@pytest.mark.parametrize("fmt", ["jsonl", "parquet", "hub-folder"])
def test_streamed_sample_is_the_in_memory_sample(tmp_path, fmt):
    rows = demo_rows()
    if fmt == "jsonl":
        source = tmp_path / "all.jsonl"
        source.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    elif fmt == "parquet":
        source = tmp_path / "all.parquet"
        pq.write_table(pa.Table.from_pylist(rows), source, row_group_size=10)
    else:
        source = tmp_path / "hub"
        (source / "data").mkdir(parents=True)
        train = [r for r in rows if r["split"] == "train"]
        for i in range(3):
            pq.write_table(pa.Table.from_pylist(train[i::3]), source / "data" / f"train-0000{i}-of-00003.parquet")
    cfg = data_cfg(source=str(source), languages=["en", "fr", "ru"])
    for seed in (0, 1):
        streamed = sample_examples(cfg, "train", ["en", "fr", "ru"], 10, seed)
        in_memory = sample_per_lang(load_examples(cfg, "train", ["en", "fr", "ru"]), 10, seed)
        assert streamed == in_memory
        assert all(len(v) == 10 for v in streamed.values())
    # adding a language leaves the others' samples alone
    assert sample_examples(cfg, "train", ["fr"], 10, 0)["fr"] == sample_examples(cfg, "train", ["en", "fr"], 10, 0)["fr"]
    with pytest.raises(LorasumError, match="has 64 examples, fewer than the 65 requested"):
        sample_examples(cfg, "train", ["en"], 65, 0)


def test_new_fields_at_defaults_leave_the_config_dump_unchanged():
    # dumps (config.yaml, study config hashes) of configs that do not use the new fields stay as before
    dump = parse_run_config({}).to_dict()["data"]
    assert not {"preset", "subset", "subsets", "summary_lang", "summary_lang_field"} & set(dump)
    used = parse_run_config({"data": {"preset": "xwikis", "languages": ["de"]}}).to_dict()["data"]
    assert used["summary_lang"] == "en" and used["subsets"]["de"] == "de-en"
    assert parse_run_config({"data": used}).to_dict()["data"] == used
