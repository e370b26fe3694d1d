"""Training throughput and test-set evaluation time: lorasum against the usual baseline, in one run.

The baseline is written the way ``run_summarization.py`` (transformers' example) does it:
every example padded to ``max_source_length`` / ``max_target_length`` (``pad_to_max_length``),
``default_data_collator``, ``Seq2SeqTrainer`` with ``predict_with_generate``, and LoRA applied
with plain ``peft.get_peft_model``. Both sides start from the same tiny mT5-shaped model
(built offline), the same initial weights, data, LoRA settings, optimizer, learning rate,
steps and batch size. Both sides' predictions are scored with lorasum's scorer
(:func:`lorasum.metrics.score_items`), so equal predictions give equal ROUGE; the
evaluation of both sides decodes the same trained weights, which makes the predictions
comparable one by one.

Figures:
- training tokens/s: real (non-pad) source + summary tokens of the training examples,
  times the epochs run, divided by the wall time of training (trainer set-up included).
  Both sides train on exactly the same examples, so the numerator is the same number.
- evaluation seconds: wall time to generate summaries for the test split and score them
  (per-item ROUGE and the bootstrap corpus figures). The baseline decodes batches of
  ``--eval-batch-size`` articles padded to ``--max-source-length``; lorasum sorts by length,
  pads each batch to its longest article and fills the same token budget
  (``eval batch size x max source length``) with more articles when they are short.

    python benchmarks/train_eval_speed.py                         # ~3 minutes on 2 CPU cores
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
    p.add_argument("--repeats", type=int, default=2, help="each side is timed this many times, interleaved "
                   "(lorasum, baseline, lorasum, ...); the fastest of each is reported")
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


# -- the usual baseline (run_summarization.py + peft) -------------------------------------
def baseline_datasets(tok, rows, args):
    """Tokenized as run_summarization.py does with --pad_to_max_length."""
    from datasets import Dataset

    def preprocess(batch):
        inputs = tok(batch["text"], max_length=args.max_source_length, padding="max_length", truncation=True)
        labels = tok(text_target=batch["summary"], max_length=args.max_target_length, padding="max_length",
                     truncation=True)
        inputs["labels"] = [[(t if t != tok.pad_token_id else -100) for t in seq] for seq in labels["input_ids"]]
        return inputs

    ds = Dataset.from_list([{"text": r["text"], "summary": r["summary"]} for r in rows])
    return ds.map(preprocess, batched=True, remove_columns=["text", "summary"])


def baseline_args(args, out_dir: Path, steps: int):
    from transformers import Seq2SeqTrainingArguments

    return Seq2SeqTrainingArguments(
        output_dir=str(out_dir), per_device_train_batch_size=args.batch_size,
        per_device_eval_batch_size=args.eval_batch_size, learning_rate=args.lr, max_steps=steps,
        lr_scheduler_type="linear", warmup_steps=0, weight_decay=0.0, max_grad_norm=1.0, seed=0,
        logging_steps=max(1, steps // 4), save_strategy="no", eval_strategy="no", report_to="none",
        predict_with_generate=True, generation_max_length=args.max_target_length,
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


def baseline_train(args, model_dir: Path, tok, train_rows, steps: int, out_dir: Path):
    from transformers import Seq2SeqTrainer, default_data_collator

    model = baseline_model(model_dir, args.method)
    train_ds = baseline_datasets(tok, train_rows, args)  # tokenization is outside the timed part on both sides
    reset_peak()
    sync()
    t0 = time.perf_counter()
    trainer = Seq2SeqTrainer(model=model, args=baseline_args(args, out_dir, steps), train_dataset=train_ds,
                             data_collator=default_data_collator, processing_class=tok)
    out = trainer.train()
    sync()
    seconds = time.perf_counter() - t0
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    return {"seconds": seconds, "steps": out.global_step, "final_loss": losses[-1] if losses else None,
            "state_mb": state_mb(trainer.model, trainer.optimizer), "peak_mb": peak_mb()}


def baseline_evaluate(args, model, tok, test_rows, out_dir: Path):
    """predict_with_generate on max-length-padded inputs, decode, then lorasum's scorer."""
    import numpy as np
    from transformers import Seq2SeqTrainer, default_data_collator

    from lorasum.metrics import corpus_scores, score_items

    sync()
    t0 = time.perf_counter()
    test_ds = baseline_datasets(tok, test_rows, args)
    trainer = Seq2SeqTrainer(model=model, args=baseline_args(args, out_dir, 1), data_collator=default_data_collator,
                             processing_class=tok)
    out = trainer.predict(test_ds, max_new_tokens=args.max_target_length, num_beams=args.num_beams,
                          length_penalty=0.6, no_repeat_ngram_size=2)
    ids = np.where(out.predictions != -100, out.predictions, tok.pad_token_id)
    preds = [p.strip() for p in tok.batch_decode(ids, skip_special_tokens=True)]
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


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.threads and not torch.cuda.is_available():
        torch.set_num_threads(args.threads)
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    from lorasum.data.sampling import mix_languages
    from lorasum.generate import length_batches
    from lorasum.metrics import score_items
    from lorasum.models.tiny import build_tiny_model
    from lorasum.run import prepare_data

    device = torch.cuda.get_device_name() if torch.cuda.is_available() else f"CPU, {torch.get_num_threads()} threads"
    work = Path(tempfile.mkdtemp(prefix="lorasum-bench-"))
    model_dir = build_tiny_model(work / "model", "mt5", d_model=args.d_model, layers=args.layers)
    cfg = run_config(args, model_dir, args.method)
    data = prepare_data(cfg)
    train_rows = mix_languages(data.train, cfg.training.multilingual_alpha, cfg.data.sample_seed)
    test_rows = [ex for rows in data.test.values() for ex in rows]
    steps = args.epochs * -(-len(train_rows) // args.batch_size)

    from lorasum.models.load import load_tokenizer

    tok = load_tokenizer(str(model_dir))
    tokens = args.epochs * real_tokens(tok, train_rows, args)
    print(f"device: {device}   torch {torch.__version__}")
    print(f"model: tiny mT5-shaped, d_model {args.d_model}, {args.layers}+{args.layers} layers, byte tokenizer")
    print(f"data: {cfg.data.source}  {len(cfg.data.languages)} languages, {len(train_rows)} train / "
          f"{len(test_rows)} test examples; {args.epochs} epoch(s) = {steps} steps of batch {args.batch_size}; "
          f"source/target {args.max_source_length}/{args.max_target_length} tokens; method {args.method}; "
          f"beams {args.num_beams}")
    print(f"timing: fastest of {args.repeats} interleaved runs per side")
    print(f"real (non-pad) training tokens: {tokens:,}   baseline pads to "
          f"{args.epochs * len(train_rows) * (args.max_source_length + args.max_target_length):,}\n")

    print("training ...", flush=True)
    runs_l, runs_b = [], []
    for i in range(args.repeats):  # interleaved, so that a change in the machine's load hits both sides
        l_model, l_tok, r = lorasum_train(cfg, train_rows, work / f"lorasum-{i}")
        runs_l.append(r)
        runs_b.append(baseline_train(args, model_dir, tok, train_rows, steps, work / f"baseline-{i}"))
    l_train = min(runs_l, key=lambda r: r["seconds"])
    b_train = min(runs_b, key=lambda r: r["seconds"])
    assert l_train["steps"] == b_train["steps"] == steps, (l_train["steps"], b_train["steps"], steps)

    print("evaluating (both pipelines decode the weights lorasum trained) ...", flush=True)
    warm_up(l_model, tok, test_rows)
    l_evals, b_evals = [], []
    for _ in range(args.repeats):
        l_preds, l_rouge, t = lorasum_evaluate(l_model, l_tok, cfg, test_rows, work / "lorasum-eval")
        l_evals.append(t)
        b_preds, b_rouge, t = baseline_evaluate(args, l_model, tok, test_rows, work / "baseline-eval")
        b_evals.append(t)
    l_eval, b_eval = min(l_evals), min(b_evals)

    full = None
    if args.method == "lora" and not args.skip_full:
        print("lorasum full fine-tuning for the memory / step-time comparison ...", flush=True)
        _, _, full = lorasum_train(run_config(args, model_dir, "full"), train_rows, work / "full")

    l_tps, b_tps = tokens / l_train["seconds"], tokens / b_train["seconds"]
    print("\n== training (" + args.method + ") ==")
    print(f"{'':10s} {'seconds':>8s} {'tokens/s':>10s} {'s/step':>8s} {'final loss':>10s} {'state MiB':>9s}"
          + (f" {'peak MiB':>9s}" if torch.cuda.is_available() else ""))
    for name, r, tps in (("lorasum", l_train, l_tps), ("baseline", b_train, b_tps)):
        print(f"{name:10s} {r['seconds']:8.1f} {tps:10,.0f} {r['seconds'] / r['steps']:8.3f} {r['final_loss']:10.4f} "
              f"{r['state_mb']:9.1f}" + (f" {r['peak_mb']:9.0f}" if r["peak_mb"] is not None else ""))
    print(f"training throughput ratio (lorasum / baseline): {l_tps / b_tps:.2f}x   (target >= 1.5x)")
    print(f"MFU lorasum: {mfu(l_tps, l_train['total'])}")

    print("\n== evaluation: generate + score the test split ==")
    print(f"lorasum  {l_eval:8.1f} s   ROUGE-1/2/L {fmt(l_rouge)}")
    print(f"baseline {b_eval:8.1f} s   ROUGE-1/2/L {fmt(b_rouge)}")
    print(f"evaluation speed ratio (baseline time / lorasum time): {b_eval / l_eval:.2f}x   (target >= 2x)")
    n_l = len(length_batches([len(x) for x in tok([r["text"] for r in test_rows], max_length=args.max_source_length,
                                                  truncation=True)["input_ids"]], args.eval_batch_size,
                             args.max_source_length))
    print(f"generation batches: lorasum {n_l} (length-sorted, padded to their longest), baseline "
          f"{-(-len(test_rows) // args.eval_batch_size)} (padded to {args.max_source_length})")

    same = [i for i, (a, b) in enumerate(zip(l_preds, b_preds)) if a == b]
    print(f"\n== scorer check: same weights, {'greedy' if args.num_beams == 1 else f'beam {args.num_beams}'} ==")
    print(f"identical predictions: {len(same)}/{len(test_rows)}")
    langs = [r["lang"] for r in test_rows]
    refs = [r["summary"] for r in test_rows]
    li, bi = score_items(l_preds, refs, langs), score_items(b_preds, refs, langs)
    mismatched = [i for i in same if li[i] != bi[i]]
    print(f"items with identical predictions and different ROUGE: {len(mismatched)} (must be 0)")
    if len(same) == len(test_rows):
        print(f"corpus ROUGE identical: {l_rouge == b_rouge}")
    if mismatched or (len(same) == len(test_rows) and l_rouge != b_rouge):
        print("SCORER CHECK FAILED")
        return 1

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
