"""Pictures of a fit: what the write-ups drew (E3 the data and the fitted line, E5 the parabola
redrawn after every epoch).

:func:`fit_figure` has two panels. Left, for a model of one input: the data points, the model
before training (the first row of metrics.csv, dashed) and after (the last row, solid), and the
model at several epochs in between, fading from light to dark (the colorbar says which epochs);
the y-limits follow the data and the final model, so a start far off (E5) does not squash the
picture, and a note with an arrow says which early curves leave the frame. For a model of several
inputs: predicted against target for the data, before and after, with the line y = x. Right: the
full-data loss against epoch (log scale when it spans over two decades), with lr on a twin axis
when a schedule changes it. :func:`animate_fit` writes the same as a GIF, epoch by epoch.

The model and data are rebuilt from the run's config (:func:`.common.resolved_fit`) and evaluated
with numpy only on the curves drawn; the loss curve is decimated (:func:`.common.decimate`), so a
fit of 10,000 epochs draws in a fraction of a second. torch is never imported.

Every artist a test (or a reader) may look for carries a gid: ``data``, ``before``, ``after``,
``epoch:<E>`` (the curves in between), ``identity``, ``offframe:below`` / ``offframe:above``
(the notes), ``hidden`` (the note on curves lying on the final one), ``loss``, ``loss-marks``, ``lr``.
"""

from __future__ import annotations

import math
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import GdrunError
from .common import STATUS_COLORS, decimate, label_of, new_figure, resolved_fit, run_path

DEFAULT_CURVES = 8  # curves a default figure draws, the first and the last included (about)
MAX_CURVES = 60  # at most this many curves, whatever ``every`` asks
MAX_FRAMES = 100  # frames of a GIF, the pause on the last one included
HOLD_FRAMES = 4  # the last frame is shown this many times more (a pause before the loop)
GRID_POINTS = 400  # points of the dense grid a one-input model is drawn on
MAX_SHOWN_POINTS = 5000  # data points drawn (a bigger data set is thinned evenly)
CMAP = "viridis_r"  # light (early) to dark (late); sequential
CMAP_RANGE = (0.12, 1.0)  # the part of CMAP used: its palest end is too light on white
BEFORE_COLOR = "#7f7f7f"
DATA_COLOR = "#d62728"
AFTER_COLOR = "#31688e"  # the moving model of a GIF
FRAME_PAD = 0.06  # y-limits: this fraction of the span above and below
FRAME_FINAL_RATIO = 10.0  # the final model is framed unless that takes over this times the data's span
FRAME_ALL_RATIO = 2.0  # every curve is framed when that takes at most this times the data's span


# ---------------------------------------------------------------------------- the fit read back


@dataclass
class _Fit:
    """What both pictures need: the fit, its rows and the model as a numpy function."""

    record: Any
    fit: Any
    epochs: np.ndarray  # (T,)
    names: tuple[str, ...]  # the trainable parameters, as metrics.csv names them
    params: np.ndarray  # (T, n)
    loss: np.ndarray  # (T,)
    lr: np.ndarray  # (T,)
    frozen: dict[str, float]
    shown: np.ndarray  # indices of the data points drawn

    @property
    def inputs(self) -> tuple[str, ...]:
        return tuple(self.fit.inputs)

    @property
    def target_name(self) -> str:
        return self.fit.spec.target

    def column(self, name: str) -> np.ndarray:
        return np.asarray(self.fit.data[name], dtype=np.float64)[self.shown]

    def evaluate(self, rows: np.ndarray, columns: dict[str, np.ndarray]) -> np.ndarray:
        """The model at ``columns`` (each of G points) for the parameters of ``rows``: (K, G)."""
        from ..expr import Namespace, compile_tree

        rows = np.asarray(rows, dtype=int)
        size = len(next(iter(columns.values()))) if columns else len(self.shown)
        env: dict[str, Any] = {k: np.asarray(v, dtype=np.float64)[None, :] for k, v in columns.items()}
        env.update({k: np.float64(v) for k, v in self.frozen.items()})
        env.update({name: self.params[rows, j][:, None] for j, name in enumerate(self.names)})
        with np.errstate(all="ignore"):
            out = compile_tree(self.fit.model.tree, Namespace(np))(env)
        return np.array(np.broadcast_to(np.asarray(out, dtype=np.float64), (len(rows), size)))


