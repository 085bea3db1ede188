"""Completion from the text before the cursor, which is usually not valid yet.

A small scanner follows the braces to learn where the cursor is: in a model body (layers
and blocks), at a key of an experiment section (the fields the typed spec allows there), at
a value (the model definitions for `model:`, a field's options and component kinds), or
inside a quoted selector of `params`, `init` or `inner.lr` (the compiled parameter names and
their scopes). Names of models and parameters come from the document's last analysis.
"""

from __future__ import annotations

import re
import typing
from functools import lru_cache
from dataclasses import dataclass, field
from typing import Any, Literal

from lsprotocol import types
from pydantic import BaseModel

from ..compile.compiler import Compiled
from ..compile.layers import KINDS
from ..validate import spec as S
from .analysis import Analysis

_TOKEN = re.compile(r'//[^\n]*|"(?:[^"\\\n]|\\.)*"|"[^"\n]*$|->|[A-Za-z_][A-Za-z0-9_]*|[0-9.]+|\n|[^\s]')
_ITEMS = ("import", "experiment", "sweep", "model", "block")
SELECTOR_TABLES = {("params",), ("init",), ("inner", "lr")}


@dataclass
class Frame:
    kind: str  # experiment, sweep, model, stmts, section, expr, call, list
    name: str = ""
    tokens: list[str] = field(default_factory=list)  # tokens of the current entry


@dataclass
class Context:
    where: str  # key, value, layer, selector, call, none
    path: tuple[str, ...] = ()  # section path inside the experiment
    key: str = ""  # the key of a value
    experiment: str = ""
    prefix_start: int = 0  # column where the text being completed starts (0-based)
    func: str = ""  # the call whose arguments are being written


def context(text: str, line: int, character: int) -> Context:
    """Where a 0-based cursor position sits."""
    lines = text.split("\n")
    before = "\n".join(lines[:line] + [lines[line][:character] if line < len(lines) else ""])
    stack: list[Frame] = [Frame("file")]
    pending: list[str] = []  # header tokens of a top-level item
    string_prefix = None
    for tok in _TOKEN.findall(before):
        if tok.startswith("//"):
            continue
        if tok.startswith('"') and (len(tok) == 1 or not tok.endswith('"') or tok.endswith('\\"')):
            string_prefix = tok[1:]
            break
        top = stack[-1]
        if tok in "{([":
            stack.append(_open(tok, top, pending))
            pending = [] if tok == "{" else pending
        elif tok in "})]":
            if len(stack) > 1:
                stack.pop()
            stack[-1].tokens = []
        elif tok in (",", "\n") and top.kind in ("experiment", "section", "sweep", "call"):
            if tok == "," or not top.tokens or top.tokens[-1] not in (":", "="):
                top.tokens = []
        elif top.kind == "file":
            pending = [tok] if tok in _ITEMS else pending + [tok]
        else:
            top.tokens.append(tok)
    exp = next((f.name for f in stack if f.kind == "experiment"), "")
    path = tuple(f.name for f in stack if f.kind == "section")
    top = stack[-1]
    word = re.search(r"[A-Za-z0-9_]*$", before).group(0)
    start = character - (len(string_prefix) if string_prefix is not None else len(word))
    if string_prefix is not None:
        index = top.kind == "list" and stack[-2].tokens[-1:] == ["lr"]
        table = path + ((stack[-2].tokens[-1],) if index else ())
        if table in SELECTOR_TABLES or (index and table[-1:] == ("lr",)) or \
                (top.kind in ("section", "experiment") and path in SELECTOR_TABLES):
            return Context("selector", path, experiment=exp, prefix_start=start)
        return Context("none")
    if top.kind in ("model", "stmts"):
        return Context("layer", prefix_start=start)
    if top.kind == "call":
        return Context("call", path, experiment=exp, prefix_start=start, func=top.name)
    if top.kind in ("experiment", "section"):
        toks = top.tokens[:-1] if word else top.tokens
        if ":" in toks or "=" in toks:
            cut = toks.index(":") if ":" in toks else toks.index("=")
            key = toks[cut - 1] if cut else ""
            return Context("value", path, key=key, experiment=exp, prefix_start=start)
        return Context("key", path, experiment=exp, prefix_start=start)
    return Context("none")


def _open(tok: str, top: Frame, pending: list[str]) -> Frame:
    if tok == "(":
        name = top.tokens[-1] if top.tokens and top.tokens[-1].isidentifier() else ""
        return Frame("call" if top.kind in ("experiment", "section", "call") else "expr", name)
    if tok == "[":
        return Frame("list")
    if top.kind == "file":
        head = pending[0] if pending else ""
        if head in ("model", "block"):
            return Frame("model", pending[1] if len(pending) > 1 else "")
        return Frame(head if head in ("experiment", "sweep") else "expr", pending[1] if len(pending) > 1 else "")
    if top.kind in ("model", "stmts"):
        prev = top.tokens[-1] if top.tokens else ""
        stmts = prev in ("residual", "shortcut") or "for" in top.tokens
        top.tokens = []
        return Frame("stmts" if stmts else "expr")
    if top.kind in ("experiment", "section"):
        toks = [t for t in top.tokens if t not in (":", "=")]
        name = toks[-1] if toks else ""
        top.tokens = []
        return Frame("section", name)
    return Frame("expr")


