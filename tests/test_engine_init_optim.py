"""Initial-value draws, score thresholds and straight-through masks, the outer optimizer and
its schedule."""

from __future__ import annotations

import io
import math
import subprocess
import sys

import pytest
import torch

from mtdsl.compile.plan import OptimizerPlan, SchedulePlan
from mtdsl.engine.init import draw, fan_in, seeded_generator
from mtdsl.engine.masking import straight_through_mask, threshold_at_sparsity
from mtdsl.engine.optim import OuterOptimizer, lr_factor

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


TORCH_OPTIMIZERS = {"sgd": lambda t, p: torch.optim.SGD(t, lr=p.lr, momentum=p.momentum,
                                                          nesterov=p.nesterov,
                                                          weight_decay=p.weight_decay),
                    "adam": lambda t, p: torch.optim.Adam(t, lr=p.lr, betas=p.betas,
                                                          weight_decay=p.weight_decay),
                    "adamw": lambda t, p: torch.optim.AdamW(t, lr=p.lr, betas=p.betas,
                                                            weight_decay=p.weight_decay)}
PLANS = [OptimizerPlan("sgd", lr=10.0, momentum=0.9),  # Meta-ticket's outer optimizer
         OptimizerPlan("sgd", lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-4),
         OptimizerPlan("sgd", lr=0.5),
         OptimizerPlan("adam", lr=0.01, betas=(0.5, 0.9), weight_decay=1e-3),
         OptimizerPlan("adamw", lr=0.001, weight_decay=0.01)]


def _steps(plan, generator, count, lrs):
    """Tensors and gradients drawn from `generator`; lrs as a cosine schedule would vary them."""
    tensors = [torch.randn(shape, generator=generator) for shape in ((5, 3), (4,))]
    grads = [[torch.randn(t.shape, generator=generator) for t in tensors] for _ in range(count)]
    return tensors, grads, [plan.lr * f for f in lrs]


@pytest.mark.parametrize("plan", PLANS, ids=lambda p: f"{p.name}-wd{p.weight_decay}")
def test_the_outer_optimizer_steps_as_torch_optim_to_the_bit(plan):
    g = torch.Generator().manual_seed(3)
    tensors, grads, lrs = _steps(plan, g, 30, [(i % 7 + 1) / 7 for i in range(30)])
    ours = [t.clone() for t in tensors]
    theirs = [t.clone().requires_grad_() for t in tensors]
    mine, reference = OuterOptimizer(plan, ours), TORCH_OPTIMIZERS[plan.name](theirs, plan)
    for step_grads, lr in zip(grads, lrs):
        mine.step(step_grads, lr)
        for group in reference.param_groups:
            group["lr"] = lr
        for t, grad in zip(theirs, step_grads):
            t.grad = grad.clone()
        reference.step()
    for a, b in zip(ours, theirs):
        assert torch.equal(a, b.detach())


def _through_a_file(state: dict) -> dict:
    """As a checkpoint holds it: saved and loaded, sharing no tensor with the optimizer."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer)


@pytest.mark.parametrize("plan", PLANS[:1] + PLANS[3:], ids=lambda p: p.name)
def test_optimizer_state_moves_between_torch_optim_and_ours_both_ways(plan):
    """Checkpoints written before the outer optimizer was our own hold torch.optim's state:
    they resume exactly, and ours load back into torch.optim."""
    g = torch.Generator().manual_seed(5)
    tensors, grads, lrs = _steps(plan, g, 8, [1.0] * 8)
    theirs = [t.clone().requires_grad_() for t in tensors]
    reference = TORCH_OPTIMIZERS[plan.name](theirs, plan)
    for step_grads in grads[:4]:
        for t, grad in zip(theirs, step_grads):
            t.grad = grad.clone()
        reference.step()
    ours = [t.detach().clone() for t in theirs]
    mine = OuterOptimizer(plan, ours)
    mine.load_state_dict(_through_a_file(reference.state_dict()))
    for step_grads in grads[4:7]:
        mine.step(step_grads, plan.lr)
        for t, grad in zip(theirs, step_grads):
            t.grad = grad.clone()
        reference.step()
    assert all(torch.equal(a, b.detach()) for a, b in zip(ours, theirs))
    back = [t.clone().requires_grad_() for t in ours]
    again = TORCH_OPTIMIZERS[plan.name](back, plan)
    again.load_state_dict(_through_a_file(mine.state_dict()))
    mine.step(grads[7], plan.lr)
    for t, grad in zip(back, grads[7]):
        t.grad = grad.clone()
    again.step()
    assert all(torch.equal(a, b.detach()) for a, b in zip(ours, back))


def test_optimizer_state_of_another_run_is_refused_with_the_counts():
    plan = PLANS[0]
    state = OuterOptimizer(plan, [torch.zeros(2)]).state_dict()
    with pytest.raises(ValueError, match="holds 1 tensors in 1 groups; this run meta-learns 2"):
        OuterOptimizer(plan, [torch.zeros(2), torch.zeros(3)]).load_state_dict(state)


def test_outer_optimizer_leaves_torch_compiler_stack_unimported():
    """The reason it is not torch.optim: measured 1.3 s of every run's start."""
    code = ("import sys, torch\n"
            "from mtdsl.compile.plan import OptimizerPlan\n"
            "from mtdsl.engine.optim import OuterOptimizer\n"
            "for name in ('sgd', 'adam'):\n"
            "    t = torch.zeros(3)\n"
            "    o = OuterOptimizer(OptimizerPlan(name, momentum=0.9), [t])\n"
            "    o.step([torch.ones(3)], 0.1)\n"
            "    o.load_state_dict(o.state_dict())\n"
            "print('torch._dynamo' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


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
