"""The picture of a tuned comparison (``gdrun compare``): which optimizer reaches the target, how
fast, and how much its learning rate matters, read from the comparison directory alone.

* performance profile: for each variant, the fraction of held-out starts that came within the
  target after at most x steps (a step function; its right end is the success rate), one line per
  variant, the legend in rank order, each entry naming the tuned lr;
* lr sensitivity: the median over tuning starts of the steps to target against lr (log), for the
  candidates that share the tuned one's other options (the lr slice through the tuned point); a
  candidate whose median never reached the target sits on a dashed "not reached" line above the
  budget, and each variant's tuned lr is a star;
* a 2-D function: the tuned setting's paths from the first held-out starts on the function's
  contour (the first path solid, the others faint), with the starts and the known minima.

A comparison still running, or cut off, draws what its variants have written so far and says
"(incomplete)" in its title. Every artist a test (or a reader) looks for carries a gid:
``profile:<label>``, ``sensitivity:<label>``, ``tuned:<label>``, ``range:<label>``,
``candidates:<label>``, ``path:<label>`` (the first path), ``diverging:<label>:<i>`` (where the
i-th path left the picture), ``not-reached``, ``starts``, ``minima``, ``contour``; the axes carry a label:
"profile", "sensitivity", "paths".
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from ..errors import GdrunError
from .common import decimate, known_minima, new_figure, objective_values

SUMMARY = "summary.json"
DECLARATION = "compare.yaml"
NOT_REACHED_LINEAR = 1.12  # the "not reached" level, as a multiple of epochs, on a linear axis
NOT_REACHED_LOG = 1.8  # ... and on a log axis
LOG_SPAN = 20.0  # steps spanning more than this ratio are drawn on a log (profile: symlog) axis
MAX_LABEL = 48


# ---------------------------------------------------------------------------- the data


@dataclass
class Variant:
    """One optimizer variant: its line in summary.json and its arrays (None until it has written them)."""

    index: int
    label: str
    entry: dict[str, Any]
    data: dict[str, np.ndarray] | None
    color: str

    @property
    def rank(self) -> float:
        rank = self.entry.get("rank")
        return float(rank) if isinstance(rank, (int, float)) and not isinstance(rank, bool) else math.inf

    @property
    def finished(self) -> bool:
        return self.data is not None and "tuned" in self.entry and "heldout" in self.entry

    def has(self, *keys: str) -> bool:
        return self.data is not None and all(k in self.data for k in keys)

    def tuned_index(self) -> int | None:
        if not self.has("tuned"):
            return None
        t = int(np.asarray(self.data["tuned"]).reshape(-1)[0])
        return t if self.has("lrs") and 0 <= t < len(self.data["lrs"]) else None

    def tuned_lr(self) -> float | None:
        lr = (self.entry.get("tuned") or {}).get("lr")
        if isinstance(lr, (int, float)) and not isinstance(lr, bool):
            return float(lr)
        t = self.tuned_index()
        return float(self.data["lrs"][t]) if t is not None else None

    def legend(self) -> str:
        """"adam (lr 0.0123)"; a searched option too: "sgd (lr 0.0012, momentum 0.9)"."""
        lr = self.tuned_lr()
        if lr is None:
            return f"{self.label} (not finished)"
        parts = [f"lr {lr:.3g}"]
        tuned = self.entry.get("tuned") or {}
        for name in self.option_names():
            value = tuned.get(name)
            if value is None and self.tuned_index() is not None:
                value = float(self.data["options"][self.tuned_index(), self.option_names().index(name)])
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                parts.append(f"{name} {value:.3g}")
        return f"{self.label} ({', '.join(parts)})"

    def option_names(self) -> list[str]:
        return [str(n) for n in self.data["option_names"].reshape(-1)] if self.has("option_names") else []


@dataclass
class Comparison:
    """A comparison directory read back: its summary and each variant's arrays."""

    path: Path
    summary: dict[str, Any]
    declaration: dict[str, Any]
    variants: list[Variant] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return [str(n) for n in self.summary.get("names") or []]

    @property
    def epochs(self) -> int:
        return int(self.summary.get("epochs") or 0)

    @property
    def complete(self) -> bool:
        return self.summary.get("status") == "completed" and all(v.finished for v in self.variants)

    def starts(self, key: str, counted: str, *declared: str) -> int | None:
        """How many tuning (``tuning_steps``) or held-out (``heldout_steps``) starts: from any
        variant's arrays, else the summary's count, else the declaration's list."""
        for v in self.variants:
            if v.has(key):
                return int(v.data[key].shape[-1])
        count = self.summary.get(counted)
        if isinstance(count, int) and not isinstance(count, bool):
            return count
        listed = next((self.declaration[k] for k in declared if isinstance(self.declaration.get(k), list)), None)
        return len(listed) if listed is not None else None

    @property
    def state(self) -> str:
        """The summary's status; a 'running' one whose process is gone is 'cut off'."""
        from ..runs import process_gone

        status = str(self.summary.get("status", "?"))
        return "cut off" if status == "running" and process_gone(self.summary) else status


