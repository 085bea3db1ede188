"""Omniglot loading from a small generated folder in the real on-disk layout."""

import os
import time

import numpy as np
import pytest
import torch
from PIL import Image

from mtdsl.data.omniglot import load_omniglot, with_rotations
from mtdsl.data.registry import open_dataset
from mtdsl.errors import DataError

DRAWINGS = 20


def write_png(path, pixels: np.ndarray) -> None:
    Image.fromarray(pixels.astype(bool)).save(path)  # mode "1", as the real PNGs


def make_omniglot(root, alphabets: dict, seed: int = 0) -> tuple[dict, dict]:
    """root/omniglot/omniglot-py/images_<set>/<alphabet>/characterNN/*.png of random binary
    105x105 drawings. Returns the character list and the pixels written, by relative path."""
    rng = np.random.default_rng(seed)
    characters, written = {}, {}
    for image_set, counts in alphabets.items():
        for alphabet, count in counts.items():
            names = [f"character{i:02d}" for i in range(1, count + 1)]
            characters.setdefault(image_set, {})[alphabet] = names
            for name in names:
                folder = root / "omniglot" / "omniglot-py" / f"images_{image_set}" / alphabet / name
                folder.mkdir(parents=True)
                for d in range(1, DRAWINGS + 1):
                    pixels = rng.random((105, 105)) < 0.2
                    write_png(folder / f"0001_{d:02d}.png", pixels)
                    written[(image_set, alphabet, name, d)] = pixels
    return characters, written


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("MTDSL_CACHE", str(folder))
    return folder


@pytest.fixture
def small(tmp_path):
    root = tmp_path / "data"
    characters, written = make_omniglot(root, {"background": {"Alpha": 3, "Beta": 2},
                                               "evaluation": {"Gamma": 2}})
    return root, characters, written


def test_loads_every_listed_character_in_list_order(small, cache):
    root, characters, written = small
    images = load_omniglot(str(root), "train", size=105, download=False, characters=characters)
    assert images.dtype == torch.uint8 and images.shape == (7, DRAWINGS, 1, 105, 105)
    order = [(s, a, n) for s, alphabets in characters.items()
             for a, names in alphabets.items() for n in names]
    for c, (image_set, alphabet, name) in enumerate(order):
        for d in (1, DRAWINGS):
            expected = written[(image_set, alphabet, name, d)].astype(np.uint8) * 255
            assert np.array_equal(images[c, d - 1, 0].numpy(), expected)


def test_resizes_to_the_requested_size(small, cache):
    root, characters, _ = small
    images = load_omniglot(str(root), "train", size=28, download=False, characters=characters)
    assert images.shape == (7, DRAWINGS, 1, 28, 28)
    assert 0 < images.float().mean() < 255  # bilinear keeps grey levels, no blank images


def test_second_load_comes_from_the_cache(small, cache):
    root, characters, _ = small
    first = load_omniglot(str(root), "train", size=28, download=False, characters=characters)
    assert len(list(cache.glob("*.pt"))) == 1
    # Garbage of the same size keeps the listing hash: a decode would now fail, a cache hit not.
    png = root / "omniglot/omniglot-py/images_background/Alpha/character01/0001_01.png"
    png.write_bytes(b"\0" * png.stat().st_size)
    start = time.perf_counter()
    second = load_omniglot(str(root), "train", size=28, download=False, characters=characters)
    assert time.perf_counter() - start < 1.0
    assert torch.equal(first, second)


def test_a_changed_file_invalidates_the_cache(small, cache):
    root, characters, _ = small
    first = load_omniglot(str(root), "train", size=105, download=False, characters=characters)
    png = root / "omniglot/omniglot-py/images_evaluation/Gamma/character02/0001_05.png"
    write_png(png, np.ones((105, 105)))  # all white compresses to a different size
    second = load_omniglot(str(root), "train", size=105, download=False, characters=characters)
    assert len(list(cache.glob("*.pt"))) == 2
    assert torch.equal(second[6, 4, 0], torch.full((105, 105), 255, dtype=torch.uint8))
    assert torch.equal(first[:6], second[:6])


