"""Text to syntax tree: Lark parses, a Transformer builds `ast` nodes with their spans.

A file reports its first syntax error only: what follows a broken line is guesswork and
would bury the real mistake. Type and semantic errors, found later, are all reported.
"""

from __future__ import annotations

import json
import math
import os
import re
from functools import lru_cache
from importlib import resources
from pathlib import Path

from lark import Lark, Token, Transformer, Tree, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from .. import __version__
from . import ast
from .diagnostics import Diagnostic, clip
from .limits import MAX_BRACKETS, MAX_FILE_BYTES, MAX_INT, MAX_TREE_DEPTH
from .source import Source, Span, register

# Terminal names as a user would call them, for "expected ..." messages.
_TOKEN_WORDS = {
    "NAME": "a name", "NUMBER": "a number", "STRING": "a string", "LBRACE": "`{`",
    "RBRACE": "`}`", "LPAR": "`(`", "RPAR": "`)`", "LSQB": "`[`", "RSQB": "`]`",
    "COLON": "`:`", "COMMA": "`,`", "_ASSIGN": "`:` or `=`", "EQUAL": "`=`", "DOT": "`.`",
    "MINUS": "`-`", "PLUS": "`+`", "STAR": "`*`", "SLASH": "`/`", "__ANON_0": "`->`",
    "MODEL_KIND": "`model` or `block`", "SWEEP_MODE": "`grid` or `zip`", "$END": "end of file",
}


# Comments are skipped by the grammar but kept for `fmt`: the lexer hands each one here.
_comments: list[Token] = []


@lru_cache(maxsize=1)
def _lark() -> Lark:
    grammar = resources.files("mtdsl.language").joinpath("mt.lark").read_text()
    # Building the LALR tables costs ~0.2 s; Lark caches them on disk keyed by the grammar.
    return Lark(grammar, parser="lalr", start=["start", "override"], propagate_positions=True,
                maybe_placeholders=True, lexer_callbacks={"COMMENT": _comments.append},
                cache=_cache_file())


def _cache_file() -> str | bool:
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "mtdsl"
    try:
        base.mkdir(parents=True, exist_ok=True)
        return str(base / f"lark-{__version__}.cache")
    except OSError:
        return True  # Lark's default temp-folder cache


def parse(text: str, name: str) -> tuple[ast.Module | None, list[Diagnostic]]:
    """Parse a whole file. Returns the tree (None if any syntax error) and diagnostics.
    A leading byte-order mark, which some editors write, is not part of the text."""
    text = text.removeprefix("\ufeff")
    source = register(Source(name, text))
    early = _prescan(source)
    if early is not None:
        return None, [early]
    _comments.clear()
    try:
        tree = _lark().parse(text, start="start")
    except UnexpectedInput as err:
        return None, [_syntax_diagnostic(err, source)]
    comments = list(_comments)
    return _build(tree, name, comments)


def parse_override(text: str, name: str = "--set") -> tuple[ast.Assign | None, list[Diagnostic]]:
    source = register(Source(name, text))
    early = _prescan(source)
    if early is not None:
        return None, [early]
    try:
        tree = _lark().parse(text, start="override")
    except UnexpectedInput as err:
        return None, [_syntax_diagnostic(err, source)]
    node, diags = _build(tree, name, [])
    return node, diags


def _build(tree: Tree, name: str, comments: list[Token]):
    deep = _too_deep(tree, name)
    if deep is not None:
        return None, [deep]
    builder = _Build(name)
    node = builder.transform(tree)
    if builder.errors:
        return None, builder.errors
    if isinstance(node, ast.Module):
        node.comments = [ast.Comment(_token_span(name, c), str(c)) for c in comments]
    return node, []


# Strings (closed or not: an unclosed one is Lark's to report) and comments hold brackets
# that do not count.
_BRACKETS = re.compile(r'"(?:[^"\\\n]|\\.)*"?|//[^\n]*|[][(){}]')


