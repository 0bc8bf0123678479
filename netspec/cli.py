"""The ``netspec`` command line: a thin layer over the library.

Exit status: 0 without errors, 1 when the spec (or a file it needs) has
errors, 2 for a wrong command line.  Diagnostics go to standard error;
no Python traceback reaches the user.
"""

from __future__ import annotations

import os
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


def _input_shape(value: str | None) -> tuple[int, ...] | None:
    """``--input-shape 512,512,3`` as a tuple of positive sizes."""
    if value is None:
        return None
    try:
        sizes = tuple(int(v) for v in value.replace("x", ",").split(",") if v.strip())
    except ValueError:
        sizes = ()
    if not sizes or any(d < 1 for d in sizes):
        raise click.BadParameter(f"{value!r} is not a list of positive sizes such as 512,512,3",
                                 param_hint="'--input-shape'")
    return sizes


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
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort, SystemExit):
            raise
        except Exception as err:  # a netspec bug: one line, never a traceback
            _fail([Diagnostic.error("E607", f"internal error: {type(err).__name__}: {err} "
                                            "(a netspec bug; please report it with the spec and the command)")])

    return wrapper


def _load(file: str, network: str | None, silence: list[str] = ()):  # type: ignore[assignment]
    """The network to build: errors in the file or in that network stop here; other networks' do not.

    A file with several networks needs ``--network``: E208 naming them, exit 2.
    """
    from .frontend.elaborate import check_file

    report = check_file(file, silence)
    if network is None and len(report.networks) > 1:
        _emit(report.diagnostics)
        try:
            report.network(None)
        except NetspecError as err:
            _emit(err.diagnostics)
        sys.exit(2)
    net = report.select(network)  # raises NetspecError: reported by _guard, exit 1
    _emit(report.diagnostics)
    _emit(net.diagnostics)
    return net


def _check_output(output: str, extensions: tuple[str, ...], what: str, *inputs: str | None) -> None:
    """Refuse an output path before any work is done: E603 or E606, exit 2 (a wrong command line)."""
    from .core.fileio import output_problem

    problem = output_problem(output, extensions, inputs, what)
    if problem is not None:
        _emit([Diagnostic.error(*problem)])
        sys.exit(2)


#: What each target writes, and the endings its output may have.
_TARGET_OUTPUTS = {"numpy": ((".npz",), "numpy weights"), "keras": ((".keras",), "Keras models"),
                   "onnx": ((".onnx",), "ONNX models")}


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="netspec", message="netspec %(version)s")
def main() -> None:
    """netspec: check CNN specs (.net files) and compile them to NumPy, Keras and ONNX."""


def _parsed(kind: str) -> Callable[[Any, Any, str | None], tuple[int, str] | None]:
    """A click callback: the option's value parsed (``kind``: 'count' or 'bytes'), beside the text as written."""
    def callback(ctx: Any, param: Any, value: str | None) -> tuple[int, str] | None:
        if value is None:
            return None
        from .analysis.budgets import parse_bytes, parse_count

        try:
            return (parse_count if kind == "count" else parse_bytes)(value), value
        except ValueError as err:
            raise click.BadParameter(str(err)) from None
    return callback


def _analysis_flags(fn: Callable[..., Any]) -> Callable[..., Any]:
    """check's memory, folding and budget options (netspec.analysis), passed on as ``analysis``."""
    flags = [
        click.option("--batch-size", "-b", type=click.IntRange(min=1), default=1, show_default=True,
                     help="Batch size of the memory figures."),
        click.option("--dtype", type=click.Choice(["float32", "float16", "bfloat16"]), default="float32",
                     show_default=True, help="Value type of the memory figures."),
        click.option("--training", type=click.Choice(["none", "sgd", "momentum", "adam"]), default="none",
                     show_default=True, help="Add training memory with this optimizer."),
        click.option("--depth", type=click.IntRange(min=0), default=None,
                     help="Fold block calls nested deeper than N into one row each."),
        click.option("--max-params", callback=_parsed("count"), metavar="N",
                     help="Fail (E504) above N parameters, e.g. 5M."),
        click.option("--max-macs", callback=_parsed("count"), metavar="N",
                     help="Fail (E505) above N MACs per sample, e.g. 1G."),
        click.option("--max-memory", callback=_parsed("bytes"), metavar="SIZE",
                     help="Fail (E506) above SIZE of memory at the batch size, e.g. 2GiB."),
    ]
    for flag in reversed(flags):
        fn = flag(fn)
    return fn


