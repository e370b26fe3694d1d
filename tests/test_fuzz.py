"""Property-based tests: readers, the config parser and the scorer never crash on arbitrary input.

CI runs a short profile. A longer search: ``HYPOTHESIS_PROFILE=long pytest tests/test_fuzz.py``.
"""
import json
import os
import tempfile
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from lorasum.config import DataConfig, parse_run_config  # noqa: E402
from lorasum.data.sources import load_examples  # noqa: E402
from lorasum.errors import LorasumError  # noqa: E402
from lorasum.metrics import score_items  # noqa: E402
from lorasum.metrics.files import score_files  # noqa: E402
from lorasum.metrics.tokenize import sanitize  # noqa: E402

settings.register_profile("ci", max_examples=40, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
settings.register_profile("long", max_examples=5000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

FIELDS = ["id", "lang", "split", "text", "summary"]
json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                                       max_size=3), max_leaves=6)
rows = st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=6),
                       st.sampled_from(["en", "ru", "train", "xx", "", " "]) | json_values, max_size=7)
lines = st.one_of(rows.map(lambda r: json.dumps(r).encode()), json_values.map(lambda v: json.dumps(v).encode()),
                  st.binary(max_size=60))


def _one_line(err: LorasumError, name: str) -> None:
    text = str(err)
    assert "\n" not in text and name in text, text


@given(st.lists(lines, max_size=8), st.sampled_from([b"\n", b"\r\n"]), st.booleans(), st.booleans())
def test_jsonl_reader_never_crashes(body, newline, bom, skip):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "fuzz.jsonl"
        path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + newline.join(body))
        try:
            got = load_examples(DataConfig(source=str(path), languages=["en"], skip_bad_rows=skip), "train", ["en"])
        except LorasumError as err:
            _one_line(err, "fuzz.jsonl")
            return
        assert all(isinstance(r["text"], str) and r["text"].strip() and r["lang"] == "en" for r in got["en"])


@given(st.lists(st.lists(st.text(alphabet='ab,"\n\r x', max_size=8), min_size=1, max_size=6), max_size=6),
       st.booleans())
def test_csv_reader_never_crashes(cells, skip):
    header = "id,lang,split,text,summary\n"
    body = header + "\n".join(",".join(row) for row in cells)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "fuzz.csv"
        path.write_text(body, encoding="utf-8")
        try:
            load_examples(DataConfig(source=str(path), languages=["en"], skip_bad_rows=skip), "train", ["en"])
        except LorasumError as err:
            _one_line(err, "fuzz.csv")


config_values = st.none() | st.booleans() | st.integers(-10, 10**6) | st.floats() | st.text(max_size=8) | st.lists(
    st.text(max_size=4), max_size=3)
sections = {
    "model": st.dictionaries(st.sampled_from(["name", "revision", "prompt_template", "bogus"]), config_values, max_size=3),
    "data": st.dictionaries(st.sampled_from(["languages", "train_examples", "format", "splits", "source", "bogus"]),
                            config_values, max_size=3),
    "method": st.dictionaries(st.sampled_from(["name", "r", "alpha", "dropout", "targets"]),
                              config_values | st.sampled_from(["lora", "full"]), max_size=4),
    "training": st.dictionaries(st.sampled_from(["lr", "batch_size", "max_steps", "epochs", "precision",
                                                 "max_grad_norm_abort", "warmup_ratio"]), config_values, max_size=4),
}


@given(st.fixed_dictionaries({}, optional={k: v | config_values for k, v in sections.items()}))
def test_config_parser_never_crashes(data):
    try:
        cfg = parse_run_config(data, "fuzz.yaml")
    except LorasumError as err:
        assert "fuzz.yaml" in str(err)
        return
    if cfg.method.name == "lora":
        assert cfg.method.r >= 1
    assert cfg.training.batch_size >= 1 and cfg.training.lr > 0


texts = st.text(alphabet=st.characters(codec="utf-8"), max_size=40) | st.sampled_from(
    ["", " ", "\u200d", "İstanbul", "東京都の天気", "ภาษาไทย", "မြန်မာ", "covid19 COVID-19", "a\u0301"])
langs = st.sampled_from(["en", "ru", "zh-CN", "ja", "th", "my", "tr", "hi", "bn", "am", None])


@given(texts)
def test_sanitize_is_idempotent(text):
    once = sanitize(text)
    assert isinstance(once, str) and sanitize(once) == once


@given(st.lists(st.tuples(texts, texts, langs), min_size=1, max_size=4))
def test_scores_are_in_range_and_symmetric(items):
    preds, refs, item_langs = map(list, zip(*items))
    forward = score_items(preds, refs, item_langs)
    backward = score_items(refs, preds, item_langs)
    for f, b, p, r in zip(forward, backward, preds, refs):
        for key in ("rouge1", "rouge2", "rougeL"):
            assert 0.0 <= f[key]["f"] <= 1.0 and 0.0 <= f[key]["p"] <= 1.0 and 0.0 <= f[key]["r"] <= 1.0
            assert f[key]["f"] == pytest.approx(b[key]["f"])  # F is symmetric
            assert f[key]["p"] == pytest.approx(b[key]["r"])  # precision one way is recall the other
    same = score_items(refs, refs, item_langs)
    for s, r, lang in zip(same, refs, item_langs):
        if s["rouge1"]["f"] > 0:
            assert s["rouge1"]["f"] == pytest.approx(1.0) and s["rougeL"]["f"] == pytest.approx(1.0)


@given(st.lists(lines, max_size=5), st.lists(lines, max_size=5))
def test_score_files_never_crashes(ref_lines, pred_lines):
    with tempfile.TemporaryDirectory() as d:
        ref, pred = Path(d) / "ref.jsonl", Path(d) / "pred.jsonl"
        ref.write_bytes(b"\n".join(ref_lines))
        pred.write_bytes(b"\n".join(pred_lines))
        try:
            out = score_files(str(ref), str(pred), resamples=5)
        except LorasumError as err:
            assert "\n" not in str(err) and ("ref.jsonl" in str(err) or "pred.jsonl" in str(err)), err
            return
        assert out["n"] >= 1
