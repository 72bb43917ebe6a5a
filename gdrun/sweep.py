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
    .lock         held (flock) by the one process running or resuming the sweep; the OS lets go
                  when that process ends, however it ends

Results are appended batch by batch, whole rows only, so a sweep stopped by Ctrl-C, killed
outright or stopped by a full disk resumes: finished configs are kept, the others run again, and
each config ends up in the results once. A second run or resume of a sweep that is still running
is refused (one line naming the process that holds it) and writes nothing.
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from .config import KEYS, NESTED_KEYS, Config, set_key, suggest_key, validate
from .errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, GdrunError, closest
from .inputs import MAX_EPOCHS, MAX_STATE, MAX_SWEEP_CONFIGS, number, show, yaml_value

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
        raise GdrunError(f"sweep must be a mapping with keys {', '.join(SWEEP_KEYS)}, got {show(raw)}")
    for key in raw:
        if key not in SWEEP_KEYS:
            raise GdrunError(f"unknown key 'sweep.{str(key)[:60]}'{closest(str(key), SWEEP_KEYS)}; sweep keys: {', '.join(SWEEP_KEYS)}")
    kind = raw.get("kind", "grid")
    if not isinstance(kind, str) or kind not in KINDS:
        raise GdrunError(f"sweep.kind must be one of {', '.join(KINDS)}, got {show(kind)}{closest(str(kind), KINDS)}")
    params = raw.get("params") or {}
    if not isinstance(params, dict) or not params:
        raise GdrunError("sweep.params must map at least one config key to its values, e.g. {lr: [0.01, 0.1]}")
    for key in params:
        _check_key(str(key))
    n = raw.get("n")
    if kind == "random":
        if n is None:
            raise GdrunError("a random sweep needs sweep.n, a positive number of samples")
        n = number("sweep.n", n, integer=True, low=1, high=MAX_SWEEP_CONFIGS)
    if kind != "random" and n is not None:
        raise GdrunError("sweep.n is for random sweeps; a grid or zip takes every listed value")
    seed = raw.get("seed")
    if seed is not None:
        seed = number("sweep.seed", seed, integer=True, low=0, high=2**64 - 1)
    every = number("sweep.record_every", raw.get("record_every", 10), integer=True, low=1, high=MAX_EPOCHS)
    spec = SweepSpec(kind, {str(k): v for k, v in params.items()}, n, seed, every)
    expand(spec)  # every value list and distribution is checked now
    return spec


def _check_key(key: str) -> None:
    head, dot, rest = key.partition(".")
    if dot and head in NESTED_KEYS and rest:
        return
    if key not in KEYS or key in ("sweep",):
        raise GdrunError(f"cannot sweep '{key[:60]}': not a config key{suggest_key(key)}")


def parse_param_flag(text: str) -> tuple[str, Any]:
    """``-p lr=0.001,0.01`` / ``-p lr=logspace(-4,0,100)`` / ``-p optimizer=sgd,adam`` -> (key, values)."""
    from .config import split_top_level
    key, sep, values = text.partition("=")
    key = key.strip()
    if not sep or not key or not values.strip():
        raise GdrunError(f"-p needs KEY=VALUES, e.g. lr=0.01,0.1 or lr=logspace(-4,0,9); got {show(text)}")
    _check_key(key)
    values = values.strip()
    for name in RANGES:
        if values.startswith(f"{name}(") and values.endswith(")"):
            inner = values[len(name) + 1 : -1]
            try:
                args = [number(f"-p {key}: {name}()", a) for a in inner.split(",")]
            except GdrunError:
                raise GdrunError(f"-p {key}: {name}() takes numbers, got {show(values)}") from None
            return key, {name: args}
    return key, [yaml_value(item, f"-p {key}") for item in split_top_level(values)]


