"""The operative spec: what a run actually ran, as one self-contained `.mt` file.

Inheritance, imports, overrides and every default are applied; the model definitions the
experiment uses are included, so the file compiles on its own and its sha256 names the
experiment exactly. Re-resolving it gives the same experiment (a test checks this).
"""

from __future__ import annotations

import hashlib
import re

from ..language import ast, printer
from ..validate.evaluate import CallValue
from .compiler import Compiled

# Fields whose tables are keyed by selectors: printed with quoted keys.
_SELECTOR_TABLES = {("params",), ("inner", "lr"), ("init",)}
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_RESERVED = {"true", "false", "none", "model", "block", "experiment", "sweep", "import", "extends",
             "over", "for", "in", "residual", "shortcut", "grid", "zip"}


def operative_text(c: Compiled, header: str = "", seed: int | None = None) -> str:
    """`seed`: the one seed a run ran, written as its `seeds`, so the file reruns that run."""
    exp = c.experiment.model_dump(mode="json", exclude={"model"})
    if seed is not None:
        exp["seeds"] = [seed]
    call = c.experiment.model
    parts = [header] if header else []
    for d in _definitions_used(c.resolved.workspace.models, call.func):
        parts.append(_definition(d))
    # A section left out whose absence is its default (`checkpoint`) stays left out, so
    # adding such a section to the language leaves every existing run's hash unchanged.
    body = {k: v for k, v in exp.items() if v is not None}
    body["model"] = call
    order = ["seeds", "device", "data", "task", "model", "params", "init", "mask", "inner", "outer", "eval",
             "checkpoint"]
    keys = [k for k in order if k in body] + [k for k in body if k not in order]
    lines = [f"experiment {c.resolved.name} {{"]
    for k in keys:
        lines += _entry(k, body[k], (k,), 1)
    lines.append("}")
    parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _definitions_used(models: dict[str, ast.ModelDef], name: str) -> list[ast.ModelDef]:
    seen: list[str] = []

    def visit(n: str):
        if n in seen or n not in models:
            return
        seen.append(n)
        for call in _calls(models[n].body):
            visit(call)

    visit(name)
    return [models[n] for n in reversed(seen)]


def _calls(stmts) -> list[str]:
    out = []
    for s in stmts:
        if isinstance(s, ast.Chain):
            out += [l.call.func for l in s.layers]
        elif isinstance(s, ast.ForLoop):
            out += _calls(s.body)
        else:
            out += _calls(s.body) + _calls(s.shortcut or [])
    return out


def _definition(d: ast.ModelDef) -> str:
    w = printer._Writer([], set())
    printer._model(w, d)
    return "\n".join(w.lines)


def _entry(key: str, v, path: tuple, depth: int) -> list[str]:
    pad = printer.INDENT * depth
    k = printer.quote(key) if path[:-1] in _SELECTOR_TABLES else key
    if isinstance(v, dict) and "kind" not in v:
        if not v:
            return [f"{pad}{k}: {{}}"]
        lines = [f"{pad}{k} {{"]
        for sub, x in v.items():
            lines += _entry(sub, x, path + (sub,), depth + 1)
        return lines + [f"{pad}}}"]
    return [f"{pad}{k}: {_value(v)}"]


def _value(v) -> str:
    if isinstance(v, CallValue):
        args = [_value(a) for a in v.args] + [f"{k}: {_value(x)}" for k, x in v.kwargs.items()]
        return f"{v.func}({', '.join(args)})"
    if isinstance(v, dict):  # a component: {"kind": name, ...}
        args = [f"{k}: {_value(x)}" for k, x in v.items() if k != "kind"]
        return f"{v['kind']}({', '.join(args)})"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if v is None:
        return "none"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, str):
        return v if _IDENT.match(v) and v not in _RESERVED else printer.quote(v)
    return str(v)
