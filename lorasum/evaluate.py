"""Evaluate a trained model or adapter on a test split, and summarize new articles.

``evaluate_examples`` is shared by training runs and ``lorasum evaluate``: it generates
summaries (sorted by length, batched), writes ``predictions.jsonl`` and scores it with
lorasum's multilingual ROUGE.
"""
from __future__ import annotations

import logging
from pathlib import Path

import torch

from lorasum.config import DataConfig, GenerationConfig, RunConfig, parse_run_config, read_yaml
from lorasum.errors import LorasumError
from lorasum.generate import generate_summaries
from lorasum.io import write_json, write_jsonl

log = logging.getLogger(__name__)


def evaluate_examples(model, tokenizer, fam: str, rows: list[dict], gen: GenerationConfig, out_dir: Path, *,
                      prompt_template: str | None = None, accelerator=None, progress: bool = True,
                      resamples: int = 1000, seed: int = 0) -> tuple[dict, dict]:
    """Generate for ``rows``, write ``predictions.jsonl`` in ``out_dir``; return (rouge, scorer info).

    ``rouge`` is :func:`lorasum.metrics.corpus_scores`: ``overall`` (macro average over
    languages, language-stratified CI), ``pooled`` and ``per_lang``.
    """
    from lorasum.metrics import corpus_scores, score_items, scorer_info

    preds = generate_summaries(model, tokenizer, [r["text"] for r in rows], gen, langs=[r["lang"] for r in rows],
                               is_decoder_only=fam == "decoder", prompt_template=prompt_template,
                               accelerator=accelerator, progress=progress)
    langs = [r["lang"] for r in rows]
    items = score_items(preds, [r["summary"] for r in rows], langs)
    is_main = accelerator is None or accelerator.is_main_process
    if is_main:
        write_jsonl(Path(out_dir) / "predictions.jsonl", (
            {"id": r["id"], "lang": r["lang"], "reference": r["summary"], "prediction": p,
             "rougeL": round(it["rougeL"]["f"] * 100, 4)}
            for r, p, it in zip(rows, preds, items)
        ))
    return corpus_scores(items, langs, resamples=resamples, seed=seed), scorer_info(sorted(set(langs)))


def load_for_inference(model: str, adapter: str | None = None, *, precision: str = "fp32"):
    """(model, tokenizer, family) from a run folder, a model folder or hub id, plus an optional adapter.

    A run folder resolves to its method's artifact: ``model/`` (full) or its base model +
    ``adapter/`` (LoRA).
    """
    from lorasum.methods import find_artifact, method_of
    from lorasum.models.load import load_base

    path = Path(model)
    if (path / "config.yaml").exists() and adapter is None:
        cfg = _run_config(model)
        try:
            method, artifact = find_artifact(path)
        except LorasumError:
            raise LorasumError(f"{path}: the run has no {method_of(cfg.method).artifact_name}/ folder yet "
                               "(did its training finish?)") from None
        m, tok, fam = method.load_artifact(cfg.model.name, artifact, revision=cfg.model.revision,
                                           precision=precision)
    elif adapter is not None:
        if not Path(adapter).exists():
            raise LorasumError(f"adapter folder not found: {adapter}")
        method, artifact = find_artifact(adapter)
        m, tok, fam = method.load_artifact(model, artifact, precision=precision)
    else:
        m, tok, fam = load_base(model, precision=precision)
    m.eval()
    if precision == "bf16":
        m = m.to(torch.bfloat16)
    return m, tok, fam


def evaluate(model: str, data: DataConfig, out_dir: str | Path, *, adapter: str | None = None,
             generation: GenerationConfig | None = None, progress: bool = True, resamples: int = 1000,
             split: str = "test") -> dict:
    """Generate and score ``data``'s ``split``; writes predictions.jsonl and metrics.json to ``out_dir``."""
    from lorasum.data.sampling import sample_per_lang
    from lorasum.data.sources import load_examples

    from lorasum.artifact import inference_settings

    out_dir = Path(out_dir)
    prompt, saved_gen = inference_settings(model, adapter)
    gen = generation or saved_gen
    m, tok, fam = load_for_inference(model, adapter)
    test = sample_per_lang(load_examples(data, split, data.eval_languages), data.test_examples, data.sample_seed,
                           split=split, strict=False)
    rows = [ex for r in test.values() for ex in r]
    rouge, scorer = evaluate_examples(m, tok, fam, rows, gen, out_dir, prompt_template=prompt, progress=progress,
                                      resamples=resamples)
    metrics = {"model": model, "adapter": adapter, "test_examples": {k: len(v) for k, v in test.items()},
               "split": split, "rouge": rouge, "scorer": scorer, "generation": gen.model_dump()}
    write_json(out_dir / "metrics.json", metrics)
    return metrics


def _run_config(model: str) -> RunConfig | None:
    """The config of a run folder, or None for a model folder / hub id."""
    p = Path(model) / "config.yaml"
    return parse_run_config(read_yaml(p), str(p)) if p.exists() else None


def summarize(model: str, texts: list[str], lang: str, *, adapter: str | None = None,
              generation: GenerationConfig | None = None, progress: bool = False) -> list[str]:
    """Summaries of ``texts`` (all in ``lang``) with a model or run folder and optional adapter."""
    from lorasum.languages import normalize_lang

    lang = normalize_lang(lang, "--lang")
    from lorasum.artifact import inference_settings

    m, tok, fam = load_for_inference(model, adapter)
    # the run's, or the adapter's recorded, prompt and decoding: as the run was evaluated
    prompt, saved_gen = inference_settings(model, adapter)
    return generate_summaries(m, tok, texts, generation or saved_gen, langs=[lang] * len(texts),
                              is_decoder_only=fam == "decoder", prompt_template=prompt, progress=progress)
