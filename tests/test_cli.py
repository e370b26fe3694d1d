"""The command line: one-line errors for bad input, and the commands users run."""
import json
import subprocess
import sys

import pytest

from lorasum.cli import main


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("yaml_text, needle", [
    ("model: ./no/such/model\n", "model path not found: ./no/such/model"),
    ("methd: full\n", "methd: unknown field"),
    ("data:\n  languages: [tlh-x]\n", "unknown language 'tlh-x'"),
])
def test_train_bad_input_is_one_line_without_traceback(tmp_path, capsys, yaml_text, needle):
    cfg = _write(tmp_path / "run.yaml", yaml_text)
    assert main(["train", str(cfg), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err and err.count("\n") == 1


def test_broken_data_line_named_and_skippable(tmp_path, tiny_mt5, capsys):
    data = tmp_path / "d.jsonl"
    good = [{"id": f"{s}{i}", "lang": "en", "split": s, "text": "Some article text here.", "summary": "A summary."}
            for s in ("train", "validation", "test") for i in range(3)]
    _write(data, "".join(json.dumps(r) + "\n" for r in good) + '{"id": "x", "lang": "en", "split": "train", "text": \n')
    cfg = _write(tmp_path / "run.yaml", f"""
model: {tiny_mt5}
data: {{source: {data}, languages: [en], validation_examples: 1}}
method: {{name: lora, r: 2}}
training: {{max_steps: 1, batch_size: 2, max_source_length: 32, max_target_length: 16}}
generation: {{num_beams: 1, max_target_length: 4, max_source_length: 32}}
""")
    assert main(["train", str(cfg), "-o", str(tmp_path / "out"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert f"{data}:10: not valid JSON" in err and "--skip-bad-rows" in err and "Traceback" not in err
    assert main(["train", str(cfg), "-o", str(tmp_path / "out"), "--no-progress", "--skip-bad-rows"]) == 0
    assert (tmp_path / "out" / "metrics.json").exists()


def test_summarize_and_score_from_the_command_line(tmp_path, tiny_mt5):
    articles = _write(tmp_path / "a.jsonl", '{"id": "a", "text": "Москва: новый мост открыт."}\n'
                                            '{"id": "b", "text": "Un pont a ouvert à Lyon."}\n')
    out = subprocess.run([sys.executable, "-m", "lorasum.cli", "summarize", "--model", str(tiny_mt5), "--lang", "ru",
                          "--input", str(articles), "--jsonl"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["id"] for r in rows] == ["a", "b"] and all(isinstance(r["summary"], str) for r in rows)

    refs = _write(tmp_path / "refs.jsonl", '{"id": "1", "lang": "ru", "summary": "новый мост открыт"}\n')
    preds = _write(tmp_path / "preds.jsonl", '{"id": "1", "lang": "ru", "prediction": "новый мост открыт"}\n')
    out = subprocess.run([sys.executable, "-m", "lorasum.cli", "score", "--references", str(refs), "--predictions",
                          str(preds)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["scores"]["overall"]["rougeL"]["mean"] == 100.0


def test_missing_model_for_summarize(tmp_path):
    out = subprocess.run([sys.executable, "-m", "lorasum.cli", "summarize", "--model", str(tmp_path / "nope"),
                          "--lang", "en"], input="text", capture_output=True, text=True, timeout=300)
    assert out.returncode == 2 and "model path not found" in out.stderr and "Traceback" not in out.stderr
