"""Engine benchmarks: two ways of computing the same thing, timed in one process and
reported as ratios. Runs are interleaved (A B B A A B ...) and the ratio is the median of
per-round ratios, because this machine's load varies from second to second.

  vmap vs sequential    the meta-gradient of a meta-batch: Omniglot MLP (Meta-ticket), conv4
  bf16 vs float32       conv4's meta-gradient under bf16 autocast (where the device has it)
  memory                engine.memory's estimate of one task against its measured peak
                        (resident memory on the CPU, allocated memory on CUDA)

    .venv/bin/python benchmarks/bench_engine.py --rounds 9 --device cuda

(`make bench` runs the suite in docs/performance.md; this script is run by hand.)

Not a test: it asserts nothing. A ratio above 1 means the second column is faster.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import subprocess
import sys
import tempfile
import textwrap
from dataclasses import replace
from pathlib import Path

import torch

from mtdsl.compile.compiler import Compiled, compile_experiment
from mtdsl.compile.module import CompiledModel
from mtdsl.compile.plan import DevicePlan
from mtdsl.data.batch import TaskBatch
from mtdsl.engine import MetaLearner
from mtdsl.engine.memory import measure
from mtdsl.validate.loader import load

from common import seconds

ROOT = Path(__file__).resolve().parent.parent
TICKET = '"**.weight": masked, "head.**", "**.bias", "**.bn.**": fixed'
MAML = '"**": meta'

# name: (model, roles, image size, shots, queries, meta-batch, inner steps)
CASES = {
    "omniglot mlp, ticket": ("mlp(hidden: [256, 128, 64, 64], classes: 5)", TICKET, 28, 5, 5, 4, 1),
    "omniglot conv4, maml": ("conv4(classes: 5)", MAML, 28, 5, 5, 4, 1),
    "conv4 32ch 84px, maml": ("conv4(hidden: 32, classes: 5)", MAML, 84, 1, 5, 4, 1),
}
MEMORY_CASES = {
    "omniglot mlp, ticket, 3 steps": ("mlp(hidden: [256, 128, 64, 64], classes: 5)", TICKET, 28, 5, 15, 1, 3),
    "conv4 84px, maml, 1 step": ("conv4(classes: 5)", MAML, 84, 5, 15, 1, 1),
    "conv4 84px, maml, 2 steps": ("conv4(classes: 5)", MAML, 84, 5, 15, 1, 2),
    "resnet12 16-64ch 84px, ticket": ("resnet12(channels: [16, 32, 32, 64], classes: 5)",
                                      TICKET.replace('"**.bias", ', ""), 84, 5, 15, 1, 1),
}


def compile_case(case: tuple, tasks_in: str = "vmap") -> Compiled:
    model, roles, size, shots, queries, tasks, steps = case
    text = textwrap.dedent(f"""\
        import "{ROOT}/specs/lib/models.mt"
        experiment bench {{
          data  {{ train = omniglot(split: "train", size: {size}) }}
          task  {{ ways: 5, shots: {shots}, queries: {queries} }}
          model = {model}
          params {{ {roles} }}
          inner {{ steps: {steps}, lr: 0.1 }}
          outer {{ optimizer: adam(lr: 0.001), iterations: 1, meta_batch: {tasks}, tasks_in: {tasks_in} }}
        }}
        """)
    with tempfile.TemporaryDirectory(prefix="mtdsl-bench-") as folder:
        (Path(folder) / "bench.mt").write_text(text)
        return compile_experiment(load(Path(folder) / "bench.mt"), "bench")


def tasks_for(c: Compiled, device) -> TaskBatch:
    g = torch.Generator().manual_seed(0)
    t, shape = c.plan.task, c.graph.input_shape

    def half(per_class):
        x = torch.rand(c.plan.outer.meta_batch, t.ways * per_class, *shape, generator=g)
        y = torch.arange(t.ways).repeat_interleave(per_class).expand(c.plan.outer.meta_batch, -1)
        return x, y.clone()

    return TaskBatch(*half(t.shots), *half(t.queries)).to(device)


def learner(c: Compiled, on: torch.device, **plan_changes) -> MetaLearner:
    plan = replace(c.plan, **plan_changes) if plan_changes else c.plan
    # The eager engine: what `tasks_in` chooses between when the model cannot be stacked.
    return MetaLearner(CompiledModel(c.graph), plan, seed=1, device=on, stacked_tasks=False)


def compare(first, second, device, rounds: int) -> tuple[float, float, float]:
    """Median seconds of each and the median per-round ratio first/second."""
    first(), second()  # warm-up: allocator, kernels, lazy estimates
    a, b = [], []
    for r in range(rounds):
        pair = (first, second) if r % 2 == 0 else (second, first)
        times = [seconds(fn, device) for fn in pair]
        a.append(times[0] if r % 2 == 0 else times[1])
        b.append(times[1] if r % 2 == 0 else times[0])
    return statistics.median(a), statistics.median(b), statistics.median(x / y for x, y in zip(a, b))


def timing_rows(device, rounds: int):
    for name, case in CASES.items():
        vmap_c, seq_c = compile_case(case, "vmap"), compile_case(case, "sequential")
        batch = tasks_for(vmap_c, device)
        vmapped, sequential = learner(vmap_c, device), learner(seq_c, device)
        yield (name, "sequential", "vmap", *compare(lambda: sequential.meta_gradients(batch),
                                                   lambda: vmapped.meta_gradients(batch), device, rounds))
    bf16_here = device.type == "cpu" or torch.cuda.is_bf16_supported()
    for name in ("omniglot conv4, maml", "conv4 32ch 84px, maml") if bf16_here else ():
        c = compile_case(CASES[name], "vmap")
        batch = tasks_for(c, device)
        fp32 = learner(c, device, device=DevicePlan(amp="off", channels_last=False))
        bf16 = learner(c, device, device=DevicePlan(amp="bf16", channels_last=device.type == "cuda"))
        yield (name, "float32", bf16.precision.describe(),
               *compare(lambda: fp32.meta_gradients(batch), lambda: bf16.meta_gradients(batch),
                        device, rounds))


def peak_of_one_task(name: str, device_name: str) -> dict:
    """Run in a fresh process: the estimate of one task and its measured peak."""
    device = torch.device(device_name)
    c = compile_case(MEMORY_CASES[name], "sequential")
    one = learner(c, device)
    batch = tasks_for(c, device)
    fp = measure(one.module, dict(one.module.named_parameters()), batch.support_x[0], batch.query_x[0])
    gc.collect()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        one.meta_gradients(batch)
        peak = torch.cuda.max_memory_allocated(device) - base
    else:
        Path("/proc/self/clear_refs").write_text("5")  # resets the peak resident size
        base = _status_bytes("VmRSS")
        one.meta_gradients(batch)
        peak = _status_bytes("VmHWM") - base
    steps = c.plan.inner.steps
    return {"estimate": fp.train_bytes(steps, c.plan.inner.order), "peak": peak}


def _status_bytes(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {key} in /proc/self/status")


def memory_rows(device_name: str):
    for name in MEMORY_CASES:
        out = subprocess.run([sys.executable, __file__, "--peak-of", name, "--device", device_name],
                             capture_output=True, text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        yield name, r["estimate"] / 2**20, r["peak"] / 2**20, r["estimate"] / max(r["peak"], 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory table")
    parser.add_argument("--peak-of", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peak_of:
        print(json.dumps(peak_of_one_task(args.peak_of, args.device)))
        return
    device = torch.device(args.device)
    print(f"torch {torch.__version__} on {device}"
          + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else
             f", {torch.get_num_threads()} threads") + f"; median of {args.rounds} interleaved rounds\n")
    print(f"{'case':26} {'A':12} {'B':28} {'A s':>8} {'B s':>8} {'A/B':>6}")
    for name, a, b, ta, tb, ratio in timing_rows(device, args.rounds):
        print(f"{name:26} {a:12} {b:28} {ta:8.3f} {tb:8.3f} {ratio:6.2f}", flush=True)
    if not args.no_memory:
        print(f"\n{'one task':32} {'estimate MiB':>12} {'peak MiB':>10} {'est/peak':>9}")
        for name, estimate, peak, ratio in memory_rows(args.device):
            print(f"{name:32} {estimate:12.1f} {peak:10.1f} {ratio:9.2f}", flush=True)


if __name__ == "__main__":
    main()
