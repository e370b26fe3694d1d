"""Surviving faults: preemption signals, numerical blow-ups and failed writes.

Three small components, each hooked into the run by one call:

* :class:`SignalGuard` turns SIGTERM / SIGINT into a flag. Long loops poll it at safe
  points (:func:`stop_requested`, :func:`check_stop`): the training loop after an
  optimizer step saves a checkpoint and raises :class:`Preempted`; generation and the
  study runner stop between batches / cells. A second SIGINT interrupts at once.
* :class:`FiniteWatch` notices a NaN / inf loss or an exploding gradient norm without a
  host sync per step: the first bad step is kept on the device (``torch.where``) and read
  at logging and checkpoint steps, before anything is written.
* :func:`guarded_checkpoint_write` and :func:`check_output_space` make a full disk a
  one-line error that names the path and what was kept.

Exit statuses of the ``lorasum`` command (also in the README):
``0`` done, ``2`` bad input, ``3`` training diverged (:class:`NumericalFault`),
``74`` a write failed (disk full, file too large), ``75`` stopped by a signal, resumable
(``EX_TEMPFAIL``), ``130`` interrupted twice (no checkpoint was saved).

PyTorch, accelerate and transformers have no equivalent of these (the HF Trainer's own
signal handling is not usable from a plain loop), so they are written here.
"""
from __future__ import annotations

import errno
import functools
import math
import os
import shutil
import signal
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

import torch

from lorasum.errors import LorasumError

EXIT_INPUT = 2
EXIT_DIVERGED = 3
EXIT_WRITE_FAILED = 74  # EX_IOERR
EXIT_PREEMPTED = 75  # EX_TEMPFAIL: try again later, the run resumes
EXIT_INTERRUPTED = 130

_GUARD: "SignalGuard | None" = None


class Preempted(KeyboardInterrupt):
    """The run stopped at a safe point after SIGTERM / SIGINT; running it again resumes.

    A ``KeyboardInterrupt`` so that code catching ``Exception`` (a study recording a
    failed cell) lets it through, as it would a Ctrl-C.
    """

    def __init__(self, signum: int, where: str, saved: str | None = None):
        self.signum, self.where, self.saved = signum, where, saved
        name = signal.Signals(signum).name if signum in signal.Signals._value2member_map_ else str(signum)
        kept = f"; checkpoint saved in {saved}" if saved else ""
        super().__init__(f"stopped by {name} during {where}{kept}")


class NumericalFault(LorasumError):
    """Training produced a non-finite loss or an exploding gradient norm."""

    def __init__(self, step: int, what: str, value: float, kept: str | None):
        self.step, self.what, self.value, self.kept = step, what, value, kept
        resume = f"last good checkpoint: {kept}" if kept else "no checkpoint was saved before it"
        super().__init__(
            f"training diverged at step {step}: {what} = {value:g} ({resume}). Likely causes: a learning rate "
            "too high (lower training.lr), fp16 with a T5-family model (use bf16 or fp32), or bad data; "
            "training.max_grad_norm_abort sets the gradient-norm limit")

    def to_dict(self) -> dict:
        return {"kind": "numerical", "step": self.step, "what": self.what,
                "value": self.value if math.isfinite(self.value) else str(self.value),
                "last_good_checkpoint": self.kept, "message": str(self)}


class WriteFailed(LorasumError):
    """A file could not be written (disk full, file size limit, I/O error)."""


# -- signals ---------------------------------------------------------------------------------

class SignalGuard:
    """While active, SIGTERM and SIGINT only set a flag that long loops poll.

    Re-entrant: a nested guard (a study running cells in-process) shares the outer one. A
    second SIGINT restores the default behaviour and raises ``KeyboardInterrupt`` at once.
    Outside the main thread it does nothing (Python delivers signals to the main thread).
    """

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self):
        self.signum: int | None = None
        self.received_at: float | None = None
        self._previous: dict[int, object] = {}
        self._installed = False

    def _handle(self, signum, frame) -> None:
        if self.signum is not None and signum == signal.SIGINT:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            raise KeyboardInterrupt
        self.signum = signum
        self.received_at = time.monotonic()

    def __enter__(self) -> "SignalGuard":
        global _GUARD
        if _GUARD is not None or threading.current_thread() is not threading.main_thread():
            return _GUARD or self
        for s in self.SIGNALS:
            self._previous[s] = signal.signal(s, self._handle)
        self._installed = True
        _GUARD = self
        return self

    def __exit__(self, *exc) -> None:
        global _GUARD
        if self._installed:
            for s, handler in self._previous.items():
                signal.signal(s, handler)
            self._installed = False
            _GUARD = None


