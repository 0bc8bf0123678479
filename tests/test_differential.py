"""Cross-target differential testing: one generator of random networks drives all three targets.

For each network drawn by :func:`netgen.networks` (spec text, so the parser,
elaborator and checker run too):

- check's shapes and parameter counts equal Keras's, layer by layer;
- check's shapes equal ONNX's strict shape inference (on the bare graph);
- check's shapes equal the NumPy executor's actual output shapes;
- on the same weights the NumPy executor, onnxruntime and Keras compute the
  same numbers, every layer (Keras) and the output (ONNX), relative error
  <= 1e-4 of the layer's largest value.

A failing case is shrunk by hypothesis and the shrunk spec written to
``tests/regressions/auto_<test>.net`` (see tests/regressions/README.md);
``test_regressions`` then runs it on every CI run.

Profiles: CI draws 15 networks; ``NETSPEC_PROFILE=long`` draws
``NETSPEC_LONG_NETWORKS`` (default 2000).  Each network that ran is counted
(see :func:`counting.count`).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
from counting import count
from helpers import lively_weights
from hypothesis import HealthCheck, given, settings
from netgen import GenNet, networks, spatial_networks

import netspec
from netspec.core.check import NetworkReport

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("tensorflow")

from netspec.targets.keras_model import import_keras, to_keras  # noqa: E402
from netspec.targets.numpy_exec import executor  # noqa: E402
from netspec.targets.onnx_model import inferred_shapes, to_onnx  # noqa: E402

TOLERANCE = 1e-4
LONG = os.environ.get("NETSPEC_PROFILE") == "long"
NETWORKS = int(os.environ.get("NETSPEC_LONG_NETWORKS", "2000")) if LONG else 15
REGRESSIONS = Path(__file__).parent / "regressions"
#: Keras keeps every model it built in its graph; clear it now and then so a long run stays small.
_CLEAR_EVERY = 25
_built = 0


def rel_err(got: np.ndarray, want: np.ndarray) -> float:
    """Largest absolute difference relative to the largest value of ``want`` (absolute when that is 0).

    >>> round(rel_err(np.array([1.0, 2.0]), np.array([1.0, 2.5])), 3)
    0.2
    """
    if got.shape != want.shape:
        return float("inf")
    scale = float(np.max(np.abs(want))) if want.size else 0.0
    diff = float(np.max(np.abs(got.astype(np.float64) - want), initial=0.0))
    return diff / scale if scale > 1e-6 else diff


def _matches(got: tuple, declared: tuple) -> bool:
    """A concrete shape fits a declared one (None fits anything)."""
    return len(got) == len(declared) and all(d is None or d == g for g, d in zip(got, declared))




def check_numpy(net: NetworkReport, weights: dict, x: np.ndarray | list[np.ndarray]) -> dict[str, np.ndarray]:
    """Every layer's NumPy output has check's shape; returns the activations.

    ``x`` is one batch, or a list of one batch per input.
    """
    xs = x if isinstance(x, list) else [x]
    run = executor(net, weights)
    originals = [v.copy() for v in xs]
    acts = run.activations(*xs)
    for node in net.graph.nodes:
        got = acts[node.name].shape
        assert got[0] == xs[0].shape[0] and _matches(got[1:], net.layers[node.name].shape), \
            f"{node.name}: NumPy shape {got}, check says {net.layers[node.name].shape}"
    assert all(np.array_equal(v, o) for v, o in zip(xs, originals)), "Executor.activations() modified an input"
    ys = run(*xs, by_name=True)
    assert all(np.array_equal(v, o) for v, o in zip(xs, originals)), "Executor() modified an input array"
    assert list(ys) == list(net.graph.outputs)
    for output, y in ys.items():
        assert rel_err(y, acts[output]) <= TOLERANCE, f"Executor() and activations() disagree on {output!r}"
    return acts


def check_onnx(net: NetworkReport, weights: dict, x: np.ndarray | list[np.ndarray], acts: dict) -> None:
    """ONNX shape inference equals check layer by layer; onnxruntime's output equals NumPy's."""
    model = to_onnx(net, weights)
    onnx.checker.check_model(model, full_check=True)
    props = {p.key: p.value for p in model.metadata_props}
    layouts = json.loads(props.get("netspec.layouts", "{}"))
    dims = inferred_shapes(model)
    for node in net.graph.nodes:
        want = (None, *net.layers[node.name].shape)
        perm = layouts.get(node.name, list(range(len(want))))
        assert node.name in dims, f"ONNX shape inference gave no shape for {node.name!r}"
        assert dims[node.name] == [want[p] for p in perm], \
            f"{node.name}: ONNX inferred {dims[node.name]} (axes {perm}), check says {want}"
    xs = x if isinstance(x, list) else [x]
    assert [i.name for i in model.graph.input] == [i.name for i in net.graph.inputs]
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    ys = sess.run(None, {i.name: v for i, v in zip(net.graph.inputs, xs)})
    assert len(ys) == len(net.graph.outputs)
    for output, y in zip(net.graph.outputs, ys):
        want = acts[output]
        err = rel_err(y, want)
        assert err <= TOLERANCE, f"ONNX output {output!r} {y.shape} vs NumPy {want.shape}: relative error {err:.3g}"


def check_keras(net: NetworkReport, weights: dict, x: np.ndarray | list[np.ndarray], acts: dict) -> None:
    """Keras's counts and every layer's shape equal check's; every layer's value equals NumPy's."""
    global _built
    keras = import_keras()
    _built += 1
    if _built % _CLEAR_EVERY == 0:
        keras.backend.clear_session()
    model = to_keras(net, weights)
    assert model.count_params() == net.total_params
    trainable = sum(int(np.prod(v.shape)) for v in model.trainable_weights)
    non_trainable = sum(int(np.prod(v.shape)) for v in model.non_trainable_weights)
    assert (trainable, non_trainable) == net.params
    names = [n.name for n in net.graph.nodes]
    for name in names:
        layer = model.get_layer(name)
        assert tuple(layer.output.shape[1:]) == net.layers[name].shape, \
            f"{name}: Keras shape {layer.output.shape}, check says {net.layers[name].shape}"
        assert sum(int(np.prod(w.shape)) for w in layer.weights) == net.layers[name].params, name
    xs = x if isinstance(x, list) else [x]
    assert list(model.output_names) == list(net.graph.outputs)
    if not names:
        return
    probe = keras.Model(model.inputs, [model.get_layer(n).output for n in names])
    outs = probe(xs, training=False)
    outs = outs if isinstance(outs, (list, tuple)) else [outs]
    for name, got in zip(names, outs):
        got = np.asarray(got)
        err = rel_err(got, acts[name])
        assert err <= TOLERANCE, f"{name}: Keras {got.shape} vs NumPy {acts[name].shape}: relative error {err:.3g}"


