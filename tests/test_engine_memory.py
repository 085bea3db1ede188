"""How many tasks the engine computes at once: the spec's `outer.tasks_in`, the memory
estimate behind `auto`, and out-of-memory as a run error."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mtdsl.engine.memory import (Footprint, free_bytes, measure, out_of_memory_is_a_run_error,
                                 tasks_that_fit)
from mtdsl.errors import RunError, SpecError

from convnet_helpers import TICKET_WITH_BIASES, compile_spec, image_tasks, learner_for

CONV4 = "conv4(hidden: 8, classes: 2)"


class LinearRelu(nn.Module):
    def __init__(self):
        super().__init__()
        self.layer = nn.Linear(4, 3)

    def forward(self, x):
        return F.relu(self.layer(x))


def test_measure_counts_what_autograd_saves_and_one_copy_of_the_parameters():
    module = LinearRelu()
    fp = measure(module, dict(module.named_parameters()), torch.zeros(5, 4), torch.zeros(7, 4))
    # linear saves its input for the weight's gradient, relu its output; float32 = 4 bytes
    assert fp == Footprint(support=(5 * 4 + 5 * 3) * 4, query=(7 * 4 + 7 * 3) * 4, params=15 * 4)


def test_measure_sees_the_activations_of_a_compiled_conv_net_even_under_no_grad(tmp_path):
    c = compile_spec(tmp_path, CONV4, TICKET_WITH_BIASES, size=16)
    learner = learner_for(c)
    batch = image_tasks(c)
    with torch.no_grad():
        fp = measure(learner.module, dict(learner.module.named_parameters()),
                     batch.support_x[0], batch.query_x[0])
    first_conv_output = batch.support_x.shape[1] * 8 * 16 * 16 * 4
    assert fp.support > 3 * first_conv_output  # conv, batch norm, relu and pooling each keep some
    assert fp.query == pytest.approx(fp.support * c.plan.task.queries / c.plan.task.shots)


class NormDropout(nn.Module):
    """A module outside the compiler's: batch norm with running statistics, and dropout."""

    def __init__(self):
        super().__init__()
        self.layer, self.norm = nn.Linear(4, 6), nn.BatchNorm1d(6)

    def forward(self, x):
        return F.dropout(self.norm(self.layer(x)), 0.5, training=True)


def test_measuring_leaves_no_trace_in_buffers_or_the_random_stream():
    module = NormDropout()
    before = {k: b.clone() for k, b in module.named_buffers()}
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    fp = measure(module, dict(module.named_parameters()), torch.zeros(5, 4), torch.zeros(9, 4))
    assert torch.equal(torch.rand(3), expected)
    assert all(torch.equal(b, before[k]) for k, b in module.named_buffers())
    # affine in the examples: the linear input and output, batch norm's and dropout's
    # per-example tensors; per-channel statistics once
    assert fp.query - fp.support == (9 - 5) * (fp.support - measure(
        module, dict(module.named_parameters()), torch.zeros(4, 4), torch.zeros(4, 4)).support)


def test_second_order_memory_grows_with_inner_steps_and_first_order_does_not():
    fp = Footprint(support=1000, query=3000, params=100)
    second = [fp.train_bytes(steps, "second") for steps in (1, 2, 3)]
    assert second[2] - second[1] == second[1] - second[0] > 1000
    assert fp.train_bytes(1, "first") == fp.train_bytes(5, "first") < second[0]
    assert fp.eval_bytes() < fp.train_bytes(1, "first")


def test_tasks_that_fit_stay_within_the_usable_memory_and_the_limit():
    assert tasks_that_fit(per_task=10, free=100, limit=32) == 7
    assert tasks_that_fit(per_task=10, free=100, limit=4) == 4
    assert tasks_that_fit(per_task=1000, free=100, limit=4) == 1  # one task always runs
    assert free_bytes(torch.device("cpu")) > 0


@pytest.mark.parametrize("tasks_in, training, expected", [
    ("vmap", True, 5), ("sequential", True, 1), ("chunks(size: 2)", True, 2),
    ("chunks(size: 9)", True, 5), ("vmap", False, 3), ("chunks(size: 2)", False, 2),
])
def test_tasks_in_decides_the_tasks_computed_at_once(tmp_path, tasks_in, training, expected):
    c = compile_spec(tmp_path, CONV4, TICKET_WITH_BIASES, tasks=5, tasks_in=tasks_in)
    learner = learner_for(c)
    learner.eval_chunk = 3
    assert learner.tasks_at_once(image_tasks(c), training=training) == expected


def test_auto_computes_as_many_tasks_at_once_as_the_estimate_lets_fit(tmp_path):
    c = compile_spec(tmp_path, CONV4, TICKET_WITH_BIASES, tasks=5, steps=2, tasks_in="auto")
    assert (c.plan.outer.tasks_in, c.plan.outer.chunk_size) == ("auto", None)
    learner = learner_for(c)
    batch = image_tasks(c)
    fp = measure(learner.module, dict(learner.module.named_parameters()),
                 batch.support_x[0], batch.query_x[0])
    free = free_bytes(torch.device("cpu"))
    assert fp.train_bytes(2, "second") * 5 < 0.1 * free  # a tiny net: all five fit
    assert learner._tasks_that_fit(batch, True, batch.tasks) == 5
    assert learner._tasks_that_fit(batch, False, 2) == 2
    # ... but on the CPU a conv net runs one task at a time, measured to be faster there
    assert learner.tasks_at_once(batch) == 1
    assert learner.execution(batch) == "5 tasks one at a time, stacked, float32"


def test_the_spec_writes_chunks_with_a_named_size(tmp_path):
    c = compile_spec(tmp_path, CONV4, TICKET_WITH_BIASES, tasks_in="chunks(size: 2)")
    assert (c.plan.outer.tasks_in, c.plan.outer.chunk_size) == ("chunks", 2)
    with pytest.raises(SpecError, match="named arguments only"):
        compile_spec(tmp_path, CONV4, TICKET_WITH_BIASES, tasks_in="chunks(2)")
    with pytest.raises(SpecError) as e:
        compile_spec(tmp_path, CONV4, TICKET_WITH_BIASES, tasks_in="vmapp")
    assert e.value.diagnostics[0].hint == "did you mean `vmap`?"


@pytest.mark.parametrize("chunk, advice", [(4, "chunks(size: 2)"), (1, "inner.order: first")])
def test_running_out_of_device_memory_is_a_run_error_with_advice(chunk, advice):
    with pytest.raises(RunError, match="out of memory on cuda") as e:
        with out_of_memory_is_a_run_error(torch.device("cuda"), chunk):
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
    assert advice in str(e.value)