def _analysis_setup(kwargs: dict[str, Any]) -> tuple[Any, Any]:
    """(AnalysisOptions, Budgets or None) from check's analysis flags, as written on the command line."""
    from .analysis.summary import AnalysisOptions

    options = AnalysisOptions(kwargs["batch_size"], kwargs["dtype"], kwargs["training"], kwargs["depth"])
    limits = [kwargs["max_params"], kwargs["max_macs"], kwargs["max_memory"]]
    if not any(limits):
        return options, None
    from .analysis.budgets import Budgets

    return options, Budgets(*[v[0] if v else None for v in limits], *[v[1] if v else "" for v in limits])


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--network", "-n", help="Check only this network.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--strict", is_flag=True, help="Treat warnings as errors (exit 1).")
@click.option("--summary", is_flag=True, help="Print each network's totals only, without the table of layers.")
@click.option("--silence", "-s", multiple=True, metavar="CODE",
              help="Silence a warning code (repeatable, or comma-separated), e.g. -s W103.")
@click.option("--input-shape", "input_shape", metavar="D1,D2,...",
              help="Check at these input sizes (without the batch axis), e.g. 512,512,3; "
                   "replaces symbolic sizes such as [H, W, 3].")
@click.option("--explain", "explain", metavar="LAYER",
              help="Show the arithmetic behind a layer's row (size, weights, MACs, receptive field); "
                   "'all' for every layer.")
@_analysis_flags
@_guard
def check(file: str, network: str | None, fmt: str, strict: bool, summary: bool, silence: tuple[str, ...],
          input_shape: str | None, explain: str | None, **analysis: Any) -> None:
    """Parse and check FILE: shapes, parameter counts, MACs, FLOPs, receptive fields, memory."""
    from ._dccache import cached_dataclasses

    with cached_dataclasses():  # the analysis modules' dataclasses come precompiled too
        from .analysis.report import format_summary, format_table, to_json
        from .frontend.elaborate import check_file

    options, budgets = _analysis_setup(analysis)

    report = check_file(file, _silence_codes(silence), _input_shape(input_shape))
    nets = list(report.networks)
    extra: list[Diagnostic] = []
    if network is not None:
        nets = [n for n in nets if n.name == network]
        if not nets:
            try:
                report.network(network)
            except NetspecError as err:
                extra = list(err.diagnostics)
    if budgets is not None:
        from .analysis.budgets import check_budgets
        from .analysis.summary import network_memory

        extra += [d for n in nets for d in check_budgets(n, budgets, network_memory(n, options))]
    diagnostics = list(report.diagnostics) + [d for n in nets for d in n.diagnostics] + extra
    explained = _explanations(nets, explain) if explain is not None else None
    errors = any(d.is_error for d in diagnostics)
    warnings = any(not d.is_error for d in diagnostics)
    failed = errors or (strict and warnings)
    if fmt == "json":
        import json

        out = to_json(report, nets, strict=strict, options=options)
        out["diagnostics"] += [d.to_json() for d in extra]
        out["ok"] = not failed  # agrees with the exit status
        if summary:
            for entry in out["networks"]:
                entry.pop("layers", None)
        if explained is not None:
            for entry in out["networks"]:
                if entry["name"] in explained:
                    entry["explain"] = explained[entry["name"]].split("\n")
        click.echo(json.dumps(out))
        if diagnostics:
            _emit(diagnostics)
    else:
        _emit(diagnostics)
        show = format_summary if summary else format_table
        tables = [show(n, options) for n in nets if n.ok]
        if explained is not None:
            tables = [text if len(explained) == 1 else f"network {name}\n\n{text}" for name, text in explained.items()]
        if tables:
            click.echo("\n\n".join(tables))
    if failed:
        sys.exit(1)


