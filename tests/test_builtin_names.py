"""``lorasum:`` names work in every YAML and command, not only in study specs."""
import json

import pytest

from lorasum.builtins import CACHE_ENV, cache_root, resolve_model
from lorasum.cli import main
from lorasum.errors import LorasumError

RUN_YAML = """
model: lorasum:tiny-mt5
data: {source: "lorasum:demo", languages: [en], train_examples: 4, validation_examples: 1, test_examples: 2}
method: {name: lora, r: 2}
training: {max_steps: 2, batch_size: 2, max_source_length: 32, max_target_length: 16, checkpoint_every: 2}
generation: {num_beams: 1, max_source_length: 32, max_target_length: 4}
"""


def test_builtin_model_and_data_train_evaluate_and_summarize_from_the_cli(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    cfg = tmp_path / "run.yaml"
    cfg.write_text(RUN_YAML)
    run = tmp_path / "run"
    assert main(["train", str(cfg), "-o", str(run), "--no-progress"]) == 0, capsys.readouterr().err
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["run"]["model"] == "lorasum:tiny-mt5" and metrics["run"]["train_examples"] == {"en": 4}
    built = tmp_path / "cache" / "models" / "tiny-mt5"
    assert (built / "config.json").is_file()  # built once into $LORASUM_CACHE
    assert not [p for p in built.parent.iterdir() if p.name.startswith(".")]  # no half-built leftovers
    assert main(["evaluate", str(run), "--data", "lorasum:demo", "--lang", "fr", "--test-examples", "2",
                 "-o", str(tmp_path / "eval"), "--no-progress", "--resamples", "10"]) == 0
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text())["test_examples"] == {"fr": 2}
    article = tmp_path / "a.txt"
    article.write_text("The city council voted on Monday to open a new bridge.")
    assert main(["summarize", "--model", "lorasum:tiny-mt5", "--lang", "en", "--input", str(article)]) == 0


def test_unknown_builtin_names_are_one_line_errors(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    cfg = tmp_path / "run.yaml"
    cfg.write_text(RUN_YAML.replace("lorasum:tiny-mt5", "lorasum:huge"))
    assert main(["train", str(cfg), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "'lorasum:huge': unknown built-in" in err and "Traceback" not in err
    with pytest.raises(LorasumError, match="unknown built-in"):
        resolve_model("lorasum:tiny-gpt9")
    assert cache_root() == tmp_path / "cache"
