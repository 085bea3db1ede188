"""`mtdsl run`: the recipe that joins the stages — compile, open data, meta-train with live
progress, validate, meta-test, and write the run folder."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from ..compile.compiler import Compiled
from ..compile.operative import operative_text, sha256
from ..errors import RunError
from ..validate import spec as S
from .select import compile_ref

# Tasks sampled and evaluated at once at validation and test: bounds memory, not results.
EVAL_CHUNK = 100


@dataclass
class Sources:
    train: object
    valid: object | None
    tests: dict[str, object]  # "<dataset>/<split>" -> task source


def run_ref(ref: str, overrides: list[str], *, out_dir: str | None, seed: int | None,
            device: str | None, console: Console) -> list[Path]:
    compiled = compile_ref(ref, overrides)
    if out_dir and len(compiled) > 1:
        raise RunError(f"{ref} defines {len(compiled)} experiments; pick one with "
                       f"{ref}::{compiled[0].resolved.name} to use --out")
    folders = []
    for c in compiled:
        seeds = [seed] if seed is not None else c.experiment.seeds
        for s in seeds:
            out = out_dir if out_dir is None or len(seeds) == 1 else str(Path(out_dir) / f"seed{s}")
            folders.append(run_experiment(c, seed=s, out_dir=out, device=device, console=console,
                                          overrides=overrides))
    return folders


def resolved_document(c: Compiled) -> dict:
    """The operative spec: every default, inherited value and override applied."""
    exp = c.experiment.model_dump(mode="json", exclude={"model"})
    exp["model"] = {"model": c.experiment.model.func, **c.experiment.model.kwargs}
    return {"experiment": c.resolved.name, "spec": exp,
            "parameters": [{"name": p.name, "shape": list(p.shape), "role": p.role,
                            "inner_lr": p.inner_lr, "init": p.init} for p in c.plan.params]}


def pick_device(wanted: str):
    import torch

    if wanted == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if wanted == "cuda" and not torch.cuda.is_available():
        raise RunError("the spec asks for device cuda, but no CUDA device is available; "
                       "use --device cpu or device: auto")
    return torch.device(wanted)


def open_sources(exp: S.Experiment, device) -> Sources:
    from ..data.registry import open_dataset

    def one(ds, split=None):
        options = ds.model_dump(exclude={"kind", "split", "root"})
        kind = ds.task_kind
        return open_dataset(ds.kind, root=getattr(ds, "root", None) or exp.data.root, split=split or ds.split,
                            ways=exp.task.ways if kind == "classification" else None,
                            shots=exp.task.shots, queries=exp.task.queries, **options).to(device)

    def label(ds):
        return f"{ds.kind}/{ds.split}"

    tests = {}
    for ds in exp.data.test:
        tests[label(ds)] = one(ds)
    return Sources(one(exp.data.train), one(exp.data.valid) if exp.data.valid else None, tests)


def evaluate(learner, source, n_tasks: int, generator, metric: str) -> list[float]:
    values: list[float] = []
    for start in range(0, n_tasks, EVAL_CHUNK):
        batch = source.sample(min(EVAL_CHUNK, n_tasks - start), generator)
        stats = learner.evaluate(batch)
        values += getattr(stats, metric).tolist()
    return values


def run_experiment(c: Compiled, *, seed: int, out_dir: str | None, device: str | None,
                   console: Console, overrides: list[str]) -> Path:
    import torch

    from ..compile.module import CompiledModel
    from ..engine.init import seeded_generator
    from ..engine.meta import MetaLearner
    from ..report.live import LiveDisplay
    from ..report.result import build_result, split_entry
    from ..report.rundir import RunDir
    from ..report.stats import mean_ci95
    from ..report.summary import SparsityRow, print_summary

    exp, plan, name = c.experiment, c.plan, c.resolved.name
    dev = pick_device(device or exp.device)
    started = time.monotonic()
    sources = open_sources(exp, dev)
    source = str(Path(c.resolved.definition.span.file).resolve())
    header = f"// Operative spec of `{name}` from {source}" + "".join(f"\n// --set {o}" for o in overrides)
    text = operative_text(c, header)
    sha = sha256(text)
    document = resolved_document(c)
    run = RunDir.create(name, out=out_dir)
    run.write_spec(text, sha)
    run.write_json("resolved", {**document, "source": source, "overrides": list(overrides),
                                "seed": seed, "spec_sha256": sha,
                                "device": str(dev), "torch": torch.__version__})
    metric = "accuracy" if plan.loss == "cross_entropy" else "mse"

    torch.manual_seed(seed)
    learner = MetaLearner(CompiledModel(c.graph), plan, seed=seed, device=dev, eval_chunk=25)
    train_rng = seeded_generator(seed, "train-tasks")
    iterations = plan.outer.iterations
    log_every = max(1, iterations // 1000)
    console.print(f"[bold]{name}[/] seed {seed} on {dev} -> {run.path}")
    with LiveDisplay(console, iterations, f"{name} s{seed}", metric) as live:
        for it in range(1, iterations + 1):
            stats = learner.meta_step(sources.train.sample(plan.outer.meta_batch, train_rng))
            value = getattr(stats, metric)
            sparsity = learner.overall_sparsity()
            live.update(it, stats.loss, value, stats.lr, sparsity if plan.by_role("masked") else None)
            if it % log_every == 0 or it == iterations:
                run.append_metrics({"iteration": it, "loss": stats.loss, metric: value, "lr": stats.lr,
                                    "sparsity": sparsity, "layer_sparsity": learner.sparsity(),
                                    "inner_grad": stats.inner_grad,
                                    "seconds": round(time.monotonic() - started, 3)})
            if sources.valid is not None and (it % plan.eval.every == 0 or it == iterations):
                values = evaluate(learner, sources.valid, plan.eval.valid_tasks,
                                  seeded_generator(seed, "valid-tasks"), metric)
                mean, ci = mean_ci95(values)
                live.validation(it, mean, ci)
                run.append_metrics({"iteration": it, "valid": {"metric": metric, "mean": mean, "ci95": ci,
                                                               "tasks": len(values)}})

    test = {}
    for label, source in sources.tests.items():
        console.print(f"meta-testing on {label}: {plan.eval.test_tasks} tasks, "
                      f"{plan.inner.test_steps} inner steps")
        values = evaluate(learner, source, plan.eval.test_tasks, seeded_generator(seed, "test-tasks"), metric)
        test[label] = split_entry(metric, values)
    if any(not math.isfinite(v["mean"]) for v in test.values()):
        raise RunError(f"meta-test produced a non-finite {metric}; the run folder {run.path} keeps "
                       "the training metrics")

    masks = learner.masks()
    run.save_tensors("final", {**{f"weights/{k}": v for k, v in learner.weights.items()},
                               **{f"learned/{k}": v for k, v in learner.learned.items()},
                               **{f"masks/{k}": v for k, v in masks.items()}})
    result = build_result(experiment=name, spec_sha256=sha, seed=seed, iterations=iterations, test=test,
                          sparsity=learner.sparsity(), wall_seconds=round(time.monotonic() - started, 2))
    run.write_result(result)
    run.close()
    rows = [SparsityRow(p.name, tuple(p.shape), int(masks[p.name].sum().item()), p.numel)
            for p in plan.by_role("masked")]
    print_summary(console, result, rows, run_dir=run.path)
    return run.path