def _read(record) -> _Fit:
    if record.summary.get("kind") != "fit":
        raise GdrunError(f"{record.path} is not a fit (its summary has kind {record.summary.get('kind')!r})")
    fit = resolved_fit(record)
    path = run_path(record)
    if len(path.steps) == 0:
        raise GdrunError(f"{record.path} has no recorded rows yet: nothing to plot")
    frozen = {**{k: float(v) for k, v in (record.summary.get("frozen") or {}).items()}, **fit.frozen}
    names = tuple(n for n in path.names if n in fit.model.variables and n not in fit.inputs and n not in frozen)
    missing = [p for p in fit.model.variables if p not in fit.inputs and p not in names and p not in frozen]
    if missing:
        raise GdrunError(f"{record.path}: metrics.csv has no column for the parameter '{missing[0]}'")
    columns = [path.names.index(n) for n in names]
    n_points = len(fit.target)
    shown = np.arange(n_points) if n_points <= MAX_SHOWN_POINTS else \
        np.unique(np.linspace(0, n_points - 1, MAX_SHOWN_POINTS).astype(int))  # fmt: skip
    return _Fit(record, fit, path.steps, names, path.x[:, columns], path.value, path.lr, frozen, shown)


# ---------------------------------------------------------------------------- which epochs


def _nice_step(span: int) -> int:
    """A round number of epochs (1, 2, 5 times a power of ten) that cuts ``span`` into about
    DEFAULT_CURVES - 1 pieces."""
    if span <= 0:
        return 1
    best, best_miss = 1, math.inf
    for power in range(0, 10):
        for unit in (1, 2, 5):
            step = unit * 10**power
            if step > span:
                break
            count = span // step + 1 + (1 if span % step else 0)
            miss = abs(count - DEFAULT_CURVES)
            if miss < best_miss:
                best, best_miss = step, miss
    return best


def _chosen_rows(epochs: np.ndarray, every: int | None, most: int) -> tuple[np.ndarray, int]:
    """Row indices of the curves to draw: the first row, one every ``every`` epochs (by default a
    round step giving about DEFAULT_CURVES curves) and the last row; at most ``most``. Also the
    step used (``every``, or larger when that would draw more than ``most``)."""
    if every is not None and (isinstance(every, bool) or int(every) != every or every < 1):
        raise GdrunError(f"--every must be a whole number of epochs, at least 1, got {every!r}")
    first, last = int(epochs[0]), int(epochs[-1])
    span = last - first
    step = int(every) if every is not None else _nice_step(span)
    if span // step + 2 > most:
        step = math.ceil(span / max(1, most - 2))
    wanted = (epochs - first) % step == 0
    wanted[0] = wanted[-1] = True
    return np.flatnonzero(wanted), step


def _frame_rows(epochs: np.ndarray, every: int | None) -> np.ndarray:
    """Rows of the GIF's frames: every row (or one every ``every`` epochs) up to MAX_FRAMES."""
    most = MAX_FRAMES - HOLD_FRAMES
    if every is not None:
        return _chosen_rows(epochs, every, most)[0]
    if len(epochs) <= most:
        return np.arange(len(epochs))
    return np.unique(np.linspace(0, len(epochs) - 1, most).round().astype(int))


# ---------------------------------------------------------------------------- framing


def _span(values: np.ndarray) -> tuple[float, float] | None:
    finite = values[np.isfinite(values)]
    return (float(finite.min()), float(finite.max())) if finite.size else None


def _padded(lo: float, hi: float) -> tuple[float, float]:
    if hi - lo <= 0:
        pad = max(abs(lo), 1.0) * 0.1
        return lo - pad, hi + pad
    pad = (hi - lo) * FRAME_PAD
    return lo - pad, hi + pad


