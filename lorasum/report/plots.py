"""The report's figures, each drawn from the tidy results table.

Every function takes the table from :func:`lorasum.study.results.results_table` and
returns a matplotlib ``Figure``, or ``None`` when the study has no data for it. Figures
are built with the object API on an Agg canvas: no pyplot state, no display needed.

Seeds: a point is the mean ROUGE-L over seeds; its band spans the lowest to the highest
95% bootstrap CI bound of those seeds (with one seed, that seed's CI). The learning
curves take their points from :func:`lorasum.study.results.over_seeds` (the figures of
``results_over_seeds.csv``) and add the standard deviation over seeds as error bars.
"""
from __future__ import annotations

import io
import math

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from lorasum.methods import BASELINE
from lorasum.study.results import over_seeds

METRIC = "rougeL"
FULL_COLOR = "#d62728"
LORA_COLORS = ["#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2", "#7f7f7f"]


def _axes_labels(ax, xlabel: str, *, ylabel: str = "ROUGE-L F", legend: bool = False) -> None:
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if legend:
        ax.legend(fontsize=7)


def _fig(n_panels: int, width: float = 4.2, height: float = 3.3, max_cols: int = 4) -> tuple[Figure, list]:
    cols = min(max(n_panels, 1), max_cols)
    rows = math.ceil(max(n_panels, 1) / cols)
    fig = Figure(figsize=(width * cols, height * rows + 0.6), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False).ravel().tolist()
    for ax in axes[n_panels:]:
        ax.set_visible(False)
    return fig, axes[:n_panels]


def _colors(variants: list[str]) -> dict[str, str]:
    out, k = {}, 0
    for v in variants:
        if v == BASELINE:
            out[v] = FULL_COLOR
        else:
            out[v] = LORA_COLORS[k % len(LORA_COLORS)]
            k += 1
    return out


def _variant_order(variants) -> list[str]:
    vs = sorted(set(variants), key=lambda v: (v != BASELINE, v))
    return vs


def _rank_free(variants: pd.Series) -> pd.Series:
    """A variant label without its rank (``lora-r8-attention`` -> ``lora-attention``): one line per rank sweep."""
    return variants.str.replace(r"-r\d+(?=-|$)", "", regex=True)


