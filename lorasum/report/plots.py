"""The report's figures, each drawn from the tidy results table.

Every function takes the table from :func:`lorasum.study.results.results_table` and
returns a matplotlib ``Figure``, or ``None`` when the study has no data for it. Figures
are built with the object API on an Agg canvas: no pyplot state, no display needed.

What a point and its interval are (:func:`seed_points`): a point is the mean ROUGE-L over
the seeds of cells that differ only in seed. With two or more seeds its interval is the
95% Student-t interval over the per-seed means (the spread a rerun would show); with one
seed it is that run's 95% bootstrap CI over test items (the only spread there is). The
two are drawn differently (band vs error bars) and every figure title names what it shows.

Readability rules every figure follows: y starts at 0 (ROUGE is a share; a cut axis
exaggerates gaps) with its top a little above the highest point or interval; x ticks are
the real values (shots, ranks, parameter counts), never powers written as exponents;
series at the same x are shifted slightly sideways (:func:`dodge`) and differ in marker and
line style, so none hides another; no free-floating point labels (legends instead).
"""
from __future__ import annotations

import io
import math
import textwrap

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import NullLocator
from scipy import stats

from lorasum.methods import BASELINE

METRIC = "rougeL"
CONFIDENCE = 0.95
FULL_COLOR = "#d62728"
LORA_COLORS = ["#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2", "#7f7f7f"]
MARKERS = ["o", "^", "D", "v", "P", "X", "*", "h"]  # "s" is full fine-tuning's
LINESTYLES = ["-", "--", "-.", ":"]
# sideways shift between neighbouring series, in log2 units on log axes and in category widths otherwise
DODGE_LOG2 = 0.07
DODGE_CATEGORY = 0.08
SEEDS_INTERVAL = "95% t-interval over seeds"
RUN_INTERVAL = "95% bootstrap CI over test items (one seed)"


