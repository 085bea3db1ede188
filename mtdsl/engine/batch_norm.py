"""Batch norm over each task's own examples, in the stacked engine's [T, N, F] layout (batch
statistics only, biased variance: F.batch_norm in training mode), with its first and second
derivatives written out.

F.batch_norm wants the features second, so on [T, N, F] every call would copy the
activations into [N, T*F] and back, in the forward and in each backward; and where a
second-order inner loop differentiates the backward again, autograd runs torch's generic
batchnorm_double_backward, about 80 operators per layer. Here the forward works in place in
the tasks layout, the backward is one autograd node, and that node's own backward is the
closed form in `_Backward.backward`, about 30 operators. Measured per meta-step
(docs/performance.md, levers): MAML 1.01x to 1.16x, Meta-ticket 0.99x to 1.08x.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable


def batch_norm_by_task(x: Tensor, w: Tensor | None, b: Tensor | None, eps: float) -> Tensor:
    """x [T, N, F], each task normalised over its N examples; w and b (absent without affine
    parameters) shared [F] or per task [T, F]."""
    return _Forward.apply(x, w, b, eps)


def _by_task(t: Tensor) -> Tensor:
    """A shared [F] or per-task [T, F] tensor, broadcastable against [T, N, F]."""
    return t if t.dim() == 1 else t.unsqueeze(1)


def _shaped_as(grad: Tensor, t: Tensor) -> Tensor:
    """A per-task [T, F] gradient in the shape of t: summed over tasks for a shared tensor."""
    return grad if t.dim() == 2 else grad.sum(0)


class _Forward(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, w: Tensor | None, b: Tensor | None, eps: float) -> Tensor:
        # Two passes rather than torch.var_mean, whose reduction over the middle axis took ten
        # times as long as the whole F.batch_norm on this CPU for [4, 25, 256].
        centred = x - x.mean(1, keepdim=True)
        rstd = torch.rsqrt((centred * centred).mean(1, keepdim=True) + eps)
        xhat = centred * rstd
        ctx.save_for_backward(x, w, b, xhat, rstd)
        y = xhat if w is None else xhat * _by_task(w)
        return y if b is None else y + _by_task(b)

    @staticmethod
    def backward(ctx, dy: Tensor):
        x, w, b, xhat, rstd = ctx.saved_tensors
        dx, dw, db = _Backward.apply(dy, x, w, b, xhat, rstd)
        return dx, dw, db, None


class _Backward(torch.autograd.Function):
    """(dy, x, w) -> (dx, dw, db): batch norm's backward as one node. x is an input only so
    that the second derivative reaches it; xhat and rstd are the forward's values, passed
    along so they are not computed again; b only gives db its shape."""

    @staticmethod
    def forward(ctx, dy: Tensor, x: Tensor, w: Tensor | None, b: Tensor | None, xhat: Tensor,
                rstd: Tensor):
        n = dy.shape[1]
        dw = (dy * xhat).sum(1)
        db = dy.sum(1)
        mean_dy, c = (db / n).unsqueeze(1), (dw / n).unsqueeze(1)
        scale = rstd if w is None else rstd * _by_task(w)
        dx = (dy - mean_dy - xhat * c) * scale
        ctx.save_for_backward(dy, w, xhat, rstd, mean_dy, c)
        ctx.set_materialize_grads(False)  # an unused output's cotangent is skipped, not zeros
        return (dx, None if w is None else _shaped_as(dw, w),
                None if b is None else _shaped_as(db, b))

    @staticmethod
    @once_differentiable
    def backward(ctx, g_dx: Tensor | None, g_dw: Tensor | None, g_db: Tensor | None):
        # Per task and feature, over the N examples, with r = rstd, m(.) the mean over N,
        # c = m(dy xhat) and P(v) = v - m(v) - xhat m(v xhat) (P is self-adjoint):
        #   dx = w r P(dy), dw = sum dy xhat, db = sum dy.
        # Given the cotangents a = g_dx, alpha = g_dw, beta = g_db, with A = sum a dy -
        # N m(dy) m(a) and B = sum a xhat (dxhat/dx is r P, and dr/dx = -r^2 xhat / N):
        #   by dy: beta + alpha xhat + w r P(a)
        #   by w:  r (A - c B)
        #   by x:  alpha r P(dy) - w r^2 ((A - 3 c B) / N xhat + B / N (dy - m(dy))
        #                                  + c (a - m(a)))
        # Checked by torch.autograd.gradgradcheck in float64 (tests/test_engine_batch_norm.py).
        dy, w, xhat, rstd, mean_dy, c = ctx.saved_tensors
        n = dy.shape[1]
        wr = rstd if w is None else rstd * _by_task(w)
        centred_dy = dy - mean_dy
        by_dy = by_x = by_w = None
        if g_dx is not None:
            mean_a = g_dx.mean(1, keepdim=True)
            big_b = (g_dx * xhat).sum(1, keepdim=True)
            big_a = (g_dx * centred_dy).sum(1, keepdim=True)
            if ctx.needs_input_grad[0]:
                by_dy = (g_dx - mean_a - xhat * (big_b / n)) * wr
            if w is not None and ctx.needs_input_grad[2]:
                by_w = _shaped_as((rstd * (big_a - c * big_b)).squeeze(1), w)
            if ctx.needs_input_grad[1]:
                inner = (xhat * ((big_a - 3 * c * big_b) / n) + centred_dy * (big_b / n)
                         + (g_dx - mean_a) * c)
                by_x = inner * (-wr * rstd)
        if g_dw is not None:
            alpha = _by_task(g_dw)
            if ctx.needs_input_grad[0]:
                by_dy = xhat * alpha if by_dy is None else torch.addcmul(by_dy, xhat, alpha)
            if ctx.needs_input_grad[1]:
                term = (centred_dy - xhat * c) * (alpha * rstd)
                by_x = term if by_x is None else by_x + term
        if g_db is not None and ctx.needs_input_grad[0]:
            beta = _by_task(g_db)
            by_dy = beta.expand_as(dy) if by_dy is None else by_dy + beta
        return by_dy, by_x, by_w, None, None, None
