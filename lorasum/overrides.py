"""Config overrides from the command line, field names users bring from other tools, and
"did you mean" suggestions for unknown fields.

``lorasum train run.yaml training.lr=3e-4 method.r=16`` sets dotted paths in the raw YAML
mapping before validation; each value is parsed with ``yaml.safe_load`` so ``3e-4`` is a
number, ``[q, v]`` a list and ``null`` None. Names from transformers' ``TrainingArguments``
and peft's ``LoraConfig`` (``learning_rate``, ``lora_alpha``, ...) are renamed to lorasum's
field in the right section, wherever the user wrote them, so the resolved config shows
lorasum's name. Neither library maps foreign names onto a pydantic schema, hence this module.
"""
from __future__ import annotations

import copy
import difflib
from typing import Any

import yaml

from lorasum.errors import LorasumError

# foreign name -> (section, lorasum field); only names whose meaning is unambiguous
ALIASES: dict[str, tuple[str, str]] = {
    "learning_rate": ("training", "lr"),
    "num_train_epochs": ("training", "epochs"),
    "per_device_train_batch_size": ("training", "batch_size"),
    "train_batch_size": ("training", "batch_size"),
    "gradient_accumulation_steps": ("training", "grad_accum"),
    "warmup_ratio": ("training", "warmup_ratio"),
    "max_steps": ("training", "max_steps"),
    "weight_decay": ("training", "weight_decay"),
    "max_grad_norm": ("training", "max_grad_norm"),
    "label_smoothing_factor": ("training", "label_smoothing"),
    "lr_scheduler_type": ("training", "schedule"),
    "seed": ("training", "seed"),
    "save_steps": ("training", "checkpoint_every"),
    "eval_steps": ("training", "eval_every"),
    "save_total_limit": ("training", "keep_checkpoints"),
    "lora_rank": ("method", "r"),
    "lora_r": ("method", "r"),
    "lora_alpha": ("method", "alpha"),
    "lora_dropout": ("method", "dropout"),
    "target_modules": ("method", "targets"),
    "lora_target": ("method", "targets"),
    "use_rslora": ("method", "rslora"),
    "use_dora": ("method", "dora"),
    "model_name_or_path": ("model", "name"),
    "dataset_name": ("data", "source"),
    "generation_num_beams": ("generation", "num_beams"),
    "per_device_eval_batch_size": ("generation", "batch_size"),
}

# names that only get a suggestion: renaming them silently could hide a mistake
HINTS: dict[str, str] = {"rank": "method.r", "warmup_steps": "training.warmup_ratio (a fraction of all steps)",
                         "num_epochs": "training.epochs", "gradient_accumulation": "training.grad_accum"}

SECTIONS = ("model", "data", "method", "training", "generation")


def known_fields() -> dict[str, set[str]]:
    """Field names per section ("" is the top level); ``method`` joins every method's fields."""
    from lorasum.config import DataConfig, GenerationConfig, ModelConfig, RunConfig, TrainingConfig
    from lorasum.methods import METHODS

    method_fields: set[str] = set()
    for m in METHODS.values():
        method_fields |= set(m.config_class.model_fields)
    return {"": set(RunConfig.model_fields), "model": set(ModelConfig.model_fields),
            "data": set(DataConfig.model_fields), "method": method_fields,
            "training": set(TrainingConfig.model_fields), "generation": set(GenerationConfig.model_fields)}


def suggest(section: str, key: str) -> str | None:
    """A "did you mean" text for an unknown ``key`` found in ``section`` ("" = top level), or None."""
    fields = known_fields()
    if key in ALIASES:
        sec, name = ALIASES[key]
        return f"{sec}.{name}"
    if key in HINTS:
        return HINTS[key]
    # the right name in the wrong place (``lr`` at the top level)
    homes = [f"{s}.{key}" for s in SECTIONS if key in fields[s] and s != section]
    if homes:
        return " or ".join(homes)
    close = difflib.get_close_matches(key, sorted(fields.get(section, set())), n=1, cutoff=0.6)
    if close:
        return f"{section}.{close[0]}" if section else close[0]
    everywhere = {f"{s}.{f}": f for s in SECTIONS for f in fields[s]}
    everywhere.update({a: a for a in ALIASES})
    close = difflib.get_close_matches(key, sorted(set(everywhere.values())), n=1, cutoff=0.75)
    if close:
        if close[0] in ALIASES:
            return "{}.{}".format(*ALIASES[close[0]])
        return next(p for p, f in sorted(everywhere.items()) if f == close[0])
    return None


def _section(data: dict, name: str) -> dict:
    sec = data.get(name)
    if sec is None:
        sec = data[name] = {}
    elif isinstance(sec, str) and name in ("model", "method"):
        sec = data[name] = {"name": sec}  # the shorthand ``method: lora``
    if not isinstance(sec, dict):
        raise LorasumError(f"{name}: must be a mapping of fields, not {type(sec).__name__}")
    return sec


def resolve_aliases(data: dict) -> dict:
    """Return a copy of a raw run mapping with foreign field names moved to lorasum's names.

    An alias is looked for at the top level and inside every section; a value given under
    both names is an error naming both.
    """
    data = copy.deepcopy(data or {})
    moves: list[tuple[str | None, str]] = [(None, k) for k in list(data) if k in ALIASES]
    for s in SECTIONS:
        if isinstance(data.get(s), dict):
            moves += [(s, k) for k in list(data[s]) if k in ALIASES and k not in known_fields()[s]]
    for where, key in moves:
        value = (data if where is None else data[where]).pop(key)
        sec, name = ALIASES[key]
        target = _section(data, sec)
        if name in target:
            raise LorasumError(f"{key} and {sec}.{name} both given; keep one ({key} means {sec}.{name})")
        target[name] = value
    return data


def _index(node: list, key: str, item: str, where: str) -> int:
    if not key.isdigit() or int(key) >= len(node):
        raise LorasumError(f"override '{item}': {where} is a list of {len(node)}; "
                           f"index it with a number from 0 to {len(node) - 1}")
    return int(key)


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Return a copy of a raw mapping with ``dotted.path=value`` strings applied in order.

    A number indexes a list (``scenarios.0.shots=[16]`` in a study spec); a ``model`` or
    ``method`` given by name alone is opened into ``{name: ...}`` when a field under it is set.
    """
    data = copy.deepcopy(data or {})
    for item in overrides:
        path, eq, text = item.partition("=")
        if not eq or not path.strip() or any(not p for p in path.split(".")):
            raise LorasumError(f"override '{item}': write it as section.field=value (e.g. training.lr=3e-4)")
        try:
            value = yaml.safe_load(text) if text.strip() else text
        except yaml.YAMLError:
            raise LorasumError(f"override '{item}': the value is not valid YAML") from None
        *parents, leaf = path.strip().split(".")
        node = data
        for i, p in enumerate(parents):
            if isinstance(node, list):
                node = node[_index(node, p, item, ".".join(parents[:i]))]
            elif isinstance(node.get(p), list):
                node = node[p]
            elif i == 0 or (p in ("model", "method") and isinstance(node.get(p), str)):
                node = _section(node, p)
            else:
                node = node.setdefault(p, {})
            if not isinstance(node, (dict, list)):
                raise LorasumError(f"override '{item}': {'.'.join(parents[:i + 1])} is not a section")
        if isinstance(node, list):
            node[_index(node, leaf, item, ".".join(parents))] = value
        else:
            node[leaf] = value
    return data