def test_an_unreadable_png_is_a_data_error_and_leaves_no_cache(small, cache):
    root, characters, _ = small
    png = root / "omniglot/omniglot-py/images_background/Beta/character02/0001_07.png"
    png.write_bytes(b"not a png")
    with pytest.raises(DataError, match="Beta/character02/0001_07.png is unreadable"):
        load_omniglot(str(root), "train", size=28, download=False, characters=characters)
    assert not cache.exists() or list(cache.iterdir()) == []


def test_different_sizes_are_cached_apart(small, cache):
    root, characters, _ = small
    small_images = load_omniglot(str(root), "train", size=14, download=False, characters=characters)
    large_images = load_omniglot(str(root), "train", size=28, download=False, characters=characters)
    assert small_images.shape[-1] == 14 and large_images.shape[-1] == 28
    assert len(list(cache.glob("*.pt"))) == 2


def test_a_missing_folder_is_a_data_error_with_the_layout(tmp_path, cache):
    with pytest.raises(DataError) as error:
        load_omniglot(str(tmp_path / "nowhere"), "train", size=28, download=False)
    message = str(error.value)
    assert "omniglot-py/images_background/<Alphabet>/characterNN/*.png" in message
    assert str(tmp_path / "nowhere" / "omniglot" / "omniglot-py") in message
    assert "MTDSL_DATA" in message and "root" in message


def test_the_data_root_comes_from_mtdsl_data_when_the_spec_gives_none(small, cache, monkeypatch):
    root, characters, _ = small
    monkeypatch.setenv("MTDSL_DATA", str(root))
    images = load_omniglot(None, "train", size=14, download=False, characters=characters)
    assert images.shape[0] == 7


def test_a_listed_character_missing_on_disk_is_named(small, cache):
    root, characters, _ = small
    background = {**characters["background"], "Beta": ["character01", "character09"]}
    listed = {**characters, "background": background}
    with pytest.raises(DataError, match="images_background/Beta/character09"):
        load_omniglot(str(root), "train", size=28, download=False, characters=listed)


def test_a_character_with_fewer_drawings_is_a_data_error(small, cache):
    root, characters, _ = small
    os.remove(root / "omniglot/omniglot-py/images_evaluation/Gamma/character01/0001_03.png")
    with pytest.raises(DataError, match="Gamma/character01 has 19 drawings"):
        load_omniglot(str(root), "train", size=28, download=False, characters=characters)


def test_rotations_make_new_classes_grouped_by_rotation():
    images = torch.arange(2 * 3 * 4 * 4, dtype=torch.uint8).view(2, 3, 1, 4, 4)
    rotated = with_rotations(images, (0, 90, 180, 270))
    assert rotated.shape == (8, 3, 1, 4, 4)
    assert torch.equal(rotated[:2], images)
    assert torch.equal(rotated[4:6], images.flip(-1).flip(-2))  # 180 degrees
    assert torch.equal(rotated[2:4], rotated[6:8].flip(-1).flip(-2))  # 90 and 270 are opposite
    assert rotated[2, 0, 0, 0, 0] == images[0, 0, 0, 0, 3]  # 90: the top-right corner turns left


@pytest.mark.parametrize("degrees", [[45], [0, 0], [], [360]])
def test_rotations_outside_the_quarter_turns_are_refused(degrees):
    with pytest.raises(DataError, match="rotations"):
        open_dataset("omniglot", ways=5, shots=1, queries=1, rotations=degrees)


def test_an_empty_character_list_is_a_data_error(small, cache):
    root, _, _ = small
    with pytest.raises(DataError, match="names no character"):
        load_omniglot(str(root), "train", size=28, download=False, characters={"background": {}})
