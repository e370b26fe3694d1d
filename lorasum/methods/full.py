"""Full fine-tuning: every weight of the base model trains; the artifact is the whole model."""
from __future__ import annotations

from pathlib import Path
from typing import Literal

from lorasum.methods.base import Method, MethodConfig


class FullMethod(MethodConfig):
    name: Literal["full"] = "full"


class Full(Method):
    name = "full"
    title = "full fine-tuning"
    config_class = FullMethod
    artifact_name = "model"
    artifact_marker = "config.json"

    def apply(self, model, family: str, cfg: FullMethod):
        return model

    def load_artifact(self, base: str, artifact_dir: str | Path, *, revision: str | None = None,
                      precision: str = "fp32", trainable: bool = False):
        from lorasum.models.load import load_base

        # the artifact is a complete model folder: the base is not needed
        return load_base(str(artifact_dir), precision=precision)

    def label(self, cfg: FullMethod) -> str:
        return "full"
