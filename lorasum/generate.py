"""Where a summary is generated: batched beam search over articles sorted by length.

Sorting by tokenized length before batching keeps padding (and wasted beam compute) low,
and the source tokens a padded batch of ``batch_size`` articles would occupy
(``batch_size x max_source_length``) are filled with as many short articles as fit, so
short test sets take fewer, fuller batches (:func:`length_batches`); results are put back
in input order. Under several processes each takes an interleaved
share of the batches and the summaries are gathered back in order. A decoder-only model
reads the prompt of :mod:`lorasum.data.causal` (the one it was trained on), left-padded,
and only the new tokens are decoded.

Decoding is lorasum's alone: :func:`decoding_config` builds one complete
``transformers.GenerationConfig`` from :class:`~lorasum.config.GenerationConfig` and the
model's special token ids, and it stands in for the checkpoint's own generation config
while generating. transformers fills every setting a config passed to ``generate`` leaves
unset from the model's config, so a checkpoint shipping ``do_sample``, ``top_k``,
``repetition_penalty``, ``min_length`` or ``suppress_tokens`` would otherwise change the
summaries. Written by hand here: n-gram blocking limited to the generated tokens
(transformers' processor also sees a decoder-only prompt) and a beam-search cache that
skips a copy transformers makes; both are checked against transformers in the tests.
"""
from __future__ import annotations

import contextlib

import torch
from transformers import DynamicCache, EncoderDecoderCache, LogitsProcessor, LogitsProcessorList
from transformers import GenerationConfig as DecodingConfig

from lorasum import faults
from lorasum.config import GenerationConfig, ModelConfig
from lorasum.data.causal import prompt_ids
from lorasum.data.features import Collator, cut_source
from lorasum.models.langcodes import source_ids, target_lang_kwargs


class TensorNoRepeatNGram(LogitsProcessor):
    """``no_repeat_ngram_size`` as a few tensor operations per decoding step.

    transformers' ``NoRepeatNGramLogitsProcessor`` builds a Python dict of every n-gram of
    every hypothesis at every step, a large share of CPU beam-search time on small models.
    This bans the same tokens (those that completed an earlier n-gram starting with the
    last n-1 tokens), in place in ``scores``; a test checks it against transformers' processor.

    A decoder-only model's ``input_ids`` begin with the prompt: ``prompt_length`` columns are
    left out, so a summary may copy the article's n-grams (names, words of several tokens)
    and only repeats within the summary are banned. With left padding every row of a batch
    starts generating at the same column, the width of the padded prompt batch.
    """

    def __init__(self, ngram_size: int, prompt_length: int = 0):
        if ngram_size < 1:
            raise ValueError(f"ngram_size must be >= 1, got {ngram_size}")
        self.n = ngram_size
        self.prompt_length = prompt_length

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        input_ids = input_ids[:, self.prompt_length:]
        n, length = self.n, input_ids.shape[1]
        if length < n:
            return scores
        windows = input_ids.unfold(1, n, 1)  # (rows, length - n + 1, n)
        current = input_ids[:, length - n + 1:]  # the last n-1 tokens
        match = (windows[..., :-1] == current[:, None, :]).all(-1)
        # in place, touching only the windows' last tokens: min(score, -inf) bans, min(score, +inf) keeps. A
        # banned mask over the whole vocabulary cost four passes over (rows, vocabulary) per step, a quarter
        # of beam-search time at a 32k vocabulary
        fill = torch.full(match.shape, float("inf"), dtype=scores.dtype, device=scores.device)
        return scores.scatter_reduce_(1, windows[..., -1], fill.masked_fill_(match, -float("inf")), reduce="amin")


