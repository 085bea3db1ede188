"""One task's computation, pure in the meta-learned tensors so torch.func can differentiate
and vectorise it: adapt on the support set with SGD, then the loss on the query set.

Tensor vocabulary used throughout the engine:
  learned    the meta-learned tensors: "<name>:score" for a masked tensor's scores,
             "<name>" for a meta tensor's value.
  weights    the tensors that are never meta-learned: a masked tensor's drawn weight and a
             fixed tensor's value, keyed by parameter name.
  fast       what the inner loop moves, keyed by parameter name: the weight of a masked
             tensor (so it moves only inside the mask), the value of the others.
  effective  what the module computes with: weight * mask for a masked tensor, the value
             otherwise.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable, ContextManager

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, grad

from mtdsl.compile.plan import ParamPlan
from mtdsl.engine.masking import straight_through_mask

# How the inner loop differentiates the support loss w.r.t. the tensors it moves:
# (loss function, tensors, create_graph) -> gradients with the same keys.
Differentiate = Callable[[Callable[[dict], Tensor], dict[str, Tensor], bool], dict[str, Tensor]]


def functional_grad(loss: Callable[[dict], Tensor], inputs: dict[str, Tensor],
                    create_graph: bool) -> dict[str, Tensor]:
    """torch.func.grad: composes with vmap, so a chunk of tasks runs as one computation."""
    grads = grad(loss)(inputs)
    return grads if create_graph else {n: g.detach() for n, g in grads.items()}


def autograd_grad(loss: Callable[[dict], Tensor], inputs: dict[str, Tensor],
                  create_graph: bool) -> dict[str, Tensor]:
    """torch.autograd.grad: for one task at a time, where it is measured 1.3-2x faster than
    torch.func.grad (benchmarks/bench_vs_learn2learn.py). Tensors that are not meta-learned
    (fixed values, masked weights) enter as fresh leaves, so they can be differentiated."""
    inputs = {n: t if t.requires_grad else t.detach().requires_grad_() for n, t in inputs.items()}
    grads = torch.autograd.grad(loss(inputs), list(inputs.values()), create_graph=create_graph,
                                allow_unused=True)
    return {n: torch.zeros_like(t) if g is None else g for (n, t), g in zip(inputs.items(), grads)}

SCORE_SUFFIX = ":score"


def score_key(name: str) -> str:
    return name + SCORE_SUFFIX


def last_feature_weight(params: tuple[ParamPlan, ...]) -> str | None:
    """The last weight (>= 2-D tensor) before the head, in parameter order: the layer whose
    inner-loop gradient magnitude the paper's Fig. 2 compares. None when the network has a
    single weight or that layer does not adapt (its inner gradient is never computed)."""
    weights = [p for p in params if len(p.shape) >= 2]
    if len(weights) < 2 or weights[-2].inner_lr == 0:
        return None
    return weights[-2].name


@dataclass
class InnerLoop:
    module: nn.Module
    params: tuple[ParamPlan, ...]
    loss: str  # "cross_entropy" or "mse"
    # Held by reference: IteRand and checkpoint loading update these tensors in place.
    weights: dict[str, Tensor]
    thresholds: dict[str, Tensor]
    probe: str | None = None  # parameter whose mean |inner gradient| is reported
    # Entered around every forward pass (bf16 autocast, see engine.precision).
    autocast: Callable[[], ContextManager] = contextlib.nullcontext

    def __post_init__(self):
        self.adapted = tuple(p for p in self.params if p.inner_lr != 0)

    def task_loss(self, effective: dict[str, Tensor], x: Tensor,
                  y: Tensor) -> tuple[Tensor, Tensor]:
        with self.autocast():
            out = functional_call(self.module, effective, (x,))
        # The loss in at least float32, whatever precision the forward pass ran in.
        out = out.to(torch.promote_types(out.dtype, torch.float32))
        if self.loss == "cross_entropy":
            return F.cross_entropy(out, y), out
        return F.mse_loss(out, y), out

    def adapt(self, learned: dict[str, Tensor], x: Tensor, y: Tensor, steps: int, order: str,
              differentiate: Differentiate = functional_grad) -> tuple[dict[str, Tensor], Tensor | None]:
        """Effective parameters after `steps` SGD steps on the support loss, and the mean
        |inner gradient| of the probe layer over the steps (None without a probe).

        Second order keeps the inner gradients in the graph of the meta-learned tensors;
        first order detaches them.
        """
        masks = {p.name: straight_through_mask(learned[score_key(p.name)], self.thresholds[p.name])
                 for p in self.params if p.role == "masked"}

        def effective(fast: dict[str, Tensor]) -> dict[str, Tensor]:
            return {n: fast[n] * masks[n] if n in masks else fast[n] for n in fast}

        fast = {p.name: learned[p.name] if p.role == "meta" else self.weights[p.name]
                for p in self.params}
        probe_total = None
        for _ in range(steps if self.adapted else 0):
            def support_loss(moving: dict[str, Tensor]) -> Tensor:
                return self.task_loss(effective({**fast, **moving}), x, y)[0]

            grads = differentiate(support_loss, {p.name: fast[p.name] for p in self.adapted},
                                  order == "second")
            if self.probe is not None:
                size = grads[self.probe].detach().abs().mean()
                probe_total = size if probe_total is None else probe_total + size
            fast = {**fast, **{p.name: fast[p.name] - p.inner_lr * grads[p.name]
                               for p in self.adapted}}
        probe_mean = None if probe_total is None else probe_total / steps
        return effective(fast), probe_mean

    def query(self, learned: dict[str, Tensor], support_x: Tensor, support_y: Tensor,
              query_x: Tensor, query_y: Tensor, *, steps: int, order: str,
              differentiate: Differentiate = functional_grad) -> tuple[Tensor, dict[str, Tensor]]:
        """The query loss after adaptation, and detached metrics of the task: loss,
        accuracy (cross-entropy) or mse, inner_grad (when there is a probe)."""
        effective, probe = self.adapt(learned, support_x, support_y, steps, order, differentiate)
        loss, out = self.task_loss(effective, query_x, query_y)
        metrics = {"loss": loss.detach()}
        if self.loss == "cross_entropy":
            metrics["accuracy"] = (out.detach().argmax(-1) == query_y).float().mean()
        else:
            metrics["mse"] = loss.detach()
        if probe is not None:
            metrics["inner_grad"] = probe
        return loss, metrics
