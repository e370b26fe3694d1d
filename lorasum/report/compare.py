"""LoRA vs full fine-tuning on matched cells: paired significance tests and sample summaries.

Two cells match when they differ only in method: same scenario, training and test
languages, shots and seed. Their ``predictions.jsonl`` are joined on (id, lang), scored
item by item with :func:`lorasum.metrics.score_items` and compared with
:func:`lorasum.metrics.paired_test` (paired bootstrap): no ROUGE is computed here.

The per-language tests of a report are one family: their p-values are also given
adjusted for multiple comparisons (Holm and Benjamini-Hochberg, over every per-language
row of the table). A pair scored on several languages adds a ``level == "macro"`` row:
the difference of the macro averages over languages (language-stratified bootstrap),
kept out of that family.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from lorasum.methods import BASELINE

MATCH_KEYS = ["scenario", "train_langs", "test_langs", "shots", "seed"]


def read_predictions(path: Path) -> dict[tuple[str, str], dict]:
    out = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                r = json.loads(line)
                out[(str(r["id"]), r["lang"])] = r
    return out


def matched_pairs(df: pd.DataFrame) -> list[tuple[pd.Series, pd.Series]]:
    """(LoRA cell, full cell) overall rows that differ only in method (any method vs the baseline, full)."""
    cells = df[df["level"] == "overall"]
    pairs = []
    for _, g in cells.groupby(MATCH_KEYS, dropna=False):
        full = g[g["method"] == BASELINE]
        if full.empty:
            continue
        for _, lora in g[g["method"] != BASELINE].iterrows():
            pairs.append((lora, full.iloc[0]))
    return pairs


def paired_comparisons(study_dir: str | Path, df: pd.DataFrame, *, resamples: int = 1000) -> tuple[pd.DataFrame, str | None]:
    """One row per (matched pair, test language): ROUGE-L of both, the difference, its CI and p-value.

    ``p_holm`` and ``p_bh`` are the p-values adjusted over all ``level == "language"`` rows;
    pairs with several test languages add a ``level == "macro"`` row (``lang == "macro avg"``).
    Returns ``(table, note)``; ``note`` explains an empty table.
    """
    pairs = matched_pairs(df)
    if not pairs:
        return pd.DataFrame(), "no LoRA cell has a finished full fine-tuning cell to compare with (same scenario, languages, shots and seed)"
    try:
        from lorasum.metrics import adjust_p_values, paired_test, score_items
    except ImportError:
        return pd.DataFrame(), "the paired test needs lorasum.metrics, which this installation lacks"
    study_dir = Path(study_dir)
    scored: dict[str, dict] = {}

    def items_of(run_dir: str) -> dict:
        if run_dir not in scored:
            preds = read_predictions(study_dir / run_dir / "predictions.jsonl")
            keys = sorted(preds)
            its = score_items([preds[k]["prediction"] for k in keys], [preds[k]["reference"] for k in keys],
                              [k[1] for k in keys])
            scored[run_dir] = dict(zip(keys, its))
        return scored[run_dir]

    rows = []
    for lora, full in pairs:
        a, b = items_of(lora["run_dir"]), items_of(full["run_dir"])
        keys = sorted(set(a) & set(b))
        if not keys:
            continue
        res = paired_test([a[k] for k in keys], [b[k] for k in keys], [k[1] for k in keys],
                          resamples=resamples, seed=0)
        groups = [("language", lang, r, "language", lang) for lang, r in sorted(res["per_lang"].items())]
        if len(res["per_lang"]) > 1:
            groups.append(("macro", "macro avg", res["overall"], "overall", "macro"))
        for level, label, r, df_level, df_lang in groups:
            rl = r["rougeL"]
            scores = df[(df["level"] == df_level) & (df["lang"] == df_lang)]
            score = lambda cell: scores[scores["cell_id"] == cell]["rougeL_mean"]  # noqa: E731
            fa, fb = score(lora["cell_id"]), score(full["cell_id"])
            rows.append({
                "level": level, "scenario": lora["scenario"], "train_langs": lora["train_langs"], "lang": label,
                "shots": lora["shots"], "seed": lora["seed"], "variant": lora["variant"],
                "full_rougeL": float(fb.iloc[0]) if len(fb) else None,
                "lora_rougeL": float(fa.iloc[0]) if len(fa) else None,
                "diff": rl["diff"], "ci_lo": rl["ci"][0], "ci_hi": rl["ci"][1], "p_value": rl["p_value"],
                "n": rl["n"], "lora_cell": lora["cell_id"], "full_cell": full["cell_id"],
            })
    table = pd.DataFrame(rows)
    if rows:
        family = table["level"] == "language"
        for method in ("holm", "bh"):
            table[f"p_{method}"] = float("nan")
            table.loc[family, f"p_{method}"] = adjust_p_values(table.loc[family, "p_value"].to_numpy(), method)
    return table, None if rows else "matched cells share no predictions (same ids) to compare"


def sample_summaries(study_dir: str | Path, df: pd.DataFrame, *, per_lang: int = 2, max_langs: int = 6) -> list[dict]:
    """Reference, full and LoRA summaries side by side for a few test items per language.

    Uses the matched pair with the most training data for each language.
    """
    out = []
    pairs = matched_pairs(df)
    pairs.sort(key=lambda p: (-(p[0]["train_examples"] or 0) if pd.notna(p[0]["train_examples"]) else 0,
                              str(p[0]["cell_id"])))
    seen: set[str] = set()
    for lora, full in pairs:
        a = read_predictions(Path(study_dir) / lora["run_dir"] / "predictions.jsonl")
        b = read_predictions(Path(study_dir) / full["run_dir"] / "predictions.jsonl")
        for lang in lora["test_langs"].split("+"):
            if lang in seen or len(seen) >= max_langs:
                continue
            keys = sorted(k for k in set(a) & set(b) if k[1] == lang)[:per_lang]
            if not keys:
                continue
            seen.add(lang)
            for k in keys:
                out.append({"lang": lang, "id": k[0], "reference": a[k]["reference"],
                            "full": b[k]["prediction"], "lora": a[k]["prediction"],
                            "lora_variant": lora["variant"], "cells": f"{full['cell_id']} vs {lora['cell_id']}"})
    return out