def read_comparison(directory: Path) -> Comparison:
    """The comparison in ``directory``; a variant whose .npz is missing or unreadable has data None."""
    from ..runs import read_small

    directory = Path(directory)
    try:
        summary = json.loads(read_small(directory / SUMMARY))
    except (ValueError, OSError) as exc:
        raise GdrunError(f"cannot read comparison directory {directory}: {str(exc).splitlines()[0]}") from None
    if not isinstance(summary, dict) or summary.get("kind") != "compare":
        raise GdrunError(f"not a comparison directory (its {SUMMARY} is not a comparison's): {directory}")
    declaration: Any = {}
    if (directory / DECLARATION).is_file():
        import yaml

        try:
            declaration = yaml.safe_load(read_small(directory / DECLARATION)) or {}
        except (ValueError, OSError, yaml.YAMLError):
            declaration = {}  # the picture needs only the number of starts and a let from it
    comparison = Comparison(directory, summary, declaration if isinstance(declaration, dict) else {})
    for k, entry in enumerate(summary.get("variants") or []):
        entry = entry if isinstance(entry, dict) else {}
        label = str(entry.get("label") or entry.get("optimizer") or f"variant {k}")
        file = directory / str(entry.get("file") or f"variant-{k}.npz")
        comparison.variants.append(Variant(k, label, entry, _load(file), f"C{k % 10}"))
    return comparison


def _load(file: Path) -> dict[str, np.ndarray] | None:
    """The arrays of one variant, or None (not written yet, or torn by a kill: drawn as missing)."""
    if not file.is_file():
        return None
    try:
        with np.load(file, allow_pickle=False) as z:
            return {k: np.asarray(z[k]) for k in z.files}
    except (OSError, ValueError, EOFError):
        return None


def profile(steps: np.ndarray, epochs: int) -> tuple[np.ndarray, np.ndarray]:
    """The performance profile of one variant: at 0, at each step count where a start reaches the
    target, and at ``epochs``, the fraction of all ``steps`` (-1: never) that are <= it."""
    steps = np.asarray(steps, dtype=np.int64).reshape(-1)
    reached = np.sort(steps[(steps >= 0) & (steps <= epochs)])
    x = np.unique(np.concatenate([[0], reached, [max(epochs, 0)]])).astype(np.float64)
    y = np.searchsorted(reached, x, side="right") / max(len(steps), 1)
    return x, y


def median_steps(steps: np.ndarray) -> np.ndarray:
    """Median steps to target over the last axis; inf where half or more of the starts never got there."""
    s = np.asarray(steps)
    return np.median(np.where(s >= 0, s, np.inf).astype(np.float64), axis=-1)


