"""What hovering shows: the compiler's facts about the text under the cursor.

  a layer of a model       its input and output shapes and parameter count, and each of its
                           tensors' role, init and inner lr, in an experiment that uses it
  a model's name           its output shape and parameter count by role
  a selector               the parameters it matches, with role, init and inner lr
  an experiment's name,    the whole compiled model, layer by layer
  or its `model:` entry

Shapes exclude the batch axis, as in `mtdsl show`.
"""

from __future__ import annotations

from typing import Callable, Iterable

from ..compile import selectors
from ..compile.compiler import Compiled
from ..compile.graph import LayerNode
from ..compile.layers import KINDS, fmt_shape
from ..compile.plan import ParamPlan
from ..language import ast
from .analysis import Analysis
from .positions import contains, nodes_at

Users = Callable[[], Iterable[Analysis]]


def hover(analysis: Analysis, users: Users, line: int, col: int) -> str | None:
    module = analysis.module
    if module is None:
        return None
    chain = [n for item in module.items for n in nodes_at(item, line, col)]
    if not chain:
        return None
    top = chain[0]
    if isinstance(top, ast.ModelDef):
        layer = next((n for n in reversed(chain) if isinstance(n, ast.Layer)), None)
        if layer is not None:
            return _layer(layer, users)
        if contains(top.name_span, line, col):
            return _model(top, users)
        return None
    if isinstance(top, ast.Experiment):
        compiled = next((c for c in analysis.compiled if c.resolved.name == top.name), None)
        if compiled is None:
            return None
        pattern = _selector(chain)
        if pattern is not None:
            return _matches(pattern, compiled)
        model_entry = any(isinstance(n, ast.Assign) and any(n is e for e in top.entries) and
                          any(isinstance(t, ast.Path) and t.parts == ["model"] for t in n.targets)
                          for n in chain)
        if model_entry or contains(top.name_span, line, col):
            return _summary(compiled) + "\n\n" + _table(compiled, list(compiled.graph.layers()))
    return None


def _selector(chain: list[ast.Node]) -> str | None:
    for n in reversed(chain):
        if isinstance(n, ast.Selector):
            return n.pattern
        if isinstance(n, ast.Path) and n.index is not None:
            return n.index
    return None


def _find_layers(call: ast.Call, users: Users) -> tuple[Compiled, list[LayerNode]] | None:
    """The first compiled experiment whose model expands this layer call (a loop expands it
    into several layers)."""
    for a in users():
        for c in a.compiled:
            hits = [n for n in c.graph.layers() if n.span == call.span]
            if hits:
                return c, hits
    return None


def _layer(layer: ast.Layer, users: Users) -> str:
    call = layer.call
    kind = KINDS.get(call.func)
    head = f"**{call.func}**" + (f": {kind.doc}" if kind and kind.doc else "")
    if kind is None:  # a block: its own layers carry the shapes
        return head + " (a block; hover its layers in its definition for shapes and counts)"
    found = _find_layers(call, users)
    if found is None:
        return head + "\n\nNo experiment that uses this model compiles, so its shapes are unknown."
    compiled, nodes = found
    return head + "\n\n" + _table(compiled, nodes)


def _model(model: ast.ModelDef, users: Users) -> str:
    for a in users():
        for c in a.compiled:
            if c.experiment.model.func == model.name:
                return f"**{model.kind} {model.name}**\n\n" + _summary(c)
    return f"**{model.kind} {model.name}**"


def _summary(c: Compiled) -> str:
    plan, graph = c.plan, c.graph
    total = sum(p.numel for p in plan.params)
    roles = {r: sum(p.numel for p in plan.params if p.role == r) for r in ("masked", "meta", "fixed")}
    return (f"in experiment `{c.resolved.name}`: input {fmt_shape(graph.input_shape)}, "
            f"output {fmt_shape(graph.output_shape)}, {total:,} parameters ("
            + ", ".join(f"{r} {n:,}" for r, n in roles.items() if n) + ")")


def _table(c: Compiled, nodes: list[LayerNode]) -> str:
    plans = {p.name: p for p in c.plan.params}
    rows = ["| layer | input | output | parameters |", "|---|---|---|---|"]
    for n in nodes:
        count = sum(p.numel for p in n.params)
        rows.append(f"| `{n.scope or '.'}` {n.kind} | {fmt_shape(n.in_shape)} | {fmt_shape(n.out_shape)} "
                    f"| {count:,} |")
    params = [plans[p.name] for n in nodes for p in n.params]
    text = (f"in experiment `{c.resolved.name}` (shapes without the batch axis)\n\n"
            if len(nodes) < len(list(c.graph.layers())) else "") + "\n".join(rows)
    return text + ("\n\n" + _params(params) if params else "")


def _params(params: list[ParamPlan]) -> str:
    rows = ["| parameter | shape | role | init | inner lr |", "|---|---|---|---|---|"]
    rows += [f"| `{p.name}` | {fmt_shape(p.shape)} | {p.role} | {p.init} | {p.inner_lr:g} |" for p in params]
    return "\n".join(rows)


def _matches(pattern: str, c: Compiled) -> str:
    hit = [p for p in c.plan.params if selectors.matches(pattern, p.name)]
    if not hit:
        return f'selector "{pattern}" matches no parameter of `{c.resolved.name}`'
    count = sum(p.numel for p in hit)
    return (f'selector "{pattern}" matches {len(hit)} parameter{"s" * (len(hit) != 1)} '
            f"({count:,} values) in `{c.resolved.name}`:\n\n" + _params(hit))
