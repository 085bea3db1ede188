"""The inner loop over a stack of tasks as one autograd computation (see engine.stacked).

The same arithmetic as engine.inner.InnerLoop, task by task: masks from the scores (once,
shared by every task and step), SGD steps on each task's support loss, then each task's
query loss. Each task's loss depends only on its own slice of the per-task tensors, so the
gradient of the summed support losses with respect to those tensors is every task's own
inner gradient, and the gradient of the summed query losses with respect to the shared
meta-learned tensors is the sum of the tasks' meta-gradients.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Callable, ContextManager

import torch
import torch.nn.functional as F
from torch import Tensor

from mtdsl.compile.graph import Graph
from mtdsl.compile.plan import ParamPlan
from mtdsl.engine import stacked
from mtdsl.engine.inner import score_key
from mtdsl.engine.masking import straight_through_mask


@dataclass
class StackedLoop:
    graph: Graph
    params: tuple[ParamPlan, ...]
    loss: str  # "cross_entropy" or "mse"
    # Held by reference: IteRand and checkpoint loading update these tensors in place.
    weights: dict[str, Tensor]
    thresholds: dict[str, Tensor]
    probe: str | None = None
    autocast: Callable[[], ContextManager] = contextlib.nullcontext

    def __post_init__(self):
        self.adapted = tuple(p for p in self.params if p.inner_lr != 0)
        self.linear = stacked.linear_weights(self.graph)

    def low_rank(self, support: int) -> set[str]:
        """Adapted linear weights (not masked: a mask breaks the low rank) whose per-task
        updates are cheaper kept as factors (stacked.LowRank) with `support` examples."""
        return {p.name for p in self.adapted if p.role != "masked" and p.name in self.linear
                and support * sum(self.linear[p.name]) < math.prod(self.linear[p.name])}

    def task_losses(self, effective: dict, x: Tensor, y: Tensor, training: bool,
                    taps: dict | None = None, second_order: bool = False) -> tuple[Tensor, Tensor]:
        """Each task's mean loss [T] and the outputs [T, N, *out]."""
        with self.autocast():
            out = stacked.forward(self.graph, effective, x, training=training, taps=taps,
                                  second_order=second_order)
        out = out.to(torch.promote_types(out.dtype, torch.float32))
        tasks = out.shape[0]
        if self.loss == "cross_entropy":
            per_example = F.cross_entropy(out.flatten(0, 1), y.flatten(), reduction="none")
        else:
            per_example = F.mse_loss(out, y, reduction="none")
        return per_example.reshape(tasks, -1).mean(1), out

    def query(self, learned: dict[str, Tensor], support_x: Tensor, support_y: Tensor,
              query_x: Tensor, query_y: Tensor, *, steps: int, order: str,
              training: bool) -> tuple[Tensor, dict[str, Tensor]]:
        """Each task's query loss [T] after adaptation, and detached per-task metrics as
        InnerLoop.query gives them (loss, accuracy or mse, inner_grad)."""
        tasks = support_x.shape[0]
        masks = {p.name: straight_through_mask(learned[score_key(p.name)], self.thresholds[p.name])
                 for p in self.params if p.role == "masked"}

        fast = {p.name: learned[p.name] if p.role == "meta" else self.weights[p.name]
                for p in self.params}
        # What the forward pass computes with; a tensor still shared by every task is masked
        # once, not once per task.
        eff = {n: t * masks[n] if n in masks else t for n, t in fast.items()}
        probe_total = None
        second = order == "second"
        steps = steps if self.adapted else 0
        low_rank = self.low_rank(support_x.shape[1]) if steps else set()
        for name in low_rank:  # its layer's output must be differentiable even at evaluation
            if not isinstance(eff[name], stacked.LowRank) and not eff[name].requires_grad:
                fast[name] = eff[name] = eff[name].detach().requires_grad_()
        for step in range(steps):
            # A linear weight still shared by every task stays shared in the forward pass (one
            # product over every task's examples); its per-task gradients are formed from its
            # layer's output gradient and input, dY^T X, as are a low-rank weight's factors.
            shared = [p.name for p in self.adapted if p.name in self.linear
                      and p.name not in low_rank and eff[p.name].dim() == 2]
            for name in shared:  # its layer's output must be differentiable even at evaluation
                if not eff[name].requires_grad:
                    eff[name] = eff[name].detach().requires_grad_()
            tapped = [*low_rank, *shared]
            with torch.enable_grad():
                # Differentiated by the effective tensors (a per-task one as it is): a masked
                # tensor's gradient times its mask is the gradient by its fast weight.
                moving = {p.name: _per_task_input(eff[p.name], len(p.shape), tasks)
                          for p in self.adapted if p.name not in tapped}
                taps = dict.fromkeys(tapped)
                losses, _ = self.task_losses({**eff, **moving}, support_x, support_y, training,
                                             taps, second)
                found = torch.autograd.grad(
                    losses.sum(), [*moving.values(), *(taps[n][1] for n in tapped)],
                    create_graph=second)
            if not second:
                found = [g.detach() for g in found]
                taps = {n: (x.detach(), y) for n, (x, y) in taps.items()}
            grads = dict(zip([*moving, *tapped], found))
            for name in shared:
                grads[name] = stacked.task_outer(grads[name], taps[name][0])
            if self.probe is not None:
                size = grads[self.probe].detach()
                if self.probe in low_rank:
                    size = torch.bmm(size.transpose(1, 2), taps[self.probe][0].detach())
                if self.probe in masks:
                    size = size * masks[self.probe].detach()
                size = size.abs().flatten(1).mean(1)
                probe_total = size if probe_total is None else probe_total + size
            last = step == steps - 1
            for p in self.adapted:
                g, name = grads[p.name], p.name
                if name in low_rank:
                    now = fast[name]
                    now = now if isinstance(now, stacked.LowRank) else stacked.LowRank(now, ())
                    fast[name] = eff[name] = now.then(p.inner_lr, g, taps[name][0])
                elif name not in masks:
                    fast[name] = eff[name] = torch.add(fast[name], g, alpha=-p.inner_lr)
                elif last and second:
                    # The last step's update feeds only the query loss, so it is
                    # differentiated once: its fused backward needs no second derivative.
                    eff[name] = MaskedStep.apply(fast[name], g, masks[name], p.inner_lr)
                elif not masks[name].requires_grad:
                    # Nothing differentiates by the scores (evaluation): as the mask is 0 or 1,
                    # (fast - lr g mask) mask = eff - lr g mask, one weight-sized pass instead
                    # of two, with the same values; the fast weight itself is never read.
                    eff[name] = torch.addcmul(eff[name], g, masks[name], value=-p.inner_lr)
                else:
                    # First order: the inner gradient by the fast weight (g * mask) is a
                    # constant, so the mask inside it is too.
                    step_mask = masks[name] if second else masks[name].detach()
                    fast[name] = torch.addcmul(fast[name], g, step_mask, value=-p.inner_lr)
                    eff[name] = fast[name] * masks[name]
        losses, out = self.task_losses(eff, query_x, query_y, training, second_order=second)
        metrics = {"loss": losses.detach()}
        if self.loss == "cross_entropy":
            metrics["accuracy"] = (out.detach().argmax(-1) == query_y).float().mean(1)
        else:
            metrics["mse"] = losses.detach()
        if probe_total is not None:
            metrics["inner_grad"] = probe_total / steps
        return losses, metrics