def _explanations(nets: list[Any], which: str) -> dict[str, str]:
    """``--explain``: each network's explanation of the layer (or ``all``); a name that no
    network has is a command-line error with a did-you-mean."""
    from .analysis.explain import explain_network, layer_names
    from .core.argtypes import did_you_mean

    ok = [n for n in nets if n.ok]
    found = {n.name: explain_network(n, which) for n in ok if which == "all" or which in layer_names(n)}
    if not found and ok:
        names = [name for n in ok for name in layer_names(n)]
        where = f"network {ok[0].name!r}" if len(ok) == 1 else "any network"
        raise click.BadParameter(f"no layer {which!r} in {where}{did_you_mean(which, names)} "
                                 "(or 'all' for every layer)", param_hint="'--explain'")
    return found


@main.command(name="import")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False), help="Output .net spec.")
@click.option("--weights-out", "-w", type=click.Path(dir_okay=False),
              help="Also write the model's weights as a .npz in the contract's format.")
@click.option("--network", "-n", help="Name of the network in the spec (default: the model's name).")
@click.option("--no-fold", is_flag=True, help="Write every layer flat, without blocks and repeats.")
@_guard
def import_(model: str, output: str, weights_out: str | None, network: str | None, no_fold: bool) -> None:
    """Import a Keras (.keras, .h5) or ONNX (.onnx) model as a checked spec."""
    from .importers import import_cli

    import_cli(model, output, weights_out, network, fold=not no_fold)


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
    if opset is not None and target != "onnx":
        raise click.BadParameter(f"--opset applies to the onnx target only, not {target}", param_hint="'--opset'")
    extensions, what = _TARGET_OUTPUTS[target]
    _check_output(output, extensions, what, file, weights)
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
    _check_output(output, (".npy", ".npz"), "outputs", file, *(_input_file(v) for v in inputs), weights)
    net = _load(file, network)
    from .targets.numpy_exec import run_cli
    from .targets.weights import load_weights

    run_cli(net, list(inputs), output, weights=load_weights(net, weights) if weights else None, seed=seed)


def _input_file(value: str) -> str:
    """The file of an ``--input`` value: ``FILE`` or ``NAME=FILE``."""
    import os

    name, eq, path = value.partition("=")
    return path if eq and name.isidentifier() and not os.path.exists(value) else value


def _input_files(values: Iterable[str]) -> tuple[str, ...]:
    """Each ``--input`` value's file must exist (exit 2 otherwise), as for any other path option."""
    import os

    for value in values:
        if not os.path.exists(_input_file(value)):
            raise click.BadParameter(f"File {_input_file(value)!r} does not exist.", param_hint="'--input' / '-i'")
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
    _check_output(output, (".keras",), "Keras models", file, data)
    import os

    # The training curve goes beside the model (training.curve_path): it must not replace an input either.
    _check_output(os.path.splitext(output)[0] + ".png", (".png",), "training curves", file, data)
    net = _load(file, network)
    from .targets.training import train_cli

    train_cli(net, data, output, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, distribute=distribute)


@main.command(name="fmt")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@click.option("--check", "check_only", is_flag=True,
              help="Change nothing: show a unified diff and exit 1 if a file is not formatted (for CI).")
@_guard
def fmt_(files: tuple[str, ...], check_only: bool) -> None:
    """Rewrite FILES in the canonical layout, comments kept; '-' formats standard input to standard output."""
    from .tools.fmt import run_fmt

    sys.exit(run_fmt(files, check=check_only))


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--network", "-n", "networks", multiple=True,
              help="Which network: once for both files, twice for old and new (with one FILE: required twice).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--batch-size", "-b", type=click.IntRange(min=1), default=1, show_default=True,
              help="Batch size of the memory figures.")
