"""The report's faithfulness sections: figures from the results table, and paired LoRA-vs-full tests.

The faithfulness axis is NLI entailment when the study's cells ran an NLI model
(``evaluation.faithfulness``); otherwise the model-free hallucination proxy
``novel_number_share`` (share of summary numbers absent from the article; lower is more
faithful), labelled as such. Paired tests join matched cells' ``predictions.jsonl`` per
item (their ``faithfulness`` field) and use
:func:`lorasum.metrics.faithfulness.faithfulness_paired_test`.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from lorasum.report import plots
from lorasum.report.compare import matched_pairs, read_predictions
from lorasum.report.html import Section, table_html, table_markdown

NLI = "nli_entailment"
PROXY = "novel_number_share"
PAIRED_MEASURES = (("nli_entailment", "NLI entailment"), ("novel_number_share", "novel numbers"),
                   ("novel_capitalised_share", "novel capitalised"), ("novel_2gram_share", "novel bigrams"))
SIGNIFICANCE = 0.05


def faithfulness_measure(df: pd.DataFrame) -> tuple[str, str] | None:
    """(column stem, axis label) of the faithfulness figure the table supports, or None."""
    rows = df[df["level"] == "language"]
    if f"{NLI}_mean" in rows and rows[f"{NLI}_mean"].notna().any():
        return NLI, "NLI entailment P (higher: more faithful)"
    if f"{PROXY}_mean" in rows and rows[f"{PROXY}_mean"].notna().any():
        return PROXY, "novel number share (lower: more faithful)"
    return None


def _scatter(df: pd.DataFrame, x: str, xlabel: str, title: str) -> Figure | None:
    measure = faithfulness_measure(df)
    rows = df[df["level"] == "language"]
    if measure is None or f"{x}_mean" not in rows:
        return None
    y, ylabel = measure
    rows = rows.dropna(subset=[f"{x}_mean", f"{y}_mean"])
    if rows.empty:
        return None
    fig = Figure(figsize=(5.5, 4.4), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    variants = sorted(set(rows["variant"]), key=lambda v: (v != "full", v))
    styles = plots.variant_styles(variants)
    for v in variants:
        r = rows[rows["variant"] == v]
        # hollow markers of distinct shapes: points of two variants at the same place both stay visible
        ax.scatter(r[f"{x}_mean"].astype(float), r[f"{y}_mean"].astype(float), s=30, label=v,
                   marker=styles[v]["marker"], facecolors="none", edgecolors=styles[v]["color"], linewidths=1.2)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_xlim(left=0)
    plots.y_from_zero(ax, float(rows[f"{y}_mean"].astype(float).max()))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.suptitle(title, fontsize=10)
    return fig


def faithfulness_vs_rouge(df: pd.DataFrame) -> Figure | None:
    """One point per (cell, language): ROUGE-L vs faithfulness, coloured by method variant."""
    return _scatter(df, "rougeL", "ROUGE-L F", "Faithfulness vs ROUGE-L (one point per cell and language)")


def abstractiveness_vs_faithfulness(df: pd.DataFrame) -> Figure | None:
    """One point per (cell, language): novel bigram share vs faithfulness."""
    return _scatter(df, "novel_2gram_share", "novel bigram share (abstractiveness)",
                    "Abstractiveness vs faithfulness (one point per cell and language)")


def _items(path: Path) -> dict[tuple[str, str], dict]:
    """Each prediction's faithfulness signals, keyed as :func:`read_predictions` keys them."""
    return {k: r["faithfulness"] for k, r in read_predictions(path).items() if isinstance(r.get("faithfulness"), dict)}


