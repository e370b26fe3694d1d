"""Language codes of multilingual seq2seq tokenizers (mBART-50, mBART-cc25, M2M-100, NLLB).

These models mark each text with a language token: the tokenizer puts the source
language's code on the article (``src_lang``) and the target language's on the summary
(``tgt_lang``), and generation must start the summary with the target code
(``forced_bos_token_id``). Left unset, mBART-50 tags every language as English. The
tokenizers name languages their own way (``en_XX``, ``zh_CN``, ``__fr__``, ``fra_Latn``);
:func:`tokenizer_lang_code` maps a lorasum (BCP-47) code onto the tokenizer's own
``lang_code_to_id`` keys. Tokenizers without language codes (mT5, BART, decoder-only
models) pass through every function here unchanged.
"""
from __future__ import annotations

from typing import Sequence

from lorasum.errors import LorasumError


def lang_codes(tokenizer) -> dict[str, int]:
    """The tokenizer's language code -> token id table (empty when it has none)."""
    table = getattr(tokenizer, "lang_code_to_id", None)
    return dict(table) if table else {}


def tokenizer_lang_code(tokenizer, lang: str) -> str:
    """The tokenizer's key for ``lang``: ``fr`` -> ``fr_XX``, ``zh-CN`` -> ``zh_CN``, ``fr`` -> ``fra_Latn``."""
    import langcodes

    codes = lang_codes(tokenizer)
    tag = langcodes.Language.get(lang)
    base = tag.language or lang
    region = tag.territory or ""
    candidates = [lang.replace("-", "_"), f"{base}_{region}" if region else None, f"__{base}__"]
    for key in candidates:
        if key and key in codes:
            return key
    try:
        alpha3 = tag.to_alpha3()
    except LookupError:
        alpha3 = None
    same = [k for k in codes if k.split("_")[0] in (base, alpha3)]
    if tag.script:
        same = [k for k in same if k.endswith(tag.script)] or same
    if same:
        return same[0]
    raise LorasumError(f"the tokenizer has no language code for {lang!r} (it knows {', '.join(sorted(codes))}); "
                       "use a model trained on that language")


def source_ids(tokenizer, texts: Sequence[str], langs: Sequence[str], max_length: int) -> list[list[int]]:
    """Token ids of articles, each tagged with its language's code where the tokenizer uses codes."""
    if not lang_codes(tokenizer):
        return tokenizer(list(texts), max_length=max_length, truncation=True)["input_ids"]
    out: list[list[int] | None] = [None] * len(texts)
    for lang in sorted(set(langs)):
        idx = [i for i, x in enumerate(langs) if x == lang]
        tokenizer.src_lang = tokenizer_lang_code(tokenizer, lang)
        ids = tokenizer([texts[i] for i in idx], max_length=max_length, truncation=True)["input_ids"]
        for i, row in zip(idx, ids):
            out[i] = row
    return out


def target_ids(tokenizer, summaries: Sequence[str], langs: Sequence[str], max_length: int) -> list[list[int]]:
    """Label ids of summaries, each tagged with its language's code where the tokenizer uses codes."""
    if not lang_codes(tokenizer):
        return tokenizer(text_target=list(summaries), max_length=max_length, truncation=True)["input_ids"]
    out: list[list[int] | None] = [None] * len(summaries)
    for lang in sorted(set(langs)):
        idx = [i for i, x in enumerate(langs) if x == lang]
        tokenizer.tgt_lang = tokenizer_lang_code(tokenizer, lang)
        ids = tokenizer(text_target=[summaries[i] for i in idx], max_length=max_length, truncation=True)["input_ids"]
        for i, row in zip(idx, ids):
            out[i] = row
    return out


def target_lang_kwargs(model, tokenizer, summary_langs: Sequence[str] | None, device=None) -> dict:
    """``generate`` arguments that start each summary with its target language's code.

    One target language: ``forced_bos_token_id``. Several in one batch: a per-row decoder
    prompt ``[decoder_start, code]``, which is what forcing the BOS does row by row.
    """
    codes = lang_codes(tokenizer)
    if not codes or not summary_langs:
        return {}
    ids = [codes[tokenizer_lang_code(tokenizer, lang)] for lang in summary_langs]
    if len(set(ids)) == 1:
        return {"forced_bos_token_id": ids[0]}
    import torch

    start = model.config.decoder_start_token_id
    prompt = torch.tensor([[start, i] for i in ids], dtype=torch.long, device=device)
    return {"decoder_input_ids": prompt}
