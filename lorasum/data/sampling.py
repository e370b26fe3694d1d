"""Seeded per-language sampling and multilingual upsampling.

``select(range(n))`` takes the first n rows, which biases low-data regimes towards
whatever order the corpus happens to have. Here every language draws its own random
sample from a generator seeded by ``(seed, lang)``: the same seed gives the same rows,
another seed other rows, and adding a language never changes another language's sample.
"""
from __future__ import annotations

import math
import random

from lorasum.errors import LorasumError


def _rng(seed: int, lang: str, purpose: str = "sample") -> random.Random:
    # str seeds are hashed with SHA-512 by `random`, so this is stable across processes
    return random.Random(f"lorasum:{purpose}:{seed}:{lang}")


def sample_per_lang(examples: dict[str, list[dict]], n: int | None, seed: int, *, split: str = "train",
                    strict: bool = True) -> dict[str, list[dict]]:
    """At most ``n`` examples per language, drawn at random with ``seed``; all when ``n`` is None.

    With ``strict``, asking for more examples than a language has is an error (a low-data
    regime of 4096 shots must not silently become 300).
    """
    if n is None:
        return {lang: list(rows) for lang, rows in examples.items()}
    out = {}
    for lang, rows in examples.items():
        if len(rows) < n:
            if strict:
                raise LorasumError(
                    f"{split} split of {lang!r} has {len(rows)} examples, fewer than the {n} requested "
                    "(lower data.train_examples or use more data)"
                )
            out[lang] = list(rows)
            continue
        idx = sorted(_rng(seed, lang).sample(range(len(rows)), n))
        out[lang] = [rows[i] for i in idx]
    return out


def upsampling_weights(sizes: dict[str, int], alpha: float) -> dict[str, float]:
    """XL-Sum's multilingual sampling: p(lang) proportional to size**alpha (alpha<1 upsamples small languages)."""
    total = sum(sizes.values())
    q = {lang: (n / total) ** alpha for lang, n in sizes.items() if n}
    z = sum(q.values())
    return {lang: v / z for lang, v in q.items()}


def mix_languages(examples: dict[str, list[dict]], alpha: float, seed: int) -> list[dict]:
    """One training list for several languages, each language resampled to its upsampled share.

    The list has as many examples as the original total; a language whose share grows is
    repeated (whole passes first, then a seeded random remainder), one whose share shrinks
    is subsampled. With one language this is the identity.
    """
    if len(examples) == 1:
        return list(next(iter(examples.values())))
    sizes = {lang: len(rows) for lang, rows in examples.items()}
    total = sum(sizes.values())
    weights = upsampling_weights(sizes, alpha)
    out: list[dict] = []
    for lang, rows in examples.items():
        want = max(1, round(weights[lang] * total))
        reps, rest = divmod(want, len(rows))
        out.extend(rows * reps)
        if rest:
            idx = sorted(_rng(seed, lang, "upsample").sample(range(len(rows)), rest))
            out.extend(rows[i] for i in idx)
    return out


def expected_steps(n_examples: int, batch_size: int, grad_accum: int, epochs: float) -> int:
    return max(1, math.ceil(math.ceil(n_examples / batch_size) * epochs / grad_accum))
