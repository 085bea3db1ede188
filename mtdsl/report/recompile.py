"""A run's spec compiled again, to rebuild the exact module its tensors belong to.

spec.mt in a run folder is the operative spec: self-contained (imports, inheritance and
overrides applied, the model definitions included), so it compiles without the files it
came from. The recompiled parameter table must equal the one resolved.json recorded;
otherwise the module would not be the one the tensors were trained in.
"""

from __future__ import annotations

from mtdsl.compile.compiler import Compiled, compile_experiment
from mtdsl.errors import RunError, SpecError
from mtdsl.report.rundir import RESOLVED, Run
from mtdsl.validate.loader import load


def parameter_table(c: Compiled) -> list[dict]:
    """resolved.json's parameter table: name, shape, role, inner lr and init per tensor."""
    return [{"name": p.name, "shape": list(p.shape), "role": p.role, "inner_lr": p.inner_lr,
             "init": p.init} for p in c.plan.params]


def compile_run(run: Run) -> Compiled:
    """The run's experiment, compiled from its folder's spec.mt."""
    path = run.spec_file
    if not path.is_file():
        raise RunError(f"{run.path} has no spec.mt, so its model cannot be rebuilt")
    name = (run.resolved or {}).get("experiment", run.experiment)
    ws = load(path)
    try:
        if ws.diagnostics:
            raise SpecError(ws.diagnostics)
        if name not in ws.experiments:
            raise RunError(f"{path} defines no experiment {name!r}")
        compiled = compile_experiment(ws, name)
    except SpecError as e:
        raise RunError(f"{path} does not compile on its own ({e.diagnostics[0].message}); "
                       "runs before operative specs stored spec.mt with its imports") from e
    recorded = (run.resolved or {}).get("parameters")
    now = parameter_table(compiled)
    if recorded != now:
        differ = [a["name"] for a, b in zip(recorded or [], now) if a != b] or ["the parameter list"]
        raise RunError(f"{path} does not give the model {RESOLVED} recorded: "
                       f"{', '.join(differ[:4])} differ")
    return compiled
