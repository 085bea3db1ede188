"""The MetaLearner's behaviour: masks, which tensors adapt, learning, IteRand, evaluation,
statistics and checkpoints."""

from __future__ import annotations

import io
import math
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mtdsl.compile.plan import (EvalPlan, InnerPlan, MaskPlan, OptimizerPlan, OuterPlan,
                                ParamPlan, Plan, SchedulePlan, TaskPlan)
from mtdsl.data.batch import TaskBatch
from mtdsl.engine import MetaLearner
from mtdsl.engine.init import fan_in
from mtdsl.errors import RunError

HEAD = ("head.weight", "head.bias")


class TinyMLP(nn.Module):
    def __init__(self, inputs: int = 1, outputs: int = 1, hidden: int = 32, norm: bool = True):
        super().__init__()
        self.layer1 = nn.Linear(inputs, hidden)
        self.layer1_bn = (nn.BatchNorm1d(hidden, track_running_stats=False) if norm
                          else nn.Identity())
        self.layer2 = nn.Linear(hidden, hidden)
        self.head = nn.Linear(hidden, outputs)

    def forward(self, x):
        h = F.relu(self.layer1_bn(self.layer1(x)))
        return self.head(F.relu(self.layer2(h)))


def make_plan(net: nn.Module, weight_role: str, *, lrs: dict[str, float] | None = None,
              lr: float = 0.01, loss: str = "mse", steps: int = 1, sparsity: float = 0.5,
              optimizer: OptimizerPlan = OptimizerPlan("adam", lr=0.01),
              schedule: SchedulePlan = SchedulePlan(), iterations: int = 50,
              iterand_every: int | None = None, iterand_prob: float = 0.0) -> Plan:
    """Weights (>= 2-D) get `weight_role`, the vectors are meta-learned."""
    params = []
    for name, p in net.named_parameters():
        init = ("kaiming_normal" if p.ndim >= 2
                else "ones" if name == "layer1_bn.weight" else "zeros")
        params.append(ParamPlan(name, tuple(p.shape), weight_role if p.ndim >= 2 else "meta",
                                (lrs or {}).get(name, lr), init, fan_in(tuple(p.shape))))
    ways = 3 if loss == "cross_entropy" else None
    return Plan(tuple(params), MaskPlan(sparsity=sparsity, iterand_every=iterand_every,
                                        iterand_prob=iterand_prob),
                InnerPlan(steps=steps, test_steps=steps),
                OuterPlan(optimizer, schedule, iterations=iterations, meta_batch=4),
                TaskPlan(ways, 10, 10), EvalPlan(), loss)


def sine_tasks(tasks: int, g: torch.Generator, shots: int = 10) -> TaskBatch:
    amplitude = torch.rand(tasks, 1, 1, generator=g) * 4.9 + 0.1
    phase = torch.rand(tasks, 1, 1, generator=g) * math.pi
    x = torch.rand(tasks, 2 * shots, 1, generator=g) * 10 - 5
    y = amplitude * torch.sin(x + phase)
    return TaskBatch(x[:, :shots], y[:, :shots], x[:, shots:], y[:, shots:])


def class_tasks(tasks: int, g: torch.Generator, inputs: int = 4) -> TaskBatch:
    def half():
        return (torch.randn(tasks, 9, inputs, generator=g),
                torch.randint(0, 3, (tasks, 9), generator=g))
    return TaskBatch(*half(), *half())


@pytest.mark.parametrize("sparsity", [0.0, 0.5])
def test_initial_masks_prune_the_sparsity_quantile_of_each_tensor(sparsity):
    net = TinyMLP(hidden=31)  # odd sizes, so "half" is not exact
    learner = MetaLearner(net, make_plan(net, "masked", sparsity=sparsity), seed=0)
    masks = learner.masks()
    assert set(masks) == {"layer1.weight", "layer2.weight", "head.weight"}
    for name, mask in masks.items():
        pruned = (mask == 0).sum().item()
        assert abs(pruned - sparsity * mask.numel()) <= 1, name
        assert learner.sparsity()[name] == pytest.approx(pruned / mask.numel())
    if sparsity == 0.0:
        assert all(bool((m == 1).all()) for m in masks.values())
        assert learner.overall_sparsity() == 0.0


def test_score_gradient_is_the_straight_through_gradient_of_the_masked_weight():
    net = TinyMLP(inputs=4, outputs=3)
    learner = MetaLearner(net, make_plan(net, "masked", loss="cross_entropy", steps=0), seed=0)
    batch = class_tasks(1, torch.Generator().manual_seed(0))
    grads, _ = learner.meta_gradients(batch)

    effective = {k: v.clone().requires_grad_() for k, v in learner.effective_params().items()}
    loss = F.cross_entropy(torch.func.functional_call(net, effective, (batch.query_x[0],)),
                           batch.query_y[0])
    loss.backward()
    for name in ("layer1.weight", "layer2.weight", "head.weight"):
        expected = effective[name].grad * learner.weights[name]  # d(w*m)/dm = w, dm/ds = 1
        torch.testing.assert_close(grads[name + ":score"], expected)
        assert expected.abs().sum() > 0