def values_of(key: str, spec: Any) -> list:
    """The values a grid or zip takes for ``key``: a list, or linspace/logspace/range."""
    if isinstance(spec, list):
        if not spec:
            raise GdrunError(f"sweep.params.{key} is an empty list")
        return spec
    if isinstance(spec, dict) and len(spec) == 1 and next(iter(spec)) in RANGES:
        name, args = next(iter(spec.items()))
        where = f"sweep.params.{key}.{name}"
        if name in ("linspace", "logspace"):
            args = _numbers(where, args, 3, "[start, stop, count]")
            if args[2] != int(args[2]) or args[2] < 1:
                raise GdrunError(f"{where} needs [start, stop, count] with a whole count of at least 1, got {show(args)}")
            _at_most(where, args[2])
            grid = np.linspace(args[0], args[1], int(args[2])) if name == "linspace" else np.logspace(args[0], args[1], int(args[2]))
            return grid.tolist()
        args = _numbers(where, args, (2, 3), "whole numbers [start, stop(, step)]")
        if any(a != int(a) for a in args) or (len(args) == 3 and args[2] == 0):
            raise GdrunError(f"{where} needs whole numbers [start, stop(, step)], got {show(args)}")
        values = range(*(int(a) for a in args))
        _at_most(where, len(values))
        return list(values)
    if isinstance(spec, dict):
        raise GdrunError(f"sweep.params.{key} must be a list or one of {', '.join(RANGES)}, got {show(spec)}")
    return [spec]


def _numbers(where: str, args: Any, count: int | tuple[int, ...], form: str) -> list[float]:
    """The arguments of a range or distribution: a list of ``count`` numbers (numeric text too)."""
    counts = count if isinstance(count, tuple) else (count,)
    if not isinstance(args, list) or len(args) not in counts:
        raise GdrunError(f"{where} needs {form}, got {show(args)}")
    return [number(f"{where}[{i}]", a) for i, a in enumerate(args)]


def _at_most(where: str, count: float) -> None:
    if count > MAX_SWEEP_CONFIGS:
        raise GdrunError(f"{where} makes {count:,.0f} values, more than the limit of {MAX_SWEEP_CONFIGS:,} configs")


def _sample(key: str, spec: Any, rng: np.random.Generator, n: int) -> list:
    if isinstance(spec, list):
        spec = {"choice": spec}
    if not isinstance(spec, dict) or len(spec) != 1 or next(iter(spec)) not in DISTRIBUTIONS + RANGES:
        raise GdrunError(f"sweep.params.{key} must be a list or one of {', '.join(DISTRIBUTIONS)}, got {show(spec)}")
    name, args = next(iter(spec.items()))
    if name in RANGES:
        values = values_of(key, spec)
        return [values[i] for i in rng.integers(0, len(values), size=n)]
    if name == "choice":
        if not isinstance(args, list) or not args:
            raise GdrunError(f"sweep.params.{key}.choice must be a non-empty list")
        return [args[i] for i in rng.integers(0, len(args), size=n)]
    low, high = _numbers(f"sweep.params.{key}.{name}", args, 2, "[low, high] with low < high")
    if not low < high:
        raise GdrunError(f"sweep.params.{key}.{name} needs [low, high] with low < high, got {show(args)}")
    if name == "loguniform":
        if low <= 0:
            raise GdrunError(f"sweep.params.{key}.loguniform needs a positive low bound, got {low:g}")
        return np.exp(rng.uniform(math.log(low), math.log(high), size=n)).tolist()
    if not math.isfinite(high - low):
        raise GdrunError(f"sweep.params.{key}.uniform is too wide to draw from: [{low:g}, {high:g}]")
    return rng.uniform(low, high, size=n).tolist()


