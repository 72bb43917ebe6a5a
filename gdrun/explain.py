"""Why a run did what it did: gather its numbers, ask the theory, say it in one sentence.

A run keeps its last rows and a few dozen points along its path in memory as it goes
(:class:`PathRecorder`, an engine observer); at the end :func:`diagnose` computes the Hessian's
spectrum at the start, at the final point and along the path in one batched call
(:mod:`gdrun.curvature`), the optimizer's stability bound and the verdict (:mod:`gdrun.diagnostics`),
and returns what ``summary.json`` records under ``diagnostics``. ``gdrun explain`` does the same for
a finished run from its run directory (or one config of a sweep), reading the rows back from its
metrics; :func:`panel_lines` and :func:`print_explanation` show the result.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

TAIL_ROWS = 64  # rows kept for the observed rate: enough for a stable estimate, cheap to keep
PATH_SAMPLES = 32  # points along the path whose sharpness is measured (edge of stability)


class PathRecorder:
    """An engine observer keeping, for every run of the batch, its last :data:`TAIL_ROWS` rows and
    its points at about :data:`PATH_SAMPLES` evenly spaced steps (the start included).

    Whole-array work per block: the batch's latest rows are kept together, and a run's own rows
    are copied out once, in the block where it stops (a sweep has thousands of runs)."""

    def __init__(self, members: int, epochs: int):
        self.members = members
        self.stride = max(1, math.ceil(epochs / PATH_SAMPLES))
        self.latest: tuple[np.ndarray, ...] | None = None  # (steps (T,), x (T, B, n), value, grad_norm, lr (T, B))
        self.stopped: dict[int, tuple[np.ndarray, ...]] = {}  # a run's tail, from the block it stopped in
        self.sample_steps: list[np.ndarray] = []
        self.sample_x: list[np.ndarray] = []  # (P, B, n) per block
        self.sample_value: list[np.ndarray] = []  # (P, B)
        self.sample_valid: list[np.ndarray] = []  # (P, B): the sample is before or at that run's last row
        self.rises = np.zeros((0, members), dtype=np.int64)  # (interval, B): steps whose value rose, per sample interval
        self.previous_value: np.ndarray | None = None  # (B,) the value of the previous block's last row
        self.broken: str | None = None  # why the recording stopped, if it did

    def on_block(self, block) -> None:
        """Keep the block's rows; a failure here stops the recording, never the run (the
        diagnostics then say what went wrong)."""
        if self.broken is None:
            try:
                with np.errstate(all="ignore"):  # a diverging run's inf - inf is a row like any other here
                    self._keep(block)
            except Exception as exc:
                self.broken = f"{type(exc).__name__}: {exc}"

    def _keep(self, block) -> None:
        last = np.asarray(block.last)
        if self.latest is not None:  # runs that stopped on the last row of the previous block
            for b in np.flatnonzero(last < 0):
                if int(b) not in self.stopped:
                    self.stopped[int(b)] = tuple(a if a.ndim == 1 else a[:, b] for a in self.latest)
        new = (block.steps, block.x, block.value, block.grad_norm, block.lr)
        if self.latest is not None:
            new = tuple(np.concatenate([old[-TAIL_ROWS:], part]) for old, part in zip(self.latest, new))
        offset = len(new[0]) - len(block.steps)  # rows of the earlier blocks in front of this one
        ending = np.flatnonzero((last >= 0) & (last < len(block.steps) - 1))
        for b in ending:  # runs that stop inside this block: keep their own rows now
            stop = offset + int(last[b]) + 1
            rows = slice(max(0, stop - TAIL_ROWS), stop)
            self.stopped[int(b)] = tuple(a[rows].copy() if a.ndim == 1 else a[rows, b].copy() for a in new)
        self.latest = tuple(a[-TAIL_ROWS:].copy() for a in new)
        picked = np.flatnonzero(block.steps % self.stride == 0)
        if len(picked):
            self.sample_steps.append(block.steps[picked])
            self.sample_x.append(block.x[picked].astype(np.float64))
            self.sample_value.append(block.value[picked].astype(np.float64))
            self.sample_valid.append(picked[:, None] <= last[None, :])
        self._count_rises(block, last)

    def _count_rises(self, block, last: np.ndarray) -> None:
        """Add up, per sample interval, the steps at which each run's value rose (edge of stability)."""
        value = block.value
        before = value[:1] if self.previous_value is None else self.previous_value[None, :]
        rose = np.diff(np.concatenate([before, value]), axis=0) > 0  # (T, B): row t rose from row t - 1
        rose &= np.arange(len(block.steps))[:, None] <= last[None, :]
        self.previous_value = value[-1].copy()
        interval = (block.steps - 1) // self.stride  # a rise at step s belongs to the sample at or before s - 1
        needed = max(int(interval.max()), 0) + 1 if len(interval) else 0
        if needed > len(self.rises):
            self.rises = np.concatenate([self.rises, np.zeros((needed - len(self.rises), self.members), dtype=np.int64)])
        np.add.at(self.rises, np.maximum(interval, 0), rose.astype(np.int64))

    def trace(self, member: int):
        from .diagnostics import Trace

        if member in self.stopped:
            steps, x, value, grad_norm, lr = self.stopped[member]
        elif self.latest is not None:
            steps, x, value, grad_norm, lr = (a if a.ndim == 1 else a[:, member] for a in self.latest)
        else:
            return None
        return Trace(steps.astype(np.int64), x.astype(np.float64), value.astype(np.float64),
                     grad_norm.astype(np.float64), lr.astype(np.float64))  # fmt: skip

    def path(self, member: int) -> "Path":
        if not self.sample_steps:
            return Path(np.zeros(0, dtype=np.int64), np.zeros((0, 0)), np.zeros(0), np.zeros(0, dtype=np.int64))
        valid = np.concatenate([v[:, member] for v in self.sample_valid])
        steps = np.concatenate(self.sample_steps)[valid].astype(np.int64)
        x = np.concatenate([s[:, member] for s in self.sample_x])[valid]
        value = np.concatenate([v[:, member] for v in self.sample_value])[valid]
        intervals = steps // self.stride
        rises = np.array([self.rises[i, member] if i < len(self.rises) else 0 for i in intervals], dtype=np.int64)
        return Path(steps, x, value, rises)


