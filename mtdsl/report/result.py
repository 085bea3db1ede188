"""The schema of result.json, the one file a finished run is judged by.

{
  "experiment": str,
  "spec_sha256": str,
  "seed": int,
  "iterations": int,                  # outer (meta-training) iterations run
  "test": {"<dataset>/<split>": {"metric": "accuracy" | "mse",
                                 "mean": float, "ci95": float, "tasks": int}},
  "sparsity": {"<param>": float},     # fraction of the tensor's weights pruned, 0..1
  "wall_seconds": float
}
Accuracy is always a fraction in 0..1 (displays multiply by 100); ci95 is the half-width
from mtdsl.report.stats.mean_ci95. A NaN mean (diverged run) is written as null.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

from mtdsl.report.stats import mean_ci95

Metric = Literal["accuracy", "mse"]
METRICS = ("accuracy", "mse")


def split_entry(metric: Metric, per_task: Iterable[float]) -> dict[str, Any]:
    """One `test` entry (one dataset/split) from per-task values (accuracy fractions or MSEs)."""
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, not {metric!r}")
    if hasattr(per_task, "tolist"):
        per_task = per_task.tolist()
    values = [float(v) for v in per_task]
    mean, ci95 = mean_ci95(values)
    return {"metric": metric, "mean": mean, "ci95": ci95, "tasks": len(values)}


def build_result(
    experiment: str,
    spec_sha256: str,
    seed: int,
    iterations: int,
    test: Mapping[str, Mapping[str, Any]],
    sparsity: Mapping[str, float],
    wall_seconds: float,
) -> dict[str, Any]:
    """The result.json document, keys in schema order. `test` values come from split_entry."""
    return {
        "experiment": experiment,
        "spec_sha256": spec_sha256,
        "seed": int(seed),
        "iterations": int(iterations),
        "test": {key: dict(entry) for key, entry in test.items()},
        "sparsity": {name: float(fraction) for name, fraction in sparsity.items()},
        "wall_seconds": float(wall_seconds),
    }
