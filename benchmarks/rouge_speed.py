"""Speed of lorasum's multilingual ROUGE against XL-Sum's scorer, on the same pairs.

Builds N (reference, prediction) pairs from the XL-Sum sample (all 45 languages): each
summary paired with its article's lead paragraph, another article's summary, and
randomly perturbed copies of itself (a fresh perturbation per repetition, so most
predictions are distinct texts; references repeat, as they do across systems). Scores
them with lorasum and with the reference scorer, each in a fresh process (so neither
inherits the other's loaded dictionaries), checks that every P/R/F agrees, and prints
both times, the ratio, and where lorasum's time goes.

    NLTK_DATA=../shared/data/nltk_data PYTHONPATH=. python benchmarks/rouge_speed.py \
        [--pairs 20000] [--workers 1] [--data ../shared/data/xlsum_sample.jsonl]

Needs ``multilingual-rouge`` for the comparison (``--no-reference`` to skip it).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
if "NLTK_DATA" not in os.environ and (REPO.parent / "shared/data/nltk_data").is_dir():
    os.environ["NLTK_DATA"] = str(REPO.parent / "shared/data/nltk_data")


def build_pairs(path: Path, n_pairs: int, seed: int = 0) -> tuple[list[str], list[str], list[str]]:
    rows = [json.loads(line) for line in open(path, encoding="utf-8") if line.strip()]
    by_lang = defaultdict(list)
    for row in rows:
        by_lang[row["lang"]].append(row)
    rng = random.Random(seed)
    refs, preds, langs = [], [], []
    rep = 0
    while len(refs) < n_pairs:
        for lang, group in sorted(by_lang.items()):
            for i, row in enumerate(group):
                ref = row["summary"]
                words = ref.split()
                if rep == 0:
                    cands = [row["text"].strip().split("\n")[0], group[(i + 1) % len(group)]["summary"]]
                else:
                    kept = [w for w in words if rng.random() > 0.25] or words[:1]
                    cands = [" ".join(kept)]
                for pred in cands:
                    refs.append(ref)
                    preds.append(pred)
                    langs.append(lang)
        rep += 1
    return refs[:n_pairs], preds[:n_pairs], langs[:n_pairs]


def profile_stages(refs, preds, langs) -> dict[str, float]:
    """Seconds per stage of lorasum's pipeline on the distinct texts (fresh caches)."""
    from lorasum.metrics import rouge, stemmers
    from lorasum.metrics.tokenize import sanitize, segmenter, tokens

    stemmers.stemmer.cache_clear()
    rouge._features.cache_clear()
    names = {lang: rouge.reference_name(lang) for lang in set(langs)}
    texts = {(t, names[lang]) for t, lang in zip(refs + preds, langs + langs)}
    out = defaultdict(float)
    for name in set(names.values()):
        t0 = time.perf_counter()
        segmenter(name)
        stemmers.stemmer(name)
        tokens("warm up", name)
        out["load segmenters/stemmers"] += time.perf_counter() - t0
    raw = {}
    t0 = time.perf_counter()
    for text, name in texts:
        sanitize(text.lower().strip())
    out["clean (lowercase, C*/punctuation)"] = time.perf_counter() - t0
    per_lang = defaultdict(float)
    for text, name in texts:
        t1 = time.perf_counter()
        raw[(text, name)] = tokens(text, name)
        per_lang[name] += time.perf_counter() - t1
    out["segment/pretokenize (incl. clean)"] = sum(per_lang.values())
    t0 = time.perf_counter()
    stemmed = {}
    for (text, name), toks in raw.items():
        stemmed[(text, name)] = tuple(t for t in stemmers.stem_tokens(toks, name) if t)
    out["stem (cached per token)"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    feats = {k: (t, Counter(t), Counter(zip(t, t[1:]))) for k, t in stemmed.items()}
    out["n-gram counts (once per text)"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    for r, p, lang in zip(refs, preds, langs):
        rouge._score_features(feats[(r, names[lang])], feats[(p, names[lang])])
    out["overlaps + LCS (per pair)"] = time.perf_counter() - t0
    top = sorted(per_lang.items(), key=lambda kv: -kv[1])[:5]
    out["_top_languages"] = {str(k): round(v, 3) for k, v in top}
    return out


def run_side(side: str, args) -> None:
    """Score the pairs with one scorer in this (fresh) process; print JSON timings."""
    refs, preds, langs = build_pairs(args.data, args.pairs)
    first = {}
    for i, lang in enumerate(langs):
        first.setdefault(lang, i)
    warm = sorted(first.values())
    t0 = time.perf_counter()
    if side == "lorasum":
        from lorasum.metrics import score_items

        # one item per language: loads segmenters, stemmers, dictionaries
        score_items([preds[i] for i in warm], [refs[i] for i in warm], [langs[i] for i in warm])
        t1 = time.perf_counter()
        items = score_items(preds, refs, langs, workers=args.workers)
    else:
        from tests.metrics.reference_scorer import reference_items

        reference_items([preds[i] for i in warm], [refs[i] for i in warm], [langs[i] for i in warm])
        t1 = time.perf_counter()
        items = reference_items(preds, refs, langs)
    t2 = time.perf_counter()
    with open(args.out, "w") as f:
        json.dump({"load": t1 - t0, "score": t2 - t1, "items": items}, f)


def _side(side: str, args) -> dict:
    import subprocess
    import tempfile

    with tempfile.NamedTemporaryFile(suffix=".json") as tmp:
        cmd = [sys.executable, __file__, "--side", side, "--out", tmp.name, "--pairs", str(args.pairs),
               "--workers", str(args.workers), "--data", str(args.data)]
        subprocess.run(cmd, check=True, stderr=subprocess.DEVNULL)
        with open(tmp.name) as f:
            return json.load(f)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=20000)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared/data/xlsum_sample.jsonl")
    ap.add_argument("--no-reference", action="store_true")
    ap.add_argument("--side", choices=["lorasum", "reference"], help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if not args.data.is_file():
        print(f"data not found: {args.data}", file=sys.stderr)
        return 2
    if args.side:
        run_side(args.side, args)
        return 0
    refs, preds, langs = build_pairs(args.data, args.pairs)
    print(f"{len(refs)} pairs, {len(set(langs))} languages, {len(set(refs))} distinct references, "
          f"{len(set(preds))} distinct predictions, workers={args.workers}, cpus={os.cpu_count()}")
    print("each scorer runs in a fresh process; 'load' = first item of each language "
          "(dictionaries, segmenters, stemmers)")
    ours = _side("lorasum", args)
    t_ours = ours["load"] + ours["score"]
    print(f"lorasum   : load {ours['load']:6.2f} s + score {ours['score']:6.2f} s = {t_ours:6.2f} s "
          f"({len(refs) / ours['score']:,.0f} pairs/s)")
    if not args.no_reference:
        theirs = _side("reference", args)
        t_ref = theirs["load"] + theirs["score"]
        print(f"reference : load {theirs['load']:6.2f} s + score {theirs['score']:6.2f} s = {t_ref:6.2f} s "
              f"({len(refs) / theirs['score']:,.0f} pairs/s)")
        print(f"speed-up  : {t_ref / t_ours:5.1f}x end to end, {theirs['score'] / ours['score']:5.1f}x scoring "
              f"after loading")
        a_items, b_items = ours["items"], theirs["items"]
        worst = max(abs(a[m][k] - b[m][k]) for a, b in zip(a_items, b_items) for m in a for k in ("p", "r", "f"))
        print(f"identical : {worst == 0.0} (max |difference| over all P/R/F = {worst:.3g})")
        if worst > 1e-6:
            return 1

    print("where lorasum's time goes (1 process, segmenters loaded, fresh caches, distinct texts):")
    stages = profile_stages(refs, preds, langs)
    top = stages.pop("_top_languages")
    for stage, secs in stages.items():
        print(f"  {stage:38s} {secs:7.2f} s")
    print(f"  slowest languages to tokenize (s): {top}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
