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
from .inputs import click_number

EXIT_CODES_HELP = (
    "Exit codes: 0 converged or max_epochs, 1 an expectation failed (expect:, gdrun check), 2 bad input, 3 diverged, "
    "4 failed, 130 interrupted (Ctrl-C or SIGTERM)."
)

app = typer.Typer(
    name="gdrun",
    help=f"Run gradient-descent experiments: minimize functions on numpy or torch, record every run.\n\n{EXIT_CODES_HELP}",
    no_args_is_help=True,
    suggest_commands=False,  # main() names the closest command, once
    add_completion=True,  # --install-completion / --show-completion for bash, zsh, fish, PowerShell
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        from . import __version__

        print(f"gdrun {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(version: bool = typer.Option(False, "--version", "-V", callback=_version, is_eager=True,
                                       help="Print gdrun's version and exit.")) -> None:  # fmt: skip
    """Run gradient-descent experiments."""


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


MAX_ERROR_LENGTH = 400


def one_line(message: str, limit: int = MAX_ERROR_LENGTH) -> str:
    """``message`` as one line of at most ``limit`` characters: control characters (a newline in a
    YAML key) are escaped, and a long message is cut, whatever user text it quotes."""
    text = "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in message)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def error(message: str) -> None:
    """One line on stderr."""
    print(f"gdrun: error: {one_line(message)}", file=sys.stderr)


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


# numbers on the command line are read by gdrun's one number parser (click's own take '٣' and nan)
FloatFlag, IntFlag = click_number(), click_number(integer=True)
RunsDir = typer.Option(Path("runs"), "--runs-dir", envvar="GDRUN_RUNS_DIR", help="Root folder of the run directories.")
Quiet = typer.Option(False, "--quiet", "-q", help="Print nothing (the run directory is still written).")
Json = typer.Option(False, "--json", help="Print only the summary, as JSON.")
Sets = typer.Option([], "--set", "-s", metavar="KEY=VALUE", help="Override a config key, e.g. --set lr=0.05 (repeatable).")
# the flags minimize and fit share; each is the config key of the same name
Lr = typer.Option(None, "--lr", click_type=FloatFlag, help="Learning rate (default 0.01).")
Epochs = typer.Option(None, "--epochs", "-n", click_type=IntFlag, help="Number of epochs; for minimize, of updates (default 100).")
Init = typer.Option(None, "--init", help="Start point: 7.5 (every variable), x=1,y=2 or 1,2.")
InitRange = typer.Option(None, "--init-range", metavar="LOW,HIGH", help="Draw the start point uniformly from [LOW, HIGH).")
Seed = typer.Option(None, "--seed", click_type=IntFlag, help="Seed for --init-range and shuffling (default: drawn, and recorded).")
BackendFlag = typer.Option(None, "--backend", "-b", help="numpy: symbolic gradients; torch: autograd (default numpy).")
DeviceFlag = typer.Option(None, "--device", help="torch device: cpu, cuda or auto (default cpu).")
DtypeFlag = typer.Option(None, "--dtype", help="float64 (default) or float32.")
OptimizerFlag = typer.Option(None, "--optimizer", help="Optimizer (default sgd).")
Tol = typer.Option(None, "--tol", click_type=FloatFlag, help="Converged once the gradient norm is below this (default: off).")
DivergeAbove = typer.Option(None, "--diverge-above", click_type=FloatFlag, help="Diverged once |f| or a |coordinate| exceeds this (default 1e100).")
Every = typer.Option(None, "--every", click_type=IntFlag, help="Show every Nth row (default: about 20 rows). metrics.csv keeps all.")
Name = typer.Option(None, "--name", help="Name of the run (default: the function's, or 'fit').")
Opts = typer.Option([], "--opt", "-o", metavar="KEY=VALUE", help="An optimizer option, e.g. --opt momentum=0.9 (repeatable).")
ScheduleFlag = typer.Option(None, "--schedule", metavar="NAME[:KEY=VALUE...]",
                            help="Learning-rate schedule, stepped per epoch, e.g. step:step_size=10:gamma=0.5.")  # fmt: skip
ClipNorm = typer.Option(None, "--clip-norm", click_type=FloatFlag, help="Clip each gradient to this 2-norm (torch's clip_grad_norm_).")
RUN_HELP = ("A run directory, SWEEP_DIR/ID for one config of a sweep, last, last~N (the one before...), "
            "a run name (its newest run) or a unique prefix of a directory name or id (see gdrun runs).")
def complete_run(ctx: Optional[typer.Context], incomplete: str) -> list[str]:
    """Shell completion of a run's name: last, last~N, the names and ids of the newest runs."""
    import os

    from .history import entries

    runs_dir = (ctx.params.get("runs_dir") if ctx is not None else None) or os.environ.get("GDRUN_RUNS_DIR", "runs")
    found = entries(runs_dir)[:200]
    offered = ["last", *(f"last~{i}" for i in range(1, min(len(found), 10))), *dict.fromkeys(e.name for e in found),
               *(e.id for e in found if e.id)]  # fmt: skip
    return [name for name in offered if name.startswith(incomplete)]


Plot = typer.Option(False, "--plot", help="At the end, draw the run into plot.png in its directory (see gdrun plot).")
Let = typer.Option([], "--let", metavar="NAME=EXPR",
                   help="An intermediate name the expression uses, e.g. --let z=x+y (repeatable, in order; later ones may use earlier ones).")  # fmt: skip
ClipValue = typer.Option(None, "--clip-value", click_type=FloatFlag, help="Clip each gradient component to [-v, v] (clip_grad_value_).")


