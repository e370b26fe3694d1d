"""Summaries decoded by CTranslate2 (``generation.backend: ctranslate2``).

CTranslate2 runs the same weights through a C++ inference engine: beam search with the
same length penalty (a finished hypothesis scores ``sum of log-probs / length **
length_penalty``, as in transformers) and n-gram blocking, which differs in one respect:
CTranslate2 renormalises the probabilities of the tokens left after a ban, transformers
does not, so beams with blocking can rank differently (docs/generation-backends.md has the
measured agreement). Everything else stays lorasum's: the articles are tokenized, cut and batched exactly as
for the transformers backend (:func:`lorasum.generate.length_batches`), and the summary
tokens are decoded by the same tokenizer.

The model given is converted once: a LoRA model is merged into a copy of its base
(:func:`lorasum.merge.merged_model`), converted with ``TransformersConverter`` from memory
(the converter reads the loaded model, so a checkpoint that declares ``float16`` weights is
not rounded on the way), and the result is kept under ``<cache>/ctranslate2/<key>``, where
the key hashes the weights, the model and tokenizer configuration, CTranslate2's version
and the compute type. A second evaluation of the same weights loads the converted model.

Written here because no library maps a lorasum decoding configuration onto CTranslate2's
options, or caches a converted model by its weights. T5/mT5 only, the family checked
against transformers: decoder-only models are refused because CTranslate2's n-gram
blocking also sees a prompt fed through its decoding loop (it would ban the article's
n-grams in the summary; lorasum blocks only generated tokens), and BART/mBART because
transformers 5 configs lack fields the converter reads (``normalize_before``).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import torch

from lorasum import faults
from lorasum.config import GenerationConfig
from lorasum.data.features import cut_source
from lorasum.errors import LorasumError
from lorasum.models.langcodes import source_ids

# bump when what a converted folder holds changes: older cache entries are then not reused
CACHE_FORMAT = 1
# see decoding_options
PATIENCE = 2.0
# checked against the transformers backend; BART/mBART convert differently under transformers 5
SUPPORTED_MODEL_TYPES = ("t5", "mt5")
# config entries that differ between a model in training and the same weights loaded again
_VOLATILE_CONFIG = {"_name_or_path", "use_cache", "transformers_version", "dtype", "torch_dtype", "architectures"}


def ctranslate2_version() -> str:
    """The installed CTranslate2's version; a clear error when it is not installed."""
    try:
        import ctranslate2
    except ImportError:
        raise LorasumError("generation.backend: ctranslate2 needs the ctranslate2 package; "
                           "pip install 'lorasum[ctranslate2]' or set generation.backend: transformers") from None
    return ctranslate2.__version__


def check_supported(cfg: GenerationConfig, *, is_decoder_only: bool, model_type: str | None = None,
                    device: str = "cpu") -> None:
    """Refuse, with the field to change, models and settings CTranslate2 cannot decode as lorasum does."""
    import ctranslate2

    if is_decoder_only:
        raise LorasumError("generation.backend: ctranslate2 decodes T5/mT5 models only; its n-gram blocking would "
                           "also ban the prompt's n-grams in a decoder-only model's summary. "
                           "Set generation.backend: transformers")
    if model_type is not None and model_type not in SUPPORTED_MODEL_TYPES:
        raise LorasumError(f"generation.backend: ctranslate2 decodes T5/mT5 models only (checked against "
                           f"transformers), not {model_type}. Set generation.backend: transformers")
    supported = ctranslate2.get_supported_compute_types(device)
    if cfg.compute_type not in supported:
        raise LorasumError(f"generation.compute_type: {cfg.compute_type} is not available on {device} "
                           f"(available: {', '.join(sorted(supported))})")