def _padded_x(lo: float, hi: float) -> tuple[float, float]:
    """x-limits a little wider than the data (the grid), so the end points show whole."""
    pad = (hi - lo) * 0.02
    return lo - pad, hi + pad


def _frame(data: np.ndarray, final: np.ndarray, final_at_data: np.ndarray, curves: np.ndarray) -> tuple[float, float]:
    """y-limits from the data and the final model (its values on the grid, unless a pole between
    the data points blows them up: then its values at the data; the data alone when the final
    model is far off, as after a divergence), widened to every curve only when
    that costs little (at most FRAME_ALL_RATIO times the span)."""
    own = _span(data) or (-1.0, 1.0)
    base = _span(np.concatenate([data, final_at_data])) or own
    if base[1] - base[0] > FRAME_FINAL_RATIO * max(own[1] - own[0], 1e-12 * max(1.0, abs(own[0]))):
        base = own  # a final model far from the data (a diverged run): frame the data, note the rest
    wide = _span(np.concatenate([data, final]))
    if wide is not None and wide[1] - wide[0] <= 3 * max(base[1] - base[0], 1e-300):
        base = wide
    everything = _span(np.concatenate([np.asarray(base), curves.ravel()]))
    width = max(base[1] - base[0], 1e-12 * max(1.0, abs(base[0])))
    if everything is not None and everything[1] - everything[0] <= FRAME_ALL_RATIO * width:
        base = everything
    return _padded(*base)


def _note_off_frame(ax, lo: float, hi: float, xs: np.ndarray, curves: np.ndarray, epochs: list[int], xspan) -> None:
    """An arrow and a note at the edge where drawn curves leave the frame (which epochs, how far)."""
    for side in ("below", "above"):
        past = curves < lo if side == "below" else curves > hi
        out = [i for i in range(len(curves)) if np.any(past[i])]
        if not out:
            continue
        values = np.where(past[out], curves[out], np.nan)
        extreme = np.nanmin(values) if side == "below" else np.nanmax(values)
        where = np.unravel_index(np.nanargmin(values) if side == "below" else np.nanargmax(values), values.shape)
        first, last = epochs[out[0]], epochs[out[-1]]
        listed = [str(epochs[i]) for i in out]
        which = f"epoch {first}" if len(out) == 1 else \
            f"epochs {', '.join(listed)}" if len(out) <= 4 else f"{len(out)} curves, epochs {first}\u2013{last},"  # fmt: skip
        text = f"{which} {'below' if side == 'below' else 'above'} the frame ({'down' if side == 'below' else 'up'} to {extreme:.3g})"
        if xs is not None and xspan is not None and xspan[1] > xspan[0]:
            fx = float(np.clip((xs[where[1]] - xspan[0]) / (xspan[1] - xspan[0]), 0.15, 0.85))
        else:
            fx = 0.5
        edge, off = (0.0, 0.16) if side == "below" else (1.0, 0.66)  # clear of a legend at the top
        ha = "left" if fx < 0.35 else "right" if fx > 0.65 else "center"  # the note stays inside the axes
        tx = max(0.02, fx - 0.05) if ha == "left" else min(0.98, fx + 0.05) if ha == "right" else fx
        note = ax.annotate(text, xy=(fx, edge), xycoords="axes fraction", xytext=(tx, off), textcoords="axes fraction",
                           ha=ha, va="center", fontsize=8, color="#444444",
                           bbox={"boxstyle": "round,pad=0.25", "fc": "white", "ec": "#bbbbbb", "alpha": 0.9},
                           arrowprops={"arrowstyle": "->", "color": "#444444", "lw": 1.2})  # fmt: skip
        note.set_gid(f"offframe:{side}")
        note.set_zorder(6)  # above the legend (5), which "best" places without knowing of the notes


