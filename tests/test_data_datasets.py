"""Every image dataset, opened through the registry from a small copy in its real on-disk
layout, decoded, cached and sampled: classes come from the right split, images from the
right class."""

from __future__ import annotations

import pytest
import torch

from fixtures import layouts
from mtdsl.data.registry import declaration, open_dataset, options

WRITERS = {
    "vgg_flower": layouts.write_flowers,
    "aircraft": layouts.write_aircraft,
    "cars": layouts.write_cars,
    "cub": layouts.write_cub,
    "mini_imagenet": layouts.write_mini_imagenet,
    "tiered_imagenet": layouts.write_tiered_imagenet,
}
# Options that keep decoding small; each dataset's own (verify, crop) where the fixture needs it.
def offline(name: str) -> dict:
    return {"download": False} if "download" in options(name) else {}


OPTIONS = {"vgg_flower": {"verify": False}, "cub": {"resize": 20}}


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """A fresh cache per test, and never a download."""
    monkeypatch.setenv("MTDSL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("MTDSL_OFFLINE", "1")


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """dataset -> (data root, {split: class numbers k}), each written once per module."""
    made = {}

    def get(name):
        if name not in made:
            root = tmp_path_factory.mktemp(name)
            made[name] = (root, WRITERS[name](root)[1])
        return made[name]
    return get


def image_classes(x: torch.Tensor) -> torch.Tensor:
    """The class number k of every image in x float [T, items, 3, H, W], from the colour of
    its centre (JPEG blurs the edges of a box)."""
    h, w = x.shape[-2] // 2, x.shape[-1] // 2
    rgb = (x[..., h - 2:h + 2, w - 2:w + 2].mean(dim=(-2, -1)) * 255).round().long()
    return torch.tensor([[layouts.class_of(c) for c in task.tolist()] for task in rgb])


@pytest.mark.parametrize("name", list(WRITERS))
def test_every_split_opens_with_its_classes_and_only_them(name, written):
    root, ks = written(name)
    classes = declaration(name).facts.classes
    for split in ("train", "val", "test"):
        source = open_dataset(name, root=str(root), split=split, ways=5, shots=1, queries=1,
                              size=16, **OPTIONS.get(name, {}), **offline(name))
        assert source.num_classes == classes[split] == len(ks[split])
        assert source.input_shape == (3, 16, 16)
        batch = source.sample(30, torch.Generator().manual_seed(0))
        assert batch.support_x.shape == (30, 5, 3, 16, 16) and batch.query_x.shape == (30, 5, 3, 16, 16)
        support, query = image_classes(batch.support_x), image_classes(batch.query_x)
        assert set(support.unique().tolist()) <= ks[split], f"{name} {split}: a class of another split"
        # Support and query are grouped by label, one image each: label i is one class in both.
        assert torch.equal(support, query)
        assert all(len(set(task.tolist())) == 5 for task in support)


@pytest.mark.parametrize("name", ["aircraft", "cars"])
def test_bounding_boxes_crop_away_the_background(name, written):
    root, _ = written(name)
    whole = open_dataset(name, root=str(root), split="val", ways=2, shots=1, queries=1,
                         size=24, boxes=False, **offline(name))
    corners = whole.sample(5, torch.Generator().manual_seed(1)).support_x[..., 0, 0]
    assert corners.max() < 0.05  # the black outside the box
    cropped = open_dataset(name, root=str(root), split="val", ways=2, shots=1, queries=1,
                           size=24, **offline(name))
    corners = cropped.sample(5, torch.Generator().manual_seed(1)).support_x[..., 0, 0]
    assert corners.max() > 0.05


def test_classes_keep_their_own_number_of_images(written):
    root, _ = written("vgg_flower")
    source = open_dataset("vgg_flower", root=str(root), split="test", ways=5, shots=1, queries=2,
                          download=False, size=8, verify=False)
    wanted = [layouts.flower_count(int(name[:3])) for name in layouts.packaged("vgg_flower", "test")]
    assert source.offsets.diff().tolist() == wanted  # classes in split-list order, 3 to 6 photos
    assert len(source.images) == sum(wanted)
