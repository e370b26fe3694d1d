"""Running a study: every cell once, resumably, with locks and a crash-proof manifest.

Layout of a study folder::

    study.yaml            the spec as last run (command-line overrides applied)
    study.json            manifest: every cell, its hash, shard and status, the overrides given
                          (rewritten atomically)
    runs/<cell id>/       one run folder per cell: cell.json (axes + config hash), .lock while it
                          runs, and the runner's own files (metrics.json last = complete)
    cache/                shared inputs: the tiny demo model, the runner's data cache
    stale/                folders of cells whose config changed, moved aside by rerun_changed

The state that matters lives in the cell folders, never only in ``study.json``: a cell is
done exactly when its ``metrics.json`` exists and its ``cell.json`` hash matches the spec.
So shards run on different machines merge by copying ``runs/`` folders, a killed cell is
resumed by the runner's own checkpoints on the next call, and nothing is counted twice.
"""
from __future__ import annotations

import fnmatch
import inspect
import json
import os
import shutil
import socket
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

from filelock import FileLock, Timeout

from rich.console import Console
from rich.table import Table

from lorasum import faults
from lorasum.errors import LorasumError
from lorasum.io import atomic_write_text, read_json, write_json, write_yaml
from lorasum.study.cells import (Cell, estimate_steps, expand, parse_shard, select_shard, shard_index,
                                 skipped_variants)
from lorasum.study.resources import BUILTIN_PREFIX, materialize, train_sizes
from lorasum.study.spec import StudySpec, load_study_spec, read_study_yaml
from lorasum.study.worker import CellProcessError, preload, run_forked, single_threaded_parent

Runner = Callable[..., dict]


# --------------------------------------------------------------------------- folders
def cell_dir(study_dir: Path, cell_id: str) -> Path:
    return Path(study_dir) / "runs" / cell_id


def default_study_dir(spec: StudySpec) -> Path:
    return Path(spec.output_dir) if spec.output_dir else Path("runs") / spec.name


def load_study(spec_path: str | Path, overrides: list[str] | None = None) -> tuple[StudySpec, list[Cell]]:
    """Validate a study YAML (with optional ``dotted.path=value`` overrides) and expand it into cells
    (parents first)."""
    spec = load_study_spec(spec_path, overrides)
    return spec, expand(spec, f"{spec_path} (with overrides)" if overrides else str(spec_path))


# --------------------------------------------------------------------------- locks
class CellLock:
    """Keeps two processes off one cell: a kernel lock (``flock``) on the cell's ``.lock``.

    The kernel drops the lock when its holder dies, whatever the way (kill -9, a crash,
    power loss), so a dead runner's lock never needs taking over, and a reused pid or
    another host cannot make a lock look alive or dead. Who holds it (pid, host, since)
    is written beside it in ``.lock.json`` for the message a refused process prints.
    Acquiring never waits: a busy cell is left to its holder.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self.info_path = self.path.with_name(self.path.name + ".json")
        self._lock = FileLock(str(self.path), timeout=0, thread_local=False)

    @property
    def held(self) -> bool:
        return self._lock.is_locked

    def holder(self) -> dict | None:
        """``{pid, host, since}`` of the process holding the lock, as it wrote them."""
        try:
            return json.loads(self.info_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def acquire(self) -> tuple[bool, dict | None]:
        """(True, None) when taken; (False, holder info or None) when another process holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._lock.acquire(blocking=False)
        except Timeout:
            return False, self.holder()
        write_json(self.info_path, {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()})
        return True, None

    def release(self) -> None:
        if self._lock.is_locked:
            # remove the files while still holding the lock: a process that opened the old
            # file sees it unlinked once it gets the lock, and retries on a fresh one
            self.info_path.unlink(missing_ok=True)
            self.path.unlink(missing_ok=True)
            self._lock.release()

    def busy(self) -> bool:
        """Whether another process holds the lock now (a probe that takes and drops it)."""
        if not self.path.exists():
            return False
        probe = FileLock(str(self.path), timeout=0, thread_local=False)
        try:
            probe.acquire(blocking=False)
        except Timeout:
            return True
        probe.release()
        return False


def describe_holder(cell_id: str, holder: dict | None) -> str:
    """``cell X is being run by pid P on host H since T``, as far as the holder wrote it down."""
    if not holder:
        return f"cell {cell_id} is being run by another process"
    since = holder.get("since")
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(since)) if isinstance(since, (int, float)) else "?"
    return f"cell {cell_id} is being run by pid {holder.get('pid', '?')} on host {holder.get('host', '?')} since {when}"


