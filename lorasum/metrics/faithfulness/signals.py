"""Model-free faithfulness and abstractiveness signals of a summary against its article.

Every signal is computed on the tokens ROUGE sees before stemming
(:func:`lorasum.metrics.tokenize.tokens`: lower-cased, punctuation dropped, words
segmented for Chinese, Japanese, Thai and Burmese), so they work in every XL-Sum
language and agree with the ROUGE figures beside them. The whitespace tokens that
jieba and pythainlp emit (kept for ROUGE parity) are dropped here: they are not words.

- ``novel_{n}gram_share`` (n = 1..4): share of the summary's n-gram occurrences that
  never occur in the article; ``None`` when the summary has fewer than n tokens.
- ``fragment_coverage`` and ``fragment_density``: extractive fragments of Grusky et al.
  (2018, Newsroom), found with their greedy algorithm (``Fragments._get_fragments`` in
  lil-lab/newsroom, reproduced step for step, including its skip past a matched run):
  coverage = sum |f| / |S|, density = sum |f|^2 / |S|.
- ``compression_ratio`` (article tokens / summary tokens) and ``summary_tokens``.
- ``novel_number_share``: share of the summary's numbers absent from the article. Digits
  of every script are mapped to ASCII with :func:`unicodedata.digit` (Arabic-Indic,
  Persian, Devanagari, Bengali, ... write the same numbers), and separators between
  digit groups (``, . ٫ ٬``) are dropped, so ``3,000``, ``3.000`` and ``٣٬٠٠٠`` are one
  number whichever locale wrote them.
- ``novel_capitalised_share`` (Latin and Cyrillic scripts only, ``None`` elsewhere):
  share of the summary's capitalised tokens whose lower-cased form is absent from the
  article's tokens -- a proxy for invented names. Case is kept by running ROUGE's
  cleaning and pyonmttok step on the original text without lower-casing (segmenters
  only serve caseless scripts); each sentence's first token is skipped, since every
  sentence starts with a capital.

Why hand-written: the n-gram and fragment counts are a few lines over lorasum's own
tokens; the Newsroom package is unmaintained, English-only (spaCy) and not on PyPI.
"""
from __future__ import annotations

import re
import unicodedata
from bisect import bisect_left
from collections import Counter
from functools import lru_cache

from lorasum.languages import LANGUAGES
from lorasum.metrics.faithfulness.sentences import split_sentences
from lorasum.metrics.rouge import reference_name
from lorasum.metrics.tokenize import default_tokens, sanitize, tokens

NGRAM_ORDERS = (1, 2, 3, 4)
SIGNAL_KEYS = (*(f"novel_{n}gram_share" for n in NGRAM_ORDERS), "fragment_coverage", "fragment_density",
               "compression_ratio", "summary_tokens", "novel_number_share", "novel_capitalised_share")
CASED_SCRIPTS = frozenset({"Latin", "Cyrillic"})
_NUMBER = re.compile(r"\d+(?:[.,\u066b\u066c]\d+)*")
_SEPARATORS = str.maketrans("", "", ".,\u066b\u066c")


@lru_cache(maxsize=2**14)
def words(text: str, lang: str | None) -> tuple[str, ...]:
    """ROUGE's unstemmed tokens of ``text`` without whitespace tokens (cached: articles recur)."""
    return tuple(t for t in tokens(text, reference_name(lang)) if t.strip())


def _ngrams(toks: tuple[str, ...], n: int) -> list[tuple[str, ...]]:
    return list(zip(*(toks[i:] for i in range(n))))


def novel_ngram_share(summary: tuple[str, ...], article: tuple[str, ...], n: int) -> float | None:
    """Share of the summary's n-gram occurrences absent from the article (None: no n-gram)."""
    grams = _ngrams(summary, n)
    if not grams:
        return None
    seen = set(_ngrams(article, n))
    return sum(g not in seen for g in grams) / len(grams)


