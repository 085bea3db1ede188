"""VGG Flowers 102 (Nilsback & Zisserman 2008): 102 classes of 40 to 258 photos, split
71 / 15 / 16 classes as Meta-Dataset and the Meta-ticket code split it.

Classes are the 1-based labels of imagelabels.mat; photo i is jpg/image_<i:05d>.jpg.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from mtdsl.data import split_lists
from mtdsl.data.download import find_or_fetch
from mtdsl.data.files import (check_md5, few, listing_digest,
                              scan, text_digest)
from mtdsl.data.imageset import Contents, Listing, open_images
from mtdsl.data.locate import data_root
from mtdsl.errors import DataError

DATASET = "vgg_flower"
LABELS = "imagelabels.mat"
LABELS_MD5 = "e0620be6f572b9609742df49c70aed4d"  # as torchvision's Flowers102 lists it


def open_vgg_flower(*, root: str | None, split: str, ways: int | None, shots: int, queries: int,
                    download: bool, size: int, resize: int | None, channels: int, verify: bool):
    return open_images(DATASET, split, lambda: list_flowers(root, split, download, verify),
                       size=size, resize=resize, channels=channels, ways=ways, shots=shots,
                       queries=queries)


def candidate_folders(root: Path) -> list[Path]:
    return [root / "flowers-102", root / "vgg_flower102", root / "vgg_flower"]


def _holds(folder: Path) -> bool:
    return (folder / "jpg").is_dir() and (folder / LABELS).is_file()


def find_flowers(root: Path, download: bool) -> Path:
    return find_or_fetch(DATASET, root, candidate_folders(root), _holds, download,
                         lambda: _download(root), root)


def _download(root: Path) -> None:
    from torchvision.datasets import Flowers102

    Flowers102(str(root), split="train", download=True)


def read_labels(path: Path) -> list[int]:
    try:
        from scipy.io import loadmat
    except ImportError:
        raise DataError(f"{DATASET} needs scipy to read {path}: pip install scipy") from None
    try:
        labels = loadmat(path, squeeze_me=True)["labels"]
    except Exception as error:  # scipy raises ValueError, KeyError or its own types for bad files
        raise DataError(f"{DATASET}: {path} is unreadable ({error}); download it again.") from None
    return [int(label) for label in labels]


def list_flowers(root: str | None, split: str, download: bool, verify: bool) -> Listing:
    wanted = split_lists.packaged_list(DATASET, split)
    folder = find_flowers(data_root(root), download)
    if verify:
        check_md5(DATASET, folder / LABELS, LABELS_MD5)
    labels = read_labels(folder / LABELS)
    by_label: dict[int, list[str]] = {}
    for i, label in enumerate(labels, start=1):
        by_label.setdefault(label, []).append(f"image_{i:05d}.jpg")
    present = {entry.name for entry in scan(folder / "jpg")}
    classes, items, missing = [], [], []
    for name in wanted:
        files = by_label.get(int(name[:3]), [])
        missing += [f for f in files if f not in present]
        classes.append(name)
        items.append([str(folder / "jpg" / f) for f in files])
    if missing:
        raise DataError(f"{DATASET} at {folder} is incomplete: {len(missing)} photos that "
                        f"{LABELS} lists for the {split} split are missing from jpg/: "
                        f"{few(missing)}. Unpack 102flowers.tgz there again.")
    paths = [folder / LABELS] + [p for class_items in items for p in class_items]
    contents = Contents(classes, items, read=Image.open)
    return Listing(DATASET, split, text_digest(listing_digest(folder, paths), wanted), lambda: contents)