def differential(text: str, concrete_input: tuple[int, ...], seed: int = 0, keras: bool = True,
                 extra_inputs: tuple[tuple[int, ...], ...] = ()) -> NetworkReport:
    """Run one spec through check and all three targets; raise AssertionError on any disagreement.

    ``extra_inputs`` are the concrete shapes of the inputs after the first.

    >>> differential("network n {\\n input x: [4]\\n dense(2)\\n}\\n", (4,), keras=False).output_shape
    (2,)
    """
    net = netspec.load_source(text, filename="gen.net")
    shapes = (concrete_input, *extra_inputs)
    assert len(shapes) == len(net.graph.inputs)
    assert all(_matches(s, i.shape) for s, i in zip(shapes, net.graph.inputs))
    weights = lively_weights(net, seed)
    rng = np.random.default_rng(seed)
    xs = [rng.standard_normal((2, *s)).astype(np.float32) for s in shapes]
    # each target gets its own copy: one that wrote into its input must not spoil the others' comparison
    acts = check_numpy(net, weights, [v.copy() for v in xs])
    check_onnx(net, weights, [v.copy() for v in xs], acts)
    if keras:
        check_keras(net, weights, [v.copy() for v in xs], acts)
    return net


def save_failure(test: str, case: GenNet) -> Path:
    """Write a failing case as a regression spec; hypothesis's last call is the shrunk one."""
    REGRESSIONS.mkdir(exist_ok=True)
    path = REGRESSIONS / f"auto_{test}.net"
    head = f"# concrete-input: {list(case.concrete_input)}\n"
    head += "".join(f"# extra-input: {list(shape)}\n" for shape in case.extra_inputs)
    head += f"# found by {test}; shrunk by hypothesis\n"
    path.write_text(head + case.text, encoding="utf-8")
    return path


