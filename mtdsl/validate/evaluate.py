"""Expression evaluation, shared by experiment bodies and model definitions.

A value in the syntax tree becomes a plain Python value: numbers, strings, lists, dicts
and `Call`s. Names are looked up through a caller-given function, so an experiment can
resolve `task.ways` against its merged tree and a model body its parameters and loop
variables, with one evaluator.
"""

from __future__ import annotations

import math
import os
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

from ..language import ast
from ..language.diagnostics import clip
from ..language.limits import MAX_INT, MAX_LIST, MAX_REFERENCE_DEPTH, MAX_WORK
from ..language.source import Span


class EvalError(Exception):
    def __init__(self, message: str, span: Span, hint: str | None = None, notes=()):
        super().__init__(message)
        self.message, self.span, self.hint = message, span, hint
        self.notes = list(notes)  # (text, span): further places that explain it

    def diagnostic(self):
        from ..language.diagnostics import Diagnostic

        return Diagnostic(self.message, self.span, self.hint, notes=self.notes)


class Symbol(str):
    """A bare name used as a value (`masked`, `kaiming_normal`, `sgd`). It compares equal to
    the string of its name, but stays told apart from a quoted string: `train: omniglot` names
    a component, `train: "omniglot"` is text."""


class Text(str):
    """A quoted string literal's value: text, never the name of a component."""


@dataclass
class CallValue:
    """A call that names a component (`sgd(lr: 10)`, `omniglot(split: "train")`): the
    component is looked up later by the stage that knows the catalogue."""

    func: str
    args: list[Any]
    kwargs: dict[str, Any]
    span: Span = field(compare=False, repr=False)
    # Where each argument's value was written, by position or keyword name (and where each
    # keyword was, under ("key", name)): a value found wrong later, inside a model body say,
    # is reported where the user wrote it.
    arg_spans: dict = field(default_factory=dict, compare=False, repr=False)


# Bare names with a fixed meaning everywhere.
CONSTANTS = {"true": True, "false": False, "none": None}

Lookup = Callable[[ast.Name], Any]


class _Budget(threading.local):
    """How deep references nest and how much work the value being evaluated has taken."""

    depth = 0
    work = 0


_budget = _Budget()


def evaluate(node: ast.Value, lookup: Lookup) -> Any:
    """The value of `node`. A reference that `lookup` follows evaluates inside this call, so
    its work counts towards this value's `MAX_WORK` and its depth towards
    `MAX_REFERENCE_DEPTH`: no value, however its references fan out, evaluates without bound."""
    if _budget.depth == 0:
        _budget.work = 0
    if _budget.depth >= MAX_REFERENCE_DEPTH:
        raise EvalError(f"references nested more than {MAX_REFERENCE_DEPTH} deep", node.span,
                        "refer to the value itself rather than through a chain of references")
    _budget.depth += 1
    try:
        return _eval(node, lookup)
    finally:
        _budget.depth -= 1


def _spend(amount: int, span: Span) -> None:
    _budget.work += amount
    if _budget.work > MAX_WORK:
        raise EvalError(f"this value takes more than {MAX_WORK:,} steps to evaluate", span,
                        "references that double a list at each step grow it exponentially")


def _eval(node: ast.Value, lookup: Lookup) -> Any:
    _spend(1, node.span)
    if isinstance(node, ast.Number):
        return node.value
    if isinstance(node, ast.String):
        return Text(node.value)
    if isinstance(node, ast.Name):
        if len(node.parts) == 1 and node.parts[0] in CONSTANTS:
            return CONSTANTS[node.parts[0]]
        return lookup(node)
    if isinstance(node, ast.List):
        return _bounded([_eval(v, lookup) for v in node.items], node.span)
    if isinstance(node, ast.Neg):
        v = _eval(node.operand, lookup)
        _need_number(v, node.operand, "-")
        return _bounded(-v, node.span)
    if isinstance(node, ast.BinOp):
        return _bounded(_binop(node, _eval(node.left, lookup), _eval(node.right, lookup)), node.span)
    if isinstance(node, ast.Call):
        if node.func == "env":
            return _env(node, lookup)
        if node.func in FUNCTIONS:
            return _bounded(_builtin(node, lookup), node.span)
        args = [_eval(a.value, lookup) for a in node.positional]
        kwargs, spans = {}, {i: a.value.span for i, a in enumerate(node.positional)}
        for a in node.keywords:
            if a.name in kwargs:
                raise EvalError(f"argument `{a.name}` given twice", a.span)
            kwargs[a.name] = _eval(a.value, lookup)
            spans[a.name] = a.value.span
        return CallValue(node.func, args, kwargs, node.span, spans)
    if isinstance(node, ast.Map):
        raise EvalError("a `{ ... }` map is not allowed here", node.span)
    raise EvalError(f"cannot evaluate {type(node).__name__}", node.span)


