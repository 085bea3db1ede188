"""The run folder: every file a run leaves behind, written so a crash never corrupts one.

Layout of `runs/<experiment>/<timestamp>/` (or the folder given with `--out`):
  spec.mt, spec.sha256   the spec exactly as run, and its hash (`sha256sum -c` format)
  <name>.json            any JSON document (the plan, the resolved config...)
  metrics.jsonl          one JSON object per line, appended during training
  <name>.pt              tensors (masks, scores), saved on the CPU
  result.json            the final result (schema in mtdsl/report/result.py)

Whole files are replaced atomically (temp file in the same folder, fsync, os.replace), so a
reader sees the old file or the new one, never half of one. metrics.jsonl is appended and
flushed line by line, so a killed process loses no line it had already appended.
"""

from __future__ import annotations

import json
import math
import os
import secrets
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from mtdsl.errors import RunError

TIMESTAMP_FORMAT = "%Y-%m-%dT%H-%M-%S"


def finite_json(obj: Any) -> Any:
    """Copy `obj` with every NaN or infinite float replaced by None (JSON null).

    Strict JSON has no NaN/Infinity; a diverged loss is recorded as null instead of making
    the file unreadable to other tools. Tuples become lists; other values are left alone.
    """
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {key: finite_json(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_json(value) for value in obj]
    return obj


def dumps(obj: Any, indent: int | None = 2) -> str:
    """JSON text of `obj`: finite floats only (see finite_json), keys in insertion order."""
    return json.dumps(finite_json(obj), indent=indent, allow_nan=False, ensure_ascii=False)


def atomic_write(path: Path, write) -> None:
    """Create or replace `path` by calling `write(binary_file)` on a temp file beside it."""
    temp_name = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    # os.open with 0o666 (not tempfile.mkstemp's 0o600) so the result gets the umask's usual
    # permissions and stays readable by whoever reads the other files of the run.
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    fd = os.open(temp_name, flags, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp_name, path)
    except BaseException:
        try:
            os.unlink(temp_name)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    # The rename itself lives in the directory entry; without this a power loss can undo it.
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _check_plain_name(name: str) -> None:
    if not name or name in (".", "..") or "/" in name or os.sep in name:
        raise ValueError(f"not a plain file name: {name!r}")


def _file_name(name: str, extension: str) -> str:
    _check_plain_name(name)
    return name if name.endswith(extension) else name + extension


class RunDir:
    """One run's output folder. Use `RunDir.create(...)`; close it (or use `with`) at the end."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._metrics = None

    @classmethod
    def create(
        cls,
        experiment: str,
        root: str | Path = "runs",
        out: str | Path | None = None,
        now: datetime | None = None,
    ) -> RunDir:
        """Make `out`, or else a new `<root>/<experiment>/<timestamp>[_N]/` folder.

        `out` may exist only if empty, so a run never mixes its files with an older run's.
        The timestamp folder gets a `_2`, `_3`... suffix when two runs start in one second.
        """
        if out is not None:
            return cls(_prepare_out(Path(out)))
        _check_plain_name(experiment)
        parent = Path(root) / experiment
        stamp = (now or datetime.now()).strftime(TIMESTAMP_FORMAT)
        try:
            parent.mkdir(parents=True, exist_ok=True)
            for attempt in range(1, 10_000):
                path = parent / (stamp if attempt == 1 else f"{stamp}_{attempt}")
                try:
                    # mkdir without exist_ok is the atomic claim: two runs never share a folder.
                    path.mkdir()
                    return cls(path)
                except FileExistsError:
                    continue
        except OSError as e:
            raise RunError(f"cannot create the run folder under {parent}: {e.strerror or e}") from e
        raise RunError(f"too many runs named {stamp} in {parent}; remove some or pass --out")

    def write_spec(self, text: str, sha256: str) -> None:
        """Write spec.mt (bytes of `text` in UTF-8, newlines untouched) and spec.sha256."""
        atomic_write(self.path / "spec.mt", lambda f: f.write(text.encode("utf-8")))
        line = f"{sha256}  spec.mt\n"
        atomic_write(self.path / "spec.sha256", lambda f: f.write(line.encode("ascii")))

    def write_json(self, name: str, obj: Any) -> Path:
        """Write `<name>.json` atomically (indent 2, NaN/inf as null); return its path."""
        path = self.path / _file_name(name, ".json")
        text = dumps(obj) + "\n"
        atomic_write(path, lambda f: f.write(text.encode("utf-8")))
        return path

    def write_result(self, result: Mapping[str, Any]) -> Path:
        """Write result.json (see mtdsl.report.result.build_result for the schema)."""
        return self.write_json("result", result)

    def append_metrics(self, record: Mapping[str, Any]) -> None:
        """Append one record as one line of metrics.jsonl and flush it to the OS.

        Flushed, not fsynced: a crashed or killed process loses nothing, and the training
        loop does not wait on the disk (only a power loss could drop the last lines).
        """
        if self._metrics is None:
            self._metrics = open(self.path / "metrics.jsonl", "a", encoding="utf-8")
        self._metrics.write(dumps(record, indent=None) + "\n")
        self._metrics.flush()

    def save_tensors(self, name: str, tensors: Mapping[str, Any]) -> Path:
        """torch.save a dict of tensors to `<name>.pt` atomically, as compact CPU copies.

        CPU so the file loads on a machine without the training GPU; cloned so a tensor that
        is a view does not drag its whole underlying storage into the file.
        """
        import torch  # here, not at the top: the rest of the report stage must not need torch

        path = self.path / _file_name(name, ".pt")
        cpu = {key: t.detach().to("cpu").clone() for key, t in tensors.items()}
        atomic_write(path, lambda f: torch.save(cpu, f))
        return path

    def close(self) -> None:
        if self._metrics is not None:
            self._metrics.close()
            self._metrics = None

    def __enter__(self) -> RunDir:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def _prepare_out(path: Path) -> Path:
    if path.exists() and not path.is_dir():
        raise RunError(f"--out {path} is a file, not a folder; give a new or empty folder")
    if path.is_dir() and any(path.iterdir()):
        raise RunError(
            f"--out {path} already holds files; give a new or empty folder so this run's "
            "results are not mixed with another's"
        )
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RunError(f"cannot create --out {path}: {e.strerror or e}") from e
    return path
