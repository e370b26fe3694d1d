"""The training loop: one plain loop over length-grouped batches, run through ``accelerate``.

It works the same for full fine-tuning and LoRA (only parameters with ``requires_grad``
are optimised and checkpointed) and under ``accelerate launch`` / ``torchrun``. A
checkpoint holds the trainable weights, optimizer, scheduler, RNG states and a small JSON
state; it is written to a temporary folder and renamed, so an interrupted run (kill -9
included) resumes from the last complete checkpoint and replays the same batches.

Several processes (see ``docs/distributed.md``): ``training.batch_size`` is per process, so
the global batch is ``batch_size x processes x grad_accum``. The sampler builds global
batches and ``accelerate`` splits each across the processes (``split_batches=True``), so N
processes see the same batches, in the same order, as one process with N times the batch
size. An optimizer step's loss is the sum over the label tokens of its whole accumulation
window on all processes, divided by that window's label-token count (not a mean of
per-micro-batch or per-process means), so batch 4 x accumulation 2 computes the gradients of
batch 8 x accumulation 1, and N processes those of one. Only the main process writes files;
every process loads checkpoints.

Several languages are mixed per epoch (:class:`~lorasum.data.sampling.EpochMix`); the
sampler rebuilds an epoch's rows from ``(seed, epoch)``, so a resumed run replays them.
"""
from __future__ import annotations

import contextlib
import itertools
import json
import logging
import math
import random
import os
import resource
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator, DataLoaderConfiguration, skip_first_batches
from accelerate.utils import DistributedType
from transformers import get_scheduler
from transformers.trainer_pt_utils import get_parameter_names
from transformers.optimization import Adafactor

from lorasum import faults
from lorasum.config import TrainingConfig
from lorasum.errors import LorasumError
from lorasum.head_loss import capture_head_input, head_output_is_returned, linear_cross_entropy
from lorasum.data.features import IGNORE_INDEX, Collator, LengthGroupedBatches, feature_length
from lorasum.data.sampling import EpochMix
from lorasum.io import write_json

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    steps: int
    epochs_done: float
    train_seconds: float
    train_tokens: int
    tokens_per_second: float
    final_train_loss: float | None
    final_validation_loss: float | None
    best_validation_loss: float | None
    peak_memory_mb: float
    peak_memory_kind: str  # see reset_peak_memory
    stopped_early: bool
    history: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def mixed_precision(precision: str, *, cuda: bool | None = None) -> str:
    """accelerate's ``mixed_precision`` for ``training.precision``; fp16 needs a CUDA GPU.

    fp16 autocast only trains safely with a gradient scaler, which accelerate creates on
    CUDA alone; on a CPU it would run fp16 without one (gradients underflow to zero).
    """
    if precision == "fp16":
        if not (torch.cuda.is_available() if cuda is None else cuda):
            raise LorasumError("training.precision: fp16 needs a CUDA GPU (fp16 autocast with a gradient scaler); "
                               "on this machine use bf16 or fp32")
        return "fp16"
    return "bf16" if precision == "bf16" else "no"


def make_accelerator(cfg: TrainingConfig) -> Accelerator:
    """The run's ``Accelerator``: precision from the run config, global batches split across processes.

    Safe to call again in one process with another precision (study cells do): accelerate
    keeps one process-wide precision, which is reset here; the process group is kept.
    """
    from accelerate.state import AcceleratorState
    from accelerate.utils import DistributedType

    wanted = mixed_precision(cfg.precision)
    state = AcceleratorState._shared_state
    # DeepSpeed takes its precision from its own config, and accelerate does not object to a change there
    if (state and state.get("_mixed_precision", wanted) != wanted
            and state.get("distributed_type") != DistributedType.DEEPSPEED):
        AcceleratorState._reset_state(reset_partial_state=False)
    launcher = os.environ.get("ACCELERATE_MIXED_PRECISION")
    if launcher and launcher != wanted:
        log.warning("the launcher asks for mixed_precision=%s; the run config's training.precision=%s wins",
                    launcher, cfg.precision)
    # without GPUs accelerate uses gloo between processes only when asked for the CPU explicitly
    cpu = int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.cuda.is_available()
    return Accelerator(mixed_precision=wanted, cpu=cpu,
                       dataloader_config=DataLoaderConfiguration(split_batches=True))


