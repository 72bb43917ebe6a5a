"""Sweeps: many configs, run as few batched array computations as their structure allows.

A sweep is a base config plus a ``sweep:`` part (or ``-p KEY=VALUES`` flags) that expands into a
list of configs (``grid``, ``zip`` or ``random``). Configs that differ only in numbers the engine
can hold per run (learning rate, start point, numeric optimizer options, clipping threshold) share
one batch: their values become arrays along the batch axis and the whole batch is one engine run.
Configs that differ in structure (function, optimizer kind, backend, epochs...) form separate
batches. Each config keeps its own status and results.

A sweep directory, ``runs/sweep-<time>-<name>-<id>/``, holds:

    sweep.yaml    the base config, the declaration, every expanded config's overrides, the layout
                  of metrics.f64 and the declaration's fingerprint (resume refuses a changed one)
    results.csv   one row per finished config: its swept values, status, steps, value, params...
    metrics.f64   every config's recorded steps in one file of float64 records (see METRIC_COLUMNS)
    summary.json  counts by status, the best config, timings

Results are appended batch by batch, so a sweep stopped by Ctrl-C or killed outright resumes:
finished configs are kept, the others run again, and each config ends up in the results once.
"""

from __future__ import annotations

import csv
import hashlib
import itertools
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from .config import KEYS, NESTED_KEYS, Config, set_key, validate
from .errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, GdrunError, closest

SWEEP_KEYS = ("kind", "params", "n", "seed", "record_every")
KINDS = ("grid", "zip", "random")
RANGES = ("linspace", "logspace", "range")
DISTRIBUTIONS = ("uniform", "loguniform", "choice")
#: results that count as done; failed and interrupted configs run again on resume
DONE = ("converged", "max_epochs", "diverged")
#: columns of a metrics.f64 record, then ``p0 .. p{width-1}`` (the params, NaN-padded), then the rest
METRIC_HEAD = ("config", "step", "updates")
METRIC_TAIL = ("value", "grad_norm", "lr")
MAX_BATCH = 100_000


# ---------------------------------------------------------------------------- declaring


@dataclass(frozen=True)
class SweepSpec:
    kind: str = "grid"
    params: dict[str, Any] = field(default_factory=dict)  # key -> values (grid, zip) or a distribution
    n: int | None = None  # random: how many samples
    seed: int | None = None  # random: the sampler's seed
    record_every: int = 10  # metrics.f64 keeps every Nth step of every config (and its last)


def validate_sweep(raw: Any) -> SweepSpec:
    if isinstance(raw, SweepSpec):
        return raw
    if not isinstance(raw, dict):
        raise GdrunError(f"sweep must be a mapping with keys {', '.join(SWEEP_KEYS)}, got {raw!r}")
    for key in raw:
        if key not in SWEEP_KEYS:
            raise GdrunError(f"unknown key 'sweep.{key}'{closest(str(key), SWEEP_KEYS)}; sweep keys: {', '.join(SWEEP_KEYS)}")
    kind = raw.get("kind", "grid")
    if kind not in KINDS:
        raise GdrunError(f"sweep.kind must be one of {', '.join(KINDS)}, got {kind!r}{closest(str(kind), KINDS)}")
    params = raw.get("params") or {}
    if not isinstance(params, dict) or not params:
        raise GdrunError("sweep.params must map at least one config key to its values, e.g. {lr: [0.01, 0.1]}")
    for key in params:
        _check_key(str(key))
    n = raw.get("n")
    if kind == "random" and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise GdrunError(f"a random sweep needs sweep.n, a positive number of samples, got {n!r}")
    if kind != "random" and n is not None:
        raise GdrunError("sweep.n is for random sweeps; a grid or zip takes every listed value")
    seed = raw.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise GdrunError(f"sweep.seed must be a non-negative integer, got {seed!r}")
    every = raw.get("record_every", 10)
    if isinstance(every, bool) or not isinstance(every, int) or every < 1:
        raise GdrunError(f"sweep.record_every must be a positive integer, got {every!r}")
    spec = SweepSpec(kind, {str(k): v for k, v in params.items()}, n, seed, every)
    expand(spec)  # every value list and distribution is checked now
    return spec