def _bounded(v: Any, span: Span) -> Any:
    """Every computed value stays inside the limits: int64 integers, finite floats, lists
    and strings of at most `MAX_LIST` elements."""
    if isinstance(v, bool):
        return v
    if isinstance(v, int) and not -MAX_INT - 1 <= v <= MAX_INT:
        raise EvalError("integer result is too large", span, f"integers are at most 2**63 - 1 ({MAX_INT})")
    if isinstance(v, float) and not math.isfinite(v):
        raise EvalError("result is not a finite number", span, "numbers are finite floats")
    if isinstance(v, (list, str)):
        _spend(len(v), span)
        if len(v) > MAX_LIST:
            raise EvalError(f"result has {len(v):,} elements; at most {MAX_LIST:,}", span)
    return v


def _range(*args):
    if len(args) == 3 and args[2] == 0:
        raise ValueError("the step must not be 0")
    r = range(*args)
    try:
        n = len(r)
    except OverflowError:
        n = MAX_LIST + 1
    if n > MAX_LIST:
        raise ValueError(f"more than {MAX_LIST:,} elements")
    return list(r)


def _extreme(pick):
    def f(*args):
        values = args[0] if len(args) == 1 and isinstance(args[0], list) else list(args)
        if not values:
            raise ValueError("needs at least one number; the list is empty")
        if any(isinstance(v, list) for v in values):
            raise ValueError("takes numbers, or one list of numbers, not a mix of lists and numbers")
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            bad = next(v for v in values if not isinstance(v, (int, float)) or isinstance(v, bool))
            raise ValueError(f"takes numbers, got {describe(bad)}")
        return pick(values)
    return f


# Built-in functions, evaluated where they are written (a model body or an experiment):
# (function, fewest and most arguments, what each argument must be).
FUNCTIONS = {"range": (_range, 1, 3, "int"), "len": (len, 1, 1, "list"),
             "min": (_extreme(min), 1, 8, "number"), "max": (_extreme(max), 1, 8, "number"),
             "floor": (math.floor, 1, 1, "scalar")}


def _builtin(node: ast.Call, lookup: Lookup) -> Any:
    fn, lo, hi, want = FUNCTIONS[node.func]
    if node.keywords or not lo <= len(node.args) <= hi:
        raise EvalError(f"{node.func} takes {lo}" + (f" to {hi}" if hi > lo else "")
                        + " positional argument" + ("s" if hi > 1 else ""), node.span)
    args = [_eval(a.value, lookup) for a in node.args]
    ok = {"int": lambda v: isinstance(v, int) and not isinstance(v, bool),
          "scalar": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
          "list": lambda v: isinstance(v, list),
          "number": lambda v: isinstance(v, (int, float, list)) and not isinstance(v, bool)}[want]
    for a, v in zip(node.args, args):
        if not ok(v):
            raise EvalError(f"{node.func} needs {'an integer' if want == 'int' else 'a number' if want == 'scalar' else 'a ' + want}, "
                            f"got {describe(v)}", a.span)
    try:
        return fn(*args)
    except (ArithmeticError, TypeError, ValueError) as e:  # a built-in's complaint, located
        raise EvalError(f"{node.func}: {e}", node.span) from None


def _env(node: ast.Call, lookup: Lookup) -> Any:
    """`env("VAR", default: value)`: the environment variable, else the default."""
    pos, kw = node.positional, {a.name: a for a in node.keywords}
    if len(pos) != 1 or set(kw) - {"default"}:
        raise EvalError("env takes a variable name and an optional `default:`", node.span,
                        'write env("MTDSL_DATA", default: "~/data")')
    name = _eval(pos[0].value, lookup)
    if not isinstance(name, str):
        raise EvalError("env's variable name must be a string", pos[0].span)
    if name in os.environ:
        return os.environ[name]
    if "default" in kw:
        return _eval(kw["default"].value, lookup)
    raise EvalError(f"environment variable `{name}` is not set and env() has no default", node.span,
                    f'set {name}, or write env("{name}", default: ...)')


def _need_number(v, node, op):
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise EvalError(f"`{op}` needs a number, got {describe(v)}", node.span)


def _binop(node: ast.BinOp, a, b):
    if node.op == "+" and isinstance(a, list) and isinstance(b, list):
        return a + b
    if node.op == "+" and isinstance(a, str) and isinstance(b, str):
        return Text(a + b)
    _need_number(a, node.left, node.op)
    _need_number(b, node.right, node.op)
    if node.op in ("/", "%") and b == 0:
        raise EvalError("division by zero", node.right.span)
    ops = {"+": lambda: a + b, "-": lambda: a - b, "*": lambda: a * b, "/": lambda: a / b,
           "%": lambda: a % b}
    try:
        return ops[node.op]()
    except ArithmeticError as e:  # e.g. a float overflowing
        raise EvalError(f"`{node.op}` cannot be computed: {e}", node.span) from None


def describe(v) -> str:
    if v is None:
        return "none"
    if isinstance(v, bool):
        return f"a boolean ({str(v).lower()})"
    if isinstance(v, int):
        return f"an integer ({v})"
    if isinstance(v, float):
        return f"a number ({v!r})"
    if isinstance(v, Symbol):
        return f"`{clip(v, 60)}`"
    if isinstance(v, str):
        return f'a string ("{clip(v, 60)}")'
    if isinstance(v, list):
        return "a list"
    if isinstance(v, CallValue):
        return f"`{v.func}(...)`"
    if isinstance(v, dict):
        return "a section"
    return type(v).__name__