def lr_slice(variant: Variant) -> np.ndarray:
    """The candidates sharing the tuned one's searched options (all of them when only lr was
    searched), sorted by lr: the lr sensitivity of the tuned setting."""
    lrs = np.asarray(variant.data["lrs"], dtype=np.float64)
    t = variant.tuned_index()
    same = np.ones(len(lrs), dtype=bool)
    if t is not None and variant.has("options") and variant.data["options"].size:
        options = np.asarray(variant.data["options"], dtype=np.float64).reshape(len(lrs), -1)
        same = np.all(np.isclose(options, options[t], rtol=1e-9, atol=0.0) | (np.isnan(options) & np.isnan(options[t])),
                      axis=1)  # fmt: skip
    index = np.flatnonzero(same)
    return index[np.argsort(lrs[index], kind="stable")]


# ---------------------------------------------------------------------------- the figure


def figure(directory: Path):
    """The picture of the comparison in ``directory`` (see the module's docstring), as a Figure."""
    comparison = read_comparison(directory)
    contour = len(comparison.names) == 2
    fig = new_figure(18.0 if contour else 12.5, 5.6)
    if contour:
        axes = fig.subplots(1, 3, width_ratios=[1.0, 1.0, 1.15])
    else:
        axes = fig.subplots(1, 2)
    ranked = sorted(comparison.variants, key=lambda v: (v.rank, v.index))
    _profile_panel(axes[0], comparison, ranked)
    _sensitivity_panel(axes[1], comparison, ranked)
    if contour:
        _paths_panel(fig, axes[2], comparison, ranked)
    fig.suptitle(title(comparison), fontsize="medium")
    return fig


def title(comparison: Comparison, terse: bool = False) -> str:
    """'<function>: <n> variants tuned on <S> starts, ranked on <S2> held-out starts, target f - f* < <target>';
    ``terse`` (a terminal's width): '<function>: performance profile on <S2> held-out starts, target ...'."""
    s = comparison.summary
    function = str(s.get("function") or "?")
    function = function if len(function) <= MAX_LABEL else function[: MAX_LABEL - 3] + "..."
    if (s.get("dim") or 0) > 2 and function.isidentifier():
        function += f" (dim {s['dim']})"
    tuning = comparison.starts("tuning_steps", "starts", "tuning_starts", "starts")
    heldout = comparison.starts("heldout_steps", "heldout", "heldout_starts")
    target, fraction = s.get("target"), s.get("target_fraction")
    if _number(target):
        target = f"{target:g}"
    elif _number(fraction):
        target = f"{fraction:g} of the start's gap"
    else:
        target = "?"
    f_star = s.get("f_star")
    star = f" (f* = {f_star:.4g})" if _number(f_star) and f_star != 0 else ""
    heldout = heldout if heldout is not None else "?"
    if terse:
        text = f"{function}: performance profile on {heldout} held-out starts, target f - f* < {target}{star}"
        return text + ("" if comparison.complete else " (incomplete)")
    text = (f"{function}: {len(comparison.variants)} variants tuned on {tuning if tuning is not None else '?'} starts, "
            f"ranked on {heldout} held-out starts, target f - f* < {target}{star}")  # fmt: skip
    if not comparison.complete:
        done = sum(v.finished for v in comparison.variants)
        text += f" (incomplete: {done} of {len(comparison.variants)} variants finished, {comparison.state})"
    return text


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _profile_panel(ax, comparison: Comparison, ranked: list[Variant]) -> None:
    """Fraction of held-out starts solved against steps, one step line per variant, legend by rank."""
    epochs = comparison.epochs
    reached = []
    for order, v in enumerate(ranked):
        if not v.has("heldout_steps"):
            ax.plot([], [], color=v.color, ls=":", label=v.legend(), gid=f"profile:{v.label}")  # a legend entry only
            continue
        x, y = profile(v.data["heldout_steps"], epochs)
        ax.step(x, y, where="post", color=v.color, lw=2.0, label=v.legend(), gid=f"profile:{v.label}",
                zorder=3 + len(ranked) - order)  # the best on top where lines overlap (at 0, at 1)
        steps = v.data["heldout_steps"]
        reached.append(steps[steps > 0])
    positive = np.concatenate(reached) if reached else np.zeros(0)
    if positive.size and positive.max() / positive.min() > LOG_SPAN:
        ax.set_xscale("symlog", linthresh=1.0, linscale=0.3)  # symlog: a start solved in 0 steps still shows
        ax.set_xlim(0, epochs * 1.05 if epochs else None)
    else:
        ax.set_xlim(0, epochs * 1.02 if epochs else None)
    columns = 1 if len(ranked) <= 4 else 2
    share = min(0.6, 0.08 + 0.047 * math.ceil(len(ranked) / columns))  # of the axes' height the legend takes
    ax.set_ylim(-0.02, 1.02 + 1.04 * share / (1 - share))  # room above 1 for the legend: no line under it
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.set_xlabel("steps" + (" (symlog)" if ax.get_xscale() == "symlog" else ""))
    ax.set_ylabel("fraction of held-out starts at target")
    ax.set_title("performance profile (held-out starts)", fontsize="medium")
    ax.grid(True, alpha=0.3)
    if comparison.variants:
        ax.legend(loc="upper left", ncols=columns, fontsize=8, framealpha=0.85, title="by rank: variant (tuned)",
                  title_fontsize=8)  # fmt: skip
    ax.set_label("profile")


