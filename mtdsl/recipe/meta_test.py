"""Meta-testing a finished run again: other datasets (cross-domain), other task counts or
inner steps. The run folder is self-contained (its operative spec and checkpoint), so the
original spec files are not needed. Results are added to result.json under `test`."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console

from ..compile.compiler import compile_experiment
from ..compile.module import CompiledModel
from ..engine.init import seeded_generator
from ..engine.meta import MetaLearner
from ..errors import RunError, SpecError
from ..report.result import split_entry
from ..report.rundir import RunDir
from ..report.summary import print_summary
from ..validate.loader import load
from . import checkpoint
from .meta_train import evaluate, pick_device
from .sources import label, open_source


def meta_test(folder: Path, datasets: list[str], *, tasks: int | None, steps: int | None,
              device: str | None, console: Console) -> dict:
    try:
        resolved = json.loads((folder / "resolved.json").read_text())
        result = json.loads((folder / "result.json").read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise RunError(f"{folder} is not a finished run folder ({e}); "
                       "finish it first with `mtdsl run --resume`") from None
    overrides = []
    if datasets:
        overrides.append("data.test=[" + ", ".join(datasets) + "]")
    if tasks is not None:
        overrides.append(f"eval.test_tasks={tasks}")
    if steps is not None:
        overrides.append(f"inner.test_steps={steps}")
    ws = load(folder / "spec.mt")
    if ws.diagnostics:
        raise SpecError(ws.diagnostics)
    c = compile_experiment(ws, resolved["experiment"], overrides)
    state = checkpoint.load(folder)
    if state is None:
        raise RunError(f"{folder} has no checkpoint.pt to meta-test from")
    dev = pick_device(device or c.experiment.device.type)
    learner = MetaLearner(CompiledModel(c.graph), c.plan, seed=resolved["seed"], device=dev, eval_chunk=25)
    best = state.get("best")
    learner.load_state_dict(best[1] if c.experiment.eval.checkpoint == "best" and best else state["learner"])
    metric = "accuracy" if c.plan.loss == "cross_entropy" else "mse"
    for ds in c.experiment.data.test:
        source = open_source(c.experiment, ds, dev)
        console.print(f"meta-testing on {label(ds)}: {c.plan.eval.test_tasks} tasks, "
                      f"{c.plan.inner.test_steps} inner steps")
        values = evaluate(learner, source, c.plan.eval.test_tasks,
                          seeded_generator(resolved["seed"], "test-tasks"), metric)
        key = label(ds) if steps is None else f"{label(ds)}@{steps}steps"
        result["test"][key] = split_entry(metric, values)
    run_dir = RunDir(folder)
    run_dir.write_result(result)
    print_summary(console, result, run_dir=folder)
    return result
