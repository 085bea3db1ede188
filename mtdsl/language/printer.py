"""The canonical layout of .mt text, used by `mtdsl fmt` and for the operative spec a run
stores.

One layout, decided by the syntax tree alone (plus where blank lines and comments were),
so formatting is idempotent and never changes meaning: `parse(format(t)) == parse(t)`.
  * two-space indentation; `key: value` (never `=`); one entry per line;
  * a nested section of at most four single-key entries prints on one line when it fits
    in `WIDTH` columns and holds no comment: `task { ways: 5, shots: 1 }`;
  * a blank line in the source between two entries or items is kept (one at most);
  * comments stay on their line: before an entry, or after it on the same line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from . import ast

WIDTH = 88
INDENT = "  "
_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2, "%": 2}


# ---- values (shared with the operative-spec writer) ------------------------------------------

def value(v: ast.Value) -> str:
    if isinstance(v, ast.Number):
        return v.text or repr(v.value)
    if isinstance(v, ast.String):
        return quote(v.value)
    if isinstance(v, ast.Name):
        return v.dotted
    if isinstance(v, ast.List):
        return "[" + ", ".join(value(i) for i in v.items) + "]"
    if isinstance(v, ast.Call):
        return call(v)
    if isinstance(v, ast.Neg):
        inner = value(v.operand)
        return f"-({inner})" if isinstance(v.operand, ast.BinOp) else f"-{inner}"
    if isinstance(v, ast.BinOp):
        return f"{_operand(v.left, v.op, False)} {v.op} {_operand(v.right, v.op, True)}"
    if isinstance(v, ast.Map):
        inner = ", ".join(_entry_inline(e) for e in v.entries)
        return "{ " + inner + " }" if inner else "{}"
    raise TypeError(type(v).__name__)


def _operand(v: ast.Value, op: str, right: bool) -> str:
    text = value(v)
    if isinstance(v, ast.BinOp):
        mine, theirs = _PRECEDENCE[op], _PRECEDENCE[v.op]
        if theirs < mine or (right and theirs == mine):
            return f"({text})"
    return text


def call(c: ast.Call) -> str:
    args = ", ".join((f"{a.name}: " if a.name else "") + value(a.value) for a in c.args)
    return f"{c.func}({args})"


def quote(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)


def target(t: ast.Target) -> str:
    if isinstance(t, ast.Selector):
        return quote(t.pattern)
    return ".".join(t.parts) + (f"[{quote(t.index)}]" if t.index is not None else "")


def _entry_inline(e: ast.Entry) -> str:
    if isinstance(e, ast.Section):
        return f"{e.name} {{ " + ", ".join(_entry_inline(x) for x in e.entries) + " }"
    return ", ".join(target(t) for t in e.targets) + ": " + value(e.value)


# ---- files ----------------------------------------------------------------------------------

@dataclass
class _Writer:
    comments: list[ast.Comment]
    blank: set[int]  # blank lines of the source
    lines: list[str] = field(default_factory=list)
    last: int = 0  # the source line of the last thing written

    def gap(self, line: int) -> None:
        """Keep one blank line where the source had one before `line`."""
        if self.last and any(self.last < n < line for n in self.blank):
            _ensure_blank(self)

    def take_before(self, line: int, depth: int) -> None:
        """Emit the comments that stand on their own lines before source line `line`."""
        while self.comments and self.comments[0].span.line < line:
            c = self.comments.pop(0)
            self.gap(c.span.line)
            self.lines.append(INDENT * depth + c.text.rstrip())
            self.last = c.span.line
        self.gap(line)

    def trailing(self, line: int) -> str:
        if self.comments and self.comments[0].span.line == line:
            return "  " + self.comments.pop(0).text.rstrip()
        return ""

    def has_comment_within(self, node: ast.Node) -> bool:
        """A comment inside the node; one trailing its last line does not count."""
        s = node.span
        return any(s.line <= c.span.line <= s.end_line
                   and not (c.span.line == s.end_line and c.span.col >= s.end_col) for c in self.comments)

    def emit(self, depth: int, text: str, node: ast.Node | None = None, end: bool = True) -> None:
        line = node.span.end_line if (node is not None and end) else (node.span.line if node else None)
        self.lines.append(INDENT * depth + text + (self.trailing(line) if line else ""))
        if line:
            self.last = line


def format_module(module: ast.Module, source_text: str) -> str:
    w = _Writer(sorted(module.comments, key=lambda c: (c.span.line, c.span.col)), _blank_lines(source_text))
    previous = None
    for item in module.items:
        if previous is not None and not (isinstance(item, ast.Import) and isinstance(previous, ast.Import)):
            _ensure_blank(w)
        w.take_before(item.span.line, 0)
        if isinstance(item, ast.Import):
            w.emit(0, f"import {quote(item.path)}", item)
        elif isinstance(item, (ast.Experiment, ast.Sweep)):
            _body_item(w, item)
        else:
            _model(w, item)
        previous = item
    w.take_before(10**9, 0)
    while w.lines and not w.lines[-1].strip():
        w.lines.pop()
    return "\n".join(w.lines) + "\n"


def _ensure_blank(w: _Writer) -> None:
    if w.lines and w.lines[-1].strip():
        w.lines.append("")


def _blank_lines(text: str) -> set[int]:
    return {i for i, line in enumerate(text.split("\n"), 1) if not line.strip()}


def _body_item(w: _Writer, item) -> None:
    if isinstance(item, ast.Experiment):
        head = f"experiment {item.name}" + (f" extends {item.extends}" if item.extends else "")
    else:
        head = f"sweep {item.name} over {item.base}" + (f" {item.mode}" if item.mode != "grid" else "")
    _entries_block(w, head, item, item.entries, 0)


def _entries_block(w: _Writer, head: str, node: ast.Node, entries: list, depth: int) -> None:
    inline = head + " { " + ", ".join(_entry_inline(e) for e in entries) + " }" if entries else head + " {}"
    # One line only for plain `key: value` entries: `"a", "b": x` inline would read as two.
    simple = all(isinstance(e, ast.Assign) and not isinstance(e.value, ast.Map) and len(e.targets) == 1
                 for e in entries)
    if depth > 0 and simple and len(INDENT * depth + inline) <= WIDTH and len(entries) <= 4 \
            and not w.has_comment_within(node):
        w.emit(depth, inline, node)
        return
    if entries and entries[0].span.line == node.span.line:
        w.lines.append(INDENT * depth + head + " {")  # a comment on this line trails the entry
    else:
        w.emit(depth, head + " {", node, end=False)
    _entries(w, entries, depth + 1)
    w.take_before(node.span.end_line, depth + 1)
    w.emit(depth, "}", node)


def _entries(w: _Writer, entries: list, depth: int) -> None:
    for e in entries:
        w.take_before(e.span.line, depth)
        if isinstance(e, ast.Section):
            _entries_block(w, e.name, e, e.entries, depth)
        elif isinstance(e.value, ast.Map) and (w.has_comment_within(e.value) or len(value(e.value)) > WIDTH):
            head = ", ".join(target(t) for t in e.targets) + ":"
            _entries_block(w, head, e, e.value.entries, depth)
        else:
            w.emit(depth, ", ".join(target(t) for t in e.targets) + ": " + value(e.value), e)


# ---- models -----------------------------------------------------------------------------------

def _model(w: _Writer, m: ast.ModelDef) -> None:
    params = ", ".join(f"{p.name}: {p.type}" + (f" = {value(p.default)}" if p.default is not None else "")
                       for p in m.params)
    w.emit(0, f"{m.kind} {m.name}({params}) {{", m, end=False)
    _stmts(w, m.body, 1)
    w.take_before(m.span.end_line, 1)
    w.emit(0, "}", m)


def _stmts(w: _Writer, stmts: list, depth: int) -> None:
    for s in stmts:
        w.take_before(s.span.line, depth)
        if isinstance(s, ast.Chain):
            w.emit(depth, " -> ".join(_layer(l) for l in s.layers), s)
        elif isinstance(s, ast.ForLoop):
            names = f"{s.index}, {s.var}" if s.index else s.var
            w.emit(depth, f"for {names} in {value(s.iterable)} {{", s, end=False)
            _stmts(w, s.body, depth + 1)
            w.take_before(s.span.end_line, depth + 1)
            w.emit(depth, "}", s)
        else:
            w.emit(depth, "residual {", s, end=False)
            _stmts(w, s.body, depth + 1)
            if s.shortcut is not None:
                w.take_before(s.shortcut[0].span.line if s.shortcut else s.span.end_line, depth + 1)
                w.lines.append(INDENT * depth + "} shortcut {")
                _stmts(w, s.shortcut, depth + 1)
            w.take_before(s.span.end_line, depth + 1)
            w.emit(depth, "}", s)


def _layer(layer: ast.Layer) -> str:
    c = layer.call
    text = call(c) if c.args else c.func
    if layer.name is None:
        return text
    name = "".join(p if isinstance(p, str) else "{" + value(p) + "}" for p in layer.name.parts)
    return f"{name}: {text}"
