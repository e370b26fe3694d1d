"""Everyday command-line use: init, --version, -v anywhere, help texts, evaluate defaults, score output."""
import argparse
import json

import pytest

from lorasum.cli import build_parser, main
from lorasum.config import load_run_config


def test_init_writes_a_commented_config_that_validates(tmp_path, capsys):
    path = tmp_path / "run.yaml"
    assert main(["init", "--model", "google/mt5-small", "--data", "csebuetnlp/xlsum", "--lang", "en", "russian",
                 "--method", "lora", "-o", str(path)]) == 0
    text = path.read_text(encoding="utf-8")
    assert text.count("#") >= 5
    run = load_run_config(path)
    assert (run.model.name, run.data.languages, run.method.name) == ("google/mt5-small", ["en", "ru"], "lora")
    assert main(["init", "-o", str(path)]) == 2 and "exists" in capsys.readouterr().err
    assert main(["init", "--method", "full", "-o", str(path), "--force"]) == 0
    assert load_run_config(path).method.name == "full"


def test_version_and_verbose_before_or_after_the_subcommand(capsys):
    with pytest.raises(SystemExit) as done:
        build_parser().parse_args(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.startswith("lorasum ")
    score = ["--references", "r.jsonl", "--predictions", "p.jsonl"]
    p = build_parser()
    assert p.parse_args(["score", "-v", *score]).verbose is True
    assert p.parse_args(["-v", "score", *score]).verbose is True
    assert p.parse_args(["score", *score]).verbose is False
    assert p.parse_args(["study", "report", "s", "--verbose"]).verbose is True


def _all_actions(parser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _all_actions(sub)
        else:
            yield parser.prog, action


def test_every_option_has_help_text():
    missing = [f"{prog} {a.option_strings or a.dest}" for prog, a in _all_actions(build_parser())
               if not a.help and a.dest != "help"]
    assert not missing, missing


def test_missing_input_file_is_one_line_error(tmp_path, capsys):
    assert main(["summarize", "--model", "m", "--lang", "en", "--input", str(tmp_path / "none.txt")]) == 2
    err = capsys.readouterr().err
    assert "--input file not found" in err and err.count("\n") == 1 and "Traceback" not in err


def test_score_with_output_file_prints_a_table_and_the_direction(tmp_path, capsys):
    refs = tmp_path / "refs.jsonl"
    refs.write_text('{"id": "1", "lang": "en", "summary": "a new bridge opened"}\n'
                    '{"id": "2", "lang": "en", "summary": "the river flooded"}\n', encoding="utf-8")
    a = tmp_path / "a.jsonl"
    a.write_text('{"id": "1", "lang": "en", "prediction": "a new bridge opened"}\n'
                 '{"id": "2", "lang": "en", "prediction": "the river flooded"}\n', encoding="utf-8")
    b = tmp_path / "b.jsonl"
    b.write_text('{"id": "1", "lang": "en", "prediction": "bridge"}\n'
                 '{"id": "2", "lang": "en", "prediction": "rain"}\n', encoding="utf-8")
    out = tmp_path / "score.json"
    assert main(["score", "--references", str(refs), "--predictions", str(a), "--against", str(b),
                 "--resamples", "50", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert not printed.lstrip().startswith("{") and "ROUGE-L" in printed
    assert f"{a} minus {b}" in printed
    saved = json.loads(out.read_text(encoding="utf-8"))
    assert saved["scores"]["overall"]["rougeL"]["mean"] == 100.0
    assert saved["paired_test"]["difference"] == f"{a} minus {b}"
    assert saved["paired_test"]["overall"]["rougeL"]["diff"] > 0


@pytest.mark.slow
def test_evaluate_a_run_folder_uses_its_data_and_keeps_each_evaluation(tiny_run_config, tiny_mt5, tmp_path):
    from lorasum.run import train_and_evaluate

    run = tmp_path / "run"
    train_and_evaluate(tiny_run_config(tiny_mt5, "lora", training__max_steps=1), run, progress=False)
    stored = (run / "predictions.jsonl").read_text(encoding="utf-8")
    assert main(["evaluate", str(run), "--name", "beam1", "--num-beams", "1", "--max-length", "4",
                 "--no-progress", "--resamples", "20"]) == 0
    first = json.loads((run / "evaluations" / "beam1" / "metrics.json").read_text(encoding="utf-8"))
    assert first["test_examples"] == {"en": 3, "ru": 3} and first["split"] == "test"
    assert (first["generation"]["num_beams"], first["generation"]["max_target_length"]) == (1, 4)
    assert first["generation"]["length_penalty"] == 0.6  # the rest stays the run's
    assert main(["evaluate", str(run), "--name", "ru-val", "--lang", "ru", "--split", "validation",
                 "--no-progress", "--resamples", "20"]) == 0
    second = json.loads((run / "evaluations" / "ru-val" / "metrics.json").read_text(encoding="utf-8"))
    assert set(second["test_examples"]) == {"ru"} and second["split"] == "validation"
    assert (run / "evaluations" / "beam1" / "metrics.json").exists()
    assert (run / "predictions.jsonl").read_text(encoding="utf-8") == stored
    assert main(["evaluate", str(run), "--name", "beam1", "--no-progress"]) == 2


def test_score_reads_line_aligned_text_files(tmp_path, capsys):
    refs = tmp_path / "refs.txt"
    refs.write_text("новый мост открыт\nрека вышла из берегов\n", encoding="utf-8")
    preds = tmp_path / "preds.txt"
    preds.write_text("новый мост открыт\n\n", encoding="utf-8")  # the second prediction is empty
    assert main(["score", "--references", str(refs), "--predictions", str(preds), "--lang", "russian",
                 "--resamples", "20"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n"] == 2 and result["scores"]["overall"]["rougeL"]["mean"] == 50.0
    assert set(result["scores"]["per_lang"]) == {"ru"}
    assert main(["score", "--references", str(refs), "--predictions", str(preds)]) == 2
    assert "give --lang" in capsys.readouterr().err
    preds.write_text("новый мост открыт\n", encoding="utf-8")
    assert main(["score", "--references", str(refs), "--predictions", str(preds), "--lang", "ru"]) == 2
    assert "has no prediction" in capsys.readouterr().err
