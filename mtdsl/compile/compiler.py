"""Spec to plan: the model expanded, every parameter given a role and an inner lr, and
every way a spec can be wrong but well-typed reported (selectors, head size, roles).

Nothing here imports torch: `mtdsl check` and `mtdsl show` run the whole compiler.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import SpecError
from ..language.diagnostics import Diagnostic, did_you_mean, sort_key
from ..language.source import Span
from ..validate import spec as S
from ..validate.loader import Workspace
from ..validate.resolve import Resolved, resolve
from . import selectors
from .contradictions import contradictions
from .task_limits import check_task_limits
from .graph import Graph, build
from .plan import (DevicePlan, EvalPlan, InnerPlan, MaskPlan, OptimizerPlan, OuterPlan, ParamPlan,
                   Plan, SchedulePlan, TaskPlan)


@dataclass
class Compiled:
    resolved: Resolved
    graph: Graph
    plan: Plan
    # Diagnostics of severity "warning": the spec compiles, but says something it does not do.
    warnings: list[Diagnostic] = field(default_factory=list)

    @property
    def experiment(self) -> S.Experiment:
        return self.resolved.experiment


def compile_experiment(ws: Workspace, name: str, overrides: list[str] = (),
                       assigns: list = ()) -> Compiled:
    try:
        resolved = resolve(ws, name, overrides, assigns)
    except SpecError as e:
        more = _model_diagnostics(ws, getattr(e, "located", None))
        raise SpecError(sorted(e.diagnostics + more, key=sort_key)) from None
    exp = resolved.experiment
    diags: list[Diagnostic] = []
    model_span = resolved.located.spans.get(("model",), resolved.definition.name_span)
    if not hasattr(exp.model, "func"):
        raise SpecError([Diagnostic("`model` must call a model definition, e.g. `mlp(classes: 5)`",
                                    model_span)])
    graph = build(ws.models, exp.model, exp.data.train.input_shape)
    _check_task(exp, graph, model_span, resolved, diags)
    names = [p.name for p in graph.params]
    roles = _assign(resolved, "params", exp.params, names, "role", diags)
    lrs = _assign(resolved, "inner.lr", exp.inner.lr, names, "inner learning rate", diags)
    inits = _assign(resolved, "init", exp.init, names, "init", diags, required=False)
    if roles and len(roles) == len(names) and not any(r in ("masked", "meta") for r in roles.values()):
        diags.append(Diagnostic("nothing is meta-learned: no parameter is `masked` or `meta`",
                                resolved.located.key_spans.get(("params",), model_span),
                                'mark weights `masked` (Meta-ticket) or `meta` (MAML)'))
    if diags:
        raise SpecError(sorted(diags, key=sort_key))
    params = tuple(ParamPlan(p.name, p.shape, roles[p.name], lrs[p.name],
                             inits.get(p.name) or (exp.mask.weights if roles[p.name] == "masked" else p.init),
                             fan_in=p.fan_in)
                   for p in graph.params)
    return Compiled(resolved, graph, _plan(exp, params),
                    _mask_weights_unused(resolved, params) + contradictions(resolved, params))


def _mask_weights_unused(resolved: Resolved, params: tuple[ParamPlan, ...]) -> list[Diagnostic]:
    """A warning when `init` selectors take every masked tensor, so `mask.weights` draws none."""
    exp = resolved.experiment
    masked = [p.name for p in params if p.role == "masked"]
    patterns = list(exp.init)
    winners = {n: selectors.resolve(n, patterns)[0] for n in masked}
    if not masked or any(w is None for w in winners.values()):
        return []
    spans = resolved.located.key_spans
    set_here = spans.get(("mask", "weights"))
    inits = sorted({exp.init[w] for w in winners.values()})
    what = (f"`mask.weights: {exp.mask.weights}` is set" if set_here
            else f"`mask.weights` defaults to {exp.mask.weights}")
    where = set_here or spans.get(("init", winners[masked[0]]))
    return [Diagnostic(
        f"{what} but `init` overrides it for every masked tensor: {_names(masked)} "
        f"{'are' if len(masked) > 1 else 'is'} drawn from {', '.join(inits)}", where,
        f"narrow the `init` selectors to the unmasked tensors, or set `mask.weights: {inits[0]}`",
        severity="warning",
        notes=[(f'"{w}" in `init` takes {", ".join(n for n in masked if winners[n] == w)}',
                spans.get(("init", w))) for w in dict.fromkeys(winners.values())
               if spans.get(("init", w)) != where])]


def _model_diagnostics(ws: Workspace, located) -> list[Diagnostic]:
    """Model errors of a spec whose other fields failed to validate: a user sees a misspelt
    field and an unknown layer in one run, not one after the other."""
    from pydantic import TypeAdapter, ValidationError

    from ..validate.evaluate import CallValue
    from ..validate.resolve import _pydantic_input

    if located is None or located.errors:  # a value that failed to evaluate would only echo
        return []
    value = located.value
    call = value.get("model")
    train = (value.get("data") or {}).get("train") if isinstance(value.get("data"), dict) else None
    if not isinstance(call, CallValue) or train is None:
        return []
    try:
        dataset = TypeAdapter(S.Dataset).validate_python(_pydantic_input(train, ("data", "train")))
        build(ws.models, call, dataset.input_shape)
    except ValidationError:
        return []
    except SpecError as e:
        return e.diagnostics
    return []


def _check_task(exp: S.Experiment, graph: Graph, span: Span, resolved: Resolved, diags) -> None:
    kind = exp.data.train.task_kind
    task_span = resolved.located.key_spans.get(("task",), span)
    if kind == "classification":
        if exp.task.ways is None:
            diags.append(Diagnostic("classification needs `task.ways`", task_span, "add `ways: 5`"))
        elif graph.output_shape != (exp.task.ways,):
            diags.append(Diagnostic(
                f"the model ends in {_shape(graph.output_shape)} outputs but task.ways is {exp.task.ways}",
                span, "give the head `classes: task.ways`"))
    else:
        if exp.task.ways is not None:
            diags.append(Diagnostic("regression tasks have no `ways`",
                                    resolved.located.key_spans.get(("task", "ways"), task_span),
                                    "remove `ways`"))
        if graph.output_shape != (1,):
            diags.append(Diagnostic(f"a regression model must end in 1 output, this one gives "
                                    f"{_shape(graph.output_shape)}", span))
    diags += check_task_limits(exp, resolved.located.spans, resolved.located.key_spans, task_span)
    for field in ("valid", "test"):
        for ds in ([exp.data.valid] if field == "valid" else exp.data.test):
            where = resolved.located.spans.get(("data", field), span)
            if ds is not None and ds.task_kind != kind:
                diags.append(Diagnostic(f"`data.{field}` is {ds.task_kind} but `data.train` is {kind}", where))
            elif ds is not None and ds.input_shape != graph.input_shape:
                diags.append(Diagnostic(
                    f"`data.{field}` gives inputs of shape {_shape(ds.input_shape)} but the model takes "
                    f"{_shape(graph.input_shape)} (from `data.train`)", where,
                    "set the dataset's size (and channels) to match the training data"))


def _shape(shape) -> str:
    return "x".join(map(str, shape))


def _assign(resolved: Resolved, where: str, table: dict, names: list[str], what: str, diags,
            required: bool = True) -> dict:
    """Give every parameter the value of its most specific selector; report every problem."""
    path = tuple(where.split("."))
    spans = resolved.located.key_spans
    section = spans.get(path, resolved.definition.name_span)

    def at(pattern):
        return spans.get(path + (pattern,), section)

    malformed = False
    for pattern in table:
        why = selectors.valid(pattern)
        if why:
            diags.append(Diagnostic(f"malformed selector `{pattern}`: {why}", at(pattern)))
            malformed = True
    if malformed:  # what the table assigns is unknowable; its other checks would only echo
        return {}
    patterns = list(table)
    out, won, unassigned, ties = {}, set(), [], {}
    for name in names:
        best, tied = selectors.resolve(name, patterns)
        if best is None:
            unassigned.append(name)
            continue
        if len(tied) > 1:
            ties.setdefault(tuple(tied), []).append(name)
        won.add(best)
        out[name] = table[best]
    for tied, hit in ties.items():
        diags.append(Diagnostic(
            f"{_names(hit)} {'get their' if len(hit) > 1 else 'gets its'} {what} from "
            f"{len(tied)} equally specific selectors: " + ", ".join(f'"{t}"' for t in tied),
            at(tied[1]), "add a more specific selector for them, or narrow one of these",
            notes=[(f'"{t}" is here', at(t)) for t in tied[:1]]))
    for pattern in patterns:
        hit = [n for n in names if selectors.matches(pattern, n)]
        if not hit:
            diags.append(Diagnostic(f'selector "{pattern}" in `{where}` matches no parameter',
                                    at(pattern), did_you_mean(pattern, names) or
                                    f"parameters are named like `{names[0]}`" if names else None))
        elif pattern not in won:
            origins = resolved.located.origins
            winners = sorted({selectors.resolve(n, patterns)[0] for n in hit})
            inherited = [w for w in winners if origins.get(path + (w,)) != origins.get(path + (pattern,))]
            diags.append(Diagnostic(
                f'selector "{pattern}" in `{where}` decides nothing: every parameter it matches '
                "is taken by a more specific selector", at(pattern),
                f"to replace the inherited table, assign it whole: `{path[-1]} = {{ ... }}`"
                if inherited else "remove it or make it more specific",
                notes=[(f'"{w}" (from {origins.get(path + (w,), "?")}) takes precedence', at(w))
                       for w in winners]))
    if unassigned and required:
        diags.append(Diagnostic(f"no {what} for {_names(unassigned)}", section,
                                'add a selector that matches them, e.g. "**": ...'))
    return out


def _names(names: list[str]) -> str:
    return ", ".join(f"`{n}`" for n in names[:6]) + (f" and {len(names) - 6} more" if len(names) > 6 else "")


def _plan(exp: S.Experiment, params: tuple[ParamPlan, ...]) -> Plan:
    opt = exp.outer.optimizer
    optimizer = OptimizerPlan(name=opt.kind, lr=opt.lr, weight_decay=opt.weight_decay,
                              momentum=getattr(opt, "momentum", 0.0),
                              nesterov=getattr(opt, "nesterov", False),
                              betas=tuple(getattr(opt, "betas", (0.9, 0.999))))
    sched = exp.outer.schedule
    schedule = SchedulePlan("cosine", sched.warmup) if sched is not None else SchedulePlan("none", 0)
    iterand = exp.mask.iterand
    classification = exp.data.train.task_kind == "classification"
    return Plan(
        params=params,
        mask=MaskPlan(scores_init=exp.mask.scores, sparsity=exp.mask.threshold.sparsity,
                      iterand_every=iterand.every if iterand else None,
                      iterand_prob=iterand.prob if iterand else 0.0),
        inner=InnerPlan(steps=exp.inner.steps,
                        test_steps=exp.inner.test_steps if exp.inner.test_steps is not None
                        else exp.inner.steps, order=exp.inner.order),
        outer=OuterPlan(optimizer=optimizer, schedule=schedule, iterations=exp.outer.iterations,
                        meta_batch=exp.outer.meta_batch,
                        tasks_in=getattr(exp.outer.tasks_in, "kind", exp.outer.tasks_in),
                        chunk_size=getattr(exp.outer.tasks_in, "size", None)),
        task=TaskPlan(ways=exp.task.ways if classification else None, shots=exp.task.shots,
                      queries=exp.task.queries),
        eval=EvalPlan(every=exp.eval.every, valid_tasks=exp.eval.valid_tasks,
                      test_tasks=exp.eval.test_tasks),
        loss="cross_entropy" if classification else "mse",
        device=DevicePlan(amp=exp.device.amp, channels_last=exp.device.channels_last,
                          compile=exp.device.compile),
    )