def _prescan(source: Source) -> Diagnostic | None:
    """What a quick scan finds before the parser runs: a closing bracket that closes nothing
    open, brackets nested beyond `MAX_BRACKETS`, a file over `MAX_FILE_BYTES`. Cheap on any
    input, so a huge or pathological file is diagnosed at once instead of parsed for minutes."""
    text, stack = source.text, []
    for m in _BRACKETS.finditer(text):
        ch = m.group()
        if ch in "([{":
            stack.append(m.start())
            if len(stack) > MAX_BRACKETS:
                return Diagnostic(f"brackets nested more than {MAX_BRACKETS} deep", _at(source, m.start()),
                                  "flatten the value: give inner parts their own fields and refer to them")
        elif ch in ")]}":
            if not stack:
                return Diagnostic(f"unmatched `{ch}`: no bracket is open here", _at(source, m.start()),
                                  "remove it, or add the opening bracket it closes")
            opener = text[stack[-1]]
            if _CLOSES[ch] != opener:
                at = _at(source, stack[-1])
                return Diagnostic(f"unmatched `{ch}`: the innermost open bracket is the `{opener}` at "
                                  f"{at.line}:{at.col}", _at(source, m.start()),
                                  f"remove it, or close the `{opener}` first")
            stack.pop()
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_FILE_BYTES:
        return Diagnostic(f"`{source.name}` is {size / 1024:,.0f} KiB; a spec file is at most "
                          f"{MAX_FILE_BYTES // 1024} KiB", _at(source, 0),
                          "split it into files that import one another")
    return None


_CLOSES = {")": "(", "]": "[", "}": "{"}


def _at(source: Source, pos: int) -> Span:
    line = source.text.count("\n", 0, pos) + 1
    col = pos - source.text.rfind("\n", 0, pos)
    return Span(source.name, line, col, line, col + 1)


def _too_deep(tree: Tree, name: str) -> Diagnostic | None:
    """The syntax tree's depth, measured without recursion: every later stage (building the
    ast, evaluating, printing, type checking) recurses over it."""
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if node.data in ("path", "name"):  # `a.b.c` nests a section per part
            depth += len(node.children) - 1
        if depth > MAX_TREE_DEPTH:
            meta = node.meta
            span = Span(name, meta.line, meta.column, meta.end_line, meta.end_column) \
                if not getattr(meta, "empty", True) else Span(name, 1, 1, 1, 1)
            return Diagnostic(f"nested more than {MAX_TREE_DEPTH} levels deep", span,
                              "split it up: a long sum, deep brackets or a long dotted name")
        stack.extend((c, depth + 1) for c in node.children if isinstance(c, Tree))
    return None


def _syntax_diagnostic(err: UnexpectedInput, source: Source) -> Diagnostic:
    line = getattr(err, "line", None) or 1
    col = getattr(err, "column", None) or 1
    if isinstance(err, UnexpectedCharacters):
        ch = source.text[err.pos_in_stream] if err.pos_in_stream < len(source.text) else "?"
        span = Span(source.name, line, col, line, col + 1)
        hint = "strings use double quotes" if ch == "'" else None
        shown = f"`{ch}`" if ch.isprintable() else f"U+{ord(ch):04X} (invisible)"
        return Diagnostic(f"unexpected character {shown}", span, hint)
    if isinstance(err, UnexpectedEOF) or (isinstance(err, UnexpectedToken) and err.token.type == "$END"):
        # Point just past the last line of code: trailing comments are not where it broke.
        lines = source.text.split("\n")
        last = max((i for i, l in enumerate(lines, 1) if l.strip() and not l.strip().startswith("//")),
                   default=1)
        end = len(lines[last - 1].rstrip()) + 1
        span = Span(source.name, last, end, last, end + 1)
        expected = _expected(getattr(err, "expected", None) or getattr(err, "accepts", None) or [])
        hint = ("write PATH=VALUE, e.g. outer.iterations=100" if source.name.startswith("--set")
                else "a `{` or `(` may be missing its closing `}` or `)`")
        return Diagnostic("unexpected end of " + ("the override" if source.name.startswith("--set") else "file")
                          + (f", expected {expected}" if expected else ""), span, hint)
    assert isinstance(err, UnexpectedToken)
    tok = err.token
    span = _token_span(source.name, tok)
    expected = _expected(err.accepts or err.expected)
    msg = f"unexpected {_describe(tok)}" + (f", expected {expected}" if expected else "")
    hint = None
    if tok.type == "NAME" and ("COLON" in err.expected or "_ASSIGN" in err.expected):
        hint = "entries are written `key: value`"
    elif tok.type in ("NAME", "STRING", "NUMBER") and "RBRACE" in err.expected:
        hint = "a previous entry may be missing its value or a `,`"
    return Diagnostic(msg, span, hint)


