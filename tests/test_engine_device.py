"""The spec's `device` section: which precision and memory format the engine picks where,
and that bf16 autocast and channels-last compute what float32 computes (on the CPU, where
torch runs both)."""

from __future__ import annotations

import textwrap
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from mtdsl.compile.module import CompiledModel
from mtdsl.compile.plan import DevicePlan
from mtdsl.data.batch import TaskBatch
from mtdsl.engine import MetaLearner
from mtdsl.engine.precision import Precision
from mtdsl.errors import RunError, SpecError
from mtdsl.validate.loader import load
from mtdsl.compile.compiler import compile_experiment

from conftest import ROOT
from convnet_helpers import MAML, TICKET_WITH_BIASES, compile_spec, image_tasks, learner_for

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


def device_plan(tmp_path, device: str) -> DevicePlan:
    path = tmp_path / "d.mt"
    path.write_text(textwrap.dedent(f"""\
        import "{ROOT}/specs/lib/models.mt"
        experiment e {{
          data  {{ train = omniglot() }}
          task  {{ ways: 5, shots: 1 }}
          model = mlp(hidden: [8], classes: task.ways)
          params {{ "**": meta }}
          inner {{ lr: 0.1 }}
          outer {{ optimizer: adam(lr: 0.001), iterations: 1 }}
          {device}
        }}
        """))
    return compile_experiment(load(path), "e").plan.device


@pytest.mark.parametrize("text, amp, channels_last", [
    ("", "off", "auto"),
    ("device: cpu", "off", "auto"),
    ("device { amp: auto }", "auto", "auto"),
    ("device { type: cuda, amp: bf16, channels_last: true }", "bf16", True),
    ("device { amp: none, channels_last: false }", "off", False),
])
def test_the_device_section_reaches_the_plan(tmp_path, text, amp, channels_last):
    assert device_plan(tmp_path, text) == DevicePlan(amp, channels_last)


@pytest.mark.parametrize("text, message", [
    ("device { amp: fp8 }", "must be one of `auto`, `bf16`, `off`"),
    ("device { channels_last: yes }", "must be `auto`, `true` or `false`"),
    ("device: tpu", "must be one of `auto`, `cpu`, `cuda`"),
])
def test_a_wrong_device_option_is_a_located_spec_error(tmp_path, text, message):
    with pytest.raises(SpecError) as e:
        device_plan(tmp_path, text)
    [diagnostic] = e.value.diagnostics
    assert message in diagnostic.message and diagnostic.span.line == 9


def test_auto_is_bf16_and_channels_last_for_conv_nets_on_cuda_and_off_elsewhere():
    assert DevicePlan().amp == "off"  # bf16 only when asked for: it changes meta-gradients
    auto = DevicePlan(amp="auto")
    assert Precision.decide(auto, CPU, has_conv=True) == Precision("cpu", False, False)
    assert Precision.decide(auto, CUDA, has_conv=False) == Precision("cuda", False, False)
    on_cuda = Precision.decide(auto, CUDA, has_conv=True)
    assert on_cuda.channels_last and on_cuda.amp == torch.cuda.is_bf16_supported()
    assert Precision.decide(DevicePlan("bf16", True), CPU, has_conv=False) == Precision("cpu", True, True)
    assert Precision.decide(DevicePlan("off", False), CUDA, has_conv=True) == Precision("cuda", False, False)


@pytest.mark.skipif(torch.cuda.is_available() and torch.cuda.is_bf16_supported(),
                    reason="this GPU has bf16")
def test_bf16_on_a_gpu_without_it_is_a_run_error():
    with pytest.raises(RunError, match="no bfloat16 support"):
        Precision.decide(DevicePlan(amp="bf16"), CUDA, has_conv=True)


def test_task_images_are_channels_last_task_by_task():
    x = torch.rand(3, 4, 2, 5, 5)
    laid = Precision("cpu", False, True).task_images(x)
    assert torch.equal(laid, x)
    assert all(laid[i].is_contiguous(memory_format=torch.channels_last) for i in range(3))
    assert Precision("cpu", False, False).task_images(x) is x


def signal_tasks(batch: TaskBatch) -> TaskBatch:
    """Class 1 brighter on the left half: a gradient with a direction, not rounding noise
    of near-cancelling per-example terms (which bf16 cannot resolve, nor is asked to)."""
    def mark(x, y):
        left = torch.zeros(x.shape[-2:])
        left[:, : x.shape[-1] // 2] = 1.0
        return 0.5 * x + 0.5 * y[..., None, None, None].float() * left
    return TaskBatch(mark(batch.support_x, batch.support_y), batch.support_y,
                     mark(batch.query_x, batch.query_y), batch.query_y)


def flat(grads: dict, keys) -> torch.Tensor:
    return torch.cat([grads[k].flatten() for k in keys])


@pytest.mark.parametrize("params", [TICKET_WITH_BIASES, MAML], ids=["meta-ticket", "maml"])
def test_bf16_autocast_meta_gradients_stay_close_to_float32(tmp_path, params):
    c = compile_spec(tmp_path, "conv4(hidden: 16, classes: 2)", params, shots=5, queries=5)
    batch = signal_tasks(image_tasks(c))
    want, fp32 = learner_for(c).meta_gradients(batch)
    learner = MetaLearner(CompiledModel(c.graph), replace(c.plan, device=DevicePlan(amp="bf16")), seed=1)
    assert learner.precision.amp
    got, bf16 = learner.meta_gradients(batch)
    # Conv biases before batch norm have a true gradient of 0: only rounding error to compare.
    keys = [k for k in want if not (k.endswith(".bias") and ".bn." not in k and k != "head.bias")]
    assert all(got[k].dtype == torch.float32 for k in got)
    cosine = F.cosine_similarity(flat(got, keys), flat(want, keys), dim=0).item()
    assert cosine > 0.97
    assert not torch.equal(flat(got, keys), flat(want, keys))  # bf16 did run
    assert abs(bf16.loss - fp32.loss) < 0.03 * fp32.loss


def test_channels_last_changes_the_layout_not_the_gradients(tmp_path):
    c = compile_spec(tmp_path, "conv4(hidden: 8, classes: 2)", TICKET_WITH_BIASES, steps=2)
    batch = image_tasks(c)
    want, _ = learner_for(c).meta_gradients(batch)
    learner = MetaLearner(CompiledModel(c.graph), replace(c.plan, device=DevicePlan(channels_last=True)),
                          seed=1)
    kernel = learner.weights["layer2.weight"]
    assert kernel.is_contiguous(memory_format=torch.channels_last) and not kernel.is_contiguous()
    assert learner.learned["layer2.weight:score"].is_contiguous(memory_format=torch.channels_last)
    got, _ = learner.meta_gradients(batch)
    overall = sum(g.norm() ** 2 for g in want.values()).sqrt()
    for key in want:
        assert (got[key] - want[key]).norm() <= 1e-5 * want[key].norm() + 1e-6 * overall, key
    learner.meta_step(batch)
    assert learner.learned["layer2.weight:score"].is_contiguous(memory_format=torch.channels_last)
