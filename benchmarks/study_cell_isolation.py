"""Cost of running each study cell in its own forked process, next to the cell's own work.

Runs a cut-down demo study (``low_data`` on en and fr, 16 shots, full and LoRA: four cells
of the tiny offline mT5 on the embedded sample) through ``lorasum study run`` twice, each
in a fresh process and folder: with ``--isolation none`` (the baseline: every cell in the
study process, no fork) and with ``--isolation process`` (the default). Prints, per mode,
the study's wall time, each cell's wall time, and for forked cells the start-up overhead
(fork to the first line of the cell's work), with the machine's load average, since wall
times on a shared machine are noisy.

    PYTHONPATH=. python benchmarks/study_cell_isolation.py [--threads 1] [--repeat 1]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CELLS = ["low_data/en/*/shots16/seed0", "low_data/fr/*/shots16/seed0"]


def run(mode: str, spec: Path, out: Path, threads: int) -> dict:
    env = {**os.environ, "LORASUM_CACHE": str(out.parent / "cache"), "PYTHONPATH": str(REPO)}
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "lorasum.cli", "study", "run", str(spec), "-o", str(out), "--no-progress",
                    "--isolation", mode, "--threads", str(threads), "--cells", *CELLS], check=True, env=env)
    wall = time.perf_counter() - t0
    cells = []
    for info_path in sorted(out.glob("runs/**/cell.json")):
        info = json.loads(info_path.read_text())
        cells.append((info["cell_id"], info["wall_seconds"], info.get("process_startup_seconds")))
    return {"wall": wall, "cells": cells, "load": (load0, os.getloadavg()[0])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        spec = tmp / "demo16.yaml"
        spec.write_text((REPO / "studies" / "demo.yaml").read_text().replace("shots: [8, 32]", "shots: [16]", 1))
        for rep in range(args.repeat):
            for mode in ("none", "process"):
                r = run(mode, spec, tmp / f"{mode}{rep}" / "study", args.threads)
                print(f"isolation={mode:<8} study wall {r['wall']:6.1f} s  (load {r['load'][0]:.1f} -> {r['load'][1]:.1f})")
                for cid, wall, startup in r["cells"]:
                    extra = f"  fork->work {startup * 1000:7.1f} ms ({100 * startup / wall:.2f}% of the cell)" \
                        if startup is not None else ""
                    print(f"  {cid:<45} {wall:6.1f} s{extra}")


if __name__ == "__main__":
    main()