def weights_key(model, tokenizer, compute_type: str) -> str:
    """Hash of what a converted model depends on: weights, configs, vocabulary, CTranslate2 version, compute type."""
    h = hashlib.sha256()
    config = {k: v for k, v in model.config.to_dict().items() if k not in _VOLATILE_CONFIG}
    # a LoRA update is B @ A * scaling: the weights are in the state dict, the scaling per module here
    scaling = {name: dict(m.scaling) for name, m in model.named_modules()
               if isinstance(getattr(m, "scaling", None), dict)}
    active = list(model.active_adapters) if hasattr(model, "peft_config") else []
    meta = {"format": CACHE_FORMAT, "ctranslate2": ctranslate2_version(), "compute_type": compute_type,
            "config": config, "lora_scaling": scaling, "active": active,
            "vocab": sorted(tokenizer.get_vocab().items(), key=lambda kv: kv[1])}
    h.update(json.dumps(meta, sort_keys=True, default=str).encode("utf-8"))
    seen: set[tuple] = set()
    for name, tensor in model.state_dict().items():
        h.update(name.encode("utf-8") + b"\0")
        ident = (tensor.data_ptr(), tuple(tensor.shape), tuple(tensor.stride()), tensor.dtype)
        if ident in seen:  # tied weights: hashed once, named every time
            continue
        seen.add(ident)
        h.update(f"{tensor.dtype}{tuple(tensor.shape)}".encode())
        h.update(tensor.detach().to("cpu").contiguous().reshape(-1).view(torch.uint8).numpy())
    return h.hexdigest()[:32]


def convert(model, tokenizer, out_dir: Path, compute_type: str) -> Path:
    """Write ``model`` (a LoRA model is merged first, into a copy) as a CTranslate2 model in ``out_dir``."""
    from ctranslate2.converters import TransformersConverter

    from lorasum.merge import merged_model

    standalone = merged_model(model, "generation.backend: ctranslate2") if hasattr(model, "peft_config") else model
    if next(standalone.parameters()).device.type != "cpu":
        standalone = standalone.to("cpu") if standalone is not model else _cpu_copy(model)

    class _FromMemory(TransformersConverter):
        """The converter reading the model already in memory instead of loading it from a folder."""

        def load_model(self, model_class, model_name_or_path, **kwargs):
            return standalone

        def load_tokenizer(self, tokenizer_class, model_name_or_path, **kwargs):
            return tokenizer

        def _load(self):
            spec = super()._load()
            if _unscaled_t5_logits(standalone):
                # the converter scales tied T5 outputs by d_model**-0.5 as transformers 4 did; 5 does not
                from ctranslate2.specs.model_spec import OPTIONAL

                spec.decoder.scale_outputs = OPTIONAL
            return spec

    with tempfile.TemporaryDirectory() as config_dir:
        standalone.config.save_pretrained(config_dir)  # the converter picks its loader from the config class
        with torch.no_grad():
            _FromMemory(config_dir).convert(str(out_dir), quantization=compute_type, force=True)
    return Path(out_dir)


def _unscaled_t5_logits(model) -> bool:
    """True where transformers computes T5/mT5 logits without the tied-embedding ``d_model**-0.5`` factor (5.x)."""
    import transformers

    return (getattr(model.config, "model_type", None) in ("t5", "mt5")
            and int(transformers.__version__.split(".")[0]) >= 5)


def _cpu_copy(model):
    import copy

    return copy.deepcopy(model).to("cpu")


def cache_dir() -> Path:
    """Where converted models are kept: ``<cache root>/ctranslate2``.

    The root is ``$LORASUM_CACHE``, else ``~/.cache/lorasum``.
    """
    from lorasum.builtins import cache_root

    return cache_root() / "ctranslate2"


def converted_model(model, tokenizer, compute_type: str, *, cache: str | Path | None = None) -> Path:
    """The CTranslate2 folder of ``model``'s weights, converted on first use and reused after.

    Conversion writes into a temporary folder beside the cache entry and renames it into
    place, so a crash leaves no half-written entry and two processes converting the same
    weights both end up reading one complete folder.
    """
    root = Path(cache) if cache is not None else cache_dir()
    final = root / weights_key(model, tokenizer, compute_type)
    if (final / "model.bin").is_file():
        return final
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=root))
    try:
        convert(model, tokenizer, tmp / "model", compute_type)
        try:
            os.rename(tmp / "model", final)
        except OSError:
            if not (final / "model.bin").is_file():  # not another process's complete entry
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def decoding_options(cfg: GenerationConfig) -> dict:
    """``translate_batch`` options equal to lorasum's transformers decoding (:func:`lorasum.generate.decoding_config`).

    ``max_decoding_length`` counts generated tokens including the end token, like
    ``max_new_tokens``; the end token is not returned. Greedy search has no length penalty in
    either library. ``patience``: CTranslate2 stops an article once ``patience x num_beams``
    hypotheses are finished, transformers (``early_stopping=False``) while its running beams
    may still beat the finished ones; 2 matched transformers on every demo article at
    ``length_penalty`` 0 and 0.6 (1 stopped early on about one in ten).
    """
    return {"beam_size": cfg.num_beams, "length_penalty": cfg.length_penalty if cfg.num_beams > 1 else 1.0,
            "no_repeat_ngram_size": cfg.no_repeat_ngram_size, "max_decoding_length": cfg.max_target_length,
            "min_decoding_length": 0, "repetition_penalty": 1.0, "num_hypotheses": 1, "patience": PATIENCE,
            "return_end_token": False, "max_input_length": 0, "disable_unk": False, "sampling_topk": 1}


