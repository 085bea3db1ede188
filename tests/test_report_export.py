"""`mtdsl export` and `mtdsl show RUN_DIR` on real short runs: the exported file, loaded
with plain PyTorch into the compiled module, is the engine's found network, and
meta-testing with it alone (no mtdsl engine) reproduces the run's test result."""

from __future__ import annotations

import io
import json
import shutil

import pytest
import torch
import torch.nn.functional as F
from rich.console import Console
from safetensors import safe_open
from safetensors.torch import load_file
from torch.func import functional_call
from typer.testing import CliRunner

from mtdsl.cli.main import app
from mtdsl.compile.module import CompiledModel
from mtdsl.engine.init import seeded_generator
from mtdsl.engine.meta import MetaLearner
from mtdsl.errors import RunError
from mtdsl.recipe.meta_train import EVAL_CHUNK
from mtdsl.recipe.sources import open_sources
from mtdsl.report.export import export_ticket
from mtdsl.report.recompile import compile_run
from mtdsl.report.rundir import open_run
from mtdsl.report.ticket import print_ticket

from conftest import ROOT, real_data_root, missing_data

RUNS = {
    # masked, meta and fixed tensors; regression
    "sinusoid": ("sinusoid_ticket", ["outer.iterations=20", "outer.meta_batch=4", "eval.test_tasks=40"]),
    # batchnorm, 4 masked layers; classification
    "omniglot": ("omniglot_mlp_ticket", ["outer.iterations=5", "eval.every=5", "eval.valid_tasks=5",
                                         "eval.test_tasks=20"]),
}


@pytest.fixture(scope="module", params=list(RUNS))
def run_dir(request, tmp_path_factory):
    spec, overrides = RUNS[request.param]
    data = real_data_root()
    if request.param == "omniglot" and not (data / "omniglot" / "omniglot-py" / "images_background").is_dir():
        missing_data(f"real Omniglot not found under {data}")
    out = tmp_path_factory.mktemp(request.param) / "run"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MTDSL_DATA", str(data))
        args = ["run", str(ROOT / "specs" / f"{spec}.mt"), "--seed", "2", "--out", str(out), "--device", "cpu"]
        for o in overrides:
            args += ["--set", o]
        r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    return out


def engine_learner(run_dir):
    """The engine's learner for the run, its tensors restored from final.pt."""
    c = compile_run(open_run(run_dir))
    learner = MetaLearner(CompiledModel(c.graph), c.plan, seed=json.loads((run_dir / "result.json").read_text())["seed"])
    final = torch.load(run_dir / "final.pt")
    with torch.no_grad():
        for key, tensor in learner.weights.items():
            tensor.copy_(final[f"weights/{key}"])
        for key, tensor in learner.learned.items():
            tensor.copy_(final[f"learned/{key}"])
    # thresholds are drawn again from the seed: the masks must come out as the run's
    for name, mask in learner.masks().items():
        assert torch.equal(mask, final[f"masks/{name}"])
    return c, learner


