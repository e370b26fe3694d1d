from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parent))

from fakes import SMALL_STUDY, fake_train_and_evaluate  # noqa: E402


@pytest.fixture(autouse=True)
def lorasum_cache(tmp_path_factory, monkeypatch):
    """Built-in models and file digests go to a temporary cache, never the user's."""
    path = tmp_path_factory.mktemp("lorasum-cache")
    monkeypatch.setenv("LORASUM_CACHE", str(path))
    return path


@pytest.fixture
def write_spec(tmp_path):
    def write(data: dict | None = None, name: str = "study.yaml") -> Path:
        path = tmp_path / name
        path.write_text(yaml.safe_dump(data if data is not None else SMALL_STUDY, sort_keys=False))
        return path

    return write


@pytest.fixture
def fake_runner():
    return fake_train_and_evaluate


@pytest.fixture
def local_data(tmp_path):
    """A tiny JSONL corpus so dry-run estimates can count training rows."""
    import json

    rows = []
    for lang in ("en", "fr", "ru"):
        for split, n in (("train", 100), ("validation", 5), ("test", 6)):
            rows += [{"id": f"{lang}-{split}-{i}", "lang": lang, "split": split, "text": "t", "summary": "s"}
                     for i in range(n)]
    path = tmp_path / "data.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path
