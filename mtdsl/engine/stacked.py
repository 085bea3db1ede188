"""The compiled layer graph run over a stack of tasks at once, each task with its own tensors.

Where torch.func.vmap batches a one-task function op by op through batching rules, this
writes the batched computation out directly from the graph, so a meta-batch is one plain
autograd computation: a linear layer with per-task weights is one `bmm`, a convolution is
one grouped convolution (tasks as groups), a batch norm normalises each task's channels
over that task's examples only. Every tensor of the graph is either shared by all tasks
(its plan shape) or per task (a leading task axis); before the first inner step all are
shared, which is one large matrix product instead of T small ones.

Activations travel in one of two layouts:
  tasks   [T, N, *features], features flat or (C, H, W) before the first spatial layer
  groups  [N, T*C, H, W], the layout of a grouped convolution, in which batch norm and
          pooling are per task and per channel with no further reshaping
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from mtdsl.compile.graph import Graph, LayerNode, ResidualNode
from mtdsl.engine.batch_norm import batch_norm_by_task

SPATIAL = ("conv", "maxpool", "avgpool", "global_avgpool")
KINDS = (*SPATIAL, "linear", "batchnorm", "relu", "leaky_relu", "flatten", "dropout")


def unsupported(graph: Graph) -> str | None:
    """Why `graph` cannot run stacked (None: it can)."""
    for layer in graph.layers():
        if layer.kind not in KINDS:
            return f"layer kind {layer.kind!r} has no stacked form"
    return None


@dataclass(frozen=True)
class LowRank:
    """Per-task weights of a linear layer after inner SGD steps, kept as their factors:
    base - sum of lr * dY^T X over the steps, with dY [T, N, out] the gradient of the support
    loss by the layer's output and X [T, N, in] its input. A task's weight gradient has rank
    at most N (its support examples), so multiplying by the factors costs a fraction of
    forming a [T, out, in] weight per task when N * (in + out) < in * out."""

    base: Tensor  # shared [out, in] or per task [T, out, in]
    terms: tuple[tuple[float, Tensor, Tensor], ...]  # (lr, dY, X)

    def times(self, x: Tensor) -> Tensor:
        """x [T, M, in] times each task's weight transposed: [T, M, out]."""
        out = task_linear(x, self.base) if self.base.dim() == 3 else x @ self.base.t()
        for lr, dy, xs in self.terms:
            out = torch.baddbmm(out, torch.bmm(x, xs.transpose(1, 2)), dy, alpha=-lr)
        return out

    def then(self, lr: float, dy: Tensor, xs: Tensor) -> "LowRank":
        return LowRank(self.base, (*self.terms, (lr, dy, xs)))


class _TaskLinear(torch.autograd.Function):
    """x [T, N, in] times per-task weights w [T, out, in] transposed, whose weight gradient
    comes out laid out as w is. Autograd's own bmm(x, w^T) hands back the gradient of w^T,
    [T, in, out], as a transposed view, and every weight-sized pass after it (mask, sum over
    tasks) then strides across memory: the sum over tasks of layer 1's gradient alone took
    28 ms of a 240 ms meta-step (width 4). Its backward is made of differentiable products,
    so second-order inner loops differentiate through it as through bmm."""

    @staticmethod
    def forward(ctx, x: Tensor, w: Tensor) -> Tensor:
        ctx.save_for_backward(x, w)
        return torch.bmm(x, w.transpose(1, 2))

    @staticmethod
    def backward(ctx, grad: Tensor):
        x, w = ctx.saved_tensors
        # Under autocast the forward product ran in the autocast dtype, which `grad` carries;
        # the products here run in it too, and autograd casts each result to its input's dtype.
        by_x = torch.bmm(grad, w.to(grad.dtype)) if ctx.needs_input_grad[0] else None
        by_w = torch.bmm(grad.transpose(1, 2), x.to(grad.dtype)) if ctx.needs_input_grad[1] else None
        return by_x, by_w


def task_linear(x: Tensor, w: Tensor) -> Tensor:
    return _TaskLinear.apply(x, w)


