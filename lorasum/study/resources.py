"""Shared inputs of a study: built-in names resolved once, into the study's cache.

A spec may name the embedded demo data (``data.source: lorasum:demo``), the offline
random tiny model (``model: lorasum:tiny-mt5``) and the shipped pretrained demo model
(``model: lorasum:demo-mt5``), as any run config may (:mod:`lorasum.builtins`).
The cell hashes keep these names as written, so a study folder can move between
machines; the concrete paths are filled in just before a cell runs. The tiny model is
built once per study, into ``<study>/cache``.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from lorasum.builtins import BUILTIN_PREFIX, DEMO_DATA, resolve_data_source, resolve_model
from lorasum.config import RunConfig
from lorasum.errors import LorasumError

__all__ = ["BUILTIN_PREFIX", "DEMO_DATA", "materialize", "resolve_data_source", "resolve_model", "train_sizes"]

# XL-Sum training split sizes quoted in the field notes; other languages show as unknown
XLSUM_TRAIN_SIZES = {"en": 306_522, "ru": 62_243}


def materialize(config: RunConfig, cache_dir: Path, init_from: str | None = None) -> RunConfig:
    """The config a cell actually runs: built-in names replaced by paths, init_from set."""
    d = config.to_dict()
    d["model"]["name"] = resolve_model(config.model.name, cache_dir)
    d["data"]["source"] = resolve_data_source(config.data.source)
    d["init_from"] = init_from
    return RunConfig.model_validate(d)


@lru_cache(maxsize=32)
def _count_local(path: str, lang_field: str, split_field: str, train_name: str) -> dict[str, int] | None:
    p = Path(path)
    if p.is_dir():
        files = sorted(x for x in p.iterdir() if x.name.startswith(train_name + ".") or x.name.startswith(train_name + "-"))
        if not files:
            return None
        p, split_field = files[0], ""
    if p.suffix != ".jsonl" and not p.name.endswith(".jsonl.gz"):
        return None  # counting CSV/Parquet needs a full read; the estimate just says unknown
    counts: dict[str, int] = {}
    opener = __import__("gzip").open if p.name.endswith(".gz") else open
    with opener(p, "rt", encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            row = json.loads(line)
            if split_field and row.get(split_field) != train_name:
                continue
            lang = row.get(lang_field)
            counts[lang] = counts.get(lang, 0) + 1
    return counts


def train_sizes(config: RunConfig) -> dict[str, int | None]:
    """Training examples per language a run will use (``None``: unknown before loading)."""
    d = config.data
    available: dict[str, int] | None = None
    if d.is_hub_xlsum:
        available = dict(XLSUM_TRAIN_SIZES)
    else:
        try:
            available = _count_local(resolve_data_source(d.source), d.lang_field, d.split_field,
                                     d.splits.get("train", "train"))
        except (OSError, ValueError, LorasumError):
            available = None
    out: dict[str, int | None] = {}
    for lang in d.languages:
        have = None if available is None else available.get(lang)
        if d.train_examples is not None:
            out[lang] = d.train_examples if have is None else min(have, d.train_examples)
        else:
            out[lang] = have
    return out
