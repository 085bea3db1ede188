"""`mtdsl run` end to end: real data, real engine, real files."""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import sys

import pytest
import torch
from typer.testing import CliRunner

from mtdsl.cli.main import app

from conftest import ROOT

RESULT_KEYS = ["experiment", "spec_sha256", "seed", "iterations", "test", "sparsity", "wall_seconds"]


def run(args, monkeypatch, env=None):
    monkeypatch.chdir(ROOT)
    for k, v in (env or {}).items():
        monkeypatch.setenv(k, v)
    result = CliRunner().invoke(app, ["run", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def test_sinusoid_run_writes_a_complete_run_folder(tmp_path, monkeypatch):
    out = tmp_path / "run"
    r = run(["specs/sinusoid_ticket.mt", "--seed", "3", "--out", str(out), "--set", "outer.iterations=20",
             "--set", "eval.test_tasks=40", "--set", "outer.meta_batch=4"], monkeypatch)
    assert r.exit_code == 0, r.output
    result = json.loads((out / "result.json").read_text())
    assert list(result) == RESULT_KEYS
    assert result["experiment"] == "sinusoid_ticket" and result["seed"] == 3 and result["iterations"] == 20
    entry = result["test"]["sinusoid/test"]
    assert entry["metric"] == "mse" and entry["tasks"] == 40 and entry["ci95"] > 0
    assert set(result["sparsity"]) == {"layer2.weight"}
    assert len(result["spec_sha256"]) == 64
    assert (out / "spec.sha256").read_text().split()[0] == result["spec_sha256"]
    lines = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines()]
    steps = [l for l in lines if "loss" in l]
    assert [l["iteration"] for l in steps] == list(range(1, 21))
    assert all(math.isfinite(l["loss"]) and "mse" in l and "lr" in l and "sparsity" in l for l in steps)
    saved = torch.load(out / "final.pt")
    assert saved["masks/layer2.weight"].shape == (40, 40)
    resolved = json.loads((out / "resolved.json").read_text())
    assert resolved["spec"]["outer"]["iterations"] == 20  # the override is in the operative spec
    spec_text = (out / "spec.mt").read_text()
    assert "iterations: 20" in spec_text
    assert resolved["overrides"] == ["outer.iterations=20", "eval.test_tasks=40", "outer.meta_batch=4"]
    assert hashlib.sha256(spec_text.encode()).hexdigest() == result["spec_sha256"]


def test_learned_tensors_that_overflow_in_the_last_step_stop_the_run(tmp_path, monkeypatch):
    # lr 3e38 times a gradient above 1.13 is beyond float32: after the only step the head is
    # infinite. No later query loss would show it, so only the check of the learned tensors
    # can, before anything of the broken network is meta-tested or saved.
    out = tmp_path / "run"
    r = run(["specs/sinusoid_ticket.mt", "--seed", "1", "--out", str(out), "--set", "outer.iterations=1",
             "--set", "outer.optimizer=sgd(lr: 3e38)", "--set", "eval.test_tasks=8"], monkeypatch)
    assert r.exit_code != 0
    assert "meta-training diverged at iteration 1: head.weight became non-finite" in r.output, r.output
    assert not (out / "result.json").exists() and not (out / "checkpoint.pt").exists()


def test_an_outer_step_beyond_float32_is_a_run_error(tmp_path, monkeypatch):
    # 1e38 is a valid float32, but Adam's first step divides it by its bias correction (0.1)
    r = run(["specs/sinusoid_ticket.mt", "--seed", "1", "--out", str(tmp_path / "run"),
             "--set", "outer.iterations=3", "--set", "outer.optimizer=adamw(lr: 1e38)"], monkeypatch)
    assert r.exit_code != 0
    assert "meta-training diverged at iteration 1: the outer step overflows float32" in r.output, r.output
    assert "Lower the outer lr" in r.output


def test_every_seed_is_its_own_run(tmp_path, monkeypatch):
    out = tmp_path / "seeds"
    r = run(["specs/sinusoid_maml.mt", "--out", str(out), "--set", "seeds=[1, 2]",
             "--set", "outer.iterations=3", "--set", "eval.test_tasks=10", "--set", "outer.meta_batch=2"],
            monkeypatch)
    assert r.exit_code == 0, r.output
    a, b = (json.loads((out / f"seed{s}" / "result.json").read_text()) for s in (1, 2))
    assert (a["seed"], b["seed"]) == (1, 2)
    # Each seed's spec.mt names its seed (`seeds: [1]`), so each run has its own hash.
    assert a["test"] != b["test"] and a["spec_sha256"] != b["spec_sha256"]


@pytest.mark.parametrize("spec", ["omniglot_mlp_ticket", "omniglot_mlp_maml"])
def test_a_short_real_omniglot_run_learns(spec, tmp_path, monkeypatch, omniglot_root):
    out = tmp_path / spec
    r = run([f"specs/{spec}.mt", "--seed", "1", "--out", str(out), "--set", "outer.iterations=150",
             "--set", "eval.valid_tasks=20", "--set", "eval.test_tasks=200"],
            monkeypatch, env={"MTDSL_DATA": str(omniglot_root)})
    assert r.exit_code == 0, r.output
    result = json.loads((out / "result.json").read_text())
    accuracy = result["test"]["omniglot/test"]["mean"]
    assert accuracy > 0.6, f"5-way accuracy {accuracy:.3f} after 150 iterations (chance is 0.2)"
    if spec.endswith("ticket"):
        assert set(result["sparsity"]) == {f"layer{i}.weight" for i in range(1, 5)}
        assert all(s > 0 for s in result["sparsity"].values())
    valid = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines() if "valid" in l]
    assert valid and valid[-1]["iteration"] == 150