def _describe(tok: Token) -> str:
    if tok.type == "NAME":
        return f"name `{clip(str(tok), 40)}`"
    if tok.type in ("NUMBER", "STRING"):
        return f"{tok.type.lower()} {clip(str(tok), 40)}"
    return f"`{tok}`"


def _expected(names) -> str:
    words = sorted({_TOKEN_WORDS.get(n, f"`{n.lower()}`") for n in names if not n.startswith("__ANON") or n in _TOKEN_WORDS})
    if not words or len(words) > 6:
        return ""
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _token_span(file: str, tok: Token) -> Span:
    return Span(file, tok.line, tok.column, tok.end_line or tok.line,
                tok.end_column or tok.column + len(str(tok)))


def _binop(op: str):
    @v_args(meta=True)
    def build(self, meta, c):
        return ast.BinOp(self._span(meta), op, c[0], c[1])
    return build


class _Build(Transformer):
    """Lark tree -> ast nodes. `meta` carries each rule's position."""

    def __init__(self, file: str):
        super().__init__()
        self.file = file
        self.errors: list[Diagnostic] = []  # literals that are malformed, gathered

    def _string(self, tok: Token) -> str:
        """A string literal's value. Strings are JSON strings: the escapes are JSON's, so
        what `printer.quote` writes reads back the same."""
        try:
            value = json.loads(str(tok), strict=False)
        except json.JSONDecodeError as e:
            bad = str(tok)[e.pos:e.pos + 2]
            span = Span(self.file, tok.line, tok.column + e.pos, tok.line, tok.column + e.pos + len(bad))
            self.errors.append(Diagnostic(
                f"invalid escape `{clip(bad, 8)}` in a string", span,
                'the escapes are \\" \\\\ \\n \\t \\uXXXX; write a backslash as \\\\ '
                '(or a Windows path with /)'))
            return str(tok)[1:-1]
        if any("\ud800" <= c <= "\udfff" for c in value):
            self.errors.append(Diagnostic("a string holds an unpaired surrogate (\\uD800-\\uDFFF)",
                                          self._tspan(tok), "write the character itself"))
            return ""
        return value

    def _number(self, tok: Token) -> int | float:
        """A number literal, held to what the later stages can compute with: int64 integers
        and finite floats that do not round to zero."""
        text = str(tok)
        if text.isdigit():
            if len(text) <= 19 and int(text) <= MAX_INT:
                return int(text)
            self.errors.append(Diagnostic(f"integer {clip(text, 30)} is too large", self._tspan(tok),
                                          f"integers are at most 2**63 - 1 ({MAX_INT})"))
            return 0
        value = float(text)
        mantissa = re.split("[eE]", text)[0]
        if math.isinf(value):
            self.errors.append(Diagnostic(f"number {clip(text, 30)} is too large", self._tspan(tok),
                                          "numbers are finite floats, at most about 1.8e308"))
        elif value == 0 and any(c in "123456789" for c in mantissa):
            self.errors.append(Diagnostic(f"number {clip(text, 30)} is too small: it rounds to 0",
                                          self._tspan(tok), "write 0 if zero is meant"))
        return 0.0 if math.isinf(value) else value

    def _span(self, meta) -> Span:
        if getattr(meta, "empty", True):
            return Span(self.file, 1, 1, 1, 1)
        return Span(self.file, meta.line, meta.column, meta.end_line, meta.end_column)

    def _tspan(self, tok: Token) -> Span:
        return _token_span(self.file, tok)

    # -- file --
    @v_args(meta=True)
    def start(self, meta, items):
        return ast.Module(self._span(meta), list(items))

    @v_args(meta=True)
    def import_stmt(self, meta, c):
        return ast.Import(self._span(meta), self._string(c[0]))

    @v_args(meta=True)
    def experiment(self, meta, c):
        name, parent, *body = c
        return ast.Experiment(self._span(meta), str(name), str(parent) if parent else None, body,
                              name_span=self._tspan(name),
                              extends_span=self._tspan(parent) if parent else None)

    @v_args(meta=True)
    def sweep(self, meta, c):
        name, base, mode, *body = c
        return ast.Sweep(self._span(meta), str(name), str(base), str(mode or "grid"), body,
                         name_span=self._tspan(name), base_span=self._tspan(base))

    # -- bodies --
    @v_args(meta=True)
    def assign(self, meta, c):
        return ast.Assign(self._span(meta), c[0], c[1])

    override = assign

    @v_args(meta=True)
    def section(self, meta, c):
        return ast.Section(self._span(meta), str(c[0]), self._tspan(c[0]), list(c[1:]))

    def targets(self, c):
        return list(c)

    @v_args(meta=True)
    def selector(self, meta, c):
        return ast.Selector(self._span(meta), self._string(c[0]))

    @v_args(meta=True)
    def path(self, meta, c):
        *names, index = c
        return ast.Path(self._span(meta), [str(n) for n in names], index)

    def index(self, c):
        return self._string(c[0])

    # -- values --
    @v_args(meta=True)
    def number(self, meta, c):
        return ast.Number(self._span(meta), self._number(c[0]), str(c[0]))

    @v_args(meta=True)
    def string(self, meta, c):
        return ast.String(self._span(meta), self._string(c[0]))

    @v_args(meta=True)
    def name(self, meta, c):
        return ast.Name(self._span(meta), [str(t) for t in c])

    @v_args(meta=True)
    def call(self, meta, c):
        return ast.Call(self._span(meta), str(c[0]), [a for a in c[1:] if a is not None])

    @v_args(meta=True)
    def arg(self, meta, c):
        return ast.Arg(self._span(meta), str(c[0]) if c[0] is not None else None, c[1])

    @v_args(meta=True)
    def list(self, meta, c):
        return ast.List(self._span(meta), [v for v in c if v is not None])

    @v_args(meta=True)
    def map(self, meta, c):
        return ast.Map(self._span(meta), list(c))

    add = _binop("+")
    sub = _binop("-")
    mul = _binop("*")
    div = _binop("/")
    mod = _binop("%")

    @v_args(meta=True)
    def neg(self, meta, c):
        return ast.Neg(self._span(meta), c[0])

    # -- models --
    @v_args(meta=True)
    def model_def(self, meta, c):
        kind, name, *rest = c
        params = [p for p in rest if isinstance(p, ast.Param)]
        body = [s for s in rest if s is not None and not isinstance(s, ast.Param)]
        return ast.ModelDef(self._span(meta), str(kind), str(name), params, body,
                            name_span=self._tspan(name))

    @v_args(meta=True)
    def param(self, meta, c):
        return ast.Param(self._span(meta), str(c[0]), c[1], c[2])

    @v_args(meta=True)
    def type(self, meta, c):
        return ast.TypeRef(self._span(meta), str(c[0]), [t for t in c[1:] if t is not None])

    def stmts(self, c):
        return list(c)

    @v_args(meta=True)
    def chain(self, meta, c):
        return ast.Chain(self._span(meta), list(c))

    @v_args(meta=True)
    def layer(self, meta, c):
        return ast.Layer(self._span(meta), c[0], c[1])

    @v_args(meta=True)
    def layer_call(self, meta, c):
        return ast.Call(self._span(meta), str(c[0]), [a for a in c[1:] if a is not None])

    @v_args(meta=True)
    def layer_name(self, meta, c):
        return ast.LayerName(self._span(meta), [str(p) if isinstance(p, Token) else p for p in c if p is not None])

    @v_args(meta=True)
    def for_loop(self, meta, c):
        first, second, iterable, *body = c
        index, var = (str(first), str(second)) if second is not None else (None, str(first))
        return ast.ForLoop(self._span(meta), index, var, iterable, body)

    @v_args(meta=True)
    def residual(self, meta, c):
        return ast.Residual(self._span(meta), c[0], c[1])
