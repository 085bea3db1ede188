"""Each split is decoded once into the cache; a changed source is decoded again; a large one is
built in a scratch file and memory-mapped on load."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from fixtures import layouts
from mtdsl.data import cache
from mtdsl.data.registry import open_dataset


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("MTDSL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("MTDSL_OFFLINE", "1")


def open_cub(root, **options):
    return open_dataset("cub", root=str(root), split="val", ways=3, shots=1, queries=1,
                        size=8, resize=10, **options)


def first_photo(folder: Path) -> Path:
    return sorted((folder / "images" / "002.Laysan_Albatross").iterdir())[0]


def test_a_second_open_reads_the_cache_not_the_photos(tmp_path):
    folder, _ = layouts.write_cub(tmp_path)
    first = open_cub(tmp_path)
    photo = first_photo(folder)
    photo.write_bytes(b"\0" * photo.stat().st_size)  # undecodable, but the same name and size
    second = open_cub(tmp_path)
    assert torch.equal(first.images, second.images)
    assert len(list((tmp_path / "cache").glob("cub-val-*.pt"))) == 1


def test_a_changed_photo_is_decoded_again(tmp_path):
    folder, _ = layouts.write_cub(tmp_path)
    first = open_cub(tmp_path)
    layouts.save_jpeg(Image.new("RGB", (31, 17), (250, 250, 250)), first_photo(folder))
    second = open_cub(tmp_path)
    assert not torch.equal(first.images, second.images)
    assert second.images[0].min() > 240  # the new white photo, first of the first val class


def test_sizes_and_channels_are_cached_apart(tmp_path):
    layouts.write_cub(tmp_path)
    rgb, gray = open_cub(tmp_path), open_cub(tmp_path, channels=1)
    assert rgb.input_shape == (3, 8, 8) and gray.input_shape == (1, 8, 8)
    assert len(list((tmp_path / "cache").glob("cub-val-*.pt"))) == 2


def test_a_large_split_is_built_in_a_scratch_file_and_memory_mapped(tmp_path, monkeypatch):
    monkeypatch.setattr(cache, "LARGE_BYTES", 1000)  # every split here counts as large
    folder, ks = layouts.write_mini_imagenet(tmp_path, per_class=3)
    source = open_dataset("mini_imagenet", root=str(tmp_path), split="test", ways=5, shots=1,
                          queries=1, size=12)
    cached_files = list((tmp_path / "cache").iterdir())
    assert [f.name for f in cached_files if f.name.startswith("mini_imagenet-test")] and \
        not [f for f in cached_files if f.name.endswith(".part")]  # the scratch file is gone
    if sys.platform.startswith("linux"):
        maps = Path("/proc/self/maps").read_text()
        assert any(str(f) in maps for f in cached_files), "the cache file is not memory-mapped"
    batch = source.sample(4, torch.Generator().manual_seed(0))
    assert batch.support_x.shape == (4, 5, 3, 12, 12)
    colours = (batch.support_x[:, :, :, 6, 6] * 255).round().long()
    assert {layouts.class_of(c) for c in colours.reshape(-1, 3).tolist()} <= ks["test"]


def test_a_cache_hit_does_not_read_the_pickles(tmp_path):
    folder, _ = layouts.write_mini_imagenet(tmp_path, per_class=2)
    first = open_dataset("mini_imagenet", root=str(tmp_path), split="val", ways=2, shots=1,
                         queries=1, size=10)
    pickled = folder / "mini-imagenet-cache-validation.pkl"
    pickled.write_bytes(b"\0" * pickled.stat().st_size)  # unreadable, same name and size
    second = open_dataset("mini_imagenet", root=str(tmp_path), split="val", ways=2, shots=1,
                          queries=1, size=10)
    assert torch.equal(first.images, second.images)
