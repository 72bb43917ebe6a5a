"""The gdrun command line: parse, call the library, print. No maths here.

Heavy modules (numpy, sympy, torch) are imported inside the commands, so ``gdrun --help`` stays
fast; bad input becomes one line on stderr and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import functools
import sys
from enum import Enum
from pathlib import Path
from typing import Any, Callable, Optional

import click
import typer

from .errors import EXIT_BAD_INPUT, EXIT_INTERRUPTED, GdrunError

EXIT_CODES_HELP = (
    "Exit codes: 0 converged or max_epochs, 2 bad input, 3 diverged, 4 failed, 130 interrupted (Ctrl-C)."
)

app = typer.Typer(
    name="gdrun",
    help=f"Run gradient-descent experiments: minimize functions on numpy or torch, record every run.\n\n{EXIT_CODES_HELP}",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


class Backend(str, Enum):
    numpy = "numpy"
    torch = "torch"


class Device(str, Enum):
    cpu = "cpu"
    cuda = "cuda"
    auto = "auto"


class Dtype(str, Enum):
    float64 = "float64"
    float32 = "float32"


def error(message: str) -> None:
    """One line on stderr."""
    print(f"gdrun: error: {message}", file=sys.stderr)


def user_errors(command: Callable) -> Callable:
    """Turn a GdrunError raised by the library into its one-line message and exit code."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except GdrunError as exc:
            error(str(exc))
            raise typer.Exit(exc.exit_code) from None

    return wrapper


RunsDir = typer.Option(Path("runs"), "--runs-dir", envvar="GDRUN_RUNS_DIR", help="Root folder of the run directories.")
Quiet = typer.Option(False, "--quiet", "-q", help="Print nothing (the run directory is still written).")
Json = typer.Option(False, "--json", help="Print only the summary, as JSON.")
Sets = typer.Option([], "--set", "-s", metavar="KEY=VALUE", help="Override a config key, e.g. --set lr=0.05 (repeatable).")


def _output(ctx: typer.Context, quiet: bool, as_json: bool):
    from .runner import Output

    if quiet and as_json:
        raise GdrunError("choose one of --quiet and --json")
    argv = ctx.obj if isinstance(ctx.obj, list) else sys.argv[1:]
    return Output(mode="quiet" if quiet else "json" if as_json else "table", command=["gdrun", *argv])


def _run_config(ctx: typer.Context, raw: dict[str, Any], sets: list[str], runs_dir: Path, quiet: bool, as_json: bool) -> None:
    from .config import apply_sets, validate
    from .runner import execute

    output = _output(ctx, quiet, as_json)
    config = validate(apply_sets(raw, sets))
    _, code = execute(config, runs_dir, output)
    raise typer.Exit(code)