@dataclass
class Path:
    """Points along a run: the sampled steps, their points and values, and how many steps after
    each sample (up to the next one) raised the value."""

    steps: np.ndarray  # (P,)
    x: np.ndarray  # (P, n)
    value: np.ndarray  # (P,)
    rises: np.ndarray  # (P,)


def path_from_trace(steps: np.ndarray, x: np.ndarray, value: np.ndarray, picked: np.ndarray) -> Path:
    """The :class:`Path` of recorded rows ``picked`` (indices into the rows), counting the rises
    between them from every recorded row (consecutive rows only: a sweep's records skip steps)."""
    rose = np.zeros(len(steps), dtype=np.int64)
    with np.errstate(invalid="ignore"):
        rose[1:] = (np.diff(value) > 0) & (np.diff(steps) == 1)
    owner = np.searchsorted(picked, np.arange(len(steps)) - 1, side="right") - 1  # the sample at or before the row before
    counts = np.zeros(len(picked), dtype=np.int64)
    np.add.at(counts, owner[owner >= 0], rose[owner >= 0])
    return Path(steps[picked], x[picked], value[picked], counts)


def trace_from_metrics(metrics: dict[str, np.ndarray], names: tuple[str, ...]):
    """A :class:`~gdrun.diagnostics.Trace` from a run's metrics as read back (a run directory's
    metrics.csv, or one config's records of a sweep); None when there are no rows."""
    from .diagnostics import Trace

    counter = "epoch" if "epoch" in metrics else "step"
    if counter not in metrics or len(metrics[counter]) == 0 or any(n not in metrics for n in names):
        return None
    columns = [np.asarray(metrics[n], dtype=np.float64) for n in names]
    x = np.stack(columns, axis=1) if columns else np.zeros((len(metrics[counter]), 0))
    return Trace(np.asarray(metrics[counter]).astype(np.int64), x, np.asarray(metrics["value"], dtype=np.float64),
                 np.asarray(metrics["grad_norm"], dtype=np.float64), np.asarray(metrics["lr"], dtype=np.float64))  # fmt: skip


