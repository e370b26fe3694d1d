"""Corpus ROUGE with bootstrap confidence intervals, and a paired bootstrap test.

Two corpus figures per metric, both x100 of the per-item F-measure:

- ``mean``: the plain mean, with a 95% percentile-bootstrap CI (``mean_ci``);
- ``mid``: what XL-Sum prints, ``rouge_score``'s ``BootstrapAggregator`` ``mid``: the
  *median of the resampled means* (1000 resamples), not the mean. ``mid_ci`` is that
  aggregator's ``[low, high]``; it is the same percentile interval of the resampled
  means, so it equals ``mean_ci`` -- reported under both names so either figure can be
  quoted with its interval.

``rouge_score`` draws from numpy's global random state, unseeded; here every resample
comes from ``numpy.random.default_rng`` seeded by ``seed`` and the group's name, so the
same inputs and seed give the same figures. Written here (a few lines of numpy) because
no library offers a seeded, paired, per-language bootstrap over per-item scores.

:func:`paired_test` resamples items jointly for two systems scored on the same items and
reports the mean difference, its percentile CI, and a two-sided p-value from the
bootstrap distribution shifted to the null (Berg-Kirkpatrick et al. 2012 style):
``p = (1 + #{|mean*(d) - mean(d)| >= |mean(d)|}) / (1 + resamples)``.
"""
from __future__ import annotations

import zlib

import numpy as np

from lorasum.errors import LorasumError
from lorasum.metrics.rouge import ROUGE_TYPES

_BLOCK = 64  # resamples drawn at once: bounds memory to 64 x n indices


def _rng(seed: int, group: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(group.encode("utf-8"))])


def bootstrap_means(values: np.ndarray, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Means of ``resamples`` resamples (with replacement) of the rows of ``values``.

    ``values`` is (items, measures); the result is (resamples, measures), each row one
    resample applied to all measures (paired across columns).
    """
    n = values.shape[0]
    out = np.empty((resamples, values.shape[1]))
    for start in range(0, resamples, _BLOCK):
        stop = min(start + _BLOCK, resamples)
        idx = rng.integers(0, n, size=(stop - start, n))
        out[start:stop] = values[idx].mean(axis=1)
    return out


def _f_matrix(items: list[dict], where: str) -> np.ndarray:
    try:
        return np.array([[it[m]["f"] for m in ROUGE_TYPES] for it in items], dtype=float) * 100.0
    except (KeyError, TypeError) as e:
        raise LorasumError(f"{where}: items must be score_items() results with {', '.join(ROUGE_TYPES)}") from e


def _check(resamples: int, confidence: float, n_items: int, n_langs: int) -> None:
    if resamples < 1:
        raise LorasumError(f"resamples must be positive, got {resamples}")
    if not 0 < confidence < 1:
        raise LorasumError(f"confidence must be between 0 and 1, got {confidence}")
    if n_items != n_langs:
        raise LorasumError(f"{n_items} items but {n_langs} languages; give one language per item")


def _groups(langs: list[str]) -> dict[str, np.ndarray]:
    langs_arr = np.asarray(langs, dtype=object)
    return {lang: np.flatnonzero(langs_arr == lang) for lang in sorted(set(langs))}


def _r(x: float) -> float:
    return round(float(x), 4)


def _summary(f: np.ndarray, resamples: int, confidence: float, rng: np.random.Generator) -> dict:
    means = bootstrap_means(f, resamples, rng)
    tail = 100 * (1 - confidence) / 2
    lo, mid, hi = np.percentile(means, [tail, 50, 100 - tail], axis=0)
    out: dict = {}
    for j, metric in enumerate(ROUGE_TYPES):
        ci = [_r(lo[j]), _r(hi[j])]
        out[metric] = {"mean": _r(f[:, j].mean()), "mean_ci": ci, "mid": _r(mid[j]), "mid_ci": list(ci)}
    out["n"] = int(f.shape[0])
    return out


def corpus_scores(
    items: list[dict],
    langs: list[str],
    *,
    resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict:
    """Corpus ROUGE-1/2/L overall and per language, x100 F, with bootstrap CIs.

    Args:
        items: :func:`score_items` results.
        langs: the language of each item (any labels; per-language groups use them as given).
        resamples: bootstrap resamples (XL-Sum uses 1000).
        seed: seeds every resample; same inputs and seed give the same numbers.
        confidence: CI level.

    Returns:
        ``{"overall": M, "per_lang": {lang: M}}``, M = ``{"rouge1": S, "rouge2": S,
        "rougeL": S, "n": int}``, S = ``{"mean", "mean_ci", "mid", "mid_ci"}``, rounded to
        4 places. An empty ``items`` gives ``{"overall": {"n": 0}, "per_lang": {}}``.
    """
    langs = list(langs)
    _check(resamples, confidence, len(items), len(langs))
    if not items:
        return {"overall": {"n": 0}, "per_lang": {}}
    f = _f_matrix(items, "corpus_scores")
    result = {"overall": _summary(f, resamples, confidence, _rng(seed, "overall")), "per_lang": {}}
    for lang, idx in _groups(langs).items():
        result["per_lang"][lang] = _summary(f[idx], resamples, confidence, _rng(seed, f"lang:{lang}"))
    return result


def _paired(d: np.ndarray, resamples: int, confidence: float, rng: np.random.Generator) -> dict:
    means = bootstrap_means(d, resamples, rng)
    observed = d.mean(axis=0)
    tail = 100 * (1 - confidence) / 2
    lo, hi = np.percentile(means, [tail, 100 - tail], axis=0)
    # Shift the bootstrap distribution to the null (mean 0) and count as-extreme outcomes.
    extreme = (np.abs(means - observed) >= np.abs(observed) - 1e-12).sum(axis=0)
    p = (1 + extreme) / (1 + resamples)
    return {
        metric: {"diff": _r(observed[j]), "ci": [_r(lo[j]), _r(hi[j])], "p_value": round(float(p[j]), 6),
                 "n": int(d.shape[0])}
        for j, metric in enumerate(ROUGE_TYPES)
    }


def paired_test(
    items_a: list[dict],
    items_b: list[dict],
    langs: list[str],
    *,
    resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict:
    """Paired bootstrap test of system A against system B on the same items.

    Returns ``{"overall": {metric: {"diff", "ci", "p_value", "n"}}, "per_lang": {lang: {...}}}``
    where ``diff`` is mean F(A) - mean F(B), x100, ``ci`` its bootstrap CI and ``p_value``
    the two-sided bootstrap p-value for "no difference".
    """
    langs = list(langs)
    if len(items_a) != len(items_b):
        raise LorasumError(f"paired test needs the same items: {len(items_a)} vs {len(items_b)}")
    _check(resamples, confidence, len(items_a), len(langs))
    if not items_a:
        return {"overall": {}, "per_lang": {}}
    d = _f_matrix(items_a, "paired_test (A)") - _f_matrix(items_b, "paired_test (B)")
    result = {"overall": _paired(d, resamples, confidence, _rng(seed, "paired:overall")), "per_lang": {}}
    for lang, idx in _groups(langs).items():
        result["per_lang"][lang] = _paired(d[idx], resamples, confidence, _rng(seed, f"paired:lang:{lang}"))
    return result
