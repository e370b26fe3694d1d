"""Fingerprints of what a cell reads: the model's weights and the data's content.

A cell's config hash must change when its inputs change even though the config does
not: new bytes in a local data file or model folder, a hub model or dataset whose
``main`` moved to another commit. So the hash takes

- local files and folders: a SHA-256 of every file's bytes. Hashing gigabytes on every
  ``study run`` would be slow, so each file's digest is remembered by (path, size,
  mtime_ns) in ``fingerprints.json`` under the lorasum cache (``$LORASUM_CACHE``); a
  changed file gets a new size or mtime and is hashed again;
- hub models and datasets: the commit the revision resolves to, read from the local
  Hugging Face cache when the repository is there, else asked of the hub (unless
  offline), else the revision as written;
- built-in tiny models: their name (they are built deterministically from code);
  ``lorasum:demo`` is a local file like any other.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from functools import lru_cache
from pathlib import Path

from lorasum.builtins import DEMO_DATA, cache_root, is_builtin, resolve_data_source
from lorasum.io import write_json

log = logging.getLogger(__name__)

_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_CHUNK = 1 << 20


class _DigestCache:
    """File digests keyed by (path, size, mtime_ns), kept in a JSON file between runs."""

    def __init__(self) -> None:
        self.path: Path | None = None
        self.entries: dict[str, str] = {}

    def _load(self) -> None:
        path = cache_root() / "fingerprints.json"
        if path != self.path:
            self.path = path
            try:
                self.entries = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                self.entries = {}

    def digest(self, file: Path) -> str:
        self._load()
        st = file.stat()
        key = f"{file.resolve()}|{st.st_size}|{st.st_mtime_ns}"
        if key not in self.entries:
            h = hashlib.sha256()
            with open(file, "rb") as f:
                while chunk := f.read(_CHUNK):
                    h.update(chunk)
            self.entries[key] = h.hexdigest()
            try:
                write_json(self.path, self.entries)
            except OSError as err:  # a read-only cache only costs hashing again next time
                log.debug("could not write %s: %s", self.path, err)
        return self.entries[key]


_DIGESTS = _DigestCache()


def content_fingerprint(path: str | Path) -> str:
    """SHA-256 over a file's bytes, or over a folder's files (names and bytes, hidden files skipped)."""
    p = Path(path).expanduser()
    if p.is_file():
        return _DIGESTS.digest(p)
    h = hashlib.sha256()
    for f in sorted(x for x in p.rglob("*") if x.is_file()):
        rel = f.relative_to(p)
        if any(part.startswith(".") for part in rel.parts):
            continue
        h.update(str(rel).encode("utf-8") + b"\0" + _DIGESTS.digest(f).encode() + b"\0")
    return h.hexdigest()


def _offline() -> bool:
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        return True
    try:
        from huggingface_hub import constants

        return bool(constants.HF_HUB_OFFLINE)
    except ImportError:
        return True


@lru_cache(maxsize=64)
def hub_commit(repo_id: str, revision: str | None, repo_type: str = "model") -> str:
    """The commit ``revision`` of a hub repository resolves to, or ``unresolved:<revision>``."""
    rev = revision or "main"
    if _COMMIT.match(rev):
        return rev
    try:
        from huggingface_hub import constants
        from huggingface_hub.file_download import repo_folder_name

        ref = Path(constants.HF_HUB_CACHE) / repo_folder_name(repo_id=repo_id, repo_type=repo_type) / "refs" / rev
        commit = ref.read_text(encoding="utf-8").strip()
        if _COMMIT.match(commit):
            return commit
    except (ImportError, OSError):
        pass
    if not _offline():
        try:
            from huggingface_hub import HfApi

            api = HfApi()
            info = (api.dataset_info if repo_type == "dataset" else api.model_info)(repo_id, revision=rev, timeout=10)
            if info.sha:
                return info.sha
        except Exception as err:  # no network, no such repo: the revision as written stands in
            log.debug("could not resolve %s@%s: %s", repo_id, rev, err)
    return f"unresolved:{rev}"


def model_fingerprint(name: str, revision: str | None) -> str:
    """What identifies a model's weights: built-in name, folder content, or hub commit."""
    if is_builtin(name):
        return name
    p = Path(name).expanduser()
    if p.exists():
        return "content:" + content_fingerprint(p)
    return "commit:" + hub_commit(name, revision)


def data_fingerprint(source: str, is_hub: bool) -> str:
    """What identifies a data source's content: file/folder bytes, or hub commit."""
    if is_hub:
        return "commit:" + hub_commit(source, None, repo_type="dataset")
    path = Path(resolve_data_source(source) if source == DEMO_DATA else source).expanduser()
    if path.exists():
        return "content:" + content_fingerprint(path)
    return f"missing:{source}"  # cannot run yet; the fingerprint changes once it exists
