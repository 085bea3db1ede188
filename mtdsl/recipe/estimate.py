"""What a run will cost, said before it runs: parameters, the memory of one task and of the
meta-batch as the engine will chunk it, seconds per meta-iteration measured on this device,
and the projected wall time of the whole schedule (meta-training, validations, checkpoints,
meta-tests).

Memory is engine.memory's estimate, the same number that decides how many tasks run at once.
Time is measured, not modelled: a throwaway learner runs the recipe's per-iteration work
(sample, meta-step, sparsity, finiteness check) a few times after warm-up iterations, and
evaluates a few tasks of every validation and test set. Means, not medians: the run's wall
time is the sum of its iterations, and on a shared machine the iterations stalled behind
other processes are a real part of it (measured there: the mean iteration 1.2-2x the
median). The run's own learner, generators and torch's RNG are left untouched.
"""

from __future__ import annotations

import io
import statistics
import time
from dataclasses import dataclass, field

import torch
from rich.console import Console

from ..compile.compiler import Compiled
from ..compile.module import CompiledModel
from ..engine.init import seeded_generator
from ..engine.memory import free_bytes, measure
from ..engine.meta import MetaLearner
from ..report.summary import format_duration

WARM_ITERATIONS = 2  # first calls allocate, trace vmap and fill caches: not timed
MIN_TIMED, MAX_TIMED = 3, 50  # timed iterations: at least, at most ...
TIMED_SECONDS = 3.0  # ... stopping once they have taken this long
# At the start of a run, time it only when the measurement is a small share of the schedule.
MEASURED_SHARE = 0.02
EVAL_REPEATS, EVAL_SECONDS = 3, 0.5  # evaluation calls timed per set, or until this long


@dataclass(frozen=True)
class Memory:
    """Bytes, from engine.memory's footprint of one task."""

    support: int  # what one forward pass over the support set keeps for backward
    query: int  # the same for the query set
    task: int  # one task's meta-gradient at its peak: every inner step, the query pass
    eval_task: int  # one task's adaptation and query pass at validation and test
    state: int  # weights, meta-learned tensors, their gradients, the optimizer's state
    at_once: int  # tasks of the meta-batch computed together
    meta_batch: int
    free: int  # what the device has free now

    @property
    def peak(self) -> int:
        return self.at_once * self.task + self.state


@dataclass(frozen=True)
class Timing:
    """Seconds, measured on this device."""

    setup: float  # data opened, learner built
    iteration: float  # mean meta-iteration
    timed: int  # iterations timed (after WARM_ITERATIONS)
    eval_task: dict[str, float]  # per validation / test set: seconds per task
    checkpoint: float  # writing the learner's state once


@dataclass(frozen=True)
class Estimate:
    name: str
    device: str
    parameters: dict[str, int]  # role -> count
    memory: Memory
    steps: int
    order: str
    iterations: int  # still to run
    validations: int
    valid_tasks: int
    test_tasks: int
    timing: Timing | None = None
    tests: list[str] = field(default_factory=list)

    def phases(self) -> dict[str, float]:
        """Projected seconds per part of the schedule (requires `timing`)."""
        t = self.timing
        valid = t.eval_task.get("valid", 0.0) * self.valid_tasks * self.validations
        timed = worth_timing(self.iterations)  # what the run's own estimate will time
        return {"setup": t.setup, "timing": (WARM_ITERATIONS + timed) * t.iteration if timed else 0.0,
                "meta-training": self.iterations * t.iteration, "validation": valid,
                "meta-test": sum(t.eval_task[label] * self.test_tasks for label in self.tests),
                "checkpoints": t.checkpoint * (self.validations + 1)}  # + final.pt

    @property
    def total_seconds(self) -> float:
        return sum(self.phases().values())


def schedule_points(iterations: int, start: int, every: int) -> int:
    """Iterations in (start, iterations] at which the recipe validates and checkpoints."""
    return sum(1 for it in range(start + 1, iterations + 1) if it % every == 0 or it == iterations)


def memory_of(learner: MetaLearner, batch) -> Memory:
    """The memory of a meta-batch shaped like `batch`, estimated from two forward passes over a
    few examples (engine.memory)."""
    plan = learner.plan
    fp = measure(learner.module, dict(learner.module.named_parameters()), batch.support_x[0],
                 batch.query_x[0])
    learned = sum(t.numel() * t.element_size() for t in learner.learned.values())
    fixed = sum(t.numel() * t.element_size() for t in learner.weights.values())
    optimizer = plan.outer.optimizer
    buffers = 2 if optimizer.name in ("adam", "adamw") else int(bool(optimizer.momentum))
    return Memory(support=fp.support, query=fp.query,
                  task=fp.train_bytes(plan.inner.steps, plan.inner.order), eval_task=fp.eval_bytes(),
                  state=fixed + learned * (2 + buffers), at_once=learner.tasks_at_once(batch),
                  meta_batch=batch.tasks, free=free_bytes(learner.device))


