"""One document as `mtdsl check` sees it: its workspace (imports included), its compiled
experiments and sweep points, and every diagnostic, computed from the editor's buffers."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..cli.select import Unit, compile_names
from ..compile.compiler import Compiled
from ..errors import SpecError
from ..language import ast
from ..language.diagnostics import Diagnostic
from ..validate.loader import Workspace, load


@dataclass
class Analysis:
    path: Path  # resolved
    workspace: Workspace
    units: list[Unit] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    # Units of experiments that no longer compile, from the last analysis where they did:
    # hover and completion keep their facts while the user is fixing them.
    facts_from_before: list[Unit] = field(default_factory=list)

    @property
    def module(self) -> ast.Module | None:
        return self.workspace.files.get(str(self.path))

    @property
    def compiled(self) -> list[Compiled]:
        """What hover and completion know: this text's experiments, then earlier ones'."""
        return [u.compiled for u in self.units + self.facts_from_before]

    def uses(self, path: Path) -> bool:
        """Whether this document is, or imports, the file at `path`."""
        return str(path.resolve()) in self.workspace.files


def analyse(path: Path, texts: dict[str, str]) -> Analysis:
    """Load and compile a file as `check` does; `texts` are unsaved buffers by resolved path.

    Each experiment compiles on its own, so one broken experiment still leaves the others'
    facts for hover; the diagnostics are check's: its warnings, then its errors, each once."""
    path = path.resolve()
    ws = load(path, texts)
    result = Analysis(path, ws)
    if ws.diagnostics:
        result.diagnostics = list(ws.diagnostics)
        return result
    seen: set[str] = set()
    problems: list[Diagnostic] = []
    for name in list(ws.own) + list(ws.own_sweeps):
        try:
            result.units += compile_names(ws, [name], [])
        except SpecError as e:
            for d in e.diagnostics:
                if d.render() not in seen:
                    seen.add(d.render())
                    problems.append(d)
    warnings: list[Diagnostic] = []
    for w in (w for u in result.units for w in u.compiled.warnings):
        if w not in warnings:
            warnings.append(w)
    result.diagnostics = warnings + problems
    return result
