"""Tiny models built offline from a config, with a byte-level or a SentencePiece tokenizer.

They exercise exactly the code path of a real model (``save_pretrained`` then
``from_pretrained``) without any download. ``ByT5Tokenizer`` needs no vocabulary file, so
every script can be tokenized; :func:`train_sentencepiece` builds a small unigram
vocabulary with ``sentencepiece`` and wraps it in ``T5Tokenizer``/``T5TokenizerFast``, the
tokenizer path mT5 users take. A randomly initialised model's outputs mean nothing; the
pretrained demo model (``lorasum:demo-mt5``, :func:`demo_model_path`) is made by
``scripts/pretrain_demo_model.py`` from such a model.
"""
from __future__ import annotations

from pathlib import Path

import torch

# ByT5: 3 special tokens + 256 bytes + 125 sentinel ids
_VOCAB = 384
DEMO_MODEL = "lorasum:demo-mt5"


def demo_model_path() -> Path:
    """The shipped pretrained demo model (``lorasum:demo-mt5``): ``lorasum/demo/model``."""
    return Path(__file__).resolve().parent.parent / "demo" / "model"


def train_sentencepiece(texts, out_dir: str | Path, *, vocab_size: int = 2000, extra_ids: int = 32,
                        hard_vocab_limit: bool = True):
    """Train a unigram SentencePiece vocabulary on ``texts``; save it as a T5 tokenizer in ``out_dir``.

    Ids follow mT5: pad 0, eos 1, unk 2, no bos; ``extra_ids`` sentinels (``<extra_id_N>``)
    follow the pieces. Digits are split so that numbers are copied digit by digit. Both
    ``spiece.model`` and the ``tokenizer.json`` that ``T5Tokenizer`` converts it to are
    written, so ``AutoTokenizer`` loads it without a conversion. Returns the tokenizer.
    """
    import io

    import sentencepiece as spm
    from transformers import T5Tokenizer

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(list(texts)), model_writer=model, vocab_size=vocab_size, model_type="unigram",
        character_coverage=1.0, pad_id=0, eos_id=1, unk_id=2, bos_id=-1, split_digits=True,
        hard_vocab_limit=hard_vocab_limit, num_threads=1, minloglevel=2)
    (out_dir / "spiece.model").write_bytes(model.getvalue())
    tok = T5Tokenizer.from_pretrained(str(out_dir), extra_ids=extra_ids)
    tok.save_pretrained(out_dir)
    return tok


def build_tiny_model(out_dir: str | Path, arch: str = "mt5", *, d_model: int = 64, layers: int = 2,
                     seed: int = 0, tokenizer_dir: str | Path | None = None) -> Path:
    """Write a tiny randomly initialised ``arch`` model (mt5 | bart | llama) and its tokenizer to ``out_dir``.

    The tokenizer is byte-level (``ByT5Tokenizer``) unless ``tokenizer_dir`` holds one
    (e.g. from :func:`train_sentencepiece`; mt5 only), whose size sets the vocabulary.
    """
    from transformers import AutoTokenizer, ByT5Tokenizer

    out_dir = Path(out_dir)
    if (out_dir / "config.json").exists():
        return out_dir
    torch.manual_seed(seed)
    if tokenizer_dir is not None and arch != "mt5":
        raise ValueError(f"a SentencePiece tokenizer is supported for the tiny mt5 only, not {arch!r}")
    tok = ByT5Tokenizer() if tokenizer_dir is None else AutoTokenizer.from_pretrained(str(tokenizer_dir))
    vocab = _VOCAB if tokenizer_dir is None else -(-len(tok) // 8) * 8  # a multiple of 8, as mT5's
    if arch == "mt5":
        from transformers import MT5Config, MT5ForConditionalGeneration

        cfg = MT5Config(vocab_size=vocab, d_model=d_model, d_kv=d_model // 4, d_ff=d_model * 2, num_layers=layers,
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
