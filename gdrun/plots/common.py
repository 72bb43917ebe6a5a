"""What every picture shares: a figure without pyplot, decimation of long series, a record's
function or fit rebuilt from its config, its path as arrays, and the colours of the statuses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

MAX_POINTS = 4000  # points drawn per series: a 100,000-step path is decimated to about this many
STATUS_COLORS = {
    "converged": "#2ca02c",
    "max_epochs": "#1f77b4",
    "diverged": "#d62728",
    "interrupted": "#ff7f0e",
    "failed": "#7f7f7f",
    "running": "#9467bd",
}
DPI = 100


def new_figure(width: float = 10.0, height: float = 4.5):
    """A matplotlib Figure on the Agg canvas (no pyplot: no display, no global figure list)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def decimate(count: int, *series: np.ndarray, max_points: int = MAX_POINTS) -> np.ndarray:
    """Indices of at most about ``max_points`` rows of ``count`` to draw: in each of
    ``max_points // 4`` buckets the first and last row and, for every series given, its smallest and
    largest (so every turning point that shapes the picture, the first and the last row stay)."""
    if count <= max_points:
        return np.arange(count)
    buckets = max(1, max_points // (2 + 2 * max(1, len(series))))
    edges = np.linspace(0, count, buckets + 1).astype(int)
    keep = [edges[:-1], np.maximum(edges[1:] - 1, 0)]
    for s in series:
        s = np.asarray(s, dtype=np.float64)
        if s.ndim > 1:
            for column in s.reshape(len(s), -1).T:
                keep += _extremes(column, edges)
        else:
            keep += _extremes(s, edges)
    return np.unique(np.concatenate(keep + [np.array([0, count - 1])]))


def _extremes(values: np.ndarray, edges: np.ndarray) -> list[np.ndarray]:
    """The index of the smallest and of the largest finite value in each bucket."""
    finite = np.where(np.isfinite(values), values, np.nan)
    lows, highs = [], []
    for a, b in zip(edges[:-1], edges[1:]):
        chunk = finite[a:b]
        if b > a and not np.isnan(chunk).all():
            lows.append(a + int(np.nanargmin(chunk)))
            highs.append(a + int(np.nanargmax(chunk)))
    return [np.array(lows, dtype=int), np.array(highs, dtype=int)]


@dataclass
class RunPath:
    """A run's recorded rows as arrays (names: the variables that moved, in order)."""

    names: tuple[str, ...]
    steps: np.ndarray  # (T,) the step (a fit: the epoch) of each row
    x: np.ndarray  # (T, n)
    value: np.ndarray  # (T,)
    grad_norm: np.ndarray  # (T,)
    lr: np.ndarray  # (T,)


def run_path(record) -> RunPath:
    """The rows of a run (or of one config of a sweep) from its metrics, as read by open_record."""
    from ..explain import trace_from_metrics

    fixed = {"epoch", "step", "updates", "value", "grad_norm", "lr"}
    names = tuple(k for k in record.metrics if k not in fixed)
    rows = trace_from_metrics(record.metrics, names)  # the one reading of a run's rows (explain's too)
    return RunPath(names, rows.steps, rows.x, rows.value, rows.grad_norm, rows.lr)


def objective_values(record) -> tuple[Callable[[np.ndarray], np.ndarray], tuple[str, ...]]:
    """``f(X) -> values`` (X of shape (B, n), numpy, never torch) of the function a run minimised,
    and its variables, rebuilt from the run's config (a built-in, or an expression with its let)."""
    from ..config import parse_let
    from ..expr import Namespace
    from ..functions import resolve

    config = record.config
    function = resolve(config["function"], config.get("dim"), parse_let(config.get("let")))
    value = function.objective.value_fn(Namespace(np))

    def f(X: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            return np.broadcast_to(np.asarray(value(np.asarray(X, dtype=np.float64)), dtype=np.float64), (len(X),))

    return f, function.variables


def resolved_fit(record) -> Any:
    """The fit of a fit run (model, data, inputs, parameters, frozen values), rebuilt from its config."""
    from pathlib import Path

    from ..config import validate
    from ..fitting import resolve_fit

    config = validate({k: v for k, v in record.config.items() if k != "expect"})
    return resolve_fit(config.fit, config.seed, Path(record.path).parent, config.init)


def known_minima(record) -> list[tuple[float, ...]]:
    """The known minima of a built-in function, as points: the run's summary lists them; a config of
    a sweep (whose summary is rebuilt from results.csv) asks the registry."""
    listed = record.summary.get("known_minima")
    if listed:
        return [tuple(m["point"]) for m in listed]
    function = record.config.get("function")
    if record.summary.get("kind") == "fit" or not isinstance(function, str):
        return []
    from ..functions import REGISTRY

    builtin = REGISTRY.get(function.strip().lower())
    if builtin is None:
        return []
    dim = builtin.dimension(record.config.get("dim"))
    return [tuple(m.point) for m in builtin.minima(dim)]


def label_of(record) -> str:
    """A short legend entry: the optimizer with its options and lr (a comparison's variants differ there)."""
    from ..optim import variant_label

    config = record.config
    return f"{variant_label(config.get('optimizer', 'sgd'), config.get('optimizer_options'))} lr={config.get('lr')}"
