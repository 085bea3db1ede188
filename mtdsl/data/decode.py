"""From image files (or arrays) to uint8 [C, size, size]: the one pipeline every image dataset
except Omniglot goes through.

PIL does every step, with the filters torchvision's transforms apply to a PIL image
(bilinear Resize, CenterCrop's rounding), so a cached tensor matches what a
torchvision/torchmeta pipeline with the same sizes would feed a model.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from mtdsl.data.cache import Allocate
from mtdsl.data.class_images import ClassImages
from mtdsl.errors import DataError

# Part of every cache name: bump it when decoding changes so stale files are never reused.
DECODE_VERSION = "pil-v1"
# Pillow releases the GIL while it decodes and resizes, so threads use every core.
WORKERS = min(8, os.cpu_count() or 1)

Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class Preprocess:
    """size x size images of `channels` channels (1: grayscale, 3: RGB).

    Without `resize` an image is resized straight to size x size, aspect ratio not kept (what
    the Meta-ticket code does for every dataset but CUB). With `resize`, its shorter side is
    resized to `resize`, keeping the aspect ratio, and the central size x size kept
    (torchvision's Resize(resize) then CenterCrop(size)).
    """

    size: int
    channels: int = 3
    resize: int | None = None

    def __post_init__(self):
        if self.size < 1:
            raise DataError(f"image size must be a positive number of pixels, not {self.size}")
        if self.channels not in (1, 3):
            raise DataError(f"images have 1 (grayscale) or 3 (RGB) channels, not {self.channels}")
        if self.resize is not None and self.resize < self.size:
            raise DataError(f"resize ({self.resize}) must be at least size ({self.size}): the "
                            f"centre crop of size x size is taken from the resized image")

    @property
    def key(self) -> str:
        """The part of a cache name that depends on preprocessing."""
        crop = f"-r{self.resize}" if self.resize is not None else ""
        return f"{self.channels}c{self.size}px{crop}-{DECODE_VERSION}"

    def __call__(self, image: Image.Image, box: Box | None = None) -> np.ndarray:
        """uint8 [C, size, size] from any PIL image, cropped to box (left, top, right, bottom)
        first if given."""
        if image.mode not in ("RGB", "L"):
            image = image.convert("RGB")
        image = image.convert("L" if self.channels == 1 else "RGB")
        if box is not None:
            image = image.crop(box)
        if self.resize is None:
            image = image.resize((self.size, self.size), Image.Resampling.BILINEAR)
        else:
            image = _centre(_shorter_side(image, self.resize), self.size)
        pixels = np.asarray(image)
        return pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)


def _shorter_side(image: Image.Image, side: int) -> Image.Image:
    width, height = image.size
    if width <= height:
        size = (side, int(side * height / width))
    else:
        size = (int(side * width / height), side)
    return image.resize(size, Image.Resampling.BILINEAR)


def _centre(image: Image.Image, side: int) -> Image.Image:
    width, height = image.size
    top, left = int(round((height - side) / 2.0)), int(round((width - side) / 2.0))
    return image.crop((left, top, left + side, top + side))


def decode_classes(dataset: str, classes: Sequence[str], items: Sequence[Sequence[Any]],
                   read: Callable[[Any], Image.Image], boxes: Callable[[Any], Box | None] | None,
                   prep: Preprocess, allocate: Allocate) -> ClassImages:
    """Every item of every class through read(item) and prep, into one ClassImages.

    An unreadable image stops the decode with a DataError naming it, so a damaged file is
    never cached.
    """
    counts = [len(class_items) for class_items in items]
    out = allocate((sum(counts), prep.channels, prep.size, prep.size))
    pixels = out.numpy()
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(int)

    def one_class(c: int) -> None:
        for j, item in enumerate(items[c]):
            try:
                with read(item) as image:
                    pixels[starts[c] + j] = prep(image, boxes(item) if boxes else None)
            except (OSError, SyntaxError, ValueError) as error:  # Pillow's ways of saying "broken"
                where = item if isinstance(item, (str, os.PathLike)) else f"image {j} of class {classes[c]}"
                raise DataError(f"{dataset}: {where} is unreadable ({error}). Replace the file "
                                f"(re-extract or re-download the dataset); nothing was cached.") from None

    with ThreadPoolExecutor(WORKERS) as pool:
        list(pool.map(one_class, range(len(items))))
    return ClassImages.from_counts(out, counts, list(classes))