def guard_active() -> bool:
    """Whether a :class:`SignalGuard` handles SIGTERM / SIGINT in this process."""
    return _GUARD is not None


def stop_requested() -> int | None:
    """The signal number received under the active guard, or None."""
    return _GUARD.signum if _GUARD is not None else None


def check_stop(where: str, saved: str | None = None) -> None:
    """Raise :class:`Preempted` when a stop was requested (call between batches or cells)."""
    signum = stop_requested()
    if signum is not None:
        raise Preempted(signum, where, saved)


def stop_after_step(step: int, save: Callable[[], Path | None]) -> None:
    """At the end of optimizer step ``step``: if a stop was requested, ``save()`` a checkpoint and stop."""
    if stop_requested() is not None:
        saved = save()
        check_stop(f"training (step {step})", str(saved) if saved else None)


# -- numerical faults ------------------------------------------------------------------------

class FiniteWatch:
    """Remembers, on the device, the first step with a non-finite loss or a too large gradient norm.

    ``observe`` only queues device operations; :meth:`check` reads one scalar back and is
    called where the loop syncs anyway (logging) and before every checkpoint, so no
    checkpoint is written after a bad step.
    """

    def __init__(self, device, max_grad_norm: float | None):
        self.limit = max_grad_norm
        self.first_bad = torch.full((), -1, dtype=torch.long, device=device)
        self.bad_loss = torch.zeros((), dtype=torch.float32, device=device)
        self.bad_norm = torch.zeros((), dtype=torch.float32, device=device)
        self.step_loss_ok = torch.ones((), dtype=torch.bool, device=device)
        self.step_loss = torch.zeros((), dtype=torch.float32, device=device)
        self.checked_step = -1

    def micro(self, loss: torch.Tensor) -> None:
        """A micro-batch's loss (any reduction); its finiteness joins the current step's."""
        loss = loss.detach().float()
        ok = torch.isfinite(loss)
        self.step_loss = torch.where(~ok & self.step_loss_ok, loss, self.step_loss)  # the first bad one
        self.step_loss_ok &= ok

    def step(self, step: int, grad_norm: torch.Tensor | None) -> None:
        """End of optimizer step ``step``; ``grad_norm`` is the norm before clipping, if known."""
        bad = ~self.step_loss_ok
        norm = torch.zeros((), dtype=torch.float32, device=self.first_bad.device)
        if grad_norm is not None:
            norm = grad_norm.detach().float().reshape(())
            bad = bad | ~torch.isfinite(norm)
            if self.limit is not None:
                bad = bad | (norm > self.limit)
        new = bad & (self.first_bad < 0)
        self.first_bad = torch.where(new, torch.full_like(self.first_bad, step), self.first_bad)
        self.bad_loss = torch.where(new, self.step_loss, self.bad_loss)
        self.bad_norm = torch.where(new, norm, self.bad_norm)
        self.step_loss_ok = torch.ones_like(self.step_loss_ok)
        self.step_loss = torch.zeros_like(self.step_loss)

    def check(self, step: int, ckpt_root: Path) -> None:
        """Raise :class:`NumericalFault` if any step so far was bad (one host read per step at most).

        The message names the latest checkpoint under ``ckpt_root``: the resume point.
        """
        if self.checked_step == step:
            return
        self.checked_step = step
        first = int(self.first_bad.item())
        if first < 0:
            return
        loss, norm = float(self.bad_loss.cpu()), float(self.bad_norm.cpu())
        if not math.isfinite(loss):
            what, value = "loss", loss
        elif not math.isfinite(norm):
            what, value = "gradient norm", norm
        else:
            what, value = f"gradient norm (limit {self.limit:g})", norm
        from lorasum.train import latest_checkpoint

        kept = latest_checkpoint(Path(ckpt_root))
        raise NumericalFault(first, what, value, str(kept) if kept else None)


def grad_norm(parameters, limit: float | None) -> torch.Tensor | None:
    """Total 2-norm of the gradients, on the device (no host sync); None when no ``limit`` is watched."""
    if limit is None:
        return None
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return None
    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g.detach().float()) for g in grads]))


def assert_finite_state(state: dict[str, torch.Tensor], where: Path) -> None:
    """Refuse to write weights holding NaN or inf (the last good checkpoint stays the latest)."""
    for name, t in state.items():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise LorasumError(f"{where}: not written, weight {name} holds NaN/inf "
                               "(training diverged; lower training.lr)")


