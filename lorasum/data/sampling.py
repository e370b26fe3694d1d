"""Seeded per-language sampling and multilingual upsampling.

``select(range(n))`` takes the first n rows, which biases low-data regimes towards
whatever order the corpus happens to have. Here every language draws its own random
sample from a generator seeded by ``(seed, lang)``: the same seed gives the same rows,
another seed other rows, and adding a language never changes another language's sample.

Multilingual training mixes languages by XL-Sum's upsampling (p proportional to
size**alpha); :class:`EpochMix` draws each epoch's rows anew, so a down-weighted
language is not reduced to one fixed subsample for the whole run.
"""
from __future__ import annotations

import math
import random
from typing import Sequence

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


class EpochMix:
    """Which training rows each epoch uses when several languages are mixed (XL-Sum's upsampling).

    Every epoch has the same size (the original total) and the same per-language counts,
    ``max(1, round(p(lang) * total))`` with p from :func:`upsampling_weights`. A language
    whose share grows is repeated (whole passes, then a random remainder); one whose share
    shrinks is subsampled. The remainder is drawn afresh each epoch from a generator seeded
    by ``(seed, lang, epoch)``: a down-weighted language shows different rows in different
    epochs (not the same subsample every time), and any epoch can be rebuilt on its own,
    which is what resuming mid-epoch needs. With one language every row is used once.
    """

    def __init__(self, langs: Sequence[str | None], alpha: float, seed: int):
        groups: dict[str | None, list[int]] = {}
        for i, lang in enumerate(langs):
            groups.setdefault(lang, []).append(i)
        self.groups = groups
        self.seed = seed
        sizes = {lang: len(idx) for lang, idx in groups.items()}
        if len(groups) > 1:
            total = sum(sizes.values())
            weights = upsampling_weights(sizes, alpha)
            self.counts = {lang: max(1, round(weights[lang] * total)) for lang in groups}
        else:
            self.counts = sizes

    def __len__(self) -> int:
        return sum(self.counts.values())

    def indices(self, epoch: int) -> list[int]:
        """The row indices of ``epoch`` (sorted; repeats for upsampled languages)."""
        out: list[int] = []
        for lang, idx in self.groups.items():
            reps, rest = divmod(self.counts[lang], len(idx))
            out.extend(idx * reps)
            if rest:
                out.extend(_rng(self.seed, str(lang), f"upsample:{epoch}").sample(idx, rest))
        return sorted(out)


def expected_steps(n_examples: int, batch_size: int, grad_accum: int, epochs: float) -> int:
    return max(1, math.ceil(math.ceil(n_examples / batch_size) * epochs / grad_accum))