def _check_key(key: str) -> None:
    head, dot, rest = key.partition(".")
    if dot and head in NESTED_KEYS and rest:
        return
    if key not in KEYS or key in ("sweep",):
        raise GdrunError(f"cannot sweep '{key}': not a config key{closest(key, KEYS)}")


def parse_param_flag(text: str) -> tuple[str, Any]:
    """``-p lr=0.001,0.01`` / ``-p lr=logspace(-4,0,100)`` / ``-p optimizer=sgd,adam`` -> (key, values)."""
    import yaml

    key, sep, values = text.partition("=")
    key = key.strip()
    if not sep or not key or not values.strip():
        raise GdrunError(f"-p needs KEY=VALUES, e.g. lr=0.01,0.1 or lr=logspace(-4,0,9); got {text!r}")
    _check_key(key)
    values = values.strip()
    for name in RANGES:
        if values.startswith(f"{name}(") and values.endswith(")"):
            inner = values[len(name) + 1 : -1]
            try:
                args = [float(a) for a in inner.split(",")]
            except ValueError:
                raise GdrunError(f"-p {key}: {name}() takes numbers, got {values!r}") from None
            return key, {name: args}
    from .config import split_top_level

    parsed = []
    for item in split_top_level(values):
        try:
            parsed.append(yaml.safe_load(item))
        except yaml.YAMLError:
            parsed.append(item)
    return key, parsed


def values_of(key: str, spec: Any) -> list:
    """The values a grid or zip takes for ``key``: a list, or linspace/logspace/range."""
    if isinstance(spec, list):
        if not spec:
            raise GdrunError(f"sweep.params.{key} is an empty list")
        return spec
    if isinstance(spec, dict) and len(spec) == 1 and next(iter(spec)) in RANGES:
        name, args = next(iter(spec.items()))
        if not isinstance(args, list) or not all(isinstance(a, (int, float)) and not isinstance(a, bool) for a in args):
            raise GdrunError(f"sweep.params.{key}.{name} must be a list of numbers, got {args!r}")
        if name in ("linspace", "logspace"):
            if len(args) != 3 or args[2] != int(args[2]) or args[2] < 1:
                raise GdrunError(f"sweep.params.{key}.{name} needs [start, stop, count], got {args!r}")
            grid = np.linspace(args[0], args[1], int(args[2])) if name == "linspace" else np.logspace(args[0], args[1], int(args[2]))
            return grid.tolist()
        if len(args) not in (2, 3) or any(a != int(a) for a in args) or (len(args) == 3 and args[2] == 0):
            raise GdrunError(f"sweep.params.{key}.range needs whole numbers [start, stop(, step)], got {args!r}")
        return list(range(*(int(a) for a in args)))
    if isinstance(spec, dict):
        raise GdrunError(f"sweep.params.{key} must be a list or one of {', '.join(RANGES)}, got {spec!r}")
    return [spec]


def _sample(key: str, spec: Any, rng: np.random.Generator, n: int) -> list:
    if isinstance(spec, list):
        spec = {"choice": spec}
    if not isinstance(spec, dict) or len(spec) != 1 or next(iter(spec)) not in DISTRIBUTIONS + RANGES:
        raise GdrunError(f"sweep.params.{key} must be a list or one of {', '.join(DISTRIBUTIONS)}, got {spec!r}")
    name, args = next(iter(spec.items()))
    if name in RANGES:
        return [values_of(key, spec)[i] for i in rng.integers(0, len(values_of(key, spec)), size=n)]
    if name == "choice":
        if not isinstance(args, list) or not args:
            raise GdrunError(f"sweep.params.{key}.choice must be a non-empty list")
        return [args[i] for i in rng.integers(0, len(args), size=n)]
    if not (isinstance(args, list) and len(args) == 2 and all(isinstance(a, (int, float)) for a in args) and args[0] < args[1]):
        raise GdrunError(f"sweep.params.{key}.{name} needs [low, high] with low < high, got {args!r}")
    if name == "loguniform":
        if args[0] <= 0:
            raise GdrunError(f"sweep.params.{key}.loguniform needs a positive low bound, got {args[0]}")
        return np.exp(rng.uniform(math.log(args[0]), math.log(args[1]), size=n)).tolist()
    return rng.uniform(args[0], args[1], size=n).tolist()


