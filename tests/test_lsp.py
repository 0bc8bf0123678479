"""``netspec lsp`` driven over stdio by a real LSP client (pytest-lsp).

The server runs as ``netspec lsp`` in a subprocess; the tests open
documents, edit them, and ask for diagnostics, hovers, inlay hints,
definitions, completions and formatting, as an editor does.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

pytest.importorskip("pygls")
pytest_lsp = pytest.importorskip("pytest_lsp")

from lsprotocol import types as T  # noqa: E402
from pytest_lsp import ClientServerConfig, LanguageClient  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SERVER = [sys.executable, "-c", "from netspec.cli import main; main()", "lsp"]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
       "NETSPEC_LSP_DEBOUNCE_MS": "30"}

pytestmark = pytest.mark.asyncio(loop_scope="function")


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER, server_env=ENV))
async def client(lsp_client: LanguageClient):
    caps = T.ClientCapabilities(
        text_document=T.TextDocumentClientCapabilities(
            hover=T.HoverClientCapabilities(content_format=[T.MarkupKind.Markdown]),
            inlay_hint=T.InlayHintClientCapabilities()),
    )
    await lsp_client.initialize_session(T.InitializeParams(capabilities=caps, root_uri=None))
    yield
    await lsp_client.shutdown_session()


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER, server_env=ENV))
async def utf8_client(lsp_client: LanguageClient):
    caps = T.ClientCapabilities(general=T.GeneralClientCapabilities(
        position_encodings=[T.PositionEncodingKind.Utf8, T.PositionEncodingKind.Utf16]))
    await lsp_client.initialize_session(T.InitializeParams(capabilities=caps, root_uri=None))
    yield
    await lsp_client.shutdown_session()


GOOD = """\
# A conv and its head.
block head(units=10) {
    flatten() -> dense(units, activation='softmax')
}

network n {
    input x: [28, 28, 1]
    c = conv2d(8, 3, padding='same')
    maxpool2d(2)
    head()
}
"""


async def _diagnostics(client: LanguageClient, uri: str, want, timeout: float = 20.0) -> list[T.Diagnostic]:
    """Wait until the diagnostics published for ``uri`` satisfy ``want``."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        diags = client.diagnostics.get(uri)
        if diags is not None and want(diags):
            return list(diags)
        left = deadline - asyncio.get_running_loop().time()
        if left <= 0:
            raise AssertionError(f"no matching diagnostics for {uri}: {client.diagnostics.get(uri)}")
        try:
            await asyncio.wait_for(client.wait_for_notification("textDocument/publishDiagnostics"), left)
        except asyncio.TimeoutError:
            pass


def _open(client: LanguageClient, path: Path, text: str, version: int = 1) -> str:
    path.write_text(text)
    uri = path.as_uri()
    client.text_document_did_open(T.DidOpenTextDocumentParams(
        text_document=T.TextDocumentItem(uri=uri, language_id="netspec", version=version, text=text)))
    return uri


def _change(client: LanguageClient, uri: str, text: str, version: int) -> None:
    client.text_document_did_change(T.DidChangeTextDocumentParams(
        text_document=T.VersionedTextDocumentIdentifier(uri=uri, version=version),
        content_changes=[T.TextDocumentContentChangeWholeDocument(text=text)]))


def _pos(text: str, needle: str, delta: int = 0) -> T.Position:
    offset = text.index(needle) + delta
    line = text.count("\n", 0, offset)
    return T.Position(line=line, character=offset - (text.rfind("\n", 0, offset) + 1))


async def test_error_has_its_range_and_goes_away_after_an_edit(client: LanguageClient, tmp_path: Path):
    bad = GOOD.replace("padding='same'", "padding='sam'")
    uri = _open(client, tmp_path / "m.net", bad)
    diags = await _diagnostics(client, uri, lambda d: len(d) > 0)
    assert [(d.code, d.severity) for d in diags] == [("E303", T.DiagnosticSeverity.Error)]
    start = _pos(bad, "'sam'")
    assert diags[0].range == T.Range(start=start, end=T.Position(line=start.line, character=start.character + 5))
    assert "did you mean 'same'" in diags[0].message and diags[0].source == "netspec"
    _change(client, uri, GOOD, 2)
    assert await _diagnostics(client, uri, lambda d: len(d) == 0) == []


