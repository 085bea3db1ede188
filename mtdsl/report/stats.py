"""Mean and 95% confidence interval over per-task results, as meta-learning papers report them."""

from __future__ import annotations

import math
from collections.abc import Iterable

Z_95 = 1.96


def mean_ci95(values: Iterable[float]) -> tuple[float, float]:
    """Return (mean, 1.96 * std / sqrt(n)), with the sample std (ddof=1).

    One value gives ci95 = 0.0, not NaN: a single task has no spread to estimate, and the
    `tasks` count stored beside it says so, while the number stays valid JSON. Non-finite
    values propagate (a diverged task makes the mean NaN rather than being hidden).
    Tensors and arrays are read with one `.tolist()`, so a CUDA tensor syncs once.
    """
    if hasattr(values, "tolist"):
        values = values.tolist()
    xs = [float(v) for v in values]
    n = len(xs)
    if n == 0:
        raise ValueError("mean_ci95 needs at least one value")
    mean = math.fsum(xs) / n
    if n == 1:
        return mean, 0.0
    variance = math.fsum((x - mean) ** 2 for x in xs) / (n - 1)
    return mean, Z_95 * math.sqrt(variance) / math.sqrt(n)
