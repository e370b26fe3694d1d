"""Corpus figures of per-item faithfulness signals: means with bootstrap CIs, and a paired test.

Signals keep their natural units (shares and P(entailment) in [0, 1], ratios, token
counts). A signal can be undefined for an item (``None``: a summary without numbers has
no ``novel_number_share``); each measure is summarised over the items where it is
defined, and ``n`` says how many. Resampling uses
:func:`lorasum.metrics.stats.bootstrap_means`, seeded per (seed, group, measure), with
the same percentile CI and shifted-null p-value as the ROUGE figures.
"""
from __future__ import annotations

import zlib

import numpy as np

from lorasum.errors import LorasumError
from lorasum.metrics.faithfulness.signals import SIGNAL_KEYS
from lorasum.metrics.stats import bootstrap_means

NLI_KEY = "nli_entailment"
MEASURES = (*SIGNAL_KEYS, NLI_KEY)


def _rng(seed: int, group: str, measure: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(f"faithfulness:{group}:{measure}".encode("utf-8"))])


def _r(x: float) -> float:
    return round(float(x), 4)


def _column(items: list[dict], idx: np.ndarray, measure: str) -> np.ndarray:
    vals = [items[i].get(measure) for i in idx]
    return np.array([np.nan if v is None else float(v) for v in vals], dtype=float)


def _mean_ci(v: np.ndarray, resamples: int, confidence: float, rng) -> dict | None:
    v = v[~np.isnan(v)]
    if not v.size:
        return None
    means = bootstrap_means(v[:, None], resamples, rng)[:, 0]
    tail = 100 * (1 - confidence) / 2
    lo, hi = np.percentile(means, [tail, 100 - tail])
    return {"mean": _r(v.mean()), "mean_ci": [_r(lo), _r(hi)], "n": int(v.size)}


def _group_summary(items, idx, group, resamples, confidence, seed) -> dict:
    out: dict = {"n": int(len(idx))}
    for m in MEASURES:
        s = _mean_ci(_column(items, idx, m), resamples, confidence, _rng(seed, group, m))
        if s is not None:
            out[m] = s
    scored = [items[i] for i in idx if items[i].get(NLI_KEY) is not None]
    if scored:
        # how often the article had to be split into windows, or text was cut, for NLI
        out["nli_chunked_share"] = _r(sum(it["nli_chunks"] > 1 for it in scored) / len(scored))
        out["nli_truncated_share"] = _r(sum(bool(it["nli_truncated"]) for it in scored) / len(scored))
    return out


def _groups(langs: list[str]) -> dict[str, np.ndarray]:
    arr = np.asarray(langs, dtype=object)
    return {lang: np.flatnonzero(arr == lang) for lang in sorted(set(langs))}


def _values(items, idx, measure, other=None) -> np.ndarray:
    """A measure's defined values over ``idx`` (differences A - B when ``other`` is given)."""
    v = _column(items, idx, measure) - (_column(other, idx, measure) if other is not None else 0.0)
    return v[~np.isnan(v)]


def _macro(items, groups: dict[str, np.ndarray], resamples: int, confidence: float, seed: int,
           other=None) -> dict:
    """Macro average over languages per measure, with a bootstrap stratified by language.

    Each language's items are resampled on their own and the language means averaged row by
    row, as the ROUGE headline is (:func:`lorasum.metrics.stats.corpus_summary`); a language
    where a measure is undefined for every item is left out of that measure's average.
    """
    kind = "paired" if other is not None else "macro"
    out: dict = {}
    for m in MEASURES:
        points, draws, n = [], [], 0
        for lang, idx in groups.items():
            v = _values(items, idx, m, other)
            if not v.size:
                continue
            points.append(v.mean())
            draws.append(bootstrap_means(v[:, None], resamples, _rng(seed, f"{kind}:{lang}", m))[:, 0])
            n += int(v.size)
        if not points:
            continue
        observed, means = float(np.mean(points)), np.mean(draws, axis=0)
        tail = 100 * (1 - confidence) / 2
        lo, hi = np.percentile(means, [tail, 100 - tail])
        if other is None:
            out[m] = {"mean": _r(observed), "mean_ci": [_r(lo), _r(hi)], "n": n, "n_langs": len(points)}
        else:
            extreme = int((np.abs(means - observed) >= abs(observed) - 1e-12).sum())
            out[m] = {"diff": _r(observed), "ci": [_r(lo), _r(hi)],
                      "p_value": round((1 + extreme) / (1 + resamples), 6), "n": n, "n_langs": len(points)}
    return out