def _per_task_input(t: Tensor, plan_rank: int, tasks: int) -> Tensor:
    """`t` with a task axis, as a tensor the support loss can be differentiated by: a shared
    tensor is expanded (a view, no copy), a tensor outside the graph becomes a leaf."""
    if t.dim() == plan_rank:
        t = t.expand(tasks, *t.shape)
    return t if t.requires_grad else t.detach().requires_grad_()


class MaskedStep(torch.autograd.Function):
    """The last inner step of a masked tensor, fused: (fast - lr * g * mask) * mask, from
    its fast weight, its gradient by the effective tensor `g` [T, ...] and its mask.

    The mask is 0 or 1, so the step is fast * mask - lr * g * mask, and its derivatives are
    mask (by fast), -lr * mask (by g) and fast - 2 lr g mask (by the mask, the
    straight-through path to the scores). Written that way, the backward reads each
    task-sized tensor about half as often as autograd's traversal of the two lines, and a
    fast weight still shared by every task (one inner step) is summed over tasks once,
    not multiplied per task. Its backward is not itself differentiated: the engine uses it
    only where nothing differentiates through the query loss's gradient.
    """

    @staticmethod
    def forward(ctx, fast: Tensor, g: Tensor, mask: Tensor, lr: float) -> Tensor:
        ctx.save_for_backward(fast, g, mask)
        ctx.lr = lr
        return torch.addcmul(fast * mask, g, mask, value=-lr)

    @staticmethod
    def backward(ctx, grad: Tensor):
        fast, g, mask = ctx.saved_tensors
        neg = mask * -ctx.lr
        shared = fast.dim() < grad.dim()
        by_fast = by_mask = None
        summed = grad.sum(0) if shared else None
        if ctx.needs_input_grad[0]:
            by_fast = summed * mask if shared else grad * mask
        if ctx.needs_input_grad[2]:
            by_fast_part = summed * fast if shared else (grad * fast).sum(0)
            by_mask = torch.addcmul(by_fast_part, neg, (grad * g).sum(0), value=2.0)
        by_g = grad * neg if ctx.needs_input_grad[1] else None
        return by_fast, by_g, by_mask, None

