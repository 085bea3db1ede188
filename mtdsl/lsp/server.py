"""The language server: pygls over stdio, one `Session` of open documents."""

from __future__ import annotations

from lsprotocol import types
from pygls.lsp.server import LanguageServer

from .. import __version__
from .analysis import Analysis
from .completion import complete
from .definition import definition
from .hover import hover
from .positions import path_uri, to_lsp, uri_path
from .session import Session

server = LanguageServer("mtdsl", __version__)
session = Session()
# Files other than the document itself that its last analysis published diagnostics for,
# so that they are cleared once fixed.
_published: dict[str, set[str]] = {}


def _publish(ls: LanguageServer, analysis: Analysis) -> None:
    by_uri: dict[str, list[types.Diagnostic]] = {path_uri(analysis.path): []}
    for d in analysis.diagnostics:
        uri = path_uri(d.span.file) if d.span else path_uri(analysis.path)
        by_uri.setdefault(uri, []).append(to_lsp(d))
    key = str(analysis.path)
    for stale in _published.get(key, set()) - set(by_uri):
        by_uri[stale] = []
    _published[key] = {u for u, ds in by_uri.items() if ds}
    for uri, diags in by_uri.items():
        ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=uri, diagnostics=diags))


def _refresh(ls: LanguageServer, uri: str) -> None:
    doc = ls.workspace.get_text_document(uri)
    for analysis in session.update(uri_path(uri), doc.source):
        _publish(ls, analysis)


@server.feature(types.TEXT_DOCUMENT_DID_OPEN)
def did_open(ls: LanguageServer, params: types.DidOpenTextDocumentParams) -> None:
    _refresh(ls, params.text_document.uri)


@server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
def did_change(ls: LanguageServer, params: types.DidChangeTextDocumentParams) -> None:
    _refresh(ls, params.text_document.uri)


@server.feature(types.TEXT_DOCUMENT_DID_SAVE)
def did_save(ls: LanguageServer, params: types.DidSaveTextDocumentParams) -> None:
    _refresh(ls, params.text_document.uri)


@server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
def did_close(ls: LanguageServer, params: types.DidCloseTextDocumentParams) -> None:
    session.close(uri_path(params.text_document.uri))


@server.feature(types.TEXT_DOCUMENT_HOVER)
def on_hover(ls: LanguageServer, params: types.HoverParams) -> types.Hover | None:
    path = uri_path(params.text_document.uri)
    analysis = session.analysis(path)
    if analysis is None:
        return None
    pos = params.position
    text = hover(analysis, lambda: session.users(path), pos.line + 1, pos.character + 1)
    if text is None:
        return None
    return types.Hover(contents=types.MarkupContent(kind=types.MarkupKind.Markdown, value=text))


@server.feature(types.TEXT_DOCUMENT_COMPLETION,
                types.CompletionOptions(trigger_characters=['"', ".", ":", " "]))
def on_completion(ls: LanguageServer, params: types.CompletionParams) -> types.CompletionList:
    doc = ls.workspace.get_text_document(params.text_document.uri)
    analysis = session.analysis(uri_path(params.text_document.uri))
    items = complete(analysis, doc.source, params.position.line, params.position.character)
    return types.CompletionList(is_incomplete=False, items=items)


@server.feature(types.TEXT_DOCUMENT_DEFINITION)
def on_definition(ls: LanguageServer, params: types.DefinitionParams) -> types.Location | None:
    doc = ls.workspace.get_text_document(params.text_document.uri)
    analysis = session.analysis(uri_path(params.text_document.uri))
    if analysis is None:
        return None
    pos = params.position
    return definition(analysis, doc.source, pos.line + 1, pos.character + 1)


def serve() -> None:
    """Speak the protocol on stdin/stdout until the editor says exit."""
    server.start_io()