def backend_record(cfg: GenerationConfig) -> dict:
    """What a metrics file records about this backend: version, compute type and the options passed."""
    return {"version": ctranslate2_version(), "compute_type": cfg.compute_type, "options": decoding_options(cfg)}


def generate_summaries(model, tokenizer, texts: list[str], cfg: GenerationConfig, *, langs: list[str] | None = None,
                       summary_langs: list[str] | None = None, accelerator=None, progress: bool = True,
                       cache: str | Path | None = None) -> list[str]:
    """One summary per article, as :func:`lorasum.generate.generate_summaries` makes them, decoded by CTranslate2.

    ``summary_langs`` is accepted for the same call shape; T5/mT5 mark no language in the summary.
    """
    import ctranslate2
    from rich.progress import Progress

    from lorasum.generate import gathered, length_batches

    if not texts:
        return []
    device = accelerator.device if accelerator is not None else next(model.parameters()).device
    ct2_device = "cuda" if device.type == "cuda" else "cpu"
    check_supported(cfg, is_decoder_only=False, model_type=getattr(model.config, "model_type", None),
                    device=ct2_device)
    rank, world = (accelerator.process_index, accelerator.num_processes) if accelerator is not None else (0, 1)
    path = converted_model(model, tokenizer, cfg.compute_type, cache=cache)
    translator = ctranslate2.Translator(str(path), device=ct2_device, compute_type=cfg.compute_type,
                                        device_index=device.index or 0,
                                        intra_threads=torch.get_num_threads(), inter_threads=1)
    enc = source_ids(tokenizer, cut_source(texts, cfg.max_source_length), langs or ["en"] * len(texts),
                     cfg.max_source_length)
    batches = length_batches([len(e) for e in enc], cfg.batch_size, cfg.max_source_length)
    mine = batches[rank::world]
    options = decoding_options(cfg)
    out: dict[int, str] = {}
    with Progress(transient=True, disable=not progress or rank != 0) as bar:
        task = bar.add_task("generate (ctranslate2)", total=len(mine))
        for batch_idx in mine:
            faults.check_stop("generation")
            source = [tokenizer.convert_ids_to_tokens(enc[i]) for i in batch_idx]
            results = translator.translate_batch(source, **options)
            ids = [tokenizer.convert_tokens_to_ids(r.hypotheses[0]) for r in results]
            for i, text in zip(batch_idx, tokenizer.batch_decode(ids, skip_special_tokens=True)):
                out[i] = text.strip()
            bar.advance(task)
    return gathered(out, world, len(texts))


def agreement(reference_backend: list[str], other_backend: list[str], gold: list[str], langs: list[str]) -> dict:
    """How far two backends' summaries of the same articles agree.

    ``identical``: the share of summaries equal character for character; ``rougeL`` of each
    against the gold summaries (mean F x100, XL-Sum's scorer) and ``rougeL_diff`` (other
    minus reference).
    """
    from lorasum.metrics import score_items

    if not (len(reference_backend) == len(other_backend) == len(gold) == len(langs)) or not gold:
        raise ValueError("agreement needs equally long, non-empty lists")
    same = sum(a == b for a, b in zip(reference_backend, other_backend))

    def mean_rouge_l(preds: list[str]) -> float:
        items = score_items(preds, gold, langs)
        return 100 * sum(it["rougeL"]["f"] for it in items) / len(items)

    ref, other = mean_rouge_l(reference_backend), mean_rouge_l(other_backend)
    return {"n": len(gold), "identical": same / len(gold), "rougeL_reference": ref, "rougeL_other": other,
            "rougeL_diff": other - ref}
