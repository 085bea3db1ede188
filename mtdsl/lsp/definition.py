"""Go to definition: a name of a model, block, experiment or sweep jumps to where it is
defined, in this file or any it imports; an import's path opens the imported file."""

from __future__ import annotations

from lsprotocol import types

from ..language import ast
from ..language.source import Span
from .analysis import Analysis
from .positions import nodes_at, path_uri, to_location, word_at


def definition(analysis: Analysis, text: str, line: int, col: int) -> types.Location | None:
    module = analysis.module
    if module is not None:
        for item in module.items:
            if isinstance(item, ast.Import) and any(True for _ in nodes_at(item, line, col)):
                target = (analysis.path.parent / item.path).resolve()
                if target.exists():
                    start = types.Position(line=0, character=0)
                    return types.Location(uri=path_uri(target), range=types.Range(start=start, end=start))
    name = word_at(text, line, col)
    if not name:
        return None
    ws = analysis.workspace
    for table in (ws.models, ws.experiments, ws.sweeps):
        if name in table:
            span: Span = table[name].name_span
            return to_location(span)
    return None

