"""Where datasets live on disk, and where their decoded tensors are cached.

Importing this module must not import torch: `mtdsl check` resolves paths too.
"""

from __future__ import annotations

import os
from pathlib import Path

DATA_ENV = "MTDSL_DATA"
CACHE_ENV = "MTDSL_CACHE"
# Set to 1 (or true/yes) to forbid every download, whatever a spec says: CI, tests, air-gapped
# machines. A missing dataset then fails at once with instructions instead of trying the network.
OFFLINE_ENV = "MTDSL_OFFLINE"
USER_FOLDER = "~/.cache/mtdsl"


def data_root(explicit: str | None) -> Path:
    """The folder that holds one sub-folder per dataset.

    The spec's `root` wins, then $MTDSL_DATA, then the per-user folder ~/.cache/mtdsl.
    """
    for candidate in (explicit, os.environ.get(DATA_ENV)):
        if candidate:
            return Path(candidate).expanduser().absolute()
    return Path(USER_FOLDER).expanduser().absolute()


def cache_root() -> Path:
    """The folder for decoded tensors: $MTDSL_CACHE, else ~/.cache/mtdsl/tensors.

    Never a folder inside the data root: data folders are often shared or read-only, and a
    root-owned process passes every writability check on them. Cache keys hash the source
    listing, so one per-user cache serves any number of data roots.
    """
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return Path(explicit).expanduser().absolute()
    return Path(USER_FOLDER).expanduser().absolute() / "tensors"


def downloads_allowed(download: bool) -> bool:
    """A spec's `download` flag, overruled by $MTDSL_OFFLINE."""
    offline = os.environ.get(OFFLINE_ENV, "").strip().lower() in ("1", "true", "yes", "on")
    return download and not offline