def expand(spec: SweepSpec) -> list[dict[str, Any]]:
    """Each config's overrides, in a fixed order (grid: the last key varies fastest); at most
    MAX_SWEEP_CONFIGS of them."""
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
    total = math.prod(len(values) for values in lists)
    if total > MAX_SWEEP_CONFIGS:
        raise GdrunError(f"the sweep makes {total:,} configs ({' x '.join(str(len(v)) for v in lists)}), more than "
                         f"the limit of {MAX_SWEEP_CONFIGS:,}")  # fmt: skip
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
    width = max((_width(config) for _, config in out), default=1)
    if min(len(out), MAX_BATCH) * width > MAX_STATE:
        raise GdrunError(f"a batch of {min(len(out), MAX_BATCH):,} configs of {width:,} parameters holds more than "
                         f"{MAX_STATE:,} numbers (the limit of a batch's state); sweep fewer configs")  # fmt: skip
    return out


def _width(config: Config) -> int:
    """The parameters of one run of ``config``, as far as its keys tell (dim, init)."""
    if isinstance(config.init, (list, dict)):
        return len(config.init)
    return config.dim or 1


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
    optimizer options and (for minimize, where it only draws the start point) the seed. A fit's
    frozen parameters are constants of its model, so their values are part of the structure."""
    options = sorted((k, None if _numeric(v) else v) for k, v in config.optimizer_options.items())
    clip = "norm" if config.clip_norm is not None else "value" if config.clip_value is not None else None
    seed = config.seed if config.fit is not None else None
    frozen = None
    if config.fit is not None and config.fit.freeze:
        init = config.init
        frozen = [(k, init.get(k) if isinstance(init, dict) else init) for k in config.fit.freeze]
    return repr((config.function, config.let, config.fit, config.dim, config.backend, config.device, config.dtype,
                 config.optimizer, options, config.schedule, clip, config.epochs, config.stop, seed, frozen))  # fmt: skip


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
    diagnostics: list[dict[str, Any] | None] | None = None  # per config, with --explain (see gdrun.explain)


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
    first = prepare(configs[0], base, check_start=False)  # a bad start point is that run's verdict
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
    path = None
    if configs[0].explain:  # --explain: each config's rows and path points for its diagnostics
        from .explain import PathRecorder

        path = PathRecorder(len(configs), configs[0].epochs)
    stop = configs[0].stop
    labels = ("epoch", "loss") if fit is not None else ("step", "value")
    outcome = engine.run(first.problem, backend.asarray(x0), optimizer, lr, configs[0].epochs, backend,
                         engine.StopRule(stop.grad_norm_below, stop.value_below, stop.diverge_above),
                         (recorder,) + ((path,) if path else ()), interrupt, names, first.schedule, clip, labels)  # fmt: skip
    metrics = recorder.finish(outcome)
    diagnostics = None
    if path is not None:  # every config's diagnostics in one batched pass (None for one that computed no row)
        from .explain import explain_outcome

        by_member = explain_outcome(first, configs, list(x0), path, outcome)
        diagnostics = [by_member.get(b) for b in range(len(configs))]
    params = []
    for b in range(len(configs)):
        trained = dict(zip(names, outcome.x[b].tolist()))
        params.append(fit.all_params(trained) if fit is not None else trained)
    return BatchResult(job.batch, job.ids, names, outcome.status, outcome.reason, outcome.iterations.tolist(),
                       outcome.updates.tolist(), outcome.value.tolist(), outcome.grad_norm.tolist(), params, metrics,
                       time.perf_counter() - started, diagnostics)  # fmt: skip


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

    def __init__(self, path: Path, swept: list[str], param_names: list[str], width: int, explain: bool = False):
        from .explain import EXPLAIN_COLUMNS

        self.path = path
        self.swept = swept
        self.param_names = param_names
        self.width = width
        self.columns = ["id", *swept, "status", "reason", "steps", "updates", "value", "grad_norm",
                        *(f"param.{p}" for p in param_names), *(EXPLAIN_COLUMNS if explain else ()),
                        "batch", "batch_time_s"]  # fmt: skip

    def start(self, resume_done: dict[int, dict[str, str]]) -> None:
        """Write results.csv afresh (keeping finished rows) and drop other configs' metrics, each
        file atomically (a kill leaves the old one or the new one)."""
        from .runs import write_atomic

        rows = [resume_done[i] for i in sorted(resume_done)]
        text = io.StringIO(newline="")
        writer = csv.DictWriter(text, self.columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
        metrics_path = self.path / METRICS_FILE
        records = read_metrics_file(metrics_path, self.width)
        keep = np.isin(records[:, 0], np.array(sorted(resume_done), dtype=np.float64))
        write_atomic(metrics_path, np.ascontiguousarray(records[keep], dtype=np.float64).tobytes())
        write_atomic(self.path / RESULTS_FILE, text.getvalue())

    def append(self, result: BatchResult, overrides: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Add a finished batch: metrics first, then its result rows (a config counts as done only
        once its row is written, so a crash in between only means it runs again)."""
        from .runs import append_whole

        append_whole(self.path / METRICS_FILE, np.ascontiguousarray(result.metrics, dtype=np.float64).tobytes())
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
            if result.diagnostics is not None:
                from .explain import explain_cells

                row.update(explain_cells(result.diagnostics[b]))
            rows.append(row)
        text = io.StringIO(newline="")
        csv.DictWriter(text, self.columns).writerows(rows)
        append_whole(self.path / RESULTS_FILE, text.getvalue().encode())  # whole rows, or none
        return rows


