"""One run end to end: data -> model (+ LoRA) -> train -> save -> generate -> score -> files.

:func:`train_and_evaluate` is what ``lorasum train`` and every study cell call. A run
folder is complete when ``metrics.json`` exists (it is written last, atomically); calling
again on a complete folder returns its metrics, and on an interrupted one resumes.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from accelerate import Accelerator

from lorasum import faults
from lorasum.config import RunConfig
from lorasum.data.features import encode_cached, encode_seq2seq
from lorasum.data.stream import sample_examples
from lorasum.errors import LorasumError
from lorasum.io import read_json, write_json, write_yaml
from lorasum.methods import artifact_sizes, find_artifact, method_of
from lorasum.models.load import check_precision, count_parameters, family, load_base, load_model_config
from lorasum.tracking import RunTracking, closed_on_error, test_metrics
from lorasum.train import Trainer, make_accelerator

log = logging.getLogger(__name__)


@dataclass
class RunData:
    train: dict[str, list[dict]]
    validation: dict[str, list[dict]]
    test: dict[str, list[dict]]


def prepare_data(cfg: RunConfig) -> RunData:
    """Seeded per-language samples of each split, as the config asks."""
    d = cfg.data
    # samples are drawn while streaming: a small sample of a large corpus never loads the corpus
    train = sample_examples(d, "train", d.languages, d.train_examples, d.sample_seed)
    validation = sample_examples(d, "validation", d.languages, d.validation_examples, d.sample_seed, strict=False)
    test = sample_examples(d, "test", d.eval_languages, d.test_examples, d.sample_seed, strict=False)
    return RunData(train, validation, test)


def build_model(cfg: RunConfig):
    """(model, tokenizer, family) ready to train: the base prepared by the method, or a run continued."""
    method = method_of(cfg.method)
    if cfg.init_from:
        try:
            found, path = find_artifact(Path(cfg.init_from))
        except LorasumError as err:
            raise LorasumError(f"init_from: {err}") from None
        if found is not method:
            raise LorasumError(f"init_from: {cfg.init_from} holds a {found.title} {found.artifact_name}; "
                               f"{method.title} continues from a {method.artifact_name}")
        return method.load_artifact(cfg.model.name, path, revision=cfg.model.revision,
                                    precision=cfg.training.precision, trainable=True)
    model, tok, fam = load_base(cfg.model.name, revision=cfg.model.revision, precision=cfg.training.precision)
    return method.apply(model, fam, cfg.method), tok, fam


def encode(examples: list[dict], tokenizer, fam: str, cfg: RunConfig, cache_dir: Path | None) -> list[dict]:
    if fam == "decoder":
        from lorasum.data.causal import encode_causal

        return encode_cached(examples, tokenizer, encode_causal, cache_dir,
                             max_source_length=cfg.training.max_source_length,
                             max_target_length=cfg.training.max_target_length,
                             prompt_template=cfg.model.prompt_template)
    return encode_cached(examples, tokenizer, encode_seq2seq, cache_dir,
                         max_source_length=cfg.training.max_source_length,
                         max_target_length=cfg.training.max_target_length)


def _check_run_dir(cfg: RunConfig, run_dir: Path) -> None:
    saved = run_dir / "config.yaml"
    if saved.exists():
        import yaml

        old = yaml.safe_load(saved.read_text(encoding="utf-8"))
        started = any(run_dir.glob("checkpoints/step-*")) or any((run_dir / n).exists() for n in ("adapter", "model"))
        # where a run is tracked does not change what it computes: a resume may add a tracker
        if _without_tracking(old) != _without_tracking(cfg.to_dict()) and started:
            raise LorasumError(f"{run_dir} holds a run with a different config ({saved}); "
                               "use a new output folder or delete the old one")


def _without_tracking(config: dict | None) -> dict | None:
    return {k: v for k, v in config.items() if k != "tracking"} if isinstance(config, dict) else config


def train_and_evaluate(config: RunConfig, run_dir: str | Path, *, progress: bool = True,
                       cache_dir: str | Path | None = None, accelerator: Accelerator | None = None) -> dict:
    """Train, save, generate for the test split, score; returns (and writes) ``metrics.json``."""
    run_dir = Path(run_dir)
    if (run_dir / "metrics.json").exists():
        _check_run_dir(config, run_dir)
        return read_json(run_dir / "metrics.json")
    run_dir.mkdir(parents=True, exist_ok=True)
    _check_run_dir(config, run_dir)
    acc = accelerator or make_accelerator(config.training)
    if acc.is_main_process:
        write_yaml(run_dir / "config.yaml", config.to_dict())
    cache = Path(cache_dir) if cache_dir else run_dir / "cache"
    # before any data is read: a tracker whose package is missing fails here
    tracking = RunTracking.from_config(config, run_dir) if acc.is_main_process else None

    from transformers import set_seed

    set_seed(config.training.seed)
    model_config = load_model_config(config.model.name, config.model.revision)
    check_precision(model_config, config.training.precision)  # fail before any data is read
    data = prepare_data(config)
    method = method_of(config.method)
    artifact_dir = run_dir / method.artifact_name
    train_info_path = run_dir / "train_result.json"
    if train_info_path.exists() and artifact_dir.exists():
        # trained before an interruption during evaluation: load the result, do not train again
        train_info = read_json(train_info_path)
        fam = family(model_config)
        model, tokenizer, _ = method.load_artifact(config.model.name, artifact_dir, revision=config.model.revision)
    else:
        model, tokenizer, fam = build_model(config)
        trainable, total = count_parameters(model)
        # the Trainer's sampler mixes the languages, resampled per epoch (training.multilingual_alpha)
        train_rows = [ex for rows in data.train.values() for ex in rows]
        val_rows = [ex for rows in data.validation.values() for ex in rows]
        with acc.main_process_first():  # the main process fills the token cache, the others read it
            train_features = encode(train_rows, tokenizer, fam, config, cache)
            val_features = encode(val_rows, tokenizer, fam, config, cache)
        trainer = Trainer(model, train_features, val_features, config.training, run_dir,
                          pad_token_id=tokenizer.pad_token_id, is_decoder_only=fam == "decoder",
                          accelerator=acc, progress=progress, tracking=tracking)
        faults.check_output_space(run_dir, model, config.training.keep_checkpoints, config.training.optimizer)
        with faults.failures_recorded(run_dir), closed_on_error(tracking):
            result = trainer.train()
        model = acc.unwrap_model(trainer.model)
        train_info = {**result.to_dict(), "trainable_params": trainable, "total_params": total}
        if acc.is_main_process:
            method.save_artifact(model, tokenizer, run_dir)
            write_json(train_info_path, train_info)
        acc.wait_for_everyone()

    from lorasum.evaluate import evaluate_examples
    from lorasum.generate import decoding_record

    test_rows = [ex for rows in data.test.values() for ex in rows]
    t0 = time.perf_counter()
    with closed_on_error(tracking):
        rouge, faithfulness, scorer = evaluate_examples(
            model, tokenizer, fam, test_rows, config.generation, run_dir, prompt_template=config.model.prompt_template,
            accelerator=acc, progress=progress,
            faithfulness=config.evaluation.faithfulness if config.evaluation else None)
    eval_seconds = time.perf_counter() - t0
    sizes = artifact_sizes(artifact_dir)  # weights only; the tokenizer is reported apart
    metrics = {
        "run": {
            "method": config.method.name,
            "variant": method.label(config.method),
            "model": config.model.name,
            "family": fam,
            "train_languages": config.data.languages,
            "test_languages": config.data.eval_languages,
            "train_examples": {lang: len(rows) for lang, rows in data.train.items()},
            "test_examples": {lang: len(rows) for lang, rows in data.test.items()},
            "method_config": config.method.model_dump(mode="json"),
            "init_from": config.init_from,
        },
        "rouge": rouge,
        "faithfulness": faithfulness,
        "efficiency": {
            "trainable_params": train_info["trainable_params"],
            "total_params": train_info["total_params"],
            "trainable_share": train_info["trainable_params"] / train_info["total_params"],
            "artifact_bytes": sizes["artifact_bytes"],
            "artifact_mb": round(sizes["artifact_bytes"] / 2**20, 3),
            "tokenizer_bytes": sizes["tokenizer_bytes"],
            "train_seconds": train_info["train_seconds"],
            "train_tokens_per_second": train_info["tokens_per_second"],
            "peak_memory_mb": train_info["peak_memory_mb"],
            "peak_memory_kind": train_info.get("peak_memory_kind"),
            "train_steps": train_info["steps"],
            "eval_seconds": eval_seconds,
        },
        "losses": {
            "final_train_loss": train_info["final_train_loss"],
            "final_validation_loss": train_info["final_validation_loss"],
            "best_validation_loss": train_info["best_validation_loss"],
            "stopped_early": train_info["stopped_early"],
        },
        "scorer": scorer,
        "generation": decoding_record(model, tokenizer, config.generation, is_decoder_only=fam == "decoder"),
    }
    if tracking is not None:
        tracking.open(train_info["steps"])  # already open unless training finished in an earlier process
        tracking.log_test(test_metrics(rouge), train_info["steps"])
        tracking.close()
    if acc.is_main_process:
        from lorasum.card import write_model_card

        write_model_card(run_dir, config, metrics)
        write_json(run_dir / "metrics.json", metrics)
    acc.wait_for_everyone()
    return metrics