class _TaskOuter(torch.autograd.Function):
    """Each task's dY^T X, [T, out, in], from dY [T, N, out] and X [T, N, in]: a linear
    layer's per-task weight gradient. Autograd's bmm(dY^T, X) takes dY's gradient as
    grad X^T, a product with only N columns and the result transposed, which MKL runs at
    two thirds of its usual rate here; X grad^T gives the same numbers laid out as dY. Its
    backward is made of products, so it differentiates again as bmm does."""

    @staticmethod
    def forward(ctx, dy: Tensor, x: Tensor) -> Tensor:
        ctx.save_for_backward(dy, x)
        return torch.bmm(dy.transpose(1, 2), x)

    @staticmethod
    def backward(ctx, grad: Tensor):
        dy, x = ctx.saved_tensors
        by_dy = torch.bmm(x, grad.transpose(1, 2)) if ctx.needs_input_grad[0] else None
        by_x = torch.bmm(dy, grad) if ctx.needs_input_grad[1] else None
        return by_dy, by_x


def task_outer(dy: Tensor, x: Tensor) -> Tensor:
    return _TaskOuter.apply(dy, x)


def linear_weights(graph: Graph) -> dict[str, tuple[int, int]]:
    """Every linear layer's weight name and its (out, in)."""
    return {q.name: q.shape for n in graph.layers() if n.kind == "linear"
            for q in n.params if q.name.rsplit(".", 1)[-1] == "weight"}


