"""`mtdsl lsp` end to end: a real client (pytest-lsp) drives the server in a subprocess over
stdio, as an editor would."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from conftest import ROOT

in_session = pytest.mark.asyncio(loop_scope="module")  # one server for the module's tests

SPEC = '''import "lib/models.mt"

experiment base {
  data { train: omniglot(size: 28), test: omniglot(split: "test") }
  task { ways: 5, shots: 1 }
  model: mlp(hidden: [32, 16], classes: task.ways)
  params { "**.weight": masked, "head.**", "**.bias", "**.bn.**": fixed }
  inner { lr: 0.4 }
  outer { optimizer: sgd(lr: 10), iterations: 10 }
}

experiment boil extends base {
  inner { lr["head.**"]: 0 }
}
'''

# Two mistakes `check` reports together: a misspelt section and an unknown layer argument.
BROKEN = SPEC.replace("outer {", "outr {").replace("classes: task.ways", "clases: task.ways")


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("specs")
    (root / "lib").mkdir()
    shutil.copy(ROOT / "specs" / "lib" / "models.mt", root / "lib" / "models.mt")
    (root / "spec.mt").write_text(SPEC)
    (root / "broken.mt").write_text(BROKEN)
    return root


@pytest_lsp.fixture(scope="module",
                    config=ClientServerConfig(server_command=[sys.executable, "-m", "mtdsl.cli.main", "lsp"]))
async def client(lsp_client: LanguageClient, folder: Path):
    await lsp_client.initialize_session(types.InitializeParams(
        capabilities=client_capabilities("visual-studio-code"), root_uri=folder.as_uri()))
    yield
    await lsp_client.shutdown_session()


async def _open(client: LanguageClient, path: Path, text: str | None = None) -> str:
    uri = path.as_uri()
    client.text_document_did_open(types.DidOpenTextDocumentParams(text_document=types.TextDocumentItem(
        uri=uri, language_id="mt", version=1, text=path.read_text() if text is None else text)))
    await client.wait_for_notification(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    return uri


def _position(text: str, needle: str, offset: int = 0) -> types.Position:
    """Where `needle` first occurs, `offset` characters into it (0-based, as the protocol)."""
    before = text[:text.index(needle) + offset]
    return types.Position(line=before.count("\n"), character=len(before.rsplit("\n", 1)[-1]))


@in_session
async def test_diagnostics_are_checks_and_follow_edits(client: LanguageClient, folder: Path):
    path = folder / "broken.mt"
    uri = await _open(client, path)
    got = sorted((d.range.start.line + 1, d.range.start.character + 1, d.message.split("\n")[0])
                 for d in client.diagnostics[uri])
    check = subprocess.run([sys.executable, "-m", "mtdsl.cli.main", "check", "--format", "json", str(path)],
                           capture_output=True, text=True)
    assert check.returncode == 2
    want = sorted((d["line"], d["column"], d["message"]) for d in json.loads(check.stdout))
    assert len(want) == 2 and got == want
    assert all(d.severity == types.DiagnosticSeverity.Error and d.source == "mtdsl" for d in client.diagnostics[uri])

    # Fixing the text in the editor (unsaved) clears them; breaking it again brings one back.
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
        content_changes=[types.TextDocumentContentChangeWholeDocument(text=SPEC)]))
    await client.wait_for_notification(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    assert list(client.diagnostics[uri]) == []
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=3),
        content_changes=[types.TextDocumentContentChangeWholeDocument(text=SPEC.replace("iterations: 10", "iterations: -1"))]))
    await client.wait_for_notification(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    [d] = client.diagnostics[uri]
    assert "outer.iterations" in d.message and d.range.start.line == SPEC[:SPEC.index("iterations: 10")].count("\n")
    # check's warnings too (once, though both experiments inherit the field), as warnings.
    warned = SPEC.replace("iterations: 10 }", "iterations: 10 }\n  eval { checkpoint: best }")
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=4),
        content_changes=[types.TextDocumentContentChangeWholeDocument(text=warned)]))
    await client.wait_for_notification(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    [d] = client.diagnostics[uri]
    assert d.severity == types.DiagnosticSeverity.Warning and "`eval.checkpoint: best` needs a validation set" in d.message
    assert d.range.start.line == warned[:warned.index("best")].count("\n")


async def _hover(client: LanguageClient, uri: str, position: types.Position) -> str:
    result = await client.text_document_hover_async(types.HoverParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=position))
    assert result is not None
    return result.contents.value


@in_session
async def test_hover_shows_shapes_counts_and_parameter_facts(client: LanguageClient, folder: Path):
    spec = folder / "spec.mt"
    uri = await _open(client, spec)
    # A selector: the parameters it matches with their role, init and inner lr. In `boil`,
    # the head's inner lr is 0, in `base` 0.4.
    text = await _hover(client, uri, _position(SPEC, '"head.**"]', 2))
    assert "| `head.weight` | (5, 16) | fixed | kaiming_normal | 0 |" in text
    text = await _hover(client, uri, _position(SPEC, '"head.**", "**.bias"', 2))
    assert "| `head.weight` | (5, 16) | fixed | kaiming_normal | 0.4 |" in text
    assert "| `layer1.weight` |" not in text
    # The experiment's model: every layer's shapes and the parameter count.
    text = await _hover(client, uri, _position(SPEC, "mlp(hidden", 1))
    assert "(1, 28, 28)" in text and "| `layer1` linear | (784) | (32) | 25,120 |" in text
    assert f"{784 * 32 + 32 + 64 + 32 * 16 + 16 + 32 + 16 * 5 + 5:,} parameters" in text

    # While the experiment has an error (it parses, but does not compile), its last compiled
    # facts stay.
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
        content_changes=[types.TextDocumentContentChangeWholeDocument(text=SPEC.replace("10 }", "-1 }"))]))
    await client.wait_for_notification(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    assert len(client.diagnostics[uri]) == 1
    text = await _hover(client, uri, _position(SPEC, '"head.**", "**.bias"', 2))
    assert "| `head.weight` | (5, 16) | fixed | kaiming_normal | 0.4 |" in text

    # A layer inside the imported library file: the loop's layers, from an open spec using it.
    lib_text = (folder / "lib" / "models.mt").read_text()
    lib = await _open(client, folder / "lib" / "models.mt")
    text = await _hover(client, lib, _position(lib_text, "linear(h * width)", 2))
    assert "| `layer1` linear | (784) | (32) | 25,120 |" in text
    assert "| `layer2` linear | (32) | (16) | 528 |" in text
    assert "| `layer1.weight` | (32, 784) | masked | kaiming_normal | 0.4 |" in text


async def _complete(client: LanguageClient, uri: str, text: str, at: str) -> set[str]:
    """Labels offered at the end of `at`, typed (unsaved) into the document."""
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=10),
        content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)]))
    result = await client.text_document_completion_async(types.CompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=_position(text, at, len(at))))
    return {i.label for i in result.items}


@in_session
async def test_completion_of_keys_models_layers_and_selectors(client: LanguageClient, folder: Path):
    path = folder / "complete.mt"
    path.write_text(SPEC)
    uri = await _open(client, path)
    half = SPEC.replace("outer { optimizer", "outer { it optimizer")
    assert {"iterations", "optimizer", "schedule", "meta_batch"} <= await _complete(client, uri, half, "outer { it")
    half = SPEC.replace("  task {", "  ta\n  task {")
    assert {"task", "data", "params", "inner", "mask"} <= await _complete(client, uri, half, "\n  ta")
    half = SPEC.replace("model: mlp(", "model: m mlp(")
    models = await _complete(client, uri, half, "model: m")
    assert {"mlp", "conv4", "resnet12", "sine_mlp"} <= models and "resnet12_block" not in models
    half = SPEC + "\nmodel tiny(c: int) {\n  li\n}\n"
    layers = await _complete(client, uri, half, "{\n  li")
    assert {"linear", "conv", "batchnorm", "resnet12_block"} <= layers
    half = SPEC.replace('params { "**.weight"', 'params { "la" "**.weight"')
    selectors = await _complete(client, uri, half, 'params { "la')
    assert {"layer1.weight", "layer2.bn.bias", "head.**", "**.weight", "**"} <= selectors
    half = SPEC.replace('"**.weight": masked', '"**.weight": ma')
    assert await _complete(client, uri, half, '"**.weight": ma') == {"masked", "meta", "fixed"}


@in_session
async def test_definition_across_imports(client: LanguageClient, folder: Path):
    uri = await _open(client, folder / "spec.mt")

    async def where(needle: str, offset: int = 1) -> types.Location:
        result = await client.text_document_definition_async(types.DefinitionParams(
            text_document=types.TextDocumentIdentifier(uri=uri), position=_position(SPEC, needle, offset)))
        assert isinstance(result, types.Location)
        return result

    model = await where("mlp(hidden")
    lib_text = (folder / "lib" / "models.mt").read_text()
    assert model.uri == (folder / "lib" / "models.mt").as_uri()
    assert model.range.start == _position(lib_text, "mlp(hidden: list[int]")
    parent = await where("extends base", len("extends b"))
    assert parent.uri == uri and parent.range.start == _position(SPEC, "base {")
    imported = await where('"lib/models.mt"', 3)
    assert imported.uri == (folder / "lib" / "models.mt").as_uri()


def test_diagnostics_do_not_import_torch(tmp_path: Path):
    """The server's analysis runs the whole compiler, yet stays free of torch."""
    (tmp_path / "lib").mkdir()
    shutil.copy(ROOT / "specs" / "lib" / "models.mt", tmp_path / "lib" / "models.mt")
    (tmp_path / "spec.mt").write_text(BROKEN)
    code = ("import sys; from pathlib import Path; from mtdsl.lsp import server; "
            "from mtdsl.lsp.analysis import analyse; "
            f"a = analyse(Path({str(tmp_path / 'spec.mt')!r}), {{}}); "
            "print(len(a.diagnostics), 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["2", "False"]
