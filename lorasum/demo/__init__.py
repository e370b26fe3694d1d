"""The offline demo: a tiny model trained fully and with LoRA on the embedded sample.

``lorasum demo`` needs no network and no downloaded file. It builds a tiny mT5-shaped
model from a config (byte-level tokenizer), trains it twice on ``data.jsonl`` (synthetic
news in en, fr, ru, ar, zh-CN written by ``scripts/make_demo_data.py``), evaluates both
and prints a side-by-side table. A randomly initialised tiny model makes it a pipeline
check, not a research result.
"""
from __future__ import annotations

import time
from pathlib import Path

import torch

from lorasum.config import RunConfig, parse_run_config
from lorasum.models.tiny import build_tiny_model

DATA = Path(__file__).with_name("data.jsonl")
DEMO_LANGS = ["en", "fr", "ru", "ar", "zh-CN"]

__all__ = ["DATA", "DEMO_LANGS", "build_tiny_model", "demo_config", "run_demo"]


def demo_config(model_dir: str | Path, method: str, *, epochs: float = 3, seed: int = 42) -> RunConfig:
    """The demo's run config for ``method`` (full | lora) on the tiny model in ``model_dir``."""
    lora = method == "lora"
    return parse_run_config({
        "model": str(model_dir),
        "data": {"source": str(DATA), "languages": DEMO_LANGS, "validation_examples": 12, "test_examples": 12},
        "method": {"name": "lora", "r": 8, "alpha": 16, "dropout": 0.05, "targets": "attention+ffn"}
        if lora else {"name": "full"},
        "training": {"epochs": epochs, "batch_size": 16, "lr": 1e-2, "warmup_ratio": 0.05,
                     "label_smoothing": 0.0, "seed": seed, "max_source_length": 256, "max_target_length": 128,
                     "checkpoint_every": 50},
        "generation": {"num_beams": 2, "max_source_length": 256, "max_target_length": 96, "batch_size": 32},
    }, "demo")


def run_demo(out_dir: str | Path = "runs/demo", *, epochs: float = 3, progress: bool = True) -> dict:
    """Train and evaluate full and LoRA on the embedded sample; print and return both runs' metrics."""
    from rich.console import Console

    from lorasum.run import train_and_evaluate

    console = Console(highlight=False)
    out_dir = Path(out_dir)
    console.print("[bold]lorasum demo[/bold]: a tiny random-initialised mT5-shaped model (byte-level tokenizer), "
                  f"trained fully and with LoRA on the embedded {len(DEMO_LANGS)}-language sample.\n"
                  "This is a pipeline check, not a research result: LoRA cannot do much on a random base model, "
                  "whose frozen embeddings and head carry no language knowledge.")
    start = time.perf_counter()
    # Matrices this small gain nothing from several threads, and OpenMP threads that spin
    # while other processes hold the cores slow every step down several times.
    torch.set_num_threads(1)
    model_dir = build_tiny_model(out_dir / "tiny-mt5")
    results = {}
    for method in ("full", "lora"):
        console.rule(f"{method} fine-tuning")
        results[method] = train_and_evaluate(demo_config(model_dir, method, epochs=epochs), out_dir / method,
                                             progress=progress, cache_dir=out_dir / "cache")
    wall = time.perf_counter() - start
    console.print(comparison_table(results))
    console.print(f"Total wall time: {wall:.1f} s. Run folders: {out_dir / 'full'} and {out_dir / 'lora'}.")
    console.print(
        "The same comparison on a real model and data: set `model: google/mt5-small` and "
        "`data: {source: csebuetnlp/xlsum, languages: \\[english, russian]}` in a run YAML "
        "(see examples/mt5_small_xlsum_lora.yaml) and run `lorasum train run.yaml` on a GPU, "
        "or run the ready-made study in studies/."
    )
    return {"wall_seconds": wall, **results}


def comparison_table(results: dict):
    """A rich table: ROUGE-1/2/L per language and method, plus efficiency figures."""
    from rich.table import Table

    table = Table(title="Full fine-tuning vs LoRA (test split, ROUGE F x100)")
    table.add_column("language")
    for method in results:
        for metric in ("R-1", "R-2", "R-L"):
            table.add_column(f"{method} {metric}", justify="right")
    from lorasum.metrics import summary_rows

    per_method = [dict(summary_rows(m["rouge"])) for m in results.values()]
    for label in dict(summary_rows(next(iter(results.values()))["rouge"])):
        cells = [label]
        for rows in per_method:
            cells += [f"{rows[label][k]['mean']:.1f}" for k in ("rouge1", "rouge2", "rougeL")]
        table.add_row(*cells)
    for label, key, fmt in (("trainable %", "trainable_share", "{:.2%}"), ("artifact MB", "artifact_mb", "{:.2f}"),
                            ("train s", "train_seconds", "{:.1f}"), ("eval s", "eval_seconds", "{:.1f}")):
        cells = [label]
        for m in results.values():
            cells += [fmt.format(m["efficiency"][key]), "", ""]
        table.add_row(*cells, style="dim")
    return table
