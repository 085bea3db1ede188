"""engine.batch_norm: batch norm by task in the [T, N, F] layout, with its first and second
derivatives written out, against torch's F.batch_norm and against finite differences."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mtdsl.engine.batch_norm import batch_norm_by_task

T, N, FEATURES, EPS = 3, 6, 4, 1e-3
AFFINE = ["shared", "per task", "none"]


def _inputs(affine: str, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(T, N, FEATURES, generator=g, dtype=torch.float64, requires_grad=True)
    if affine == "none":
        return x, None, None
    shape = (FEATURES,) if affine == "shared" else (T, FEATURES)
    w = (torch.rand(*shape, generator=g, dtype=torch.float64) + 0.5).requires_grad_()
    b = torch.randn(*shape, generator=g, dtype=torch.float64, requires_grad=True)
    return x, w, b


def _torch(x, w, b, eps):
    """The same normalisation through F.batch_norm, tasks and features as channels."""
    def flat(t):
        return None if t is None else (t if t.dim() == 2 else t.expand(T, -1)).reshape(-1)
    out = F.batch_norm(x.transpose(0, 1).reshape(N, T * FEATURES), None, None, flat(w), flat(b),
                       training=True, eps=eps)
    return out.view(N, T, FEATURES).transpose(0, 1)


def _leaves(x, w, b):
    return [t for t in (x, w, b) if t is not None]


def _second_order(fn, x, w, b):
    """A second-order inner loop's use of the layer: the gradient of a support loss (kept in
    the graph), then the gradient of a function of that gradient."""
    weights = torch.arange(1.0, FEATURES + 1, dtype=torch.float64)
    target = torch.linspace(-1, 1, T * N * FEATURES, dtype=torch.float64).view(T, N, FEATURES)
    loss = (((fn(x, w, b, EPS) - target) ** 2) * weights).sum()
    grads = torch.autograd.grad(loss, _leaves(x, w, b), create_graph=True)
    outer = sum((g.sin() * (i + 1)).sum() for i, g in enumerate(grads))
    return torch.autograd.grad(outer, _leaves(x, w, b))


@pytest.mark.parametrize("affine", AFFINE)
def test_values_and_derivatives_equal_torch_batch_norm(affine):
    x, w, b = _inputs(affine)
    ours, theirs = batch_norm_by_task(x, w, b, EPS), _torch(x, w, b, EPS)
    torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-10)
    cotangent = torch.randn_like(ours)
    first = [torch.autograd.grad((y * cotangent).sum(), _leaves(x, w, b))
             for y in (ours, theirs)]
    for a, c in zip(*first):
        torch.testing.assert_close(a, c, rtol=1e-9, atol=1e-9)
    for a, c in zip(_second_order(batch_norm_by_task, x, w, b), _second_order(_torch, x, w, b)):
        torch.testing.assert_close(a, c, rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize("affine", AFFINE)
def test_first_and_second_derivatives_match_finite_differences(affine):
    x, w, b = _inputs(affine, seed=1)
    leaves = _leaves(x, w, b)

    def fn(*args):
        return batch_norm_by_task(args[0], *(args[1:] if len(args) == 3 else (None, None)), EPS)
    assert torch.autograd.gradcheck(fn, leaves)
    assert torch.autograd.gradgradcheck(fn, leaves)


def test_a_task_normalises_over_its_own_examples_only():
    x, w, b = _inputs("per task")
    with torch.no_grad():
        y = batch_norm_by_task(x, w, b, EPS)
        x2 = x.clone()
        x2[1] = x2[1] * 7 + 3  # another task's examples change
        y2 = batch_norm_by_task(x2, w, b, EPS)
    torch.testing.assert_close(y[0], y2[0])
    torch.testing.assert_close(y[2], y2[2])
    normalised = (y[1] - b[1]) / w[1]
    torch.testing.assert_close(normalised.mean(0), torch.zeros(FEATURES, dtype=torch.float64))
