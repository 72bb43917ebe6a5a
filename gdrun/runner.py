"""One run, end to end: validated config -> problem, optimizer, backend -> engine -> run dir.

Everything that can be wrong with the input is checked in :func:`prepare`, before the run
directory is created, so bad input never leaves a half-written directory behind.
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
from typing import Any, Callable

import numpy as np

from . import __version__, engine
from .config import Config, build_clip, build_optimizer, build_schedule, to_yaml
from .errors import EXIT_FAILED, STATUS_EXIT_CODES, GdrunError, closest
from .inputs import listing, show
from .runs import (
    CONFIG_FILE, ERROR_FILE, METRICS_FILE, SUMMARY_FILE, SUMMARY_RESERVE, MetricsWriter, create_run_dir,
    disk_full_reason, git_commit, is_disk_full, json_number, json_text, process_info, write_atomic, write_json,
)  # fmt: skip


@dataclass(frozen=True)
class Output:
    """How a run talks to the terminal."""

    mode: str = "table"  # "table", "quiet" or "json"
    console: Any = None  # a rich Console; None: stdout
    command: tuple[str, ...] = ()  # the command line, recorded in the summary
    warn: Callable[[str], None] | None = None  # where warnings about the input go (stderr)
    plot: bool = False  # --plot: draw the run into plot.png in its directory at the end


@dataclass(frozen=True)
class Prepared:
    """A config with everything resolved: ready to run, nothing written yet."""

    config: Config  # fully resolved: what config.yaml records
    backend: Any
    names: tuple[str, ...]  # the variables the optimizer moves
    init: np.ndarray  # (n,)
    problem: Any  # the engine's problem on this backend
    optimizer: Any
    schedule: Any  # None: a constant learning rate
    clip: Any  # None, or grads -> clipped grads
    label: str  # the function or model, for titles
    formula: str
    function: Any = None  # functions.ResolvedFunction when minimizing
    fit: Any = None  # fit.Fit when fitting

    @property
    def batches_per_epoch(self) -> int:
        return 1 if self.fit is None else self.fit.n_batches()


def prepare(config: Config, base: Path | None = None, warn: Callable[[str], None] | None = None,
            check_start: bool = True) -> Prepared:  # fmt: skip
    """Resolve the problem, backend, optimizer and init point, or raise a one-line GdrunError.

    ``base`` is the folder relative data paths may also be found in (the config file's). With
    ``check_start``, a start point where the function (a fit's loss) is nan or infinite in the
    run's dtype is an input error too; a sweep leaves it to the engine, so that one such config
    ends as diverged at step 0 without stopping the others.
    """
    from .backends import get_backend

    if config.seed is None and _draws(config):  # drawn here, so that the run records it
        config = replace(config, seed=int(np.random.SeedSequence().entropy % (2**31)))
    optimizer = build_optimizer(config)
    if config.fit is not None:
        from .fitting import resolve_fit, with_located_data

        config = replace(config, fit=with_located_data(config.fit, base))
        fit = resolve_fit(config.fit, config.seed, base, config.init, warn)
        names, default = fit.params, [0.0] * len(fit.params)
        init = initial_point(config, names, default, allowed_extra=tuple(fit.frozen))
        backend = get_backend(config.backend, config.device, config.dtype)
        problem = fit.problem(backend, config.seed)
        label, formula, function = fit.spec.model, fit.formula, None
        config = replace(config, name=config.name or "fit")
    else:
        from .functions import resolve

        fit = None
        function = resolve(config.function, config.dim, config.let)
        names = function.variables
        init = initial_point(config, names, function.default_init())
        backend = get_backend(config.backend, config.device, config.dtype)
        problem = engine.FullBatch(backend.value_and_grad_fn(function.objective))
        label, formula = config.function, function.objective.formula
        free_dim = function.builtin is not None and function.builtin.fixed_dim is None
        config = replace(config, name=config.name or function.name, dim=len(names) if free_dim else config.dim)
    if check_start:
        value = (lambda X: problem.value_and_grad(X)[0]) if fit else backend.value_fn(function.objective)
        _check_start(value, backend, names, init, config.dtype, f"the model {label}" if fit else label,
                     "loss" if fit else "value")  # fmt: skip
    if config.init_range is None:  # record the start point itself, so config.yaml says where it began
        recorded = {k: float(v) for k, v in zip(names, init)}
        config = replace(config, init={**(fit.frozen if fit else {}), **recorded})
    return Prepared(config, backend, names, init, problem, optimizer, build_schedule(config), build_clip(config),
                    label, formula, function, fit)  # fmt: skip


def _draws(config: Config) -> bool:
    """Whether the run draws random numbers from its seed: a drawn start point, shuffled
    mini-batches, or data noise without a seed of its own."""
    if config.init_range is not None:
        return True
    if config.fit is None:
        return False
    data = config.fit.data
    noise = data.get("noise") if isinstance(data, dict) else None
    return bool(config.fit.shuffle) or (isinstance(noise, dict) and "seed" not in noise)


def _check_start(value_fn, backend, names: tuple[str, ...], init: np.ndarray, dtype: str, of: str, value_label: str) -> None:
    """A GdrunError when the start point does not fit the run's dtype, or the objective is nan or
    infinite there (in that dtype)."""
    with np.errstate(over="ignore"):
        fits = np.isfinite(init.astype(dtype)).all()
    if not fits:
        raise GdrunError(f"the start point {engine.point_text(names, init)} does not fit in {dtype} "
                         f"(its largest number is {np.finfo(dtype).max:.3g})")  # fmt: skip
    with backend.compute():
        value = value_fn(backend.asarray(init[None, :]))
    value = float(np.asarray(backend.to_numpy(value)).reshape(-1)[0])
    fault = engine.start_fault(names, init, value, dtype, of if len(of) <= 60 else of[:57] + "...", value_label)
    if fault is not None:
        raise GdrunError(fault)


def initial_point(config: Config, names: tuple[str, ...], default: list[float], allowed_extra: tuple[str, ...] = ()) -> np.ndarray:
    n = len(names)
    if config.init_range is not None:
        low, high = config.init_range
        return np.random.default_rng(config.seed).uniform(low, high, size=n)
    init = config.init
    if init is None:
        return np.array(default, dtype=float)
    if isinstance(init, float):
        return np.full(n, init)
    if isinstance(init, list):
        if len(init) != n:
            raise GdrunError(f"init has {len(init)} value(s) but there are {n} variable(s): {listing(names)}")
        return np.array(init, dtype=float)
    unknown = [k for k in init if k not in names and k not in allowed_extra]
    if unknown:
        raise GdrunError(f"init names {show(unknown[0])}, which is not a variable{closest(unknown[0], names)}; "
                         f"variables: {listing(names)}")  # fmt: skip
    missing = [k for k in names if k not in init]
    if missing:
        raise GdrunError(f"init gives no value for {listing(missing)} (variables: {listing(names)})")
    return np.array([init[k] for k in names], dtype=float)


def execute(config: Config, runs_dir: str | Path = "runs", output: Output = Output(), base: Path | None = None) -> tuple[dict, int]:
    """Run ``config``, write its run directory, print as ``output`` asks; return (summary, exit code)."""
    return execute_batch([config], runs_dir, output, base)[0]


def execute_batch(configs: list[Config], runs_dir: str | Path = "runs", output: Output = Output(),
                  base: Path | None = None) -> list[tuple[dict, int]]:  # fmt: skip
    """Run configs that share their structure (see sweep.structure) as ONE engine batch, each with
    its own run directory; the table and panel are shown for a single config only."""
    from rich.console import Console

    from .display import RunDisplay, summary_panel
    from .optim import get_clip, get_optimizer, per_run, per_run_options

    everything = [prepare(c, base, output.warn) for c in configs]
    prepared = everything[0]
    backend, names, fit, config = prepared.backend, prepared.names, prepared.fit, prepared.config
    single = len(everything) == 1
    console = output.console or Console()
    predictions_before = _predictions(fit, prepared.init)
    if output.mode == "table" and single and predictions_before:
        for at, value in zip(*predictions_before):
            console.print(f"predict (before training) {_point(at)} -> {value:.6g}", highlight=False)
    optimizer, clip = prepared.optimizer, prepared.clip
    if not single:  # numbers that differ between the runs become arrays along the batch axis
        optimizer = get_optimizer(config.optimizer, **per_run_options([p.config.optimizer_options for p in everything]))
        if clip is not None:
            mode = "norm" if config.clip_norm is not None else "value"
            clip = get_clip(mode, per_run([p.config.clip_norm if mode == "norm" else p.config.clip_value for p in everything]))

    run_dirs, summaries, writers = [], [], []
    try:
        for b, p in enumerate(everything):
            def fill(building: Path, final: Path, p=p) -> None:
                summaries.append(_summary_start(p, final, output.command))
                write_atomic(building / CONFIG_FILE, to_yaml(p.config))
                write_json(building / SUMMARY_FILE, summaries[-1], reserve=SUMMARY_RESERVE)

            run_dirs.append(create_run_dir(runs_dir, p.config.name, fill=fill))
            writers.append(MetricsWriter(run_dirs[-1] / METRICS_FILE, names, member=b, epochs=fit is not None))
    except (GdrunError, OSError, KeyboardInterrupt) as exc:  # a full disk, Ctrl-C: the directories made so far say so
        for writer in writers:
            writer.close()
        if isinstance(exc, KeyboardInterrupt):
            for run_dir, summary in zip(run_dirs, summaries):
                summary.update(status="interrupted", reason="interrupted (Ctrl-C) before the run started",
                               finished_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"))  # fmt: skip
                with contextlib.suppress(OSError):
                    write_json(run_dir / SUMMARY_FILE, summary)
            raise
        if isinstance(exc, GdrunError):
            error = exc
        else:
            why = disk_full_reason(exc, METRICS_FILE) if is_disk_full(exc) else f"cannot write {METRICS_FILE}: {exc.strerror or exc}"
            error = GdrunError(why, EXIT_FAILED)
        for run_dir, summary in zip(run_dirs, summaries):
            summary.update(status="failed", reason=str(error), finished_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
            with contextlib.suppress(OSError):
                write_json(run_dir / SUMMARY_FILE, summary)
        raise error from None
    display = None
    if output.mode == "table" and single:
        display = RunDisplay(console, names, config.epochs, config.every, epoch_rows=fit is not None,
                             updates=prepared.batches_per_epoch > 1)  # fmt: skip
    recorder = None
    if config.explain is not False:  # why it went so: rows and path points kept for the diagnostics
        from .explain import PathRecorder

        recorder = PathRecorder(len(everything), config.epochs)
    observers = tuple(writers) + ((display,) if display else ()) + ((recorder,) if recorder else ())
    crash: BaseException | None = None
    outcome = None
    started = time.perf_counter()
    try:
        x0 = backend.asarray(np.stack([p.init for p in everything]))
        lr = np.array([[p.config.lr] for p in everything])
        stop = engine.StopRule(config.stop.grad_norm_below, config.stop.value_below, config.stop.diverge_above)
        with engine.Interrupt() as interrupt, display or contextlib.nullcontext():
            outcome = engine.run(prepared.problem, x0, optimizer, lr, config.epochs, backend, stop, observers, interrupt,
                                 names, prepared.schedule, clip, ("epoch", "loss") if fit is not None else ("step", "value"))  # fmt: skip
    except KeyboardInterrupt as exc:  # a second Ctrl-C: stop hard, but still say so on disk
        crash = exc
    except Exception as exc:
        crash = exc
    finally:
        for writer in writers:
            writer.close()
    if display is not None:
        display.finish()

    if outcome is not None and outcome.error is not None:
        crash = outcome.error
    explained: dict[int, dict] = {}
    if recorder is not None and crash is None:
        try:
            from .explain import explain_outcome

            explained = explain_outcome(everything[0], [p.config for p in everything], [p.init for p in everything],
                                        recorder, outcome)  # fmt: skip
        except KeyboardInterrupt:  # Ctrl-C while explaining: the run itself is done; record it without them
            explained = {}
    results = []
    for b, (p, run_dir, summary) in enumerate(zip(everything, run_dirs, summaries)):
        summary.update(_summary_end(p, outcome, crash, time.perf_counter() - started, member=b))
        if b in explained:
            diagnostics = explained[b]
            summary["gradient"] = diagnostics.pop("gradient", None)
            summary["no_gradient_path"] = diagnostics.pop("no_gradient_path", [])
            summary["diagnostics"] = diagnostics
        if outcome is None and writers[b].last is not None:  # cut short (a full disk): where it got to, as recorded
            last = writers[b].last
            summary.update(iterations=last["iterations"], updates=last["updates"], value=json_number(last["value"]),
                           grad_norm=json_number(last["grad_norm"]),
                           params={**summary["params"], **{k: json_number(v) for k, v in last["params"].items()}})  # fmt: skip
        try:
            if crash is not None and not isinstance(crash, KeyboardInterrupt) and not is_disk_full(crash):
                write_atomic(run_dir / ERROR_FILE, "".join(traceback.format_exception(crash)))
            write_json(run_dir / SUMMARY_FILE, summary)
        except OSError as exc:  # the disk filled up at the very end: say so; the directory reads as cut off
            summary.update(status="failed", reason=f"{disk_full_reason(exc, SUMMARY_FILE) if is_disk_full(exc) else exc}")
        results.append((summary, STATUS_EXIT_CODES[summary["status"]]))
    if output.mode == "json" and single:
        sys.stdout.write(json_text(summaries[0]))  # as summary.json holds it: nan and inf are null
    elif output.mode == "table" and single:
        summary_panel(summaries[0], console)
    if output.plot and single:
        plot_run(run_dirs[0], output, console)
    full = [(d, s) for d, s in zip(run_dirs, summaries) if s["status"] == "failed" and str(s.get("reason")).startswith("disk full")]
    if full:  # the directories say so; the caller stops (a comparison runs no more variants), one line
        others = f" (and {len(full) - 1} more run directories)" if len(full) > 1 else ""
        raise GdrunError(f"{full[0][0]}{others}: {full[0][1]['reason']}", EXIT_FAILED)
    return results


def plot_run(run_dirs: Path | list[Path], output: Output, console=None) -> Path | None:
    """``--plot``: draw the run (several: overlaid) into plot.png in the (first) run directory and
    say where: on stdout under a table, on stderr with --json, not at all with --quiet."""
    from .plots import PLOT_FILE, after_run

    dirs = [run_dirs] if isinstance(run_dirs, Path) else list(run_dirs)
    if not dirs:
        return None
    warn = output.warn or (lambda message: print(f"gdrun: warning: {message}", file=sys.stderr))
    where = after_run(dirs, dirs[0] / PLOT_FILE, warn)
    if where is not None and output.mode == "table":
        if console is not None:
            console.print(f"plot: {where}", highlight=False, soft_wrap=True)  # a path is never wrapped
        else:
            print(f"plot: {where}")
    elif where is not None and output.mode == "json":
        print(f"gdrun: plot: {where}", file=sys.stderr)
    return where


def _point(at: dict[str, float]) -> str:
    return ", ".join(f"{k} = {v:g}" for k, v in at.items())


def _predictions(fit, params: np.ndarray):
    if fit is None or fit.spec.predict is None:
        return None
    return fit.predict({**fit.frozen, **dict(zip(fit.params, params.tolist()))}, fit.spec.predict)


def _summary_start(prepared: Prepared, run_dir: Path, command: tuple[str, ...]) -> dict:
    from importlib.metadata import PackageNotFoundError, version

    def installed(package: str) -> str | None:
        try:
            return version(package)
        except PackageNotFoundError:
            return None

    config, backend, names, fit = prepared.config, prepared.backend, prepared.names, prepared.fit
    start = {k: json_number(v) for k, v in zip(names, prepared.init)}
    summary: dict[str, Any] = {
        "status": "running",
        "reason": "the run has started and not finished (a run killed hard stays in this state)",
        "name": config.name,
        "kind": "fit" if fit is not None else "minimize",
        "function": prepared.label,
        "formula": prepared.formula,
    }
    if prepared.function is not None and prepared.function.builtin is not None:
        summary["known_minima"] = [
            {"point": list(m.point), "value": m.value, "differentiable": m.differentiable}
            for m in prepared.function.builtin.minima(len(names))
        ]
    if fit is not None:
        summary.update(
            model=fit.formula, inputs=list(fit.inputs), target=fit.spec.target, loss=fit.spec.loss,
            data_points=fit.n_points, batch_size=fit.spec.batch_size, batches_per_epoch=fit.n_batches(),
            frozen=dict(fit.frozen),
        )  # fmt: skip
    summary.update(
        {
            "iterations": 0,
            "updates": 0,
            "params": fit.all_params(start) if fit else start,
            "value": None,
            "grad_norm": None,
            "init": start,
            "optimizer": config.optimizer,
            "optimizer_options": {k: list(v) if isinstance(v, tuple) else v for k, v in config.optimizer_options.items()},
            "schedule": config.schedule,
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
            **process_info(),
        }
    )
    return summary


def _summary_end(prepared: Prepared, outcome, crash, wall: float, member: int = 0) -> dict:
    finished = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    if outcome is None:  # the engine itself did not return: a crash or a hard interrupt
        status = "interrupted" if isinstance(crash, KeyboardInterrupt) else "failed"
        reason = ("interrupted twice (Ctrl-C Ctrl-C)" if status == "interrupted" else
                  disk_full_reason(crash, getattr(crash, "filename", None) or METRICS_FILE) if is_disk_full(crash) else
                  f"{type(crash).__name__}: {crash}")  # fmt: skip
        return {"status": status, "reason": reason, "wall_time_s": wall, "finished_at": finished}
    end: dict[str, Any] = {
        "status": outcome.status[member],
        "reason": outcome.reason[member],
        "iterations": int(outcome.iterations[member]),
        "updates": int(outcome.updates[member]),
        "wall_time_s": outcome.wall_time_s,
        "finished_at": finished,
    }
    if outcome.seen[member]:  # at least one row was computed
        fit = prepared.fit
        params = dict(zip(prepared.names, outcome.x[member].tolist()))
        trained = {k: json_number(v) for k, v in params.items()}
        end["params"] = fit.all_params(trained) if fit else trained
        end["value"] = json_number(outcome.value[member])
        end["grad_norm"] = json_number(outcome.grad_norm[member])
        if fit is not None:
            end["r2"] = json_number(fit.r2({**fit.frozen, **params}))
            if fit.spec.predict is not None:
                before = _predictions(fit, prepared.init)
                after = _predictions(fit, outcome.x[member])
                end["predictions"] = [
                    {"at": at, "before": json_number(b), "after": json_number(a)}
                    for at, b, a in zip(before[0], before[1], after[1])
                ]
    return end
