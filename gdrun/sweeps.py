"""Sweeps: many configs, run as few batched array computations as their structure allows.

A sweep is a base config plus a ``sweep:`` part (or ``-p KEY=VALUES`` flags) that expands into
configs (``grid``, ``zip`` or ``random``), held as columns: each swept key's values once and one
integer per config (see :class:`Expansion`), so a million configs cost megabytes, not gigabytes. Configs that differ only in numbers the engine
can hold per run (learning rate, start point, numeric optimizer options, clipping threshold) share
one batch: their values become arrays along the batch axis and the whole batch is one engine run.
Configs that differ in structure (function, optimizer kind, backend, epochs...) form separate
batches. Each config keeps its own status and results.

A sweep directory, ``runs/sweep-<time>-<name>-<id>/``, holds:

    sweep.yaml    the base config, the declaration and the number of configs it makes (they are
                  expanded again from it), the layout of metrics.f64 and the declaration's
                  fingerprint (resume refuses a changed one)
    results.csv   one row per finished config: its swept values, status, steps, value, params...
    metrics.f64   every config's recorded steps in one file of float64 records (see METRIC_COLUMNS)
    summary.json  counts by status, the best config, timings
    .lock         held (flock) by the one process running or resuming the sweep; the OS lets go
                  when that process ends, however it ends

Batches of at most MAX_BATCH configs stream through: records are appended to metrics.f64 as they
are computed, results batch by batch, whole rows only, so a sweep stopped by Ctrl-C, killed
outright or stopped by a full disk resumes: finished configs are kept, the others run again, and
each config ends up in the results once. A second run or resume of a sweep that is still running
is refused (one line naming the process that holds it) and writes nothing.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import math
import os
import re
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
#: the statuses a sweep counts, in the order its summary lists them
COUNTED = (*DONE, "failed", "interrupted")
#: columns of a metrics.f64 record, then ``p0 .. p{width-1}`` (the params, NaN-padded), then the rest
METRIC_HEAD = ("config", "step", "updates")
METRIC_TAIL = ("value", "grad_norm", "lr")
#: configs per batch on a CPU: the arrays of a step then stay in the caches (measured with
#: benchmarks/bench_sweep.py --batch-sizes: 2-D rosenbrock with Adam costs ~70 ns per config-step
#: at 4k-16k configs, ~85 at 64k, ~105 at 256k, ~140 at 1k)
MAX_BATCH = 16_384


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


def _sample(key: str, spec: Any, rng: np.random.Generator, n: int) -> tuple[list, np.ndarray]:
    """``n`` draws for ``key``: the values drawn from and each draw's index into them."""
    if isinstance(spec, list):
        spec = {"choice": spec}
    if not isinstance(spec, dict) or len(spec) != 1 or next(iter(spec)) not in DISTRIBUTIONS + RANGES:
        raise GdrunError(f"sweep.params.{key} must be a list or one of {', '.join(DISTRIBUTIONS)}, got {show(spec)}")
    name, args = next(iter(spec.items()))
    if name in RANGES:
        values = values_of(key, spec)
        return values, rng.integers(0, len(values), size=n)
    if name == "choice":
        if not isinstance(args, list) or not args:
            raise GdrunError(f"sweep.params.{key}.choice must be a non-empty list")
        return args, rng.integers(0, len(args), size=n)
    low, high = _numbers(f"sweep.params.{key}.{name}", args, 2, "[low, high] with low < high")
    if not low < high:
        raise GdrunError(f"sweep.params.{key}.{name} needs [low, high] with low < high, got {show(args)}")
    if name == "loguniform":
        if low <= 0:
            raise GdrunError(f"sweep.params.{key}.loguniform needs a positive low bound, got {low:g}")
        return np.exp(rng.uniform(math.log(low), math.log(high), size=n)).tolist(), np.arange(n)
    if not math.isfinite(high - low):
        raise GdrunError(f"sweep.params.{key}.uniform is too wide to draw from: [{low:g}, {high:g}]")
    return rng.uniform(low, high, size=n).tolist(), np.arange(n)


@dataclass
class Expansion:
    """A sweep's configs as columns: for each swept key the values it takes (``values[key]``) and
    each config's index into them (``codes[key]``, one integer per config). Config ``i`` overrides
    the base with ``{key: values[key][codes[key][i]]}``; nothing holds a dict per config."""

    keys: list[str]
    values: dict[str, list]
    codes: dict[str, np.ndarray]
    size: int

    def overrides(self, i: int) -> dict[str, Any]:
        return {k: self.values[k][self.codes[k][i]] for k in self.keys}

    def as_list(self) -> list[dict[str, Any]]:
        """Every config's overrides (for a small sweep: ``--plan``, tests)."""
        return [self.overrides(i) for i in range(self.size)]

    def cells(self, key: str, ids: np.ndarray) -> list[str]:
        """results.csv's cells of ``key`` for configs ``ids`` (each value formatted once)."""
        text = [_cell(v) for v in self.values[key]]
        return [text[c] for c in self.codes[key][ids].tolist()]

    @classmethod
    def from_list(cls, configs: list[dict[str, Any]]) -> "Expansion":
        """The columns of a sweep.yaml that lists every config (written by gdrun before columns)."""
        keys = list(dict.fromkeys(k for c in configs for k in c))
        values = {k: [c.get(k) for c in configs] for k in keys}
        return cls(keys, values, {k: np.arange(len(configs)) for k in keys}, len(configs))


