"""``lorasum study run SPEC key=value ...``: overrides reach the cells and are recorded."""
import json

import pytest
import yaml

from lorasum.cli import main
from lorasum.errors import LorasumError
from lorasum.study import run_study

CELLS = ["low_data/en/*/shots16/*"]


def test_overrides_change_the_cells_configs_and_are_recorded(write_spec, tmp_path, fake_runner):
    path, out = write_spec(), tmp_path / "s"
    overrides = ["base.training.epochs=2", "per_method.lora.training.lr=3e-3", "scenarios.0.axes.seed=[0,2]"]
    result = run_study(path, out_dir=out, runner=fake_runner, progress=False, cells=CELLS, overrides=overrides)
    assert sorted(result["ran"]) == ["low_data/en/full/shots16/seed0", "low_data/en/full/shots16/seed2",
                                     "low_data/en/lora-r8-attention/shots16/seed0",
                                     "low_data/en/lora-r8-attention/shots16/seed2"]
    lora = yaml.safe_load((out / "runs" / "low_data/en/lora-r8-attention/shots16/seed2" / "config.yaml").read_text())
    full = yaml.safe_load((out / "runs" / "low_data/en/full/shots16/seed0" / "config.yaml").read_text())
    assert lora["training"]["epochs"] == full["training"]["epochs"] == 2
    assert lora["training"]["lr"] == 3e-3 and full["training"]["lr"] == 5e-4
    # the study folder keeps the spec as run and the overrides that made it
    stored = yaml.safe_load((out / "study.yaml").read_text())
    assert stored["base"]["training"]["epochs"] == 2 and stored["scenarios"][0]["axes"]["seed"] == [0, 2]
    assert json.loads((out / "study.json").read_text())["overrides"] == overrides
    # the same spec without them gives other configs: the cells show as changed, not reused
    with pytest.raises(LorasumError, match=r"different config .*they ran with the overrides base.training.epochs=2"):
        run_study(path, out_dir=out, runner=fake_runner, progress=False, cells=CELLS)
    again = run_study(path, out_dir=out, runner=fake_runner, progress=False, cells=CELLS, overrides=overrides)
    assert not again["ran"] and len(again["skipped"]) == 4


def test_study_run_cli_takes_overrides_and_a_bad_key_is_one_line_with_a_suggestion(write_spec, tmp_path, capsys):
    path = write_spec()
    assert main(["study", "run", str(path), "axes.seed=[0,1,2]", "scenarios.0.axes={}", "-o", str(tmp_path / "s"),
                 "--dry-run", "--cells", "low_data/en/full/shots16/*"]) == 0
    assert "low_data/en/full/shots16/seed2" in capsys.readouterr().out
    for bad, hint in [("base.training.lrr=3e-4", "did you mean training.lr?"), ("axes.sed=[0]", "did you mean axes.seed?"),
                      ("scenarios.9.shots=[16]", "scenarios is a list of 5")]:
        assert main(["study", "run", str(path), bad, "-o", str(tmp_path / "s"), "--dry-run"]) == 2, bad
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and hint in err, err
