"""Sinusoid regression (Finn et al. 2017; the Meta-ticket paper's Appendix C).

Each task is y = A sin(x - phase) with A, phase and the inputs x drawn uniformly.
"""

from __future__ import annotations

import math

import torch

from mtdsl.data.batch import TaskBatch
from mtdsl.errors import DataError


class SinusoidTasks:
    """Tasks of `shots` support and `queries` query points of one random sinusoid each.

    Numbers are drawn on the generator's device, then moved to `device`, so a CPU generator
    gives the same tasks on any device.
    """

    kind = "regression"
    input_shape = (1,)
    num_classes = None

    def __init__(self, shots: int, queries: int, amplitude: tuple[float, float] = (0.1, 5.0),
                 phase: tuple[float, float] = (0.0, math.pi), x_range: tuple[float, float] = (-5.0, 5.0),
                 device: torch.device | str = "cpu"):
        if min(shots, queries) < 1:
            raise DataError(f"sinusoid tasks need shots and queries of at least 1, "
                            f"got shots={shots}, queries={queries}")
        self.shots, self.queries = shots, queries
        self.amplitude, self.phase, self.x_range = amplitude, phase, x_range
        self.device = torch.device(device)

    def to(self, device) -> "SinusoidTasks":
        return SinusoidTasks(self.shots, self.queries, self.amplitude, self.phase, self.x_range,
                             device=device)

    def sample(self, n_tasks: int, generator: torch.Generator) -> TaskBatch:
        def uniform(bounds: tuple[float, float], *shape: int) -> torch.Tensor:
            low, high = bounds
            u = torch.rand(*shape, generator=generator, device=generator.device)
            return (low + (high - low) * u).to(self.device)

        amplitude = uniform(self.amplitude, n_tasks, 1, 1)
        phase = uniform(self.phase, n_tasks, 1, 1)
        x = uniform(self.x_range, n_tasks, self.shots + self.queries, 1)
        y = amplitude * torch.sin(x - phase)
        k = self.shots
        # Contiguous, so an engine may .view() them like the classification batches.
        return TaskBatch(*(t.contiguous() for t in (x[:, :k], y[:, :k], x[:, k:], y[:, k:])))


def open_sinusoid(*, root: str | None, split: str, ways: int | None, shots: int, queries: int,
                  amplitude: tuple[float, float], phase: tuple[float, float],
                  x_range: tuple[float, float]) -> SinusoidTasks:
    """The registry's loader: every split draws from the same distribution, as in the paper."""
    if ways is not None:
        raise DataError("sinusoid is a regression dataset of 1-d points; it takes no ways")
    return SinusoidTasks(shots, queries, tuple(amplitude), tuple(phase), tuple(x_range))
