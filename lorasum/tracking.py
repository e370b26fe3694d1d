"""Experiment tracking: training curves and the final test ROUGE go to TensorBoard, MLflow and W&B.

A run's ``tracking`` section names the trackers (default ``[tensorboard]``). Each one is a
small :class:`Tracker` over its own library (``torch.utils.tensorboard``, MLflow's
``MlflowClient``, ``wandb``); :class:`RunTracking` fans one run's logging out to them and
keeps what a resume needs in ``checkpoints/tracking.json``: the tracked run ids (MLflow's
run id, W&B's run id), so a resumed run continues the same tracked run, and the last step
logged of each scalar.

After a crash the trainer replays the steps since its last checkpoint. TensorBoard drops
the events it wrote after that checkpoint (``purge_step``) and takes the replayed steps
again; MLflow and W&B cannot drop logged points, so steps they were already sent are not
sent twice (the replay computes the same values). No tracking library does this for a
loop it does not own, hence this module.
"""
from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

from lorasum.errors import LorasumError
from lorasum.io import read_json, write_json

log = logging.getLogger(__name__)

TRACKERS = ("tensorboard", "mlflow", "wandb")
# the package each tracker imports, and what installs it
PACKAGES = {"tensorboard": ("tensorboard", "tensorboard"), "mlflow": ("mlflow", "mlflow-skinny"),
            "wandb": ("wandb", "wandb")}
STATE_FILE = "tracking.json"
DEFAULT_EXPERIMENT = "lorasum"


def check_installed(names: list[str]) -> None:
    """Raise a one-line error naming the package and pip command for a tracker that is not installed."""
    for name in names:
        module, package = PACKAGES[name]
        if importlib.util.find_spec(module) is None:
            raise LorasumError(f"tracking: {name} needs the {module} package, which is not installed; "
                               f"run: pip install {package}  (or pip install 'lorasum[tracking]')")


def flat_params(config: dict, prefix: str = "") -> dict[str, str]:
    """A nested config as ``section.field -> text`` pairs, the shape trackers' parameter tables take."""
    out: dict[str, str] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flat_params(value, name + "."))
        else:
            out[name] = str(value)
    return out


def test_metrics(rouge: dict) -> dict[str, float]:
    """Test ROUGE as tracker scalars: ``test/rougeL`` (macro over languages) with its 95% CI
    bounds (``test/rougeL_ci_low``/``_ci_high``), and the same per language (``test/en/rougeL``)."""
    out: dict[str, float] = {}
    groups = [("test", rouge.get("overall") or {})]
    groups += [(f"test/{lang}", scores) for lang, scores in sorted((rouge.get("per_lang") or {}).items())]
    for prefix, scores in groups:
        for measure in ("rouge1", "rouge2", "rougeL"):
            s = scores.get(measure)
            if not isinstance(s, dict):
                continue
            out[f"{prefix}/{measure}"] = float(s["mean"])
            low, high = s.get("mean_ci") or (None, None)
            if low is not None:
                out[f"{prefix}/{measure}_ci_low"] = float(low)
                out[f"{prefix}/{measure}_ci_high"] = float(high)
    return out


class Tracker(ABC):
    """One tracking backend, opened once per process that trains (a resume opens it again)."""

    name: str = ""

    @abstractmethod
    def start(self, config: dict, resume_id: str | None) -> str | None:
        """Open the tracked run, continuing ``resume_id`` when given; returns the run's id (None: no ids)."""

    @abstractmethod
    def log_params(self, config: dict) -> None:
        """Record the run config (once, when the tracked run is new)."""

    @abstractmethod
    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        """Record scalars at a training step."""

    def log_test(self, metrics: dict[str, float], step: int) -> None:
        """Record the final test scores at the last training step."""
        self.log_metrics(metrics, step)

    @abstractmethod
    def finish(self, failed: bool = False) -> None:
        """Close the tracked run, marked failed when the run raised."""


