"""mini-ImageNet (Vinyals et al. 2016; Ravi & Larochelle split, 64 / 16 / 20 classes of 600)
and tiered-ImageNet (Ren et al. 2018; 351 / 97 / 160 classes), both "mini-imagenet" and
"tiered-imagenet" in most papers.

Read from the pickle files learn2learn downloads, or from a folder per split holding one
sub-folder per class. The split is in the files; the class count of each split is checked
against the published one, so a partial or mixed-up file is caught before decoding.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from mtdsl.data.download import attempt
from mtdsl.data.files import download_hint, first_holding, listing_digest, not_found, text_digest
from mtdsl.data.folder import class_folders
from mtdsl.data.imageset import Contents, Listing, open_images
from mtdsl.data.locate import data_root, downloads_allowed
from mtdsl.data.pickles import load_pickle
from mtdsl.errors import DataError

# learn2learn names the validation split "validation" in its modes and mini-ImageNet files.
L2L_MODE = {"train": "train", "val": "validation", "test": "test"}


def open_mini_imagenet(*, root: str | None, split: str, ways: int | None, shots: int, queries: int,
                       download: bool, size: int, resize: int | None, channels: int):
    return open_images("mini_imagenet", split, lambda: list_mini(root, split, download),
                       size=size, resize=resize, channels=channels, ways=ways, shots=shots,
                       queries=queries)


def open_tiered_imagenet(*, root: str | None, split: str, ways: int | None, shots: int,
                         queries: int, download: bool, size: int, resize: int | None,
                         channels: int):
    return open_images("tiered_imagenet", split, lambda: list_tiered(root, split, download),
                       size=size, resize=resize, channels=channels, ways=ways, shots=shots,
                       queries=queries)


# ---- finding the files ---------------------------------------------------------------------

def _find(dataset: str, split: str, root: Path, pickle_folders: list[Path],
          holds: Callable[[Path], bool], fetch: Callable[[], object],
          download: bool) -> tuple[str, Path]:
    """("pickle", folder) or ("folder", <split folder>), downloading the pickles if allowed."""
    split_folders = [root / dataset / split, root / dataset.replace("_", "-") / split]
    found = first_holding(pickle_folders, holds)
    if found is not None:
        return "pickle", found
    found = first_holding(split_folders, lambda f: bool(class_folders(f)))
    if found is not None:
        return "folder", found
    allowed = downloads_allowed(download)
    failure = download_hint(allowed)
    if allowed:
        failure = attempt(pickle_folders[0], fetch)
        if holds(pickle_folders[0]):
            return "pickle", pickle_folders[0]
    raise not_found(dataset, root, pickle_folders + split_folders, failure)


def _check_count(dataset: str, split: str, where: Path, count: int) -> None:
    from mtdsl.data.registry import declaration

    expected = declaration(dataset).facts.classes[split]
    if count != expected:
        raise DataError(f"{dataset}: {where} holds {count} classes, but the {split} split has "
                        f"{expected}: a partial file, or another split's. Replace it.")


def _folder_listing(dataset: str, split: str, folder: Path) -> Listing:
    found = class_folders(folder)
    _check_count(dataset, split, folder, len(found))
    classes = list(found)
    items = [[str(folder / name / image) for image in found[name]] for name in classes]
    contents = Contents(classes, items, read=Image.open)
    return Listing(dataset, split, text_digest(listing_digest(folder, [p for c in items for p in c])),
                   lambda: contents)


# ---- mini-ImageNet -------------------------------------------------------------------------

MINI_FILE = "mini-imagenet-cache-{mode}.pkl"


def list_mini(root: str | None, split: str, download: bool) -> Listing:
    dataset = "mini_imagenet"
    base = data_root(root)
    name = MINI_FILE.format(mode=L2L_MODE[split])
    target = base / "mini-imagenet"

    def fetch():
        from learn2learn.vision.datasets import MiniImagenet

        MiniImagenet(str(target), mode=L2L_MODE[split], download=True)

    kind, folder = _find(dataset, split, base, [target, base / "mini_imagenet", base],
                         lambda f: (f / name).is_file(), fetch, download)
    if kind == "folder":
        return _folder_listing(dataset, split, folder)
    path = folder / name
    return Listing(dataset, split, text_digest(listing_digest(folder, [path])),
                   lambda: read_mini(dataset, split, path))


def read_mini(dataset: str, split: str, path: Path) -> Contents:
    content = load_pickle(path, dataset)
    if not isinstance(content, dict) or not {"image_data", "class_dict"} <= set(content):
        raise DataError(f"{dataset}: {path} is not a learn2learn mini-ImageNet pickle (it should "
                        f"hold image_data and class_dict); replace it.")
    images = np.asarray(content["image_data"])
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise DataError(f"{dataset}: {path} holds image_data {images.dtype} {images.shape}, not "
                        f"uint8 [N, H, W, 3]; replace it.")
    class_dict = content["class_dict"]
    _check_count(dataset, split, path, len(class_dict))
    classes = sorted(class_dict)
    items = [sorted(int(i) for i in class_dict[c]) for c in classes]
    if any(i < 0 or i >= len(images) for c in items for i in c):
        raise DataError(f"{dataset}: {path} indexes images it does not hold; replace it.")
    return Contents(classes, items, read=lambda i: Image.fromarray(images[i]))


# ---- tiered-ImageNet -----------------------------------------------------------------------

TIERED_FILES = ("{split}_images_png.pkl", "{split}_labels.pkl")


def list_tiered(root: str | None, split: str, download: bool) -> Listing:
    dataset = "tiered_imagenet"
    base = data_root(root)
    names = [f.format(split=split) for f in TIERED_FILES]

    def fetch():
        from learn2learn.vision.datasets import TieredImagenet

        TieredImagenet(str(base), mode=L2L_MODE[split], download=True)

    kind, folder = _find(dataset, split, base, [base / "tiered-imagenet", base / "tiered_imagenet"],
                         lambda f: all((f / n).is_file() for n in names), fetch, download)
    if kind == "folder":
        return _folder_listing(dataset, split, folder)
    paths = [folder / n for n in names]
    return Listing(dataset, split, text_digest(listing_digest(folder, paths)),
                   lambda: read_tiered(dataset, split, *paths))


def read_tiered(dataset: str, split: str, images_path: Path, labels_path: Path) -> Contents:
    images = load_pickle(images_path, dataset)
    labels = load_pickle(labels_path, dataset)
    if not isinstance(labels, dict) or "label_specific" not in labels:
        raise DataError(f"{dataset}: {labels_path} has no label_specific; replace it.")
    specific = np.asarray(labels["label_specific"]).astype(np.int64)
    if len(specific) != len(images):
        raise DataError(f"{dataset}: {images_path.parent} holds {len(images)} images but "
                        f"{len(specific)} labels for the {split} split: a partial download. "
                        f"Replace both files.")
    ids = np.unique(specific)
    _check_count(dataset, split, labels_path, len(ids))
    label_names = labels.get("label_specific_str")
    classes = [str(label_names[i]) if label_names is not None and i < len(label_names) else str(i)
               for i in ids]
    items = [np.flatnonzero(specific == i).tolist() for i in ids]
    return Contents(classes, items, read=lambda i: Image.open(io.BytesIO(_bytes(images[i]))))


def _bytes(encoded) -> bytes:
    """PNG bytes, however the pickle stored them: bytes, a uint8 array, or (Python 2 pickles
    read with latin1) a str."""
    if isinstance(encoded, str):
        return encoded.encode("latin1")
    return encoded if isinstance(encoded, bytes) else np.asarray(encoded, dtype=np.uint8).tobytes()
