"""Between the compiler's positions (file names as shown, 1-based lines and columns) and the
protocol's (URIs, 0-based), and from a position to the syntax nodes around it."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Iterator

from lsprotocol import types
from pygls.uris import from_fs_path, to_fs_path

from ..language import ast
from ..language.diagnostics import Diagnostic
from ..language.source import Span

SEVERITY = {"error": types.DiagnosticSeverity.Error, "warning": types.DiagnosticSeverity.Warning,
            "note": types.DiagnosticSeverity.Information}


def uri_path(uri: str) -> Path:
    return Path(to_fs_path(uri)).resolve()


def path_uri(path: Path | str) -> str:
    """A span's file is named as the loader shows it (relative to the working folder)."""
    return from_fs_path(str(Path(path).resolve()))


def to_range(span: Span) -> types.Range:
    return types.Range(start=types.Position(line=span.line - 1, character=span.col - 1),
                       end=types.Position(line=span.end_line - 1, character=span.end_col - 1))


def to_location(span: Span) -> types.Location:
    return types.Location(uri=path_uri(span.file), range=to_range(span))


def to_lsp(d: Diagnostic) -> types.Diagnostic:
    """The message as `check` words it; the hint and notes as an editor shows them."""
    start = types.Range(start=types.Position(line=0, character=0), end=types.Position(line=0, character=0))
    message = d.message + (f"\nhelp: {d.hint}" if d.hint else "")
    related = [types.DiagnosticRelatedInformation(location=to_location(s), message=text)
               for text, s in d.notes if s is not None]
    message += "".join(f"\nnote: {text}" for text, s in d.notes if s is None)
    return types.Diagnostic(range=to_range(d.span) if d.span else start, message=message,
                            severity=SEVERITY.get(d.severity, types.DiagnosticSeverity.Error),
                            source="mtdsl", related_information=related or None)


def contains(span: Span, line: int, col: int) -> bool:
    """Whether 1-based (line, col) lies in the span (its end included, where a cursor sits
    after the last character of a word)."""
    return (span.line, span.col) <= (line, col) <= (span.end_line, span.end_col)


def nodes_at(node: ast.Node, line: int, col: int) -> Iterator[ast.Node]:
    """The nodes whose spans hold the position, outermost first."""
    if not contains(node.span, line, col):
        return
    yield node
    for f in dataclasses.fields(node):
        value = getattr(node, f.name)
        for child in value if isinstance(value, list) else [value]:
            if isinstance(child, ast.Node):
                yield from nodes_at(child, line, col)
            elif isinstance(child, list):  # a residual's shortcut: a list of statements
                for c in child:
                    if isinstance(c, ast.Node):
                        yield from nodes_at(c, line, col)


def word_at(text: str, line: int, col: int) -> str:
    """The identifier under a 1-based position, or ""."""
    lines = text.splitlines()
    if not 0 < line <= len(lines):
        return ""
    s, i = lines[line - 1], col - 1
    start = i
    while start > 0 and (s[start - 1].isalnum() or s[start - 1] == "_"):
        start -= 1
    end = i
    while end < len(s) and (s[end].isalnum() or s[end] == "_"):
        end += 1
    return s[start:end]