def _sensitivity_panel(ax, comparison: Comparison, ranked: list[Variant]) -> None:
    """Median steps to target over the tuning starts against lr, through the tuned point."""
    from matplotlib.lines import Line2D
    from matplotlib.transforms import blended_transform_factory

    epochs = comparison.epochs or 1
    series = []
    for v in ranked:
        if not v.has("lrs", "tuning_steps"):
            continue
        index = lr_slice(v)
        lrs = np.asarray(v.data["lrs"], dtype=np.float64)
        medians = median_steps(np.asarray(v.data["tuning_steps"]).reshape(len(lrs), -1))
        series.append((v, index, lrs, medians))
    finite = np.concatenate([m[i][np.isfinite(m[i])] for _, i, _, m in series] or [np.zeros(0)])
    log = finite.size > 0 and finite.min() > 0 and finite.max() / finite.min() > LOG_SPAN
    level = epochs * (NOT_REACHED_LOG if log else NOT_REACHED_LINEAR)
    for v, index, lrs, medians in series:
        y = np.where(np.isfinite(medians), medians, level)
        ax.plot(lrs[index], y[index], color=v.color, lw=1.6, marker="o", ms=4, gid=f"sensitivity:{v.label}",
                label=v.legend())  # fmt: skip
        if len(index) < len(lrs):  # options searched too: the other candidates as a faint cloud
            rest = np.setdiff1d(np.arange(len(lrs)), index)
            ax.plot(lrs[rest], y[rest], ls="none", marker=".", ms=5, color=v.color, alpha=0.35, zorder=1,
                    gid=f"candidates:{v.label}")  # fmt: skip
        t = v.tuned_index()
        if t is not None:
            ax.plot([lrs[t]], [y[t]], ls="none", marker="*", ms=15, mfc=v.color, mec="black", zorder=5,
                    gid=f"tuned:{v.label}")  # fmt: skip
        window = v.entry.get("sensitivity")
        if t is not None and isinstance(window, dict) and all(_number(window.get(k)) for k in ("lr_low", "lr_high")):
            ax.plot([window["lr_low"], window["lr_high"]], [y[t], y[t]], color=v.color, lw=7, alpha=0.3,
                    solid_capstyle="butt", zorder=2, gid=f"range:{v.label}")  # fmt: skip
    ax.set_xscale("log")
    if log:
        ax.set_yscale("log")
    ax.axhline(level, color="0.35", ls="--", lw=1.0, gid="not-reached")
    ax.text(0.01, level, f"not reached (> {epochs} steps)", transform=blended_transform_factory(ax.transAxes, ax.transData),
            va="bottom", ha="left", fontsize=8, color="0.3",
            bbox={"fc": "white", "ec": "none", "alpha": 0.7, "pad": 1})  # fmt: skip
    handles = [Line2D([], [], ls="none", marker="*", ms=12, mfc="white", mec="black", label="tuned lr")]
    if any(len(index) < len(lrs) for _, index, lrs, _ in series):
        handles.append(Line2D([], [], ls="none", marker=".", ms=7, color="0.4", alpha=0.5,
                              label="other candidates (other option values)"))  # fmt: skip
    if any(isinstance(v.entry.get("sensitivity"), dict) for v, *_ in series):
        handles.append(Line2D([], [], color="0.5", lw=7, alpha=0.3, label="sensitivity range (lr_low .. lr_high)"))
    share = 0.05 + 0.047 * len(handles)  # of the axes' height the legend takes, above "not reached"
    if log:
        bottom, top = max(finite.min(), 1.0) / 2.5, level * 1.3
        ax.set_ylim(bottom, math.exp((math.log(top) - share * math.log(bottom)) / (1 - share)))
    else:
        ax.set_ylim(0, level * 1.04 / (1 - share))
    lo, hi = ax.get_ylim()
    ax.set_yticks([t for t in ax.get_yticks() if lo <= t <= level])  # none in the legend's room
    ax.set_ylim(lo, hi)
    ax.set_xlabel("lr (log)")
    ax.set_ylabel("median steps to target, tuning starts" + (" (log)" if log else ""))
    ax.set_title("lr sensitivity (other options at their tuned values)", fontsize="medium")
    ax.grid(True, which="major", alpha=0.3)
    if series:
        ax.legend(handles=handles, loc="upper right", fontsize=8, framealpha=0.85)
    else:
        ax.text(0.5, 0.5, "no variant has tuning results yet", transform=ax.transAxes, ha="center", color="0.3")
    ax.set_label("sensitivity")