@pytest.mark.parametrize("weight_role", ["meta", "masked"])
def test_boil_never_moves_the_head_and_anil_never_moves_the_body(weight_role):
    net = TinyMLP()
    batch = sine_tasks(1, torch.Generator().manual_seed(0))
    body_lr = {n: 0.0 for n, _ in net.named_parameters() if n not in HEAD}
    for frozen, lrs in [("head", {n: 0.0 for n in HEAD}), ("body", body_lr)]:
        learner = MetaLearner(net, make_plan(net, weight_role, lrs=lrs, lr=0.1, steps=3), seed=0)
        before = learner.effective_params()
        after = learner.adapt(batch.support_x[0], batch.support_y[0])
        for name in before:
            if (name in HEAD) == (frozen == "head"):
                assert torch.equal(after[name], before[name]), (frozen, name)
            elif name != "layer1.bias":  # a bias before batch norm has no gradient
                assert not torch.equal(after[name], before[name]), (frozen, name)


def test_a_masked_weight_adapts_only_inside_its_mask():
    net = TinyMLP()
    learner = MetaLearner(net, make_plan(net, "masked", lr=0.1, steps=2), seed=0)
    batch = sine_tasks(1, torch.Generator().manual_seed(0))
    after = learner.adapt(batch.support_x[0], batch.support_y[0])
    for name, mask in learner.masks().items():
        assert bool((after[name][mask == 0] == 0).all())
        assert not torch.equal(after[name], learner.effective_params()[name])


@pytest.mark.parametrize("weight_role,outer_lr", [("meta", 0.01), ("masked", 0.05)])
def test_sine_regression_improves_over_fifty_meta_steps(weight_role, outer_lr):
    net = TinyMLP(norm=False)  # batch statistics of 10 points slow this problem down
    plan = make_plan(net, weight_role, optimizer=OptimizerPlan("adam", lr=outer_lr))
    learner = MetaLearner(net, plan, seed=0)
    validation = sine_tasks(50, torch.Generator().manual_seed(99))
    before = learner.evaluate(validation).loss.mean().item()
    g = torch.Generator().manual_seed(1)
    for _ in range(50):
        learner.meta_step(sine_tasks(4, g))
    assert learner.evaluate(validation).loss.mean().item() < 0.8 * before


def test_iterand_redraws_only_pruned_weights_on_its_iterations():
    net = TinyMLP()
    plan = make_plan(net, "masked", iterand_every=2, iterand_prob=1.0)
    learner = MetaLearner(net, plan, seed=0)
    g = torch.Generator().manual_seed(0)
    start = {k: v.clone() for k, v in learner.weights.items()}
    learner.meta_step(sine_tasks(4, g))
    for name, value in learner.weights.items():
        assert torch.equal(value, start[name]), "IteRand ran on an iteration it should skip"
    learner.meta_step(sine_tasks(4, g))
    for name, mask in learner.masks().items():
        changed = learner.weights[name] != start[name]
        assert torch.equal(changed, mask == 0), name


def test_iterand_redraws_each_pruned_weight_with_its_probability():
    net = TinyMLP(hidden=64)
    learner = MetaLearner(net, make_plan(net, "masked", iterand_prob=0.3), seed=0)
    start = learner.weights["layer2.weight"].clone()
    learner.iterand()
    pruned = learner.masks()["layer2.weight"] == 0
    redrawn = (learner.weights["layer2.weight"] != start)[pruned].float().mean().item()
    assert 0.25 < redrawn < 0.35  # about 2000 pruned entries


@pytest.mark.parametrize("tasks_in", ["vmap", "sequential"])
def test_evaluate_gives_per_task_metrics_without_a_graph_in_any_chunking(tasks_in):
    net = TinyMLP(inputs=4, outputs=3)
    plan = make_plan(net, "masked", loss="cross_entropy", lr=0.5)
    plan = replace(plan, outer=replace(plan.outer, tasks_in=tasks_in))
    batch = class_tasks(7, torch.Generator().manual_seed(0))
    whole = MetaLearner(net, plan, seed=0, eval_chunk=7).evaluate(batch, steps=2)
    chunked = MetaLearner(net, plan, seed=0, eval_chunk=3).evaluate(batch, steps=2)
    unadapted = MetaLearner(net, plan, seed=0).evaluate(batch, steps=0)

    assert whole.loss.shape == whole.accuracy.shape == (7,) and whole.mse is None
    assert not whole.loss.requires_grad
    torch.testing.assert_close(chunked.loss, whole.loss)
    torch.testing.assert_close(chunked.accuracy, whole.accuracy)
    assert bool(((whole.accuracy * 9).round() == whole.accuracy * 9).all())  # k out of 9
    assert not torch.allclose(unadapted.loss, whole.loss)


