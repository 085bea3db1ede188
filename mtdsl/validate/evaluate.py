"""Expression evaluation, shared by experiment bodies and model definitions.

A value in the syntax tree becomes a plain Python value: numbers, strings, lists, dicts
and `Call`s. Names are looked up through a caller-given function, so an experiment can
resolve `task.ways` against its merged tree and a model body its parameters and loop
variables, with one evaluator.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Callable

from ..language import ast
from ..language.source import Span


class EvalError(Exception):
    def __init__(self, message: str, span: Span, hint: str | None = None):
        super().__init__(message)
        self.message, self.span, self.hint = message, span, hint


@dataclass
class CallValue:
    """A call that names a component (`sgd(lr: 10)`, `omniglot(split: "train")`): the
    component is looked up later by the stage that knows the catalogue."""

    func: str
    args: list[Any]
    kwargs: dict[str, Any]
    span: Span = field(compare=False, repr=False)


# Bare names with a fixed meaning everywhere.
CONSTANTS = {"true": True, "false": False, "none": None}

Lookup = Callable[[ast.Name], Any]


def evaluate(node: ast.Value, lookup: Lookup) -> Any:
    if isinstance(node, ast.Number):
        return node.value
    if isinstance(node, ast.String):
        return node.value
    if isinstance(node, ast.Name):
        if len(node.parts) == 1 and node.parts[0] in CONSTANTS:
            return CONSTANTS[node.parts[0]]
        return lookup(node)
    if isinstance(node, ast.List):
        return [evaluate(v, lookup) for v in node.items]
    if isinstance(node, ast.Neg):
        v = evaluate(node.operand, lookup)
        _need_number(v, node.operand, "-")
        return -v
    if isinstance(node, ast.BinOp):
        return _binop(node, evaluate(node.left, lookup), evaluate(node.right, lookup))
    if isinstance(node, ast.Call):
        if node.func == "env":
            return _env(node, lookup)
        if node.func in FUNCTIONS:
            return _builtin(node, lookup)
        args = [evaluate(a.value, lookup) for a in node.positional]
        kwargs = {}
        for a in node.keywords:
            if a.name in kwargs:
                raise EvalError(f"argument `{a.name}` given twice", a.span)
            kwargs[a.name] = evaluate(a.value, lookup)
        return CallValue(node.func, args, kwargs, node.span)
    if isinstance(node, ast.Map):
        raise EvalError("a `{ ... }` map is not allowed here", node.span)
    raise EvalError(f"cannot evaluate {type(node).__name__}", node.span)


def _range(*args):
    return list(range(*args))


# Built-in functions, evaluated where they are written (a model body or an experiment).
FUNCTIONS = {"range": (_range, 1, 3, "int"), "len": (len, 1, 1, "list"),
             "min": (min, 1, 8, "number"), "max": (max, 1, 8, "number")}


def _builtin(node: ast.Call, lookup: Lookup) -> Any:
    fn, lo, hi, want = FUNCTIONS[node.func]
    if node.keywords or not lo <= len(node.args) <= hi:
        raise EvalError(f"{node.func} takes {lo}" + (f" to {hi}" if hi > lo else "")
                        + " positional argument" + ("s" if hi > 1 else ""), node.span)
    args = [evaluate(a.value, lookup) for a in node.args]
    ok = {"int": lambda v: isinstance(v, int) and not isinstance(v, bool),
          "list": lambda v: isinstance(v, list),
          "number": lambda v: isinstance(v, (int, float, list)) and not isinstance(v, bool)}[want]
    for a, v in zip(node.args, args):
        if not ok(v):
            raise EvalError(f"{node.func} needs {'an integer' if want == 'int' else 'a ' + want}, "
                            f"got {describe(v)}", a.span)
    return fn(*args)


def _env(node: ast.Call, lookup: Lookup) -> Any:
    """`env("VAR", default: value)`: the environment variable, else the default."""
    pos, kw = node.positional, {a.name: a for a in node.keywords}
    if len(pos) != 1 or set(kw) - {"default"}:
        raise EvalError("env takes a variable name and an optional `default:`", node.span,
                        'write env("MTDSL_DATA", default: "~/data")')
    name = evaluate(pos[0].value, lookup)
    if not isinstance(name, str):
        raise EvalError("env's variable name must be a string", pos[0].span)
    if name in os.environ:
        return os.environ[name]
    if "default" in kw:
        return evaluate(kw["default"].value, lookup)
    raise EvalError(f"environment variable `{name}` is not set and env() has no default", node.span,
                    f'set {name}, or write env("{name}", default: ...)')


def _need_number(v, node, op):
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise EvalError(f"`{op}` needs a number, got {describe(v)}", node.span)


def _binop(node: ast.BinOp, a, b):
    if node.op == "+" and isinstance(a, list) and isinstance(b, list):
        return a + b
    if node.op == "+" and isinstance(a, str) and isinstance(b, str):
        return a + b
    _need_number(a, node.left, node.op)
    _need_number(b, node.right, node.op)
    if node.op in ("/", "//", "%") and b == 0:
        raise EvalError("division by zero", node.right.span)
    ops = {"+": lambda: a + b, "-": lambda: a - b, "*": lambda: a * b, "/": lambda: a / b,
           "//": lambda: a // b, "%": lambda: a % b}
    return ops[node.op]()


def describe(v) -> str:
    if v is None:
        return "none"
    if isinstance(v, bool):
        return f"a boolean ({str(v).lower()})"
    if isinstance(v, int):
        return f"an integer ({v})"
    if isinstance(v, float):
        return f"a number ({v:g})"
    if isinstance(v, str):
        return f'a string ("{v}")'
    if isinstance(v, list):
        return "a list"
    if isinstance(v, CallValue):
        return f"`{v.func}(...)`"
    if isinstance(v, dict):
        return "a section"
    return type(v).__name__
