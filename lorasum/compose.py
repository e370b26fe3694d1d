"""Compose per-language LoRA adapters into one: weighted sums, fixed or learnt on a few examples.

The composed adapter is a plain peft adapter folder (``PeftModel.from_pretrained`` loads it).
Exactness in weight space is the point: the composed update of every module must be
``dW = sum_i w_i * B_i @ A_i * scale_i``. peft's ``add_weighted_adapter`` is used for the
arithmetic; what each of its methods does (read from peft's ``tuners/lora/model.py``):

* ``cat`` (exact): stacks ``w_i * scale_i * A_i`` and the ``B_i``; the new rank is the sum of
  the ranks and the new scale is 1 (``lora_alpha = r``), so ``B_cat @ A_cat`` is the exact sum.
* ``svd`` (exact up to truncation): SVD of the exact sum ``sum_i w_i * get_delta_weight(i)``,
  truncated to ``svd_rank`` (default: the largest input rank); exact when that rank suffices.
* ``linear`` / ``ties`` / ``dare_ties`` (not exact): they combine the A's and the B's
  separately (``sqrt(|w|)`` on each), so the product has cross terms ``B_i @ A_j``; they are
  offered as peft implements them, labelled ``exact: false``.

The new adapter's config is copied from the first input with ``r = lora_alpha = new rank``,
which is only right for plain LoRA scaling: rsLoRA (scale ``alpha / sqrt(r)``), DoRA (a
magnitude vector that does not add) and per-module rank/alpha patterns are refused.

Learnt weights (LoraHub, Huang et al. 2023): a gradient-free search (nevergrad ``NGOpt``)
over weights in [-1.5, 1.5] minimising the loss on k target examples plus ``0.05 * sum|w|``
(the penalty factor is a parameter).
Unlike LoraHub, which scales A and B each by w (an update not linear in w), each candidate
here is the exact weighted sum: a ``cat`` adapter is built once and only its A rows are
rescaled in place per candidate, so no candidate is saved or reloaded.
"""
from __future__ import annotations

import json
import logging
import random
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch

from lorasum.errors import LorasumError
from lorasum.io import atomic_replace_dir, write_json

log = logging.getLogger(__name__)

METHODS = ("cat", "svd", "linear", "ties", "dare_ties")
EXACT = {"cat": True, "svd": True, "linear": False, "ties": False, "dare_ties": False}
WEIGHT_BOUND = 1.5
L1_PENALTY = 0.05
COMPOSED = "composed"


@dataclass
class SourceAdapter:
    """One input of a composition: its name (e.g. a language), folder and peft config."""

    name: str
    path: Path
    config: object  # peft LoraConfig


def adapter_dir(path: str | Path) -> Path:
    """The adapter folder of a run folder (``run/adapter``) or an adapter folder itself."""
    p = Path(path)
    if (p / "adapter_config.json").exists():
        return p
    if (p / "adapter" / "adapter_config.json").exists():
        return p / "adapter"
    raise LorasumError(f"{p}: no LoRA adapter here (expected adapter_config.json, or a run folder with adapter/)")


def read_source(name: str, path: str | Path) -> SourceAdapter:
    """Read an adapter's peft config; refuse configs whose weighted sum peft cannot build exactly."""
    from peft import LoraConfig, PeftConfig

    folder = adapter_dir(path)
    try:
        cfg = PeftConfig.from_pretrained(str(folder))
    except (OSError, ValueError, TypeError) as err:
        raise LorasumError(f"{folder}/adapter_config.json: not a readable peft config ({err})") from None
    if not isinstance(cfg, LoraConfig):
        raise LorasumError(f"{folder}: a {type(cfg).__name__} adapter; only LoRA adapters can be composed")
    where = f"{folder}/adapter_config.json"
    if cfg.use_rslora:
        raise LorasumError(f"{where}: use_rslora is true; the composed adapter would be rescaled by sqrt(r), "
                           "so rsLoRA adapters cannot be composed exactly")
    if getattr(cfg, "use_dora", False):
        raise LorasumError(f"{where}: use_dora is true; DoRA magnitudes do not add, so DoRA adapters cannot be "
                           "composed as a weighted sum")
    if cfg.rank_pattern or cfg.alpha_pattern:
        raise LorasumError(f"{where}: rank_pattern/alpha_pattern are set; only adapters with one rank and alpha "
                           "for all modules can be composed")
    if cfg.modules_to_save:
        raise LorasumError(f"{where}: modules_to_save {sorted(cfg.modules_to_save)} are full copies of modules "
                           "and cannot be weighted; compose adapters without them")
    if getattr(cfg, "target_parameters", None):
        raise LorasumError(f"{where}: target_parameters adapters cannot be composed")
    return SourceAdapter(name, folder, cfg)


