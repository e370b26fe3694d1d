"""One tidy table of a study's results: a row per (cell, scored language).

Built from the cell folders alone (``runs/**/cell.json`` + ``metrics.json``), so it works
on a study merged from several shards and needs no spec. Every row carries the cell's
axis values, every ROUGE figure with its confidence interval, every faithfulness signal
(``<signal>_mean`` with ``_lo``/``_hi``; NLI ones empty unless the cell ran NLI) and the
efficiency figures. Rows with ``level == "overall"`` (``lang == "macro"``) hold the cell's
headline figure, the macro average over its scored languages (language-stratified
bootstrap CI); ``level == "pooled"`` rows (``lang == "all"``) the mean over all its items
pooled; ``level == "language"`` rows one language each. Compose-scenario cells say in
``composition`` whether they train a source ``adapter`` or compose the adapters of
``train_langs`` with ``uniform`` or ``learned`` weights (empty for other cells).

:func:`over_seeds` folds cells that differ only in seed into one row with the mean and
the sample standard deviation over seeds (``results_over_seeds.csv``).
"""
from __future__ import annotations

import io
from pathlib import Path

import pandas as pd

from lorasum.errors import LorasumError
from lorasum.io import atomic_write_bytes, atomic_write_text, read_json
from lorasum.metrics.faithfulness.aggregate import MEASURES as FAITHFULNESS_KEYS

ROUGE_KEYS = ("rouge1", "rouge2", "rougeL")
EFFICIENCY_KEYS = ("trainable_params", "total_params", "trainable_share", "artifact_bytes", "artifact_mb",
                   "train_seconds", "train_tokens_per_second", "peak_memory_mb", "train_steps")
LOSS_KEYS = ("final_train_loss", "final_validation_loss", "best_validation_loss")


def finished_cells(study_dir: str | Path) -> list[tuple[Path, dict, dict]]:
    """``(cell folder, cell.json, metrics.json)`` for every finished cell, sorted by id."""
    runs = Path(study_dir) / "runs"
    out = []
    for info_path in sorted(runs.rglob("cell.json")):
        d = info_path.parent
        if not (d / "metrics.json").is_file():
            continue
        out.append((d, read_json(info_path), read_json(d / "metrics.json")))
    return out


def _rouge_columns(m: dict) -> dict:
    row: dict = {"n": m.get("n")}
    for key in ROUGE_KEYS:
        s = m.get(key) or {}
        row[f"{key}_mean"] = s.get("mean")
        row[f"{key}_mean_lo"], row[f"{key}_mean_hi"] = (s.get("mean_ci") or [None, None])[:2]
        row[f"{key}_mid"] = s.get("mid")
        row[f"{key}_mid_lo"], row[f"{key}_mid_hi"] = (s.get("mid_ci") or [None, None])[:2]
    return row


def _faithfulness_columns(m: dict) -> dict:
    row: dict = {}
    for key in FAITHFULNESS_KEYS:
        s = m.get(key) or {}
        row[f"{key}_mean"] = s.get("mean")
        row[f"{key}_lo"], row[f"{key}_hi"] = (s.get("mean_ci") or [None, None])[:2]
    row["nli_chunked_share"] = m.get("nli_chunked_share")
    row["nli_truncated_share"] = m.get("nli_truncated_share")
    return row


def results_table(study_dir: str | Path) -> pd.DataFrame:
    """The tidy table (not written anywhere)."""
    rows = []
    for d, info, metrics in finished_cells(study_dir):
        axes = {
            "cell_id": info["cell_id"], "scenario": info["scenario"], "regime": info["regime"],
            "method": info["method"], "variant": info["variant"], "rank": info.get("rank"),
            "targets": info.get("targets"), "lora_alpha": info.get("lora_alpha"), "seed": info["seed"],
            "shots": info.get("shots"), "multilingual": info.get("multilingual", False),
            "train_langs": "+".join(info["train_langs"]), "test_langs": "+".join(info["test_langs"]),
            "parent": info.get("parent"), "config_hash": info["config_hash"],
            # compose cells: adapter (a source), uniform or learned; train_langs holds the composed sources
            "composition": info.get("composition"),
        }
        run = metrics.get("run", {})
        per_lang_train = run.get("train_examples") or {}
        eff = metrics.get("efficiency", {})
        losses = metrics.get("losses", {})
        common = {
            **axes,
            "train_examples": sum(v for v in per_lang_train.values() if v) if per_lang_train else None,
            "model": run.get("model"),
            **{k: eff.get(k) for k in EFFICIENCY_KEYS},
            **{k: losses.get(k) for k in LOSS_KEYS},
            "run_dir": str(d.relative_to(Path(study_dir))),
        }
        nli = ((metrics.get("scorer") or {}).get("faithfulness") or {}).get("nli") or {}
        common["nli_model"] = nli.get("model")
        rouge, faith = metrics.get("rouge", {}), metrics.get("faithfulness") or {}
        # source/target: the article's and the summary's language (they differ in cross-lingual cells)
        target = info.get("summary_lang")
        rows.append({**common, "level": "overall", "lang": "macro", "source_lang": "all",
                     "target_lang": target or "all", **_rouge_columns(rouge.get("overall", {})),
                     **_faithfulness_columns(faith.get("overall") or {})})
        if rouge.get("pooled"):
            rows.append({**common, "level": "pooled", "lang": "all", "source_lang": "all",
                         "target_lang": target or "all", **_rouge_columns(rouge["pooled"]),
                         **_faithfulness_columns(faith.get("pooled") or {})})
        for lang, m in sorted((rouge.get("per_lang") or {}).items()):
            rows.append({**common, "level": "language", "lang": lang, "source_lang": lang,
                         "target_lang": target or lang, **_rouge_columns(m),
                         **_faithfulness_columns((faith.get("per_lang") or {}).get(lang) or {})})
    df = pd.DataFrame(rows)
    if not df.empty:
        for col in ("rank", "shots", "seed", "n", "train_examples", "trainable_params", "total_params",
                    "artifact_bytes", "train_steps"):
            df[col] = df[col].astype("Int64")
    return df