def parse_header(text: str) -> tuple[tuple[int, ...], str | None]:
    """The concrete input shape and the xfail reason from a regression file's header comments.

    >>> parse_header("# concrete-input: [4, 4, 1]\\n# xfail: bug\\nnetwork n {}")
    ((4, 4, 1), 'bug')
    """
    m = re.search(r"^# concrete-input: \[([\d, ]*)\]", text, re.M)
    shape = tuple(int(v) for v in m.group(1).split(",") if v.strip()) if m else ()
    x = re.search(r"^# xfail: (.+)$", text, re.M)
    return shape, (x.group(1).strip() if x else None)


def extra_inputs(text: str) -> tuple[tuple[int, ...], ...]:
    """The concrete shapes of the inputs after the first, from ``# extra-input: [..]`` header lines.

    >>> extra_inputs("# concrete-input: [4]\\n# extra-input: [3]\\nnetwork n {}")
    ((3,),)
    """
    return tuple(tuple(int(v) for v in m.split(",") if v.strip())
                 for m in re.findall(r"^# extra-input: \[([\d, ]*)\]", text, re.M))


@settings(max_examples=NETWORKS, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                          HealthCheck.filter_too_much])
@given(networks())
def test_targets_agree(case: GenNet) -> None:
    try:
        differential(case.text, case.concrete_input, extra_inputs=case.extra_inputs)
    except BaseException:
        save_failure("test_targets_agree", case)
        raise
    count("networks")
    for feature in case.features:
        count(f"feature:{feature}")


@settings(max_examples=NETWORKS, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                          HealthCheck.filter_too_much])
@given(spatial_networks())
def test_spatial_targets_agree(case: GenNet) -> None:
    """1-D, 2-D decoder and 3-D networks of the spatial ops: NumPy, Keras and ONNX agree layer by layer."""
    try:
        differential(case.text, case.concrete_input)
    except BaseException:
        save_failure("test_spatial_targets_agree", case)
        raise
    count("spatial_networks")
    for feature in case.features:
        count(f"feature:{feature}")


def test_spatial_generator_covers_the_ops() -> None:
    """Over a fixed sample of draws the spatial generator reaches every spatial op and form."""
    from hypothesis import strategies as st

    seen: set[str] = set()

    @settings(max_examples=600, database=None, derandomize=True, phases=[__import__("hypothesis").Phase.generate])
    @given(st.data())
    def collect(data: st.DataObject) -> None:
        seen.update(data.draw(spatial_networks()).features)

    collect()
    wanted = {f"{op}{n}d" for n in (1, 2, 3) for op in ("conv", "maxpool", "avgpool", "global_avgpool",
                                                         "global_maxpool", "zeropad", "cropping", "upsampling")}
    wanted |= {f"conv{n}d_transpose" for n in (1, 2, 3)} | {f"conv{n}d_transpose_output_padding" for n in (2, 3)}
    wanted |= {"conv1d_causal", "depthwise_conv1d", "separable_conv1d", "decoder_skip", "unknown_length",
               "resizing", "resizing_crop", "center_crop", "center_crop_resize", "upsampling2d_bilinear",
               "upsampling2d_bicubic"}
    wanted |= {f"rank{r}_{fmt}" for r in (2, 3, 4) for fmt in ("channels_last", "channels_first")}
    assert wanted <= seen, f"never generated: {sorted(wanted - seen)}"


def test_generator_covers_the_language() -> None:
    """The generator reaches every feature the issue lists (seen over a fixed sample of draws)."""
    from hypothesis import strategies as st

    seen: set[str] = set()

    @settings(max_examples=500, database=None, derandomize=True, phases=[__import__("hypothesis").Phase.generate])
    @given(st.data())
    def collect(data: st.DataObject) -> None:
        seen.update(data.draw(networks()).features)

    collect()
    wanted = {"conv2d", "depthwise_conv2d", "separable_conv2d", "maxpool2d", "avgpool2d", "global_avgpool2d",
              "global_maxpool2d", "zeropad2d", "batchnorm", "dense", "reshape", "residual", "concat",
              "multiply_broadcast", "repeat", "repeat_counter", "if", "default", "groups", "dilation",
              "explicit_padding", "padding_same", "padding_valid", "unknown_size", "alias", "block_cbr",
              "block_res", "block_down", "block_fork", "chain", "softmax", "exponential", "relu_args",
              "initializer", "regularizer", "constraint", "flatten_channels_first", "flatten_channels_last",
              "several_inputs", "several_outputs", "concat_inputs",
              "let", "let_file", "cond_expr", "for", "for_unpack", "carry",
              # version 2's layer ops (each is also drawn by name in test_ops_layers.py)
              "merge_broadcast_rank"}

    assert wanted <= seen, f"never generated: {sorted(wanted - seen)}"
