"""`mtdsl show`: what will actually run — the compiled model table and the plan."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from ..compile.compiler import Compiled
from ..compile.layers import fmt_shape


def print_compiled(console: Console, c: Compiled) -> None:
    exp, plan, graph = c.experiment, c.plan, c.graph
    table = Table(title=f"{c.resolved.name}: model {exp.model.func}, input {fmt_shape(graph.input_shape)}")
    for col in ("layer", "output", "parameter", "shape", "count", "role", "inner lr", "init"):
        table.add_column(col, justify="right" if col in ("count", "inner lr") else "left")
    roles = {p.name: p for p in plan.params}
    for layer in graph.layers():
        first = True
        for p in layer.params or [None]:
            pp = roles.get(p.name) if p else None
            table.add_row(f"{layer.scope or '.'} {layer.kind}" if first else "",
                          fmt_shape(layer.out_shape) if first else "",
                          p.name if p else "", fmt_shape(p.shape) if p else "",
                          f"{p.numel:,}" if p else "", pp.role if pp else "",
                          f"{pp.inner_lr:g}" if pp else "", pp.init if pp else "")
            first = False
    console.print(table)
    total = sum(p.numel for p in plan.params)
    by_role = {r: sum(p.numel for p in plan.params if p.role == r) for r in ("masked", "meta", "fixed")}
    console.print(f"parameters: {total:,} ({total / 1e6:.2f} M) — "
                  + ", ".join(f"{r} {n:,}" for r, n in by_role.items() if n))
    o, i, m = plan.outer, plan.inner, plan.mask
    opt = o.optimizer
    console.print(f"meta-learned: {'scores of masked tensors' if by_role['masked'] else ''}"
                  f"{' and ' if by_role['masked'] and by_role['meta'] else ''}"
                  f"{'initial values of meta tensors' if by_role['meta'] else ''}")
    if by_role["masked"]:
        console.print(f"mask: weights {plan.params[0].init if False else exp.mask.weights}, scores {m.scores_init}, "
                      f"threshold at sparsity {m.sparsity:g}"
                      + (f", IteRand every {m.iterand_every} (p={m.iterand_prob:g})" if m.iterand_every else ""))
    console.print(f"inner: {i.steps} step(s) in training, {i.test_steps} at test, {i.order} order")
    console.print(f"outer: {opt.name}(lr {opt.lr:g}" + (f", momentum {opt.momentum:g}" if opt.name == "sgd" else "")
                  + f"), schedule {o.schedule.name}" + (f" (warmup {o.schedule.warmup})" if o.schedule.name != "none" else "")
                  + f", {o.iterations} iterations x {o.meta_batch} tasks "
                  + (f"(chunks of {o.chunk_size})" if o.tasks_in == "chunks" else f"({o.tasks_in})"))
    t = plan.task
    console.print("tasks: " + (f"{t.ways}-way " if t.ways else "") + f"{t.shots}-shot, {t.queries} queries"
                  f"; loss {plan.loss}; seeds {exp.seeds}")
