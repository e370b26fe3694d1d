"""Per-item ROUGE-1, ROUGE-2 and ROUGE-L, identical to XL-Sum's multilingual scorer.

Scoring follows ``rouge_score``'s core exactly (``_score_ngrams``, ``_score_lcs`` and
``scoring.fmeasure``): P = overlap / max(#prediction n-grams, 1), R likewise,
F = 2PR / (P + R) or 0; ROUGE-L uses the longest common subsequence of the whole token
sequences and is 0 when either side is empty. The formulas are written out here rather
than called because ``rouge_score``'s LCS fills a Python DP table (O(m*n) interpreted
steps); the LCS length here comes from the bit-parallel algorithm (Hyyro 2004; one
big-integer add per prediction token), which gives the same integer, so P/R/F are the
same floats. Tokens (text pipeline + stems) are cached per (language, text), since
references and predictions recur across systems and seeds.

Where the time goes (benchmarks/rouge_speed.py: 20,000 pairs, 45 languages, one
process, CPU seconds measured on a busy 2-core machine, load average ~5): loading ~1.1
(1.4 s wall on a quiet machine: importing nltk ~0.4, without the SciPy and scikit-learn it
would import, see :func:`~lorasum.metrics.stemmers._import_nltk`; Thai word list as a set and a
sorted list, :class:`~lorasum.metrics.tokenize.ThaiWords`, ~0.2; jieba's dictionary from
lorasum's own cache of it, ~0.5); then, once per distinct text,
tokenizing ~2.3 (cleaning 0.3; Thai 0.45, Chinese 0.4 with Han blocks cached; the rest
mostly pyonmttok), stemming ~0.75 (cached per token), n-gram Counters ~0.85, and per
pair overlaps + LCS ~0.7, with Python's cyclic garbage collector paused (its full
collections walked every object, dictionaries included, for a quarter of the scoring time
and freed nothing). Each distinct (text, language) is tokenized once (LRU of
65,536), so references scored against many systems cost once. ``workers > 1`` forks
after loading, so workers start in milliseconds and share the dictionaries; native
thread pools (OpenBLAS after importing numpy) do not prevent it (:func:`fork_hazard`).

Languages are XL-Sum codes or names, or any BCP-47 tag (see :mod:`lorasum.languages`).
A language is scored as XL-Sum's scorer scores it when given the lower-case English name
of the language (``pt-BR`` -> ``portuguese``, ``it`` -> ``italian``, ``pl`` -> ``polish``):
its segmenter or the generic tokenization, its Snowball stemmer where NLTK has one, no
stemming otherwise. ``None`` is the
reference's language-less mode (no segmenter, Porter stemmer), recorded by
:func:`scorer_info`.
"""
from __future__ import annotations

import contextlib
import gc
import logging
import multiprocessing
import os
import platform
import threading
import unicodedata
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from functools import lru_cache
from importlib import metadata

from lorasum.errors import LorasumError
from lorasum.languages import base_name, normalize_lang
from lorasum.metrics import stemmers
from lorasum.metrics.tokenize import SEGMENTED, segmenter, tokens as _raw_tokens

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")
# Bump when anything that can change a score changes.
SCORER_VERSION = "1"
log = logging.getLogger(__name__)
_XLSUM_NAME_ALIASES = {"chinese_simplified": "chinese", "chinese_traditional": "chinese"}


def reference_name(lang: str | None) -> str | None:
    """The language name XL-Sum's scorer is called with for a lorasum code/name (None stays None)."""
    if lang is None:
        return None
    name = base_name(normalize_lang(lang))
    return _XLSUM_NAME_ALIASES.get(name, name)


def text_tokens(text: str, name: str | None) -> tuple[str, ...]:
    """Final scoring tokens: pipeline tokens, stemmed where the language has a stemmer."""
    return _features(text, name)[0]


