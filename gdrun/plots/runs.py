"""Pictures of minimize runs: one run (:func:`run_figure`), several on one picture
(:func:`overlay_figure`) and a 1-D or 2-D path growing as a GIF (:func:`animate_path`).

One run: on the left the function with the run on it (a 1-D function: the curve f(x) with the
iterates joined in order; a 2-D function: the path on a filled contour; more variables: no function
panel, the title says why), on the right value and |grad| against step (log where they are
positive and span more than two decades), lr on a twin axis when a schedule changes it, and a
diverged run's last finite row marked. Non-finite rows are never drawn.

Every artist a test (or a reader) looks for carries a gid: "curve", "contour", "path",
"start", "end", "minima", "value", "grad", "lr", "last_finite"; the axes carry a label:
"function", "value", "grad", "lr".
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import GdrunError
from .common import STATUS_COLORS, RunPath, decimate, known_minima, label_of, new_figure, objective_values, run_path

GRID = 200  # contour grid: GRID x GRID points, evaluated once
CURVE_POINTS = 801  # points of a 1-D curve
MARGIN = 0.12  # of the span, around the path and the minima
LOG_DECADES = 2.0  # a positive series spanning more than this many decades is drawn on a log scale
MAX_FRAMES = 100
ANIMATE_ERROR = "--animate draws fits and runs of 1-D or 2-D functions"
START_COLOR = STATUS_COLORS["converged"]
END_COLOR = "#d62728"
MINIMUM_COLOR = "#ffd700"


# ---------------------------------------------------------------------------------------- the data


@dataclass
class _Run:
    """One run ready to draw: its rows (the finite ones only) and how it is labelled."""

    record: Any
    path: RunPath
    rows: np.ndarray  # indices of the finite rows (every coordinate, value and |grad| finite)
    label: str
    color: str

    @property
    def dropped(self) -> int:
        return len(self.path.steps) - len(self.rows)

    @property
    def last(self) -> int:
        return int(self.rows[-1]) if len(self.rows) else -1


def _run(record, label: str = "", color: str = "C3") -> _Run:
    p = run_path(record)
    finite = np.isfinite(p.value) & np.isfinite(p.grad_norm) & np.isfinite(p.x).all(axis=1)
    return _Run(record, p, np.flatnonzero(finite), label, color)


def _is_fit(record) -> bool:
    return record.summary.get("kind") == "fit" or bool(record.config.get("fit"))


def _function(record, names: tuple[str, ...]) -> tuple[Callable[[np.ndarray], np.ndarray], np.ndarray] | None:
    """The function a run minimised as ``f(X)`` over the columns of its path (a permutation of the
    function's variables), or None when it cannot be rebuilt (a fit, an unreadable config)."""
    if _is_fit(record) or not record.config.get("function"):
        return None
    try:
        f, variables = objective_values(record)
    except Exception:  # noqa: BLE001 - a picture without the function beats no picture
        return None
    if sorted(variables) != sorted(names):
        return None
    order = np.array([names.index(v) for v in variables])  # path column of each function variable
    return (lambda X: f(np.asarray(X)[:, order])), order


def _minima(record, names: tuple[str, ...]) -> np.ndarray:
    """The known minima as rows in the path's column order."""
    points = [p for p in known_minima(record) if len(p) == len(names)]
    return np.array(points, dtype=np.float64).reshape(len(points), len(names))


def _name(record) -> str:
    return str(record.summary.get("name") or record.config.get("name") or Path(record.path).name)


def _function_name(record) -> str:
    text = str(record.summary.get("function") or record.config.get("function") or "?")
    if _is_fit(record):
        text = str(record.summary.get("model") or text)
    if (record.config.get("dim") or 0) > 2 and text.isidentifier():
        text += f" (dim {record.config['dim']})"
    return text if len(text) <= 48 else text[:45] + "..."


def _same_function(records) -> bool:
    keys = {(str(r.config.get("function")), r.config.get("dim"), repr(r.config.get("let") or {})) for r in records}
    return len(keys) == 1 and not any(_is_fit(r) for r in records)


# -------------------------------------------------------------------------------------- the scales


def _wide(*series: np.ndarray) -> bool:
    """Log scale: every finite value positive, spanning more than LOG_DECADES decades."""
    values = np.concatenate([np.asarray(s, dtype=np.float64).ravel() for s in series] or [np.zeros(0)])
    values = values[np.isfinite(values)]
    if values.size == 0 or (values <= 0).any():
        return False
    return float(np.log10(values.max() / values.min())) > LOG_DECADES


def _span(lo: float, hi: float) -> tuple[float, float]:
    """[lo, hi] with a margin; a single point gets a unit-sized (or 10%) window."""
    width = hi - lo
    if not np.isfinite(width) or width <= 0:
        pad = max(1.0, 0.1 * abs(lo)) if np.isfinite(lo) else 1.0
        return lo - pad, hi + pad
    return lo - MARGIN * width, hi + MARGIN * width


def _region(points: np.ndarray, minima: np.ndarray) -> np.ndarray:
    """The box (n, 2: low, high per column) holding ``points`` and the nearest known minima (the
    one closest to the last point, and any inside the points' own box), with a margin."""
    lo, hi = points.min(axis=0), points.max(axis=0)
    if len(minima):
        inside = np.all((minima >= lo) & (minima <= hi), axis=1)
        nearest = np.argmin(np.linalg.norm(minima - points[-1], axis=1))
        inside[nearest] = True
        lo = np.minimum(lo, minima[inside].min(axis=0))
        hi = np.maximum(hi, minima[inside].max(axis=0))
    return np.array([_span(float(a), float(b)) for a, b in zip(lo, hi)])


# ------------------------------------------------------------------------------- the function panel


def _curve_panel(ax, f, runs: list[_Run], minima: np.ndarray, name: str, markers: bool = True) -> None:
    """A 1-D function: f over a range holding every iterate and the known minima, the iterates on it."""
    xs = np.concatenate([r.path.x[r.rows, 0] for r in runs] + [minima[:, 0]])
    (lo, hi) = _span(float(xs.min()), float(xs.max()))
    grid = np.linspace(lo, hi, CURVE_POINTS)
    ax.plot(grid, f(grid[:, None]), color="0.45", lw=1.4, zorder=1, gid="curve", label=f"f({name})")
    for i, run in enumerate(runs):
        _draw_path(ax, run, lambda r, idx: (r.path.x[idx, 0], r.path.value[idx]), markers, len(runs) > 1, i)
    if len(minima):
        ax.plot(minima[:, 0], f(minima), ls="none", marker="*", ms=15, mfc=MINIMUM_COLOR, mec="black", zorder=6,
                gid="minima", label="known minimum")  # fmt: skip
    ax.set_xlim(lo, hi)
    ax.set_xlabel(name)
    ax.set_ylabel(f"f({name})")
    ax.set_label("function")


def _contour_panel(fig, ax, f, runs: list[_Run], minima: np.ndarray, names: tuple[str, ...], markers: bool = True):
    """A 2-D function: a filled contour over a region holding every path and the nearest minima."""
    points = np.concatenate([r.path.x[r.rows] for r in runs])
    box = _region(points, minima)
    xs, ys = np.linspace(*box[0], GRID), np.linspace(*box[1], GRID)
    X, Y = np.meshgrid(xs, ys)
    Z = f(np.column_stack([X.ravel(), Y.ravel()])).reshape(X.shape)
    floor = float(np.nanmin(f(minima))) if len(minima) else None
    cs = _filled_contour(fig, ax, X, Y, Z, floor)
    for i, run in enumerate(runs):
        _draw_path(ax, run, lambda r, idx: (r.path.x[idx, 0], r.path.x[idx, 1]), markers, len(runs) > 1, i)
    minima_and_box(ax, minima, box, names)
    ax.set_label("function")
    return cs


def minima_and_box(ax, minima: np.ndarray, box: np.ndarray, names) -> None:
    """The known minima inside ``box`` as stars, the axes limited to ``box`` and named."""
    shown = minima[np.all((minima >= box[:, 0]) & (minima <= box[:, 1]), axis=1)] if len(minima) else minima
    if len(shown):
        ax.plot(shown[:, 0], shown[:, 1], ls="none", marker="*", ms=16, mfc=MINIMUM_COLOR, mec="black", zorder=6,
                gid="minima", label="known minimum")  # fmt: skip
    ax.set_xlim(*box[0])
    ax.set_ylim(*box[1])
    ax.set_xlabel(names[0])
    ax.set_ylabel(names[1])


def _filled_contour(fig, ax, X, Y, Z, floor: float | None = None):
    """contourf of Z, on log-spaced levels of Z - min + tiny when its range over the region is wide
    (rosenbrock, beale), else on linear ones; a colorbar. ``floor``: the lowest value known (a
    known minimum's), subtracted instead of the grid's when lower. Non-finite values stay blank."""
    from matplotlib.colors import LogNorm
    from matplotlib.ticker import LogFormatterSciNotation, LogLocator, MaxNLocator

    finite = np.isfinite(Z)
    if finite.sum() < 4:
        return None
    zmin, zmax = float(Z[finite].min()), float(Z[finite].max())
    if floor is not None and np.isfinite(floor) and floor < zmin:
        zmin = floor
    if zmax <= zmin:
        zmax = zmin + 1.0
    d = Z - zmin
    positive = d[finite & (d > 0)]
    log = False
    if positive.size > 8:
        q05, q50, q95 = np.quantile(positive, [0.05, 0.5, 0.95])
        # wide: most of the region lies far below its top (rosenbrock's valley, beale), not a bowl
        log = (zmax - zmin) > 6 * q50 or q95 > 1e3 * q05
    cmap = _contour_cmap()
    if log:
        tiny = (zmax - zmin) * 1e-12
        low = max(float(np.quantile(positive, 0.002)), tiny)
        levels = np.geomspace(low, zmax - zmin, 24)
        cs = ax.contourf(X, Y, np.ma.masked_invalid(d + tiny), levels=levels, norm=LogNorm(levels[0], levels[-1]),
                         cmap=cmap, extend="min", zorder=0)  # fmt: skip
        bar = fig.colorbar(cs, ax=ax, pad=0.01, fraction=0.06, ticks=LogLocator(), format=LogFormatterSciNotation())
        bar.set_label("f (log scale)" if zmin == 0 else f"f - ({zmin:.4g}), log scale")
    else:
        levels = MaxNLocator(20).tick_values(zmin, zmax)  # round numbers on the colorbar
        cs = ax.contourf(X, Y, np.ma.masked_invalid(Z), levels=levels, cmap=cmap, zorder=0)
        bar = fig.colorbar(cs, ax=ax, pad=0.01, fraction=0.06)
        bar.set_label("f")
    cs.set_gid("contour")
    bar.ax.set_label("colorbar")
    return cs


def _contour_cmap():
    """Light greys: low values white, so coloured paths and black-edged markers stay readable."""
    from matplotlib import colormaps
    from matplotlib.colors import ListedColormap

    return ListedColormap(colormaps["Greys"](np.linspace(0.0, 0.62, 256)), name="gdrun_greys")


def _draw_path(ax, run: _Run, coords, markers: bool, several: bool, order: int = 0) -> None:
    """The run's finite rows (decimated, keeping first, last and turning points) joined in order,
    its start and end marked. Several runs: the first drawn widest, so a path that another one
    covers still shows as its border."""
    p, rows = run.path, run.rows
    if not len(rows):
        return
    keep = rows[decimate(len(rows), p.x[rows], p.value[rows])]
    x, y = coords(run, keep)
    dense = len(keep) > 300
    marker = "o" if markers and not (dense and several) else None
    width = max(1.0, 2.8 - 0.6 * order) if several else 1.0
    ax.plot(x, y, color=run.color, lw=width, marker=marker, ms=1.2 if dense else 4, alpha=0.9, zorder=3,
            gid="path", label=run.label if several else "iterates")  # fmt: skip
    (x0, y0), (x1, y1) = coords(run, rows[:1]), coords(run, rows[-1:])
    first = not several or order == 0
    ax.plot(x0, y0, ls="none", marker="o", ms=11, mfc="none", mec="black" if several else START_COLOR, mew=2.0,
            zorder=5, gid="start", label=None if not first else f"start (step {int(p.steps[rows[0]])})")  # fmt: skip
    diverged = run.record.summary.get("status") == "diverged"
    end = "last finite row" if run.dropped else "end"
    ax.plot(x1, y1, ls="none", marker="X" if diverged else "s", ms=8, mfc=run.color if several else END_COLOR,
            mec="black", zorder=5, gid="end",
            label=None if not first else ("end (each run's colour)" if several else f"{end} (step {int(p.steps[rows[-1]])})"))  # fmt: skip


def _function_panel(fig, ax, f, runs, minima, names, markers=True) -> None:
    if len(names) == 1:
        _curve_panel(ax, f, runs, minima, names[0], markers)
    else:
        _contour_panel(fig, ax, f, runs, minima, names, markers)
    order = {"curve": 0, "path": 1, "start": 2, "end": 3, "minima": 4}
    pairs = [(h, l) for h, l in zip(*ax.get_legend_handles_labels())]
    pairs.sort(key=lambda pair: order.get(pair[0].get_gid(), 5))  # the variants first, in order
    ax.legend([h for h, _ in pairs], [l for _, l in pairs], loc="best", fontsize=8, framealpha=0.85)


# ------------------------------------------------------------------------------------- the curves


def _curves(ax_v, ax_g, runs: list[_Run], x_label: str) -> None:
    """Value and |grad| against step (log where wide), lr on a twin axis when it changes, the last
    finite row of a diverged run marked."""
    several = len(runs) > 1
    drawn = []
    for run in runs:
        p, rows = run.path, run.rows
        if not len(rows):
            continue
        keep = rows[decimate(len(rows), p.value[rows], p.grad_norm[rows], p.lr[rows])]
        steps = p.steps[keep]
        ax_v.plot(steps, p.value[keep], color=run.color if several else "C0", lw=1.3, gid="value",
                  label=run.label if several else "value")  # fmt: skip
        ax_g.plot(steps, p.grad_norm[keep], color=run.color if several else "C1", lw=1.3, gid="grad",
                  label=run.label if several else "|grad|")  # fmt: skip
        drawn.append((run, keep))
        if run.record.summary.get("status") == "diverged":
            last = run.last
            for ax, series in ((ax_v, p.value), (ax_g, p.grad_norm)):
                ax.plot([p.steps[last]], [series[last]], ls="none", marker="X", ms=10, mfc=STATUS_COLORS["diverged"],
                        mec="black", zorder=5, gid="last_finite",
                        label=None if several or ax is ax_g else f"last finite row (step {int(p.steps[last])})")  # fmt: skip
    for ax, key in ((ax_v, "value"), (ax_g, "grad_norm")):
        ax.set_yscale("log" if _wide(*[getattr(run.path, key)[keep] for run, keep in drawn]) else "linear")
        ax.grid(True, which="major", alpha=0.3)
    ax_v.set_ylabel("value")
    ax_g.set_ylabel("|grad|")
    ax_v.set_label("value")
    ax_g.set_label("grad")
    ax_g.set_xlabel(x_label)
    ax_v.tick_params(labelbottom=False)
    changing = [(run, keep) for run, keep in drawn if np.ptp(run.path.lr[run.rows]) > 0]
    if changing:
        ax_lr = ax_v.twinx()
        for run, keep in changing:
            ax_lr.plot(run.path.steps[keep], run.path.lr[keep], color=run.color if several else "0.35", ls="--",
                       lw=1.0, drawstyle="steps-post", gid="lr", label=f"lr ({run.label})" if several else "lr")  # fmt: skip
        ax_lr.set_ylabel("lr (dashed)")
        ax_lr.set_label("lr")
        if _wide(*[run.path.lr[keep] for run, keep in changing]):
            ax_lr.set_yscale("log")
    if not several:
        handles, labels = [], []
        for ax in [ax_v] + ([ax_lr] if changing else []):
            h, l = ax.get_legend_handles_labels()
            handles += h
            labels += l
        if len(handles) > 1:  # "value" alone says nothing the axis label does not
            ax_v.legend(handles, labels, loc="best", fontsize=8, framealpha=0.85)


# ---------------------------------------------------------------------------------------- figures


def _title(record, run: _Run, note: str = "") -> str:
    summary = record.summary
    status = summary.get("status", "?")
    parts = [_function_name(record), label_of(record), status]
    diagnostics = summary.get("diagnostics")
    if isinstance(diagnostics, dict) and diagnostics.get("regime"):
        parts.append(str(diagnostics["regime"]))
    line = " · ".join(parts)
    if record.kind == "sweep config":
        line = f"{Path(record.path).parent.name} config {Path(record.path).name}: {line}"
    lines = [line]
    if status == "diverged":
        reason = str(summary.get("reason") or "")
        reason = reason if len(reason) <= 70 else reason[:67] + "..."
        if run.dropped and run.last >= 0:
            lines.append(f"{reason}; drawn to step {int(run.path.steps[run.last])}, the last finite row")
        else:
            lines.append(reason)
    if note:
        lines.append(note)
    return "\n".join(l for l in lines if l)


def run_figure(record):
    """One minimize run (a run directory, or one config of a sweep): the function with the run on
    it (1-D: curve; 2-D: contour; more: none), value and |grad| against step."""
    run = _run(record)
    names = run.path.names
    rebuilt = _function(record, names) if len(names) in (1, 2) and len(run.rows) else None
    note = ""
    if len(names) > 2:
        note = f"{len(names)} variables: no contour (a picture of f needs 1 or 2)"
    elif rebuilt is None and len(names) in (1, 2) and not _is_fit(record):
        note = "no function panel: the function could not be rebuilt from config.yaml" if len(run.rows) else \
               "no finite row to draw"  # fmt: skip
    x_label = "epoch" if "epoch" in record.metrics else "step"
    if rebuilt is not None:
        fig = new_figure(13.0, 5.2)
        axes = fig.subplot_mosaic([["function", "value"], ["function", "grad"]], width_ratios=[1.25, 1])
        f, _ = rebuilt
        _function_panel(fig, axes["function"], f, [run], _minima(record, names), names)
    else:
        fig = new_figure(12.0, 4.5)
        axes = fig.subplot_mosaic([["value", "grad"]])
    _curves(axes["value"], axes["grad"], [run], x_label)
    if rebuilt is None:  # side by side: both need a step axis
        axes["value"].tick_params(labelbottom=True)
        axes["value"].set_xlabel(x_label)
    else:
        axes["value"].sharex(axes["grad"])
    fig.suptitle(_title(record, run, note), fontsize=11)
    return fig


def _labels(records) -> list[str]:
    """Legend entries: the variants (common.label_of) when they differ; else the run names; else
    the directory names."""
    if _same_function(records):
        labels = [label_of(r) for r in records]
        if len(set(labels)) == len(labels):
            return labels
    labels = [_name(r) for r in records]
    if len(set(labels)) == len(labels):
        return labels
    labels = [Path(r.path).name for r in records]
    if len(set(labels)) == len(labels):
        return labels
    return [f"{i + 1}: {l}" for i, l in enumerate(labels)]


def overlay_figure(records):
    """Several runs on one picture: all paths on one contour (one 2-D function) or on one curve
    (one 1-D function), all value and |grad| curves on one axis each, a legend of the variants."""
    labels = _labels(records)
    colors = [f"C{i % 10}" for i in range(len(records))]
    runs = [_run(r, label, color) for r, label, color in zip(records, labels, colors)]
    names = runs[0].path.names
    rebuilt = None
    note = ""
    if _same_function(records) and all(r.path.names == names for r in runs) and all(len(r.rows) for r in runs):
        if len(names) in (1, 2):
            rebuilt = _function(records[0], names)
        elif names:
            note = f"{len(names)} variables: no contour (a picture of f needs 1 or 2)"
    elif not _same_function(records):
        note = "different functions: curves only"
    x_label = "epoch" if all(_is_fit(r) for r in records) else "step"
    if rebuilt is not None:
        fig = new_figure(13.0, 5.6)
        axes = fig.subplot_mosaic([["function", "value"], ["function", "grad"]], width_ratios=[1.25, 1])
        _function_panel(fig, axes["function"], rebuilt[0], runs, _minima(records[0], names), names)
        axes["value"].sharex(axes["grad"])
    else:
        fig = new_figure(12.0, 4.8)
        axes = fig.subplot_mosaic([["value", "grad"]])
    _curves(axes["value"], axes["grad"], runs, x_label)
    if rebuilt is None:
        axes["value"].tick_params(labelbottom=True)
        axes["value"].set_xlabel(x_label)
    if rebuilt is None:
        axes["value"].legend(loc="best", fontsize=8, framealpha=0.85)
    statuses = ", ".join(f"{l}: {r.summary.get('status', '?')}" for l, r in zip(labels, records))
    if _same_function(records):
        head = f"{_function_name(records[0])}: {len(records)} runs"
    else:
        head = f"{len(records)} runs of " + ", ".join(dict.fromkeys(_function_name(r) for r in records))
    statuses = statuses if len(statuses) <= 110 else statuses[:107] + "..."
    fig.suptitle("\n".join(l for l in (head, statuses, note) if l), fontsize=11)
    return fig


# -------------------------------------------------------------------------------------- animation


def _gif_writer_class():
    from matplotlib.animation import PillowWriter
    from PIL import Image

    class GifWriter(PillowWriter):
        """PillowWriter whose frames share one palette, taken from the last (fullest) frame: no
        colour flicker between frames, and mapping a frame onto it is ~50x faster than
        quantising each frame afresh."""

        def finish(self):
            frames = [f.convert("RGB") for f in self._frames]
            palette = frames[-1].quantize(colors=256)
            frames = [f.quantize(palette=palette, dither=Image.Dither.NONE) for f in frames]
            frames[0].save(self.outfile, format="GIF", save_all=True, append_images=frames[1:],
                           duration=int(1000 / self.fps), loop=0)  # fmt: skip

    return GifWriter


def _GifWriter(fps: int):
    return _gif_writer_class()(fps=fps)


def animate_path(record, out: Path) -> Path:
    """An animated GIF of a 1-D or 2-D run: the path growing on the curve or the contour (at most
    MAX_FRAMES frames), written whole to ``out``."""
    from matplotlib.animation import FuncAnimation

    out = Path(out)
    run = _run(record)
    names = run.path.names
    if _is_fit(record) or len(names) not in (1, 2):
        raise GdrunError(ANIMATE_ERROR)
    rebuilt = _function(record, names) if len(run.rows) else None
    if rebuilt is None:
        raise GdrunError(f"--animate: the function of {record.path} cannot be rebuilt from its config, or no row is finite")
    fig = new_figure(6.4, 4.8)
    fig.set_dpi(80)
    ax = fig.add_subplot()
    _function_panel(fig, ax, rebuilt[0], [run], _minima(record, names), names, markers=True)
    ax.set_title(_title(record, run).split("\n")[0], fontsize=10)
    fig.canvas.draw()  # the layout and the limits once, with the whole path; then frozen
    ax.set_xlim(ax.get_xlim())
    ax.set_ylim(ax.get_ylim())
    fig.set_layout_engine("none")
    path = next(a for a in ax.lines if a.get_gid() == "path")
    head = next(a for a in ax.lines if a.get_gid() == "end")
    path.set_data([], [])
    head.set_data([], [])
    # Everything but the growing path is drawn once, then shown as one image under it: a frame
    # costs a line and a label, not the contour, the ticks and the colorbar again.
    fig.canvas.draw()
    background = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    for artist in ax.get_children():
        if artist not in (path, head, ax.patch):
            artist.set_visible(False)
    ax.set_axis_off()
    for other in fig.axes:
        if other is not ax:
            other.set_visible(False)
    fig.figimage(background, origin="upper", zorder=-1)  # pixel for pixel: nothing to resample
    label = ax.text(0.98, 0.02, "", transform=ax.transAxes, ha="right", va="bottom", fontsize=9,
                    bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "none"})  # fmt: skip
    p, rows = run.path, run.rows
    keep = rows[decimate(len(rows), p.x[rows], p.value[rows])]
    if len(names) == 1:
        xs, ys = p.x[keep, 0], p.value[keep]
    else:
        xs, ys = p.x[keep, 0], p.x[keep, 1]
    frames = np.unique(np.linspace(1, len(keep), min(MAX_FRAMES, len(keep))).round().astype(int))

    def draw(k: int):
        path.set_data(xs[:k], ys[:k])
        head.set_data(xs[k - 1 : k], ys[k - 1 : k])
        label.set_text(f"step {int(p.steps[keep[k - 1]])}")
        return path, head, label

    fig.canvas.draw_idle = lambda *args, **kwargs: None  # the writer draws each frame once; not twice
    animation = FuncAnimation(fig, draw, frames=[int(k) for k in frames], blit=False, repeat=False)
    tmp = out.with_name(f".{out.stem}.{os.getpid()}-{secrets.token_hex(3)}.tmp.gif")
    try:
        animation.save(tmp, writer=_GifWriter(fps=10))
        os.replace(tmp, out)
    except OSError as exc:
        raise GdrunError(f"cannot write {out}: {exc.strerror or exc}") from None
    finally:
        tmp.unlink(missing_ok=True)
    return out