def _by_seed(rows: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Mean over seeds, with the band from the seeds' CI bounds."""
    m = f"{METRIC}_mean"
    g = rows.groupby(keys, dropna=False)
    return g.agg(y=(m, "mean"), lo=(f"{m}_lo", "min"), hi=(f"{m}_hi", "max"), seeds=("seed", "nunique")).reset_index()


def _lang_rows(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["level"] == "language"]


def learning_curves(df: pd.DataFrame) -> Figure | None:
    """The paper's main figure: ROUGE-L vs training examples per method, one panel per language."""
    low = _lang_rows(df)
    low = low[low["regime"] == "low_data"]
    if low.empty:
        return None
    # the scenarios that compare methods; an ablation-only scenario would crowd the figure
    both = [s for s, g in low.groupby("scenario") if g["method"].nunique() > 1]
    if both:
        low = low[low["scenario"].isin(both)]
    langs = sorted(low["lang"].unique())
    fig, axes = _fig(len(langs))
    colors = _colors(_variant_order(low["variant"]))
    agg = over_seeds(low)
    several = agg["scenario"].nunique() > 1
    y, sd = f"{METRIC}_mean_over_seeds", f"{METRIC}_std_over_seeds"
    for ax, lang in zip(axes, langs):
        for v in _variant_order(agg[agg["lang"] == lang]["variant"]):
            for scenario, a in agg[(agg["lang"] == lang) & (agg["variant"] == v)].groupby("scenario"):
                a = a.sort_values("shots")
                x = a["shots"].astype(float).to_numpy()
                ax.errorbar(x, a[y].astype(float), yerr=a[sd].astype(float).fillna(0).to_numpy(), marker="o",
                            capsize=3, color=colors[v], label=f"{scenario}: {v}" if several else v)
                ax.fill_between(x, a[f"{METRIC}_ci_lo_min"].astype(float), a[f"{METRIC}_ci_hi_max"].astype(float),
                                color=colors[v], alpha=0.18, linewidth=0)
            pts = low[(low["lang"] == lang) & (low["variant"] == v)]
            ax.scatter(pts["shots"].astype(float), pts[f"{METRIC}_mean"], color=colors[v], s=8, alpha=0.5)
        ax.set_xscale("log", base=2)
        ax.set_title(lang)
        _axes_labels(ax, "training examples (per language)")
    axes[0].legend(fontsize=8)
    fig.suptitle("Low data: ROUGE-L vs training examples (mean ± sd over seeds; band: 95% CIs of the seeds)")
    return fig


def transfer(df: pd.DataFrame) -> Figure | None:
    """Zero-shot (k = 0) and few-shot (k target examples) ROUGE-L per target language."""
    rows = _lang_rows(df)
    zero = rows[rows["regime"] == "zero_shot"]
    few = rows[rows["regime"] == "few_shot"]
    multi = rows[rows["regime"] == "multi_source"]
    if zero.empty and multi.empty:
        return None
    targets = sorted(set(zero["lang"]) | set(multi["lang"]))
    fig, axes = _fig(len(targets))
    colors = _colors(_variant_order(pd.concat([zero, multi])["variant"]))
    for ax, lang in zip(axes, targets):
        z = _by_seed(zero[zero["lang"] == lang].assign(shots=0), ["variant", "train_langs", "shots"])
        f = _by_seed(few[few["lang"] == lang], ["variant", "shots"]) if not few.empty else pd.DataFrame()
        ks = sorted({0, *([] if f.empty else f["shots"].astype(int).tolist())})
        pos = {k: i for i, k in enumerate(ks)}
        for v in _variant_order(z["variant"]):
            line = z[z["variant"] == v][["shots", "y", "lo", "hi"]]
            if not f.empty:
                line = pd.concat([line, f[f["variant"] == v][["shots", "y", "lo", "hi"]]])
            line = line.sort_values("shots")
            x = [pos[int(k)] for k in line["shots"]]
            yerr = np.array([line["y"] - line["lo"], line["hi"] - line["y"]], dtype=float)
            ax.errorbar(x, line["y"], yerr=yerr, marker="o", capsize=3, color=colors[v], label=v)
        m = _by_seed(multi[multi["lang"] == lang], ["variant", "train_langs"])
        x_multi = -0.25 if not z.empty else 0
        for _, r in m.iterrows():
            ax.errorbar([x_multi], [r["y"]], yerr=[[r["y"] - r["lo"]], [r["hi"] - r["y"]]], marker="s",
                        mfc="white", capsize=3, color=colors[r["variant"]], linestyle="none",
                        label=f"{r['variant']} multi-source ({r['train_langs']})")
        src = "+".join(sorted(set(zero[zero["lang"] == lang]["train_langs"])))
        if z.empty:
            ax.set_xticks([0], ["multi-source"])
        else:
            ax.set_xticks(range(len(ks)), ["0\n(zero-shot)" if k == 0 else str(k) for k in ks])
        ax.set_title(f"{src} → {lang}" if src else f"→ {lang} (multi-source only)")
        _axes_labels(ax, "target-language training examples", legend=True)
    fig.suptitle("Cross-lingual transfer: zero-shot, few-shot and multi-source (95% CI)")
    return fig


def rank_ablation(df: pd.DataFrame) -> Figure | None:
    """ROUGE-L vs LoRA rank, per targets, with full fine-tuning at the same point as a line."""
    rows = _lang_rows(df)
    lora = rows[rows["method"] != BASELINE].assign(family=lambda t: _rank_free(t["variant"]))
    contexts = []
    for key, g in lora.groupby(["lang", "shots", "train_langs"], dropna=False):
        if g["rank"].nunique() > 1:
            contexts.append(key)
    if not contexts:
        return None
    fig, axes = _fig(len(contexts))
    for ax, (lang, shots, train) in zip(axes, contexts):
        same = (rows["lang"] == lang) & (rows["train_langs"] == train)
        same &= rows["shots"].isna() if pd.isna(shots) else (rows["shots"] == shots)
        same_lora = (lora["lang"] == lang) & (lora["train_langs"] == train)
        same_lora &= lora["shots"].isna() if pd.isna(shots) else (lora["shots"] == shots)
        g = _by_seed(lora[same_lora], ["family", "rank"])
        for k, (t, a) in enumerate(g.groupby("family")):
            a = a.sort_values("rank")
            x = a["rank"].astype(float).to_numpy()
            ax.plot(x, a["y"], marker="o", color=LORA_COLORS[k % len(LORA_COLORS)], label=t)
            ax.fill_between(x, a["lo"].astype(float), a["hi"].astype(float),
                            color=LORA_COLORS[k % len(LORA_COLORS)], alpha=0.15, linewidth=0)
        full = rows[same & (rows["method"] == BASELINE)]
        if not full.empty:
            ax.axhline(full[f"{METRIC}_mean"].mean(), color=FULL_COLOR, linestyle="--", label="full fine-tuning")
        ax.set_xscale("log", base=2)
        ax.set_title(f"{lang}, {'all' if pd.isna(shots) else int(shots)} examples")
        _axes_labels(ax, "LoRA rank", legend=True)
    fig.suptitle("LoRA rank and target modules")
    return fig


def efficiency(df: pd.DataFrame) -> Figure | None:
    """Quality vs trainable parameters and vs artifact size, one point per (scenario, variant)."""
    rows = df[df["level"] == "overall"].dropna(subset=["trainable_params", f"{METRIC}_mean"])
    if rows.empty:
        return None
    pts = rows.groupby(["scenario", "variant", "method"]).agg(
        y=(f"{METRIC}_mean", "mean"), params=("trainable_params", "mean"), mb=("artifact_mb", "mean")
    ).reset_index()
    fig, axes = _fig(2, width=5.5, height=3.8)
    scen = sorted(pts["scenario"].unique())
    scolor = {s: LORA_COLORS[i % len(LORA_COLORS)] for i, s in enumerate(scen)}
    for ax, col, label in ((axes[0], "params", "trainable parameters"), (axes[1], "mb", "artifact weights (MB)")):
        for s in scen:
            p = pts[pts["scenario"] == s]
            for method in sorted(p["method"].unique(), key=lambda m: (m != BASELINE, m)):
                marker = "s" if method == BASELINE else "o"
                q = p[p["method"] == method]
                ax.scatter(q[col].astype(float), q["y"], marker=marker, color=scolor[s], s=40,
                           label=f"{s} ({method})" if not q.empty else None)
            for _, r in p.iterrows():
                ax.annotate(r["variant"], (float(r[col]), r["y"]), fontsize=6, xytext=(3, 3),
                            textcoords="offset points")
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())  # minor labels collide on narrow ranges
        _axes_labels(ax, label, ylabel="ROUGE-L F (mean over cells)")
    axes[0].legend(fontsize=7)
    fig.suptitle("Quality vs size: squares full fine-tuning, circles LoRA")
    return fig


def png_bytes(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


FIGURES = {
    "learning_curves": learning_curves,
    "transfer": transfer,
    "rank_ablation": rank_ablation,
    "efficiency": efficiency,
}
