"""`mtdsl diff` exits as diff(1) does; `mtdsl show` labels sweep points and, with --batch,
prints what the model is fed; a folder's `split: "all"`, `invert` and `mean`/`std`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from typer.testing import CliRunner

from conftest import ROOT
from mtdsl.cli.main import app
from mtdsl.data.registry import open_dataset
from mtdsl.errors import DataError

MODELS = ROOT / "specs" / "lib" / "models.mt"


def mtdsl(*args, cwd=ROOT, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mtdsl.cli.main", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, env=env)


def cli(*args):
    """The CLI in this process (no second torch import): for checks of output, not exit paths."""
    return CliRunner().invoke(app, [*map(str, args)])


def test_diff_exits_0_when_same_1_when_different_2_on_error(monkeypatch):
    differ = mtdsl("diff", "specs/omniglot_mlp_maml.mt", "specs/omniglot_mlp_anil.mt")
    assert differ.returncode == 1 and "->" in differ.stdout
    monkeypatch.chdir(ROOT)
    same = cli("diff", "specs/omniglot_mlp_maml.mt", "specs/omniglot_mlp_maml.mt")
    assert same.exit_code == 0 and "no differences" in same.output
    missing = cli("diff", "specs/omniglot_mlp_maml.mt", "specs/nope.mt")
    assert missing.exit_code == 2 and "no such spec file" in missing.output


def test_show_labels_every_sweep_point(monkeypatch):
    monkeypatch.chdir(ROOT)
    done = cli("show", "specs/omniglot_widths.mt::omniglot_widths_maml")
    assert done.exit_code == 0, done.output
    titles = [line.strip() for line in done.output.splitlines() if ": model mlp, input" in line]
    assert len(titles) > 1 and len(set(titles)) == len(titles)  # every point told apart
    assert all("[model.width=" in t and ",seed=" in t for t in titles)


def write_images(folder: Path, classes: int = 6, per_class: int = 4) -> None:
    """White pictures with a black square: Omniglot's convention (background 1, ink 0)."""
    for c in range(classes):
        (folder / f"class_{c}").mkdir(parents=True)
        for i in range(per_class):
            pixels = np.full((28, 28), 255, np.uint8)
            pixels[4 + c:10 + c, 4 + i:10 + i] = 0
            Image.fromarray(pixels).save(folder / f"class_{c}" / f"{i}.png")


@pytest.fixture
def images(tmp_path, monkeypatch):
    monkeypatch.setenv("MTDSL_CACHE", str(tmp_path / "cache"))
    write_images(tmp_path / "glyphs")
    return tmp_path / "glyphs"


def test_split_all_uses_every_class(images):
    source = open_dataset("folder", split="all", ways=6, shots=1, queries=1, path=str(images),
                          size=28, channels=1)
    assert source.num_classes == 6
    with pytest.raises(DataError, match='6-way tasks need 6 classes but folder test has 1: .*'
                                        '`split: "all"` uses every class'):
        open_dataset("folder", split="test", ways=6, shots=1, queries=1, path=str(images),
                     size=28, channels=1)


def test_invert_and_normalise_map_the_pixels(images):
    def pixels(**options):
        source = open_dataset("folder", split="all", ways=2, shots=2, queries=1, path=str(images),
                              size=28, channels=1, **options)
        return source.sample(4, torch.Generator().manual_seed(0)).support_x

    plain, inverted = pixels(), pixels(invert=True)
    assert plain.max() == 1.0 and plain.mean() > 0.8  # white background
    assert torch.allclose(inverted, 1 - plain)
    assert torch.allclose(pixels(invert=True, mean=0.5, std=0.25), (1 - plain - 0.5) / 0.25)


def test_show_batch_prints_what_the_model_is_fed(images, tmp_path):
    spec = tmp_path / "glyphs.mt"
    spec.write_text(f"""import "{MODELS}"
experiment glyphs {{
  data {{ train: folder("{images}", size: 28, channels: 1, invert: true, split: "all") }}
  task {{ ways: 2, shots: 1 }}
  model: mlp(hidden: [8], classes: task.ways)
  params {{ "**": meta }}
  inner {{ lr: 0.4 }}
  outer {{ optimizer: adamw(lr: 0.001), iterations: 1 }}
}}
""")
    done = cli("show", spec, "--batch")  # MTDSL_CACHE: the `images` fixture's
    assert done.exit_code == 0, done.output
    line = next(l for l in done.output.splitlines() if l.startswith("data.train folder/all"))
    assert "support (2, 1, 28, 28), inputs in [0, 1], mean 0.0" in line  # inverted: ink is 1
