"""Multilingual ROUGE, identical to XL-Sum's scorer, with bootstrap statistics.

Where a ROUGE number comes from: :func:`score_items` (per item, :mod:`.rouge` on tokens
from :mod:`.tokenize` and :mod:`.stemmers`), then :func:`corpus_scores` and
:func:`paired_test` (:mod:`.stats`; :func:`corpus_summary`, :func:`paired_summary` and
:func:`adjust_p_values` for any per-item score); :func:`score_files` reads JSONL files for
``lorasum score`` (:mod:`.files`). Store :func:`scorer_info` beside any result.
"""
from lorasum.metrics.files import score_files
from lorasum.metrics.rouge import score_items, scorer_info
from lorasum.metrics.stats import (adjust_p_values, corpus_scores, corpus_summary, paired_summary, paired_test,
                                   summary_rows)

__all__ = ["score_items", "corpus_scores", "paired_test", "corpus_summary", "paired_summary", "adjust_p_values",
           "summary_rows", "scorer_info", "score_files"]
