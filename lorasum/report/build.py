"""Assembling a study's report: results table -> figures, tables, tests -> HTML + Markdown."""
from __future__ import annotations

import html
from pathlib import Path

import pandas as pd

from lorasum.report import composition, plots
from lorasum.report.compare import paired_comparisons, sample_summaries
from lorasum.report.faithfulness import faithfulness_sections
from lorasum.report.findings import findings_section
from lorasum.report.html import Section, table_html, table_markdown, write_report
from lorasum.metrics.stats import P_ADJUST_METHODS
from lorasum.study.results import over_seeds, study_results

SIGNIFICANCE = 0.05
# the correction behind the report's colours and counts (family-wise, over every per-language test)
CORRECTION = "holm"


def _ci(mean, lo, hi) -> str:
    if pd.isna(mean):
        return "–"
    return f"{mean:.2f} [{lo:.2f}, {hi:.2f}]" if pd.notna(lo) else f"{mean:.2f}"


def results_by_language(df: pd.DataFrame) -> pd.DataFrame:
    """Per group of cells differing only in seed, per language: ROUGE over seeds and efficiency.

    ROUGE cells read "mean over seeds [lowest, highest 95% CI bound of the seeds]"; the
    ROUGE-L standard deviation over seeds has its own column. Cells scored on several
    languages add a "macro avg" row (the headline macro average over their languages).
    """
    agg = over_seeds(df)
    multi = agg["test_langs"].astype(str).str.contains("+", regex=False)
    rows = agg[(agg["level"] == "language") | ((agg["level"] == "overall") & multi)]
    out = []
    for _, g in rows.iterrows():
        lang = "macro avg" if g["level"] == "overall" else g["lang"]
        target = g.get("target_lang")
        # cross-lingual cells summarise into another language: source and target side by side
        rec = {"scenario": g["scenario"], "lang": lang,
               "target": target if isinstance(target, str) and target and target != "all" else lang,
               "train": g["train_langs"], "shots": "all" if pd.isna(g["shots"]) else int(g["shots"]),
               "variant": g["variant"], "seeds": int(g["n_seeds"])}
        if g.get("composition") in ("uniform", "learned"):  # compose cells: which weights
            rec["variant"] += f" ({g['composition']})"
            rec["shots"] = rec["shots"] if g["composition"] == "learned" else "–"  # uniform reads no target data
        for m, label in (("rouge1", "ROUGE-1"), ("rouge2", "ROUGE-2"), ("rougeL", "ROUGE-L")):
            rec[label] = _ci(g[f"{m}_mean_over_seeds"], g[f"{m}_ci_lo_min"], g[f"{m}_ci_hi_max"])
        sd = g["rougeL_std_over_seeds"]
        rec["ROUGE-L sd over seeds"] = f"{sd:.2f}" if pd.notna(sd) else "–"
        tp = g["trainable_params"]
        rec["trainable params"] = f"{int(tp):,}" if pd.notna(tp) else "–"
        rec["artifact MB"] = g["artifact_mb"]
        rec["train s"] = g["train_seconds"]
        rec["peak MB"] = g["peak_memory_mb"]
        out.append(rec)
    cols = ["scenario", "lang", "target", "train", "shots", "variant", "seeds", "ROUGE-1", "ROUGE-2", "ROUGE-L",
            "ROUGE-L sd over seeds", "trainable params", "artifact MB", "train s", "peak MB"]
    return pd.DataFrame(out)[cols] if out else pd.DataFrame(columns=cols)