def save_tensors(obj, path: Path) -> None:
    """``torch.save(obj, path)``, except that a failed write raises the ``OSError`` (ENOSPC, EFBIG) naming ``path``.

    ``torch.save`` reports a failed write as a bare ``RuntimeError`` from its C++ writer;
    writing through a Python file keeps the operating system's error as its cause.
    """
    try:
        with open(path, "wb") as f:
            torch.save(obj, f)
    except RuntimeError as err:
        cause = err.__cause__ or err.__context__
        if isinstance(cause, OSError):
            raise OSError(cause.errno, cause.strerror, str(path)) from None
        raise
    except OSError as err:
        if err.filename is None:
            raise OSError(err.errno, err.strerror, str(path)) from None
        raise


def load_tensors(path: Path):
    """``torch.load(path, weights_only=True)``: tensors and plain values only, never arbitrary pickles.

    A file holding anything else (a crafted pickle, a checkpoint from another program) is
    refused with a one-line error naming it.
    """
    import pickle

    try:
        return torch.load(path, weights_only=True)
    except pickle.UnpicklingError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise LorasumError(f"{path}: refused to load, it holds more than tensors and plain values ({first}); "
                           "delete it if you did not write it") from None


def record_failure(run_dir: Path, err: BaseException) -> None:
    """Write ``failure.json`` in the run folder (atomically) describing why the run stopped."""
    from lorasum.io import write_json

    info = err.to_dict() if hasattr(err, "to_dict") else {"kind": type(err).__name__, "message": str(err)}
    info["time"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    write_json(Path(run_dir) / "failure.json", info)


class failures_recorded:
    """``with failures_recorded(run_dir):`` writes ``failure.json`` when a :class:`NumericalFault` escapes.

    Training that ends normally removes a ``failure.json`` left by an earlier attempt.
    """

    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc is not None and isinstance(exc, NumericalFault):
            record_failure(self.run_dir, exc)
        elif exc is None:  # a rerun that got through: the old failure no longer describes the run
            (self.run_dir / "failure.json").unlink(missing_ok=True)
        return False


# -- writes ----------------------------------------------------------------------------------

_DISK_ERRNOS = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EIO}


def describe_os_error(err: OSError) -> tuple[int, str]:
    """(exit status, one line) for an ``OSError`` that reached the command line."""
    where = err.filename or "a file"
    reason = err.strerror or str(err)
    if err.errno in _DISK_ERRNOS:
        return EXIT_WRITE_FAILED, f"{where}: write failed ({reason}); free space or raise the limit and run again"
    return EXIT_INPUT, f"{where}: {reason}"


def guarded_checkpoint_write(save):
    """Decorate ``Trainer.save_checkpoint``: a failed write leaves no partial checkpoint behind.

    The checkpoint is written to ``.tmp-step-*`` and renamed, so a failure never makes a
    corrupt folder the latest; this removes the partial folder and raises
    :class:`WriteFailed` naming the path and the checkpoint kept as the resume point.
    """

    @functools.wraps(save)
    def wrapper(self, *args, **kwargs):
        root = Path(self.ckpt_root)
        try:
            return save(self, *args, **kwargs)
        except OSError as err:
            for tmp in root.glob(".tmp-step-*"):
                shutil.rmtree(tmp, ignore_errors=True)
            from lorasum.train import latest_checkpoint

            kept = latest_checkpoint(root)
            raise WriteFailed(
                f"{err.filename or root}: checkpoint not written ({err.strerror or err}); "
                f"kept {kept if kept else 'no earlier checkpoint'}; free space and run again to resume"
            ) from None

    return wrapper


def check_output_space(run_dir: Path, model: torch.nn.Module, keep_checkpoints: int, optimizer: str) -> int:
    """Fail before training when ``run_dir`` is not writable or clearly too small; returns the bytes needed.

    The need is rough: checkpoints kept plus the one being written (trainable weights and
    the optimizer state: two moments for AdamW, about one for Adafactor) and the final
    artifact (the adapter, or the whole model for full fine-tuning).
    """
    run_dir = Path(run_dir)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-probe.", dir=run_dir)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise LorasumError(f"{run_dir}: output folder is not writable ({err.strerror or err}); "
                           "choose another with -o") from None
    params = list(model.parameters())
    trainable = sum(p.numel() * p.element_size() for p in params if p.requires_grad)
    moments = 2 if optimizer == "adamw" else 1
    need = trainable * (1 + moments) * (keep_checkpoints + 1) + trainable  # + the artifact
    free = shutil.disk_usage(run_dir).free
    if free < need:
        raise WriteFailed(f"{run_dir}: about {_size(need)} needed for checkpoints and the trained weights, "
                          f"{_size(free)} free; free space or choose another folder with -o")
    return need


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"