class TensorBoardTracker(Tracker):
    """Event files under ``<run>/logs``; a resume purges the events after its checkpoint's step."""

    name = "tensorboard"

    def __init__(self, log_dir: Path, purge_step: int | None):
        self.log_dir, self.purge_step = Path(log_dir), purge_step
        self.writer = None

    def start(self, config: dict, resume_id: str | None) -> None:
        from torch.utils.tensorboard import SummaryWriter

        earlier = any(self.log_dir.glob("events.out.tfevents*"))
        self.writer = SummaryWriter(str(self.log_dir), purge_step=self.purge_step if earlier else None)
        return None

    def log_params(self, config: dict) -> None:
        """Nothing: the config is the run folder's ``config.yaml``, beside the event files."""

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        for key, value in metrics.items():
            self.writer.add_scalar(key, value, step)

    def log_test(self, metrics: dict[str, float], step: int) -> None:
        self.log_metrics(metrics, step)
        self.writer.flush()

    def finish(self, failed: bool = False) -> None:
        # a failed run's writer is left to the process's exit: flushing it could write into the
        # full disk or over the file size limit that stopped the run
        if self.writer is not None and not failed:
            self.writer.close()


class MlflowTracker(Tracker):
    """An MLflow run through ``MlflowClient`` (no process-wide active run, so study cells in one
    process do not share one). The store is ``uri``, else ``$MLFLOW_TRACKING_URI``, else MLflow's default."""

    name = "mlflow"

    def __init__(self, uri: str | None, experiment: str | None, run_name: str):
        self.uri, self.client = uri, None
        self.experiment = experiment or os.environ.get("MLFLOW_EXPERIMENT_NAME") or DEFAULT_EXPERIMENT
        self.run_name = run_name
        self.run_id: str | None = None

    def start(self, config: dict, resume_id: str | None) -> str:
        from mlflow.tracking import MlflowClient

        try:
            self.client = MlflowClient(tracking_uri=self.uri)
            if resume_id:
                self.client.get_run(resume_id)
                self.client.update_run(resume_id, status="RUNNING")
                self.run_id = resume_id
            else:
                exp = self.client.get_experiment_by_name(self.experiment)
                exp_id = exp.experiment_id if exp else self.client.create_experiment(self.experiment)
                self.run_id = self.client.create_run(exp_id, run_name=self.run_name).info.run_id
        except Exception as err:  # MlflowException, or ImportError for a store whose driver is missing
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            what = f"cannot continue run {resume_id}" if resume_id else "cannot start a run"
            where = self.uri or os.environ.get("MLFLOW_TRACKING_URI") or "its default store"
            raise LorasumError(f"tracking: MLflow {what} at {where}: {first} "
                               "(set tracking.uri or MLFLOW_TRACKING_URI)") from None
        return self.run_id

    def log_params(self, config: dict) -> None:
        from mlflow.entities import Param

        params = [Param(k, v[:6000]) for k, v in flat_params(config).items()]
        for i in range(0, len(params), 100):  # MLflow takes at most 100 parameters per batch
            self.client.log_batch(self.run_id, params=params[i:i + 100])

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(k, float(v), now, step) for k, v in metrics.items()])

    def finish(self, failed: bool = False) -> None:
        if self.run_id is not None:
            self.client.set_terminated(self.run_id, "FAILED" if failed else "FINISHED")


class WandbTracker(Tracker):
    """A Weights & Biases run; a resume continues it with ``wandb.init(id=..., resume="allow")``.

    Its files go under ``<run>/wandb`` unless ``$WANDB_DIR`` is set; ``WANDB_MODE=offline``
    works as usual (``wandb sync`` uploads later).
    """

    name = "wandb"

    def __init__(self, project: str | None, run_name: str, run_dir: Path):
        self.project = project or os.environ.get("WANDB_PROJECT") or DEFAULT_EXPERIMENT
        self.run_name, self.run_dir = run_name, Path(run_dir)
        self.run = None

    def start(self, config: dict, resume_id: str | None) -> str:
        import wandb

        where = None if os.environ.get("WANDB_DIR") else str(self.run_dir)
        try:
            self.run = wandb.init(project=self.project, name=self.run_name, id=resume_id, dir=where,
                                  resume="allow" if resume_id else None, reinit="create_new")
        except wandb.Error as err:
            raise LorasumError(f"tracking: W&B cannot start a run ({err}); log in with `wandb login` "
                               "or set WANDB_MODE=offline") from None
        return self.run.id

    def log_params(self, config: dict) -> None:
        self.run.config.update(config, allow_val_change=True)

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        self.run.log(dict(metrics), step=step)

    def log_test(self, metrics: dict[str, float], step: int) -> None:
        self.run.log(dict(metrics), step=step)
        self.run.summary.update(metrics)

    def finish(self, failed: bool = False) -> None:
        if self.run is not None:
            self.run.finish(exit_code=1 if failed else 0)


