"""A folder of decoded tensors, so an image dataset is decoded once per machine.

A cache file is only ever a complete decode: it is written to a temporary name in the same
folder and renamed into place, so a crash or a concurrent writer never leaves a partial file
under the final name. The caller puts everything that determines the tensor in `name`.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

import torch


def cached_tensor(folder: Path, name: str, build: Callable[[], torch.Tensor]) -> torch.Tensor:
    """The tensor stored as folder/name, built and stored first if it is missing or unreadable."""
    path = folder / name
    if path.is_file():
        try:
            return torch.load(path, weights_only=True)
        except Exception:  # a damaged file is rebuilt, not fatal
            pass
    tensor = build()
    try:
        _write_atomically(tensor, folder, path)
    except OSError as error:
        warnings.warn(f"could not cache {name} in {folder} ({error}); it will be decoded again "
                      f"next time. Set MTDSL_CACHE to a writable folder to keep it.", stacklevel=2)
    return tensor


def _write_atomically(tensor: torch.Tensor, folder: Path, path: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(handle, "wb") as stream:
            torch.save(tensor, stream)
        os.chmod(temporary, 0o644)  # mkstemp makes it private; a cache is readable like any file
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
