"""A folder of decoded tensors, so an image dataset is decoded once per machine.

A cache file is only ever a complete decode: it is written to a temporary name in the same
folder and renamed into place, so a crash, a failed decode or a concurrent writer never
leaves a partial file under the final name. The caller puts everything that determines the
content in `name`. Large files are memory-mapped rather than read, so a split bigger than
the machine's memory (tiered-ImageNet) still opens, and opens at once.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

# Files above this are memory-mapped on load, and tensors above it are built in a scratch
# file rather than in memory.
LARGE_BYTES = 1 << 30

Allocate = Callable[[tuple[int, ...]], torch.Tensor]


def cached_tensor(folder: Path, name: str, build: Callable[[], torch.Tensor]) -> torch.Tensor:
    """The tensor stored as folder/name, built and stored first if it is missing or unreadable."""
    return cached(folder, name, lambda allocate: build())


def cached(folder: Path, name: str, build: Callable[[Allocate], Any]) -> Any:
    """What folder/name holds (tensors, dicts and lists of them, strings), built and stored
    first if the file is missing or unreadable.

    build(allocate) makes the content; allocate(shape) gives it a uint8 tensor to fill, backed
    by a scratch file when it is large. An exception from build propagates and stores nothing.
    """
    path = folder / name
    stored = _load(path)
    if stored is not None:
        return stored
    with _Scratch(folder) as scratch:
        value = build(scratch.allocate)
        try:
            _write_atomically(value, folder, path)
        except OSError as error:
            warnings.warn(f"could not cache {name} in {folder} ({error}); it will be decoded again "
                          f"next time. Set MTDSL_CACHE to a writable folder to keep it.", stacklevel=2)
            return value
    # The stored copy, memory-mapped if large, lets the scratch file's disk space go.
    stored = _load(path)
    return value if stored is None else stored


def _load(path: Path) -> Any:
    try:
        large = path.stat().st_size > LARGE_BYTES
    except OSError:
        return None
    try:
        return torch.load(path, weights_only=True, mmap=large)
    except Exception:  # a damaged file is rebuilt, not fatal
        return None


class _Scratch:
    """uint8 tensors too large for memory, mapped onto files in the cache folder and deleted
    on exit (a mapping outlives its file's name, so returned tensors stay valid)."""

    def __init__(self, folder: Path):
        self.folder, self.files = folder, []

    def allocate(self, shape: tuple[int, ...]) -> torch.Tensor:
        count = 1
        for n in shape:
            count *= n
        if count <= LARGE_BYTES:
            return torch.empty(shape, dtype=torch.uint8)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            handle, name = tempfile.mkstemp(dir=self.folder, prefix=".scratch.", suffix=".part")
            os.close(handle)
        except OSError:
            return torch.empty(shape, dtype=torch.uint8)
        self.files.append(name)
        return torch.from_file(name, shared=True, size=count, dtype=torch.uint8).view(shape)

    def __enter__(self) -> "_Scratch":
        return self

    def __exit__(self, *exc) -> None:
        for name in self.files:
            try:
                os.unlink(name)
            except OSError:  # still mapped on a system that forbids unlinking it
                pass


def _write_atomically(value: Any, folder: Path, path: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(handle, "wb") as stream:
            torch.save(value, stream)
        os.chmod(temporary, 0o644)  # mkstemp makes it private; a cache is readable like any file
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
