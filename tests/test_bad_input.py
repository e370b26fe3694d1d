"""Malformed input is one line on stderr with status 2 naming the file and line; odd but valid input is read."""
import gzip
import io
import json
import unicodedata

import pytest

from lorasum.cli import main
from lorasum.config import DataConfig
from lorasum.data.sources import load_examples


def _row(i, lang="en", split="train", **over):
    row = {"id": str(i), "lang": lang, "split": split, "text": f"article number {i} about the city council",
           "summary": f"summary {i}"}
    row.update(over)
    return row


def _jsonl(rows) -> bytes:
    return b"".join(json.dumps(r, ensure_ascii=False).encode() + b"\n" for r in rows)


GOOD = _jsonl([_row(i) for i in range(1, 4)])


def _parquet_bytes(rows) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), buf)
    return buf.getvalue()


# (case id, file name, content, text expected in the message, line expected in the message)
DATA_CASES = [
    ("truncated-line", "d.jsonl", GOOD + b'{"id": "9", "lang": "en", "te\n', "not valid JSON", ":4"),
    ("array-line", "d.jsonl", b'[1, 2]\n' + GOOD, "got list", ":1"),
    ("number-line", "d.jsonl", GOOD + b"42\n", "got int", ":4"),
    ("string-line", "d.jsonl", b'"just a string"\n' + GOOD, "got str", ":1"),
    ("invalid-utf8", "d.jsonl", GOOD[:40] + b"\xff\xfe" + GOOD[40:], "not valid UTF-8", ":1"),
    ("null-text", "d.jsonl", _jsonl([_row(1, text=None)]) + GOOD, "empty text", ":1"),
    ("empty-summary", "d.jsonl", GOOD + _jsonl([_row(5, summary="  ")]), "empty summary", ":4"),
    ("non-string-text", "d.jsonl", _jsonl([_row(1, text=12345)]) + GOOD, "must be a string", ":1"),
    ("unknown-language", "d.jsonl", GOOD + _jsonl([_row(7, lang="klingon")]), "unknown language", ":4"),
    ("malformed-language", "d.jsonl", _jsonl([_row(1, lang=["en"])]) + GOOD, "language code string", ":1"),
    ("empty-file", "d.jsonl", b"", "no rows", ""),
    ("blank-lines-only", "d.jsonl", b"\n  \n\r\n", "no rows", ""),
    ("csv-broken-quoting", "d.csv",
     b'id,lang,split,text,summary\n1,en,train,"good text",s\n2,en,train,"bad "quote" here",s\n', "broken CSV", ":3"),
    ("csv-wrong-field-count", "d.csv", b"id,lang,split,text,summary\n1,en,train,only four\n2,en,train,text,s\n", "fields where", ":2"),
    ("parquet-named-jsonl", "d.jsonl", _parquet_bytes([_row(1)]), "Parquet file", ""),
    ("json-named-parquet", "d.parquet", GOOD, "not a readable Parquet", ""),
    ("corrupt-parquet", "d.parquet", _parquet_bytes([_row(i) for i in range(50)])[:-40], "not a readable Parquet", ""),
    ("gzip-without-gz", "d.jsonl", gzip.compress(GOOD), "gzip", ""),
    ("damaged-gzip", "d.jsonl.gz", gzip.compress(GOOD)[:-12], "cannot read", ""),
]


def _run(argv, capsys) -> tuple[int, str]:
    code = main(argv)
    return code, capsys.readouterr().err


def _assert_one_line_error(code, err, name, needle, line=""):
    assert code == 2, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert name in err and needle in err, err
    if line:
        assert f"{name}{line}" in err, err


def _train_yaml(tmp_path, model, data) -> str:
    cfg = {"model": str(model), "data": {"source": str(data), "languages": ["en"]},
           "training": {"max_steps": 1, "batch_size": 2}}
    path = tmp_path / "run.yaml"
    path.write_text(json.dumps(cfg))  # JSON is YAML
    return str(path)


@pytest.mark.parametrize("case,name,content,needle,line", DATA_CASES, ids=[c[0] for c in DATA_CASES])
def test_bad_data_file_is_one_line_error(case, name, content, needle, line, tmp_path, tiny_mt5, capsys):
    data = tmp_path / name
    data.write_bytes(content)
    code, err = _run(["train", _train_yaml(tmp_path, tiny_mt5, data), "-o", str(tmp_path / "run")], capsys)
    _assert_one_line_error(code, err, name, needle, line)


SKIPPABLE = [c for c in DATA_CASES if c[4]]  # row-level problems


@pytest.mark.parametrize("case,name,content,needle,line", SKIPPABLE, ids=[c[0] for c in SKIPPABLE])
def test_skip_bad_rows_drops_them_and_counts_by_kind(case, name, content, needle, line, tmp_path, caplog):
    data = tmp_path / name
    data.write_bytes(content)
    cfg = DataConfig(source=str(data), languages=["en"], skip_bad_rows=True)
    with caplog.at_level("WARNING"):
        rows = load_examples(cfg, "train", ["en"])["en"]
    assert len(rows) >= 1
    assert "bad row" in caplog.text and needle.split(" ")[0] in caplog.text, caplog.text


