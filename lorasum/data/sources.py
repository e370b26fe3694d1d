"""Read (article, summary) examples from local JSONL / CSV / Parquet files, or any source.

Every example becomes a plain dict ``{"id", "lang", "text", "summary", "summary_lang"}``
with ``lang`` and ``summary_lang`` lorasum language codes. ``lorasum:demo``
(:mod:`lorasum.builtins`) names the embedded sample. Hub ids, ``save_to_disk`` folders and
hub-style folders of shards are read by :mod:`lorasum.data.hub`. Local files are parsed here rather than by ``datasets.load_dataset``
because a bad row must be reported with its file and line, and optionally skipped.
"""
from __future__ import annotations

import csv
import gzip
import json
import logging
import re
from collections import defaultdict
from pathlib import Path
from typing import Iterator

from lorasum.builtins import is_builtin, resolve_data_source
from lorasum.config import DataConfig
from lorasum.errors import LorasumError
from lorasum.languages import normalize_lang

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
        self.kinds: dict[str, int] = {}

    def report(self, where: str, problem: str) -> None:
        msg = f"{where}: {problem}"
        if not self.skip:
            raise LorasumError(msg + " (fix the row, or pass --skip-bad-rows to drop bad rows)")
        self.count += 1
        self.first = self.first or msg
        kind = re.split(r" \(|; |\. ", problem, maxsplit=1)[0]
        self.kinds[kind] = self.kinds.get(kind, 0) + 1

    def summary(self) -> str:
        """``"3 bad rows: 2 x not valid UTF-8, 1 x empty text in field 'text'"``."""
        parts = ", ".join(f"{n} x {kind}" for kind, n in sorted(self.kinds.items(), key=lambda kv: -kv[1]))
        return f"{self.count} bad row{'s' if self.count != 1 else ''}: {parts}"


def load_examples(cfg: DataConfig, split: str, langs: list[str]) -> dict[str, list[Example]]:
    """All examples of ``split`` for each language in ``langs``, in file order."""
    if split not in SPLITS:
        raise LorasumError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
    from lorasum.data.hub import source_kind

    if is_builtin(cfg.source):
        cfg = cfg.model_copy(update={"source": resolve_data_source(cfg.source)})
    if source_kind(cfg) != "files":  # hub ids, save_to_disk and hub-style folders
        from lorasum.data.stream import load_all

        return load_all(cfg, split, langs)
    return _load_local(cfg, split, langs)


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
        "a save_to_disk folder, or a hub dataset id such as csebuetnlp/xlsum)"
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
    from lorasum.data.stream import with_summary_lang

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
            ex = with_summary_lang(_to_example(row, where, cfg, split if filter_split else None, single_lang, bad),
                                   row, where, cfg, bad)
            if ex is not None and ex["lang"] in wanted:
                out[ex["lang"]].append(ex)
    if bad.count:
        log.warning("skipped %s in the %s split (first: %s)", bad.summary(), split, bad.first)
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
        try:
            with _text(path) as f:
                fields = set(next(csv.reader(f), []))
        except (csv.Error, OSError, EOFError):
            return  # the row reader names the problem and its line
        where = "its header"
    elif fmt == "parquet":
        import pyarrow
        import pyarrow.parquet as pq

        try:
            fields = set(pq.read_schema(path).names)
        except (pyarrow.ArrowException, OSError):
            return  # not readable as Parquet: the row reader says so
        where = "its columns"
    else:
        fields = set()
        rows = 0
        try:
            with _text(path) as f:
                for line in f:
                    if rows >= sample_rows:
                        break
                    try:
                        row = json.loads(line)
                    except (json.JSONDecodeError, RecursionError):
                        continue
                    if isinstance(row, dict):
                        fields |= set(row)
                        rows += 1
        except (OSError, EOFError):
            return  # the row reader names the problem
        if not rows:
            return  # nothing parsable: the row reader names the first bad line
        where = f"its first {rows} rows" if rows == sample_rows else "any row"
    absent = [f for f in (cfg.text_field, cfg.summary_field) if f not in fields]
    if absent:
        names = ", ".join(repr(f) for f in absent)
        have = ", ".join(repr(str(f))[:60] for f in sorted(map(str, fields))[:30])  # repr: one line whatever the names
        raise LorasumError(f"{path}: field {names} not found in {where}; it has {have or 'no fields'} "
                           "(set data.text_field / data.summary_field, or --text-field / --summary-field)")


def _text(path: Path):
    if path.name.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8-sig", errors="replace", newline="")
    return open(path, encoding="utf-8-sig", errors="replace", newline="")


_PARQUET_MAGIC = b"PAR1"
_GZIP_MAGIC = b"\x1f\x8b"
_CSV_FIELD_LIMIT = 2**31 - 1  # long articles are valid; the default limit (128 KiB) rejects them


def _open_binary(path: Path):
    if path.name.endswith(".gz"):
        return gzip.open(path, "rb")
    return open(path, "rb")


