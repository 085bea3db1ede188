"""An experiment name to a typed `Experiment`: inheritance, overrides, evaluation, types.

Every failure becomes a located `Diagnostic`; all of a spec's errors are gathered before
anything is raised.
"""

from __future__ import annotations

import re
import typing
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from ..errors import SpecError
from ..language import ast
from ..language.diagnostics import Diagnostic, did_you_mean, sort_key
from ..language.parser import parse_override
from ..language.source import Span
from . import spec as S
from .evaluate import CallValue, EvalError, describe
from .loader import Workspace
from .tree import Located, Tree, apply, assign, to_plain


@dataclass
class Resolved:
    name: str
    experiment: S.Experiment
    located: Located
    workspace: Workspace
    definition: ast.Experiment


def lineage(ws: Workspace, name: str, diags: list[Diagnostic]) -> list[ast.Experiment]:
    """The experiment and its ancestors, root first."""
    chain: list[ast.Experiment] = []
    exp = ws.experiments[name]
    while True:
        if exp in chain:
            cycle = [e.name for e in chain[chain.index(exp):]] + [exp.name]
            diags.append(Diagnostic(f"`{exp.name}` extends itself: " + " -> ".join(cycle),
                                    exp.extends_span or exp.name_span, "break the cycle"))
            break
        chain.append(exp)
        if exp.extends is None:
            break
        parent = ws.experiments.get(exp.extends)
        if parent is None:
            others = [n for n in ws.experiments if n != exp.name]
            diags.append(Diagnostic(f"`{exp.name}` extends unknown experiment `{exp.extends}`",
                                    exp.extends_span, did_you_mean(exp.extends, others)))
            break
        exp = parent
    return list(reversed(chain))


def merged_tree(ws: Workspace, name: str, overrides: list, diags: list[Diagnostic],
                assigns: list[ast.Assign] = ()) -> Tree:
    tree = Tree()
    errors: list[EvalError] = []
    for exp in lineage(ws, name, diags):
        apply(tree, exp.entries, exp.name, errors)
    diags += [e.diagnostic() for e in errors]
    for node in assigns:  # a sweep point's values, written in the sweep
        for target in node.targets:
            try:
                assign(tree, target, node.value, "sweep")
            except EvalError as e:
                diags.append(e.diagnostic())
    for n, given in enumerate(overrides, 1):
        # An override is `PATH=VALUE`, or (where it came from, PATH=VALUE) to locate its
        # mistakes at the option that wrote it (`mtdsl test --on`).
        name, text = given if isinstance(given, tuple) else (f"--set({n})", given)
        node, odiags = parse_override(text, name)
        diags += odiags
        if node is None:
            continue
        try:
            for target in node.targets:
                assign(tree, target, node.value, "--set")
        except EvalError as e:
            diags.append(e.diagnostic())
    return tree


def resolve(ws: Workspace, name: str, overrides: list[str] = (), assigns: list[ast.Assign] = ()) -> Resolved:
    """`assigns` (a sweep point) apply after inheritance, `overrides` (--set) after them."""
    diags: list[Diagnostic] = []
    lineage(ws, name, diags)
    if diags:  # an unknown or cyclic parent: every field check would be guesswork
        raise SpecError(diags)
    tree = merged_tree(ws, name, list(overrides), diags, list(assigns))
    located = to_plain(tree)
    diags += [e.diagnostic() for e in located.errors]
    data = _pydantic_input(located.value, (), located, diags)
    definition = ws.experiments[name]
    try:
        experiment = S.Experiment.model_validate(data)
    except ValidationError as err:
        experiment = None
        fresh = [e for e in err.errors() if not _echoes_failure(_data_path(e["loc"], data), located)]
        diags += _without_echoes([(e, _diagnostic(e, data, located, definition)) for e in fresh], data)
    if diags:
        err = SpecError(sorted(diags, key=sort_key))
        err.located = located  # later stages may still check what did evaluate
        raise err
    return Resolved(name, experiment, located, ws, definition)


