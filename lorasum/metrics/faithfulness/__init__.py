"""Faithfulness of summaries to their articles, in every XL-Sum language.

Where a faithfulness number comes from: :func:`faithfulness_items` gives each item the
model-free signals of :mod:`.signals` (always) and, when an NLI scorer is given, its
P(entailment) from :mod:`.nli` (cached on disk by :mod:`.cache`); :func:`faithfulness_scores`
and :func:`faithfulness_paired_test` (:mod:`.aggregate`) summarise them per language with
bootstrap CIs. Store :func:`faithfulness_info` beside any result.
"""
from __future__ import annotations

from lorasum.metrics.faithfulness.aggregate import MEASURES, faithfulness_paired_test, faithfulness_scores
from lorasum.metrics.faithfulness.signals import SIGNAL_KEYS, signal_items

# Bump when anything that changes a model-free signal changes.
SIGNALS_VERSION = "1"


def faithfulness_items(articles: list[str], summaries: list[str], langs: list[str | None], *, scorer=None,
                       cache=None, progress: bool = False) -> list[dict]:
    """Per item: every model-free signal, plus ``nli_entailment``/``nli_chunks``/``nli_truncated`` with a scorer."""
    items = signal_items(articles, summaries, langs)
    if scorer is not None:
        for it, nli in zip(items, scorer.score(articles, summaries, langs, cache=cache, progress=progress)):
            it.update(nli)
    return items


def faithfulness_info(scorer=None) -> dict:
    """What produced the faithfulness figures: signal definitions version and the NLI model, if any."""
    return {"signals_version": SIGNALS_VERSION, "tokens": "lorasum.metrics.tokenize.tokens (ROUGE, unstemmed)",
            "nli": scorer.info() if scorer is not None else None}


def load_scorer(config):
    """An :class:`~.nli.NLIScorer` from a validated :class:`lorasum.config.FaithfulnessConfig` (None: none)."""
    if config is None:
        return None
    from lorasum.metrics.faithfulness.nli import NLIScorer, NLISettings

    settings = NLISettings(max_length=config.max_length, max_chunks=config.max_chunks,
                           per_sentence=config.per_sentence, prompt=config.prompt,
                           positive_token=config.positive_token, negative_token=config.negative_token)
    return NLIScorer(config.model, revision=config.revision, settings=settings, batch_size=config.batch_size)


def open_cache(config):
    """The score cache a :class:`lorasum.config.FaithfulnessConfig` names (its default path when unset)."""
    if config is None:
        return None
    from lorasum.metrics.faithfulness.cache import ScoreCache

    return ScoreCache(config.cache)


__all__ = ["faithfulness_items", "faithfulness_scores", "faithfulness_paired_test", "faithfulness_info",
           "load_scorer", "open_cache", "MEASURES", "SIGNAL_KEYS"]
