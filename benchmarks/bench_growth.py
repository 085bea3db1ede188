"""Cost growth: time of one meta-step and peak memory of one meta-gradient of the Omniglot
Meta-ticket MLP against the width factor (1, 2, 4, 8; meta-batch 4) and the meta-batch
(1, 4, 16, 32; width 1), stacked and eager. Each point's two engines are interleaved in one
process and the ratio eager/stacked is the median of the per-round ratios. Each engine's
peak memory is measured in a fresh process of its own, over its first meta-gradient: the
allocator keeps freed memory for reuse (mtdsl.engine.allocator), so a second call in the
same process adds no resident pages and a peak taken after a warm-up reads 0.

    .venv/bin/python benchmarks/bench_growth.py [--rounds 5]

Writes benchmarks/results/growth.json.
"""

from __future__ import annotations

import argparse
import gc
import importlib
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
    r = interleaved({"eager": lambda: eager.meta_step(batch),
                     "stacked": lambda: stacked.meta_step(batch)}, device, rounds)
    return {"width": width, "meta-batch": tasks, "stacked ms": r["stacked_s"] * 1e3,
            "eager ms": r["eager_s"] * 1e3, "eager/stacked": r["ratio:eager/stacked"]}


def memory(width: int, tasks: int, engine: str, threads: int | None) -> float:
    """MiB added to the peak resident size by this fresh process's first meta-gradient."""
    set_threads(threads)
    device = torch.device("cpu")
    c = compile_spec(omniglot_mlp(width), TICKET, tasks=tasks)
    batch = tasks_for(c, device)
    one = learner(c, device, stacked=engine == "stacked")
    # torch.func's transforms (the eager engine) import torch's compiler stack on first use,
    # about 140 MiB once per process: imported before the measurement, which is of the engine.
    importlib.import_module("torch._dynamo")
    return peak_bytes(lambda: one.meta_gradients(batch)) / 2**20


def _child(*args: str) -> str:
    out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, check=True)
    return out.stdout.strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--point", nargs=2, type=int, help=argparse.SUPPRESS)
    parser.add_argument("--memory", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.point:
        print(json.dumps(point(*args.point, args.rounds, args.threads)))
        return
    if args.memory:
        print(memory(int(args.memory[0]), int(args.memory[1]), args.memory[2], args.threads))
        return
    threads = ["--threads", str(args.threads)] if args.threads else []
    rows = []
    for width, tasks in POINTS:
        row = json.loads(_child("--point", str(width), str(tasks), "--rounds", str(args.rounds), *threads))
        for engine in ("stacked", "eager"):
            row[f"{engine} MiB"] = float(_child("--memory", str(width), str(tasks), engine, *threads))
        rows.append(row)
        print(table(rows[-1:], list(rows[-1])).splitlines()[-1], flush=True)
    set_threads(args.threads)
    path = write_result("growth", torch.device("cpu"), rows, rounds=args.rounds,
                        case="Omniglot MLP Meta-ticket, 5-way 5-shot 15 queries, 1 inner step")
    print(table(rows, list(rows[0])))
    print(f"-> {path}")


if __name__ == "__main__":
    main()