def _features_of(toks: tuple[str, ...]) -> tuple:
    """(tokens, unigrams, bigrams) for :func:`_score_features`.

    Each n-gram side is (its distinct n-grams, their Counter or None when none repeats);
    a Counter (C-counted) is cheaper to build than a set of the same tuples.
    """
    uni = Counter(toks)
    bi = Counter(zip(toks, toks[1:]))
    return (toks, (uni.keys(), uni if len(uni) < len(toks) else None),
            (bi.keys(), bi if len(bi) < len(toks) - 1 else None))


@lru_cache(maxsize=2**16)
def _features(text: str, name: str | None) -> tuple:
    """Scoring features of a text, cached per (text, language): references recur."""
    toks = tuple(filter(None, stemmers.stem_tokens(_raw_tokens(text, name), name)))
    return _features_of(toks)


def lcs_length(a: tuple[str, ...], b: tuple[str, ...]) -> int:
    """Length of the longest common subsequence (bit-parallel, exact).

    Bit i of ``v`` is 1 while a[i] is unmatched; each token of ``b`` that occurs in ``a``
    updates all rows at once. Tokens of ``b`` absent from ``a`` leave ``v`` unchanged and
    are skipped. Carries beyond bit m never reach lower bits, so masking happens once.
    """
    if len(a) < len(b):
        a, b = b, a  # bits over the longer side: fewer big-int steps
    m = len(a)
    if m == 0 or not b:
        return 0
    masks: dict[str, int] = {}
    for i, tok in enumerate(a):
        masks[tok] = masks.get(tok, 0) | (1 << i)
    v = full = (1 << m) - 1
    for u in map(masks.get, b):
        if u:
            u &= v
            v = (v + u) | (v - u)
    return m - (v & full).bit_count()