def _paths_panel(fig, ax, comparison: Comparison, ranked: list[Variant]) -> None:
    """The tuned setting's held-out paths on the contour (the run plots' contour and minima)."""
    from matplotlib.lines import Line2D

    from .runs import GRID, MINIMUM_COLOR, _filled_contour, _region, minima_and_box

    names = comparison.names
    f, minima = _function(comparison)
    raw = [(v, _finite_paths(v.data["heldout_paths"])) for v in ranked if v.has("heldout_paths")]
    raw = [(v, paths) for v, paths in raw if paths]
    if not raw:
        ax.text(0.5, 0.5, "no held-out paths yet", transform=ax.transAxes, ha="center", color="0.3")
        ax.set_label("paths")
        return
    starts = np.array([p[0] for _, paths in raw for p, _ in paths])
    limit = _box(np.vstack([starts, minima]), widen=1.0)  # beyond it a path has left the region the starts cover
    raw = [(v, [(p, gone or not _inside(p, limit).all()) for p, gone in paths]) for v, paths in raw]
    sane = [p for _, paths in raw for p, gone in paths if not gone]
    visible = _box(np.vstack([starts, minima, *sane]), widen=0.0)
    drawn = [(v, [(_until_outside(p, visible) if gone else p, gone) for p, gone in paths]) for v, paths in raw]
    points = np.concatenate([p for _, paths in drawn for p, _ in paths])
    with np.errstate(all="ignore"):
        box = _region(points, minima)
    if f is not None:
        X, Y = np.meshgrid(np.linspace(*box[0], GRID), np.linspace(*box[1], GRID))
        Z = f(np.column_stack([X.ravel(), Y.ravel()])).reshape(X.shape)
        f_star = comparison.summary.get("f_star")
        floor = float(f_star) if _number(f_star) else (float(np.nanmin(f(minima))) if len(minima) else None)
        _filled_contour(fig, ax, X, Y, Z, floor)
    left = False
    for order, (v, paths) in enumerate(drawn):
        for i, (p, escaped) in enumerate(paths):
            keep = decimate(len(p), p)
            first = i == 0
            ax.plot(p[keep, 0], p[keep, 1], color=v.color, lw=max(1.2, 2.6 - 0.5 * order) if first else 0.9,
                    alpha=0.95 if first else 0.4, zorder=3 if first else 2, gid=f"path:{v.label}" if first else None,
                    label=v.legend() if first else None)  # fmt: skip
            ax.plot(p[-1, 0], p[-1, 1], ls="none", marker="X" if escaped else "s", ms=10 if escaped else 6 if first else 4,
                    mfc=v.color, mec="black", alpha=1.0 if first or escaped else 0.5, zorder=4.5 if escaped else 4,
                    gid=f"diverging:{v.label}:{i}" if escaped else None)  # fmt: skip
            left = left or escaped
    starts = np.unique(np.round(np.array([p[0] for _, paths in drawn for p, _ in paths]), 12), axis=0)
    ax.plot(starts[:, 0], starts[:, 1], ls="none", marker="o", ms=11, mfc="none", mec="black", mew=2.0, zorder=5,
            gid="starts", label="held-out starts")  # fmt: skip
    minima_and_box(ax, minima, box, names)
    count = max(len(paths) for _, paths in drawn)
    ax.set_title(f"tuned paths from {count} held-out start{'s' if count != 1 else ''} (first solid)", fontsize="medium")
    handles = [Line2D([], [], ls="none", marker="o", ms=9, mfc="none", mec="black", mew=2.0, label="held-out starts"),
               Line2D([], [], ls="none", marker="s", ms=6, mfc="0.6", mec="black", label="end (the variant's colour)")]
    if left:
        handles.append(Line2D([], [], ls="none", marker="X", ms=9, mfc="0.6", mec="black",
                              label="left the picture (diverging or wandering)"))  # fmt: skip
    if any(line.get_gid() == "minima" for line in ax.lines):
        handles.append(Line2D([], [], ls="none", marker="*", ms=13, mfc=MINIMUM_COLOR, mec="black", label="known minimum"))
    ax.legend(handles=handles, loc="best", fontsize=8, framealpha=0.85)  # the variants' colours: the profile's legend
    ax.set_label("paths")


