"""The picture of a sweep: what its results.csv says about the swept values.

* one swept number (lr, say): the final value against it, one scatter per status; diverged configs
  (whose value is infinite, nan or huge) as red crosses at the top edge; several configs per value
  (seeds, a second swept key that is not a number such as the optimizer): one line per value of the
  other key, or the median with a min-max band; with ``--explain``'s columns the predicted bound
  (the largest stable lr) as a vertical line, and each config's regime as a tick along the bottom;
* two swept numbers: a heat map of the final value on their grid (a scatter coloured by the value
  for a random or zip sweep), the diverged cells in solid red, and the predicted bound as a line
  (for each value of the other number, the median largest stable lr) when one of them is lr;
  a third, not numeric key (the optimizer) makes one panel per value;
* more swept numbers: a note and the two that matter most (lr first, then the most values), the
  others' configs summarised by the median per cell;
* no swept number (optimizers only): a bar per config; many such configs: value against config id.

The title names the sweep, its function or model, and how many of its configs have a result yet
("12 of 40 configs" while it runs or after it was cut off) by status. Everything is drawn from
numpy arrays, one matplotlib call per status or per series, never per config: a 10,000-config
sweep draws in a fraction of a second. Torch is never imported.

Every series a test or a reader may look for carries a gid: ``status:<status>`` (the points of one
status, in data coordinates except ``status:diverged``'s y, which is in axes coordinates at the top
edge), ``edge:<status>`` (other configs whose value is not finite, at the top edge),
``zero:<status>`` (values of exactly 0 on a log axis, at the bottom edge), ``regime:<regime>``,
``bound`` (the predicted bound line), ``heatmap`` (the values' QuadMesh) and ``diverged-cells``
(the QuadMesh whose unmasked cells are the diverged ones).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .common import STATUS_COLORS, new_figure

#: the order statuses are drawn and listed in
STATUSES = ("converged", "max_epochs", "interrupted", "failed", "running", "diverged")
REGIME_COLORS = {
    "converging": "#17becf",
    "crawling": "#bcbd22",
    "oscillating": "#e377c2",
    "diverging": "#8c564b",
    "edge_of_stability": "#9467bd",
    "undetermined": "#c7c7c7",
}
SERIES_COLORS = ("#393b79", "#e7969c", "#8c6d31", "#7b4173", "#17becf", "#637939", "#6b6ecf", "#bd9e39",
                 "#a55194", "#5254a3", "#b5cf6b", "#ce6dbd")  # fmt: skip  (none of the status colours)
REPLICATE_KEYS = ("seed",)  # swept numbers that are repetitions, not a setting: summarised, never an axis
MAX_GROUPS = len(SERIES_COLORS)  # more values of the other key: one median with a band instead
MAX_PANELS = 6
MAX_BARS = 60
MISSING_COLOR = "#e6e6e6"  # heat-map cells with no result yet
LOST_COLOR = "#7f7f7f"  # heat-map cells whose configs failed or ended with no finite value
EDGE_Y = 0.96  # where off-scale values sit, in axes coordinates
LOW_Y = 0.03


# ---------------------------------------------------------------------------- the results as arrays


@dataclass
class SweepTable:
    """A sweep's results as arrays, one entry per config with a result (sorted by id)."""

    name: str
    what: str  # the function or model
    kind: str  # grid, zip or random
    keys: list[str]  # the swept keys, in declaration order
    total: int  # configs declared
    ids: np.ndarray  # (n,) int
    status: np.ndarray  # (n,) str
    value: np.ndarray  # (n,) float (nan where the row has none)
    columns: dict[str, list[Any]]  # key -> each config's value (typed, as declared), results rows only
    declared: dict[str, list[Any]]  # key -> every declared config's value (all ``total``)
    numeric: dict[str, np.ndarray] = field(default_factory=dict)  # numeric keys -> (n,) float
    declared_numeric: dict[str, np.ndarray] = field(default_factory=dict)  # numeric keys -> (total,) float
    regime: np.ndarray | None = None  # (n,) str, with --explain
    stable_lr: np.ndarray | None = None  # (n,) float, with --explain
    fit: bool = False
    base: dict[str, Any] = field(default_factory=dict)
    state: str = ""  # "", "still running" or "cut off"

    def varying(self, key: str) -> bool:
        return len({_hashable(v) for v in self.declared[key]}) > 1


