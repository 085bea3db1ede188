"""The paper's figures: PNG files of the promised pixel sizes, drawn from what runs logged,
and a plain note (never a crash or an empty plot) where a run lacks what a figure needs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from matplotlib.image import imread
from typer.testing import CliRunner

from mtdsl.cli.main import app
from mtdsl.report.figures import DPI, MASK_INCHES, PLOT_INCHES, run_figures
from mtdsl.report.rundir import open_run

from report_helpers import acc, make_run, spec

PLOT_PIXELS = (round(PLOT_INCHES[1] * DPI), round(PLOT_INCHES[0] * DPI))
MASK_PIXELS = (round(MASK_INCHES[1] * DPI), round(MASK_INCHES[0] * DPI))
LAYERS = ["layer1.weight", "layer2.weight"]


def assert_png(path, pixels):
    assert path.is_file() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = imread(path)
    assert image.shape[:2] == pixels
    assert np.ptp(image[..., :3]) > 0.1  # something is drawn, not a blank page


def ticket_metrics(iterations=20, layers=True):
    records = []
    for it in range(1, iterations + 1):
        record = {"iteration": it, "loss": 1.0 / it, "accuracy": 0.5, "lr": 0.1,
                  "sparsity": 0.01 * it, "inner_grad": 0.1 / it, "seconds": it}
        if layers:
            record["layer_sparsity"] = {"layer1.weight": 0.02 * it, "layer2.weight": 0.005 * it}
        records.append(record)
        if it % 10 == 0:
            records.append({"iteration": it, "valid": {"metric": "accuracy", "mean": 0.6, "ci95": 0.1, "tasks": 10}})
    return records


def mlp_tensors(units=100, inputs=784, masked=True):
    generator = torch.Generator().manual_seed(0)
    first = torch.randn(units, inputs, generator=generator)
    tensors = {"weights/layer1.bias": torch.zeros(units), "weights/layer2.weight": torch.randn(5, units)}
    if masked:
        mask = (torch.rand(units, inputs, generator=generator) > 0.3).float()
        mask[0] = 1.0  # a unit that keeps everything must still be visible
        tensors.update({"weights/layer1.weight": first, "learned/layer1.weight:score": first,
                        "masks/layer1.weight": mask})
    else:
        tensors["learned/layer1.weight"] = first
    return tensors


def parameters(units=100, inputs=784):
    return [{"name": "layer1.weight", "shape": [units, inputs], "role": "masked", "inner_lr": 0.4, "init": "k"},
            {"name": "layer1.bias", "shape": [units], "role": "fixed", "inner_lr": 0.4, "init": "zeros"},
            {"name": "layer2.weight", "shape": [5, units], "role": "fixed", "inner_lr": 0.4, "init": "k"}]


def test_a_ticket_run_gets_all_three_figures(tmp_path):
    folder = make_run(tmp_path / "run", "ticket", 1, acc(0.9), metrics=ticket_metrics(),
                      tensors=mlp_tensors(), parameters=parameters(),
                      sparsity={"layer1.weight": 0.4, "layer2.weight": 0.1})
    drawn = run_figures(open_run(folder))
    assert drawn.notes == []
    names = sorted(w.path.name for w in drawn.written)
    assert names == ["inner_grad.png", "mask_layer1.weight.png", "sparsity.png"]
    assert all(w.path.parent == folder / "figures" for w in drawn.written)
    assert_png(folder / "figures" / "sparsity.png", PLOT_PIXELS)
    assert_png(folder / "figures" / "inner_grad.png", PLOT_PIXELS)
    assert_png(folder / "figures" / "mask_layer1.weight.png", MASK_PIXELS)


def test_without_layer_history_the_final_sparsity_is_drawn_and_said(tmp_path):
    folder = make_run(tmp_path / "run", "ticket", 1, acc(0.9), metrics=ticket_metrics(layers=False),
                      sparsity={"layer1.weight": 0.4, "layer2.weight": 0.1})
    drawn = run_figures(open_run(folder), tmp_path / "out")
    sparsity = next(w for w in drawn.written if w.path.name == "sparsity.png")
    assert "final only" in sparsity.what
    assert_png(sparsity.path, PLOT_PIXELS)
    assert any("no layer_sparsity" in n.text and "final sparsity only" in n.text for n in drawn.notes)
    assert any("no final.pt" in n.text for n in drawn.notes)


def test_a_maml_run_says_which_figures_it_cannot_have(tmp_path):
    metrics = [{"iteration": i, "loss": 1.0, "accuracy": 0.5, "lr": 0.1, "sparsity": 0.0,
                "layer_sparsity": {}, "inner_grad": 0.2, "seconds": i} for i in range(1, 6)]
    folder = make_run(tmp_path / "run", "maml", 1, acc(0.9), metrics=metrics,
                      tensors=mlp_tensors(masked=False), parameters=parameters())
    drawn = run_figures(open_run(folder))
    assert [w.path.name for w in drawn.written] == ["inner_grad.png"]
    texts = [n.text for n in drawn.notes]
    assert "no masked parameters, so no sparsity figure" in texts
    assert "the first layer (layer1.weight) is not masked, so no mask figure" in texts


def test_a_conv_first_layer_gets_no_mask_images(tmp_path):
    conv = torch.ones(8, 1, 3, 3)
    folder = make_run(tmp_path / "run", "conv", 1, acc(0.9),
                      tensors={"weights/conv1.weight": conv, "masks/conv1.weight": conv,
                               "learned/conv1.weight:score": conv},
                      parameters=[{"name": "conv1.weight", "shape": [8, 1, 3, 3], "role": "masked",
                                   "inner_lr": 0.1, "init": "k"}])
    drawn = run_figures(open_run(folder))
    assert not any(w.path.name.startswith("mask_") for w in drawn.written)
    assert any("(8, 1, 3, 3), not a linear layer" in n.text for n in drawn.notes)


@pytest.fixture
def sweep(tmp_path):
    for method, base in (("ticket", 0.90), ("maml", 0.85)):
        for width in (1, 2, 4):
            for seed in (1, 2):
                make_run(tmp_path / "runs" / f"{method}-w{width}-s{seed}", method, seed,
                         acc(base + 0.01 * width + 0.005 * seed), spec_doc=spec(width=width),
                         metrics=ticket_metrics(10))
    return tmp_path / "runs"


def test_report_figures_draws_the_sweep_and_the_gradient_comparison(sweep, tmp_path):
    out = tmp_path / "figs"
    r = CliRunner().invoke(app, ["report", str(sweep), "--by", "model.width", "--figures", str(out)])
    assert r.exit_code == 0, r.output
    assert_png(out / "accuracy_vs_model.width_omniglot-test.png", PLOT_PIXELS)
    assert_png(out / "inner_grad.png", PLOT_PIXELS)
    assert f"figure: {out / 'inner_grad.png'}" in r.stdout
    per_run = sorted(sweep.glob("*/figures/sparsity.png"))
    assert len(per_run) == 12
    # one note for the reason all twelve runs share, not twelve lines
    assert r.stdout.count("no final.pt, so no mask figure") == 1


def test_sweep_panels_put_the_field_with_most_values_on_the_x_axis(tmp_path):
    for ways in (5, 20):
        for width in (1, 2, 4):
            make_run(tmp_path / "runs" / f"w{width}-n{ways}", "ticket", 1, acc(0.9 - 0.01 * ways + 0.01 * width),
                     spec_doc=spec(width=width, ways=ways))
    r = CliRunner().invoke(app, ["report", str(tmp_path / "runs"), "--by", "task.ways", "--by", "model.width",
                                 "--figures", str(tmp_path / "figs")])
    assert r.exit_code == 0, r.output
    names = sorted(p.name for p in (tmp_path / "figs").glob("accuracy_vs_*.png"))
    assert names == ["accuracy_vs_model.width_omniglot-test_task.ways=20.png",
                     "accuracy_vs_model.width_omniglot-test_task.ways=5.png"]
    for name in names:
        assert_png(tmp_path / "figs" / name, PLOT_PIXELS)


def test_json_report_lists_the_figures(sweep, tmp_path):
    r = CliRunner().invoke(app, ["report", str(sweep), "--by", "model.width", "--format", "json",
                                 "--figures", str(tmp_path / "figs")])
    assert r.exit_code == 0, r.output
    document = json.loads(r.stdout)
    paths = {f["path"] for f in document["figures"]}
    assert str(tmp_path / "figs" / "accuracy_vs_model.width_omniglot-test.png") in paths
    assert len(paths) == 2 + 12 * 2
    assert {n["note"] for n in document["notes"]} == {"no final.pt, so no mask figure"}


def test_figures_command_for_one_run(tmp_path):
    folder = make_run(tmp_path / "run", "ticket", 1, acc(0.9), metrics=ticket_metrics(),
                      tensors=mlp_tensors(units=10), parameters=parameters(units=10))
    r = CliRunner().invoke(app, ["figures", str(folder), "--out", str(tmp_path / "pngs"), "--units", "4"])
    assert r.exit_code == 0, r.output
    assert_png(tmp_path / "pngs" / "mask_layer1.weight.png", MASK_PIXELS)
    assert "figure:" in r.stdout and not (folder / "figures").exists()
    r = CliRunner().invoke(app, ["figures", str(tmp_path / "missing")])
    assert r.exit_code == 1 and "not a run folder" in r.stderr