def _cell(value: Any) -> str:
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value)
    return "" if value is None else str(value)


def read_metrics_file(path: Path, width: int) -> np.ndarray:
    """metrics.f64 as (records, columns); a record cut short by a crash is dropped, a missing
    file has none."""
    size = len(METRIC_HEAD) + width + len(METRIC_TAIL)
    if not path.is_file():
        return np.empty((0, size))
    raw = np.fromfile(path, dtype=np.float64)
    whole = len(raw) // size * size
    return raw[:whole].reshape(-1, size)


def read_results(path: Path) -> list[dict[str, str]]:
    """results.csv's rows; a row cut short by a kill (or a full disk, in older files) is dropped."""
    from .runs import read_small

    if not (path / RESULTS_FILE).is_file():
        return []
    try:
        text = read_small(path / RESULTS_FILE, limit=None)
    except (OSError, ValueError) as exc:
        raise GdrunError(f"cannot read {path / RESULTS_FILE}: {exc}") from None
    if not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    rows = csv.DictReader(io.StringIO(text, newline=""))
    return [r for r in rows if None not in r and None not in r.values() and str(r.get("id", "")).isdigit()
            and r.get("status") in (*DONE, "failed", "interrupted")]  # fmt: skip


def read_sweep_file(path: Path) -> dict[str, Any]:
    """A sweep directory's sweep.yaml, or a one-line error when it is missing, damaged or cut short."""
    import yaml

    from .runs import read_small

    file = path / SWEEP_FILE
    try:
        meta = yaml.load(read_small(file), Loader=_yaml_loader())
    except FileNotFoundError:
        raise GdrunError(f"{path} is not a sweep directory (no {SWEEP_FILE})") from None
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise GdrunError(f"{file} cannot be read ({type(exc).__name__}); the sweep cannot be resumed or shown") from None
    keys = ("base", "configs", "fingerprint", "metrics")
    if not isinstance(meta, dict) or not all(k in meta for k in keys) or not isinstance(meta["configs"], list) \
            or not isinstance(meta["base"], dict) or not isinstance(meta["metrics"], dict):  # fmt: skip
        raise GdrunError(f"{file} is incomplete or damaged (it needs {', '.join(keys)}); the sweep cannot be resumed or shown")
    return meta


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
    """The sweep directory ``target`` names: a path, or a sweep name (its latest directory)."""
    path = Path(target)
    if path.is_dir() and path.name.startswith("sweep-"):
        return path  # its sweep.yaml is checked when it is read, with a precise error
    if (path / SWEEP_FILE).is_file():
        return path
    matches = sorted(p for p in runs_dir.glob(f"sweep-*-{target}-*") if (p / SWEEP_FILE).is_file())
    if not matches:
        raise GdrunError(f"no sweep to resume at {target!r} (neither a sweep directory nor a sweep name under {runs_dir})")
    return matches[-1]


