"""Model definitions, expanded: a call such as `mlp(hidden: [256, 128], classes: 5)` becomes
a graph of concrete layers with qualified names, shapes and parameter tensors.

Naming: the first named layer of a chain opens a scope, and later names in the chain nest
inside it, so `layer1: linear(64) -> bn: batchnorm` gives `layer1.weight` and
`layer1.bn.weight`. A block call opens a scope for the block's body; a `shortcut` body
lives in `<scope>.shortcut`. An unnamed layer that has parameters is named after its kind
and count in its scope (`conv1`, `conv2`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Union

from ..errors import SpecError
from ..language import ast
from ..language.diagnostics import Diagnostic, did_you_mean
from ..language.limits import MAX_LAYERS
from ..language.source import Span
from ..validate.evaluate import CallValue, EvalError, describe, evaluate
from .layers import KINDS, REQUIRED, LayerKind, ShapeError, fmt_shape


@dataclass(frozen=True)
class ParamSpec:
    name: str
    shape: tuple[int, ...]
    init: str
    span: Span
    fan_in: int | None = None  # of the layer that owns it (see plan.ParamPlan.fan_in)

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


@dataclass
class LayerNode:
    scope: str  # where its parameters live ("" at the root)
    kind: str
    args: dict[str, Any]
    in_shape: tuple
    out_shape: tuple
    params: list[ParamSpec]
    span: Span


@dataclass
class ResidualNode:
    body: list["Node"]
    shortcut: list["Node"] | None  # None: identity
    in_shape: tuple
    out_shape: tuple
    span: Span


Node = Union[LayerNode, ResidualNode]


@dataclass
class Graph:
    nodes: list[Node]
    input_shape: tuple
    output_shape: tuple
    params: list[ParamSpec] = field(default_factory=list)

    def layers(self, nodes: list[Node] | None = None):
        """Every LayerNode, depth first, in execution order."""
        for n in self.nodes if nodes is None else nodes:
            if isinstance(n, LayerNode):
                yield n
            else:
                yield from self.layers(n.body)
                if n.shortcut:
                    yield from self.layers(n.shortcut)


class _Fail(Exception):
    def __init__(self, diag: Diagnostic):
        self.diag = diag


def build(models: dict[str, ast.ModelDef], call: CallValue, input_shape: tuple) -> Graph:
    """Expand a model call; every shape or argument problem is a located SpecError."""
    builder = _Builder(models)
    try:
        nodes, out = builder.invoke(call.func, call.args, call.kwargs, call.span, "", input_shape,
                                    kind_wanted="model", arg_spans=getattr(call, "arg_spans", {}))
    except _Fail as f:
        raise SpecError([f.diag]) from None
    graph = Graph(nodes, input_shape, out)
    graph.params = [p for layer in graph.layers() for p in layer.params]
    seen: dict[str, ParamSpec] = {}
    for p in graph.params:
        if p.name in seen:
            raise SpecError([Diagnostic(f"two layers are both named `{p.name.rsplit('.', 1)[0]}`",
                                        p.span, "give each layer its own name",
                                        notes=[("the other one", seen[p.name].span)])])
        seen[p.name] = p
    return graph


class _Builder:
    def __init__(self, models: dict[str, ast.ModelDef]):
        self.models = models
        self.depth = 0
        self.layers = 0

    # -- calls of definitions --------------------------------------------------------------

    def invoke(self, name, args, kwargs, span, scope, shape, kind_wanted=None, arg_spans=None):
        d = self.models.get(name)
        if d is None:
            known = list(self.models) + (list(KINDS) if kind_wanted is None else [])
            raise _Fail(Diagnostic(f"unknown {kind_wanted or 'layer or block'} `{name}`", span,
                                   did_you_mean(name, known)))
        if kind_wanted == "model" and d.kind != "model":
            raise _Fail(Diagnostic(f"`{name}` is a block; an experiment's model must be a `model`", span))
        self.depth += 1
        if self.depth > 32:
            raise _Fail(Diagnostic(f"`{name}` calls itself too deeply", span))
        env = self.bind(d, args, kwargs, span, arg_spans or {})
        nodes, out = self.stmts(d.body, env, scope, shape, counters={})
        self.depth -= 1
        return nodes, out

    def bind(self, d: ast.ModelDef, args, kwargs, span, arg_spans) -> dict:
        """The definition's parameters bound to the call's values. Each also remembers where
        its value was written (`_ORIGIN`), so a value found wrong deep inside a library model
        is reported at the argument the user wrote."""
        params = {p.name: p for p in d.params}
        if len(args) > len(d.params):
            raise _Fail(Diagnostic(f"`{d.name}` takes {len(d.params)} arguments, {len(args)} given", span))
        env = {}
        for i, (p, v) in enumerate(zip(d.params, args)):
            env[p.name] = v
            env[_ORIGIN, p.name] = arg_spans.get(i, span)
        for k, v in kwargs.items():
            if k not in params:
                raise _Fail(Diagnostic(f"`{d.name}` has no parameter `{k}`", arg_spans.get(("key", k), span),
                                       did_you_mean(k, params)))
            if k in env:
                raise _Fail(Diagnostic(f"`{k}` given twice to `{d.name}`", arg_spans.get(k, span)))
            env[k] = v
            env[_ORIGIN, k] = arg_spans.get(k, span)
        for p in d.params:
            if p.name not in env:
                if p.default is None:
                    raise _Fail(Diagnostic(f"`{d.name}` needs argument `{p.name}: {p.type}`", span,
                                           notes=[(f"`{d.name}` is defined here", d.name_span)]))
                env[p.name] = self.eval(p.default, {})
                env[_ORIGIN, p.name] = p.default.span
            env[p.name] = self.check_type(env[p.name], p.type, f"`{d.name}`'s `{p.name}`", span)
        return env

    def check_type(self, v, t: ast.TypeRef, what: str, span: Span):
        ok = {"int": lambda x: isinstance(x, int) and not isinstance(x, bool),
              "float": lambda x: isinstance(x, (int, float)) and not isinstance(x, bool),
              "bool": lambda x: isinstance(x, bool), "str": lambda x: isinstance(x, str)}
        if t.name == "list":
            if not isinstance(v, list):
                raise _Fail(Diagnostic(f"{what} must be {t}, got {describe(v)}", span))
            return [self.check_type(x, t.args[0], what, span) for x in v] if t.args else v
        if t.name not in ok:
            raise _Fail(Diagnostic(f"unknown type `{t.name}`", t.span, did_you_mean(t.name, [*ok, "list"])))
        if not ok[t.name](v):
            raise _Fail(Diagnostic(f"{what} must be {t}, got {describe(v)}", span))
        return float(v) if t.name == "float" else v

    # -- statements ------------------------------------------------------------------------

    def stmts(self, stmts, env, scope, shape, counters):
        nodes = []
        for s in stmts:
            if isinstance(s, ast.Chain):
                more, shape = self.chain(s, env, scope, shape, counters)
            elif isinstance(s, ast.ForLoop):
                more, shape = self.loop(s, env, scope, shape, counters)
            else:
                more, shape = self.residual(s, env, scope, shape, counters)
            nodes += more
        return nodes, shape

    def loop(self, s: ast.ForLoop, env, scope, shape, counters):
        items = self.eval(s.iterable, env)
        if not isinstance(items, list):
            raise _Fail(Diagnostic(f"`for` needs a list, got {describe(items)}", s.iterable.span))
        nodes = []
        origin = self.blame(s.iterable, env)
        for i, item in enumerate(items):
            inner = dict(env, **{s.var: item}, **({s.index: i} if s.index else {}))
            inner[_ORIGIN, s.var] = origin
            more, shape = self.stmts(s.body, inner, scope, shape, counters)
            nodes += more
        return nodes, shape

    def residual(self, s: ast.Residual, env, scope, shape, counters):
        body, out = self.stmts(s.body, env, scope, shape, counters)
        if s.shortcut is None:
            short, short_out = None, shape
        else:
            short, short_out = self.stmts(s.shortcut, env, _join(scope, "shortcut"), shape, {})
        if tuple(out) != tuple(short_out):
            raise _Fail(Diagnostic(
                f"residual branch gives {fmt_shape(out)} but the shortcut gives {fmt_shape(short_out)}",
                s.span, "add a `shortcut { ... }` that maps the input to the branch's shape"
                if s.shortcut is None else "make both branches end in the same shape"))
        return [ResidualNode(body, short, shape, out, s.span)], out

    def chain(self, c: ast.Chain, env, scope, shape, counters):
        nodes = []
        chain_scope = None
        for layer in c.layers:
            name = self.layer_name(layer.name, env) if layer.name else None
            base = scope if chain_scope is None else chain_scope
            if name is not None:
                here = _join(base, name)
                if chain_scope is None:
                    chain_scope = here
            else:
                here = None
            more, shape = self.layer(layer, env, base, here, shape, counters)
            nodes += more
        return nodes, shape

    def layer(self, layer: ast.Layer, env, base, here, shape, counters):
        call = layer.call
        args = [self.eval(a.value, env) for a in call.positional]
        kwargs = {}
        for a in call.keywords:
            if a.name in kwargs:
                raise _Fail(Diagnostic(f"argument `{a.name}` given twice", a.span))
            kwargs[a.name] = self.eval(a.value, env)
        if call.func in self.models:
            scope = here or _join(base, _auto(call.func, base, counters))
            spans = {i: self.blame(a.value, env) for i, a in enumerate(call.positional)}
            spans.update({a.name: self.blame(a.value, env) for a in call.keywords})
            return self.invoke(call.func, args, kwargs, call.span, scope, shape, arg_spans=spans)
        self.layers += 1
        if self.layers > MAX_LAYERS:
            raise _Fail(Diagnostic(f"the model expands to more than {MAX_LAYERS:,} layers", call.span,
                                   "check the loops that repeat this layer"))
        kind = KINDS.get(call.func)
        if kind is None:
            raise _Fail(Diagnostic(f"unknown layer `{call.func}`", call.span,
                                   did_you_mean(call.func, list(KINDS) + list(self.models))))
        values = self.layer_args(kind, args, kwargs, call, env)
        try:
            out = kind.out_shape(values, shape)
            pshapes = kind.params(values, shape)
        except ShapeError as e:
            raise _Fail(Diagnostic(e.message, call.span, e.hint))
        if pshapes and here is None:
            here = _join(base, _auto(kind.name, base, counters))
        scope = here or base
        fan = math.prod(pshapes[0].shape[1:]) if pshapes and len(pshapes[0].shape) > 1 else None
        params = [ParamSpec(_join(scope, p.local), p.shape, p.init, call.span, fan) for p in pshapes]
        return [LayerNode(scope, kind.name, values, shape, out, params, call.span)], out

    def layer_args(self, kind: LayerKind, args, kwargs, call: ast.Call, env) -> dict:
        names = [a.name for a in kind.args]
        if len(args) > len(kind.args):
            raise _Fail(Diagnostic(f"`{kind.name}` takes at most {len(kind.args)} arguments "
                                   f"({', '.join(names) or 'none'}), {len(args)} given", call.span))
        values = dict(zip(names, args))
        written = dict(zip(names, (a.value for a in call.positional)))
        for a in call.keywords:
            if a.name not in names:
                raise _Fail(Diagnostic(f"`{kind.name}` has no argument `{a.name}`", a.span,
                                       did_you_mean(a.name, names)))
            if a.name in values:
                raise _Fail(Diagnostic(f"`{kind.name}`'s `{a.name}` is given twice, by position and by name",
                                       a.span, "keep one of them"))
            values[a.name] = kwargs[a.name]
            written[a.name] = a.value
        for spec in kind.args:
            if spec.name not in values:
                if spec.default is REQUIRED:
                    raise _Fail(Diagnostic(f"`{kind.name}` needs argument `{spec.name}`", call.span))
                values[spec.name] = spec.default
            v = values[spec.name]
            if v is None and spec.default is None:
                continue
            least = 0 if spec.name == "pad" else 1

            def good(x, t=spec.type, least=least):
                return {"int": lambda: isinstance(x, int) and not isinstance(x, bool) and x >= least,
                        "float": lambda: isinstance(x, (int, float)) and not isinstance(x, bool),
                        "bool": lambda: isinstance(x, bool)}[t]()
            is_int = isinstance(v, int) and not isinstance(v, bool)
            if not good(v):
                want = {"int": ("an integer" if not is_int else
                                "a positive integer" if least else "at least 0"),
                        "float": "a number", "bool": "true or false"}[spec.type]
                message = f"`{kind.name}`'s `{spec.name}` must be {want}, got {describe(v)}"
                raise _Fail(self.located(message, written.get(spec.name), env, call.span,
                                         suspect=lambda x, good=good: not good(x)))
        return values

    def blame(self, expr, env, suspect=None) -> Span:
        """Where the value of `expr` was written: the argument a parameter it names was bound
        to (followed through blocks and loops), else `expr` itself. Of several parameters
        (`h * width`), the first whose own value is `suspect`, else the first."""
        stack, found = [expr], []
        while stack:
            node = stack.pop()
            if isinstance(node, ast.Name) and len(node.parts) == 1 and (_ORIGIN, node.parts[0]) in env:
                found.append(node.parts[0])
            if isinstance(node, ast.BinOp):
                stack += [node.right, node.left]
            elif isinstance(node, ast.Neg):
                stack.append(node.operand)
            elif isinstance(node, ast.List):
                stack += reversed(node.items)
            elif isinstance(node, ast.Call):
                stack += [a.value for a in reversed(node.args)]
        if not found:
            return expr.span
        guilty = [n for n in found if suspect is not None and suspect(env.get(n))]
        return env[_ORIGIN, (guilty or found)[0]]

    def located(self, message: str, expr, env, call_span: Span, suspect=None) -> Diagnostic:
        """A bad layer argument, at the place the user wrote its value when that is elsewhere
        (`mlp(width: 0)` in the experiment, not `linear(h * width)` in the library)."""
        origin = self.blame(expr, env, suspect) if expr is not None else call_span
        if expr is None or origin == expr.span:
            return Diagnostic(message, call_span)
        return Diagnostic(message, origin, notes=[("the layer that receives it", call_span)])

    def layer_name(self, n: ast.LayerName, env) -> str:
        text = "".join(p if isinstance(p, str) else str(self.eval(p, env)) for p in n.parts)
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", text):
            raise _Fail(Diagnostic(f"`{text}` is not a valid layer name", n.span))
        return text

    def eval(self, node, env):
        def lookup(name: ast.Name):
            if len(name.parts) == 1 and name.parts[0] in env:
                return env[name.parts[0]]
            raise EvalError(f"unknown name `{name.dotted}`", name.span,
                            did_you_mean(name.parts[0], [k for k in env if isinstance(k, str)]))
        try:
            return evaluate(node, lookup)
        except EvalError as e:
            raise _Fail(Diagnostic(e.message, e.span, e.hint))


# Key in a model body's environment of where a parameter's value was written.
_ORIGIN = "origin"


def _join(scope: str, name: str) -> str:
    return f"{scope}.{name}" if scope else name


def _auto(kind: str, scope: str, counters: dict) -> str:
    key = (scope, kind)
    counters[key] = counters.get(key, 0) + 1
    return f"{kind}{counters[key]}"
