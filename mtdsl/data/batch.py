"""The one shape in which tasks travel from data to engine."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class TaskBatch:
    """A meta-batch of T tasks, stacked so the engine can vmap over the first axis.

    Classification: x float32 [T, N*K, *input_shape] in [0, 1], y int64 [T, N*K] in [0, N).
    Regression: x float32 [T, K, 1], y float32 [T, K, 1].
    """

    support_x: torch.Tensor
    support_y: torch.Tensor
    query_x: torch.Tensor
    query_y: torch.Tensor

    @property
    def tasks(self) -> int:
        return self.support_x.shape[0]

    def to(self, device) -> "TaskBatch":
        return TaskBatch(*(t.to(device, non_blocking=True) for t in
                           (self.support_x, self.support_y, self.query_x, self.query_y)))

    def task(self, i: int) -> "TaskBatch":
        """Task i alone, keeping a leading axis of size 1."""
        return TaskBatch(*(t[i:i + 1] for t in
                           (self.support_x, self.support_y, self.query_x, self.query_y)))