class BeamSearchCache(EncoderDecoderCache):
    """An encoder-decoder cache whose beam reorder leaves the cross-attention cache alone.

    Beam search reorders the cache at every step, and transformers' cache reorders the
    cross-attention keys and values too: a copy of ``rows x source length`` per layer and
    step. All beams of one article hold the same cross-attention states and a beam is only
    ever replaced by another beam of the same article, so that copy changes nothing; skipping
    it made the test-set evaluation of ``benchmarks/train_eval_speed.py`` (tiny mT5, beam 4,
    CPU) about a quarter faster with identical output (a test checks, on a model whose output
    depends on every cached state).
    """

    def __init__(self):
        super().__init__(DynamicCache(), DynamicCache())

    def reorder_cache(self, beam_idx: torch.LongTensor) -> None:
        self.self_attention_cache.reorder_cache(beam_idx)


def length_batches(lengths: list[int], batch_size: int, max_source_length: int, *,
                   max_growth: int = 4) -> list[list[int]]:
    """Indices longest first, cut into batches of at most ``batch_size x max_source_length`` padded tokens.

    A batch of long articles holds ``batch_size`` of them, as a padded batch would; a batch of
    short ones holds more, up to ``max_growth x batch_size`` (which bounds the decoder's cache).
    """
    budget = batch_size * max_source_length
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches: list[list[int]] = []
    for i in order:
        if batches:
            b = batches[-1]
            longest = max(lengths[b[0]], 1)
            if len(b) < batch_size or ((len(b) + 1) * longest <= budget and len(b) < max_growth * batch_size):
                b.append(i)
                continue
        batches.append([i])
    return batches


# special token ids come from the checkpoint: they belong to the model, not to the search
_TOKEN_IDS = ("decoder_start_token_id", "bos_token_id", "eos_token_id", "pad_token_id", "forced_bos_token_id",
              "forced_eos_token_id")
# left out of the recorded settings: bookkeeping, or what transformers adds for every config
_NOT_RECORDED = {"transformers_version", "_from_model_config", "output_attentions", "output_hidden_states"}


def decoding_config(model, tokenizer, cfg: GenerationConfig, *, is_decoder_only: bool = False) -> DecodingConfig:
    """The complete ``transformers.GenerationConfig`` lorasum decodes with: ``cfg`` plus the model's token ids.

    Beam search (``num_beams``, ``length_penalty``), no sampling, ``early_stopping=False``
    (transformers' default, which XL-Sum's evaluation used), at most ``max_target_length``
    new tokens, and no repetition or length penalty other than ``cfg``'s. ``no_repeat_ngram_size``
    is 0 here because :class:`TensorNoRepeatNGram` applies it. A decoder-only model ends a
    summary with the tokenizer's EOS (what training appended) and pads with its pad token.
    """
    own = model.generation_config
    tokens = {k: getattr(own, k, None) if getattr(own, k, None) is not None else getattr(model.config, k, None)
              for k in _TOKEN_IDS}
    if is_decoder_only:
        tokens.update(eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                      decoder_start_token_id=None)
    return DecodingConfig(num_beams=cfg.num_beams, num_return_sequences=1, do_sample=False,
                          length_penalty=cfg.length_penalty if cfg.num_beams > 1 else None,  # beam search only
                          early_stopping=False,
                          max_new_tokens=cfg.max_target_length, min_length=0, repetition_penalty=1.0,
                          no_repeat_ngram_size=0, use_cache=True, **tokens)


def decoding_record(model, tokenizer, cfg: GenerationConfig, *, is_decoder_only: bool = False) -> dict:
    """What a metrics file records about decoding: ``cfg`` and the exact settings of its backend."""
    scope = "generated tokens" if is_decoder_only else "decoder tokens"
    if cfg.backend == "ctranslate2":
        from lorasum.backends.ctranslate2 import backend_record

        return {**cfg.model_dump(), "no_repeat_ngram_scope": scope, "ctranslate2": backend_record(cfg)}
    settings = decoding_config(model, tokenizer, cfg, is_decoder_only=is_decoder_only).to_dict()
    return {**cfg.model_dump(), "no_repeat_ngram_scope": scope,
            "transformers": {k: v for k, v in settings.items() if v is not None and k not in _NOT_RECORDED}}


