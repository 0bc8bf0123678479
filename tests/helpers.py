"""Small helpers shared by several test files."""

from __future__ import annotations

import numpy as np
from click.testing import CliRunner

from netspec.core.check import NetworkReport
from netspec.targets.weights import init_weights


def cli_runner() -> CliRunner:
    """A click test runner that keeps standard error apart, on every click version.

    >>> cli_runner().invoke(__import__("netspec.cli").cli.main, ["--version"]).output.strip()
    'netspec 0.1.0'
    """
    try:
        return CliRunner(mix_stderr=False)  # click < 8.2
    except TypeError:
        return CliRunner()  # click >= 8.2 always keeps them apart


def load_first(path: object) -> NetworkReport:
    """The first network of a spec file (a file of instances, like specs/efficientnet.net, has several).

    >>> from pathlib import Path
    >>> load_first(Path(__file__).parent.parent / "specs" / "mnist.net").name
    'mnist_cnn'
    """
    import netspec

    report = netspec.check_file(str(path))
    if not report.ok:
        raise netspec.NetspecError(report.all_diagnostics)
    return report.networks[0]


def lively_weights(net: NetworkReport, seed: int = 0) -> dict[str, np.ndarray]:
    """``init_weights`` (so every initializer runs), then batchnorm statistics and biases
    moved far from their neutral initial values, so a wrong axis or a dropped bias shows.

    >>> import netspec
    >>> w = lively_weights(netspec.load_source("network n {\\n input x: [4]\\n dense(2)\\n}\\n"))
    >>> bool(abs(w["dense/bias"]).sum() > 0)
    True
    """
    rng = np.random.default_rng(seed + 1)
    weights = init_weights(net, seed)
    for key, w in weights.items():
        name = key.rpartition("/")[2]
        if name in ("gamma", "moving_variance"):
            weights[key] = rng.uniform(0.5, 1.5, w.shape).astype(np.float32)
        elif name in ("beta", "moving_mean", "bias"):
            weights[key] = rng.normal(0.0, 0.2, w.shape).astype(np.float32)
    return weights