def explain_outcome(prepared, configs: list, inits: list, recorder: PathRecorder, outcome) -> dict[int, dict[str, Any]]:
    """The diagnostics of each run of an engine batch that computed at least one row, by its place
    in the batch (``configs`` and ``inits`` per run, ``recorder`` the batch's PathRecorder). Each
    records ``wall_time_s``: what explaining the batch cost, beside the run's own."""
    import time

    members = [b for b in range(len(configs)) if outcome.seen[b]]
    if not members:
        return {}
    if recorder.broken is not None:
        why = f"undetermined: the diagnostics could not record the run ({recorder.broken})"[:300]
        return {b: {"regime": "undetermined", "verdict": why} for b in members}
    started = time.perf_counter()
    found = diagnose(prepared, [configs[b] for b in members], [inits[b] for b in members],
                     [recorder.trace(b) for b in members], [recorder.path(b) for b in members],
                     [outcome.status[b] for b in members], [outcome.x[b] for b in members])  # fmt: skip
    spent = time.perf_counter() - started
    for diagnostics in found:
        diagnostics["wall_time_s"] = spent
    return dict(zip(members, found))


def diagnose(prepared, configs: list, inits: list, traces: list, paths: list, statuses: list[str],
             finals: list) -> list[dict[str, Any]]:  # fmt: skip
    """The ``diagnostics`` of each run of a batch that shares one problem (``prepared``, any run of
    the batch; each run's own config and start point in ``configs`` and ``inits``): spectra at
    every run's start, final point and path points in one batched call, then each run's bound and
    verdict. Never raises: a failure is reported as an undetermined verdict saying what went wrong."""
    try:
        return _diagnose(prepared, configs, inits, traces, paths, statuses, finals)
    except Exception as exc:  # the run itself is done and recorded; its explanation must not undo that
        why = f"undetermined: the diagnostics could not be computed ({type(exc).__name__}: {exc})"
        return [{"regime": "undetermined", "verdict": why[:300]} for _ in configs]


def _diagnose(prepared, configs: list, inits: list, traces: list, paths: list, statuses: list[str],
              finals: list) -> list[dict[str, Any]]:  # fmt: skip
    from .curvature import DENSE_MAX, for_prepared, not_finite

    curvature = for_prepared(prepared)
    n = len(curvature.names)
    along_path = n <= DENSE_MAX  # above, each spectrum is a Lanczos run: the start and the end only
    blocks, spans, rows = [], [], 0
    for init, path, final in zip(inits, paths, finals):
        points = [np.asarray(init, dtype=np.float64).reshape(1, n), np.asarray(final, dtype=np.float64).reshape(1, n)]
        if len(path.x) and along_path:
            points.append(np.asarray(path.x, dtype=np.float64).reshape(-1, n))
        count = sum(len(p) for p in points)
        spans.append((rows, count))
        rows += count
        blocks.extend(points)
    X = np.concatenate(blocks)
    with np.errstate(all="ignore"):
        finite = np.isfinite(X).all(axis=1)
        spectra = curvature.spectra(np.where(finite[:, None], X, 0.0))
        ends = np.array([at + 1 for at, _ in spans])  # each run's final point
        _, gradients = curvature.gradient(np.where(finite[ends, None], X[ends], 0.0))
    spectra = [s if ok else not_finite("no Hessian: the point is not finite") for s, ok in zip(spectra, finite)]
    no_path = _no_gradient_path(prepared, curvature.names)
    results = []
    for config, trace, path, status, (at, count), gradient in zip(configs, traces, paths, statuses, spans, gradients):
        start, final = spectra[at], spectra[at + 1]
        along = spectra[at + 2 : at + count]
        sharpness = None
        if len(along):
            keep = [i for i, s in enumerate(along) if s.lambda_max is not None]
            sharpness = (path.steps[keep], np.array([along[i].lambda_max for i in keep]), path.value[keep], path.rises[keep])
        names = tuple(curvature.names)
        results.append(_one(config, names, trace, status, start, final, sharpness, gradient, finite[at + 1], no_path))
    return results