def faithfulness_paired(study_dir: str | Path, df: pd.DataFrame, *, resamples: int = 1000) -> pd.DataFrame:
    """One row per (matched LoRA/full pair, language): Δ = LoRA − full per faithfulness measure, CI and p."""
    from lorasum.metrics import adjust_p_values
    from lorasum.metrics.faithfulness import faithfulness_paired_test

    study_dir = Path(study_dir)
    rows = []
    for lora, full in matched_pairs(df):
        a = _items(study_dir / lora["run_dir"] / "predictions.jsonl")
        b = _items(study_dir / full["run_dir"] / "predictions.jsonl")
        keys = sorted(set(a) & set(b))
        if not keys:
            continue
        res = faithfulness_paired_test([a[k] for k in keys], [b[k] for k in keys], [k[1] for k in keys],
                                       resamples=resamples, seed=0)
        for lang, tests in sorted(res["per_lang"].items()):
            rec = {"scenario": lora["scenario"], "lang": lang, "train": lora["train_langs"],
                   "shots": "all" if pd.isna(lora["shots"]) else int(lora["shots"]), "seed": lora["seed"],
                   "LoRA": lora["variant"]}
            for key, label in PAIRED_MEASURES:
                t = tests.get(key)
                if t is not None:
                    rec[f"Δ {label} [95% CI]"] = f"{t['diff']:+.3f} [{t['ci'][0]:+.3f}, {t['ci'][1]:+.3f}]"
                    rec[f"p {label}"] = t["p_value"]
            rows.append(rec)
    table = pd.DataFrame(rows)
    # each measure is one family: its p-values are Holm-adjusted over all of its rows
    for _, label in PAIRED_MEASURES:
        col = f"p {label}"
        if col not in table:
            continue
        has = table[col].notna()
        table.loc[has, f"p Holm {label}"] = adjust_p_values(table.loc[has, col].to_numpy(dtype=float), "holm")
        for c in (col, f"p Holm {label}"):
            table[c] = table[c].map(lambda v: "" if pd.isna(v) else f"{v:.3f}")
    first = [c for c in table.columns if not c.startswith(("Δ ", "p "))]
    per_measure = [c for _, label in PAIRED_MEASURES
                   for c in (f"Δ {label} [95% CI]", f"p {label}", f"p Holm {label}") if c in table]
    return table[first + per_measure]


def faithfulness_sections(study_dir: str | Path, df: pd.DataFrame, *, resamples: int = 1000) -> list[Section]:
    """The report's faithfulness figures and paired-test table (short notes where data is missing)."""
    measure = faithfulness_measure(df)
    axis = "NLI entailment" if measure and measure[0] == NLI else (
        "the novel number share (no NLI model was configured: set evaluation.faithfulness)")
    sections = []
    for key, fn, title in (("faithfulness_rouge", faithfulness_vs_rouge, "Faithfulness vs ROUGE-L per method"),
                           ("abstractiveness", abstractiveness_vs_faithfulness, "Abstractiveness vs faithfulness")):
        fig = fn(df)
        if fig is None:
            sections.append(Section(key, title, note="Omitted: no cell recorded faithfulness signals."))
        else:
            sections.append(Section(key, title, intro=f"Faithfulness axis: {axis}.", png=plots.png_bytes(fig)))
    table = faithfulness_paired(study_dir, df, resamples=resamples)
    sec = Section("faithfulness_paired", "LoRA vs full fine-tuning: faithfulness, per language",
                  intro="Paired bootstrap test on the same test items, Δ = LoRA − full (shares and P in [0, 1]). "
                        "Higher NLI entailment and lower novel-number / novel-capitalised shares mean more "
                        f"faithful summaries. Each measure's p-values are Holm-adjusted over all of its rows (one "
                        f"family per measure); a Holm-adjusted p < {SIGNIFICANCE} marks a significant difference.")
    if table.empty:
        sec.note = "Omitted: no matched LoRA/full pair of cells has per-item faithfulness signals."
    else:
        sec.tables_html = [table_html(table, text_cols=tuple(c for c in table.columns if c not in ("seed",)))]
        sec.markdown = table_markdown(table)
    sections.append(sec)
    return sections
