"""Initial-value draws, score thresholds and straight-through masks, the outer optimizer and
its schedule."""

from __future__ import annotations

import math

import pytest
import torch

from mtdsl.compile.plan import OptimizerPlan, SchedulePlan
from mtdsl.engine.init import draw, fan_in, seeded_generator
from mtdsl.engine.masking import straight_through_mask, threshold_at_sparsity
from mtdsl.engine.optim import build_optimizer, lr_factor

CONV = (128, 32, 3, 3)  # fan_in 288


def test_fan_in_of_a_conv_kernel_counts_inputs_times_kernel_area():
    assert fan_in(CONV) == 288
    assert fan_in((10, 7)) == 7


def test_kaiming_normal_has_the_relu_fan_in_std():
    value = draw("kaiming_normal", CONV, seeded_generator(0, "w"))
    assert value.mean().item() == pytest.approx(0.0, abs=2e-3)
    assert value.std().item() == pytest.approx(math.sqrt(2 / 288), rel=0.02)


def test_kaiming_uniform_is_bounded_by_the_relu_fan_in_bound():
    value = draw("kaiming_uniform", CONV, seeded_generator(0, "w"))
    bound = math.sqrt(6 / 288)
    assert value.abs().max().item() <= bound
    assert value.abs().max().item() > 0.99 * bound
    assert value.std().item() == pytest.approx(math.sqrt(2 / 288), rel=0.02)


def test_constant_and_signed_constant_are_gain_over_root_fan_in():
    scale = math.sqrt(2) / math.sqrt(288)
    constant = draw("constant", CONV, seeded_generator(0, "w"))
    assert torch.allclose(constant, torch.full(CONV, scale))
    signed = draw("signed_constant", CONV, seeded_generator(0, "w"))
    assert torch.allclose(signed.abs(), torch.full(CONV, scale))
    assert 0.45 < (signed > 0).float().mean().item() < 0.55


def test_zeros_ones_and_torch_default():
    g = seeded_generator(0, "w")
    assert torch.equal(draw("zeros", (3,), g), torch.zeros(3))
    assert torch.equal(draw("ones", (3,), g), torch.ones(3))
    redrawn = draw("torch_default", (400, 25), g)  # torch's Linear default
    assert redrawn.abs().max().item() <= 1 / 5
    bias = draw("torch_default", (400,), g, fan=25)  # a bias takes its layer's fan-in
    assert bias.abs().max().item() <= 1 / 5 and bias.abs().max().item() > 0.15
    with pytest.raises(ValueError, match="unknown init"):
        draw("xavier", (3,), g)


def test_a_seed_and_a_stream_fix_the_draw():
    first = draw("kaiming_normal", (5, 5), seeded_generator(3, "weights"))
    assert torch.equal(first, draw("kaiming_normal", (5, 5), seeded_generator(3, "weights")))
    assert not torch.equal(first, draw("kaiming_normal", (5, 5), seeded_generator(3, "scores")))
    assert not torch.equal(first, draw("kaiming_normal", (5, 5), seeded_generator(4, "weights")))


def test_threshold_is_the_kth_smallest_score_with_k_from_the_sparsity():
    scores = torch.randperm(11).float()  # 0..10 shuffled
    assert threshold_at_sparsity(scores, 0.0).item() == 0.0  # keeps everything
    assert threshold_at_sparsity(scores, 0.5).item() == 5.0  # k = 1 + round(5) = 6
    assert threshold_at_sparsity(scores, 0.25).item() == 2.0  # k = 1 + round(2.5) = 3
    assert threshold_at_sparsity(scores, 1.0).item() == 10.0


def test_straight_through_mask_is_exactly_binary_and_passes_the_gradient():
    scores = torch.tensor([0.3, -0.2, 1e-8, 5.0], requires_grad=True)
    mask = straight_through_mask(scores, torch.tensor(0.0))
    assert mask.tolist() == [1.0, 0.0, 1.0, 1.0]
    (mask * torch.tensor([1.0, 2.0, 3.0, 4.0])).sum().backward()
    assert scores.grad.tolist() == [1.0, 2.0, 3.0, 4.0]


def test_build_optimizer_follows_the_plan():
    tensors = [torch.zeros(2, requires_grad=True)]
    sgd = build_optimizer(OptimizerPlan("sgd", lr=0.1, momentum=0.9, nesterov=True,
                                        weight_decay=1e-4), tensors)
    assert isinstance(sgd, torch.optim.SGD)
    assert sgd.defaults["momentum"] == 0.9 and sgd.defaults["nesterov"]
    assert sgd.defaults["weight_decay"] == 1e-4
    adam = build_optimizer(OptimizerPlan("adam", lr=0.01, betas=(0.5, 0.9)), tensors)
    assert type(adam) is torch.optim.Adam and adam.defaults["betas"] == (0.5, 0.9)
    adamw = build_optimizer(OptimizerPlan("adamw", lr=0.01, weight_decay=0.0), tensors)
    assert isinstance(adamw, torch.optim.AdamW) and adamw.defaults["weight_decay"] == 0.0


def test_cosine_schedule_warms_up_linearly_then_decays_to_zero():
    cosine = SchedulePlan("cosine", warmup=4)
    factors = [lr_factor(cosine, it, 14) for it in range(15)]
    assert factors[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert factors[4] == 1.0
    assert factors[9] == pytest.approx(0.5)
    assert factors[14] == pytest.approx(0.0)
    assert all(a >= b for a, b in zip(factors[4:], factors[5:]))
    assert lr_factor(SchedulePlan("none"), 7, 14) == 1.0
    assert lr_factor(SchedulePlan("cosine"), 0, 10) == 1.0
