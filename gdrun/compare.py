"""Comparing optimizers: the one home of both modes.

Untuned, side by side (``gdrun minimize rosenbrock --optimizer sgd,sgd:momentum=0.9,adam``, or
``gdrun compare ... --no-tune``): each variant is an ordinary run at the given lr with its own run
directory; one table ranked by final value, then by the steps needed to come within ``reach`` of
the best known value.

Tuned (``gdrun compare rosenbrock --optimizer ... --target 1e-6``): every variant searched with the
same budget from the same starts for the same steps, then ranked on held-out starts (see the
second half of this module, and the README's "Which optimizer is best here?").
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from rich.table import Table

from .config import Config, parse_spec, split_top_level, validate
from .errors import GdrunError, closest
from .runs import read_run, summary_number


def optimizer_variant(label: str) -> tuple[str, float | None, dict[str, Any]]:
    """``"adam:lr=0.01:eps=1e-8"`` -> ("adam", 0.01, {"eps": 1e-8}): the optimizer, the variant's
    learning rate (None: the run's) and its other options, which are the optimizer's."""
    spec = parse_spec("--optimizer", label)
    name = spec.pop("name")
    return name, spec.pop("lr", None), spec


def variants(config: Config, text: str) -> list[tuple[str, Config]]:
    """``"sgd,sgd:momentum=0.9,adam:lr=0.01"`` -> one validated config per variant, with a label."""
    labels = [v for v in split_top_level(text) if v]
    if len(labels) < 2:
        raise GdrunError(f"a comparison needs at least two optimizers, got {text!r}")
    if len(set(labels)) != len(labels):
        raise GdrunError(f"the optimizer list names a variant twice: {text!r}")
    from .optim import OPTIMIZER_OPTIONS

    out = []
    for label in labels:
        name, lr, spec = optimizer_variant(label)
        defaults = OPTIMIZER_OPTIONS.get(name, {})  # spelled out, so variants of one optimizer share a batch
        options = {**defaults, **config.optimizer_options, **spec} if name == config.optimizer else {**defaults, **spec}
        raw = {**config.to_dict(), "optimizer": name, "optimizer_options": options, "lr": config.lr if lr is None else lr}
        raw["name"] = f"{config.name or 'compare'}-{name}"
        raw = {k: v for k, v in raw.items() if v is not None or k in ("init", "seed")}
        out.append((label, validate(raw)))
    return out


NOT_RUN = "not run"  # a variant a Ctrl-C stopped before it started: no run directory


def compare(runs: list[tuple[str, Config]], runs_dir: str | Path, output, reach: float, base: Path | None = None):
    """Run every variant (those of one optimizer kind as one batch), then rank them. One Ctrl-C
    stops the whole comparison: the running batch ends ``interrupted``, the rest do not start.
    Returns (ranking rows, exit code)."""
    from .display import report_console
    from .engine import Interrupt
    from .errors import EXIT_INTERRUPTED
    from .runner import execute_batch, prepare
    from .sweeps import structure

    console = output.console or report_console()
    groups: dict[str, list[int]] = {}
    for i, (_, config) in enumerate(runs):
        groups.setdefault(structure(config), []).append(i)
    by_variant: dict[int, dict] = {}
    with Interrupt() as interrupt:  # the runs' own Interrupts share its flag
        for _, config in runs:  # every variant's input is checked before any of them runs
            prepare(config, base)
        for members in groups.values():
            if interrupt.requested:
                break
            labels = ", ".join(runs[i][0] for i in members)
            if output.mode == "table":
                console.print(f"[bold]{labels}[/bold] ({'one batch' if len(members) > 1 else 'one run'}) ...", highlight=False)
            results = execute_batch([runs[i][1] for i in members], runs_dir, replace(output, mode="quiet", plot=False), base)
            for i, (summary, _) in zip(members, results):
                by_variant[i] = summary
                if output.mode == "table":
                    console.print(f"  {runs[i][0]}: {summary['status']}, f = {summary['value']}", highlight=False)
    skipped = [label for i, (label, _) in enumerate(runs) if i not in by_variant]
    if skipped and output.mode == "table":
        console.print(f"  {', '.join(skipped)}: {NOT_RUN} (interrupted)", highlight=False)
    summaries = [(label, by_variant.get(i)) for i, (label, _) in enumerate(runs)]
    rows = rank(summaries, reach)
    if output.mode == "json":
        import json

        interrupted = bool(skipped) or any(row["status"] == "interrupted" for row in rows)
        print(json.dumps({"reach": reach, "interrupted": interrupted, "ranking": rows}, indent=2))
    elif output.mode == "table":
        console.print(ranking_table(rows, reach))
    if output.plot:  # every variant on one picture, in the best variant's directory
        from pathlib import Path

        from .runner import plot_run

        ran = {id(s): Path(s["run_dir"]) for _, s in summaries if s is not None}
        best_first = [ran[id(by_variant[i])] for i in _ranked_members(rows, runs, by_variant)]
        plot_run(best_first, output, console)
    worst = max(_exit(s["status"]) for _, s in summaries if s is not None) if by_variant else EXIT_INTERRUPTED
    return rows, EXIT_INTERRUPTED if skipped else worst


def _ranked_members(rows: list[dict[str, Any]], runs: list, by_variant: dict[int, dict]) -> list[int]:
    """The variants that ran, in the ranking's order (best first)."""
    index = {label: i for i, (label, _) in enumerate(runs)}
    return [index[row["optimizer"]] for row in rows if index.get(row["optimizer"]) in by_variant]


def _exit(status: str) -> int:
    from .errors import STATUS_EXIT_CODES

    return STATUS_EXIT_CODES[status]


def _value(value: Any) -> float:
    """A summary's number, nan where there is none (ranks last)."""
    number = summary_number(value)
    return math.nan if number is None else number


def rank(summaries: list[tuple[str, dict | None]], reach: float) -> list[dict[str, Any]]:
    """One row per variant, best first: by final value, then steps to reach the best value.
    A variant without a summary (None) did not run: it ranks last, with no numbers."""
    values = [_value(s["value"]) if s is not None else math.nan for _, s in summaries]
    ran = [s for _, s in summaries if s is not None]
    known = [m["value"] for m in ((ran[0].get("known_minima") if ran else None) or [])]
    best = min(known) if known else min((v for v in values if math.isfinite(v)), default=math.nan)
    rows = []
    for (label, summary), value in zip(summaries, values):
        if summary is None:
            rows.append({"optimizer": label, "status": NOT_RUN, "value": None, "grad_norm": None, "steps": None,
                         "steps_to_reach": None, "wall_time_s": None, "run_dir": None})  # fmt: skip
            continue
        metrics = read_run(summary["run_dir"]).metrics
        reached = None
        if math.isfinite(best) and len(metrics.get("value", [])):
            hits = [int(step) for step, v in zip(metrics["step"], metrics["value"]) if v - best <= reach]
            reached = hits[0] if hits else None
        rows.append({
            "optimizer": label, "status": summary["status"], "value": summary["value"],
            "grad_norm": summary["grad_norm"], "steps": summary["iterations"], "steps_to_reach": reached,
            "wall_time_s": summary["wall_time_s"], "run_dir": summary["run_dir"],
        })  # fmt: skip
    rows.sort(key=lambda r: (r["status"] == NOT_RUN, not math.isfinite(_value(r["value"])), _value(r["value"]),
                             r["steps_to_reach"] if r["steps_to_reach"] is not None else math.inf))  # fmt: skip
    for i, row in enumerate(rows, 1):
        row["rank"] = i
    return rows


def ranking_table(rows: list[dict[str, Any]], reach: float) -> Table:
    table = Table(title=f"ranked by final f, then steps to come within {reach:g} of the best known f",
                  title_justify="left")  # fmt: skip
    widest = max((len(row["optimizer"]) for row in rows), default=9)
    for column in ("#", "optimizer", "status", "final f", "|grad|", f"steps to f*+{reach:g}", "time"):
        table.add_column(column, justify="left" if column in ("optimizer", "status") else "right", no_wrap=True,
                         min_width=widest if column == "optimizer" else None)  # fmt: skip
    for row in rows:
        reached = "-" if row["steps_to_reach"] is None else str(row["steps_to_reach"])
        if row["status"] == NOT_RUN:
            table.add_row(str(row["rank"]), row["optimizer"], row["status"], "-", "-", "-", "-")
            continue
        table.add_row(str(row["rank"]), row["optimizer"], row["status"], f"{_value(row['value']):.6g}",
                      f"{_value(row['grad_norm']):.3g}", reached, f"{row['wall_time_s']:.2f} s")  # fmt: skip
    return table


# ---------------------------------------------------------------------------- tuned comparisons
#
# gdrun compare FUNCTION --optimizer sgd,sgd:momentum=0.5..0.99,adam: every variant tuned with
# the same budget, from the same starts, for the same steps, then ranked on held-out starts.
# A variant's candidates over its tuning starts run as ONE engine batch (candidates x starts
# runs); an observer notes from which step each run's value stayed within the target.

COMPARE_FILE = "compare.yaml"
VARIANT_FILE = "variant-{k}.npz"
SEARCHES = ("grid", "random")
PATHS_KEPT = 4  # held-out paths kept for the contour picture (2-D functions)


@dataclass(frozen=True)
class Variant:
    """One optimizer variant: ``sgd:momentum=0.5..0.99`` searches momentum in [0.5, 0.99] along
    with the lr; ``adam:lr=0.01`` fixes the lr (nothing but options is searched then)."""

    label: str
    optimizer: str
    fixed: dict[str, Any]  # options given as values
    searched: dict[str, tuple[float, float]]  # options given as LOW..HIGH (searched on a linear scale)
    lr: float | None = None  # a given lr: not searched


def parse_variant(label: str) -> Variant:
    from .inputs import number
    from .optim import OPTIMIZER_OPTIONS, OPTIMIZERS
    from .errors import check_option_names, known

    name, lr, spec = optimizer_variant(label)
    known("optimizer", name, OPTIMIZERS)
    check_option_names(f"optimizer '{name}'", spec, OPTIMIZER_OPTIONS[name])
    fixed, searched = {}, {}
    for key, value in spec.items():
        if isinstance(value, str) and ".." in value:
            low, _, high = value.partition("..")
            low, high = number(f"{label}: {key}", low), number(f"{label}: {key}", high)
            if not low < high:
                raise GdrunError(f"{label}: a range LOW..HIGH needs LOW < HIGH, got {value!r}")
            searched[key] = (low, high)
        else:
            fixed[key] = value
    if lr is not None:
        lr = number(f"{label}: lr", lr, positive=True)
    get_optimizer_checked(name, {**fixed, **{k: (a + b) / 2 for k, (a, b) in searched.items()}})
    return Variant(label, name, fixed, searched, lr)


def get_optimizer_checked(name: str, options: dict[str, Any]):
    """The optimizer with these options, or the optimizer's own one-line error for a bad one."""
    from .optim import get_optimizer, read_options

    return get_optimizer(name, **read_options(name, options))


@dataclass(frozen=True)
class Protocol:
    """Everything a tuned comparison is: the same for every variant."""

    function: str
    variants: tuple[str, ...]
    epochs: int = 2000
    budget: int = 50  # candidate settings per variant
    search: str = "grid"
    lr_range: tuple[float, float] = (1e-5, 1.0)
    starts: int = 32  # tuning starts
    heldout: int = 32  # held-out starts
    seed: int = 0
    target: float | None = None  # reached when f - f* < target
    target_fraction: float | None = None  # ... or when f - f* < fraction * (f(start) - f*)
    f_star: float | None = None  # the best value; a built-in's known minimum when not given
    start_range: tuple[float, float] | None = None  # where starts are drawn; a built-in's domain when not given
    dim: int | None = None
    let: tuple[tuple[str, str], ...] = ()
    backend: str = "numpy"
    dtype: str = "float64"
    name: str | None = None

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        data = asdict(self)
        data["variants"] = list(self.variants)
        data["lr_range"] = list(self.lr_range)
        data["start_range"] = list(self.start_range) if self.start_range else None
        data["let"] = dict(self.let)
        return data


def validate_protocol(raw: dict[str, Any]) -> Protocol:
    """The comparison's settings, checked (one-line errors naming the key)."""
    from .config import FIELDS, parse_range
    from .inputs import MAX_EPOCHS, number, show

    raw = dict(raw)
    known_keys = Protocol.__dataclass_fields__
    for key in raw:
        if key not in known_keys:
            raise GdrunError(f"unknown compare key {show(str(key))}{closest(str(key), known_keys)}")
    variants = raw.get("variants")
    if isinstance(variants, str):
        variants = [v for v in split_top_level(variants) if v]
    if not isinstance(variants, (list, tuple)) or not variants or not all(isinstance(v, str) for v in variants):
        raise GdrunError("give the optimizers to compare, e.g. --optimizer sgd,sgd:momentum=0.9,adam")
    if len(set(variants)) != len(variants):
        raise GdrunError(f"the optimizer list names a variant twice: {', '.join(variants)}")
    if not isinstance(raw.get("function"), str) or not raw["function"].strip():
        raise GdrunError("compare needs a function: a built-in name or an expression")
    values: dict[str, Any] = {"function": raw["function"], "variants": tuple(variants)}
    for key, low in (("epochs", 1), ("budget", 1), ("starts", 1), ("heldout", 1)):
        if raw.get(key) is not None:
            values[key] = number(key, raw[key], integer=True, low=low, high=MAX_EPOCHS if key == "epochs" else 100_000)
    if raw.get("seed") is not None:
        values["seed"] = number("seed", raw["seed"], integer=True, low=0, high=2**63 - 1)
    if raw.get("search") is not None:
        if raw["search"] not in SEARCHES:
            raise GdrunError(f"search must be grid or random, got {show(raw['search'])}")
        values["search"] = raw["search"]
    if raw.get("lr_range") is not None:
        text = raw["lr_range"]
        parts = text.split("..") if isinstance(text, str) else text
        if not isinstance(parts, (list, tuple)) or len(parts) != 2:
            raise GdrunError(f"lr_range must look like 1e-5..1, got {show(text)}")
        low, high = (number("lr_range", p, positive=True) for p in parts)
        if not low < high:
            raise GdrunError(f"lr_range needs LOW < HIGH, got {low:g}..{high:g}")
        values["lr_range"] = (low, high)
    if raw.get("target") is not None and raw.get("target_fraction") is not None:
        raise GdrunError("give --target (f - f* below it) or --target-fraction (of the start's gap), not both")
    if raw.get("target") is not None:
        values["target"] = number("target", raw["target"], positive=True)
    if raw.get("target_fraction") is not None:
        values["target_fraction"] = number("target_fraction", raw["target_fraction"], positive=True, high=1)
    if raw.get("f_star") is not None:
        values["f_star"] = number("f_star", raw["f_star"])
    if raw.get("start_range") is not None:
        values["start_range"] = parse_range(raw["start_range"])
    for key in ("dim", "let", "backend", "dtype"):  # checked as a run's config checks them
        if raw.get(key) is not None:
            values[key] = FIELDS[key].check(key, raw[key], raw)
    if raw.get("name") is not None:
        values["name"] = str(raw["name"])
    protocol = Protocol(**values)
    for label in protocol.variants:
        parse_variant(label)
    return protocol


def candidates(variant: Variant, protocol: Protocol) -> tuple[np.ndarray, list[str], np.ndarray]:
    """The variant's candidate settings: (lrs (K,), searched option names, their values (K, m)).
    A grid spaces the lr logarithmically and options linearly, as many points per searched
    quantity as the budget allows (K <= budget); random search draws exactly ``budget`` settings
    (lr log-uniform), seeded by the protocol's seed and the variant's position."""
    names = list(variant.searched)
    search_lr = variant.lr is None
    dims = len(names) + search_lr
    if dims == 0:
        return np.array([variant.lr]), [], np.empty((1, 0))
    low, high = np.log10(protocol.lr_range[0]), np.log10(protocol.lr_range[1])
    if protocol.search == "grid":
        per = max(1, int(np.floor(protocol.budget ** (1 / dims) + 1e-9)))
        axes = []
        if search_lr:
            axes.append(np.geomspace(*protocol.lr_range, per))  # its ends exactly the range's
        axes += [np.linspace(*variant.searched[n], per) for n in names]
        mesh = np.meshgrid(*axes, indexing="ij")
        points = np.stack([m.reshape(-1) for m in mesh], axis=1)
    else:
        rng = np.random.default_rng([protocol.seed, 1 + protocol.variants.index(variant.label)])
        columns = []
        if search_lr:
            columns.append(10 ** rng.uniform(low, high, protocol.budget))
        columns += [rng.uniform(*variant.searched[n], protocol.budget) for n in names]
        points = np.stack(columns, axis=1)
    lrs = points[:, 0] if search_lr else np.full(len(points), variant.lr)
    options = points[:, 1:] if search_lr else points
    return lrs, names, options


def draw_starts(protocol: Protocol, box: list[tuple[float, float]]) -> tuple[np.ndarray, np.ndarray]:
    """The tuning and the held-out start points, drawn uniformly from ``box`` with the protocol's
    seed: two disjoint sets (one stream, the held-out ones after the tuning ones)."""
    rng = np.random.default_rng(protocol.seed)
    low = np.array([b[0] for b in box])
    high = np.array([b[1] for b in box])
    points = rng.uniform(low, high, size=(protocol.starts + protocol.heldout, len(box)))
    return points[: protocol.starts], points[protocol.starts :]


class Settling:
    """An engine observer: for each run, the last step at which its value was not below its
    threshold (-1: none), so that the step from which it stayed below is that plus one; and (for the
    first ``keep`` runs) the whole path. A run that dips below the target and leaves it again (a
    too-large step bouncing across the valley) has not reached it."""

    def __init__(self, thresholds: np.ndarray, keep: int = 0):
        self.thresholds = np.asarray(thresholds, dtype=np.float64)
        self.last_above = np.full(len(self.thresholds), -1, dtype=np.int64)
        self.keep = keep
        self.paths: list[np.ndarray] = []

    def on_block(self, block) -> None:
        rows = len(block.steps)
        valid = np.arange(rows)[:, None] <= block.last[None, :]  # a run's rows after its stop are not its own
        value = np.asarray(block.value, dtype=np.float64)
        above = ~(value < self.thresholds[None, :]) & valid  # nan counts as not below
        seen = above.any(axis=0)
        if seen.any():
            latest = rows - 1 - np.argmax(above[::-1, seen], axis=0)
            self.last_above[seen] = np.asarray(block.steps)[latest]
        if self.keep:
            last = int(block.last[: self.keep].max(initial=-1))
            if last >= 0:
                self.paths.append(np.array(block.x[: last + 1, : self.keep], dtype=np.float64))  # the engine reuses its buffers

    def steps(self, final: np.ndarray) -> np.ndarray:
        """Steps to target: from which step each run stayed below its threshold to its end (-1: it
        did not end below it)."""
        return np.where(np.asarray(final) < self.thresholds, self.last_above + 1, -1)


@dataclass
class Problem:
    """What every variant runs on: the function prepared once per optimizer, the starts, f* and
    each start's threshold."""

    names: tuple[str, ...]
    f_star: float
    starts: np.ndarray
    heldout_starts: np.ndarray
    thresholds: np.ndarray  # (S,) for the tuning starts
    heldout_thresholds: np.ndarray
    formula: str


def set_up(protocol: Protocol, base: Path | None = None) -> Problem:
    """Resolve the function, f*, the starts and the targets; every input error is raised here."""
    from .functions import resolve

    function = resolve(protocol.function, protocol.dim, protocol.let)
    names = function.variables
    builtin = function.builtin
    f_star = protocol.f_star
    if f_star is None:
        minima = builtin.minima(len(names)) if builtin is not None else []
        if not minima:
            raise GdrunError(f"{protocol.function!r} has no known minimum: give --f-star (its best value)")
        f_star = min(m.value for m in minima)
    if protocol.start_range is not None:
        box = [protocol.start_range] * len(names)
    elif builtin is not None:
        box = builtin.box(len(names))
    else:
        raise GdrunError("an expression has no domain to draw starts from: give --start-range LOW,HIGH")
    starts, heldout = draw_starts(protocol, box)
    if protocol.target is None and protocol.target_fraction is None:
        raise GdrunError("give the target: --target 1e-6 (f - f* below it) or --target-fraction 1e-3 (of the start's gap)")
    from .backends import get_backend

    backend = get_backend(protocol.backend, "cpu", protocol.dtype)
    with backend.compute():
        values = [np.asarray(backend.to_numpy(backend.value_fn(function.objective)(backend.asarray(s))), dtype=np.float64)
                  for s in (starts, heldout)]  # fmt: skip

    def thresholds(f0: np.ndarray) -> np.ndarray:
        if protocol.target is not None:
            return np.full(len(f0), f_star + protocol.target)
        return f_star + protocol.target_fraction * (f0 - f_star)

    return Problem(tuple(names), float(f_star), starts, heldout, thresholds(values[0]), thresholds(values[1]),
                   function.objective.formula)  # fmt: skip


def run_variant(protocol: Protocol, problem: Problem, variant: Variant, interrupt, base: Path | None = None) -> dict | None:
    """Tune one variant (all its candidates over all tuning starts: one batch), then run the tuned
    setting on the held-out starts (a second batch). Returns the arrays of its npz file, or None
    when a Ctrl-C cut it short."""
    lrs, option_names, options = candidates(variant, protocol)
    K, S = len(lrs), len(problem.starts)
    settings = [{**variant.fixed, **dict(zip(option_names, row.tolist()))} for row in options]
    tuning = _batch(protocol, problem, variant, np.repeat(lrs, S), [s for s in settings for _ in range(S)],
                    np.tile(problem.starts, (K, 1)), np.tile(problem.thresholds, K), interrupt)  # fmt: skip
    if tuning is None:
        return None
    steps, final, _ = tuning
    steps, final = steps.reshape(K, S), final.reshape(K, S)
    tuned = tuned_candidate(steps, final)
    keep = PATHS_KEPT if len(problem.names) <= 2 else 0
    S2 = len(problem.heldout_starts)
    heldout = _batch(protocol, problem, variant, np.full(S2, lrs[tuned]), [settings[tuned]] * S2, problem.heldout_starts,
                     problem.heldout_thresholds, interrupt, keep)  # fmt: skip
    if heldout is None:
        return None
    h_steps, h_final, paths = heldout
    return {"lrs": lrs, "option_names": np.array(option_names, dtype=str), "options": options,
            "tuning_steps": steps, "tuning_final": final, "tuned": np.array(tuned), "heldout_steps": h_steps,
            "heldout_final": h_final, "heldout_paths": paths}  # fmt: skip


def _batch(protocol: Protocol, problem: Problem, variant: Variant, lrs: np.ndarray, settings: list[dict],
           starts: np.ndarray, thresholds: np.ndarray, interrupt, keep: int = 0):  # fmt: skip
    """One engine batch: (steps to target (B,), final values (B,), kept paths) or None if interrupted."""
    from . import engine
    from .config import validate
    from .optim import get_optimizer, per_run_options, read_options
    from .runner import prepare

    config = validate({"function": protocol.function, "dim": protocol.dim, "let": dict(protocol.let) or None,
                       "backend": protocol.backend, "dtype": protocol.dtype, "optimizer": variant.optimizer,
                       "optimizer_options": settings[0], "epochs": protocol.epochs, "lr": float(lrs[0]),
                       "init": problem.starts[0].tolist(), "explain": False})  # fmt: skip
    prepared = prepare(config, check_start=False)
    optimizer = get_optimizer(variant.optimizer, **per_run_options([read_options(variant.optimizer, s) for s in settings]))
    hits = Settling(thresholds, keep)
    outcome = engine.run(prepared.problem, prepared.backend.asarray(starts), optimizer, lrs.reshape(-1, 1),
                         protocol.epochs, prepared.backend, engine.StopRule(), (hits,), interrupt, prepared.names)  # fmt: skip
    if outcome.error is not None:
        raise outcome.error
    if interrupt.requested:
        return None
    final = np.asarray(outcome.value, dtype=np.float64)
    final = np.where(np.array(outcome.status) == "diverged", np.inf, final)  # a diverged run ends nowhere near
    paths = np.concatenate(hits.paths, axis=0).transpose(1, 0, 2) if hits.paths else np.empty((0, 0, 0))
    return hits.steps(final), final, paths


def tuned_candidate(steps: np.ndarray, final: np.ndarray) -> int:
    """The candidate with the best median over starts of steps to target (not reached: infinitely
    many); ties by the median final value."""
    med_steps = np.median(np.where(steps < 0, np.inf, steps), axis=1)
    med_final = np.median(np.where(np.isfinite(final), final, np.inf), axis=1)
    med_final = np.where(np.isnan(med_final), np.inf, med_final)
    return int(np.lexsort((med_final, med_steps))[0])


def figures(data: dict[str, np.ndarray]) -> dict[str, Any]:
    """A variant's report: its tuned setting and its held-out (and tuning) figures."""
    tuned = int(data["tuned"])
    h = data["heldout_steps"]
    solved = np.where(h < 0, np.inf, h)  # a start not solved takes infinitely many steps
    setting = {"lr": float(data["lrs"][tuned]), **{str(n): float(v) for n, v in zip(data["option_names"], data["options"][tuned])}}
    tuning_steps = data["tuning_steps"][tuned]

    def quantile(x, q: float) -> float | None:  # over every start: None when that many were not solved
        value = float(np.percentile(x, q, method="lower"))
        return value if np.isfinite(value) else None

    def median(x) -> float | None:
        value = float(np.median(x))
        return value if np.isfinite(value) else None

    return {
        "tuned": setting,
        "heldout": {"success_rate": float((h >= 0).mean()), "median_steps": median(solved),
                    "q25_steps": quantile(solved, 25), "q75_steps": quantile(solved, 75),
                    "median_final": median(np.where(np.isfinite(data["heldout_final"]), data["heldout_final"], np.inf))},
        "tuning": {"success_rate": float((tuning_steps >= 0).mean()),
                   "median_steps": median(np.where(tuning_steps < 0, np.inf, tuning_steps))},
        "sensitivity": sensitivity(data),
    }  # fmt: skip


def sensitivity(data: dict[str, np.ndarray]) -> dict[str, float] | None:
    """How forgiving the variant is: the lowest and highest lr (with the tuned options) whose median
    steps to target is within 2x of the tuned one's; None when the tuned one does not reach it."""
    tuned = int(data["tuned"])
    steps = np.where(data["tuning_steps"] < 0, np.inf, data["tuning_steps"])
    medians = np.median(steps, axis=1)
    if not np.isfinite(medians[tuned]):
        return None
    same = np.all(data["options"] == data["options"][tuned], axis=1) if data["options"].size else np.ones(len(medians), bool)
    good = same & (medians <= 2 * max(medians[tuned], 1))
    lrs = data["lrs"][good]
    return {"lr_low": float(lrs.min()), "lr_high": float(lrs.max())}


def ranking(variants: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rank the finished variants on their held-out figures: success rate, then median steps to
    target, then median final value."""
    def key(v: dict[str, Any]):
        h = v["heldout"]
        return (-h["success_rate"], h["median_steps"] if h["median_steps"] is not None else math.inf,
                h["median_final"] if h["median_final"] is not None else math.inf)  # fmt: skip

    done = sorted((v for v in variants if "heldout" in v), key=key)
    for i, v in enumerate(done, 1):
        v["rank"] = i
    return variants


def comparison_summary(protocol: Protocol, problem: Problem, path: Path, variants: list[dict[str, Any]],
                       status: str, wall: float) -> dict[str, Any]:  # fmt: skip
    """summary.json of a comparison directory (what ``gdrun runs`` lists and the pictures read)."""
    from .runs import process_info

    best = next((v for v in variants if v.get("rank") == 1), None)
    return {
        "status": status, "kind": "compare", "name": protocol.name or protocol.function, "function": protocol.function,
        "formula": problem.formula, "dim": len(problem.names), "names": list(problem.names), "epochs": protocol.epochs,
        "iterations": protocol.epochs, "optimizer": ",".join(protocol.variants), "lr": None,
        "value": None, "best": (best or {}).get("label"), "target": protocol.target,
        "target_fraction": protocol.target_fraction, "f_star": problem.f_star, "budget": protocol.budget,
        "search": protocol.search, "starts": protocol.starts, "heldout": protocol.heldout, "seed": protocol.seed,
        "variants": variants, "wall_time_s": wall, "run_dir": str(path),
        **process_info(),
    }  # fmt: skip


def run_comparison(protocol: Protocol, runs_dir: str | Path, resume: Path | None = None, progress=None,
                   expect: Any = None) -> tuple[dict[str, Any], Path]:  # fmt: skip
    """Tune and rank every variant, writing the comparison directory as it goes: each variant's
    arrays (``variant-K.npz``) once it is done, the summary after each. A Ctrl-C stops at the next
    step: the directory says ``interrupted`` and ``--resume`` runs the variants not done yet."""
    import time

    import yaml

    from .engine import Interrupt
    from .runs import (
        DirLock, SUMMARY_FILE, SUMMARY_RESERVE, atomic_file, create_run_dir, io_error, write_atomic, write_json,
    )  # fmt: skip

    problem = set_up(protocol)
    parsed = [parse_variant(label) for label in protocol.variants]
    started = time.perf_counter()
    lock = None
    declaration = yaml.safe_dump({**protocol.to_dict(), "expect": expect, "tuning_starts": problem.starts.tolist(),
                                  "heldout_starts": problem.heldout_starts.tolist()}, sort_keys=False)  # fmt: skip
    variants: list[dict[str, Any]] = [{"label": v.label, "optimizer": v.optimizer, "file": VARIANT_FILE.format(k=k)}
                                      for k, v in enumerate(parsed)]  # fmt: skip
    if resume is None:
        def fill(building: Path, final: Path) -> None:
            nonlocal lock
            lock = DirLock(building)
            write_atomic(building / COMPARE_FILE, declaration)
            write_json(building / SUMMARY_FILE, comparison_summary(protocol, problem, final, variants, "running", 0.0),
                       reserve=SUMMARY_RESERVE)  # fmt: skip

        path = create_run_dir(runs_dir, protocol.name or protocol.function, prefix="compare-", fill=fill)
    else:
        path = resume
        lock = DirLock(path)
    status = "running"
    try:
        with Interrupt() as interrupt:
            for k, (variant, entry) in enumerate(zip(parsed, variants)):
                file = path / entry["file"]
                if file.is_file():
                    data = dict(np.load(file))
                else:
                    if progress is not None:
                        progress(variant.label)
                    data = run_variant(protocol, problem, variant, interrupt)
                    if data is None:
                        status = "interrupted"
                        break
                    with atomic_file(file) as f:
                        np.savez(f, **data)
                entry.update(figures(data))
                lrs = data["lrs"]
                entry["at_lr_edge"] = bool(len(lrs) > 1 and entry["tuned"]["lr"] in (lrs.min(), lrs.max()))
                ranking(variants)
                write_json(path / SUMMARY_FILE, comparison_summary(protocol, problem, path, variants, status,
                                                                   time.perf_counter() - started), reserve=SUMMARY_RESERVE)  # fmt: skip
            else:
                status = "completed"
    except KeyboardInterrupt:
        status = "interrupted"
    except OSError as exc:  # a full disk: the directory says so; one line for the user (exit 4 when full)
        status, failure = "failed", f"{exc.strerror or exc}"
        raise io_error(f"{path}: cannot go on with the comparison", exc) from None
    except BaseException as exc:  # a crash: the directory says so, then the error goes on
        status, failure = "failed", f"{type(exc).__name__}: {exc}"
        raise
    finally:
        summary = comparison_summary(protocol, problem, path, ranking(variants), status, time.perf_counter() - started)
        if status == "failed":
            summary["reason"] = failure
        try:
            write_json(path / SUMMARY_FILE, summary)
        except OSError:  # the disk is full: on a failure, its own error is the one to report
            if status != "failed":
                raise
        if lock is not None:
            lock.release()
    return summary, path


def read_protocol(path: Path) -> Protocol:
    """The protocol a comparison directory was made with (to resume it)."""
    from .runs import read_small

    import yaml

    try:
        data = yaml.safe_load(read_small(path / COMPARE_FILE))
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise GdrunError(f"{path} is not a comparison directory ({COMPARE_FILE}: {exc})") from None
    if not isinstance(data, dict):
        raise GdrunError(f"{path / COMPARE_FILE} is not a comparison's declaration")
    data = {k: v for k, v in data.items() if k in Protocol.__dataclass_fields__}
    data["variants"] = list(data.get("variants") or [])
    data["lr_range"] = data.get("lr_range")
    return validate_protocol(data)


#: the report's columns: (heading, what it holds, as the caption says)
REPORT_COLUMNS = (("#", "rank"), ("optimizer", "variant"), ("tuned", "setting"), ("solved", "share of held-out starts"),
                  ("steps", "median steps to the target"), ("IQR", "their quartiles"),
                  ("f at end", "median final f"), ("lr within 2x", "lrs whose median steps are within 2x"))  # fmt: skip


def comparison_table(summary: dict[str, Any]) -> Table:
    """The ranked report: per variant its tuned setting and held-out figures (fits 80 columns)."""
    target = (f"f - f* < {summary['target']:g}" if summary.get("target") is not None
              else f"f - f* < {summary['target_fraction']:g} of the start's gap")  # fmt: skip
    table = Table(title=f"{summary['function']}: tuned on {summary['starts']} starts ({summary['search']}, "
                        f"{summary['budget']} settings each), ranked on {summary['heldout']} held-out starts; "
                        f"target {target} within {summary['epochs']} steps", title_justify="left",
                  caption="steps, IQR and f at end: medians and quartiles over the held-out starts (∞: not solved)",
                  caption_justify="left", box=None, header_style="bold", pad_edge=False, padding=(0, 1))  # fmt: skip
    for heading, _ in REPORT_COLUMNS:
        table.add_column(heading, justify="left" if heading in ("optimizer", "tuned") else "right",
                         overflow="fold" if heading == "optimizer" else "ellipsis",  # a variant's label is never cut
                         no_wrap=heading != "optimizer", min_width=len(heading) if heading == "optimizer" else None)
    for v in sorted(summary["variants"], key=lambda v: v.get("rank") or math.inf):
        if "heldout" not in v:
            table.add_row("-", v["label"], "not run", "", "", "", "", "")
            continue
        h, s = v["heldout"], v.get("sensitivity")
        tuned = ", ".join(f"{k} {val:.3g}" for k, val in v["tuned"].items()) + (" (edge)" if v.get("at_lr_edge") else "")
        table.add_row(str(v["rank"]), v["label"], tuned, f"{h['success_rate']:.0%}",
                      "-" if h["median_steps"] is None else f"{h['median_steps']:.0f}",
                      "-" if h["q25_steps"] is None else f"{h['q25_steps']:.0f}-" + ("∞" if h["q75_steps"] is None
                                                                                   else f"{h['q75_steps']:.0f}"),
                      "-" if h["median_final"] is None else f"{h['median_final']:.3g}",
                      "-" if s is None else f"{s['lr_low']:.2g}-{s['lr_high']:.2g}")  # fmt: skip
    return table


#: a compare config's top-level keys that are the protocol's (the rest of it sits under compare:)
CONFIG_KEYS = ("function", "dim", "let", "backend", "dtype", "epochs", "name")


def load_compare_config(path: Path) -> tuple[dict[str, Any], Any]:
    """A YAML config with a ``compare:`` part -> (the protocol's raw settings, its expect: rules)."""
    from .config import load_yaml

    raw, expect = compare_config(load_yaml(path), str(path))
    raw.setdefault("name", path.stem)
    return raw, expect


def compare_config(data: dict[str, Any], path: str = "config") -> tuple[dict[str, Any], Any]:
    """A comparison config's mapping -> (the protocol's raw settings, its expect: rules)."""
    from .inputs import show

    data = dict(data)
    if not isinstance(data.get("compare"), dict):
        raise GdrunError(f"{path}: a comparison config needs a compare: part, e.g. compare: {{optimizers: sgd,adam, "
                         "target: 1e-6}}")  # fmt: skip
    from .expect import unwritten

    expect = unwritten(data.pop("expect", None))  # a comparison's rules are plain bounds
    part = dict(data.pop("compare"))
    for key in data:
        if key not in CONFIG_KEYS:
            raise GdrunError(f"{path}: unknown key {show(str(key))}{closest(str(key), (*CONFIG_KEYS, 'compare', 'expect'))} "
                             "(the comparison's settings go under compare:)")  # fmt: skip
    if "optimizers" in part:
        part["variants"] = part.pop("optimizers")
    return {**data, **part}, expect


def tuned_comparison(raw: dict[str, Any], expect: Any, runs_dir: str | Path, output,
                     resume: str | None = None) -> tuple[dict[str, Any], int]:  # fmt: skip
    """``gdrun compare``: tune every variant, rank them, show the report; (summary, exit code):
    0 done, 1 an expect: rule failed, 130 interrupted (resume it with --resume)."""
    import json
    import sys

    import yaml

    from .display import report_console
    from .errors import EXIT_EXPECTATION, EXIT_INTERRUPTED, EXIT_OK
    from .expect import evaluate_compare, validate_compare_expect

    path = None
    if resume is not None:
        from .history import resolve
        from .runs import read_small

        path = resolve(resume, runs_dir)
        if not (path / COMPARE_FILE).is_file():
            raise GdrunError(f"{path} is not a comparison directory (no {COMPARE_FILE}): nothing to resume")
        protocol = read_protocol(path)
        expect = yaml.safe_load(read_small(path / COMPARE_FILE)).get("expect")
    else:
        protocol = validate_protocol(raw)
    rules = validate_compare_expect(expect, protocol.variants) if expect is not None else []
    console = output.console or report_console()

    def progress(label: str) -> None:
        if output.mode == "table":
            console.print(f"tuning {label} ...", highlight=False)

    summary, path = run_comparison(protocol, runs_dir, path, progress, expect=expect)
    results = evaluate_compare(rules, summary) if summary["status"] == "completed" else []
    if output.mode == "json":
        sys.stdout.write(json.dumps({**summary, "expect": [r.to_json() for r in results]}, indent=2, default=str) + "\n")
    elif output.mode == "table":
        console.print(comparison_table(summary))
        for r in results:
            console.print(f"{'pass' if r.passed else 'FAIL'} expect {r.message()}", highlight=False, markup=False)
        if summary["status"] == "interrupted":
            console.print(f"interrupted: resume with gdrun compare --resume {path}", highlight=False, soft_wrap=True)
        console.print(f"comparison dir: {path}", highlight=False, soft_wrap=True)
    else:
        for r in results:
            if not r.passed:
                print(f"gdrun: expectation failed: {r.message()}", file=sys.stderr)
    if output.plot and summary["status"] == "completed":
        from .runner import plot_run

        plot_run(path, output, console)
    if summary["status"] != "completed":
        return summary, EXIT_INTERRUPTED
    return summary, EXIT_OK if all(r.passed for r in results) else EXIT_EXPECTATION
