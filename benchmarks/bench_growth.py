"""Cost growth: time of one meta-step and peak memory of one meta-gradient of the Omniglot
Meta-ticket MLP against the width factor (1, 2, 4, 8; meta-batch 4) and the meta-batch
(1, 4, 16, 32; width 1), stacked and eager. Each point runs in a fresh process, so its
peak resident memory is its own; the two engines are interleaved there and the ratio
eager/stacked is the median of the per-round ratios.

    .venv/bin/python benchmarks/bench_growth.py [--rounds 5]

Writes benchmarks/results/growth.json.
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
from pathlib import Path

import torch

from common import (TICKET, compile_spec, interleaved, learner, omniglot_mlp, set_threads, table,
                    tasks_for, write_result)

POINTS = [(w, 4) for w in (1, 2, 4, 8)] + [(1, t) for t in (1, 16, 32)]


def peak_bytes(fn) -> int:
    """Peak resident memory added by `fn` (Linux: /proc/self/clear_refs resets the peak)."""
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")
    base = _status_bytes("VmRSS")
    fn()
    return _status_bytes("VmHWM") - base


def _status_bytes(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {key} in /proc/self/status")


def point(width: int, tasks: int, rounds: int, threads: int | None) -> dict:
    set_threads(threads)
    device = torch.device("cpu")
    c = compile_spec(omniglot_mlp(width), TICKET, tasks=tasks)
    batch = tasks_for(c, device)
    stacked, eager = learner(c, device), learner(c, device, stacked=False)
    # Memory first, each engine once after a warm-up call, before timing grows the heap.
    stacked.meta_gradients(batch), eager.meta_gradients(batch)
    memory = {"stacked MiB": peak_bytes(lambda: stacked.meta_gradients(batch)) / 2**20,
              "eager MiB": peak_bytes(lambda: eager.meta_gradients(batch)) / 2**20}
    r = interleaved({"eager": lambda: eager.meta_step(batch),
                     "stacked": lambda: stacked.meta_step(batch)}, device, rounds)
    return {"width": width, "meta-batch": tasks, "stacked ms": r["stacked_s"] * 1e3,
            "eager ms": r["eager_s"] * 1e3, "eager/stacked": r["ratio:eager/stacked"], **memory}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--point", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.point:
        print(json.dumps(point(*args.point, args.rounds, args.threads)))
        return
    rows = []
    for width, tasks in POINTS:
        cmd = [sys.executable, __file__, "--point", str(width), str(tasks), "--rounds",
               str(args.rounds)] + (["--threads", str(args.threads)] if args.threads else [])
        out = subprocess.run(cmd, capture_output=True, text=True, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(table(rows[-1:], list(rows[-1])).splitlines()[-1], flush=True)
    set_threads(args.threads)
    path = write_result("growth", torch.device("cpu"), rows, rounds=args.rounds,
                        case="Omniglot MLP Meta-ticket, 5-way 5-shot 15 queries, 1 inner step")
    print(table(rows, list(rows[0])))
    print(f"-> {path}")


if __name__ == "__main__":
    main()
