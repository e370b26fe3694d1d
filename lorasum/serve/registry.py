"""The adapters a server offers: found once, at start, in one folder given by the operator.

Each subfolder holding ``adapter_config.json`` is an adapter named after the subfolder and
serving the language its name is (``en/``, ``russian/``); a run folder holding ``adapter/``
serves the languages its run was trained on (``config.yaml`` ``data.languages``). Requests
name an adapter or a language, never a path. Symlinks leading out of the folder are
refused, and only safetensors weights are accepted (a pickled ``.bin`` can run code).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from lorasum.errors import LorasumError


@dataclass(frozen=True)
class AdapterEntry:
    """One servable adapter: its name, folder, languages and the base model it was trained on."""

    name: str
    path: Path
    languages: tuple[str, ...]
    base: str | None = None


@dataclass
class Registry:
    """Adapters by name, and the adapters serving each language."""

    adapters: dict[str, AdapterEntry]
    by_lang: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self):
        for entry in self.adapters.values():
            for lang in entry.languages:
                self.by_lang.setdefault(lang, []).append(entry.name)


def _inside(path: Path, root: Path, what: str) -> Path:
    real = path.resolve()
    if real != root and root not in real.parents:
        raise LorasumError(f"{path}: {what} leads outside the adapters folder {root}; copy it in instead")
    return real


def _run_languages(run: Path) -> tuple[str, ...]:
    from lorasum.config import read_yaml
    from lorasum.languages import normalize_lang

    cfg = read_yaml(run / "config.yaml")
    langs = (cfg.get("data") or {}).get("languages") or ["en"]  # RunConfig's default
    langs = [langs] if isinstance(langs, str) else langs
    return tuple(normalize_lang(x, f"{run}/config.yaml: data.languages") for x in langs)


def _name_language(name: str) -> tuple[str, ...]:
    from lorasum.languages import normalize_lang

    try:
        return (normalize_lang(name),)
    except LorasumError:
        return ()


def _check_weights(folder: Path) -> None:
    if not (folder / "adapter_model.safetensors").exists():
        found = "adapter_model.bin" if (folder / "adapter_model.bin").exists() else "no adapter_model.safetensors"
        raise LorasumError(f"{folder}: {found}; only safetensors adapters are served (convert it by loading it and "
                           "calling save_pretrained(..., safe_serialization=True))")


def discover(root: str | Path) -> Registry:
    """Every adapter under ``root`` (one level deep); an error names a folder that cannot be served."""
    import json

    root_in = Path(root)
    if not root_in.is_dir():
        raise LorasumError(f"--adapters: folder not found: {root_in}")
    root = root_in.resolve()
    adapters: dict[str, AdapterEntry] = {}
    for sub in sorted(p for p in root_in.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if (sub / "adapter_config.json").exists():
            folder, langs = sub, _name_language(sub.name)
        elif (sub / "adapter" / "adapter_config.json").exists():
            folder = sub / "adapter"
            langs = _run_languages(sub) if (sub / "config.yaml").exists() else _name_language(sub.name)
        else:
            continue
        folder = _inside(folder, root, "the adapter folder")
        for f in folder.iterdir():
            _inside(f, root, f"file {f.name}")
        _check_weights(folder)
        base = json.loads((folder / "adapter_config.json").read_text(encoding="utf-8")).get("base_model_name_or_path")
        adapters[sub.name] = AdapterEntry(sub.name, folder, langs, base)
    if not adapters:
        raise LorasumError(f"--adapters: {root_in} holds no adapter (subfolders with adapter_config.json, or run "
                           "folders with adapter/)")
    return Registry(adapters)