# ---- what the typed spec allows at a path ---------------------------------------------------

def _models_in(annotation) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for a in typing.get_args(annotation) for m in _models_in(a)]


def _model_at(path: tuple[str, ...]) -> type[BaseModel] | None:
    model: type[BaseModel] | None = S.Experiment
    for step in path:
        f = model.model_fields.get(step) if model else None
        found = _models_in(f.annotation) if f else []
        model = found[0] if len(found) == 1 else None
    return model


def _options(annotation) -> list[str]:
    """The literal values and component kinds a field accepts."""
    if typing.get_origin(annotation) is Literal:
        return [str(v).lower() if isinstance(v, bool) else str(v) for v in typing.get_args(annotation)]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        kind = annotation.model_fields.get("kind")
        return _options(kind.annotation) if kind else []
    if typing.get_origin(annotation) is dict:
        return _options(typing.get_args(annotation)[1])
    if annotation is bool:
        return ["true", "false"]
    out: list[str] = []
    for a in typing.get_args(annotation):
        out += [o for o in _options(a) if o not in out]
    return out


@lru_cache(maxsize=1)
def _components() -> dict[str, type[BaseModel]]:
    """Every component (a model told apart by `kind`) by its kind name."""
    out: dict[str, type[BaseModel]] = {}

    def walk(model: type[BaseModel]) -> None:
        for f in model.model_fields.values():
            for m in _models_in(f.annotation):
                kind = m.model_fields.get("kind")
                if kind:
                    for k in _options(kind.annotation):
                        out[k] = m
                if m is not model:
                    walk(m)
    walk(S.Experiment)
    return out


# ---- items ----------------------------------------------------------------------------------

def complete(analysis: Analysis | None, text: str, line: int, character: int) -> list[types.CompletionItem]:
    ctx = context(text, line, character)
    edit_range = types.Range(start=types.Position(line=line, character=ctx.prefix_start),
                             end=types.Position(line=line, character=character))

    def item(label: str, kind: types.CompletionItemKind, detail: str = "", insert: str | None = None):
        return types.CompletionItem(label=label, kind=kind, detail=detail or None,
                                    text_edit=types.TextEdit(range=edit_range, new_text=insert or label))

    models = analysis.workspace.models if analysis else {}
    if ctx.where == "layer":
        return ([item(k.name, types.CompletionItemKind.Function, k.doc) for k in KINDS.values()]
                + [item(m.name, types.CompletionItemKind.Module, f"{m.kind} {m.name}") for m in models.values()])
    if ctx.where == "key":
        model = _model_at(ctx.path)
        if model is None:
            return []
        return [item(name, types.CompletionItemKind.Field, _describe(f.annotation))
                for name, f in model.model_fields.items() if name != "kind"]
    if ctx.where == "value":
        if not ctx.path and ctx.key == "model":
            return [item(m.name, types.CompletionItemKind.Class,
                         f"model {m.name}(" + ", ".join(f"{p.name}: {p.type}" for p in m.params) + ")")
                    for m in models.values() if m.kind == "model"]
        if ctx.path in SELECTOR_TABLES:
            annotation = S.Experiment.model_fields[ctx.path[0]].annotation if len(ctx.path) == 1 \
                else _model_at(ctx.path[:-1]).model_fields[ctx.path[-1]].annotation
        else:
            model = _model_at(ctx.path)
            f = model.model_fields.get(ctx.key) if model else None
            if f is None:
                return []
            annotation = f.annotation
        return [item(o, types.CompletionItemKind.EnumMember) for o in _options(annotation)]
    if ctx.where == "call":
        component = _components().get(ctx.func)
        if component is None:
            return []
        return [item(name, types.CompletionItemKind.Property, _describe(f.annotation), f"{name}: ")
                for name, f in component.model_fields.items() if name != "kind"]
    if ctx.where == "selector":
        compiled = _compiled(analysis, ctx.experiment)
        if compiled is None:
            return []
        return [item(label, types.CompletionItemKind.Value, detail) for label, detail in _selectors(compiled)]
    return []


def _describe(annotation: Any) -> str:
    options = _options(annotation)
    return " | ".join(options) if options else getattr(annotation, "__name__", "") or ""


def _compiled(analysis: Analysis | None, experiment: str) -> Compiled | None:
    if analysis is None or not analysis.compiled:
        return None
    return next((c for c in analysis.compiled if c.resolved.name == experiment), analysis.compiled[0])


def _selectors(c: Compiled) -> list[tuple[str, str]]:
    """Each parameter by name, each layer scope as `scope.**`, and the tensor-kind globs."""
    out = [(p.name, f"{p.role}, {p.init}, inner lr {p.inner_lr:g}, shape {p.shape}") for p in c.plan.params]
    scopes = []
    for p in c.plan.params:
        parts = p.name.split(".")[:-1]
        for i in range(1, len(parts) + 1):
            s = ".".join(parts[:i])
            if s not in scopes:
                scopes.append(s)
    out += [(f"{s}.**", "every parameter under `" + s + "`") for s in scopes]
    locals_ = sorted({p.name.rsplit(".", 1)[-1] for p in c.plan.params})
    out += [(f"**.{t}", f"every `{t}` tensor") for t in locals_] + [("**", "every parameter")]
    return out
