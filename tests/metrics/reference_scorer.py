"""XL-Sum's scorer (PyPI ``multilingual-rouge``), set up to run offline, for parity checks.

Two environment gaps are filled without touching its scoring code:
- the package vendors RafiStemmer's code but not its rule file, so Bengali gets a
  ``RafiStemmer`` built by the package's own parser from the rule file lorasum ships;
- it pulls in ``unidic``, whose dictionary needs a download; when that dictionary is
  missing, Japanese gets the same ``fugashi`` tagger pointed at ``unidic-lite``, which is
  exactly what ``fugashi.Tagger`` does when ``unidic`` is not installed.
Test and benchmark only: lorasum never imports this package.
"""
from __future__ import annotations

import os
from functools import lru_cache
from importlib import resources

from lorasum.languages import base_name, normalize_lang


def _unidic_ready() -> bool:
    try:
        import unidic
    except ImportError:
        return True  # fugashi falls back to unidic-lite by itself
    return os.path.exists(os.path.join(unidic.DICDIR, "dicrc"))


@lru_cache(maxsize=1)
def _patched():
    from multilingual_rouge import rouge_scorer, stemmers, tokenizers
    from multilingual_rouge.bengali_stemmer import RafiStemmer

    rules = resources.files("lorasum.metrics").joinpath("resources/bengali_stemmer.rules")
    packaged = resources.files("multilingual_rouge").joinpath("bengali_stemmer/common.rules")
    if not packaged.is_file():
        class BengaliStemmer(stemmers.BengaliStemmer):
            def __init__(self):
                with rules.open("r", encoding="utf-8") as f:
                    self.stemmer = RafiStemmer(f)

        stemmers.LANG2STEMMER["bengali"] = BengaliStemmer

    if not _unidic_ready():
        class JapaneseTokenizer(tokenizers.JapaneseTokenizer):
            def __init__(self):
                import fugashi
                import unidic_lite

                d = unidic_lite.DICDIR
                self.tokenizer = fugashi.GenericTagger(f'-r "{d}/mecabrc" -d "{d}" -O wakati -b 50000')

        tokenizers.LANG2TOKENIZER["japanese"] = JapaneseTokenizer
    return rouge_scorer


@lru_cache(maxsize=None)
def reference_scorer(lang: str | None):
    """XL-Sum's ``RougeScorer`` as its evaluation calls it: stemming on, ``lang=<XL-Sum name>``
    (the lower-case English language name for languages outside XL-Sum)."""
    import warnings

    rouge_scorer = _patched()
    # lorasum scores a language outside XL-Sum as XL-Sum's scorer does when given its English name
    name = None if lang is None else base_name(normalize_lang(lang))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "unknown stemmer language" for languages without one
        return rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True, lang=name)


def reference_items(predictions, references, langs) -> list[dict]:
    """Reference scores in :func:`lorasum.metrics.score_items`'s shape."""
    out = []
    for pred, ref, lang in zip(predictions, references, langs):
        s = reference_scorer(lang).score(ref, pred)
        out.append({k: {"p": v.precision, "r": v.recall, "f": v.fmeasure} for k, v in s.items()})
    return out