def fragments(summary: tuple[str, ...], article: tuple[str, ...]) -> list[tuple[str, ...]]:
    """Greedy extractive fragments (Grusky et al. 2018): shared token runs, longest first at each point."""
    positions: dict[str, list[int]] = {}
    for j, t in enumerate(article):
        positions.setdefault(t, []).append(j)
    out, i = [], 0
    while i < len(summary):
        best = 0
        starts = positions.get(summary[i], ())
        j_next = 0
        k = bisect_left(starts, j_next)
        while k < len(starts):
            j = starts[k]
            ii, jj = i, j
            while ii < len(summary) and jj < len(article) and summary[ii] == article[jj]:
                ii, jj = ii + 1, jj + 1
            best = max(best, ii - i)
            k = bisect_left(starts, jj, k + 1)  # the reference resumes after the matched run
        if best:
            out.append(summary[i:i + best])
        i += max(best, 1)
    return out


def _numbers(text: str) -> list[str]:
    """Numbers in ``text`` as ASCII digit strings, separators dropped."""
    out = []
    for m in _NUMBER.finditer(text):
        digits = m.group().translate(_SEPARATORS)
        out.append("".join(str(unicodedata.digit(c)) for c in digits))
    return out


def novel_number_share(summary: str, article: str) -> float | None:
    """Share of the summary's numbers (occurrences) not found among the article's (None: no number)."""
    nums = _numbers(summary)
    if not nums:
        return None
    seen = set(_numbers(article))
    return sum(n not in seen for n in nums) / len(nums)


def script_of(lang: str) -> str | None:
    """The script a language is written in: XL-Sum's table, else CLDR's likely script (``it`` -> Latin)."""
    if lang in LANGUAGES:
        return LANGUAGES[lang].script
    try:
        import langcodes

        code = langcodes.Language.get(lang).maximize().script
    except (ValueError, LookupError, ImportError):
        return None
    return {"Latn": "Latin", "Cyrl": "Cyrillic"}.get(code, code)


def cased_words(text: str) -> list[list[str]]:
    """Tokens per sentence with case kept: ROUGE's cleaning and pyonmttok step, no lower-casing."""
    return [default_tokens(s) for s in (sanitize(x) for x in split_sentences(text)) if s]


def novel_capitalised_share(summary: str, article_words: tuple[str, ...], lang: str | None) -> float | None:
    """Share of the summary's non-initial capitalised tokens absent (case-folded) from the article.

    None for scripts without case, and for summaries with no such token.
    """
    if lang is None or script_of(lang) not in CASED_SCRIPTS:
        return None
    caps = [t for sent in cased_words(summary) for t in sent[1:] if t[:1].isupper()]
    if not caps:
        return None
    seen = set(article_words)
    return sum(t.lower() not in seen for t in caps) / len(caps)


def signals(article: str, summary: str, lang: str | None) -> dict:
    """Every model-free signal of ``summary`` against ``article`` (keys: :data:`SIGNAL_KEYS`)."""
    a, s = words(article, lang), words(summary, lang)
    out: dict = {f"novel_{n}gram_share": novel_ngram_share(s, a, n) for n in NGRAM_ORDERS}
    frags = fragments(s, a)
    out["fragment_coverage"] = sum(len(f) for f in frags) / len(s) if s else None
    out["fragment_density"] = sum(len(f) ** 2 for f in frags) / len(s) if s else None
    out["compression_ratio"] = len(a) / len(s) if s else None
    out["summary_tokens"] = len(s)
    out["novel_number_share"] = novel_number_share(summary, article)
    out["novel_capitalised_share"] = novel_capitalised_share(summary, a, lang)
    return out


def signal_items(articles: list[str], summaries: list[str], langs: list[str | None]) -> list[dict]:
    """:func:`signals` for each (article, summary, language)."""
    return [signals(a, s, lang) for a, s, lang in zip(articles, summaries, langs)]
