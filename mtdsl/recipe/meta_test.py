"""Meta-testing a finished run again: other datasets (cross-domain), other task counts or
inner steps. The run folder is self-contained (its operative spec and checkpoint), so the
original spec files are not needed. Results are added to result.json under `test`."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from ..compile.compiler import compile_experiment
from ..compile.module import CompiledModel
from ..engine.init import seeded_generator
from ..engine.meta import MetaLearner
from ..errors import RunError, SpecError
from ..report.result import split_entry
from ..report.rundir import RESOLVED, RunDir, open_run
from ..report.summary import print_summary
from ..validate.loader import load
from .meta_train import evaluate, metric_of, pick_device
from .sources import label, open_source


def meta_test(folder: Path, datasets: list[str], *, tasks: int | None, steps: int | None,
              device: str | None, console: Console) -> dict:
    run = open_run(folder)
    if run.resolved is None:
        raise RunError(f"{folder} has no {RESOLVED}, so it cannot be meta-tested again")
    result = run.result
    overrides = []
    if datasets:
        overrides.append("data.test=[" + ", ".join(datasets) + "]")
    if tasks is not None:
        overrides.append(f"eval.test_tasks={tasks}")
    if steps is not None:
        overrides.append(f"inner.test_steps={steps}")
    ws = load(run.spec_file)
    if ws.diagnostics:
        raise SpecError(ws.diagnostics)
    c = compile_experiment(ws, run.resolved["experiment"], overrides)
    state = run.checkpoint()
    if state is None:
        raise RunError(f"{folder} has no checkpoint to meta-test from")
    dev = pick_device(device or c.experiment.device.type)
    learner = MetaLearner(CompiledModel(c.graph), c.plan, seed=run.seed, device=dev, eval_chunk=25)
    best = state.best
    learner.load_state_dict(best[1] if c.experiment.eval.checkpoint == "best" and best else state.learner)
    metric = metric_of(c)
    for ds in c.experiment.data.test:
        source = open_source(c.experiment, ds, dev)
        console.print(f"meta-testing on {label(ds)}: {c.plan.eval.test_tasks} tasks, "
                      f"{c.plan.inner.test_steps} inner steps")
        values = evaluate(learner, source, c.plan.eval.test_tasks,
                          seeded_generator(run.seed, "test-tasks"), metric)
        key = label(ds) if steps is None else f"{label(ds)}@{steps}steps"
        result["test"][key] = split_entry(metric, values)
    run_dir = RunDir(folder)
    run_dir.write_result(result)
    print_summary(console, result, run_dir=folder)
    return result
