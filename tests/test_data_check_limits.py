"""Dataset limits known from the declarations are spec errors at `mtdsl check` (exit 2, located
at the dataset), and a dataset without `split` takes the one its place in `data` implies."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT
from mtdsl.compile.compiler import compile_experiment
from mtdsl.validate.loader import load

SPEC = """import "{models}"
experiment t {{
  seeds: [1]
  data {{
    train: {train}
    test: [{test}]
  }}
  task {{ ways: {ways}, shots: {shots}, queries: {queries} }}
  model: mlp(hidden: [8], classes: task.ways)
  params {{ "**": meta }}
  inner {{ lr: 0.4 }}
  outer {{ optimizer: adamw(lr: 0.001), iterations: 10 }}
}}
"""


def write(tmp_path: Path, train="omniglot", test='omniglot(split: "val")', ways=5, shots=1,
          queries=1) -> Path:
    path = tmp_path / "t.mt"
    path.write_text(SPEC.format(models=ROOT / "specs" / "lib" / "models.mt", train=train, test=test,
                                ways=ways, shots=shots, queries=queries))
    return path


def check(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mtdsl.cli.main", "check", str(path)],
                          capture_output=True, text=True, cwd=path.parent)


def test_shots_and_queries_above_omniglots_20_drawings_fail_check(tmp_path):
    done = check(write(tmp_path, shots=15, queries=10))
    assert done.returncode == 2, done.stderr
    assert "t.mt:5:12: error: `data.train`: tasks take shots + queries = 15 + 10 = 25 images " \
           "per class, but every omniglot class has 20" in done.stderr
    assert "help: lower task.shots or task.queries so that they sum to at most 20" in done.stderr
    assert done.stderr.count("images per class") == 1  # once per dataset, not per split
    assert "Traceback" not in done.stderr


def test_ways_above_a_splits_classes_fail_check_at_that_dataset(tmp_path):
    # Omniglot's val split without rotations has 172 characters; train has 1028.
    done = check(write(tmp_path, train="omniglot(rotations: [0])",
                       test='omniglot(split: "val", rotations: [0])', ways=200))
    assert done.returncode == 2, done.stderr
    assert ("t.mt:6:12: error: `data.test[0]` is omniglot's val split, 172 classes, too few for "
            "200-way tasks (task.ways)") in done.stderr
    assert "help: lower task.ways to at most 172" in done.stderr
    assert "data.train" not in done.stderr


def test_limits_only_the_files_know_are_left_to_run_time(tmp_path):
    # A folder's class and image counts are unknown until it is read: no error here.
    path = write(tmp_path, train='folder("a", size: 28, channels: 1)',
                 test='folder("b", size: 28, channels: 1)', shots=30, queries=30)
    compile_experiment(load(path), "t")


def test_within_the_limits_check_passes(tmp_path):
    compile_experiment(load(write(tmp_path, shots=10, queries=10, ways=20)), "t")


def splits_of(path: Path):
    c = compile_experiment(load(path), "t")
    return c.experiment.data.train.split, [ds.split for ds in c.experiment.data.test]


@pytest.mark.parametrize("train, test, expected", [
    ("omniglot", "omniglot", ("train", ["test"])),
    ("omniglot", 'omniglot(split: "val"), omniglot', ("train", ["val", "test"])),
    # a foreign folder is meta-tested whole; the training folder on its test split
    ("omniglot", 'folder("x", size: 28, channels: 1)', ("train", ["all"])),
    ('folder("x", size: 28, channels: 1)', 'folder("x", size: 28, channels: 1)', ("train", ["test"])),
    ('folder("x", size: 28, channels: 1)', 'folder("y", size: 28, channels: 1, split: "val")',
     ("train", ["val"])),
])
def test_a_dataset_without_split_takes_its_roles(tmp_path, train, test, expected):
    assert splits_of(write(tmp_path, train=train, test=test)) == expected