class RunTracking:
    """One run's trackers: opened by the trainer (or, for a run resumed after training, before
    the test scores are logged), closed once the test scores are in.

    ``checkpoints/tracking.json`` holds ``{"ids": {tracker: run id}, "logged_through": {scalar:
    step}}`` and is written as soon as a tracked run exists, so a run killed before its first
    checkpoint still continues the same tracked run.
    """

    def __init__(self, names: list[str], run_dir: Path, config: dict, *, uri: str | None = None,
                 experiment: str | None = None):
        check_installed(names)
        self.names, self.run_dir, self.config = list(names), Path(run_dir), config
        self.uri, self.experiment = uri, experiment
        self.state_path = self.run_dir / "checkpoints" / STATE_FILE
        self.trackers: list[Tracker] = []
        self.opened = False
        self.state: dict[str, Any] = {"ids": {}, "logged_through": {}}
        self.sent_before: dict[str, int] = {}  # what an earlier process sent, fixed when opened

    @classmethod
    def from_config(cls, config, run_dir: Path) -> "RunTracking":
        """The trackers a :class:`~lorasum.config.RunConfig`'s ``tracking`` section asks for."""
        t = config.tracking
        return cls(t.backends, run_dir, config.to_dict(), uri=t.uri, experiment=t.experiment)

    def _build(self, name: str, purge_step: int | None) -> Tracker:
        run_name = self.run_dir.resolve().name
        if name == "tensorboard":
            return TensorBoardTracker(self.run_dir / "logs", purge_step)
        if name == "mlflow":
            return MlflowTracker(self.uri, self.experiment, run_name)
        return WandbTracker(self.experiment, run_name, self.run_dir)

    def open(self, resume_step: int) -> None:
        """Start every tracker; ``resume_step`` is the step training continues after (0: the start).

        TensorBoard events at later steps, left by an interrupted process, are purged.
        """
        if self.opened:
            return
        if self.state_path.exists():
            self.state = {"ids": {}, "logged_through": {}, **read_json(self.state_path)}
        self.sent_before = dict(self.state["logged_through"])
        for name in self.names:
            # at the start (0) everything an earlier attempt logged goes
            tracker = self._build(name, resume_step + 1 if resume_step else 0)
            resume_id = self.state["ids"].get(name)
            run_id = tracker.start(self.config, resume_id)
            self.trackers.append(tracker)
            if run_id is not None and resume_id is None:
                tracker.log_params(self.config)
                self.state["ids"][name] = run_id
                self._save()
        self.opened = True

    def _save(self) -> None:
        write_json(self.state_path, self.state)

    def log(self, metrics: dict[str, float], step: int) -> None:
        """Training scalars at ``step``; trackers that cannot drop points skip steps they already have."""
        fresh = {k: v for k, v in metrics.items() if step > self.sent_before.get(k, -1)}
        for tracker in self.trackers:
            sent = metrics if tracker.name == "tensorboard" else fresh
            if sent:
                tracker.log_metrics(sent, step)
        if fresh and any(t.name != "tensorboard" for t in self.trackers):
            self.state["logged_through"].update(dict.fromkeys(fresh, step))
            self._save()

    def log_test(self, metrics: dict[str, float], step: int) -> None:
        """The final test scores, at the last training step."""
        for tracker in self.trackers:
            tracker.log_test(metrics, step)

    def flush(self) -> None:
        for tracker in self.trackers:
            if isinstance(tracker, TensorBoardTracker) and tracker.writer is not None:
                tracker.writer.flush()

    def close(self, failed: bool = False) -> None:
        """Finish every tracked run; a failed one stays resumable."""
        for tracker in self.trackers:
            try:
                tracker.finish(failed)
            except Exception as err:  # closing one tracker must not hide the run's own error
                log.warning("tracking: closing %s failed: %s", tracker.name, err)
        self.trackers, self.opened = [], False


@contextlib.contextmanager
def closed_on_error(tracking: RunTracking | None):
    """Within the block, an exception (an interruption included) closes ``tracking``'s runs as failed."""
    try:
        yield
    except BaseException:
        if tracking is not None:
            tracking.close(failed=True)
        raise