def _one(config, names: tuple[str, ...], trace, status: str, start, final, sharpness, gradient: np.ndarray,
         finite: bool, no_path: tuple[str, ...]) -> dict[str, Any]:  # fmt: skip
    from .diagnostics import judge, stability_bound
    from .runs import json_number

    options = dict(config.optimizer_options)
    target = config.stop.grad_norm_below or 1e-3
    verdict = judge(trace, status, config.optimizer, options, start, final, sharpness, grad_target=target) \
        if trace is not None else None  # fmt: skip
    # the curvature the run answers to: where it started when it diverged (the far end may have none),
    # else where it ended; the other one when that has no Hessian (as judge does)
    first, second = (start, final) if verdict is not None and verdict.regime == "diverging" else (final, start)
    curvature_now = first if first.lambda_max is not None else second
    bound = stability_bound(config.optimizer, options, curvature_now.lambda_max)
    lr = float(trace.lr[-1]) if trace is not None and len(trace.lr) else float(config.lr)
    result: dict[str, Any] = {
        "regime": verdict.regime if verdict else "undetermined",
        "verdict": verdict.sentence if verdict else "undetermined: the run recorded no rows",
        "start": start.to_json(),
        "final": final.to_json(),
        "lr": lr,
        "lr_times_lambda_max": json_number(lr * curvature_now.lambda_max) if curvature_now.lambda_max is not None else None,
        "largest_stable_lr": json_number(bound.largest_stable_lr) if bound.largest_stable_lr is not None else None,
        "bound": bound.rule or None,
        "no_bound_because": bound.why_none,
        "facts": verdict.facts if verdict else {},
    }
    if sharpness is not None and len(sharpness[0]):
        result["sharpness"] = {"steps": [int(s) for s in sharpness[0]], "lambda_max": [json_number(v) for v in sharpness[1]]}
    result["gradient"] = {k: (None if k in no_path else json_number(float(g)) if finite else None)
                          for k, g in zip(names, gradient)}  # fmt: skip
    result["no_gradient_path"] = list(no_path)
    return result


def _no_gradient_path(prepared, names: tuple[str, ...]) -> tuple[str, ...]:
    """The variables with no gradient path to the objective (they appear only under detach)."""
    from .expr import gradient_paths

    if prepared.fit is not None:
        tree = prepared.fit.trainable_tree()
    else:
        expression = getattr(prepared.function.objective, "expression", None)
        if expression is None:  # a built-in n-dimensional function: every variable is on a path
            return ()
        tree = expression.tree
    reached = gradient_paths(tree)
    return tuple(name for name in names if name not in reached)


#: results.csv's columns with ``gdrun sweep --explain``: a config's regime, its sharpness at the end,
#: its bound, lr times the sharpness, the verdict
EXPLAIN_COLUMNS = ("regime", "lambda_max", "largest_stable_lr", "lr_times_lambda_max", "verdict")


def explain_cells(diagnostics: dict[str, Any] | None) -> dict[str, str]:
    """The EXPLAIN_COLUMNS of one config's results row (empty where nothing was computed)."""
    if diagnostics is None:
        return dict.fromkeys(EXPLAIN_COLUMNS, "")
    final = diagnostics.get("final") or {}
    numbers = {"lambda_max": final.get("lambda_max"), "largest_stable_lr": diagnostics.get("largest_stable_lr"),
               "lr_times_lambda_max": diagnostics.get("lr_times_lambda_max")}  # fmt: skip
    cells = {k: "" if v is None else repr(float(v)) for k, v in numbers.items()}
    return {"regime": diagnostics.get("regime", ""), **cells, "verdict": diagnostics.get("verdict", "")}


# ---------------------------------------------------------------------------- showing it


def _g(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.{digits}g}"


