"""Seed aggregates, macro rows and corrected p-values in the results table and report,
on a hand-built study whose figures are known."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PolyCollection
from scipy import stats

from lorasum.io import write_json, write_jsonl
from lorasum.metrics import adjust_p_values
from lorasum.report import plots
from lorasum.report.build import _paired_display, _paired_summary, results_by_language, study_report
from lorasum.report.compare import paired_comparisons
from lorasum.study import study_results
from lorasum.study.results import over_seeds

# ROUGE-L of the three seeds of each low-data cell
SEED_SCORES = {("full", 16): [10.0, 12.0, 14.0], ("full", 64): [20.0, 20.0, 23.0],
               ("lora", 16): [15.0, 16.0, 17.0], ("lora", 64): [22.0, 24.0, 26.0]}
WORDS = "the minister said on monday that prices rose".split()


def _stat(x: float) -> dict:
    return {"mean": x, "mean_ci": [x - 1, x + 1], "mid": x, "mid_ci": [x - 1, x + 1]}


def _block(x: float, n: int) -> dict:
    return {"rouge1": _stat(x + 5), "rouge2": _stat(x / 2), "rougeL": _stat(x), "n": n}


def _predictions(langs: list[str], keep: dict[str, int]) -> list[dict]:
    rows = []
    for lang in langs:
        for i in range(12):
            ref = " ".join(WORDS[(i + j) % len(WORDS)] for j in range(len(WORDS)))
            k = keep[lang] + (i % 3)  # some spread, so a bootstrap has something to resample
            pred = " ".join(ref.split()[:k] + ["something"] * (len(WORDS) - k))
            rows.append({"id": f"{lang}-{i}", "lang": lang, "reference": ref, "prediction": pred})
    return rows


def _cell(root, *, scenario, regime, method, seed, shots, train, test, scores, keep):
    variant = "full" if method == "full" else "lora-r8-attention"
    cell_id = f"{scenario}/{train}/{variant}/shots{shots}/seed{seed}"
    d = root / "runs" / cell_id
    write_json(d / "cell.json", {
        "cell_id": cell_id, "scenario": scenario, "regime": regime, "method": method, "variant": variant,
        "rank": None if method == "full" else 8, "targets": None if method == "full" else "attention",
        "seed": seed, "shots": shots, "train_langs": [train], "test_langs": test,
        "config_hash": f"{cell_id}-hash"})
    per_lang = {lang: _block(scores[lang], 12) for lang in test}
    macro = {**_block(sum(scores.values()) / len(scores), 12 * len(test)), "n_langs": len(test)}
    write_json(d / "metrics.json", {
        "run": {"model": "tiny", "train_examples": {train: shots}},
        "rouge": {"overall": macro, "pooled": _block(sum(scores.values()) / len(scores) + 0.5, 12 * len(test)),
                  "per_lang": per_lang},
        "efficiency": {"trainable_params": 10 if method == "lora" else 1000, "artifact_mb": 1.0,
                       "train_seconds": 1.0 + seed, "peak_memory_mb": 100.0},
        "losses": {}})
    write_jsonl(d / "predictions.jsonl", _predictions(test, keep))


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("seeds")
    for (method, shots), values in SEED_SCORES.items():
        for seed, v in enumerate(values):
            _cell(root, scenario="low_data", regime="low_data", method=method, seed=seed, shots=shots, train="en",
                  test=["en"], scores={"en": v}, keep={"en": 3 if method == "full" else 5})
    # one pair scored on two languages: LoRA far better on fr, slightly on ru
    for method in ("full", "lora"):
        _cell(root, scenario="zero_shot", regime="zero_shot", method=method, seed=0, shots=None, train="en",
              test=["fr", "ru"], scores={"fr": 10.0, "ru": 30.0} if method == "full" else {"fr": 20.0, "ru": 31.0},
              keep={"fr": 1, "ru": 4} if method == "full" else {"fr": 5, "ru": 4})
    return root


def test_over_seeds_gives_mean_and_std_of_the_seeds(study):
    df = study_results(study)
    agg = over_seeds(df)
    written = pd.read_csv(study / "results_over_seeds.csv")
    assert len(written) == len(agg)
    rows = agg[(agg["level"] == "language") & (agg["scenario"] == "low_data")]
    assert len(rows) == 4 and (rows["n_seeds"] == 3).all() and (rows["seeds"] == "0+1+2").all()
    for (method, shots), values in SEED_SCORES.items():
        r = rows[(rows["method"] == method) & (rows["shots"] == shots)].iloc[0]
        assert r["rougeL_mean_over_seeds"] == pytest.approx(np.mean(values))
        assert r["rougeL_std_over_seeds"] == pytest.approx(np.std(values, ddof=1))
        assert r["rouge1_mean_over_seeds"] == pytest.approx(np.mean(values) + 5)
        assert r["rougeL_ci_lo_min"] == min(values) - 1 and r["rougeL_ci_hi_max"] == max(values) + 1
        assert r["train_seconds"] == pytest.approx(2.0)  # mean of 1, 2, 3
    one = agg[(agg["scenario"] == "zero_shot") & (agg["level"] == "language")]
    assert (one["n_seeds"] == 1).all() and one["rougeL_std_over_seeds"].isna().all()
    r = written[(written["method"] == "full") & (written["shots"] == 64) & (written["level"] == "language")].iloc[0]
    assert r["rougeL_std_over_seeds"] == pytest.approx(math.sqrt(3))


def test_results_table_has_macro_and_pooled_rows(study):
    df = study_results(study)
    cell = df[df["cell_id"] == "zero_shot/en/lora-r8-attention/shotsNone/seed0"]
    assert set(zip(cell["level"], cell["lang"])) == {("overall", "macro"), ("pooled", "all"), ("language", "fr"),
                                                     ("language", "ru")}
    assert cell[cell["level"] == "overall"]["rougeL_mean"].iloc[0] == 25.5
    assert cell[cell["level"] == "pooled"]["rougeL_mean"].iloc[0] == 26.0


def test_report_tables_and_learning_curve_use_the_seed_figures(study):
    df = study_results(study)
    by_lang = results_by_language(df)
    r = by_lang[(by_lang["variant"] == "full") & (by_lang["shots"] == 16)].iloc[0]
    assert r["seeds"] == 3 and r["ROUGE-L"] == "12.00 [9.00, 15.00]" and r["ROUGE-L sd over seeds"] == "2.00"
    macro = by_lang[(by_lang["lang"] == "macro avg") & (by_lang["variant"] == "full")]
    assert len(macro) == 1 and macro.iloc[0]["ROUGE-L"].startswith("20.00")
    fig = plots.learning_curves(df)
    (ax,) = [a for a in fig.axes if a.get_visible() and a.get_title() == "en"]
    lines = {line.get_label(): line for line in ax.get_lines() if not line.get_label().startswith("_")}
    assert set(lines) == {"full (3 seeds)", "lora-r8-attention (3 seeds)"}
    t = stats.t.ppf(0.975, 2) / math.sqrt(3)  # three seeds: 95% t-interval half-width per unit sd
    want = {"full (3 seeds)": [(12.0, 2.0 * t), (21.0, math.sqrt(3) * t)],
            "lora-r8-attention (3 seeds)": [(16.0, 1.0 * t), (24.0, 2.0 * t)]}
    bands = [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert len(bands) == 2 and not ax.containers  # seed bands, no error bars
    for (label, line), band in zip(lines.items(), bands):
        ys = band.get_paths()[0].vertices[:, 1]
        for (y, half), got in zip(want[label], line.get_ydata()):
            assert got == pytest.approx(y)
            assert min(abs(ys - (y - half))) < 1e-6 and min(abs(ys - (y + half))) < 1e-6


def test_paired_comparisons_adjust_the_language_tests_and_add_a_macro_row(study):
    df = study_results(study)
    table, note = paired_comparisons(study, df, resamples=300)
    assert note is None
    langs = table[table["level"] == "language"]
    assert len(langs) == 8  # 2 shots x 3 seeds on en, plus fr and ru
    np.testing.assert_allclose(langs["p_holm"], adjust_p_values(langs["p_value"], "holm"))
    np.testing.assert_allclose(langs["p_bh"], adjust_p_values(langs["p_value"], "bh"))
    (macro,) = table[table["level"] == "macro"].itertuples()
    fr_ru = langs[langs["scenario"] == "zero_shot"].set_index("lang")["diff"]
    assert macro.lang == "macro avg" and macro.diff == pytest.approx(fr_ru.mean(), abs=1e-3)
    assert pd.isna(macro.p_holm) and macro.full_rougeL == 20.0 and macro.lora_rougeL == 25.5


# Benjamini & Hochberg (1995), section 4: Holm rejects three at 0.05, BH four, uncorrected nine.
BH_1995 = [0.0001, 0.0004, 0.0019, 0.0095, 0.0201, 0.0278, 0.0298, 0.0344, 0.0459, 0.3240, 0.4262, 0.5719, 0.6528,
           0.7590, 1.000]


def test_report_counts_and_colours_use_holm_adjusted_p_values():
    p = np.array(BH_1995)
    t = pd.DataFrame({"level": "language", "scenario": "low_data", "train_langs": "en",
                      "lang": [f"l{i}" for i in range(15)],
                      "shots": 16, "seed": 0, "variant": "lora", "full_rougeL": 20.0, "lora_rougeL": 21.0,
                      "diff": [1.0] * 14 + [-1.0], "ci_lo": 0.5, "ci_hi": 1.5, "p_value": p,
                      "p_holm": adjust_p_values(p, "holm"), "p_bh": adjust_p_values(p, "bh"), "n": 50})
    summary = _paired_summary(t).iloc[0]
    assert summary["LoRA better (Holm p<0.05)"] == 3 and summary["full better (Holm p<0.05)"] == 0
    assert summary["no significant difference"] == 12
    assert summary["LoRA better (uncorrected p<0.05)"] == 9
    disp, classes = _paired_display(t)
    assert classes == {0: "win", 1: "win", 2: "win"}
    assert list(disp["p (Holm)"][:4]) == ["0.002", "0.006", "0.025", "0.114"]
    assert disp["p (BH)"][3] == "0.036" and disp["p"][3] == "0.009"


def test_report_names_the_correction(study):
    html = study_report(study, resamples=100).read_text()
    assert "Holm-adjusted p &lt; 0.05" in html and "<th>p (Holm)</th>" in html and "<th>p (BH)</th>" in html
    assert "Macro average over each pair" in html and "ROUGE-L sd over seeds" in html
    # 8 tests, p >= 1/101: Holm cannot go below 8/101, and the page says so
    assert "smallest attainable Holm-adjusted p is 0.079" in html
    assert "smallest attainable" not in study_report(study, resamples=400).read_text()
