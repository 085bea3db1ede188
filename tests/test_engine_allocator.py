"""engine.allocator: glibc accepts the raised thresholds and its defaults back."""

from __future__ import annotations

import platform

import pytest

from mtdsl.engine.allocator import _glibc, keep_freed_memory


@pytest.mark.skipif(platform.system() != "Linux" or _glibc() is None, reason="glibc only")
def test_glibc_accepts_the_thresholds_and_the_defaults_back():
    assert keep_freed_memory(False) is True
    assert keep_freed_memory(True) is True

