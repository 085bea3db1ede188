"""CIFAR-FS (Bertinetto et al. 2019) and FC100 (Oreshkin et al. 2018): class splits of CIFAR-100,
read from its python version (the `train`, `test` and `meta` pickles), 600 images per class
(its train and test images together, as torchmeta's loaders use them).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from mtdsl.data import split_lists
from mtdsl.data.download import find_or_fetch
from mtdsl.data.files import check_md5, listing_digest, text_digest
from mtdsl.data.imageset import Contents, Listing, open_images
from mtdsl.data.locate import data_root
from mtdsl.data.pickles import load_pickle
from mtdsl.errors import DataError

FILES = ("train", "test", "meta")
# The published checksums of the unpacked files, as torchvision's CIFAR100 lists them.
MD5 = {"train": "16019d7e3df5f24257cddd939b257f8d", "test": "f0ef6b0ae62326f3e7ffdfab6717acfc",
       "meta": "7973b15100ade9c7d40fb424638fde48"}


def open_cifar_fs(*, root: str | None, split: str, ways: int | None, shots: int, queries: int,
                  download: bool, size: int, resize: int | None, channels: int, verify: bool):
    return open_images("cifar_fs", split, lambda: list_cifar("cifar_fs", root, split, download, verify),
                       size=size, resize=resize, channels=channels, ways=ways, shots=shots,
                       queries=queries)


def open_fc100(*, root: str | None, split: str, ways: int | None, shots: int, queries: int,
               download: bool, size: int, resize: int | None, channels: int, verify: bool):
    return open_images("fc100", split, lambda: list_cifar("fc100", root, split, download, verify),
                       size=size, resize=resize, channels=channels, ways=ways, shots=shots,
                       queries=queries)


def candidate_folders(root: Path) -> list[Path]:
    return [root / "cifar100" / "cifar-100-python", root / "cifar-100-python"]


def _holds(folder: Path) -> bool:
    return all((folder / name).is_file() for name in FILES)


def find_cifar100(dataset: str, root: Path, download: bool) -> Path:
    candidates = candidate_folders(root)
    target = candidates[0].parent
    return find_or_fetch(dataset, root, candidates, _holds, download, lambda: _download(target), target)


def _download(target: Path) -> None:
    from torchvision.datasets import CIFAR100  # slow to import; only a download needs it

    CIFAR100(str(target), train=True, download=True)


def list_cifar(dataset: str, root: str | None, split: str, download: bool, verify: bool) -> Listing:
    wanted = split_lists.packaged_list(dataset, split)
    folder = find_cifar100(dataset, data_root(root), download)
    digest = text_digest(listing_digest(folder, [folder / n for n in FILES]), wanted)
    return Listing(dataset, split, digest, lambda: read_cifar(dataset, folder, wanted, verify))


def read_cifar(dataset: str, folder: Path, wanted: list, verify: bool) -> Contents:
    """The split's classes from the pickles, checked against the published checksums first."""
    if verify:
        for name in FILES:
            check_md5(dataset, folder / name, MD5[name])
    meta = _part(load_pickle(folder / "meta", dataset), ("fine_label_names", "coarse_label_names"),
                 folder / "meta", dataset)
    fine_names, coarse_names = list(meta["fine_label_names"]), list(meta["coarse_label_names"])
    pixels, fine, coarse = [], [], []
    for name in ("train", "test"):
        part = _part(load_pickle(folder / name, dataset), ("data", "fine_labels", "coarse_labels"),
                     folder / name, dataset)
        pixels.append(np.asarray(part["data"], dtype=np.uint8))
        fine += list(part["fine_labels"])
        coarse += list(part["coarse_labels"])
    data = np.concatenate(pixels).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    fine, coarse = np.asarray(fine), np.asarray(coarse)
    if len(fine) != len(data) or len(coarse) != len(data):
        raise DataError(f"{dataset}: {folder} holds {len(data)} images but {len(fine)} labels; "
                        f"re-download CIFAR-100.")
    classes = _split_classes(dataset, wanted, fine_names, coarse_names, fine, coarse, folder)
    items = [np.flatnonzero(fine == fine_names.index(name)).tolist() for name in classes]
    return Contents(classes, items, read=lambda i: Image.fromarray(data[i]))


def _split_classes(dataset, wanted, fine_names, coarse_names, fine, coarse, folder) -> list[str]:
    """The fine classes of the split: CIFAR-FS lists them, FC100 lists superclasses."""
    if dataset == "fc100":
        missing = [s for s in wanted if s not in coarse_names]
        if missing:
            raise DataError(f"fc100: CIFAR-100's meta at {folder} has no superclass "
                            f"{', '.join(missing)}; re-download CIFAR-100.")
        classes = []
        for superclass in wanted:
            members = sorted(set(fine[coarse == coarse_names.index(superclass)].tolist()))
            classes += [fine_names[f] for f in members]
        per = split_lists.FC100_CLASSES_PER_SUPERCLASS
        if len(classes) != per * len(wanted):
            raise DataError(f"fc100: CIFAR-100 at {folder} holds {len(classes)} classes in the "
                            f"superclasses {', '.join(wanted)}, not {per} each; re-download it.")
        return classes
    classes = [name for _, name in wanted]
    missing = [c for c in classes if c not in fine_names]
    if missing:
        raise DataError(f"cifar_fs: CIFAR-100's meta at {folder} has no class "
                        f"{', '.join(missing)}; re-download CIFAR-100.")
    return classes


def _part(content, keys: tuple[str, ...], path: Path, dataset: str) -> dict:
    if not isinstance(content, dict) or any(k not in content for k in keys):
        raise DataError(f"{dataset}: {path} is not a CIFAR-100 python file (it should hold "
                        f"{', '.join(keys)}); re-download CIFAR-100.")
    return content
