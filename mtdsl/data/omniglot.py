"""Omniglot (Lake et al. 2015): one uint8 tensor [characters, 20, 1, size, size] per split.

Images are read as PIL does them ("L": white background 255, ink 0, as torchvision's Omniglot
reads them) and resized with PIL's bilinear filter, which is what torchvision's Resize does to
a PIL image, so results compare with torchvision/torchmeta pipelines. Rotated copies of each
character are extra classes (Vinyals et al.); they are made at load time from the cached
unrotated tensor because rot90 is cheap and keeps one cache file per split and size.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from mtdsl.data.cache import cached_tensor
from mtdsl.data.download import find_or_fetch
from mtdsl.data.files import scan
from mtdsl.data.locate import cache_root, data_root
from mtdsl.data.split_lists import CharacterList, image_sets_used, packaged_list
from mtdsl.data.tasks import ClassificationTasks
from mtdsl.errors import DataError

# Part of every cache name: bump it when decoding changes so stale files are never reused.
DECODE_VERSION = "pil-bilinear-v1"


def open_omniglot(*, root: str | None, split: str, ways: int | None, shots: int, queries: int,
                  download: bool, size: int, rotations: Sequence[int], channels: int) -> ClassificationTasks:
    if ways is None:
        raise DataError("omniglot is a classification dataset: the task must set `ways`")
    images = with_rotations(load_omniglot(root, split, size=size, download=download), rotations)
    if channels == 3:  # for a model built for RGB input, e.g. one meta-trained on mini-ImageNet
        images = images.expand(-1, -1, 3, -1, -1).contiguous()
    return ClassificationTasks(images, ways, shots, queries, name=f"omniglot {split}")


def load_omniglot(root: str | None, split: str, *, size: int,
                  download: bool = True, characters: CharacterList | None = None) -> torch.Tensor:
    """Unrotated images of the split's characters, uint8 [characters, drawings, 1, size, size].

    `characters` replaces the packaged list for `split` (a custom or test split); `split` then
    only labels the cache file and messages.
    """
    if size < 1:
        raise DataError(f"omniglot image size must be a positive number of pixels, not {size}")
    if characters is None:
        characters = packaged_list("omniglot", split)
    folder = find_omniglot(data_root(root), image_sets_used(characters), download)
    files = character_files(folder, characters)
    name = f"omniglot-{split}-{size}px-{DECODE_VERSION}-{listing_digest(folder, files)}.pt"
    return cached_tensor(cache_root(), name, lambda: decode(files, size))


def with_rotations(images: torch.Tensor, degrees: Sequence[int]) -> torch.Tensor:
    """Every rotation of every class as a class of its own, grouped by rotation."""
    return torch.cat([torch.rot90(images, d // 90, dims=(-2, -1)) for d in degrees])


def candidate_folders(root: Path) -> list[Path]:
    return [root / "omniglot" / "omniglot-py", root / "omniglot-py"]


def find_omniglot(root: Path, image_sets: Sequence[str], download: bool) -> Path:
    """The omniglot-py folder holding every needed image set, downloading it if allowed."""
    candidates = candidate_folders(root)
    target = candidates[0].parent
    return find_or_fetch("omniglot", root, candidates, lambda folder: _holds(folder, image_sets),
                         download, lambda: [_download(target, s) for s in image_sets], target)


def _holds(folder: Path, image_sets: Sequence[str]) -> bool:
    return all((folder / f"images_{s}").is_dir() for s in image_sets)


def _download(target: Path, image_set: str) -> None:
    # Imported here because torchvision is slow to import and only a download needs it. Its
    # Omniglot class is used to fetch and unpack the zip only: it refuses folders that lack the
    # zips, so the images are read by our own walker.
    from torchvision.datasets import Omniglot

    Omniglot(str(target), background=image_set == "background", download=True)


def character_files(folder: Path, characters: CharacterList) -> list[list[str]]:
    """The PNG paths of every listed character, in list order, each sorted by name."""
    files, missing = [], []
    for image_set, alphabets in characters.items():
        for alphabet, names in alphabets.items():
            for name in names:
                directory = os.path.join(folder, f"images_{image_set}", alphabet, name)
                pngs = sorted(e.path for e in scan(directory) if e.name.endswith(".png"))
                if not pngs:
                    missing.append(f"images_{image_set}/{alphabet}/{name}")
                files.append(pngs)
    if not files:
        raise DataError(f"the omniglot character list for {folder} names no character")
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise DataError(f"omniglot at {folder} is incomplete: {len(missing)} character(s) of the "
                        f"split have no PNGs: {shown}. Re-extract images_*.zip there.")
    expected = len(files[0])
    for pngs in files:
        if len(pngs) != expected:
            raise DataError(f"omniglot at {folder} is incomplete: {os.path.dirname(pngs[0])} has "
                            f"{len(pngs)} drawings where other characters have {expected}.")
    return files


def listing_digest(folder: Path, files: list[list[str]]) -> str:
    """A hash of the listed files' names and sizes, in order: a cache key that notices a
    changed, added or removed file without reading any image."""
    digest = hashlib.sha256()
    skip = len(str(folder)) + 1
    for pngs in files:
        for path in pngs:
            digest.update(f"{path[skip:]}\t{os.stat(path).st_size}\n".encode())
    return digest.hexdigest()[:16]


def decode(files: list[list[str]], size: int) -> torch.Tensor:
    # One process: PNG decoding here is dominated by per-file overhead, and a pool of two
    # processes measured no faster than this loop on the 2-core reference machine.
    images = np.empty((len(files), len(files[0]), size, size), dtype=np.uint8)
    for c, pngs in enumerate(files):
        for i, path in enumerate(pngs):
            images[c, i] = _read_png(path, size)
    return torch.from_numpy(images).unsqueeze(2)


def _read_png(path: str, size: int) -> np.ndarray:
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("L").resize((size, size), Image.Resampling.BILINEAR))
    except (OSError, SyntaxError) as error:  # Pillow reports some broken PNGs as SyntaxError
        raise DataError(f"omniglot image {path} is unreadable ({error}); re-extract it.") from None
