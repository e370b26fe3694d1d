"""What a fine-tuning method is to lorasum: one module per method, of the same shape.

Each method (``full``, ``lora``, ...) is a :class:`Method` subclass in its own module of
this package. It owns everything that differs between methods: its typed config (one
member of the run config's ``method`` union), how it prepares a base model for training,
how its artifact is saved, found and loaded, the label its cells carry in study ids and
reports, and how a study's axes expand into its variants. Modules outside this package ask
the registry (:mod:`lorasum.methods`) instead of branching on the method's name.
"""
from __future__ import annotations

import shutil
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from lorasum.io import atomic_replace_dir

# Files an artifact folder holds besides the weights: the tokenizer's (counted apart) ...
TOKENIZER_PATTERNS = ("tokenizer*", "special_tokens_map.json", "added_tokens.json", "*.model", "vocab.*",
                      "merges.txt", "chat_template.*")
# ... and the weights themselves, which are what ``artifact_bytes`` counts
WEIGHT_PATTERNS = ("*.safetensors", "*.bin")


class MethodConfig(BaseModel):
    """Base of every method's config section; ``name`` is the union's discriminator."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)
    name: str


class MethodAxes(BaseModel):
    """Base of a method's study axes (fields merged into the study spec's ``axes``)."""

    model_config = ConfigDict(extra="forbid")


class Method(ABC):
    """One fine-tuning method. Subclasses set the class attributes and implement the hooks."""

    name: ClassVar[str]
    title: ClassVar[str]  # in messages and model cards, e.g. "LoRA"
    config_class: ClassVar[type[MethodConfig]]
    axes_class: ClassVar[type[MethodAxes]] = MethodAxes
    artifact_name: ClassVar[str]  # the artifact's folder inside a run folder
    artifact_marker: ClassVar[str]  # a file only this method's artifact folder holds

    @abstractmethod
    def apply(self, model, family: str, cfg: MethodConfig):
        """The base ``model`` prepared for training with a fresh ``cfg`` (wrapped, or as it is)."""

    @abstractmethod
    def load_artifact(self, base: str, artifact_dir: str | Path, *, revision: str | None = None,
                      precision: str = "fp32", trainable: bool = False):
        """(model, tokenizer, family) from a saved artifact; ``base`` is the run's base model name."""

    @abstractmethod
    def label(self, cfg: MethodConfig) -> str:
        """Short name of ``cfg`` in cell ids and reports, e.g. ``full`` or ``lora-r8-attention``."""

    def describe(self, cfg: MethodConfig) -> str:
        """One line for the model card."""
        return self.title

    def usage(self, cfg: MethodConfig, base: str) -> str:
        """Python lines that load the artifact with transformers/peft alone (model card)."""
        return ("from transformers import AutoModelForSeq2SeqLM, AutoTokenizer\n\n"
                f"model = AutoModelForSeq2SeqLM.from_pretrained({self.artifact_name!r}).eval()\n"
                f"tokenizer = AutoTokenizer.from_pretrained({self.artifact_name!r})\n")

    def variants(self, axes: Any, base_method: dict) -> list[dict]:
        """Method-config fields of each variant the study ``axes`` ask for (default: one, no fields).

        ``base_method`` is the study base's ``method`` section (for values the axes inherit).
        """
        return [{}]

    def axis_columns(self, options: dict) -> dict:
        """Values for the results table's axis columns (``rank``, ``targets``, ...) of a variant."""
        return {}

    def save_artifact(self, model, tokenizer, run_dir: str | Path) -> Path:
        """Write the trained artifact and the tokenizer into ``run_dir/<artifact_name>`` atomically."""
        run_dir = Path(run_dir)
        tmp = run_dir / f".{self.artifact_name}.tmp"
        if tmp.exists():
            shutil.rmtree(tmp)
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        return atomic_replace_dir(tmp, run_dir / self.artifact_name)

    def holds_artifact(self, path: Path) -> bool:
        """Whether ``path`` is an artifact folder of this method."""
        return (Path(path) / self.artifact_marker).is_file()


def _files(folder: Path, patterns: tuple[str, ...]) -> list[Path]:
    return sorted({p for pat in patterns for p in Path(folder).glob(pat) if p.is_file()})


def weight_files(artifact_dir: str | Path) -> list[Path]:
    """The weight files of an artifact folder (``*.safetensors``/``*.bin``, shards included)."""
    return _files(Path(artifact_dir), WEIGHT_PATTERNS)


def artifact_sizes(artifact_dir: str | Path) -> dict[str, int]:
    """``artifact_bytes`` (weights only) and ``tokenizer_bytes`` of an artifact folder."""
    weights = weight_files(artifact_dir)
    tok = [p for p in _files(Path(artifact_dir), TOKENIZER_PATTERNS) if p not in weights]
    return {"artifact_bytes": sum(p.stat().st_size for p in weights),
            "tokenizer_bytes": sum(p.stat().st_size for p in tok)}
