"""Finished runs on disk: finding them under folders and reading their files.

A run folder is finished when it holds result.json (written last by `mtdsl run`); a folder
with resolved.json but no result.json is a run that is still going or was stopped.
Nothing here imports torch except `Run.tensors()`, so tables stay fast.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mtdsl.errors import RunError

MISSING = object()


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise RunError(f"cannot read {path}: {e.strerror or e}") from e
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RunError(f"{path} is not valid JSON ({e}); was it edited or cut short?") from e


def read_metrics(path: Path) -> list[dict]:
    """The records of a metrics.jsonl, in order; [] when the file does not exist.

    A last line cut short (a crash while writing it) is dropped; a bad line elsewhere is
    an error, since it means the file was damaged rather than interrupted.
    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as e:
            if number == len(lines):
                break
            raise RunError(f"{path}:{number} is not a JSON record ({e})") from e
    return records


def lookup(document: Any, dotted: str) -> Any:
    """`document["a"]["b"]` for "a.b"; MISSING when some part is absent."""
    node = document
    for part in dotted.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return MISSING
    return node


def leaf_paths(document: Any, prefix: str = "") -> dict[str, Any]:
    """Every leaf of nested dicts as {"a.b": value}; lists count as one value."""
    if not isinstance(document, dict):
        return {prefix: document}
    out: dict[str, Any] = {}
    for key, value in document.items():
        out.update(leaf_paths(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


@dataclass
class Run:
    """One finished run folder: result.json, and resolved.json when the run wrote one."""

    path: Path
    result: dict
    resolved: dict | None = None
    _metrics: list[dict] | None = field(default=None, repr=False)

    @property
    def experiment(self) -> str:
        return str(self.result.get("experiment", self.path.name))

    @property
    def seed(self) -> int | None:
        return self.result.get("seed")

    def field(self, dotted: str) -> Any:
        """A resolved-spec field ("model.width"), else a key of resolved.json itself
        ("device", "torch"); MISSING when neither has it."""
        if self.resolved is None:
            return MISSING
        value = lookup(self.resolved.get("spec", {}), dotted)
        return lookup(self.resolved, dotted) if value is MISSING else value

    def metrics(self) -> list[dict]:
        """Every record of metrics.jsonl (training steps and validation lines), read once."""
        if self._metrics is None:
            self._metrics = read_metrics(self.path / "metrics.jsonl")
        return self._metrics

    def training_records(self) -> list[dict]:
        return [r for r in self.metrics() if "valid" not in r]

    def parameters(self) -> list[dict]:
        """resolved.json's parameter table: name, shape, role, inner_lr, init per tensor."""
        return list((self.resolved or {}).get("parameters", []))

    def tensors(self) -> dict:
        """final.pt: "weights/<p>", "learned/<p>" or "learned/<p>:score", "masks/<p>"."""
        import torch

        path = self.path / "final.pt"
        if not path.is_file():
            raise RunError(f"{self.path} has no final.pt; only a finished run has its tensors")
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001 - any unreadable file is the same user problem
            raise RunError(f"cannot read {path}: {e}") from e


def load_run(path: str | Path) -> Run:
    """The finished run in folder `path` (or whose result.json is `path`)."""
    folder = Path(path)
    if folder.name == "result.json":
        folder = folder.parent
    if not folder.is_dir():
        raise RunError(f"{folder} is not a run folder (no such directory)")
    result_file = folder / "result.json"
    if not result_file.is_file():
        why = ("the run has not finished, or was stopped" if (folder / "resolved.json").is_file()
               else "it is not a run folder written by `mtdsl run`")
        raise RunError(f"{folder} has no result.json: {why}")
    result = read_json(result_file)
    if not isinstance(result, dict) or not isinstance(result.get("test"), dict):
        raise RunError(f"{result_file} is not a result of `mtdsl run` (no `test` section)")
    resolved_file = folder / "resolved.json"
    resolved = read_json(resolved_file) if resolved_file.is_file() else None
    return Run(folder, result, resolved)


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
            if path.name != "result.json":
                raise RunError(f"{path} is a file; give run folders, folders of runs, or result.json files")
            results = [path]
        else:
            results = sorted(path.rglob("result.json"))
            unfinished |= {p.parent for p in path.rglob("resolved.json")
                           if not (p.parent / "result.json").exists()}
        for result in results:
            folder = result.parent.resolve()
            if folder not in runs:
                runs[folder] = load_run(result.parent)
    return Found(list(runs.values()), sorted(unfinished))
