"""Run folders written with the run folder's own writers (RunDir, build_result), holding
chosen numbers, so report tests know every expected value without training anything."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from mtdsl.report.result import build_result
from mtdsl.report.rundir import RunDir


def spec(width: int = 1, iterations: int = 100, root: str = "data", ways: int = 5) -> dict:
    return {"seeds": [1, 2, 3], "data": {"root": root, "train": {"kind": "omniglot"}},
            "task": {"ways": ways, "shots": 1}, "model": {"model": "mlp", "width": width},
            "outer": {"iterations": iterations}}


def make_run(folder: Path, experiment: str, seed: int, test: dict, *, spec_doc: dict | None = None,
             metrics: list[dict] = (), tensors: dict | None = None,
             parameters: list[dict] | None = None, sparsity: dict | None = None) -> Path:
    """A finished run folder. `test` maps "<dataset>/<split>" to (metric, mean, ci95, tasks)."""
    spec_doc = spec() if spec_doc is None else spec_doc
    sha = hashlib.sha256(json.dumps(spec_doc, sort_keys=True).encode()).hexdigest()
    with RunDir.create(experiment, out=folder) as run:
        run.write_json("resolved", {"experiment": experiment, "spec": spec_doc,
                                    "parameters": parameters or [], "seed": seed, "spec_sha256": sha})
        for record in metrics:
            run.append_metrics(record)
        if tensors is not None:
            run.save_tensors("final", tensors)
        entries = {k: {"metric": m, "mean": mean, "ci95": ci, "tasks": n} for k, (m, mean, ci, n) in test.items()}
        run.write_result(build_result(experiment=experiment, spec_sha256=sha, seed=seed, iterations=100,
                                      test=entries, sparsity=sparsity or {}, wall_seconds=1.0))
    return folder


def acc(mean: float, ci95: float = 0.01, tasks: int = 600) -> dict:
    return {"omniglot/test": ("accuracy", mean, ci95, tasks)}
