"""Corpus figures with bootstrap confidence intervals, a paired bootstrap test, and
multiple-comparison corrections, for any per-item score (ROUGE, faithfulness, ...).

Three corpus figures per measure (ROUGE: x100 of the per-item F-measure):

- ``overall``: the headline, the **macro average over languages** (the mean of the
  per-language means), as the paper reports it: every language weighs the same whatever
  its test-set size. Its CI comes from a bootstrap *stratified by language*: items are
  resampled within each language independently and the resampled language means
  averaged. With one language it is that language's figure.
- ``pooled``: the mean over all items pooled (a language weighs by its item count),
  with a plain bootstrap over all items.
- ``per_lang``: each language on its own.

Each figure has ``mean``, its 95% percentile-bootstrap CI ``mean_ci``, and ``mid``: what
XL-Sum prints, ``rouge_score``'s ``BootstrapAggregator`` ``mid``, the *median of the
resampled means* (1000 resamples), not the mean; on a small skewed set the two differ.
``mid_ci`` is that aggregator's ``[low, high]``, the same percentile interval of the
resampled means, so it equals ``mean_ci``; both names are kept so either figure can be
quoted with its interval.

``rouge_score`` draws from numpy's global random state, unseeded; here every resample
comes from ``numpy.random.default_rng`` seeded by ``seed`` and the group's name, so the
same inputs and seed give the same figures. Written here (a few lines of numpy) because
no library offers a seeded, paired, language-stratified bootstrap over per-item scores.

:func:`paired_summary` resamples items jointly for two systems scored on the same items
and reports the mean difference (macro over languages, pooled and per language), its
percentile CI, and a two-sided p-value from the bootstrap distribution shifted to the
null (Berg-Kirkpatrick et al. 2012 style):
``p = (1 + #{|mean*(d) - mean(d)| >= |mean(d)|}) / (1 + resamples)``.

:func:`adjust_p_values` applies Holm's step-down (family-wise error) or the
Benjamini-Hochberg step-up (false discovery rate) correction to a family of p-values;
it is the textbook procedure in a few lines of numpy, to avoid a statsmodels dependency.
"""
from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np

from lorasum.errors import LorasumError
from lorasum.metrics.rouge import ROUGE_TYPES

_BLOCK = 64  # resamples drawn at once: bounds memory to 64 x n indices
P_ADJUST_METHODS = {"holm": "Holm", "bh": "Benjamini-Hochberg"}


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


def _matrix(values, measures: Sequence[str] | None, where: str) -> tuple[np.ndarray, tuple[str, ...]]:
    """``values`` as an (items, measures) float matrix, and the measure names."""
    try:
        v = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as e:
        raise LorasumError(f"{where}: values must be numbers, one row per item ({e})") from None
    if v.size == 0:
        v = v.reshape(0, len(measures) if measures else 1)
    elif v.ndim == 1:
        v = v.reshape(-1, 1)
    if v.ndim != 2:
        raise LorasumError(f"{where}: values must be one number per item or one row of numbers per item")
    names = tuple(measures) if measures is not None else (("score",) if v.shape[1] == 1 else ())
    if len(names) != v.shape[1]:
        raise LorasumError(f"{where}: {v.shape[1]} measures per item but {len(names)} names in measures")
    if v.size and not np.isfinite(v).all():
        raise LorasumError(f"{where}: values must be finite (found NaN or infinity)")
    return v, names


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


def _describe(point: np.ndarray, boot: np.ndarray, names: tuple[str, ...], confidence: float) -> dict:
    """Point estimate, bootstrap median (``mid``) and percentile CI per measure."""
    tail = 100 * (1 - confidence) / 2
    lo, mid, hi = np.percentile(boot, [tail, 50, 100 - tail], axis=0)
    out: dict = {}
    for j, name in enumerate(names):
        ci = [_r(lo[j]), _r(hi[j])]
        out[name] = {"mean": _r(point[j]), "mean_ci": ci, "mid": _r(mid[j]), "mid_ci": list(ci)}
    return out


