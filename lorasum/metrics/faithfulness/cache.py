"""On-disk cache of NLI scores, shared by every process of a sharded study.

One SQLite file; a row per (scorer key, article hash, summary hash), where the scorer key
names the model id, its revision or weights fingerprint and every setting that changes
a score (:meth:`NLIScorer.key`). SQLite in WAL mode lets readers run beside one writer,
and a busy timeout makes concurrent writers wait their turn instead of failing; each
write is one short transaction, so a killed process loses at most its last batch.
Texts are stored as SHA-256 digests only.
"""
from __future__ import annotations

import hashlib
import os
import sqlite3
import tempfile
from pathlib import Path

_SCHEMA = """CREATE TABLE IF NOT EXISTS nli (
    scorer TEXT NOT NULL, article TEXT NOT NULL, summary TEXT NOT NULL,
    entailment REAL NOT NULL, chunks INTEGER NOT NULL, truncated INTEGER NOT NULL,
    PRIMARY KEY (scorer, article, summary)) WITHOUT ROWID"""
_BUSY_MS = 120_000
_QUERY_BATCH = 400  # host parameters per SELECT stay well below SQLite's limit


def text_hash(text: str) -> str:
    """SHA-256 hex digest of a text (UTF-8)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def default_cache_path() -> Path:
    """``$LORASUM_CACHE_DIR`` or ``$XDG_CACHE_HOME/lorasum`` (else ``~/.cache/lorasum``) / ``nli.sqlite``."""
    base = os.environ.get("LORASUM_CACHE_DIR")
    if not base:
        xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        base = os.path.join(xdg or tempfile.gettempdir(), "lorasum")
    return Path(base) / "nli.sqlite"


class ScoreCache:
    """NLI scores keyed by (scorer key, article hash, summary hash) in one SQLite file."""

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path else default_cache_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=_BUSY_MS / 1000, isolation_level=None)
        self._db.execute(f"PRAGMA busy_timeout = {_BUSY_MS}")
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA synchronous = NORMAL")
        self._db.execute(_SCHEMA)

    def get_many(self, scorer: str, keys: list[tuple[str, str]]) -> dict[tuple[str, str], tuple[float, int, bool]]:
        """``{(article hash, summary hash): (entailment, chunks, truncated)}`` for the keys already stored."""
        found: dict = {}
        wanted = list(dict.fromkeys(keys))
        for start in range(0, len(wanted), _QUERY_BATCH):
            part = wanted[start:start + _QUERY_BATCH]
            articles = sorted({a for a, _ in part})
            marks = ",".join("?" * len(articles))
            rows = self._db.execute(
                f"SELECT article, summary, entailment, chunks, truncated FROM nli WHERE scorer = ? "
                f"AND article IN ({marks})", (scorer, *articles)).fetchall()
            want = set(part)
            for a, s, e, c, t in rows:
                if (a, s) in want:
                    found[(a, s)] = (e, c, bool(t))
        return found

    def put_many(self, scorer: str, rows: list[tuple[str, str, float, int, bool]]) -> None:
        """Store ``(article hash, summary hash, entailment, chunks, truncated)`` rows in one transaction."""
        if not rows:
            return
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany("INSERT OR REPLACE INTO nli VALUES (?, ?, ?, ?, ?, ?)",
                                 [(scorer, a, s, float(e), int(c), int(bool(t))) for a, s, e, c, t in rows])

    def count(self, scorer: str | None = None) -> int:
        """Rows stored (for one scorer key when given)."""
        if scorer is None:
            return self._db.execute("SELECT COUNT(*) FROM nli").fetchone()[0]
        return self._db.execute("SELECT COUNT(*) FROM nli WHERE scorer = ?", (scorer,)).fetchone()[0]

    def close(self) -> None:
        self._db.close()
