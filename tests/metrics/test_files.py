"""score_files: the library side of ``lorasum score``."""
from __future__ import annotations

import json

import pytest

from lorasum.errors import LorasumError
from lorasum.metrics import score_files, score_items


def _write(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n" for r in rows),
                    encoding="utf-8")
    return str(path)


REFS = [
    {"id": "a", "lang": "en", "summary": "The cat sat on the mat."},
    {"id": "b", "lang": "english", "summary": "Dogs bark at night."},
    {"id": 3, "lang": "zh-CN", "summary": "我们今天去北京。"},
]


@pytest.fixture
def files(tmp_path):
    refs = _write(tmp_path / "refs.jsonl", REFS)
    preds = _write(tmp_path / "preds.jsonl", [
        {"id": "b", "lang": "en", "prediction": "Dogs bark loudly."},
        {"id": "a", "lang": "en", "prediction": "A cat sat on a mat.", "reference": "ignored"},
        {"id": "3", "lang": "chinese_simplified", "prediction": "我们去北京。"},
    ])
    other = _write(tmp_path / "other.jsonl", [
        {"id": "a", "lang": "en", "prediction": "Nothing here."},
        {"id": "b", "lang": "en", "prediction": "Dogs."},
        {"id": "3", "lang": "zh-CN", "prediction": "上海"},
    ])
    return tmp_path, refs, preds, other


def test_scores_match_score_items_and_paired_test(files):
    tmp, refs, preds, other = files
    res = score_files(refs, preds, other, resamples=100, seed=1)
    assert res["n"] == 3 and res["resamples"] == 100 and res["seed"] == 1
    assert set(res["scores"]["per_lang"]) == {"en", "zh-CN"}
    assert res["scorer"]["languages"]["zh-CN"]["segmenter"] == "jieba"
    items = score_items(["Dogs bark loudly.", "A cat sat on a mat.", "我们去北京。"],
                        ["Dogs bark at night.", "The cat sat on the mat.", "我们今天去北京。"], ["en", "en", "zh-CN"])
    f = [i["rougeL"]["f"] * 100 for i in items]
    assert res["scores"]["pooled"]["rougeL"]["mean"] == round(sum(f) / 3, 4)
    assert res["scores"]["overall"]["rougeL"]["mean"] == round(((f[0] + f[1]) / 2 + f[2]) / 2, 4)  # macro: en, zh-CN
    assert res["paired_test"]["overall"]["rougeL"]["diff"] > 0 and res["paired_test"]["pooled"]["rougeL"]["diff"] > 0
    assert res["against_scores"]["overall"]["rougeL"]["mean"] < res["scores"]["overall"]["rougeL"]["mean"]
    json.dumps(res)


def test_run_predictions_file_works_as_references(files):
    tmp, refs, preds, _ = files
    run = _write(tmp / "run.jsonl", [{"id": "x", "lang": "ru", "reference": "Кошка сидит.", "prediction": "Кошка сидит."}])
    assert score_files(run, run, resamples=10)["scores"]["overall"]["rouge1"]["mean"] == 100.0


@pytest.mark.parametrize("row, message", [
    ("{broken", r"preds\.jsonl:2: not valid JSON"),
    ('["list"]', r"preds\.jsonl:2: expected a JSON object"),
    ({"lang": "en", "prediction": "x"}, r"preds\.jsonl:2: missing field 'id'"),
    ({"id": "b", "prediction": "x"}, r"preds\.jsonl:2: missing field 'lang'"),
    ({"id": "b", "lang": "en"}, r"preds\.jsonl:2: missing field 'prediction'"),
    ({"id": "b", "lang": "en", "prediction": 5}, r"preds\.jsonl:2: field 'prediction' must be a string"),
    ({"id": "b", "lang": "klingon", "prediction": "x"}, r"preds\.jsonl:2: unknown language 'klingon'.*accepted codes"),
    ({"id": "zz", "lang": "en", "prediction": "x"}, r"preds\.jsonl:2: id 'zz' is not in .*refs\.jsonl"),
    ({"id": "a", "lang": "en", "prediction": "x"}, r"preds\.jsonl:2: duplicate id 'a' \(first on line 1\)"),
    ({"id": "b", "lang": "fr", "prediction": "x"}, r"preds\.jsonl:2: id 'b' has lang 'fr' but .*refs\.jsonl:2"),
])
def test_bad_prediction_rows_name_file_and_line(files, row, message):
    tmp, refs, _, _ = files
    preds = _write(tmp / "preds.jsonl", [{"id": "a", "lang": "en", "prediction": "x"}, row,
                                         {"id": "3", "lang": "zh-CN", "prediction": "x"}])
    with pytest.raises(LorasumError, match=message):
        score_files(refs, preds, resamples=10)


def test_missing_predictions_and_files(files):
    tmp, refs, _, _ = files
    preds = _write(tmp / "few.jsonl", [{"id": "a", "lang": "en", "prediction": "x"}])
    with pytest.raises(LorasumError, match=r"refs\.jsonl:2: id 'b' has no prediction in .*few\.jsonl \(2 of 3"):
        score_files(refs, preds)
    with pytest.raises(LorasumError, match="file not found"):
        score_files(str(tmp / "nope.jsonl"), preds)
    bad_ref = _write(tmp / "r.jsonl", [{"id": "a", "lang": "en", "text": "x"}])
    with pytest.raises(LorasumError, match=r"r\.jsonl:1: missing field 'summary' or 'reference'"):
        score_files(bad_ref, preds)