def run_sweep(base: dict[str, Any], spec: SweepSpec, options: SweepOptions, progress=None) -> tuple[dict, int]:
    """Run (or resume) a sweep; returns its summary and exit code. The sweep directory is locked
    for the whole run: a second run or resume of it at the same time is a one-line error."""
    import yaml

    from .runs import DirLock, create_run_dir, write_atomic

    rules = base.get("expect") or []
    rules = rules if isinstance(rules, list) else [rules]
    if any(isinstance(r, dict) and r.get("gradient") is not None for r in rules):
        raise GdrunError("expect.gradient is checked on single runs, not on the configs of a sweep")
    if any(isinstance(r, dict) and r.get("regime") is not None for r in rules) and base.get("explain") is not False:
        base = {**base, "explain": True}  # an expected regime needs each config's diagnostics
    items = expanded_configs(base, spec)
    overrides = [o for o, _ in items]
    configs = [c for _, c in items]
    print_key = fingerprint(base, spec, overrides)
    param_names, width = _param_layout(configs, options.base_dir)
    lock: DirLock | None = None
    if options.resume is not None:
        path = find_sweep(Path(options.runs_dir), options.resume)
        if not path.is_dir():
            raise GdrunError(f"no sweep to resume at {options.resume!r}")
        lock = DirLock(path)
    else:
        name = options.name or base.get("name") or "sweep"
        text = yaml.dump({
            "name": name, "base": json.loads(json.dumps(base, default=str)), "sweep": {**spec.__dict__}, "configs": overrides,
            "fingerprint": print_key,
            "metrics": {"file": METRICS_FILE, "dtype": "float64", "columns": [*METRIC_HEAD,
                        *(f"p{i}" for i in range(width)), *METRIC_TAIL], "params": "p0.. in each config's order"},
            "param_names": param_names, "command": " ".join(options.command),
        }, Dumper=_yaml_dumper(), sort_keys=False)  # fmt: skip

        def fill(building: Path, final: Path) -> None:
            nonlocal lock
            lock = DirLock(building)  # the lock goes with the directory when it is renamed
            write_atomic(building / SWEEP_FILE, text)

        path = create_run_dir(options.runs_dir, f"{name}", prefix="sweep-", fill=fill)
    try:
        return _run_locked(path, options.resume is not None, items, print_key, param_names, width, spec, options, progress)
    finally:
        if lock is not None:
            lock.release()


