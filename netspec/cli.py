"""The ``netspec`` command line: a thin layer over the library.

Exit status: 0 without errors, 1 when the spec (or a file it needs) has
errors, 2 for a wrong command line.  Diagnostics go to standard error;
no Python traceback reaches the user.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from typing import Any

import click

from .core.diagnostics import Diagnostic, NetspecError, render_all

__all__ = ["main"]


def _silence_codes(values: Iterable[str]) -> list[str]:
    from .core.diagnostics import CODES

    codes: list[str] = []
    for value in values:
        codes.extend(c.strip().upper() for c in value.split(",") if c.strip())
    warnings = sorted(c for c in CODES if c.startswith("W"))
    for code in codes:
        if code not in warnings:
            raise click.BadParameter(f"{code!r} is not a warning code; expected one of {', '.join(warnings)}",
                                     param_hint="'--silence'")
    return codes


def _emit(diagnostics: Iterable[Diagnostic]) -> None:
    text = render_all(diagnostics)
    if text:
        click.echo(text, err=True)


def _fail(diagnostics: Iterable[Diagnostic]) -> None:
    _emit(diagnostics)
    sys.exit(1)


def _guard(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn NetspecError into diagnostics + exit 1 and anything unexpected into a one-line error."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except NetspecError as err:
            _fail(err.diagnostics)
        except MemoryError:
            _fail([Diagnostic.error("E501", "out of memory")])
        except RecursionError:
            _fail([Diagnostic.error("E502", "input nested too deeply")])
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)

    return wrapper


def _load(file: str, network: str | None, silence: list[str] = ()):  # type: ignore[assignment]
    from .frontend.elaborate import check_file

    report = check_file(file, silence)
    if not report.ok:
        _fail(report.all_diagnostics)
    _emit(report.all_diagnostics)
    return report.network(network)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="netspec", message="netspec %(version)s")
def main() -> None:
    """netspec: check CNN specs (.net files) and compile them to NumPy, Keras and ONNX."""


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--network", "-n", help="Check only this network.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--strict", is_flag=True, help="Treat warnings as errors (exit 1).")
@click.option("--silence", "-s", multiple=True, metavar="CODE",
              help="Silence a warning code (repeatable, or comma-separated), e.g. -s W103.")
@_guard
def check(file: str, network: str | None, fmt: str, strict: bool, silence: tuple[str, ...]) -> None:
    """Parse and check FILE: shapes, parameter counts, MACs, receptive fields."""
    from .analysis.report import format_table, to_json
    from .frontend.elaborate import check_file

    report = check_file(file, _silence_codes(silence))
    nets = list(report.networks)
    extra: list[Diagnostic] = []
    if network is not None:
        nets = [n for n in nets if n.name == network]
        if not nets:
            try:
                report.network(network)
            except NetspecError as err:
                extra = list(err.diagnostics)
    diagnostics = list(report.diagnostics) + [d for n in nets for d in n.diagnostics] + extra
    if fmt == "json":
        import json

        out = to_json(report, nets)
        out["diagnostics"] += [d.to_json() for d in extra]
        click.echo(json.dumps(out))
        if diagnostics:
            _emit(diagnostics)
    else:
        _emit(diagnostics)
        tables = [format_table(n) for n in nets if n.ok]
        if tables:
            click.echo("\n\n".join(tables))
    errors = any(d.is_error for d in diagnostics)
    warnings = any(not d.is_error for d in diagnostics)
    if errors or (strict and warnings):
        sys.exit(1)


@main.command(name="compile")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--target", "-t", type=click.Choice(["numpy", "keras", "onnx"]), required=True)
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False), help="Output file.")
@click.option("--network", "-n", help="Which network in FILE.")
@click.option("--weights", "-w", type=click.Path(exists=True, dir_okay=False),
              help="Weights: a .npz in the contract's format, or a trained .keras file.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for fresh weights.")
@click.option("--opset", type=int, default=None, help="ONNX opset (onnx target).")
@_guard
def compile_(file: str, target: str, output: str, network: str | None, weights: str | None,
             seed: int, opset: int | None) -> None:
    """Build a target: .npz weights (numpy), a .keras model, or an .onnx graph."""
    net = _load(file, network)
    from .targets import compile_target

    compile_target(net, target, output, weights=weights, seed=seed, opset=opset)


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--input", "-i", "inputs", required=True, multiple=True, metavar="[NAME=]FILE.npy",
              callback=lambda ctx, param, values: _input_files(values),
              help="An input batch as .npy; NAME=FILE.npy once per input when the network has several.")
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False),
              help="Output .npy, or .npz keyed by output name (always .npz for several outputs).")
@click.option("--network", "-n", help="Which network in FILE.")
@click.option("--weights", "-w", type=click.Path(exists=True, dir_okay=False), help="Weights (.npz or .keras).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for fresh weights when none are given.")
@_guard
def run(file: str, inputs: tuple[str, ...], output: str, network: str | None, weights: str | None, seed: int) -> None:
    """Run the NumPy reference executor on an input batch (one per input)."""
    net = _load(file, network)
    from .targets.numpy_exec import run_cli

    run_cli(net, list(inputs), output, weights=weights, seed=seed)


def _input_files(values: Iterable[str]) -> tuple[str, ...]:
    """Each ``--input`` value's file must exist (exit 2 otherwise), as for any other path option."""
    import os

    for value in values:
        name, eq, path = value.partition("=")
        if os.path.exists(value) or (eq and name.isidentifier() and os.path.exists(path)):
            continue
        shown = path if eq and name.isidentifier() else value
        raise click.BadParameter(f"File {shown!r} does not exist.", param_hint="'--input' / '-i'")
    return tuple(values)


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--data", "-d", default="digits", show_default=True,
              help="A .npz (x_train, y_train, x_test, y_test), or mnist, fashion_mnist, cifar10, digits.")
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False), help="Output .keras model.")
@click.option("--network", "-n", help="Which network in FILE.")
@click.option("--epochs", "-e", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--batch-size", "-b", type=click.IntRange(min=1), default=32, show_default=True)
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=1e-3, show_default=True,
              help="Adam learning rate.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--distribute", type=click.Choice(["none", "mirrored", "multiworker"]), default="none",
              show_default=True, help="tf.distribute strategy.")
@_guard
def train(file: str, data: str, output: str, network: str | None, epochs: int, batch_size: int, lr: float,
          seed: int, distribute: str) -> None:
    """Train the Keras model of FILE and save it; prints 'test accuracy: ...'."""
    net = _load(file, network)
    from .targets.training import train_cli

    train_cli(net, data, output, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, distribute=distribute)


if __name__ == "__main__":  # pragma: no cover
    main()
