"""Load a base model and its tokenizer from the hub, a local folder or a built-in name, and detect its family.

Built-in ``lorasum:tiny-<arch>`` names (:mod:`lorasum.builtins`) resolve here, so they work
in every command that loads a model.

The family decides which module names LoRA targets (see :mod:`lorasum.methods.lora`) and
whether fp16 is safe: T5-family models overflow in fp16 (the feed-forward ``wo`` output
exceeds the fp16 range) and train to NaN, so fp16 is refused for them.
"""
from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

from lorasum.builtins import resolve_model
from lorasum.errors import LorasumError

T5_FAMILY = {"t5", "mt5", "umt5", "longt5", "byt5"}
BART_FAMILY = {"bart", "mbart", "marian", "pegasus", "m2m_100", "nllb_moe", "plbart", "blenderbot"}


def _looks_like_path(name: str) -> bool:
    # hub ids are "name" or "org/name"; anything else is meant as a folder
    return name.startswith((".", "/", "~")) or name.count("/") > 1 or Path(name).expanduser().exists()


def _resolve(name: str) -> str:
    p = Path(name).expanduser()
    return str(p) if p.exists() else name


def load_model_config(name: str, revision: str | None = None):
    """The ``transformers`` config of a model, with a one-line error when it cannot be found."""
    name = resolve_model(name)
    if _looks_like_path(name) and not Path(name).expanduser().exists():
        raise LorasumError(f"model path not found: {name} (give a hub id such as google/mt5-small "
                           "or a folder written by save_pretrained)")
    try:
        return AutoConfig.from_pretrained(_resolve(name), revision=revision)
    except (OSError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise LorasumError(f"could not load model {name!r}: {first}") from None


def family(config) -> str:
    """``t5`` | ``bart`` | ``decoder`` | ``seq2seq`` (another encoder-decoder)."""
    mt = config.model_type
    if mt in T5_FAMILY:
        return "t5"
    if mt in BART_FAMILY:
        return "bart"
    if getattr(config, "is_encoder_decoder", False):
        return "seq2seq"
    return "decoder"


def torch_dtype(precision: str) -> torch.dtype:
    return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def check_precision(config, precision: str) -> None:
    if precision == "fp16" and family(config) == "t5":
        raise LorasumError(
            f"training.precision: fp16 is refused for {config.model_type} models: T5-family activations "
            "overflow fp16 and the loss becomes NaN. Use bf16 (Ampere or newer GPUs, and CPUs) or fp32."
        )


def load_tokenizer(name: str, revision: str | None = None):
    """The tokenizer of a model (a pad token added for decoder-only ones that lack it)."""
    name = resolve_model(name)
    try:
        tok = AutoTokenizer.from_pretrained(_resolve(name), revision=revision)
    except (OSError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise LorasumError(f"could not load the tokenizer of {name!r}: {first}") from None
    if tok.pad_token_id is None:
        # decoder-only tokenizers often have no pad token; eos is the usual stand-in
        tok.pad_token = tok.eos_token
    return tok


def load_base(name: str, *, revision: str | None = None, precision: str = "fp32"):
    """(model, tokenizer, family) for a hub id, local folder or built-in name."""
    name = resolve_model(name)
    config = load_model_config(name, revision)
    check_precision(config, precision)
    fam = family(config)
    auto = AutoModelForCausalLM if fam == "decoder" else AutoModelForSeq2SeqLM
    try:
        # weights stay fp32 (master copy); bf16 runs under autocast in the trainer
        model = auto.from_pretrained(_resolve(name), revision=revision, dtype=torch.float32)
    except (OSError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise LorasumError(f"could not load model weights of {name!r}: {first}") from None
    tokenizer = load_tokenizer(name, revision)
    return model, tokenizer, fam


def count_parameters(model: torch.nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total