# columns that tell apart cells differing only in seed, or that vary from seed to seed
_PER_CELL = ("seed", "cell_id", "parent", "config_hash", "run_dir", "n")


def _value_columns() -> list[str]:
    cols = [f"{k}_{s}" for k in ROUGE_KEYS for s in ("mean", "mean_lo", "mean_hi", "mid", "mid_lo", "mid_hi")]
    return cols + list(EFFICIENCY_KEYS) + list(LOSS_KEYS)


def over_seeds(df: pd.DataFrame) -> pd.DataFrame:
    """One row per group of rows that differ only in seed (same axes, level and language).

    For each ROUGE key: ``{key}_mean_over_seeds`` and ``{key}_std_over_seeds`` (mean and
    sample standard deviation, ddof=1, of the seeds' corpus means; empty with one seed),
    ``{key}_ci_lo_min`` / ``{key}_ci_hi_max`` (lowest and highest bound of the seeds' 95%
    CIs); ``n_seeds`` and ``seeds``; efficiency and loss figures are means over the seeds.
    Every other column of :func:`results_table` is a grouping key, so a new axis column
    keeps its cells apart without a change here.
    """
    values = _value_columns()
    keys = [c for c in df.columns if c not in _PER_CELL and c not in values]
    if df.empty:
        return pd.DataFrame(columns=keys + ["n_seeds", "seeds"])
    agg: dict = {"n_seeds": ("seed", "nunique"),
                 "seeds": ("seed", lambda s: "+".join(str(x) for x in sorted(s.dropna().unique())))}
    for k in ROUGE_KEYS:
        agg[f"{k}_mean_over_seeds"] = (f"{k}_mean", "mean")
        agg[f"{k}_std_over_seeds"] = (f"{k}_mean", "std")
        agg[f"{k}_ci_lo_min"] = (f"{k}_mean_lo", "min")
        agg[f"{k}_ci_hi_max"] = (f"{k}_mean_hi", "max")
    for k in (*EFFICIENCY_KEYS, *LOSS_KEYS):
        agg[k] = (k, "mean")
    data = df.copy()
    for k in values:
        data[k] = pd.to_numeric(data[k], errors="coerce").astype(float)
    out = data.groupby(keys, dropna=False, sort=True).agg(**agg).reset_index()
    out["n_seeds"] = out["n_seeds"].astype("Int64")
    return out


def study_results(study_dir: str | Path, *, write: bool = True) -> pd.DataFrame:
    """Gather finished cells into ``results.csv`` and ``results.parquet`` (atomic writes),
    and the seed aggregates (:func:`over_seeds`) into ``results_over_seeds.csv``.

    Returns the table; raises :class:`LorasumError` when the folder holds no finished cell.
    """
    study_dir = Path(study_dir)
    if not (study_dir / "runs").is_dir():
        raise LorasumError(f"{study_dir}: not a study folder (no runs/ inside); run `lorasum study run` first")
    df = results_table(study_dir)
    if df.empty:
        raise LorasumError(f"{study_dir}: no finished cell yet (no runs/**/metrics.json)")
    if write:
        atomic_write_text(study_dir / "results.csv", df.to_csv(index=False))
        buf = io.BytesIO()
        df.to_parquet(buf, index=False)
        atomic_write_bytes(study_dir / "results.parquet", buf.getvalue())
        atomic_write_text(study_dir / "results_over_seeds.csv", over_seeds(df).to_csv(index=False))
    return df