def _optimizer_flags(opts: list[str], schedule: Optional[str], clip_norm: Optional[float],
                     clip_value: Optional[float]) -> dict[str, Any]:  # fmt: skip
    """Config keys from --opt, --schedule, --clip-norm and --clip-value."""
    from .config import apply_sets, parse_spec

    for option in opts:
        if "=" not in option or not option.partition("=")[0].strip():
            raise GdrunError(f"--opt needs KEY=VALUE, got {option!r}")
    raw = apply_sets({}, [f"optimizer_options.{o}" for o in opts]) if opts else {}
    if schedule is not None:
        raw["schedule"] = parse_spec("--schedule", schedule)
    return {**raw, **{k: v for k, v in {"clip_norm": clip_norm, "clip_value": clip_value}.items() if v is not None}}


def _flags(stop: dict[str, Any], **flags: Any) -> dict[str, Any]:
    """The config keys the given flags set (flags left out set nothing)."""
    raw = {k: (v.value if isinstance(v, Enum) else v) for k, v in flags.items() if v is not None}
    stop = {k: v for k, v in stop.items() if v is not None}
    if stop:
        raw["stop"] = stop
    return raw


def _output(ctx: typer.Context, quiet: bool, as_json: bool, plot: bool = False):
    from .runner import Output

    if quiet and as_json:
        raise GdrunError("choose one of --quiet and --json")
    argv = ctx.obj if isinstance(ctx.obj, list) else sys.argv[1:]
    mode = "quiet" if quiet else "json" if as_json else "table"
    return Output(mode=mode, command=["gdrun", *argv], plot=plot,
                  warn=lambda message: print(f"gdrun: warning: {message}", file=sys.stderr))  # fmt: skip


def _run_config(ctx: typer.Context, raw: dict[str, Any], sets: list[str], runs_dir: Path, quiet: bool, as_json: bool,
                base: Path | None = None, plot: bool = False) -> None:  # fmt: skip
    """The end of minimize, fit and run: the API's launch (a config with expect: exits 0 or 1 by its rules)."""
    from .api import launch

    _, _, code = launch(raw, runs_dir, _output(ctx, quiet, as_json, plot), base, sets)
    raise typer.Exit(code)


@app.command()
@user_errors
def minimize(
    ctx: typer.Context,
    function: str = typer.Argument(..., help='A built-in name (see "gdrun functions") or an expression such as "x**2 + y**2".'),
    lr: Optional[float] = Lr,
    epochs: Optional[int] = Epochs,
    init: Optional[str] = Init,
    init_range: Optional[str] = InitRange,
    seed: Optional[int] = Seed,
    backend: Optional[Backend] = BackendFlag,
    device: Optional[Device] = DeviceFlag,
    dtype: Optional[Dtype] = DtypeFlag,
    dim: Optional[int] = typer.Option(None, "--dim", click_type=IntFlag, help="Dimension of a built-in that has a free one (sphere...)."),
    let: list[str] = Let,
    optimizer: Optional[str] = typer.Option(
        None, "--optimizer", metavar="NAME[,NAME:KEY=VALUE...]",
        help="Optimizer (default sgd), with options if you like (adam:eps=0.001); several, comma-separated, "
             "are compared side by side, e.g. sgd,sgd:momentum=0.9,adam:lr=0.01.",
    ),  # fmt: skip
    opts: list[str] = Opts,
    schedule: Optional[str] = ScheduleFlag,
    clip_norm: Optional[float] = ClipNorm,
    clip_value: Optional[float] = ClipValue,
    tol: Optional[float] = Tol,
    diverge_above: Optional[float] = DivergeAbove,
    reach: float = typer.Option(1e-6, "--reach", click_type=FloatFlag, help="With several optimizers: rank by steps to come this close to the best known f."),
    every: Optional[int] = Every,
    name: Optional[str] = Name,
    sets: list[str] = Sets,
    runs_dir: Path = RunsDir,
    quiet: bool = Quiet,
    as_json: bool = Json,
    plot: bool = Plot,
) -> None:
    """Minimize FUNCTION by gradient descent and record the run under runs/.

    Example:

        gdrun minimize x2 --lr 0.1 --epochs 10

        gdrun minimize "(1-x)**2 + 100*(y-x**2)**2" --init x=-1,y=2 --lr 0.001 --epochs 5000 --backend torch

        gdrun minimize rosenbrock --optimizer sgd,sgd:momentum=0.9,adam:lr=0.02 --lr 0.001 --epochs 3000

        gdrun minimize "f + y**3" --let z=x+y --let "f=z**2" --init x=2,y=3 --lr 0.01 --epochs 5

    Exit codes: 0 converged or max_epochs, 2 bad input, 3 diverged, 4 failed, 130 interrupted.
    """
    from .compare import compare, optimizer_variant, variants

    several = optimizer is not None and "," in optimizer
    raw = {"function": function, **_optimizer_flags(opts, schedule, clip_norm, clip_value), **_flags(
        {"grad_norm_below": tol, "diverge_above": diverge_above}, lr=lr, epochs=epochs, init=init,
        init_range=init_range, seed=seed, backend=backend, device=device, dtype=dtype, dim=dim,
        optimizer=None if several else optimizer, every=every, name=name,
    )}  # fmt: skip
    if let:
        raw["let"] = list(let)
    if not several:
        if optimizer is not None and ":" in optimizer:  # one variant, as in a comparison: adam:eps=1e-8
            raw["optimizer"], variant_lr, options = optimizer_variant(optimizer)
            raw["optimizer_options"] = {**raw.get("optimizer_options", {}), **options}
            if variant_lr is not None:
                raw["lr"] = variant_lr
        _run_config(ctx, raw, sets, runs_dir, quiet, as_json, plot=plot)
    from .config import apply_sets, validate

    if not reach > 0:
        raise GdrunError(f"--reach must be positive, got {reach}")
    output = _output(ctx, quiet, as_json, plot)
    _, code = compare(variants(validate(apply_sets(raw, sets)), optimizer), runs_dir, output, reach)
    raise typer.Exit(code)


