"""Training: the Keras model of a spec, fitted to a data set, saved, with its training curve.

``netspec train FILE --data NAME_OR_NPZ -o MODEL.keras`` builds the Keras
model (:func:`netspec.targets.keras_model.to_keras`, fresh weights from
``--seed``), trains it with Adam on sparse categorical cross-entropy under
Keras's own progress bar, evaluates it on the held-out test split, saves it
as ``MODEL.keras`` (it reloads with ``keras.models.load_model``) and the
training curve as ``MODEL.png``, and prints ``test accuracy: 0.xxxx`` last.

Data sets (``--data``):

- ``digits`` (the default): the 1,797 8x8 handwritten digits that
  scikit-learn ships, so training works offline on a fresh install; a fixed
  stratified split keeps 20% (360 images) for the test.
- ``mnist``, ``fashion_mnist``, ``cifar10``: loaded with ``keras.datasets``,
  which downloads them once (E604 when the download fails, e.g. offline).
- a ``.npz`` in the ``keras.datasets`` layout: ``x_train``, ``y_train``,
  ``x_test``, ``y_test``; labels are class indices (or one-hot rows).

A tenth of the training split (drawn with the seed) is held out for the
validation curve.

How images are fitted to the network's input (:func:`fit_images`):

- Scale: one rule for ``netspec run`` and ``netspec train``
  (:func:`netspec.targets.input_scale`): ``uint8`` pixels are divided by
  255, every other type is taken as it is (the digits arrive as floats in
  [0, 1]: scikit-learn's 0..16 divided by 16).
- Channels: ``(N, H, W)`` images get one channel; one channel is repeated
  to the C the input wants, three (RGB) become one by ITU-R 601 luminance;
  any other mismatch is an error.
- Size: images are resized (bilinear, antialiased, aspect ratio kept) to
  fit the input's height and width and zero-padded, centred, to fill it;
  an unknown size (``?``) takes the images' own.  So the 8x8 digits become
  28x28 for the MNIST network, and 32x32x3 (channels repeated) for a
  CIFAR-10 one.  A ``channels_first`` input gets ``(C, H, W)``.
- A rank-1 input takes the images flattened (channels last) when the
  sizes agree.

The network's output must be a vector with one entry per class (E604
otherwise, before any training), and its last activation picks the loss:
``softmax`` is trained with categorical cross-entropy on probabilities,
``sigmoid`` with binary cross-entropy (one unit for two classes, or one
unit per class, one-vs-rest), anything else (``linear``, no activation)
with categorical cross-entropy on logits.  Every conversion of the data
(scaling, resizing, channels) is printed as a ``note:`` before training.

``--distribute mirrored`` trains under ``tf.distribute.MirroredStrategy``
(every local GPU, else the CPU); ``--distribute multiworker`` under
``MultiWorkerMirroredStrategy`` across the hosts that ``TF_CONFIG`` names.
``--batch-size`` is the global batch, split across replicas.  Only the
chief (``chief``, else ``worker`` 0) writes the model and the curve.

>>> import numpy as np
>>> fit_images(np.zeros((2, 8, 8), np.uint8), (28, 28, 1), "channels_last").shape
(2, 28, 28, 1)
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..core.check import NetworkReport
from ..core.diagnostics import Diagnostic, NetspecError, Note

__all__ = [
    "ConfigError",
    "DATASETS",
    "Dataset",
    "TrainResult",
    "curve_path",
    "fit_images",
    "load_dataset",
    "plot_history",
    "refuse_several",
    "train",
    "train_cli",
]

#: Data sets known by name (besides a ``.npz`` path).
DATASETS = ("digits", "mnist", "fashion_mnist", "cifar10")
#: Share of the training split held out for the validation curve.
VALIDATION_SHARE = 0.1
#: Share of the digits kept for the test.
DIGITS_TEST_SHARE = 0.2
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def _error(message: str, code: str = "E604") -> NetspecError:
    return NetspecError([Diagnostic.error(code, message)])


@dataclass(frozen=True)
class Dataset:
    """A classification data set in the ``keras.datasets`` layout (raw, not yet fitted to a network).

    >>> d = Dataset("toy", np.zeros((4, 2, 2)), np.array([0, 1, 0, 1]), np.zeros((2, 2, 2)), np.array([1, 0]))
    >>> d.num_classes, len(d.x_train)
    (2, 4)
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    @property
    def num_classes(self) -> int:
        """One more than the largest label."""
        return int(max(self.y_train.max(initial=0), self.y_test.max(initial=0))) + 1


