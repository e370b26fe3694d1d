"""Tiny NLI models built offline: a BERT classifier with a character vocabulary, and a T5 judge."""
from __future__ import annotations

import string
from pathlib import Path

import torch

LABELS = ("entailment", "neutral", "contradiction")
_CHARS = string.ascii_lowercase + string.digits


def build_classifier(out_dir: Path, labels=LABELS, *, winner: int | None = None, max_positions: int = 64,
                     seed: int = 0) -> Path:
    """A tiny BertForSequenceClassification with ``id2label`` from ``labels``, saved and ready to load.

    ``winner``: rig the head so that class index always wins (zero weights, large bias).
    """
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    out_dir.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *_CHARS, ".", ",", *("##" + c for c in _CHARS)]
    (out_dir / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tok = BertTokenizer(str(out_dir / "vocab.txt"), model_max_length=max_positions)
    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=max_positions, num_labels=len(labels),
                     id2label=dict(enumerate(labels)), label2id={v: k for k, v in enumerate(labels)})
    model = BertForSequenceClassification(cfg)
    if winner is not None:
        with torch.no_grad():
            model.classifier.weight.zero_()
            model.classifier.bias.zero_()
            model.classifier.bias[winner] = 20.0
    model.save_pretrained(out_dir)
    tok.save_pretrained(out_dir)
    return out_dir


def build_judge(out_dir: Path) -> Path:
    """A tiny mT5 judge with a byte-level tokenizer (outputs mean nothing, but are deterministic)."""
    from lorasum.models.tiny import build_tiny_model

    return build_tiny_model(out_dir, "mt5", d_model=32, layers=1)