def _note_hidden(ax, curves: np.ndarray, epochs: list[int], height: float) -> None:
    """Say (in the legend) which curves in between lie on the final one (within half a percent of the frame's
    height): E3 has converged long before its 1000th epoch, so its colorbar would seem to lie."""
    with np.errstate(all="ignore"):
        gap = np.nanmax(np.abs(curves[1:-1] - curves[-1]), axis=1) if len(curves) > 2 else np.array([])
    hidden = [epochs[1 + i] for i in np.flatnonzero(gap <= 0.005 * height)]
    if not hidden:
        return
    which = f"epoch {hidden[0]}" if len(hidden) == 1 else f"epochs {hidden[0]}\u2013{hidden[-1]}"
    # a legend entry without a mark (a note in the corner would collide with the off-frame notes)
    ax.plot([], [], " ", label=f"{which}: on the final curve", gid="hidden")


def _colors(epochs: list[int] | np.ndarray, first: int, last: int):
    import matplotlib

    cmap = matplotlib.colormaps[CMAP]
    lo, hi = CMAP_RANGE
    frac = (np.asarray(epochs, dtype=float) - first) / max(1, last - first)
    return cmap(lo + (hi - lo) * frac)


def _colorbar(fig, ax, first: int, last: int, ticks: list[int]) -> None:
    import matplotlib
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import ListedColormap, Normalize

    base = matplotlib.colormaps[CMAP]
    cmap = ListedColormap(base(np.linspace(*CMAP_RANGE, 256)))
    bar = fig.colorbar(ScalarMappable(Normalize(first, last), cmap), ax=ax, pad=0.01, fraction=0.04, aspect=35)
    bar.set_label("epoch of the curve")
    if len(ticks) <= 12:
        bar.set_ticks(ticks)


# ---------------------------------------------------------------------------- the panels


def _title(record) -> str:
    summary, config = record.summary, record.config
    model = summary.get("model") or summary.get("formula") or (config.get("fit") or {}).get("model", "?")
    parts = [f"fit {model}", label_of(record)]
    schedule = config.get("schedule")
    if isinstance(schedule, dict) and schedule.get("name"):
        parts[-1] += f" ({schedule['name']} schedule)"
    parts.append(str(summary.get("status", "?")))
    r2 = summary.get("r2")
    if isinstance(r2, (int, float)) and not isinstance(r2, bool) and math.isfinite(r2):
        parts.append(f"R\u00b2 = {r2 + 0.0 if abs(r2) >= 5e-5 else 0.0:.4f}" if abs(r2) < 1000 else f"R\u00b2 = {r2:.3g}")
    regime = (summary.get("diagnostics") or {}).get("regime") if isinstance(summary.get("diagnostics"), dict) else None
    if regime:
        parts.append(str(regime))
    return "  \u00b7  ".join(parts)


def _frozen_note(f: _Fit) -> str:
    return ", ".join(f"{k} = {v:g}" for k, v in f.frozen.items())