def estimate(c: Compiled, sources, learner: MetaLearner, seed: int, *, setup_seconds: float = 0.0,
             timed: int = MAX_TIMED) -> Estimate:
    """The cost of running `c` on from `learner` (its iteration and device). Up to `timed`
    iterations are timed, on a throwaway learner (none: memory and counts only)."""
    plan, device, start = c.plan, learner.device, learner.iteration
    probe = sources.train.sample(plan.outer.meta_batch, seeded_generator(seed, "probe"))
    counts: dict[str, int] = {}
    for p in plan.params:
        counts[p.role] = counts.get(p.role, 0) + p.numel
    points = schedule_points(plan.outer.iterations, start, plan.eval.every)
    timing = None
    if timed and plan.outer.iterations > start:
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            timing = _timing(learner_for(c, device, seed), sources, seed, setup_seconds, timed)
    return Estimate(name=c.resolved.name, device=str(device), parameters=counts,
                    memory=memory_of(learner, probe), steps=plan.inner.steps, order=plan.inner.order,
                    iterations=max(plan.outer.iterations - start, 0),
                    validations=points if sources.valid is not None else 0,
                    valid_tasks=plan.eval.valid_tasks, test_tasks=plan.eval.test_tasks,
                    timing=timing, tests=list(sources.tests))


def worth_timing(iterations: int, start: int = 0) -> int:
    """Timed iterations at the start of a run: none where warm-up and timing would be more
    than MEASURED_SHARE of what is left to run."""
    budget = int(MEASURED_SHARE * (iterations - start)) - WARM_ITERATIONS
    return min(budget, MAX_TIMED) if budget >= MIN_TIMED else 0


def learner_for(c: Compiled, device: torch.device, seed: int) -> MetaLearner:
    """The learner the recipe builds."""
    return MetaLearner(CompiledModel(c.graph), c.plan, seed=seed, device=device, eval_chunk=25)


def _timing(learner: MetaLearner, sources, seed: int, setup: float, max_timed: int) -> Timing:
    plan = learner.plan
    rng = seeded_generator(seed, "estimate")
    times = []
    for i in range(WARM_ITERATIONS + max_timed):
        began = _now(learner.device)
        learner.meta_step(sources.train.sample(plan.outer.meta_batch, rng))
        # the recipe's bookkeeping of every logged iteration
        learner.overall_sparsity()
        learner.sparsity()
        all(torch.isfinite(t).all() for t in learner.learned.values())
        if i >= WARM_ITERATIONS:
            times.append(_now(learner.device) - began)
            if len(times) >= MIN_TIMED and sum(times) >= TIMED_SECONDS:
                break
    eval_task = {}
    evaluated = {"valid": sources.valid} if sources.valid is not None else {}
    for label, source in {**evaluated, **sources.tests}.items():
        eval_task[label] = _eval_seconds(learner, source, plan.eval.valid_tasks if label == "valid"
                                         else plan.eval.test_tasks, rng)
    began = time.monotonic()
    torch.save(learner.state_dict(), io.BytesIO())
    return Timing(setup=setup, iteration=statistics.mean(times), timed=len(times), eval_task=eval_task,
                  checkpoint=time.monotonic() - began)


def _eval_seconds(learner: MetaLearner, source, tasks: int, rng) -> float:
    """Seconds per task, evaluating as many tasks at once as the learner will."""
    n = learner.tasks_at_once(source.sample(max(1, min(tasks, learner.eval_chunk)), rng), training=False)
    learner.evaluate(source.sample(n, rng))  # warm-up
    per_task = []
    while len(per_task) < EVAL_REPEATS and sum(per_task) * n < EVAL_SECONDS or not per_task:
        began = _now(learner.device)
        learner.evaluate(source.sample(n, rng))
        per_task.append((_now(learner.device) - began) / n)
    return statistics.mean(per_task)


def _now(device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.monotonic()


# ---- printing ----------------------------------------------------------------------------

def size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError


def count(n: int) -> str:
    return f"{n:,}" + (f" ({n / 1e6:.1f} M)" if n >= 1e6 else "")


def print_estimate(console: Console, e: Estimate) -> None:
    m = e.memory
    total = sum(e.parameters.values())
    roles = ", ".join(f"{role} {n:,}" for role, n in e.parameters.items())
    how = ("all at once" if m.at_once == m.meta_batch else "one at a time" if m.at_once == 1
           else f"{m.at_once} at a time")
    lines = [
        f"[bold]estimate[/] for {e.name} on {e.device}",
        f"  parameters     {count(total)}: {roles}",
        f"  one task       forward {size(m.support)} (support) + {size(m.query)} (query); "
        f"{e.steps} inner step{'s' * (e.steps != 1)}, {e.order} order: {size(m.task)} at its peak; "
        f"evaluation {size(m.eval_task)}",
        f"  meta-batch     {m.meta_batch} task{'s' * (m.meta_batch != 1)}, {how}: {m.at_once} x {size(m.task)} + model state "
        f"{size(m.state)} = {size(m.peak)} (free now: {size(m.free)})",
    ]
    if e.timing is not None:
        t = e.timing
        phases = e.phases()
        lines.append(f"  one iteration  {t.iteration:.3g} s (mean of {t.timed}, after "
                     f"{WARM_ITERATIONS} warm-up iterations)")
        parts = [f"setup {format_duration(phases['setup'] + phases['timing'])}",
                 f"{e.iterations} iterations {format_duration(phases['meta-training'])}"]
        if e.validations:
            parts.append(f"{e.validations} validations x {e.valid_tasks} tasks "
                         f"{format_duration(phases['validation'])}")
        if e.tests:
            parts.append(f"meta-test {len(e.tests)} x {e.test_tasks} tasks {format_duration(phases['meta-test'])}")
        parts.append(f"checkpoints {format_duration(phases['checkpoints'])}")
        lines.append(f"  projected wall time: {format_duration(e.total_seconds)} "
                     f"({e.total_seconds:.1f} s) = " + " + ".join(parts))
    else:
        lines.append(f"  time           not measured for {e.iterations} iterations "
                     "(`mtdsl run SPEC --estimate` measures it)")
    for line in lines:
        console.print(line, highlight=False, soft_wrap=True)
