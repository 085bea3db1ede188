"""Files and imports: a spec file and everything it imports, as one workspace of names.

Imports are relative to the importing file. A cycle, a missing file or a name defined
twice is an error that shows the import chain.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..language import ast
from ..language.diagnostics import Diagnostic
from ..language.parser import parse
from ..language.source import Source, Span, register


@dataclass
class Workspace:
    files: dict[str, ast.Module] = field(default_factory=dict)
    experiments: dict[str, ast.Experiment] = field(default_factory=dict)
    sweeps: dict[str, ast.Sweep] = field(default_factory=dict)
    models: dict[str, ast.ModelDef] = field(default_factory=dict)
    # Experiments defined in the file the user named, in order (imports' are only usable).
    own: list[str] = field(default_factory=list)
    own_sweeps: list[str] = field(default_factory=list)
    own_models: list[str] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)


def display_path(path: Path) -> str:
    """Paths relative to the working directory when possible, as compilers print them."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def load(path: str | Path, texts: dict[str, str] | None = None) -> Workspace:
    """`texts`: file contents by resolved path that replace what is on disk (an editor's
    unsaved buffers)."""
    ws = Workspace()
    root = Path(path)
    _load_file(ws, root, chain=[], top=True, texts=texts or {})
    return ws


def _load_file(ws: Workspace, path: Path, chain: list[tuple[str, Span]], top: bool,
               texts: dict[str, str]) -> None:
    name = display_path(path)
    key = str(path.resolve())
    if key in ws.files:
        return
    try:
        data = texts[key].encode("utf-8", "surrogatepass") if key in texts else path.read_bytes()
    except OSError as e:
        span = chain[-1][1] if chain else None
        why = "no such file" if isinstance(e, FileNotFoundError) else (e.strerror or str(e))
        ws.diagnostics.append(Diagnostic(f"cannot read `{name}`: {why}", span,
                                         notes=[(f"imported from {f}", s) for f, s in chain[:-1]]))
        return
    text, unreadable = decode(data, name)
    if unreadable is not None:
        ws.diagnostics.append(unreadable)
        return
    module, diags = parse(text, name)
    ws.diagnostics += diags
    if module is None:
        return
    ws.files[key] = module
    for item in module.items:
        if isinstance(item, ast.Import):
            if not item.path.strip() or "\x00" in item.path:
                ws.diagnostics.append(Diagnostic("an import names a file path", item.span,
                                                 'write the path of a .mt file, e.g. import "lib/models.mt"'))
                continue
            target = (path.parent / item.path)
            tkey = str(target.resolve())
            stack = [str(Path(p).resolve()) for p, _ in chain] + [key]
            if tkey in stack:
                ws.diagnostics.append(Diagnostic(
                    f"import cycle: `{item.path}` is already being imported", item.span,
                    "remove one of the imports in the cycle",
                    notes=[(f"imported from {f}", s) for f, s in chain]))
                continue
            _load_file(ws, target, chain + [(name, item.span)], top=False, texts=texts)
        elif isinstance(item, ast.Experiment):
            _define(ws, ws.experiments, "experiment", item, item.name_span)
            if top:
                ws.own.append(item.name)
        elif isinstance(item, ast.Sweep):
            _define(ws, ws.sweeps, "sweep", item, item.name_span)
            if top:
                ws.own_sweeps.append(item.name)
        elif isinstance(item, ast.ModelDef):
            _define(ws, ws.models, item.kind, item, item.name_span)
            _unique_params(ws, item)
            if top:
                ws.own_models.append(item.name)


def decode(data: bytes, name: str) -> tuple[str, Diagnostic | None]:
    """A spec's text: UTF-8, a leading byte-order mark (which some editors write) dropped.
    Bytes that are not UTF-8 are reported where they are."""
    data = data.removeprefix(b"\xef\xbb\xbf")
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError as e:
        before = data[:e.start].decode("utf-8")
        line = before.count("\n") + 1
        col = len(before) - before.rfind("\n")
        register(Source(name, data.decode("utf-8", errors="replace")))
        return "", Diagnostic(f"`{name}` is not UTF-8 text: byte 0x{data[e.start]:02x} cannot be read",
                              Span(name, line, col, line, col + 1), "save the file as UTF-8")


def _define(ws: Workspace, table: dict, what: str, item, span: Span) -> None:
    if item.name in table:
        first = table[item.name]
        ws.diagnostics.append(Diagnostic(f"{what} `{item.name}` is defined twice", span,
                                         "rename one of them",
                                         notes=[("first defined here", first.name_span)]))
        return
    table[item.name] = item


def _unique_params(ws: Workspace, model: ast.ModelDef) -> None:
    first: dict[str, ast.Param] = {}
    for p in model.params:
        if p.name in first:
            ws.diagnostics.append(Diagnostic(f"`{model.name}` declares parameter `{p.name}` twice", p.span,
                                             "rename or remove one of them",
                                             notes=[("first declared here", first[p.name].span)]))
        first.setdefault(p.name, p)
