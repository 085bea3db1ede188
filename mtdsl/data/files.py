"""Finding a dataset's files, fingerprinting them, and saying what is wrong when they are not
as expected. Torch-free, like everything a lister needs before decoding starts.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from mtdsl.data.locate import DATA_ENV, OFFLINE_ENV
from mtdsl.errors import DataError


def first_holding(candidates: Sequence[Path], holds: Callable[[Path], bool]) -> Path | None:
    return next((folder for folder in candidates if holds(folder)), None)


def not_found(name: str, root: Path, searched: Sequence[Path], failure: str = "") -> DataError:
    """The one message every missing dataset gives, from its declared facts: where we looked,
    where the files go, how big they are, how to get them, and what a download attempt (if
    any) said."""
    from mtdsl.data.registry import declaration

    facts = declaration(name).facts
    files = facts.files
    folders = "\n".join(f"  {folder}" for folder in searched)
    size = f"\nSize: {files.size}" if files.size else ""
    return DataError(
        f"{name} ({facts.title}) data not found. Searched:\n{folders}\n"
        f"Put the files here: {files.layout.replace('<root>', str(root))}{size}\n"
        f"To get it: {files.obtain}{failure}\n"
        f"Or point the spec's data `root` or ${DATA_ENV} at the folder that holds it.")


def download_hint(allowed: bool) -> str:
    """Why no download was tried, when none was."""
    if allowed:
        return ""
    return (f"\nNo download was tried: the dataset sets `download: false` or ${OFFLINE_ENV} "
            f"is set.")


def listing_digest(base: Path, paths: Iterable[str | os.PathLike]) -> str:
    """A hash of the files' names (relative to base) and sizes, in order: a cache key that
    notices a changed, added or removed file without reading any of them."""
    digest = hashlib.sha256()
    for path in paths:
        relative = os.path.relpath(path, base)
        digest.update(f"{relative}\t{os.stat(path).st_size}\n".encode())
    return digest.hexdigest()[:16]


def text_digest(*parts: object) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


def md5_of(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as stream:
        while block := stream.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def check_md5(dataset: str, path: Path, expected: str) -> None:
    """The published checksum of an upstream file, so a truncated or damaged copy is never
    decoded into the cache."""
    actual = md5_of(path)
    if actual != expected:
        raise DataError(
            f"{dataset}: {path} is not the published file (md5 {actual}, expected {expected}): "
            f"a partial or damaged download, or a modified copy. Delete it and download it "
            f"again, or set `verify: false` on the dataset to use this copy as it is.")


def few(names: Sequence[object], shown: int = 5) -> str:
    """'a, b, c and 4 more': a list short enough for one line of an error message."""
    head = ", ".join(str(n) for n in names[:shown])
    return head + (f" and {len(names) - shown} more" if len(names) > shown else "")


def require_classes(dataset: str, where: Path, wanted: Sequence[str], found: Iterable[str],
                    fix: str) -> None:
    """Every class the split lists must be present: a partial extraction or a wrong folder
    shows up here, before anything is decoded or cached."""
    present = set(found)
    missing = [name for name in wanted if name not in present]
    if missing:
        raise DataError(f"{dataset} at {where} is incomplete: {len(missing)} of the split's "
                        f"{len(wanted)} classes have no images: {few(missing)}. {fix}")


def scan(folder: Path) -> list[os.DirEntry]:
    """The entries of a folder, or none if it is missing."""
    try:
        with os.scandir(folder) as entries:
            return list(entries)
    except (FileNotFoundError, NotADirectoryError):
        return []