@app.command(name="compare")
@user_errors
def compare_command(
    ctx: typer.Context,
    function: Optional[str] = typer.Argument(None, help='A built-in name, an expression, or a YAML config with a '
                                             'compare: part (e.g. configs/compare_rosenbrock_tuned.yaml).'),  # fmt: skip
    optimizer: Optional[str] = typer.Option(None, "--optimizer", metavar="NAME[:KEY=VALUE|KEY=LOW..HIGH],...",
                                            help="The variants, comma-separated: sgd,sgd:momentum=0.9,adam; an option "
                                                 "given as LOW..HIGH is searched with the lr (sgd:momentum=0.5..0.99); "
                                                 "one given as lr=V fixes the lr."),  # fmt: skip
    epochs: Optional[int] = typer.Option(None, "--epochs", "-n", click_type=IntFlag, help="Steps of every run (default 2000)."),
    budget: Optional[int] = typer.Option(None, "--budget", click_type=IntFlag,
                                         help="Settings tried per variant (default 50): the same for every variant."),  # fmt: skip
    search: Optional[str] = typer.Option(None, "--search", help="grid (log-spaced lr, default) or random (seeded)."),
    lr_range: Optional[str] = typer.Option(None, "--lr-range", metavar="LOW..HIGH", help="Where the lr is searched (default 1e-5..1)."),
    starts: Optional[int] = typer.Option(None, "--starts", click_type=IntFlag, help="Tuning start points (default 32)."),
    heldout: Optional[int] = typer.Option(None, "--heldout", click_type=IntFlag,
                                          help="Held-out start points the tuned settings are ranked on (default 32)."),  # fmt: skip
    seed: Optional[int] = typer.Option(None, "--seed", click_type=IntFlag, help="Seed of the starts and of random search (default 0)."),
    target: Optional[float] = typer.Option(None, "--target", click_type=FloatFlag,
                                           help="Reached when f - f* is below this (e.g. 1e-6)."),  # fmt: skip
    target_fraction: Optional[float] = typer.Option(None, "--target-fraction", click_type=FloatFlag,
                                                    help="...or when f - f* is below this fraction of the start's f - f*."),  # fmt: skip
    f_star: Optional[float] = typer.Option(None, "--f-star", click_type=FloatFlag,
                                           help="The best value (default: a built-in's known minimum)."),  # fmt: skip
    start_range: Optional[str] = typer.Option(None, "--start-range", metavar="LOW,HIGH",
                                              help="Where starts are drawn (default: a built-in's domain)."),  # fmt: skip
    dim: Optional[int] = typer.Option(None, "--dim", click_type=IntFlag, help="Dimension of a built-in that has a free one."),
    let: list[str] = Let,
    backend: Optional[Backend] = BackendFlag,
    dtype: Optional[Dtype] = DtypeFlag,
    tune: bool = typer.Option(True, "--tune/--no-tune", help="--no-tune: each variant once, at --lr from --init, side by "
                              "side (what minimize --optimizer a,b does)."),  # fmt: skip
    lr: Optional[float] = typer.Option(None, "--lr", click_type=FloatFlag, help="With --no-tune: the lr of every variant."),
    init: Optional[str] = typer.Option(None, "--init", help="With --no-tune: the start point."),
    resume: Optional[str] = typer.Option(None, "--resume", metavar="DIR|RUN", help="Finish a comparison that was interrupted."),
    name: Optional[str] = Name,
    runs_dir: Path = RunsDir,
    quiet: bool = Quiet,
    as_json: bool = typer.Option(False, "--json", help="Print the comparison (every variant's figures) as JSON."),
    plot: bool = typer.Option(False, "--plot", help="At the end, draw the performance profiles, lr sensitivity and "
                              "tuned paths into plot.png (see gdrun plot)."),  # fmt: skip
) -> None:
    """Which optimizer is best here? Tune every variant with the same budget, rank them on held-out starts.

    Each variant's learning rate (and any option given as LOW..HIGH) is searched with the same
    number of settings, from the same start points, for the same number of steps; a setting's score
    is its median over the starts of the steps to reach the target (f - f* below --target). The
    best setting of each variant then runs from other, held-out starts, and those figures are
    ranked: the share of starts solved, the median steps, the final value, and the lrs within 2x
    of the best. Every variant's settings x starts run as one batch.

    Example:

        gdrun compare rosenbrock --optimizer sgd,sgd:momentum=0.9,adam --target 1e-6

        gdrun compare rastrigin --optimizer sgd,adam,rmsprop --target-fraction 1e-3 --plot

        gdrun compare configs/compare_rosenbrock_tuned.yaml --json

    Exit codes: 0 done, 1 an expect: rule failed, 2 bad input, 130 interrupted (resume it with --resume).
    """
    from . import compare as comparisons

    output = _output(ctx, quiet, as_json, plot)
    flags = {"variants": optimizer, "epochs": epochs, "budget": budget, "search": search, "lr_range": lr_range,
             "starts": starts, "heldout": heldout, "seed": seed, "target": target, "target_fraction": target_fraction,
             "f_star": f_star, "start_range": start_range, "dim": dim, "let": list(let) or None,
             "backend": backend.value if backend else None, "dtype": dtype.value if dtype else None, "name": name}  # fmt: skip
    flags = {k: v for k, v in flags.items() if v is not None}
    if resume is not None:
        if function is not None or flags:
            raise GdrunError("--resume takes the comparison as it was declared: give no FUNCTION or settings with it")
        _, code = comparisons.tuned_comparison({}, None, runs_dir, output, resume)
        raise typer.Exit(code)
    if function is None:
        raise GdrunError("give a FUNCTION (or a YAML config with a compare: part), or --resume DIR")
    if not tune:
        if optimizer is None:
            raise GdrunError("give the optimizers to compare, e.g. --optimizer sgd,adam")
        from .config import validate

        raw = {"function": function, **{k: v for k, v in {"lr": lr, "epochs": epochs, "init": init, "dim": dim,
               "let": list(let) or None, "backend": flags.get("backend"), "dtype": flags.get("dtype"),
               "name": name}.items() if v is not None}}  # fmt: skip
        _, code = comparisons.compare(comparisons.variants(validate(raw), optimizer), runs_dir, output, target or 1e-6)
        raise typer.Exit(code)
    if lr is not None or init is not None:
        raise GdrunError("--lr and --init go with --no-tune: a tuned comparison searches the lr and draws its starts")
    expect = None
    if function.endswith((".yaml", ".yml")):
        raw, expect = comparisons.load_compare_config(Path(function))
        raw.update(flags)
    else:
        raw = {"function": function, **flags}
    _, code = comparisons.tuned_comparison(raw, expect, runs_dir, output)
    raise typer.Exit(code)