def test_skip_bad_rows_gets_past_many_bad_lines(tmp_path, caplog):
    data = tmp_path / "d.jsonl"
    data.write_bytes(b"\xff\n" + GOOD + b"[1]\n\xc3\x28\n" + _jsonl([_row(9, text=None)]))
    cfg = DataConfig(source=str(data), languages=["en"], skip_bad_rows=True)
    with caplog.at_level("WARNING"):
        rows = load_examples(cfg, "train", ["en"])["en"]
    assert [r["id"] for r in rows] == ["1", "2", "3"]
    assert "4 bad rows: 2 x not valid UTF-8" in caplog.text, caplog.text
    assert "1 x each line must be a JSON object" in caplog.text and "1 x empty text" in caplog.text


def test_odd_but_valid_input_is_read(tmp_path):
    nfd = unicodedata.normalize("NFD", "Café résumé à Montréal")
    long_text = "word " * 400_000  # 2 MB
    rows = [_row(1, text=nfd), _row(2, text=long_text), _row(3)]
    body = _jsonl(rows).replace(b"\n", b"\r\n\r\n")  # CRLF endings and blank lines
    data = tmp_path / "d.jsonl"
    data.write_bytes(b"\xef\xbb\xbf" + body)  # UTF-8 byte order mark
    got = load_examples(DataConfig(source=str(data), languages=["en"]), "train", ["en"])["en"]
    assert [r["id"] for r in got] == ["1", "2", "3"]
    assert got[0]["text"] == nfd  # no normalisation: the scorer sees the text as written
    assert len(got[1]["text"]) == len(long_text.strip())
    csv_file = tmp_path / "d.csv"
    csv_file.write_bytes(b"\xef\xbb\xbfid,lang,split,text,summary\r\n1,en,train,\"" + long_text.encode()
                         + b"\",s\r\n\r\n2,en,train,\"multi\r\nline\",s2\r\n")
    got = load_examples(DataConfig(source=str(csv_file), languages=["en"]), "train", ["en"])["en"]
    assert [r["id"] for r in got] == ["1", "2"] and got[1]["text"] == "multi\r\nline"


# -- lorasum score ------------------------------------------------------------------------------

REF = _jsonl([{"id": "a", "lang": "en", "summary": "the cat sat"}, {"id": "b", "lang": "en", "summary": "a dog"}])
PRED = _jsonl([{"id": "a", "lang": "en", "prediction": "the cat"}, {"id": "b", "lang": "en", "prediction": "dog"}])

SCORE_CASES = [
    ("empty-predictions", REF, b"", "pred.jsonl", "no rows", ""),
    ("empty-references", b"\n\n", PRED, "ref.jsonl", "no rows", ""),
    ("invalid-utf8", REF, PRED[:10] + b"\xff" + PRED[10:], "pred.jsonl", "not valid UTF-8", ":1"),
    ("truncated", REF, PRED[:-9], "pred.jsonl", "not valid JSON", ":2"),
    ("not-object", REF, b"[1]\n", "pred.jsonl", "expected a JSON object", ":1"),
    ("ids-do-not-match", REF, PRED.replace(b'"b"', b'"c"'), "pred.jsonl", "is not in", ":2"),
    ("missing-prediction", REF, PRED.split(b"\n")[0] + b"\n", "ref.jsonl", "has no prediction", ":2"),
    ("non-string-prediction", REF, PRED.replace(b'"dog"', b"null"), "pred.jsonl", "must be a string", ":2"),
    ("unknown-language", REF, PRED.replace(b'"lang": "en", "prediction": "dog"', b'"lang": "xx", "prediction": "dog"'),
     "pred.jsonl", "unknown language", ":2"),
]


@pytest.mark.parametrize("case,ref,pred,name,needle,line", SCORE_CASES, ids=[c[0] for c in SCORE_CASES])
def test_bad_score_input_is_one_line_error(case, ref, pred, name, needle, line, tmp_path, capsys):
    (tmp_path / "ref.jsonl").write_bytes(ref)
    (tmp_path / "pred.jsonl").write_bytes(pred)
    code, err = _run(["score", "--references", str(tmp_path / "ref.jsonl"), "--predictions",
                      str(tmp_path / "pred.jsonl"), "--resamples", "10"], capsys)
    _assert_one_line_error(code, err, name, needle, line)


def test_score_accepts_bom_crlf_and_blank_lines(tmp_path, capsys):
    (tmp_path / "ref.jsonl").write_bytes(b"\xef\xbb\xbf" + REF.replace(b"\n", b"\r\n\r\n"))
    (tmp_path / "pred.jsonl").write_bytes(b"\xef\xbb\xbf" + PRED)
    code, _ = _run(["score", "--references", str(tmp_path / "ref.jsonl"), "--predictions",
                    str(tmp_path / "pred.jsonl"), "--resamples", "10"], capsys)
    assert code == 0


