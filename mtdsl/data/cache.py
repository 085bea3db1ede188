"""A folder of decoded tensors, so an image dataset is decoded once per machine.

A cache file is only ever a complete decode: it is written to a temporary name in the same
folder and renamed into place, so a crash, a failed decode or a concurrent writer never
leaves a partial file under the final name. The caller puts everything that determines the
content in `name`. Large files are memory-mapped rather than read, so a split bigger than
the machine's memory (tiered-ImageNet) still opens, and opens at once.

A file also carries a CRC-32 of its content, checked on every load of a file small enough to
read whole, so a file damaged after it was written (cut short by a copy, a bad disk sector,
an edit) is noticed, reported in a warning and decoded again instead of silently feeding
wrong images to a run. A memory-mapped file is checked for its structure only (a file cut
short fails to open): reading all of it would make opening it as slow as decoding.
"""

from __future__ import annotations

import os
import tempfile
import warnings
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

# Files above this are memory-mapped on load, and tensors above it are built in a scratch
# file rather than in memory.
LARGE_BYTES = 1 << 30

# What a cache file holds: {FORMAT_KEY: FORMAT, "crc32": content checksum, "value": value}.
FORMAT_KEY, FORMAT = "mtdsl_cache", 2

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
    try:
        stored = _load(path)
    except Damaged as damage:
        warnings.warn(f"the cached {name} in {folder} is damaged ({damage}); decoding it again",
                      stacklevel=2)
        stored = None
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
    try:
        stored = _load(path)
    except Damaged:  # changed under us since the write: the value in hand is the good one
        stored = None
    return value if stored is None else stored


class Damaged(Exception):
    """A cache file that exists but does not hold what was written to it."""


def _load(path: Path) -> Any:
    """The value stored at `path`; None when there is no file; Damaged when it is unreadable
    or its content does not match its checksum."""
    try:
        large = path.stat().st_size > LARGE_BYTES
    except OSError:
        return None
    try:
        stored = torch.load(path, weights_only=True, mmap=large)
    except Exception as error:  # torch reports a cut or garbled zip in many exception types
        raise Damaged(f"unreadable: {_first_sentence(error)}") from None
    if not (isinstance(stored, dict) and stored.get(FORMAT_KEY) == FORMAT and "value" in stored):
        # A bare value is a file of the first format, which had no checksum: used as it is.
        return stored
    if not large and stored.get("crc32") != checksum(stored["value"]):
        raise Damaged("its content does not match its checksum")
    return stored["value"]


def checksum(value: Any) -> int:
    """CRC-32 of a stored value: every tensor's dtype, shape and bytes, and the rest's repr."""
    crc = 0

    def visit(v: Any) -> None:
        nonlocal crc
        if isinstance(v, torch.Tensor):
            crc = zlib.crc32(f"tensor {v.dtype} {tuple(v.shape)};".encode(), crc)
            flat = v.detach().reshape(-1).contiguous()
            if flat.numel():
                crc = zlib.crc32(flat.view(torch.uint8).numpy(), crc)
        elif isinstance(v, dict):
            crc = zlib.crc32(f"dict {len(v)};".encode(), crc)
            for key, item in v.items():
                visit(key)
                visit(item)
        elif isinstance(v, (list, tuple)):
            crc = zlib.crc32(f"{type(v).__name__} {len(v)};".encode(), crc)
            for item in v:
                visit(item)
        else:
            crc = zlib.crc32(f"{v!r};".encode(), crc)

    visit(value)
    return crc


def _first_sentence(error: Exception) -> str:
    # torch follows the reason with paragraphs of advice about checkpoints, not caches
    text = str(error).strip().split("\n")[0].split(". ")[0].rstrip(".")
    return text or type(error).__name__


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
            torch.save({FORMAT_KEY: FORMAT, "crc32": checksum(value), "value": value}, stream)
        os.chmod(temporary, 0o644)  # mkstemp makes it private; a cache is readable like any file
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