def _pydantic_input(v: Any, path: tuple, located: Located | None = None,
                    diags: list[Diagnostic] | None = None) -> Any:
    """Plain values as pydantic validates them: a call becomes `{"kind": name, **kwargs}`."""
    if path == ("model",):
        return v  # checked against the model definition by the compiler
    if isinstance(v, CallValue):
        if "kind" in v.kwargs and diags is not None:  # it would silently replace the call's name
            span = located.key_spans.get(path + ("kind",), v.span) if located else v.span
            diags.append(Diagnostic(f"`{v.func}` has no argument `kind`: the name of the call is its kind",
                                    span, "remove it, or call the component you mean by its name"))
        out = {k: _pydantic_input(x, path + (k,), located, diags) for k, x in v.kwargs.items()}
        out["kind"] = v.func
        if v.args:
            out["__positional__"] = v.args
        return out
    if isinstance(v, dict):
        return {k: _pydantic_input(x, path + (k,), located, diags) for k, x in v.items()}
    if isinstance(v, list):
        return [_pydantic_input(x, path + (i,), located, diags) for i, x in enumerate(v)]
    return v


# ---- pydantic errors to diagnostics -------------------------------------------------------------

def _without_echoes(pairs: list[tuple[dict, Diagnostic]], data: Any) -> list[Diagnostic]:
    """A misspelt field is also a missing one; report only the misspelling, which says both."""
    unknown = {}
    for e, _ in pairs:
        if e["type"] == "extra_forbidden":
            path = _data_path(e["loc"], data)
            unknown.setdefault(path[:-1], []).append(str(e["loc"][-1]))
    out = []
    for e, d in pairs:
        if e["type"] == "missing":
            container = _data_path(e["loc"], data)
            typos = unknown.get(container, [])
            if did_you_mean(str(e["loc"][-1]), typos) and any(
                    did_you_mean(t, [str(e["loc"][-1])]) for t in typos):
                continue
        out.append(d)
    return out


def _echoes_failure(path: tuple, located: Located) -> bool:
    """A value that failed to evaluate is None; that it is not the right type is no news."""
    return any(path[:n] in located.failed for n in range(len(path) + 1))


def _data_path(loc: tuple, data: Any) -> tuple:
    """pydantic's `loc` names union members and validators too; keep the steps into data."""
    path, node = (), data
    for step in loc:
        if isinstance(node, dict) and step in node:
            path += (step,)
            node = node[step]
        elif isinstance(node, list) and isinstance(step, int) and step < len(node):
            path += (step,)
            node = node[step]
    return path


def _models_in(annotation) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    out = []
    for a in typing.get_args(annotation):
        out += _models_in(a)
    return out


def _model_at(path: tuple, data: Any) -> type[BaseModel] | None:
    """The pydantic model that validates the container at `path`."""
    model, node = S.Experiment, data
    for step in path:
        node = node[step] if isinstance(node, (dict, list)) else None
        if isinstance(step, int):
            continue
        field = model.model_fields.get(step) if model else None
        if field is None:
            return None
        candidates = _models_in(field.annotation)
        kind = node.get("kind") if isinstance(node, dict) else None
        model = next((m for m in candidates if kind is None or kind in _kinds(m)), None)
    return model


def _kinds(model: type[BaseModel]) -> tuple:
    f = model.model_fields.get("kind")
    return typing.get_args(f.annotation) if f else ()


def _dotted(path: tuple) -> str:
    s = ""
    for p in path:
        s += f"[{p}]" if isinstance(p, int) else (("." if s else "") + str(p))
    return s or "the experiment"


def _span_for(path: tuple, located: Located, definition: ast.Experiment, key: bool) -> Span:
    for n in range(len(path), 0, -1):
        table = located.key_spans if key and n == len(path) else located.spans
        if path[:n] in table:
            return table[path[:n]]
        if path[:n] in located.key_spans:
            return located.key_spans[path[:n]]
    return definition.name_span


