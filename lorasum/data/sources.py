"""Read (article, summary) examples from the hub or from local JSONL / CSV / Parquet files.

Every example becomes a plain dict ``{"id", "lang", "text", "summary"}`` with ``lang``
an XL-Sum code. ``lorasum:demo`` (:mod:`lorasum.builtins`) names the embedded sample. Local files are parsed here rather than by ``datasets.load_dataset``
because a bad row must be reported with its file and line, and optionally skipped.
"""
from __future__ import annotations

import csv
import gzip
import json
import logging
from collections import defaultdict
from pathlib import Path
from typing import Iterator

from lorasum.builtins import is_builtin, resolve_data_source
from lorasum.config import DataConfig
from lorasum.errors import LorasumError
from lorasum.languages import normalize_lang, xlsum_config_name

log = logging.getLogger(__name__)

Example = dict  # {"id": str, "lang": str, "text": str, "summary": str}
SPLITS = ("train", "validation", "test")
_SUFFIXES = {".jsonl": "jsonl", ".json": "jsonl", ".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


class BadRows:
    """Collects skipped rows when ``skip_bad_rows`` is on; raises on the first otherwise."""

    def __init__(self, skip: bool):
        self.skip = skip
        self.count = 0
        self.first: str | None = None

    def report(self, where: str, problem: str) -> None:
        msg = f"{where}: {problem}"
        if not self.skip:
            raise LorasumError(msg + " (fix the row, or pass --skip-bad-rows to drop bad rows)")
        self.count += 1
        self.first = self.first or msg


def load_examples(cfg: DataConfig, split: str, langs: list[str]) -> dict[str, list[Example]]:
    """All examples of ``split`` for each language in ``langs``, in file order."""
    if split not in SPLITS:
        raise LorasumError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
    if cfg.is_hub_xlsum:
        return {lang: _load_hub_xlsum(cfg, split, lang) for lang in langs}
    if is_builtin(cfg.source):
        cfg = cfg.model_copy(update={"source": resolve_data_source(cfg.source)})
    return _load_local(cfg, split, langs)


def _load_hub_xlsum(cfg: DataConfig, split: str, lang: str) -> list[Example]:
    import datasets

    name = xlsum_config_name(lang)
    try:
        ds = datasets.load_dataset(cfg.source, name, split=cfg.splits[split])
    except Exception as err:  # network, missing config, ...
        raise LorasumError(
            f"could not load {cfg.source} config {name!r} split {cfg.splits[split]!r}: {err}. "
            "Without network access, point data.source at a local JSONL/CSV/Parquet file."
        ) from None
    return [
        {"id": str(r["id"]), "lang": lang, "text": r["text"], "summary": r["summary"]}
        for r in ds
        if r["text"] and r["summary"]
    ]


def _local_files(cfg: DataConfig, split: str) -> tuple[list[Path], bool]:
    """Files holding ``split``; the flag says whether rows must be filtered by split field."""
    src = Path(cfg.source).expanduser()
    if src.is_file():
        return [src], True
    if src.is_dir():
        name = cfg.splits[split]
        found = sorted(p for p in src.iterdir() if p.is_file() and _stem(p) == name and _fmt(p, cfg) is not None)
        if not found:
            raise LorasumError(
                f"{src}: no file for split {split!r} (expected e.g. {name}.jsonl, {name}.csv or {name}.parquet)"
            )
        return found, False
    raise LorasumError(
        f"data source not found: {cfg.source} (give a local JSONL/CSV/Parquet file or folder, "
        "or csebuetnlp/xlsum for the hub)"
    )


def _stem(p: Path) -> str:
    name = p.name[:-3] if p.name.endswith(".gz") else p.name
    return name.rsplit(".", 1)[0]


def _fmt(p: Path, cfg: DataConfig) -> str | None:
    if cfg.format != "auto":
        return cfg.format
    name = p.name[:-3] if p.name.endswith(".gz") else p.name
    return _SUFFIXES.get(Path(name).suffix.lower())


def _load_local(cfg: DataConfig, split: str, langs: list[str]) -> dict[str, list[Example]]:
    files, filter_split = _local_files(cfg, split)
    wanted = set(langs)
    out: dict[str, list[Example]] = defaultdict(list)
    bad = BadRows(cfg.skip_bad_rows)
    single_lang = langs[0] if len(wanted) == 1 else None
    for path in files:
        fmt = _fmt(path, cfg)
        if fmt is None:
            raise LorasumError(f"{path}: unknown file type; set data.format to jsonl, csv or parquet")
        check_fields_present(path, fmt, cfg)
        for where, row in _read_rows(path, fmt, bad):
            ex = _to_example(row, where, cfg, split if filter_split else None, single_lang, bad)
            if ex is not None and ex["lang"] in wanted:
                out[ex["lang"]].append(ex)
    if bad.count:
        log.warning("skipped %d bad rows in %s split (first: %s)", bad.count, split, bad.first)
    missing = [lang for lang in langs if not out.get(lang)]
    if missing:
        raise LorasumError(
            f"{', '.join(map(str, files))}: no {split!r} rows for language(s) {', '.join(missing)} "
            f"(field {cfg.lang_field!r}, split field {cfg.split_field!r})"
        )
    return {lang: out[lang] for lang in langs}


def check_fields_present(path: Path, fmt: str, cfg: DataConfig, sample_rows: int = 1000) -> None:
    """Refuse a file whose text or summary field is absent everywhere, listing the fields it has.

    A misnamed field would otherwise make every row "bad", and skipping bad rows cannot help.
    CSV and Parquet are checked on their header; JSONL on the keys of its first rows.
    """
    if fmt == "csv":
        with _open_text(path) as f:
            fields = set(next(csv.reader(f), []))
        where = "its header"
    elif fmt == "parquet":
        import pyarrow.parquet as pq

        fields = set(pq.read_schema(path).names)
        where = "its columns"
    else:
        fields = set()
        rows = 0
        with _open_text(path) as f:
            for line in f:
                if rows >= sample_rows:
                    break
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(row, dict):
                    fields |= set(row)
                    rows += 1
        if not rows:
            return  # nothing parsable: the row reader names the first bad line
        where = f"its first {rows} rows" if rows == sample_rows else "any row"
    absent = [f for f in (cfg.text_field, cfg.summary_field) if f not in fields]
    if absent:
        names = ", ".join(repr(f) for f in absent)
        raise LorasumError(f"{path}: field {names} not found in {where}; it has {', '.join(sorted(map(str, fields)))} "
                           "(set data.text_field / data.summary_field, or --text-field / --summary-field)")


def _open_text(path: Path):
    if path.name.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def _read_rows(path: Path, fmt: str, bad: BadRows) -> Iterator[tuple[str, dict]]:
    if fmt == "jsonl":
        with _open_text(path) as f:
            for i, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as err:
                    bad.report(f"{path}:{i}", f"not valid JSON ({err.msg} at column {err.colno})")
                    continue
                if not isinstance(row, dict):
                    bad.report(f"{path}:{i}", "each line must be a JSON object")
                    continue
                yield f"{path}:{i}", row
    elif fmt == "csv":
        with _open_text(path) as f:
            reader = csv.DictReader(f)
            for row in reader:
                yield f"{path}:{reader.line_num}", row
    else:
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        for i, row in enumerate(table.to_pylist()):
            yield f"{path}: row {i}", row


def _to_example(row: dict, where: str, cfg: DataConfig, split: str | None, single_lang: str | None,
                 bad: BadRows) -> Example | None:
    if split is not None:
        if cfg.split_field not in row:
            bad.report(where, f"missing field {cfg.split_field!r} (a single data file needs a split column; "
                              "or use a folder with train/validation/test files)")
            return None
        if row[cfg.split_field] != cfg.splits[split]:
            return None
    for field in (cfg.text_field, cfg.summary_field):
        if field not in row:
            bad.report(where, f"missing field {field!r} (set data.text_field / data.summary_field)")
            return None
    text, summary = row[cfg.text_field], row[cfg.summary_field]
    if not isinstance(text, str) or not text.strip():
        bad.report(where, f"empty text in field {cfg.text_field!r}")
        return None
    if not isinstance(summary, str) or not summary.strip():
        bad.report(where, f"empty summary in field {cfg.summary_field!r}")
        return None
    if cfg.lang_field in row and row[cfg.lang_field] not in (None, ""):
        try:
            lang = normalize_lang(row[cfg.lang_field])
        except LorasumError as err:
            bad.report(where, str(err))
            return None
    elif single_lang is not None:
        lang = single_lang
    else:
        bad.report(where, f"missing field {cfg.lang_field!r} (needed when several languages are configured)")
        return None
    ex_id = row.get(cfg.id_field)
    return {"id": str(ex_id) if ex_id not in (None, "") else where.rsplit("/", 1)[-1],
            "lang": lang, "text": text.strip(), "summary": summary.strip()}
