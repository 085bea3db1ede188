"""Sinusoid regression tasks (the Meta-ticket paper's Appendix C)."""

import math

import pytest
import torch

from mtdsl.data.registry import open_dataset
from mtdsl.data.sinusoid import SinusoidTasks
from mtdsl.errors import DataError


def test_shapes_and_input_range():
    source = SinusoidTasks(shots=10, queries=7)
    batch = source.sample(200, torch.Generator().manual_seed(0))
    assert batch.support_x.shape == (200, 10, 1) and batch.support_y.shape == (200, 10, 1)
    assert batch.query_x.shape == (200, 7, 1) and batch.query_y.shape == (200, 7, 1)
    assert all(t.dtype == torch.float32 for t in (batch.support_x, batch.query_y))
    xs = torch.cat([batch.support_x, batch.query_x], dim=1)
    assert xs.min() >= -5 and xs.max() <= 5 and xs.min() < -4.9 and xs.max() > 4.9
    assert source.kind == "regression" and source.input_shape == (1,) and source.num_classes is None


def test_support_and_query_lie_on_one_sinusoid_per_task_with_paper_ranges():
    # A sin(x - p) = a sin x + b cos x with a = A cos p, b = -A sin p: fit (a, b) on the support
    # points, then the query points must follow, and A, p must lie in the paper's ranges.
    batch = SinusoidTasks(shots=5, queries=5).sample(300, torch.Generator().manual_seed(1))

    def features(x):
        return torch.cat([torch.sin(x), torch.cos(x)], dim=-1).double()

    coef = torch.linalg.lstsq(features(batch.support_x), batch.support_y.double()).solution
    assert torch.allclose(features(batch.query_x) @ coef, batch.query_y.double(), atol=1e-4)
    a, b = coef[:, 0, 0], coef[:, 1, 0]
    amplitude, phase = torch.hypot(a, b), torch.atan2(-b, a)
    assert amplitude.min() >= 0.1 - 1e-4 and amplitude.max() <= 5.0 + 1e-4
    assert phase.min() >= -1e-4 and phase.max() <= math.pi + 1e-4
    assert amplitude.max() - amplitude.min() > 4 and phase.max() - phase.min() > 2.5


def test_deterministic_from_the_generator():
    source = SinusoidTasks(shots=3, queries=3)
    a = source.sample(4, torch.Generator().manual_seed(2))
    b = source.sample(4, torch.Generator().manual_seed(2))
    assert torch.equal(a.support_x, b.support_x) and torch.equal(a.query_y, b.query_y)


def test_to_moves_the_samples():
    batch = SinusoidTasks(shots=2, queries=2).to("meta").sample(3, torch.Generator().manual_seed(0))
    assert batch.support_x.device.type == "meta" and batch.query_y.device.type == "meta"


def test_registry_opens_sinusoid_and_refuses_classification_options():
    source = open_dataset("sinusoid", split="val", shots=4, queries=6)
    assert source.sample(2, torch.Generator().manual_seed(0)).query_x.shape == (2, 6, 1)
    with pytest.raises(DataError, match="sinusoid .* takes no ways"):
        open_dataset("sinusoid", ways=5, shots=4, queries=6)
