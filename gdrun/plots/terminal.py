"""The curves drawn as text in the terminal (``gdrun plot --terminal``), for a run on a remote
machine where no picture can be opened: plotext draws, this module only chooses what to draw.

* one run (a run directory or ``SWEEP_DIR/ID``): the value against step on top (log y when it is
  positive and spans more than two decades), |grad| below it and, for a 1-D function, the iterates
  x beside |grad|; the title names the function, the optimizer, lr, the status and the diagnostics'
  regime. Below :data:`SPLIT_HEIGHT` rows there is one plot: value, with |grad| on the right axis;
* a fit: the same, with the loss against epoch;
* several runs: every value curve on one plot, a legend entry per run (optimizer and lr);
* a sweep: the final value against the first numeric swept key, one series per status; configs
  without a finite value (diverged, failed) are drawn on the top edge; log x when log-spaced.

Each call draws on a plotext terminal of its own, so plotext's global figure is never touched and
nothing is left over from one call to the next; nothing is printed. Every curve has its own marker
(not only its own colour), so the plain text, without colours, still tells them apart. Long series
are decimated (:func:`.common.decimate`) to a few points per column first. Neither torch nor
matplotlib is imported.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import sys
from typing import Any

import numpy as np

from .common import STATUS_COLORS, decimate, label_of, run_path

DEFAULT_SIZE = (100, 30)  # columns, lines when the terminal's size cannot be read (output to a pipe or a file)
MAX_WIDTH, MAX_HEIGHT = 160, 50  # the defaults taken from the terminal are capped at these
MIN_WIDTH, MIN_HEIGHT = 40, 10  # smaller requests are raised to these
SPLIT_HEIGHT = 18  # from this height a run's |grad| (and x) get plots of their own
POINTS_PER_COLUMN = 8  # decimation: at most about this many points per column and series
MARKERS = ("hd", "braille", "•", "+", "x", "o", "*", "#", "@", "%", "=", "~")  # one per curve, in order
STATUS_MARKERS = {"converged": "•", "max_epochs": "+", "diverged": "x", "interrupted": "?", "failed": "!", "running": "~"}
SAMPLES = {"hd": "▚", "braille": "⢕", "fhd": "🬗"}  # what a high-resolution marker looks like in a legend
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def draw(records: list[Any], width: int | None = None, height: int | None = None, color: bool | None = None) -> str:
    """``records`` (from :func:`gdrun.plots.read`) drawn as text: ``height`` lines of ``width``
    characters (default: the terminal's size, capped at MAX_WIDTH x MAX_HEIGHT; at least
    MIN_WIDTH x MIN_HEIGHT), without a trailing newline. ``color``: ANSI colours or plain text;
    None colours only a terminal (standard output a tty, no NO_COLOR, TERM not dumb)."""
    width, height = size(width, height)
    colour = wants_colour() if color is None else bool(color)
    if records[0].kind == "sweep":
        fig, legend = _sweep(records[0], width, height, colour)
    elif len(records) > 1:
        fig, legend = _overlay(records, width, height, colour)
    else:
        fig, legend = _single(records[0], width, height, colour)
    return finish(fig, legend, colour)


def finish(fig, below: list[str], colour: bool) -> str:
    """The plotext figure as text, with ``below`` under it (and without colour codes unless asked)."""
    lines = fig.build().string(colorless=not colour).split("\n")
    if lines and ANSI.sub("", lines[-1]) == "":
        lines.pop()
    lines += below
    if not colour:
        lines = [ANSI.sub("", line) for line in lines]
    return "\n".join(lines)


def size(width: int | None, height: int | None) -> tuple[int, int]:
    """The drawing's size: what was asked, else the terminal's (two lines left for the prompt),
    capped; at least MIN_WIDTH x MIN_HEIGHT."""
    columns, lines = shutil.get_terminal_size(DEFAULT_SIZE)
    w = int(width) if width is not None else min(columns, MAX_WIDTH)
    h = int(height) if height is not None else min(lines - 2, MAX_HEIGHT)
    return max(w, MIN_WIDTH), max(h, MIN_HEIGHT)


def wants_colour(stream=None) -> bool:
    """Whether output to ``stream`` (default standard output) should be coloured: a terminal,
    unless NO_COLOR is set (https://no-color.org) or TERM is dumb."""
    stream = sys.stdout if stream is None else stream
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


# ---------------------------------------------------------------------------- the pictures


def _single(record, width: int, height: int, colour: bool):
    """One run or fit: value (loss) against step (epoch), |grad|, and x for a 1-D function."""
    path = run_path(record)
    fit = record.summary.get("kind") == "fit" or "epoch" in record.metrics
    counter, value_name = ("epoch", "loss") if fit else ("step", "value")
    one_d = not fit and len(path.names) == 1
    rows = decimate(len(path.steps), path.value, path.grad_norm, *([path.x[:, 0]] if one_d else []),
                    max_points=POINTS_PER_COLUMN * width)  # fmt: skip
    steps = path.steps[rows].astype(np.float64)
    value, grad = path.value[rows], path.grad_norm[rows]
    fig = _figure(width, height, colour)
    title = _title(record, width)
    if height < SPLIT_HEIGHT:  # one plot: value on the left axis, |grad| on the right
        v, g = _Axis(value), _Axis(grad)
        _curve(fig, steps, v.shown, 0, colour, value_name)
        _curve(fig, steps, g.shown, 1, colour, "|grad|", yside="right")
        _dress(fig, title, counter, steps, width, v.label(value_name), v)
        fig.label(g.label("|grad|"), "y", "right")
        g.ticks(fig.ruler("y", "right"))
        _legend(fig, [([steps], [v.shown]), ([steps], [g.shown])])
        return fig, []
    fig.subplots(2, 1)
    top, bottom = fig.subplot(1, 1), fig.subplot(2, 1)
    top.plot_size(height=height - height * 2 // 5)
    v = _Axis(value)
    _curve(top, steps, v.shown, 0, colour, symbol="hd")
    _dress(top, title, counter, steps, width, v.label(value_name), v)
    panels = [("|grad|", grad)] + ([(path.names[0], path.x[rows, 0])] if one_d else [])
    if len(panels) > 1:
        bottom.subplots(1, 2)
    for i, (name, series) in enumerate(panels):
        plot = bottom.subplot(1, i + 1) if len(panels) > 1 else bottom
        axis = _Axis(series)
        _curve(plot, steps, axis.shown, i + 1, colour, symbol="hd")  # a plot each: the colour is enough
        _dress(plot, f"{name} against {counter}", counter, steps, width // len(panels), axis.label(name), axis)
    return fig, []


def _overlay(records: list[Any], width: int, height: int, colour: bool):
    """Several runs: every value curve on one plot, a legend entry per run."""
    labels = _labels(records)
    entries = [(labels[i], MARKERS[i % len(MARKERS)], _colour_of(i)) for i in range(len(records))]
    legend_rows = 2 * len(records) + 3  # plotext's legend box: a blank line between entries, a border
    extra = [] if legend_rows <= (height - 5) * 3 // 5 else _text_legend(entries, width, colour)
    fig = _figure(width, height - len(extra), colour)
    xs, values = [], []
    for record in records:
        path = run_path(record)
        rows = decimate(len(path.steps), path.value, max_points=POINTS_PER_COLUMN * width)
        xs.append(path.steps[rows].astype(np.float64))
        values.append(path.value[rows])
    axis = _Axis(np.concatenate(values))
    ys = [axis.transform(v) for v in values]
    for i, (steps, y) in enumerate(zip(xs, ys)):
        _curve(fig, steps, y, i, colour, None if extra else labels[i])
    fits = all(r.summary.get("kind") == "fit" or "epoch" in r.metrics for r in records)
    counter, value_name = ("epoch", "loss") if fits else ("step", "value")
    functions = sorted({str(r.summary.get("function") or r.config.get("function") or "?") for r in records})
    what = functions[0] if len(functions) == 1 else f"{len(functions)} functions"
    title = _fit_width(f"{value_name} against {counter}: {len(records)} runs of {what}", width)
    _dress(fig, title, counter, np.concatenate(xs), width, axis.label(value_name), axis)
    if not extra:
        _legend(fig, [(xs, ys)])
    return fig, extra


def _sweep(record, width: int, height: int, colour: bool):
    """A sweep: the final value of every config against the first numeric swept key, by status.
    Configs without a finite value (diverged, failed) sit on the top edge; on a log axis, those
    whose value is 0 sit on the bottom edge."""
    from ..runs import summary_number
    from ..sweeps import read_results

    rows = read_results(record.path)
    params = ((record.config.get("sweep") or {}).get("params")) or {}
    key = next((k for k in params if rows and all(summary_number(r.get(k)) is not None for r in rows)), "id")
    x = np.array([summary_number(r.get(key)) for r in rows], dtype=np.float64)
    y = np.array([summary_number(r.get("value")) if r.get("value") not in ("", None) else np.nan for r in rows],
                 dtype=np.float64)  # fmt: skip
    y = np.where(np.isfinite(x), y, np.nan)
    status = np.array([r.get("status", "?") for r in rows])
    y = np.where(status == "diverged", np.nan, y)  # a diverged config's last value says nothing: the top edge
    finite = np.isfinite(y)
    y_axis = _Axis(y[finite & (y > 0)] if finite.any() and (y[finite] >= 0).all() else y[finite], zeros=True)
    x_axis = _Axis(x[np.isfinite(x)], log=_x_log(params.get(key), x))
    shown = y_axis.transform(y)
    lo, hi = (float(np.nanmin(shown)), float(np.nanmax(shown))) if np.isfinite(shown).any() else (0.0, 1.0)
    span = hi - lo if hi > lo else max(1.0, abs(hi))
    top, bottom = hi + 0.08 * span, lo - 0.08 * span
    shown = np.where(np.isfinite(y), shown, top)  # no finite value: the top edge
    shown = np.where(np.isfinite(y) & ~np.isfinite(y_axis.transform(y)), bottom, shown)  # 0 on a log axis: the bottom
    u = x_axis.transform(x)
    fig = _figure(width, height, colour)
    xs, ys = [], []
    for s in [*STATUS_MARKERS, *sorted(set(status) - set(STATUS_MARKERS))]:
        mine = (status == s) & np.isfinite(u)
        if not mine.any():
            continue
        notes = [str(int(mine.sum()))]
        if (shown[mine] == top).any():
            notes.append(f"{int((shown[mine] == top).sum())} at the top")
        if y_axis.log and (shown[mine] == bottom).any():
            notes.append(f"{int((shown[mine] == bottom).sum())} with 0 at the bottom")
        px, py = _distinct(u[mine], shown[mine], width, height)
        marker = _marker(STATUS_MARKERS.get(s, "*"), STATUS_COLORS.get(s), colour)
        fig.draw(fig.signal(px, py, marker=marker).label(f"{s} ({', '.join(notes)})"))
        xs.append(px)
        ys.append(py)
    name = record.config.get("name") or record.path.name
    fig.title(_fit_width(f"sweep {name}: final value against {key}, {len(rows)} configs", width))
    fig.label(x_axis.label(key), "x")
    fig.label(y_axis.label("final value"), "y")
    fig.ruler("y").lim(bottom if y_axis.log else lo, top)
    y_axis.ticks(fig.ruler("y"))
    x_axis.ticks(fig.ruler("x"), slots=max(2, (width - 10) // 10))
    if xs:
        _legend(fig, [(xs, ys)])
    return fig, []


class _Axis:
    """How a series is shown on its axis: as is, or as log10 (when every finite value is positive
    and they span more than two decades), with ticks at the powers of ten labelled by their values.
    (plotext's own log scale labels ranges of many decades with unreadable numbers, and explicit
    ticks upset its limits in 6.1, so the log is taken here.) ``zeros``: values of 0 do not stop a
    log axis (a sweep draws them on the bottom edge)."""

    def __init__(self, values: np.ndarray, log: bool | None = None, zeros: bool = False):
        values = source = np.asarray(values, dtype=np.float64)
        values = values[np.isfinite(values)]
        if zeros:
            values = values[values != 0]
        if log is None:
            log = len(values) > 0 and values.min() > 0 and values.max() / values.min() > 100
        self.log = bool(log) and len(values) > 0 and values.min() > 0
        self.values = values
        self.source = source

    @property
    def shown(self) -> np.ndarray:
        """The series the axis was made from, as drawn."""
        return self.transform(self.source)

    def transform(self, values: np.ndarray) -> np.ndarray:
        values = np.asarray(values, dtype=np.float64)
        if not self.log:
            return values
        with np.errstate(all="ignore"):
            return np.where(values > 0, np.log10(np.where(values > 0, values, 1.0)), np.nan)

    def label(self, name: str) -> str:
        return f"{name} (log)" if self.log else name

    def ticks(self, ruler, slots: int = 6) -> None:
        """On a log axis: ticks at the powers of ten (and 2 and 5 times them over a short range)."""
        if not self.log:
            return
        lo, hi = math.log10(self.values.min()), math.log10(self.values.max())
        first, last = math.floor(lo + 1e-9), math.ceil(hi - 1e-9)
        stride = max(1, math.ceil((last - first + 1) / max(2, slots)))
        positions = [float(k) for k in range(first, last + 1, stride) if lo - 1e-9 <= k <= hi + 1e-9]
        if len(positions) < 3:
            positions = sorted(p for k in range(first, last + 1) for p in (k, k + math.log10(2), k + math.log10(5))
                               if lo - 1e-9 <= p <= hi + 1e-9)  # fmt: skip
        if len(positions) >= 2:
            ruler.ticks(positions, [_power(p) for p in positions])


def _power(exponent: float) -> str:
    """10**exponent as a tick label: '0.001', '1', '1000', '2e+05' -> '2e5', '1e-07' -> '1e-7'."""
    value = 10.0**exponent
    text = f"{value:.3g}" if 1e-3 <= value < 1e5 else f"{value:.0e}"
    return text.replace("e+0", "e").replace("e-0", "e-").replace("e+", "e")


# ---------------------------------------------------------------------------- helpers


def _figure(width: int, height: int, colour: bool):
    """A figure of its own: a fresh plotext terminal (not plotext's global one), unlimited by the
    real terminal's size, ``width`` x ``height``."""
    import plotext

    terminal = type(plotext.terminal)()
    terminal.limit(False, False)
    fig = terminal._master  # the terminal's own master figure (plotext.figure is the global one's)
    fig.clear()
    fig.theme("simple" if colour else "colorless")
    fig.plot_size(width, height)
    return fig


def _curve(plot, x: np.ndarray, y: np.ndarray, index: int, colour: bool, label: str | None = None, yside: str = "left",
           symbol: str | None = None):  # fmt: skip
    """A line through the finite points of (x, y), in the index-th marker (or ``symbol``) and colour."""
    keep = np.isfinite(x) & np.isfinite(y)
    if not keep.any():
        return
    marker = _marker(symbol or MARKERS[index % len(MARKERS)], _colour_of(index), colour)
    signal = plot.signal(x[keep], y[keep], marker=marker, yside=yside).lines()
    if label:
        signal.label(label)
    plot.draw(signal)


def _dress(plot, title: str, x_name: str, steps: np.ndarray, width: int, y_label: str, axis: _Axis) -> None:
    """Title, axis labels, round ticks on the step axis, the y axis's ticks."""
    plot.title(title)
    plot.label(x_name, "x")
    plot.label(y_label, "y")
    finite = steps[np.isfinite(steps)]
    if len(finite):
        positions, labels = _count_ticks(float(finite.min()), float(finite.max()), max(1, (width - 10) // 9))
        plot.ruler("x").ticks(positions, labels)
    axis.ticks(plot.ruler("y"))


def _legend(plot, groups: list[tuple[list[np.ndarray], list[np.ndarray]]]) -> None:
    """Put the legend in the corner of the canvas the curves leave emptiest (top right on a tie).
    ``groups``: (xs, ys) per y axis, the left one first (the legend is placed on it)."""
    counts = {("right", "top"): 0, ("left", "top"): 0, ("right", "bottom"): 0, ("left", "bottom"): 0}
    anchor = None
    for xs, ys in groups:
        x = np.concatenate([np.asarray(v, dtype=np.float64) for v in xs])
        y = np.concatenate([np.asarray(v, dtype=np.float64) for v in ys])
        keep = np.isfinite(x) & np.isfinite(y)
        if not keep.any():
            continue
        x, y = x[keep], y[keep]
        u, v = _unit(x), _unit(y)
        for ha, va in counts:
            across = (u > 0.55) if ha == "right" else (u < 0.45)
            up = (v > 0.55) if va == "top" else (v < 0.45)
            counts[ha, va] += int((across & up).sum())
        if anchor is None:
            anchor = (float(x.min()), float(x.max()), float(y.min()), float(y.max()))
    if anchor is None:
        return
    ha, va = min(counts, key=lambda c: counts[c])
    x_lo, x_hi, y_lo, y_hi = anchor
    plot.legend(x=x_hi if ha == "right" else x_lo, y=y_hi if va == "top" else y_lo, ha=ha, va=va, relative=True)


def _unit(values: np.ndarray) -> np.ndarray:
    """``values`` mapped onto [0, 1]."""
    span = float(values.max() - values.min())
    return (values - values.min()) / span if span > 0 else np.full(len(values), 0.5)


def _x_log(spec: Any, x: np.ndarray) -> bool:
    """Whether a swept key was log-spaced: ``logspace`` (or a log-uniform draw) in sweep.yaml, or,
    for a list of values, positive ones more evenly spaced in log than linearly, over a decade or more."""
    if isinstance(spec, dict):
        return any("log" in str(k) for k in spec)
    values = np.unique(x[np.isfinite(x)])
    if len(values) < 3 or values.min() <= 0 or values.max() / values.min() < 10:
        return False
    log_steps, steps = np.diff(np.log(values)), np.diff(values)
    return bool(np.std(log_steps) / np.mean(log_steps) < np.std(steps) / np.mean(steps))


def _distinct(x: np.ndarray, y: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """The points of a scatter that land on distinct dots of the canvas (2 per column, 4 per line:
    the finest a terminal cell shows), so 10,000 configs cost no more to draw than a few hundred."""
    if len(x) <= 4 * width:
        return x, y
    u = np.round(_unit(x) * 2 * width).astype(np.int64)
    v = np.round(_unit(y) * 4 * height).astype(np.int64)
    _, first = np.unique(u * (4 * height + 1) + v, return_index=True)
    first.sort()
    return x[first], y[first]


def _count_ticks(lo: float, hi: float, slots: int) -> tuple[list[float], list[str]]:
    """Round integer ticks from lo to hi (a step count: 0, 20k, 40k...), at most ``slots`` + 1."""
    if hi <= lo:
        return [lo], [_count(lo)]
    raw = (hi - lo) / max(1, slots)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = max(1, next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw))
    start = math.ceil(lo / step) * step
    positions = [float(p) for p in np.arange(start, hi + step / 2, step) if p <= hi]
    return positions, [_count(p) for p in positions]


def _count(n: float) -> str:
    """20000 -> '20k', 1500000 -> '1.5M', 120 -> '120'."""
    if abs(n) >= 1e6:
        return f"{n / 1e6:g}M"
    if abs(n) >= 1e4:
        return f"{n / 1e3:g}k"
    return f"{n:g}"


def _title(record, width: int) -> str:
    """function · optimizer lr · status · regime."""
    summary, config = record.summary, record.config
    what = str(summary.get("function") or config.get("function") or (config.get("fit") or {}).get("model") or "?")
    if summary.get("kind") == "fit":
        what = f"fit {what}"
    parts = [what, label_of(record), str(summary.get("status", "?"))]
    regime = (summary.get("diagnostics") or {}).get("regime") if isinstance(summary.get("diagnostics"), dict) else None
    if regime:
        parts.append(str(regime))
    return _fit_width(" · ".join(parts), width)


def _fit_width(text: str, width: int) -> str:
    return text if len(text) <= width - 2 else text[: max(1, width - 3)] + "…"


def _labels(records: list[Any]) -> list[str]:
    """Optimizer and lr per run; where two runs share that, the run's name tells them apart."""
    labels = [label_of(r) for r in records]
    for i, label in enumerate(labels):
        if labels.count(label) > 1:
            labels[i] = f"{label} ({_short_name(records[i])})"
    if len(set(labels)) < len(labels):  # still the same: number them
        labels = [f"{i + 1}: {label}" for i, label in enumerate(labels)]
    return labels


def _short_name(record) -> str:
    summary, config = record.summary, record.config
    function = str(summary.get("function") or config.get("function") or "")
    return function if function and len(function) <= 24 else record.path.name[-24:]


def _colour_of(index: int) -> str:
    palette = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
    return palette[index % len(palette)]


def _marker(symbol: str, hex_colour: str | None, colour: bool):
    """A plotext marker: the symbol, in the colour when colours are on."""
    import plotext

    if not colour or hex_colour is None:
        return symbol
    rgb = tuple(int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return plotext.marker(symbol, plotext.pixel(rgb))


def _text_legend(entries: list[tuple[str, str, str]], width: int, colour: bool) -> list[str]:
    """A legend too tall for the canvas, as lines of text under the plot: 'sample label' entries."""
    import plotext

    lines, line, used = [], "", 0
    for label, symbol, hex_colour in entries:
        sample = SAMPLES.get(symbol, symbol)
        text = f"{sample} {label}"
        if len(text) > width - 2:
            text = text[: width - 3] + "…"
        if colour:
            rgb = tuple(int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
            shown = plotext.colorize(sample, plotext.pixel(rgb)).string() + text[len(sample) :]
        else:
            shown = text
        if used and used + 3 + len(text) > width:
            lines.append(line + " " * (width - used))
            line, used = "", 0
        line, used = (line + "   " + shown, used + 3 + len(text)) if used else (shown, len(text))
    if used:
        lines.append(line + " " * (width - used))
    return lines