def _finite_paths(paths: np.ndarray) -> list[tuple[np.ndarray, bool]]:
    """Each path's rows up to its first non-finite one, and whether it had one (it diverged)."""
    out = []
    for p in np.asarray(paths, dtype=np.float64).reshape(-1, *np.shape(paths)[-2:]) if np.size(paths) else []:
        if p.shape[-1] != 2:
            continue
        bad = np.flatnonzero(~np.isfinite(p).all(axis=1))
        if len(p[: bad[0]] if len(bad) else p):
            out.append((p[: bad[0]] if len(bad) else p, bool(len(bad))))
    return out


def _box(points: np.ndarray, widen: float) -> np.ndarray:
    """(2, 2: low, high) the box of ``points``, widened by ``widen`` times its size (at least 1) on each side."""
    lo, hi = points.min(axis=0), points.max(axis=0)
    pad = widen * np.maximum(hi - lo, 1.0)
    return np.column_stack([lo - pad, hi + pad])


def _inside(path: np.ndarray, box: np.ndarray) -> np.ndarray:
    """Which rows of ``path`` lie in ``box``."""
    return np.all((path >= box[:, 0]) & (path <= box[:, 1]), axis=1)


def _until_outside(path: np.ndarray, box: np.ndarray) -> np.ndarray:
    """A diverging path up to where it first leaves the picture (at least its start)."""
    out = np.flatnonzero(~_inside(path, box))
    return path[: max(1, int(out[0]))] if len(out) else path