async def test_warnings_and_notes(client: LanguageClient, tmp_path: Path):
    text = GOOD.replace("conv2d(8, 3,", "conv2d(8, 2,")
    uri = _open(client, tmp_path / "w.net", text)
    diags = await _diagnostics(client, uri, lambda d: len(d) > 0)
    assert [(d.code, d.severity) for d in diags] == [("W103", T.DiagnosticSeverity.Warning)]
    # an error inside a block points at the block's line, with a note at the call
    text = GOOD.replace("flatten() ->", "conv2d(4, 99) -> flatten() ->")
    _change(client, uri, text, 2)
    diags = await _diagnostics(client, uri, lambda d: any(x.code == "E401" for x in d))
    d = next(x for x in diags if x.code == "E401")
    assert d.range.start.line == 2
    assert d.related_information and d.related_information[0].location.range.start == _pos(text, "head()")


async def test_hover_on_a_conv_shows_its_shape(client: LanguageClient, tmp_path: Path):
    uri = _open(client, tmp_path / "h.net", GOOD)
    await _diagnostics(client, uri, lambda d: True)
    res = await client.text_document_hover_async(T.HoverParams(
        text_document=T.TextDocumentIdentifier(uri=uri), position=_pos(GOOD, "conv2d", 2)))
    assert res is not None
    value = res.contents.value
    assert "(None, 28, 28, 8)" in value and "params 80" in value and "MACs 56,448" in value and "RF 3x3" in value
    # a block's name: its signature and doc comment
    res = await client.text_document_hover_async(T.HoverParams(
        text_document=T.TextDocumentIdentifier(uri=uri), position=_pos(GOOD, "head()", 1)))
    assert "block head(units=10)" in res.contents.value and "A conv and its head." in res.contents.value
    assert "(None, 10)" in res.contents.value


async def test_inlay_hints_show_each_statements_shape(client: LanguageClient, tmp_path: Path):
    uri = _open(client, tmp_path / "i.net", GOOD)
    await _diagnostics(client, uri, lambda d: True)
    hints = await client.text_document_inlay_hint_async(T.InlayHintParams(
        text_document=T.TextDocumentIdentifier(uri=uri),
        range=T.Range(start=T.Position(line=0, character=0), end=T.Position(line=20, character=0))))
    got = {h.position.line: h.label for h in hints}
    assert got[6] == "→ (None, 28, 28, 1)"
    assert got[7] == "→ (None, 28, 28, 8)"
    assert got[8] == "→ (None, 14, 14, 8)"
    assert got[9] == "→ (None, 10)"
    assert got[2] == "→ (None, 10)"  # inside the block, called once
    line7 = GOOD.splitlines()[7]
    assert next(h for h in hints if h.position.line == 7).position.character == len(line7)


async def test_definition_of_blocks_tensors_and_imports(client: LanguageClient, tmp_path: Path):
    (tmp_path / "lib.net").write_text("# Two dense layers.\nblock mlp(n) {\n    dense(n) -> dense(n)\n}\n")
    text = ('import "lib.net"\n\nnetwork n {\n    input x: [4]\n    y = dense(4)\n'
            "    z = x -> mlp(4)\n    add(y, z)\n}\n")
    uri = _open(client, tmp_path / "d.net", text)
    await _diagnostics(client, uri, lambda d: True)
    assert list(client.diagnostics[uri]) == []

    async def goto(pos: T.Position) -> T.Location:
        res = await client.text_document_definition_async(T.DefinitionParams(
            text_document=T.TextDocumentIdentifier(uri=uri), position=pos))
        assert isinstance(res, T.Location), res
        return res

    loc = await goto(_pos(text, "mlp(4)", 1))
    assert loc.uri == (tmp_path / "lib.net").as_uri()
    assert loc.range.start == T.Position(line=1, character=6)
    loc = await goto(_pos(text, "add(y", 4))
    assert (loc.uri, loc.range.start) == (uri, _pos(text, "y = dense"))
    loc = await goto(_pos(text, "x -> mlp"))
    assert loc.range.start == _pos(text, "x: [4]")
    loc = await goto(_pos(text, '"lib.net"', 2))
    assert loc.uri == (tmp_path / "lib.net").as_uri()