def faithfulness_scores(items: list[dict], langs: list[str], *, resamples: int = 1000, seed: int = 0,
                        confidence: float = 0.95) -> dict:
    """``{"overall": G, "pooled": G, "per_lang": {lang: G}}``; G = ``{"n", measure: {"mean", "mean_ci", "n"}, ...}``.

    ``overall`` is the macro average over languages (language-stratified bootstrap), the
    headline as for ROUGE; ``pooled`` averages all items. ``items`` are per-item signal dicts
    (keys of :data:`MEASURES`, plus ``nli_chunks`` and ``nli_truncated`` when NLI ran); G
    also holds ``nli_chunked_share`` and ``nli_truncated_share`` when NLI ran.
    """
    if not items:
        return {"overall": {"n": 0}, "pooled": {"n": 0}, "per_lang": {}}
    everything = np.arange(len(items))
    groups = _groups(langs)
    pooled = _group_summary(items, everything, "overall", resamples, confidence, seed)
    overall = {k: v for k, v in pooled.items() if k not in MEASURES}
    overall.update(_macro(items, groups, resamples, confidence, seed))
    return {"overall": overall, "pooled": pooled,
            "per_lang": {lang: _group_summary(items, idx, f"lang:{lang}", resamples, confidence, seed)
                         for lang, idx in groups.items()}}


def _paired(a, b, idx, group, resamples, confidence, seed) -> dict:
    out = {}
    for m in MEASURES:
        d = _column(a, idx, m) - _column(b, idx, m)
        d = d[~np.isnan(d)]
        if not d.size:
            continue
        means = bootstrap_means(d[:, None], resamples, _rng(seed, f"paired:{group}", m))[:, 0]
        observed = d.mean()
        tail = 100 * (1 - confidence) / 2
        lo, hi = np.percentile(means, [tail, 100 - tail])
        extreme = int((np.abs(means - observed) >= abs(observed) - 1e-12).sum())
        out[m] = {"diff": _r(observed), "ci": [_r(lo), _r(hi)],
                  "p_value": round((1 + extreme) / (1 + resamples), 6), "n": int(d.size)}
    return out


def faithfulness_paired_test(items_a: list[dict], items_b: list[dict], langs: list[str], *, resamples: int = 1000,
                             seed: int = 0, confidence: float = 0.95) -> dict:
    """Paired bootstrap test of system A against B on each measure: diff = mean(A) - mean(B).

    Items where a measure is undefined for either system are left out of that measure.
    Returns ``{"overall": {measure: {"diff", "ci", "p_value", "n"}}, "pooled": {...}, "per_lang": {lang: {...}}}``;
    ``overall`` is the macro difference over languages (language-stratified), ``pooled`` over all items.
    """
    if len(items_a) != len(items_b):
        raise LorasumError(f"paired test needs the same items: {len(items_a)} vs {len(items_b)}")
    if not items_a:
        return {"overall": {}, "pooled": {}, "per_lang": {}}
    groups = _groups(langs)
    return {"overall": _macro(items_a, groups, resamples, confidence, seed, other=items_b),
            "pooled": _paired(items_a, items_b, np.arange(len(items_a)), "overall", resamples, confidence, seed),
            "per_lang": {lang: _paired(items_a, items_b, idx, f"lang:{lang}", resamples, confidence, seed)
                         for lang, idx in groups.items()}}
