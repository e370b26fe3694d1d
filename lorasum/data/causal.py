"""Summarization with a decoder-only model: the prompt, its truncation and the label mask.

A causal LM reads one sequence: ``prompt + summary + EOS``. The prompt is
``model.prompt_template`` with ``{lang_name}`` (e.g. "Russian"), ``{lang}`` (the language
code), ``{summary_lang_name}`` / ``{summary_lang}`` (the summary's language, which differs
from the article's in cross-lingual data) and ``{text}`` filled in. When the prompt is longer than ``max_source_length`` the
ARTICLE is cut, never the instruction around it, so the model always sees where the
summary starts. The loss is taken on the summary and EOS only (prompt tokens are labelled
-100). Training (:func:`encode_causal`) and generation (:func:`encode_prompts`) build the
prompt with the same function, :func:`prompt_ids`.

The instruction, the article and the summary are tokenized separately (without special
tokens) and joined as ids: that is what makes cutting the article exact. A BOS token is
put first when the tokenizer has one (Llama, Gemma); none for tokenizers without (Qwen).
"""
from __future__ import annotations

from typing import Sequence

from lorasum.data.features import IGNORE_INDEX, cut_source
from lorasum.errors import LorasumError


def lang_name(lang: str) -> str:
    """English name of a language code for prompts: ``zh-CN`` -> ``Chinese Simplified``, ``pl`` -> ``Polish``."""
    from lorasum.languages import english_name

    return english_name(lang)


def split_template(template: str, lang: str, summary_lang: str | None = None) -> tuple[str, str]:
    """The instruction before and after ``{text}``, with the article's and the summary's language filled in."""
    if template.count("{text}") != 1:
        raise LorasumError("model.prompt_template must contain {text} exactly once")
    before, after = template.split("{text}")
    summary_lang = summary_lang or lang
    try:
        fill = {"lang_name": lang_name(lang), "lang": lang, "summary_lang_name": lang_name(summary_lang),
                "summary_lang": summary_lang}
        return before.format(**fill), after.format(**fill)
    except (KeyError, IndexError, ValueError) as err:
        raise LorasumError(f"model.prompt_template: unknown placeholder or stray brace ({err}); "
                           "use {lang_name}, {lang}, {summary_lang_name}, {summary_lang} and {text}, and write literal braces as {{ }}") from None


def _ids(tokenizer, texts: list[str]) -> list[list[int]]:
    return tokenizer(texts, add_special_tokens=False)["input_ids"] if texts else []


def prompt_ids(tokenizer, texts: Sequence[str], langs: Sequence[str], *, max_source_length: int,
               prompt_template: str, summary_langs: Sequence[str] | None = None) -> list[list[int]]:
    """Token ids of each article's prompt, at most ``max_source_length`` long (the article is cut).

    ``summary_langs`` (default: ``langs``) names the language the summary is asked in.
    """
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    pairs = list(zip(langs, summary_langs or langs))
    parts = {pair: split_template(prompt_template, *pair) for pair in set(pairs)}
    heads = {pair: _ids(tokenizer, [parts[pair][0]])[0] for pair in parts}
    tails = {pair: _ids(tokenizer, [parts[pair][1]])[0] for pair in parts}
    out = []
    for lang, article in zip(pairs, _ids(tokenizer, cut_source(texts, max_source_length))):
        fixed = bos + heads[lang] + tails[lang]
        room = max_source_length - len(fixed)
        if room < 1:
            raise LorasumError(f"max_source_length {max_source_length} leaves no room for the article: the "
                               f"prompt_template alone is {len(fixed)} tokens; raise it or shorten the template")
        out.append(bos + heads[lang] + article[:room] + tails[lang])
    return out


def encode_causal(examples: Sequence[dict], tokenizer, *, max_source_length: int, max_target_length: int,
                  prompt_template: str) -> list[dict]:
    """Features for a causal LM: ``input_ids = prompt + summary + EOS``, labels -100 over the prompt."""
    if tokenizer.eos_token_id is None:
        raise LorasumError("the tokenizer has no EOS token; a decoder-only model needs one to end its summaries")
    prompts = prompt_ids(tokenizer, [ex["text"] for ex in examples], [ex["lang"] for ex in examples],
                         max_source_length=max_source_length, prompt_template=prompt_template,
                         summary_langs=[ex.get("summary_lang") or ex["lang"] for ex in examples])
    summaries = _ids(tokenizer, [ex["summary"] for ex in examples])
    features = []
    for ex, prompt, summary in zip(examples, prompts, summaries):
        target = summary[: max_target_length - 1] + [tokenizer.eos_token_id]
        features.append({"id": ex["id"], "lang": ex["lang"], "input_ids": prompt + target,
                         "labels": [IGNORE_INDEX] * len(prompt) + target})
    return features