@app.command()
@user_errors
def fit(
    ctx: typer.Context,
    model: str = typer.Argument(..., help='The model, e.g. "a*x**2 + b*x + c": data columns are inputs, other names parameters.'),
    data: Optional[Path] = typer.Option(None, "--data", "-d", help="A CSV file with a header row."),
    x: Optional[str] = typer.Option(None, "--x", help="Inline input column: 1,2,3."),
    y: Optional[str] = typer.Option(None, "--y", help="Inline target column: 2,4,6."),
    cols: list[str] = typer.Option([], "--col", metavar="NAME=1,2,3", help="Another inline column (repeatable)."),
    columns: Optional[str] = typer.Option(None, "--columns", metavar="x=HEAD,y=HEAD", help="Which CSV columns to use, by name."),
    target: Optional[str] = typer.Option(None, "--target", help="The column to fit (default y)."),
    loss: Optional[str] = typer.Option(None, "--loss", help="mse (default), half_mse, mae or huber."),
    batch_size: Optional[str] = typer.Option(None, "--batch-size", help="full (default: plain GD), 1 (SGD) or N (mini-batches)."),
    shuffle: Optional[bool] = typer.Option(None, "--shuffle/--no-shuffle", help="Reshuffle the data every epoch (seeded)."),
    drop_last: Optional[bool] = typer.Option(None, "--drop-last", help="Drop the last, short mini-batch."),
    freeze: Optional[str] = typer.Option(None, "--freeze", metavar="b,d", help="Parameters kept at their init."),
    predict: Optional[str] = typer.Option(None, "--predict", metavar="4,5", help="Print the model's output there, before and after."),
    lr: Optional[float] = Lr,
    epochs: Optional[int] = Epochs,
    init: Optional[str] = Init,
    init_range: Optional[str] = InitRange,
    seed: Optional[int] = Seed,
    backend: Optional[Backend] = BackendFlag,
    device: Optional[Device] = DeviceFlag,
    dtype: Optional[Dtype] = DtypeFlag,
    optimizer: Optional[str] = OptimizerFlag,
    opts: list[str] = Opts,
    schedule: Optional[str] = ScheduleFlag,
    clip_norm: Optional[float] = ClipNorm,
    clip_value: Optional[float] = ClipValue,
    loss_below: Optional[float] = typer.Option(None, "--loss-below", click_type=FloatFlag, help="Converged once the full-data loss is below this."),
    tol: Optional[float] = Tol,
    diverge_above: Optional[float] = DivergeAbove,
    every: Optional[int] = Every,
    name: Optional[str] = Name,
    sets: list[str] = Sets,
    runs_dir: Path = RunsDir,
    quiet: bool = Quiet,
    as_json: bool = Json,
    plot: bool = Plot,
) -> None:
    """Fit MODEL to data by gradient descent (full batch, SGD or mini-batches) and record the run.

    Example:

        gdrun fit "w*x" --x 1,2,3 --y 2,4,6 --init w=1 --lr 0.01 --epochs 100 --predict 4

        gdrun fit "a*x**2 + b*x + c" --data points.csv --batch-size 16 --shuffle --seed 0 --lr 0.1

    Exit codes: 0 converged or max_epochs, 2 bad input, 3 diverged, 4 failed, 130 interrupted.
    """
    inline = {k: v for k, v in {"x": x, "y": y}.items() if v is not None}
    for item in cols:
        key, sep, values = item.partition("=")
        if not sep or not key.strip():
            raise GdrunError(f"--col needs NAME=1,2,3, got {item!r}")
        inline[key.strip()] = values
    spec: dict[str, Any] = {}
    if data is not None:
        spec["csv"] = str(data)
        if columns is not None:
            from .config import parse_pairs

            spec["columns"] = parse_pairs("--columns", columns)
    elif columns is not None:
        raise GdrunError("--columns chooses CSV columns; give --data too")
    for key, values in inline.items():
        spec[key] = [v.strip() for v in values.split(",") if v.strip()]
    fit_spec = {"model": model, "data": spec or None, **{k: v for k, v in {
        "target": target, "loss": loss, "batch_size": batch_size, "shuffle": shuffle, "drop_last": drop_last,
        "freeze": freeze, "predict": predict}.items() if v is not None}}  # fmt: skip
    if not spec:
        raise GdrunError("fit needs data: --data FILE.csv, or inline columns such as --x 1,2,3 --y 2,4,6")
    raw = {"fit": fit_spec, **_optimizer_flags(opts, schedule, clip_norm, clip_value), **_flags(
        {"grad_norm_below": tol, "diverge_above": diverge_above, "loss_below": loss_below}, lr=lr, epochs=epochs,
        init=init, init_range=init_range, seed=seed, backend=backend, device=device, dtype=dtype, optimizer=optimizer,
        every=every, name=name,
    )}  # fmt: skip
    _run_config(ctx, raw, sets, runs_dir, quiet, as_json, plot=plot)


