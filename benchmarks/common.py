"""What every benchmark shares: specs compiled from text, generated tasks, interleaved timing
and the JSON each benchmark writes to benchmarks/results/.

Timing: the implementations compared run in one process, interleaved (A B, then B A, ...)
after a warm-up call each, and each case reports medians of seconds and the median of the
per-round ratios, because this machine's load varies from second to second.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Callable

import torch

from mtdsl.compile.compiler import Compiled, compile_experiment
from mtdsl.compile.module import CompiledModel
from mtdsl.data.batch import TaskBatch
from mtdsl.engine import MetaLearner
from mtdsl.validate.loader import load

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
TICKET = '"**.weight": masked, "head.**", "**.bias", "**.bn.**": fixed'
TICKET_NO_BIAS = '"**.weight": masked, "head.**", "**.bn.**": fixed'
MAML = '"**": meta'


def omniglot_mlp(width: int = 1) -> str:
    return f"mlp(hidden: [256, 128, 64, 64], width: {width}, classes: 5)"


def compile_spec(model: str, roles: str, *, size: int = 28, channels: int = 1, shots: int = 5,
                 queries: int = 15, tasks: int = 4, steps: int = 1, order: str = "second",
                 inner_lr: float | str = 0.4, tasks_in: str = "auto") -> Compiled:
    """A 5-way experiment on (channels x size x size) images; only its shapes are used."""
    data = (f'omniglot(split: "train", size: {size})' if channels == 1
            else 'mini_imagenet(split: "train")')
    text = textwrap.dedent(f"""\
        import "{ROOT}/specs/lib/models.mt"
        experiment bench {{
          data  {{ train = {data} }}
          task  {{ ways: 5, shots: {shots}, queries: {queries} }}
          model = {model}
          params {{ {roles} }}
          inner {{ steps: {steps}, lr: {inner_lr}, order: {order} }}
          outer {{ optimizer: sgd(lr: 10, momentum: 0.9), iterations: 1000, meta_batch: {tasks},
                   tasks_in: {tasks_in} }}
        }}
        """)
    with tempfile.TemporaryDirectory(prefix="mtdsl-bench-") as folder:
        (Path(folder) / "bench.mt").write_text(text)
        return compile_experiment(load(Path(folder) / "bench.mt"), "bench")


def learner(c: Compiled, device: torch.device, *, stacked: bool = True, compiled: bool = False,
            dtype: torch.dtype = torch.float32) -> MetaLearner:
    """The learner a run builds (seed 1), its meta-gradient compiled (engine.compiled) or
    not; in float64 its tensors hold the same values, as initial values are drawn in
    float32. A compiled learner compiles on its first meta-gradient (or loads what an
    earlier run compiled, engine.compiled_store), which the benchmarks' warm-up call takes
    (`compile_seconds` says how long it took)."""
    plan = dataclasses.replace(c.plan, device=dataclasses.replace(c.plan.device, compile=compiled))
    made = MetaLearner(CompiledModel(c.graph).to(dtype), plan, seed=1, device=device,
                       stacked_tasks=stacked)
    if compiled and made.compiled is None:
        raise RuntimeError(f"asked to compile, not compiled: {made.not_compiled}")
    return made


def compile_seconds(compiled: MetaLearner) -> float:
    """Seconds its compile took (or its load from the store; 0 where this process had
    compiled the same graph), after checking that it did compile."""
    if compiled.compiled is None:
        raise RuntimeError(f"not compiled: {compiled.not_compiled}")
    return compiled.compiled.seconds


def tasks_for(c: Compiled, device: torch.device, seed: int = 0) -> TaskBatch:
    """Random images, every class in every task, as the data stage stacks them."""
    g = torch.Generator().manual_seed(seed)
    t, shape, count = c.plan.task, c.graph.input_shape, c.plan.outer.meta_batch

    def half(per_class):
        x = torch.rand(count, t.ways * per_class, *shape, generator=g)
        y = torch.arange(t.ways).repeat_interleave(per_class).expand(count, -1).clone()
        return x, y

    return TaskBatch(*half(t.shots), *half(t.queries)).to(device)


def seconds(fn: Callable[[], object], device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def interleaved(fns: dict[str, Callable[[], object]], device: torch.device,
                rounds: int) -> dict[str, float]:
    """Median seconds of each function over `rounds` rounds, the order reversed every other
    round, after one warm-up call each; and `ratio:<a>/<b>` for every later function b
    against the first, a, as the median of per-round ratios."""
    for fn in fns.values():
        fn()
    names = list(fns)
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds):
        for n in (names if r % 2 == 0 else reversed(names)):
            times[n].append(seconds(fns[n], device))
    out = {f"{n}_s": statistics.median(times[n]) for n in names}
    first = names[0]
    for n in names[1:]:
        out[f"ratio:{first}/{n}"] = statistics.median(a / b for a, b in zip(times[first], times[n]))
    return out


def floor_step(c: Compiled, batch: TaskBatch, device: torch.device) -> Callable[[], None]:
    """The hardware floor of a meta-step: one plain first-order forward and backward of the
    same network over the same examples (support and query of every task as one batch),
    torch.autograd on an nn.Module, no meta-learning."""
    model = CompiledModel(c.graph).to(device)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.05)
    x = torch.cat([batch.support_x.flatten(0, 1), batch.query_x.flatten(0, 1)])
    y = torch.cat([batch.support_y.flatten(), batch.query_y.flatten()])

    def step():
        model.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()
    return step


def machine(device: torch.device) -> dict:
    about = {"torch": torch.__version__, "python": platform.python_version(),
             "device": str(device), "threads": torch.get_num_threads(), "cpus": os.cpu_count(),
             "load_average": os.getloadavg()[0]}
    if device.type == "cuda":
        about["gpu"] = torch.cuda.get_device_name(device)
    else:
        about["cpu"] = _cpu_name()
    return about


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def write_result(name: str, device: torch.device, rows: list[dict], **extra) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    threads = torch.get_num_threads()  # a second thread count is a second result, not a replacement
    path = RESULTS / (f"{name}.json" if threads == 1 else f"{name}.threads{threads}.json")
    path.write_text(json.dumps({"benchmark": name, "machine": machine(device), **extra,
                                "rows": rows}, indent=2) + "\n")
    return path


def options(doc: str, rounds: int, add: Callable[[argparse.ArgumentParser], object] | None = None
            ) -> tuple[argparse.Namespace, torch.device]:
    """The options of an interleaved benchmark: --rounds (default `rounds`), --device,
    --threads, and those `add` puts on the parser; the thread count is applied."""
    parser = argparse.ArgumentParser(description=doc,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=rounds)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int)
    if add is not None:
        add(parser)
    args = parser.parse_args()
    set_threads(args.threads)
    return args, torch.device(args.device)


def set_threads(threads: int | None) -> None:
    """Every benchmark runs at the same intra-op thread count; 1 by default, because on a
    shared machine a second thread mostly waits for its partner's core."""
    torch.set_num_threads(threads or 1)


def table(rows: list[dict], columns: list[str]) -> str:
    """Rows as a Markdown table (floats to 3 significant digits)."""
    def cell(v):
        return f"{v:.3g}" if isinstance(v, float) else str(v)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(lines)