def expand(spec: SweepSpec) -> list[dict[str, Any]]:
    """Each config's overrides, in a fixed order (grid: the last key varies fastest)."""
    keys = list(spec.params)
    if spec.kind == "random":
        rng = np.random.default_rng(spec.seed if spec.seed is not None else 0)
        columns = [_sample(k, spec.params[k], rng, spec.n) for k in keys]
        return [dict(zip(keys, row)) for row in zip(*columns)]
    lists = [values_of(k, spec.params[k]) for k in keys]
    if spec.kind == "zip":
        lengths = {k: len(v) for k, v in zip(keys, lists)}
        if len(set(lengths.values())) > 1:
            raise GdrunError(f"a zip sweep needs lists of one length, got {', '.join(f'{k}: {n}' for k, n in lengths.items())}")
        return [dict(zip(keys, row)) for row in zip(*lists)]
    return [dict(zip(keys, row)) for row in itertools.product(*lists)]


def expanded_configs(base: dict[str, Any], spec: SweepSpec) -> list[tuple[dict[str, Any], Config]]:
    """(overrides, validated config) for every config of the sweep; an invalid one is an error
    naming its number and overrides, before anything runs."""
    out = []
    for i, overrides in enumerate(expand(spec)):
        raw = dict(base)
        for key, value in overrides.items():
            raw = set_key(raw, key, value)
        try:
            config = validate(raw)
        except GdrunError as exc:
            raise GdrunError(f"sweep config {i} ({_describe(overrides)}): {exc}") from None
        if config.init_range is not None and config.seed is None:
            config = _replace(config, seed=i)  # each config's random start is fixed by its number
        out.append((overrides, config))
    return out


def _replace(config: Config, **changes) -> Config:
    from dataclasses import replace

    return replace(config, **changes)


def _describe(overrides: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in overrides.items())