@app.command()
@user_errors
def run(
    ctx: typer.Context,
    config: Path = typer.Argument(..., help="A YAML config, e.g. configs/e1_x2_sgd_lr0.1.yaml, or a run's config.yaml."),
    sets: list[str] = Sets,
    runs_dir: Path = RunsDir,
    quiet: bool = Quiet,
    as_json: bool = Json,
    plot: bool = Plot,
) -> None:
    """Run the experiment described by a YAML CONFIG (keys named as the flags of "minimize").

    Example:

        gdrun run configs/e1_x2_sgd_lr0.1.yaml --set lr=0.05

    Exit codes: 0 converged or max_epochs, 2 bad input, 3 diverged, 4 failed, 130 interrupted.
    A config with an expect: part exits 0 when every expectation holds, 1 when one fails
    (--set expect=null runs it without them).
    """
    from .check import load_config

    raw = load_config(config)
    raw.setdefault("name", config.stem if config.name != "config.yaml" else None)
    _run_config(ctx, raw, sets, runs_dir, quiet, as_json, base=config.parent, plot=plot)


@app.command()
@user_errors
def check(
    paths: Optional[list[Path]] = typer.Argument(None, help="Config files or folders (searched recursively for *.yaml, *.yml; default configs/)."),
    select: list[str] = typer.Option([], "-k", metavar="PATTERN", help="Only configs whose path contains PATTERN, any case (repeatable: any of them)."),
    junit: Optional[Path] = typer.Option(None, "--junit", metavar="FILE", help="Also write the results as JUnit XML to FILE."),
    as_json: bool = typer.Option(False, "--json", help="Print the results as JSON instead of a table."),
    runs_dir: Path = RunsDir,
) -> None:
    """Run every config that has an expect: part and check what each run reached.

    Example:

        gdrun check configs/ --junit report.xml

        gdrun check configs/ -k e1_ --json

    Exit codes: 0 every expectation held, 1 one failed, 2 bad input (a config that cannot run is an
    error of its own; the others still run), 4 a run could not finish (disk full), 130 interrupted
    (the report still comes: what ran, and the rest marked not run).
    """
    from .check import check_command

    raise typer.Exit(check_command(paths or [Path("configs")], runs_dir, select, junit, as_json))


