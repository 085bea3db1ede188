"""The stacked engine (a meta-batch as one computation, engine.stacked) against the eager one
(the per-task function under vmap, or one task at a time): the same meta-gradients, metrics
and steps for every kind of spec, and the fallback to eager where stacking does not apply."""

from __future__ import annotations

import textwrap
from dataclasses import replace

import pytest
import torch

from mtdsl.compile.compiler import Compiled, compile_experiment
from mtdsl.compile.module import CompiledModel
from mtdsl.compile.plan import DevicePlan
from mtdsl.data.batch import TaskBatch
from mtdsl.engine import MetaLearner
from mtdsl.validate.loader import load

from conftest import ROOT

WAYS = 3
TICKET = '"**.weight": masked, "head.**", "**.bias", "**.bn.**": fixed'
TICKET_CONV = '"**.weight": masked, "head.**", "**.bn.**": fixed'
MAML = '"**": meta'
MLP = "mlp(hidden: [12, 10], classes: 3)"
CONV = "conv4(hidden: 4, blocks: 2, classes: 3)"
RESNET = "resnet12(channels: [2, 3, 3, 4], classes: 3)"


def compile_spec(folder, model: str, params: str, *, size: int = 8, steps: int = 1,
                 order: str = "second", lr: str = "lr: 0.3", mask: str = "sparsity: 0.3",
                 iterand: str = "", tasks_in: str = "vmap", tasks: int = 3,
                 extra_import=None) -> Compiled:
    also = f'import "{extra_import}"' if extra_import else ""
    text = textwrap.dedent(f"""\
        import "{ROOT}/specs/lib/models.mt"
        {also}
        experiment e {{
          data  {{ train = omniglot(split: "train", size: {size}) }}
          task  {{ ways: {WAYS}, shots: 2, queries: 3 }}
          model = {model}
          params {{ {params} }}
          mask {{ threshold: fixed_at_init({mask}) {iterand} }}
          inner {{ steps: {steps}, test_steps: 3, {lr}, order: {order} }}
          outer {{ optimizer: sgd(lr: 5, momentum: 0.9), iterations: 4, meta_batch: {tasks},
                   tasks_in: {tasks_in} }}
        }}
        """)
    path = folder / "spec.mt"
    path.write_text(text)
    return compile_experiment(load(path), "e")


def tasks(c: Compiled, seed: int = 0) -> TaskBatch:
    g = torch.Generator().manual_seed(seed)
    count, shape = c.plan.outer.meta_batch, c.graph.input_shape

    def half(per_class):
        x = torch.rand(count, WAYS * per_class, *shape, generator=g)
        y = torch.arange(WAYS).repeat_interleave(per_class).expand(count, -1).clone()
        return x, y

    return TaskBatch(*half(c.plan.task.shots), *half(c.plan.task.queries))


def pair(c: Compiled, plan=None) -> tuple[MetaLearner, MetaLearner]:
    plan = plan or c.plan
    stacked = MetaLearner(CompiledModel(c.graph), plan, seed=1)
    eager = MetaLearner(CompiledModel(c.graph), plan, seed=1, stacked_tasks=False)
    assert stacked.fallback is None and eager.fallback == "asked for"
    return stacked, eager


def assert_same_gradients(got: dict, want: dict, rel: float = 1e-5) -> None:
    """Relative to the whole meta-gradient's norm: a bias before batch norm has an exactly
    zero gradient, whose rounding noise has no meaningful relative size of its own."""
    assert got.keys() == want.keys()
    scale = torch.cat([g.flatten() for g in want.values()]).norm()
    assert scale > 0
    for k in want:
        assert (got[k] - want[k]).norm() <= rel * scale, k


def assert_same_stats(got, want) -> None:
    """The step statistics of two engines: the same fields present, values to 1e-5."""
    for field in ("loss", "accuracy", "inner_grad"):
        a, b = getattr(got, field), getattr(want, field)
        assert (a is None) == (b is None), field
        if a is not None:
            assert a == pytest.approx(b, rel=1e-5, abs=1e-7), field


