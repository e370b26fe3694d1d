"""Experiment tracking: the ``tracking`` field, MLflow (local file store) and W&B (offline) runs
that a crashed and resumed training run continues, and the final test ROUGE in each."""
import json
import sys

import pytest
import yaml

from interrupt import interrupted_at_step

from lorasum.cli import main
from lorasum.config import parse_run_config
from lorasum.errors import LorasumError


def test_tracking_field_shorthand_default_and_unknown_name():
    cfg = parse_run_config({"tracking": ["tensorboard", "mlflow"]})
    assert cfg.tracking.backends == ["tensorboard", "mlflow"]
    # the default is left out of the dump, so configs and study hashes made before it stay the same
    assert "tracking" not in parse_run_config({}).to_dict()
    assert parse_run_config({}).tracking.backends == ["tensorboard"]
    with pytest.raises(LorasumError) as err:
        parse_run_config({"tracking": ["tensorboard", "mlfow"]}, "run.yaml")
    msg = str(err.value)
    assert msg.startswith("run.yaml: tracking.backends: unknown tracker 'mlfow'") and "\n" not in msg
    assert "did you mean 'mlflow'?" in msg


def test_a_tracker_whose_package_is_missing_names_the_pip_command(tmp_path, tiny_mt5, tiny_run_config, monkeypatch,
                                                                  capsys):
    monkeypatch.setitem(sys.modules, "wandb", None)  # find_spec then reports it as not installed
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(tiny_run_config(tiny_mt5, "lora").to_dict()), encoding="utf-8")
    assert main(["train", str(path), "tracking=[tensorboard, wandb]", "-o", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "wandb" in err and "pip install wandb" in err
    assert not (tmp_path / "run" / "checkpoints").exists()  # it failed before training


def _wandb_offline_files(root):
    return sorted(root.glob("wandb/offline-run-*"))


@pytest.mark.slow
def test_crash_and_resume_continue_the_same_mlflow_and_wandb_runs(tmp_path, tiny_mt5, tiny_run_config,
                                                                   monkeypatch):
    pytest.importorskip("mlflow")
    wandb = pytest.importorskip("wandb")
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 keeps file stores behind this switch
    for key, value in {"WANDB_MODE": "offline", "WANDB_DIR": str(tmp_path), "WANDB_SILENT": "true",
                       "WANDB_CONSOLE": "off"}.items():
        monkeypatch.setenv(key, value)
    store = (tmp_path / "mlruns").as_uri()
    cfg = tiny_run_config(tiny_mt5, "lora", data__train_examples=4, training__max_steps=6,
                          training__checkpoint_every=3,
                          tracking={"backends": ["tensorboard", "mlflow", "wandb"], "uri": store,
                                    "experiment": "tiny"})
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(cfg.to_dict()), encoding="utf-8")
    out = tmp_path / "run"

    sent = []  # (step, keys) of every W&B log call, across both processes
    real_log = wandb.Run.log

    def spy(self, data, step=None, **kw):
        sent.append((self.id, step, sorted(data)))
        return real_log(self, data, step=step, **kw)

    monkeypatch.setattr(wandb.Run, "log", spy)
    with interrupted_at_step(monkeypatch, 6):  # steps 4-6 are logged, their checkpoint never written
        assert main(["train", str(path), "-o", str(out)]) == 130
        ids = json.loads((out / "checkpoints" / "tracking.json").read_text())["ids"]
        client = MlflowClient(tracking_uri=store)
        assert client.get_run(ids["mlflow"]).info.status == "FAILED"
    assert main(["train", str(path), "-o", str(out)]) == 0
    assert json.loads((out / "checkpoints" / "tracking.json").read_text())["ids"] == ids

    # MLflow: one run, continued; every step once, in order; params and the test scores
    exp = client.get_experiment_by_name("tiny")
    runs = client.search_runs([exp.experiment_id])
    assert [r.info.run_id for r in runs] == [ids["mlflow"]]
    run = client.get_run(ids["mlflow"])
    assert run.info.status == "FINISHED"
    assert [m.step for m in client.get_metric_history(ids["mlflow"], "train/loss")] == [1, 2, 3, 4, 5, 6]
    assert run.data.params["training.lr"] == "0.01" and run.data.params["method.r"] == "4"
    metrics = json.loads((out / "metrics.json").read_text())
    rouge_l = client.get_metric_history(ids["mlflow"], "test/rougeL")
    assert [(m.step, m.value) for m in rouge_l] == [(6, metrics["rouge"]["overall"]["rougeL"]["mean"])]
    assert "test/ru/rougeL_ci_high" in run.data.metrics

    # W&B: both processes logged to the run id kept in the checkpoint folder, each step once, in order
    assert {run_id for run_id, _, _ in sent} == {ids["wandb"]}
    train_steps = [step for _, step, keys in sent if "train/loss" in keys]
    assert train_steps == [1, 2, 3, 4, 5, 6]
    assert [step for _, step, keys in sent if "test/rougeL" in keys] == [6]
    offline = _wandb_offline_files(tmp_path)
    assert len(offline) == 2 and all(p.name.endswith("-" + ids["wandb"]) for p in offline)
    assert all(any(p.glob("run-*.wandb")) for p in offline)


def test_trackers_change_neither_a_study_cell_hash_nor_what_a_run_folder_resumes(tmp_path):
    from lorasum.io import write_yaml
    from lorasum.run import _check_run_dir
    from lorasum.study.cells import config_hash

    plain = parse_run_config({"method": "lora", "data": {"source": str(tmp_path / "d.jsonl")}})
    tracked = parse_run_config({**plain.to_dict(), "tracking": ["tensorboard", "mlflow"]})
    assert config_hash(plain) == config_hash(tracked)
    run = tmp_path / "run"
    (run / "checkpoints" / "step-0000002").mkdir(parents=True)
    write_yaml(run / "config.yaml", plain.to_dict())
    _check_run_dir(tracked, run)  # a resume may add a tracker
    with pytest.raises(LorasumError, match="different config"):
        _check_run_dir(parse_run_config({**tracked.to_dict(), "training": {"lr": 1e-3}}), run)


def test_a_run_killed_before_its_first_checkpoint_logs_each_step_once(tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from lorasum.tracking import RunTracking

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    store = (tmp_path / "mlruns").as_uri()
    run = tmp_path / "run"
    killed = RunTracking(["tensorboard", "mlflow"], run, {"training": {"lr": 0.1}}, uri=store)
    killed.open(0)
    for step in (1, 2):
        killed.log({"train/loss": 1.0 / step}, step)
    killed.flush()  # what a killed process leaves: its events on disk, its trackers never closed
    again = RunTracking(["tensorboard", "mlflow"], run, {"training": {"lr": 0.1}}, uri=store)
    again.open(0)  # no checkpoint: training starts over
    for step in (1, 2, 3):
        again.log({"train/loss": 1.0 / step}, step)
    again.log_test({"test/rougeL": 12.5}, 3)
    again.close()
    events = EventAccumulator(str(run / "logs"))
    events.Reload()
    assert [e.step for e in events.Scalars("train/loss")] == [1, 2, 3]
    assert [(e.step, e.value) for e in events.Scalars("test/rougeL")] == [(3, 12.5)]
    client = MlflowClient(tracking_uri=store)
    run_id = killed.state["ids"]["mlflow"]
    assert again.state["ids"]["mlflow"] == run_id
    assert [m.step for m in client.get_metric_history(run_id, "train/loss")] == [1, 2, 3]
    assert client.get_run(run_id).data.params["training.lr"] == "0.1"