def curvature_text(diagnostics: dict[str, Any]) -> str:
    """"L = 2 at the start, 2 at the end (condition number 1; exact Hessian (symbolic))"."""
    start, final = diagnostics.get("start") or {}, diagnostics.get("final") or {}
    if start.get("lambda_max") is None and final.get("lambda_max") is None:
        return final.get("method") or start.get("method") or "no Hessian"
    kappa = final.get("condition_number") or start.get("condition_number")
    low = final.get("lambda_min") if final.get("lambda_min") is not None else start.get("lambda_min")
    shape = f"condition number {_g(kappa)}" if kappa is not None else f"lambda_min {_g(low)}: not convex here"
    return (f"lambda_max {_g(start.get('lambda_max'))} at the start, {_g(final.get('lambda_max'))} at the end "
            f"({shape}; {final.get('method') or start.get('method')})")  # fmt: skip


def bound_text(diagnostics: dict[str, Any]) -> str:
    """"below 1, from lr < 2/L (plain gradient descent); this run: lr = 1, lr*L = 2", or why there is none."""
    lr, product = diagnostics.get("lr"), diagnostics.get("lr_times_lambda_max")
    this = f"this run: lr = {_g(lr)}" + (f", lr*L = {_g(product, 3)}" if product is not None else "")
    if diagnostics.get("largest_stable_lr") is None:
        return f"no bound: {diagnostics.get('no_bound_because') or 'theory gives none here'}; {this}"
    return f"below {_g(diagnostics['largest_stable_lr'])}, from {diagnostics.get('bound')}; {this}"


def panel_lines(diagnostics: dict[str, Any] | None) -> list[tuple[str, str]]:
    """The closing panel's lines about why: the verdict, the curvature, the stable lr."""
    if not diagnostics:
        return []
    lines = [("verdict", diagnostics.get("verdict") or "")]
    if diagnostics.get("start") is not None:
        lines += [("curvature", curvature_text(diagnostics)), ("stable lr", bound_text(diagnostics))]
    return lines


def suggestion(diagnostics: dict[str, Any], optimizer: str, options: dict[str, Any]) -> str | None:
    """What lr to use, from the bound (and, for plain gradient descent, the best rate theory gives)."""
    from .diagnostics import best_gd

    bound = diagnostics.get("largest_stable_lr")
    if bound is None:
        return None
    text = f"any lr below {_g(bound)} is stable here"
    final = diagnostics.get("final") or {}
    plain = optimizer == "sgd" and not options.get("momentum") and not options.get("weight_decay")
    best = best_gd(final.get("lambda_min"), final.get("lambda_max")) if plain else None
    if best is not None:
        speed = "it lands on the minimum in one step" if best[1] < 1e-12 else f"each step keeps {best[1]:.0%} of the distance"
        text += f"; plain gradient descent is fastest at lr = 2/(L+mu) = {_g(best[0])} ({speed} on this quadratic model)"
    return text


def path_samples(trace, epochs: int) -> Path:
    """The recorded rows :class:`PathRecorder` would have kept (steps that are multiples of its
    stride), else evenly spaced ones (a sweep records every Nth step), as a :class:`Path`."""
    stride = max(1, math.ceil(epochs / PATH_SAMPLES))
    picked = np.flatnonzero(trace.steps % stride == 0)
    if len(picked) < 2:
        count = len(trace.steps)
        picked = np.unique(np.linspace(0, count - 1, min(count, PATH_SAMPLES + 1)).round().astype(int))
    return path_from_trace(trace.steps, trace.x, trace.value, picked)


def explain_path(path) -> tuple[Any, dict[str, Any]]:
    """(the record, its diagnostics) for a run directory or ``SWEEP_DIR/ID``, computed anew from
    its config and recorded rows, as the run computes them at its end."""
    from pathlib import Path

    from .config import validate
    from .diagnostics import Trace
    from .errors import GdrunError
    from .runner import prepare
    from .runs import open_record

    record = open_record(path)
    if record.kind == "sweep":
        raise GdrunError(f"{path} is a sweep: explain one of its configs, e.g. gdrun explain {Path(path) / '0'}")
    raw = {k: v for k, v in record.config.items() if k != "expect"}
    prepared = prepare(validate(raw), base=Path(record.path).parent, check_start=False)
    trace = trace_from_metrics(record.metrics, tuple(prepared.names))
    if trace is None:
        raise GdrunError(f"{path} recorded no rows (nothing to explain)")
    path = path_samples(trace, prepared.config.epochs)
    tail = Trace(*(a[-TAIL_ROWS:] for a in (trace.steps, trace.x, trace.value, trace.grad_norm, trace.lr)))
    diagnostics = diagnose(prepared, [prepared.config], [trace.x[0]], [tail], [path], [record.summary["status"]],
                           [trace.x[-1]])[0]  # fmt: skip
    return record, diagnostics


