"""What each image dataset is, known without reading an image: the class splits that ship
with the package, how many classes each split has, and the default image size.

Torch-free, so `mtdsl check` can give input shapes and class counts without loading data.
The spec components in `mtdsl.validate.datasets` repeat these defaults where users read them;
a test keeps the two equal.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from mtdsl.errors import DataError

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class ImageDefaults:
    size: int  # images are size x size
    resize: int | None = None  # shorter side resized to this first, then centre-cropped
    channels: int = 3


DEFAULTS = {
    # 32x32: what the paper's MLPs see (CIFAR-FS, VGG Flowers, Aircraft); 84x84 for its CNNs.
    "cifar_fs": ImageDefaults(32),
    "fc100": ImageDefaults(32),
    "vgg_flower": ImageDefaults(32),
    "aircraft": ImageDefaults(32),
    "cars": ImageDefaults(84),
    # Resize(126) then CenterCrop(84), the Meta-ticket code's CUB pipeline.
    "cub": ImageDefaults(84, resize=126),
    "mini_imagenet": ImageDefaults(84),
    "tiered_imagenet": ImageDefaults(84),
    "folder": ImageDefaults(84),
}

# Splits that live in the data files themselves, not in a packaged list.
KNOWN_COUNTS = {
    "mini_imagenet": {"train": 64, "val": 16, "test": 20},
    "tiered_imagenet": {"train": 351, "val": 97, "test": 160},
}

FC100_CLASSES_PER_SUPERCLASS = 5


def check_split(dataset: str, split: str) -> None:
    if split not in SPLITS:
        raise DataError(f"{dataset} has no split {split!r}; known splits: {', '.join(SPLITS)}")


@lru_cache(maxsize=None)
def packaged_list(dataset: str, split: str) -> list:
    """The classes of one split as shipped in mtdsl/data/splits/<dataset>/<split>.json."""
    check_split(dataset, split)
    text = resources.files("mtdsl.data").joinpath("splits", dataset, f"{split}.json").read_text()
    return json.loads(text)


def class_count(dataset: str, split: str) -> int:
    check_split(dataset, split)
    if dataset in KNOWN_COUNTS:
        return KNOWN_COUNTS[dataset][split]
    listed = len(packaged_list(dataset, split))
    return listed * FC100_CLASSES_PER_SUPERCLASS if dataset == "fc100" else listed


def input_shape(dataset: str, size: int | None = None, channels: int | None = None) -> tuple[int, int, int]:
    defaults = DEFAULTS[dataset]
    side = defaults.size if size is None else size
    return (defaults.channels if channels is None else channels, side, side)
