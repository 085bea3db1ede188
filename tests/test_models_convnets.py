"""The paper's conv nets, written in the language, meta-trained by the engine: structure,
two meta-iterations under Meta-ticket and MAML, vmap against one task at a time, dropout."""

from __future__ import annotations

import math

import pytest
import torch

from convnet_helpers import (MAML, TICKET, TICKET_WITH_BIASES, compile_spec, image_tasks,
                             learner_for)

SMALL_RESNET12 = "resnet12(channels: [8, 16, 16, 32], classes: 2)"
SMALL_WRN28 = "wrn28(k: 1, classes: 2)"
SMALL_CONV4 = "conv4(hidden: 8, classes: 2)"


def test_resnet12_blocks_have_three_convs_and_a_projection_shortcut(tmp_path):
    c = compile_spec(tmp_path, SMALL_RESNET12, TICKET)
    shapes = {p.name: p.shape for p in c.plan.params}
    assert shapes["layer1.conv1.weight"] == (8, 1, 3, 3)
    assert shapes["layer2.conv3.weight"] == (16, 16, 3, 3)
    assert shapes["layer4.shortcut.conv.weight"] == (32, 16, 1, 1)
    assert shapes["layer4.shortcut.conv.bn.bias"] == (32,)
    assert shapes["head.weight"] == (2, 32)
    assert not any(n.endswith(".bias") and ".bn." not in n and n != "head.bias" for n in shapes)
    assert [layer.out_shape for layer in c.graph.layers() if layer.kind == "maxpool"] == [
        (8, 8, 8), (16, 4, 4), (16, 2, 2), (32, 1, 1)]


def test_wrn28_has_twelve_pre_activation_blocks_and_projects_where_width_changes(tmp_path):
    c = compile_spec(tmp_path, "wrn28(k: 2, classes: 2)", MAML, size=8)
    names = [p.name for p in c.plan.params]
    blocks = {n.split(".")[0] + "." + n.split(".")[1] for n in names if n.startswith("group")}
    assert len(blocks) == 12
    assert sum(n.endswith(".weight") and len(c.plan.param(n).shape) == 4 for n in names) == 1 + 12 * 2 + 3
    shapes = {p.name: p.shape for p in c.plan.params}
    assert shapes["group1.block1.bn.weight"] == (16,)  # pre-activation of the block's input
    assert shapes["group1.block1.shortcut.conv.weight"] == (32, 16, 1, 1)
    assert shapes["group2.block2.bn.weight"] == (64,)
    assert "group2.block2.shortcut.conv.weight" not in shapes  # equal width: identity
    assert shapes["group3.block4.conv2.weight"] == (128, 128, 3, 3)
    assert shapes["head.weight"] == (2, 128)
    strided = [layer.out_shape for layer in c.graph.layers() if layer.kind == "conv"
               and layer.args["stride"] == 2]
    assert strided == [(64, 4, 4), (64, 4, 4), (128, 2, 2), (128, 2, 2)]  # branch and shortcut


@pytest.mark.parametrize("params", [TICKET, MAML], ids=["meta-ticket", "maml"])
@pytest.mark.parametrize("model, size", [(SMALL_RESNET12, 84), (SMALL_WRN28, 84)],
                         ids=["resnet12", "wrn28"])
def test_two_meta_iterations_move_what_is_meta_learned_and_nothing_else(tmp_path, model, size, params):
    c = compile_spec(tmp_path, model, params, size=size, shots=1, queries=2, tasks=2)
    learner = learner_for(c)
    batch = image_tasks(c)
    learned_before = {k: t.detach().clone() for k, t in learner.learned.items()}
    weights_before = {k: t.clone() for k, t in learner.weights.items()}
    for _ in range(2):
        stats = learner.meta_step(batch)
        assert math.isfinite(stats.loss) and 0.0 <= stats.accuracy <= 1.0
    assert learner.iteration == 2
    moved = [k for k in learned_before if not torch.equal(learner.learned[k], learned_before[k])]
    assert len(moved) >= 0.9 * len(learned_before)  # a parameter whose gradient is 0 stays
    assert all(torch.equal(learner.weights[k], weights_before[k]) for k in weights_before)
    if params == TICKET:
        masked = {p.name for p in c.plan.by_role("masked")}
        assert {p.name for p in c.plan.params if p.name.endswith(".weight")
                and len(p.shape) == 4} <= masked
        assert set(learner.learned) == {f"{n}:score" for n in masked}
    scores = learner.evaluate(batch)
    assert scores.accuracy.shape == (2,)


@pytest.mark.parametrize("params", [TICKET_WITH_BIASES, MAML], ids=["meta-ticket", "maml"])
def test_conv4_meta_gradients_are_the_same_in_every_grouping_of_tasks(tmp_path, params):
    grads = {}
    for tasks_in in ("vmap", "sequential", "chunks(size: 2)"):
        c = compile_spec(tmp_path, SMALL_CONV4, params, steps=2, tasks=3, tasks_in=tasks_in)
        grads[tasks_in], stats = learner_for(c).meta_gradients(image_tasks(c))
    # A conv bias before batch norm has a true gradient of 0, which float32 gets to rounding
    # error of the gradient's overall size.
    overall = math.sqrt(sum(g.norm().item() ** 2 for g in grads["vmap"].values()))
    for other in ("sequential", "chunks(size: 2)"):
        for key, want in grads["vmap"].items():
            error = (grads[other][key] - want).norm().item()
            assert error <= 1e-5 * want.norm().item() + 1e-6 * overall, (other, key, error)
    assert all(g.abs().sum() > 0 for g in grads["vmap"].values())


def test_dropout_is_random_in_meta_training_and_off_in_evaluation(tmp_path):
    c = compile_spec(tmp_path, "wrn28(k: 1, dropout: 0.3, classes: 2)", MAML, size=8, shots=1,
                     queries=2, tasks=2)
    learner = learner_for(c)
    batch = image_tasks(c)
    first, _ = learner.meta_gradients(batch)
    second, _ = learner.meta_gradients(batch)
    assert not torch.equal(first["head.weight"], second["head.weight"])
    assert torch.equal(learner.evaluate(batch).loss, learner.evaluate(batch).loss)
    assert learner.module.training  # the mode evaluation found is restored