CASES = {
    "ticket mlp": dict(model=MLP, params=TICKET),
    "ticket mlp two steps": dict(model=MLP, params=TICKET, steps=2),
    "ticket mlp first order": dict(model=MLP, params=TICKET, steps=2, order="first"),
    "maml mlp two steps": dict(model=MLP, params=MAML, steps=2),
    "anil mlp": dict(model=MLP, params=MAML, lr='lr: 0, lr["head.**"]: 0.3'),
    "boil mlp": dict(model=MLP, params=MAML, lr='lr: 0.3, lr["head.**"]: 0'),
    "ticket boil mlp": dict(model=MLP, params=TICKET, lr='lr: 0.3, lr["head.**"]: 0'),
    "ticket conv4 (batch norm, pooling)": dict(model=CONV, params=TICKET, steps=2),
    "maml conv4 one task at a time": dict(model=CONV, params=MAML, tasks_in="sequential"),
    "ticket resnet12 (residual, no bias)": dict(model=RESNET, params=TICKET_CONV, size=16, tasks=2,
                                                tasks_in="sequential"),
}


SLOW = ("ticket resnet12 (residual, no bias)",)


@pytest.mark.parametrize("case", [pytest.param(c, marks=pytest.mark.slow) if c in SLOW else c
                                  for c in CASES])
def test_stacked_and_eager_give_the_same_meta_gradients_and_metrics(tmp_path, case):
    c = compile_spec(tmp_path, **CASES[case])
    batch = tasks(c)
    stacked, eager = pair(c)
    got, got_stats = stacked.meta_gradients(batch)
    want, want_stats = eager.meta_gradients(batch)
    assert_same_gradients(got, want)
    assert_same_stats(got_stats, want_stats)


def test_meta_steps_with_iterand_keep_both_engines_together(tmp_path):
    c = compile_spec(tmp_path, MLP, TICKET, mask="sparsity: 0.5",
                     iterand="iterand { every: 1, prob: 0.5 }")
    stacked, eager = pair(c)
    for seed in range(3):
        batch = tasks(c, seed)
        a, b = stacked.meta_step(batch), eager.meta_step(batch)
        assert a.loss == pytest.approx(b.loss, rel=1e-5)
    for key in eager.learned:
        torch.testing.assert_close(stacked.learned[key], eager.learned[key], rtol=1e-5, atol=1e-5)
    for key in eager.weights:  # IteRand re-drew the same pruned weights in both
        torch.testing.assert_close(stacked.weights[key], eager.weights[key], rtol=1e-5, atol=1e-5)
    assert stacked.sparsity() == eager.sparsity()


@pytest.mark.parametrize("model, params", [(MLP, TICKET), (MLP, MAML)])
def test_evaluation_gives_the_same_per_task_metrics(tmp_path, model, params):
    c = compile_spec(tmp_path, model, params, tasks=7)
    batch = tasks(c)
    stacked, eager = pair(c)
    stacked.eval_chunk = eager.eval_chunk = 3  # chunks of 3, 3 and 1 tasks
    got, want = stacked.evaluate(batch), eager.evaluate(batch)
    torch.testing.assert_close(got.loss, want.loss, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(got.accuracy, want.accuracy)
    assert got.loss.shape == (7,)


def test_channels_last_falls_back_to_eager_with_the_same_numbers(tmp_path):
    c = compile_spec(tmp_path, CONV, TICKET)
    batch = tasks(c)
    stacked = MetaLearner(CompiledModel(c.graph), c.plan, seed=1)
    fallback = MetaLearner(CompiledModel(c.graph),
                           replace(c.plan, device=DevicePlan(amp="off", channels_last=True)), seed=1)
    assert stacked.fallback is None
    assert fallback.fallback == "channels-last memory format"
    assert fallback.execution(batch) == ("3 tasks all at once (vmap), float32, channels-last; "
                                         "not stacked: channels-last memory format")
    assert stacked.execution(batch) == "3 tasks all at once, stacked, float32"
    got, _ = fallback.meta_gradients(batch)
    want, _ = stacked.meta_gradients(batch)
    assert_same_gradients(got, want)


def test_a_model_without_a_layer_graph_falls_back_to_eager(tmp_path):
    c = compile_spec(tmp_path, MLP, MAML)
    plain = torch.nn.Sequential()  # any nn.Module: parameters named as the plan says
    for name, value in CompiledModel(c.graph).named_parameters():
        *path, local = name.split(".")
        holder = plain
        for part in path:
            if not hasattr(holder, part):
                holder.add_module(part, torch.nn.Module())
            holder = getattr(holder, part)
        holder.register_parameter(local, torch.nn.Parameter(value.detach().clone()))
    learner = MetaLearner(plain, c.plan, seed=1)
    assert learner.fallback == "the model is not a compiled layer graph"
    assert learner.stacked is None