def read_table(record) -> SweepTable:
    """The sweep of ``record`` (``open_record(SWEEP_DIR)``) as arrays: results.csv read once."""
    from ..sweeps import expansion_of, iter_results, read_sweep_file

    meta = record.config if isinstance(record.config, dict) and "configs" in record.config else read_sweep_file(Path(record.path))
    base = meta.get("base") or {}
    spec = meta.get("sweep") or {}
    expansion = expansion_of(meta)
    keys = expansion.keys
    rows = {}
    for row in iter_results(Path(record.path)):
        rows[int(row["id"])] = row  # a config run again on resume: its last row counts
    ids = np.array(sorted(i for i in rows if i < expansion.size), dtype=np.int64)
    ordered = [rows[i] for i in ids.tolist()]
    status = np.array([r["status"] for r in ordered], dtype=object)
    value = _floats([r.get("value") for r in ordered])
    declared = {k: [expansion.values[k][c] for c in expansion.codes[k].tolist()] for k in keys}
    columns: dict[str, list[Any]] = {k: [declared[k][i] for i in ids.tolist()] for k in keys}
    fit = isinstance(base.get("fit"), dict)
    what = str(base.get("function") or ((base.get("fit") or {}).get("model") if fit else "") or "")
    summary = record.summary or {}
    state = ""
    if summary.get("status") == "running" or record.cut_off:
        state = "cut off" if record.cut_off else "still running"
    table = SweepTable(name=str(meta.get("name") or base.get("name") or Path(record.path).name), what=what,
                       kind=str(spec.get("kind") or "grid"), keys=keys, total=expansion.size, ids=ids,
                       status=status, value=value, columns=columns, declared=declared, fit=fit, base=base,
                       state=state)  # fmt: skip
    for k in keys:
        if declared[k] and all(_is_number(v) for v in declared[k]):
            table.numeric[k] = np.array(columns[k], dtype=np.float64)
            table.declared_numeric[k] = np.array(declared[k], dtype=np.float64)
    if ordered and "largest_stable_lr" in ordered[0]:
        table.regime = np.array([r.get("regime") or "" for r in ordered], dtype=object)
        table.stable_lr = _floats([r.get("largest_stable_lr") for r in ordered])
    return table


def _floats(cells: list[Any]) -> np.ndarray:
    out = np.full(len(cells), np.nan)
    for i, cell in enumerate(cells):
        if cell not in (None, ""):
            try:
                out[i] = float(cell)
            except ValueError:
                pass
    return out


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _hashable(value: Any) -> Any:
    return json.dumps(value, sort_keys=True, default=str) if isinstance(value, (list, dict, tuple)) else value


def _text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


# ---------------------------------------------------------------------------- the figure


def sweep_figure(record):
    """The picture of a sweep directory's record (see the module's docstring), as a Figure."""
    table = read_table(record)
    axes_keys = [k for k in table.keys if k in table.numeric and k not in REPLICATE_KEYS and table.varying(k)]
    other = [k for k in table.keys if k not in axes_keys and table.varying(k)]
    categorical = [k for k in other if k not in REPLICATE_KEYS]
    notes: list[str] = []
    if len(axes_keys) >= 2:
        x_key, y_key = _best_two(table, axes_keys)
        rest = [k for k in axes_keys if k not in (x_key, y_key)]
        if rest:
            notes.append(f"{len(table.keys)} swept keys: drawn over {x_key} and {y_key}; each cell is the median over "
                         + ", ".join(f"{k} ({_count(table, k)} values)" for k in rest))  # fmt: skip
        fig = _two_numbers(table, x_key, y_key, categorical, rest + [k for k in other if k in REPLICATE_KEYS], notes)
    elif len(axes_keys) == 1:
        fig = _one_number(table, axes_keys[0], categorical, notes)
    elif len(table.ids) <= MAX_BARS:
        fig = _bars(table, other or table.keys)
    else:
        notes.append("no swept number: final value against config id")
        fig = _one_number(table, None, [], notes)
    fig.suptitle(_title(table, notes), fontsize="medium")
    return fig


def _count(table: SweepTable, key: str) -> int:
    return len({_hashable(v) for v in table.declared[key]})


