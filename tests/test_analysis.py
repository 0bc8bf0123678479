"""FLOPs, block paths and folding, memory against the NumPy executor, budgets (issue 13 items 2-5)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import cli_runner

import netspec
from netspec.analysis import memory as memory_mod
from netspec.analysis.budgets import parse_bytes, parse_count
from netspec.analysis.flops import flops_by_op, layer_flops, total_flops
from netspec.analysis.fold import fold_rows
from netspec.analysis.memory import estimate_memory
from netspec.analysis.plan import execution_plan
from netspec.cli import main
from netspec.core.argtypes import ACTIVATIONS
from netspec.core.ops import ACTIVATION_FLOPS, OPS

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").glob("*.net"))
# The U-Net of the memory goal: specs/unet*.net once it exists, until then a U-Net written with today's ops.
# (path, a valid input size small enough for a quick run): the 'same' U-Net at 96x96, the original
# valid-padding one at 204x204 (572x572 as written); bench/bench_memory.py runs them at full size.
UNETS = [(p, size) for p, size in ((ROOT / "specs/unet.net", (96, 96, 3)), (ROOT / "specs/unet_valid.net", (204, 204, 3)))
         if p.exists()] or [(ROOT / "tests/fixtures/analysis/unet_like.net", None)]


def _nets(path: Path, input_shape: tuple[int, ...] | None = None) -> list:
    return [n for n in netspec.check_file(str(path), input_shape=input_shape).networks if n.ok]


# --- FLOPs ---------------------------------------------------------------------------------------


def test_every_op_has_a_flops_rule() -> None:
    # A new op must say what it costs (OpDef.flops): none is silently counted as zero.
    missing = sorted(name for name, d in OPS.items() if d.flops is None)
    assert missing == [], f"ops without a FLOPs rule in their OpDef: {missing}"


def test_every_activation_has_a_flops_cost() -> None:
    assert sorted(set(ACTIVATIONS) - set(ACTIVATION_FLOPS)) == []


@pytest.mark.parametrize(("layer", "shape", "flops"), [
    # 2 per MAC + bias + activation
    ("conv2d(4, 3, activation='relu')", (6, 6, 2), 2 * (4 * 4 * 4 * 3 * 3 * 2) + 64 + 64),
    ("conv2d(4, 3, use_bias=false)", (6, 6, 2), 2 * (4 * 4 * 4 * 3 * 3 * 2)),
    ("dense(3, activation='softmax')", (5,), 2 * 15 + 3 + 5 * 3),
    ("depthwise_conv2d(3)", (5, 5, 2), 2 * (3 * 3 * 2 * 9) + 18),
    ("maxpool2d(2)", (4, 4, 3), 2 * 2 * 3 * 3),
    ("avgpool2d(2)", (4, 4, 3), 2 * 2 * 3 * 4),
    ("global_avgpool2d()", (4, 4, 3), 48),
    ("batchnorm()", (4, 4, 3), 2 * 48),
    ("activation('sigmoid')", (10,), 40),
    ("relu()", (10,), 10),
    ("flatten()", (2, 2, 3), 0),
    ("dropout(0.5)", (10,), 0),
])
def test_flops_rules(layer: str, shape: tuple, flops: int) -> None:
    dims = ", ".join(map(str, shape))
    net = netspec.load_source(f"network n {{\n input x: [{dims}]\n {layer}\n}}\n")
    assert list(layer_flops(net).values()) == [flops]


def test_merge_flops_count_k_minus_one() -> None:
    net = netspec.load_source("network n {\n input x: [4]\n a = dense(4)\n b = x -> dense(4)\n"
                              " add(a, b, x, name='s')\n}\n")
    assert layer_flops(net)["s"] == 2 * 4


def test_flops_by_op_sums_to_total() -> None:
    for path in SPECS:
        for net in _nets(path):
            per_layer = layer_flops(net)
            total = total_flops(net, per_layer)
            assert total == sum(flops_by_op(net, per_layer).values())
            assert total >= 2 * net.macs  # every MAC is 2 FLOPs, and nothing counts negative


# --- block paths and folding ---------------------------------------------------------------------


def test_block_path_of_every_layer() -> None:
    (net,) = _nets(ROOT / "specs/resnet50.net")
    blocks = {n.name: n.block for n in net.graph.nodes}
    assert blocks["conv1_pad"] == ()
    assert blocks["conv1_conv"] == ("conv_bn_1",)
    assert blocks["conv3_block2_1_conv"] == ("stage_2", "bottleneck_2", "bottleneck_path_1", "conv_bn_1")
    assert blocks["conv3_block1_0_conv"] == ("stage_2", "bottleneck_1", "conv_bn_1")
    assert blocks["conv5_block3_out"] == ("stage_4", "bottleneck_3")


@pytest.mark.parametrize("depth", [0, 1, 2, 5])
def test_folded_rows_keep_the_totals(depth: int) -> None:
    for path in SPECS:
        for net in _nets(path):
            flops = layer_flops(net)
            rows = fold_rows(net, depth, flops)
            assert sum(r.params for r in rows) == net.total_params
            assert sum(r.macs for r in rows) == net.macs
            assert sum(r.flops for r in rows) == total_flops(net, flops)
            assert [x for r in rows for x in r.layers] == [n.name for n in net.graph.nodes]
            assert rows[-1].shape == net.layers[net.graph.nodes[-1].name].shape
            assert all(len(r.path) <= depth + 1 for r in rows)


def test_depth_json_has_blocks_and_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    result = cli_runner().invoke(main, ["check", str(ROOT / "specs/resnet50.net"), "--format", "json",
                                        "--depth", "0", "-s", "W101,W104"])
    assert result.exit_code == 0, result.stderr
    net = json.loads(result.stdout)["networks"][0]
    names = [b["name"] for b in net["blocks"]]
    assert names == ["conv_bn_1", "stage_1", "stage_2", "stage_3", "stage_4"]
    assert sum(b["params"] for b in net["blocks"]) + 2_049_000 == net["params"]["total"]
    by_name = {layer["name"]: layer for layer in net["layers"]}
    assert by_name["conv4_block6_3_bn"]["block"] == ["stage_3", "bottleneck_6", "bottleneck_path_1", "conv_bn_3"]


# --- memory ---------------------------------------------------------------------------------------


def test_plan_is_the_executors_plan() -> None:
    from netspec.targets.numpy_exec import executor

    for path in SPECS:
        for net in _nets(path):
            run = executor(net)
            plan = execution_plan(net.graph)
            fast = run._fast
            assert fast.names == [s.name for s in plan]
            assert fast.layers == [s.layers for s in plan]
            assert fast.donate == [s.donate for s in plan]
            assert fast.free == [s.free for s in plan]


def test_chunk_size_matches_the_executor() -> None:
    from netspec.targets import numpy_exec

    assert memory_mod.CHUNK_BYTES == numpy_exec.CHUNK_BYTES


def _measured(net, batch: int, threads: int | None) -> int:
    from netspec.targets.numpy_exec import executor, traced_peak

    rng = np.random.default_rng(0)
    xs = [rng.standard_normal((batch, *i.shape)).astype(np.float32) for i in net.graph.inputs]
    return traced_peak(executor(net, seed=0, threads=threads), *xs)


# The U-Net at 96x96 (its sizes must be multiples of 16) keeps the test short; bench/bench_memory.py
# measures it at its own 256x256.
@pytest.mark.parametrize(("path", "size"), [(ROOT / "specs/resnet50.net", None),
                                            *UNETS], ids=lambda p: getattr(p, "stem", ""))
@pytest.mark.parametrize("batch", [1, 3])
def test_inference_peak_within_ten_percent_of_the_executor(path: Path, size: tuple | None, batch: int) -> None:
    # tracemalloc around one forward pass after a warm-up call; weights and the input batch not counted.
    (net,) = _nets(path, size)
    estimate = estimate_memory(net, batch_size=batch).activation_peak
    measured = _measured(net, batch, threads=1)
    assert abs(estimate - measured) <= 0.10 * measured, (estimate, measured)


FIXTURES = sorted((ROOT / "tests/fixtures/analysis").glob("*.net"))


# efficientnet.net holds B0-B7 (B7 at 600x600): too slow to run here; efficientnetb0.net stands for it.
@pytest.mark.parametrize("path", [p for p in SPECS if p.stem not in ("resnet50", "vgg16", "efficientnet")
                                  and not p.stem.startswith("unet")]
                         + FIXTURES,
                         ids=lambda p: p.stem)
def test_inference_peak_on_every_spec(path: Path) -> None:
    # Small nets: the interpreter's own bookkeeping during a call (frames, lists, a few KiB) shows too.
    for net in _nets(path):
        estimate = estimate_memory(net, batch_size=1).activation_peak
        measured = _measured(net, 1, threads=1)
        assert abs(estimate - measured) <= 0.10 * measured + 64 * 1024, (net.name, estimate, measured)


@pytest.mark.parametrize("path", [ROOT / "specs/resnet18.net", UNETS[0][0]], ids=lambda p: p.stem)
def test_threaded_run_matches_too(path: Path) -> None:
    # With threads each worker keeps an im2col buffer of its own, grown on every worker at once
    # (Executor._even_scratch), so after the warm-up call a run allocates what the plan says.
    (net,) = _nets(path, (64, 64, 3))
    m = estimate_memory(net, batch_size=1)
    measured = _measured(net, 1, threads=2)
    assert abs(m.activation_peak - measured) <= 0.10 * measured, (m.activation_peak, measured)


def test_training_memory_arithmetic() -> None:
    net = netspec.load_source("network n {\n input x: [8]\n dense(4, name='a')\n batchnorm()\n dense(2)\n}\n")
    trainable, frozen = net.params
    assert (trainable, frozen) == (36 + 8 + 10, 8)
    for mode, slots in (("sgd", 0), ("momentum", 1), ("adam", 2)):
        m = estimate_memory(net, batch_size=10, dtype="float16", training=mode)
        assert m.weight_bytes == 2 * (trainable + frozen)
        assert m.gradient_bytes == 2 * trainable
        assert m.optimizer_bytes == 2 * slots * trainable
        assert m.kept_activations == 2 * 10 * (8 + 4 + 4 + 2)
        assert m.total == m.weight_bytes + m.gradient_bytes + m.optimizer_bytes + m.kept_activations


def test_peak_is_not_the_sum_of_outputs() -> None:
    (net,) = _nets(ROOT / "specs/resnet50.net")
    m = estimate_memory(net, batch_size=1)
    assert m.activation_peak < 0.1 * net.activation_bytes


def test_memory_scales_with_dtype_and_batch() -> None:
    (net,) = _nets(ROOT / "specs/mnist.net")
    a = estimate_memory(net, 4, "float32").activation_peak
    assert estimate_memory(net, 8, "float32").activation_peak == 2 * a
    assert estimate_memory(net, 4, "bfloat16").activation_peak == a // 2


# --- budgets --------------------------------------------------------------------------------------


def test_budget_units() -> None:
    assert parse_count("1G") == 10**9 and parse_count("2.5k") == 2500 and parse_count("1e6") == 10**6
    assert parse_bytes("1KiB") == 1024 and parse_bytes("3 GB") == 3 * 10**9
    for bad in ("", "M", "5X", "-1", "1..2", "5MiB"):
        with pytest.raises(ValueError):
            (parse_count if bad != "5X" else parse_bytes)(bad)


@pytest.mark.parametrize("flag", ["--max-params", "--max-macs", "--max-memory"])
def test_bad_budget_is_a_usage_error(flag: str) -> None:
    result = cli_runner().invoke(main, ["check", str(ROOT / "specs/mnist.net"), flag, "lots"])
    assert result.exit_code == 2
    assert "Traceback" not in result.output


def test_budgets_within_limits_pass() -> None:
    result = cli_runner().invoke(main, ["check", str(ROOT / "specs/mnist.net"), "--max-params", "1M",
                                        "--max-macs", "1G", "--max-memory", "1GiB", "--training", "adam",
                                        "--batch-size", "64"])
    assert result.exit_code == 0, result.stderr
