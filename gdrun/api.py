"""gdrun from Python: the command line's runs as objects, for notebooks and scripts.

    import gdrun

    run = gdrun.minimize("rosenbrock", lr=1e-3, epochs=2000, init=[-1.2, 1.0])
    run.status, run.value, run.params      # 'max_epochs', 0.0214..., {'x': 0.854..., 'y': 0.729...}
    run.points                             # (steps + 1, 2): the path, one row per step
    sweep = gdrun.sweep({"function": "x2", "epochs": 50}, params={"lr": [0.1, 0.5, 1.0, 1.05]})
    sweep[3].status                        # 'diverged': one config, read back as a run
    gdrun.load("last")                     # any run or sweep directory, by path or reference

Every call writes its run (or sweep) directory exactly as the command line does, under
``runs_dir`` (default ``runs``), and returns it read back. Config keys are keyword arguments
(``lr``, ``epochs``, ``init``, ``optimizer``, ``optimizer_options``...) plus the flags' shorthands
``tol``, ``diverge_above`` and ``loss_below``; bad input raises :class:`gdrun.InputError` (a
:class:`gdrun.GdrunError`) before anything is written. Nothing is kept between calls: two calls in
one process, or in two threads, do not see each other. The command line is a thin layer over
:func:`launch` and :func:`launch_sweep`, the functions these end in.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from .errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, STATUS_EXIT_CODES, GdrunError, InputError

#: the flags' shorthands for the ``stop`` keys
STOP_SHORTHANDS = {"tol": "grad_norm_below", "diverge_above": "diverge_above", "loss_below": "value_below",
                   "value_below": "value_below", "grad_norm_below": "grad_norm_below"}  # fmt: skip


class GdrunWarning(UserWarning):
    """A warning about the input (a fit's data, a config key) that does not stop the run."""


# ---------------------------------------------------------------------------- results


class RunResult:
    """A run read back from its directory (or one config of a sweep).

    ``status``, ``reason``, ``value``, ``grad_norm``, ``params`` (the final point, by name) and
    ``iterations`` come from the summary; ``steps``, ``values``, ``grad_norms``, ``lrs`` and
    ``points`` (one row per recorded step, a column per name in ``names``) from the metrics;
    ``history`` has every metrics column by name; ``path`` is the run directory."""

    def __init__(self, record, expectations: list[dict[str, Any]] | None = None, exit_code: int | None = None):
        self._record = record
        self.path = Path(record.path)
        self.config: dict[str, Any] = record.config
        self.summary: dict[str, Any] = record.summary
        self.cut_off: bool = record.cut_off
        self.expectations = expectations  # the expect: rules' results, when the config has any
        self._exit_code = exit_code

    @property
    def status(self) -> str:
        return "cut_off" if self.cut_off else self.summary["status"]

    reason = property(lambda self: self.summary.get("reason"))
    value = property(lambda self: self.summary.get("value"), doc="The final value (a fit: its loss); None if not finite.")
    grad_norm = property(lambda self: self.summary.get("grad_norm"))
    iterations = property(lambda self: self.summary.get("iterations"))
    params = property(lambda self: dict(self.summary.get("params") or {}), doc="The final point, by name.")

    @property
    def exit_code(self) -> int:
        """The command line's exit code for this run (with ``expect:``, 0 or 1 by its rules)."""
        if self._exit_code is not None:
            return self._exit_code
        return STATUS_EXIT_CODES.get(self.summary["status"], EXIT_OK)

    @property
    def history(self) -> dict[str, np.ndarray]:
        return self._record.metrics

    @property
    def names(self) -> tuple[str, ...]:
        """The parameters the optimizer moved, in the order of ``points``' columns."""
        from .runs import COUNTER_COLUMNS

        return tuple(k for k in self.history if k not in COUNTER_COLUMNS)

    steps = property(lambda self: self.history.get("step", np.empty(0)), doc="The step (update) of each recorded row.")
    values = property(lambda self: self.history.get("value", np.empty(0)))
    grad_norms = property(lambda self: self.history.get("grad_norm", np.empty(0)))
    lrs = property(lambda self: self.history.get("lr", np.empty(0)))

    @property
    def points(self) -> np.ndarray:
        """The path: one row per recorded step, one column per parameter in ``names``."""
        if not self.names:
            return np.empty((len(self.steps), 0))
        return np.column_stack([self.history[k] for k in self.names])

    def to_pandas(self):
        """The recorded steps as a pandas DataFrame (one column per metrics column)."""
        return _pandas().DataFrame({k: np.asarray(v) for k, v in self.history.items()})

    def __repr__(self) -> str:
        return f"RunResult({self.status}, value={self.value!r}, steps={self.iterations}, path='{self.path}')"


class SweepResult:
    """A sweep read back: ``summary`` (counts, best), ``results`` (results.csv as columns), and
    each config as a :class:`RunResult` by index (``sweep[17]``)."""

    def __init__(self, record, expectations_failed: int = 0, exit_code: int | None = None):
        self._record = record
        self.path = Path(record.path)
        self.summary: dict[str, Any] = record.summary
        self.meta: dict[str, Any] = record.config  # sweep.yaml: the base config and the declaration
        self.expectations_failed = expectations_failed
        self._exit_code = exit_code
        self._results: dict[str, Any] | None = None

    status = property(lambda self: "cut_off" if self._record.cut_off else self.summary["status"])
    best = property(lambda self: self.summary.get("best"), doc="The best config: its id, value and status.")

    @property
    def exit_code(self) -> int:
        """The command line's exit code: 0 every config ran, 4 some failed (or the sweep was cut
        off), 130 interrupted; 1 when an expect: rule failed."""
        if self._exit_code is not None:
            return self._exit_code
        failed = (self.summary.get("counts") or {}).get("failed")
        return {"completed": EXIT_FAILED if failed else EXIT_OK, "interrupted": EXIT_INTERRUPTED}.get(self.status, EXIT_FAILED)

    def __len__(self) -> int:
        return int(self.summary["configs"])

    def __getitem__(self, config_id: int) -> RunResult:
        from .sweeps import open_config

        if not isinstance(config_id, (int, np.integer)) or isinstance(config_id, bool):
            raise TypeError(f"a sweep's configs are numbered 0 to {len(self) - 1}")
        return RunResult(open_config(self.path, int(config_id)))

    config = __getitem__

    def __iter__(self) -> Iterator[RunResult]:
        """Every config that ran, as a run (each one reads its records from metrics.f64: for a
        large sweep, ``results`` holds the final figures of all configs at once)."""
        for i in self.results["id"]:
            yield self[int(i)]

    @property
    def results(self) -> dict[str, Any]:
        """results.csv by column, one entry per config that ran (numbers as float arrays, ids as
        ints, text as lists)."""
        if self._results is None:
            from .sweeps import iter_results

            cells: dict[str, list[str]] = {"id": []}
            for n, row in enumerate(iter_results(self.path)):  # one row at a time: column lists, not row dicts
                if n == 0:
                    cells = {k: [] for k in row}
                for k, column in cells.items():
                    column.append(row.get(k, ""))
            self._results = {k: _column(k, column) for k, column in cells.items()}
        return self._results

    def to_pandas(self):
        """results.csv as a pandas DataFrame."""
        return _pandas().DataFrame(self.results)

    def __repr__(self) -> str:
        return f"SweepResult({self.status}, configs={len(self)}, path='{self.path}')"


def _column(key: str, cells: list[str]) -> Any:
    if key in ("id", "steps", "updates", "batch"):
        try:
            return np.array([int(c) for c in cells], dtype=np.int64)
        except ValueError:
            return cells
    try:
        return np.array([float(c) if c != "" else np.nan for c in cells], dtype=np.float64)
    except ValueError:
        return cells


def _pandas():
    try:
        import pandas
    except ImportError:
        raise InputError("to_pandas() needs pandas: pip install pandas") from None
    return pandas


def load(ref: str | Path, runs_dir: str | Path = "runs") -> RunResult | SweepResult:
    """Read a run, a sweep or one config of a sweep back: a path, ``SWEEP_DIR/ID``, ``last``,
    ``last~N``, a run name or a unique prefix of a directory name (see ``gdrun runs``)."""
    from .history import open_ref

    record = open_ref(ref, runs_dir)
    return SweepResult(record) if record.kind == "sweep" else RunResult(record)


# ---------------------------------------------------------------------------- running


def _output(display: bool):
    """How a call talks: nothing (or, with ``display``, the command line's table and panel);
    warnings about the input as Python warnings."""
    from .runner import Output

    return Output(mode="table" if display else "quiet", command=("python", "gdrun.api"),
                  warn=lambda message: warnings.warn(message, GdrunWarning, 3))  # fmt: skip


def config_from_keywords(raw: dict[str, Any], keys: dict[str, Any]) -> dict[str, Any]:
    """``raw`` with the keyword arguments of a call set on it: config keys as they are, the stop
    shorthands into ``stop``, an optimizer ``"adam:eps=1e-3"`` split into name and options."""
    from .config import KEYS, parse_spec, suggest_key

    data = dict(raw)
    for key, value in keys.items():
        if value is None:
            continue
        if key in STOP_SHORTHANDS and key not in KEYS:
            data["stop"] = {**(data.get("stop") or {}), STOP_SHORTHANDS[key]: value}
        elif key not in KEYS:
            raise InputError(f"unknown keyword argument {key!r}{suggest_key(key)}")
        elif key == "optimizer" and isinstance(value, str) and ":" in value:  # as --optimizer adam:eps=1e-3
            from .compare import optimizer_variant

            data["optimizer"], lr, options = optimizer_variant(value)
            if lr is not None:
                data["lr"] = lr
            data["optimizer_options"] = {**(data.get("optimizer_options") or {}), **options}
        elif key == "schedule" and isinstance(value, str):
            data["schedule"] = parse_spec("schedule", value)
        elif isinstance(value, np.ndarray):
            data[key] = value.tolist()
        else:
            data[key] = value
    return data


def launch(raw: dict[str, Any], runs_dir: str | Path, output, base: Path | None = None,
           sets: list[str] = ()) -> tuple[dict[str, Any], list, int]:  # fmt: skip
    """Validate ``raw`` (with ``sets`` applied), run it as ``output`` says and return (summary,
    expectation results, exit code); the one path of ``gdrun minimize/fit/run`` and of
    :func:`minimize`, :func:`fit` and :func:`run`."""
    from .config import apply_sets, validate
    from .runner import execute

    config = validate(apply_sets(raw, list(sets)))
    if config.expect is not None:
        from .check import run_expecting

        return run_expecting(config, runs_dir, output, base)
    summary, code = execute(config, runs_dir, output, base)
    return summary, [], code


def _run(raw: dict[str, Any], runs_dir: str | Path, display: bool, base: Path | None = None) -> RunResult:
    from .runs import open_record

    summary, results, code = launch(raw, runs_dir, _output(display), base)
    expectations = [r.to_json() for r in results] if results else None
    return RunResult(open_record(summary["run_dir"]), expectations, code)


def minimize(function: str, *, runs_dir: str | Path = "runs", display: bool = False, **keys: Any) -> RunResult:
    """Minimize ``function`` (a built-in name or an expression) by gradient descent; the keywords
    are the config keys (``lr``, ``epochs``, ``init``, ``optimizer``...). ``display`` shows the
    table and panel as the command line does."""
    if not isinstance(function, str):
        raise InputError(f"function must be a built-in name or an expression string, got {type(function).__name__}")
    return _run(config_from_keywords({"function": function}, keys), runs_dir, display)


FIT_KEYS = ("target", "inputs", "loss", "huber_delta", "batch_size", "shuffle", "drop_last", "freeze", "predict")


def fit(model: str, data: Any = None, *, runs_dir: str | Path = "runs", display: bool = False, **keys: Any) -> RunResult:
    """Fit ``model`` to ``data``: a CSV path, or columns by name (``{"x": [...], "y": [...]}``, a
    pandas DataFrame); ``x=``, ``y=`` give columns too. The fit keys (``target``, ``loss``,
    ``batch_size``, ``shuffle``, ``freeze``, ``predict``...) and config keys are keywords."""
    columns = {k: keys.pop(k) for k in list(keys) if k in ("x", "y")}
    spec: dict[str, Any] = {"model": model, **{k: keys.pop(k) for k in list(keys) if k in FIT_KEYS}}
    if hasattr(data, "to_dict") and hasattr(data, "columns"):  # a DataFrame
        data = {str(k): list(v) for k, v in data.to_dict("list").items()}
    if isinstance(data, Path):
        data = str(data)
    if isinstance(data, dict) or columns:
        data = {**(data or {}), **columns}
        data = {k: (np.asarray(v).tolist() if isinstance(v, (np.ndarray, list, tuple)) else v) for k, v in data.items()}
    if data is None:
        raise InputError("fit needs data: a CSV path, or columns such as x=[1, 2, 3], y=[2, 4, 6]")
    spec["data"] = data
    if isinstance(spec.get("freeze"), (list, tuple)):
        spec["freeze"] = ",".join(spec["freeze"])
    return _run(config_from_keywords({"fit": spec}, keys), runs_dir, display)


def run(config: str | Path | dict[str, Any], *, runs_dir: str | Path = "runs", display: bool = False,
        **keys: Any) -> RunResult:  # fmt: skip
    """Run a config: a YAML file (relative data paths are found next to it) or a mapping of its
    keys; keywords override its keys, as ``--set`` does."""
    raw, base = _config(config)
    return _run(config_from_keywords(raw, keys), runs_dir, display, base)


def _config(config: str | Path | dict[str, Any]) -> tuple[dict[str, Any], Path | None]:
    if isinstance(config, dict):
        return dict(config), None
    if isinstance(config, (str, Path)):
        from .config import load_yaml

        path = Path(config)
        raw = load_yaml(path)
        raw.setdefault("name", path.stem if path.name != "config.yaml" else None)
        return raw, path.parent
    raise InputError(f"config must be a path to a YAML file or a mapping of config keys, got {type(config).__name__}")


def launch_sweep(raw: dict[str, Any], declared: dict[str, Any], options, output, progress=None) -> tuple[dict, int, list]:
    """Run (or resume) a sweep, then its ``expect:`` rules per config; returns (summary, exit
    code, the failed rules' results). The one path of ``gdrun sweep`` and :func:`sweep`."""
    from .errors import EXIT_EXPECTATION
    from .sweeps import run_sweep, validate_sweep

    spec = validate_sweep(declared)
    summary, code = run_sweep(raw, spec, options, progress)
    failed = []
    if raw.get("expect") is not None and code == 0:  # a sweep's expect: rules, per config (see gdrun check)
        from .check import evaluate_sweep
        from .config import validate
        from .sweeps import prepare_sweep

        failed = [r for _, r in evaluate_sweep(validate(raw).expect, Path(summary["sweep_dir"]),
                                                prepare_sweep(raw, spec)[1], label_passed=False) if not r.passed]  # fmt: skip
        if failed:
            code = EXIT_EXPECTATION
    return summary, code, failed


def sweep(config: str | Path | dict[str, Any], params: dict[str, Any] | None = None, *, kind: str | None = None,
          samples: int | None = None, sweep_seed: int | None = None, record_every: int | None = None,
          executor: str = "local", workers: int | None = None, resume: str | Path | None = None,
          runs_dir: str | Path = "runs", display: bool = False, **keys: Any) -> SweepResult:  # fmt: skip
    """Run many configs at once: ``params`` maps a key to its values (a list, or the command
    line's text: ``"logspace(-4,0,20)"``), on top of the config's own ``sweep:`` part; the
    keywords override config keys. Returns the sweep read back."""
    from .sweeps import SweepOptions, parse_param_flag

    raw, base = _config(config)
    declared = dict(raw.pop("sweep", None) or {})
    raw.setdefault("name", "sweep")
    raw = config_from_keywords(raw, keys)
    given = {}
    for key, values in (params or {}).items():
        if isinstance(values, str):
            key, values = parse_param_flag(f"{key}={values}")
        given[key] = values.tolist() if isinstance(values, np.ndarray) else values
    declared = sweep_declaration(declared, given, kind, samples, sweep_seed, record_every)
    chosen = executor_for(executor, workers)
    output = _output(display)
    options = SweepOptions(runs_dir=Path(runs_dir), resume=None if resume is None else str(resume), executor=chosen,
                           base_dir=str(base) if base else None, command=output.command)  # fmt: skip
    summary, code, failed = launch_sweep(raw, declared, options, output)
    if display:
        from .display import sweep_report
        from .sweeps import iter_results

        sweep_report(summary, iter_results(Path(summary["sweep_dir"])), "table")
    from .runs import open_record

    return SweepResult(open_record(summary["sweep_dir"]), len(failed), code)


def sweep_declaration(declared: dict[str, Any], params: dict[str, Any], kind: str | None = None, samples: int | None = None,
                      seed: int | None = None, record_every: int | None = None) -> dict[str, Any]:  # fmt: skip
    """A config's ``sweep:`` part with the call's (or the flags') params and settings on top."""
    declared = {**declared, "params": {**dict(declared.get("params") or {}), **params}}
    for key, value in {"kind": kind, "n": samples, "seed": seed, "record_every": record_every}.items():
        if value is not None:
            declared[key] = value
    return declared


def executor_for(name: str, workers: int | None = None, scheduler: str | None = None):
    """The sweep executor ``name`` (local, processes, dask)."""
    if name == "local" and workers is None and scheduler is None:
        from .sweeps import LocalExecutor

        return LocalExecutor()  # without importing the process-pool and dask machinery
    from .executors import get_executor

    return get_executor(name, workers, scheduler)


__all__ = ["GdrunError", "GdrunWarning", "InputError", "RunResult", "SweepResult", "fit", "load", "minimize", "run",
           "sweep"]  # fmt: skip
