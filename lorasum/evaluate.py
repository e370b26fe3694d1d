"""Evaluate a trained model or adapter on a test split, and summarize new articles.

``evaluate_examples`` is shared by training runs and ``lorasum evaluate``: it generates
summaries (sorted by length, batched), writes ``predictions.jsonl`` and scores it with
lorasum's multilingual ROUGE and faithfulness signals (NLI entailment when configured).
"""
from __future__ import annotations

import logging
from pathlib import Path

import torch

from lorasum.config import (DataConfig, FaithfulnessConfig, GenerationConfig, RunConfig, parse_run_config,
                            read_yaml)
from lorasum.errors import LorasumError
from lorasum.generate import decoding_record, generate_summaries
from lorasum.io import write_json, write_jsonl

log = logging.getLogger(__name__)


def evaluate_examples(model, tokenizer, fam: str, rows: list[dict], gen: GenerationConfig, out_dir: Path, *,
                      prompt_template: str | None = None, accelerator=None, progress: bool = True,
                      resamples: int = 1000, seed: int = 0,
                      faithfulness: FaithfulnessConfig | None = None) -> tuple[dict, dict, dict]:
    """Generate for ``rows``, write ``predictions.jsonl`` in ``out_dir``; return (rouge, faithfulness, scorer info).

    ``rouge`` is :func:`lorasum.metrics.corpus_scores`: ``overall`` (macro average over
    languages, language-stratified CI), ``pooled`` and ``per_lang``. Model-free faithfulness
    signals are always computed; NLI entailment only with a ``faithfulness`` config, and only
    on the main process (the others return the signals).
    """
    from lorasum.metrics import corpus_scores, score_items, scorer_info
    from lorasum.metrics.faithfulness import (faithfulness_info, faithfulness_items, faithfulness_scores, load_scorer,
                                              open_cache)

    summary_langs = [r.get("summary_lang") or r["lang"] for r in rows]
    preds = generate_summaries(model, tokenizer, [r["text"] for r in rows], gen, langs=[r["lang"] for r in rows],
                               is_decoder_only=fam == "decoder", prompt_template=prompt_template,
                               accelerator=accelerator, progress=progress, summary_langs=summary_langs)
    langs = [r["lang"] for r in rows]
    # ROUGE in the summary's language: an English summary of a French article is scored as English
    items = score_items(preds, [r["summary"] for r in rows], summary_langs)
    is_main = accelerator is None or accelerator.is_main_process
    nli = load_scorer(faithfulness) if is_main else None
    faith = faithfulness_items([r["text"] for r in rows], preds, langs, scorer=nli, progress=progress,
                               cache=open_cache(faithfulness) if nli is not None else None)
    if is_main:
        write_jsonl(Path(out_dir) / "predictions.jsonl", (
            {"id": r["id"], "lang": r["lang"], "summary_lang": sl, "reference": r["summary"], "prediction": p,
             "rougeL": round(it["rougeL"]["f"] * 100, 4), "faithfulness": _rounded(fa)}
            for r, p, it, fa, sl in zip(rows, preds, items, faith, summary_langs)
        ))
    scorer = {**scorer_info(sorted(set(summary_langs))), "faithfulness": faithfulness_info(nli)}
    return (corpus_scores(items, langs, resamples=resamples, seed=seed),
            faithfulness_scores(faith, langs, resamples=resamples, seed=seed), scorer)


def _rounded(item: dict) -> dict:
    return {k: round(v, 6) if isinstance(v, float) else v for k, v in item.items()}


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
             faithfulness: FaithfulnessConfig | None = None, split: str = "test") -> dict:
    """Generate and score ``data``'s ``split``; writes predictions.jsonl and metrics.json to ``out_dir``.

    NLI faithfulness uses ``faithfulness``, else the run folder's ``evaluation.faithfulness``.
    """
    from lorasum.artifact import inference_settings
    from lorasum.data.stream import sample_examples

    out_dir = Path(out_dir)
    prompt, saved_gen = inference_settings(model, adapter)
    gen = generation or saved_gen
    m, tok, fam = load_for_inference(model, adapter)
    test = sample_examples(data, split, data.eval_languages, data.test_examples, data.sample_seed, strict=False)
    rows = [ex for r in test.values() for ex in r]
    run_cfg = _run_config(model)
    if faithfulness is None and run_cfg is not None and run_cfg.evaluation is not None:
        faithfulness = run_cfg.evaluation.faithfulness
    rouge, faith, scorer = evaluate_examples(m, tok, fam, rows, gen, out_dir, prompt_template=prompt,
                                             progress=progress, resamples=resamples, faithfulness=faithfulness)
    metrics = {"model": model, "adapter": adapter, "test_examples": {k: len(v) for k, v in test.items()},
               "split": split, "rouge": rouge, "faithfulness": faith, "scorer": scorer,
               "generation": decoding_record(m, tok, gen, is_decoder_only=fam == "decoder")}
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