def _diagnostic(e: dict, data: Any, located: Located, definition: ast.Experiment) -> Diagnostic:
    kind, loc, ctx = e["type"], e["loc"], e.get("ctx") or {}
    path = _data_path(loc, data)
    where = _dotted(path)
    if kind == "extra_forbidden":
        field = loc[-1]
        container = path if path and path[-1] != field else path[:-1]
        if field == "__positional__":
            return Diagnostic(f"`{_dotted(container)}` takes named arguments only",
                              _span_for(container, located, definition, False),
                              "write each argument as `name: value`")
        model = _model_at(container, data)
        choices = [f for f in (model.model_fields if model else {}) if f != "kind"]
        return Diagnostic(f"unknown field `{field}` in `{_dotted(container)}`",
                          _span_for(container + (field,), located, definition, True),
                          did_you_mean(str(field), choices))
    if kind == "missing":
        field = loc[-1]
        container = path
        where = f"`{_dotted(container)}`" if container else f"experiment `{definition.name}`"
        return Diagnostic(f"missing field `{field}` in {where}",
                          _span_for(container, located, definition, True) if container
                          else definition.name_span,
                          f"add `{field}: ...`")
    if kind == "union_tag_invalid":
        tags = re.findall(r"'([^']+)'", str(ctx.get("expected_tags", "")))
        return Diagnostic(f"unknown {_field_word(path)} `{ctx.get('tag')}`",
                          _span_for(path, located, definition, False), did_you_mean(str(ctx.get("tag")), tags))
    if kind == "union_tag_not_found":
        return Diagnostic(f"`{where}` must be a call such as `name(...)`, got {describe(e.get('input'))}",
                          _span_for(path, located, definition, False))
    if kind == "literal_error":
        options = re.findall(r"'([^']+)'|(\d+)", str(ctx.get("expected", "")))
        options = [a or b for a, b in options]
        got = e.get("input")
        hint = did_you_mean(str(got), options) if isinstance(got, str) else \
            "expected one of: " + ", ".join(f"`{o}`" for o in options)
        return Diagnostic(f"`{where}` must be one of {', '.join(f'`{o}`' for o in options)}, "
                          f"got {describe(got)}",
                          _span_for(path, located, definition, False), hint)
    if kind in ("int_type", "int_parsing", "int_from_float", "float_type", "float_parsing",
                "bool_type", "bool_parsing", "string_type", "list_type", "dict_type",
                "model_type", "tuple_type", "model_attributes_type"):
        want = {"int": "an integer", "float": "a number", "bool": "true or false",
                "string": "a string", "list": "a list", "dict": "a section",
                "model": "a section", "tuple": "a list", "model_attributes": "a section"}
        w = next((v for k, v in want.items() if kind.startswith(k)), "another type")
        span = _span_for(path, located, definition, False)
        return Diagnostic(f"`{where}` must be {w}, got {describe(e.get('input'))}", span,
                          _yaml_hint(span, located.key_spans.get(path), path) if w == "a list" else None)
    msg = e["msg"].removeprefix("Value error, ")
    msg = msg[0].lower() + msg[1:]
    return Diagnostic(f"`{where}`: {msg}", _span_for(path, located, definition, False))


def _field_word(path: tuple) -> str:
    names = [p for p in path if isinstance(p, str)]
    last = names[-1] if names else "component"
    return {"train": "dataset", "valid": "dataset", "test": "dataset"}.get(last, last)


def _yaml_hint(span: Span, key: Span | None, path: tuple) -> str | None:
    """`seeds:` over lines `- 1`, `- 2` reads as the sum `-1 - 2`: say what was meant."""
    from ..language.source import lookup

    source = lookup(span.file)
    first = source.line(span.line)[span.col - 1:] if source else ""
    if key is not None and key.line < span.line and first.startswith("-"):
        return (f"`- item` lines are YAML, which .mt is not: write the list in brackets, "
                f"e.g. `{path[-1] if path else 'seeds'}: [1, 2, 3]`")
    return None
