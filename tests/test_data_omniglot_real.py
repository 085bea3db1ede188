"""The real Omniglot (Vinyals split) from $MTDSL_DATA, default ../shared/data from the repo root.

The first load on a machine decodes 32,460 PNGs (a few seconds) into the user's cache, which
every later load and every other test shares.
"""

import os
import time
from pathlib import Path

import pytest
import torch

from mtdsl.data.omniglot import load_omniglot
from mtdsl.data.registry import declaration, open_dataset

from conftest import missing_data

REPO = Path(__file__).resolve().parents[1]
ROOT = REPO / os.path.expanduser(os.environ.get("MTDSL_DATA", "../shared/data"))

if not (ROOT / "omniglot" / "omniglot-py").is_dir() and not (ROOT / "omniglot-py").is_dir():
    missing_data(f"no Omniglot under {ROOT}", module=True)


@pytest.fixture(scope="module")
def sources():
    return {split: open_dataset("omniglot", root=str(ROOT), split=split, ways=5, shots=1,
                                queries=19, download=False) for split in ("train", "val", "test")}


@pytest.mark.parametrize("split, classes", [("train", 4112), ("val", 688), ("test", 1692)])
def test_class_counts_with_rotations(sources, split, classes):
    source = sources[split]
    assert source.num_classes == classes
    assert declaration("omniglot").model_validate({"kind": "omniglot"}).class_count(split) == classes
    assert source.input_shape == (1, 28, 28)
    batch = source.sample(3, torch.Generator().manual_seed(0))
    assert batch.support_x.shape == (3, 5, 1, 28, 28) and batch.query_x.shape == (3, 95, 1, 28, 28)
    assert batch.support_x.min() == 0.0 and batch.support_x.max() == 1.0  # ink and paper


def test_a_cached_load_is_fast_and_equal(sources):
    first = load_omniglot(str(ROOT), "val", size=28, download=False)  # cached by the fixture already
    start = time.perf_counter()
    second = load_omniglot(str(ROOT), "val", size=28, download=False)
    assert time.perf_counter() - start < 1.0
    assert first.shape == (172, 20, 1, 28, 28) and torch.equal(first, second)


def test_the_splits_share_no_character(sources):
    # Unrotated images: a character in two splits would show up as an identical drawing.
    flat = {split: load_omniglot(str(ROOT), split, size=28, download=False).flatten(1) for split in sources}
    seen = set()
    for split, images in flat.items():
        keys = {bytes(row.numpy()) for row in images}
        assert not keys & seen, split
        seen |= keys


def test_three_channels_repeat_the_gray_one(sources):
    rgb = open_dataset("omniglot", root=str(ROOT), split="val", ways=5, shots=1, queries=1,
                       download=False, channels=3)
    assert rgb.input_shape == (3, 28, 28) and rgb.num_classes == sources["val"].num_classes
    batch = rgb.sample(2, torch.Generator().manual_seed(0))
    gray = sources["val"].images
    assert torch.equal(rgb.images[:, 0], gray[:, 0]) and torch.equal(rgb.images[:, 2], gray[:, 0])
    assert batch.support_x.shape == (2, 5, 3, 28, 28)