def fingerprint(base: dict[str, Any], spec: SweepSpec, expanded: list[dict[str, Any]]) -> str:
    text = json.dumps([base, spec.__dict__, expanded], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# ---------------------------------------------------------------------------- batching

#: config keys whose value may differ between the runs of one batch
BATCHED_KEYS = ("lr", "init", "init_range", "name", "every", "clip_norm", "clip_value")


def structure(config: Config) -> str:
    """What must be equal for configs to share a batch: every key but BATCHED_KEYS, numeric
    optimizer options and (for minimize, where it only draws the start point) the seed."""
    options = sorted((k, None if _numeric(v) else v) for k, v in config.optimizer_options.items())
    clip = "norm" if config.clip_norm is not None else "value" if config.clip_value is not None else None
    seed = config.seed if config.fit is not None else None
    return repr((config.function, config.fit, config.dim, config.backend, config.device, config.dtype,
                 config.optimizer, options, config.schedule, clip, config.epochs, config.stop, seed))  # fmt: skip


def _numeric(value: Any) -> bool:
    if isinstance(value, (tuple, list)):
        return all(_numeric(v) for v in value)
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass
class BatchJob:
    """Configs that run as one engine call (picklable: it may run in another process)."""

    batch: int
    ids: list[int]
    configs: list[Config]  # validated (a Config pickles)
    record_every: int
    width: int  # params columns in metrics records
    base_dir: str | None = None


@dataclass
class BatchResult:
    batch: int
    ids: list[int]
    names: tuple[str, ...]
    status: list[str]
    reason: list[str]
    iterations: list[int]
    updates: list[int]
    value: list[float]
    grad_norm: list[float]
    params: list[dict[str, float]]
    metrics: np.ndarray  # (records, len(METRIC_HEAD) + width + len(METRIC_TAIL)) float64
    wall_time_s: float


def make_batches(pending: list[tuple[int, Config]], record_every: int, width: int, base_dir: str | None,
                 max_batch: int = MAX_BATCH) -> list[BatchJob]:  # fmt: skip
    groups: dict[str, list[tuple[int, Config]]] = {}
    for item in pending:
        groups.setdefault(structure(item[1]), []).append(item)
    jobs = []
    for members in groups.values():
        for start in range(0, len(members), max_batch):
            chunk = members[start : start + max_batch]
            jobs.append(BatchJob(len(jobs), [i for i, _ in chunk], [c for _, c in chunk], record_every, width, base_dir))
    return jobs


def run_batch(job: BatchJob, interrupt=None) -> BatchResult:
    """Run one batch: its configs share everything but per-run numbers."""
    from . import engine
    from .optim import get_clip, get_optimizer, per_run, per_run_options
    from .runner import initial_point, prepare

    started = time.perf_counter()
    configs = job.configs
    base = Path(job.base_dir) if job.base_dir else None
    first = prepare(configs[0], base)
    names, backend, fit = first.names, first.backend, first.fit
    default = first.function.default_init() if first.function is not None else [0.0] * len(names)
    extra = tuple(fit.frozen) if fit is not None else ()
    x0 = np.stack([initial_point(c, names, default, extra) for c in configs])
    lr = np.array([[c.lr] for c in configs])
    optimizer = get_optimizer(configs[0].optimizer, **per_run_options([c.optimizer_options for c in configs]))
    clip = None
    if configs[0].clip_norm is not None or configs[0].clip_value is not None:
        mode = "norm" if configs[0].clip_norm is not None else "value"
        values = [c.clip_norm if mode == "norm" else c.clip_value for c in configs]
        clip = get_clip(mode, per_run(values))
    recorder = _Recorder(job.ids, job.record_every, len(names), job.width)
    stop = configs[0].stop
    labels = ("epoch", "loss") if fit is not None else ("step", "value")
    outcome = engine.run(first.problem, backend.asarray(x0), optimizer, lr, configs[0].epochs, backend,
                         engine.StopRule(stop.grad_norm_below, stop.value_below, stop.diverge_above), (recorder,),
                         interrupt, names, first.schedule, clip, labels)  # fmt: skip
    metrics = recorder.finish(outcome)
    params = []
    for b in range(len(configs)):
        trained = dict(zip(names, outcome.x[b].tolist()))
        params.append(fit.all_params(trained) if fit is not None else trained)
    return BatchResult(job.batch, job.ids, names, outcome.status, outcome.reason, outcome.iterations.tolist(),
                       outcome.updates.tolist(), outcome.value.tolist(), outcome.grad_norm.tolist(), params, metrics,
                       time.perf_counter() - started)  # fmt: skip


class _Recorder:
    """Keeps every ``record_every``-th row of every run, and each run's last row."""

    def __init__(self, ids: list[int], every: int, n: int, width: int):
        self.ids = np.asarray(ids, dtype=np.float64)
        self.every, self.n, self.width = every, n, width
        self.chunks: list[np.ndarray] = []
        self.last_lr = np.full(len(ids), np.nan)

    def _records(self, t_idx, b_idx, steps, updates, x, value, grad_norm, lr) -> np.ndarray:
        out = np.full((len(t_idx), len(METRIC_HEAD) + self.width + len(METRIC_TAIL)), np.nan)
        out[:, 0] = self.ids[b_idx]
        out[:, 1] = steps
        out[:, 2] = updates
        out[:, 3 : 3 + self.n] = x
        out[:, -3], out[:, -2], out[:, -1] = value, grad_norm, lr
        return out

    def on_block(self, block) -> None:
        T = len(block.steps)
        if T == 0:
            return
        valid = np.arange(T)[:, None] <= block.last[None, :]
        t_idx, b_idx = np.nonzero(valid & (block.steps % self.every == 0)[:, None])
        self.chunks.append(self._records(t_idx, b_idx, block.steps[t_idx], block.updates[t_idx], block.x[t_idx, b_idx],
                                         block.value[t_idx, b_idx], block.grad_norm[t_idx, b_idx],
                                         block.lr[t_idx, b_idx]))  # fmt: skip
        members = np.flatnonzero(block.last >= 0)
        self.last_lr[members] = block.lr[block.last[members], members]

    def finish(self, outcome) -> np.ndarray:
        """All records, with each run's final row added where every-N skipped it."""
        final = np.flatnonzero(outcome.seen & (outcome.iterations % self.every != 0))
        if len(final):
            self.chunks.append(self._records(np.zeros(len(final), int), final, outcome.iterations[final],
                                             outcome.updates[final], outcome.x[final], outcome.value[final],
                                             outcome.grad_norm[final], self.last_lr[final]))  # fmt: skip
        if not self.chunks:
            return np.empty((0, len(METRIC_HEAD) + self.width + len(METRIC_TAIL)))
        return np.concatenate(self.chunks)


class LocalExecutor:
    """Batches one after another in this process (the default)."""

    name = "local"

    def batch_limit(self, pending: int) -> int:
        """The most configs one batch may hold (one batch is one engine call)."""
        return MAX_BATCH

    def run(self, jobs: list[BatchJob], interrupt) -> Iterator[BatchResult]:
        for job in jobs:
            if interrupt.requested:
                return
            yield run_batch(job, interrupt)

    def close(self) -> None:
        pass


def failed_result(job: BatchJob, error: BaseException) -> BatchResult:
    """A batch that could not run: each of its configs is 'failed' with the error."""
    n = len(job.ids)
    reason = f"{type(error).__name__}: {error}"
    return BatchResult(job.batch, job.ids, (), ["failed"] * n, [reason] * n, [0] * n, [0] * n, [math.nan] * n,
                       [math.nan] * n, [{}] * n, np.empty((0, len(METRIC_HEAD) + job.width + len(METRIC_TAIL))), 0.0)  # fmt: skip


# ---------------------------------------------------------------------------- the sweep directory

SWEEP_FILE = "sweep.yaml"
RESULTS_FILE = "results.csv"
METRICS_FILE = "metrics.f64"
SUMMARY_FILE = "summary.json"


class SweepDir:
    """Writes (and reads back) one sweep's directory. Only the main process writes."""

    def __init__(self, path: Path, swept: list[str], param_names: list[str], width: int):
        self.path = path
        self.swept = swept
        self.param_names = param_names
        self.width = width
        self.columns = ["id", *swept, "status", "reason", "steps", "updates", "value", "grad_norm",
                        *(f"param.{p}" for p in param_names), "batch", "batch_time_s"]  # fmt: skip

    def start(self, resume_done: dict[int, dict[str, str]]) -> None:
        """Write results.csv afresh (keeping finished rows) and drop other configs' metrics."""
        rows = [resume_done[i] for i in sorted(resume_done)]
        with open(self.path / RESULTS_FILE, "w", newline="") as f:
            writer = csv.DictWriter(f, self.columns)
            writer.writeheader()
            writer.writerows(rows)
        metrics_path = self.path / METRICS_FILE
        if metrics_path.exists():
            records = read_metrics_file(metrics_path, self.width)
            keep = np.isin(records[:, 0], np.array(sorted(resume_done), dtype=np.float64))
            tmp = metrics_path.with_suffix(".tmp")
            records[keep].tofile(tmp)
            os.replace(tmp, metrics_path)
        else:
            metrics_path.touch()

    def append(self, result: BatchResult, overrides: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Add a finished batch: metrics first, then its result rows (a config counts as done only
        once its row is written, so a crash in between only means it runs again)."""
        with open(self.path / METRICS_FILE, "ab") as f:
            np.ascontiguousarray(result.metrics, dtype=np.float64).tofile(f)
            f.flush()
            os.fsync(f.fileno())
        rows = []
        for b, i in enumerate(result.ids):
            row: dict[str, Any] = {"id": i, **{k: _cell(overrides[i].get(k)) for k in self.swept}}
            row.update(status=result.status[b], reason=result.reason[b], steps=result.iterations[b],
                       updates=result.updates[b], value=repr(float(result.value[b])),
                       grad_norm=repr(float(result.grad_norm[b])), batch=result.batch,
                       batch_time_s=f"{result.wall_time_s:.6f}")  # fmt: skip
            for name in self.param_names:
                value = result.params[b].get(name)
                row[f"param.{name}"] = "" if value is None else repr(float(value))
            rows.append(row)
        with open(self.path / RESULTS_FILE, "a", newline="") as f:
            csv.DictWriter(f, self.columns).writerows(rows)
            f.flush()
            os.fsync(f.fileno())
        return rows


def _cell(value: Any) -> str:
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value)
    return "" if value is None else str(value)


def read_metrics_file(path: Path, width: int) -> np.ndarray:
    """metrics.f64 as (records, columns); a record cut short by a crash is dropped."""
    raw = np.fromfile(path, dtype=np.float64)
    size = len(METRIC_HEAD) + width + len(METRIC_TAIL)
    whole = len(raw) // size * size
    return raw[:whole].reshape(-1, size)


def read_results(path: Path) -> list[dict[str, str]]:
    if not (path / RESULTS_FILE).exists():
        return []
    with open(path / RESULTS_FILE, newline="") as f:
        return list(csv.DictReader(f))


# ---------------------------------------------------------------------------- running a sweep


@dataclass
class SweepOptions:
    runs_dir: Path = Path("runs")
    name: str | None = None
    resume: str | None = None  # a sweep directory, or a sweep name (its latest directory)
    executor: Any = None  # LocalExecutor() when None
    fail_fast: bool = False
    max_failures: int | None = None
    base_dir: str | None = None  # where the config file lives (relative data paths)
    command: tuple[str, ...] = ()


def plan(base: dict[str, Any], spec: SweepSpec) -> list[dict[str, Any]]:
    """The expanded configs, validated, without running anything (``gdrun sweep --plan``)."""
    return [{"id": i, **overrides} for i, (overrides, _) in enumerate(expanded_configs(base, spec))]


def find_sweep(runs_dir: Path, target: str) -> Path:
    path = Path(target)
    if (path / SWEEP_FILE).is_file():
        return path
    matches = sorted(p for p in runs_dir.glob(f"sweep-*-{target}-*") if (p / SWEEP_FILE).is_file())
    if not matches:
        raise GdrunError(f"no sweep to resume at {target!r} (neither a sweep directory nor a sweep name under {runs_dir})")
    return matches[-1]


def run_sweep(base: dict[str, Any], spec: SweepSpec, options: SweepOptions, progress=None) -> tuple[dict, int]:
    """Run (or resume) a sweep; returns its summary and exit code."""
    import yaml

    from .engine import Interrupt
    from .runs import create_run_dir, write_json_atomic

    items = expanded_configs(base, spec)
    overrides = [o for o, _ in items]
    configs = [c for _, c in items]
    print_key = fingerprint(base, spec, overrides)
    param_names, width = _param_layout(configs, options.base_dir)
    swept = list(spec.params)
    done: dict[int, dict[str, str]] = {}
    if options.resume is not None:
        path = find_sweep(Path(options.runs_dir), options.resume)
        recorded = yaml.load((path / SWEEP_FILE).read_text(), Loader=_yaml_loader())
        if recorded.get("fingerprint") != print_key:
            raise GdrunError(f"the sweep declaration changed since {path} was made; resume refuses to mix them "
                             "(run it as a new sweep, or restore the declaration)")  # fmt: skip
        done = {int(r["id"]): r for r in read_results(path) if r["status"] in DONE}
    else:
        name = options.name or base.get("name") or "sweep"
        path = create_run_dir(options.runs_dir, f"{name}", prefix="sweep-")
        (path / SWEEP_FILE).write_text(yaml.dump({
            "name": name, "base": json.loads(json.dumps(base, default=str)), "sweep": {**spec.__dict__}, "configs": overrides,
            "fingerprint": print_key,
            "metrics": {"file": METRICS_FILE, "dtype": "float64", "columns": [*METRIC_HEAD,
                        *(f"p{i}" for i in range(width)), *METRIC_TAIL], "params": "p0.. in each config's order"},
            "param_names": param_names, "command": " ".join(options.command),
        }, Dumper=_yaml_dumper(), sort_keys=False))  # fmt: skip
    directory = SweepDir(path, swept, param_names, width)
    directory.start(done)
    pending = [(i, c) for i, c in enumerate(configs) if i not in done]
    executor = options.executor or LocalExecutor()
    jobs = make_batches(pending, spec.record_every, width, options.base_dir, executor.batch_limit(len(pending)))
    counts = {s: 0 for s in ("converged", "max_epochs", "diverged", "failed", "interrupted")}
    for row in done.values():
        counts[row["status"]] += 1
    started = time.perf_counter()
    summary = {"status": "running", "sweep_dir": str(path), "configs": len(configs), "resumed": len(done),
               "batches": len(jobs), "executor": executor.name}  # fmt: skip
    write_json_atomic(path / SUMMARY_FILE, summary)
    stopped_early = None
    with Interrupt() as interrupt:
        try:
            for result in executor.run(jobs, interrupt):
                directory.append(result, overrides)
                for status in result.status:
                    counts[status] += 1
                if progress is not None:
                    progress(len(result.ids), counts)
                if counts["failed"] and (options.fail_fast or (options.max_failures is not None
                                                               and counts["failed"] > options.max_failures)):  # fmt: skip
                    stopped_early = "fail-fast" if options.fail_fast else f"more than {options.max_failures} failures"
                    break
        finally:
            executor.close()
    results = read_results(path)
    finished = sum(counts[s] for s in DONE)
    interrupted = interrupt.requested and finished + counts["failed"] < len(configs)
    summary.update(
        status="interrupted" if interrupted else "stopped" if stopped_early else "completed",
        stopped_because=stopped_early, counts=counts, wall_time_s=time.perf_counter() - started,
        best=_best(results),
    )  # fmt: skip
    write_json_atomic(path / SUMMARY_FILE, summary)
    code = EXIT_INTERRUPTED if interrupted else EXIT_FAILED if counts["failed"] else EXIT_OK
    return summary, code


def _yaml_dumper():
    """libyaml's safe dumper when PyYAML has it: a sweep.yaml can list 100,000 configs."""
    import yaml

    return getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def _yaml_loader():
    import yaml

    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _param_layout(configs: list[Config], base_dir: str | None) -> tuple[list[str], int]:
    """The union of parameter names (for results.csv) and the widest config (for metrics)."""
    from .runner import prepare

    names: list[str] = []
    width = 0
    seen: set[str] = set()
    for config in configs:
        key = structure(config)
        if key in seen:
            continue
        seen.add(key)
        prepared = prepare(config, Path(base_dir) if base_dir else None)
        params = list(prepared.fit.all_params(dict.fromkeys(prepared.names, 0.0))) if prepared.fit else list(prepared.names)
        names += [p for p in params if p not in names]
        width = max(width, len(prepared.names))
    return names, width


def _best(rows: list[dict[str, str]]) -> dict[str, Any] | None:
    scored = [(float(r["value"]), r) for r in rows if r["status"] in ("converged", "max_epochs") and r["value"] not in ("", "nan")]
    if not scored:
        return None
    value, row = min(scored, key=lambda t: t[0])
    return {"id": int(row["id"]), "value": value, "status": row["status"]}


def open_config(sweep_dir: Path, config_id: int):
    """One config of a sweep as an ordinary run record (what ``gdrun show SWEEP_DIR/17`` prints)."""
    import yaml

    from .runs import RunRecord

    meta = yaml.load((sweep_dir / SWEEP_FILE).read_text(), Loader=_yaml_loader())
    if not 0 <= config_id < len(meta["configs"]):
        raise GdrunError(f"{sweep_dir} has configs 0 to {len(meta['configs']) - 1}, not {config_id}")
    row = next((r for r in read_results(sweep_dir) if int(r["id"]) == config_id), None)
    if row is None:
        raise GdrunError(f"config {config_id} of {sweep_dir} has not run yet (resume the sweep to run it)")
    raw = dict(meta["base"])
    for key, value in meta["configs"][config_id].items():
        raw = set_key(raw, key, value)
    width = len(meta["metrics"]["columns"]) - len(METRIC_HEAD) - len(METRIC_TAIL)
    records = read_metrics_file(sweep_dir / METRICS_FILE, width)
    mine = records[records[:, 0] == config_id]
    params = {k[len("param."):]: float(v) for k, v in row.items() if k.startswith("param.") and v != ""}
    n = len(params) - len((raw.get("fit") or {}).get("freeze") or [])
    metrics = {"step": mine[:, 1], "updates": mine[:, 2], "value": mine[:, -3], "grad_norm": mine[:, -2], "lr": mine[:, -1]}
    trainable = [k for k in params if k not in ((raw.get("fit") or {}).get("freeze") or [])]
    for j, name in enumerate(trainable[:n]):
        metrics[name] = mine[:, 3 + j]
    summary = {
        "status": row["status"], "reason": row["reason"], "iterations": int(row["steps"]), "updates": int(row["updates"]),
        "params": params, "value": float(row["value"]), "grad_norm": float(row["grad_norm"]),
        "wall_time_s": float(row["batch_time_s"]), "run_dir": f"{sweep_dir}/{config_id}",
        "function": raw.get("function") or (raw.get("fit") or {}).get("model"), "kind": "fit" if raw.get("fit") else "minimize",
        "loss": (raw.get("fit") or {}).get("loss", "mse"), "frozen": {k: params[k] for k in ((raw.get("fit") or {}).get("freeze") or [])},
    }  # fmt: skip
    return RunRecord(Path(f"{sweep_dir}/{config_id}"), raw, summary, metrics)
