"""Compilation of the shipped specs: names, shapes, roles and inner lrs are what the paper's
methods need; inheritance and overrides merge as documented."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from mtdsl.cli.select import compile_ref
from mtdsl.compile.selectors import matches, resolve, specificity
from mtdsl.errors import SpecError
from mtdsl.validate.loader import load
from mtdsl.compile.compiler import compile_experiment

from conftest import ROOT

SPECS = sorted((ROOT / "specs").glob("*.mt"))


def plan_of(name: str, overrides=()):
    return compile_ref(str(ROOT / "specs" / f"{name}.mt"), list(overrides))[0].plan


def roles(plan):
    return {p.name: (p.role, p.inner_lr) for p in plan.params}


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.stem)
def test_every_shipped_spec_compiles(path):
    assert compile_ref(str(path), [])


def test_paper_mlp_names_shapes_and_count():
    plan = plan_of("omniglot_mlp_ticket")
    shapes = {p.name: p.shape for p in plan.params}
    assert shapes["layer1.weight"] == (256, 784)
    assert shapes["layer4.bn.weight"] == (64,)
    assert shapes["head.weight"] == (5, 64)
    assert sum(p.numel for p in plan.params) == 247_621


def test_meta_ticket_masks_weights_and_fixes_the_rest():
    r = roles(plan_of("omniglot_mlp_ticket"))
    assert {n for n, (role, _) in r.items() if role == "masked"} == {f"layer{i}.weight" for i in range(1, 5)}
    assert r["head.weight"] == ("fixed", 0.4) and r["layer2.bn.bias"] == ("fixed", 0.4)
    assert {lr for _, lr in r.values()} == {0.4}


@pytest.mark.parametrize("name, head_lr, body_lr, role", [
    ("omniglot_mlp_maml", 0.4, 0.4, "meta"),
    ("omniglot_mlp_anil", 0.4, 0.0, "meta"),
    ("omniglot_mlp_boil", 0.0, 0.4, "meta"),
    ("omniglot_mlp_ticket_boil", 0.0, 0.4, "masked"),
])
def test_variants_are_inner_learning_rates_not_code_paths(name, head_lr, body_lr, role):
    r = roles(plan_of(name))
    assert r["head.weight"][1] == head_lr and r["head.bias"][1] == head_lr
    assert r["layer3.weight"] == (role, body_lr)
    assert r["layer3.bn.bias"][1] == body_lr


def test_sinusoid_ticket_masks_only_the_hidden_weight():
    r = roles(plan_of("sinusoid_ticket"))
    assert r["layer2.weight"][0] == "masked"
    assert r["layer1.weight"][0] == r["head.weight"][0] == "meta"
    assert roles(plan_of("sinusoid_ticket_naive"))["head.weight"][0] == "masked"


def test_plan_carries_the_protocol():
    plan = plan_of("omniglot_mlp_ticket")
    assert (plan.inner.steps, plan.inner.test_steps, plan.inner.order) == (1, 3, "second")
    assert plan.outer.optimizer.name == "sgd" and plan.outer.optimizer.lr == 10
    assert plan.outer.optimizer.momentum == 0.9
    assert (plan.outer.schedule.name, plan.outer.schedule.warmup) == ("cosine", 1000)
    assert (plan.task.ways, plan.task.shots, plan.task.queries) == (5, 5, 5)
    assert plan.mask.sparsity == 0.0 and plan.loss == "cross_entropy"


def test_overrides_use_the_language():
    plan = plan_of("omniglot_mlp_ticket", ["outer.iterations=7", 'inner.lr["head.**"]=0',
                                           "model.width=2"])
    assert plan.outer.iterations == 7
    assert roles(plan)["head.bias"] == ("fixed", 0.0)
    assert plan.param("layer1.weight").shape == (512, 784)


def write(tmp_path, text):
    path = tmp_path / "x.mt"
    path.write_text(f'import "{ROOT}/specs/lib/models.mt"\n' + textwrap.dedent(text))
    return load(path)


BASE = """
experiment base {
  data { train = omniglot() }
  task { ways: 5, shots: 1 }
  model = mlp(hidden: [8], classes: task.ways)
  params { "**.weight": masked, "head.**", "**.bias", "**.bn.**": fixed }
  inner { lr: 0.4, lr["head.**"]: 0.1 }
  outer { optimizer: sgd(lr: 10), iterations: 10 }
}
"""


def test_extends_merges_deeply_and_references_see_the_child(tmp_path):
    ws = write(tmp_path, BASE + """
experiment child extends base {
  task { ways: 3 }              // model's classes: task.ways follows
  inner { lr: 0 }               // sets "**" only; the head keeps 0.1
  outer { iterations: 99 }      // the optimizer stays
}""")
    c = compile_experiment(ws, "child")
    assert c.plan.param("head.weight").shape == (3, 8)
    assert roles(c.plan)["head.bias"] == ("fixed", 0.1)
    assert roles(c.plan)["layer1.bias"] == ("fixed", 0.0)
    assert c.plan.outer.iterations == 99 and c.plan.outer.optimizer.lr == 10
    assert c.plan.task.shots == 1 and c.plan.task.queries == 1  # queries default to shots


def test_assigning_a_table_replaces_it(tmp_path):
    ws = write(tmp_path, BASE + """
experiment maml extends base { params = { "**": meta } }
experiment mixed extends base { params { "**": meta } }""")
    assert {p.role for p in compile_experiment(ws, "maml").plan.params} == {"meta"}
    with pytest.raises(SpecError) as e:
        compile_experiment(ws, "mixed")
    [d] = e.value.diagnostics
    assert "decides nothing" in d.message and "params = {" in d.hint


def test_selectors_are_anchored_globs():
    assert matches("**.weight", "layer1.weight") and matches("**.weight", "weight")
    assert not matches("bn", "bn10") and not matches("layer1.**", "layer10.weight")
    assert matches("layer{1..3}.*", "layer2.bias") and not matches("layer{1..3}.*", "layer4.bias")
    assert matches("**.bn.**", "layer1.bn.weight")
    names = ["layer1.weight", "layer1.bn.weight", "head.weight"]
    table = ["**.weight", "head.**", "**.bn.**"]
    assert [resolve(n, table)[0] for n in names] == ["**.weight", "**.bn.**", "head.**"]
    assert specificity("head.weight") > specificity("head.**") > specificity("**.weight")


def test_check_does_not_import_torch():
    code = ("import sys\nfrom mtdsl.cli.select import compile_ref\n"
            "compile_ref('specs/omniglot_mlp_ticket.mt', [])\n"
            "assert 'torch' not in sys.modules, 'check imported torch'")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.stem)
def test_the_operative_spec_compiles_alone_to_the_same_experiment(path, tmp_path):
    from mtdsl.compile.operative import operative_text

    for c in compile_ref(str(path), ["outer.iterations=3"])[:2]:
        text = operative_text(c, "// operative")
        alone = tmp_path / "spec.mt"
        alone.write_text(text)  # no imports: it stands alone
        again = compile_experiment(load(alone), c.resolved.name)
        assert again.experiment == c.experiment and again.plan == c.plan
        assert operative_text(again, "// operative") == text
