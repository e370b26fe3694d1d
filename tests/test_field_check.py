"""A misnamed text/summary field is named with the fields the file has, not blamed on rows."""
import json

import pytest

from lorasum.config import DataConfig
from lorasum.data.sources import load_examples
from lorasum.errors import LorasumError

ROWS = [{"id": str(i), "lang": "en", "split": "train", "article": f"Text {i}.", "summary": "S."} for i in range(3)]


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_absent_text_field_lists_the_fields_the_file_has(tmp_path, fmt):
    path = tmp_path / f"d.{fmt}"
    if fmt == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in ROWS), encoding="utf-8")
    else:
        import pandas as pd

        frame = pd.DataFrame(ROWS)
        frame.to_csv(path, index=False) if fmt == "csv" else frame.to_parquet(path)
    with pytest.raises(LorasumError) as err:
        load_examples(DataConfig(source=str(path), languages=["en"], skip_bad_rows=True), "train", ["en"])
    msg = str(err.value)
    assert f"{path}: field 'text' not found" in msg and "--skip-bad-rows" not in msg and "\n" not in msg
    assert "it has 'article', 'id', 'lang', 'split', 'summary'" in msg
    got = load_examples(DataConfig(source=str(path), languages=["en"], text_field="article"), "train", ["en"])
    assert [e["text"] for e in got["en"]] == ["Text 0.", "Text 1.", "Text 2."]
