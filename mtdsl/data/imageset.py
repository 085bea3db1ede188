"""What every image dataset shares once its files are found: a Listing of one split, decoded
once into the cache, opened as classification tasks.

A dataset module's only job is to turn its on-disk layout into a Listing (a fingerprint of
the files, and how to read the split's classes, their items and how to open an item) and to
say clearly when the files are not there or not complete.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from PIL import Image

from mtdsl.data.cache import cached
from mtdsl.data.class_images import ClassImages
from mtdsl.data.decode import Box, Preprocess, decode_classes
from mtdsl.data.files import few
from mtdsl.data.locate import cache_root
from mtdsl.data.tasks import ClassificationTasks, PixelMap
from mtdsl.errors import DataError


@dataclass
class Contents:
    """The classes of a split, in a fixed order, the items of each, and how to open an item
    (and, optionally, the box to crop it to)."""

    classes: list[str]
    items: Sequence[Sequence[Any]]
    read: Callable[[Any], Image.Image]
    boxes: Callable[[Any], Box | None] | None = None


@dataclass
class Listing:
    """One split of a dataset, found and fingerprinted before anything is read or decoded.

    `digest` fingerprints the source files and the split's class list; with the dataset,
    split, `variant` and preprocessing it names the cache file, so a changed file or list is
    decoded anew. `contents()` does the reading (parsing a multi-gigabyte pickle, for
    the ImageNet subsets), so a cache hit never pays for it.
    """

    dataset: str
    split: str
    digest: str
    contents: Callable[[], Contents]
    variant: str = ""  # what else changes the pixels, e.g. "box" for box-cropped photos


def load_split(listing: Listing, prep: Preprocess) -> ClassImages:
    """The split's images, decoded now or read (memory-mapped if large) from the cache."""
    variant = f"-{listing.variant}" if listing.variant else ""
    name = f"{listing.dataset}-{listing.split}-{prep.key}{variant}-{listing.digest}.pt"

    def build(allocate):
        found = listing.contents()
        empty = [name for name, items in zip(found.classes, found.items) if not items]
        if empty:
            raise DataError(f"{listing.dataset} {listing.split}: {len(empty)} class(es) have no "
                            f"images: {few(empty)}")
        return decode_classes(listing.dataset, found.classes, found.items, found.read,
                              found.boxes, prep, allocate).state()

    return ClassImages.from_state(cached(cache_root(), name, build))


def open_images(dataset: str, split: str, list_split: Callable[[], Listing], *, size: int,
                resize: int | None, channels: int, ways: int | None, shots: int, queries: int,
                pixels: PixelMap | None = None, hint: str = "") -> ClassificationTasks:
    """Tasks of one split: options checked first, then files found, then decoded or cached."""
    if ways is None:
        raise DataError(f"{dataset} is a classification dataset: the task must set `ways`")
    prep = Preprocess(size, channels, resize)
    images = load_split(list_split(), prep)
    return ClassificationTasks(images.images, ways, shots, queries, offsets=images.offsets,
                               name=f"{dataset} {split}", classes=images.classes, pixels=pixels,
                               hint=hint)