def _one_input(fig, ax, f: _Fit, rows: np.ndarray) -> None:
    """Data, the model before and after, and the curves in between (one input)."""
    (name,) = f.inputs
    x, y = f.column(name), f.column(f.target_name)
    xspan = _span(x)
    lo, hi = xspan if xspan is not None else (-1.0, 1.0)
    if hi <= lo:
        lo, hi = lo - max(abs(lo), 1.0) * 0.5, hi + max(abs(hi), 1.0) * 0.5
    grid = np.linspace(lo, hi, GRID_POINTS)
    curves = f.evaluate(rows, {name: grid})
    final_at_data = f.evaluate(rows[-1:], {name: x})[0]
    epochs = [int(e) for e in f.epochs[rows]]
    first, last = epochs[0], epochs[-1]
    colors = _colors(epochs, first, last)

    small = len(x) <= 50
    ax.plot(x, y, "o", color=DATA_COLOR, ms=6 if small else max(1.5, 4.0 - math.log10(len(x))), alpha=0.9 if small else 0.6,
            zorder=6 if small else 2, label=f"data ({len(f.fit.target):,} points)", gid="data")  # fmt: skip
    for k in range(1, len(rows) - 1):
        ax.plot(grid, curves[k], color=colors[k], lw=1.1, zorder=3, gid=f"epoch:{epochs[k]}")
    ax.plot(grid, curves[0], "--", color=BEFORE_COLOR, lw=1.6, zorder=4, label=f"before (epoch {first})", gid="before")
    ax.plot(grid, curves[-1], "-", color=colors[-1], lw=2.4, zorder=5, label=f"after (epoch {last})", gid="after")

    ylo, yhi = _frame(y, curves[-1], final_at_data, curves)
    ax.set_xlim(*_padded_x(lo, hi))
    ax.set_ylim(ylo, yhi)
    _note_off_frame(ax, ylo, yhi, grid, curves, epochs, (lo, hi))
    _note_hidden(ax, curves, epochs, yhi - ylo)
    ax.set_xlabel(name)
    ax.set_ylabel(f.target_name)
    frozen = _frozen_note(f)
    ax.set_title(f"data and model{f' ({frozen} frozen)' if frozen else ''}", fontsize=10)
    ax.legend(loc="best", fontsize=8, framealpha=0.85)
    if len(rows) > 2:
        _colorbar(fig, ax, first, last, epochs)


def _several_inputs(ax, f: _Fit) -> None:
    """Predicted against target for the data, before and after, with y = x."""
    columns = {k: f.column(k) for k in f.inputs}
    target = f.column(f.target_name)
    rows = np.array([0, len(f.epochs) - 1])
    before, after = f.evaluate(rows, columns) if columns else f.evaluate(rows, {"_": target})
    small = len(target) <= 200
    ms = 6 if small else 3
    ax.plot(target, before, "o", mfc="none", mec=BEFORE_COLOR, ms=ms, alpha=0.8, zorder=3,
            label=f"before (epoch {int(f.epochs[0])})", gid="before")  # fmt: skip
    ax.plot(target, after, "o", color=_colors([1], 0, 1)[0], ms=ms, alpha=0.85, zorder=4,
            label=f"after (epoch {int(f.epochs[-1])})", gid="after")  # fmt: skip
    lo, hi = _frame(target, after, after, np.stack([before]))
    xlo, xhi = _padded(*(_span(target) or (-1.0, 1.0)))
    both = (min(lo, xlo), max(hi, xhi))
    ax.plot(both, both, "-", color="black", lw=0.9, alpha=0.6, zorder=2, label="predicted = target", gid="identity")
    ax.set_xlim(xlo, xhi)
    ax.set_ylim(lo, hi)
    _note_off_frame(ax, lo, hi, None, np.stack([before]), [int(f.epochs[0])], None)
    ax.set_xlabel(f"target {f.target_name}")
    ax.set_ylabel("predicted")
    frozen = _frozen_note(f)
    inputs = f"inputs {', '.join(f.inputs)}" if f.inputs else "no inputs"
    ax.set_title(f"predicted vs target ({inputs}{f'; {frozen} frozen' if frozen else ''})", fontsize=10)
    ax.legend(loc="best", fontsize=8, framealpha=0.85)


