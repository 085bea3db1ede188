"""Source text and positions: what every diagnostic points into."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Span:
    """A region of a source file; lines and columns are 1-based, end exclusive."""

    file: str
    line: int
    col: int
    end_line: int
    end_col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


@dataclass(frozen=True)
class Source:
    name: str  # as shown to the user: a path, or "--set" for an override
    text: str

    _lines: list[str] | None = field(default=None, init=False, repr=False, compare=False)

    def line(self, n: int) -> str:
        # Lines end at "\n" only, as the parser counts them: str.splitlines() would also
        # break at a form feed or U+2028 and shift every line number after it.
        if self._lines is None:
            object.__setattr__(self, "_lines", self.text.split("\n"))
        lines = self._lines
        return lines[n - 1].removesuffix("\r") if 0 < n <= len(lines) else ""


_SOURCES: dict[str, Source] = {}


def register(source: Source) -> Source:
    """Remember a source so diagnostics can quote it by file name alone."""
    _SOURCES[source.name] = source
    return source


def lookup(name: str) -> Source | None:
    return _SOURCES.get(name)