def corpus_summary(
    values,
    langs: list[str],
    *,
    measures: Sequence[str] | None = None,
    resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict:
    """Corpus figures of any per-item score: macro over languages, pooled, per language.

    Args:
        values: one number per item, or one row of numbers per item (several measures
            resampled together), already on the scale to report.
        langs: the language of each item (any labels; groups use them as given).
        measures: a name per column (default ``("score",)`` for one number per item).
        resamples: bootstrap resamples (XL-Sum uses 1000).
        seed: seeds every resample; same inputs and seed give the same numbers.
        confidence: CI level.

    Returns:
        ``{"overall": M | {"n_langs": int}, "pooled": M, "per_lang": {lang: M}}`` where
        M = ``{measure: S, ..., "n": int}``, S = ``{"mean", "mean_ci", "mid", "mid_ci"}``
        rounded to 4 places; ``overall`` is the macro average over languages with a
        language-stratified bootstrap CI, ``pooled`` the mean over all items. No items
        give ``{"overall": {"n": 0}, "pooled": {"n": 0}, "per_lang": {}}``.
    """
    langs = list(langs)
    v, names = _matrix(values, measures, "corpus_summary")
    _check(resamples, confidence, v.shape[0], len(langs))
    if not v.shape[0]:
        return {"overall": {"n": 0}, "pooled": {"n": 0}, "per_lang": {}}
    per_lang, lang_boots, lang_means = {}, [], []
    for lang, idx in _groups(langs).items():
        boot = bootstrap_means(v[idx], resamples, _rng(seed, f"lang:{lang}"))
        point = v[idx].mean(axis=0)
        per_lang[lang] = {**_describe(point, boot, names, confidence), "n": int(idx.size)}
        lang_boots.append(boot)
        lang_means.append(point)
    # Stratified bootstrap: the same per-language resamples, averaged language by language.
    macro = _describe(np.mean(lang_means, axis=0), np.mean(lang_boots, axis=0), names, confidence)
    pooled = _describe(v.mean(axis=0), bootstrap_means(v, resamples, _rng(seed, "pooled")), names, confidence)
    n = int(v.shape[0])
    return {"overall": {**macro, "n": n, "n_langs": len(per_lang)}, "pooled": {**pooled, "n": n},
            "per_lang": per_lang}


def corpus_scores(
    items: list[dict],
    langs: list[str],
    *,
    resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict:
    """Corpus ROUGE-1/2/L (x100 F) macro over languages, pooled and per language.

    ``items`` are :func:`score_items` results; the rest and the result are as in
    :func:`corpus_summary`, with measures ``rouge1``, ``rouge2``, ``rougeL``.
    """
    f = _f_matrix(items, "corpus_scores") if items else []
    return corpus_summary(f, langs, measures=ROUGE_TYPES, resamples=resamples,
                          seed=seed, confidence=confidence)


MACRO_LABEL = "macro avg"
POOLED_LABEL = "pooled"


def summary_rows(scores: dict) -> list[tuple[str, dict]]:
    """``(label, figures)`` rows for a table of :func:`corpus_summary` results.

    Each language, then the headline macro average over languages (``"macro avg"``), then
    the pooled figure (``"pooled"``) when more than one language makes it differ.
    """
    rows = list((scores.get("per_lang") or {}).items())
    if scores.get("overall", {}).get("n"):
        rows.append((MACRO_LABEL, scores["overall"]))
    if len(scores.get("per_lang") or {}) > 1 and scores.get("pooled"):
        rows.append((POOLED_LABEL, scores["pooled"]))
    return rows


def _paired(observed: np.ndarray, boot: np.ndarray, n: int, names: tuple[str, ...], confidence: float) -> dict:
    tail = 100 * (1 - confidence) / 2
    lo, hi = np.percentile(boot, [tail, 100 - tail], axis=0)
    # Shift the bootstrap distribution to the null (mean 0) and count as-extreme outcomes.
    extreme = (np.abs(boot - observed) >= np.abs(observed) - 1e-12).sum(axis=0)
    p = (1 + extreme) / (1 + boot.shape[0])
    return {
        name: {"diff": _r(observed[j]), "ci": [_r(lo[j]), _r(hi[j])], "p_value": round(float(p[j]), 6), "n": n}
        for j, name in enumerate(names)
    }


def paired_summary(
    values_a,
    values_b,
    langs: list[str],
    *,
    measures: Sequence[str] | None = None,
    resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict:
    """Paired bootstrap test of system A against system B on the same items, any per-item score.

    ``values_a``/``values_b`` and ``measures`` are as in :func:`corpus_summary`, row i of
    both being the same item. Returns ``{"overall": T, "pooled": T, "per_lang": {lang: T}}``,
    T = ``{measure: {"diff", "ci", "p_value", "n"}}``: ``diff`` is mean(A) - mean(B),
    ``ci`` its bootstrap CI, ``p_value`` the two-sided bootstrap p-value for "no
    difference". ``overall`` is the macro difference over languages, resampled within
    each language (stratified); ``pooled`` resamples all items together.
    """
    langs = list(langs)
    a, names = _matrix(values_a, measures, "paired test (A)")
    b, _ = _matrix(values_b, measures, "paired test (B)")
    if a.shape[0] != b.shape[0]:
        raise LorasumError(f"paired test needs the same items: {a.shape[0]} vs {b.shape[0]}")
    _check(resamples, confidence, a.shape[0], len(langs))
    if not a.shape[0]:
        return {"overall": {}, "pooled": {}, "per_lang": {}}
    d = a - b
    per_lang, lang_boots, lang_means = {}, [], []
    for lang, idx in _groups(langs).items():
        boot = bootstrap_means(d[idx], resamples, _rng(seed, f"paired:lang:{lang}"))
        point = d[idx].mean(axis=0)
        per_lang[lang] = _paired(point, boot, int(idx.size), names, confidence)
        lang_boots.append(boot)
        lang_means.append(point)
    n = int(d.shape[0])
    macro = _paired(np.mean(lang_means, axis=0), np.mean(lang_boots, axis=0), n, names, confidence)
    pooled = _paired(d.mean(axis=0), bootstrap_means(d, resamples, _rng(seed, "paired:pooled")), n, names, confidence)
    return {"overall": macro, "pooled": pooled, "per_lang": per_lang}


def paired_test(
    items_a: list[dict],
    items_b: list[dict],
    langs: list[str],
    *,
    resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict:
    """Paired bootstrap test of ROUGE-1/2/L (x100 F) of system A against system B.

    ``items_a``/``items_b`` are :func:`score_items` results on the same items; the result
    is :func:`paired_summary`'s (``overall`` macro over languages, ``pooled``, ``per_lang``).
    """
    if len(items_a) != len(items_b):
        raise LorasumError(f"paired test needs the same items: {len(items_a)} vs {len(items_b)}")
    a = _f_matrix(items_a, "paired_test (A)") if items_a else []
    b = _f_matrix(items_b, "paired_test (B)") if items_b else []
    return paired_summary(a, b, langs,
                          measures=ROUGE_TYPES, resamples=resamples, seed=seed, confidence=confidence)


def adjust_p_values(p_values, method: str = "holm") -> np.ndarray:
    """P-values adjusted for multiple comparisons over the whole family given.

    ``method``: ``"holm"`` (Holm 1979 step-down; controls the family-wise error rate) or
    ``"bh"`` (Benjamini-Hochberg 1995 step-up; controls the false discovery rate). The
    result has the input's order; compare it with the unadjusted threshold (0.05).
    """
    if method not in P_ADJUST_METHODS:
        raise LorasumError(f"unknown p-value correction {method!r}; use one of {', '.join(P_ADJUST_METHODS)}")
    p = np.asarray(p_values, dtype=float).ravel()
    if np.isnan(p).any() or (p < 0).any() or (p > 1).any():
        raise LorasumError("p-values must lie between 0 and 1")
    m = p.size
    if not m:
        return p
    order = np.argsort(p, kind="stable")
    ranked = p[order]
    if method == "holm":
        adj = np.maximum.accumulate((m - np.arange(m)) * ranked)
    else:
        adj = np.minimum.accumulate((m / np.arange(1, m + 1) * ranked)[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(adj, 1.0)
    return out
