"""Stanford Cars (Krause et al. 2013): 196 car models, split 98 / 49 / 49 as the Meta-ticket
paper splits them. Like the Meta-ticket code, it uses the 8,144 photos of the official train
half (cars_train, labelled by devkit/cars_train_annos.mat), each cropped to its annotated
bounding box by default.

There is no download: the original URLs are gone and torchvision's StanfordCars download
refuses to run, so the user supplies the files in torchvision's layout.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from mtdsl.data import split_lists
from mtdsl.data.files import (few, first_holding, listing_digest, not_found, require_classes,
                              scan, text_digest)
from mtdsl.data.imageset import Contents, Listing, open_images
from mtdsl.data.locate import data_root
from mtdsl.errors import DataError

DATASET = "cars"
META = Path("devkit") / "cars_meta.mat"
ANNOTATIONS = Path("devkit") / "cars_train_annos.mat"
IMAGES = "cars_train"


def open_cars(*, root: str | None, split: str, ways: int | None, shots: int, queries: int,
              size: int, resize: int | None, channels: int, boxes: bool):
    return open_images(DATASET, split, lambda: list_cars(root, split, boxes),
                       size=size, resize=resize, channels=channels, ways=ways, shots=shots,
                       queries=queries)


def candidate_folders(root: Path) -> list[Path]:
    return [root / "stanford_cars", root / "cars"]


def _holds(folder: Path) -> bool:
    return (folder / META).is_file() and (folder / ANNOTATIONS).is_file() and (folder / IMAGES).is_dir()


def _loadmat(path: Path, key: str):
    try:
        from scipy.io import loadmat
    except ImportError:
        raise DataError(f"{DATASET} needs scipy to read {path}: pip install scipy") from None
    try:
        return loadmat(path, squeeze_me=True)[key]
    except Exception as error:  # scipy raises ValueError, KeyError or its own types for bad files
        raise DataError(f"{DATASET}: {path} is unreadable ({error}); unpack car_devkit.tgz "
                        f"again.") from None


def list_cars(root: str | None, split: str, boxes: bool) -> Listing:
    wanted = split_lists.packaged_list(DATASET, split)
    base = data_root(root)
    candidates = candidate_folders(base)
    folder = first_holding(candidates, _holds)
    if folder is None:
        raise not_found(DATASET, base, candidates)
    names = [str(n) for n in _loadmat(folder / META, "class_names").tolist()]
    files_of: dict[str, list[str]] = {}
    box_of_file: dict[str, tuple[int, int, int, int]] = {}
    try:
        for annotation in _loadmat(folder / ANNOTATIONS, "annotations"):
            fname = str(annotation["fname"])
            files_of.setdefault(names[int(annotation["class"]) - 1], []).append(fname)
            box_of_file[fname] = tuple(int(annotation[k]) for k in
                                       ("bbox_x1", "bbox_y1", "bbox_x2", "bbox_y2"))
    except (ValueError, IndexError, TypeError) as error:
        raise DataError(f"{DATASET}: {folder / ANNOTATIONS} is not the devkit's annotation "
                        f"file ({error}); unpack car_devkit.tgz again.") from None
    require_classes(DATASET, folder, wanted, files_of, "Unpack car_devkit.tgz and cars_train.tgz there again.")
    present = {entry.name for entry in scan(folder / IMAGES)}
    items = [[str(folder / IMAGES / f) for f in sorted(files_of[name])] for name in wanted]
    missing = [Path(p).name for c in items for p in c if Path(p).name not in present]
    if missing:
        raise DataError(f"{DATASET} at {folder} is incomplete: {len(missing)} photos of the "
                        f"{split} split are missing from {IMAGES}/: {few(missing)}. "
                        f"Unpack cars_train.tgz there again.")
    box_of = (lambda path: box_of_file[Path(path).name]) if boxes else None
    paths = [folder / META, folder / ANNOTATIONS] + [p for c in items for p in c]
    contents = Contents(list(wanted), items, read=Image.open, boxes=box_of)
    return Listing(DATASET, split, text_digest(listing_digest(folder, paths), wanted),
                   lambda: contents, variant="box" if boxes else "")