def token_loss(logits: torch.Tensor, labels: torch.Tensor, smoothing: float, *, shift: bool,
               reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy over label tokens (-100 ignored), with label smoothing; mean or sum."""
    if shift:  # causal LMs predict token t+1 at position t
        logits, labels = logits[:, :-1, :], labels[:, 1:]
    return torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.size(-1)).float(), labels.reshape(-1),
        ignore_index=IGNORE_INDEX, label_smoothing=smoothing, reduction=reduction,
    )


def label_positions(labels: torch.Tensor, *, shift: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(positions whose output carries a loss, their target ids), row-major like a reshape."""
    if shift:  # the output at position t predicts labels[t + 1]; the last position predicts nothing
        mask = torch.zeros_like(labels, dtype=torch.bool)
        mask[:, :-1] = labels[:, 1:] != IGNORE_INDEX
        return mask, labels[:, 1:][mask[:, :-1]]
    mask = labels != IGNORE_INDEX
    return mask, labels[mask]


@contextlib.contextmanager
def head_only_at(model: torch.nn.Module, mask: torch.Tensor):
    """Within the block, the model's LM head sees only the hidden states at ``mask``.

    The logits it returns are then (positions, vocabulary): one row per label token
    instead of one per padded position. Padding is most of a length-bucketed batch's
    target side, and the head plus its loss cost as much as several layers when the
    vocabulary is large (a third of mT5-small's forward compute). A forward pre-hook on
    ``get_output_embeddings()`` does it for every architecture without copying its
    forward: what the model does before the head (T5's ``d_model**-0.5`` rescale of tied
    embeddings) still happens, and what it does after (BART's ``final_logits_bias``)
    broadcasts over the rows.
    """
    def gather(_module, args):
        return (args[0][mask],) + args[1:]

    handle = model.get_output_embeddings().register_forward_pre_hook(gather)
    try:
        yield
    finally:
        handle.remove()


def label_loss(model: torch.nn.Module, inputs: dict, labels: torch.Tensor, smoothing: float, *,
               shift: bool, reduction: str = "sum", wrapped: torch.nn.Module | None = None,
               fused: bool | None = None) -> torch.Tensor:
    """:func:`token_loss` of ``model(**inputs)``, with the LM head computed at label positions only.

    ``wrapped``: the module to call when ``model`` runs inside a wrapper (DDP). ``fused``: the
    head and the loss run as one chunked step (:mod:`lorasum.head_loss`), never holding the
    logits of all label positions; ``None`` asks :func:`~lorasum.head_loss.head_output_is_returned`
    (a loop passes its answer once known).
    """
    mask, targets = label_positions(labels, shift=shift)
    if fused is None:
        fused = head_output_is_returned(model, inputs)
    if fused:
        head = model.get_output_embeddings()
        with capture_head_input(head, mask, lambda hidden: linear_cross_entropy(
                hidden, head.weight, head.bias, targets, smoothing, reduction=reduction)) as captured:
            (wrapped or model)(**inputs)
        return captured.value
    with head_only_at(model, mask):
        logits = (wrapped or model)(**inputs).logits
    return torch.nn.functional.cross_entropy(logits.float(), targets, label_smoothing=smoothing,
                                             reduction=reduction)


def label_tokens(labels: torch.Tensor, *, shift: bool) -> torch.Tensor:
    """How many positions carry a loss (after the causal shift)."""
    return ((labels[:, 1:] if shift else labels) != IGNORE_INDEX).sum()


def model_inputs(model: torch.nn.Module, batch: dict, is_decoder_only: bool) -> dict:
    """Forward arguments; the seq2seq decoder input is the labels shifted right."""
    # use_cache=False: a training forward has no use for the key/value cache a model builds by default
    if is_decoder_only:
        return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"], "use_cache": False}
    return {
        "input_ids": batch["input_ids"],
        "attention_mask": batch["attention_mask"],
        "decoder_input_ids": model.prepare_decoder_input_ids_from_labels(labels=batch["labels"]),
        "use_cache": False,
    }


# transformers.Trainer.get_decay_parameter_names: biases and normalisation weights are not decayed
NO_DECAY_PATTERNS = [r"bias", r"layernorm", r"rmsnorm", r"(?:^|\.)norm(?:$|\.)", r"_norm(?:$|\.)"]


def parameter_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """The trainable parameters in two optimizer groups: decayed, and not (biases, norm weights)."""
    decay = set(get_parameter_names(model, [torch.nn.LayerNorm], NO_DECAY_PATTERNS))
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    return [
        {"params": [p for n, p in trainable if n in decay], "weight_decay": weight_decay},
        {"params": [p for n, p in trainable if n not in decay], "weight_decay": 0.0},
    ]


def build_optimizer(model: torch.nn.Module, cfg: TrainingConfig) -> torch.optim.Optimizer:
    """AdamW or Adafactor over ``model``'s trainable parameters, weight decay on weight matrices only."""
    groups = parameter_groups(model, cfg.weight_decay)
    if cfg.optimizer == "adafactor":
        # XL-Sum's setting: a fixed learning rate, no relative step or parameter scaling
        return Adafactor(groups, lr=cfg.lr, scale_parameter=False, relative_step=False, warmup_init=False)
    # the fused kernel updates every tensor in one call: on a CPU four times faster than the per-tensor loop for
    # LoRA's many small matrices, the same update to float rounding
    fused = all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for g in groups for p in g["params"])
    return torch.optim.AdamW(groups, lr=cfg.lr, fused=fused or None)


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainingConfig, total_steps: int):
    """The learning-rate schedule; ``constant`` with a warmup ratio warms up linearly, then stays flat."""
    warmup = int(cfg.warmup_ratio * total_steps)
    name = "constant_with_warmup" if cfg.schedule == "constant" and warmup > 0 else cfg.schedule
    return get_scheduler(name, optimizer, num_warmup_steps=warmup, num_training_steps=total_steps)