def _paired_display(t: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """The matched-pair table with raw and adjusted p-values; rows significant after
    :data:`CORRECTION` are coloured (``classes``: row index -> CSS class)."""
    t = t.reset_index(drop=True)
    disp = pd.DataFrame({
        "scenario": t["scenario"], "lang": t["lang"], "train": t["train_langs"],
        "shots": [("all" if pd.isna(s) else int(s)) for s in t["shots"]], "seed": t["seed"], "LoRA": t["variant"],
        "full ROUGE-L": t["full_rougeL"], "LoRA ROUGE-L": t["lora_rougeL"],
        "Δ ROUGE-L [95% CI]": [f"{d:+.2f} [{lo:+.2f}, {hi:+.2f}]"
                               for d, lo, hi in zip(t["diff"], t["ci_lo"], t["ci_hi"])],
        "p": [f"{p:.3f}" for p in t["p_value"]],
        "p (Holm)": [f"{p:.3f}" if pd.notna(p) else "–" for p in t["p_holm"]],
        "p (BH)": [f"{p:.3f}" if pd.notna(p) else "–" for p in t["p_bh"]],
        "n": t["n"],
    })
    classes = {}
    for i, (d, p) in enumerate(zip(t["diff"], t[f"p_{CORRECTION}"])):
        if pd.notna(p) and p < SIGNIFICANCE:
            classes[i] = "win" if d > 0 else "loss"
    return disp, classes


def _paired_summary(t: pd.DataFrame) -> pd.DataFrame:
    """Per scenario and LoRA variant: per-language wins and losses, after :data:`CORRECTION`
    and (for comparison) uncorrected."""
    name = P_ADJUST_METHODS[CORRECTION]
    rows = []
    for (scenario, variant), g in t[t["level"] == "language"].groupby(["scenario", "variant"]):
        sig = g[f"p_{CORRECTION}"] < SIGNIFICANCE
        raw = g["p_value"] < SIGNIFICANCE
        rows.append({"scenario": scenario, "LoRA": variant, "comparisons": len(g),
                     "mean Δ ROUGE-L": g["diff"].mean(),
                     f"LoRA better ({name} p<{SIGNIFICANCE})": int((sig & (g["diff"] > 0)).sum()),
                     f"full better ({name} p<{SIGNIFICANCE})": int((sig & (g["diff"] < 0)).sum()),
                     "no significant difference": int((~sig).sum()),
                     f"LoRA better (uncorrected p<{SIGNIFICANCE})": int((raw & (g["diff"] > 0)).sum()),
                     f"full better (uncorrected p<{SIGNIFICANCE})": int((raw & (g["diff"] < 0)).sum())})
    return pd.DataFrame(rows)


def _study_name(study_dir: Path) -> str:
    """The spec's name when the folder keeps its study.yaml, else the folder's name."""
    import yaml

    try:
        return str(yaml.safe_load((study_dir / "study.yaml").read_text(encoding="utf-8"))["name"])
    except (OSError, KeyError, TypeError, yaml.YAMLError):
        return study_dir.resolve().name


def study_report(study_dir: str | Path, *, out_dir: str | Path | None = None, resamples: int = 1000) -> Path:
    """Write the study's report (``report/index.html``, ``summary.md``, ``figures/``); return the HTML path.

    Also refreshes ``results.csv``/``results.parquet``. Sections the study has no data for
    are kept as a short note, so a partly finished study still gets a report.
    """
    study_dir = Path(study_dir)
    out_dir = Path(out_dir) if out_dir else study_dir / "report"
    df = study_results(study_dir)
    sections: list[Section] = []

    specs = [
        ("learning_curves", "Low data: ROUGE-L vs training examples",
         "Mean over seeds of each cell's ROUGE-L F (x100) on the test split; x is the number of training "
         "examples per language (log scale). With two or more seeds the band is the 95% t-interval over the "
         "seeds and dots are the seeds; a one-seed point has error bars, its 95% bootstrap CI over test items. "
         "Series at the same x are shifted slightly sideways so none hides another.",
         "needs finished low_data cells"),
        ("transfer", "Cross-lingual transfer",
         "Zero-shot cells train on the source languages only; few-shot cells continue them on k examples "
         "of the target language; multi-source cells (hollow markers) train on several sources.",
         "needs finished zero_shot or multi_source cells"),
        ("rank_ablation", "LoRA rank and target modules",
         "Cells that differ only in LoRA rank; the dashed line is full fine-tuning on the same data.",
         "needs LoRA cells at two or more ranks on the same data"),
        ("efficiency", "Quality vs trainable parameters and artifact size",
         "One point per scenario (colour) and method variant (marker): mean ROUGE-L over its cells; "
         "scenarios are shifted slightly sideways so equal points stay visible.",
         "needs finished cells with efficiency figures"),
    ]
    paired, note = paired_comparisons(study_dir, df, resamples=resamples)
    sections.append(findings_section(df, paired, alpha=SIGNIFICANCE, correction=CORRECTION, resamples=resamples))
    for key, title, intro, need in specs:
        fig = plots.FIGURES[key](df)
        if fig is None:
            sections.append(Section(key, title, note=f"Omitted: the study has no data for this section ({need})."))
        else:
            sections.append(Section(key, title, intro=intro, png=plots.png_bytes(fig)))
    sections.append(composition.section(study_dir, df))

    name = P_ADJUST_METHODS[CORRECTION]
    sec = Section("paired", "LoRA vs full fine-tuning, per language",
                  intro="Paired bootstrap test on the same test items (matching cells: same scenario, languages, "
                        f"shots and seed). Δ = LoRA − full, ROUGE-L F x100. p-values are given raw and adjusted for "
                        f"multiple comparisons over all per-language tests of this report (Holm: family-wise "
                        f"error; BH: Benjamini-Hochberg false discovery rate); green/red: {name}-adjusted "
                        f"p < {SIGNIFICANCE}.")
    if paired.empty:
        sec.note = f"Omitted: {note}."
    else:
        summary = _paired_summary(paired)
        langs = paired[paired["level"] == "language"]
        floor = len(langs) / (resamples + 1)  # Holm's multiplier on the smallest bootstrap p-value
        if floor >= SIGNIFICANCE:
            sec.intro += (f" With {len(langs)} tests and {resamples} bootstrap resamples the smallest attainable "
                          f"Holm-adjusted p is {floor:.3f}: rerun the report with more resamples "
                          f"(--resamples) to resolve significance.")
        disp, classes = _paired_display(langs)
        caption = (f"Every matched pair, per language ({len(langs)} tests; colours and counts use "
                   f"{name}-adjusted p < {SIGNIFICANCE})")
        sec.tables_html = [table_html(summary, f"Summary (counts use {name}-adjusted p-values)",
                                      text_cols=("scenario", "LoRA")),
                           table_html(disp, caption, text_cols=("scenario", "lang", "train", "LoRA"), classes=classes)]
        sec.markdown = (f"Summary (counts use {name}-adjusted p-values)\n\n" + table_markdown(summary)
                        + f"\n\n{caption}\n\n" + table_markdown(disp))
        macro = paired[paired["level"] == "macro"]
        if not macro.empty:
            mdisp, _ = _paired_display(macro)
            mdisp = mdisp.drop(columns=["lang", "p (Holm)", "p (BH)"])
            mcap = ("Macro average over each pair's test languages (stratified paired bootstrap; "
                    "not part of the corrected family)")
            sec.tables_html.append(table_html(mdisp, mcap, text_cols=("scenario", "train", "LoRA")))
            sec.markdown += f"\n\n{mcap}\n\n" + table_markdown(mdisp)
    sections.append(sec)

    sections.extend(faithfulness_sections(study_dir, df, resamples=resamples))

    by_lang = results_by_language(df)
    sections.append(Section(
        "per_language", "Results per language",
        intro="ROUGE F x100, mean over seeds [lowest, highest 95% bootstrap CI bound over seeds], and the "
              "standard deviation of ROUGE-L over seeds (cells that differ only in seed; "
              "results_over_seeds.csv); 'macro avg' rows average a cell's languages equally. "
              "Efficiency figures are means over the same cells.",
        tables_html=[table_html(by_lang, text_cols=("scenario", "lang", "target", "train", "variant", "ROUGE-1", "ROUGE-2",
                                                    "ROUGE-L", "ROUGE-L sd over seeds"))],
        markdown=table_markdown(by_lang)))

    samples = sample_summaries(study_dir, df)
    sec = Section("samples", "Sample summaries", intro="Test items side by side, from the matched pair of cells "
                                                       "with the most training data for each language.")
    if not samples:
        sec.note = "Omitted: no matched LoRA/full pair of cells has predictions yet."
    else:
        s = pd.DataFrame(samples)[["lang", "id", "reference", "full", "lora", "cells"]]
        sec.tables_html = ["<div class='samples'>" + table_html(
            s.rename(columns={"full": "full fine-tuning", "lora": "LoRA"}),
            text_cols=("lang", "id", "cells"), prose_cols=("reference", "full fine-tuning", "LoRA")) + "</div>"]
        sec.markdown = table_markdown(s, prose_cols=("reference", "full", "lora"))
    sections.append(sec)

    n_cells = df["cell_id"].nunique()
    scen = ", ".join(sorted(df["scenario"].unique()))
    langs = ", ".join(sorted(df[df["level"] == "language"]["lang"].unique()))
    name = _study_name(study_dir)
    sub_md = (f"{n_cells} finished cells; scenarios: {scen}; test languages: {langs}. "
              "Full table: `results.csv` / `results.parquet` in the study folder.")
    sub_html = html.escape(sub_md).replace("`", "")
    return write_report(out_dir, f"Study report: {name}", sub_html, sub_md, sections)
