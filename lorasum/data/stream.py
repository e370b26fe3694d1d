"""Examples one at a time from any source, and seeded samples that never hold the corpus.

:func:`iter_examples` turns the rows of any ``data.source`` (local files, hub ids,
``save_to_disk`` folders, hub-style folders) into examples, one at a time: JSONL/CSV
line by line, Parquet one row group at a time, hub datasets with ``streaming=True``.

:func:`sample_examples` draws the same seeded sample as
:func:`lorasum.data.sampling.sample_per_lang` (the reference: same seed, same rows;
adding a language never changes another's sample) in two passes: the first counts each
language's rows, the second keeps the rows at the indices that ``sample_per_lang`` would
pick from a list of that length. Memory holds the n chosen rows per language and their
indices, never the corpus; the price is reading the data twice. Reservoir sampling
would need one pass but draws other rows than the in-memory sample for the same seed,
which would make a result depend on how the data was loaded.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path
from typing import Iterator

from lorasum.config import DataConfig
from lorasum.data import hub
from lorasum.data.sampling import _rng
from lorasum.errors import LorasumError
from lorasum.languages import normalize_lang

Example = dict


def to_example(row: dict, where: str, cfg: DataConfig, split: str | None, lang: str | None, bad,
               *, force_lang: bool = False) -> Example | None:
    """One row as an example with ``summary_lang``; None (reported to ``bad``) for a bad row."""
    from lorasum.data.sources import _to_example

    if isinstance(row.get(cfg.text_field), (list, tuple, dict)):
        row = {**row, cfg.text_field: hub.flatten_text(row[cfg.text_field])}
    ex = _to_example(row, where, cfg, split, lang, bad)
    if ex is None:
        return None
    if force_lang and lang is not None:
        ex["lang"] = lang
    return with_summary_lang(ex, row, where, cfg, bad)


def with_summary_lang(ex: Example | None, row: dict, where: str, cfg: DataConfig, bad) -> Example | None:
    """Add the summary's language: its column, else ``data.summary_lang``, else the article's."""
    if ex is None:
        return None
    value = row.get(cfg.summary_lang_field)
    if value not in (None, ""):
        try:
            ex["summary_lang"] = normalize_lang(value)
        except LorasumError as err:
            bad.report(where, f"field {cfg.summary_lang_field!r}: {err}")
            return None
    else:
        ex["summary_lang"] = cfg.summary_lang or ex["lang"]
    return ex


def iter_examples(cfg: DataConfig, split: str, langs: list[str], bad) -> Iterator[Example]:
    """Every example of ``split`` in one of ``langs``, in source order, one at a time."""
    from lorasum.builtins import is_builtin, resolve_data_source

    if is_builtin(cfg.source):
        cfg = cfg.model_copy(update={"source": resolve_data_source(cfg.source)})
    wanted = set(langs)
    if hub.source_kind(cfg) == "files":
        from lorasum.data.sources import _fmt, _local_files, _read_rows, check_fields_present

        files, filter_split = _local_files(cfg, split)
        single = langs[0] if len(wanted) == 1 else None
        for path in files:
            fmt = _fmt(path, cfg)
            if fmt is None:
                raise LorasumError(f"{path}: unknown file type; set data.format to jsonl, csv or parquet")
            check_fields_present(path, fmt, cfg)
            rows = _read_rows(path, fmt, bad)  # Parquet one row group at a time
            for where, row in rows:
                ex = to_example(row, where, cfg, split if filter_split else None, single, bad)
                if ex is not None and ex["lang"] in wanted:
                    yield ex
        return
    from_hub = hub.source_kind(cfg) == "hub"
    for config, lang in hub.configs(cfg, langs):
        for where, row in hub.iter_rows(cfg, split, config):
            if from_hub and not (row.get(cfg.text_field) and row.get(cfg.summary_field)):
                continue  # published hub datasets hold a few empty rows; they are not the user's to fix
            ex = to_example(row, where, cfg, None, lang, bad, force_lang=bool(cfg.subsets) or cfg.is_hub_xlsum)
            if ex is not None and ex["lang"] in wanted:
                yield ex


def _check_found(cfg: DataConfig, split: str, langs: list[str], counts: Counter) -> None:
    missing = [lang for lang in langs if not counts.get(lang)]
    if missing:
        raise LorasumError(
            f"{cfg.source}: no {split!r} rows for language(s) {', '.join(missing)} "
            f"(field {cfg.lang_field!r}, subsets {cfg.subsets or cfg.subset})"
        )


def load_all(cfg: DataConfig, split: str, langs: list[str]) -> dict[str, list[Example]]:
    """All examples of ``split`` per language (for sources read through :mod:`lorasum.data.hub`)."""
    from lorasum.data.sources import BadRows

    bad = BadRows(cfg.skip_bad_rows)
    out: dict[str, list[Example]] = defaultdict(list)
    for ex in iter_examples(cfg, split, langs, bad):
        out[ex["lang"]].append(ex)
    _check_found(cfg, split, langs, Counter({k: len(v) for k, v in out.items()}))
    return {lang: out[lang] for lang in langs}


def sample_examples(cfg: DataConfig, split: str, langs: list[str], n: int | None, seed: int, *,
                    strict: bool = True) -> dict[str, list[Example]]:
    """``sample_per_lang(load_examples(...), n, seed)``'s rows, without holding the whole split.

    With ``n`` None every example is needed, and :func:`lorasum.data.sources.load_examples`
    loads them.
    """
    from lorasum.data.sampling import sample_per_lang
    from lorasum.data.sources import BadRows, load_examples

    if n is None:
        return sample_per_lang(load_examples(cfg, split, langs), None, seed)
    counts: Counter = Counter()
    for ex in iter_examples(cfg, split, langs, BadRows(True)):
        counts[ex["lang"]] += 1
    _check_found(cfg, split, langs, counts)
    keep: dict[str, set[int]] = {}
    for lang in langs:
        if counts[lang] < n:
            if strict:
                raise LorasumError(
                    f"{split} split of {lang!r} has {counts[lang]} examples, fewer than the {n} requested "
                    "(lower data.train_examples or use more data)")
            keep[lang] = set(range(counts[lang]))
        else:
            keep[lang] = set(_rng(seed, lang).sample(range(counts[lang]), n))
    seen: Counter = Counter()
    out: dict[str, list[Example]] = {lang: [] for lang in langs}
    bad = BadRows(cfg.skip_bad_rows)
    for ex in iter_examples(cfg, split, langs, bad):
        lang = ex["lang"]
        if seen[lang] in keep[lang]:
            out[lang].append(ex)
        seen[lang] += 1
    if bad.count:
        import logging

        logging.getLogger(__name__).warning("skipped %d bad rows in %s split (first: %s)", bad.count, split,
                                            bad.first)
    return out
