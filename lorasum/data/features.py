"""Tokenization (cached by content hash), length-grouped batching and dynamic padding.

Padding every batch to 512 tokens, as ``run_summarization.py`` does by default, spends
most of the compute on pad tokens; here batches are formed from examples of similar
length and padded only to their own longest member. Labels are padded with -100 so the
loss ignores them.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import random
from pathlib import Path
from typing import Iterator, Sequence

import torch

from lorasum.data.sampling import EpochMix
from lorasum.io import atomic_write_bytes

log = logging.getLogger(__name__)

IGNORE_INDEX = -100
# Bump when the token ids an encoder produces change for the same inputs (prompt building,
# truncation, special tokens): cached features keyed on an older scheme are then not reused.
ENCODING_VERSION = 1


def _lorasum_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("lorasum")
    except PackageNotFoundError:
        return "unknown"


# A token of natural text spans far fewer characters than this in every XL-Sum language, so
# cutting an article here before tokenizing keeps the same first tokens while bounding the
# work a megabyte article costs (text padded with thousands of blanks could lose tokens).
CHARS_PER_TOKEN_BOUND = 32


def cut_source(texts: Sequence[str], max_tokens: int) -> list[str]:
    """Each text cut to ``max_tokens * CHARS_PER_TOKEN_BOUND`` characters, before tokenization."""
    limit = max_tokens * CHARS_PER_TOKEN_BOUND
    return [t[:limit] for t in texts]


def tokenizer_fingerprint(tokenizer) -> str:
    """Enough of a tokenizer's identity to key a cache on."""
    vocab = tokenizer.get_vocab() if hasattr(tokenizer, "get_vocab") else {}
    h = hashlib.sha256()
    h.update(type(tokenizer).__name__.encode())
    h.update(str(getattr(tokenizer, "name_or_path", "")).encode())
    h.update(str(len(vocab)).encode())
    for tok in sorted(vocab)[:2000]:
        h.update(tok.encode("utf-8", "surrogatepass"))
        h.update(str(vocab[tok]).encode())
    return h.hexdigest()[:16]


def encode_seq2seq(examples: Sequence[dict], tokenizer, max_source_length: int,
                   max_target_length: int) -> list[dict]:
    """Token ids for an encoder-decoder model: the article as input, the summary as labels.

    Tokenizers with language codes (mBART) tag the article with its language and the
    summary with the summary's language.
    """
    from lorasum.models.langcodes import source_ids, target_ids

    sources = source_ids(tokenizer, cut_source([ex["text"] for ex in examples], max_source_length),
                         [ex["lang"] for ex in examples], max_source_length)
    targets = target_ids(tokenizer, [ex["summary"] for ex in examples],
                         [ex.get("summary_lang") or ex["lang"] for ex in examples], max_target_length)
    return [
        {"id": ex["id"], "lang": ex["lang"], "input_ids": src, "labels": tgt}
        for ex, src, tgt in zip(examples, sources, targets)
    ]


def encode_cached(examples: Sequence[dict], tokenizer, encode_fn, cache_dir: str | Path | None,
                  **settings) -> list[dict]:
    """``encode_fn(examples, tokenizer, **settings)``, cached on disk by content hash.

    The key covers the examples, the tokenizer's fingerprint, the encoder (qualified name
    and settings), :data:`ENCODING_VERSION` and lorasum's version, so a change to how
    features are built never silently reuses features built the old way.
    """
    if cache_dir is None:
        return encode_fn(examples, tokenizer, **settings)
    h = hashlib.sha256()
    h.update(json.dumps({
        "lorasum": _lorasum_version(), "encoding_version": ENCODING_VERSION,
        "encoder": f"{encode_fn.__module__}.{encode_fn.__qualname__}",
        "tokenizer": tokenizer_fingerprint(tokenizer), "settings": settings,
    }, sort_keys=True).encode())
    for ex in examples:
        h.update(json.dumps([ex["id"], ex["lang"], ex["text"], ex["summary"], ex.get("summary_lang") or ex["lang"]],
                            ensure_ascii=False).encode())
    path = Path(cache_dir) / f"tokens-{h.hexdigest()[:24]}.pt"
    if path.exists():
        try:
            return torch.load(path, weights_only=True)
        except Exception:  # a damaged cache entry is recomputed, never trusted
            log.warning("ignoring unreadable token cache %s", path)
    features = encode_fn(examples, tokenizer, **settings)
    import io

    buf = io.BytesIO()
    torch.save(features, buf)
    atomic_write_bytes(path, buf.getvalue())
    return features


