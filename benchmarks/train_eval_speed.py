"""Training throughput and test-set evaluation time: lorasum against the peer at its best, in one run.

The peer is ``Seq2SeqTrainer`` + peft at its best settings: dynamic padding
(``DataCollatorForSeq2Seq``), ``group_by_length=True`` for training, and
``predict_with_generate`` over the test set sorted by length (so its batches are padded to
their own longest article, not to ``max_source_length``). The variant of
``run_summarization.py --pad_to_max_length`` (every example padded to the maximum,
``default_data_collator``) is kept as an extra, labelled column ("padded peer"). All sides
start from the same model (built offline), the same initial weights, data, LoRA settings,
optimizer, learning rate, steps, batch size, beams and threads. Every side's predictions are
scored with lorasum's scorer (:func:`lorasum.metrics.score_items`), so equal predictions give
equal ROUGE; every evaluation decodes the weights lorasum trained, which makes the
predictions comparable one by one.

Figures (each side timed ``--repeats`` times, interleaved; min and median reported with the
1-minute load average around each run, since the machine may be shared):
- training tokens/s: real (non-pad) source + summary tokens of the training examples,
  times the epochs run, divided by the wall time of training (trainer set-up included).
- evaluation seconds: wall time to generate summaries for the test split and score them
  (per-item ROUGE and the bootstrap corpus figures).

``--vocab 32000`` gives the model a vocabulary of mT5's order (a byte-level BPE trained on the
benchmark's own text, as many pieces as that text yields, and an LM head of ``--vocab`` rows):
the head and its loss are then about a third of the forward compute, as in mT5-small, so
wins that matter at real scale show on a CPU. The default is the byte tokenizer (384 ids).

    python benchmarks/train_eval_speed.py                         # ~5 minutes on 2 CPU cores
    python benchmarks/train_eval_speed.py --vocab 32000           # mT5-like cost profile
    python benchmarks/train_eval_speed.py --data xlsum            # ../shared/data/xlsum_sample.jsonl
    python benchmarks/train_eval_speed.py --d-model 512 --layers 8 --train-examples 2000 --num-beams 4  # GPU
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
warnings.filterwarnings("ignore")

import torch  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
XLSUM_SAMPLE = REPO.parent / "shared" / "data" / "xlsum_sample.jsonl"
if (REPO.parent / "shared" / "data" / "nltk_data").is_dir():  # stopwords for XL-Sum-exact stemming
    os.environ.setdefault("NLTK_DATA", str(REPO.parent / "shared" / "data" / "nltk_data"))
# dense bf16 peak FLOP/s, for MFU on GPUs that lorasum is commonly run on
PEAK_FLOPS = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L4": 121e12, "A10": 125e12, "4090": 165e12}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default="demo", help="demo (embedded sample), xlsum (../shared/data/xlsum_sample.jsonl) "
                   "or a JSONL path with id/lang/split/text/summary")
    p.add_argument("--langs", nargs="+", default=None, help="default: every language of the data")
    p.add_argument("--train-examples", type=int, default=64, help="per language")
    p.add_argument("--test-examples", type=int, default=12, help="per language")
    p.add_argument("--d-model", type=int, default=128)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--method", choices=["lora", "full"], default="lora", help="method of the head-to-head")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--eval-batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--max-source-length", type=int, default=512)
    p.add_argument("--max-target-length", type=int, default=84)
    p.add_argument("--num-beams", type=int, default=4, help="4 (XL-Sum and lorasum default); 1 for greedy")
    p.add_argument("--threads", type=int, default=1, help="CPU threads for both sides (0: PyTorch's default); "
                   "one is as fast for the tiny default model and immune to OpenMP spinning on shared cores")
    p.add_argument("--repeats", type=int, default=3, help="each side is timed this many times, interleaved "
                   "(lorasum, peer, padded peer, lorasum, ...); min and median reported")
    p.add_argument("--vocab", type=int, default=0, help="0: byte tokenizer (384 ids); N: a BPE tokenizer trained "
                   "on the benchmark text and an LM head of N rows (32000: mT5-like cost profile)")
    p.add_argument("--no-padded", action="store_true", help="skip the padded-to-max peer (extra column)")
    p.add_argument("--no-ct2", action="store_true", help="skip the lorasum+ct2 column (generation.backend: "
                   "ctranslate2; skipped anyway when ctranslate2 is not installed)")
    p.add_argument("--skip-full", action="store_true", help="skip the lorasum full fine-tuning run (memory table)")
    return p.parse_args(argv)


def data_source(name: str) -> str:
    if name == "demo":
        from lorasum.demo import DATA

        return str(DATA)
    if name == "xlsum":
        if not XLSUM_SAMPLE.exists():
            sys.exit(f"--data xlsum: {XLSUM_SAMPLE} not found")
        return str(XLSUM_SAMPLE)
    return name


def languages_in(path: str) -> list[str]:
    seen = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            lang = json.loads(line)["lang"]
            if lang not in seen:
                seen.append(lang)
    return seen


def run_config(args, model_dir: Path, method: str):
    from lorasum.config import parse_run_config

    source = data_source(args.data)
    lora = {"name": "lora", "r": 8, "alpha": 16, "dropout": 0.0, "targets": "attention"}
    return parse_run_config({
        "model": str(model_dir),
        "data": {"source": source, "languages": args.langs or languages_in(source),
                 "train_examples": args.train_examples, "test_examples": args.test_examples,
                 "validation_examples": 1},
        "method": lora if method == "lora" else {"name": "full"},
        "training": {"epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr, "warmup_ratio": 0.0,
                     "schedule": "linear", "label_smoothing": 0.0, "max_grad_norm": 1.0, "seed": 0,
                     "precision": "bf16" if torch.cuda.is_available() else "fp32",
                     "max_source_length": args.max_source_length, "max_target_length": args.max_target_length,
                     "checkpoint_every": 10**6},
        "generation": {"num_beams": args.num_beams, "length_penalty": 0.6, "no_repeat_ngram_size": 2,
                       "max_source_length": args.max_source_length, "max_target_length": args.max_target_length,
                       "batch_size": args.eval_batch_size},
    }, "benchmark")


def state_mb(model, optimizer) -> float:
    """Weights + gradients + optimizer state held by the training, in MiB (what LoRA saves)."""
    n = sum(p.numel() * p.element_size() for p in model.parameters())
    n += sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)  # gradients
    for s in optimizer.state.values():
        n += sum(t.numel() * t.element_size() for t in s.values() if torch.is_tensor(t))
    return n / 2**20


def reset_peak():
    if torch.cuda.is_available():
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def peak_mb() -> float | None:
    return torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None


def sync():
    if torch.cuda.is_available():
        torch.cuda.synchronize()


# -- lorasum ------------------------------------------------------------------------------
def lorasum_train(cfg, train_rows, out_dir: Path):
    from transformers import set_seed

    from lorasum.run import build_model, encode
    from lorasum.train import Trainer

    set_seed(cfg.training.seed)
    model, tok, fam = build_model(cfg)
    features = encode(train_rows, tok, fam, cfg, None)
    reset_peak()
    sync()
    t0 = time.perf_counter()
    trainer = Trainer(model, features, [], cfg.training, out_dir, pad_token_id=tok.pad_token_id,
                      is_decoder_only=fam == "decoder", progress=False)
    result = trainer.train()
    sync()
    seconds = time.perf_counter() - t0
    return trainer.acc.unwrap_model(trainer.model), tok, {
        "seconds": seconds, "steps": result.steps, "final_loss": result.final_train_loss,
        "state_mb": state_mb(trainer.model, trainer.optimizer), "peak_mb": peak_mb(),
        "trainable": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "total": sum(p.numel() for p in model.parameters()),
    }


def lorasum_evaluate(model, tok, cfg, test_rows, out_dir: Path):
    from lorasum.evaluate import evaluate_examples

    sync()
    t0 = time.perf_counter()
    rouge, _, _ = evaluate_examples(model, tok, "t5", test_rows, cfg.generation, out_dir, progress=False)
    sync()
    seconds = time.perf_counter() - t0
    preds = [json.loads(line)["prediction"] for line in (out_dir / "predictions.jsonl").read_text().splitlines()]
    return preds, rouge, seconds


def ct2_available(args) -> bool:
    if args.no_ct2:
        return False
    try:
        import ctranslate2  # noqa: F401
    except ImportError:
        return False
    return True


def ct2_convert(model, tok, cache: Path) -> float:
    """Convert the trained weights once (what the first ctranslate2 evaluation of a run does); seconds taken."""
    from lorasum.backends.ctranslate2 import converted_model

    t0 = time.perf_counter()
    converted_model(model, tok, "float32", cache=cache)
    return time.perf_counter() - t0


def lorasum_ct2_evaluate(model, tok, cfg, test_rows, out_dir: Path):
    """lorasum_evaluate with generation.backend: ctranslate2 (the conversion is cached by then)."""
    gen = cfg.generation.model_copy(update={"backend": "ctranslate2"})
    return lorasum_evaluate(model, tok, cfg.model_copy(update={"generation": gen}), test_rows, out_dir)


def print_ct2_agreement(preds: dict, test_rows) -> None:
    """Share of identical predictions and ROUGE-L difference, ctranslate2 against transformers on the same weights."""
    from lorasum.backends.ctranslate2 import agreement

    a = agreement(preds["lorasum"], preds["lorasum+ct2"], [r["summary"] for r in test_rows],
                  [r["lang"] for r in test_rows])
    print(f"lorasum+ct2 vs lorasum (same weights): identical predictions {a['identical']:.1%} of {a['n']}; "
          f"mean ROUGE-L {a['rougeL_other']:.2f} vs {a['rougeL_reference']:.2f} (diff {a['rougeL_diff']:+.2f})")


# -- the peer: Seq2SeqTrainer + peft, at its best (dynamic padding) or padded to the maximum ------
def baseline_datasets(tok, rows, args, padded: bool):
    """Tokenized as run_summarization.py does: padded to the maximum only with --pad_to_max_length."""
    from datasets import Dataset

    padding = "max_length" if padded else False

    def preprocess(batch):
        inputs = tok(batch["text"], max_length=args.max_source_length, padding=padding, truncation=True)
        labels = tok(text_target=batch["summary"], max_length=args.max_target_length, padding=padding,
                     truncation=True)
        inputs["labels"] = [[(t if t != tok.pad_token_id else -100) for t in seq] for seq in labels["input_ids"]]
        return inputs

    ds = Dataset.from_list([{"text": r["text"], "summary": r["summary"]} for r in rows])
    return ds.map(preprocess, batched=True, remove_columns=["text", "summary"])


def baseline_collator(tok, model, padded: bool):
    from transformers import DataCollatorForSeq2Seq, default_data_collator

    return default_data_collator if padded else DataCollatorForSeq2Seq(tok, model=model, label_pad_token_id=-100)


def baseline_args(args, out_dir: Path, steps: int, padded: bool):
    from transformers import Seq2SeqTrainingArguments

    return Seq2SeqTrainingArguments(
        output_dir=str(out_dir), per_device_train_batch_size=args.batch_size,
        per_device_eval_batch_size=args.eval_batch_size, learning_rate=args.lr, max_steps=steps,
        lr_scheduler_type="linear", warmup_steps=0, weight_decay=0.0, max_grad_norm=1.0, seed=0,
        logging_steps=max(1, steps // 4), save_strategy="no", eval_strategy="no", report_to="none",
        predict_with_generate=True, generation_max_length=args.max_target_length,
        train_sampling_strategy="random" if padded else "group_by_length",
        generation_num_beams=args.num_beams, bf16=torch.cuda.is_available(), use_cpu=not torch.cuda.is_available(),
        disable_tqdm=True, dataloader_num_workers=0,
    )


def baseline_model(model_dir: Path, method: str):
    from peft import LoraConfig, TaskType, get_peft_model
    from transformers import AutoModelForSeq2SeqLM, set_seed

    set_seed(0)
    model = AutoModelForSeq2SeqLM.from_pretrained(model_dir)
    if method == "lora":
        model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, task_type=TaskType.SEQ_2_SEQ_LM,
                                                 target_modules=["q", "k", "v", "o"]))
    return model


def baseline_train(args, model_dir: Path, tok, train_rows, steps: int, out_dir: Path, padded: bool):
    from transformers import Seq2SeqTrainer

    model = baseline_model(model_dir, args.method)
    train_ds = baseline_datasets(tok, train_rows, args, padded)  # tokenization is outside the timed part everywhere
    reset_peak()
    sync()
    t0 = time.perf_counter()
    trainer = Seq2SeqTrainer(model=model, args=baseline_args(args, out_dir, steps, padded), train_dataset=train_ds,
                             data_collator=baseline_collator(tok, model, padded), processing_class=tok)
    out = trainer.train()
    sync()
    seconds = time.perf_counter() - t0
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    return {"seconds": seconds, "steps": out.global_step, "final_loss": losses[-1] if losses else None,
            "state_mb": state_mb(trainer.model, trainer.optimizer), "peak_mb": peak_mb()}


def baseline_evaluate(args, model, tok, test_rows, out_dir: Path, padded: bool):
    """predict_with_generate (test set sorted by length unless padded to the maximum), decode, lorasum's scorer."""
    import numpy as np
    from transformers import Seq2SeqTrainer

    from lorasum.metrics import corpus_scores, score_items

    sync()
    t0 = time.perf_counter()
    test_ds = baseline_datasets(tok, test_rows, args, padded)
    order = list(range(len(test_rows)))
    if not padded:  # longest first, so each batch is padded to lengths close to its own
        order.sort(key=lambda i: -len(test_ds[i]["input_ids"]))
        test_ds = test_ds.select(order)
    trainer = Seq2SeqTrainer(model=model, args=baseline_args(args, out_dir, 1, padded),
                             data_collator=baseline_collator(tok, model, padded), processing_class=tok)
    out = trainer.predict(test_ds, max_new_tokens=args.max_target_length, num_beams=args.num_beams,
                          length_penalty=0.6, no_repeat_ngram_size=2)
    ids = np.where(out.predictions != -100, out.predictions, tok.pad_token_id)
    preds = [""] * len(test_rows)
    for i, text in zip(order, tok.batch_decode(ids, skip_special_tokens=True)):
        preds[i] = text.strip()
    langs = [r["lang"] for r in test_rows]
    items = score_items(preds, [r["summary"] for r in test_rows], langs)
    rouge = corpus_scores(items, langs, resamples=1000, seed=0)
    sync()
    return preds, rouge, time.perf_counter() - t0