def _fmeasure(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r > 0 else 0.0


def _prf(overlap: int, n_pred: int, n_ref: int) -> dict:
    p = overlap / max(n_pred, 1)
    r = overlap / max(n_ref, 1)
    return {"p": p, "r": r, "f": _fmeasure(p, r)}


def _ngram_overlap(ref: tuple, pred: tuple) -> int:
    """sum over shared n-grams of min(count in ref, count in pred), as ``rouge_score``.

    One C set intersection; when no n-gram repeats on one side, every shared n-gram
    counts 1 and the overlap is the size of the intersection.
    """
    ref_keys, ref_counts = ref
    pred_keys, pred_counts = pred
    common = ref_keys & pred_keys
    if ref_counts is None or pred_counts is None:
        return len(common)
    return sum(map(min, map(ref_counts.__getitem__, common), map(pred_counts.__getitem__, common)))


_ZERO = {"p": 0.0, "r": 0.0, "f": 0.0}


def _score_features(ref: tuple, pred: tuple) -> dict:
    ref_toks, ref1, ref2 = ref
    pred_toks, pred1, pred2 = pred
    n_ref, n_pred = len(ref_toks), len(pred_toks)
    overlap1 = _ngram_overlap(ref1, pred1)
    if not overlap1:  # nothing in common: every overlap and the LCS are 0
        return {"rouge1": dict(_ZERO), "rouge2": dict(_ZERO), "rougeL": dict(_ZERO)}
    lcs = lcs_length(ref_toks, pred_toks)
    p, r = lcs / n_pred, lcs / n_ref
    return {
        "rouge1": _prf(overlap1, n_pred, n_ref),
        "rouge2": _prf(_ngram_overlap(ref2, pred2), n_pred - 1, n_ref - 1),
        "rougeL": {"p": p, "r": r, "f": _fmeasure(p, r)},
    }


def score_tokens(ref: tuple[str, ...], pred: tuple[str, ...]) -> dict:
    """ROUGE-1/2/L for already tokenized (and stemmed) reference and prediction."""
    return _score_features(_features_of(tuple(ref)), _features_of(tuple(pred)))


def _score_chunk(args: tuple[list[str], list[str], list[str | None]]) -> list[dict]:
    preds, refs, names = args
    return [_score_features(_features(r, n), _features(p, n)) for p, r, n in zip(preds, refs, names)]


def _flat(item: dict) -> tuple[float, ...]:
    """Plain tuples of 9 floats pickle several times faster than nested dicts."""
    return tuple(item[m][k] for m in ROUGE_TYPES for k in ("p", "r", "f"))


# Set by the parent just before it forks workers; the children read the texts from this
# inherited copy, so only index lists travel to them.
_FORKED_INPUT: tuple[list[str], list[str], list[str | None]] | None = None


def _score_part_forked(part: list[int]) -> list[tuple[float, ...]]:
    preds, refs, names = _FORKED_INPUT
    return [_flat(_score_features(_features(refs[i], names[i]), _features(preds[i], names[i]))) for i in part]


def fork_hazard() -> str | None:
    """Why forking scoring workers from this process would be unsafe, or None when it is safe.

    What can deadlock a forked child is a lock held, at the moment of the fork, by a thread
    that the child does not inherit, when the child later takes that lock. The children
    here run only Python code and the tokenizers' and stemmers' C code, so the threads
    that matter are other Python threads (they may hold the locks of logging handlers,
    I/O buffers or a library's caches). Native threads of thread pools that run no Python
    code (OpenBLAS, started by importing numpy; OpenMP; CUDA's driver) hold no lock the
    children take, and glibc resets malloc's locks across fork, so they do not count.
    """
    if "fork" not in multiprocessing.get_all_start_methods():
        return "this platform cannot fork"
    # tqdm's monitor thread only sleeps and nudges progress bars, which the workers never use
    others = [t.name for t in threading.enumerate()
              if t is not threading.main_thread() and type(t).__name__ != "TMonitor"]
    if others:
        return f"other Python threads are running ({', '.join(others[:3])})"
    return None


def warm_up(names) -> None:
    """Load the segmenters and stemmers of these reference language names now."""
    for name in set(names):
        segmenter(name)
        stemmers.stem_tokens(["warm"], name)


def _check_texts(values, what: str) -> list[str]:
    out = list(values)
    for i, v in enumerate(out):
        if not isinstance(v, str):
            raise LorasumError(f"{what}[{i}] is {type(v).__name__}, expected a string")
    return out


def score_items(
    predictions: list[str],
    references: list[str],
    langs: list[str] | str | None,
    *,
    workers: int = 1,
) -> list[dict]:
    """Score each (prediction, reference) pair as XL-Sum's multilingual ROUGE does.

    Args:
        predictions: generated summaries.
        references: gold summaries, same length and order.
        langs: one XL-Sum code/name for all items, one per item, or ``None`` for the
            reference's language-less mode (no segmentation, Porter stemming).
        workers: processes to use; 1 scores in this process. The segmenters and stemmers
            the items need are loaded here, then the workers are forked (Linux), share
            them copy-on-write and start in milliseconds; nothing is re-imported, so this
            works from a script without a ``__main__`` guard. Workers are never spawned:
            where forking is unsafe (:func:`fork_hazard`: other Python threads running,
            or no ``fork`` on this platform) the items are scored in this process and
            the reason is logged.

    Returns:
        One ``{"rouge1": {"p", "r", "f"}, "rouge2": {...}, "rougeL": {...}}`` per item,
        values in [0, 1].
    """
    predictions = _check_texts(predictions, "predictions")
    references = _check_texts(references, "references")
    if len(predictions) != len(references):
        raise LorasumError(f"{len(predictions)} predictions but {len(references)} references")
    n = len(predictions)
    if langs is None or isinstance(langs, str):
        names = [reference_name(langs)] * n
    else:
        langs = list(langs)
        if len(langs) != n:
            raise LorasumError(f"{len(langs)} languages for {n} items; give one per item or one for all")
        resolved = {lang: reference_name(lang) for lang in set(langs)}
        names = [resolved[lang] for lang in langs]
    stemmers.stopwords_available()  # warn once, here, when the corpus is missing
    with _collector_paused():
        return _score_items(predictions, references, names, workers)


@contextlib.contextmanager
def _collector_paused():
    """Python's cyclic garbage collector off while scoring (on again after, if it was on).

    Scoring allocates millions of tokens, tuples and Counters and frees each by reference
    count: it makes no reference cycles, yet every allocation burst sets off a collection, and
    the full ones walk every object of the process, the segmenters' dictionaries included
    (0 objects found, a quarter of the scoring time on the rouge benchmark). Forked workers
    inherit the setting.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _score_items(predictions: list[str], references: list[str], names: list[str | None], workers: int) -> list[dict]:
    n = len(predictions)
    if workers <= 1 or n < 2 * workers:
        return _score_chunk((predictions, references, names))
    # Chunks hold one language each where possible, so a worker's caches see related texts.
    order = sorted(range(n), key=lambda i: (names[i] or "", i))
    size = -(-n // (workers * 8))
    parts = [order[i:i + size] for i in range(0, n, size)]
    hazard = fork_hazard()
    if hazard:
        log.info("scoring %d items in this process, not %d workers: %s", n, workers, hazard)
        return _score_chunk((predictions, references, names))
    log.debug("scoring %d items with %d forked workers", n, workers)
    # Load dictionaries once here; forked workers share them copy-on-write (the collector,
    # paused by the caller and so in the children, never walks and so never copies their pages).
    warm_up(names)
    global _FORKED_INPUT
    _FORKED_INPUT = (predictions, references, names)
    out: list[dict] = [{}] * n
    try:
        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork")) as pool:
            for part, scored in zip(parts, pool.map(_score_part_forked, parts)):
                for i, v in zip(part, scored):
                    out[i] = {"rouge1": {"p": v[0], "r": v[1], "f": v[2]},
                              "rouge2": {"p": v[3], "r": v[4], "f": v[5]},
                              "rougeL": {"p": v[6], "r": v[7], "f": v[8]}}
    finally:
        _FORKED_INPUT = None
    return out


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def language_settings(lang: str | None) -> dict:
    """How one language is scored: reference name, segmenter, stemmer."""
    name = reference_name(lang)
    return {
        "reference_lang": name,
        "segmenter": SEGMENTED.get(name, "pyonmttok-aggressive") if name else "pyonmttok-aggressive",
        "stemmer": stemmers.stemmer_name(name),
    }


def scorer_info(langs: list[str] | str | None = ()) -> dict:
    """What produced the scores, to store beside them in results.

    ``langs``: languages to describe (codes/names; ``None`` describes the language-less
    fallback). ``stopwords_available: false`` means Snowball stemmers also stemmed
    stopwords, so scores differ from XL-Sum's for en, es, fr, pt, ru, ar, de.
    """
    if langs is None or isinstance(langs, str):
        langs = [langs]
    keys = {("none" if lang is None else normalize_lang(lang)): lang for lang in langs}
    return {
        "implementation": "lorasum.metrics (XL-Sum multilingual ROUGE pipeline)",
        "scorer_version": SCORER_VERSION,
        "lorasum_version": _version("lorasum"),
        "matches": "multilingual_rouge_scoring (csebuetnlp/xl-sum), RougeScorer(use_stemmer=True, lang=<name>)",
        "rouge_types": list(ROUGE_TYPES),
        "lowercase": True,
        "stem_tokens_longer_than": stemmers.MIN_STEM_LENGTH,
        "stopwords_available": stemmers.stopwords_available(),
        "unicode_version": unicodedata.unidata_version,
        "python": platform.python_version(),
        "libraries": {d: _version(d) for d in (
            "nltk", "jieba", "fugashi", "unidic-lite", "pythainlp", "pyonmttok", "TurkishStemmer")},
        "languages": {k: language_settings(v) for k, v in keys.items()},
    }
