"""The report's "Findings": what the study shows, as generated sentences with their numbers and tests.

Every number comes from a table the report prints elsewhere. LoRA-vs-full claims use the
paired bootstrap tests of :func:`lorasum.report.compare.paired_comparisons` and their
Holm-adjusted p-values (the family: every per-language comparison of the report); a
sentence says "beats" only when the adjusted p is below ``alpha``, and names the test, the
raw and adjusted p and the size of the family. Transfer gains, the rank trend and the
efficiency figures are descriptive (means over seeds from the results table) and say so.
Plain string building: no library writes sentences from a results table.
"""
from __future__ import annotations

import html
import re

import pandas as pd

from lorasum.methods import BASELINE
from lorasum.metrics.stats import P_ADJUST_METHODS
from lorasum.report.html import Section

MAX_LISTED = 10  # significant comparisons spelled out one by one; the rest are counted


def describe_variant(variant: str) -> str:
    """``lora-r8-attention`` -> ``LoRA (r=8, attention)``; ``full`` -> ``full fine-tuning``."""
    if variant == BASELINE:
        return "full fine-tuning"
    m = re.fullmatch(r"(lora|dora)-r(\d+)(?:-(.+))?", variant)
    if not m:
        return variant
    extra = m.group(3).replace("-", ", ") if m.group(3) else ""
    return f"{'LoRA' if m.group(1) == 'lora' else 'DoRA'} (r={m.group(2)}{', ' + extra if extra else ''})"


def _p(p: float) -> str:
    return "<0.001" if p < 0.001 else f"={p:.3f}"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'s' * (n != 1)}"


def _shots(shots) -> str:
    return "all" if pd.isna(shots) else str(int(shots))


def _where(row, cells: pd.DataFrame, seeds: bool) -> str:
    """Where a comparison was made: language, data and (with several seeds) seed.
    ``cells``: regime, train_langs and parent per cell id."""
    cell = cells.loc[row["lora_cell"]] if row["lora_cell"] in cells.index else None
    regime = cell["regime"] if cell is not None else ""
    lang, shots, train = row["lang"], row["shots"], row["train_langs"]
    if regime == "zero_shot":
        out = f"on {lang} zero-shot from {train}"
    elif regime == "few_shot":
        parent = cell.get("parent")
        src = cells.loc[parent, "train_langs"] if isinstance(parent, str) and parent in cells.index else None
        out = f"on {lang} with {_shots(shots)} {lang} examples after zero-shot training" + (f" on {src}" if src else "")
    elif regime == "multi_source":
        out = f"on {lang} trained on {train}"
    elif pd.isna(shots):
        out = f"on {lang} with all training data"
    else:
        out = f"on {lang} at {_shots(shots)} examples"
    if row["scenario"] not in (regime, ""):
        out += f" ({row['scenario']})"
    return out + (f" (seed {row['seed']})" if seeds else "")