def _run_locked(path: Path, resuming: bool, items, print_key: str, param_names: list[str], width: int,
                spec: SweepSpec, options: SweepOptions, progress) -> tuple[dict, int]:  # fmt: skip
    from .engine import Interrupt
    from .runs import SUMMARY_RESERVE, disk_full_reason, is_disk_full, process_info, write_json

    overrides = [o for o, _ in items]
    configs = [c for _, c in items]
    done: dict[int, dict[str, str]] = {}
    if resuming:
        if read_sweep_file(path).get("fingerprint") != print_key:
            raise GdrunError(f"the sweep declaration changed since {path} was made; resume refuses to mix them "
                             "(run it as a new sweep, or restore the declaration)")  # fmt: skip
        done = {int(r["id"]): r for r in read_results(path) if r["status"] in DONE and int(r["id"]) < len(configs)}
    directory = SweepDir(path, list(spec.params), param_names, width, explain=bool(configs and configs[0].explain))
    counts = {s: 0 for s in ("converged", "max_epochs", "diverged", "failed", "interrupted")}
    for row in done.values():
        counts[row["status"]] += 1
    summary: dict[str, Any] = {"status": "running", "sweep_dir": str(path), "configs": len(configs), "resumed": len(done)}
    started = time.perf_counter()
    stopped_early = failure = None
    with Interrupt() as interrupt:
        try:
            directory.start(done)
            pending = [(i, c) for i, c in enumerate(configs) if i not in done]
            executor = options.executor or LocalExecutor()
            jobs = make_batches(pending, spec.record_every, width, options.base_dir, executor.batch_limit(len(pending)))
            summary.update(batches=len(jobs), executor=executor.name, counts=dict(counts), wall_time_s=0.0, **process_info())
            write_json(path / SUMMARY_FILE, summary, reserve=SUMMARY_RESERVE)
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
        except KeyboardInterrupt:  # a second Ctrl-C: stop at once, and still say so on disk
            interrupt.requested = True
        except OSError as exc:  # a full disk: stop; what is on disk stays whole, and a resume goes on from it
            if not is_disk_full(exc):
                raise
            failure = disk_full_reason(exc, getattr(exc, "filename", None))
    finished = sum(counts[s] for s in DONE)
    interrupted = interrupt.requested and finished + counts["failed"] < len(configs)
    summary.update(
        status="failed" if failure else "interrupted" if interrupted else "stopped" if stopped_early else "completed",
        stopped_because=stopped_early, counts=counts, wall_time_s=time.perf_counter() - started,
        best=_best(read_results(path)),
    )  # fmt: skip
    summary.setdefault("batches", 0)
    summary.setdefault("executor", (options.executor or LocalExecutor()).name)
    if failure:
        summary["reason"] = failure
        print(f"gdrun: error: {path}: {failure}", file=sys.stderr)
    try:
        write_json(path / SUMMARY_FILE, summary)
    except OSError as exc:
        if not is_disk_full(exc):
            raise
        if not failure:
            print(f"gdrun: error: {path}: {disk_full_reason(exc, SUMMARY_FILE)}", file=sys.stderr)
        failure = failure or disk_full_reason(exc, SUMMARY_FILE)
    code = EXIT_FAILED if failure else EXIT_INTERRUPTED if interrupted else EXIT_FAILED if counts["failed"] else EXIT_OK
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
        prepared = prepare(config, Path(base_dir) if base_dir else None, check_start=False)
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
    from .runs import RunRecord

    meta = read_sweep_file(sweep_dir)
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
    if row.get("regime"):  # the sweep ran with --explain
        summary["diagnostics"] = {"regime": row["regime"], "verdict": row.get("verdict")}
    return RunRecord(Path(f"{sweep_dir}/{config_id}"), raw, summary, metrics, kind="sweep config")


def open_sweep(sweep_dir: Path):
    """A sweep directory as a record: its summary (counts from results.csv while it is running or
    after it was cut off) and sweep.yaml; ``gdrun show`` prints it."""
    from .runs import RunRecord, process_gone, read_small

    meta = read_sweep_file(sweep_dir)
    try:
        summary = json.loads(read_small(sweep_dir / SUMMARY_FILE))
    except (OSError, ValueError):  # killed before its first summary
        summary = {"status": "running"}
    if not isinstance(summary, dict) or not isinstance(summary.get("status"), str):
        raise GdrunError(f"{sweep_dir / SUMMARY_FILE} is not a sweep summary")
    cut_off = False
    if summary["status"] == "running":
        rows = read_results(sweep_dir)
        counts = {s: 0 for s in ("converged", "max_epochs", "diverged", "failed", "interrupted")}
        for row in {r["id"]: r for r in rows}.values():
            counts[row["status"]] += 1
        cut_off = process_gone(summary) or "pid" not in summary
        where = "process " + f"{summary.get('pid')} on {summary.get('host')}" if "pid" in summary else "its process"
        summary = {"batches": 0, "executor": "?", "wall_time_s": 0.0, **summary, "counts": counts, "best": _best(rows),
                   "reason": f"cut off: {where} is gone; resume it with --resume" if cut_off else f"still running ({where})"}  # fmt: skip
    summary.update(sweep_dir=str(sweep_dir), configs=len(meta["configs"]))
    return RunRecord(sweep_dir, meta, summary, {}, cut_off, kind="sweep")
