"""One tidy table of a study's results: a row per (cell, scored language).

Built from the cell folders alone (``runs/**/cell.json`` + ``metrics.json``), so it works
on a study merged from several shards and needs no spec. Every row carries the cell's
axis values, every ROUGE figure with its confidence interval, and the efficiency figures.
Rows with ``level == "overall"`` (``lang == "all"``) hold the cell's figure over all its
scored languages; ``level == "language"`` rows hold one language each.
"""
from __future__ import annotations

import io
from pathlib import Path

import pandas as pd

from lorasum.errors import LorasumError
from lorasum.io import atomic_write_bytes, atomic_write_text, read_json

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
        rouge = metrics.get("rouge", {})
        # source/target: the article's and the summary's language (they differ in cross-lingual cells)
        target = info.get("summary_lang")
        rows.append({**common, "level": "overall", "lang": "all", "source_lang": "all", "target_lang": target or "all",
                     **_rouge_columns(rouge.get("overall", {}))})
        for lang, m in sorted((rouge.get("per_lang") or {}).items()):
            rows.append({**common, "level": "language", "lang": lang, "source_lang": lang,
                         "target_lang": target or lang, **_rouge_columns(m)})
    df = pd.DataFrame(rows)
    if not df.empty:
        for col in ("rank", "shots", "seed", "n", "train_examples", "trainable_params", "total_params",
                    "artifact_bytes", "train_steps"):
            df[col] = df[col].astype("Int64")
    return df


def study_results(study_dir: str | Path, *, write: bool = True) -> pd.DataFrame:
    """Gather finished cells into ``results.csv`` and ``results.parquet`` (atomic writes).

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
    return df
