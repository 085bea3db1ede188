"""The meta-training recipe: one experiment, one seed, one run folder.

  start or resume -> meta-train (live progress, metrics, validation, checkpoints)
  -> meta-test on every test dataset -> result.json and the summary.

On CPU a resumed run ends with exactly the numbers of an uninterrupted one: the task
sampler's generator, the learner (weights, scores, optimizer, IteRand generator) and the
best state are all in the checkpoint, and validation and test tasks come from fresh
generators seeded by the run's seed.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from rich.console import Console

from ..compile.compiler import Compiled
from ..compile.module import CompiledModel
from ..compile.operative import operative_text, sha256
from ..engine.init import seeded_generator
from ..engine.meta import MetaLearner
from ..errors import RunError
from ..report.live import LiveDisplay
from ..report.result import build_result, split_entry
from ..report.rundir import RunDir, atomic_write
from ..report.stats import mean_ci95
from ..report.summary import SparsityRow, print_summary
from . import checkpoint
from .sources import open_sources

# Tasks sampled and evaluated at once at validation and test: bounds memory, not results.
EVAL_CHUNK = 100


@dataclass
class RunRequest:
    compiled: Compiled
    seed: int
    folder: Path
    overrides: list[str]
    device: torch.device
    source: str  # the spec file it came from (absolute), recorded in resolved.json


def pick_device(wanted: str) -> torch.device:
    if wanted == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if wanted == "cuda" and not torch.cuda.is_available():
        raise RunError("device cuda was asked for, but no CUDA device is available here; "
                       "use --device cpu, or `device: auto` in the spec")
    return torch.device(wanted)


def source_of(c: Compiled) -> str:
    return str(Path(c.resolved.definition.span.file).resolve())


def operative(c: Compiled) -> tuple[str, str]:
    """The operative spec and its sha256. Where it came from (source file, --set lines) is
    kept in resolved.json, not here, so one configuration has one hash wherever it ran."""
    text = operative_text(c, f"// Operative spec of `{c.resolved.name}`: imports, inheritance, "
                             "overrides and defaults applied.")
    return text, sha256(text)


def resolved_document(c: Compiled) -> dict:
    """The resolved spec as JSON, for tools: every default, inherited value and override."""
    exp = c.experiment.model_dump(mode="json", exclude={"model"})
    exp["model"] = {"model": c.experiment.model.func, **c.experiment.model.kwargs}
    return {"experiment": c.resolved.name, "spec": exp,
            "parameters": [{"name": p.name, "shape": list(p.shape), "role": p.role,
                            "inner_lr": p.inner_lr, "init": p.init} for p in c.plan.params]}


def evaluate(learner: MetaLearner, source, n_tasks: int, generator, metric: str) -> list[float]:
    values: list[float] = []
    for start in range(0, n_tasks, EVAL_CHUNK):
        batch = source.sample(min(EVAL_CHUNK, n_tasks - start), generator)
        values += getattr(learner.evaluate(batch), metric).tolist()
    return values


def run(req: RunRequest, console: Console) -> Path:
    """Run (or continue) one seed of one experiment into `req.folder`."""
    c, plan, name, seed = req.compiled, req.compiled.plan, req.compiled.resolved.name, req.seed
    started = time.monotonic()
    text, sha = operative(c)
    sources = open_sources(c.experiment, req.device)  # before the folder: missing data leaves none
    state = _open_folder(req.folder, sha)
    run_dir = RunDir(req.folder)
    if state is None:
        run_dir.write_spec(text, sha)
        run_dir.write_json("resolved", {**resolved_document(c),
                                        "source": req.source,
                                        "overrides": list(req.overrides), "seed": seed, "spec_sha256": sha,
                                        "device": _device_name(req.device), "versions": _versions()})
    metric = "accuracy" if plan.loss == "cross_entropy" else "mse"
    torch.manual_seed(seed)
    learner = MetaLearner(CompiledModel(c.graph), plan, seed=seed, device=req.device, eval_chunk=25)
    train_rng = seeded_generator(seed, "train-tasks")
    best = None  # (validation value, learner state) when eval.checkpoint is "best"
    elapsed = 0.0
    if state is not None:
        learner.load_state_dict(state["learner"])
        train_rng.set_state(state["train_rng"])
        torch.set_rng_state(state["torch_rng"])  # dropout draws from it
        best, elapsed = state["best"], state["elapsed"]
        _truncate_metrics(req.folder, learner.iteration)
        console.print(f"[bold]{name}[/] seed {seed}: resuming at iteration {learner.iteration} in {req.folder}")
    else:
        console.print(f"[bold]{name}[/] seed {seed} on {req.device} -> {req.folder}")

    def save_checkpoint():
        _check_finite(learner, req.folder)  # never overwrite a good checkpoint with a bad state
        checkpoint.save(req.folder, {"spec_sha256": sha, "learner": learner.state_dict(),
                                     "train_rng": train_rng.get_state(), "torch_rng": torch.get_rng_state(),
                                     "best": best, "elapsed": elapsed + time.monotonic() - started})

    iterations = plan.outer.iterations
    log_every = max(1, iterations // 1000)
    if iterations > learner.iteration:
        first = sources.train.sample(plan.outer.meta_batch, seeded_generator(seed, "probe"))
        console.print(f"computing {learner.execution(first)}")
    try:
        with LiveDisplay(console, iterations, f"{name} s{seed}", metric) as live:
            for it in range(learner.iteration + 1, iterations + 1):
                try:
                    stats = learner.meta_step(sources.train.sample(plan.outer.meta_batch, train_rng))
                except RunError as e:
                    raise RunError(f"{e}\nThe last good checkpoint is kept in {req.folder}; "
                                   f"continue with --resume {req.folder} after fixing the spec.") from None
                value = getattr(stats, metric)
                sparsity = learner.overall_sparsity()
                live.update(it, stats.loss, value, stats.lr, sparsity if plan.by_role("masked") else None)
                if it % log_every == 0 or it == iterations:
                    _check_finite(learner, req.folder)
                    run_dir.append_metrics({"iteration": it, "loss": stats.loss, metric: value,
                                            "lr": stats.lr, "sparsity": sparsity,
                                            "layer_sparsity": learner.sparsity(),
                                            "inner_grad": stats.inner_grad,
                                            "seconds": round(elapsed + time.monotonic() - started, 3)})
                if it % plan.eval.every == 0 or it == iterations:
                    if sources.valid is not None:
                        values = evaluate(learner, sources.valid, plan.eval.valid_tasks,
                                          seeded_generator(seed, "valid-tasks"), metric)
                        mean, ci = mean_ci95(values)
                        live.validation(it, mean, ci)
                        run_dir.append_metrics({"iteration": it, "valid": {"metric": metric, "mean": mean,
                                                                           "ci95": ci, "tasks": len(values)}})
                        better = best is None or (mean > best[0] if metric == "accuracy" else mean < best[0])
                        if c.experiment.eval.checkpoint == "best" and better:
                            best = (mean, _copy(learner.state_dict()))
                    save_checkpoint()
    except KeyboardInterrupt:
        save_checkpoint()
        run_dir.close()
        raise RunError(f"interrupted at iteration {learner.iteration}; continue with "
                       f"`mtdsl run --resume {req.folder}`") from None

    if c.experiment.eval.checkpoint == "best" and best is not None:
        learner.load_state_dict(best[1])
        console.print(f"meta-testing the best validated state ({metric} {best[0]:.4g})")
    test = {}
    for label, source in sources.tests.items():
        console.print(f"meta-testing on {label}: {plan.eval.test_tasks} tasks, {plan.inner.test_steps} inner steps")
        values = evaluate(learner, source, plan.eval.test_tasks, seeded_generator(seed, "test-tasks"), metric)
        test[label] = split_entry(metric, values)
        if not math.isfinite(test[label]["mean"]):
            raise RunError(f"meta-test on {label} gave a non-finite {metric}; the run folder {req.folder} "
                           "keeps the training metrics and checkpoint")

    masks = learner.masks()
    run_dir.save_tensors("final", {**{f"weights/{k}": v for k, v in learner.weights.items()},
                                   **{f"learned/{k}": v for k, v in learner.learned.items()},
                                   **{f"masks/{k}": v for k, v in masks.items()}})
    result = build_result(experiment=name, spec_sha256=sha, seed=seed, iterations=iterations, test=test,
                          sparsity=learner.sparsity(),
                          wall_seconds=round(elapsed + time.monotonic() - started, 2))
    run_dir.write_result(result)
    run_dir.close()
    rows = [SparsityRow(p.name, tuple(p.shape), int(masks[p.name].sum().item()), p.numel)
            for p in plan.by_role("masked")]
    print_summary(console, result, rows, run_dir=req.folder)
    return req.folder


def _check_finite(learner: MetaLearner, folder: Path) -> None:
    bad = [k for k, t in learner.learned.items() if not torch.isfinite(t).all()]
    if bad:
        raise RunError(f"meta-training diverged at iteration {learner.iteration}: {', '.join(bad[:4])} "
                       f"became non-finite. Lower the outer lr or the inner lrs. The last good "
                       f"checkpoint is kept in {folder}.")


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return str(device)


def _versions() -> dict:
    import platform

    from .. import __version__

    return {"mtdsl": __version__, "torch": torch.__version__, "python": platform.python_version(),
            "platform": platform.platform()}


def _copy(state):
    if isinstance(state, torch.Tensor):
        return state.detach().clone()
    if isinstance(state, dict):
        return {k: _copy(v) for k, v in state.items()}
    if isinstance(state, list):
        return [_copy(v) for v in state]
    return state


def _open_folder(folder: Path, sha: str) -> dict | None:
    """The checkpoint to continue from, or None for a fresh run (the folder is prepared)."""
    if not folder.exists() or not any(folder.iterdir()):
        folder.mkdir(parents=True, exist_ok=True)
        return None
    recorded = (folder / "spec.sha256").read_text().split()[0] if (folder / "spec.sha256").exists() else None
    if recorded != sha:
        raise RunError(f"{folder} holds a run of a different spec (sha256 {str(recorded)[:12]}..., "
                       f"this one {sha[:12]}...); give a new folder with --out")
    state = checkpoint.load(folder)
    if state is None:  # killed before its first checkpoint: start over in the same folder
        for leftover in ("metrics.jsonl",):
            (folder / leftover).unlink(missing_ok=True)
        return None
    return state


def _truncate_metrics(folder: Path, iteration: int) -> None:
    """Drop metric lines written after the checkpoint: the resumed run writes them again."""
    path = folder / "metrics.jsonl"
    if not path.exists():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:  # a line cut by the kill
            continue
        if record.get("iteration", 0) <= iteration:
            kept.append(line)
    atomic_write(path, lambda f: f.write(("\n".join(kept) + "\n" if kept else "").encode()))
