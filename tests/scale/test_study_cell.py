"""One decoder-only study cell through the study engine (tiny Llama, built offline)."""
import json

import pytest
import yaml

from lorasum.study import run_study
from lorasum.study.runner import cell_dir

pytestmark = pytest.mark.slow

SPEC = {
    "name": "decoder",
    "base": {
        "model": {"name": "lorasum:tiny-llama",
                  "prompt_template": "Summarize this {lang_name} article.\n{text}\nSummary:"},
        "data": {"source": "lorasum:demo", "validation_examples": 2, "test_examples": 3},
        "training": {"epochs": 1, "batch_size": 4, "lr": 1.0e-2, "max_source_length": 128, "max_target_length": 32,
                     "checkpoint_every": 4},
        "generation": {"num_beams": 1, "max_source_length": 128, "max_target_length": 8, "batch_size": 4},
    },
    "axes": {"method": ["lora"], "rank": [4], "targets": ["attention+ffn"], "seed": [0]},
    "scenarios": [{"regime": "low_data", "languages": ["ru"], "shots": [8]}],
}


def test_a_decoder_only_low_data_cell_runs_through_the_study_engine(tmp_path):
    spec = tmp_path / "decoder.yaml"
    spec.write_text(yaml.safe_dump(SPEC, sort_keys=False))
    out = run_study(spec, out_dir=tmp_path / "study", progress=False)
    assert len(out["ran"]) == 1 and not out["failed"], out
    run = cell_dir(tmp_path / "study", out["ran"][0])
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["run"]["family"] == "decoder" and metrics["run"]["train_examples"] == {"ru": 8}
    assert metrics["rouge"]["overall"]["n"] == 3 and out["ran"] == ["low_data/ru/lora-r4-attention+ffn/shots8/seed0"]
    adapter = json.loads((run / "adapter" / "adapter_config.json").read_text())
    assert "gate_proj" in adapter["target_modules"] and adapter["task_type"] == "CAUSAL_LM"
