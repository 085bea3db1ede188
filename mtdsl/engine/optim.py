"""The outer optimizer and its per-iteration learning-rate schedule."""

from __future__ import annotations

import math

import torch

from mtdsl.compile.plan import OptimizerPlan, SchedulePlan


def build_optimizer(plan: OptimizerPlan, tensors: list[torch.Tensor]) -> torch.optim.Optimizer:
    if plan.name == "sgd":
        return torch.optim.SGD(tensors, lr=plan.lr, momentum=plan.momentum,
                               nesterov=plan.nesterov, weight_decay=plan.weight_decay)
    if plan.name == "adam":
        return torch.optim.Adam(tensors, lr=plan.lr, betas=plan.betas,
                                weight_decay=plan.weight_decay)
    if plan.name == "adamw":
        return torch.optim.AdamW(tensors, lr=plan.lr, betas=plan.betas,
                                 weight_decay=plan.weight_decay)
    raise ValueError(f"unknown optimizer {plan.name!r}")


def lr_factor(schedule: SchedulePlan, iteration: int, iterations: int) -> float:
    """Multiplier of the base lr at outer step `iteration` (0-based).

    cosine: lr*(it+1)/warmup during the warmup, then a cosine from lr down to 0 at
    `iterations`. none: constant.
    """
    if schedule.name == "none":
        return 1.0
    if schedule.name == "cosine":
        if iteration < schedule.warmup:
            return (iteration + 1) / schedule.warmup
        decay = max(iterations - schedule.warmup, 1)
        progress = min((iteration - schedule.warmup) / decay, 1.0)
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    raise ValueError(f"unknown schedule {schedule.name!r}")
