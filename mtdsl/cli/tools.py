"""The spec tools beside check/show/run: `fmt`, `diff` and `schema`."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import SpecError
from ..language.diagnostics import Diagnostic
from ..language.parser import parse
from ..language.printer import format_module
from .select import compile_ref


def format_file(path: Path) -> tuple[str, str]:
    """(original, formatted) text of a file; a file that does not parse is a SpecError."""
    try:
        text = path.read_text()
    except OSError as e:
        raise SpecError([Diagnostic(f"cannot read `{path}`: {e.strerror}", None)]) from None
    module, diags = parse(text, str(path))
    if diags:
        raise SpecError(diags)
    return text, format_module(module, text)


def flatten(value, prefix: str = "") -> dict[str, object]:
    """Dotted paths to leaves; selector tables print as `lr["head.**"]`."""
    out: dict[str, object] = {}
    if isinstance(value, dict) and value and "kind" not in value:
        for k, v in value.items():
            key = f'{prefix}["{k}"]' if any(ch in k for ch in "*.{") else (f"{prefix}.{k}" if prefix else k)
            out.update(flatten(v, key))
    else:
        out[prefix] = value
    return out


def resolved_values(ref: str, overrides: list[str]) -> dict[str, object]:
    [c] = _one(ref, overrides)
    spec = c.experiment.model_dump(mode="json", exclude={"model"})
    spec["model"] = {"kind": c.experiment.model.func, **c.experiment.model.kwargs}
    values = flatten(spec)
    for p in c.plan.params:  # what the selectors decided, per parameter
        for field in ("role", "inner_lr", "init"):
            values[f'parameters["{p.name}"].{field}'] = getattr(p, field)
    return values


def _one(ref: str, overrides: list[str]):
    compiled = compile_ref(ref, overrides)
    if len(compiled) != 1:
        names = ", ".join(f"{ref}::{c.resolved.name}" for c in compiled)
        raise SpecError([Diagnostic(f"`{ref}` defines {len(compiled)} experiments; pick one: {names}", None)])
    return compiled


def diff_lines(a: dict[str, object], b: dict[str, object]) -> list[str]:
    lines = []
    for key in list(a) + [k for k in b if k not in a]:
        old, new = a.get(key, ABSENT), b.get(key, ABSENT)
        if old != new:
            lines.append(f"{key}: {_show(old)} -> {_show(new)}")
    return lines


ABSENT = object()


def _show(v) -> str:
    if v is ABSENT:
        return "(not set)"
    if isinstance(v, dict):
        return v["kind"] + "(" + ", ".join(f"{k}: {_show(x)}" for k, x in v.items() if k != "kind") + ")"
    if isinstance(v, list):
        return "[" + ", ".join(_show(x) for x in v) + "]"
    if v is None:
        return "none"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if isinstance(v, str) and not v.replace("_", "").isalnum():
        return json.dumps(v)
    return str(v)


def schema() -> dict:
    from ..validate.spec import Experiment

    document = Experiment.model_json_schema()
    document["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    document["title"] = "mtdsl resolved experiment"
    return document