@app.command()
@user_errors
def minimize(
    ctx: typer.Context,
    function: str = typer.Argument(..., help='A built-in name (see "gdrun functions") or an expression such as "x**2 + y**2".'),
    lr: Optional[float] = typer.Option(None, "--lr", help="Learning rate (default 0.01)."),
    epochs: Optional[int] = typer.Option(None, "--epochs", "-n", help="Number of updates (default 100)."),
    init: Optional[str] = typer.Option(None, "--init", help="Start point: 7.5 (every variable), x=1,y=2 or 1,2. Default: the function's own."),
    init_range: Optional[str] = typer.Option(None, "--init-range", metavar="LOW,HIGH", help="Draw the start point uniformly from [LOW, HIGH)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed for --init-range (default: drawn, and recorded)."),
    backend: Optional[Backend] = typer.Option(None, "--backend", "-b", help="numpy: symbolic gradients; torch: autograd (default numpy)."),
    device: Optional[Device] = typer.Option(None, "--device", help="torch device: cpu, cuda or auto (default cpu)."),
    dtype: Optional[Dtype] = typer.Option(None, "--dtype", help="float64 (default) or float32."),
    dim: Optional[int] = typer.Option(None, "--dim", help="Dimension of a built-in that has a free one (sphere...)."),
    optimizer: Optional[str] = typer.Option(None, "--optimizer", help="Optimizer (default sgd)."),
    tol: Optional[float] = typer.Option(None, "--tol", help="Converged once the gradient norm is below this (default: off)."),
    diverge_above: Optional[float] = typer.Option(None, "--diverge-above", help="Diverged once |f| or a |coordinate| exceeds this (default 1e100)."),
    every: Optional[int] = typer.Option(None, "--every", help="Show every Nth step (default: about 20 rows). metrics.csv keeps all."),
    name: Optional[str] = typer.Option(None, "--name", help="Name of the run (default: the function's)."),
    sets: list[str] = Sets,
    runs_dir: Path = RunsDir,
    quiet: bool = Quiet,
    as_json: bool = Json,
) -> None:
    """Minimize FUNCTION by gradient descent and record the run under runs/.

    Example:

        gdrun minimize x2 --lr 0.1 --epochs 10

        gdrun minimize "(1-x)**2 + 100*(y-x**2)**2" --init x=-1,y=2 --lr 0.001 --epochs 5000 --backend torch

    Exit codes: 0 converged or max_epochs, 2 bad input, 3 diverged, 4 failed, 130 interrupted.
    """
    raw: dict[str, Any] = {"function": function}
    flags = {
        "lr": lr, "epochs": epochs, "init": init, "init_range": init_range, "seed": seed,
        "backend": backend.value if backend else None, "device": device.value if device else None,
        "dtype": dtype.value if dtype else None, "dim": dim, "optimizer": optimizer, "every": every, "name": name,
    }  # fmt: skip
    raw.update({k: v for k, v in flags.items() if v is not None})
    stop = {k: v for k, v in {"grad_norm_below": tol, "diverge_above": diverge_above}.items() if v is not None}
    if stop:
        raw["stop"] = stop
    _run_config(ctx, raw, sets, runs_dir, quiet, as_json)


@app.command()
@user_errors
def run(
    ctx: typer.Context,
    config: Path = typer.Argument(..., help="A YAML config, e.g. configs/e1_x2_sgd_lr0.1.yaml, or a run's config.yaml."),
    sets: list[str] = Sets,
    runs_dir: Path = RunsDir,
    quiet: bool = Quiet,
    as_json: bool = Json,
) -> None:
    """Run the experiment described by a YAML CONFIG (keys named as the flags of "minimize").

    Example:

        gdrun run configs/e1_x2_sgd_lr0.1.yaml --set lr=0.05

    Exit codes: 0 converged or max_epochs, 2 bad input, 3 diverged, 4 failed, 130 interrupted.
    """
    from .config import load_yaml

    raw = load_yaml(config)
    raw.setdefault("name", config.stem if config.name != "config.yaml" else None)
    _run_config(ctx, raw, sets, runs_dir, quiet, as_json)


@app.command()
@user_errors
def functions(
    name: Optional[str] = typer.Argument(None, help="Show one function in detail."),
    dim: Optional[int] = typer.Option(None, "--dim", help="Dimension to show the minima for."),
) -> None:
    """List the built-in functions with their formula and known minima.

    Example:

        gdrun functions

        gdrun functions sphere --dim 3
    """
    from .catalog import print_function, print_functions

    if name is None:
        print_functions()
    else:
        print_function(name, dim)


@app.command()
@user_errors
def show(run_dir: Path = typer.Argument(..., help="A run directory, e.g. runs/20260101-120000-x2-1a2b3c.")) -> None:
    """Show the summary of a finished (or interrupted) run.

    Example:

        gdrun show runs/<run-dir>
    """
    from rich.console import Console

    from .display import summary_panel
    from .runs import read_run

    record = read_run(run_dir)
    summary_panel(record.summary, Console())


def main(argv: list[str] | None = None) -> None:
    """Console entry point: click's own usage errors become one line too."""
    command = typer.main.get_command(app)
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        code = command.main(args=argv, prog_name="gdrun", standalone_mode=False, obj=argv)
    except click.exceptions.UsageError as exc:
        where = exc.ctx.command_path if exc.ctx is not None else "gdrun"
        error(f"{exc.format_message()} (see '{where} --help')".replace("\n", " "))
        sys.exit(EXIT_BAD_INPUT)
    except click.exceptions.Abort:
        sys.exit(EXIT_INTERRUPTED)
    except click.ClickException as exc:
        error(exc.format_message())
        sys.exit(exc.exit_code)
    sys.exit(code if isinstance(code, int) else 0)