@contextlib.contextmanager
def only_decoding_config(model, config: DecodingConfig):
    """``config`` in place of the model's own generation config while generating (restored after)."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model  # under a peft wrapper
    saved = inner.generation_config
    inner.generation_config = config
    try:
        yield
    finally:
        inner.generation_config = saved


def generate_summaries(model, tokenizer, texts: list[str], cfg: GenerationConfig, *, langs: list[str] | None = None,
                       is_decoder_only: bool = False, prompt_template: str | None = None,
                       accelerator=None, progress: bool = True, summary_langs: list[str] | None = None) -> list[str]:
    """One summary per article, decoded with the settings in ``cfg`` (see :func:`decoding_config`).

    ``summary_langs`` (default: ``langs``) is each summary's language, for cross-lingual data.
    """
    if not texts:
        return []
    if cfg.backend == "ctranslate2":
        from lorasum.backends import ctranslate2

        if is_decoder_only:
            ctranslate2.check_supported(cfg, is_decoder_only=True)
        return ctranslate2.generate_summaries(model, tokenizer, texts, cfg, langs=langs, summary_langs=summary_langs,
                                              accelerator=accelerator, progress=progress)
    model.eval()
    device = accelerator.device if accelerator is not None else next(model.parameters()).device
    rank, world = (accelerator.process_index, accelerator.num_processes) if accelerator is not None else (0, 1)
    if is_decoder_only:
        enc = prompt_ids(tokenizer, texts, langs or ["en"] * len(texts), max_source_length=cfg.max_source_length,
                         prompt_template=prompt_template or ModelConfig().prompt_template,
                         summary_langs=summary_langs)
    else:
        enc = source_ids(tokenizer, cut_source(texts, cfg.max_source_length), langs or ["en"] * len(texts),
                         cfg.max_source_length)
    summary_langs = summary_langs or langs
    batches = length_batches([len(e) for e in enc], cfg.batch_size, cfg.max_source_length)
    mine = batches[rank::world]
    collate = Collator(tokenizer.pad_token_id, padding_side="left" if is_decoder_only else "right")
    out: dict[int, str] = {}
    decoding = decoding_config(model, tokenizer, cfg, is_decoder_only=is_decoder_only)
    autocast = accelerator.autocast() if accelerator is not None else contextlib.nullcontext()
    from rich.progress import Progress

    with Progress(transient=True, disable=not progress or rank != 0) as bar:
        task = bar.add_task("generate", total=len(mine))
        with torch.inference_mode(), autocast, only_decoding_config(model, decoding):
            for batch_idx in mine:
                faults.check_stop("generation")  # the trained artifact is saved: a rerun resumes here
                batch = collate([{"input_ids": enc[i]} for i in batch_idx])
                batch = {k: v.to(device) for k, v in batch.items()}
                prompt_length = batch["input_ids"].shape[1] if is_decoder_only else 0
                # n-gram blocking by TensorNoRepeatNGram: same tokens banned as transformers' own, far faster on CPU
                blocking = [TensorNoRepeatNGram(cfg.no_repeat_ngram_size, prompt_length)] if cfg.no_repeat_ngram_size \
                    else []
                extra = {"cache": BeamSearchCache()} if not is_decoder_only and cfg.num_beams > 1 else {}
                extra.update(target_lang_kwargs(model, tokenizer,
                                                summary_langs and [summary_langs[i] for i in batch_idx], device))
                ids = model.generate(**batch, generation_config=decoding,
                                     logits_processor=LogitsProcessorList(blocking), **extra)
                if is_decoder_only:
                    ids = ids[:, prompt_length:]
                for i, text in zip(batch_idx, tokenizer.batch_decode(ids, skip_special_tokens=True)):
                    out[i] = text.strip()
                bar.advance(task)
    return gathered(out, world, len(texts))


def gathered(out: dict[int, str], world: int, n: int) -> list[str]:
    """The ``n`` summaries in article order, from this process's ``{index: summary}`` and,
    with several processes, every other process's share."""
    if world > 1:
        from accelerate.utils import gather_object

        merged: dict[int, str] = {}
        for part in gather_object([out]):
            merged.update(part)
        out = merged
    return [out[i] for i in range(n)]
