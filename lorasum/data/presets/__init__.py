"""Ready-made ``data`` sections for public summarization datasets (``data.preset: <name>``).

Each ``<name>.yaml`` here holds DataConfig fields (source, field names, splits and the
per-language hub configs); a run's own ``data`` fields override the preset's.
"""
from __future__ import annotations

from importlib import resources

import yaml

from lorasum.errors import LorasumError


def preset_names() -> list[str]:
    """Names of the shipped presets."""
    return sorted(p.name[:-5] for p in resources.files(__name__).iterdir() if p.name.endswith(".yaml"))


def load_preset(name: str) -> dict:
    """The DataConfig fields of preset ``name``."""
    path = resources.files(__name__).joinpath(f"{name}.yaml")
    if not path.is_file():
        raise LorasumError(f"unknown data.preset {name!r}; use one of {', '.join(preset_names())}")
    return yaml.safe_load(path.read_text(encoding="utf-8"))
