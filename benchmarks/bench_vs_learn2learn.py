"""mtdsl's engine against learn2learn's MAML, the base of the public Meta-ticket code: the
same network, initial values and tasks, the meta-gradient of one meta-batch (second order).
Both are timed in one process, interleaved, and the median per-round ratio is reported,
because this machine's load varies. The two gradients are checked equal first, so the
comparison is between two computations of the same numbers.

    .venv/bin/python benchmarks/bench_vs_learn2learn.py [--rounds 15] [--device cuda]

Not a test. A ratio above 1 means mtdsl is faster.
"""

from __future__ import annotations

import argparse
import statistics
import time

import learn2learn as l2l
import torch
import torch.nn.functional as F
from torch import nn

from mtdsl.compile.plan import (EvalPlan, InnerPlan, MaskPlan, OuterPlan, ParamPlan, Plan, TaskPlan)
from mtdsl.data.batch import TaskBatch
from mtdsl.engine import MetaLearner


class Mlp(nn.Module):
    """The paper's Omniglot MLP, with its parameter names as mtdsl compiles them."""

    def __init__(self, sizes=(784, 256, 128, 64, 64), ways=5):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.norms = nn.ModuleList(nn.BatchNorm1d(b, eps=1e-3, track_running_stats=False) for b in sizes[1:])
        self.head = nn.Linear(sizes[-1], ways)

    def forward(self, x):
        x = x.flatten(1)
        for layer, norm in zip(self.layers, self.norms):
            x = F.relu(norm(layer(x)))
        return self.head(x)


def maml_plan(model: nn.Module, lr: float, tasks: int, tasks_in: str) -> Plan:
    params = tuple(ParamPlan(n, tuple(p.shape), "meta", lr, "kaiming_normal" if p.dim() > 1 else "zeros")
                   for n, p in model.named_parameters())
    return Plan(params, MaskPlan(), InnerPlan(1, 1, "second"),
                OuterPlan(iterations=1, meta_batch=tasks, tasks_in=tasks_in), TaskPlan(5, 5, 5), EvalPlan(),
                "cross_entropy")


def l2l_gradients(maml, batch: TaskBatch) -> dict[str, torch.Tensor]:
    maml.zero_grad()
    for i in range(batch.tasks):
        learner = maml.clone()
        learner.adapt(F.cross_entropy(learner(batch.support_x[i]), batch.support_y[i]))
        (F.cross_entropy(learner(batch.query_x[i]), batch.query_y[i]) / batch.tasks).backward()
    return {n: p.grad.clone() for n, p in maml.module.named_parameters()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    for tasks in (4, 32):  # the paper's meta-batches: 4 (most experiments), 32 (section 4.1.2)
        compare(tasks, torch.device(args.device), args.rounds)


def compare(tasks: int, device: torch.device, rounds: int) -> None:
    g = torch.Generator().manual_seed(0)
    lr = 0.4
    batch = TaskBatch(torch.rand(tasks, 25, 1, 28, 28, generator=g), torch.randint(0, 5, (tasks, 25), generator=g),
                      torch.rand(tasks, 25, 1, 28, 28, generator=g), torch.randint(0, 5, (tasks, 25), generator=g))
    batch = batch.to(device)
    print(f"Omniglot MLP 784-256-128-64-64-5, MAML, {tasks} tasks of 5-way 5-shot, 1 inner step, "
          f"second order, on {device}")
    for tasks_in in ("vmap", "sequential"):
        model = Mlp().to(device)
        learner = MetaLearner(model, maml_plan(model, lr, tasks, tasks_in), seed=0, device=device)
        with torch.no_grad():  # one network for both
            for n, p in model.named_parameters():
                p.copy_(learner.learned[n])
        maml = l2l.algorithms.MAML(model, lr=lr, first_order=False)
        ours, _ = learner.meta_gradients(batch)
        theirs = l2l_gradients(maml, batch)
        worst = max(((ours[n] - theirs[n]).norm() / (theirs[n].norm() + 1e-12)).item() for n in theirs)
        assert worst < 1e-4, f"the two meta-gradients differ (relative {worst:.2e})"
        ratios = []
        for r in range(rounds):
            order = (0, 1) if r % 2 == 0 else (1, 0)
            times = [0.0, 0.0]
            for which in order:
                start = time.perf_counter()
                learner.meta_gradients(batch) if which == 0 else l2l_gradients(maml, batch)
                if device.type == "cuda":
                    torch.cuda.synchronize()
                times[which] = time.perf_counter() - start
            ratios.append(times[1] / times[0])
        print(f"  mtdsl ({tasks_in:10s}) vs learn2learn MAML: {statistics.median(ratios):.2f}x "
              f"(learn2learn time / mtdsl time, median of {rounds}; gradients agree to {worst:.1e})")


if __name__ == "__main__":
    main()
