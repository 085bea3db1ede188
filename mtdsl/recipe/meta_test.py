"""Meta-testing finished runs again: other datasets (cross-domain), other tasks (ways, shots,
queries), inner steps or task counts. A run folder is self-contained (its operative spec and
checkpoint), so the original spec files are not needed. Results are added to each run's
result.json under `test`, keyed by the dataset (kind, the options that change it, split)
and by the protocol when it differs from the run's: `omniglot/test@20-way,1-shot`.

A parent folder (the seeds of an experiment, a sweep) meta-tests every finished run under it
and prints the mean ± std over its seeds. A run of 0 iterations has no checkpoint: its
network is the seed-determined initial one, which is exactly the untrained baseline.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console

from ..compile.compiler import compile_experiment
from ..compile.module import CompiledModel
from ..engine.init import seeded_generator
from ..engine.meta import MetaLearner
from ..errors import RunError, SpecError
from ..report.result import split_entry
from ..report.rundir import RESOLVED, Run, RunDir, open_run
from ..report.summary import format_duration, format_metric
from ..validate.loader import load
from .meta_train import evaluate, metric_of, pick_device
from .sources import open_source


@dataclass
class TestRequest:
    """What `mtdsl test` was asked: datasets (`--on` texts) and protocol changes; None keeps
    the run's own."""

    on: list[str] = field(default_factory=list)
    ways: int | None = None
    shots: int | None = None
    queries: int | None = None
    steps: int | None = None
    tasks: int | None = None
    overrides: list[str] = field(default_factory=list)  # --set PATH=VALUE
    device: str | None = None

    def spec_overrides(self, model_args: dict) -> list:
        """(source name, text) pairs: a mistake in an `--on` dataset is located at `--on`.
        `--ways` also sets the model's `classes` argument, where it has one: the operative
        spec holds the number the run was built with, not `task.ways`."""
        out: list = []
        if self.ways is not None and "classes" in model_args:
            out.append(("--ways", f"model.classes={self.ways}"))
        if self.on:
            out.append(("--on", "data.test=[" + ", ".join(self.on) + "]"))
        for path, value in (("task.ways", self.ways), ("task.shots", self.shots),
                            ("task.queries", self.queries), ("inner.test_steps", self.steps),
                            ("eval.test_tasks", self.tasks)):
            if value is not None:
                out.append((f"--{path.rsplit('.', 1)[-1].replace('_', '-')}", f"{path}={value}"))
        return out + list(self.overrides)

    @property
    def protocol(self) -> str:
        """The key suffix naming what differs from the run's own protocol."""
        parts = [f"{v}{unit}" for v, unit in ((self.ways, "-way"), (self.shots, "-shot"),
                                              (self.queries, "-query"), (self.steps, "steps"))
                 if v is not None]
        return "@" + ",".join(parts) if parts else ""


def runs_under(folder: Path) -> list[Run]:
    """The run in `folder`, or every finished run below it (seeds, sweep points)."""
    if (folder / RESOLVED).is_file() or not folder.is_dir():
        return [open_run(folder)]
    from ..report.runs import find_runs

    found = find_runs([folder]).runs
    if not found:
        raise RunError(f"{folder} holds no finished run (a run folder has {RESOLVED} and "
                       f"result.json; give one, or a folder of them)")
    return found


def meta_test(folder: Path, request: TestRequest, console: Console) -> list[dict]:
    runs = runs_under(folder)
    keys: list[str] = []
    for run in runs:
        keys += [k for k in test_run(run, request, console) if k not in keys]
    if len(runs) > 1:
        print_over_seeds(console, [open_run(run.path) for run in runs], keys)
    return [open_run(run.path).result for run in runs]


