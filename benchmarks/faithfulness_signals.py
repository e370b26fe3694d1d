"""Model-free faithfulness signals of lead-sentence summaries and of the references, per language,
and the time to NLI-score pairs with a tiny model on CPU (cold and cached; one by one as the baseline).

The lead baseline is each article's first sentence (:func:`split_sentences`); the
references are XL-Sum's own summaries, the figures a trained system should approach.
Shares and P in [0, 1]; ``compression`` is article tokens / summary tokens.

    PYTHONPATH=. python benchmarks/faithfulness_signals.py [--langs en ru ...] [--all] \
        [--nli-pairs 1000] [--baseline-pairs 100] [--no-signals] [--data ../shared/data/xlsum_sample.jsonl]

NLI timing uses a randomly initialised tiny mT5 judge (``lorasum.models.tiny``, d_model
64, 2 layers, byte-level tokenizer, inputs up to 2048 bytes, about the text a real
model's 512 subword tokens hold): it measures lorasum's chunking, batching and cache,
not a real model's speed.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
if "NLTK_DATA" not in os.environ and (REPO.parent / "shared/data/nltk_data").is_dir():
    os.environ["NLTK_DATA"] = str(REPO.parent / "shared/data/nltk_data")

COLUMNS = (("novel_1gram_share", "nov1"), ("novel_2gram_share", "nov2"), ("novel_4gram_share", "nov4"),
           ("fragment_coverage", "cov"), ("fragment_density", "dens"), ("compression_ratio", "compr"),
           ("summary_tokens", "len"), ("novel_number_share", "num"), ("novel_capitalised_share", "caps"))
DEFAULT_LANGS = ("en", "ru", "ar", "hi", "zh-CN", "ja", "th", "my", "am", "sw")


def _mean(values) -> float | None:
    vals = [v for v in values if v is not None]
    return statistics.fmean(vals) if vals else None


def _fmt(v) -> str:
    return "   –  " if v is None else f"{v:6.2f}"


def signal_table(rows: list[dict], langs: list[str] | None) -> None:
    from lorasum.metrics.faithfulness.sentences import split_sentences
    from lorasum.metrics.faithfulness.signals import signals

    by_lang: dict[str, dict[str, list[dict]]] = defaultdict(lambda: {"lead": [], "reference": []})
    t0 = time.perf_counter()
    for r in rows:
        sents = split_sentences(r["text"], r["lang"])
        lead = sents[0] if sents else ""
        by_lang[r["lang"]]["lead"].append(signals(r["text"], lead, r["lang"]))
        by_lang[r["lang"]]["reference"].append(signals(r["text"], r["summary"], r["lang"]))
    seconds = time.perf_counter() - t0
    header = f"{'lang':7} {'system':9} {'n':>3} " + " ".join(f"{short:>6}" for _, short in COLUMNS)
    print(header)
    print("-" * len(header))
    lang_means: dict[str, list[dict]] = {"lead": [], "reference": []}
    for lang in sorted(by_lang):
        for system in ("lead", "reference"):
            items = by_lang[lang][system]
            means = {k: _mean(it[k] for it in items) for k, _ in COLUMNS}
            lang_means[system].append(means)
            if langs is None or lang in langs:
                print(f"{lang:7} {system:9} {len(items):3d} " + " ".join(_fmt(means[k]) for k, _ in COLUMNS))
    for system in ("lead", "reference"):
        macro = {k: _mean(m[k] for m in lang_means[system]) for k, _ in COLUMNS}
        print(f"{'MEAN':7} {system:9} {len(by_lang):3d} " + " ".join(_fmt(macro[k]) for k, _ in COLUMNS))
    print(f"(mean over {len(by_lang)} languages; columns: " + ", ".join(f"{s}={k}" for k, s in COLUMNS) + ")")
    print(f"signals for {2 * len(rows)} summaries in {seconds:.1f} s (includes loading segmenters)")


def nli_timing(rows: list[dict], n_pairs: int, baseline_pairs: int, max_length: int) -> None:
    import torch

    from lorasum.metrics.faithfulness.cache import ScoreCache
    from lorasum.metrics.faithfulness.nli import NLIScorer, NLISettings
    from lorasum.models.tiny import build_tiny_model

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    pairs = [(r["text"], r["summary"], r["lang"]) for r in rows]
    pairs += [(r["text"], r["title"], r["lang"]) for r in rows if r.get("title")]
    pairs = pairs[:n_pairs]
    arts, sums, langs = (list(x) for x in zip(*pairs))
    k = min(baseline_pairs, len(pairs))
    with tempfile.TemporaryDirectory() as tmp:
        model = build_tiny_model(Path(tmp) / "judge", "mt5")
        cache = ScoreCache(Path(tmp) / "nli.sqlite")
        runs = (("cold, batched (16, sorted by length)", 16, cache, len(pairs)),
                ("cached (second run, new scorer)", 16, cache, len(pairs)),
                (f"baseline: first {k} pairs one by one, no cache", 1, None, k),
                (f"same {k} pairs batched, no cache", 16, None, k))
        for label, batch, use_cache, n in runs:
            scorer = NLIScorer(str(model), device="cpu", batch_size=batch,
                               settings=NLISettings(max_length=max_length))
            t0 = time.perf_counter()
            out = scorer.score(arts[:n], sums[:n], langs[:n], cache=use_cache)
            seconds = time.perf_counter() - t0
            windows = sum(o["nli_chunks"] for o in out)
            print(f"NLI {n} pairs, {label}: {seconds:.2f} s ({n / seconds:.1f} pairs/s); "
                  f"{windows} article windows of <= {scorer.max_length} tokens", flush=True)
    print(f"torch threads: {torch.get_num_threads()}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=str(REPO.parent / "shared/data/xlsum_sample.jsonl"))
    p.add_argument("--langs", nargs="+", default=list(DEFAULT_LANGS), help="languages to print (MEAN uses all)")
    p.add_argument("--all", action="store_true", help="print every language")
    p.add_argument("--nli-pairs", type=int, default=1000, help="0 skips the NLI timing")
    p.add_argument("--baseline-pairs", type=int, default=100, help="pairs scored one by one for comparison")
    p.add_argument("--nli-max-length", type=int, default=2048,
                   help="input bytes of the tiny byte-level judge (2048 bytes ~ 512 subword tokens)")
    p.add_argument("--no-signals", action="store_true", help="only the NLI timing")
    args = p.parse_args()
    rows = [json.loads(line) for line in open(args.data, encoding="utf-8") if line.strip()]
    if not args.no_signals:
        signal_table(rows, None if args.all else args.langs)
    if args.nli_pairs:
        nli_timing(rows, args.nli_pairs, args.baseline_pairs, args.nli_max_length)


if __name__ == "__main__":
    main()