def expand(spec: SweepSpec) -> Expansion:
    """The sweep's configs as columns, in a fixed order (grid: the last key varies fastest); at
    most MAX_SWEEP_CONFIGS of them."""
    keys = list(spec.params)
    if spec.kind == "random":
        rng = np.random.default_rng(spec.seed if spec.seed is not None else 0)
        values, codes = {}, {}
        for k in keys:  # one key after the other from one generator: the draws are the declaration's
            values[k], codes[k] = _sample(k, spec.params[k], rng, spec.n)
        return Expansion(keys, values, codes, spec.n)
    lists = [values_of(k, spec.params[k]) for k in keys]
    if spec.kind == "zip":
        lengths = {k: len(v) for k, v in zip(keys, lists)}
        if len(set(lengths.values())) > 1:
            raise GdrunError(f"a zip sweep needs lists of one length, got {', '.join(f'{k}: {n}' for k, n in lengths.items())}")
        n = len(lists[0])
        return Expansion(keys, dict(zip(keys, lists)), {k: np.arange(n) for k in keys}, n)
    total = math.prod(len(values) for values in lists)
    if total > MAX_SWEEP_CONFIGS:
        raise GdrunError(f"the sweep makes {total:,} configs ({' x '.join(str(len(v)) for v in lists)}), more than "
                         f"the limit of {MAX_SWEEP_CONFIGS:,}")  # fmt: skip
    codes, stride = {}, total
    for k, values in zip(keys, lists):
        stride //= len(values)
        codes[k] = np.arange(total) // stride % len(values)
    return Expansion(keys, dict(zip(keys, lists)), codes, total)