# -- configs and models -------------------------------------------------------------------------

CONFIG_CASES = [
    ("unknown-key", {"training": {"batch_sise": 4}}, "training.batch_sise"),
    ("wrong-type", {"training": {"lr": "fast"}}, "training.lr"),
    ("negative-size", {"training": {"batch_size": -1}}, "training.batch_size"),
    ("zero-steps", {"training": {"max_steps": 0}}, "training.max_steps"),
    ("rank-zero", {"method": {"name": "lora", "r": 0}}, "method.r"),
    ("contradictory-full-with-rank", {"method": {"name": "full", "r": 8}}, "method.r"),
    ("abort-threshold-negative", {"training": {"max_grad_norm_abort": -1}}, "training.max_grad_norm_abort"),
    ("unknown-language", {"data": {"languages": ["xx-YY"]}}, "data.languages"),
]


@pytest.mark.parametrize("case,cfg,needle", CONFIG_CASES, ids=[c[0] for c in CONFIG_CASES])
def test_bad_config_is_one_line_error(case, cfg, needle, tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text(json.dumps(cfg))
    code, err = _run(["train", str(path), "-o", str(tmp_path / "run")], capsys)
    _assert_one_line_error(code, err, "bad.yaml", needle)


def test_several_config_problems_still_one_line(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text(json.dumps({"training": {"batch_size": 0, "lr": -1}, "method": {"name": "lora", "r": 0}}))
    code, err = _run(["train", str(path)], capsys)
    _assert_one_line_error(code, err, "bad.yaml", "training.lr")
    assert "method.r" in err and "training.batch_size" in err


@pytest.mark.parametrize("what", ["missing", "empty-folder"])
def test_model_path_without_a_model(what, tmp_path, capsys):
    model = tmp_path / "m"
    if what == "empty-folder":
        model.mkdir()
    data = tmp_path / "d.jsonl"
    data.write_bytes(GOOD)
    code, err = _run(["train", _train_yaml(tmp_path, model, data), "-o", str(tmp_path / "run")], capsys)
    _assert_one_line_error(code, err, str(model), "")


def test_adapter_for_another_base_model(tmp_path, tiny_mt5, capsys):
    from lorasum.config import LoraMethod
    from lorasum.models.load import load_base
    from lorasum.methods.lora import apply_lora
    from lorasum.models.tiny import build_tiny_model

    other = build_tiny_model(tmp_path / "wider", "mt5", d_model=48, layers=1)
    model, _, fam = load_base(str(other))
    apply_lora(model, fam, LoraMethod(r=4)).save_pretrained(tmp_path / "adapter")
    data = tmp_path / "d.jsonl"
    data.write_bytes(_jsonl([_row(i, split="test") for i in range(3)]))
    code, err = _run(["evaluate", str(tiny_mt5), "--adapter", str(tmp_path / "adapter"), "--data", str(data),
                      "-o", str(tmp_path / "ev"), "--no-progress"], capsys)
    _assert_one_line_error(code, err, "adapter", "size mismatch")
    assert "made for base model" in err and "wider" in err


# -- resource bounds ----------------------------------------------------------------------------

def test_megabyte_article_reaches_the_tokenizer_cut(tiny_mt5):
    """Tokenization work is bounded by max_source_length, not by the article's size."""
    from lorasum.config import GenerationConfig
    from lorasum.data.causal import prompt_ids
    from lorasum.data.features import CHARS_PER_TOKEN_BOUND, encode_seq2seq
    from lorasum.generate import generate_summaries
    from lorasum.models.load import load_base

    model, tok, _ = load_base(str(tiny_mt5))
    seen = []

    class Spy:
        def __getattr__(self, name):
            return getattr(tok, name)

        def __call__(self, texts=None, *args, **kwargs):
            seen.extend(t for t in ([texts] if isinstance(texts, str) else texts or []))
            return tok(texts, *args, **kwargs)

    huge = "Россия " * 750_000  # 5 MB of UTF-8
    short = "a short article about the vote"
    rows = [{"id": "1", "lang": "ru", "text": huge, "summary": "s"}, {"id": "2", "lang": "en", "text": short,
                                                                       "summary": "s"}]
    limit = 64 * CHARS_PER_TOKEN_BOUND
    encode_seq2seq(rows, Spy(), 64, 16)
    assert max(map(len, seen)) <= limit and short in seen
    medium = [{"id": "3", "lang": "ru", "text": "Россия " * 20_000, "summary": "s"}]
    assert encode_seq2seq(medium, Spy(), 64, 16) == encode_seq2seq(medium, tok, 64, 16)  # same kept tokens
    seen.clear()
    seen.clear()
    prompt_ids(Spy(), [huge], ["ru"], max_source_length=64, prompt_template="Summarize: {text} Summary:")
    assert max(map(len, seen)) <= limit
    seen.clear()
    generate_summaries(model, Spy(), [huge], GenerationConfig(num_beams=1, max_source_length=64,
                                                               max_target_length=2), progress=False)
    assert seen and max(map(len, seen)) <= limit
