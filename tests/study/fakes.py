"""Test double for the single-run pipeline: writes a plausible run folder, trains nothing.

Its numbers are a deterministic function of the config (method, rank, shots, language,
seed), so a resumed study must reproduce an uninterrupted one exactly.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import time
from pathlib import Path

from lorasum.config import RunConfig
from lorasum.io import write_json, write_jsonl, write_yaml

# a study with every regime, small enough for the fake runner
SMALL_STUDY = {
    "name": "small",
    "base": {"model": "google/mt5-small", "data": {"source": "data.jsonl"}, "training": {"epochs": 1, "batch_size": 4}},
    "per_method": {"full": {"training": {"lr": 5e-4, "optimizer": "adafactor"}}, "lora": {"training": {"lr": 1e-3}}},
    "axes": {"method": ["full", "lora"], "rank": [8], "targets": ["attention"], "seed": [0]},
    "scenarios": [
        {"regime": "low_data", "languages": ["en", "fr"], "shots": [16, 64], "axes": {"seed": [0, 1]}},
        {"regime": "zero_shot", "source_langs": ["en"], "target_langs": ["fr", "ru"]},
        {"regime": "few_shot", "after": "zero_shot", "shots": [16]},
        {"regime": "multi_source", "source_langs": ["en", "fr"], "target_langs": ["ru"]},
        {"name": "rank_ablation", "regime": "low_data", "languages": ["en"], "shots": [64],
         "axes": {"method": ["lora"], "rank": [4, 16]}},
    ],
}

WORDS = ["the", "minister", "said", "on", "monday", "that", "prices", "rose", "in", "city", "council", "vote"]


def _u(*parts) -> float:
    h = hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()
    return int(h[:8], 16) / 0xFFFFFFFF


def _stat(x: float, spread: float = 1.5) -> dict:
    return {"mean": round(x, 4), "mean_ci": [round(x - spread, 4), round(x + spread, 4)],
            "mid": round(x + 0.05, 4), "mid_ci": [round(x - spread, 4), round(x + spread, 4)]}


def _score(config: RunConfig, lang: str) -> float:
    shots = config.data.train_examples or 5000
    base = 8 + 4 * math.log2(shots)
    if config.method.name == "lora":
        base += 3 - 0.0015 * shots + 0.3 * math.log2(config.method.r)
    if lang not in config.data.languages:
        base *= 0.55 if config.method.name == "full" else 0.7
    if config.init_from:
        base += 4
    return base + 2 * _u(lang, config.training.seed, config.method.name)


def fake_train_and_evaluate(config: RunConfig, run_dir: Path, *, progress: bool = True) -> dict:
    run_dir = Path(run_dir)
    if (run_dir / "metrics.json").is_file():
        return json.loads((run_dir / "metrics.json").read_text())
    write_yaml(run_dir / "config.yaml", config.to_dict())
    (run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
    # tests set these to make a cell slow, so a process can be killed inside it
    slow = os.environ.get("FAKE_RUNNER_SLOW_CELL")
    if slow and slow in str(run_dir):
        (run_dir / "checkpoints" / "started").write_text("1")
        time.sleep(float(os.environ.get("FAKE_RUNNER_SLEEP", "30")))
    langs = config.data.eval_languages
    preds = []
    per_lang = {}
    for lang in langs:
        score = _score(config, lang)
        for i in range(6):
            ref = " ".join(WORDS[(i + j) % len(WORDS)] for j in range(8))
            keep = int(8 * score / 40)
            pred = " ".join(ref.split()[:keep] + ["something"] * (8 - keep))
            preds.append({"id": f"{lang}-{i}", "lang": lang, "reference": ref, "prediction": pred})
        per_lang[lang] = {"rouge1": _stat(score * 1.25), "rouge2": _stat(score * 0.45), "rougeL": _stat(score), "n": 6}
    overall = {k: _stat(sum(per_lang[l][k]["mean"] for l in langs) / len(langs)) for k in ("rouge1", "rouge2", "rougeL")}
    overall["n"] = 6 * len(langs)
    write_jsonl(run_dir / "predictions.jsonl", preds)
    lora = config.method.name == "lora"
    trainable = 300_000_000 if not lora else 8 * config.method.r * 1024 * 24
    metrics = {
        "run": {"method": config.method.name, "model": config.model.name,
                "train_languages": config.data.languages, "test_languages": langs,
                "train_examples": {l: config.data.train_examples or 5000 for l in config.data.languages}},
        "rouge": {"overall": overall, "per_lang": per_lang},
        "efficiency": {"trainable_params": trainable, "total_params": 300_000_000,
                       "trainable_share": trainable / 300_000_000, "artifact_bytes": trainable * 4,
                       "artifact_mb": trainable * 4 / 2**20, "train_seconds": 1.5, "train_tokens_per_second": 1000.0,
                       "peak_memory_mb": 512.0, "train_steps": 10},
        "losses": {"final_train_loss": 2.5, "final_validation_loss": 2.7, "best_validation_loss": 2.6},
        "scorer": {"name": "fake"},
    }
    write_json(run_dir / "metrics.json", metrics)
    return metrics
