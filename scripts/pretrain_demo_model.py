"""Pretrain the demo's tiny mT5 (``lorasum:demo-mt5``) and write it to ``lorasum/demo/model``.

A randomly initialised model learns next to nothing from the demo's 64 training articles per
language, so the demo would show ROUGE ~0 for both methods. This script gives the tiny model
some knowledge first, as mT5 gets it, by denoising unlabelled text:

1. Corpus: synthetic news from the templates of ``scripts/make_demo_data.py`` with a different
   seed, articles and summaries as separate documents. Every article or summary that also
   occurs in the demo's validation or test split is dropped, so the model never sees a test
   text; article->summary pairs are never shown together.
2. Tokenizer: a unigram SentencePiece vocabulary trained on that corpus
   (:func:`lorasum.models.tiny.train_sentencepiece`), loaded through ``T5Tokenizer``.
3. Objective, half of the examples each: T5 span corruption (15% of tokens in spans of mean
   length 3, each span replaced by a sentinel; the target lists the spans) and BART-style
   text infilling (spans replaced by one sentinel; the target is the whole document), which
   teaches the decoder to write whole sentences and copy names and numbers from the input.
4. Weights are stored in fp16 safetensors (half the size; ``lorasum`` loads them as fp32).

The loop is a few lines of plain PyTorch because pretraining here is a one-off recipe with a
hand-made objective, not a fine-tuning run. Deterministic for a given seed and thread count.
Run once by a developer (26 minutes on one CPU thread of a heavily shared 2-core machine):
``python scripts/pretrain_demo_model.py``.
"""
from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_demo_data import LANGS, make_article, make_rows  # noqa: E402

from lorasum.models.tiny import build_tiny_model, demo_model_path, train_sentencepiece  # noqa: E402

SETTINGS = {
    "seed": 2026,
    "docs_per_lang": 1500,
    "vocab_size": 2000,
    "extra_ids": 32,
    "d_model": 128,
    "layers": 2,
    "steps": 700,
    "batch_size": 16,
    "lr": 3e-3,
    "warmup_steps": 50,
    "noise_density": 0.15,
    "mean_span": 3.0,
    "max_length": 80,
    "threads": 1,
}


def corpus(seed: int, docs_per_lang: int) -> list[str]:
    """Template articles and summaries, none of which occurs in the demo's validation or test split."""
    held_out = {t for r in make_rows() if r["split"] != "train" for t in (r["text"], r["summary"])}
    docs = []
    for lang, spec in LANGS.items():
        rng = random.Random(f"pretrain:{seed}:{lang}")
        for _ in range(docs_per_lang):
            text, summary = make_article(spec, rng)
            docs += [d for d in (text, summary) if d not in held_out]
    return docs


def _spans(n: int, density: float, mean_span: float, rng: random.Random) -> list[tuple[int, int]]:
    """Non-overlapping (start, end) spans covering about ``density`` of ``n`` tokens."""
    n_noise = max(1, round(n * density))
    n_spans = max(1, round(n_noise / mean_span))
    starts = sorted(rng.sample(range(n), min(n_spans, n)))
    spans, last_end = [], 0
    for s in starts:
        s = max(s, last_end)
        e = min(n, s + max(1, round(rng.expovariate(1 / mean_span))))
        if s < e:
            spans.append((s, e))
            last_end = e + 1  # keep one token between spans so each gets its own sentinel
    return spans


def make_example(ids: list[int], sentinel0: int, eos: int, rng: random.Random, s: dict) -> tuple[list, list]:
    """(input ids, target ids) for one document: span corruption or text infilling, at random."""
    spans = _spans(len(ids), s["noise_density"], s["mean_span"], rng)
    src, tgt, pos = [], [], 0
    for k, (a, b) in enumerate(spans):
        src += ids[pos:a] + [sentinel0 - k]
        tgt += [sentinel0 - k] + ids[a:b]
        pos = b
    src += ids[pos:]
    if rng.random() < 0.5:
        tgt = ids  # infilling: write the whole document
    return src[: s["max_length"] - 1] + [eos], tgt[: s["max_length"] - 1] + [eos]


