"""Checkpoints: everything a run needs to continue exactly where it stopped.

Written atomically (temp file + rename), so a kill at any moment leaves either the previous
checkpoint or the new one, never half of one.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..report.rundir import atomic_write

NAME = "checkpoint.pt"


def save(folder: Path, state: dict) -> None:
    atomic_write(folder / NAME, lambda f: torch.save(state, f))


def load(folder: Path) -> dict | None:
    path = folder / NAME
    if not path.exists():
        return None
    return torch.load(path, map_location="cpu", weights_only=False)
