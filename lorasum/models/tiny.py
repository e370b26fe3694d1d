"""Tiny randomly initialised models with a byte-level tokenizer, built offline from a config.

They exercise exactly the code path of a real model (``save_pretrained`` then
``from_pretrained``) without any download; their outputs mean nothing. ``ByT5Tokenizer``
needs no vocabulary file, so every script can be tokenized.
"""
from __future__ import annotations

from pathlib import Path

import torch

# ByT5: 3 special tokens + 256 bytes + 125 sentinel ids
_VOCAB = 384


def build_tiny_model(out_dir: str | Path, arch: str = "mt5", *, d_model: int = 64, layers: int = 2,
                     seed: int = 0) -> Path:
    """Write a tiny ``arch`` model (mt5 | bart | llama) and its tokenizer to ``out_dir``."""
    from transformers import ByT5Tokenizer

    out_dir = Path(out_dir)
    if (out_dir / "config.json").exists():
        return out_dir
    torch.manual_seed(seed)
    tok = ByT5Tokenizer()
    if arch == "mt5":
        from transformers import MT5Config, MT5ForConditionalGeneration

        cfg = MT5Config(vocab_size=_VOCAB, d_model=d_model, d_kv=d_model // 4, d_ff=d_model * 2, num_layers=layers,
                        num_decoder_layers=layers, num_heads=4, decoder_start_token_id=0, pad_token_id=0,
                        eos_token_id=1, tie_word_embeddings=False,
                        initializer_factor=0.1)  # the default 1.0 gives logits of std ~sqrt(d_model)
        model = MT5ForConditionalGeneration(cfg)
    elif arch == "bart":
        from transformers import BartConfig, BartForConditionalGeneration

        cfg = BartConfig(vocab_size=_VOCAB, d_model=d_model, encoder_layers=layers, decoder_layers=layers,
                         encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=d_model * 2,
                         decoder_ffn_dim=d_model * 2, max_position_embeddings=1024, pad_token_id=0,
                         eos_token_id=1, bos_token_id=1, decoder_start_token_id=1, forced_eos_token_id=1)
        model = BartForConditionalGeneration(cfg)
    elif arch == "llama":
        from transformers import LlamaConfig, LlamaForCausalLM

        cfg = LlamaConfig(vocab_size=_VOCAB, hidden_size=d_model, intermediate_size=d_model * 2,
                          num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                          max_position_embeddings=2048, pad_token_id=0, eos_token_id=1, bos_token_id=1,
                          tie_word_embeddings=False)
        model = LlamaForCausalLM(cfg)
    else:
        raise ValueError(f"unknown tiny architecture {arch!r}; use mt5, bart or llama")
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    tmp.rename(out_dir)
    return out_dir
