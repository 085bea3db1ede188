"""The open documents and what the compiler made of them.

Each open document is analysed on every change; the last analysis whose file parsed is
kept beside the current one, so hover and completion keep working while a line is half
typed. A library file (models only) learns shapes from the experiments that import it:
open documents first, then the .mt files in its folder and the folder above.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from .analysis import Analysis, analyse


class Session:
    def __init__(self) -> None:
        self.texts: dict[str, str] = {}  # unsaved buffers by resolved path
        self.current: dict[str, Analysis] = {}
        self.parsed: dict[str, Analysis] = {}  # the last analysis whose file parsed
        self.edits = 0  # counts updates: a neighbour's analysis is stale after any
        self._neighbours: dict[str, tuple[tuple, Analysis]] = {}

    def update(self, path: Path, text: str) -> list[Analysis]:
        """Take a document's new text; the analyses it changes (its own, then each open
        document that imports it)."""
        key = str(path.resolve())
        self.texts[key] = text
        self.edits += 1
        changed = [self._analyse(Path(key))]
        for other in list(self.current):
            if other != key and self.current[other].uses(Path(key)):
                changed.append(self._analyse(Path(other)))
        return changed

    def close(self, path: Path) -> None:
        key = str(path.resolve())
        for table in (self.texts, self.current, self.parsed):
            table.pop(key, None)

    def _analyse(self, path: Path) -> Analysis:
        a = analyse(path, self.texts)
        self.current[str(path)] = a
        if a.module is not None:
            before = self.parsed.get(str(path))
            if before is not None:  # an experiment broken mid-edit keeps its last compiled facts
                have = {u.compiled.resolved.name for u in a.units}
                a.facts_from_before = [u for u in before.units + before.facts_from_before
                                       if u.compiled.resolved.name not in have
                                       and u.compiled.resolved.name in a.workspace.experiments]
            self.parsed[str(path)] = a
        return a

    def analysis(self, path: Path) -> Analysis | None:
        """The freshest analysis of an open document whose file parsed."""
        key = str(path.resolve())
        return self.parsed.get(key)

    def users(self, path: Path) -> Iterator[Analysis]:
        """Analyses whose experiments use the file: itself, open documents, then neighbours."""
        key = str(path.resolve())
        seen = set()
        for k in [key] + [k for k in self.parsed if k != key]:
            a = self.parsed.get(k)
            if a is not None and a.uses(path):
                seen.add(k)
                yield a
        for folder in (path.parent, path.parent.parent):
            for other in sorted(folder.glob("*.mt")):
                k = str(other.resolve())
                if k in seen:
                    continue
                seen.add(k)
                a = self._neighbour(other)
                if a.uses(path) and a.units:
                    yield a

    def _neighbour(self, path: Path) -> Analysis:
        """A file that is not open, analysed again only when it or an open buffer changed."""
        key = str(path.resolve())
        stamp = (path.stat().st_mtime_ns, self.edits)
        cached = self._neighbours.get(key)
        if cached is None or cached[0] != stamp:
            cached = (stamp, analyse(path, self.texts))
            self._neighbours[key] = cached
        return cached[1]