def warm_up(model, tok, rows) -> None:
    """One-time costs (segmenter dictionaries, stemmers, first generate call) paid before either side is timed."""
    from lorasum.metrics import score_items

    one_per_lang = list({r["lang"]: r for r in rows}.values())
    score_items([r["summary"] for r in one_per_lang], [r["summary"] for r in one_per_lang],
                [r["lang"] for r in one_per_lang])
    with torch.inference_mode():
        model.generate(**tok(["warm up"], return_tensors="pt").to(next(model.parameters()).device), max_new_tokens=2)


def real_tokens(tok, rows, args) -> int:
    src = tok([r["text"] for r in rows], max_length=args.max_source_length, truncation=True)["input_ids"]
    tgt = tok(text_target=[r["summary"] for r in rows], max_length=args.max_target_length,
              truncation=True)["input_ids"]
    return sum(map(len, src)) + sum(map(len, tgt))


def mfu(tokens_per_s: float, params: int) -> str:
    if not torch.cuda.is_available():
        return "n/a (CPU)"
    name = torch.cuda.get_device_name()
    peak = next((v for k, v in PEAK_FLOPS.items() if k in name), None)
    return f"{6 * params * tokens_per_s / peak:.1%} (6*N*tokens/s over {name} bf16 peak)" if peak else "n/a"


