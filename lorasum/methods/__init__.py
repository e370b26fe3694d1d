"""The fine-tuning methods lorasum knows, one module each (peft's layout).

Adding a method: write ``lorasum/methods/<name>.py`` with a config class (a
:class:`~lorasum.methods.base.MethodConfig` whose ``name`` is a ``Literal``) and a
:class:`~lorasum.methods.base.Method` subclass, then add an instance to ``METHODS`` below.
The run config's ``method`` union, the study spec's method axes and every place that
trains, saves, loads, labels or reports a method read this registry.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Union

from pydantic import Field

from lorasum.errors import LorasumError
from lorasum.methods.base import Method, MethodAxes, MethodConfig, artifact_sizes, weight_files
from lorasum.methods.full import Full, FullMethod
from lorasum.methods.lora import Lora, LoraMethod, LoraTargets

METHODS: dict[str, Method] = {m.name: m for m in (Full(), Lora())}
NAMES: tuple[str, ...] = tuple(METHODS)
# the method every other one is compared with in reports
BASELINE = "full"
# the method of a config whose ``method`` section names none
DEFAULT_METHOD = "lora"

MethodUnion = Annotated[Union[tuple(m.config_class for m in METHODS.values())], Field(discriminator="name")]


def get_method(name: str) -> Method:
    """The registered method called ``name``."""
    try:
        return METHODS[name]
    except KeyError:
        raise LorasumError(f"unknown method {name!r}; known: {', '.join(NAMES)}") from None


def method_of(cfg: MethodConfig) -> Method:
    """The method a validated config section belongs to."""
    return get_method(cfg.name)


def label(cfg: MethodConfig) -> str:
    """Cell-id / report label of a method config, e.g. ``full`` or ``lora-r8-attention``."""
    return method_of(cfg).label(cfg)


def find_artifact(path: str | Path) -> tuple[Method, Path]:
    """(method, artifact folder) for a run folder or an artifact folder."""
    path = Path(path)
    for m in METHODS.values():
        if m.holds_artifact(path):
            return m, path
    for m in METHODS.values():
        if m.holds_artifact(path / m.artifact_name):
            return m, path / m.artifact_name
    markers = " or ".join(f"{m.artifact_name} ({m.artifact_marker})" for m in METHODS.values())
    raise LorasumError(f"{path} holds no {markers}")


__all__ = ["BASELINE", "DEFAULT_METHOD", "METHODS", "NAMES", "Method", "MethodAxes", "MethodConfig", "MethodUnion", "Full",
           "FullMethod", "Lora", "LoraMethod", "LoraTargets", "artifact_sizes", "find_artifact", "get_method",
           "label", "method_of", "weight_files"]