def _labels(y: Any, what: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] > 1:  # one-hot rows
        y = y.argmax(axis=1)
    y = y.reshape(len(y), -1) if y.ndim else y
    if y.ndim != 2 or y.shape[1] != 1:
        raise _error(f"{what} must hold one class index per sample, got shape {np.shape(y)}")
    y = y[:, 0]
    if y.dtype.kind == "f" and np.all(y == np.round(y)):
        y = y.astype(np.int64)
    if y.dtype.kind not in "iub" or (len(y) and y.min() < 0):
        raise _error(f"{what} must hold class indices 0, 1, 2, ... (non-negative integers)")
    return y.astype(np.int32)


def _digits() -> Dataset:
    try:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
    except ImportError:
        raise _error("the digits data set comes with scikit-learn, which is not installed: "
                     "pip install 'netspec[train]'") from None
    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)  # pixel values are 0..16
    x_train, x_test, y_train, y_test = train_test_split(
        x, digits.target, test_size=DIGITS_TEST_SHARE, stratify=digits.target, random_state=0)
    return Dataset("digits", x_train, _labels(y_train, "y_train"), x_test, _labels(y_test, "y_test"))


def _keras_dataset(name: str) -> Dataset:
    from .keras_model import import_keras

    keras = import_keras()
    try:
        (x_train, y_train), (x_test, y_test) = getattr(keras.datasets, name).load_data()
    except Exception as err:  # keras.utils.get_file raises a bare Exception on a failed download
        raise _error(f"cannot load the {name} data set: {err}. It is downloaded on first use, which needs "
                     "the internet; offline, use --data digits (it ships with scikit-learn) or a .npz with "
                     "x_train, y_train, x_test, y_test") from None
    return Dataset(name, x_train, _labels(y_train, "y_train"), x_test, _labels(y_test, "y_test"))


def _npz(path: str) -> Dataset:
    from ..core.fileio import content_problem

    problem = content_problem(path, "npz")
    if problem is not None:
        raise _error(f"cannot read data set {path}: {problem}", "E603")
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in ("x_train", "y_train", "x_test", "y_test") if k not in data.files]
            if missing:
                raise _error(f"{path} lacks {', '.join(missing)}: a data set .npz holds x_train, y_train, "
                             f"x_test and y_test (the keras.datasets layout); it has {', '.join(data.files) or 'nothing'}")
            arrays = {k: data[k] for k in ("x_train", "y_train", "x_test", "y_test")}
    except NetspecError:
        raise
    except (OSError, ValueError, EOFError) as err:
        raise _error(f"cannot read data set {path}: {err}", "E603") from None
    for part in ("train", "test"):
        x, y = arrays[f"x_{part}"], arrays[f"y_{part}"]
        if x.dtype.kind not in "biuf":
            raise _error(f"x_{part} in {path} holds {x.dtype} values, not numbers")
        if len(x) != len(y) or len(x) == 0:
            raise _error(f"x_{part} in {path} has {len(x)} samples but y_{part} has {len(y)}"
                         if len(x) != len(y) else f"x_{part} in {path} is empty")
    return Dataset(os.path.basename(path), arrays["x_train"], _labels(arrays["y_train"], "y_train"),
                   arrays["x_test"], _labels(arrays["y_test"], "y_test"))


def load_dataset(name_or_path: str | os.PathLike) -> Dataset:
    """A data set by name (``digits``, ``mnist``, ``fashion_mnist``, ``cifar10``) or ``.npz`` path.

    Errors are E604 (unknown name, missing arrays, a failed download) and
    E603 (an unreadable file).

    >>> d = load_dataset("digits")
    >>> d.x_train.shape, d.x_test.shape, d.num_classes
    ((1437, 8, 8), (360, 8, 8), 10)
    """
    text = os.fspath(name_or_path)
    if os.path.isfile(text):
        return _npz(text)
    if text == "digits":
        return _digits()
    if text in DATASETS:
        return _keras_dataset(text)
    if text.endswith(".npz"):
        raise _error(f"cannot read data set {text}: no such file", "E603")
    raise _error(f"unknown data set {text!r}: give a .npz file (x_train, y_train, x_test, y_test) "
                 f"or one of {', '.join(DATASETS)}")


# --- fitting images to the network's input ---------------------------------------------------------


