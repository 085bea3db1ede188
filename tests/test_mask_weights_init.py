"""How masked weights are drawn: the sinusoid specs match the public Meta-ticket code (its
masked weights, and IteRand's re-draws, come from `init_mode: kaiming_normal`), and a
`mask.weights` that `init` overrides for every masked tensor is flagged by `mtdsl check`."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT
from mtdsl.cli.select import compile_ref

MTDSL = str(Path(sys.executable).parent / "mtdsl")


def compiled(name: str):
    return compile_ref(str(ROOT / "specs" / f"{name}.mt"), [])[0]


def test_modified_ticket_draws_its_masked_hidden_weight_from_kaiming_normal():
    c = compiled("sinusoid_ticket")
    plan = {p.name: p for p in c.plan.params}
    assert plan["layer2.weight"].role == "masked"
    assert plan["layer2.weight"].init == "kaiming_normal"
    # what stays unmasked keeps torch's Linear default, as in the public sinusoid code
    for name in ("layer1.weight", "layer1.bias", "layer2.bias", "head.weight", "head.bias"):
        assert (plan[name].role, plan[name].init) == ("meta", "torch_default"), name
    assert c.plan.mask.iterand_every == 1000 and c.plan.mask.iterand_prob == 1.0
    assert not c.warnings


def test_the_engine_draws_the_masked_weight_at_kaiming_scale():
    """std sqrt(2/40) = 0.22 for the 40x40 layer; torch's default would give 1/sqrt(120) = 0.09."""
    from mtdsl.compile.module import CompiledModel
    from mtdsl.engine.meta import MetaLearner

    c = compiled("sinusoid_ticket")
    stds = [MetaLearner(CompiledModel(c.graph), c.plan, seed=s).weights["layer2.weight"].std().item()
            for s in (1, 2, 3)]
    assert all(abs(std - math.sqrt(2 / 40)) < 0.02 for std in stds), stds


def test_no_shipped_spec_overrides_its_mask_weights():
    for path in sorted((ROOT / "specs").glob("*.mt")):
        for c in compile_ref(str(path), []):
            assert not c.warnings, (path.name, [w.message for w in c.warnings])


SPEC = """\
import "{models}"

experiment overridden {{
  data {{
    train: sinusoid(amplitude: [0.1, 5.0], phase: [0, 3.14], x_range: [-5, 5])
    test: sinusoid(split: "test")
  }}
  task {{ shots: 5, queries: 5 }}
  model: sine_mlp(hidden: 40)
  init {{ {init} }}
  params {{ "layer2.weight": masked, "**": meta }}
  mask {{ weights: kaiming_normal }}
  inner {{ steps: 5, lr: 0.01 }}
  outer {{ optimizer: adamw(lr: 0.001), iterations: 10 }}
}}
"""


def write(tmp_path: Path, init: str) -> Path:
    path = tmp_path / "overridden.mt"
    path.write_text(SPEC.format(models=ROOT / "specs" / "lib" / "models.mt", init=init))
    return path


def mtdsl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([MTDSL, *args], capture_output=True, text=True, cwd=ROOT)


def test_check_warns_where_mask_weights_is_set_and_keeps_exit_0(tmp_path):
    spec = write(tmp_path, '"**": torch_default')
    r = mtdsl("check", str(spec))
    assert r.returncode == 0, r.stderr
    assert f"{spec}:12:10: warning: `mask.weights: kaiming_normal` is set but `init` overrides it" in r.stderr
    assert "`layer2.weight` is drawn from torch_default" in r.stderr
    assert f'"**" in `init` takes layer2.weight ({spec}:10:10)' in r.stderr
    assert "Traceback" not in r.stderr
    [w] = json.loads(mtdsl("check", "--format", "json", str(spec)).stdout)
    assert (w["severity"], w["line"], w["column"]) == ("warning", 12, 10)


def test_show_does_not_claim_the_overridden_mask_weights(tmp_path):
    r = mtdsl("show", str(write(tmp_path, '"**": torch_default')))
    assert r.returncode == 0, r.stderr
    text = " ".join(r.stdout.split())
    assert "mask: weights kaiming_normal," not in text
    assert "mask: weights torch_default (`init` overrides mask.weights kaiming_normal for 1 of 1" in text


def test_an_init_that_leaves_the_masked_tensor_alone_is_not_flagged(tmp_path):
    spec = write(tmp_path, '"layer1.**", "head.**", "**.bias": torch_default')
    r = mtdsl("check", str(spec))
    assert r.returncode == 0 and "warning" not in r.stderr, r.stderr
    assert "mask: weights kaiming_normal," in " ".join(mtdsl("show", str(spec)).stdout.split())


@pytest.mark.parametrize("name", ["sinusoid_ticket", "sinusoid_ticket_naive"])
def test_shipped_sinusoid_tickets_check_clean(name):
    r = mtdsl("check", f"specs/{name}.mt")
    assert r.returncode == 0 and "warning:" not in r.stderr, r.stderr
