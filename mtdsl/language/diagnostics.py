"""Compiler-style diagnostics: `file:line:col: error: message`, the line, a caret, a hint.

Every stage reports through `Diagnostic`, so a user sees parse, type, semantic and
import errors in one format and, with `--format json`, editors get the same data.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Iterable

from .limits import MAX_MESSAGE, QUOTE_WIDTH
from .source import Span, lookup


@dataclass
class Diagnostic:
    message: str
    span: Span | None
    hint: str | None = None
    severity: str = "error"
    # Further places that explain the error, e.g. the import chain or the other selector.
    notes: list[tuple[str, Span | None]] = field(default_factory=list)

    def __post_init__(self):
        # Messages quote the user's text; a megabyte literal must not make a megabyte message.
        self.message = clip(self.message, MAX_MESSAGE)
        self.hint = clip(self.hint, MAX_MESSAGE) if self.hint else self.hint
        self.notes = [(clip(t, MAX_MESSAGE), s) for t, s in self.notes[:8]]

    def render(self) -> str:
        where = f"{self.span}: " if self.span else ""
        lines = [f"{where}{self.severity}: {self.message}"]
        lines += _quote(self.span)
        for text, span in self.notes:
            lines.append(f"  = note: {text}" + (f" ({span})" if span else ""))
        if self.hint:
            lines.append(f"  = help: {self.hint}")
        return "\n".join(lines)

    def to_json(self) -> dict:
        out = {"severity": self.severity, "message": self.message, "hint": self.hint,
               "notes": [{"message": t, "location": _loc(s)} for t, s in self.notes]}
        out.update(_loc(self.span) or {"file": None})
        return out

    def to_github(self) -> str:
        """A GitHub Actions workflow command, which the run's page shows as an annotation on
        the line: `::error file=F,line=L,...,title=T::message` (hint and notes on further lines)."""
        level = {"warning": "warning", "note": "notice"}.get(self.severity, "error")
        props = {"title": f"mtdsl {self.severity}"}
        if self.span:
            s = self.span
            props = {"file": s.file, "line": s.line, "endLine": s.end_line, "col": s.col,
                     **({"endColumn": s.end_col} if s.end_line == s.line else {}), **props}
        text = [self.message] + [f"note: {t}" + (f" ({s})" if s else "") for t, s in self.notes]
        text += [f"help: {self.hint}"] if self.hint else []
        fields = ",".join(f"{k}={_escape(str(v), property=True)}" for k, v in props.items())
        return f"::{level} {fields}::" + _escape("\n".join(text))


def _escape(text: str, property: bool = False) -> str:
    """The escaping GitHub's workflow commands require; properties also escape `:` and `,`."""
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return text.replace(":", "%3A").replace(",", "%2C") if property else text


def _loc(span: Span | None) -> dict | None:
    if span is None:
        return None
    return {"file": span.file, "line": span.line, "column": span.col,
            "end_line": span.end_line, "end_column": span.end_col}


def clip(text: str, limit: int) -> str:
    """`text`, or its start and end around an ellipsis when it is longer than `limit`."""
    if len(text) <= limit:
        return text
    keep = max(1, limit - 5)
    return text[:keep - keep // 3] + " ... " + text[len(text) - keep // 3:]


def _quote(span: Span | None) -> list[str]:
    """The line under a caret: a window of `QUOTE_WIDTH` columns around the caret on a long
    line, with control characters shown as spaces (one column each, so the caret lines up)."""
    if span is None:
        return []
    source = lookup(span.file)
    if source is None:
        return []
    text = source.line(span.line)
    end = span.end_col if span.end_line == span.line else len(text) + 1
    start_col, end = max(1, span.col), max(span.col + 1, end)
    first = max(0, min(start_col - 1 - QUOTE_WIDTH // 3, len(text) - QUOTE_WIDTH))
    window = text[first:first + QUOTE_WIDTH]
    window = "".join(c if c.isprintable() else " " for c in window)
    lead, tail = ("..." if first > 0 else ""), ("..." if first + QUOTE_WIDTH < len(text) else "")
    caret_at = start_col - 1 - first + len(lead)
    carets = "^" * max(1, min(end - start_col, QUOTE_WIDTH - (start_col - 1 - first)))
    width = len(str(span.line))
    pad = " " * width
    return [f"{pad} |", f"{span.line} | {lead}{window}{tail}", f"{pad} | {' ' * caret_at}{carets}"]


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """A hint naming the closest choice, or listing the choices when none is close."""
    choices = sorted(set(choices))
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    if close:
        return f"did you mean `{close[0]}`?"
    if 0 < len(choices) <= 12:
        return "expected one of: " + ", ".join(f"`{c}`" for c in choices)
    return None


def sort_key(d: Diagnostic):
    s = d.span
    return (s.file, s.line, s.col) if s else ("", 0, 0)