def _scale(x: np.ndarray, reference: np.ndarray) -> float:
    from . import input_scale

    return input_scale(x)


@dataclass(frozen=True)
class _Fit:
    """How a batch of images becomes the network's input: the plan checked once, applied per batch."""

    scale: float
    channels_in: int | None  # None: the data are flat vectors
    channels_out: int | None
    size: tuple[int, int] | None  # resize target, None to keep
    channels_first: bool
    flatten: bool


def _plan(sample_shape: tuple[int, ...], input_shape: tuple[int | None, ...], data_format: str,
          scale: float) -> _Fit:
    """Check that samples of ``sample_shape`` can feed ``input_shape``; say how (E604 when they cannot)."""
    shown = "(" + ", ".join("?" if d is None else str(d) for d in input_shape) + ")"
    if len(input_shape) == 1:
        size = int(np.prod(sample_shape))
        if input_shape[0] not in (None, size):
            raise _error(f"samples of shape {sample_shape} ({size} values) cannot feed the network's input "
                         f"{shown}: a flat input takes the samples flattened, so it needs {size} values")
        return _Fit(scale, None, None, None, False, True)
    if len(input_shape) != 3:
        raise _error(f"the network's input {shown} is neither an image (H, W, C) nor a vector, "
                     "so netspec cannot feed it a data set")
    if len(sample_shape) == 2:
        h, w, c = (*sample_shape, 1)
    elif len(sample_shape) == 3:
        h, w, c = sample_shape
    else:
        raise _error(f"samples of shape {sample_shape} are not images (H, W) or (H, W, C), "
                     f"so they cannot feed the network's image input {shown}")
    if data_format == "channels_first":
        want_c, want_h, want_w = input_shape
    else:
        want_h, want_w, want_c = input_shape
    want_c = c if want_c is None else want_c
    if c != want_c and c != 1 and not (c == 3 and want_c == 1):
        raise _error(f"images with {c} channels cannot feed the network's input {shown} ({data_format}), "
                     f"which needs {want_c}: netspec repeats 1 channel or turns 3 (RGB) into 1 (grey), nothing else")
    target = (h if want_h is None else want_h, w if want_w is None else want_w)
    return _Fit(scale, c, want_c, None if target == (h, w) else target, data_format == "channels_first", False)


def _apply(fit: _Fit, x: Any) -> Any:
    """Apply a plan to a batch with TensorFlow ops (it runs inside a tf.data pipeline)."""
    import tensorflow as tf

    x = tf.cast(x, tf.float32) * fit.scale
    if fit.flatten:
        return tf.reshape(x, (tf.shape(x)[0], -1))
    if fit.channels_in is not None and len(x.shape) == 3:
        x = x[..., tf.newaxis]
    if fit.channels_in != fit.channels_out:
        if fit.channels_in == 1:
            x = tf.repeat(x, fit.channels_out, axis=-1)
        else:
            x = tf.reduce_sum(x * _LUMA, axis=-1, keepdims=True)
    if fit.size is not None:
        x = tf.image.resize_with_pad(x, fit.size[0], fit.size[1], method="bilinear", antialias=True)
    if fit.channels_first:
        x = tf.transpose(x, (0, 3, 1, 2))
    return x


def fit_images(x: np.ndarray, input_shape: tuple[int | None, ...], data_format: str,
               scale: float | None = None) -> np.ndarray:
    """Images (or vectors) scaled and shaped to a network's input; see the module's notes.

    ``scale`` defaults to the dtype's rule (1/255 for uint8, ...).  Raises
    :class:`NetspecError` (E604) when the samples cannot fit.

    >>> fit_images(np.full((1, 8, 8), 255, np.uint8), (3, 32, 32), "channels_first").shape
    (1, 3, 32, 32)
    >>> fit_images(np.ones((1, 4, 2), np.float32), (4, 4, 1), "channels_last")[0, :, :, 0].tolist()
    [[0.0, 1.0, 1.0, 0.0], [0.0, 1.0, 1.0, 0.0], [0.0, 1.0, 1.0, 0.0], [0.0, 1.0, 1.0, 0.0]]
    """
    from .keras_model import import_keras

    x = np.asarray(x)
    fit = _plan(tuple(x.shape[1:]), tuple(input_shape), data_format, _scale(x, x) if scale is None else scale)
    import_keras()
    return np.asarray(_apply(fit, x))


