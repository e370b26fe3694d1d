"""A run with ``init_from`` continues the parent's weights (few-shot transfer), for every method."""
import torch

from lora_factory import make_adapter
from lorasum.methods import Full
from lorasum.models.load import load_base
from lorasum.run import build_model


def test_full_run_starts_from_the_parent_model_not_the_base(tiny_mt5, tiny_run_config, tmp_path):
    parent, tok, _ = load_base(str(tiny_mt5))
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in parent.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=gen))
    Full().save_artifact(parent, tok, tmp_path / "parent")  # a finished full run's model/ folder
    cfg = tiny_run_config(tiny_mt5, "full").model_copy(update={"init_from": str(tmp_path / "parent")})
    model, _, _ = build_model(cfg)
    base, _, _ = load_base(str(tiny_mt5))
    got, want, fresh = model.state_dict(), parent.state_dict(), base.state_dict()
    assert got.keys() == want.keys()
    for k in want:
        assert torch.equal(got[k], want[k]), k
    assert any(not torch.equal(got[k], fresh[k]) for k in fresh)
    assert all(p.requires_grad for p in model.parameters())


def test_lora_run_continues_the_parent_adapter_trainably(tiny_mt5, tiny_run_config, tmp_path):
    adapter = make_adapter(tiny_mt5, tmp_path / "parent" / "adapter", r=4, alpha=8, seed=5)
    cfg = tiny_run_config(tiny_mt5, "lora").model_copy(update={"init_from": str(tmp_path / "parent")})
    model, _, _ = build_model(cfg)
    from safetensors.torch import load_file

    saved = load_file(str(adapter / "adapter_model.safetensors"))
    lora = {n: p for n, p in model.named_parameters() if "lora_" in n}
    assert len(lora) == len(saved) > 0 and all(p.requires_grad for p in lora.values())
    for n, p in lora.items():
        key = n.replace(".default", "")
        assert torch.equal(p.detach(), saved[key]), n
