"""One compose-scenario cell: source adapters -> composed adapter -> generate -> score -> files.

The counterpart of :func:`lorasum.run.train_and_evaluate` for cells that train nothing.
The arithmetic is :mod:`lorasum.compose` (peft's ``add_weighted_adapter``; LoraHub-style
weights searched with nevergrad); evaluation is :func:`lorasum.evaluate.evaluate_examples`,
the same generation, scorer and bootstrap CIs as every other cell. The cell folder holds
the composed ``adapter/`` (base + adapter load like any LoRA run), ``composition.json``
(kind, method, weights, sources, and for learned weights the search curve, the number of
evaluations and the ids of the target examples it read), ``predictions.jsonl`` and
``metrics.json`` (written last: the cell is done).

Learned weights read ``shots`` seeded examples of the target's *train* split, drawn by the
same sampler as every low-data cell; the test split is only generated for and scored.
"""
from __future__ import annotations

import time
from pathlib import Path

from lorasum.config import RunConfig
from lorasum.errors import LorasumError
from lorasum.io import read_json, write_json, write_yaml

KINDS = ("uniform", "learned")


def compose_and_evaluate(config: RunConfig, run_dir: str | Path, adapters: dict[str, str], kind: str,
                         settings: dict, *, progress: bool = False) -> dict:
    """Compose ``adapters`` (source language -> finished run folder) as ``kind`` says, evaluate on
    the config's test languages; returns (and writes) ``metrics.json``.

    ``kind`` is ``uniform`` (weights 1/n) or ``learned`` (``settings``: ``shots``, ``budget``,
    ``l1_penalty``, ``seed``); ``settings["method"]`` is the peft combination (``cat``: exact).
    """
    from transformers import set_seed

    from lorasum.compose import EXACT, compose, fit_weights
    from lorasum.data.stream import sample_examples
    from lorasum.evaluate import evaluate_examples
    from lorasum.generate import decoding_record
    from lorasum.methods import artifact_sizes, method_of

    if kind not in KINDS:
        raise LorasumError(f"composition kind {kind!r}: expected one of {', '.join(KINDS)}")
    run_dir = Path(run_dir)
    if (run_dir / "metrics.json").exists():
        return read_json(run_dir / "metrics.json")
    run_dir.mkdir(parents=True, exist_ok=True)
    write_yaml(run_dir / "config.yaml", config.to_dict())
    set_seed(config.training.seed)
    d = config.data
    method = settings.get("method", "cat")
    names = list(adapters)
    artifact = run_dir / method_of(config.method).artifact_name
    t0 = time.perf_counter()
    record: dict = {"kind": kind, "method": method, "exact": EXACT[method], "sources": dict(adapters)}
    train_examples: dict[str, int] = {}
    if kind == "uniform":
        weights = [1.0 / len(names)] * len(names)
        compose(adapters, weights, artifact, method=method, base=config.model.name, seed=config.training.seed)
        record["weights"] = dict(zip(names, weights))
    else:
        # the target's train split only: the test split is what the cell is scored on
        rows = [ex for part in sample_examples(d, "train", d.languages, settings["shots"], d.sample_seed).values()
                for ex in part]
        found = fit_weights(adapters, rows, artifact, budget=settings["budget"], seed=settings["seed"],
                            method=method, base=config.model.name,
                            max_source_length=config.training.max_source_length,
                            max_target_length=config.training.max_target_length,
                            l1_penalty=settings["l1_penalty"])
        record.update({k: found[k] for k in ("weights", "optimizer", "budget", "evaluations", "seed", "k",
                                             "examples", "bounds", "l1_penalty", "curve")})
        record["split"] = d.splits.get("train", "train")
        train_examples = {lang: sum(1 for r in rows if r["lang"] == lang) for lang in d.languages}
    compose_seconds = time.perf_counter() - t0
    write_json(run_dir / "composition.json", record)

    model, tokenizer, fam = method_of(config.method).load_artifact(config.model.name, artifact,
                                                                     revision=config.model.revision,
                                                                     precision=config.training.precision)
    model.eval()
    test = sample_examples(d, "test", d.eval_languages, d.test_examples, d.sample_seed, strict=False)
    test_rows = [ex for rows in test.values() for ex in rows]
    t1 = time.perf_counter()
    rouge, faithfulness, scorer = evaluate_examples(
        model, tokenizer, fam, test_rows, config.generation, run_dir, prompt_template=config.model.prompt_template,
        progress=progress, faithfulness=config.evaluation.faithfulness if config.evaluation else None)
    sizes = artifact_sizes(artifact)
    metrics = {
        "run": {
            "method": config.method.name,
            "variant": method_of(config.method).label(config.method),
            "model": config.model.name,
            "family": fam,
            "train_languages": names,
            "test_languages": d.eval_languages,
            "train_examples": train_examples,
            "test_examples": {lang: len(rows) for lang, rows in test.items()},
            "method_config": config.method.model_dump(mode="json"),
            "composition": {k: record[k] for k in ("kind", "method", "exact", "weights")},
        },
        "rouge": rouge,
        "faithfulness": faithfulness,
        "efficiency": {
            "artifact_bytes": sizes["artifact_bytes"],
            "artifact_mb": round(sizes["artifact_bytes"] / 2**20, 3),
            "tokenizer_bytes": sizes["tokenizer_bytes"],
            "train_seconds": compose_seconds,  # composing, and for learned weights the search
            "eval_seconds": time.perf_counter() - t1,
        },
        "losses": {},
        "scorer": scorer,
        "generation": decoding_record(model, tokenizer, config.generation, is_decoder_only=fam == "decoder"),
    }
    write_json(run_dir / "metrics.json", metrics)
    return metrics