def _best_two(table: SweepTable, keys: list[str]) -> tuple[str, str]:
    """lr first (on x), then the keys with the most distinct values."""
    ranked = sorted(keys, key=lambda k: (k != "lr", -_count(table, k), keys.index(k)))
    return ranked[0], ranked[1]


def _title(table: SweepTable, notes: list[str]) -> str:
    head = table.name if table.name.startswith("sweep") else f"sweep {table.name}"
    head += f": {table.what}" if table.what and table.what != table.name else ""
    head += f" ({table.kind} over {', '.join(table.keys)})"
    n = len(table.ids)
    counted = f"{n} of {table.total} configs" if n < table.total else f"{table.total} configs"
    counts = [f"{int(np.sum(table.status == s))} {s}" for s in STATUSES if np.any(table.status == s)]
    line = counted + (": " + ", ".join(counts) if counts else ": no results yet")
    if table.state:
        line += f" ({table.state})"
    return "\n".join([head, line, *notes])


def _value_label(table: SweepTable) -> str:
    return "final loss" if table.fit else "final value"


def _log_spaced(values: np.ndarray) -> bool:
    """Positive values spread over more than 1.5 decades and spaced evenly in log rather than linearly."""
    v = np.unique(values[np.isfinite(values)])
    if len(v) < 2 or v[0] <= 0:
        return False
    span = math.log10(v[-1] / v[0])
    if span <= 1.5:
        return False
    if len(v) <= 3:
        return True
    median = float(np.median(v))
    geometric, arithmetic = math.sqrt(v[0] * v[-1]), (v[0] + v[-1]) / 2
    return abs(math.log(median / geometric)) < abs(math.log(median / arithmetic))


def _bound_formula(table: SweepTable, momentum_swept: bool = False) -> str:
    """How the bound reads for the base config's optimizer (gdrun.diagnostics.stability_bound)."""
    base = table.base
    options = base.get("optimizer_options") or {}
    optimizer = base.get("optimizer", "sgd")
    wd = options.get("weight_decay") or 0
    L = "(L + wd)" if wd else "L"
    if optimizer != "sgd":
        return f"2/{L}"
    if not momentum_swept and not options.get("momentum"):
        return f"2/{L}"
    if options.get("nesterov"):
        return f"2(1+mu)/((1+2mu){L})"
    if options.get("dampening"):
        return f"2(1+mu)/((1-dampening){L})"
    return f"2(1+mu)/{L}"


def _g(value: float) -> str:
    return f"{value:.3g}"


# ---------------------------------------------------------------------------- one swept number


