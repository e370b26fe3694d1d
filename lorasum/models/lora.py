"""Where a LoRA rank is applied: target modules per architecture, and the peft wrapping.

``targets`` is a family-independent name (``attention``, ``attention+ffn``,
``all-linear``) or a list of module names. Family names are mapped to the module names
each architecture uses, keeping only those the model really has (T5 v1.0 has ``wi``
where mT5 has ``wi_0``/``wi_1``).
"""
from __future__ import annotations

import torch
from peft import LoraConfig, PeftModel, TaskType, get_peft_model

from lorasum.config import LoraMethod
from lorasum.errors import LorasumError

TARGETS: dict[str, dict[str, list[str]]] = {
    "t5": {"attention": ["q", "k", "v", "o"], "ffn": ["wi", "wi_0", "wi_1", "wo"]},
    "bart": {"attention": ["q_proj", "k_proj", "v_proj", "out_proj"], "ffn": ["fc1", "fc2"]},
    "decoder": {"attention": ["q_proj", "k_proj", "v_proj", "o_proj"],
                "ffn": ["gate_proj", "up_proj", "down_proj"]},
}
TARGETS["seq2seq"] = TARGETS["bart"]


def linear_module_names(model: torch.nn.Module) -> set[str]:
    """Last name component of every Linear layer, except the output head."""
    names = set()
    for full, mod in model.named_modules():
        if isinstance(mod, torch.nn.Linear) and not full.endswith("lm_head"):
            names.add(full.rsplit(".", 1)[-1])
    return names


def resolve_targets(model: torch.nn.Module, fam: str, targets) -> list[str] | str:
    """Module names for ``targets`` on this model; an error names what the model offers instead."""
    present = linear_module_names(model)
    if targets == "all-linear":
        return "all-linear"
    if isinstance(targets, list):
        missing = [t for t in targets if t not in present]
        if missing:
            raise LorasumError(f"method.targets: module(s) {missing} not found in the model; "
                               f"its linear layers are named: {sorted(present)}")
        return list(targets)
    table = TARGETS.get(fam, TARGETS["bart"])
    wanted = table["attention"] + (table["ffn"] if targets == "attention+ffn" else [])
    names = [t for t in wanted if t in present]
    if not names:
        raise LorasumError(f"method.targets: no {targets} modules known for this architecture; "
                           f"list module names explicitly from: {sorted(present)}")
    return names


def apply_lora(model: torch.nn.Module, fam: str, method: LoraMethod) -> PeftModel:
    """Wrap ``model`` with a fresh LoRA adapter as ``method`` describes."""
    task = TaskType.CAUSAL_LM if fam == "decoder" else TaskType.SEQ_2_SEQ_LM
    config = LoraConfig(
        r=method.r,
        lora_alpha=method.alpha,
        lora_dropout=method.dropout,
        target_modules=resolve_targets(model, fam, method.targets),
        task_type=task,
    )
    return get_peft_model(model, config)


def load_adapter(model: torch.nn.Module, adapter_dir: str, *, trainable: bool = False) -> PeftModel:
    """Base model + a saved adapter, through plain ``PeftModel.from_pretrained``."""
    try:
        return PeftModel.from_pretrained(model, adapter_dir, is_trainable=trainable)
    except (OSError, ValueError, RuntimeError, KeyError) as err:  # RuntimeError: shapes of another base model
        lines = [ln.strip() for ln in str(err).strip().splitlines() if ln.strip()]
        first = next((ln for ln in lines if "size mismatch" in ln), lines[0] if lines else type(err).__name__)
        made_for = _adapter_base(adapter_dir)
        hint = (f"; it was made for base model {made_for!r}, not {getattr(model, 'name_or_path', '?')!r}"
                if made_for else "")
        raise LorasumError(f"could not load adapter {adapter_dir}: {first[:300]}{hint}") from None


def _adapter_base(adapter_dir: str) -> str | None:
    import json
    from pathlib import Path

    try:
        return json.loads((Path(adapter_dir) / "adapter_config.json").read_text(encoding="utf-8")).get(
            "base_model_name_or_path")
    except (OSError, ValueError, AttributeError):
        return None


def count_parameters(model: torch.nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total
