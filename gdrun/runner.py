"""One run, end to end: validated config -> objective, optimizer, backend -> engine -> run dir.

Everything that can be wrong with the input is checked before the run directory is created, so
bad input never leaves a half-written directory behind.
"""

from __future__ import annotations

import contextlib
import platform
import shlex
import sys
import time
import traceback
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__, engine
from .config import Config, to_yaml
from .errors import STATUS_EXIT_CODES, GdrunError, closest
from .functions import ResolvedFunction, resolve
from .optim import get_optimizer
from .runs import (
    CONFIG_FILE, ERROR_FILE, METRICS_FILE, SUMMARY_FILE, MetricsWriter, create_run_dir, git_commit,
    json_number, write_json_atomic,
)  # fmt: skip


@dataclass(frozen=True)
class Output:
    """How a run talks to the terminal."""

    mode: str = "table"  # "table", "quiet" or "json"
    console: Any = None  # a rich Console; None: stdout
    command: tuple[str, ...] = ()  # the command line, recorded in the summary


@dataclass(frozen=True)
class Prepared:
    """A config with everything resolved: ready to run, nothing written yet."""

    config: Config
    function: ResolvedFunction
    backend: Any
    init: np.ndarray  # (n,)
    value_and_grad: Any  # X (B, n) -> (f (B,), G (B, n)) on the backend


def prepare(config: Config) -> Prepared:
    """Resolve the function, backend and init point, or raise a one-line GdrunError."""
    function = resolve(config.function, config.dim)
    names = function.variables
    if config.init_range is not None and config.seed is None:
        config = replace(config, seed=int(np.random.SeedSequence().entropy % (2**31)))
    init = initial_point(config, function)
    get_optimizer(config.optimizer)
    from .backends import get_backend

    backend = get_backend(config.backend, config.device, config.dtype)
    dim = len(names) if function.builtin is not None and function.builtin.fixed_dim is None else config.dim
    name = config.name or function.name
    if config.init_range is None:  # record the start point itself, so config.yaml says where it began
        config = replace(config, init={k: float(v) for k, v in zip(names, init)})
    config = replace(config, dim=dim, name=name)
    return Prepared(config, function, backend, init, backend.value_and_grad_fn(function.objective))


def initial_point(config: Config, function: ResolvedFunction) -> np.ndarray:
    names = function.variables
    n = len(names)
    if config.init_range is not None:
        low, high = config.init_range
        return np.random.default_rng(config.seed).uniform(low, high, size=n)
    init = config.init
    if init is None:
        return np.array(function.default_init(), dtype=float)
    if isinstance(init, float):
        return np.full(n, init)
    if isinstance(init, list):
        if len(init) != n:
            raise GdrunError(f"init has {len(init)} value(s) but the function has {n} variable(s): {', '.join(names)}")
        return np.array(init, dtype=float)
    unknown = [k for k in init if k not in names]
    if unknown:
        raise GdrunError(f"init names '{unknown[0]}', which is not a variable{closest(unknown[0], names)}; variables: {', '.join(names)}")
    missing = [k for k in names if k not in init]
    if missing:
        raise GdrunError(f"init gives no value for {', '.join(missing)} (variables: {', '.join(names)})")
    return np.array([init[k] for k in names], dtype=float)


