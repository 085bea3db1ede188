"""A user's own images, one sub-folder per class: `folder(path: "...")` in a spec.

Which classes are meta-train, -validation and -test comes from split lists the user gives
(`splits`: a folder holding train/val/test as .json lists or .txt lines of class names) or
from a seeded random split of the classes by `fractions`; split "all" is every class.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from pathlib import Path

from PIL import Image

from mtdsl.data.facts import SPLITS
from mtdsl.data.files import few, listing_digest, require_classes, scan, text_digest
from mtdsl.data.imageset import Contents, Listing, open_images
from mtdsl.data.tasks import PixelMap
from mtdsl.data.locate import data_root
from mtdsl.errors import DataError

DATASET = "folder"
EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
DEFAULT_FRACTIONS = (0.64, 0.16, 0.20)  # mini-ImageNet's 64 / 16 / 20


def open_folder(*, root: str | None, split: str, ways: int | None, shots: int, queries: int,
                path: str, splits: str | None, fractions: Sequence[float], seed: int, size: int,
                resize: int | None, channels: int, invert: bool, mean, std):
    hint = ("" if split == "all" else
            f'; a folder\'s {split} split is its share by `fractions`, `split: "all"` uses every class')
    return open_images(DATASET, split,
                       lambda: list_folder(root, path, split, splits, tuple(fractions), seed),
                       size=size, resize=resize, channels=channels, ways=ways, shots=shots,
                       queries=queries, pixels=PixelMap(invert, mean, std), hint=hint)


def class_folders(folder: Path) -> dict[str, list[str]]:
    """Image file names by class (sub-folder name), both sorted; classes without images left out."""
    classes = {}
    for entry in sorted(scan(folder), key=lambda e: e.name):
        if entry.is_dir() and not entry.name.startswith("."):
            images = sorted(e.name for e in scan(Path(entry.path))
                            if e.is_file() and e.name.lower().endswith(EXTENSIONS))
            if images:
                classes[entry.name] = images
    return classes


def resolve(root: str | None, path: str, what: str, layout: str) -> Path:
    """The folder a spec's path names: an absolute (or ~) path as it is; a relative one under
    the data root first, then the working directory."""
    given = Path(path).expanduser()
    candidates = [given] if given.is_absolute() else [data_root(root) / given, Path.cwd() / given]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    searched = "\n".join(f"  {c}" for c in candidates)
    raise DataError(f"{what} {path!r} not found. Searched:\n{searched}\nExpected layout: {layout}")


def read_split_list(folder: Path, split: str) -> list[str]:
    """The class names of one split from <folder>/<split>.json (a list) or <split>.txt (lines)."""
    json_file, txt_file = folder / f"{split}.json", folder / f"{split}.txt"
    if json_file.is_file():
        try:
            names = json.loads(json_file.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise DataError(f"{json_file} is not valid JSON ({error})") from None
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise DataError(f"{json_file} must hold a list of class names (strings)")
        return names
    if txt_file.is_file():
        return [line.strip() for line in txt_file.read_text(encoding="utf-8").splitlines() if line.strip()]
    raise DataError(f"no {split} split list in {folder}: expected {json_file.name} (a JSON list "
                    f"of class names) or {txt_file.name} (one class name per line)")


def random_split(classes: Sequence[str], fractions: tuple[float, ...], seed: int) -> dict[str, list[str]]:
    """Classes shuffled by `seed` and cut by `fractions`; train and val counts are rounded,
    test takes the rest, so every class lands in exactly one split."""
    if len(fractions) != 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-6:
        raise DataError(f"fractions must be three non-negative numbers (train, val, test) that "
                        f"sum to 1, not {list(fractions)}")
    order = sorted(classes)
    random.Random(seed).shuffle(order)
    n_train = round(fractions[0] * len(order))
    n_val = min(round(fractions[1] * len(order)), len(order) - n_train)
    return {"train": order[:n_train], "val": order[n_train:n_train + n_val],
            "test": order[n_train + n_val:]}


def split_classes(found: dict[str, list[str]], folder: Path, split: str, splits_dir: Path | None,
                  fractions: tuple[float, ...], seed: int) -> list[str]:
    if split == "all":
        return list(found)
    if splits_dir is None:
        chosen = random_split(list(found), fractions, seed)[split]
    else:
        chosen = read_split_list(splits_dir, split)
        require_classes(f"folder {folder}", folder, chosen, found,
                        f"The {split} list in {splits_dir} names sub-folders that are missing or "
                        f"hold no images.")
        others = [s for s in SPLITS if s != split and
                  ((splits_dir / f"{s}.json").is_file() or (splits_dir / f"{s}.txt").is_file())]
        shared: set[str] = set()
        for other in others:
            shared |= set(chosen) & set(read_split_list(splits_dir, other))
        if shared:
            raise DataError(f"the split lists in {splits_dir} put {few(sorted(shared))} in more than one "
                            f"split; meta-test classes must be unseen in meta-training")
    if not chosen:
        raise DataError(f"folder {folder}: the {split} split has no classes ({len(found)} classes "
                        f"split by fractions {list(fractions)}); add classes or change `fractions`")
    return chosen


def list_folder(root: str | None, path: str, split: str, splits: str | None,
                fractions: tuple[float, ...], seed: int) -> Listing:
    folder = resolve(root, path, "folder dataset",
                     f"<path>/<class name>/<image files> ({', '.join(EXTENSIONS)}), one "
                     f"sub-folder per class")
    found = class_folders(folder)
    if not found:
        raise DataError(f"folder {folder} has no class sub-folders with images "
                        f"({', '.join(EXTENSIONS)})")
    splits_dir = None
    if splits is not None and split != "all":
        splits_dir = resolve(root, splits, "split list folder",
                             "<splits>/{train,val,test}.json (JSON lists of class names) or "
                             ".txt (one class name per line)")
    chosen = split_classes(found, folder, split, splits_dir, fractions, seed)
    items = [[str(folder / name / image) for image in found[name]] for name in chosen]
    paths = [p for class_items in items for p in class_items]
    contents = Contents(chosen, items, read=Image.open)
    return Listing(DATASET, split, text_digest(listing_digest(folder, paths), str(folder), chosen),
                   lambda: contents)