def feature_length(f: dict, *, is_decoder_only: bool = False) -> int:
    """Tokens a feature costs: source + target for seq2seq; a causal feature's labels align with its input."""
    if is_decoder_only:
        return len(f["input_ids"])
    return len(f["input_ids"]) + len(f["labels"])


class LengthGroupedBatches(torch.utils.data.Sampler[list[int]]):
    """Batches of indices with similar lengths, in a seeded random order that changes per epoch.

    Indices are shuffled, cut into mega-batches of ``batch_size * group`` examples, sorted by
    length inside each mega-batch and cut into batches; the batch order is shuffled again so
    long and short batches alternate. ``set_epoch`` changes the order deterministically.
    A short final batch always comes last: ``accelerate`` with ``split_batches=True`` splits
    full batches across processes and only evens out the last one.

    With ``mix``, an epoch covers ``mix.indices(epoch)`` (languages resampled per epoch,
    repeats allowed) instead of every index once.
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, seed: int, *, group: int = 50,
                 shuffle: bool = True, group_by_length: bool = True, mix: EpochMix | None = None):
        self.lengths = list(lengths)
        self.mix = mix
        self.batch_size = batch_size
        self.seed = seed
        self.group = group
        self.shuffle = shuffle
        self.group_by_length = group_by_length
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return math.ceil((len(self.mix) if self.mix else len(self.lengths)) / self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        rng = random.Random(f"lorasum:batches:{self.seed}:{self.epoch}")
        idx = self.mix.indices(self.epoch) if self.mix else list(range(len(self.lengths)))
        if self.shuffle:
            rng.shuffle(idx)
        if self.group_by_length:
            mega = self.batch_size * self.group
            idx = [i for s in range(0, len(idx), mega)
                   for i in sorted(idx[s:s + mega], key=lambda j: -self.lengths[j])]
        batches = [idx[s:s + self.batch_size] for s in range(0, len(idx), self.batch_size)]
        if self.shuffle and self.group_by_length:
            rng.shuffle(batches)
            batches.sort(key=lambda b: len(b) < self.batch_size)  # stable: only a short batch moves
        return iter(batches)


class Collator:
    """Pads a list of features to the longest member; labels with -100."""

    def __init__(self, pad_token_id: int, *, padding_side: str = "right", pad_to_multiple_of: int | None = None):
        self.pad_token_id = pad_token_id
        self.padding_side = padding_side
        self.pad_to_multiple_of = pad_to_multiple_of

    def _pad(self, seqs: list[list[int]], value: int) -> torch.Tensor:
        n = max(len(s) for s in seqs)
        if self.pad_to_multiple_of:
            n = math.ceil(n / self.pad_to_multiple_of) * self.pad_to_multiple_of
        out = torch.full((len(seqs), n), value, dtype=torch.long)
        for i, s in enumerate(seqs):
            if self.padding_side == "right":
                out[i, : len(s)] = torch.tensor(s, dtype=torch.long)
            else:
                out[i, n - len(s):] = torch.tensor(s, dtype=torch.long)
        return out

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        input_ids = self._pad([f["input_ids"] for f in features], self.pad_token_id)
        batch = {"input_ids": input_ids, "attention_mask": (self._pad([[1] * len(f["input_ids"]) for f in features], 0))}
        if "labels" in features[0]:
            batch["labels"] = self._pad([f["labels"] for f in features], IGNORE_INDEX)
        return batch


def labels_for_decoding(labels: torch.Tensor, pad_token_id: int) -> torch.Tensor:
    """Replace -100 by the pad id so label ids can be decoded to text."""
    return torch.where(labels == IGNORE_INDEX, torch.full_like(labels, pad_token_id), labels)
