"""scripts/need-disk.sh: `make venv` stops before installing torch on a disk too full for it,
with the numbers, instead of pip failing halfway with an OSError."""

from __future__ import annotations

import subprocess

from conftest import ROOT


def need(gb: int, path) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(ROOT / "scripts" / "need-disk.sh"), str(gb), str(path)],
                          capture_output=True, text=True, timeout=30)


def test_a_disk_with_room_passes_silently(tmp_path):
    out = need(0, tmp_path)
    assert out.returncode == 0 and out.stderr == ""


def test_a_disk_without_room_stops_with_the_free_and_needed_space(tmp_path):
    out = need(10**9, tmp_path)  # a billion GB: no disk has it
    assert out.returncode == 1
    assert f"the disk that holds {tmp_path} has" in out.stderr
    assert "GB free; installing torch needs about 1000000000 GB" in out.stderr
    assert "make venv" in out.stderr
