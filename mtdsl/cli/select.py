"""`file.mt` or `file.mt::name`: which experiments of a file a command acts on."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..compile.compiler import Compiled, compile_experiment
from ..errors import SpecError
from ..language.diagnostics import Diagnostic, did_you_mean
from ..validate.loader import Workspace, load
from ..validate.sweep import expand


def split_ref(ref: str) -> tuple[str, str | None]:
    path, _, name = ref.partition("::")
    return path, name or None


def load_ref(ref: str) -> tuple[Workspace, list[str]]:
    """The workspace of the file and the experiment or sweep names the reference picks:
    `file.mt::name`, or everything the file itself defines."""
    path, name = split_ref(ref)
    if not Path(path).exists():
        raise SpecError([Diagnostic(f"no such spec file: `{path}`", None,
                                    "give the path of a .mt file, e.g. specs/omniglot_mlp_ticket.mt")])
    ws = load(path)
    if ws.diagnostics:
        raise SpecError(ws.diagnostics)
    if name is None:
        if not (ws.own or ws.own_sweeps or ws.own_models):  # empty, comments or imports only
            from ..language.source import Span
            from ..validate.loader import display_path

            shown = display_path(Path(path))
            raise SpecError([Diagnostic(f"`{shown}` defines no experiment, sweep or model", Span(shown, 1, 1, 1, 1),
                                        "a spec defines at least one `experiment NAME { ... }`")])
        return ws, list(ws.own) + list(ws.own_sweeps)
    if name not in ws.experiments and name not in ws.sweeps:
        raise SpecError([Diagnostic(f"`{path}` defines no experiment or sweep `{name}`", None,
                                    did_you_mean(name, ws.own + ws.own_sweeps))])
    return ws, [name]


@dataclass
class Unit:
    """One thing to run: an experiment, or one point of a sweep."""

    compiled: Compiled
    group: str  # the experiment's or the sweep's name
    label: str | None = None  # the sweep point, e.g. "model.width=2,seed=1"


def compile_units(ref: str, overrides: list[str]) -> list[Unit]:
    """Compile every experiment and sweep point the reference picks, gathering all errors."""
    ws, names = load_ref(ref)
    return compile_names(ws, names, overrides)


def compile_names(ws: Workspace, names: list[str], overrides: list[str]) -> list[Unit]:
    """Compile the named experiments and sweeps of a loaded workspace, gathering all errors."""
    units, diags = [], []

    def add(e: SpecError):
        seen = {x.render() for x in diags}
        diags.extend(d for d in e.diagnostics if d.render() not in seen)

    for name in names:
        try:
            if name in ws.sweeps:
                points, errors = expand(ws, name)
                if errors:
                    raise SpecError(errors)
                base = ws.sweeps[name].base
                for p in points:
                    try:
                        units.append(Unit(compile_experiment(ws, base, overrides, p.assigns), name, p.label))
                    except SpecError as e:
                        add(e)
            else:
                units.append(Unit(compile_experiment(ws, name, overrides), name))
        except SpecError as e:
            add(e)
    if diags:
        raise SpecError(diags)
    return units


def compile_ref(ref: str, overrides: list[str]) -> list[Compiled]:
    """The compiled experiments (sweep points included) the reference picks."""
    return [u.compiled for u in compile_units(ref, overrides)]
