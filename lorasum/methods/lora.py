"""LoRA (with the rsLoRA and DoRA options): where a rank is applied and how adapters are saved.

``targets`` is a family-independent name (``attention``, ``attention+ffn``,
``all-linear``) or a list of module names. Family names are mapped to the module names
each architecture uses, keeping only those the model really has (T5 v1.0 has ``wi``
where mT5 has ``wi_0``/``wi_1``). The wrapping itself is peft's ``LoraConfig``:
``rslora`` scales the update by alpha/sqrt(r) instead of alpha/r (``use_rslora``),
``dora`` splits each weight into magnitude and direction (``use_dora``).

Study axes: ``rank`` x ``targets`` x ``dora`` x ``rslora``; a cell's label is
``lora-r8-attention``, with ``dora-`` in front for DoRA and ``-rslora`` behind for rsLoRA
(``dora-r8-attention-rslora`` has both).
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal, Union

from pydantic import Field, field_validator, model_serializer

from lorasum.errors import LorasumError
from lorasum.methods.base import Method, MethodAxes, MethodConfig

LoraTargets = Union[Literal["attention", "attention+ffn", "all-linear"], list[str]]

TARGETS: dict[str, dict[str, list[str]]] = {
    "t5": {"attention": ["q", "k", "v", "o"], "ffn": ["wi", "wi_0", "wi_1", "wo"]},
    "bart": {"attention": ["q_proj", "k_proj", "v_proj", "out_proj"], "ffn": ["fc1", "fc2"]},
    "decoder": {"attention": ["q_proj", "k_proj", "v_proj", "o_proj"],
                "ffn": ["gate_proj", "up_proj", "down_proj"]},
}
TARGETS["seq2seq"] = TARGETS["bart"]

# options that are left out of the saved config (and so of study hashes) while off, so
# configs and cells written before they existed keep their hashes
_OFF_BY_DEFAULT = ("rslora", "dora")


class LoraMethod(MethodConfig):
    name: Literal["lora"] = "lora"
    r: int = Field(default=8, ge=1)
    alpha: float = Field(default=16, gt=0)
    dropout: float = Field(default=0.1, ge=0, lt=1)
    targets: LoraTargets = "attention"
    rslora: bool = Field(default=False, description="scale by alpha/sqrt(r) instead of alpha/r (rsLoRA)")
    dora: bool = Field(default=False, description="weight-decomposed LoRA (DoRA)")

    @field_validator("targets")
    @classmethod
    def _targets(cls, v: LoraTargets) -> LoraTargets:
        if isinstance(v, list) and not v:
            raise ValueError("give at least one module name, or attention | attention+ffn | all-linear")
        return v

    @model_serializer(mode="wrap")
    def _omit_off_options(self, handler):
        d = handler(self)
        for k in _OFF_BY_DEFAULT:
            if d.get(k) is False:
                d.pop(k)
        return d


class LoraAxes(MethodAxes):
    """LoRA's study axes; ``rslora``/``dora`` unset means: as the base config says."""

    rank: list[int] = Field(default_factory=lambda: [8], min_length=1)
    targets: list[LoraTargets] = Field(default_factory=lambda: ["attention"], min_length=1)
    # LoRA alpha = alpha_per_rank * rank when set; otherwise the base method's alpha
    alpha_per_rank: float | None = Field(default=None, gt=0)
    rslora: list[bool] | None = Field(default=None, min_length=1)
    dora: list[bool] | None = Field(default=None, min_length=1)

    @field_validator("rank")
    @classmethod
    def _ranks(cls, v: list[int]) -> list[int]:
        if any(r < 1 for r in v):
            raise ValueError("ranks must be >= 1")
        if len(set(v)) != len(v):
            raise ValueError(f"ranks repeat: {v}")
        return v

    @field_validator("rslora", "dora")
    @classmethod
    def _flags(cls, v: list[bool] | None) -> list[bool] | None:
        if v is not None and len(set(v)) != len(v):
            raise ValueError(f"values repeat: {v}")
        return v


def targets_label(targets: LoraTargets) -> str:
    return "+".join(targets) if isinstance(targets, list) else targets


def linear_module_names(model) -> set[str]:
    """Last name component of every Linear layer, except the output head."""
    import torch

    names = set()
    for full, mod in model.named_modules():
        if isinstance(mod, torch.nn.Linear) and not full.endswith("lm_head"):
            names.add(full.rsplit(".", 1)[-1])
    return names


def resolve_targets(model, fam: str, targets) -> list[str] | str:
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


