"""Export a LoRA run as a standalone model: the adapter merged into the base weights.

peft's ``merge_and_unload`` adds ``B @ A * scale`` to each adapted weight; the result is
saved as safetensors with its tokenizer, so plain ``AutoModelForSeq2SeqLM`` /
``AutoModelForCausalLM.from_pretrained`` loads it without peft.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from lorasum.errors import LorasumError
from lorasum.io import atomic_replace_dir, write_json


def merge(run_or_adapter: str | Path, out_dir: str | Path, *, base: str | None = None) -> Path:
    """Write base + adapter merged into one model folder at ``out_dir``; returns it.

    ``run_or_adapter`` is a LoRA run folder (its base model is read from its config) or an
    adapter folder (its base is ``base``, or the adapter config's ``base_model_name_or_path``).
    """
    from peft import PeftConfig, PeftModel

    from lorasum.compose import adapter_dir
    from lorasum.evaluate import load_for_inference

    path = Path(run_or_adapter)
    if (path / "config.yaml").exists() and base is None:
        if not (path / "adapter").exists():
            raise LorasumError(f"{path}: not a LoRA run (no adapter/ folder); a full run's model/ is already standalone")
        model, tok, _ = load_for_inference(str(path))
    else:
        folder = adapter_dir(path)
        base = base or PeftConfig.from_pretrained(str(folder)).base_model_name_or_path
        if not base:
            raise LorasumError(f"{folder}/adapter_config.json names no base model; pass --base MODEL")
        model, tok, _ = load_for_inference(base, str(folder))
    if not isinstance(model, PeftModel):
        raise LorasumError(f"{path}: no adapter was loaded, nothing to merge")
    _refuse_tied_targets(model, path)
    merged = model.merge_and_unload()
    out_dir = Path(out_dir)
    tmp = out_dir.with_name(f".{out_dir.name}.tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    merged.save_pretrained(str(tmp), safe_serialization=True)
    tok.save_pretrained(str(tmp))
    write_json(tmp / "merged_from.json", {"source": str(path), "base": base})
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    return atomic_replace_dir(tmp, out_dir)


def merged_model(model, where: str | Path):
    """A standalone copy of a peft ``model`` with its adapter merged in; ``model`` itself is left unmerged."""
    import copy

    _refuse_tied_targets(model, where)
    return copy.deepcopy(model).merge_and_unload()


def _refuse_tied_targets(model, where: Path) -> None:
    """Merging into a weight shared with another module (lm_head tied to the input embeddings) changes both."""
    base = model.get_base_model()
    in_emb = base.get_input_embeddings()
    if in_emb is None:
        return
    for name, module in base.named_modules():
        layer = getattr(module, "base_layer", None)
        if hasattr(module, "lora_A") and layer is not None and getattr(layer, "weight", None) is in_emb.weight:
            raise LorasumError(f"{where}: the adapter adapts {name}, whose weight this model ties to its input "
                               "embeddings; merging would change the embeddings too. Serve base + adapter instead")