# --- distribution ----------------------------------------------------------------------------------


class ConfigError(ValueError):
    """TF_CONFIG is malformed (a command-line error: ``netspec train`` exits with status 2)."""


def _tf_config() -> dict | None:
    """TF_CONFIG, parsed and checked, or None when unset or blank (ConfigError when malformed)."""
    text = os.environ.get("TF_CONFIG", "")
    if not text.strip():
        os.environ.pop("TF_CONFIG", None)  # TensorFlow itself chokes on a blank one
        return None
    try:
        config = json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigError(f"TF_CONFIG is not valid JSON: {err}") from None
    cluster = config.get("cluster") if isinstance(config, dict) else None
    task = config.get("task") if isinstance(config, dict) else None
    if not isinstance(cluster, dict) or not isinstance(task, dict):
        raise ConfigError('TF_CONFIG needs "cluster" (e.g. {"worker": ["host1:port", "host2:port"]}) and '
                          '"task" (e.g. {"type": "worker", "index": 0})')
    kind, index = task.get("type"), task.get("index", 0)
    members = cluster.get(kind)
    if not isinstance(members, list) or not isinstance(index, int) or not 0 <= index < len(members):
        raise ConfigError(f"TF_CONFIG's task {task} is not in its cluster {cluster}")
    return config


def _is_chief(config: dict | None) -> bool:
    """Whether this process writes the outputs: the chief, else worker 0, else a lone process.

    >>> _is_chief(None), _is_chief({"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 1}})
    (True, False)
    """
    if config is None:
        return True
    task, cluster = config["task"], config["cluster"]
    if "chief" in cluster:
        return task.get("type") == "chief"
    return task.get("type") == "worker" and task.get("index", 0) == 0


def _strategy(distribute: str) -> Any:
    """The tf.distribute strategy for ``--distribute`` (None for 'none')."""
    if distribute == "none":
        return None
    import tensorflow as tf

    from .keras_model import _quiet_stderr

    with _quiet_stderr():  # the collective runtime greets on stderr
        if distribute == "mirrored":
            return tf.distribute.MirroredStrategy()
        if distribute == "multiworker":
            return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"unknown --distribute {distribute!r}: expected none, mirrored or multiworker")


def _multiworker_fit_functions(model: Any, strategy: Any, sample: tuple[np.ndarray, np.ndarray]) -> None:
    """Let ``model.fit``/``evaluate`` run under MultiWorkerMirroredStrategy (Keras 3.15 cannot by itself).

    Keras's TensorFlow trainer reduces one batch eagerly before it builds
    (``_maybe_symbolic_build``) and reduces the per-step metrics with
    ``axis=0`` across workers; under MultiWorkerMirroredStrategy both fail
    (keras-team/keras#20585).  So the model is built here on a plain batch,
    and its train and test functions run each step with ``strategy.run``
    and average the (scalar) metrics across replicas with ``axis=None``,
    as Keras does for a single worker.  The layers, loss, optimizer and
    data are untouched.
    """
    import tensorflow as tf

    if not hasattr(model, "_maybe_symbolic_build"):  # another Keras: let fit() do it its way
        return
    model._symbolic_build(data_batch=sample)
    model._maybe_symbolic_build = lambda iterator=None, data_batch=None: None

    def make(step: Callable) -> Callable:
        def one_step(iterator: Any) -> Any:
            outputs = strategy.run(step, args=(next(iterator),))
            return tf.nest.map_structure(lambda v: strategy.reduce("MEAN", v, axis=None), outputs)
        return tf.function(one_step, reduce_retracing=True)

    model.train_function = make(model.train_step)
    model.test_function = make(model.test_step)


# --- training ----------------------------------------------------------------------------------------


@dataclass
class TrainResult:
    """What :func:`train` returns: the trained model, its per-epoch history and the test scores."""

    model: Any
    history: dict[str, list[float]]
    test_loss: float
    test_accuracy: float
    seconds: float
    dataset: str
    chief: bool = True
    notes: list[str] = field(default_factory=list)


