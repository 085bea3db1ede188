"""`file.mt` or `file.mt::name`: which experiments of a file a command acts on."""

from __future__ import annotations

from pathlib import Path

from ..compile.compiler import Compiled, compile_experiment
from ..errors import SpecError
from ..language.diagnostics import Diagnostic, did_you_mean
from ..validate.loader import Workspace, load


def split_ref(ref: str) -> tuple[str, str | None]:
    path, _, name = ref.partition("::")
    return path, name or None


def load_ref(ref: str) -> tuple[Workspace, list[str]]:
    """The workspace of the file and the experiment names the reference picks."""
    path, name = split_ref(ref)
    if not Path(path).exists():
        raise SpecError([Diagnostic(f"no such spec file: `{path}`", None,
                                    "give the path of a .mt file, e.g. specs/omniglot_mlp_ticket.mt")])
    ws = load(path)
    if ws.diagnostics:
        raise SpecError(ws.diagnostics)
    if name is None:
        return ws, list(ws.own)
    if name not in ws.experiments:
        raise SpecError([Diagnostic(f"`{path}` defines no experiment `{name}`", None,
                                    did_you_mean(name, ws.own))])
    return ws, [name]


def compile_ref(ref: str, overrides: list[str]) -> list[Compiled]:
    """Compile every experiment the reference picks, gathering all their errors."""
    ws, names = load_ref(ref)
    compiled, diags = [], []
    for name in names:
        try:
            compiled.append(compile_experiment(ws, name, overrides))
        except SpecError as e:
            diags += [d for d in e.diagnostics if d.render() not in {x.render() for x in diags}]
    if diags:
        raise SpecError(diags)
    return compiled