def canonical_base(name: str) -> tuple[str, str]:
    """("folder", resolved path) for a local model folder, ("hub id", lowercased id) otherwise."""
    p = Path(name).expanduser()
    if p.exists():
        return "folder", str(p.resolve())
    return "hub id", name.strip().rstrip("/").lower()


def check_compatible(sources: list[SourceAdapter], base: str | None = None) -> str:
    """The common base model of ``sources``; an error names the adapter that differs and how."""
    if not sources:
        raise LorasumError("--adapters: give at least one NAME=RUN_OR_ADAPTER")
    names = [s.name for s in sources]
    if len(set(names)) != len(names):
        raise LorasumError(f"--adapters: names repeat: {names}")
    first = sources[0]
    want = base or first.config.base_model_name_or_path
    if not want:
        raise LorasumError(f"{first.path}/adapter_config.json has no base_model_name_or_path; pass --base MODEL")
    kind, canon = canonical_base(want)
    for s in sources:
        got = s.config.base_model_name_or_path
        if got is None:
            continue
        gkind, gcanon = canonical_base(got)
        if (gkind, gcanon) != (kind, canon):
            hint = (" (one is a local folder and the other a hub id: they cannot be proven the same model; "
                    "compose adapters trained from the same base reference)") if gkind != kind else ""
            raise LorasumError(f"adapter {s.name!r} ({s.path}) was trained on base {got!r} ({gkind}), not on "
                               f"{want!r} ({kind}){hint}")
        if s.config.task_type != first.config.task_type:
            raise LorasumError(f"adapter {s.name!r}: task_type {s.config.task_type} differs from "
                               f"{first.name!r}'s {first.config.task_type}")
        if _targets(s.config) != _targets(first.config):
            raise LorasumError(f"adapter {s.name!r} targets modules {_targets(s.config)}, adapter {first.name!r} "
                               f"targets {_targets(first.config)}; composed adapters need the same targets")
    return want


def _targets(cfg) -> list[str] | str:
    t = cfg.target_modules
    return t if isinstance(t, str) else sorted(t)