def refuse_several(net: NetworkReport) -> None:
    """E611 when the network has several inputs or outputs: ``netspec train`` fits one input to one label.

    The error points at the second input statement, or at the network with
    a note at each output's layer.

    >>> import netspec
    >>> net = netspec.load_source("network n { input a: [3]\\n input b: [3]\\n add(a, b) }")
    >>> try:
    ...     refuse_several(net)
    ... except NetspecError as err:
    ...     print(err.diagnostics[0].code, err.diagnostics[0].message[:60])
    E611 network 'n' has 2 inputs (a, b); netspec train trains a netw
    """
    graph = net.graph
    assert graph is not None
    how = ("netspec train trains a network with one input and one output (a classifier); "
           "build the Keras model with netspec.targets.keras_model.to_keras and train it with your own losses")
    if len(graph.inputs) > 1:
        names = ", ".join(i.name for i in graph.inputs)
        raise NetspecError([Diagnostic.error(
            "E611", f"network {graph.name!r} has {len(graph.inputs)} inputs ({names}); {how}",
            graph.inputs[1].span or graph.span)])
    if len(graph.outputs) > 1:
        names = ", ".join(graph.outputs)
        notes = []
        for name in graph.outputs:
            span = graph.node(name).span if any(n.name == name for n in graph.nodes) else graph.input.span
            notes.append(Note(f"output {name!r} is made here", span))
        raise NetspecError([Diagnostic.error(
            "E611", f"network {graph.name!r} has {len(graph.outputs)} outputs ({names}); {how}",
            graph.span, notes)])


def head_activation(net: NetworkReport) -> str:
    """How the network's output ends: ``'softmax'``, ``'sigmoid'`` or ``'linear'`` (anything else:
    scores trained as logits).

    >>> import netspec
    >>> head_activation(netspec.load_source("network n { input x: [4]\\n dense(3, activation='softmax') }"))
    'softmax'
    >>> head_activation(netspec.load_source("network n { input x: [4]\\n dense(1)\\n sigmoid() }"))
    'sigmoid'
    """
    node = net.graph.node(net.graph.output) if net.graph.nodes else None  # type: ignore[union-attr]
    if node is None:
        return "linear"
    if node.op == "softmax":
        return "softmax" if node.attrs.axis == -1 else "linear"
    if node.op == "sigmoid":
        return "sigmoid"
    act = getattr(node.attrs, "activation", None)
    act = getattr(act, "name", act)
    return act if act in ("softmax", "sigmoid") else "linear"


def _output_is_softmax(net: NetworkReport) -> bool:
    return head_activation(net) == "softmax"


def _check_head(net: NetworkReport, dataset: Dataset) -> str:
    """The loss the head calls for (E604 when the head does not fit the data's classes).

    ``softmax`` units == classes: categorical cross-entropy on probabilities;
    ``sigmoid``: binary cross-entropy (one unit for two classes, else one
    unit per class, one-vs-rest); anything else: categorical cross-entropy
    on logits.  Returns ``'categorical'``, ``'binary'`` or ``'one_vs_rest'``.
    """
    out = net.output_shape
    if out is None or len(out) != 1 or out[0] is None:
        raise _error(f"the network's output {out} is not a vector of class scores, so it cannot be trained "
                     "as a classifier (end it with dense(classes) or a global pool)")
    units, classes, head = out[0], dataset.num_classes, head_activation(net)
    if head == "sigmoid" and units == 1 and classes <= 2:
        return "binary"
    if units != classes:
        hint = (f"end it with dense({classes}, activation='softmax')" if classes > 2 or head != "sigmoid"
                else "end it with dense(1, activation='sigmoid') or dense(2, activation='softmax')")
        raise _error(f"the network's output has {units} entries but {dataset.name} has {classes} classes: {hint}")
    return "one_vs_rest" if head == "sigmoid" else "categorical"


def _pipeline(x: np.ndarray, y: np.ndarray, fit: _Fit, batch_size: int, shuffle_seed: int | None) -> Any:
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((x, y))
    if shuffle_seed is not None:
        ds = ds.shuffle(len(x), seed=shuffle_seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size).map(lambda a, b: (_apply(fit, a), b), num_parallel_calls=tf.data.AUTOTUNE)
    options = tf.data.Options()
    # Each worker reads the whole (in-memory) set and takes its share of every batch.
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.with_options(options).prefetch(tf.data.AUTOTUNE)