def print_explanation(record, diagnostics: dict[str, Any], console) -> None:
    """``gdrun explain``: the verdict with its evidence, the curvature, the bound and a suggestion."""
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    from .optim import variant_label

    summary, config = record.summary, record.config
    optimizer = config.get("optimizer", "sgd")
    options = config.get("optimizer_options") or {}
    steps = summary.get("iterations")
    lines: list[tuple[str, str]] = [
        ("run", f"{variant_label(optimizer, options)}, lr {_g(config.get('lr'))}, {steps} "
                f"{'epochs' if summary.get('kind') == 'fit' else 'steps'}: {summary.get('status')}"),
        ("verdict", diagnostics.get("verdict") or ""),
    ]  # fmt: skip
    for where in ("start", "final"):
        spectrum = diagnostics.get(where) or {}
        if spectrum:
            lines.append((f"Hessian ({'start' if where == 'start' else 'end'})", _spectrum_text(spectrum)))
    if diagnostics.get("start") is not None:
        lines.append(("stable lr", bound_text(diagnostics)))
    advice = suggestion(diagnostics, optimizer, options)
    if advice:
        lines.append(("suggestion", advice))
    sharp = diagnostics.get("sharpness")
    if sharp and sharp.get("lambda_max"):
        values = [v for v in sharp["lambda_max"] if v is not None]
        if values:
            lr = diagnostics.get("lr")
            lines.append(("sharpness", f"lambda_max along the path from {_g(min(values))} to {_g(max(values))} "
                                       f"({len(values)} points; 2/lr = {_g(2 / lr) if lr else '-'})"))  # fmt: skip
    observed = observed_text(diagnostics.get("facts") or {})
    if observed:
        lines.insert(2, ("observed", observed))
    gradient, no_path = diagnostics.get("gradient"), diagnostics.get("no_gradient_path") or []
    if gradient:
        lines.append(("gradient at the end", ", ".join(f"{k} = {'None (no path)' if k in no_path else _g(v, 6)}"
                                                       for k, v in gradient.items())))  # fmt: skip
    title = f"gdrun explain · {summary.get('function')} · {record.path}"
    if not console.is_terminal:
        console.print(title, highlight=False, soft_wrap=True)
        for key, text in lines:
            console.print(f"{key}: {text}", highlight=False, soft_wrap=True)
        return
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    for key, text in lines:
        grid.add_row(key, Text(text, style="bold" if key == "verdict" else ""))
    console.print(Panel(grid, title=title, expand=False))


def _spectrum_text(spectrum: dict[str, Any]) -> str:
    if spectrum.get("lambda_max") is None:
        return spectrum.get("method") or "no Hessian"
    eigen = spectrum.get("eigenvalues")
    listed = f"eigenvalues {', '.join(_g(v) for v in eigen)}" if eigen else \
        f"lambda_min {_g(spectrum['lambda_min'])}, lambda_max {_g(spectrum['lambda_max'])}"  # fmt: skip
    kappa = spectrum.get("condition_number")
    return f"{listed}; condition number {_g(kappa) if kappa is not None else '- (not convex here)'} ({spectrum.get('method')})"


def observed_text(facts: dict[str, Any]) -> str | None:
    """"|grad| shrinks to 98% per step (steps 5 to 10); theory 0.98" from a verdict's facts."""
    rate = facts.get("observed_rate")
    if rate is None:
        return None
    span = f" (steps {facts['rate_from_step']} to {facts['rate_to_step']})" if facts.get("rate_from_step") is not None else ""
    text = f"|grad| is multiplied by {_g(rate, 3)} per step{span}"
    if facts.get("theory_rate") is not None:
        text += f"; theory for this lr and Hessian: {_g(facts['theory_rate'], 3)}"
    return text