def test_step_stats_report_the_scheduled_lr_and_the_metrics():
    net = TinyMLP(inputs=4, outputs=3)
    schedule = SchedulePlan("cosine", warmup=2)
    plan = make_plan(net, "meta", loss="cross_entropy", optimizer=OptimizerPlan("sgd", lr=0.1),
                     schedule=schedule, iterations=6)
    learner = MetaLearner(net, plan, seed=0)
    g = torch.Generator().manual_seed(0)
    stats = [learner.meta_step(class_tasks(4, g)) for _ in range(4)]
    cosine_at_one_of_four = 0.1 * 0.5 * (1 + math.cos(math.pi / 4))
    assert [s.lr for s in stats] == pytest.approx([0.05, 0.1, 0.1, cosine_at_one_of_four])
    assert all(0 <= s.accuracy <= 1 and s.mse is None for s in stats)
    assert all(s.inner_grad is not None and s.inner_grad > 0 for s in stats)

    anil = make_plan(net, "meta", loss="cross_entropy",
                     lrs={n: 0.0 for n, _ in net.named_parameters() if n not in HEAD})
    assert MetaLearner(net, anil, seed=0).meta_step(class_tasks(4, g)).inner_grad is None


def test_regression_steps_report_mse():
    net = TinyMLP()
    stats = MetaLearner(net, make_plan(net, "masked"), seed=0).meta_step(
        sine_tasks(4, torch.Generator().manual_seed(0)))
    assert stats.accuracy is None and stats.mse == pytest.approx(stats.loss)


def test_a_diverged_step_is_a_run_error():
    net = TinyMLP()
    learner = MetaLearner(net, make_plan(net, "meta"), seed=0)
    batch = sine_tasks(4, torch.Generator().manual_seed(0))
    batch.query_y[0, 0] = float("nan")
    with pytest.raises(RunError, match="diverged"):
        learner.meta_step(batch)


def test_a_checkpoint_resumes_the_run_exactly():
    net = TinyMLP()
    plan = make_plan(net, "masked", optimizer=OptimizerPlan("adamw", lr=0.05, weight_decay=0.1),
                     schedule=SchedulePlan("cosine", warmup=2), iterations=8,
                     iterand_every=1, iterand_prob=0.5)
    g = torch.Generator().manual_seed(0)
    batches = [sine_tasks(4, g) for _ in range(5)]
    original = MetaLearner(net, plan, seed=0)
    for batch in batches[:3]:
        original.meta_step(batch)
    saved = io.BytesIO()
    torch.save(original.state_dict(), saved)
    saved.seek(0)

    resumed = MetaLearner(TinyMLP(), plan, seed=1)
    resumed.load_state_dict(torch.load(saved))
    for batch in batches[3:]:
        assert original.meta_step(batch) == resumed.meta_step(batch)
    for name in original.learned:
        assert torch.equal(original.learned[name], resumed.learned[name]), name
    for name in original.weights:
        assert torch.equal(original.weights[name], resumed.weights[name]), name


def test_a_checkpoint_of_another_model_is_refused():
    small, large = TinyMLP(hidden=8), TinyMLP(hidden=16)
    state = MetaLearner(small, make_plan(small, "masked"), seed=0).state_dict()
    learner = MetaLearner(large, make_plan(large, "masked"), seed=0)
    with pytest.raises(RunError, match="checkpoint does not match"):
        learner.load_state_dict(state)


def test_a_plan_that_does_not_match_the_model_is_refused():
    with pytest.raises(RunError, match="'layer2.weight' is"):
        MetaLearner(TinyMLP(hidden=8), make_plan(TinyMLP(hidden=16), "meta"), seed=0)


def test_values_come_from_the_seed_and_masks_do_not_change_them():
    net = TinyMLP()
    masked = MetaLearner(net, make_plan(net, "masked"), seed=5)
    maml = MetaLearner(net, make_plan(net, "meta"), seed=5)
    other = MetaLearner(net, make_plan(net, "meta"), seed=6)
    assert torch.equal(masked.weights["layer2.weight"], maml.learned["layer2.weight"])
    assert not torch.equal(other.learned["layer2.weight"], maml.learned["layer2.weight"])
    assert not torch.equal(net.layer2.weight.detach(), maml.learned["layer2.weight"])
    exported = masked.effective_params()
    torch.testing.assert_close(exported["layer2.weight"],
                               masked.weights["layer2.weight"] * masked.masks()["layer2.weight"])
    assert torch.equal(exported["layer1.bias"], masked.learned["layer1.bias"])


def test_a_plan_with_nothing_to_meta_learn_cannot_step_but_can_evaluate():
    net = TinyMLP()
    plan = make_plan(net, "meta")
    plan = replace(plan, params=tuple(replace(p, role="fixed") for p in plan.params))
    learner = MetaLearner(net, plan, seed=0)
    batch = sine_tasks(2, torch.Generator().manual_seed(0))
    assert learner.evaluate(batch).loss.shape == (2,)
    with pytest.raises(RunError, match="nothing is meta-learned"):
        learner.meta_step(batch)