def train(net: NetworkReport, data: str | os.PathLike | Dataset = "digits", *, epochs: int = 10,
          batch_size: int = 32, lr: float = 1e-3, seed: int = 0, distribute: str = "none",
          verbose: Any = "auto") -> TrainResult:
    """Train the network's Keras model on a data set; evaluate it on the test split.

    ``data`` is a name, a ``.npz`` path or a :class:`Dataset`.  Raises
    :class:`NetspecError` (E604) when the data cannot fit the network and
    :class:`ConfigError` for a malformed ``TF_CONFIG``.

    >>> import netspec
    >>> net = netspec.load_source('''
    ... network tiny {
    ...     input x: [8, 8, 1]
    ...     flatten()
    ...     dense(10, activation='softmax')
    ... }''')
    >>> result = train(net, "digits", epochs=1, verbose=0)
    >>> 0.0 <= result.test_accuracy <= 1.0, sorted(result.history)
    (True, ['accuracy', 'loss', 'val_accuracy', 'val_loss'])
    """
    from .keras_model import build_model, import_keras, weights_to_keras
    from .weights import init_weights

    net.raise_for_errors()
    graph = net.graph
    assert graph is not None
    refuse_several(net)
    config = _tf_config() if distribute == "multiworker" else None
    if distribute == "multiworker" and config is None:
        print("note: TF_CONFIG is not set, so --distribute multiworker trains on this host alone",
              file=sys.stderr)
    keras = import_keras()
    # A multi-worker strategy must exist before TensorFlow runs any op.
    strategy = _strategy(distribute)

    dataset = data if isinstance(data, Dataset) else load_dataset(data)
    fit = _plan(tuple(dataset.x_train.shape[1:]), graph.input.shape, graph.input.data_format,
                _scale(dataset.x_train, dataset.x_train))
    kind = _check_head(net, dataset)
    if tuple(dataset.x_test.shape[1:]) != tuple(dataset.x_train.shape[1:]):
        raise _error(f"x_test samples have shape {dataset.x_test.shape[1:]} but x_train samples "
                     f"{dataset.x_train.shape[1:]}")

    keras.utils.set_random_seed(seed)
    order = np.random.default_rng(seed).permutation(len(dataset.x_train))
    n_val = int(round(len(order) * VALIDATION_SHARE)) if len(order) >= 10 else 0
    val_idx, train_idx = order[:n_val], order[n_val:]
    notes = _fit_notes(fit, dataset, graph.input.shape)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    classes = net.output_shape[0]  # type: ignore[index]

    def labels(y: np.ndarray) -> np.ndarray:  # one-hot rows for one-vs-rest sigmoid heads
        return np.eye(classes, dtype=np.float32)[y] if kind == "one_vs_rest" else y

    x_train, y_train = dataset.x_train[train_idx], labels(dataset.y_train[train_idx])
    train_ds = _pipeline(x_train, y_train, fit, batch_size, seed)
    val_ds = (_pipeline(dataset.x_train[val_idx], labels(dataset.y_train[val_idx]), fit, batch_size, None)
              if n_val else None)
    test_ds = _pipeline(dataset.x_test, labels(dataset.y_test), fit, batch_size, None)

    weights = init_weights(net, seed)
    scope = strategy.scope() if strategy is not None else contextlib.nullcontext()
    with scope:
        model = build_model(net)
        weights_to_keras(model, net, weights)
        if kind == "binary":
            loss, metric = keras.losses.BinaryCrossentropy(), keras.metrics.BinaryAccuracy(name="accuracy")
        elif kind == "one_vs_rest":
            loss, metric = keras.losses.BinaryCrossentropy(), keras.metrics.CategoricalAccuracy(name="accuracy")
        else:
            loss = keras.losses.SparseCategoricalCrossentropy(from_logits=not _output_is_softmax(net))
            metric = keras.metrics.SparseCategoricalAccuracy(name="accuracy")
        model.compile(optimizer=keras.optimizers.Adam(learning_rate=lr), loss=loss, metrics=[metric])
        if distribute == "multiworker":
            sample = (np.asarray(_apply(fit, x_train[:2])), y_train[:2])
            _multiworker_fit_functions(model, strategy, sample)
    started = time.perf_counter()  # the training itself: fit and the test evaluation
    history = model.fit(train_ds, validation_data=val_ds, epochs=epochs, verbose=verbose, shuffle=False)
    scores = model.evaluate(test_ds, verbose=0, return_dict=True)
    return TrainResult(model, {k: [float(v) for v in vs] for k, vs in history.history.items()},
                       float(scores["loss"]), float(scores["accuracy"]), time.perf_counter() - started,
                       dataset.name, _is_chief(config), notes)


