"""`mtdsl test`: a foreign folder is meta-tested whole and named by its path and options; the
protocol can change (--ways, --shots, --queries, --steps, --tasks, --set); an untrained
0-iteration run and a parent folder of seeds work; mistakes in `--on` are located there."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from conftest import ROOT
from mtdsl.cli.main import app

SPEC = """import "{root}/specs/lib/models.mt"
experiment glyphs {{
  seeds: [1, 2]
  device: cpu
  data {{
    train: folder("{train}", size: 28, channels: 1)
    test: folder("{train}", size: 28, channels: 1)
  }}
  task {{ ways: 2, shots: 1, queries: 2 }}
  model: mlp(hidden: [16], classes: task.ways)
  params {{ "**.weight": masked, "**.bias": fixed, "**.bn.**": fixed, "head.**": fixed }}
  inner {{ lr: 0.4 }}
  outer {{ optimizer: sgd(lr: 10, momentum: 0.9), iterations: 0 }}
  eval {{ test_tasks: 6 }}
}}
"""


def write_glyphs(folder: Path, classes: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for c in range(classes):
        (folder / f"c{c}").mkdir(parents=True)
        for i in range(5):
            pixels = ((rng.random((28, 28)) > 0.7) * 255).astype(np.uint8)
            Image.fromarray(pixels).save(folder / f"c{c}" / f"{i}.png")


@pytest.fixture(scope="module")
def parent(tmp_path_factory):
    """A finished 0-iteration run of two seeds (no checkpoint), and two 10-class folders."""
    base = tmp_path_factory.mktemp("meta_test")
    for name, seed in (("train", 0), ("ten", 1), ("other", 2)):
        write_glyphs(base / name, 10, seed)
    spec = base / "glyphs.mt"
    spec.write_text(SPEC.format(root=ROOT, train=base / "train"))
    mp = pytest.MonkeyPatch()
    mp.setenv("MTDSL_CACHE", str(base / "cache"))
    done = CliRunner().invoke(app, ["run", str(spec), "--out", str(base / "runs")])
    assert done.exit_code == 0, done.output
    yield base
    mp.undo()


def mtdsl_test(*args):
    return CliRunner().invoke(app, ["test", *map(str, args)])


def results(parent: Path) -> list[dict]:
    return [json.loads((parent / "runs" / f"seed{s}" / "result.json").read_text()) for s in (1, 2)]


def test_a_folder_is_tested_whole_on_every_seed_of_an_untrained_run(parent):
    assert not list((parent / "runs").rglob("checkpoint.pt"))  # 0 iterations: nothing saved
    on = f'folder("{parent / "ten"}", size: 28, channels: 1)'
    # 10-way tasks are only possible on all 10 classes: the default split would have 2.
    done = mtdsl_test(parent / "runs", "--on", on, "--ways", "10", "--shots", "1", "--queries", "2",
                "--steps", "2", "--tasks", "4", "--set", "inner.lr=0.3")
    assert done.exit_code == 0, done.output
    key = f"folder(path={parent / 'ten'}, size=28, channels=1)/all@10-way,1-shot,2-query,2steps"
    for result in results(parent):
        entry = result["test"][key]
        assert entry["on"] == on and entry["tasks"] == 4
        assert (entry["ways"], entry["shots"], entry["queries"], entry["steps"]) == (10, 1, 2, 2)
        assert result["iterations"] == 0
    assert "untrained network" in done.output
    assert "±" in done.output and "seeds" in done.output  # the mean ± std over both seeds
    assert "Wall time" not in done.output  # the training's time is not the test's


def test_two_folders_never_overwrite_each_other(parent):
    for name in ("ten", "other"):
        on = f'folder("{parent / name}", size: 28, channels: 1)'
        assert mtdsl_test(parent / "runs" / "seed1", "--on", on, "--tasks", "3").exit_code == 0
    keys = set(results(parent)[0]["test"])
    assert {f"folder(path={parent / n}, size=28, channels=1)/all" for n in ("ten", "other")} <= keys


def test_a_shape_mismatch_in_on_is_located_at_on(parent):
    done = mtdsl_test(parent / "runs" / "seed1", "--on", f'folder("{parent / "ten"}")')
    assert done.exit_code == 2
    assert done.output.startswith("--on:1:")
    assert "gives inputs of shape 3x84x84 but the model takes 1x28x28" in done.output


def test_a_split_too_small_for_the_task_says_what_to_do(parent):
    on = f'folder("{parent / "ten"}", size: 28, channels: 1, split: "test")'
    done = mtdsl_test(parent / "runs" / "seed1", "--on", on, "--ways", "5")
    assert done.exit_code == 1
    assert "5-way tasks need 5 classes but folder test has 2" in done.output
    assert 'split: "all"' in done.output and "--ways" in done.output
