"""Multilingual ROUGE, identical to XL-Sum's scorer, with bootstrap statistics.

Where a ROUGE number comes from: :func:`score_items` (per item, :mod:`.rouge` on tokens
from :mod:`.tokenize` and :mod:`.stemmers`), then :func:`corpus_scores` and
:func:`paired_test` (:mod:`.stats`); :func:`score_files` reads JSONL files for
``lorasum score`` (:mod:`.files`). Store :func:`scorer_info` beside any result.
"""
from lorasum.metrics.files import score_files
from lorasum.metrics.rouge import score_items, scorer_info
from lorasum.metrics.stats import corpus_scores, paired_test

__all__ = ["score_items", "corpus_scores", "paired_test", "scorer_info", "score_files"]
