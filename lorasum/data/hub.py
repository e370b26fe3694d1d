"""Examples from hub datasets, ``save_to_disk`` folders and hub-style folders of shards.

Three kinds of ``data.source`` are read here (plain files and ``train.jsonl``-style
folders stay in :mod:`lorasum.data.sources`):

- a hub id (``csebuetnlp/xlsum``): ``datasets.load_dataset(..., streaming=True)``, so
  rows arrive one at a time and nothing holds the whole corpus;
- a folder written by ``Dataset(Dict).save_to_disk``: ``datasets.load_from_disk``
  (memory-mapped Arrow, so iterating it does not load it);
- a hub-style folder, as a dataset repository lays out its files: shards per split
  named ``<split>-00000-of-00002.parquet`` or held in a ``<split>/`` folder, anywhere
  below the root (``data/``, ``<config>/``). Parquet is read one row group at a time;
  JSONL and CSV line by line through :mod:`lorasum.data.sources`, so a bad row is
  reported with its file and line as for any local file.

The hub config of each language comes from ``data.subsets`` (lang -> config), else
``data.subset`` for all, else (``csebuetnlp/xlsum`` only) XL-Sum's own config names. A
hub-style or ``save_to_disk`` folder with one sub-folder per config is read the same way.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

from lorasum.config import DataConfig
from lorasum.errors import LorasumError
from lorasum.languages import xlsum_config_name

_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[\w.-]+)?")
_SHARD_EXT = {".parquet": "parquet", ".jsonl": "jsonl", ".json": "jsonl", ".csv": "csv"}


def source_kind(cfg: DataConfig) -> str:
    """``"hub"``, ``"disk"`` (save_to_disk), ``"shards"`` (hub-style folder) or ``"files"``."""
    src = Path(cfg.source).expanduser()
    if src.is_file():
        return "files"
    if src.is_dir():
        if _is_saved(src) or any(_is_saved(p) for p in src.iterdir() if p.is_dir()):
            return "disk"
        names = set(cfg.splits.values())
        flat = any(p.is_file() and _bare_name(p) in names for p in src.iterdir())
        return "files" if flat else "shards"
    if _HUB_ID.fullmatch(cfg.source) and not cfg.source.startswith(("~", ".")):
        return "hub"
    return "files"  # not found: sources.py reports it


def _is_saved(p: Path) -> bool:
    return (p / "dataset_dict.json").is_file() or (p / "state.json").is_file()


def _bare_name(p: Path) -> str:
    name = p.name[:-3] if p.name.endswith(".gz") else p.name
    return name.rsplit(".", 1)[0]


def configs(cfg: DataConfig, langs: list[str]) -> list[tuple[str | None, str | None]]:
    """(config, language of all its rows or None) pairs to read for ``langs``."""
    if cfg.subsets:
        return [(cfg.subsets[lang], lang) for lang in langs]
    if cfg.subset is None and cfg.is_hub_xlsum:
        return [(xlsum_config_name(lang), lang) for lang in langs]
    return [(cfg.subset, langs[0] if len(langs) == 1 else None)]


def iter_rows(cfg: DataConfig, split: str, config: str | None) -> Iterator[tuple[str, dict]]:
    """(where, row) for every row of ``split`` in ``config``, one at a time."""
    kind = source_kind(cfg)
    name = cfg.splits[split]
    if kind == "hub":
        yield from _hub_rows(cfg, name, config)
    elif kind == "disk":
        yield from _disk_rows(cfg, name, config)
    else:
        yield from _shard_rows(cfg, name, config)


def _hub_rows(cfg: DataConfig, name: str, config: str | None) -> Iterator[tuple[str, dict]]:
    import datasets

    label = f"{cfg.source}" + (f" config {config!r}" if config else "") + f" split {name!r}"
    try:
        ds = datasets.load_dataset(cfg.source, config, split=name, streaming=True)
        rows = iter(ds)
        first = next(rows, None)
    except Exception as err:  # network, unknown dataset/config/split, ...
        raise LorasumError(
            f"could not load {label}: {str(err).splitlines()[0] if str(err) else type(err).__name__}. "
            "Without network access, point data.source at a local JSONL/CSV/Parquet file, a save_to_disk folder or a "
            "hub-style folder of shards"
        ) from None
    if first is None:
        return
    yield f"{label} row 0", first
    for i, row in enumerate(rows, 1):
        yield f"{label} row {i}", row


def _disk_rows(cfg: DataConfig, name: str, config: str | None) -> Iterator[tuple[str, dict]]:
    import datasets

    root = Path(cfg.source).expanduser()
    path = root / config if config and (root / config).is_dir() else root
    if config and path == root and not _is_saved(root):
        raise LorasumError(f"{root}: no sub-folder {config!r} for the configured subset")
    ds = datasets.load_from_disk(str(path))
    if isinstance(ds, datasets.DatasetDict):
        if name not in ds:
            raise LorasumError(f"{path}: no split {name!r} (it has {', '.join(ds)}); set data.splits")
        ds = ds[name]
    elif _is_saved(path) and not (path / "dataset_dict.json").is_file():
        split_col = cfg.split_field if cfg.split_field in ds.column_names else None
        if split_col is None and name != cfg.splits["train"] and len(set(cfg.splits.values())) > 1:
            raise LorasumError(f"{path}: a single saved Dataset has no split {name!r}; save a DatasetDict "
                               f"or add a {cfg.split_field!r} column")
        if split_col:
            ds = ds.filter(lambda v: v == name, input_columns=split_col)
    for i, row in enumerate(ds):
        yield f"{path} row {i}", row


def shard_files(root: Path, name: str, config: str | None) -> list[Path]:
    """Shards of split ``name`` below ``root`` (or ``root/config``), in name order."""
    base = root / config if config and (root / config).is_dir() else root
    if config and base == root:
        raise LorasumError(f"{root}: no sub-folder {config!r} for the configured subset")
    pattern = re.compile(rf"{re.escape(name)}(-\d+-of-\d+|-\d+)?")
    found = []
    for p in sorted(base.rglob("*")):
        if not p.is_file() or _ext(p) is None:
            continue
        rel = p.relative_to(base).parts
        if pattern.fullmatch(_bare_name(p)) or name in rel[:-1]:
            found.append(p)
    return found


def _ext(p: Path) -> str | None:
    name = p.name[:-3] if p.name.endswith(".gz") else p.name
    return _SHARD_EXT.get(Path(name).suffix.lower())


def _shard_rows(cfg: DataConfig, name: str, config: str | None) -> Iterator[tuple[str, dict]]:
    from lorasum.data.sources import BadRows, _read_rows

    root = Path(cfg.source).expanduser()
    if not root.is_dir():
        raise LorasumError(
            f"data source not found: {cfg.source} (give a hub id, a local file, a save_to_disk folder or a "
            "folder of per-split shards)")
    files = shard_files(root, name, config)
    if not files:
        raise LorasumError(f"{root}: no files for split {name!r} (expected e.g. data/{name}-00000-of-00001.parquet "
                           f"or {name}/*.jsonl)")
    bad = BadRows(cfg.skip_bad_rows)
    for path in files:
        fmt = cfg.format if cfg.format != "auto" else _ext(path)
        if fmt == "parquet":
            yield from parquet_rows(path)
        else:
            yield from _read_rows(path, fmt, bad)


def parquet_rows(path: Path, columns: list[str] | None = None) -> Iterator[tuple[str, dict]]:
    """Rows of a Parquet file, one row group in memory at a time."""
    import pyarrow.parquet as pq

    try:
        f = pq.ParquetFile(path)
    except Exception as err:  # not Parquet, truncated footer, ...
        raise LorasumError(f"{path}: not a readable Parquet file ({err})") from None
    i = 0
    for g in range(f.num_row_groups):
        for row in f.read_row_group(g, columns=columns).to_pylist():
            yield f"{path}: row {i}", row
            i += 1


def flatten_text(value):
    """An article given as sections (XWikis: list of {title, content}) or paragraphs, as one string."""
    if isinstance(value, dict):
        value = value.get("content", value.get("text", list(value.values())))
    if isinstance(value, (list, tuple)):
        parts = [flatten_text(v) for v in value]
        return "\n".join(p for p in parts if isinstance(p, str) and p.strip())
    return value
