"""The editor files in editors/: the TextMate grammar on every spec, and the VS Code extension folder.

The grammar is run by a small TextMate engine written here (``match``,
``begin``/``end``, ``captures``, ``include``, ``$1`` in scope names), with
Python's ``re`` standing in for Oniguruma (the grammar uses only what both
share).  Every comment, string, number and keyword the real lexer finds in
a spec must get a scope of its kind: no keyword or string position is left
unscoped.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from netspec.core.diagnostics import NetspecError
from netspec.frontend.syntax import parse_source
from netspec.tools.fmt import _lexer

ROOT = Path(__file__).resolve().parents[1]
EDITORS = ROOT / "editors"
GRAMMAR = json.loads((EDITORS / "netspec.tmLanguage.json").read_text())


# --- a small TextMate engine -------------------------------------------------------------------


class _Rule:
    def __init__(self, spec: dict):
        self.spec = spec
        self.match = re.compile(spec["match"]) if "match" in spec else None
        self.begin = re.compile(spec["begin"]) if "begin" in spec else None
        self.end = re.compile(spec["end"]) if "end" in spec else None


def _flatten(patterns: list[dict], repo: dict) -> list[_Rule]:
    out: list[_Rule] = []
    for p in patterns:
        if "include" in p:
            ref = p["include"]
            target = GRAMMAR if ref == "$self" else repo[ref.lstrip("#")]
            out += _flatten(target.get("patterns", [target]) if "patterns" in target and "match" not in target
                            and "begin" not in target else [target], repo)
        elif "patterns" in p and "match" not in p and "begin" not in p:
            out += _flatten(p["patterns"], repo)
        else:
            out.append(_Rule(p))
    return out


def _name(template: str | None, m: re.Match) -> list[str]:
    if not template:
        return []
    return [re.sub(r"\$(\d+)", lambda g: m.group(int(g.group(1))) or "", template)]


def _captures(spec: dict | None, m: re.Match, base: list[str], scopes: list[list[str]]) -> None:
    for key, cap in (spec or {}).items():
        i = int(key)
        if m.group(i) is None:
            continue
        for pos in range(m.start(i), m.end(i)):
            scopes[pos] = base + _name(cap.get("name"), m)


def tokenize(text: str) -> list[list[str]]:
    """The scopes of every character of ``text`` (newlines get the scopes open at the line's end)."""
    repo = GRAMMAR["repository"]
    top = _flatten(GRAMMAR["patterns"], repo)
    scopes: list[list[str]] = [[] for _ in text]
    stack: list[tuple[_Rule, list[str]]] = []  # open begin/end rules with their scopes
    offset = 0
    for line in text.split("\n"):
        pos = 0
        while pos <= len(line):
            rules = _flatten(stack[-1][0].spec.get("patterns", []), repo) if stack else top
            base = stack[-1][1] if stack else []
            best: tuple[int, int, _Rule | None, re.Match] | None = None
            if stack:
                m = stack[-1][0].end.search(line, pos)  # type: ignore[union-attr]
                if m is not None:
                    best = (m.start(), -1, None, m)
            for k, rule in enumerate(rules):
                m = (rule.match or rule.begin).search(line, pos)  # type: ignore[union-attr]
                if m is not None and (best is None or m.start() < best[0]) and m.end() > m.start():
                    best = (m.start(), k, rule, m)
            if best is None:
                for i in range(pos, len(line)):
                    scopes[offset + i] = list(base)
                break
            start, _, rule, m = best
            for i in range(pos, start):
                scopes[offset + i] = list(base)
            spans = [[] for _ in line]
            if rule is None:  # the open rule ends
                for i in range(m.start(), m.end()):
                    spans[i] = list(base)
                _captures(stack[-1][0].spec.get("endCaptures"), m, base, spans)
                stack.pop()
            elif rule.match is not None:
                inner = base + _name(rule.spec.get("name"), m)
                for i in range(m.start(), m.end()):
                    spans[i] = list(inner)
                _captures(rule.spec.get("captures"), m, inner, spans)
            else:
                inner = base + _name(rule.spec.get("name"), m)
                for i in range(m.start(), m.end()):
                    spans[i] = list(inner)
                _captures(rule.spec.get("beginCaptures"), m, inner, spans)
                stack.append((rule, inner))
            for i in range(m.start(), m.end()):
                scopes[offset + i] = spans[i]
            if m.end() == pos and rule is None:
                pos += 1  # an empty end match ($): leave the line
            pos = max(m.end(), pos)
            if pos >= len(line):
                break
        offset += len(line) + 1
    return scopes


# --- the grammar on every spec ---------------------------------------------------------------


def _files() -> list[Path]:
    out = []
    for path in sorted((ROOT / "specs").glob("*.net")) + sorted((ROOT / "tests" / "fixtures").rglob("*.net")):
        try:
            parse_source(path.read_text(encoding="utf-8"), str(path))
        except (NetspecError, UnicodeDecodeError):
            continue
        out.append(path)
    return out


EXPECTED = {
    "COMMENT": ("comment.",),
    "STRING": ("string.",),
    "NUMBER": ("constant.numeric.",),
    "keyword": ("storage.", "keyword.", "constant.language.", "support.constant."),
}


def _kind(tok) -> str | None:
    if tok.type in ("COMMENT", "STRING", "NUMBER"):
        return tok.type
    value = str(tok.value)
    if (value[:1].isalpha() or value[:1] == "_") and tok.type != "NAME":
        return "keyword"
    return None


@pytest.mark.parametrize("path", _files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_keyword_string_number_and_comment_is_scoped(path: Path):
    from lark.lexer import LexerThread

    text = path.read_text(encoding="utf-8")
    scopes = tokenize(text)
    lexer, _ = _lexer()
    checked = 0
    for tok in LexerThread.from_text(lexer, text).lex(None):
        kind = _kind(tok)
        if kind is None:
            continue
        for pos in range(tok.start_pos, tok.end_pos):
            got = scopes[pos]
            assert any(s.startswith(EXPECTED[kind]) for s in got), (
                f"{path.name}:{tok.line}:{tok.column}: {tok.value!r} ({kind}) has scopes {got}")
        checked += 1
    assert checked > 0


def test_scopes_of_a_line():
    text = "    c = conv2d(8, 3, padding='same')  # a conv\n"
    scopes = tokenize(text)

    def at(needle: str) -> list[str]:
        return scopes[text.index(needle)]

    assert at("conv2d") == ["entity.name.function.call.netspec"]
    assert at("padding") == ["variable.parameter.netspec"]
    assert at("'same'") == ["string.quoted.single.netspec", "punctuation.definition.string.begin.netspec"]
    assert at("same") == ["string.quoted.single.netspec"]
    assert at("8") == ["constant.numeric.netspec"]
    assert at("# a") == ["comment.line.number-sign.netspec", "punctuation.definition.comment.netspec"]
    scopes = tokenize("block bottleneck(f, stride=1) {\n    repeat 2 as i { add(in, x) -> relu() }\n}\n")
    assert scopes[0] == ["storage.type.block.netspec"] and scopes[6] == ["entity.name.function.netspec"]


def _node_modules() -> Path | None:
    """Where vscode-textmate and vscode-oniguruma are installed (``npm install`` in editors/vscode)."""
    import os

    for candidate in (os.environ.get("NETSPEC_NODE_MODULES"), EDITORS / "vscode" / "node_modules"):
        if candidate and (Path(candidate) / "vscode-textmate").is_dir() and (Path(candidate) / "vscode-oniguruma").is_dir():
            return Path(candidate)
    return None


@pytest.mark.skipif(shutil.which("node") is None or _node_modules() is None,
                    reason="needs node and `npm install` in editors/vscode (vscode-textmate, vscode-oniguruma)")
def test_vscode_textmate_agrees_with_the_python_engine():
    """VS Code's own TextMate engine (Oniguruma regexes) scopes every character of every spec as
    the engine above does, so the tests above hold for VS Code too."""
    import os

    files = _files()
    env = {**os.environ, "NODE_PATH": str(_node_modules())}
    res = subprocess.run(["node", str(EDITORS / "vscode" / "test" / "tokenize.js"),
                          str(EDITORS / "netspec.tmLanguage.json"), *map(str, files)],
                         capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    for path in files:
        text = path.read_text(encoding="utf-8")
        ours = tokenize(text)
        offset = 0
        for n, (line, tokens) in enumerate(zip(text.split("\n"), out[str(path)]), start=1):
            for start, end, scopes in tokens:
                want = [s for s in scopes if s != GRAMMAR["scopeName"]]
                for col in range(start, end):
                    assert ours[offset + col] == want, f"{path.name}:{n}:{col + 1}: {ours[offset + col]} != {want}"
            offset += len(line) + 1


def test_plist_grammar_for_sublime_is_the_same_grammar():
    """editors/netspec.tmLanguage (XML plist: Sublime Text, TextMate) holds the JSON grammar's rules.

    Regenerate it after editing the JSON with:
    python -c "import json,plistlib; g=json.load(open('editors/netspec.tmLanguage.json')); g.pop('$schema');
    open('editors/netspec.tmLanguage','wb').write(plistlib.dumps(g, sort_keys=False))"
    """
    import plistlib

    plist = plistlib.loads((EDITORS / "netspec.tmLanguage").read_bytes())
    assert plist == {k: v for k, v in GRAMMAR.items() if k != "$schema"}


# --- the VS Code extension folder ---------------------------------------------------------------


def test_vscode_extension_is_complete():
    ext = EDITORS / "vscode"
    package = json.loads((ext / "package.json").read_text())
    assert package["main"] == "./extension.js" and "vscode-languageclient" in package["dependencies"]
    grammar = package["contributes"]["grammars"][0]
    assert grammar["scopeName"] == GRAMMAR["scopeName"]
    # the extension ships a copy of the grammar: it must be the same file
    assert (ext / grammar["path"]).read_text() == (EDITORS / "netspec.tmLanguage.json").read_text()
    lang = package["contributes"]["languages"][0]
    config = json.loads((ext / lang["configuration"]).read_text())
    assert config["comments"]["lineComment"] == "#" and ["(", ")"] in config["brackets"]
    js = (ext / "extension.js").read_text()
    assert "'netspec', 'lsp'" in js and "vscode-languageclient/node" in js
    if shutil.which("node"):
        assert subprocess.run(["node", "--check", str(ext / "extension.js")]).returncode == 0
