from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parent))

from fakes import fake_train_and_evaluate  # noqa: E402


SMALL_STUDY = {
    "name": "small",
    "base": {"model": "google/mt5-small", "data": {"source": "data.jsonl"}, "training": {"epochs": 1, "batch_size": 4}},
    "per_method": {"full": {"training": {"lr": 5e-4, "optimizer": "adafactor"}}, "lora": {"training": {"lr": 1e-3}}},
    "axes": {"method": ["full", "lora"], "rank": [8], "targets": ["attention"], "seed": [0]},
    "scenarios": [
        {"regime": "low_data", "languages": ["en", "fr"], "shots": [16, 64], "axes": {"seed": [0, 1]}},
        {"regime": "zero_shot", "source_langs": ["en"], "target_langs": ["fr", "ru"]},
        {"regime": "few_shot", "after": "zero_shot", "shots": [16]},
        {"regime": "multi_source", "source_langs": ["en", "fr"], "target_langs": ["ru"]},
        {"name": "rank_ablation", "regime": "low_data", "languages": ["en"], "shots": [64],
         "axes": {"method": ["lora"], "rank": [4, 16]}},
    ],
}


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


@pytest.fixture(autouse=True)
def _nltk_data(monkeypatch):
    shared = Path("/work/shared/data/nltk_data")
    if shared.is_dir():
        monkeypatch.setenv("NLTK_DATA", str(shared))


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
