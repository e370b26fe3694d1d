import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lorasum.config import DataConfig
from lorasum.data.sampling import EpochMix, sample_per_lang, upsampling_weights
from lorasum.data.sources import load_examples
from lorasum.errors import LorasumError


def _rows(lang, n, split="train"):
    return [{"id": f"{lang}-{split}-{i}", "lang": lang, "split": split, "text": f"article {i} in {lang}",
             "summary": f"summary {i}"} for i in range(n)]


def _write_jsonl(path, rows, raw_lines=()):
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
        for line in raw_lines:
            f.write(line + "\n")
    return path


def test_seeded_sampling_per_language():
    data = {"en": _rows("en", 100), "ru": _rows("ru", 100)}
    a = sample_per_lang(data, 10, seed=1)
    b = sample_per_lang(data, 10, seed=1)
    c = sample_per_lang(data, 10, seed=2)
    assert a == b
    assert [r["id"] for r in a["en"]] != [r["id"] for r in c["en"]]
    # not the first n rows, and each language draws its own sample
    assert [r["id"] for r in a["en"]] != [f"en-train-{i}" for i in range(10)]
    assert [r["id"].split("-")[-1] for r in a["en"]] != [r["id"].split("-")[-1] for r in a["ru"]]
    # adding a language leaves the others' samples unchanged
    d = sample_per_lang({**data, "fr": _rows("fr", 50)}, 10, seed=1)
    assert d["en"] == a["en"]


def test_sampling_more_than_available_is_an_error_for_training():
    with pytest.raises(LorasumError, match="has 5 examples, fewer than the 16 requested"):
        sample_per_lang({"en": _rows("en", 5)}, 16, seed=0)
    assert len(sample_per_lang({"en": _rows("en", 5)}, 16, seed=0, strict=False)["en"]) == 5


def test_upsampling_alpha():
    w = upsampling_weights({"en": 900, "ru": 100}, alpha=0.5)
    assert w["ru"] > 0.1 and abs(sum(w.values()) - 1) < 1e-9
    langs = ["en"] * 90 + ["ru"] * 10
    epoch = EpochMix(langs, 0.5, seed=0).indices(0)
    expected_ru = round(upsampling_weights({"en": 90, "ru": 10}, 0.5)["ru"] * 100)
    assert sum(langs[i] == "ru" for i in epoch) == expected_ru == 25 and len(epoch) == 100
    assert EpochMix(["en"] * 7, 0.5, seed=0).indices(3) == list(range(7))


def test_local_jsonl_with_split_field(tmp_path):
    path = _write_jsonl(tmp_path / "d.jsonl", _rows("en", 3) + _rows("en", 2, "test") + _rows("ru", 4))
    cfg = DataConfig(source=str(path), languages=["en", "ru"])
    train = load_examples(cfg, "train", ["en", "ru"])
    assert [len(train["en"]), len(train["ru"])] == [3, 4]
    assert load_examples(cfg, "test", ["en"])["en"][0]["id"] == "en-test-0"


def test_folder_csv_and_parquet(tmp_path):
    import csv

    rows = _rows("fr", 3)
    with open(tmp_path / "train.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=["id", "lang", "article", "highlights"])
        w.writeheader()
        for r in rows:
            w.writerow({"id": r["id"], "lang": r["lang"], "article": r["text"], "highlights": r["summary"]})
    pq.write_table(pa.Table.from_pylist([{"article": "texte", "highlights": "résumé"}]), tmp_path / "test.parquet")
    cfg = DataConfig(source=str(tmp_path), languages=["fr"], text_field="article", summary_field="highlights")
    assert [r["text"] for r in load_examples(cfg, "train", ["fr"])["fr"]] == [r["text"] for r in rows]
    # no lang column: the single configured language is assumed
    assert load_examples(cfg, "test", ["fr"])["fr"][0]["summary"] == "résumé"


@pytest.mark.parametrize("bad_line, needle", [
    ('{"id": "x", "lang": "en", "split": "train", "text": "t"', "d.jsonl:4: not valid JSON"),
    ('{"id": "x", "lang": "en", "split": "train", "text": "t", "summary": "  "}', "d.jsonl:4: empty summary"),
    ('{"id": "x", "lang": "en", "split": "train", "text": "t"}', "d.jsonl:4: missing field 'summary'"),
    ('{"id": "x", "lang": "xx", "split": "train", "text": "t", "summary": "s"}', "d.jsonl:4: unknown language 'xx'"),
])
def test_bad_rows_are_one_line_errors_or_skipped(tmp_path, bad_line, needle):
    path = _write_jsonl(tmp_path / "d.jsonl", _rows("en", 3), [bad_line])
    cfg = DataConfig(source=str(path), languages=["en", "ru"][:1])
    with pytest.raises(LorasumError) as err:
        load_examples(cfg, "train", ["en"])
    msg = str(err.value)
    assert needle in msg and "--skip-bad-rows" in msg and "\n" not in msg
    skipped = load_examples(DataConfig(source=str(path), languages=["en"], skip_bad_rows=True), "train", ["en"])
    assert len(skipped["en"]) == 3


def test_missing_language_and_source(tmp_path):
    path = _write_jsonl(tmp_path / "d.jsonl", _rows("en", 3))
    with pytest.raises(LorasumError, match="no 'train' rows for language\\(s\\) ru"):
        load_examples(DataConfig(source=str(path), languages=["en", "ru"]), "train", ["en", "ru"])
    with pytest.raises(LorasumError, match="data source not found"):
        load_examples(DataConfig(source=str(tmp_path / "nope.jsonl"), languages=["en"]), "train", ["en"])


def test_skip_bad_rows_counts(tmp_path, caplog):
    path = _write_jsonl(tmp_path / "d.jsonl", _rows("en", 2), ["{broken", '{"lang": "en", "split": "train"}'])
    with caplog.at_level("WARNING"):
        load_examples(DataConfig(source=str(path), languages=["en"], skip_bad_rows=True), "train", ["en"])
    assert "skipped 2 bad rows" in caplog.text
