"""Saved LoRA adapters with random, clearly different weights, for composition and serving tests."""
from pathlib import Path

import torch


def make_adapter(base_dir, out_dir, *, r: int = 4, alpha: int = 8, seed: int = 0, scale: float = 0.5,
                 targets=("q", "v"), **config) -> Path:
    """Save an adapter on ``base_dir`` whose A and B are random (B is not the usual zeros)."""
    from peft import LoraConfig, TaskType, get_peft_model

    from lorasum.models.load import load_base

    out_dir = Path(out_dir)
    if (out_dir / "adapter_config.json").exists():
        return out_dir
    model, tok, _ = load_base(str(base_dir))
    cfg = LoraConfig(r=r, lora_alpha=alpha, target_modules=list(targets), task_type=TaskType.SEQ_2_SEQ_LM,
                     init_lora_weights=False, **config)
    peft_model = get_peft_model(model, cfg)
    gen = torch.Generator().manual_seed(seed)
    for name, p in peft_model.named_parameters():
        if "lora_A" in name or "lora_B" in name:
            p.data = torch.randn(p.shape, generator=gen) * scale
    peft_model.save_pretrained(out_dir)
    tok.save_pretrained(out_dir)
    return out_dir


def delta_weights(peft_model, adapter_name: str) -> dict[str, torch.Tensor]:
    """Module path -> the adapter's exact weight update (scaling included)."""
    out = {}
    for path, module in peft_model.named_modules():
        if hasattr(module, "get_delta_weight") and adapter_name in getattr(module, "lora_A", {}):
            out[path] = module.get_delta_weight(adapter_name).detach().clone()
    return out