def _one_number(table: SweepTable, key: str | None, categorical: list[str], notes: list[str]):
    fig = new_figure(10.0, 4.8)
    ax = fig.add_subplot()
    x = table.numeric[key] if key is not None else table.ids.astype(np.float64)
    value = table.value
    diverged = table.status == "diverged"
    shown = np.isfinite(value) & ~diverged  # drawn at their value
    log_x = key is not None and _log_spaced(table.declared_numeric[key])
    positive = value[shown] > 0
    log_y = bool(shown.any() and np.all(value[shown] >= 0) and positive.any()
                 and np.log10(value[shown][positive].max() / value[shown][positive].min()) > 2)  # fmt: skip
    zero = shown & (value <= 0) if log_y else np.zeros(len(value), bool)
    on_scale = shown & ~zero
    if log_x:
        ax.set_xscale("log")
    if log_y:
        ax.set_yscale("log")
    edge = ax.get_xaxis_transform()  # x in data, y in axes coordinates

    # groups: one line per value of the other (non-numeric) keys, or the median with its band
    labels = _group_labels(table, categorical)
    groups = sorted(set(labels), key=labels.index) if labels else []
    if len(groups) > MAX_GROUPS:
        notes.append(f"{len(groups)} combinations of {', '.join(categorical)}: the median over them, with its min-max band")
        groups = []
    if key is not None:
        if groups:
            label_array = np.array(labels, dtype=object)
            for g, name in enumerate(groups):
                members = on_scale & (label_array == name)
                _median_line(ax, x[members], value[members], SERIES_COLORS[g % len(SERIES_COLORS)], name, band=True)
        else:
            replicated = len(np.unique(x[on_scale])) < int(on_scale.sum())
            label = ("median, min-max band" if replicated else None)
            _median_line(ax, x[on_scale], value[on_scale], "#444444", label, band=replicated, thin=not replicated)

    # the points, one scatter per status
    for status, mine, color in _by_status(table):
        if status == "diverged":
            _diverged_at_the_top(ax, x[mine], edge, size=40, width=1.6)
            continue
        points = mine & on_scale
        lost = mine & ~np.isfinite(value)
        label = f"{status} ({int(mine.sum())})"
        ax.scatter(x[points], value[points], s=22, color=color, edgecolors="none", zorder=3,
                   label=label if points.any() else f"_{label}", gid=f"status:{status}")  # fmt: skip
        if lost.any():
            what = f"{status}: no finite value ({int(lost.sum())}, top edge)" if points.any() else \
                f"{status} ({int(lost.sum())}, no finite value: top edge)"  # fmt: skip
            ax.scatter(x[lost], np.full(int(lost.sum()), EDGE_Y), transform=edge, marker="s", s=22, color=color,
                       clip_on=False, zorder=4, label=what, gid=f"edge:{status}")  # fmt: skip
        low = mine & zero
        if low.any():
            ax.scatter(x[low], np.full(int(low.sum()), LOW_Y), transform=edge, marker="v", s=26, color=color,
                       clip_on=False, zorder=4, label=f"{status}: value 0 ({int(low.sum())}, bottom edge)",
                       gid=f"zero:{status}")  # fmt: skip

    if on_scale.any():
        _y_limits(ax, value[on_scale], log_y, top_room=bool((~on_scale).any()))
    _x_limits(ax, x, log_x)  # the points at an edge do not widen the data limits: every config's x does
    if key == "lr" and table.stable_lr is not None:
        _vertical_bounds(ax, table, labels if groups else None, groups)
    if table.regime is not None and key is not None:
        # a tick per config along the bottom, coloured by its regime (a row per series when grouped)
        row = np.zeros(len(x))
        if groups:
            row = np.array([groups.index(label) for label in labels], dtype=np.float64) * 0.025
        order = list(REGIME_COLORS)
        for regime in sorted(set(table.regime.tolist()) - {""}, key=lambda r: order.index(r) if r in order else len(order)):
            mine = table.regime == regime
            ax.scatter(x[mine], row[mine], transform=edge, marker="|", s=100 if groups else 140, linewidths=2,
                       color=REGIME_COLORS.get(regime, "#7f7f7f"), clip_on=False, zorder=2, label=f"regime: {regime}",
                       gid=f"regime:{regime}")  # fmt: skip
    ax.set_xlabel(key if key is not None else "config id")
    ax.set_ylabel(_value_label(table))
    ax.grid(True, which="major", alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False)
    return fig


def _group_labels(table: SweepTable, categorical: list[str]) -> list[str]:
    if not categorical:
        return []
    return [", ".join(f"{k}={_text(v)}" if len(categorical) > 1 else _text(v) for k, v in zip(categorical, values))
            for values in zip(*(table.columns[k] for k in categorical))]  # fmt: skip