def apply_lora(model, fam: str, method: LoraMethod):
    """Wrap ``model`` with a fresh LoRA adapter as ``method`` describes."""
    from peft import LoraConfig, TaskType, get_peft_model

    task = TaskType.CAUSAL_LM if fam == "decoder" else TaskType.SEQ_2_SEQ_LM
    config = LoraConfig(
        r=method.r,
        lora_alpha=method.alpha,
        lora_dropout=method.dropout,
        target_modules=resolve_targets(model, fam, method.targets),
        use_rslora=method.rslora,
        use_dora=method.dora,
        task_type=task,
    )
    return get_peft_model(model, config)


def load_adapter(model, adapter_dir: str | Path, *, trainable: bool = False):
    """Base model + a saved adapter, through plain ``PeftModel.from_pretrained``."""
    from peft import PeftModel

    try:
        return PeftModel.from_pretrained(model, str(adapter_dir), is_trainable=trainable)
    except (OSError, ValueError, RuntimeError, KeyError) as err:  # RuntimeError: shapes of another base model
        lines = [ln.strip() for ln in str(err).strip().splitlines() if ln.strip()]
        first = next((ln for ln in lines if "size mismatch" in ln), lines[0] if lines else type(err).__name__)
        made_for = _adapter_base(adapter_dir)
        hint = (f"; it was made for base model {made_for!r}, not {getattr(model, 'name_or_path', '?')!r}"
                if made_for else "")
        raise LorasumError(f"could not load adapter {adapter_dir}: {first[:300]}{hint}") from None


def _adapter_base(adapter_dir: str | Path) -> str | None:
    import json

    try:
        return json.loads((Path(adapter_dir) / "adapter_config.json").read_text(encoding="utf-8")).get(
            "base_model_name_or_path")
    except (OSError, ValueError, AttributeError):
        return None


class Lora(Method):
    name = "lora"
    title = "LoRA"
    config_class = LoraMethod
    axes_class = LoraAxes
    artifact_name = "adapter"
    artifact_marker = "adapter_config.json"

    def apply(self, model, family: str, cfg: LoraMethod):
        return apply_lora(model, family, cfg)

    def load_artifact(self, base: str, artifact_dir: str | Path, *, revision: str | None = None,
                      precision: str = "fp32", trainable: bool = False):
        from lorasum.models.load import load_base, load_tokenizer

        model, tok, fam = load_base(base, revision=revision, precision=precision)
        model = load_adapter(model, artifact_dir, trainable=trainable)
        if (Path(artifact_dir) / "tokenizer_config.json").exists():
            tok = load_tokenizer(str(artifact_dir))
        return model, tok, fam

    def label(self, cfg: LoraMethod) -> str:
        head = "dora" if cfg.dora else "lora"
        return f"{head}-r{cfg.r}-{targets_label(cfg.targets)}" + ("-rslora" if cfg.rslora else "")

    def describe(self, cfg: LoraMethod) -> str:
        extra = "".join(f", {n}" for n, on in (("rsLoRA", cfg.rslora), ("DoRA", cfg.dora)) if on)
        return f"LoRA (r={cfg.r}, alpha={cfg.alpha}, dropout={cfg.dropout}, targets={cfg.targets}{extra})"

    def usage(self, cfg: LoraMethod, base: str) -> str:
        return ("from transformers import AutoModelForSeq2SeqLM, AutoTokenizer\n"
                "from peft import PeftModel\n\n"
                f"base = AutoModelForSeq2SeqLM.from_pretrained({base!r})\n"
                "model = PeftModel.from_pretrained(base, \"adapter\").eval()\n"
                "tokenizer = AutoTokenizer.from_pretrained(\"adapter\")\n")

    def variants(self, axes: LoraAxes, base_method: dict) -> list[dict]:
        base_alpha = None
        if base_method.get("name", "lora") == "lora" and "alpha" in base_method:
            base_alpha = float(base_method["alpha"])
        out = []
        for r in axes.rank:
            for t in axes.targets:
                for dora in axes.dora or [None]:
                    for rslora in axes.rslora or [None]:
                        options = {"r": r, "targets": t}
                        alpha = axes.alpha_per_rank * r if axes.alpha_per_rank else base_alpha
                        if alpha is not None:
                            options["alpha"] = alpha
                        if dora is not None:
                            options["dora"] = dora
                        if rslora is not None:
                            options["rslora"] = rslora
                        out.append(options)
        return out

    def axis_columns(self, options: dict) -> dict:
        return {"rank": options["r"], "targets": targets_label(options["targets"]),
                "lora_alpha": options.get("alpha")}
