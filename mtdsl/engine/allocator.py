"""Keeping freed memory in the process on Linux (glibc), for the CPU engine.

Every inner step allocates per-task tensors of weight size (tens of MB for a meta-batch)
and frees them at the end of the step. By default glibc hands blocks that large back to
the kernel (munmap, or trimming the heap top), so the next step page-faults and zeroes the
same amount of memory again; on a busy or virtualised machine that costs more than the
arithmetic. Raising the mmap and trim thresholds keeps those blocks in the heap for reuse:
the numbers are unchanged, the process's resident size stays at its peak. Measured in
benchmarks/bench_allocator.py; elsewhere (macOS, musl, Windows) this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD_MAX = 32 * 2**20  # glibc's ceiling for M_MMAP_THRESHOLD on 64-bit
TRIM_THRESHOLD = 2**30


def keep_freed_memory(enabled: bool = True) -> bool:
    """Raise (or, with enabled=False, restore glibc's defaults for) the thresholds; True
    where glibc accepted them."""
    libc = _glibc()
    if libc is None:
        return False
    mmap, trim = (MMAP_THRESHOLD_MAX, TRIM_THRESHOLD) if enabled else (128 * 1024, 128 * 1024)
    return bool(libc.mallopt(M_MMAP_THRESHOLD, mmap)) and bool(libc.mallopt(M_TRIM_THRESHOLD, trim))


def _glibc():
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        libc = ctypes.CDLL(name)
        libc.gnu_get_libc_version  # present in glibc only
        return libc
    except (OSError, AttributeError):
        return None
