"""FGVC-Aircraft (Maji et al. 2013): 100 variants of 100 photos, split 70 / 15 / 15 variants as
the Meta-ticket paper splits them. Every photo of a variant is used (the dataset's own
train/val/test image lists together) and, by default, cropped to its annotated bounding box
first, as Meta-Dataset and the Meta-ticket code do (which also drops the copyright banner).
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from mtdsl.data import split_lists
from mtdsl.data.download import find_or_fetch
from mtdsl.data.files import (few, listing_digest, require_classes, scan, text_digest)
from mtdsl.data.imageset import Contents, Listing, open_images
from mtdsl.data.locate import data_root
from mtdsl.errors import DataError

DATASET = "aircraft"
ARCHIVE = "fgvc-aircraft-2013b"
# Either the union list or its two halves; every archive has both.
VARIANT_LISTS = (("images_variant_trainval.txt", "images_variant_test.txt"),
                 ("images_variant_train.txt", "images_variant_val.txt", "images_variant_test.txt"))
BOXES = "images_box.txt"


def open_aircraft(*, root: str | None, split: str, ways: int | None, shots: int, queries: int,
                  download: bool, size: int, resize: int | None, channels: int, boxes: bool):
    return open_images(DATASET, split, lambda: list_aircraft(root, split, download, boxes),
                       size=size, resize=resize, channels=channels, ways=ways, shots=shots,
                       queries=queries)


def candidate_folders(root: Path) -> list[Path]:
    return [root / ARCHIVE, root / "fgvc_aircraft" / ARCHIVE, root / "aircraft" / ARCHIVE]


def _lists(folder: Path) -> tuple[str, ...] | None:
    for names in VARIANT_LISTS:
        if all((folder / "data" / n).is_file() for n in names):
            return names
    return None


def _holds(folder: Path) -> bool:
    return (folder / "data" / "images").is_dir() and _lists(folder) is not None


def find_aircraft(root: Path, download: bool) -> Path:
    return find_or_fetch(DATASET, root, candidate_folders(root), _holds, download,
                         lambda: _download(root), root)


def _download(root: Path) -> None:
    from torchvision.datasets import FGVCAircraft

    FGVCAircraft(str(root), download=True)


def _pairs(path: Path) -> list[list[str]]:
    """The lines of an FGVC list file, split at the first space: [image, rest]."""
    with open(path, encoding="utf-8") as stream:
        return [line.rstrip("\n").split(" ", 1) for line in stream if line.strip()]


def read_boxes(path: Path) -> dict[str, tuple[int, int, int, int]]:
    if not path.is_file():
        raise DataError(f"{DATASET}: {path} is missing; it holds the bounding boxes. Unpack the "
                        f"archive again, or set `boxes: false` to use whole photos.")
    boxes = {}
    for pair in _pairs(path):
        try:
            left, top, right, bottom = (int(v) for v in pair[1].split())
        except (IndexError, ValueError):
            raise DataError(f"{DATASET}: {path} has a line that is not '<image> <left> <top> "
                            f"<right> <bottom>': {' '.join(pair)!r}") from None
        boxes[pair[0]] = (left, top, right, bottom)
    return boxes


def list_aircraft(root: str | None, split: str, download: bool, boxes: bool) -> Listing:
    wanted = split_lists.packaged_list(DATASET, split)
    folder = find_aircraft(data_root(root), download)
    data = folder / "data"
    list_files = _lists(folder)
    variant_of: dict[str, str] = {}
    for name in list_files:
        for pair in _pairs(data / name):
            if len(pair) != 2:
                raise DataError(f"{DATASET}: {data / name} has a line without a variant: {pair[0]!r}")
            variant_of[pair[0]] = pair[1]
    images_of: dict[str, list[str]] = {}
    for image, variant in sorted(variant_of.items()):
        images_of.setdefault(variant, []).append(image)
    require_classes(DATASET, folder, wanted, images_of, "Unpack the archive there again.")
    present = {entry.name for entry in scan(data / "images")}
    items = [[str(data / "images" / f"{image}.jpg") for image in images_of[v]] for v in wanted]
    missing = [Path(p).name for class_items in items for p in class_items if Path(p).name not in present]
    if missing:
        raise DataError(f"{DATASET} at {folder} is incomplete: {len(missing)} photos of the "
                        f"{split} split are missing from data/images: {few(missing)}. "
                        f"Unpack the archive there again.")
    box_of = None
    if boxes:
        table = read_boxes(data / BOXES)
        unboxed = [Path(p).stem for c in items for p in c if Path(p).stem not in table]
        if unboxed:
            raise DataError(f"{DATASET}: {data / BOXES} has no box for {few(unboxed)}; unpack "
                            f"the archive again, or set `boxes: false`.")
        box_of = lambda path: table[Path(path).stem]  # noqa: E731
    paths = [data / n for n in list_files] + ([data / BOXES] if boxes else [])
    paths += [p for class_items in items for p in class_items]
    contents = Contents(list(wanted), items, read=Image.open, boxes=box_of)
    return Listing(DATASET, split, text_digest(listing_digest(folder, paths), wanted),
                   lambda: contents, variant="box" if boxes else "")