def _loss_panel(ax, f: _Fit, marks: np.ndarray | None = None, mark_colors=None):
    """The full-data loss against epoch (decimated), log scale when it spans over two decades; lr
    on a twin axis when it changes. Returns the loss Line2D."""
    status = str(f.record.summary.get("status", ""))
    keep = decimate(len(f.epochs), f.loss, f.lr)
    epochs, loss = f.epochs[keep], f.loss[keep]
    (line,) = ax.plot(epochs, loss, "-", color=STATUS_COLORS.get(status, "#1f77b4"), lw=1.6, gid="loss",
                      label=f"loss ({f.fit.spec.loss}), {status}")  # fmt: skip
    if marks is not None and len(marks):
        ax.scatter(f.epochs[marks], f.loss[marks], c=mark_colors, s=22, zorder=4, edgecolors="black", linewidths=0.4,
                   gid="loss-marks")  # fmt: skip
    finite = f.loss[np.isfinite(f.loss)]
    positive = finite[finite > 0]
    if positive.size and (finite >= 0).all() and positive.max() / positive.min() >= 100:
        ax.set_yscale("log", nonpositive="mask")
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"loss ({f.fit.spec.loss}, all {len(f.fit.target):,} points)")
    ax.grid(True, alpha=0.3)
    ax.set_title("loss", fontsize=10)
    handles = [line]
    lr = f.lr[np.isfinite(f.lr)]
    if lr.size and lr.max() != lr.min():
        twin = ax.twinx()
        (lr_line,) = twin.step(epochs, f.lr[keep], where="post", color="#8c564b", lw=1.2, alpha=0.8, gid="lr", label="lr")
        if lr.min() > 0 and lr.max() / lr.min() >= 10:
            twin.set_yscale("log")
        twin.set_ylabel("lr", color="#8c564b")
        twin.tick_params(axis="y", colors="#8c564b")
        handles.append(lr_line)
    falling = finite.size > 1 and finite[-1] < finite[0]  # the corner the curve leaves empty
    ax.legend(handles=handles, loc="lower left" if falling else "upper left", fontsize=8, framealpha=0.85)
    return line


def fit_figure(record, every: int | None = None):
    """The picture of a fit run (see the module's docstring); ``every``: one curve every that many
    epochs (by default a round step giving about 8 curves, the first and the last included)."""
    f = _read(record)
    fig = new_figure(12.0, 4.8)
    left, right = fig.subplots(1, 2, width_ratios=[1.25, 1.0])
    if len(f.inputs) == 1:
        rows, _ = _chosen_rows(f.epochs, every, MAX_CURVES)
        _one_input(fig, left, f, rows)
        epochs = f.epochs[rows]
        _loss_panel(right, f, rows, _colors(epochs, int(epochs[0]), int(epochs[-1])))
    else:
        _several_inputs(left, f)
        _loss_panel(right, f)
    fig.suptitle(_title(record), fontsize=10.5)
    return fig


# ---------------------------------------------------------------------------- the GIF