def comparison_sentences(paired: pd.DataFrame, df: pd.DataFrame, *, alpha: float = 0.05,
                         correction: str = "holm", resamples: int | None = None) -> list[str]:
    """Sentences on LoRA vs full fine-tuning: the family, each significant difference after the
    correction, differences significant only before it, the rest as "no significant difference"."""
    langs = paired[paired["level"] == "language"] if not paired.empty else paired
    if langs.empty:
        return ["No LoRA cell has a matched full fine-tuning cell with shared test items: no comparison is claimed."]
    name, n = P_ADJUST_METHODS[correction], len(langs)
    pcol = f"p_{correction}"
    cells = df.drop_duplicates("cell_id").set_index("cell_id").reindex(columns=["regime", "train_langs", "parent"])
    seeds = langs["seed"].nunique() > 1
    family = f"runs over all {n}" if n > 1 else "over this one comparison leaves its p unchanged"
    out = [f"{_count(n, 'comparison')} of LoRA with full fine-tuning, one per matched pair of cells and test "
           f"language: paired bootstrap test of the ROUGE-L difference on the same test items; {name}'s correction "
           f"{family} (family-wise error rate {alpha})."]
    if resamples and n / (resamples + 1) >= alpha:
        out.append(f"With {n} comparisons and {resamples} bootstrap resamples the smallest attainable {name}-adjusted "
                   f"p is {n / (resamples + 1):.3f}, not below {alpha}: no difference can be called significant; "
                   "rerun the report with more --resamples.")
    sig = langs[langs[pcol] < alpha].sort_values("diff", key=abs, ascending=False)
    for _, r in sig.head(MAX_LISTED).iterrows():
        lora = describe_variant(r["variant"])
        stats = (f"(95% CI [{r['ci_lo']:+.1f}, {r['ci_hi']:+.1f}]; paired bootstrap p{_p(r['p_value'])}, "
                 f"{name}-adjusted p{_p(r[pcol])} over {_count(n, 'comparison')})")
        if r["diff"] > 0:
            out.append(f"{lora} beats full fine-tuning {_where(r, cells, seeds)} by {r['diff']:+.1f} ROUGE-L {stats}.")
        else:
            out.append(f"Full fine-tuning beats {lora} {_where(r, cells, seeds)} by {-r['diff']:.1f} ROUGE-L "
                       f"(LoRA − full {r['diff']:+.1f}; " + stats[1:] + ".")
    if len(sig) > MAX_LISTED:
        out.append(f"{len(sig) - MAX_LISTED} more comparisons are significant after {name}'s correction "
                   "(see the per-language table).")
    near = langs[(langs[pcol] >= alpha) & (langs["p_value"] < alpha)]
    for _, r in near.iterrows():
        out.append(f"{describe_variant(r['variant'])} vs full fine-tuning {_where(r, cells, seeds)}: "
                   f"{r['diff']:+.1f} ROUGE-L (95% CI [{r['ci_lo']:+.1f}, {r['ci_hi']:+.1f}]; paired bootstrap "
                   f"p{_p(r['p_value'])}, but {name}-adjusted p{_p(r[pcol])} over {_count(n, 'comparison')}): "
                   f"no significant difference after correction.")
    rest = langs[langs["p_value"] >= alpha]
    if len(rest):
        items = [f"{describe_variant(r['variant'])} {_where(r, cells, seeds)} ({r['diff']:+.1f}, p{_p(r['p_value'])})"
                 for _, r in rest.head(MAX_LISTED).iterrows()]
        more = f" and {len(rest) - MAX_LISTED} more" if len(rest) > MAX_LISTED else ""
        out.append(f"No significant difference (p ≥ {alpha} before and after correction) in "
                   f"{_count(len(rest), 'comparison')}: " + "; ".join(items) + more + ".")
    wins, losses = int((sig["diff"] > 0).sum()), int((sig["diff"] < 0).sum())
    out.append(f"In all: LoRA significantly better in {wins}, full fine-tuning significantly better in {losses}, "
               f"no significant difference in {n - wins - losses} of {_count(n, 'comparison')} ({name}-adjusted p < {alpha}).")
    return out


