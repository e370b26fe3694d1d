"""Faithfulness in the study's results table and report, from synthetic run folders."""
import json
import sys
from pathlib import Path

import pytest

from lorasum.io import read_json, write_json, write_jsonl
from lorasum.metrics.faithfulness import faithfulness_info, faithfulness_items, faithfulness_scores
from lorasum.report.faithfulness import faithfulness_paired
from lorasum.study import run_study, study_report, study_results


def _add_faithfulness(run_dir: Path) -> None:
    """Give a fake cell real per-item signals (reference as article) and a rigged NLI score: LoRA 0.8, full 0.4."""
    rows = [json.loads(line) for line in (run_dir / "predictions.jsonl").read_text().splitlines()]
    metrics = read_json(run_dir / "metrics.json")
    lora = metrics["run"]["method"] == "lora"
    items = faithfulness_items([r["reference"] for r in rows], [r["prediction"] for r in rows],
                               [r["lang"] for r in rows])
    for i, (r, it) in enumerate(zip(rows, items)):
        it.update({"nli_entailment": (0.8 if lora else 0.4) + 0.01 * (i % 3), "nli_chunks": 1 + i % 2,
                   "nli_truncated": False})
        r["faithfulness"] = it
    write_jsonl(run_dir / "predictions.jsonl", rows)
    metrics["faithfulness"] = faithfulness_scores(items, [r["lang"] for r in rows], resamples=100)
    metrics["scorer"]["faithfulness"] = {**faithfulness_info(), "nli": {"model": "rigged-nli"}}
    write_json(run_dir / "metrics.json", metrics)


@pytest.fixture(scope="module")
def faithful_study(tmp_path_factory):
    import yaml

    sys.path.insert(0, str(Path(__file__).parent))
    from fakes import SMALL_STUDY, fake_train_and_evaluate

    root = tmp_path_factory.mktemp("faith-study")
    spec = dict(SMALL_STUDY, scenarios=SMALL_STUDY["scenarios"][:1])
    (root / "study.yaml").write_text(yaml.safe_dump(spec))
    run_study(root / "study.yaml", out_dir=root / "s", runner=fake_train_and_evaluate, progress=False)
    for metrics in (root / "s" / "runs").rglob("metrics.json"):
        _add_faithfulness(metrics.parent)
    return root / "s"


def test_results_table_has_faithfulness_columns(faithful_study):
    df = study_results(faithful_study)
    langs = df[df["level"] == "language"]
    for col in ("nli_entailment_mean", "nli_entailment_lo", "nli_entailment_hi", "novel_2gram_share_mean",
                "fragment_coverage_mean", "novel_number_share_mean", "nli_chunked_share", "nli_model"):
        assert col in df.columns, col
    lora = langs[langs["method"] == "lora"]["nli_entailment_mean"]
    full = langs[langs["method"] == "full"]["nli_entailment_mean"]
    assert (lora > 0.79).all() and (full < 0.42).all()
    assert (langs["nli_chunked_share"] == 0.5).all()
    assert (df["nli_model"] == "rigged-nli").all()


def test_report_has_faithfulness_figures_and_paired_test(faithful_study):
    page = study_report(faithful_study, resamples=200)
    html = page.read_text()
    for key in ("faithfulness_rouge", "abstractiveness"):
        assert f"id='fig-{key}'" in html
    assert "Faithfulness axis: NLI entailment" in html
    assert "LoRA vs full fine-tuning: faithfulness, per language" in html
    table = faithfulness_paired(faithful_study, study_results(faithful_study, write=False), resamples=200)
    assert len(table) == 8  # 2 languages x 2 shots x 2 seeds
    assert table["Δ NLI entailment [95% CI]"].str.startswith("+0.400").all()  # LoRA - full, every pair
    assert (table["p NLI entailment"].astype(float) < 0.05).all()
    # one family per measure: Holm over the 8 rows, next to the raw p
    raw, holm = table["p NLI entailment"].astype(float), table["p Holm NLI entailment"].astype(float)
    assert (holm >= raw).all() and (holm > raw).any()
    cols = list(table.columns)
    assert cols.index("p Holm NLI entailment") == cols.index("p NLI entailment") + 1
    assert "Holm-adjusted" in html
    assert "Δ novel numbers [95% CI]" not in table  # the fake texts hold no numbers