def pretrain(out_dir: Path, s: dict, log_every: int = 25) -> dict:
    """Build the corpus, tokenizer and model, pretrain, and write the model folder to ``out_dir``."""
    torch.set_num_threads(s["threads"])
    rng = random.Random(s["seed"])
    start = time.perf_counter()
    docs = corpus(s["seed"], s["docs_per_lang"])
    work = out_dir.with_name(out_dir.name + ".work")
    shutil.rmtree(work, ignore_errors=True)
    tok = train_sentencepiece(docs, work / "tokenizer", vocab_size=s["vocab_size"], extra_ids=s["extra_ids"],
                              hard_vocab_limit=False)
    model_dir = build_tiny_model(work / "model", "mt5", d_model=s["d_model"], layers=s["layers"], seed=s["seed"],
                                 tokenizer_dir=work / "tokenizer")
    from transformers import MT5ForConditionalGeneration

    model = MT5ForConditionalGeneration.from_pretrained(model_dir, dtype=torch.float32)
    encoded = [tok(d, add_special_tokens=False).input_ids for d in docs]
    sentinel0 = tok.convert_tokens_to_ids("<extra_id_0>")  # sentinels count down from here, as in mT5
    eos, pad = tok.eos_token_id, tok.pad_token_id
    opt = torch.optim.AdamW(model.parameters(), lr=s["lr"], weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: min((i + 1) / s["warmup_steps"],
                                                                 max(0.0, (s["steps"] - i) / (s["steps"] - s["warmup_steps"]))))
    torch.manual_seed(s["seed"])
    model.train()
    losses, curve = [], []
    for step in range(s["steps"]):
        batch = [make_example(encoded[rng.randrange(len(encoded))], sentinel0, eos, rng, s)
                 for _ in range(s["batch_size"])]
        ls = max(len(a) for a, _ in batch)
        lt = max(len(b) for _, b in batch)
        input_ids = torch.tensor([a + [pad] * (ls - len(a)) for a, _ in batch])
        labels = torch.tensor([b + [-100] * (lt - len(b)) for _, b in batch])
        loss = model(input_ids=input_ids, attention_mask=(input_ids != pad).long(), labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.item())
        if (step + 1) % log_every == 0:
            mean = sum(losses[-log_every:]) / log_every
            curve.append({"step": step + 1, "loss": round(mean, 4)})
            print(f"step {step + 1}/{s['steps']}  loss {mean:.3f}  {time.perf_counter() - start:.0f} s", flush=True)
    final = work / "final"
    model.half().save_pretrained(final)
    tok.save_pretrained(final)
    shutil.copy(work / "tokenizer" / "spiece.model", final / "spiece.model")
    info = {"settings": s, "documents": len(docs), "vocabulary": len(tok),
            "parameters": sum(p.numel() for p in model.parameters()), "loss_curve": curve,
            "final_loss": curve[-1]["loss"] if curve else None,
            "seconds": round(time.perf_counter() - start, 1), "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__}
    (final / "pretraining.json").write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
    card = Path(__file__).resolve().parents[1] / "lorasum" / "demo" / "MODEL_CARD.md"
    if card.is_file():
        shutil.copy(card, final / "README.md")
    if out_dir.exists():
        shutil.rmtree(out_dir)
    final.rename(out_dir)
    shutil.rmtree(work, ignore_errors=True)
    return info


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--output", type=Path, default=demo_model_path())
    ap.add_argument("--steps", type=int, default=SETTINGS["steps"])
    args = ap.parse_args()
    info = pretrain(args.output, {**SETTINGS, "steps": args.steps})
    size = sum(p.stat().st_size for p in args.output.iterdir()) / 1e6
    print(f"wrote {args.output}: {info['parameters']:,} parameters, vocabulary {info['vocabulary']}, "
          f"{size:.2f} MB, final loss {info['final_loss']}, {info['seconds']} s")


if __name__ == "__main__":
    main()
