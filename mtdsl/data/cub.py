"""CUB-200-2011 birds (Wah et al. 2011): 200 species of 41 to 60 photos, split 100 / 50 / 50 as
Hilliard et al. (2018) and torchmeta split them. Every photo of a species is used, uncropped;
the default preprocessing is the Meta-ticket code's: shorter side to 126, centre 84 x 84.
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

DATASET = "cub"
FOLDER = "CUB_200_2011"
INDEX = "images.txt"  # "<id> <species>/<photo>.jpg" for every photo of the release


def open_cub(*, root: str | None, split: str, ways: int | None, shots: int, queries: int,
             download: bool, size: int, resize: int | None, channels: int):
    return open_images(DATASET, split, lambda: list_cub(root, split, download),
                       size=size, resize=resize, channels=channels, ways=ways, shots=shots,
                       queries=queries)


def candidate_folders(root: Path) -> list[Path]:
    return [root / "cubirds200" / FOLDER, root / "cub" / FOLDER, root / FOLDER]


def _holds(folder: Path) -> bool:
    return (folder / "images").is_dir()


def find_cub(root: Path, download: bool) -> Path:
    return find_or_fetch(DATASET, root, candidate_folders(root), _holds, download,
                         lambda: _download(root), root)


def _download(root: Path) -> None:
    from learn2learn.vision.datasets import CUBirds200

    CUBirds200(str(root), mode="train", download=True)


def _indexed(folder: Path) -> dict[str, list[str]] | None:
    """Photos by species as the release's images.txt lists them, if it is there."""
    index = folder / INDEX
    if not index.is_file():
        return None
    photos: dict[str, list[str]] = {}
    with open(index, encoding="utf-8") as stream:
        for line in stream:
            if line.strip():
                relative = line.split(maxsplit=1)[1].strip()
                photos.setdefault(relative.split("/", 1)[0], []).append(relative.split("/", 1)[1])
    return photos


def list_cub(root: str | None, split: str, download: bool) -> Listing:
    wanted = split_lists.packaged_list(DATASET, split)
    folder = find_cub(data_root(root), download)
    images = folder / "images"
    on_disk = {species: sorted(e.name for e in scan(images / species) if e.name.lower().endswith(".jpg"))
               for species in wanted}
    on_disk = {species: photos for species, photos in on_disk.items() if photos}
    require_classes(DATASET, folder, wanted, on_disk, "Unpack CUB_200_2011.tgz there again.")
    listed = _indexed(folder)
    if listed is not None:
        present = {species: set(photos) for species, photos in on_disk.items()}
        missing = [f"{s}/{p}" for s in wanted for p in listed.get(s, []) if p not in present[s]]
        if missing:
            raise DataError(f"{DATASET} at {folder} is incomplete: {len(missing)} photos that "
                            f"{INDEX} lists are missing: {few(missing)}. Unpack "
                            f"CUB_200_2011.tgz there again.")
    items = [[str(images / species / photo) for photo in on_disk[species]] for species in wanted]
    paths = ([folder / INDEX] if listed is not None else []) + [p for c in items for p in c]
    contents = Contents(list(wanted), items, read=Image.open)
    return Listing(DATASET, split, text_digest(listing_digest(folder, paths), wanted), lambda: contents)
