"""netspec draw, view and diff (issue 13 items 6 and 7): golden CLI output, layout, a real headless browser.

Golden files live in ``tests/golden/tools/`` (``NAME.stdout``, ``NAME.stderr``, ``NAME.rc``
for each case in :data:`CASES`; rewrite them with ``pytest --regen-golden`` and review the diff).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import types
from pathlib import Path

import pytest
from helpers import cli_runner

import netspec
from netspec.cli import main
from netspec.tools.diff import diff_networks
from netspec.tools.draw import layout_network, render

ROOT = Path(__file__).resolve().parent.parent
TOOLS = Path(__file__).parent / "golden" / "tools"
UNET = (sorted((ROOT / "specs").glob("unet*.net")) or [ROOT / "tests/fixtures/analysis/unet_like.net"])[0]

CASES = {
    "diff_table": ["diff", "old.net", "new.net"],
    "diff_json": ["diff", "old.net", "new.net", "--format", "json", "--batch-size", "4"],
    "diff_one_file": ["diff", "two.net", "-n", "small", "-n", "wide"],
    "diff_same": ["diff", "old.net", "old.net"],
    "diff_dtype_batch": ["diff", "old.net", "new.net", "--dtype", "bfloat16", "-b", "8"],
    "diff_network_in_both": ["diff", "two.net", "two.net", "-n", "wide"],
    "diff_one_file_needs_two_names": ["diff", "two.net"],
    "draw_dot": ["draw", "old.net", "-o", "{tmp}/old.dot"],
    "draw_dot_depth": ["draw", "old.net", "-o", "{tmp}/old.dot", "--depth", "0"],
    "draw_bad_ending": ["draw", "old.net", "-o", "{tmp}/old.png"],
    "draw_network_of_two": ["draw", "two.net", "-n", "wide", "-o", "{tmp}/wide.gv"],
    "draw_needs_a_network": ["draw", "two.net", "-o", "{tmp}/two.dot"],
}


def _run(args: list[str], tmp: Path) -> tuple[str, str, int, dict[str, str]]:
    args = [a.replace("{tmp}", str(tmp)) for a in args]
    result = cli_runner().invoke(main, args, prog_name="netspec")
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    files = {p.name: p.read_text() for p in sorted(tmp.iterdir())} if tmp.exists() else {}
    return result.stdout, result.stderr.replace(str(tmp), "<tmp>"), result.exit_code, files


@pytest.mark.parametrize("name", sorted(CASES))
def test_tools_golden(name: str, tmp_path: Path, regen_golden: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(TOOLS)
    stdout, stderr, rc, files = _run(CASES[name], tmp_path)
    assert "Traceback" not in stdout + stderr
    if files:
        (written,) = files.values()
        stdout += f"--- written file ---\n{written}"
    expected = {"stdout": stdout, "stderr": stderr, "rc": f"{rc}\n"}
    if regen_golden:
        for suffix, text in expected.items():
            (TOOLS / f"{name}.{suffix}").write_text(text)
        return
    for suffix, text in expected.items():
        path = TOOLS / f"{name}.{suffix}"
        assert path.exists(), f"no {path.name}; run pytest tests/test_draw_diff.py --regen-golden and review it"
        assert text == path.read_text(), f"{name}.{suffix} differs"


def test_tools_golden_files_belong_to_a_case() -> None:
    for path in TOOLS.iterdir():
        if path.suffix in (".stdout", ".stderr", ".rc"):
            assert path.stem in CASES, path.name


# --- diff ----------------------------------------------------------------------------------------


def test_diff_finds_every_kind_of_change() -> None:
    old = netspec.check_file(str(TOOLS / "old.net")).network()
    new = netspec.check_file(str(TOOLS / "new.net")).network()
    d = diff_networks(old, new)
    kinds = {c.name: c.kind for c in d.changes}
    assert kinds == {"conv_b": "changed", "extra": "added", "pool": "removed", "head": "changed", "gap": "changed"}
    assert d.totals["params"] == (old.total_params, new.total_params)
    assert not diff_networks(old, old).changes and diff_networks(old, old).same


def test_diff_json_round_trips(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(TOOLS)
    result = cli_runner().invoke(main, ["diff", "old.net", "new.net", "--format", "json"])
    out = json.loads(result.stdout)
    assert out["same"] is False and out["unchanged"] >= 1
    change = next(c for c in out["changes"] if c["name"] == "conv_b")
    assert "output_shape" in change["fields"] and change["old"]["output_shape"][0] is None


# --- draw ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [ROOT / "specs/resnet50.net", UNET, ROOT / "specs/mobilenetv2.net"],
                         ids=lambda p: p.stem)
def test_layout_is_layered(path: Path) -> None:
    net = netspec.load(str(path))
    layout = layout_network(net)
    ids = {n.id: n for n in layout.nodes}
    assert set(ids) == {i.name for i in net.graph.inputs} | {n.name for n in net.graph.nodes}
    for e in layout.edges:
        assert ids[e.src].rank < ids[e.dst].rank  # every edge points down
    by_rank: dict[int, list] = {}
    for n in [*layout.nodes, *layout.dummies.values()]:
        by_rank.setdefault(n.rank, []).append(n)
    for row in by_rank.values():  # no two boxes of a rank overlap
        row.sort(key=lambda n: n.x)
        for a, b in zip(row, row[1:]):
            assert a.x + a.width / 2 <= b.x - b.width / 2 + 1e-6


def test_resnet_branches_sit_side_by_side() -> None:
    layout = layout_network(netspec.load(str(ROOT / "specs/resnet50.net")))
    ids = {n.id: n for n in layout.nodes}
    # The projection shortcut and the residual path's first conv share a rank and do not overlap.
    a, b = ids["conv2_block1_0_conv"], ids["conv2_block1_1_conv"]
    assert a.rank == b.rank and abs(a.x - b.x) >= (a.width + b.width) / 2


def test_unet_skips_are_routed_around() -> None:
    layout = layout_network(netspec.load(str(UNET)))
    long_edges = [e for e in layout.edges if len(e.chain) > 4]
    assert long_edges, "a U-Net's skip connections span many ranks"


def test_depth_folds_blocks_into_boxes() -> None:
    net = netspec.load(str(ROOT / "specs/resnet50.net"))
    svg = render(net, "svg", depth=0)
    assert 'id="node-_stage_2"' in svg and "conv3_block1_1_conv" in svg  # the folded box lists its layers
    assert 'id="node-conv3_block1_1_conv"' not in svg
    full = render(net, "svg")
    for node in net.graph.nodes:
        assert f'id="node-{node.name}"' in full


def test_html_wraps_the_svg() -> None:
    page = render(netspec.load(str(ROOT / "specs/mnist.net")), "html")
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page and page.rstrip().endswith("</html>")


def _browser() -> str | None:
    for name in ("chromium-headless-shell", "chromium", "chromium-browser", "google-chrome", "chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def _png_is_blank(data: bytes) -> bool:
    """True when every pixel of a PNG is the same colour (decoded with the standard library)."""
    import struct
    import zlib

    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks, width, height, ctype = 8, [], 0, 0, 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, _, ctype = struct.unpack(">IIBB", body[:10])
        elif kind == b"IDAT":
            chunks.append(body)
        pos += 12 + length
    raw = zlib.decompress(b"".join(chunks))
    bpp = {2: 3, 6: 4}[ctype]
    stride = width * bpp
    prev = bytearray(stride)
    colours = set()
    for row in range(height):
        f = raw[row * (stride + 1)]
        line = bytearray(raw[row * (stride + 1) + 1:(row + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        prev = line
        colours.update(bytes(line[i:i + bpp]) for i in range(0, stride, bpp * 7))
        if len(colours) > 8:
            return False
    return len(colours) <= 1


@pytest.mark.skipif(_browser() is None, reason="no headless Chromium installed (apt-get install chromium-headless-shell)")
@pytest.mark.parametrize("path", [UNET, ROOT / "specs/resnet18.net"], ids=lambda p: p.stem)
def test_svg_in_a_real_browser(path: Path, tmp_path: Path) -> None:
    net = netspec.load(str(path))
    svg = tmp_path / "net.svg"
    result = cli_runner().invoke(main, ["draw", str(path), "-o", str(svg)])
    assert result.exit_code == 0, result.stderr
    browser = _browser()
    flags = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    env = {**os.environ, "HOME": str(tmp_path)}
    shot = tmp_path / "shot.png"
    subprocess.run([*flags, "--window-size=800,1200", f"--screenshot={shot}", svg.as_uri()],
                   capture_output=True, timeout=120, env=env, check=False)
    assert shot.exists() and not _png_is_blank(shot.read_bytes())
    dom = subprocess.run([*flags, "--dump-dom", svg.as_uri()], capture_output=True, timeout=120, env=env,
                         check=False, text=True).stdout
    assert "<svg" in dom
    for node in net.graph.nodes:
        assert f'id="node-{node.name}"' in dom and f">{node.name}<" in dom, node.name


# --- view ----------------------------------------------------------------------------------------


def test_view_exports_onnx_and_serves_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("onnx")
    calls: list = []
    fake = types.ModuleType("netron")
    fake.start = lambda file=None, address=None, browse=True: calls.append((file, address, browse)) or ("localhost", 8080)
    fake.wait = lambda: None
    monkeypatch.setitem(sys.modules, "netron", fake)
    out = tmp_path / "mnist.onnx"
    result = cli_runner().invoke(main, ["view", str(ROOT / "specs/mnist.net"), "-o", str(out), "--no-browser",
                                        "--port", "8099"])
    assert result.exit_code == 0, result.stderr
    assert calls == [(str(out), ("localhost", 8099), False)]
    import onnx

    model = onnx.load(str(out))
    assert len(model.graph.node) > 0 and "serving" in result.stdout


def test_view_without_netron_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "netron", None)  # import netron raises ImportError
    result = cli_runner().invoke(main, ["view", str(ROOT / "specs/mnist.net")])
    assert result.exit_code == 2 and "netspec[view]" in result.stderr


def test_view_without_output_removes_its_export(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("onnx")
    seen: list = []
    fake = types.ModuleType("netron")
    fake.start = lambda file=None, address=None, browse=True: seen.append((file, os.path.exists(file))) or "addr"
    fake.wait = lambda: None
    monkeypatch.setitem(sys.modules, "netron", fake)
    result = cli_runner().invoke(main, ["view", str(ROOT / "specs/mnist.net")])
    assert result.exit_code == 0, result.stderr
    ((path, existed),) = seen
    assert existed and path.endswith(".onnx") and not os.path.exists(path)