def build_model(args, out_dir: Path, source: str) -> Path:
    """The tiny mT5-shaped model; with ``--vocab``, a BPE tokenizer trained on the data and a head of that size."""
    from lorasum.models.tiny import build_tiny_model

    if not args.vocab:
        return build_tiny_model(out_dir, "mt5", d_model=args.d_model, layers=args.layers)
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import MT5Config, MT5ForConditionalGeneration, PreTrainedTokenizerFast

    texts = []
    with open(source, encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            texts += [row["text"], row["summary"]]
    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=args.vocab, special_tokens=["<pad>", "</s>", "<unk>"],
                                                       initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    bpe.post_processor = processors.TemplateProcessing(single="$A </s>", pair="$A </s> $B </s>",
                                                       special_tokens=[("</s>", 1)])
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")
    torch.manual_seed(0)
    d = args.d_model
    model = MT5ForConditionalGeneration(MT5Config(
        vocab_size=args.vocab, d_model=d, d_kv=d // 4, d_ff=d * 2, num_layers=args.layers,
        num_decoder_layers=args.layers, num_heads=4, decoder_start_token_id=0, pad_token_id=0, eos_token_id=1,
        tie_word_embeddings=False, initializer_factor=0.1))
    model.save_pretrained(out_dir)
    tok.save_pretrained(out_dir)
    return out_dir


def _stats(runs: list[dict], key: str = "seconds") -> dict:
    """min and median of a side's repeats, and the load average of the fastest one."""
    import statistics

    best = min(runs, key=lambda r: r[key])
    return {**best, "min": best[key], "median": statistics.median(r[key] for r in runs),
            "loadavg_all": [r["loadavg"] for r in runs]}


def _timed(fn, *a, **kw):
    """fn's result with the 1-minute load average (mean of before and after) added."""
    before = os.getloadavg()[0]
    out = fn(*a, **kw)
    load = (before + os.getloadavg()[0]) / 2
    if isinstance(out, dict):
        return {**out, "loadavg": load}
    return out, load


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.threads and not torch.cuda.is_available():
        torch.set_num_threads(args.threads)
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    from lorasum.data.sampling import EpochMix
    from lorasum.generate import length_batches
    from lorasum.metrics import score_items
    from lorasum.run import prepare_data

    device = torch.cuda.get_device_name() if torch.cuda.is_available() else f"CPU, {torch.get_num_threads()} threads"
    work = Path(tempfile.mkdtemp(prefix="lorasum-bench-"))
    model_dir = build_model(args, work / "model", data_source(args.data))
    cfg = run_config(args, model_dir, args.method)
    data = prepare_data(cfg)
    train_rows = [ex for rows in data.train.values() for ex in rows]
    # the rows lorasum's sampler trains on, epoch by epoch (languages mixed as XL-Sum does); the peer gets the same
    mix = EpochMix([r["lang"] for r in train_rows], cfg.training.multilingual_alpha, cfg.training.seed)
    peer_rows = [train_rows[i] for e in range(args.epochs) for i in mix.indices(e)]
    test_rows = [ex for rows in data.test.values() for ex in rows]
    steps = args.epochs * -(-len(mix) // args.batch_size)

    from lorasum.models.load import load_tokenizer

    tok = load_tokenizer(str(model_dir))
    tokens = real_tokens(tok, peer_rows, args)
    sides = ["lorasum", "peer"] + ([] if args.no_padded else ["padded peer"])
    print(f"device: {device}   torch {torch.__version__}   loadavg {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"model: tiny mT5-shaped, d_model {args.d_model}, {args.layers}+{args.layers} layers, "
          + (f"vocabulary {args.vocab} (BPE trained on the data: {len(tok)} pieces)" if args.vocab
             else "byte tokenizer (384 ids)"))
    print(f"data: {cfg.data.source}  {len(cfg.data.languages)} languages, {len(train_rows)} train / "
          f"{len(test_rows)} test examples ({len(mix)} per epoch after mixing); {args.epochs} epoch(s) = {steps} steps of batch {args.batch_size}; "
          f"source/target {args.max_source_length}/{args.max_target_length} tokens; method {args.method}; "
          f"beams {args.num_beams}")
    print("peer = Seq2SeqTrainer + peft, DataCollatorForSeq2Seq, group_by_length, test set sorted by length; "
          "padded peer = the same padded to the maximum (run_summarization.py --pad_to_max_length)")
    print(f"timing: {args.repeats} interleaved runs per side; min and median; loadavg = 1-minute load average")
    print(f"real (non-pad) training tokens: {tokens:,}\n")

    print("training ...", flush=True)
    runs = {side: [] for side in sides}
    for i in range(args.repeats):  # interleaved, so that a change in the machine's load hits every side
        (l_model, l_tok, res), load = _timed(lorasum_train, cfg, train_rows, work / f"lorasum-{i}")
        runs["lorasum"].append({**res, "loadavg": load})
        for side in sides[1:]:
            runs[side].append(_timed(baseline_train, args, model_dir, tok, peer_rows, steps,
                                     work / f"{side.replace(' ', '-')}-{i}", side == "padded peer"))
    train = {side: _stats(r) for side, r in runs.items()}
    assert all(t["steps"] == steps for t in train.values()), {k: t["steps"] for k, t in train.items()}

    print("evaluating (every side decodes the weights lorasum trained) ...", flush=True)
    warm_up(l_model, tok, test_rows)
    ct2 = ct2_available(args)
    if ct2:
        os.environ["LORASUM_CACHE"] = str(work / "cache")
        ct2_seconds = ct2_convert(l_model, l_tok, work / "cache" / "ctranslate2")
    evals = {side: [] for side in sides + (["lorasum+ct2"] if ct2 else [])}
    preds, rouges = {}, {}
    for _ in range(args.repeats):
        (p, rg, t), load = _timed(lorasum_evaluate, l_model, l_tok, cfg, test_rows, work / "lorasum-eval")
        evals["lorasum"].append({"seconds": t, "loadavg": load})
        preds["lorasum"], rouges["lorasum"] = p, rg
        if ct2:
            (p, rg, t), load = _timed(lorasum_ct2_evaluate, l_model, l_tok, cfg, test_rows, work / "ct2-eval")
            evals["lorasum+ct2"].append({"seconds": t, "loadavg": load})
            preds["lorasum+ct2"], rouges["lorasum+ct2"] = p, rg
        for side in sides[1:]:
            (p, rg, t), load = _timed(baseline_evaluate, args, l_model, tok, test_rows,
                                      work / f"{side.replace(' ', '-')}-eval", side == "padded peer")
            evals[side].append({"seconds": t, "loadavg": load})
            preds[side], rouges[side] = p, rg
    ev = {side: _stats(r) for side, r in evals.items()}

    full = None
    if args.method == "lora" and not args.skip_full:
        print("lorasum full fine-tuning for the memory / step-time comparison ...", flush=True)
        _, _, full = lorasum_train(run_config(args, model_dir, "full"), train_rows, work / "full")

    print("\n== training (" + args.method + ") ==")
    print(f"{'':12s} {'min s':>7s} {'median s':>8s} {'tokens/s':>9s} {'s/step':>7s} {'final loss':>10s} "
          f"{'state MiB':>9s} {'loadavg':>8s}" + (f" {'peak MiB':>9s}" if torch.cuda.is_available() else ""))
    for side, r in train.items():
        print(f"{side:12s} {r['min']:7.1f} {r['median']:8.1f} {tokens / r['min']:9,.0f} {r['min'] / r['steps']:7.3f} "
              f"{r['final_loss']:10.4f} {r['state_mb']:9.1f} {r['loadavg']:8.1f}"
              + (f" {r['peak_mb']:9.0f}" if r["peak_mb"] is not None else ""))
    for side in sides[1:]:
        print(f"training throughput lorasum / {side}: {train[side]['min'] / train['lorasum']['min']:.2f}x (min), "
              f"{train[side]['median'] / train['lorasum']['median']:.2f}x (median)"
              + ("   (target >= 1.5x)" if side == "peer" else ""))
    print(f"MFU lorasum: {mfu(tokens / train['lorasum']['min'], train['lorasum']['total'])}")

    print("\n== evaluation: generate + score the test split ==")
    print(f"{'':12s} {'min s':>7s} {'median s':>8s} {'loadavg':>8s}  ROUGE-1/2/L")
    for side, r in ev.items():
        print(f"{side:12s} {r['min']:7.1f} {r['median']:8.1f} {r['loadavg']:8.1f}  {fmt(rouges[side])}")
    for side in sides[1:]:
        print(f"evaluation speed {side} / lorasum: {ev[side]['min'] / ev['lorasum']['min']:.2f}x (min), "
              f"{ev[side]['median'] / ev['lorasum']['median']:.2f}x (median)"
              + ("   (target >= 2x)" if side == "peer" else ""))
    if ct2:
        for side in sides:
            print(f"evaluation speed {side} / lorasum+ct2: {ev[side]['min'] / ev['lorasum+ct2']['min']:.2f}x (min), "
                  f"{ev[side]['median'] / ev['lorasum+ct2']['median']:.2f}x (median)"
                  + ("   (target >= 2x)" if side == "peer" else ""))
        print(f"lorasum+ct2: one conversion of the trained weights {ct2_seconds:.1f} s (cached by weights hash, "
              "not in the times above)")
        print_ct2_agreement(preds, test_rows)
    n_l = len(length_batches([len(x) for x in tok([r["text"] for r in test_rows], max_length=args.max_source_length,
                                                  truncation=True)["input_ids"]], args.eval_batch_size,
                             args.max_source_length))
    print(f"generation batches: lorasum {n_l} (length-sorted, padded to their longest, token budget), peer "
          f"{-(-len(test_rows) // args.eval_batch_size)} (length-sorted, padded to their longest)")

    langs = [r["lang"] for r in test_rows]
    refs = [r["summary"] for r in test_rows]
    li = score_items(preds["lorasum"], refs, langs)
    failed = False
    print(f"\n== scorer check: same weights, {'greedy' if args.num_beams == 1 else f'beam {args.num_beams}'} ==")
    for side in sides[1:]:
        same = [i for i, (a, b) in enumerate(zip(preds["lorasum"], preds[side])) if a == b]
        bi = score_items(preds[side], refs, langs)
        mismatched = [i for i in same if li[i] != bi[i]]
        print(f"{side}: identical predictions {len(same)}/{len(test_rows)}; identical predictions with different "
              f"ROUGE: {len(mismatched)} (must be 0)")
        failed |= bool(mismatched) or (len(same) == len(test_rows) and rouges["lorasum"] != rouges[side])
    if failed:
        print("SCORER CHECK FAILED")
        return 1

    l_train = train["lorasum"]
    if full:
        print("\n== LoRA vs full fine-tuning (lorasum, same data and steps) ==")
        print(f"{'':6s} {'trainable':>12s} {'share':>7s} {'state MiB':>9s} {'s/step':>8s}"
              + (f" {'peak MiB':>9s}" if torch.cuda.is_available() else ""))
        for name, r in (("lora", l_train), ("full", full)):
            print(f"{name:6s} {r['trainable']:12,d} {r['trainable'] / r['total']:7.2%} {r['state_mb']:9.1f} "
                  f"{r['seconds'] / r['steps']:8.3f}" + (f" {r['peak_mb']:9.0f}" if r["peak_mb"] is not None else ""))
        print("state MiB = weights + gradients + optimizer state" + ("" if torch.cuda.is_available() else
              " (CPU: no allocator peak to read)"))
    return 0


def fmt(rouge: dict) -> str:
    o = rouge["overall"]

    def pick(key):
        v = o[key]
        return v["mean"] if isinstance(v, dict) and "mean" in v else v
    try:
        return "/".join(f"{pick(k):.2f}" for k in ("rouge1", "rouge2", "rougeL"))
    except (KeyError, TypeError):
        return json.dumps(o)[:120]


if __name__ == "__main__":
    sys.exit(main())