def _fit_notes(fit: _Fit, dataset: Dataset, input_shape: tuple) -> list[str]:
    """What fitting the data to the input does, said before training (never silently)."""
    sample = tuple(dataset.x_train.shape[1:])
    shown = "(" + ", ".join("?" if d is None else str(d) for d in input_shape) + ")"
    notes = []
    if fit.scale != 1.0:
        notes.append(f"{dataset.name}: uint8 pixels divided by 255")
    if fit.size is not None:
        notes.append(f"{dataset.name}: {'x'.join(map(str, sample[:2]))} images resized (bilinear, aspect kept, "
                     f"zero-padded) to {fit.size[0]}x{fit.size[1]} for the input {shown}")
    if fit.channels_in is not None and fit.channels_in != fit.channels_out:
        how = "repeated" if fit.channels_in == 1 else "turned to grey (ITU-R 601)"
        notes.append(f"{dataset.name}: {fit.channels_in} channel(s) {how} to {fit.channels_out}")
    return notes


def plot_history(history: Mapping[str, list[float]], path: str | os.PathLike, title: str = "") -> None:
    """Write the training curve (loss and accuracy per epoch, training and validation) as a PNG.

    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "curve.png")
    >>> plot_history({"loss": [2.0, 1.0], "accuracy": [0.3, 0.6]}, p)
    >>> open(p, "rb").read(4) == b"\\x89PNG"
    True
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        raise _error("cannot draw the training curve: matplotlib is not installed "
                     "(pip install 'netspec[train]')", "E603") from None
    from ..core.fileio import atomic_output

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, metric in zip(axes, ("loss", "accuracy")):
        for key, label in ((metric, "training"), (f"val_{metric}", "validation")):
            if key in history:
                ax.plot(range(1, len(history[key]) + 1), history[key], marker="o", label=label)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.grid(True, alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    try:
        with atomic_output(path, suffix=".png") as tmp:
            fig.savefig(tmp, format="png", dpi=100)
    except OSError as err:
        raise _error(f"cannot write {os.fspath(path)}: {err}", "E603") from None
    finally:
        plt.close(fig)


def curve_path(output: str | os.PathLike) -> str:
    """Where the training curve of a model goes: beside it, as ``.png``.

    >>> curve_path("runs/model.keras")
    'runs/model.png'
    """
    return os.path.splitext(os.fspath(output))[0] + ".png"


def train_cli(net: NetworkReport, data: str, output: str | os.PathLike, epochs: int = 10, batch_size: int = 32,
              lr: float = 1e-3, seed: int = 0, distribute: str = "none") -> None:
    """``netspec train``: train, save ``output`` (.keras) and its curve (.png), print the test accuracy last.

    >>> import netspec, tempfile, os, io, contextlib, re
    >>> net = netspec.load_source("network n { input x: [8, 8, 1]\\n flatten()\\n dense(10) }")
    >>> out = os.path.join(tempfile.mkdtemp(), "m.keras")
    >>> with contextlib.redirect_stdout(io.StringIO()) as printed:
    ...     train_cli(net, "digits", out, epochs=1)
    >>> bool(re.fullmatch(r"test accuracy: [01]\\.\\d{4}", printed.getvalue().splitlines()[-1]))
    True
    >>> sorted(os.listdir(os.path.dirname(out)))
    ['m.keras', 'm.png']
    """
    import click

    from .keras_model import save_model

    if os.path.splitext(os.fspath(output))[1] != ".keras":
        raise _error(f"cannot write {os.fspath(output)}: Keras 3 saves models as .keras files", "E603")
    try:
        import matplotlib  # noqa: F401  (checked before a long run, not after)
    except ImportError:
        raise _error("netspec train draws the training curve with matplotlib, which is not installed: "
                     "pip install 'netspec[train]'", "E603") from None
    try:
        result = train(net, data, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, distribute=distribute)
    except ConfigError as err:  # the environment of the command line
        raise click.UsageError(str(err)) from None
    if result.chief:
        save_model(result.model, output)
        curve = curve_path(output)
        plot_history(result.history, curve, f"{net.name} on {result.dataset}")
        click.echo(f"saved {os.fspath(output)} and its training curve {curve} "
                   f"({result.seconds:.1f} s for {epochs} epoch{'s' if epochs != 1 else ''})")
    else:  # another worker: the chief writes the files
        click.echo(f"worker done in {result.seconds:.1f} s; the chief writes {os.fspath(output)}")
    click.echo(f"test accuracy: {result.test_accuracy:.4f}")
