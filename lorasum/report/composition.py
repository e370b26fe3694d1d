"""The report's composition section: per target language, four ways to reach it side by side.

Zero-shot (the study's ``zero_shot`` cells scored on the target), few-shot (its ``few_shot``
cells for the target, one setting per k), and the ``compose`` scenario's ``uniform`` and
``learned`` compositions of the other languages' adapters: one panel per target language,
one bar per method variant, ROUGE-L F x100 with 95% intervals (over seeds where there are
several, else the run's bootstrap CI), and a table with the same
figures and the learned weights (read from each cell's ``composition.json``). A setting
the study lacks for a target is named as absent, in the panel and in the table.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from lorasum.methods import BASELINE
from lorasum.report.html import Section, table_html, table_markdown
from lorasum.report.plots import interval_caption, seed_points, suptitle, y_from_zero

METRIC = "rougeL"
SETTINGS = ("zero-shot", "few-shot", "uniform", "learned")
FULL_COLOR = "#d62728"
COLORS = ["#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b"]


def comparison(df: pd.DataFrame) -> pd.DataFrame:
    """One row per (target, setting, variant): mean ROUGE-L over seeds and the CI band of the seeds.

    Targets are the languages the study composes for. Columns: ``target``, ``setting`` (one of
    :data:`SETTINGS`), ``label`` (the setting with its k and sources), ``variant``, ``y``,
    ``lo``, ``hi`` (95%: over seeds with 2+ seeds, else the run's bootstrap CI; see
    :func:`lorasum.report.plots.seed_points`), ``seeds``, ``interval``, ``cells`` (the cell ids,
    ``;``-joined).
    """
    rows = df[df["level"] == "language"]
    if "composition" not in rows.columns:
        return pd.DataFrame()
    comp = rows[(rows["regime"] == "compose") & rows["composition"].isin(["uniform", "learned"])]
    if comp.empty:
        return pd.DataFrame()
    targets = sorted(comp["lang"].unique())
    parts = []
    sources_of = dict(zip(rows["cell_id"], rows["train_langs"]))
    for setting, sel in (("zero-shot", rows["regime"] == "zero_shot"), ("few-shot", rows["regime"] == "few_shot"),
                         ("uniform", rows["composition"] == "uniform"), ("learned", rows["composition"] == "learned")):
        part = rows[sel & rows["lang"].isin(targets)].copy()
        if part.empty:
            continue
        part["setting"] = setting
        train = part["parent"].map(sources_of).fillna(part["train_langs"]) if setting == "few-shot" \
            else part["train_langs"]
        k = part["shots"].map(lambda s: "" if pd.isna(s) else f" k={int(s)}")
        part["label"] = setting + (k if setting in ("few-shot", "learned") else "") + " (" + train.astype(str) + ")"
        parts.append(part)
    data = pd.concat(parts)
    keys = ["lang", "setting", "label", "variant"]
    # the same intervals as the other figures: over seeds where there are 2+, else the run's bootstrap CI
    points = seed_points(data, keys)
    cells = data.groupby(keys, dropna=False)["cell_id"].agg(lambda s: ";".join(sorted(s))).rename("cells")
    out = points.merge(cells.reset_index(), on=keys, how="left").rename(columns={"lang": "target"})
    order = {s: i for i, s in enumerate(SETTINGS)}
    return out.sort_values(["target", "setting", "label", "variant"], key=lambda c: c.map(order) if c.name == "setting"
                           else c).reset_index(drop=True)


def absent(table: pd.DataFrame, target: str) -> list[str]:
    """The settings of :data:`SETTINGS` the study has no cell for on ``target``."""
    have = set(table[table["target"] == target]["setting"])
    return [s for s in SETTINGS if s not in have]


def figure(table: pd.DataFrame) -> Figure | None:
    """One panel per target: grouped bars (x: setting, bars: variants) with 95% CI error bars."""
    if table.empty:
        return None
    targets = sorted(table["target"].unique())
    cols = min(len(targets), 3)
    rows_n = math.ceil(len(targets) / cols)
    fig = Figure(figsize=(max(6.4 * cols, 7.0), 3.9 * rows_n + 0.6), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows_n, cols, squeeze=False).ravel().tolist()
    for ax in axes[len(targets):]:
        ax.set_visible(False)
    variants = sorted(table["variant"].unique(), key=lambda v: (v != BASELINE, v))
    lora = [v for v in variants if v != BASELINE]
    color = {v: FULL_COLOR if v == BASELINE else COLORS[lora.index(v) % len(COLORS)] for v in variants}
    width = 0.8 / len(variants)
    for ax, target in zip(axes, targets):
        t = table[table["target"] == target]
        labels = list(dict.fromkeys(t["label"]))  # already in setting order
        for j, v in enumerate(variants):
            tv = t[t["variant"] == v]
            if tv.empty:
                continue
            x = [labels.index(lbl) + (j - (len(variants) - 1) / 2) * width for lbl in tv["label"]]
            y = tv["y"].astype(float).to_numpy()
            err = [y - tv["lo"].astype(float).to_numpy(), tv["hi"].astype(float).to_numpy() - y]
            ax.bar(x, y, width=width * 0.95, yerr=err, capsize=3, color=color[v], label=v)
        ax.set_xticks(range(len(labels)), [lbl.replace(" (", "\n(") for lbl in labels], fontsize=7)
        y_from_zero(ax, float(pd.concat([t["y"], t["hi"]]).astype(float).max()))
        ax.set_ylabel("ROUGE-L F (x100)")
        ax.grid(axis="y", alpha=0.3)
        missing = absent(table, target)
        ax.set_title(f"→ {target}" + (f"\n(absent: {', '.join(missing)})" if missing else ""), fontsize=9)
        ax.legend(fontsize=7)
    suptitle(fig, "Per target language: transfer vs composed adapters (ROUGE-L F x100)",
             interval_caption(set(table["interval"]), band=False, marks="bars"))
    return fig


def _weights(study_dir: Path, cells: str) -> str:
    """The composition weights of the cells (several seeds: ``;``-joined), from composition.json."""
    out = []
    for cid in cells.split(";"):
        try:
            w = json.loads((study_dir / "runs" / cid / "composition.json").read_text(encoding="utf-8"))["weights"]
        except (OSError, ValueError, KeyError):
            continue
        out.append(", ".join(f"{k} {v:+.2f}" for k, v in w.items()))
    return "; ".join(out) if out else "–"


def section(study_dir: str | Path, df: pd.DataFrame) -> Section:
    """The report section (figure + table), or a note when the study has no composition cells."""
    key, title = "composition", "Composition of language adapters"
    table = comparison(df)
    fig = figure(table)
    if fig is None:
        return Section(key, title, note="Omitted: the study has no data for this section "
                                        "(needs finished uniform or learned cells of a compose scenario).")
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    disp = pd.DataFrame({
        "target": table["target"], "setting": table["label"], "variant": table["variant"],
        "seeds": table["seeds"],
        "ROUGE-L [95% CI]": [f"{y:.2f} [{lo:.2f}, {hi:.2f}]" if pd.notna(lo) else f"{y:.2f}"
                             for y, lo, hi in zip(table["y"], table["lo"], table["hi"])],
        "weights": [_weights(Path(study_dir), c) if s in ("uniform", "learned") else ""
                    for s, c in zip(table["setting"], table["cells"])],
    })
    notes = [f"{t}: no {', '.join(absent(table, t))} cells" for t in sorted(table["target"].unique())
             if absent(table, t)]
    intro = ("Per target language: zero-shot and few-shot transfer (the study's zero_shot/few_shot cells), and "
             "the compose scenario's adapters of the other languages summed with uniform weights (1/n) or with "
             "weights learnt on k examples of the target's training split. ROUGE-L F x100 on the target's test "
             "split, mean over seeds with a 95% interval: over the seeds where there are two or more, else "
             "the run's bootstrap CI over test items.")
    markdown = table_markdown(disp)
    if notes:
        intro += " Absent: " + "; ".join(notes) + "."
        markdown += "\n\nAbsent: " + "; ".join(notes) + "."
    return Section(key, title, intro=intro, png=buf.getvalue(),
                   tables_html=[table_html(disp, text_cols=("target", "setting", "variant", "weights"))],
                   markdown=markdown)
