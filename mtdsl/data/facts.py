"""What a dataset is, known without reading a file: its splits and class counts, how many
images each class holds, where its files go and how big they are, how its pixels reach the
model, and which function loads it.

Every dataset states these once, on its spec component in `mtdsl.validate.datasets`; the
registry, the loaders, the missing-data messages and the check-time task limits all read
them from there. Torch-free: `mtdsl check` reads them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Files:
    """Where a dataset's files go under the data root, and how to get them."""

    layout: str  # the on-disk layout the loader reads, paths relative to <root>
    size: str | None  # how big the download (or the files to supply) is; None for a user's own
    obtain: str  # how to get the files: download, mirror, or "your own"


@dataclass(frozen=True)
class Facts:
    """One dataset's facts. `classes` maps a split to its class count where that is known
    without the data (None: only the files can tell). `images_per_class` is set where every
    class of every split holds exactly that many images, so shots + queries can be checked
    before anything is loaded; datasets with classes of different sizes check at load time."""

    title: str  # the name papers use, for messages
    task: Literal["classification", "regression"]
    loader: str  # "module:function" in mtdsl.data, imported only when the data is opened
    classes: dict[str, int] | None = None
    images_per_class: int | None = None
    files: Files | None = None  # None: nothing on disk (sinusoid)
    pixels: str = ""  # how stored pixels become model inputs, for docs/datasets.md and show


# What every image dataset's pixels go through: the stored uint8 values divided by 255.
UNIT_RANGE = "uint8 pixels divided by 255: inputs in [0, 1], no mean/std normalisation"