@click.option("--dtype", type=click.Choice(["float32", "float16", "bfloat16"]), default="float32", show_default=True)
@_guard
def diff(files: tuple[str, ...], networks: tuple[str, ...], fmt: str, batch_size: int, dtype: str) -> None:
    """Layer by layer, what changed from OLD.net to NEW.net (or between two networks of one file)."""
    if len(files) > 2 or len(networks) > 2:
        raise click.UsageError("give one or two files, and at most two --network names")
    if len(files) == 1 and len(networks) != 2:
        raise click.UsageError("with one file, name the two networks to compare: -n OLD -n NEW")
    old_file, new_file = files[0], files[-1]
    names = (list(networks) * 2)[:2] if networks else [None, None]
    from .tools.diff import diff_json, diff_networks, format_diff

    old, new = _load(old_file, names[0]), _load(new_file, names[1])
    d = diff_networks(old, new, batch_size, dtype)
    if fmt == "json":
        import json

        click.echo(json.dumps(diff_json(d)))
    else:
        click.echo(format_diff(d, old_file, new_file))


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False),
              help="Picture to write: .svg, .html or .dot (Graphviz text).")
@click.option("--network", "-n", help="Which network in FILE.")
@click.option("--depth", type=click.IntRange(min=0), default=None,
              help="Fold block calls nested deeper than N into one box each.")
@_guard
def draw(file: str, output: str, network: str | None, depth: int | None) -> None:
    """Draw FILE's network: layers, shapes on the edges, block calls as frames (no Graphviz needed)."""
    from .tools.draw import FORMATS, render

    _check_output(output, tuple(FORMATS), "pictures", file)
    net = _load(file, network)
    fmt = {".svg": "svg", ".html": "html", ".htm": "html", ".dot": "dot", ".gv": "dot"}[
        os.path.splitext(output)[1].lower()]
    text = render(net, fmt, depth)
    from .core.fileio import atomic_output

    try:
        with atomic_output(output) as tmp, open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
    except OSError as err:
        _fail([Diagnostic.error("E603", f"cannot write {output}: {err}")])


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--network", "-n", help="Which network in FILE.")
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Keep the ONNX export here (.onnx).")
@click.option("--weights", "-w", type=click.Path(exists=True, dir_okay=False), help="Weights (.npz or .keras).")
@click.option("--no-browser", is_flag=True, help="Only serve the model; print the address.")
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="Port for Netron to serve on.")
@_guard
def view(file: str, network: str | None, output: str | None, weights: str | None, no_browser: bool,
         port: int | None) -> None:
    """Open FILE's network in Netron, from its ONNX export (needs the 'view' extra)."""
    try:
        import netron
    except ImportError as err:
        click.echo(f"error: netspec view needs netron ({err}); install it with: pip install 'netspec[view]'", err=True)
        sys.exit(2)
    if output is not None:
        _check_output(output, (".onnx",), "ONNX models", file, weights)
    net = _load(file, network)
    from .tools.view import export_for_view, open_in_netron

    path = export_for_view(net, output, weights)
    address = open_in_netron(path, browse=not no_browser, port=port, netron=netron)
    click.echo(f"serving {path} at {address}; press Ctrl-C to stop")
    try:
        netron.wait()
    except KeyboardInterrupt:
        pass
    finally:
        if output is None:  # the export was only for viewing
            import shutil

            shutil.rmtree(os.path.dirname(path), ignore_errors=True)


@main.command()
def lsp() -> None:
    """Run the language server on standard input and output (for editors; needs the 'lsp' extra)."""
    try:
        from .tools.lsp.server import main as serve
    except ImportError as err:
        click.echo(f"error: netspec lsp needs pygls ({err}); install it with: pip install 'netspec[lsp]'", err=True)
        sys.exit(2)
    serve()


if __name__ == "__main__":  # pragma: no cover
    main()