def fingerprint(base: dict[str, Any], spec: SweepSpec) -> str:
    """What resume compares: the base config and the declaration (the configs follow from them)."""
    text = json.dumps([base, spec.__dict__], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# ---------------------------------------------------------------------------- validating

#: config fields that may differ between the runs of one batch (besides numeric optimizer options)
PER_RUN_FIELDS = ("lr", "init", "init_range", "seed", "clip_norm", "clip_value", "name", "every")
#: a per-run seed that is the config's own number (a drawn start point with no seed given)
OWN_NUMBER = -1


@dataclass
class Sweep:
    """A validated sweep: the base config, its expansion, and for every config its group (the
    configs that take the same structural values, validated through one representative) and its
    per-run values as columns. ``config(i)`` builds any one config's :class:`Config` on demand."""

    base: dict[str, Any]
    spec: SweepSpec
    expansion: Expansion
    group: np.ndarray  # (n,) each config's group
    reps: list[Config]  # each group's first config, validated
    per_run: dict[str, tuple[list, np.ndarray]]  # field (or optimizer_options.NAME) -> (values, each config's code)
    _dicts: dict[int, dict[str, Any]] = field(default_factory=dict, repr=False)  # each group's to_dict(), made once

    @property
    def size(self) -> int:
        return self.expansion.size

    def items(self) -> Iterator[tuple[dict[str, Any], Config]]:
        """(overrides, config) of every config, in order (built one at a time)."""
        for i in range(self.size):
            yield self.expansion.overrides(i), self.config(i)

    def values(self, i: int) -> dict[str, Any]:
        """Config ``i`` as ``Config.to_dict()`` gives it (what ``expect: when:`` matches), built
        from its group's dict (made once) and its per-run values."""
        cached = self._dicts.get(int(self.group[i]))
        if cached is None:
            cached = self._dicts[int(self.group[i])] = self.reps[self.group[i]].to_dict()
        out = dict(cached)
        options = dict(out["optimizer_options"])
        for name, (values, codes) in self.per_run.items():
            value = values[codes[i]]
            if name.startswith("optimizer_options."):
                options[name[len("optimizer_options."):]] = value
            elif name == "seed" and value == OWN_NUMBER:
                out["seed"] = i
            else:
                out[name] = list(value) if name == "init_range" and value is not None else value
        out["optimizer_options"] = options
        return out

    def config(self, i: int) -> Config:
        return _member(self.reps[self.group[i]], {f: values[codes[i]] for f, (values, codes) in self.per_run.items()}, i)


def _member(rep: Config, values: dict[str, Any], number: int) -> Config:
    """``rep`` with one config's per-run values (a seed of OWN_NUMBER becomes ``number``)."""
    from dataclasses import replace

    options = {k[len("optimizer_options."):]: v for k, v in values.items() if k.startswith("optimizer_options.")}
    fields_ = {k: v for k, v in values.items() if not k.startswith("optimizer_options.")}
    if fields_.get("seed") == OWN_NUMBER:
        fields_["seed"] = number
    if options:
        fields_["optimizer_options"] = {**rep.optimizer_options, **options}
    return replace(rep, **fields_)


def _per_run_key(key: str, values: list, base: dict[str, Any], swept: list[str]) -> bool:
    """Whether a swept key's values can differ between the runs of one batch."""
    if key in ("lr", "name", "every"):
        return True
    if key == "init":  # a fit's frozen parameters take their values from init: constants of its model
        fit = base.get("fit")
        return "fit" not in swept and not (isinstance(fit, dict) and fit.get("freeze"))
    if key == "init_range":
        return "init" not in swept  # both swept: each pair must be checked together
    if key in ("clip_norm", "clip_value"):
        return all(v is not None for v in values)  # None switches clipping off: a structural change
    if key == "seed":
        return base.get("fit") is None and "fit" not in swept  # a fit's seed also draws its data
    if key.startswith("optimizer_options."):
        return all(_numeric(v) for v in values)
    return False


def validate_configs(base: dict[str, Any], spec: SweepSpec) -> Sweep:
    """Validate every config of the sweep without building each one: the configs that share their
    structural values (function, optimizer, ...) form a group validated through its first config,
    and each per-run value (lr, init, numeric optimizer options...) is validated once per group it
    occurs in. An invalid config is an error naming its number and overrides, before anything runs."""
    expansion = expand(spec)
    n, swept = expansion.size, expansion.keys
    per_run = [k for k in swept if _per_run_key(k, expansion.values[k], base, swept)]
    structural = [k for k in swept if k not in per_run]

    def raw_of(i: int, **changes) -> dict[str, Any]:
        raw = dict(base)
        for key, value in {**expansion.overrides(i), **changes}.items():
            raw = set_key(raw, key, value)
        return raw

    def checked(i: int, raw: dict[str, Any], overrides: dict[str, Any]) -> Config:
        try:
            return validate(raw)
        except GdrunError as exc:
            raise GdrunError(f"sweep config {i} ({_describe(overrides)}): {exc}") from None

    if structural:
        table = np.stack([expansion.codes[k] for k in structural], axis=1)
        _, first, group = np.unique(table, axis=0, return_index=True, return_inverse=True)
        order = np.argsort(first, kind="stable")  # groups numbered in the order their first config comes
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        group, first = rank[group.reshape(-1)], first[order]
    else:
        group, first = np.zeros(n, dtype=np.int64), np.zeros(1, dtype=np.int64)
    reps = [checked(int(i), raw_of(int(i)), expansion.overrides(int(i))) for i in first]
    order = np.argsort(group, kind="stable")
    bounds = np.searchsorted(group[order], np.arange(len(first) + 1))
    parsed: dict[str, tuple[list, np.ndarray]] = {}
    for key in per_run:  # each value once per group it occurs in, with the group's first config
        values: list[Any] = [None] * len(expansion.values[key])
        for g, rep_id in enumerate(first.tolist()):
            members = order[bounds[g] : bounds[g + 1]]
            codes, where = np.unique(expansion.codes[key][members], return_index=True)
            for code, at in zip(codes.tolist(), where.tolist()):
                value = expansion.values[key][code]
                config = checked(int(members[at]), raw_of(rep_id, **{key: value}), {**expansion.overrides(rep_id), key: value})
                values[code] = _field(config, key)
        parsed[key] = (values, expansion.codes[key])
    columns: dict[str, tuple[list, np.ndarray]] = {}
    for name in PER_RUN_FIELDS:
        columns[name] = parsed.get(name) or ([getattr(rep, name) for rep in reps], group)
    options = sorted({k for rep in reps for k, v in rep.optimizer_options.items() if _numeric(v)})
    for option in options:
        key = f"optimizer_options.{option}"
        columns[key] = parsed.get(key) or ([rep.optimizer_options.get(option) for rep in reps], group)
    columns["seed"] = _own_seeds(columns["init_range"], columns["seed"])
    sweep = Sweep(base, spec, expansion, group, reps, columns)
    width = max(_width(rep) for rep in reps)
    if min(n, MAX_BATCH) * width > MAX_STATE:
        raise GdrunError(f"a batch of {min(n, MAX_BATCH):,} configs of {width:,} parameters holds more than "
                         f"{MAX_STATE:,} numbers (the limit of a batch's state); sweep fewer configs")  # fmt: skip
    return sweep


def _field(config: Config, key: str) -> Any:
    if key.startswith("optimizer_options."):
        return config.optimizer_options.get(key[len("optimizer_options."):])
    return getattr(config, key)


def _own_seeds(ranges: tuple[list, np.ndarray], seeds: tuple[list, np.ndarray]) -> tuple[list, np.ndarray]:
    """Each config's seed, where a config that draws its start point (init_range) without a seed of
    its own takes its number (OWN_NUMBER): its start is then fixed by where it stands in the sweep."""
    drawn = np.array([r is not None for r in ranges[0]], dtype=bool)[ranges[1]]
    unseeded = np.array([s is None for s in seeds[0]], dtype=bool)[seeds[1]]
    own = drawn & unseeded
    if not own.any():
        return seeds
    values = [*seeds[0], OWN_NUMBER]
    return values, np.where(own, len(values) - 1, seeds[1])


def _width(config: Config) -> int:
    """The parameters of one run of ``config``, as far as its keys tell (dim, init)."""
    if isinstance(config.init, (list, dict)):
        return len(config.init)
    return config.dim or 1


def _describe(overrides: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in overrides.items())


# ---------------------------------------------------------------------------- batching

def structure(config: Config) -> str:
    """What must be equal for configs to share a batch: every key but PER_RUN_FIELDS (a fit's
    seed, which also draws its data, is structure) and numeric optimizer options. A fit's
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
    """Configs that run as one engine call (picklable: it may run in another process): the first
    one's config and, for the per-run fields, the values and each member's code into them."""

    batch: int
    ids: np.ndarray  # the configs' numbers
    config: Config  # the first member's config; the others differ only in per-run values
    per_run: dict[str, tuple[list, np.ndarray]]  # field -> (values, each member's code)
    record_every: int
    width: int  # params columns in metrics records
    base_dir: str | None = None

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def of_configs(cls, configs: list[Config], ids=None, record_every: int = 1, width: int = 1, batch: int = 0,
                   base_dir: str | None = None) -> "BatchJob":  # fmt: skip
        """A batch of ``configs`` given one by one (they must share a structure)."""
        per_run = {f: ([getattr(c, f) for c in configs], np.arange(len(configs))) for f in PER_RUN_FIELDS}
        for option in sorted({k for c in configs for k, v in c.optimizer_options.items() if _numeric(v)}):
            per_run[f"optimizer_options.{option}"] = ([c.optimizer_options.get(option) for c in configs],
                                                      np.arange(len(configs)))  # fmt: skip
        ids = np.arange(len(configs)) if ids is None else np.asarray(ids)
        return cls(batch, ids, configs[0], per_run, record_every, width, base_dir)

    def column(self, name: str) -> list:
        values, codes = self.per_run[name]
        return [values[c] for c in codes.tolist()]

    def numbers(self, name: str) -> np.ndarray:
        """A numeric per-run field as a float64 array, one per member."""
        values, codes = self.per_run[name]
        return np.asarray(values, dtype=np.float64)[codes]

    def member(self, b: int) -> Config:
        return _member(self.config, {f: values[codes[b]] for f, (values, codes) in self.per_run.items()},
                       int(self.ids[b]))  # fmt: skip


@dataclass
class BatchResult:
    batch: int
    ids: np.ndarray
    names: tuple[str, ...]
    status: list[str]
    reason: list[str]
    iterations: np.ndarray
    updates: np.ndarray
    value: np.ndarray
    grad_norm: np.ndarray
    params: np.ndarray  # (B, len(names) + frozen) final parameters, in ``param_names`` order
    param_names: tuple[str, ...]
    metrics: np.ndarray  # records not yet written: (records, len(METRIC_HEAD) + width + len(METRIC_TAIL)) float64
    wall_time_s: float
    diagnostics: list[dict[str, Any] | None] | None = None  # per config, with --explain (see gdrun.explain)


def make_batches(sweep: Sweep, pending: np.ndarray, record_every: int, width: int, base_dir: str | None,
                 max_batch: int = MAX_BATCH, first: int = 0) -> list[BatchJob]:  # fmt: skip
    """The pending configs cut into batches: configs whose groups share a structure run together,
    at most ``max_batch`` at a time, in order; batches are numbered from ``first``."""
    keys = [structure(rep) for rep in sweep.reps]
    kind = {key: k for k, key in enumerate(dict.fromkeys(keys))}
    of_group = np.array([kind[key] for key in keys], dtype=np.int64)
    structure_of = of_group[sweep.group[pending]]
    jobs = []
    for s in range(len(kind)):
        members = pending[structure_of == s]
        if not len(members):
            continue
        rep = sweep.reps[sweep.group[members[0]]]
        limit = max_batch if rep.device == "cpu" else max(max_batch, MAX_STATE // max(width, 1))  # a GPU takes it whole
        for start in range(0, len(members), limit):
            ids = members[start : start + limit]
            per_run = {f: (values, codes[ids]) for f, (values, codes) in sweep.per_run.items()}
            jobs.append(BatchJob(first + len(jobs), ids, sweep.reps[sweep.group[ids[0]]], per_run, record_every, width,
                                 base_dir))  # fmt: skip
    return jobs


def batch_starts(job: BatchJob, names: tuple[str, ...], default: list[float], extra: tuple[str, ...]) -> np.ndarray:
    """Each member's start point (B, n): computed once per distinct (init, init_range, seed)."""
    from .runner import initial_point

    codes = [job.per_run[f][1] for f in ("init", "init_range", "seed")]
    own = np.asarray(job.per_run["seed"][0], dtype=object)[codes[2]] == OWN_NUMBER
    seed_key = np.where(own, -1 - job.ids, codes[2])  # a config's own number is its own seed
    table = np.stack([codes[0], codes[1], seed_key], axis=1)
    distinct, first, inverse = np.unique(table, axis=0, return_index=True, return_inverse=True)
    points = np.stack([initial_point(job.member(int(b)), names, default, extra) for b in first])
    return points[inverse.reshape(-1)]


def run_batch(job: BatchJob, interrupt=None, sink=None, prepared=None) -> BatchResult:
    """Run one batch: its configs share everything but per-run numbers. ``sink(records)``, when
    given, takes the recorded rows block by block (the sweep directory's metrics file); without it
    they come back in the result. ``prepared``: what ``runner.prepare`` made of the batch's
    structure, when the caller has it (made here otherwise)."""
    from . import engine
    from .optim import get_clip, get_optimizer, per_run, per_run_option
    from .runner import prepare

    started = time.perf_counter()
    config = job.config
    B = len(job)
    first = prepared or prepare(config, Path(job.base_dir) if job.base_dir else None, check_start=False)
    names, backend, fit = first.names, first.backend, first.fit
    default = first.function.default_init() if first.function is not None else [0.0] * len(names)
    extra = tuple(fit.frozen) if fit is not None else ()
    x0 = batch_starts(job, names, default, extra)
    lr = job.numbers("lr").reshape(B, 1)
    options = {k: v for k, v in config.optimizer_options.items()}
    for key in job.per_run:
        if key.startswith("optimizer_options."):
            options[key[len("optimizer_options."):]] = per_run_option(job.column(key))
    optimizer = get_optimizer(config.optimizer, **options)
    clip = None
    if config.clip_norm is not None or config.clip_value is not None:
        mode = "norm" if config.clip_norm is not None else "value"
        clip = get_clip(mode, per_run(job.column(f"clip_{mode}")))
    recorder = _Recorder(job.ids, job.record_every, len(names), job.width, sink)
    path = None
    if config.explain:  # --explain: each config's rows and path points for its diagnostics
        from .explain import PathRecorder

        path = PathRecorder(B, config.epochs)
    stop = config.stop
    labels = ("epoch", "loss") if fit is not None else ("step", "value")
    outcome = engine.run(first.problem, backend.asarray(x0), optimizer, lr, config.epochs, backend,
                         engine.StopRule(stop.grad_norm_below, stop.value_below, stop.diverge_above),
                         (recorder,) + ((path,) if path else ()), interrupt, names, first.schedule, clip, labels)  # fmt: skip
    metrics = recorder.finish(outcome)
    diagnostics = None
    if path is not None:  # every config's diagnostics in one batched pass (None for one that computed no row)
        from .explain import explain_outcome

        members = [job.member(b) for b in range(B)]
        by_member = explain_outcome(first, members, list(x0), path, outcome)
        diagnostics = [by_member.get(b) for b in range(B)]
    if fit is not None:
        param_names = tuple(fit.all_params(dict.fromkeys(names, 0.0)))
        params = np.array([[row[p] for p in param_names] for row in (fit.all_params(dict(zip(names, x)))
                                                                      for x in outcome.x.tolist())]).reshape(B, -1)  # fmt: skip
    else:
        param_names, params = tuple(names), outcome.x
    return BatchResult(job.batch, job.ids, names, outcome.status, outcome.reason, outcome.iterations, outcome.updates,
                       outcome.value, outcome.grad_norm, params, param_names, metrics, time.perf_counter() - started,
                       diagnostics)  # fmt: skip


class _Recorder:
    """Keeps every ``record_every``-th row of every run, and each run's last row, as metrics
    records: handed to ``sink`` block by block, or kept for the result when there is none."""

    def __init__(self, ids: np.ndarray, every: int, n: int, width: int, sink=None):
        self.ids = np.asarray(ids, dtype=np.float64)
        self.every, self.n, self.width = every, n, width
        self.columns = len(METRIC_HEAD) + width + len(METRIC_TAIL)
        self.sink = sink
        self.chunks: list[np.ndarray] = []
        self.last_lr = np.full(len(ids), np.nan)

    def _emit(self, records: np.ndarray) -> None:
        if len(records):
            if self.sink is not None:
                self.sink(records)
            else:
                self.chunks.append(records)

    def on_block(self, block) -> None:
        T = len(block.steps)
        if T == 0:
            return
        rows = np.flatnonzero(block.steps % self.every == 0)
        B = len(self.ids)
        if len(rows):
            everyone = (block.last >= rows[-1]).all()
            if everyone:  # the common case: every run reaches every kept row; whole-array copies
                out = np.empty((len(rows), B, self.columns))
                out[..., 0] = self.ids
                out[..., 1] = block.steps[rows, None]
                out[..., 2] = block.updates[rows, None]
                out[..., 3 : 3 + self.n] = block.x[rows]
                out[..., 3 + self.n : 3 + self.width] = np.nan
                out[..., -3], out[..., -2], out[..., -1] = block.value[rows], block.grad_norm[rows], block.lr[rows]
                self._emit(out.reshape(-1, self.columns))
            else:
                t_idx, b_idx = np.nonzero(rows[:, None] <= block.last[None, :])
                t_idx = rows[t_idx]
                self._emit(self._records(t_idx, b_idx, block.steps[t_idx], block.updates[t_idx], block.x[t_idx, b_idx],
                                         block.value[t_idx, b_idx], block.grad_norm[t_idx, b_idx],
                                         block.lr[t_idx, b_idx]))  # fmt: skip
        members = np.flatnonzero(block.last >= 0)
        self.last_lr[members] = block.lr[block.last[members], members]

    def _records(self, t_idx, b_idx, steps, updates, x, value, grad_norm, lr) -> np.ndarray:
        out = np.full((len(t_idx), self.columns), np.nan)
        out[:, 0] = self.ids[b_idx]
        out[:, 1] = steps
        out[:, 2] = updates
        out[:, 3 : 3 + self.n] = x
        out[:, -3], out[:, -2], out[:, -1] = value, grad_norm, lr
        return out

    def finish(self, outcome) -> np.ndarray:
        """Each run's final row where every-N skipped it; the records not handed to the sink."""
        final = np.flatnonzero(outcome.seen & (outcome.iterations % self.every != 0))
        if len(final):
            self._emit(self._records(final, final, outcome.iterations[final], outcome.updates[final], outcome.x[final],
                                     outcome.value[final], outcome.grad_norm[final], self.last_lr[final]))  # fmt: skip
        if not self.chunks:
            return np.empty((0, self.columns))
        return np.concatenate(self.chunks)


class LocalExecutor:
    """Batches one after another in this process (the default); their records stream to ``sink``."""

    name = "local"
    in_process = True  # run_sweep hands it the metrics file: records are written as they come

    def batch_limit(self, pending: int) -> int:
        """The most configs one batch may hold (one batch is one engine call)."""
        return MAX_BATCH

    def run(self, jobs: list[BatchJob], interrupt, sink=None, preparer: Preparer | None = None) -> Iterator[BatchResult]:
        for job in jobs:
            if interrupt.requested:
                return
            yield run_batch(job, interrupt, sink, preparer(job.config) if preparer is not None else None)

    def close(self) -> None:
        pass


def failed_result(job: BatchJob, error: BaseException) -> BatchResult:
    """A batch that could not run: each of its configs is 'failed' with the error."""
    n = len(job.ids)
    reason = f"{type(error).__name__}: {error}"
    nan = np.full(n, math.nan)
    return BatchResult(job.batch, job.ids, (), ["failed"] * n, [reason] * n, np.zeros(n, dtype=np.int64),
                       np.zeros(n, dtype=np.int64), nan, nan, np.empty((n, 0)), (),
                       np.empty((0, len(METRIC_HEAD) + job.width + len(METRIC_TAIL))), 0.0)  # fmt: skip


# ---------------------------------------------------------------------------- the sweep directory

SWEEP_FILE = "sweep.yaml"
RESULTS_FILE = "results.csv"
METRICS_FILE = "metrics.f64"
SUMMARY_FILE = "summary.json"
#: sweep.yaml's layout: 2 records the declaration and the number of configs, not each config
FORMAT = 2
#: metrics records read (or filtered) at a time: bounded memory whatever the file's size
RECORDS_PER_READ = 1 << 18


@dataclass
class Finished:
    """What a sweep directory already holds when a sweep starts or resumes."""

    done: np.ndarray  # (configs,) bool: a result that counts (DONE) is on disk
    counts: dict[str, int]
    best: "Best"


class Best:
    """The best finished config so far (lowest value of a converged or max_epochs config)."""

    def __init__(self) -> None:
        self.value, self.id, self.status = math.inf, -1, ""

    def offer(self, ids, status, values) -> None:
        ok = np.isin(np.asarray(status, dtype=object), ("converged", "max_epochs")) & ~np.isnan(values)
        if ok.any():
            k = int(np.flatnonzero(ok)[np.argmin(values[ok])])
            if self.id < 0 or values[k] < self.value:
                self.value, self.id, self.status = float(values[k]), int(ids[k]), status[k]

    def as_dict(self) -> dict[str, Any] | None:
        return None if self.id < 0 else {"id": self.id, "value": self.value, "status": self.status}


class SweepDir:
    """Writes one sweep's directory. Only the main process writes: metrics records as they come
    (whole records), each batch's result rows once its records are on disk (whole rows)."""

    def __init__(self, path: Path, expansion: Expansion, param_names: list[str], width: int, explain: bool = False):
        from .explain import EXPLAIN_COLUMNS

        self.path = path
        self.expansion = expansion
        self.param_names = param_names
        self.width = width
        self.record = len(METRIC_HEAD) + width + len(METRIC_TAIL)
        self.columns = ["id", *expansion.keys, "status", "reason", "steps", "updates", "value", "grad_norm",
                        *(f"param.{p}" for p in param_names), *(EXPLAIN_COLUMNS if explain else ()),
                        "batch", "batch_time_s"]  # fmt: skip
        self.fd = -1

    def start(self) -> Finished:
        """Keep what counts from an earlier start (none for a new sweep): rewrite results.csv with
        only finished rows, and metrics.f64 with only those configs' records (each file whole: a
        kill leaves the old one or the new one; both are streamed, never held whole); then open
        metrics.f64 for appending."""
        from .runs import atomic_file

        done = np.zeros(self.expansion.size, dtype=bool)
        counts = dict.fromkeys(COUNTED, 0)
        best = Best()
        ids: list[int] = []
        statuses: list[str] = []
        values: list[float] = []
        with atomic_file(self.path / RESULTS_FILE, text=True) as out:
            writer = csv.writer(out)
            writer.writerow(self.columns)
            for row in _result_rows(self.path / RESULTS_FILE):
                i = int(row["id"])
                if row["status"] not in DONE or i >= len(done) or done[i]:
                    continue
                done[i] = True
                counts[row["status"]] += 1
                ids.append(i)
                statuses.append(row["status"])
                values.append(_float(row["value"]))
                writer.writerow([row.get(c, "") for c in self.columns])
            self._keep_records(done)  # before the new results.csv replaces the old one
        if ids:
            best.offer(np.array(ids), statuses, np.array(values))
        self.fd = os.open(self.path / METRICS_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
        return Finished(done, counts, best)

    def _keep_records(self, done: np.ndarray) -> None:
        """metrics.f64 with only the records of configs in ``done``, read a slice at a time: cut
        short where only a tail must go (a killed batch), rewritten otherwise."""
        from .runs import atomic_file, write_atomic

        path = self.path / METRICS_FILE
        if not path.is_file():
            write_atomic(path, b"")
            return
        size = path.stat().st_size // (8 * self.record)
        first_bad = None
        mixed = False
        for start in range(0, size, RECORDS_PER_READ):
            keep = _kept(_read_records(path, self.record, start, RECORDS_PER_READ), done)
            if first_bad is None and not keep.all():
                first_bad = start + int(np.argmin(keep))
                keep = keep[first_bad - start :]
            if first_bad is not None and keep.any():  # a record to keep after one that goes
                mixed = True
                break
        if not mixed:  # the records that go are a tail (or none): cut the file there
            with open(path, "r+b") as f:
                f.truncate(8 * self.record * (size if first_bad is None else first_bad))
                os.fsync(f.fileno())
            return
        with atomic_file(path) as out:
            for start in range(0, size, RECORDS_PER_READ):
                records = _read_records(path, self.record, start, RECORDS_PER_READ)
                out.write(np.ascontiguousarray(records[_kept(records, done)]).tobytes())

    def write_metrics(self, records: np.ndarray) -> None:
        """Append metrics records whole (a failed write, a full disk, is cut back to the last whole one)."""
        from .runs import _write_all, fault_point

        size = os.fstat(self.fd).st_size
        try:
            _write_all(self.fd, np.ascontiguousarray(records, dtype=np.float64).tobytes())
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(self.fd, size)
            raise
        fault_point()

    def append(self, result: BatchResult) -> None:
        """Add a finished batch: its records first (made durable), then its result rows (a config
        counts as done only once its row is written, so a crash in between only means it runs again)."""
        from .runs import append_whole

        if len(result.metrics):
            self.write_metrics(result.metrics)
        os.fsync(self.fd)
        ids = np.asarray(result.ids)
        B = len(ids)
        columns: list[list[str]] = [list(map(str, ids.tolist()))]
        columns += [_csv_cells(self.expansion.cells(k, ids)) for k in self.expansion.keys]
        columns += [result.status, _csv_cells(result.reason), list(map(str, np.asarray(result.iterations).tolist())),
                    list(map(str, np.asarray(result.updates).tolist())), _floats_text(result.value),
                    _floats_text(result.grad_norm)]  # fmt: skip
        for name in self.param_names:
            if name in result.param_names:
                columns.append(_floats_text(result.params[:, result.param_names.index(name)]))
            else:
                columns.append([""] * B)
        if "verdict" in self.columns:
            from .explain import EXPLAIN_COLUMNS, explain_cells

            cells = [explain_cells(d) for d in (result.diagnostics or [None] * B)]
            columns += [_csv_cells(["" if c.get(name) is None else str(c[name]) for c in cells]) for name in EXPLAIN_COLUMNS]
        columns += [[str(result.batch)] * B, [f"{result.wall_time_s:.6f}"] * B]
        text = "".join([row + "\r\n" for row in map(",".join, zip(*columns))])  # csv.writer's line ending
        append_whole(self.path / RESULTS_FILE, text.encode())  # whole rows, or none

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


_NEEDS_QUOTES = re.compile(r'[,"\r\n]')


def _csv_cells(cells: list[str]) -> list[str]:
    """A column's cells as csv.writer writes them (QUOTE_MINIMAL), each distinct text quoted once."""
    quoted: dict[str, str] = {}
    out = []
    for cell in cells:
        text = quoted.get(cell)
        if text is None:
            text = quoted[cell] = '"' + cell.replace('"', '""') + '"' if _NEEDS_QUOTES.search(cell) else cell
        out.append(text)
    return out


def _floats_text(values) -> list[str]:
    """Each number as the shortest text that reads back exactly ('nan', 'inf' as Python writes them)."""
    return list(map(repr, np.asarray(values, dtype=np.float64).tolist()))


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan


def _cell(value: Any) -> str:
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value)
    return "" if value is None else str(value)


def _kept(records: np.ndarray, done: np.ndarray) -> np.ndarray:
    """Which records belong to a config in ``done`` (a number outside the sweep belongs to none)."""
    ids = records[:, 0].astype(np.int64)
    inside = (ids >= 0) & (ids < len(done))
    return inside & done[np.where(inside, ids, 0)]


def _read_records(path: Path, size: int, start: int, count: int) -> np.ndarray:
    with open(path, "rb") as f:
        f.seek(8 * size * start)
        raw = np.fromfile(f, dtype=np.float64, count=size * count)
    return raw[: len(raw) // size * size].reshape(-1, size)


def read_metrics_file(path: Path, width: int, config: int | None = None) -> np.ndarray:
    """metrics.f64 as (records, columns), or only config ``config``'s records (read a slice at a
    time); a record cut short by a crash is dropped, a missing file has none."""
    size = len(METRIC_HEAD) + width + len(METRIC_TAIL)
    if not path.is_file():
        return np.empty((0, size))
    if config is None:
        raw = np.fromfile(path, dtype=np.float64)
        return raw[: len(raw) // size * size].reshape(-1, size)
    total = path.stat().st_size // (8 * size)
    mine = [records[records[:, 0] == config] for start in range(0, total, RECORDS_PER_READ)
            for records in (_read_records(path, size, start, RECORDS_PER_READ),)]  # fmt: skip
    return np.concatenate(mine) if mine else np.empty((0, size))


def _result_rows(path: Path) -> Iterator[dict[str, str]]:
    """results.csv's rows, one at a time; a row cut short by a kill (or a full disk, in older
    files) is dropped."""
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return
    except OSError as exc:
        raise GdrunError(f"cannot read {path}: {exc.strerror or exc}") from None
    with f:
        end = _last_newline(f)
        f.seek(0)
        lines = (line.decode("utf-8", "replace") for line in _lines_until(f, end))
        reader = csv.reader(lines)
        header = next(reader, None)
        if not header:
            return
        for cells in reader:
            if len(cells) != len(header):
                continue
            row = dict(zip(header, cells))
            if row.get("id", "").isdigit() and row.get("status") in COUNTED:
                yield row


def _last_newline(f) -> int:
    """The size of the file's whole lines (up to and including its last newline)."""
    end = f.seek(0, os.SEEK_END)
    while end > 0:
        step = min(end, 1 << 16)
        f.seek(end - step)
        chunk = f.read(step)
        at = chunk.rfind(b"\n")
        if at >= 0:
            return end - step + at + 1
        end -= step
    return 0


def _lines_until(f, end: int) -> Iterator[bytes]:
    position = 0
    for line in f:
        position += len(line)
        if position > end:
            return
        yield line


def iter_results(path: Path) -> Iterator[dict[str, str]]:
    """A sweep directory's results.csv rows, one at a time (see :func:`read_results`)."""
    return _result_rows(path / RESULTS_FILE)


def read_results(path: Path) -> list[dict[str, str]]:
    """results.csv's rows; a row cut short by a kill (or a full disk, in older files) is dropped."""
    return list(iter_results(path))


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
    if not isinstance(meta, dict) or not all(k in meta for k in keys) or not isinstance(meta["base"], dict) \
            or not isinstance(meta["configs"], (int, list)) or not isinstance(meta["metrics"], dict) \
            or (isinstance(meta["configs"], int) and not isinstance(meta.get("sweep"), dict)):  # fmt: skip
        raise GdrunError(f"{file} is incomplete or damaged (it needs {', '.join(keys)}); the sweep cannot be resumed or shown")
    return meta


def config_count(meta: dict[str, Any]) -> int:
    """How many configs a sweep.yaml declares (format 2 records the number, older files the list)."""
    return meta["configs"] if isinstance(meta["configs"], int) else len(meta["configs"])


def expansion_of(meta: dict[str, Any]) -> Expansion:
    """The configs of a sweep.yaml as columns: expanded again from its declaration (the same
    declaration always makes the same configs), or read from an older file's list."""
    if isinstance(meta["configs"], list):
        return Expansion.from_list([c if isinstance(c, dict) else {} for c in meta["configs"]])
    try:
        expansion = expand(validate_sweep(meta["sweep"]))
    except GdrunError as exc:
        raise GdrunError(f"the declaration in {SWEEP_FILE} does not expand: {exc}") from None
    if expansion.size != meta["configs"]:
        raise GdrunError(f"{SWEEP_FILE} declares {meta['configs']} configs but its declaration makes {expansion.size}")
    return expansion


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
    return [{"id": i, **overrides} for i, overrides in enumerate(validate_configs(base, spec).expansion.as_list())]


def find_sweep(runs_dir: Path, target: str) -> Path:
    """The sweep directory ``target`` names: a path, a sweep name (its latest directory), or any
    other name of a run (``last``, a unique prefix: see :func:`gdrun.history.resolve`)."""
    from .history import resolve

    path = Path(target)
    if path.is_dir() and path.name.startswith("sweep-"):
        return path  # its sweep.yaml is checked when it is read, with a precise error
    if (path / SWEEP_FILE).is_file():
        return path
    matches = sorted(p for p in runs_dir.glob(f"sweep-*-{target}-*") if (p / SWEEP_FILE).is_file())
    if matches:
        return matches[-1]
    try:
        found = resolve(target, runs_dir)
    except GdrunError:
        found = None
    if found is None or not (found / SWEEP_FILE).is_file():
        raise GdrunError(f"no sweep to resume at {target!r} (neither a sweep directory nor a sweep name under {runs_dir})")
    return found


def prepare_sweep(base: dict[str, Any], spec: SweepSpec) -> tuple[dict[str, Any], Sweep]:
    """The base config as it runs (an expected regime turns the diagnostics on) and its configs,
    validated; every input error is raised here, before anything is written."""
    rules = base.get("expect") or []
    rules = rules if isinstance(rules, list) else [rules]
    if any(isinstance(r, dict) and r.get("gradient") is not None for r in rules):
        raise GdrunError("expect.gradient is checked on single runs, not on the configs of a sweep")
    if any(isinstance(r, dict) and r.get("regime") is not None for r in rules) and base.get("explain") is not False:
        base = {**base, "explain": True}  # an expected regime needs each config's diagnostics
    return base, validate_configs(base, spec)


def run_sweep(base: dict[str, Any], spec: SweepSpec, options: SweepOptions, progress=None) -> tuple[dict, int]:
    """Run (or resume) a sweep; returns its summary and exit code. The sweep directory is locked
    for the whole run: a second run or resume of it at the same time is a one-line error."""
    import yaml

    from .runs import DirLock, create_run_dir, write_atomic

    base, sweep = prepare_sweep(base, spec)
    print_key = fingerprint(base, spec)
    preparer = Preparer(options.base_dir)
    param_names, width = _param_layout(sweep.reps, preparer)
    lock: DirLock | None = None
    if options.resume is not None:
        path = find_sweep(Path(options.runs_dir), options.resume)
        if not path.is_dir():
            raise GdrunError(f"no sweep to resume at {options.resume!r}")
        lock = DirLock(path)
    else:
        name = options.name or base.get("name") or "sweep"
        text = yaml.dump({
            "name": name, "format": FORMAT, "base": json.loads(json.dumps(base, default=str)),
            "sweep": json.loads(json.dumps(spec.__dict__, default=str)), "configs": sweep.size, "fingerprint": print_key,
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
        return _run_locked(path, options.resume is not None, sweep, print_key, param_names, width, options, progress,
                           preparer)  # fmt: skip
    finally:
        if lock is not None:
            lock.release()


def _run_locked(path: Path, resuming: bool, sweep: Sweep, print_key: str, param_names: list[str], width: int,
                options: SweepOptions, progress, preparer: Preparer) -> tuple[dict, int]:  # fmt: skip
    from .engine import Interrupt
    from .runs import SUMMARY_RESERVE, disk_full_reason, is_disk_full, process_info, write_json

    if resuming:
        meta = read_sweep_file(path)
        if isinstance(meta["configs"], list):
            raise GdrunError(f"{path} was made by an older gdrun (its {SWEEP_FILE} lists every config); "
                             "run it again as a new sweep")  # fmt: skip
        if meta.get("fingerprint") != print_key:
            raise GdrunError(f"the sweep declaration changed since {path} was made; resume refuses to mix them "
                             "(run it as a new sweep, or restore the declaration)")  # fmt: skip
    directory = SweepDir(path, sweep.expansion, param_names, width, explain=bool(sweep.reps[0].explain))
    summary: dict[str, Any] = {"status": "running", "sweep_dir": str(path), "configs": sweep.size}
    started = time.perf_counter()
    stopped_early = failure = None
    finished = Finished(np.zeros(sweep.size, dtype=bool), dict.fromkeys(COUNTED, 0), Best())
    counts = finished.counts
    with Interrupt() as interrupt:
        try:
            finished = directory.start()
            counts = finished.counts
            summary["resumed"] = int(finished.done.sum())
            pending = np.flatnonzero(~finished.done)
            executor = options.executor or LocalExecutor()
            jobs = make_batches(sweep, pending, sweep.spec.record_every, width, options.base_dir,
                                executor.batch_limit(len(pending)))  # fmt: skip
            summary.update(batches=len(jobs), executor=executor.name, counts=dict(counts), wall_time_s=0.0, **process_info())
            write_json(path / SUMMARY_FILE, summary, reserve=SUMMARY_RESERVE)
            streams = {"sink": directory.write_metrics, "preparer": preparer} if getattr(executor, "in_process", False) else {}
            try:
                for result in executor.run(jobs, interrupt, **streams):
                    directory.append(result)
                    for status in result.status:
                        counts[status] += 1
                    finished.best.offer(result.ids, result.status, np.asarray(result.value, dtype=np.float64))
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
        finally:
            directory.close()
    done = sum(counts[s] for s in DONE)
    interrupted = interrupt.requested and done + counts["failed"] < sweep.size
    summary.update(
        status="failed" if failure else "interrupted" if interrupted else "stopped" if stopped_early else "completed",
        stopped_because=stopped_early, counts=counts, wall_time_s=time.perf_counter() - started,
        best=finished.best.as_dict(),
    )  # fmt: skip
    summary.setdefault("resumed", 0)
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
    """libyaml's safe dumper when PyYAML has it."""
    import yaml

    return getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def _yaml_loader():
    import yaml

    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class Preparer:
    """``runner.prepare(config)`` once per structure, for the length of one sweep in this process:
    the function or model, its compiled gradient and backend serve every batch of that structure
    (a bad start point is not checked here: it is that run's verdict)."""

    def __init__(self, base_dir: str | None):
        self.base_dir = base_dir
        self.done: dict[str, Any] = {}

    def __call__(self, config: Config):
        from .runner import prepare

        key = structure(config)
        if key not in self.done:
            self.done[key] = prepare(config, Path(self.base_dir) if self.base_dir else None, check_start=False)
        return self.done[key]


def _param_layout(reps: list[Config], prepare: Preparer) -> tuple[list[str], int]:
    """The union of parameter names (for results.csv) and the widest config (for metrics)."""
    names: list[str] = []
    width = 0
    seen: set[str] = set()
    for config in reps:
        key = structure(config)
        if key in seen:
            continue
        seen.add(key)
        prepared = prepare(config)
        params = list(prepared.fit.all_params(dict.fromkeys(prepared.names, 0.0))) if prepared.fit else list(prepared.names)
        names += [p for p in params if p not in names]
        width = max(width, len(prepared.names))
    return names, width


def best_of(rows) -> dict[str, Any] | None:
    """The best of results.csv rows (lowest value of a converged or max_epochs config)."""
    best = Best()
    for row in rows:
        best.offer([int(row["id"])], [row["status"]], np.array([_float(row["value"])]))
    return best.as_dict()


def open_config(sweep_dir: Path, config_id: int):
    """One config of a sweep as an ordinary run record (what ``gdrun show SWEEP_DIR/17`` prints)."""
    from .runs import RunRecord

    meta = read_sweep_file(sweep_dir)
    total = config_count(meta)
    if not 0 <= config_id < total:
        raise GdrunError(f"{sweep_dir} has configs 0 to {total - 1}, not {config_id}")
    row = None
    for candidate in iter_results(sweep_dir):
        if candidate["id"] == str(config_id):
            row = candidate  # a config run again on resume: its last row counts
    if row is None:
        raise GdrunError(f"config {config_id} of {sweep_dir} has not run yet (resume the sweep to run it)")
    raw = dict(meta["base"])
    for key, value in expansion_of(meta).overrides(config_id).items():
        raw = set_key(raw, key, value)
    width = len(meta["metrics"]["columns"]) - len(METRIC_HEAD) - len(METRIC_TAIL)
    mine = read_metrics_file(sweep_dir / METRICS_FILE, width, config=config_id)
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
        latest = {r["id"]: r for r in iter_results(sweep_dir)}
        counts = dict.fromkeys(COUNTED, 0)
        for row in latest.values():
            counts[row["status"]] += 1
        cut_off = process_gone(summary) or "pid" not in summary
        where = "process " + f"{summary.get('pid')} on {summary.get('host')}" if "pid" in summary else "its process"
        summary = {"batches": 0, "executor": "?", "wall_time_s": 0.0, **summary, "counts": counts,
                   "best": best_of(latest.values()),
                   "reason": f"cut off: {where} is gone; resume it with --resume" if cut_off else f"still running ({where})"}  # fmt: skip
    summary.update(sweep_dir=str(sweep_dir), configs=config_count(meta))
    return RunRecord(sweep_dir, meta, summary, {}, cut_off, kind="sweep")