def reset_peak_memory() -> str:
    """Start measuring peak memory afresh (one run per measurement); returns the measure used.

    ``cuda_allocated``: the peak of tensors allocated on the GPU. ``process_rss_hwm``: the
    process's resident-set high-water mark (Linux ``VmHWM``, reset through
    ``/proc/self/clear_refs``). ``process_rss_max``: where that reset is not allowed, the
    lifetime peak of the process (``ru_maxrss``), which includes earlier runs in it.
    """
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
        return "cuda_allocated"
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # 5 resets the peak resident set size to the current one
        return "process_rss_hwm"
    except OSError:
        log.info("cannot reset the process memory high-water mark; peak memory is the process's lifetime peak")
        return "process_rss_max"


def peak_memory_mb(kind: str) -> float:
    """The peak since :func:`reset_peak_memory` returned ``kind``, in MiB."""
    if kind == "cuda_allocated":
        return torch.cuda.max_memory_allocated() / 2**20
    if kind == "process_rss_hwm":
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().cpu().clone() for n, p in model.named_parameters() if p.requires_grad}


def _load_trainable_state(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    params = dict(model.named_parameters())
    with torch.no_grad():
        for n, t in state.items():
            params[n].copy_(t.to(params[n].device, params[n].dtype))


def latest_checkpoint(ckpt_root: Path) -> Path | None:
    if not ckpt_root.is_dir():
        return None
    done = [p for p in ckpt_root.glob("step-*") if (p / "state.json").exists()]
    return max(done, key=lambda p: int(p.name.split("-")[1]), default=None)


class Trainer:
    """Trains ``model`` on ``train_features``; see the module docstring for resume semantics."""

    def __init__(self, model, train_features: list[dict], val_features: list[dict], cfg: TrainingConfig,
                 out_dir: Path, *, pad_token_id: int, is_decoder_only: bool = False,
                 accelerator: Accelerator | None = None, progress: bool = True, tracking=None):
        self.cfg = cfg
        # a run's trackers (lorasum.tracking.RunTracking), left open for its test scores; default: TensorBoard
        self.tracking = tracking
        self.out_dir = Path(out_dir)
        self.ckpt_root = self.out_dir / "checkpoints"
        self.is_decoder_only = is_decoder_only
        self.progress = progress
        self.acc = accelerator or make_accelerator(cfg)
        # right padding in training: real tokens never attend to pads, positions start at 0
        collator = Collator(pad_token_id, padding_side="right")
        # the sampler yields global batches when accelerate splits them, per-process ones otherwise
        split = getattr(self.acc.dataloader_config, "split_batches", False)
        sampler_batch = cfg.batch_size * (self.acc.num_processes if split else 1)
        lengths = [feature_length(f, is_decoder_only=is_decoder_only) for f in train_features]
        # several languages: each epoch resamples them to their upsampled shares
        mix = EpochMix([f.get("lang") for f in train_features], cfg.multilingual_alpha, cfg.seed)
        self.sampler = LengthGroupedBatches(lengths, sampler_batch, cfg.seed, group_by_length=cfg.group_by_length,
                                            mix=mix if len(mix.groups) > 1 else None)
        loader = torch.utils.data.DataLoader(train_features, batch_sampler=self.sampler, collate_fn=collator)
        val_sampler = LengthGroupedBatches([feature_length(f, is_decoder_only=is_decoder_only) for f in val_features],
                                           sampler_batch, cfg.seed, shuffle=False)
        val_loader = (torch.utils.data.DataLoader(val_features, batch_sampler=val_sampler, collate_fn=collator)
                      if val_features else None)
        if cfg.torch_compile:
            if not hasattr(model, "compile"):
                raise LorasumError("training.torch_compile needs PyTorch >= 2.2 (nn.Module.compile)")
            model.compile()  # in place: parameter names, checkpoints and save_pretrained are unchanged
        optimizer = build_optimizer(model, cfg)
        self.model, self.optimizer, self.loader = self.acc.prepare(model, optimizer, loader)
        self.val_loader = self.acc.prepare(val_loader) if val_loader is not None else None
        # what the gradient clip and the norm watch walk every step: the trainable parameters, listed once
        # (walking all of a model's parameters each step cost ~4% of a tiny LoRA run); FSDP's clip
        # recognises only the model's own full parameter list
        if self.acc.distributed_type == DistributedType.FSDP or os.environ.get("ACCELERATE_USE_FSDP") == "true":
            self._grad_params = self.model.parameters
        else:
            trainable = [p for p in self.model.parameters() if p.requires_grad]
            self._grad_params = lambda: trainable
        self.batches_per_epoch = len(self.loader)
        per_epoch_steps = self.batches_per_epoch / cfg.grad_accum
        self.total_steps = cfg.max_steps or max(1, math.ceil(per_epoch_steps * cfg.epochs))
        self.scheduler = build_scheduler(self.optimizer, cfg, self.total_steps)
        self.eval_every = cfg.eval_every or max(1, math.ceil(per_epoch_steps))
        self.checkpoint_every = cfg.checkpoint_every
        self.log_every = max(1, min(50, self.total_steps // 20))
        self.watch = faults.FiniteWatch(self.acc.device, cfg.max_grad_norm_abort)
        self._fused_head: bool | None = None  # whether the LM head runs fused with the loss; known at the first batch
        self.state = {"step": 0, "train_seconds": 0.0, "train_tokens": 0, "best_validation_loss": None,
                      "evals_without_improvement": 0, "stopped_early": False, "history": [],
                      "last_train_loss": None, "last_validation_loss": None}

    # -- checkpoints -------------------------------------------------------------------------
    @faults.guarded_checkpoint_write
    def save_checkpoint(self) -> Path:
        self.watch.check(self.state["step"], self.ckpt_root)  # never checkpoint after a bad step
        self.acc.wait_for_everyone()
        step = self.state["step"]
        final = self.ckpt_root / f"step-{step:07d}"
        if self.acc.is_main_process:
            tmp = self.ckpt_root / f".tmp-step-{step:07d}"
            if tmp.exists():
                shutil.rmtree(tmp)
            tmp.mkdir(parents=True)
            trainable = _trainable_state(self.acc.unwrap_model(self.model))
            faults.assert_finite_state(trainable, final)
            faults.save_tensors(trainable, tmp / "trainable.pt")
            faults.save_tensors(self.optimizer.state_dict(), tmp / "optimizer.pt")
            faults.save_tensors(self.scheduler.state_dict(), tmp / "scheduler.pt")
            faults.save_tensors(_rng_state(), tmp / "rng.pt")
            write_json(tmp / "state.json", self.state)  # last file: marks the checkpoint complete
            if final.exists():
                shutil.rmtree(final)
            tmp.rename(final)
            kept = sorted((p for p in self.ckpt_root.glob("step-*")), key=lambda p: int(p.name.split("-")[1]))
            for old in kept[: -self.cfg.keep_checkpoints]:
                shutil.rmtree(old, ignore_errors=True)
        self.acc.wait_for_everyone()
        return final

    def load_checkpoint(self, path: Path) -> None:
        unwrapped = self.acc.unwrap_model(self.model)
        _load_trainable_state(unwrapped, faults.load_tensors(path / "trainable.pt"))
        self.optimizer.load_state_dict(faults.load_tensors(path / "optimizer.pt"))
        self.scheduler.load_state_dict(faults.load_tensors(path / "scheduler.pt"))
        _set_rng_state(faults.load_tensors(path / "rng.pt"))
        self.state = json.loads((path / "state.json").read_text())
        log.info("resumed from %s (step %d)", path, self.state["step"])

    # -- evaluation --------------------------------------------------------------------------
    @torch.no_grad()
    def validation_loss(self) -> float | None:
        if self.val_loader is None:
            return None
        self.model.eval()
        unwrapped = self.acc.unwrap_model(self.model)
        total = torch.zeros((), device=self.acc.device)
        count = torch.zeros((), device=self.acc.device)
        for batch in self.val_loader:
            with self.acc.autocast():
                logits = self.model(**model_inputs(unwrapped, batch, self.is_decoder_only)).logits
            labels = batch["labels"][:, 1:] if self.is_decoder_only else batch["labels"]
            lg = logits[:, :-1] if self.is_decoder_only else logits
            per_token = torch.nn.functional.cross_entropy(lg.reshape(-1, lg.size(-1)).float(), labels.reshape(-1),
                                                          ignore_index=IGNORE_INDEX, reduction="none")
            # per example, gathered from all processes without the repeats that even out the last batch
            sums, counts = self.acc.gather_for_metrics((per_token.view(labels.shape).sum(1),
                                                        (labels != IGNORE_INDEX).sum(1)))
            total += sums.sum()
            count += counts.sum()
        self.model.train()
        return (total / count.clamp(min=1)).item()

    def _after_eval(self, val_loss: float | None) -> bool:
        """Record a validation loss; returns True when early stopping says stop."""
        if val_loss is None:
            return False
        self.state["last_validation_loss"] = val_loss
        best = self.state["best_validation_loss"]
        if best is None or val_loss < best:
            self.state["best_validation_loss"] = val_loss
            self.state["evals_without_improvement"] = 0
            if self.cfg.early_stopping_patience and self.acc.is_main_process:
                self.ckpt_root.mkdir(parents=True, exist_ok=True)
                tmp = self.ckpt_root / ".best.pt.tmp"
                torch.save(_trainable_state(self.acc.unwrap_model(self.model)), tmp)
                tmp.replace(self.ckpt_root / "best.pt")
        else:
            self.state["evals_without_improvement"] += 1
        patience = self.cfg.early_stopping_patience
        return bool(patience and self.state["evals_without_improvement"] >= patience)

    def _loss_sum(self, unwrapped, batch: dict) -> torch.Tensor:
        """Summed cross-entropy of one micro-batch; the LM head runs at label positions only.

        Under torch.compile the head sees the whole batch: a hook added and removed every
        step would make the compiled graph's guards fail each time.
        """
        shift, smoothing = self.is_decoder_only, self.cfg.label_smoothing
        try:
            if self.cfg.torch_compile:
                logits = self.model(**model_inputs(unwrapped, batch, shift)).logits
                return token_loss(logits, batch["labels"], smoothing, shift=shift, reduction="sum")
            inputs = model_inputs(unwrapped, batch, shift)
            if self._fused_head is None:
                self._fused_head = head_output_is_returned(unwrapped, inputs)
            return label_loss(unwrapped, inputs, batch["labels"], smoothing, shift=shift, reduction="sum",
                              wrapped=self.model, fused=self._fused_head)
        except Exception as err:
            if self.cfg.torch_compile and type(err).__module__.startswith("torch._"):
                raise LorasumError(f"training.torch_compile: torch.compile failed ({type(err).__name__}: "
                                   f"{str(err).strip().splitlines()[0] if str(err).strip() else ''}); "
                                   "set torch_compile: false, or install a C++ compiler / Triton") from err
            raise

    def _micro_batches(self, start: int):
        """The run's micro-batches from the ``start``-th on, epoch after epoch, without end."""
        epoch, offset = divmod(start, self.batches_per_epoch)
        while True:
            loader = skip_first_batches(self.loader, offset) if offset else self.loader
            # accelerate's loaders call set_epoch(their own counter) when iterated, which reaches our
            # sampler only through some wrappers (not the skipping one): set both
            if hasattr(loader, "set_epoch"):
                loader.set_epoch(epoch)
            self.sampler.set_epoch(epoch)
            yield from _rng_neutral(loader)
            epoch, offset = epoch + 1, 0

    # -- the loop ----------------------------------------------------------------------------
    def train(self) -> TrainResult:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
        from lorasum.tracking import RunTracking

        memory_kind = reset_peak_memory()
        ckpt = latest_checkpoint(self.ckpt_root)
        if ckpt is not None:
            self.load_checkpoint(ckpt)
        show = self.progress and self.acc.is_main_process
        # under nohup or SLURM a live bar is noise: one plain line per logging step instead
        plain = show and not sys.stderr.isatty()
        start_step = self.state["step"]
        if show and ckpt is not None:
            print(f"resuming from step {start_step} of {self.total_steps} ({ckpt})", file=sys.stderr, flush=True)
        # events a killed run wrote after its last checkpoint are dropped (TensorBoard) or not sent
        # again (MLflow, W&B), so the steps it replays are logged once
        writer = None
        if self.acc.is_main_process:
            writer = self.tracking or RunTracking(["tensorboard"], self.out_dir, {})
            writer.open(start_step)
        unwrapped = self.acc.unwrap_model(self.model)
        self.model.train()
        accum = self.cfg.grad_accum
        world = self.acc.num_processes
        shift = self.is_decoder_only
        running_loss = torch.zeros((), device=self.acc.device)  # summed over label tokens
        running_labels = torch.zeros((), device=self.acc.device, dtype=torch.long)
        running_tokens = torch.zeros((), device=self.acc.device, dtype=torch.long)
        bar = Progress(TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
                       TimeRemainingColumn(), disable=not show or plain, transient=False)
        task = bar.add_task("train", total=self.total_steps, completed=self.state["step"], info="")
        tick = time.perf_counter()
        stop = self.state["stopped_early"] or self.state["step"] >= self.total_steps
        # an optimizer step's micro-batches (its accumulation window) may span two epochs
        micro_batches = self._micro_batches(self.state["step"] * accum)
        with bar:
            while not stop:
                # the whole window is fetched first: its loss is normalised by all of its label tokens
                window = list(itertools.islice(micro_batches, accum))
                counts = [label_tokens(batch["labels"], shift=shift) for batch in window]
                n_window = torch.stack(counts).sum()
                # on device, no host sync; DDP averages gradients over processes, hence the factor world
                n_all = self.acc.reduce(n_window, "sum") if world > 1 else n_window
                scale = world / n_all.clamp(min=1)
                for i, (batch, n) in enumerate(zip(window, counts)):
                    last = i == len(window) - 1
                    ctx = self.acc.no_sync(self.model) if not last and world > 1 else contextlib.nullcontext()
                    with ctx:
                        with self.acc.autocast():
                            loss_sum = self._loss_sum(unwrapped, batch)
                        self.acc.backward(loss_sum * scale)
                    self.watch.micro(loss_sum)
                    running_loss += loss_sum.detach()
                    running_labels += n
                    running_tokens += batch["attention_mask"].sum()
                    if not self.is_decoder_only:  # a causal feature's labels are inside its input
                        running_tokens += n
                norm = (self.acc.clip_grad_norm_(self._grad_params(), self.cfg.max_grad_norm)
                        if self.cfg.max_grad_norm
                        else faults.grad_norm(self._grad_params(), self.cfg.max_grad_norm_abort))
                self.optimizer.step()
                self.scheduler.step()
                self.optimizer.zero_grad(set_to_none=True)
                self.state["step"] += 1
                step = self.state["step"]
                self.watch.step(step, norm)
                bar.update(task, completed=step)
                if step % self.log_every == 0 or step == self.total_steps:
                    self.watch.check(step, self.ckpt_root)
                    labels_seen = self.acc.reduce(running_labels, "sum").clamp(min=1)
                    mean_loss = (self.acc.reduce(running_loss, "sum") / labels_seen).item()
                    tokens = int(self.acc.reduce(running_tokens, "sum").item())
                    now = time.perf_counter()
                    self.state["train_seconds"] += now - tick
                    tick = now
                    self.state["train_tokens"] += tokens
                    self.state["last_train_loss"] = mean_loss
                    tps = self.state["train_tokens"] / max(self.state["train_seconds"], 1e-9)
                    bar.update(task, info=f"loss {mean_loss:.3f}  {tps:,.0f} tok/s")
                    if plain:
                        eta = int(self.state["train_seconds"] / step * (self.total_steps - step))
                        print(f"step {step}/{self.total_steps} loss {mean_loss:.4f} "
                              f"lr {self.scheduler.get_last_lr()[0]:.3g} {tps:,.0f} tok/s "
                              f"eta {eta // 3600}:{eta // 60 % 60:02d}:{eta % 60:02d}", file=sys.stderr, flush=True)
                    self.state["history"].append({"step": step, "train_loss": mean_loss,
                                                  "lr": self.scheduler.get_last_lr()[0]})
                    if writer:
                        writer.log({"train/loss": mean_loss, "train/lr": self.scheduler.get_last_lr()[0],
                                    "train/tokens_per_second": tps}, step)
                    running_loss.zero_()
                    running_labels.zero_()
                    running_tokens.zero_()
                if step % self.eval_every == 0 or step == self.total_steps:
                    self.state["train_seconds"] += time.perf_counter() - tick
                    val = self.validation_loss()
                    if val is not None:
                        self.state["history"].append({"step": step, "validation_loss": val})
                        if writer:
                            writer.log({"validation/loss": val}, step)
                    if self._after_eval(val):
                        self.state["stopped_early"] = True
                    tick = time.perf_counter()
                done = step >= self.total_steps or self.state["stopped_early"]
                if step % self.checkpoint_every == 0 or done:
                    self.state["train_seconds"] += time.perf_counter() - tick
                    self.save_checkpoint()
                    tick = time.perf_counter()
                stop = done
                if not done:
                    faults.stop_after_step(step, self.save_checkpoint)
        if writer is not None and writer is self.tracking:
            writer.flush()  # the run logs its test scores to the same trackers, then closes them
        elif writer is not None:
            writer.close()
        best = self.ckpt_root / "best.pt"
        if self.cfg.early_stopping_patience and best.exists():
            _load_trainable_state(unwrapped, faults.load_tensors(best))
        s = self.state
        return TrainResult(
            steps=s["step"], epochs_done=s["step"] * accum / self.batches_per_epoch,
            train_seconds=s["train_seconds"], train_tokens=s["train_tokens"],
            tokens_per_second=s["train_tokens"] / max(s["train_seconds"], 1e-9),
            final_train_loss=s["last_train_loss"], final_validation_loss=s["last_validation_loss"],
            best_validation_loss=s["best_validation_loss"], peak_memory_mb=peak_memory_mb(memory_kind),
            stopped_early=s["stopped_early"], history=s["history"], peak_memory_kind=memory_kind,
        )


def _rng_state() -> dict:
    """Every RNG's state as tensors and plain values, loadable with ``torch.load(weights_only=True)``."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    rng = {"python": random.getstate(), "torch": torch.get_rng_state(),
           "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(gauss)]}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    return rng


def _set_rng_state(rng: dict) -> None:
    random.setstate(rng["python"])
    kind, keys, pos, has_gauss, gauss = rng["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(rng["torch"])
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])


def _rng_neutral(loader):
    """Iterate ``loader`` without touching the global torch RNG.

    Creating a DataLoader iterator draws a seed from the global generator; a resumed run
    creates one at a different moment than an uninterrupted run, which would shift every
    dropout mask after it. Data loading here needs no global randomness, so it is undone.
    """
    it = iter(loader)
    while True:
        state = torch.get_rng_state()
        try:
            batch = next(it)
        except StopIteration:
            return
        finally:
            torch.set_rng_state(state)
        yield batch