def load_sources(sources: list[SourceAdapter], base: str):
    """(peft model holding every source adapter under its name, tokenizer, family)."""
    from peft import PeftModel

    from lorasum.models.load import load_base

    model, tok, fam = load_base(base)
    try:
        peft_model = PeftModel.from_pretrained(model, str(sources[0].path), adapter_name=sources[0].name)
        for s in sources[1:]:
            peft_model.load_adapter(str(s.path), adapter_name=s.name)
    except (OSError, ValueError, RuntimeError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise LorasumError(f"could not load the adapters onto {base}: {first}") from None
    peft_model.eval()
    return peft_model, tok, fam


def add_composed(peft_model, names: list[str], weights: list[float], method: str, *, adapter_name: str = COMPOSED,
                 svd_rank: int | None = None, density: float | None = None, seed: int = 0) -> None:
    """Add ``adapter_name`` = the ``method`` combination of ``names`` with ``weights`` to ``peft_model``."""
    if method not in METHODS:
        raise LorasumError(f"--method: {method!r} is not one of {', '.join(METHODS)}")
    if len(weights) != len(names):
        raise LorasumError(f"--weights: {len(weights)} weight(s) for {len(names)} adapter(s); give one per adapter")
    if method in ("ties", "dare_ties") and density is None:
        density = 0.5
    kwargs = {"density": density} if method in ("ties", "dare_ties") else {}
    if method == "svd":
        kwargs["svd_rank"] = svd_rank
    torch.manual_seed(seed)  # dare drops entries at random
    try:
        peft_model.add_weighted_adapter(names, [float(w) for w in weights], adapter_name, combination_type=method,
                                        **kwargs)
    except ValueError as err:
        raise LorasumError(f"--method {method}: {err}") from None


def _save_adapter(peft_model, tokenizer, adapter_name: str, out_dir: Path, meta: dict) -> Path:
    tmp = out_dir.with_name(f".{out_dir.name}.tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    peft_model.save_pretrained(str(tmp), selected_adapters=[adapter_name], safe_serialization=True)
    # peft writes a non-default adapter into a subfolder named after it; the result is a plain adapter folder
    inner = tmp / adapter_name if (tmp / adapter_name / "adapter_config.json").exists() else tmp
    if inner != tmp:
        for f in inner.iterdir():
            f.rename(tmp / f.name)
        inner.rmdir()
    tokenizer.save_pretrained(str(tmp))
    write_json(tmp / "compose.json", meta)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    return atomic_replace_dir(tmp, out_dir)


def compose(adapters: dict[str, str], weights: list[float], out_dir: str | Path, *, method: str = "cat",
            base: str | None = None, svd_rank: int | None = None, density: float | None = None,
            seed: int = 0) -> Path:
    """Write the weighted composition of ``adapters`` (name -> run or adapter folder) to ``out_dir``."""
    sources = [read_source(n, p) for n, p in adapters.items()]
    base = check_compatible(sources, base)
    model, tok, _ = load_sources(sources, base)
    names = [s.name for s in sources]
    add_composed(model, names, weights, method, svd_rank=svd_rank, density=density, seed=seed)
    meta = {"method": method, "exact": EXACT[method], "base": base,
            "sources": {s.name: str(s.path) for s in sources}, "weights": dict(zip(names, map(float, weights)))}
    if method == "svd":
        meta["svd_rank"] = svd_rank
    if method in ("ties", "dare_ties"):
        meta["density"] = density if density is not None else 0.5
    return _save_adapter(model, tok, COMPOSED, Path(out_dir), meta)


# ---- learnt weights (LoraHub-style) ----

def read_examples(path: str | Path, k: int, seed: int) -> list[dict]:
    """A seeded sample of ``k`` rows ({"text", "summary"}) of a JSONL file."""
    path = Path(path)
    if not path.exists():
        raise LorasumError(f"--examples: file not found: {path}")
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise LorasumError(f"{path}:{n}: not valid JSON ({err.msg})") from None
        if not isinstance(row, dict) or not str(row.get("text", "")).strip() or not str(row.get("summary", "")).strip():
            raise LorasumError(f"{path}:{n}: each line needs non-empty \"text\" and \"summary\" fields")
        rows.append({"id": row.get("id", n), "lang": row.get("lang", "en"), "text": row["text"],
                     "summary": row["summary"]})
    if not rows:
        raise LorasumError(f"{path}: no examples found")
    return rows if len(rows) <= k else random.Random(seed).sample(rows, k)


class CatWeights:
    """A ``cat`` adapter over the sources whose per-source weights are set in place.

    The adapter is built with all weights 1, so its A holds the blocks ``scale_i * A_i``; a
    candidate ``w`` multiplies block i's rows by ``w_i``, giving exactly ``sum_i w_i * dW_i``.
    """

    def __init__(self, peft_model, sources: list[SourceAdapter], adapter_name: str = "search"):
        names = [s.name for s in sources]
        add_composed(peft_model, names, [1.0] * len(names), "cat", adapter_name=adapter_name)
        self.model, self.name = peft_model, adapter_name
        ranks = torch.tensor([s.config.r for s in sources])
        self.layers = []
        for module in peft_model.modules():
            lora_a = getattr(module, "lora_A", None)
            if lora_a is not None and adapter_name in lora_a:
                weight = lora_a[adapter_name].weight
                self.layers.append((weight, weight.data.clone()))
        self.ranks = ranks
        peft_model.set_adapter(adapter_name)
        peft_model.eval()

    def set(self, weights) -> None:
        rows = torch.repeat_interleave(torch.as_tensor(weights, dtype=torch.float32), self.ranks)
        for weight, unit in self.layers:
            weight.data.copy_(unit * rows[:, None].to(unit.dtype))


def example_loss(model, tokenizer, fam: str, rows: list[dict], *, max_source_length: int = 512,
                 max_target_length: int = 84, batch_size: int = 8) -> float:
    """Mean token cross-entropy of the reference summaries of ``rows`` (teacher forcing)."""
    from lorasum.data.features import Collator, encode_seq2seq

    if fam == "decoder":
        from lorasum.config import ModelConfig
        from lorasum.data.causal import encode_causal

        feats = encode_causal(rows, tokenizer, max_source_length=max_source_length,
                              max_target_length=max_target_length, prompt_template=ModelConfig().prompt_template)
        collate = Collator(tokenizer.pad_token_id, padding_side="left")
    else:
        feats = encode_seq2seq(rows, tokenizer, max_source_length, max_target_length)
        collate = Collator(tokenizer.pad_token_id)
    total, tokens = 0.0, 0
    with torch.inference_mode():
        for i in range(0, len(feats), batch_size):
            batch = collate(feats[i:i + batch_size])
            n = int((batch["labels"] != -100).sum())
            out = model(**batch)
            total += float(out.loss) * n
            tokens += n
    return total / max(tokens, 1)


def learn_weights(adapters: dict[str, str], examples: str | Path, out_dir: str | Path, *, k: int = 16,
                  budget: int = 40, seed: int = 0, method: str = "cat", base: str | None = None,
                  max_source_length: int = 512, max_target_length: int = 84,
                  l1_penalty: float = L1_PENALTY) -> dict:
    """Search weights for ``adapters`` on k examples of a JSONL file, compose with them into ``out_dir``.

    See :func:`fit_weights`; the record's ``examples`` names the file.
    """
    if budget < 1 or k < 1:
        raise LorasumError("--budget and --k must be at least 1")
    rows = read_examples(examples, k, seed)
    return fit_weights(adapters, rows, out_dir, budget=budget, seed=seed, method=method, base=base,
                       max_source_length=max_source_length, max_target_length=max_target_length,
                       l1_penalty=l1_penalty, examples=str(examples))


def fit_weights(adapters: dict[str, str], rows: list[dict], out_dir: str | Path, *, budget: int = 40,
                seed: int = 0, method: str = "cat", base: str | None = None, max_source_length: int = 512,
                max_target_length: int = 84, l1_penalty: float = L1_PENALTY, examples: str | list | None = None) -> dict:
    """Search weights for ``adapters`` on ``rows`` ({"text", "summary"}), compose with them into ``out_dir``.

    The record (``learned_weights.json`` in ``out_dir``) holds the weights found, the loss
    of every evaluation in order (the search curve), the number of evaluations and
    ``examples`` (what the rows were: a file name, or their ids).
    """
    import nevergrad as ng
    import numpy as np

    if budget < 1 or not rows:
        raise LorasumError("the weight search needs a budget of at least 1 and at least one example")
    sources = [read_source(n, p) for n, p in adapters.items()]
    base = check_compatible(sources, base)
    model, tok, fam = load_sources(sources, base)
    search = CatWeights(model, sources)
    names = [s.name for s in sources]
    curve: list[dict] = []

    def objective(w: np.ndarray) -> float:
        search.set(w)
        loss = example_loss(model, tok, fam, rows, max_source_length=max_source_length,
                            max_target_length=max_target_length)
        penalty = l1_penalty * float(np.abs(w).sum())
        curve.append({"evaluation": len(curve) + 1, "weights": [round(float(x), 6) for x in w],
                      "loss": loss, "objective": loss + penalty})
        return loss + penalty

    param = ng.p.Array(init=np.zeros(len(names)), lower=-WEIGHT_BOUND, upper=WEIGHT_BOUND)
    param.random_state = np.random.RandomState(seed)
    optimizer = ng.optimizers.NGOpt(parametrization=param, budget=budget)
    recommendation = optimizer.minimize(objective)
    best = [float(x) for x in recommendation.value]
    model.delete_adapter(search.name)
    add_composed(model, names, best, method, seed=seed)
    record = {"weights": dict(zip(names, best)), "optimizer": "nevergrad.NGOpt", "budget": budget,
              "evaluations": len(curve), "seed": seed, "k": len(rows),
              "examples": examples if examples is not None else [r.get("id") for r in rows],
              "bounds": [-WEIGHT_BOUND, WEIGHT_BOUND], "l1_penalty": l1_penalty, "curve": curve}
    meta = {"method": method, "exact": EXACT[method], "base": base,
            "sources": {s.name: str(s.path) for s in sources}, "weights": record["weights"], "learned": True}
    out = _save_adapter(model, tok, COMPOSED, Path(out_dir), meta)
    write_json(out / "learned_weights.json", record)
    return record