def animate_fit(record, out: Path, every: int | None = None) -> Path:
    """An animated GIF of the fit epoch by epoch (at most MAX_FRAMES frames): the model against
    the data (one input) or predicted against target (several), with the loss curve and a marker
    at the current epoch; the title gives the epoch and the loss. Written whole (a temp file, then
    renamed); returns the path written (``out``, or ``out/fit.gif`` when ``out`` is a folder)."""
    from matplotlib.animation import FuncAnimation

    f = _read(record)
    out = Path(out)
    if out.is_dir():
        out = out / "fit.gif"
    frames = _frame_rows(f.epochs, every)
    fig = new_figure(10.0, 4.2)
    fig.set_dpi(80)
    left, right = fig.subplots(1, 2, width_ratios=[1.25, 1.0])
    status = str(f.record.summary.get("status", ""))
    title = fig.suptitle("", fontsize=10.5)

    if len(f.inputs) == 1:
        (name,) = f.inputs
        x, y = f.column(name), f.column(f.target_name)
        lo, hi = _span(x) or (-1.0, 1.0)
        if hi <= lo:
            lo, hi = lo - 1.0, hi + 1.0
        grid = np.linspace(lo, hi, GRID_POINTS)
        curves = f.evaluate(frames, {name: grid})
        final_at_data = f.evaluate(frames[-1:], {name: x})[0]
        left.plot(x, y, "o", color=DATA_COLOR, ms=6 if len(x) <= 50 else 2, alpha=0.7, label="data", gid="data")
        left.plot(grid, curves[0], "--", color=BEFORE_COLOR, lw=1.4, label="before", gid="before")
        (current,) = left.plot(grid, curves[0], "-", color=AFTER_COLOR, lw=2.4, label="model at the epoch", gid="current")
        ylo, yhi = _frame(y, curves[-1], final_at_data, curves[-1:])
        left.set_xlim(*_padded_x(lo, hi))
        left.set_ylim(ylo, yhi)
        left.set_xlabel(name)
        left.set_ylabel(f.target_name)

        def draw_model(k: int) -> None:
            current.set_ydata(curves[k])
    else:
        columns = {k: f.column(k) for k in f.inputs}
        target = f.column(f.target_name)
        predictions = f.evaluate(frames, columns if columns else {"_": target})
        xlo, xhi = _padded(*(_span(target) or (-1.0, 1.0)))
        ylo, yhi = _frame(target, predictions[-1], predictions[-1], predictions[-1:])
        both = (min(xlo, ylo), max(xhi, yhi))
        left.plot(both, both, "-", color="black", lw=0.9, alpha=0.6, label="predicted = target", gid="identity")
        (current,) = left.plot(target, predictions[0], "o", color=AFTER_COLOR, ms=4, alpha=0.8, label="predicted at the epoch",
                               gid="current")  # fmt: skip
        left.set_xlim(xlo, xhi)
        left.set_ylim(ylo, yhi)
        left.set_xlabel(f"target {f.target_name}")
        left.set_ylabel("predicted")

        def draw_model(k: int) -> None:
            current.set_ydata(predictions[k])

    left.legend(loc="upper left", fontsize=8)
    _loss_panel(right, f)
    (marker,) = right.plot([f.epochs[frames[0]]], [f.loss[frames[0]]], "o", color="black", ms=7, zorder=5, gid="now")
    model = f.record.summary.get("model") or f.fit.formula

    def update(i: int):
        k = min(i, len(frames) - 1)
        row = frames[k]
        draw_model(k)
        marker.set_data([f.epochs[row]], [f.loss[row]])
        title.set_text(f"fit {model}  \u00b7  epoch {int(f.epochs[row])} of {int(f.epochs[-1])}  \u00b7  "
                       f"loss {f.loss[row]:.4g}  \u00b7  {status}")  # fmt: skip
        return current, marker, title

    count = len(frames) + (HOLD_FRAMES if len(frames) > 1 else 0)
    update(len(frames) - 1)  # the widest title and tick labels: lay the figure out once, for them
    fig.canvas.draw()
    fig.set_layout_engine("none")  # then keep it: no constrained layout per frame, nothing jumps
    fig.canvas.draw_idle = lambda *args, **kwargs: None  # our own canvas: frames are drawn by the writer alone
    animation = FuncAnimation(fig, update, frames=count, blit=False, repeat=False)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}-{secrets.token_hex(3)}.tmp.gif")
    try:
        animation.save(tmp, writer=_blit_writer([current, marker, title], fps=8), dpi=fig.get_dpi())
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def _blit_writer(artists: list, fps: int):
    """matplotlib's PillowWriter, grabbing a frame by blitting: the still parts of the figure are
    drawn once, and each frame redraws only ``artists`` over them (a full draw per frame, axes and
    tick labels included, costs some 0.2 s: 100 frames took 20 s)."""
    from matplotlib.animation import PillowWriter
    from PIL import Image

    class BlitPillowWriter(PillowWriter):
        background = None

        def grab_frame(self, **savefig_kwargs):
            canvas = self.fig.canvas
            if self.background is None:  # the still parts (while saving, matplotlib draws animated artists too)
                for artist in artists:
                    artist.set_visible(False)
                canvas.draw()
                self.background = canvas.copy_from_bbox(self.fig.bbox)
                for artist in artists:
                    artist.set_visible(True)
            canvas.restore_region(self.background)
            for artist in artists:
                self.fig.draw_artist(artist)
            rgba = np.asarray(canvas.buffer_rgba())
            frame = Image.fromarray(np.ascontiguousarray(rgba[..., :3]))
            # a palette per frame, by the fast octree (the GIF writer's own quantizer takes 10 times as long)
            self._frames.append(frame.quantize(colors=255, method=Image.Quantize.FASTOCTREE))

    return BlitPillowWriter(fps=fps)