def test_missing_data_is_a_clear_error_not_a_traceback(tmp_path):
    env = {**os.environ, "MTDSL_DATA": str(tmp_path / "nothing-here"), "COLUMNS": "200"}
    r = subprocess.run([sys.executable, "-m", "mtdsl.cli.main", "run", "specs/omniglot_mlp_ticket.mt",
                        "--set", "outer.iterations=1", "--out", str(tmp_path / "run")],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1
    assert "Traceback" not in r.stdout + r.stderr
    assert "omniglot" in r.stderr and "nothing-here" in r.stderr and "images_background" in r.stderr


def test_a_spec_error_stops_run_with_exit_2(tmp_path, monkeypatch):
    r = run(["specs/sinusoid_maml.mt", "--set", "outer.itertions=3", "--out", str(tmp_path / "x")], monkeypatch)
    assert r.exit_code == 2
    assert "did you mean `iterations`?" in r.output
    assert not (tmp_path / "x").exists()


def test_mtdsl_test_adds_cross_domain_entries(tmp_path, monkeypatch):
    out = tmp_path / "run"
    assert run(["specs/sinusoid_maml.mt", "--seed", "1", "--out", str(out), "--set", "outer.iterations=3",
                "--set", "eval.test_tasks=10", "--set", "outer.meta_batch=2"], monkeypatch).exit_code == 0
    r = CliRunner().invoke(app, ["test", str(out), "--on", 'sinusoid(split: "val", amplitude: [0.1, 1.0])',
                                 "--tasks", "12", "--steps", "2"])
    assert r.exit_code == 0, r.output
    test = json.loads((out / "result.json").read_text())["test"]
    tested = "sinusoid(amplitude=[0.1, 1.0])/val@2steps"  # the option that changes the data, named
    assert set(test) == {"sinusoid/test", tested}
    assert test[tested]["tasks"] == 12
    wrong = CliRunner().invoke(app, ["test", str(out), "--on", 'omniglot(split: "val")'])
    assert wrong.exit_code == 2 and "is classification but `data.train` is regression" in wrong.output


def test_zero_iterations_meta_tests_the_initial_network(tmp_path, monkeypatch):
    out = tmp_path / "baseline"
    r = run(["specs/sinusoid_ticket_naive.mt", "--seed", "1", "--out", str(out), "--set", "outer.iterations=0",
             "--set", "mask.threshold=fixed_at_init(sparsity: 0.5)", "--set", "eval.test_tasks=10"], monkeypatch)
    assert r.exit_code == 0, r.output
    result = json.loads((out / "result.json").read_text())
    assert result["iterations"] == 0
    assert all(abs(s - 0.5) < 0.05 for s in result["sparsity"].values())


def test_an_omniglot_run_meta_tests_on_another_grayscale_folder(tmp_path, monkeypatch, omniglot_root):
    """Cross-domain after the fact: a finished Omniglot run, tested on a user's 28x28 folder."""
    from PIL import Image

    images = tmp_path / "glyphs"
    rng = torch.Generator().manual_seed(0)
    for c in range(30):
        (images / f"class{c:02d}").mkdir(parents=True)
        for i in range(12):
            pixels = (torch.rand(28, 28, generator=rng) > 0.8).to(torch.uint8) * 255
            Image.fromarray(pixels.numpy(), mode="L").save(images / f"class{c:02d}" / f"{i}.png")
    out = tmp_path / "run"
    r = run(["specs/omniglot_mlp_ticket.mt", "--seed", "1", "--out", str(out), "--set", "outer.iterations=3",
             "--set", "eval.test_tasks=10", "--set", "eval.valid_tasks=5"],
            monkeypatch, env={"MTDSL_DATA": str(omniglot_root)})
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(app, ["test", str(out), "--tasks", "20", "--on",
                                 f'folder("{images}", split: "test", size: 28, channels: 1)'])
    assert r.exit_code == 0, r.output
    entry = json.loads((out / "result.json").read_text())["test"][f"folder(path={images}, size=28, channels=1)/test"]
    assert entry["tasks"] == 20 and 0.0 <= entry["mean"] <= 1.0
