"""One base model in memory, several LoRA adapters, and batches that mix them item by item.

peft routes each row of a batch to its own adapter when ``generate`` gets
``adapter_names=[...]`` (its mixed-batch forward). For beam search peft repeats each name
``num_beams`` times for the decoder and keeps the original list for an encoder-decoder's
encoder, but only when ``num_beams`` is passed to ``generate`` as an argument (it reads the
argument, not a generation config), so :meth:`MultiAdapterModel.generate` always passes it.
A batch whose rows share one adapter skips the per-row routing and activates that adapter.
Decoding uses lorasum's own pieces (:mod:`lorasum.generate`: its n-gram blocking and beam
cache), so a mixed batch decodes as ``lorasum summarize`` does with each adapter alone.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
from transformers import LogitsProcessorList

from lorasum.errors import LorasumError
from lorasum.serve.registry import Registry


@dataclass(frozen=True)
class Decoding:
    """Decoding settings of one batch (hashable: requests with equal settings share batches)."""

    num_beams: int = 4
    length_penalty: float = 0.6
    no_repeat_ngram_size: int = 2
    max_new_tokens: int = 84
    max_source_length: int = 512


class MultiAdapterModel:
    """A base model with the registry's adapters loaded under their names."""

    def __init__(self, base: str, registry: Registry | None = None, *, model=None, tokenizer=None,
                 family: str | None = None):
        from peft import PeftModel

        from lorasum.compose import canonical_base
        from lorasum.evaluate import load_for_inference

        if model is None:
            model, tokenizer, family = load_for_inference(base)
        self.tokenizer, self.family, self.registry = tokenizer, family, registry
        self.adapters: list[str] = []
        if registry is not None:
            want = canonical_base(base)
            for entry in registry.adapters.values():
                if entry.base is not None and canonical_base(entry.base) != want:
                    raise LorasumError(f"adapter {entry.name!r} ({entry.path}) was trained on base {entry.base!r}, "
                                       f"not on the served base {base!r}")
            try:
                for entry in registry.adapters.values():
                    if not isinstance(model, PeftModel):
                        model = PeftModel.from_pretrained(model, str(entry.path), adapter_name=entry.name)
                    else:
                        model.load_adapter(str(entry.path), adapter_name=entry.name)
                    self.adapters.append(entry.name)
            except (OSError, ValueError, RuntimeError) as err:
                first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
                raise LorasumError(f"could not load adapter {entry.name!r} ({entry.path}): {first}") from None
        self.model = model.eval()

    def _encode(self, texts: list[str], langs: list[str], d: Decoding) -> dict[str, torch.Tensor]:
        from lorasum.data.features import Collator

        if self.family == "decoder":
            from lorasum.config import ModelConfig
            from lorasum.data.causal import prompt_ids

            enc = prompt_ids(self.tokenizer, texts, langs, max_source_length=d.max_source_length,
                             prompt_template=ModelConfig().prompt_template)
            side = "left"
        else:
            enc = self.tokenizer(texts, max_length=d.max_source_length, truncation=True)["input_ids"]
            side = "right"
        return Collator(self.tokenizer.pad_token_id, padding_side=side)([{"input_ids": e} for e in enc])

    def generate(self, texts: list[str], adapters: list[str] | None, decoding: Decoding,
                 langs: list[str] | None = None) -> list[str]:
        """One summary per text, each made with its adapter ``adapters[i]`` (``adapters=None``: the base model)."""
        from lorasum.config import GenerationConfig
        from lorasum.generate import BeamSearchCache, TensorNoRepeatNGram, decoding_config, only_decoding_config

        if not texts:
            return []
        langs = langs or ["en"] * len(texts)
        batch = self._encode(texts, langs, decoding)
        is_decoder = self.family == "decoder"
        # the same complete decoding config as evaluation: nothing from the checkpoint's own leaks in
        settings = GenerationConfig(num_beams=decoding.num_beams, length_penalty=decoding.length_penalty,
                                    no_repeat_ngram_size=decoding.no_repeat_ngram_size,
                                    max_source_length=decoding.max_source_length)
        config = decoding_config(self.model, self.tokenizer, settings, is_decoder_only=is_decoder)
        config.max_new_tokens = decoding.max_new_tokens
        prompt_length = batch["input_ids"].shape[1] if is_decoder else 0
        kwargs = dict(generation_config=config, num_beams=decoding.num_beams,
                      logits_processor=LogitsProcessorList(
                          [TensorNoRepeatNGram(decoding.no_repeat_ngram_size, prompt_length)]
                          if decoding.no_repeat_ngram_size else []))
        if not is_decoder and decoding.num_beams > 1:
            kwargs["cache"] = BeamSearchCache()
        context = contextlib.nullcontext()
        if adapters is not None and self.adapters:
            unknown = sorted(set(adapters) - set(self.adapters))
            if unknown:
                raise LorasumError(f"unknown adapter(s) {unknown}; loaded: {self.adapters}")
            if len(set(adapters)) == 1:
                self.model.set_adapter(adapters[0])
            else:
                kwargs["adapter_names"] = list(adapters)
        elif self.adapters:
            context = self.model.disable_adapter()
        with torch.inference_mode(), context, only_decoding_config(self.model, config):
            ids = self.model.generate(**batch, **kwargs)
        if is_decoder:
            ids = ids[:, prompt_length:]
        return [t.strip() for t in self.tokenizer.batch_decode(ids, skip_special_tokens=True)]