@app.command()
@user_errors
def functions(
    name: Optional[str] = typer.Argument(None, help="Show one function in detail."),
    dim: Optional[int] = typer.Option(None, "--dim", click_type=IntFlag, help="Dimension to show the minima for."),
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
def grad(
    function: str = typer.Argument(..., help='A built-in name or an expression, e.g. "f + y**3" or "detach(x + y)**2 + y**3".'),
    at: Optional[str] = typer.Option(None, "--at", help="The point: x=2,y=3, 2,3 or one number for every variable (default: the start point)."),
    let: list[str] = Let,
    dim: Optional[int] = typer.Option(None, "--dim", click_type=IntFlag, help="Dimension of a built-in that has a free one (sphere...)."),
    hessian: bool = typer.Option(False, "--hessian", help="Add the Hessian from both sources, with its eigenvalues."),
    graph: bool = typer.Option(False, "--graph", help="Draw the computation as a tree: each node's value and the gradient that reaches it."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object (null: no gradient path; see no_path)."),
) -> None:
    """Print the value and every partial derivative of FUNCTION at a point, from the symbolic
    derivative (numpy) and from torch autograd side by side, and whether they agree.

    A variable that reaches the output only through detach() has no gradient at all: "None (no path)",
    as torch reports it, unlike a derivative that is 0.

    Example:

        gdrun grad "f + y**3" --let z=x+y --let "f=z**2" --at x=2,y=3 --graph

        gdrun grad "detach(x + y)**2 + y**3" --at 2,3 --json

        gdrun grad rosenbrock --at 1,1 --hessian
    """
    from .config import parse_let
    from .gradient import computation_tree, gradient_report, print_report

    if graph and as_json:
        raise GdrunError("choose one of --graph and --json")
    report = gradient_report(function, at, parse_let(list(let)), dim, hessian)
    if as_json:
        from .runs import json_text

        sys.stdout.write(json_text(report.to_json()))
        return
    from .display import report_console

    console = report_console()
    print_report(report, console)
    if graph:
        console.print(computation_tree(report))


@app.command()
@user_errors
def show(run: str = typer.Argument(..., metavar="RUN", help=RUN_HELP, autocompletion=complete_run),
         runs_dir: Path = RunsDir) -> None:
    """Show the summary of a finished (or interrupted) run, or of one config of a sweep.

    Example:

        gdrun show last

        gdrun show last~1

        gdrun show runs/<sweep-dir>/17
    """
    from rich.console import Console

    from .display import summary_panel, sweep_report
    from .history import open_ref

    record = open_ref(run, runs_dir)
    run_dir = record.path
    if record.summary.get("kind") == "compare":
        from .compare import comparison_table
        from .display import report_console

        console = report_console()
        console.print(comparison_table(record.summary))
        console.print(f"status: {record.summary['status']}; comparison dir: {run_dir}", highlight=False, soft_wrap=True)
        return
    if record.kind == "sweep":
        from .sweeps import iter_results

        sweep_report(record.summary, iter_results(record.path), "table")
        if record.summary.get("reason"):
            print(f"why: {record.summary['reason']}")
        print(f"one config: gdrun show {run_dir}/ID (ID 0 to {record.summary['configs'] - 1})")
        return
    summary_panel(record.summary, Console(), cut_off=record.cut_off)


@app.command(name="runs")
@user_errors
def runs_command(
    words: Optional[list[str]] = typer.Argument(None, metavar="[TEXT] | compare RUN RUN...",
                                                help="Only runs whose name, function, optimizer, status or directory "
                                                     "contains TEXT; or 'compare' and two runs or more."),  # fmt: skip
    status: list[str] = typer.Option([], "--status", metavar="STATUS",
                                     help="Only this status (repeatable, or comma-separated): converged, max_epochs, "
                                          "diverged, failed, interrupted, running, cut_off (killed); sweeps: completed, "
                                          "stopped."),  # fmt: skip
    name: Optional[str] = typer.Option(None, "--name", help="Only runs whose name contains this, or matches it with * and ?."),
    since: Optional[str] = typer.Option(None, "--since", metavar="WHEN", help="Only runs made since: 30m, 2h, 3d, 1w, today, "
                                        "yesterday, or a date such as 2026-12-01."),  # fmt: skip
    kind: Optional[str] = typer.Option(None, "--kind", help="Only minimize, fit, sweep or compare."),
    limit: Optional[int] = typer.Option(None, "--limit", "-n", click_type=IntFlag,
                                        help="At most N rows (default 50 in the table, all with --json or --csv; 0: all)."),  # fmt: skip
    as_json: bool = typer.Option(False, "--json", help="Print the rows (compare: the comparison) as JSON."),
    as_csv: bool = typer.Option(False, "--csv", help="Print the rows as CSV."),
    everything: bool = typer.Option(False, "--all", "-a", help="compare: every config key, not only those that differ."),
    runs_dir: Path = RunsDir,
) -> None:
    """List the runs and sweeps under runs/, newest first; or compare runs side by side.

    A listing reads each directory's summary (never its metrics), so it stays fast with thousands
    of runs. A run is named, wherever gdrun takes one, by its directory, last, last~N, its name
    (the newest run of that name) or a unique prefix of its directory name or id.

    Example:

        gdrun runs

        gdrun runs rosenbrock --status diverged --since 2h

        gdrun runs --json > runs.json

        gdrun runs compare last last~1

        gdrun runs compare last/3 last/7 --all     (two configs of the newest run, a sweep)
    """
    from . import history

    words = list(words or [])
    if as_json and as_csv:
        raise GdrunError("choose one of --json and --csv")
    if words[:1] == ["compare"]:
        if as_csv:
            raise GdrunError("runs compare prints a table or --json, not --csv")
        comparison = history.compare(words[1:], runs_dir, everything)
        if as_json:
            from .runs import json_text

            sys.stdout.write(json_text(comparison.to_json()))
            return
        from .display import comparison_table, report_console

        comparison_table(comparison, report_console())
        return
    if everything:
        raise GdrunError("--all goes with 'gdrun runs compare'")
    if len(words) > 1:
        raise GdrunError(f"give one TEXT to search for (quote it if it has spaces), got {len(words)} words")
    statuses = tuple(s.strip() for item in status for s in item.split(",") if s.strip())
    for s in statuses:
        from .errors import known

        known("status", s, history.STATUSES)
    if kind is not None:
        from .errors import known

        known("kind", kind, history.KINDS)
    if limit is not None and limit < 0:
        raise GdrunError(f"--limit must be 0 (all) or more, got {limit}")
    filters = history.Filters(statuses, name, history.parse_since(since) if since else None,
                              words[0] if words else None, kind)  # fmt: skip
    table = not (as_json or as_csv)
    cap = (50 if table else None) if limit is None else (limit or None)
    rows = list(history.listing(runs_dir, filters, None if cap is None else cap + 1))
    more = len(rows) > cap if cap is not None else False
    rows = rows[:cap] if cap is not None else rows
    if as_json:
        from .runs import json_text

        sys.stdout.write(json_text(rows))
        return
    if as_csv:
        import csv

        writer = csv.DictWriter(sys.stdout, fieldnames=history.COLUMNS, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return
    if not rows:
        filtered = filters != history.Filters()
        print(f"gdrun: no runs in {runs_dir} match these filters" if filtered and history.entries(runs_dir)
              else f"gdrun: {history.no_runs_message(runs_dir)}", file=sys.stderr)  # fmt: skip
        return
    from .display import report_console, runs_table

    runs_table(rows, report_console(), more=more)


@app.command()
def schema() -> None:
    """Print the JSON Schema of a gdrun config file (for editors: see the README's Configs section).

    It is generated from the definitions the validator checks configs with.

    Example:

        gdrun schema > gdrun.schema.json
    """
    import json

    from .schema import config_schema

    print(json.dumps(config_schema(), indent=2))


export_app = typer.Typer(help="Write runs in another tool's format.", no_args_is_help=True)
app.add_typer(export_app, name="export")


@export_app.command("tensorboard")
@user_errors
def export_tensorboard(
    runs: list[str] = typer.Argument(..., metavar="RUN...", help="Runs, sweeps or SWEEP_DIR/ID (a directory, last, "
                                     "last~N, a name or a unique prefix).", autocompletion=complete_run),  # fmt: skip
    logdir: Path = typer.Option(..., "--logdir", help="TensorBoard's log folder; each run gets a folder in it."),
    runs_dir: Path = RunsDir,
) -> None:
    """Write runs as TensorBoard event files (needs the tensorboard extra: pip install 'gdrun[tensorboard]').

    Each recorded step becomes scalars (value or loss, |grad|, lr, every parameter); the config goes
    in as hyperparameters, so TensorBoard's HPARAMS tab compares runs.

    Example:

        gdrun export tensorboard last last~1 --logdir tb && tensorboard --logdir tb
    """
    from .export import export_tensorboard as write
    from .history import open_ref

    written = write([open_ref(r, runs_dir) for r in runs], logdir)
    for folder in written:
        print(f"tensorboard: {folder}")


@app.command()
@user_errors
def explain(
    run: str = typer.Argument(..., metavar="RUN", help=RUN_HELP, autocompletion=complete_run),
    as_json: bool = typer.Option(False, "--json", help="Print the diagnostics as JSON."),
    runs_dir: Path = RunsDir,
) -> None:
    """Say why a finished run converged, crawled, oscillated or diverged, with the numbers behind it.

    The Hessian's eigenvalues at the start and the end, the largest stable lr for the optimizer
    (where theory gives one), lr times the largest eigenvalue, the observed rate per step, and the
    verdict; computed from the run's own config and recorded rows.

    Example:

        gdrun minimize x2 --lr 1 --epochs 10 --quiet && gdrun explain last

        gdrun explain runs/<sweep-dir>/17 --json
    """
    from .explain import explain_path, print_explanation
    from .history import resolve

    record, diagnostics = explain_path(resolve(run, runs_dir))
    if as_json:
        from .runs import json_text

        sys.stdout.write(json_text({"run_dir": str(record.path), "status": record.summary.get("status"),
                                    "diagnostics": diagnostics}))  # fmt: skip
        return
    from .display import report_console

    print_explanation(record, diagnostics, report_console())


@app.command()
@user_errors
def plot(
    runs: list[str] = typer.Argument(..., metavar="RUN...", help="Runs (several: overlaid), a sweep, or SWEEP_DIR/ID; "
                                     "each a directory, last, last~N, a name or a unique prefix.",
                                     autocompletion=complete_run),
    out: Optional[Path] = typer.Option(None, "--out", "-o", metavar="FILE",
                                       help="Where to write the picture (default: plot.png, or plot.gif with --animate, "
                                            "in the first directory given)."),  # fmt: skip
    every: Optional[int] = typer.Option(None, "--every", click_type=IntFlag,
                                        help="A fit: draw the model every N epochs (default: about 8 curves)."),  # fmt: skip
    animate: bool = typer.Option(False, "--animate", help="An animated GIF of a fit (the model epoch by epoch) or of a 1-D or 2-D path."),
    terminal: bool = typer.Option(False, "--terminal", help="Draw the curves in the terminal instead (for a remote machine)."),
    runs_dir: Path = RunsDir,
) -> None:
    """Draw a run, several runs, a fit or a sweep: the natural picture of what the directory holds.

    A 1-D function: f(x) with the iterates on it; 2-D: the path on a contour with the known minima;
    every run: value and |grad| against step; a fit: the data and the model before, during and
    after; several runs: one contour and one axis with a legend; a sweep over one number: the final
    value against it by status, over two: a heat map with the diverged region and the predicted bound;
    a comparison (gdrun compare): performance profiles, lr sensitivity and the tuned paths.

    Example:

        gdrun minimize x2 --lr 1 --epochs 10 --quiet && gdrun plot last

        gdrun plot last last~1 -o compare.png

        gdrun plot runs/<sweep-dir> --terminal
    """
    from . import plots

    if every is not None and every < 1:
        raise GdrunError(f"--every must be a whole number of epochs from 1, got {every}")
    if terminal and (animate or out is not None):
        raise GdrunError("--terminal draws in the terminal: it takes no --animate or --out")
    from .history import resolve

    records = plots.read([resolve(r, runs_dir) for r in runs])
    if terminal:
        print(plots.terminal(records))
        return
    first = records[0].path if records[0].kind != "sweep config" else Path(records[0].path).parent
    if animate:
        target = out or Path(first) / "plot.gif"
        written = plots.animation(records, target, every)
    else:
        default = plots.PLOT_FILE if records[0].kind != "sweep config" else f"plot-{Path(records[0].path).name}.png"
        written = plots.save(plots.figure(records, every), out or Path(first) / default)
    print(f"plot: {written}")


@app.command()
@user_errors
def sweep(
    ctx: typer.Context,
    config: Path = typer.Argument(..., help="A YAML config; its sweep: part (if any) declares the sweep."),
    params: list[str] = typer.Option([], "--param", "-p", metavar="KEY=VALUES",
                                     help="Sweep KEY over VALUES: lr=0.01,0.1 or lr=logspace(-4,0,20) (repeatable)."),
    kind: Optional[str] = typer.Option(None, "--kind", help="grid (cartesian product, default), zip or random."),
    samples: Optional[int] = typer.Option(None, "--samples", click_type=IntFlag, help="Number of samples of a random sweep."),
    sweep_seed: Optional[int] = typer.Option(None, "--sweep-seed", click_type=IntFlag, help="Seed of a random sweep's sampler."),
    record_every: Optional[int] = typer.Option(None, "--record-every", click_type=IntFlag, help="Keep every Nth step of each config (default 10)."),
    plan: bool = typer.Option(False, "--plan", help="Print the expanded configs and run nothing."),
    resume: Optional[str] = typer.Option(None, "--resume", metavar="DIR|NAME",
                                         help="Continue a sweep directory (or the latest sweep of that name)."),
    executor: str = typer.Option("local", "--executor", help="local (batched, in-process), processes or dask."),
    workers: Optional[int] = typer.Option(None, "--workers", click_type=IntFlag, help="Worker processes for processes/dask."),
    scheduler: Optional[str] = typer.Option(None, "--scheduler", metavar="tcp://HOST:PORT",
                                            help="A dask.distributed scheduler (default: start a LocalCluster)."),
    explain: bool = typer.Option(False, "--explain", help="Diagnose every config (regime, sharpness, largest stable lr) "
                                 "in one batched pass; results.csv gets the columns."),
    fail_fast: bool = typer.Option(False, "--fail-fast", help="Stop at the first failed config."),
    max_failures: Optional[int] = typer.Option(None, "--max-failures", click_type=IntFlag, help="Stop once more configs than this failed."),
    name: Optional[str] = Name,
    sets: list[str] = Sets,
    runs_dir: Path = RunsDir,
    quiet: bool = Quiet,
    as_json: bool = Json,
    plot: bool = typer.Option(False, "--plot", help="At the end, draw the sweep into plot.png in its directory (see gdrun plot)."),
) -> None:
    """Run many configs at once: numbers become arrays along the batch axis.

    Example:

        gdrun sweep configs/e1_x2_lr0.1_converges.yaml -p lr=0.001,0.01,0.1,1 -p init=7.5,-3

        gdrun sweep configs/sweep_x2_which_lr_converges.yaml --plan

        gdrun sweep configs/sweep_x2_which_lr_converges.yaml --resume sweep_x2_which_lr_converges

        gdrun sweep configs/sweep_rosenbrock_lr_seeds.yaml -p seed='range(0,1000)' --set expect=null

    Up to a million configs: they stream through in batches (16,384 on a CPU, one batch on a GPU
    with --set backend=torch --set device=cuda) with bounded memory.
    Results go to runs/sweep-<time>-<name>-<id>/ (results.csv, metrics.f64, sweep.yaml with the
    declaration); one config opens as a run with "gdrun show SWEEP_DIR/ID". Exit codes: 0 all configs ran (diverging
    is a result), 2 bad input, 4 some config failed, 130 interrupted (resume it with --resume).
    """
    from .config import apply_sets, load_yaml
    from .sweeps import SweepOptions, iter_results, parse_param_flag, validate_sweep

    output = _output(ctx, quiet, as_json, plot)
    raw = load_yaml(config)
    declared = dict(raw.pop("sweep", None) or {})
    raw.setdefault("name", name or config.stem)
    raw = apply_sets(raw, sets)
    if explain:
        raw["explain"] = True
    from .api import executor_for, launch_sweep, sweep_declaration

    declared = sweep_declaration(declared, dict(parse_param_flag(item) for item in params), kind, samples, sweep_seed,
                                 record_every)  # fmt: skip
    spec = validate_sweep(declared)
    from .display import print_plan, sweep_progress, sweep_report

    if plan:
        from .sweeps import plan as expand_plan

        print_plan(expand_plan(raw, spec), output.mode)
        raise typer.Exit(0)
    options = SweepOptions(runs_dir=runs_dir, name=name, resume=resume, fail_fast=fail_fast, max_failures=max_failures,
                           executor=executor_for(executor, workers, scheduler), base_dir=str(config.parent),
                           command=tuple(output.command))  # fmt: skip
    with sweep_progress(output) as progress:
        summary, code, failed = launch_sweep(raw, declared, options, output, progress)
    sweep_report(summary, iter_results(Path(summary["sweep_dir"])), output.mode)
    if plot:
        from .runner import plot_run

        plot_run(Path(summary["sweep_dir"]), output)
    for r in failed[:20]:
        print(f"gdrun: expectation failed: {r.expectation}: expected {r.expected_text()}, got {r.got}", file=sys.stderr)
    if failed:
        print(f"gdrun: {len(failed)} expectation(s) failed", file=sys.stderr)
    raise typer.Exit(code)


#: the commands other tools have for what gdrun calls otherwise
COMMAND_ALIASES = {"list": "runs", "ls": "runs", "ps": "runs", "history": "runs", "lst": "runs",
                   "diff": "runs compare A B", "version": "--version",
                   "tensorboard": "export tensorboard RUN... --logdir DIR", "load": "show"}  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    """Console entry point: click's own usage errors become one line too."""
    command = typer.main.get_command(app)
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        code = command.main(args=argv, prog_name="gdrun", standalone_mode=False, obj=argv)
    except click.exceptions.NoArgsIsHelpError as exc:  # plain "gdrun": the help as it is, multi-line; no command ran
        print(exc.ctx.get_help(), file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)
    except click.exceptions.NoSuchCommand as exc:
        from .errors import unknown_name

        alias = COMMAND_ALIASES.get(str(exc.command_name).lower())
        if alias:
            error(f"unknown command '{exc.command_name}' (did you mean 'gdrun {alias}'?)")
        else:
            error(f"{unknown_name('command', exc.command_name, command.commands)} (see 'gdrun --help')")
        sys.exit(EXIT_BAD_INPUT)
    except click.exceptions.UsageError as exc:
        where = exc.ctx.command_path if exc.ctx is not None else "gdrun"
        error(f"{exc.format_message()} (see '{where} --help')".replace("\n", " "))
        sys.exit(EXIT_BAD_INPUT)
    except (click.exceptions.Abort, KeyboardInterrupt):  # Ctrl-C outside a run (a run handles its own)
        error("interrupted")
        sys.exit(EXIT_INTERRUPTED)
    except click.ClickException as exc:
        error(exc.format_message())
        sys.exit(exc.exit_code)
    sys.exit(code if isinstance(code, int) else 0)