class _Act:
    """An activation and its layout ("tasks" or "groups")."""

    __slots__ = ("x", "layout", "tasks")

    def __init__(self, x: Tensor, layout: str, tasks: int):
        self.x, self.layout, self.tasks = x, layout, tasks

    def grouped(self) -> Tensor:
        if self.layout == "tasks":  # [T, N, C, H, W] -> [N, T*C, H, W]
            t, n, c, h, w = self.x.shape
            self.x, self.layout = self.x.transpose(0, 1).reshape(n, t * c, h, w), "groups"
        return self.x

    def by_task(self) -> Tensor:
        if self.layout == "groups":  # [N, T*C, H, W] -> [T, N, C, H, W]
            n, tc, h, w = self.x.shape
            self.x = self.x.view(n, self.tasks, tc // self.tasks, h, w).transpose(0, 1)
            self.layout = "tasks"
        return self.x


@dataclass(frozen=True)
class _Pass:
    """How one forward pass runs: dropout on or off (`training`), the linear layers whose
    (input, output) to record (`taps`), and whether its backward will be differentiated
    again (`second_order`)."""

    training: bool
    taps: dict[str, tuple[Tensor, Tensor]] | None
    second_order: bool


def forward(graph: Graph, tensors: dict[str, Tensor | LowRank], x: Tensor, *, training: bool,
            taps: dict[str, tuple[Tensor, Tensor]] | None = None,
            second_order: bool = False) -> Tensor:
    """The graph's output [T, N, *out] for inputs x [T, N, *in]; `tensors` maps every
    parameter name to a shared tensor (plan shape), a per-task one ([T, *plan shape]) or,
    for a linear weight, a LowRank. A linear weight named in `taps` gets its layer's
    (input, output) there. `second_order`: the pass belongs to a meta-gradient that
    differentiates the inner loop's gradients."""
    act = _Act(x, "tasks", x.shape[0])
    _run(graph.nodes, act, tensors, _Pass(training, taps, second_order))
    return act.by_task()


def _run(nodes, act: _Act, tensors, how: _Pass) -> None:
    for node in nodes:
        if isinstance(node, ResidualNode):
            start = _Act(act.x, act.layout, act.tasks)
            _run(node.body, act, tensors, how)
            if node.shortcut:
                _run(node.shortcut, start, tensors, how)
            act.x = act.x + (start.grouped() if act.layout == "groups" else start.by_task())
        else:
            _layer(node, act, tensors, how)


def _param(node: LayerNode, tensors, local: str) -> Tensor | None:
    for q in node.params:
        if q.name.rsplit(".", 1)[-1] == local:
            return tensors[q.name]
    return None


def _per_task(t: Tensor, plan_rank: int) -> bool:
    return t.dim() == plan_rank + 1


def _flat_over_tasks(t: Tensor | None, tasks: int, rank: int) -> Tensor | None:
    """A shared or per-task tensor as the grouped layout's [T * dim0, ...] stack."""
    if t is None:
        return None
    if not _per_task(t, rank):
        t = t.expand(tasks, *t.shape)
    return t.reshape(tasks * t.shape[1], *t.shape[2:])


def _layer(n: LayerNode, act: _Act, tensors, how: _Pass) -> None:
    a, tasks, taps = n.args, act.tasks, how.taps
    if n.kind == "linear":
        x, w, b = act.by_task(), _param(n, tensors, "weight"), _param(n, tensors, "bias")
        if isinstance(w, LowRank):
            out = w.times(x)
        elif _per_task(w, 2):
            out = task_linear(x, w)
        else:  # one product over every task's examples
            out = x @ w.t()
        if b is not None:
            out = out + (b.unsqueeze(1) if _per_task(b, 1) else b)
        if taps is not None:
            name = next(q.name for q in n.params if q.name.rsplit(".", 1)[-1] == "weight")
            if name in taps:
                taps[name] = (x, out)
        act.x = out
    elif n.kind == "conv":
        x = act.grouped()
        w = _flat_over_tasks(_param(n, tensors, "weight"), tasks, 4)
        b = _flat_over_tasks(_param(n, tensors, "bias"), tasks, 1)
        act.x = F.conv2d(x, w, b, stride=a["stride"], padding=a["pad"], groups=tasks)
    elif n.kind == "batchnorm":
        w, b = _param(n, tensors, "weight"), _param(n, tensors, "bias")
        if act.layout == "groups" or act.x.dim() == 5:
            x = act.grouped()
            if x.dtype in (torch.bfloat16, torch.float16):
                x = x.float()
            act.x = F.batch_norm(x, None, None, _flat_over_tasks(w, tasks, 1),
                                 _flat_over_tasks(b, tasks, 1), training=True, eps=a["eps"])
        else:
            act.x = _batch_norm_flat(act.x, w, b, a["eps"], how.second_order)
    elif n.kind == "relu":
        act.x = F.relu(act.x)
    elif n.kind == "leaky_relu":
        act.x = F.leaky_relu(act.x, a["slope"])
    elif n.kind == "maxpool":
        act.x = F.max_pool2d(act.grouped(), a["kernel"], a["stride"] or a["kernel"], a["pad"])
    elif n.kind == "avgpool":
        act.x = F.avg_pool2d(act.grouped(), a["kernel"], a["stride"] or a["kernel"], a["pad"])
    elif n.kind == "global_avgpool":
        act.x = F.adaptive_avg_pool2d(act.grouped(), 1)
    elif n.kind == "flatten":
        act.x = act.by_task().flatten(2)
    elif n.kind == "dropout":
        act.x = F.dropout(act.x, a["p"], training=how.training) if a["p"] else act.x
    else:
        raise AssertionError(f"layer kind {n.kind} has no stacked forward")


def _batch_norm_flat(x: Tensor, w: Tensor | None, b: Tensor | None, eps: float,
                     second_order: bool) -> Tensor:
    """Batch norm of [T, N, F] features, each task over its own N examples (batch statistics
    only, biased variance, as F.batch_norm in training mode).

    Where the backward will be differentiated again, engine.batch_norm's closed forms (MAML's
    meta-step 1.01x to 1.16x faster, docs/performance.md). Elsewhere (evaluation, first
    order) they buy nothing measurable, and F.batch_norm keeps the pass rounding as torch's
    own modules do: a meta-test accuracy counts argmax decisions, which a last-bit
    difference near a tie can change, and an exported ticket meta-tested with plain torch
    modules gives the run's recorded accuracy exactly."""
    if x.dtype in (torch.bfloat16, torch.float16):
        x = x.float()
    if second_order:
        return batch_norm_by_task(x, w, b, eps)
    tasks, n, f = x.shape
    flat = F.batch_norm(x.transpose(0, 1).reshape(n, tasks * f), None, None,
                        _flat_over_tasks(w, tasks, 1), _flat_over_tasks(b, tasks, 1),
                        training=True, eps=eps)
    return flat.view(n, tasks, f).transpose(0, 1)