def _means(rows: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Mean ROUGE-L over seeds per group (groups differ in everything but seed)."""
    return rows.groupby(keys, dropna=False)["rougeL_mean"].mean().reset_index()


def _pair_text(vals: dict[str, float], gains: dict[str, float] | None = None) -> str:
    parts = []
    for v in sorted(vals, key=lambda v: (v == BASELINE, v)):
        gain = f" ({gains[v]:+.1f})" if gains and v in gains else ""
        parts.append(f"{describe_variant(v)} {vals[v]:.1f}{gain}")
    return ", ".join(parts)


def transfer_sentences(df: pd.DataFrame) -> list[str]:
    """Zero-shot ROUGE-L per target language and variant, and what few target examples add."""
    rows = df[df["level"] == "language"]
    out = []
    zero = rows[rows["regime"] == "zero_shot"]
    few = rows[rows["regime"] == "few_shot"]
    source_of = dict(zip(df["cell_id"], df["train_langs"]))
    few = few.assign(source=[source_of.get(p) for p in few.get("parent", pd.Series([None] * len(few)))])
    for (src, lang), z in zero.groupby(["train_langs", "lang"]):
        zm = dict(_means(z, ["variant"]).values)
        text = f"Transfer {src} → {lang} (means over seeds): zero-shot ROUGE-L {_pair_text(zm)}"
        f = few[(few["lang"] == lang) & ((few["source"] == src) | few["source"].isna())]
        for shots, g in sorted(f.groupby("shots")):
            fm = dict(_means(g, ["variant"]).values)
            gains = {v: fm[v] - zm[v] for v in fm if v in zm}
            text += f"; {int(shots)} {lang} examples bring them to {_pair_text(fm, gains)} (gain over zero-shot)"
        out.append(text + ". The LoRA-vs-full comparisons above say which differences are significant.")
    multi = rows[rows["regime"] == "multi_source"]
    for (src, lang), g in multi.groupby(["train_langs", "lang"]):
        out.append(f"Multi-source {src} → {lang}: ROUGE-L {_pair_text(dict(_means(g, ['variant']).values))} "
                   "(means over seeds).")
    return out


def rank_sentences(df: pd.DataFrame) -> list[str]:
    """How ROUGE-L moves with LoRA rank, per context (language, data) with two or more ranks."""
    rows = df[df["level"] == "language"]
    lora = rows[rows["method"] != BASELINE].dropna(subset=["rank"])
    lora = lora.assign(family=lora["variant"].str.replace(r"-r\d+(?=-|$)", "", regex=True))
    out = []
    for (lang, shots, train, family), g in lora.groupby(["lang", "shots", "train_langs", "family"], dropna=False):
        m = _means(g, ["rank"]).sort_values("rank")
        if len(m) < 2:
            continue
        ys = m["rougeL_mean"].to_numpy(float)
        steps = ys[1:] - ys[:-1]
        trend = ("rises with rank" if (steps > 0).all() else "falls with rank" if (steps < 0).all()
                 else "does not move monotonically with rank")
        pts = ", ".join(f"{y:.1f} at r={int(r)}" for r, y in zip(m["rank"], ys))
        fam = "LoRA " + family.removeprefix("lora").strip("-").replace("-", ", ") if family.startswith("lora") else family
        same = (rows["lang"] == lang) & (rows["train_langs"] == train) & (rows["method"] == BASELINE)
        same &= rows["shots"].isna() if pd.isna(shots) else (rows["shots"] == shots)
        full = rows[same]["rougeL_mean"]
        full_text = f"; full fine-tuning {full.mean():.1f}" if len(full) else ""
        out.append(f"Rank ablation ({lang}, {_shots(shots)} examples, {fam.strip()}): ROUGE-L {pts}; it {trend} "
                   f"(range {ys.max() - ys.min():.1f}){full_text} (means over seeds, not tested).")
    return out


def efficiency_sentences(df: pd.DataFrame) -> list[str]:
    """Trainable share and artifact size of each LoRA variant next to full fine-tuning's."""
    rows = df[df["level"] == "overall"]
    if rows.empty or "trainable_params" not in rows:
        return []
    eff = rows.groupby("variant")[["trainable_params", "trainable_share", "artifact_mb"]].mean()
    if BASELINE not in eff.index:
        return []
    full = eff.loc[BASELINE]
    out = []
    for v, r in eff.drop(index=BASELINE).sort_values("trainable_params").iterrows():
        if pd.isna(r["trainable_params"]):
            continue
        share = f" ({100 * r['trainable_share']:.2f}% of the model)" if pd.notna(r["trainable_share"]) else ""
        text = (f"{describe_variant(v)} trains {int(r['trainable_params']):,} parameters{share}, full fine-tuning "
                f"{int(full['trainable_params']):,}")
        if pd.notna(r["artifact_mb"]) and pd.notna(full["artifact_mb"]) and r["artifact_mb"] > 0:
            text += (f"; its artifact is {r['artifact_mb']:.2f} MB against {full['artifact_mb']:.2f} MB "
                     f"({full['artifact_mb'] / r['artifact_mb']:.0f}x smaller)")
        out.append(text + ".")
    return out


def study_findings(df: pd.DataFrame, paired: pd.DataFrame, *, alpha: float = 0.05, correction: str = "holm",
                   resamples: int | None = None) -> list[str]:
    """Every sentence of the Findings section, in reading order."""
    return [*comparison_sentences(paired, df, alpha=alpha, correction=correction, resamples=resamples),
            *transfer_sentences(df), *rank_sentences(df), *efficiency_sentences(df)]


def findings_section(df: pd.DataFrame, paired: pd.DataFrame, *, alpha: float = 0.05, correction: str = "holm",
                     resamples: int | None = None) -> Section:
    """The report's Findings section: the sentences as a list (HTML) and as bullets (Markdown)."""
    sentences = study_findings(df, paired, alpha=alpha, correction=correction, resamples=resamples)
    items = "".join(f"<li>{html.escape(s)}</li>" for s in sentences)
    return Section("findings", "Findings",
                   intro="Generated from the tables below: ROUGE-L F x100; Δ = LoRA − full fine-tuning.",
                   tables_html=[f"<ul class='findings'>{items}</ul>"],
                   markdown="\n".join(f"- {s}" for s in sentences))
