"""Finished runs under folders, for tables and figures over many runs.

A run folder is finished when it holds result.json (written last by `mtdsl run`); a folder
with resolved.json but no result.json is a run that is still going or was stopped. Each
folder is read with `open_run` (report/rundir.py, the run folder's owner).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mtdsl.errors import RunError
from mtdsl.report.rundir import RESOLVED, RESULT, Run, open_run


def leaf_paths(document: Any, prefix: str = "") -> dict[str, Any]:
    """Every leaf of nested dicts as {"a.b": value}; lists count as one value."""
    if not isinstance(document, dict):
        return {prefix: document}
    out: dict[str, Any] = {}
    for key, value in document.items():
        out.update(leaf_paths(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


@dataclass
class Found:
    runs: list[Run]
    unfinished: list[Path]  # folders with resolved.json and no result.json


def find_runs(paths: Iterable[str | Path]) -> Found:
    """Every finished run under `paths` (run folders, result.json files, or folders to
    search), each once, in path order."""
    runs: dict[Path, Run] = {}
    unfinished: set[Path] = set()
    for given in paths:
        path = Path(given)
        if not path.exists():
            raise RunError(f"{path}: no such file or folder")
        if path.is_file():
            if path.name != RESULT:
                raise RunError(f"{path} is a file; give run folders, folders of runs, or {RESULT} files")
            results = [path]
        else:
            results = sorted(path.rglob(RESULT))
            unfinished |= {p.parent for p in path.rglob(RESOLVED)
                           if not (p.parent / RESULT).exists()}
        for result in results:
            folder = result.parent.resolve()
            if folder not in runs:
                runs[folder] = open_run(result.parent)
    return Found(list(runs.values()), sorted(unfinished))