def test_run(run: Run, request: TestRequest, console: Console) -> list[str]:
    """Meta-test one run folder; the result.json keys written."""
    if run.resolved is None:
        raise RunError(f"{run.path} has no {RESOLVED}, so it cannot be meta-tested again")
    ws = load(run.spec_file)
    if ws.diagnostics:
        raise SpecError(ws.diagnostics)
    model = run.resolved.get("spec", {}).get("model", {})
    c = compile_experiment(ws, run.resolved["experiment"], request.spec_overrides(model))
    dev = pick_device(request.device or c.experiment.device.type)
    learner = MetaLearner(CompiledModel(c.graph), c.plan, seed=run.seed, device=dev, eval_chunk=25)
    network = _load_network(run, c, learner)
    metric = metric_of(c)
    result = run.result
    written = []
    for i, ds in enumerate(c.experiment.data.test):
        started = time.perf_counter()
        source = open_source(c.experiment, ds, dev)
        task = c.plan.task
        shape = f"{task.ways}-way {task.shots}-shot" if task.ways else f"{task.shots}-shot"
        console.print(f"{run.path}: meta-testing the {network} on {ds.label}: "
                      f"{c.plan.eval.test_tasks} {shape} tasks, {c.plan.inner.test_steps} inner steps",
                      markup=False, highlight=False, soft_wrap=True)
        values = evaluate(learner, source, c.plan.eval.test_tasks,
                          seeded_generator(run.seed, "test-tasks"), metric)
        key = ds.label + request.protocol
        entry = split_entry(metric, values)
        entry.update(on=request.on[i] if request.on else None, ways=task.ways, shots=task.shots,
                     queries=task.queries, steps=c.plan.inner.test_steps)
        result["test"][key] = entry
        written.append(key)
        console.print(f"  {key}: {format_metric(metric, entry['mean'], entry['ci95'])} over "
                      f"{entry['tasks']} tasks ({format_duration(time.perf_counter() - started)})",
                      markup=False, highlight=False, soft_wrap=True)
    RunDir(run.path).write_result(result)
    return written


def _load_network(run: Run, c, learner: MetaLearner) -> str:
    """Load the run's meta-learned state into `learner`; what the network is, for messages."""
    state = run.checkpoint()
    if state is None:
        if run.result.get("iterations") == 0:
            return "untrained network (0 iterations: the seed's initial values)"
        raise RunError(f"{run.path} has no checkpoint to meta-test from")
    best = state.best
    chosen = best[1] if c.experiment.eval.checkpoint == "best" and best else state.learner
    fresh = _load_matching(learner, chosen)
    if fresh:
        return (f"network of {run.result.get('iterations')} iterations, with "
                f"{', '.join(fresh)} drawn fresh from their init (their shape changed)")
    return f"network of {run.result.get('iterations')} iterations"


def _load_matching(learner: MetaLearner, saved: dict) -> list[str]:
    """The saved state, except tensors whose shape the new task changed (a head of more
    ways), which keep their seed-determined initial values; their names."""
    state = learner.state_dict()
    fresh = []
    for group in ("weights", "learned", "thresholds"):
        for name, value in saved[group].items():
            current = state[group].get(name)
            if getattr(current, "shape", None) != getattr(value, "shape", None):
                fresh.append(name.split(":")[0])
                continue
            state[group][name] = value
    state["iteration"], state["iterand_rng"] = saved["iteration"], saved["iterand_rng"]
    learner.load_state_dict(state)
    return sorted(set(fresh))


def print_over_seeds(console: Console, runs: list[Run], keys: list[str]) -> None:
    """Each tested key as the results table gives it (rows by experiment and configuration,
    `mtdsl report`'s grouping): mean ± std over the row's seeds. One line each, so a long
    key is never cut."""
    from ..report.aggregate import aggregate

    for row in aggregate(runs).rows:
        for key in keys:
            cell = row.cells.get(key)
            if cell is None:
                continue
            spread = "" if cell.std is None else f" ± {format_metric(cell.metric, cell.std, None)}"
            console.print(f"{row.experiment}: {key}: {format_metric(cell.metric, cell.mean, None)}"
                          f"{spread.replace('%', '')} (mean ± std over {cell.n} seeds)",
                          markup=False, highlight=False, soft_wrap=True)