def split_file(state):
    values = {k: v for k, v in state.items() if not k.startswith("masks/")}
    masks = {k.removeprefix("masks/"): v for k, v in state.items() if k.startswith("masks/")}
    return values, masks


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_exported_tensors_are_the_engines_found_network(run_dir, tmp_path, suffix):
    path = tmp_path / f"ticket{suffix}"
    r = CliRunner().invoke(app, ["export", str(run_dir), "--out", str(path)])
    assert r.exit_code == 0, r.output
    assert "checked: loads into CompiledModel" in r.stdout
    state = load_file(path) if suffix == ".safetensors" else torch.load(path)
    values, masks = split_file(state)

    c, learner = engine_learner(run_dir)
    module = CompiledModel(c.graph)
    module.load_state_dict(values)  # strict: every parameter, nothing else
    effective = learner.effective_params()
    assert set(values) == set(effective)
    for name, value in values.items():
        assert torch.equal(value, effective[name]), name
    assert set(masks) == {p.name for p in c.plan.by_role("masked")}
    assert all(m.dtype == torch.bool for m in masks.values())

    x = torch.randn(10, *c.graph.input_shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(module(x), functional_call(learner.module, effective, (x,)))


def plain_meta_test(module, values, masks, inner_lr, steps, batch, loss_name):
    """Meta-testing with plain torch: SGD on the support set, masked tensors moving only
    inside their masks, then the query metric, one task at a time."""
    out = []
    for t in range(batch.tasks):
        fast = {k: v.clone().requires_grad_(inner_lr[k] != 0) for k, v in values.items()}
        moving = [k for k in fast if inner_lr[k] != 0]

        def forward(x):
            effective = {k: fast[k] * masks[k] if k in masks else fast[k] for k in fast}
            return functional_call(module, effective, (x,))

        def loss(prediction, y):
            return F.cross_entropy(prediction, y) if loss_name == "cross_entropy" else F.mse_loss(prediction, y)

        for _ in range(steps):
            grads = torch.autograd.grad(loss(forward(batch.support_x[t]), batch.support_y[t]),
                                        [fast[k] for k in moving])
            fast.update({k: (fast[k] - inner_lr[k] * g).detach().requires_grad_() for k, g in zip(moving, grads)})
        with torch.no_grad():
            prediction = forward(batch.query_x[t])
            if loss_name == "cross_entropy":
                out.append((prediction.argmax(-1) == batch.query_y[t]).float().mean().item())
            else:
                out.append(loss(prediction, batch.query_y[t]).item())
    return out


def test_meta_testing_the_exported_file_gives_the_runs_result(run_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("MTDSL_DATA", str(real_data_root()))
    done = export_ticket(run_dir, tmp_path / "ticket.safetensors")
    state = load_file(done.path)
    with safe_open(done.path, "pt") as f:
        meta = f.metadata()
    values, masks = split_file(state)
    inner_lr, steps = json.loads(meta["inner_lr"]), json.loads(meta["test_steps"])
    recorded = json.loads(meta["test"])
    result = json.loads((run_dir / "result.json").read_text())
    assert recorded == result["test"] and meta["experiment"] == result["experiment"]

    c = compile_run(open_run(run_dir))
    module = CompiledModel(c.graph)
    (label, entry), = result["test"].items()
    n = entry["tasks"]
    assert n <= EVAL_CHUNK  # the run drew its test tasks in one sample, as below
    batch = open_sources(c.experiment, "cpu").tests[label].sample(n, seeded_generator(result["seed"], "test-tasks"))
    per_task = plain_meta_test(module, values, masks, inner_lr, steps, batch, c.plan.loss)
    assert sum(per_task) / n == pytest.approx(entry["mean"], rel=1e-5, abs=1e-6)


def test_export_defaults_and_mistakes(run_dir, tmp_path):
    done = export_ticket(run_dir)
    assert done.path == run_dir / "ticket.safetensors" and done.path.is_file()
    with pytest.raises(RunError, match="must end in .safetensors or .pt"):
        export_ticket(run_dir, tmp_path / "ticket.npz")
    r = CliRunner().invoke(app, ["export", str(tmp_path / "nothing")])
    assert r.exit_code == 1 and "not a run folder" in r.stderr


def test_a_folder_whose_spec_no_longer_fits_is_exported_unchecked(run_dir, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    resolved = json.loads((copy / "resolved.json").read_text())
    resolved["parameters"][0]["shape"] = [1, 1]
    (copy / "resolved.json").write_text(json.dumps(resolved))
    done = export_ticket(copy, tmp_path / "t.pt")
    assert done.path.is_file()
    assert done.notes[0].startswith("not checked against the compiled module")
    assert resolved["parameters"][0]["name"] in done.notes[0]


def test_show_prints_the_found_subnetwork(run_dir):
    console = Console(file=io.StringIO(), width=200, force_terminal=False)
    print_ticket(console, run_dir)
    text = console.file.getvalue()
    final = torch.load(run_dir / "final.pt")
    result = json.loads((run_dir / "result.json").read_text())
    for key, mask in final.items():
        if key.startswith("masks/"):
            name = key.removeprefix("masks/")
            line = next(line for line in text.splitlines() if f" {name} " in line)
            assert f"{int(mask.sum()):,} / {mask.numel():,}" in line and "masked" in line
            assert f"{result['sparsity'][name] * 100:.2f}%" in line
    total = sum(v.numel() for k, v in final.items() if k.startswith("weights/") or
                (k.startswith("learned/") and not k.endswith(":score")))
    assert f"of {total:,} parameters" in text
    assert "test " in text and str(run_dir) in text