def execute(config: Config, runs_dir: str | Path = "runs", output: Output = Output()) -> tuple[dict, int]:
    """Run ``config``, write its run directory, print as ``output`` asks; return (summary, exit code)."""
    from rich.console import Console

    from .display import RunDisplay, summary_panel

    prepared = prepare(config)
    config, function, backend = prepared.config, prepared.function, prepared.backend
    console = output.console or Console()
    names = function.variables
    run_dir = create_run_dir(runs_dir, config.name)
    (run_dir / CONFIG_FILE).write_text(to_yaml(config))
    summary = _summary_start(config, function, backend, prepared.init, run_dir, output.command)
    write_json_atomic(run_dir / SUMMARY_FILE, summary)

    metrics = MetricsWriter(run_dir / METRICS_FILE, names)
    display = RunDisplay(console, names, config.epochs, config.every) if output.mode == "table" else None
    observers = (metrics,) + ((display,) if display else ())
    crash: BaseException | None = None
    outcome = None
    try:
        x0 = backend.asarray(prepared.init[None, :])
        lr = backend.asarray([[config.lr]])
        stop = engine.StopRule(config.stop.grad_norm_below, config.stop.value_below, config.stop.diverge_above)
        with engine.Interrupt() as interrupt, display or contextlib.nullcontext():
            outcome = engine.run(prepared.value_and_grad, x0, get_optimizer(config.optimizer), lr, config.epochs,
                                 backend, stop, observers, interrupt, names)  # fmt: skip
    except KeyboardInterrupt as exc:  # a second Ctrl-C: stop hard, but still say so on disk
        crash = exc
    except Exception as exc:
        crash = exc
    finally:
        metrics.close()
    if display is not None:
        display.finish()

    summary.update(_summary_end(outcome, crash, names, started=summary["_started"]))
    if outcome is not None and outcome.error is not None:
        crash = outcome.error
    if crash is not None and not isinstance(crash, KeyboardInterrupt):
        (run_dir / ERROR_FILE).write_text("".join(traceback.format_exception(crash)))
    summary.pop("_started")
    write_json_atomic(run_dir / SUMMARY_FILE, summary)
    if output.mode == "json":
        import json

        print(json.dumps(summary, indent=2))
    elif output.mode == "table":
        summary_panel(summary, console)
    return summary, STATUS_EXIT_CODES[summary["status"]]


def _summary_start(config: Config, function: ResolvedFunction, backend, init: np.ndarray, run_dir: Path,
                   command: tuple[str, ...]) -> dict:
    from importlib.metadata import PackageNotFoundError, version

    def installed(package: str) -> str | None:
        try:
            return version(package)
        except PackageNotFoundError:
            return None

    minima = None
    if function.builtin is not None:
        minima = [
            {"point": list(m.point), "value": m.value} for m in function.builtin.minima(len(function.variables))
        ]
    return {
        "status": "running",
        "reason": "the run has started and not finished (a run killed hard stays in this state)",
        "name": config.name,
        "function": config.function,
        "formula": function.objective.formula,
        "known_minima": minima,
        "iterations": 0,
        "params": {k: json_number(v) for k, v in zip(function.variables, init)},
        "value": None,
        "grad_norm": None,
        "init": {k: json_number(v) for k, v in zip(function.variables, init)},
        "optimizer": config.optimizer,
        "lr": config.lr,
        "epochs": config.epochs,
        "backend": backend.name,
        "device": backend.device,
        "dtype": config.dtype,
        "seed": config.seed,
        "wall_time_s": 0.0,
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "finished_at": None,
        "versions": {
            "gdrun": __version__,
            "python": platform.python_version(),
            "numpy": np.__version__,
            "torch": installed("torch"),
            "sympy": installed("sympy"),
            **backend.versions(),
        },
        "command": shlex.join(command or ["gdrun", *sys.argv[1:]]),
        "cwd": str(Path.cwd()),
        "git_commit": git_commit(),
        "run_dir": str(run_dir),
        "_started": time.perf_counter(),
    }


def _summary_end(outcome, crash, names, started: float) -> dict:
    wall = time.perf_counter() - started
    if outcome is None:  # the engine itself did not return: a crash or a hard interrupt
        status = "interrupted" if isinstance(crash, KeyboardInterrupt) else "failed"
        reason = "interrupted twice (Ctrl-C Ctrl-C)" if status == "interrupted" else f"{type(crash).__name__}: {crash}"
        return {"status": status, "reason": reason, "wall_time_s": wall, "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    end = {
        "status": outcome.status[0],
        "reason": outcome.reason[0],
        "iterations": int(outcome.iterations[0]),
        "wall_time_s": outcome.wall_time_s,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    if outcome.seen[0]:  # at least one row was computed
        end["params"] = {k: json_number(v) for k, v in zip(names, outcome.x[0])}
        end["value"] = json_number(outcome.value[0])
        end["grad_norm"] = json_number(outcome.grad_norm[0])
    return end
