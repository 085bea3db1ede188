"""`folder(...)`: a user's own images, split by their lists or at random, end to end through
`mtdsl run`."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from conftest import ROOT
from fixtures import layouts
from mtdsl.cli.main import app
from mtdsl.data.folder import random_split
from mtdsl.data.registry import open_dataset
from mtdsl.errors import DataError


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("MTDSL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("MTDSL_OFFLINE", "1")


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """20 classes x 20 images of varying sizes, PNG and JPEG mixed."""
    path = tmp_path_factory.mktemp("folder") / "images"
    layouts.write_folder(path)
    return path


def open_folder(path, split="train", **options):
    return open_dataset("folder", split=split, ways=3, shots=2, queries=3, path=str(path),
                        size=10, **options)


def classes_drawn(source, tasks=200) -> set[int]:
    batch = source.sample(tasks, torch.Generator().manual_seed(0))
    rgb = (batch.support_x[:, :, :, 5, 5] * 255).round().long().reshape(-1, 3)
    return {layouts.class_of(c) for c in rgb.tolist()}


def test_a_seeded_random_split_covers_every_class_once(images):
    drawn = {split: classes_drawn(open_folder(images, split)) for split in layouts.SPLITS}
    assert [len(drawn[s]) for s in layouts.SPLITS] == [13, 3, 4]  # 0.64 / 0.16 / 0.20 of 20
    assert set().union(*drawn.values()) == set(range(20))
    again = classes_drawn(open_folder(images, "test"))
    other_seed = classes_drawn(open_folder(images, "test", seed=1))
    assert again == drawn["test"] and other_seed != drawn["test"]


def test_random_split_follows_the_fractions():
    split = random_split([f"c{i}" for i in range(10)], (0.5, 0.3, 0.2), seed=3)
    assert [len(split[s]) for s in layouts.SPLITS] == [5, 3, 2]
    with pytest.raises(DataError, match="sum to 1"):
        random_split(["a"], (0.5, 0.5, 0.5), seed=0)


def test_split_lists_in_json_or_txt_decide_the_classes(images, tmp_path):
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "train.json").write_text(json.dumps([f"class_{k:02d}" for k in range(0, 10)]))
    (lists / "val.txt").write_text("class_10\nclass_11\nclass_12\n")
    (lists / "test.txt").write_text("\n".join(f"class_{k}" for k in range(13, 20)) + "\n")
    assert classes_drawn(open_folder(images, "train", splits=str(lists))) == set(range(10))
    assert classes_drawn(open_folder(images, "val", splits=str(lists))) == {10, 11, 12}
    assert classes_drawn(open_folder(images, "test", splits=str(lists))) == set(range(13, 20))


def test_split_lists_that_share_a_class_or_name_a_missing_one_are_refused(images, tmp_path):
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "train.txt").write_text("class_00\nclass_01\nclass_02\n")
    (lists / "test.txt").write_text("class_02\nclass_03\nclass_04\n")
    with pytest.raises(DataError, match="put class_02 in more than one split"):
        open_folder(images, "test", splits=str(lists))
    (lists / "test.txt").write_text("class_03\nclass_04\nclassy\n")
    with pytest.raises(DataError, match="1 of the split's 3 classes have no images: classy"):
        open_folder(images, "test", splits=str(lists))
    with pytest.raises(DataError, match="no val split list in .*val.json .* or val.txt"):
        open_folder(images, "val", splits=str(lists))


def test_a_relative_path_is_looked_up_under_the_data_root_then_here(images, tmp_path, monkeypatch):
    source = open_dataset("folder", root=str(images.parent), split="val", ways=2, shots=1,
                          queries=1, path="images", size=8)
    assert source.num_classes == 3
    monkeypatch.chdir(images.parent)
    assert open_dataset("folder", root=str(tmp_path), split="val", ways=2, shots=1, queries=1,
                        path="images", size=8).num_classes == 3
    with pytest.raises(DataError, match=f"(?s)folder dataset 'nope' not found. Searched:\n  "
                                        f"{tmp_path / 'nope'}\n  {images.parent / 'nope'}"):
        open_dataset("folder", root=str(tmp_path), split="val", ways=2, shots=1, queries=1,
                     path="nope", size=8)


def test_a_class_with_fewer_images_than_a_task_needs_is_named(tmp_path):
    layouts.write_folder(tmp_path / "few", classes=6, per_class=4)
    with pytest.raises(DataError, match=r"shots \+ queries = 5 images per class, but folder train "
                                        r"has only 4 images per class"):
        open_folder(tmp_path / "few", "train")


SPEC = """
import "{root}/specs/lib/models.mt"

experiment mine {{
  seeds: [2]
  device: cpu
  data {{
    train: folder("{images}", size: 12)
    valid: folder(path: "{images}", split: "val", size: 12)
    test: folder("{images}", split: "test", size: 12)
  }}
  task {{ ways: 3, shots: 2, queries: 3 }}
  model: mlp(hidden: [32, 32], classes: task.ways)
  params {{ "**.weight": masked, "head.**": fixed, "**.bias": fixed, "**.bn.**": fixed }}
  inner {{ steps: 1, test_steps: 2, lr: 0.4 }}
  outer {{ optimizer: sgd(lr: 10, momentum: 0.9), iterations: 6, meta_batch: 2 }}
  eval {{ every: 3, valid_tasks: 6, test_tasks: 20 }}
}}
"""


def test_mtdsl_run_trains_and_tests_on_a_folder(images, tmp_path, monkeypatch):
    spec = tmp_path / "mine.mt"
    spec.write_text(SPEC.format(root=ROOT, images=images))
    monkeypatch.chdir(ROOT)
    runner = CliRunner()
    checked = runner.invoke(app, ["check", str(spec)])
    assert checked.exit_code == 0, checked.output
    out = tmp_path / "run"
    result = runner.invoke(app, ["run", str(spec), "--out", str(out)])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "result.json").read_text())
    entry = summary["test"][f"folder(path={images}, size=12)/test"]  # named by its path
    assert entry["metric"] == "accuracy" and entry["tasks"] == 20 and 0.0 <= entry["mean"] <= 1.0
    assert summary["iterations"] == 6
