"""Each study cell in its own forked process, so what one cell does stays in that cell.

A cell's memory peak, its ``accelerate`` state, the threads it leaves running, the
environment variables and torch settings it changes, and a crash (segfault, ``os._exit``,
the out-of-memory killer) end with its process; the study records the cell as failed
with the reason and goes on to the next one.

The study process imports torch, transformers, peft, accelerate and the pipeline once
(:func:`preload`) and forks one child per cell with :mod:`multiprocessing`'s ``fork``
context, so a cell starts in milliseconds instead of paying a fresh interpreter's imports.
Two things are done here by hand because nothing in multiprocessing does them:

- the child dies with the study process (Linux ``PR_SET_PDEATHSIG``), so a killed study
  never leaves an orphan cell running and holding its lock;
- the study process itself runs no tensor maths and keeps torch at one thread: OpenMP
  thread pools do not survive ``fork`` (a child of a process whose pool has started hangs
  in its first parallel operation), so every pool is started in a child, never before a
  fork. Likewise CUDA: only children initialise it (a fork after it is refused).
"""
from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import time
import traceback
from typing import Any, Callable

from lorasum.errors import LorasumError

# how long a cell may take to stop after Ctrl-C before it is killed
STOP_GRACE_SECONDS = 10.0
_PR_SET_PDEATHSIG = 1


class CellProcessError(LorasumError):
    """A cell failed in its own process: an exception there, or the process died."""


def preload(model_types: set[str] = frozenset(), test_langs: set[str] = frozenset()) -> None:
    """Import the pipeline once, in the study process, so no cell imports it again.

    Also what a cell would otherwise load lazily on every fork: the modelling and tokenizer
    modules of ``model_types``, TensorBoard's writer, the model card, and the ROUGE
    segmenters and stemmers of ``test_langs`` (pure Python, so safe before a fork).
    """
    import importlib

    import accelerate  # noqa: F401
    import peft  # noqa: F401
    import torch.utils.tensorboard  # noqa: F401
    import transformers  # noqa: F401

    import lorasum.card  # noqa: F401
    import lorasum.evaluate  # noqa: F401
    import lorasum.metrics  # noqa: F401
    import lorasum.run  # noqa: F401
    from lorasum.metrics.rouge import reference_name, warm_up

    for mt in sorted(model_types):
        for module in (f"transformers.models.{mt}.modeling_{mt}", f"transformers.models.{mt}.tokenization_{mt}"):
            try:
                importlib.import_module(module)
            except ImportError:
                pass
    warm_up([reference_name(lang) for lang in test_langs])


def single_threaded_parent() -> None:
    """No OpenMP pool may start in the process that forks; each child sets its own threads."""
    import torch

    torch.set_num_threads(1)


def _die_with_parent(parent_pid: int) -> None:
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


def _child(fn: Callable[[], Any], conn, parent_pid: int, threads: int | None, forked_at: float) -> None:
    _die_with_parent(parent_pid)
    from lorasum import faults

    if not faults.guard_active():  # with the study's guard inherited, a stop checkpoints the cell
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if threads:
        import torch

        torch.set_num_threads(threads)
    started = time.time()
    try:
        result = fn()
    except BaseException as err:  # everything goes back to the study; the process ends anyway
        message = f"{type(err).__name__}: {err}"
        conn.send(("error", message, started - forked_at))
        traceback.print_exc()
        return
    conn.send(("ok", result, started - forked_at))


def _death(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        hint = " (out of memory? the kernel's OOM killer sends SIGKILL)" if -exitcode == signal.SIGKILL else ""
        return f"the cell's process was killed by {name}{hint}"
    return f"the cell's process exited with status {exitcode} without a result"


def _stop(proc) -> None:
    """Ctrl-C reached the study: give the cell a moment to stop, then kill it."""
    if proc.is_alive():
        try:
            os.kill(proc.pid, signal.SIGINT)
        except ProcessLookupError:
            pass
        proc.join(STOP_GRACE_SECONDS)
    if proc.is_alive():
        proc.kill()
    proc.join()


def _wait_forwarding_stop(receive, proc) -> None:
    """Wait for the child's message; a stop the study received (SIGTERM, SIGINT) is passed on to it.

    The study's signal guard only sets a flag, so the cell would otherwise train to its end
    before the study stopped; passed on, the cell saves a checkpoint and exits resumable.
    """
    from lorasum import faults

    forwarded = False
    while not receive.poll(0.2):
        signum = faults.stop_requested()
        if signum is not None and not forwarded and proc.is_alive():
            try:
                os.kill(proc.pid, signum)
            except ProcessLookupError:
                pass
            forwarded = True
        if not proc.is_alive() and not receive.poll(0):
            return


def run_forked(fn: Callable[[], Any], *, threads: int | None = None) -> tuple[Any, float]:
    """``fn()`` in a forked child; returns its result and the seconds from fork to ``fn``'s start.

    Raises :class:`CellProcessError` with the child's exception message, or with how the
    child died when it sent nothing back. ``threads`` sets torch's thread count in the child.
    """
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():
        raise LorasumError("CUDA was initialised in the study process, and a forked cell cannot use it; "
                           "run the study with --isolation none, or start it from a fresh process")
    ctx = multiprocessing.get_context("fork")
    receive, send = ctx.Pipe(duplex=False)
    forked_at = time.time()
    proc = ctx.Process(target=_child, args=(fn, send, os.getpid(), threads, forked_at), name="lorasum-cell")
    try:
        proc.start()
        send.close()  # the child holds the only write end: EOF means it is gone
        _wait_forwarding_stop(receive, proc)
        try:
            message = receive.recv()
        except EOFError:
            message = None
        proc.join()
    except KeyboardInterrupt:
        _stop(proc)
        raise
    finally:
        receive.close()
    if message is None:
        raise CellProcessError(_death(proc.exitcode))
    kind, payload, startup = message
    if kind == "ok":
        return payload, startup
    raise CellProcessError(payload)