# --------------------------------------------------------------------------- status
def cell_status(study_dir: Path, cell: Cell) -> str:
    """done | changed | running | failed | partial | pending, read from the cell folder."""
    d = cell_dir(study_dir, cell.id)
    info = _read_cell_json(d)
    if info is not None and info.get("config_hash") != cell.config_hash:
        return "changed"
    if (d / "metrics.json").is_file():
        return "done" if info is not None else "changed"
    if CellLock(d / ".lock").busy():
        return "running"
    if info is not None and info.get("error"):
        return "failed"
    if info is not None:
        return "partial"
    return "pending"


def _read_cell_json(d: Path) -> dict | None:
    try:
        return read_json(d / "cell.json")
    except (OSError, ValueError):
        return None


def write_manifest(study_dir: Path, spec: StudySpec, cells: list[Cell], spec_path: str | Path | None = None,
                   shards: int | None = None, overrides: list[str] | None = None) -> dict:
    """Rewrite ``study.json`` from the cell folders (the folders are the truth)."""
    where = shard_index(cells, shards) if shards else {}
    entries = []
    for c in cells:
        entries.append({"id": c.id, "config_hash": c.config_hash, "status": cell_status(study_dir, c),
                        "parent": c.parent, **({"sources": list(c.sources)} if c.sources else {}),
                        **({"shard": f"{where[c.id]}/{shards}"} if shards else {})})
    counts: dict[str, int] = {}
    for e in entries:
        counts[e["status"]] = counts.get(e["status"], 0) + 1
    manifest = {"name": spec.name, "spec": str(spec_path) if spec_path else None, "overrides": list(overrides or []),
                "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "counts": counts, "cells": entries}
    write_json(Path(study_dir) / "study.json", manifest)
    return manifest


# --------------------------------------------------------------------------- estimates
@dataclass
class Estimate:
    train_examples: int | None
    epochs: float
    steps: int | None


def estimate(cell: Cell) -> Estimate:
    if cell.sources:  # a composition trains nothing; learned weights read `shots` target examples
        return Estimate(cell.shots or 0, 0, 0)
    sizes = train_sizes(cell.config)
    total = None if any(v is None for v in sizes.values()) else sum(sizes.values())  # type: ignore[arg-type]
    return Estimate(total, cell.config.training.epochs, estimate_steps(cell.config, total))


def _fmt_int(n: int | None) -> str:
    return "?" if n is None else f"{n:,}"


def _fmt_seconds(s: float) -> str:
    s = int(round(s))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else (f"{m}m{sec:02d}s" if m else f"{sec}s")


def _langs_label(langs: tuple[str, ...]) -> str:
    return "+".join(langs) if len(langs) <= 3 else f"{len(langs)} langs"


def print_grid(console: Console, spec: StudySpec, cells: list[Cell], study_dir: Path,
               shard: tuple[int, int] | None) -> list[dict]:
    """The dry-run table: every selected cell with its estimated work."""
    where = shard_index(cells, shard[1]) if shard else {}
    table = Table(title=f"study {spec.name}: {len(cells)} cells" + (f" (shard {shard[0]}/{shard[1]})" if shard else ""),
                  show_lines=False, header_style="bold")
    rows, lines = [], []
    tot_ex_ep, tot_steps, unknown = 0.0, 0, 0
    for k, c in enumerate(cells, 1):
        e = estimate(c)
        status = cell_status(study_dir, c)
        langs = f"{_langs_label(c.train_langs)} -> {_langs_label(c.test_langs)}"
        lines.append((str(k), c.id, c.config_hash, status, langs, _fmt_int(e.train_examples), f"{e.epochs:g}",
                      _fmt_int(e.steps)))
        if e.train_examples is None or e.steps is None:
            unknown += 1
        else:
            tot_ex_ep += e.train_examples * e.epochs
            tot_steps += e.steps
        rows.append({"id": c.id, "config_hash": c.config_hash, "status": status, "train_examples": e.train_examples,
                     "epochs": e.epochs, "steps": e.steps, **({"shard": where[c.id]} if shard else {})})
    for j, col in enumerate(("#", "cell", "hash", "status", "train -> test", "examples", "epochs", "steps")):
        # every column keeps its full width except the cell id, which folds on a narrow terminal
        widest = max([len(col)] + [len(line[j]) for line in lines])
        table.add_column(col, justify="right" if col in ("#", "examples", "epochs", "steps") else "left",
                         overflow="fold", min_width=None if col == "cell" else widest)
    for line in lines:
        table.add_row(*line)
    console.print(table)
    by_regime: dict[str, int] = {}
    for c in cells:
        by_regime[c.scenario] = by_regime.get(c.scenario, 0) + 1
    console.print("cells per scenario: " + ", ".join(f"{k} {v}" for k, v in by_regime.items()))
    console.print(f"estimated work: {tot_ex_ep:,.0f} training examples x epochs, {tot_steps:,} optimizer steps"
                  + (f" (+ {unknown} cells of unknown size: full splits are counted when loaded)" if unknown else ""))
    return rows


# --------------------------------------------------------------------------- running
ISOLATION = ("process", "none")
THREADS_ENV = "LORASUM_THREADS"


def threads_from_env() -> int | None:
    """``$LORASUM_THREADS`` as a thread count, or None when unset."""
    raw = os.environ.get(THREADS_ENV, "").strip()
    if not raw:
        return None
    try:
        n = int(raw)
    except ValueError:
        n = 0
    if n < 1:
        raise LorasumError(f"{THREADS_ENV}={raw!r}: expected a whole number of threads >= 1")
    return n


@lru_cache(maxsize=1)
def _torch_default_threads() -> int:
    # what torch uses in this process before the study sets one thread for forking
    import torch

    return torch.get_num_threads()


def _model_types(cells: list[Cell]) -> set[str]:
    """Architectures the cells will load, where known without loading anything."""
    out: set[str] = set()
    for name in {c.config.model.name for c in cells}:
        if name.startswith(BUILTIN_PREFIX + "tiny-"):
            out |= {name[len(BUILTIN_PREFIX + "tiny-"):], "byt5"}  # tiny models use the byte-level tokenizer
            continue
        try:
            out.add(json.loads((Path(name).expanduser() / "config.json").read_text(encoding="utf-8"))["model_type"])
        except (OSError, ValueError, KeyError, TypeError):
            pass  # a hub id: its modules are imported by the first cell that loads it
    return out


def cell_threads(cell: Cell, threads: int | None, default: int) -> int:
    """Torch threads for a cell: ``threads`` when given (``--threads``, ``$LORASUM_THREADS``),
    else one for the built-in tiny models, as ``lorasum demo`` does (matrices that small
    gain nothing from more, and spinning OpenMP threads slow every step on a shared
    machine), else ``default`` (torch's own choice)."""
    if threads is not None:
        return threads
    if cell.config.model.name.startswith(BUILTIN_PREFIX + "tiny-"):
        return 1
    return default


def _default_runner() -> Runner:
    try:
        from lorasum.run import train_and_evaluate
    except ImportError as err:
        raise LorasumError(f"the training pipeline (lorasum.run) is not available: {err}") from None
    return train_and_evaluate


def _runner_kwargs(runner: Runner, study_dir: Path, progress: bool) -> dict:
    try:
        params = inspect.signature(runner).parameters
    except (TypeError, ValueError):
        params = {}
    kwargs: dict = {}
    if "progress" in params:
        kwargs["progress"] = progress
    # shared work done once: the runner's sampled/tokenized data cache, if it takes one
    if "cache_dir" in params:
        kwargs["cache_dir"] = Path(study_dir).resolve() / "cache" / "data"
    return kwargs


def _move_aside(study_dir: Path, cell: Cell) -> Path:
    d = cell_dir(study_dir, cell.id)
    old = (_read_cell_json(d) or {}).get("config_hash", "unknown")
    dest = Path(study_dir) / "stale" / f"{cell.id}@{old}"
    if dest.exists():
        shutil.rmtree(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.replace(d, dest)
    return dest


def run_study(
    spec_path: str | Path,
    *,
    out_dir: str | Path | None = None,
    shard: str | tuple[int, int] | None = None,
    dry_run: bool = False,
    cells: list[str] | None = None,
    rerun_changed: bool = False,
    runner: Runner | None = None,
    progress: bool = True,
    runner_progress: bool = False,
    console: Console | None = None,
    isolation: str | None = None,
    threads: int | None = None,
    overrides: list[str] | None = None,
) -> dict:
    """Run (or with ``dry_run`` only list) the cells of a study; return a summary dict.

    ``overrides`` (``base.training.lr=3e-4``, ``axes.seed=[0,1,2]``) change the spec as read;
    they enter the cells' configs, hence their hashes, so a later run with other overrides
    (or none) finds those cells changed. ``study.yaml`` keeps the spec as run, overrides
    applied, and ``study.json`` lists them.

    ``shard="i/n"`` runs a deterministic 1-based share of the cells; ``cells`` keeps only
    cells whose id matches one of the glob patterns (their parents are kept too).
    Finished cells are skipped; interrupted ones are resumed by the runner. A cell whose
    config changed since it ran stops the study unless ``rerun_changed`` moves the old
    folder to ``stale/`` and runs it again. ``runner`` defaults to
    :func:`lorasum.run.train_and_evaluate` (tests pass a fake one).

    ``isolation="process"`` (the default with the real runner) runs each cell in its own
    forked process (see :mod:`lorasum.study.worker`); ``"none"`` runs cells in this
    process (the default with a given ``runner``; handy in a debugger). ``threads`` sets
    torch's thread count in each cell; see :func:`cell_threads` for the default.
    """
    console = console or Console(width=shutil.get_terminal_size((200, 40)).columns, quiet=not progress and not dry_run)
    spec, all_cells = load_study(spec_path, overrides)
    study_dir = Path(out_dir) if out_dir else default_study_dir(spec)
    shard_t = parse_shard(shard)
    selected = select_shard(all_cells, shard_t)
    if cells:
        keep = {c.id for c in selected if any(fnmatch.fnmatchcase(c.id, p) for p in cells)}
        keep |= {p for c in selected if c.id in keep for p in c.requires}
        selected = [c for c in selected if c.id in keep]
        if not selected:
            raise LorasumError(f"no cell of {spec_path} matches {cells}")
    for note in skipped_variants(spec, str(spec_path)):
        console.print(f"[dim]{note}[/]")
    if dry_run:
        rows = print_grid(console, spec, selected, study_dir, shard_t)
        return {"study_dir": str(study_dir), "dry_run": True, "cells": rows}

    changed = [c for c in selected if cell_status(study_dir, c) == "changed"]
    if changed and not rerun_changed:
        ids = ", ".join(c.id for c in changed[:5]) + (" ..." if len(changed) > 5 else "")
        before = _last_overrides(study_dir)
        was = (f"; they ran with the overrides {' '.join(before)}" if before and before != list(overrides or [])
               else "")
        raise LorasumError(
            f"{spec_path}: {len(changed)} cell(s) were run with a different config than the spec now gives "
            f"({ids}){was}; pass --rerun-changed to move their old folders to {study_dir / 'stale'} "
            "and run them again"
        )
    study_dir.mkdir(parents=True, exist_ok=True)
    if overrides:
        write_yaml(study_dir / "study.yaml", read_study_yaml(spec_path, overrides))
    else:
        atomic_write_text(study_dir / "study.yaml", Path(spec_path).read_text(encoding="utf-8"))
    for c in changed:
        dest = _move_aside(study_dir, c)
        console.print(f"[yellow]moved aside[/] {c.id} (config changed) -> {dest}")
    write_manifest(study_dir, spec, all_cells, spec_path, shard_t[1] if shard_t else None, overrides)

    run = runner or _default_runner()
    kwargs = _runner_kwargs(run, study_dir, runner_progress)
    isolation = isolation or ("process" if runner is None else "none")
    if isolation not in ISOLATION:
        raise LorasumError(f"isolation: expected one of {', '.join(ISOLATION)}, got {isolation!r}")
    if threads is not None and threads < 1:
        raise LorasumError(f"--threads: expected a number of threads >= 1, got {threads}")
    threads = threads if threads is not None else threads_from_env()
    default = _torch_default_threads()
    if isolation == "process":
        if runner is None:
            preload(_model_types(selected), {lang for c in selected for lang in c.test_langs})
        single_threaded_parent()
    # a cell costs its steps plus a fixed overhead (loading, generation, scoring), in step units
    weights = {c.id: float(estimate(c).steps or 1) + 10.0 for c in selected}
    outcome: dict[str, list[str]] = {k: [] for k in ("ran", "skipped", "failed", "waiting", "locked")}
    spent, done_weight = 0.0, 0.0
    remaining = sum(weights[c.id] for c in selected)
    for k, c in enumerate(selected, 1):
        tag = f"[{k}/{len(selected)}]"
        status = cell_status(study_dir, c)
        remaining -= weights[c.id]
        if status == "done":
            outcome["skipped"].append(c.id)
            console.print(f"[dim]{tag} = {c.id} done before[/]")
            continue
        pending = [p for p in c.requires if cell_status(study_dir, _by_id(all_cells, p)) != "done"]
        if pending:
            outcome["waiting"].append(c.id)
            console.print(f"[yellow]{tag} … {c.id} waits for {', '.join(pending)}[/]")
            continue
        faults.check_stop(f"study {spec.name} (before cell {c.id})")
        t0 = time.monotonic()
        result = _run_cell(study_dir, c, run, kwargs, isolation=isolation, threads=cell_threads(c, threads, default))
        dt = time.monotonic() - t0
        if isinstance(result, _Locked):
            outcome["locked"].append(c.id)
            console.print(f"[yellow]{tag} ~ {result.message}[/]")
            continue
        spent += dt
        done_weight += weights[c.id]
        eta = spent / done_weight * remaining if done_weight else 0.0
        if isinstance(result, Exception):
            outcome["failed"].append(c.id)
            console.print(f"[red]{tag} x {c.id} failed after {_fmt_seconds(dt)}: {result}[/]")
        else:
            outcome["ran"].append(c.id)
            rl = result.get("rouge", {}).get("overall", {}).get("rougeL", {}).get("mean")
            score = f"ROUGE-L {rl:.2f}" if isinstance(rl, (int, float)) else ""
            console.print(f"[green]{tag} ✓ {c.id}[/] {_fmt_seconds(dt)} {score}  ETA {_fmt_seconds(eta)}")
        write_manifest(study_dir, spec, all_cells, spec_path, shard_t[1] if shard_t else None, overrides)
    manifest = write_manifest(study_dir, spec, all_cells, spec_path, shard_t[1] if shard_t else None, overrides)
    console.print("study " + spec.name + ": " + ", ".join(f"{len(v)} {k}" for k, v in outcome.items() if v)
                  + f" -> {study_dir}")
    return {"study_dir": str(study_dir), "dry_run": False, **outcome, "counts": manifest["counts"]}


def _last_overrides(study_dir: Path) -> list[str]:
    try:
        return list(read_json(Path(study_dir) / "study.json").get("overrides") or [])
    except (OSError, ValueError):
        return []


def _by_id(cells: list[Cell], cid: str) -> Cell:
    return next(c for c in cells if c.id == cid)


@dataclass
class _Locked:
    message: str


def _cell_body(study_dir: Path, cell: Cell, run: Runner, kwargs: dict, threads: int | None) -> dict:
    """What runs for one cell, in its own process or in this one: resolve names, then the runner."""
    if threads:
        import torch

        torch.set_num_threads(threads)
    d = cell_dir(study_dir, cell.id)
    parent_dir = str(cell_dir(study_dir, cell.parent).resolve()) if cell.parent else None
    config = materialize(cell.config, Path(study_dir).resolve() / "cache", init_from=parent_dir)
    write_yaml(d / "cell_config.yaml", cell.config.to_dict())
    if cell.sources:  # a composition of finished source adapters, not a training run
        from lorasum.study.composition import compose_and_evaluate

        adapters = {lang: str(cell_dir(study_dir, cid).resolve()) for lang, cid in zip(cell.train_langs, cell.sources)}
        return compose_and_evaluate(config, d, adapters, cell.composition.kind, cell.composition.settings,
                                    progress=kwargs.get("progress", False))
    return run(config, d, **kwargs)


def _run_cell(study_dir: Path, cell: Cell, run: Runner, kwargs: dict, *, isolation: str,
              threads: int | None) -> dict | Exception | _Locked:
    d = cell_dir(study_dir, cell.id)
    lock = CellLock(d / ".lock")
    ok, holder = lock.acquire()
    if not ok:
        return _Locked(describe_holder(cell.id, holder))
    try:
        # re-check under the lock: another process may have finished it meanwhile
        if cell_status(study_dir, cell) == "done":
            return read_json(d / "metrics.json")
        info = _read_cell_json(d) or {}
        info.update(cell.axes())
        info.update(host=socket.gethostname(), pid=os.getpid(), attempts=int(info.get("attempts", 0)) + 1,
                    started=time.strftime("%Y-%m-%dT%H:%M:%S%z"), error=None, threads=threads, isolation=isolation)
        write_json(d / "cell.json", info)
        t0 = time.monotonic()
        try:
            if isolation == "process":
                # the lock stays with this process: a crashed child cannot leave it behind
                metrics, startup = run_forked(lambda: _cell_body(study_dir, cell, run, kwargs, None), threads=threads)
                info["process_startup_seconds"] = round(startup, 4)
            else:
                metrics = _cell_body(study_dir, cell, run, kwargs, threads)
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as err:  # a failed cell is recorded and the study goes on
            info["error"] = str(err) if isinstance(err, CellProcessError) else f"{type(err).__name__}: {err}"
            write_json(d / "cell.json", info)
            return err
        if not (d / "metrics.json").is_file():
            info["error"] = "the runner returned without writing metrics.json"
            write_json(d / "cell.json", info)
            return LorasumError(info["error"])
        info["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        info["wall_seconds"] = round(time.monotonic() - t0, 3)
        write_json(d / "cell.json", info)
        return metrics
    finally:
        lock.release()
