"""Serving speed for mixed-language traffic: mixed-adapter micro-batching against its peers.

One tiny mT5 base and one LoRA adapter per language (random weights: the speed of a
forward pass does not depend on them), served over real HTTP by ``lorasum.serve`` and hit
by ``--clients`` concurrent clients sending ``--requests`` single-article requests, the
languages interleaved. Systems, each a fresh server in this process:

* ``mixed batching``: micro-batches of up to ``--batch`` texts mixing adapters per row;
* ``one at a time``: batch size 1, the adapter switched (``set_adapter``) per request, the
  way a single-adapter server (or ``lorasum summarize``) serves several languages;
* ``merged, batched``: the English adapter merged into the base (no LoRA at run time),
  micro-batched, serving English traffic only: the ceiling for one language, not a peer
  for mixed traffic (a merged model serves one language per copy of the model).

Prints requests/s and p50/p95 latency per system, and the load average around each run.

    OMP_NUM_THREADS=1 PYTHONPATH=. python benchmarks/serve_speed.py [--requests 96] [--clients 16]

On shared CPUs keep OMP_NUM_THREADS at 1 or 2: OpenMP threads spinning on busy cores slow
every system down by an order of magnitude.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))
DATA = REPO.parent / "shared" / "data" / "xlsum_sample.jsonl"
LANGS = ["en", "fr", "ru"]


def articles(n: int) -> list[tuple[str, str]]:
    """(lang, text) pairs, languages interleaved: XL-Sum sample articles, else lorasum's demo data."""
    from lorasum.demo import DATA as DEMO

    path = DATA if DATA.exists() else Path(DEMO)
    rows = [json.loads(line) for line in open(path, encoding="utf-8") if line.strip()]
    by_lang = {lang: [r["text"] for r in rows if r.get("lang") == lang] or [r["text"] for r in rows] for lang in LANGS}
    return [(LANGS[i % 3], by_lang[LANGS[i % 3]][(i // 3) % len(by_lang[LANGS[i % 3]])]) for i in range(n)]


def drive(app, traffic: list[tuple[str, str]], clients: int) -> tuple[float, list[float]]:
    """(wall seconds, per-request latencies) of ``traffic`` sent by ``clients`` threads to ``app``."""
    import httpx

    from test_serve import running

    latencies: list[float] = []
    lock = threading.Lock()
    with running(app) as url:
        with httpx.Client(base_url=url, timeout=600) as warm:
            for lang in sorted({lang for lang, _ in traffic}):
                warm.post("/v1/summarize", json={"text": "warm up", "lang": lang}).raise_for_status()
        todo = iter(traffic)

        def client(_):
            with httpx.Client(base_url=url, timeout=600) as c:
                while True:
                    with lock:
                        item = next(todo, None)
                    if item is None:
                        return
                    t0 = time.perf_counter()
                    c.post("/v1/summarize", json={"text": item[1], "lang": item[0]}).raise_for_status()
                    with lock:
                        latencies.append(time.perf_counter() - t0)

        start = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            list(pool.map(client, range(clients)))
        wall = time.perf_counter() - start
    return wall, latencies


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=96)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--wait-ms", type=float, default=10)
    ap.add_argument("--beams", type=int, default=4)
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--max-source-length", type=int, default=256)
    args = ap.parse_args()

    import torch

    from lora_factory import make_adapter
    from lorasum.merge import merge
    from lorasum.models.tiny import build_tiny_model
    from lorasum.serve import AdapterEntry, Decoding, MultiAdapterModel, Registry, discover
    from lorasum.serve.app import Limits, create_app

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    work = Path(tempfile.mkdtemp(prefix="serve-speed-"))
    base = build_tiny_model(work / "tiny-mt5", "mt5")
    for i, lang in enumerate(LANGS):
        make_adapter(base, work / "adapters" / lang, seed=i, scale=0.2, targets=("q", "k", "v", "o"))
    merged = merge(work / "adapters" / "en", work / "merged-en", base=str(base))
    decoding = Decoding(num_beams=args.beams, max_new_tokens=args.max_new_tokens,
                        max_source_length=args.max_source_length)
    traffic = articles(args.requests)
    en_traffic = [("en", text) for lang, text in traffic if lang == "en"] * 3
    en_traffic = en_traffic[:args.requests]
    batched = Limits(max_batch_size=args.batch, wait_s=args.wait_ms / 1000, timeout_s=600, defaults=decoding)
    single = Limits(max_batch_size=1, wait_s=0.0, timeout_s=600, defaults=decoding)

    engine = MultiAdapterModel(str(base), discover(work / "adapters"))
    merged_engine = MultiAdapterModel(str(merged))
    merged_registry = Registry({"merged-en": AdapterEntry("merged-en", merged, ("en",))})
    systems = [
        ("mixed batching", lambda: create_app(engine, batched), traffic),
        ("one at a time (adapter switch)", lambda: create_app(engine, single), traffic),
        ("merged en, batched (en only)", lambda: create_app(merged_engine, batched, merged_registry), en_traffic),
    ]
    print(f"tiny mT5 (d_model 64, 2+2 layers), {len(LANGS)} adapters (r=4 on q/k/v/o), "
          f"beam {args.beams}, {args.max_new_tokens} new tokens, {args.requests} requests, {args.clients} clients, "
          f"torch threads {torch.get_num_threads()}")
    results = []
    for name, make, reqs in systems:
        load0 = os.getloadavg()[0]
        wall, lat = drive(make(), reqs, args.clients)
        load1 = os.getloadavg()[0]
        q = statistics.quantiles(lat, n=20)
        results.append((name, len(reqs) / wall, statistics.median(lat), q[18], wall, load0, load1))
    print(f"{'system':34s} {'req/s':>8s} {'p50 ms':>8s} {'p95 ms':>8s} {'wall s':>7s}  load avg (before/after)")
    for name, rps, p50, p95, wall, l0, l1 in results:
        print(f"{name:34s} {rps:8.2f} {p50 * 1000:8.0f} {p95 * 1000:8.0f} {wall:7.1f}  {l0:.1f}/{l1:.1f}")
    print(f"mixed batching / one at a time: {results[0][1] / results[1][1]:.2f}x requests/s")


if __name__ == "__main__":
    main()
