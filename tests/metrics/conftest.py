"""Shared data for metrics tests: ``../shared/data`` beside the repository, when present."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "data"
NLTK_DATA = SHARED / "nltk_data"
XLSUM_SAMPLE = SHARED / "xlsum_sample.jsonl"

if NLTK_DATA.is_dir():
    # The Snowball stemmers need NLTK's stopwords corpus (ignore_stopwords=True).
    os.environ["NLTK_DATA"] = str(NLTK_DATA)
    import nltk

    if str(NLTK_DATA) not in nltk.data.path:
        nltk.data.path.insert(0, str(NLTK_DATA))


@pytest.fixture(scope="session")
def xlsum_rows() -> list[dict]:
    import json

    if not XLSUM_SAMPLE.is_file():
        pytest.skip(f"real data not found at {XLSUM_SAMPLE}")
    with open(XLSUM_SAMPLE, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