def _decoded_lines(path: Path, bad: BadRows, physical: list[int] | None = None) -> Iterator[tuple[int, str]]:
    """``(line number, text)`` for each line, decoded as UTF-8 one line at a time.

    Decoding per line lets a line with invalid bytes be reported (and skipped) on its own.
    A UTF-8 byte order mark on the first line is dropped; CRLF endings are kept for the
    caller (JSON and CSV both accept them). ``physical[0]`` follows the current line number.
    """
    try:
        with _open_binary(path) as f:
            head = f.read(4)
            f.seek(0)
            if not path.name.endswith(".gz") and head.startswith(_PARQUET_MAGIC):
                raise LorasumError(f"{path}: this is a Parquet file, not text; "
                                   "rename it to .parquet or set data.format: parquet")
            if head.startswith(_GZIP_MAGIC) and not path.name.endswith(".gz"):
                raise LorasumError(f"{path}: this file is gzip-compressed; name it {path.name}.gz")
            for i, raw in enumerate(f, 1):
                if physical is not None:
                    physical[0] = i
                if i == 1 and raw.startswith(b"\xef\xbb\xbf"):
                    raw = raw[3:]
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as err:
                    bad.report(f"{path}:{i}", f"not valid UTF-8 (byte 0x{raw[err.start]:02x} at column {err.start + 1}); "
                                              "re-encode the file as UTF-8")
                    continue
                yield i, line
    except (OSError, EOFError) as err:  # unreadable, or a damaged gzip stream
        raise LorasumError(f"{path}: cannot read ({type(err).__name__}: {err})") from None


def _read_rows(path: Path, fmt: str, bad: BadRows) -> Iterator[tuple[str, dict]]:
    """``(where, row)`` for each row of a local file, streamed (never the whole file in memory)."""
    if fmt == "jsonl":
        rows = _jsonl_rows(path, bad)
    elif fmt == "csv":
        rows = _csv_rows(path, bad)
    else:
        rows = _parquet_rows(path, bad)
    seen = False
    for where, row in rows:
        seen = True
        yield where, row
    if not seen and not bad.count:
        raise LorasumError(f"{path}: no rows (the file is empty or holds only blank lines)")


def _jsonl_rows(path: Path, bad: BadRows) -> Iterator[tuple[str, dict]]:
    for i, line in _decoded_lines(path, bad):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            bad.report(f"{path}:{i}", f"not valid JSON ({err.msg}, column {err.colno}); a truncated line?")
            continue
        except RecursionError:
            bad.report(f"{path}:{i}", "JSON nested too deeply")
            continue
        if not isinstance(row, dict):
            bad.report(f"{path}:{i}", f"each line must be a JSON object, got {type(row).__name__}")
            continue
        yield f"{path}:{i}", row


def _csv_rows(path: Path, bad: BadRows) -> Iterator[tuple[str, dict]]:
    csv.field_size_limit(max(csv.field_size_limit(), _CSV_FIELD_LIMIT))
    physical = [0]
    reader = csv.reader((line for _, line in _decoded_lines(path, bad, physical)), strict=True)
    header = None
    while True:
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            bad.report(f"{path}:{physical[0]}", f"broken CSV ({err}); check the quoting")
            continue
        if header is None:
            header = values
            if len(set(header)) != len(header):
                raise LorasumError(f"{path}:1: repeated column names in the header {header}")
            continue
        if not values or not any(v.strip() for v in values):
            continue
        if len(values) != len(header):
            bad.report(f"{path}:{physical[0]}", f"{len(values)} fields where the header has {len(header)}")
            continue
        yield f"{path}:{physical[0]}", dict(zip(header, values))


def _parquet_rows(path: Path, bad: BadRows) -> Iterator[tuple[str, dict]]:
    import pyarrow
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except (pyarrow.ArrowException, OSError) as err:
        raise LorasumError(f"{path}: not a readable Parquet file ({str(err).splitlines()[0] if str(err) else err!r}); "
                           "check the file, or set data.format if it is JSONL or CSV") from None
    n = 0
    for g in range(pf.num_row_groups):  # one row group in memory at a time
        try:
            rows = pf.read_row_group(g).to_pylist()
        except (pyarrow.ArrowException, OSError) as err:
            bad.report(f"{path}: row group {g}", f"damaged Parquet data ({str(err).splitlines()[0] if str(err) else err!r})")
            continue
        for row in rows:
            yield f"{path}: row {n}", row
            n += 1


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
    for field, value in ((cfg.text_field, text), (cfg.summary_field, summary)):
        if value is not None and not isinstance(value, str):
            bad.report(where, f"field {field!r} must be a string, got {type(value).__name__}")
            return None
    if text is None or not text.strip():
        bad.report(where, f"empty text in field {cfg.text_field!r}")
        return None
    if summary is None or not summary.strip():
        bad.report(where, f"empty summary in field {cfg.summary_field!r}")
        return None
    if cfg.lang_field in row and row[cfg.lang_field] not in (None, ""):
        if not isinstance(row[cfg.lang_field], str):
            bad.report(where, f"field {cfg.lang_field!r} must be a language code string, "
                              f"got {type(row[cfg.lang_field]).__name__}")
            return None
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