def seed_points(rows: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """One point per group of rows that differ only in seed: ``y`` (mean over seeds),
    ``lo``/``hi`` (its 95% interval), ``seeds`` and ``interval``.

    ``interval`` is ``"seeds"`` when two or more seeds give a Student-t interval over the
    per-seed means (mean ± t(0.975, n-1) · sd / sqrt(n)), ``"bootstrap"`` when the one run's
    bootstrap CI over test items is all there is.
    """
    m = f"{METRIC}_mean"
    out = []
    for key, g in rows.groupby(keys, dropna=False, sort=True):
        vals = pd.to_numeric(g[m], errors="coerce").astype(float).dropna()
        if vals.empty:
            continue
        n, y = len(vals), float(vals.mean())
        if n >= 2:
            half = stats.t.ppf(0.5 + CONFIDENCE / 2, n - 1) * float(vals.std(ddof=1)) / math.sqrt(n)
            lo, hi, kind = y - half, y + half, "seeds"
        else:
            lo, hi, kind = float(g[f"{m}_lo"].iloc[0]), float(g[f"{m}_hi"].iloc[0]), "bootstrap"
        out.append({**dict(zip(keys, key if isinstance(key, tuple) else (key,))),
                    "y": y, "lo": lo, "hi": hi, "seeds": n, "interval": kind})
    return pd.DataFrame(out, columns=[*keys, "y", "lo", "hi", "seeds", "interval"])


def dodge(i: int, n: int, step: float) -> float:
    """Offset of series ``i`` of ``n`` so the ``n`` series sit side by side around 0."""
    return (i - (n - 1) / 2) * step


def interval_caption(kinds: set[str], *, band: bool, marks: str = "points") -> str:
    """What the figure's intervals are, for the kinds it draws (``band``: seed intervals as bands;
    ``marks``: what the figure draws for a mean, points or bars)."""
    seeds, run = "seeds" in kinds, "bootstrap" in kinds
    parts = [f"{marks}: mean over seeds"]
    if seeds and band:
        parts.append(f"band: {SEEDS_INTERVAL}")
    if seeds and run and not band:
        parts.append(f"error bars: {SEEDS_INTERVAL} where 2+ seeds, else {RUN_INTERVAL}")
    elif seeds and not band:
        parts.append(f"error bars: {SEEDS_INTERVAL}")
    elif run:
        parts.append(f"error bars: {RUN_INTERVAL}")
    return "; ".join(parts)


def suptitle(fig: Figure, title: str, caption: str) -> None:
    """The figure's title, with its caption wrapped to the figure's width."""
    width = max(40, int(fig.get_figwidth() * 12))
    fig.suptitle(title + "\n" + textwrap.fill(f"({caption})", width), fontsize=10)


def y_from_zero(ax, top: float) -> None:
    """y from 0 to a little above ``top`` (the highest point or interval bound drawn)."""
    top = top if np.isfinite(top) and top > 0 else 1.0
    ax.set_ylim(0, top * 1.08)


def real_ticks(ax, values, *, axis: str = "x") -> None:
    """Ticks at the given values, labelled with them (no exponent notation, no minor ticks)."""
    vals = sorted({float(v) for v in values if pd.notna(v)})
    a = ax.xaxis if axis == "x" else ax.yaxis
    a.set_ticks(vals, [str(int(v)) if v == int(v) else f"{v:g}" for v in vals])
    a.set_minor_locator(NullLocator())


def log_ticks(ax, values, *, axis: str = "x") -> None:
    """Readable ticks on a log10 axis spanning ``values``: decades on wide ranges, 1-2-5 steps
    on narrow ones, every integer step when no 1-2-5 value falls inside twice."""
    vals = [float(v) for v in values if pd.notna(v) and float(v) > 0]
    if not vals:
        return
    lo, hi = min(vals) / 1.6, max(vals) * 1.6
    decades = range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
    for subs in ((1,) if math.log10(hi / lo) > 2.5 else (1, 2, 5), range(1, 10)):
        ticks = [m * 10.0**e for e in decades for m in subs if lo <= m * 10.0**e <= hi]
        if len(ticks) >= 2:
            break
    a = ax.xaxis if axis == "x" else ax.yaxis
    (ax.set_xlim if axis == "x" else ax.set_ylim)(lo, hi)
    a.set_ticks(ticks, [_num(t) for t in ticks])
    a.set_minor_locator(NullLocator())


def _num(v: float) -> str:
    """A tick label: 8, 32, 1.5, 2M, 300M, 10k."""
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(v) >= size:
            return f"{v / size:.3g}{unit}"
    return f"{v:.3g}" if v != int(v) else str(int(v))


def _axes_labels(ax, xlabel: str, *, ylabel: str = "ROUGE-L F (x100)") -> None:
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.tick_params(labelsize=8)


def _fig(n_panels: int, width: float = 4.2, height: float = 3.3, max_cols: int = 4) -> tuple[Figure, list]:
    cols = min(max(n_panels, 1), max_cols)
    rows = math.ceil(max(n_panels, 1) / cols)
    fig = Figure(figsize=(width * cols, height * rows + 0.6), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False).ravel().tolist()
    for ax in axes[n_panels:]:
        ax.set_visible(False)
    return fig, axes[:n_panels]


def variant_styles(variants: list[str]) -> dict[str, dict]:
    """Colour, marker and line style per variant: full fine-tuning red squares, LoRA variants the rest."""
    out, k = {}, 0
    for v in variants:
        if v == BASELINE:
            out[v] = {"color": FULL_COLOR, "marker": "s", "linestyle": "-"}
        else:
            out[v] = {"color": LORA_COLORS[k % len(LORA_COLORS)], "marker": MARKERS[k % len(MARKERS)],
                      "linestyle": LINESTYLES[(k + 1) % len(LINESTYLES)]}
            k += 1
    return out


def _variant_order(variants) -> list[str]:
    return sorted(set(variants), key=lambda v: (v != BASELINE, v))


def _rank_free(variants: pd.Series) -> pd.Series:
    """A variant label without its rank (``lora-r8-attention`` -> ``lora-attention``): one line per rank sweep."""
    return variants.str.replace(r"-r\d+(?=-|$)", "", regex=True)


def _lang_rows(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["level"] == "language"]


def _draw_series(ax, x: np.ndarray, pts: pd.DataFrame, style: dict, label: str, *, band: bool = True) -> float:
    """A line through ``pts`` at ``x``: a band where seeds give the interval (``band``), error bars
    where one run does (or everywhere without ``band``). Returns the highest value drawn."""
    y = pts["y"].to_numpy(float)
    ax.plot(x, y, label=label, markersize=5, **style)
    multi = (pts["interval"] == "seeds").to_numpy() & band
    if multi.any():
        ax.fill_between(x, pts["lo"].to_numpy(float), pts["hi"].to_numpy(float), where=multi,
                        color=style["color"], alpha=0.18, linewidth=0, interpolate=False)
    if (~multi).any():
        one = pts[~multi]
        ax.errorbar(x[~multi], one["y"], yerr=[one["y"] - one["lo"], one["hi"] - one["y"]], fmt="none",
                    ecolor=style["color"], capsize=3, elinewidth=1)
    return float(np.nanmax([*y, *pts["hi"].to_numpy(float)]))


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
    styles = variant_styles(_variant_order(low["variant"]))
    several = low["scenario"].nunique() > 1
    kinds: set[str] = set()
    for ax, lang in zip(axes, langs):
        rows = low[low["lang"] == lang]
        pts = seed_points(rows, ["scenario", "variant", "train_langs", "shots"])
        series = sorted(pts.groupby(["scenario", "variant", "train_langs"]).groups,
                        key=lambda k: (k[0], k[1] != BASELINE, k[1], k[2]))
        top = 0.0
        for i, (scenario, v, train) in enumerate(series):
            s = pts[(pts["scenario"] == scenario) & (pts["variant"] == v) & (pts["train_langs"] == train)]
            s = s.sort_values("shots")
            shift = 2.0 ** dodge(i, len(series), DODGE_LOG2)
            x = s["shots"].to_numpy(float) * shift
            seeds = int(s["seeds"].max())
            label = f"{scenario}: {v}" if several else v
            top = max(top, _draw_series(ax, x, s, styles[v], f"{label} ({seeds} seed{'s' * (seeds > 1)})"))
            kinds |= set(s["interval"])
            if seeds > 1:  # the seeds themselves, at their series' offset
                r = rows[(rows["scenario"] == scenario) & (rows["variant"] == v) & (rows["train_langs"] == train)]
                ax.scatter(r["shots"].to_numpy(float) * shift, r[f"{METRIC}_mean"].astype(float),
                           color=styles[v]["color"], s=9, alpha=0.6, marker=styles[v]["marker"], linewidths=0)
        ax.set_xscale("log", base=2)
        shots = rows["shots"].dropna().astype(float)
        ax.set_xlim(shots.min() / 1.5, shots.max() * 1.5)
        real_ticks(ax, shots)
        y_from_zero(ax, top)
        ax.set_title(lang)
        _axes_labels(ax, "training examples (per language)")
    axes[0].legend(fontsize=7, loc="best")
    dots = "; dots: single seeds" if "seeds" in kinds else ""
    suptitle(fig, "Low data: ROUGE-L vs training examples", interval_caption(kinds, band=True) + dots)
    return fig


def transfer(df: pd.DataFrame) -> Figure | None:
    """Zero-shot (k = 0) and few-shot (k target examples) ROUGE-L per target language,
    with multi-source cells (hollow markers) at their own x position."""
    rows = _lang_rows(df)
    zero = rows[rows["regime"] == "zero_shot"]
    few = rows[rows["regime"] == "few_shot"]
    multi = rows[rows["regime"] == "multi_source"]
    if zero.empty and multi.empty:
        return None
    targets = sorted(set(zero["lang"]) | set(multi["lang"]))
    fig, axes = _fig(len(targets))
    styles = variant_styles(_variant_order(pd.concat([zero, few, multi])["variant"]))
    kinds: set[str] = set()
    for ax, lang in zip(axes, targets):
        z = seed_points(zero[zero["lang"] == lang].assign(shots=0), ["variant", "shots"])
        f = seed_points(few[few["lang"] == lang], ["variant", "shots"])
        m = seed_points(multi[multi["lang"] == lang], ["variant", "train_langs"])
        ks = sorted({*([0] if not z.empty else []), *f["shots"].astype(int).tolist()})
        pos = {k: i for i, k in enumerate(ks)}
        m_pos = {t: len(ks) + j for j, t in enumerate(sorted(m["train_langs"].unique()))}
        variants = _variant_order([*z["variant"], *f["variant"], *m["variant"]])
        top = 0.0
        for i, v in enumerate(variants):
            shift = dodge(i, len(variants), DODGE_CATEGORY)
            line = pd.concat([z[z["variant"] == v], f[f["variant"] == v]]).sort_values("shots")
            if not line.empty:
                x = np.array([pos[int(k)] for k in line["shots"]], dtype=float) + shift
                top = max(top, _draw_series(ax, x, line, styles[v], v, band=False))
                kinds |= set(line["interval"])
            mv = m[m["variant"] == v]
            if not mv.empty:
                x = np.array([m_pos[t] for t in mv["train_langs"]], dtype=float) + shift
                st = {**styles[v], "linestyle": "none"}
                ax.plot(x, mv["y"], mfc="white", label=f"{v} multi-source", **st)
                ax.errorbar(x, mv["y"], yerr=[mv["y"] - mv["lo"], mv["hi"] - mv["y"]], fmt="none",
                            ecolor=st["color"], capsize=3, elinewidth=1)
                top = max(top, float(mv["hi"].max()), float(mv["y"].max()))
                kinds |= set(mv["interval"])
        labels = ["0\n(zero-shot)" if k == 0 else str(k) for k in ks]
        labels += [f"multi-source\n({t})" for t in m_pos]
        ax.set_xticks(range(len(labels)), labels)
        ax.set_xlim(-0.5, len(labels) - 0.5)
        y_from_zero(ax, top)
        src = "+".join(sorted(set(zero[zero["lang"] == lang]["train_langs"])))
        ax.set_title(f"{src} → {lang}" if src else f"→ {lang} (multi-source only)")
        _axes_labels(ax, "target-language training examples")
        ax.legend(fontsize=7, loc="best")
    suptitle(fig, "Cross-lingual transfer", interval_caption(kinds, band=False))
    return fig


def rank_ablation(df: pd.DataFrame) -> Figure | None:
    """ROUGE-L vs LoRA rank, per targets, with full fine-tuning on the same data as a dashed line."""
    rows = _lang_rows(df)
    lora = rows[rows["method"] != BASELINE].assign(family=lambda t: _rank_free(t["variant"]))
    contexts = []
    for key, g in lora.groupby(["lang", "shots", "train_langs"], dropna=False):
        if g["rank"].nunique() > 1:
            contexts.append(key)
    if not contexts:
        return None
    fig, axes = _fig(len(contexts))
    kinds: set[str] = set()
    for ax, (lang, shots, train) in zip(axes, contexts):
        same = (rows["lang"] == lang) & (rows["train_langs"] == train)
        same &= rows["shots"].isna() if pd.isna(shots) else (rows["shots"] == shots)
        same_lora = (lora["lang"] == lang) & (lora["train_langs"] == train)
        same_lora &= lora["shots"].isna() if pd.isna(shots) else (lora["shots"] == shots)
        g = seed_points(lora[same_lora], ["family", "rank"])
        families = sorted(g["family"].unique())
        styles = variant_styles(families)
        top = 0.0
        for i, t in enumerate(families):
            a = g[g["family"] == t].sort_values("rank")
            x = a["rank"].to_numpy(float) * 2.0 ** dodge(i, len(families), DODGE_LOG2)
            ax.plot(x, a["y"], label=t, markersize=5, **styles[t])
            ax.errorbar(x, a["y"], yerr=[a["y"] - a["lo"], a["hi"] - a["y"]], fmt="none",
                        ecolor=styles[t]["color"], capsize=3, elinewidth=1)
            top = max(top, float(a["hi"].max()), float(a["y"].max()))
            kinds |= set(a["interval"])
        full = rows[same & (rows["method"] == BASELINE)]
        if not full.empty:
            y = float(full[f"{METRIC}_mean"].astype(float).mean())
            ax.axhline(y, color=FULL_COLOR, linestyle="--", label="full fine-tuning (same data)")
            top = max(top, y)
        ranks = lora[same_lora]["rank"].dropna().astype(float)
        ax.set_xscale("log", base=2)
        ax.set_xlim(ranks.min() / 1.5, ranks.max() * 1.5)
        real_ticks(ax, ranks)
        y_from_zero(ax, top)
        ax.set_title(f"{lang}, {'all' if pd.isna(shots) else int(shots)} examples")
        _axes_labels(ax, "LoRA rank")
        ax.legend(fontsize=7, loc="best")
    suptitle(fig, "LoRA rank and target modules", interval_caption(kinds, band=False))
    return fig


def efficiency(df: pd.DataFrame) -> Figure | None:
    """Quality vs trainable parameters and vs artifact size, one point per (scenario, variant):
    colour = scenario, marker = variant, scenarios offset slightly sideways."""
    rows = df[df["level"] == "overall"].dropna(subset=["trainable_params", f"{METRIC}_mean"])
    if rows.empty:
        return None
    pts = rows.groupby(["scenario", "variant", "method"]).agg(
        y=(f"{METRIC}_mean", "mean"), params=("trainable_params", "mean"), mb=("artifact_mb", "mean")
    ).reset_index()
    fig, axes = _fig(2, width=5.5, height=3.8)
    scen = sorted(pts["scenario"].unique())
    scolor = {s: LORA_COLORS[i % len(LORA_COLORS)] for i, s in enumerate(scen)}
    vstyle = variant_styles(_variant_order(pts["variant"]))
    for ax, col, label in ((axes[0], "params", "trainable parameters"), (axes[1], "mb", "artifact weights (MB)")):
        for i, s in enumerate(scen):
            p = pts[pts["scenario"] == s].dropna(subset=[col])
            shift = 10.0 ** dodge(i, len(scen), 0.03)
            for _, r in p.iterrows():
                ax.scatter([float(r[col]) * shift], [r["y"]], marker=vstyle[r["variant"]]["marker"],
                           color=scolor[s], s=36, edgecolors="black", linewidths=0.4)
        ax.set_xscale("log")
        log_ticks(ax, pts[col].dropna())
        y_from_zero(ax, float(pts["y"].max()))
        _axes_labels(ax, label, ylabel="ROUGE-L F (x100, mean over cells)")
    handles = [Line2D([], [], color=scolor[s], marker="o", linestyle="none", label=s) for s in scen]
    handles += [Line2D([], [], color="grey", marker=vstyle[v]["marker"], markeredgecolor="black",
                       linestyle="none", label=v) for v in vstyle]
    # outside the axes: a legend inside would cover points wherever they fall
    fig.legend(handles=handles, fontsize=7, loc="outside right upper", title="colour: scenario\nmarker: variant",
               title_fontsize=7)
    suptitle(fig, "Quality vs size", "points: mean ROUGE-L over a scenario's cells; no intervals")
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