async def test_completion_of_ops_arguments_and_enums(client: LanguageClient, tmp_path: Path):
    uri = _open(client, tmp_path / "c.net", GOOD)
    await _diagnostics(client, uri, lambda d: True)

    async def complete(text: str, needle: str, delta: int) -> dict[str, T.CompletionItem]:
        _change(client, uri, text, 2)
        res = await client.text_document_completion_async(T.CompletionParams(
            text_document=T.TextDocumentIdentifier(uri=uri), position=_pos(text, needle, delta)))
        return {item.label: item for item in res.items}

    text = GOOD.replace("    maxpool2d(2)\n", "    maxp\n")
    items = await complete(text, "maxp\n", 4)
    assert "maxpool2d" in items and "MaxPooling2D" in items and "conv2d" not in items
    text = GOOD.replace("    maxpool2d(2)\n", "    conv2d(8, \n")
    items = await complete(text, "conv2d(8, \n", 10)
    assert items["padding="].detail == "= 'valid'" and items["filters="].detail == "required"
    assert items["dilation_rate="].detail == "= (1, 1)"
    text = GOOD.replace("    maxpool2d(2)\n", "    conv2d(8, 3, padding=\n")
    items = await complete(text, "padding=\n", 8)
    assert set(items) >= {"'valid'", "'same'"}
    text = GOOD.replace("    maxpool2d(2)\n", "    dense(3, activation='\n")
    items = await complete(text, "activation='", 12)
    assert "relu" in items and "softmax" in items
    text = GOOD.replace("    maxpool2d(2)\n", "    he\n")
    items = await complete(text, "he\n", 2)
    assert "head" in items and items["head"].kind == T.CompletionItemKind.Class


async def test_unsaved_imported_buffer_counts(client: LanguageClient, tmp_path: Path):
    lib = tmp_path / "lib.net"
    lib_uri = _open(client, lib, "block one() {\n    dense(1)\n}\n")
    main_text = 'import "lib.net"\n\nnetwork n {\n    input x: [4]\n    two()\n}\n'
    uri = _open(client, tmp_path / "main.net", main_text)
    diags = await _diagnostics(client, uri, lambda d: len(d) > 0)
    assert [d.code for d in diags] == ["E201"]
    # the imported file gains the block, unsaved: the importer's error goes away
    _change(client, lib_uri, "block one() {\n    dense(1)\n}\n\nblock two() {\n    dense(2)\n}\n", 2)
    assert await _diagnostics(client, uri, lambda d: len(d) == 0) == []
    assert "block two" not in lib.read_text()
    # an error inside the imported block shows in the importer at the call
    _change(client, lib_uri, "block one() {\n    dense(1)\n}\n\nblock two() {\n    dense(0)\n}\n", 3)
    diags = await _diagnostics(client, uri, lambda d: len(d) > 0)
    assert diags[0].code == "E306" and diags[0].range.start == _pos(main_text, "two()")
    assert "lib.net:6:11" in diags[0].message


async def test_formatting_through_fmt(client: LanguageClient, tmp_path: Path):
    text = "network n{input x:[4]\ndense(2)}"
    uri = _open(client, tmp_path / "f.net", text)
    edits = await client.text_document_formatting_async(T.DocumentFormattingParams(
        text_document=T.TextDocumentIdentifier(uri=uri), options=T.FormattingOptions(tab_size=4, insert_spaces=True)))
    assert len(edits) == 1 and edits[0].new_text == "network n {\n    input x: [4]\n    dense(2)\n}\n"


async def test_columns_count_in_the_negotiated_encoding(client: LanguageClient, utf8_client: LanguageClient,
                                                        tmp_path: Path):
    text = GOOD.replace("padding='same'", "name='é😀', padding='sam'")
    line = text.splitlines()[7]
    before = line[: line.index("'sam'")]
    for c, units in ((client, len(before.encode("utf-16-le")) // 2), (utf8_client, len(before.encode("utf-8")))):
        uri = _open(c, tmp_path / f"u{units}.net", text)
        diags = await _diagnostics(c, uri, lambda d: len(d) > 0)
        assert diags[0].range.start == T.Position(line=7, character=units)
        assert diags[0].range.end.character == units + 5
