"""Where a summary is generated: batched beam search over articles sorted by length.

Sorting by tokenized length before batching keeps padding (and wasted beam compute) low;
results are put back in input order. Under several processes each takes an interleaved
share of the batches and the summaries are gathered back in order.
"""
from __future__ import annotations

import torch

from lorasum.config import GenerationConfig
from lorasum.data.features import Collator


def _prompt(text: str, lang: str, template: str) -> str:
    from lorasum.languages import LANGUAGES

    name = LANGUAGES[lang].name.replace("_", " ").title() if lang in LANGUAGES else lang
    return template.format(text=text, lang_name=name, lang=lang)


def generate_summaries(model, tokenizer, texts: list[str], cfg: GenerationConfig, *, langs: list[str] | None = None,
                       is_decoder_only: bool = False, prompt_template: str | None = None,
                       accelerator=None, progress: bool = True) -> list[str]:
    """One summary per article, decoded with the settings in ``cfg``."""
    if not texts:
        return []
    model.eval()
    device = accelerator.device if accelerator is not None else next(model.parameters()).device
    rank, world = (accelerator.process_index, accelerator.num_processes) if accelerator is not None else (0, 1)
    if is_decoder_only:
        langs = langs or ["en"] * len(texts)
        texts = [_prompt(t, lg, prompt_template or "{text}\n\nSummary:") for t, lg in zip(texts, langs)]
        enc = tokenizer(texts, max_length=cfg.max_source_length, truncation=True)["input_ids"]
    else:
        enc = tokenizer(texts, max_length=cfg.max_source_length, truncation=True)["input_ids"]
    order = sorted(range(len(enc)), key=lambda i: -len(enc[i]))
    batches = [order[s:s + cfg.batch_size] for s in range(0, len(order), cfg.batch_size)]
    mine = batches[rank::world]
    collate = Collator(tokenizer.pad_token_id, padding_side="left" if is_decoder_only else "right")
    out: dict[int, str] = {}
    gen_kwargs = dict(num_beams=cfg.num_beams, length_penalty=cfg.length_penalty,
                      no_repeat_ngram_size=cfg.no_repeat_ngram_size, max_new_tokens=cfg.max_target_length,
                      early_stopping=True if cfg.num_beams > 1 else False)
    if is_decoder_only:
        gen_kwargs["pad_token_id"] = tokenizer.pad_token_id
    from rich.progress import Progress

    with Progress(transient=True, disable=not progress or rank != 0) as bar:
        task = bar.add_task("generate", total=len(mine))
        with torch.inference_mode():
            for batch_idx in mine:
                batch = collate([{"input_ids": enc[i]} for i in batch_idx])
                batch = {k: v.to(device) for k, v in batch.items()}
                ids = model.generate(**batch, **gen_kwargs)
                if is_decoder_only:
                    ids = ids[:, batch["input_ids"].shape[1]:]
                for i, text in zip(batch_idx, tokenizer.batch_decode(ids, skip_special_tokens=True)):
                    out[i] = text.strip()
                bar.advance(task)
    if world > 1:
        from accelerate.utils import gather_object

        merged: dict[int, str] = {}
        for part in gather_object([out]):
            merged.update(part)
        out = merged
    return [out[i] for i in range(len(texts))]
