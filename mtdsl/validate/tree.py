"""The located configuration tree: experiment bodies merged along `extends` and `--set`.

Merging follows two rules, one for each kind of entry:
  `name { ... }`  a section merges into the inherited one, entry by entry;
  `key: value`    an assignment replaces what was there (lists and `{ ... }` maps whole).
Selector maps (`params`, `inner.lr`) are sections keyed by selectors: `lr: 0.4` is short
for `lr["**"]: 0.4`, so a child sets one selector without restating the others.

Values stay unevaluated syntax until the whole tree is merged, so a reference such as
`classes: task.ways` sees the child's `task`, not the parent's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..language import ast
from ..language.source import Span
from .evaluate import FUNCTIONS, CallValue, EvalError, Symbol, evaluate


@dataclass
class Slot:
    value: Any  # ast value, or Tree
    span: Span  # the value's span
    key_span: Span
    origin: str  # the experiment (or "--set") that wrote it


@dataclass
class Tree:
    entries: dict[str, Slot] = field(default_factory=dict)
    selectors: bool = False
    # Set when the tree holds a call's keyword arguments, e.g. `optimizer: sgd(lr: 10)`:
    # (function name, positional argument syntax, span of the call).
    call: tuple[str, list[ast.Arg], Span] | None = None


class MergeError(EvalError):
    pass


def from_call(call: ast.Call, origin: str) -> Tree:
    t = Tree(call=(call.func, call.positional, call.span))
    for a in call.keywords:
        key = Span(a.span.file, a.span.line, a.span.col, a.span.line, a.span.col + len(a.name))
        if a.name in t.entries:
            raise MergeError(f"argument `{a.name}` given twice", key, "keep one of them",
                             notes=[("first given here", t.entries[a.name].key_span)])
        t.entries[a.name] = Slot(a.value, a.value.span, key, origin)
    return t


def _as_tree(slot: Slot | None, key: str, key_span: Span, origin: str) -> Tree:
    if slot is None:
        return Tree()
    if isinstance(slot.value, Tree):
        return slot.value
    if isinstance(slot.value, ast.Call):
        return from_call(slot.value, slot.origin)
    raise MergeError(f"`{key}` holds a value, not a section", key_span,
                     f"assign it whole with `{key}: ...` instead")


def apply(tree: Tree, entries: list[ast.Entry], origin: str, errors: list[EvalError],
          written: dict | None = None, prefix: tuple = ()) -> None:
    """Merge entries into the tree; an entry that cannot merge is reported and skipped.

    One body (an experiment's, or a `{ ... }` map's) sets each key once: a second
    `"**.weight": meta` after `"**.weight": masked` would silently replace the first, so it
    is an error, however the two are spelt (`outer.iterations` and `outer { iterations }`).
    Replacing is what `extends` and `--set` are for."""
    written = {} if written is None else written
    for e in entries:
        try:
            if isinstance(e, ast.Section):
                sub = _as_tree(tree.entries.get(e.name), e.name, e.name_span, origin)
                apply(sub, e.entries, origin, errors, written, prefix + (e.name,))
                tree.entries[e.name] = Slot(sub, e.span, e.name_span, origin)
            else:
                for target in e.targets:
                    _once(written, prefix, target)
                    assign(tree, target, e.value, origin)
        except MergeError as err:
            errors.append(err)


def _once(written: dict, prefix: tuple, target: ast.Target) -> None:
    if isinstance(target, ast.Selector):
        key, shown = prefix + ((target.pattern,),), ".".join(prefix) + f'["{target.pattern}"]'
    else:
        index = ((target.index,),) if target.index is not None else ()
        key = prefix + tuple(target.parts) + index
        shown = ".".join(prefix + tuple(target.parts)) + (f'["{target.index}"]' if index else "")
    if key in written:
        raise MergeError(f"`{shown.removeprefix('.')}` is set twice", target.span,
                         "keep one: the second would silently replace the first",
                         notes=[("first set here", written[key])])
    written[key] = target.span


def assign(tree: Tree, target: ast.Target, value: ast.Value, origin: str) -> None:
    if isinstance(target, ast.Selector):
        tree.selectors = True
        tree.entries[target.pattern] = Slot(_fresh(value, origin), value.span, target.span, origin)
        return
    node = tree
    for part in target.parts[:-1]:
        sub = _as_tree(node.entries.get(part), part, target.span, origin)
        if part not in node.entries or not isinstance(node.entries[part].value, Tree):
            node.entries[part] = Slot(sub, target.span, target.span, origin)
        else:
            node.entries[part].value = sub
        node = sub
    last = target.parts[-1]
    old = node.entries.get(last)
    if target.index is not None:
        sel = old.value if old is not None and isinstance(old.value, Tree) else None
        if sel is None:
            sel = Tree(selectors=True)
            if old is not None:
                sel.entries["**"] = Slot(old.value, old.span, old.key_span, old.origin)
        sel.selectors = True
        sel.entries[target.index] = Slot(_fresh(value, origin), value.span, target.span, origin)
        node.entries[last] = Slot(sel, value.span, target.span, origin)
        return
    if old is not None and isinstance(old.value, Tree) and old.value.selectors \
            and not isinstance(value, ast.Map):
        old.value.entries["**"] = Slot(_fresh(value, origin), value.span, target.span, origin)
        return
    node.entries[last] = Slot(_fresh(value, origin), value.span, target.span, origin)


def _fresh(value: ast.Value, origin: str):
    """An assigned map becomes a new tree (replacing, not merging); calls stay syntax."""
    if isinstance(value, ast.Map):
        t = Tree()
        errors: list[EvalError] = []
        apply(t, value.entries, origin, errors)
        if errors:
            raise errors[0]
        return t
    return value


# ---- from tree to plain values -------------------------------------------------------------

@dataclass
class Located:
    """Plain values plus, for every path into them, where the user wrote it."""

    value: dict
    spans: dict[tuple, Span]
    key_spans: dict[tuple, Span]
    origins: dict[tuple, str]
    errors: list[EvalError]
    # Paths whose value failed to evaluate (and is None): their type errors would only echo.
    failed: set[tuple] = field(default_factory=set)


def to_plain(tree: Tree) -> Located:
    spans: dict[tuple, Span] = {}
    key_spans: dict[tuple, Span] = {}
    origins: dict[tuple, str] = {}
    resolving: list[tuple] = []
    errors: list[EvalError] = []
    failed: set[tuple] = set()

    def find(parts: list[str], span: Span) -> tuple[tuple, Slot]:
        node: Any = tree
        path: tuple = ()
        slot = None
        for i, p in enumerate(parts):
            if isinstance(node, ast.Call):
                node = from_call(node, "")
            if not isinstance(node, Tree) or p not in node.entries:
                where = ".".join(parts[:i]) or "the experiment"
                choices = list(node.entries) if isinstance(node, Tree) else []
                from ..language.diagnostics import did_you_mean
                raise EvalError(f"`{'.'.join(parts)}` does not name a field: {where} has no `{p}`",
                                span, did_you_mean(p, choices))
            slot = node.entries[p]
            node = slot.value
            path += (p,)
        return path, slot

    def lookup(name: ast.Name) -> Any:
        if len(name.parts) == 1:  # a symbol: `masked`, `second`, `kaiming_normal`
            return Symbol(name.parts[0])
        path, slot = find(name.parts, name.span)
        if path in resolving:
            raise EvalError(f"`{name.dotted}` refers to itself", name.span)
        resolving.append(path)
        try:
            return plain(slot.value, path, record=False)
        finally:
            resolving.pop()

    def plain(v: Any, path: tuple, record: bool = True) -> Any:
        if isinstance(v, Tree):
            out = {}
            for k, s in v.entries.items():
                if record:
                    spans[path + (k,)] = s.span
                    key_spans[path + (k,)] = s.key_span
                    origins[path + (k,)] = s.origin
                out[k] = plain(s.value, path + (k,), record)
            if v.call is not None:
                func, positional, span = v.call
                args = [plain(a.value, path + (i,), record) for i, a in enumerate(positional)]
                where = {i: a.value.span for i, a in enumerate(positional)}
                where.update({k: s.span for k, s in v.entries.items()})
                where.update({("key", k): s.key_span for k, s in v.entries.items()})
                return CallValue(func, args, out, span, where)
            return out
        if isinstance(v, ast.List) and record:
            for i, item in enumerate(v.items):
                spans[path + (i,)] = item.span
        if isinstance(v, ast.Call) and v.func != "env" and v.func not in FUNCTIONS:
            try:
                call = from_call(v, "")
            except EvalError as e:
                if not record:
                    raise
                errors.append(e)
                failed.add(path)
                return None
            return plain(call, path, record)
        if isinstance(v, ast.List):
            return [plain(item, path + (i,), record) for i, item in enumerate(v.items)]
        if not record:  # inside a reference: the referring leaf reports the error
            return evaluate(v, lookup)
        try:
            return evaluate(v, lookup)
        except EvalError as e:
            errors.append(e)
            failed.add(path)
            return None

    return Located(plain(tree, ()), spans, key_spans, origins, errors, failed)
