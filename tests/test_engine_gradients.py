"""Meta-gradients of the engine against independent references: learn2learn's MAML, and a
plain torch.autograd implementation of the Meta-ticket inner loop written here without
torch.func; the vmap and sequential paths against each other."""

from __future__ import annotations

import learn2learn as l2l
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mtdsl.compile.plan import (EvalPlan, InnerPlan, MaskPlan, OuterPlan, ParamPlan, Plan,
                                TaskPlan)
from mtdsl.data.batch import TaskBatch
from mtdsl.engine import MetaLearner
from mtdsl.engine.init import fan_in

WAYS, SHOTS, QUERIES, TASKS = 3, 2, 3, 3


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 3)
        self.bn = nn.BatchNorm2d(3, track_running_stats=False)


class TinyConvNet(nn.Module):
    """conv-BN-relu, linear-relu, head: parameter names like a compiled model's."""

    def __init__(self):
        super().__init__()
        self.layer1 = Block()
        self.layer2 = nn.Linear(3 * 4 * 4, 8)
        self.head = nn.Linear(8, WAYS)

    def forward(self, x):
        h = F.relu(self.layer1.bn(self.layer1.conv(x))).flatten(1)
        return self.head(F.relu(self.layer2(h)))


def reference_forward(p: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """TinyConvNet's computation written out with explicit tensors."""
    h = F.conv2d(x, p["layer1.conv.weight"], p["layer1.conv.bias"])
    h = F.batch_norm(h, None, None, p["layer1.bn.weight"], p["layer1.bn.bias"], training=True)
    h = F.relu(F.linear(F.relu(h).flatten(1), p["layer2.weight"], p["layer2.bias"]))
    return F.linear(h, p["head.weight"], p["head.bias"])


INITS = {"layer1.conv.bias": "zeros", "layer1.bn.weight": "ones", "layer1.bn.bias": "zeros",
         "layer2.bias": "zeros", "head.bias": "zeros"}
# Per-parameter inner lrs, including 0 (never adapted).
MIXED_LRS = {"layer1.conv.weight": 0.3, "layer1.conv.bias": 0.0, "layer1.bn.weight": 0.1,
             "layer1.bn.bias": 0.2, "layer2.weight": 0.4, "layer2.bias": 0.0,
             "head.weight": 0.5, "head.bias": 0.25}
# Meta-ticket: weights masked, the conv bias fixed, the rest meta-learned.
META_TICKET_ROLES = {"layer1.conv.weight": "masked", "layer1.conv.bias": "fixed",
                     "layer2.weight": "masked", "head.weight": "masked"}


def make_plan(roles: dict[str, str], default_role: str, lrs: dict[str, float] | float, *,
              steps: int, order: str = "second", tasks_in: str = "vmap",
              sparsity: float = 0.5) -> Plan:
    params = []
    for name, p in TinyConvNet().named_parameters():
        lr = lrs if isinstance(lrs, float) else lrs[name]
        params.append(ParamPlan(name, tuple(p.shape), roles.get(name, default_role), lr,
                                INITS.get(name, "kaiming_normal"), fan_in(tuple(p.shape))))
    return Plan(tuple(params), MaskPlan(sparsity=sparsity), InnerPlan(steps=steps, order=order),
                OuterPlan(tasks_in=tasks_in, meta_batch=TASKS), TaskPlan(WAYS, SHOTS, QUERIES),
                EvalPlan(), "cross_entropy")


def make_batch(dtype: torch.dtype, seed: int = 0) -> TaskBatch:
    g = torch.Generator().manual_seed(seed)
    return TaskBatch(torch.rand(TASKS, WAYS * SHOTS, 1, 6, 6, generator=g, dtype=dtype),
                     torch.randint(0, WAYS, (TASKS, WAYS * SHOTS), generator=g),
                     torch.rand(TASKS, WAYS * QUERIES, 1, 6, 6, generator=g, dtype=dtype),
                     torch.randint(0, WAYS, (TASKS, WAYS * QUERIES), generator=g))


def learner_for(plan: Plan, dtype: torch.dtype = torch.float64) -> MetaLearner:
    return MetaLearner(TinyConvNet().to(dtype), plan, seed=3)


class StraightThrough(torch.autograd.Function):
    @staticmethod
    def forward(ctx, scores, threshold):
        return (scores >= threshold).to(scores.dtype)

    @staticmethod
    def backward(ctx, grad_out):
        return grad_out, None


def reference_meta_gradients(learner: MetaLearner, batch: TaskBatch, *, steps: int,
                             order: str) -> dict[str, torch.Tensor]:
    """Mean query-loss gradient over the tasks with explicit autograd.grad inner loops."""
    plan = learner.plan
    learned = {k: v.detach().clone().requires_grad_() for k, v in learner.learned.items()}
    total = 0.0
    for i in range(batch.tasks):
        masks = {p.name: StraightThrough.apply(learned[p.name + ":score"],
                                               learner.thresholds[p.name])
                 for p in plan.by_role("masked")}
        fast = {p.name: learned[p.name] if p.role == "meta"
                else learner.weights[p.name].detach().clone().requires_grad_()
                for p in plan.params}

        def effective():
            return {n: fast[n] * masks[n] if n in masks else fast[n] for n in fast}

        adapted = [p for p in plan.params if p.inner_lr != 0]
        for _ in range(steps):
            loss = F.cross_entropy(reference_forward(effective(), batch.support_x[i]),
                                   batch.support_y[i])
            grads = torch.autograd.grad(loss, [fast[p.name] for p in adapted],
                                        create_graph=order == "second")
            for p, g in zip(adapted, grads):
                fast[p.name] = fast[p.name] - p.inner_lr * g
        query_loss = F.cross_entropy(reference_forward(effective(), batch.query_x[i]),
                                     batch.query_y[i])
        total = total + query_loss / batch.tasks
    return dict(zip(learned, torch.autograd.grad(total, list(learned.values()))))


def assert_close_relative(got: dict, want: dict, rel: float, atol: float = 1e-12):
    """Tensor by tensor, in norm. `atol` covers tensors whose true gradient is zero (a bias
    before batch norm), which float32 only gets to rounding error."""
    assert set(got) == set(want)
    for key in want:
        error = (got[key] - want[key]).norm().item()
        assert error <= rel * want[key].norm().item() + atol, (key, error, want[key].norm().item())


@pytest.mark.parametrize("roles,default_role", [(META_TICKET_ROLES, "meta"), ({}, "meta")],
                         ids=["meta-ticket", "maml"])
def test_vmap_and_sequential_paths_give_the_same_second_order_gradients(roles, default_role):
    batch = make_batch(torch.float32)
    grads = {}
    for tasks_in in ("vmap", "sequential"):
        plan = make_plan(roles, default_role, MIXED_LRS, steps=2, tasks_in=tasks_in)
        grads[tasks_in], _ = learner_for(plan, torch.float32).meta_gradients(batch)
    assert_close_relative(grads["vmap"], grads["sequential"], 1e-5, atol=1e-6)
    assert any(g.abs().sum() > 0 for g in grads["vmap"].values())


@pytest.mark.parametrize("steps", [1, 2])
def test_maml_meta_gradient_equals_learn2learn(steps):
    lr = 0.4
    learner = learner_for(make_plan({}, "meta", lr, steps=steps))
    batch = make_batch(torch.float64)
    ours, _ = learner.meta_gradients(batch)

    model = TinyConvNet().double()
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(learner.learned[name])
    maml = l2l.algorithms.MAML(model, lr=lr, first_order=False)
    for i in range(batch.tasks):
        task_model = maml.clone()
        for _ in range(steps):
            task_model.adapt(F.cross_entropy(task_model(batch.support_x[i]), batch.support_y[i]))
        (F.cross_entropy(task_model(batch.query_x[i]), batch.query_y[i]) / batch.tasks).backward()
    theirs = {name: p.grad for name, p in model.named_parameters()}
    assert_close_relative(ours, theirs, 1e-4)


@pytest.mark.parametrize("roles,default_role", [(META_TICKET_ROLES, "meta"), ({}, "meta")],
                         ids=["meta-ticket", "maml"])
@pytest.mark.parametrize("tasks_in", ["vmap", "sequential"])
def test_second_order_gradient_equals_plain_autograd_reference(roles, default_role, tasks_in):
    learner = learner_for(make_plan(roles, default_role, MIXED_LRS, steps=2, tasks_in=tasks_in))
    batch = make_batch(torch.float64)
    ours, _ = learner.meta_gradients(batch)
    reference = reference_meta_gradients(learner, batch, steps=2, order="second")
    assert_close_relative(ours, reference, 1e-9)
    if roles:
        assert "head.weight" not in ours  # a masked weight is never meta-learned, its scores are
        assert {"layer1.conv.weight:score", "layer2.weight:score", "head.weight:score"} <= set(ours)
        assert "layer1.conv.bias" not in ours  # fixed: never meta-learned
        assert ours["layer1.conv.weight:score"].abs().sum() > 0


def test_first_order_differs_from_second_order_and_matches_the_first_order_reference():
    batch = make_batch(torch.float64)
    first = learner_for(make_plan(META_TICKET_ROLES, "meta", MIXED_LRS, steps=2, order="first"))
    second = learner_for(make_plan(META_TICKET_ROLES, "meta", MIXED_LRS, steps=2))
    first_grads, _ = first.meta_gradients(batch)
    second_grads, _ = second.meta_gradients(batch)

    assert_close_relative(first_grads,
                          reference_meta_gradients(first, batch, steps=2, order="first"), 1e-9)
    difference = sum((first_grads[k] - second_grads[k]).norm() for k in first_grads)
    assert difference > 1e-3 * sum(g.norm() for g in second_grads.values())
