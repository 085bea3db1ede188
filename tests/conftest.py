"""Shared test settings: where the real data is, and the repository root."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def real_data_root() -> Path:
    """`$MTDSL_DATA` (CI sets ../shared/data), relative paths taken from the repo root."""
    root = Path(os.environ.get("MTDSL_DATA", "../shared/data"))
    return root if root.is_absolute() else (ROOT / root).resolve()


@pytest.fixture
def omniglot_root() -> Path:
    root = real_data_root()
    if not (root / "omniglot" / "omniglot-py" / "images_background").is_dir():
        pytest.skip(f"real Omniglot not found under {root}")
    return root
