"""The LM head computed at label positions only gives the loss and gradients of the full head."""
from __future__ import annotations

import pytest
import torch

from lorasum import head_loss
from lorasum.head_loss import head_output_is_returned, linear_cross_entropy
from lorasum.train import IGNORE_INDEX, label_loss, model_inputs, token_loss

VOCAB = 384


def _model(arch: str, tied: bool):
    from transformers import BartConfig, BartForConditionalGeneration, LlamaConfig, LlamaForCausalLM, MT5Config
    from transformers import MT5ForConditionalGeneration

    torch.manual_seed(0)
    if arch == "mt5":
        cfg = MT5Config(vocab_size=VOCAB, d_model=32, d_kv=8, d_ff=64, num_layers=1, num_decoder_layers=1,
                        num_heads=4, decoder_start_token_id=0, pad_token_id=0, eos_token_id=1,
                        tie_word_embeddings=tied, dropout_rate=0.0)
        return MT5ForConditionalGeneration(cfg), False
    if arch == "bart":
        cfg = BartConfig(vocab_size=VOCAB, d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=4,
                         decoder_attention_heads=4, encoder_ffn_dim=64, decoder_ffn_dim=64, pad_token_id=0,
                         eos_token_id=1, bos_token_id=1, decoder_start_token_id=1, dropout=0.0)
        model = BartForConditionalGeneration(cfg)
        with torch.no_grad():  # a non-zero bias must be added to the gathered rows too
            model.final_logits_bias.normal_()
        return model, False
    cfg = LlamaConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                      num_attention_heads=4, num_key_value_heads=2, pad_token_id=0, eos_token_id=1, bos_token_id=1,
                      tie_word_embeddings=tied)
    return LlamaForCausalLM(cfg), True


def _batch(decoder_only: bool) -> dict:
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(3, VOCAB, (3, 12), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0
    mask[2, 4:] = 0
    if decoder_only:  # prompt tokens and padding carry no loss
        labels = ids.clone()
        labels[:, :3] = IGNORE_INDEX
        labels[mask == 0] = IGNORE_INDEX
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}
    labels = torch.randint(3, VOCAB, (3, 9), generator=g)
    labels[0, 6:] = IGNORE_INDEX
    labels[2, 2:] = IGNORE_INDEX
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


@pytest.mark.parametrize("method", ["full", "lora"])
@pytest.mark.parametrize("arch,tied", [("mt5", False), ("mt5", True), ("bart", True), ("llama", False),
                                       ("llama", True)])
def test_label_position_head_matches_the_full_head(arch, tied, method, monkeypatch):
    monkeypatch.setattr(head_loss, "CHUNK_ELEMENTS", VOCAB * 4)  # the fused head in chunks of 4 label positions
    model, decoder_only = _model(arch, tied)
    if method == "lora":
        from peft import LoraConfig, get_peft_model

        targets = ["q", "v"] if arch == "mt5" else ["q_proj", "v_proj"]
        model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=targets, init_lora_weights=False))
    model.train()
    batch = _batch(decoder_only)
    inputs = model_inputs(model, batch, decoder_only)
    # BART adds final_logits_bias after its head: the loss then takes the head's output as it is
    assert head_output_is_returned(model, inputs) == (arch != "bart")

    def grads(loss):
        model.zero_grad(set_to_none=True)
        loss.backward()
        return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    plain = token_loss(model(**inputs).logits, batch["labels"], 0.1, shift=decoder_only, reduction="sum")
    plain_grads = grads(plain)
    gathered = label_loss(model, inputs, batch["labels"], 0.1, shift=decoder_only, reduction="sum")
    gathered_grads = grads(gathered)
    assert torch.allclose(gathered, plain, rtol=1e-5, atol=1e-5)
    assert plain_grads.keys() == gathered_grads.keys() and plain_grads
    for name, g in plain_grads.items():
        # the fused head sums in another order: equal to float rounding at the gradient's own scale
        assert torch.allclose(gathered_grads[name], g, rtol=1e-4, atol=1e-5 * g.abs().max().item()), name
    # the hook is gone afterwards: the model gives full logits again
    assert model(**inputs).logits.shape[:2] == (batch["input_ids"] if decoder_only else batch["labels"]).shape


@pytest.mark.parametrize("chunk_rows", [1, 3, 4, 10, None])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("head", ["trained", "frozen", "frozen, blocks of 7", "frozen, blocks of 7, no bias"])
def test_chunked_head_loss_matches_cross_entropy_of_full_logits(chunk_rows, smoothing, head):
    g = torch.Generator().manual_seed(0)
    hidden = torch.randn(10, 16, generator=g)
    weight = torch.randn(50, 16, generator=g) * 0.3
    bias = None if "no bias" in head else torch.randn(50, generator=g)
    weight[7:14] += 2 * torch.randn(16, generator=g)  # a later block raises some rows' maximum
    targets = torch.randint(0, 50, (10,), generator=g)
    trained = head == "trained"
    block = 7 if "blocks of 7" in head else None  # 50 = 7 blocks of 7 and one of 1

    def loss_and_grads(fn):
        leaves = [t.clone().requires_grad_(i == 0 or trained) if t is not None else None
                  for i, t in enumerate((hidden, weight, bias))]
        loss = fn(*leaves)
        (loss * 0.5).backward()  # backward scales the gradients stored in forward
        return loss.detach(), [t.grad if t is not None else None for t in leaves]

    full, full_grads = loss_and_grads(lambda h, w, b: torch.nn.functional.cross_entropy(
        torch.nn.functional.linear(h, w, b), targets, label_smoothing=smoothing, reduction="sum"))
    fused, fused_grads = loss_and_grads(lambda h, w, b: linear_cross_entropy(
        h, w, b, targets, smoothing, chunk_rows=chunk_rows, vocab_block=block))
    assert torch.allclose(fused, full, rtol=1e-5)
    assert (fused_grads[1] is None) == (not trained)
    for name, a, b in zip(("hidden", "weight", "bias"), fused_grads, full_grads):
        assert (a is None) == (b is None), name
        if a is not None:
            assert torch.allclose(a, b, rtol=1e-4, atol=1e-6), name
    with torch.no_grad():  # no gradients wanted: the loss alone
        assert torch.allclose(linear_cross_entropy(hidden, weight, bias, targets, smoothing, reduction="mean",
                                                   chunk_rows=chunk_rows, vocab_block=block), full / 10, rtol=1e-5)