def _median_line(ax, x: np.ndarray, y: np.ndarray, color: str, label: str | None, band: bool, thin: bool = False) -> None:
    """The median of ``y`` per value of ``x`` as a line, with the min-max band where a value has several."""
    if len(x) == 0:
        if label:
            ax.plot([], [], color=color, label=label)
        return
    xs, inverse = np.unique(x, return_inverse=True)
    order = np.lexsort((y, inverse))
    sorted_inv, sorted_y = inverse[order], y[order]
    starts = np.searchsorted(sorted_inv, np.arange(len(xs)))
    ends = np.searchsorted(sorted_inv, np.arange(len(xs)), side="right")
    low, high = sorted_y[starts], sorted_y[ends - 1]
    mid_lo, mid_hi = sorted_y[(starts + ends - 1) // 2], sorted_y[(starts + ends) // 2]
    median = (mid_lo + mid_hi) / 2 if ax.get_yscale() != "log" else np.sqrt(mid_lo * mid_hi)
    ax.plot(xs, median, color=color, lw=0.8 if thin else 1.6, alpha=0.6 if thin else 0.9, zorder=2, label=label,
            gid="median" if label is None or band else f"series:{label}")  # fmt: skip
    if band and np.any(high > low):
        ax.fill_between(xs, low, high, color=color, alpha=0.15, lw=0, zorder=1)


def _y_limits(ax, values: np.ndarray, log: bool, top_room: bool) -> None:
    lo, hi = float(values.min()), float(values.max())
    if log:
        a, b = math.log10(lo), math.log10(hi)
        span = max(b - a, 1.0)
        ax.set_ylim(10 ** (a - 0.08 * span), 10 ** (b + (0.16 if top_room else 0.06) * span))
    else:
        span = (hi - lo) or max(abs(hi), 1.0)
        ax.set_ylim(lo - 0.08 * span, hi + (0.16 if top_room else 0.06) * span)


def _x_limits(ax, x: np.ndarray, log: bool) -> None:
    x = x[np.isfinite(x) & (x > 0)] if log else x[np.isfinite(x)]
    if len(x) == 0:
        return
    lo, hi = float(x.min()), float(x.max())
    if log:
        pad = 0.04 * max(math.log10(hi / lo), 0.5)
        ax.set_xlim(lo / 10**pad, hi * 10**pad)
    else:
        pad = 0.04 * ((hi - lo) or max(abs(hi), 1.0))
        ax.set_xlim(lo - pad, hi + pad)


def _vertical_bounds(ax, table: SweepTable, labels: list[str] | None, groups: list[str]) -> None:
    """The predicted bound: the median largest stable lr (per group when the groups differ)."""
    finite = np.isfinite(table.stable_lr)
    if not finite.any():
        return
    formula = _bound_formula(table)
    per_group = []
    if labels:
        label_array = np.array(labels, dtype=object)
        for g, name in enumerate(groups):
            mine = finite & (label_array == name)
            if mine.any():
                per_group.append((float(np.median(table.stable_lr[mine])), SERIES_COLORS[g % len(SERIES_COLORS)], name))
    values = {round(b, 12) for b, _, _ in per_group}
    if len(values) > 1 or (per_group and len(per_group) < len(groups)):  # say which series the bound is for
        for bound, color, name in per_group:
            formula = _bound_formula(table) if name == table.base.get("optimizer", "sgd") or "sgd" in name else "2/L"
            ax.axvline(bound, color=color, ls="--", lw=1.4, label=f"predicted bound ({name}) lr = {formula} = {_g(bound)}",
                       gid="bound")  # fmt: skip
        return
    bound = float(np.median(table.stable_lr[finite]))
    ax.axvline(bound, color="black", ls="--", lw=1.4, label=f"predicted bound lr = {formula} = {_g(bound)}", gid="bound")


# ---------------------------------------------------------------------------- two swept numbers


def _two_numbers(table: SweepTable, x_key: str, y_key: str, categorical: list[str], summarised: list[str], notes: list[str]):
    labels = _group_labels(table, categorical)
    panels = sorted(set(labels), key=labels.index) if labels else [None]
    if len(panels) > MAX_PANELS:
        notes.append(f"{len(panels)} combinations of {', '.join(categorical)}: each cell is the median over them")
        panels = [None]
        labels = []
    width = 7.5 if len(panels) == 1 else 5.0 * len(panels) + 1.0
    fig = new_figure(width, 5.6)
    axes = fig.subplots(1, len(panels), squeeze=False, sharex=True, sharey=True)[0]
    x, y, value = table.numeric[x_key], table.numeric[y_key], table.value
    diverged = table.status == "diverged"
    good = np.isfinite(value) & ~diverged
    norm = _value_norm(value[good])
    log_x, log_y = _log_spaced(table.declared_numeric[x_key]), _log_spaced(table.declared_numeric[y_key])
    grid = _grid(table, x_key, y_key)
    label_array = np.array(labels, dtype=object) if labels else None
    declared_labels = np.array(_declared_labels(table, categorical), dtype=object) if labels else None
    mappable = None
    diverged_cells = missing_cells = lost_cells = 0
    for ax, panel in zip(axes, panels):
        rows = np.ones(len(value), bool) if panel is None else label_array == panel
        if log_x:
            ax.set_xscale("log")
        if log_y:
            ax.set_yscale("log")
        if grid is not None:
            cells = grid if panel is None else _grid(table, x_key, y_key, declared_labels == panel)
            mesh, n_diverged, n_missing, n_lost = _heat_map(ax, table, x_key, y_key, rows, cells or grid, norm, log_x, log_y)
            mappable = mappable or mesh
            diverged_cells += n_diverged
            missing_cells += n_missing
            lost_cells += n_lost
        else:
            mappable = _scatter(ax, x[rows], y[rows], value[rows], table.status[rows], norm) or mappable
        if table.stable_lr is not None and "lr" in (x_key, y_key):
            _bound_line(ax, table, x_key, y_key, rows)
        ax.set_xlabel(x_key)
        if panel is not None:
            ax.set_title(panel, fontsize="medium")
    axes[0].set_ylabel(y_key)
    if mappable is not None:
        fig.colorbar(mappable, ax=list(axes), label=_value_label(table), shrink=0.9)
    handles, names = [], []
    for ax in axes:
        for h, n in [*zip(*ax.get_legend_handles_labels())]:
            if n not in names:
                handles.append(h)
                names.append(n)
    if diverged_cells:
        handles.insert(0, _proxy(STATUS_COLORS["diverged"], f"diverged ({diverged_cells} cells)"))
        names.insert(0, handles[0].get_label())
    if lost_cells:
        handles.append(_proxy(LOST_COLOR, f"failed or not finite ({lost_cells} cells)"))
        names.append(handles[-1].get_label())
    if missing_cells:
        handles.append(_proxy(MISSING_COLOR, f"no result yet ({missing_cells} cells)"))
        names.append(handles[-1].get_label())
    if handles:
        fig.legend(handles, names, loc="outside lower center", ncols=min(4, len(names)), fontsize="small", frameon=False)
    return fig


def _declared_labels(table: SweepTable, categorical: list[str]) -> list[str]:
    return [", ".join(f"{k}={_text(v)}" if len(categorical) > 1 else _text(v) for k, v in zip(categorical, values))
            for values in zip(*(table.declared[k] for k in categorical))]  # fmt: skip


def _value_norm(values: np.ndarray):
    """LogNorm when the values are positive (zeros allowed) and span more than 2 decades."""
    from matplotlib.colors import LogNorm, Normalize

    if len(values) == 0:
        return Normalize(0.0, 1.0)
    positive = values[values > 0]
    if np.all(values >= 0) and len(positive) and np.log10(positive.max() / positive.min()) > 2:
        return LogNorm(float(positive.min()), float(positive.max()))
    lo, hi = float(values.min()), float(values.max())
    return Normalize(lo, hi if hi > lo else lo + 1.0)


def _grid(table: SweepTable, x_key: str, y_key: str, declared_rows: np.ndarray | None = None):
    """(xs, ys) when the declared configs lie on the full grid of their two values, else None."""
    dx, dy = table.declared_numeric[x_key], table.declared_numeric[y_key]
    if declared_rows is not None:
        dx, dy = dx[declared_rows], dy[declared_rows]
    xs, ys = np.unique(dx), np.unique(dy)
    if len(xs) < 2 or len(ys) < 2 or len(xs) * len(ys) > 1_000_000:
        return None
    pairs = np.unique(np.searchsorted(xs, dx) * len(ys) + np.searchsorted(ys, dy))
    return (xs, ys) if len(pairs) == len(xs) * len(ys) else None


def _edges(values: np.ndarray, log: bool) -> np.ndarray:
    """Cell edges around sorted ``values``: midpoints (in log where the axis is), the ends mirrored."""
    v = np.log10(values) if log else values.astype(np.float64)
    mid = (v[1:] + v[:-1]) / 2
    edges = np.concatenate([[v[0] - (mid[0] - v[0])], mid, [v[-1] + (v[-1] - mid[-1])]])
    return 10**edges if log else edges


def _heat_map(ax, table: SweepTable, x_key: str, y_key: str, rows: np.ndarray, cells, norm, log_x: bool, log_y: bool):
    """The values on the grid: diverged cells solid red, cells whose configs failed (or whose value is
    not finite) dark grey, cells with no result yet the axes' light grey. Returns the values' mesh and
    how many cells are diverged, have no result yet, and failed."""
    from matplotlib.colors import ListedColormap

    xs, ys = cells
    x, y = table.numeric[x_key][rows], table.numeric[y_key][rows]
    value, status = table.value[rows], table.status[rows]
    inside = np.isin(x, xs) & np.isin(y, ys)
    x, y, value, status = x[inside], y[inside], value[inside], status[inside]
    cell = np.searchsorted(ys, y) * len(xs) + np.searchsorted(xs, x)
    size = len(xs) * len(ys)
    rows_per_cell = np.bincount(cell, minlength=size)
    diverged_per_cell = np.bincount(cell, weights=(status == "diverged").astype(float), minlength=size)
    good = np.isfinite(value) & (status != "diverged")
    z = np.full(size, np.nan)
    if len(cell) and rows_per_cell.max() <= 1:
        z[cell[good]] = value[good]
    else:  # several configs per cell (summarised keys): the median of the finite, not diverged values
        order = np.argsort(cell[good], kind="stable")
        gc, gv = cell[good][order], value[good][order]
        bounds = np.flatnonzero(np.diff(np.concatenate([[-1], gc, [size]])))
        for a, b in zip(bounds[:-1], bounds[1:]):
            if b > a:
                z[gc[a]] = float(np.median(gv[a:b]))
    if hasattr(norm, "vmin") and type(norm).__name__ == "LogNorm":
        z = np.where(z <= 0, norm.vmin, z)  # exactly 0 on a log scale: the lowest colour
    diverged_cells = (rows_per_cell > 0) & (diverged_per_cell == rows_per_cell)
    z = np.ma.masked_invalid(z.reshape(len(ys), len(xs)))
    ex, ey = _edges(xs, log_x), _edges(ys, log_y)
    ax.set_facecolor(MISSING_COLOR)
    mesh = ax.pcolormesh(ex, ey, z, norm=norm, cmap="viridis", shading="flat", gid="heatmap")
    red = STATUS_COLORS["diverged"]
    marks = np.ma.masked_array(np.ones((len(ys), len(xs))), mask=~diverged_cells.reshape(len(ys), len(xs)))
    ax.pcolormesh(ex, ey, marks, cmap=ListedColormap([red]), vmin=0, vmax=2, shading="flat", gid="diverged-cells")
    ax.set_xlim(ex[0], ex[-1])
    ax.set_ylim(ey[0], ey[-1])
    missing = rows_per_cell == 0
    lost = ~missing & ~diverged_cells & np.ma.getmaskarray(z).ravel()
    if lost.any():
        gray = np.ma.masked_array(np.ones((len(ys), len(xs))), mask=~lost.reshape(len(ys), len(xs)))
        ax.pcolormesh(ex, ey, gray, cmap=ListedColormap([LOST_COLOR]), vmin=0, vmax=2, shading="flat", gid="failed-cells")
    return mesh, int(diverged_cells.sum()), int(missing.sum()), int(lost.sum())


def _proxy(color: str, label: str):
    """A legend entry for a colour that a QuadMesh shows (not added to the axes)."""
    from matplotlib.patches import Patch

    return Patch(facecolor=color, edgecolor="#999999", label=label)


def _scatter(ax, x: np.ndarray, y: np.ndarray, value: np.ndarray, status: np.ndarray, norm):
    """A sweep that is not a grid: each config a point coloured by its value; diverged ones red crosses."""
    diverged = status == "diverged"
    good = np.isfinite(value) & ~diverged
    v = np.where(value[good] <= 0, getattr(norm, "vmin", 0.0), value[good]) if type(norm).__name__ == "LogNorm" else value[good]
    mappable = ax.scatter(x[good], y[good], c=v, norm=norm, cmap="viridis", s=18, edgecolors="none", gid="values")
    if diverged.any():
        ax.scatter(x[diverged], y[diverged], marker="x", s=30, linewidths=1.4, color=STATUS_COLORS["diverged"],
                   label=f"diverged ({int(diverged.sum())})", gid="status:diverged")  # fmt: skip
    lost = ~np.isfinite(value) & ~diverged
    if lost.any():
        ax.scatter(x[lost], y[lost], marker="s", s=18, color=STATUS_COLORS["failed"],
                   label=f"no finite value ({int(lost.sum())})", gid="edge:failed")  # fmt: skip
    return mappable if good.any() else None


def _bound_line(ax, table: SweepTable, x_key: str, y_key: str, rows: np.ndarray) -> None:
    """For each value of the other number, the median largest stable lr among its configs."""
    other_key = y_key if x_key == "lr" else x_key
    other = table.numeric[other_key][rows]
    bound = table.stable_lr[rows]
    finite = np.isfinite(bound)
    if not finite.any():
        return
    values = np.unique(other[finite])
    medians = np.array([np.median(bound[finite & (other == v)]) for v in values]) if len(values) <= 2000 else None
    if medians is None:  # a random sweep: every config its own value, so its own bound
        order = np.argsort(other[finite])
        values, medians = other[finite][order], bound[finite][order]
    formula = _bound_formula(table, momentum_swept="momentum" in other_key)
    label = f"predicted bound lr = {formula}"
    if len(np.unique(np.round(medians, 12))) == 1:
        label += f" = {_g(float(medians[0]))}"
    xy = (medians, values) if x_key == "lr" else (values, medians)
    ax.plot(*xy, color="white", lw=3.5, alpha=0.9, zorder=5)
    ax.plot(*xy, color="black", lw=1.6, ls="--", marker="o" if len(values) <= 40 else None, ms=3, zorder=6, label=label,
            gid="bound")  # fmt: skip


# ---------------------------------------------------------------------------- no swept number


def _bars(table: SweepTable, keys: list[str]):
    """A bar per config (optimizer names, lists...), coloured by status; diverged ones marked at the top."""
    n = len(table.ids)
    fig = new_figure(max(6.0, min(14.0, 1.0 + 0.5 * n)), 4.8)
    ax = fig.add_subplot()
    value = table.value
    diverged = table.status == "diverged"
    shown = np.isfinite(value) & ~diverged
    positive = value[shown] > 0
    log_y = bool(shown.any() and np.all(value[shown] >= 0) and positive.any()
                 and np.log10(value[shown][positive].max() / value[shown][positive].min()) > 2)  # fmt: skip
    if log_y:
        ax.set_yscale("log")
    position = np.arange(n, dtype=np.float64)
    edge = ax.get_xaxis_transform()
    floor = float(value[shown][positive].min()) / 10 if log_y else 0.0
    for status, mine, color in _by_status(table):
        if status == "diverged":
            _diverged_at_the_top(ax, position[mine], edge, size=60, width=2)
            continue
        bars = mine & shown
        heights = np.where(value[bars] > 0, value[bars], floor) if log_y else value[bars]
        ax.bar(position[bars], heights - floor, bottom=floor, color=color, width=0.7,
               label=f"{status} ({int(mine.sum())})", gid=f"status:{status}")  # fmt: skip
        lost = mine & ~np.isfinite(value)
        if lost.any():
            ax.scatter(position[lost], np.full(int(lost.sum()), EDGE_Y), transform=edge, marker="s", s=30, color=color,
                       clip_on=False, zorder=4, label=f"{status}: no finite value ({int(lost.sum())})", gid=f"edge:{status}")  # fmt: skip
    if shown.any():
        _y_limits(ax, np.where(value[shown] > 0, value[shown], floor) if log_y else np.append(value[shown], 0.0), log_y,
                  top_room=bool((~shown).any()))  # fmt: skip
    names = [", ".join(_text(table.columns[k][i]) for k in keys) for i in range(n)]
    ax.set_xticks(position, [f"{i}: {name}" if len(name) < 28 else f"{i}: {name[:25]}..." for i, name in zip(table.ids, names)],
                  rotation=30 if n > 4 else 0, ha="right" if n > 4 else "center", fontsize="small")  # fmt: skip
    ax.set_xlabel(", ".join(keys) + " (config id: value)")
    ax.set_ylabel(_value_label(table))
    ax.grid(True, axis="y", alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False)
    return fig


def _diverged_at_the_top(ax, x: np.ndarray, edge, size: float, width: float) -> None:
    """Diverged configs as red crosses on the top edge (their value is not finite, or huge)."""
    ax.scatter(x, np.full(len(x), EDGE_Y), transform=edge, marker="x", s=size, linewidths=width,
               color=STATUS_COLORS["diverged"], clip_on=False, zorder=4,
               label=f"diverged ({len(x)}, drawn at the top edge)", gid="status:diverged")  # fmt: skip


def _by_status(table):
    """(status, its configs as a mask, its colour) for each status some config has, in order."""
    for status in STATUSES:
        mine = table.status == status
        if mine.any():
            yield status, mine, STATUS_COLORS.get(status, "#7f7f7f")
