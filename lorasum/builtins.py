"""Built-in ``lorasum:`` names, understood wherever a model or data source is named.

``model: lorasum:tiny-mt5`` (or ``tiny-bart``, ``tiny-llama``) is a tiny randomly
initialised model built offline from a config; ``data.source: lorasum:demo`` is the
embedded sample. Every command resolves these names the same way (run YAMLs, study specs,
``lorasum train``, ``evaluate``, ``summarize``), through :mod:`lorasum.models.load` and
:mod:`lorasum.data.sources`. A tiny model is built once into a cache folder
(``$LORASUM_CACHE``, default ``~/.cache/lorasum``), atomically, so two processes never see
half a model.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from lorasum.errors import LorasumError

BUILTIN_PREFIX = "lorasum:"
DEMO_DATA = "lorasum:demo"
CACHE_ENV = "LORASUM_CACHE"


def is_builtin(name: str) -> bool:
    return isinstance(name, str) and name.startswith(BUILTIN_PREFIX)


def cache_root() -> Path:
    """Where built-in models are built: ``$LORASUM_CACHE`` or ``~/.cache/lorasum``."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "lorasum").expanduser()


def demo_data_path() -> Path:
    return Path(__file__).resolve().parent / "demo" / "data.jsonl"


def resolve_data_source(source: str) -> str:
    """``lorasum:demo`` -> the embedded sample's path; any other source unchanged."""
    if source == DEMO_DATA:
        path = demo_data_path()
        if not path.is_file():
            raise LorasumError(f"data.source {DEMO_DATA}: the embedded demo data is missing ({path})")
        return str(path)
    if is_builtin(source):
        raise LorasumError(f"data.source {source!r}: unknown built-in; the one built-in is {DEMO_DATA}")
    return source


def resolve_model(name: str, cache_dir: str | Path | None = None) -> str:
    """``lorasum:tiny-<arch>`` -> a tiny model folder built offline once under ``cache_dir``
    (default :func:`cache_root`); any other name unchanged."""
    if not is_builtin(name):
        return name
    from lorasum.models.tiny import DEMO_MODEL, demo_model_path

    if name == DEMO_MODEL:  # the shipped pretrained demo model, nothing to build
        path = demo_model_path()
        if not (path / "config.json").is_file():
            raise LorasumError(f"model {name!r}: the shipped demo model is missing ({path}); rebuild it with "
                               "`python scripts/pretrain_demo_model.py` from a source checkout")
        return str(path)
    key = name[len(BUILTIN_PREFIX):]
    arch = key[len("tiny-"):] if key.startswith("tiny-") else ""
    if arch not in ("mt5", "bart", "llama"):
        raise LorasumError(f"model {name!r}: unknown built-in; use {DEMO_MODEL} (pretrained), lorasum:tiny-mt5, "
                           "lorasum:tiny-bart or lorasum:tiny-llama (random)")
    final = Path(cache_dir if cache_dir is not None else cache_root()) / "models" / key
    if (final / "config.json").is_file():
        return str(final)
    from lorasum.models.tiny import build_tiny_model

    final.parent.mkdir(parents=True, exist_ok=True)
    # build beside, then rename: a crash or a second process never sees half a model
    tmp = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=final.parent))
    try:
        built = Path(build_tiny_model(tmp / "model", arch=arch))
        try:
            os.replace(built, final)
        except OSError:
            if not (final / "config.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return str(final)
