"""Every printed table of corpus figures labels the macro average and the pooled figure."""
from __future__ import annotations

from lorasum.metrics import corpus_scores, summary_rows


def _items(fs):
    return [{m: {"p": f, "r": f, "f": f} for m in ("rouge1", "rouge2", "rougeL")} for f in fs]


# language A: 100 items all F=1; language B: 2 items all F=0 -> macro 50, pooled 98.04
SCORES = corpus_scores(_items([1.0] * 100 + [0.0] * 2), ["en"] * 100 + ["fr"] * 2, resamples=50)


def test_rows_are_languages_then_macro_then_pooled():
    rows = summary_rows(SCORES)
    assert [label for label, _ in rows] == ["en", "fr", "macro avg", "pooled"]
    assert rows[2][1]["rougeL"]["mean"] == 50.0 and rows[3][1]["rougeL"]["mean"] == 98.0392
    one = corpus_scores(_items([0.5, 0.7]), ["ru", "ru"], resamples=20)
    assert [label for label, _ in summary_rows(one)] == ["ru", "macro avg"]  # pooled equals it: left out


def test_cli_summary_prints_macro_and_pooled(capsys, tmp_path):
    from lorasum.cli import _print_summary

    _print_summary(SCORES, tmp_path)
    out = capsys.readouterr().out
    macro = next(line for line in out.splitlines() if "│ macro avg" in line)
    pooled = next(line for line in out.splitlines() if "│ pooled" in line)
    assert "50.00" in macro and "98.04" in pooled


def test_model_card_shows_macro_and_pooled(tmp_path):
    from lorasum.card import write_model_card
    from lorasum.config import RunConfig

    eff = {"trainable_params": 10, "total_params": 100, "trainable_share": 0.1, "artifact_mb": 1.0,
           "train_steps": 2, "train_seconds": 1.0, "train_tokens_per_second": 5.0}
    metrics = {"run": {"family": "t5"}, "rouge": SCORES, "efficiency": eff}
    text = write_model_card(tmp_path, RunConfig(), metrics).read_text()
    assert "| macro avg | 102 | 50.00 [50.00, 50.00]" in text
    assert "| pooled | 102 | 98.04" in text


def test_demo_table_shows_macro_and_pooled():
    from rich.console import Console

    from lorasum.demo import comparison_table

    eff = {"trainable_share": 0.1, "artifact_mb": 1.0, "train_seconds": 1.0, "eval_seconds": 1.0}
    console = Console(record=True, width=200, file=open("/dev/null", "w"))
    console.print(comparison_table({"full": {"rouge": SCORES, "efficiency": eff},
                                    "lora": {"rouge": SCORES, "efficiency": eff}}))
    lines = console.export_text().splitlines()
    assert any("macro avg" in line and "50.0" in line for line in lines)
    assert any("pooled" in line and "98.0" in line for line in lines)