def _function(comparison: Comparison):
    """``f(X)`` over (names[0], names[1]) columns and the known minima, rebuilt the way a run's
    picture rebuilds them (None, no minima when the function cannot be rebuilt)."""
    s = comparison.summary
    config = {"function": s.get("function"), "dim": s.get("dim"), "let": comparison.declaration.get("let")}
    record = SimpleNamespace(config=config, summary={"known_minima": s.get("known_minima")}, path=comparison.path)
    names = comparison.names
    try:
        f, variables = objective_values(record)
    except Exception:  # noqa: BLE001 - the paths without the contour beat no picture
        return None, np.zeros((0, 2))
    if sorted(variables) != sorted(names):
        return None, np.zeros((0, 2))
    order = np.array([names.index(v) for v in variables])
    try:
        points = [p for p in known_minima(record) if len(p) == 2]
    except Exception:  # noqa: BLE001
        points = []
    minima = np.array(points, dtype=np.float64).reshape(len(points), 2)[:, np.argsort(order)]
    return (lambda X: f(np.asarray(X)[:, order])), minima


# ---------------------------------------------------------------------------- the terminal


def terminal_text(directory: Path, width: int | None = None, height: int | None = None,
                  color: bool | None = None) -> str:  # fmt: skip
    """The performance profile drawn as text (plotext), a line per variant in rank order below it."""
    from .terminal import MIN_HEIGHT, _count_ticks, _curve, _figure, _fit_width, _legend, finish, size, wants_colour

    comparison = read_comparison(directory)
    width, height = size(width, height)
    colour = wants_colour() if color is None else bool(color)
    ranked = sorted(comparison.variants, key=lambda v: (v.rank, v.index))
    rows = [_row(v) for v in ranked]
    table = [_short(r, width).ljust(width) for r in rows][: max(0, height - MIN_HEIGHT)]  # the plot keeps MIN_HEIGHT
    fig = _figure(width, height - len(table), colour)
    epochs = comparison.epochs
    xs, ys = [], []
    for i, v in enumerate(ranked):
        if not v.has("heldout_steps"):
            continue
        x, y = profile(v.data["heldout_steps"], epochs)
        sx, sy = np.repeat(x, 2)[1:], np.repeat(y, 2)[:-1]  # the staircase: across, then up
        _curve(fig, sx, sy, i, colour, _short(v.legend(), width // 2))
        xs.append(sx)
        ys.append(sy)
    fig.title(_fit_width(title(comparison, terse=True), width))
    fig.label("steps", "x")
    fig.label("fraction at target", "y")
    fig.ruler("y").lim(0.0, 1.05)
    positions, labels = _count_ticks(0.0, float(max(epochs, 1)), max(1, (width - 10) // 9))
    fig.ruler("x").ticks(positions, labels)
    if xs:
        _legend(fig, [(xs, ys)])  # in the emptiest corner
    return finish(fig, table, colour)


def _row(v: Variant) -> str:
    """'1. adam (lr 0.0123): 97% solved, median 812 steps' (of the held-out starts)."""
    rank = f"{int(v.rank)}." if math.isfinite(v.rank) else "-."
    heldout = v.entry.get("heldout")
    if not isinstance(heldout, dict):
        return f"{rank} {v.legend()}"
    rate, median = heldout.get("success_rate"), heldout.get("median_steps")
    parts = [f"{100 * rate:.0f}% solved" if isinstance(rate, (int, float)) else "solved ?"]
    parts.append(f"median {median:.0f} steps" if isinstance(median, (int, float)) else "median: not reached")
    return f"{rank} {v.legend()}: {', '.join(parts)}"


def _short(label: str, width: int) -> str:
    return label if len(label) <= width else label[: max(1, width - 1)] + "…"
