"""What a run shows in the terminal: a growing table of steps, then a closing panel.

On a terminal the rows print as a rich table that grows above a transient progress line; when
stdout is not a terminal the same rows print as plain aligned text. The table is a pure function
of the rows (``make_table``), and the console is passed in, so tests capture it.
"""

from __future__ import annotations

import math
import re
import time
from typing import Any, Iterable

import numpy as np
from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from .engine import Block
from .explain import EXPLAIN_COLUMNS, panel_lines
from .runs import json_number, summary_number

STATUS_STYLE = {
    "converged": "bold green",
    "max_epochs": "bold cyan",
    "diverged": "bold red",
    "interrupted": "bold yellow",
    "failed": "bold red",
    "running": "bold",
}
AUTO_ROWS = 20
NUMBER_WIDTH = 12  # a number's column: "-1.23457e-05"
COLUMN_GAP = 2  # spaces between the table's columns


def auto_every(epochs: int) -> int:
    """Show about 20 rows: every step for short runs, every Nth for long ones."""
    return max(1, math.ceil(epochs / AUTO_ROWS))


def fmt(value: float) -> str:
    """Six significant digits; a nan gradient norm is where the gradient is undefined."""
    return "undefined" if value != value else f"{value:.6g}"


def make_table(names: tuple[str, ...], rows: list[tuple], header: bool, counters: tuple[str, ...],
               widths: tuple[int, ...], value_title: str = "f", shown: int | None = None) -> Table:  # fmt: skip
    """A table of ``rows`` (*counters, *x, value, grad_norm, lr) with fixed column widths; only the
    first ``shown`` variables get a column (None: all)."""
    table = Table(box=None, show_header=header, header_style="bold", pad_edge=False, padding=(0, COLUMN_GAP // 2))
    for title, width in zip(counters, widths):
        table.add_column(title, justify="right", width=max(len(title), width), style="dim")
    shown = len(names) if shown is None else shown
    for name in names[:shown]:
        table.add_column(name, justify="right", width=NUMBER_WIDTH)
    for title in (value_title, "|grad|", "lr"):
        table.add_column(title, justify="right", width=NUMBER_WIDTH)
    k = len(counters)
    for row in rows:
        numbers = (*row[k: k + shown], *row[k + len(names):])
        table.add_row(*(str(int(c)) for c in row[:k]), *(fmt(v) for v in numbers))
    return table


def variables_that_fit(names: tuple[str, ...], counters: tuple[str, ...], widths: tuple[int, ...], width: int) -> int:
    """How many variable columns fit in ``width`` beside the counters and f, |grad| and lr (at least one)."""
    counter_width = sum(max(len(title), w) for title, w in zip(counters, widths))
    fixed = counter_width + 3 * NUMBER_WIDTH + COLUMN_GAP * (len(counters) + 2)
    return max(1, min(len(names), (width - fixed) // (NUMBER_WIDTH + COLUMN_GAP)))


def left_out_note(names: tuple[str, ...], shown: int, kind: str = "variables", where: str = "metrics.csv") -> str:
    """The line beside a table that had no room for every column of ``names``, naming those it left out."""
    left = names[shown:]
    listed = ", ".join(left) if len(left) <= 3 else f"{left[0]}, ..., {left[-1]}"
    return f"not shown: {listed} ({len(left)} of {len(names)} {kind}; {where} has them all)"


def report_console() -> Console:
    """stdout for a closing report; on a pipe 160 columns wide, never cut to a terminal that is not there."""
    import sys

    return Console(width=None if sys.stdout.isatty() else 160)


def plain_rows(names: tuple[str, ...], rows: list[tuple], header: bool, counters: tuple[str, ...],
               widths: tuple[int, ...], value_title: str = "f") -> str:  # fmt: skip
    """The rows of :func:`make_table` as plain text (for a pipe or a file)."""
    counter_widths = [max(len(title), width) for title, width in zip(counters, widths)]
    k = len(counters)
    lines = []
    if header:
        titles = [*(t.rjust(w) for t, w in zip(counters, counter_widths)),
                  *(t.rjust(12) for t in (*names, value_title, "|grad|", "lr"))]  # fmt: skip
        lines.append(" ".join(titles))
    for row in rows:
        cells = [*(str(int(c)).rjust(w) for c, w in zip(row[:k], counter_widths)), *(fmt(v).rjust(12) for v in row[k:])]
        lines.append(" ".join(cells))
    return "\n".join(lines) + "\n"


class RunDisplay:
    """Engine observer that prints every ``every``-th row (and always the first and the last)."""

    def __init__(self, console: Console, names: tuple[str, ...], epochs: int, every: int = 0, member: int = 0,
                 epoch_rows: bool = False, updates: bool = False):  # fmt: skip
        self.console = console
        self.names = names
        self.epochs = epochs
        self.every = every or auto_every(epochs)
        self.member = member
        # a fit shows epochs (and, with mini-batches, the update count); minimize shows steps
        self.counters = (("epoch", "step") if updates else ("epoch",)) if epoch_rows else ("step",)
        self.widths = (len(str(epochs)), 7)
        self.value_title = "loss" if epoch_rows else "f"
        self.kind = "parameters" if epoch_rows else "variables"
        self.shown = variables_that_fit(names, self.counters, self.widths, console.width)
        self.header_shown = False
        self.last_row: tuple | None = None
        self.last_shown = -1
        self.progress = None
        self.started = time.perf_counter()

    def __enter__(self) -> "RunDisplay":
        if self.console.is_terminal and self.epochs >= 1000:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.progress = Progress(
                TextColumn("step"), MofNCompleteColumn(), BarColumn(), TimeElapsedColumn(),
                console=self.console, transient=True,
            )  # fmt: skip
            self.progress.start()
            self.task = self.progress.add_task("run", total=self.epochs)
        return self

    def __exit__(self, *exc) -> None:
        if self.progress is not None:
            self.progress.stop()

    def on_block(self, block: Block) -> None:
        last = block.last[self.member]
        if last < 0:
            return
        b = self.member
        steps = block.steps[: last + 1]
        picked = np.flatnonzero(steps % self.every == 0)
        rows = [self._row(block, i, b) for i in picked]
        self.last_row = self._row(block, last, b)
        self._print(rows)
        if self.progress is not None:
            self.progress.update(self.task, completed=int(steps[-1]))

    def _row(self, block: Block, i: int, b: int) -> tuple:
        counters = (int(block.steps[i]), int(block.updates[i]))[: len(self.counters)]
        return (*counters, *block.x[i, b].tolist(), float(block.value[i, b]), float(block.grad_norm[i, b]),
                float(block.lr[i, b]))  # fmt: skip

    def _print(self, rows: list[tuple]) -> None:
        if not rows:
            return
        if self.console.is_terminal:
            if not self.header_shown and self.shown < len(self.names):
                self.console.print(left_out_note(self.names, self.shown, self.kind), style="dim", highlight=False)
            table = make_table(self.names, rows, not self.header_shown, self.counters, self.widths, self.value_title,
                               self.shown)  # fmt: skip
            self.console.print(table)
        else:  # plain aligned text, never cut to a terminal width that is not there
            self.console.print(plain_rows(self.names, rows, not self.header_shown, self.counters, self.widths,
                                          self.value_title), highlight=False, soft_wrap=True, end="")  # fmt: skip
        self.header_shown = True
        self.last_shown = rows[-1][0]

    def finish(self) -> None:
        """Print the final row if the every-N filter skipped it."""
        if self.last_row is not None and self.last_row[0] != self.last_shown:
            self._print([self.last_row])


def _wrap_pairs(pairs: list[str], width: int) -> str:
    """``x1 = 1, x2 = 2, ...`` in lines of at most ``width`` characters (0: one line), broken
    between pairs, never between a name and its value."""
    lines: list[str] = []
    for pair in pairs:
        if lines and width and len(lines[-1]) + 2 + len(pair) > width:
            lines[-1] += ","
            lines.append(pair)
        elif lines:
            lines[-1] += ", " + pair
        else:
            lines.append(pair)
    return "\n".join(lines)


def summary_panel(summary: dict[str, Any], console: Console, cut_off: bool = False) -> None:
    """The closing panel (or plain ``key: value`` lines when not on a terminal). ``cut_off``: the
    summary says ``running`` but its process is gone (the reason says where it stopped)."""
    status = summary["status"]
    frozen = summary.get("frozen") or {}
    pairs = [f"{k} = {fmt_any(v)}" + (" (frozen)" if k in frozen else "") for k, v in summary["params"].items()]
    point = _wrap_pairs(pairs, console.width - 19 if console.is_terminal else 0)
    fitting = summary.get("kind") == "fit"
    computed = bool(summary.get("iterations")) or summary.get("finished_at") is not None
    value, grad_norm = summary.get("value"), summary.get("grad_norm")
    if grad_norm in (None, "nan") and computed and value not in (None, "nan", "inf", "-inf"):
        grad_text = "undefined (not differentiable here)"  # null: not finite (older files: the string "nan")
    else:
        grad_text = _number_or_why(grad_norm, computed)
    why = panel_lines(summary.get("diagnostics"))
    lines = [
        ("status", Text(f"{status} (cut off)" if cut_off else status, style=STATUS_STYLE.get(status, "bold"))),
        ("why", Text(summary.get("reason") or "")),
        *((key, Text(text, style="bold" if key == "verdict" else "")) for key, text in why[:1]),
        ("fitted" if fitting else "final point", Text(point)),
        (f"loss ({summary.get('loss', 'mse')})" if fitting else "f", Text(_number_or_why(value, computed))),
        ("|grad|", Text(grad_text)),
    ]
    if fitting:
        lines.append(("R^2", Text(fmt_any(summary.get("r2")))))
        for p in summary.get("predictions") or []:
            at = ", ".join(f"{k} = {v:g}" for k, v in p["at"].items())
            lines.append(("predict", Text(f"{at} -> {fmt_any(p['after'])} (before training: {fmt_any(p['before'])})")))
        lines.append(("epochs", Text(f"{summary['iterations']} ({summary['updates']} updates)")))
    else:
        lines.append(("steps", Text(str(summary["iterations"]))))
    lines += [(key, Text(text)) for key, text in why[1:]]
    lines += [
        ("time", Text(f"{summary['wall_time_s']:.3f} s")),
        ("run dir", Text(str(summary["run_dir"]))),
    ]
    if not console.is_terminal:
        for key, text in lines:
            console.print(f"{key}: {text.plain}", highlight=False, soft_wrap=True)
        return
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    for key, text in lines:
        grid.add_row(key, text)
    console.print(Panel(grid, title=f"gdrun · {summary['function']}", expand=False, border_style=STATUS_STYLE.get(status)))


def _number_or_why(value: Any, computed: bool) -> str:
    """A summary number; null is 'not finite' once something was computed, '-' before."""
    if value is None:
        return "not finite (see why)" if computed else "-"
    return fmt_any(value)


def fmt_any(value: Any) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return fmt(value)
    return str(value)


# ---------------------------------------------------------------------------- sweeps


def print_plan(configs: list[dict[str, Any]], mode: str, console: Console | None = None) -> None:
    """``gdrun sweep --plan``: the expanded configs, one row each."""
    import json

    if mode == "json":
        print(json.dumps(configs, indent=2, default=str))
        return
    console = console or Console()
    keys = [k for k in configs[0] if k != "id"] if configs else []
    table = Table(title=f"{len(configs)} configs", title_justify="left")
    table.add_column("id", justify="right")
    for key in keys:
        table.add_column(key, justify="right")
    shown = configs if len(configs) <= 200 else configs[:100] + configs[-100:]
    for i, config in enumerate(shown):
        if len(configs) > 200 and i == 100:
            table.add_row("...", *(["..."] * len(keys)))
        table.add_row(str(config["id"]), *(str(config[k]) for k in keys))
    console.print(table)


class sweep_progress:
    """A live progress bar over a sweep's configs (nothing when quiet, json or not a terminal)."""

    def __init__(self, output, console: Console | None = None):
        self.console = console or Console(stderr=True)
        self.active = output.mode == "table" and self.console.is_terminal
        self.progress = None

    def __enter__(self):
        if not self.active:
            return None
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(TextColumn("configs"), MofNCompleteColumn(), BarColumn(), TextColumn("{task.description}"),
                                 TimeElapsedColumn(), console=self.console, transient=True)  # fmt: skip
        self.progress.start()
        self.task = self.progress.add_task("", total=None)
        return self.update

    def update(self, finished: int, counts: dict[str, int]) -> None:
        text = ", ".join(f"{k} {v}" for k, v in counts.items() if v)
        self.progress.update(self.task, advance=finished, description=text)

    def __exit__(self, *exc) -> None:
        if self.progress is not None:
            self.progress.stop()


def sweep_report(summary: dict[str, Any], results: Iterable[dict[str, str]], mode: str, console: Console | None = None,
                 best: int = 10) -> None:  # fmt: skip
    """The end of a sweep: a count by status and a table of the best of ``results`` (the rows of
    results.csv as read, one pass); with ``--json`` the summary and every row, numbers as JSON numbers."""
    import heapq
    import json

    if mode == "json":
        print(json.dumps({"summary": summary, "results": [typed_row(row) for row in results]}, indent=2, default=str))
        return
    if mode != "table":
        return
    console = console or report_console()
    regimes: dict[str, int] = {}
    tally: dict[str, Any] = {"total": 0, "first": None}  # how many rows, and the first (its columns)

    def finished() -> Iterable[dict[str, str]]:
        for row in results:
            tally["total"] += 1
            tally["first"] = tally["first"] or row
            if row.get("regime"):
                regimes[row["regime"]] = regimes.get(row["regime"], 0) + 1
            if row["status"] in ("converged", "max_epochs"):
                yield row

    def by_value(row: dict[str, str]) -> tuple[bool, float]:
        value = summary_number(row["value"])
        return value is None, value or 0.0

    ok = [typed_row(row) for row in heapq.nsmallest(best, finished(), key=by_value)]  # as sorted(...)[:best]
    total, first = tally["total"], tally["first"]
    if ok:
        hidden = ("reason", "batch", "batch_time_s", "updates", *(c for c in EXPLAIN_COLUMNS if c != "regime"))
        columns = [c for c in first if c not in hidden]  # results.csv has them all
        params = [c for c in columns if c.startswith("param.")]
        shown = len(params)
        while True:  # the final parameters' columns give way first, so no number is cut short
            kept = [c for c in columns if c not in params[shown:]]
            table = Table(title=f"best {len(ok)} of {total} configs", title_justify="left")
            for column in kept:
                table.add_column(column, justify="right", no_wrap=True)
            for row in ok:
                table.add_row(*("" if row[c] is None else fmt_any(row[c]) for c in kept))
            if shown == 0 or console.measure(table, options=console.options.update_width(1 << 16)).maximum <= console.width:
                break
            shown -= 1
        console.print(table)
        if shown < len(params):
            console.print(left_out_note(tuple(params), shown, "parameters", "results.csv"), style="dim", highlight=False)
    if regimes:  # --explain
        console.print("regimes: " + ", ".join(f"{k} {v}" for k, v in sorted(regimes.items(), key=lambda kv: -kv[1])),
                      highlight=False)  # fmt: skip
    counts = ", ".join(f"{k}: {v}" for k, v in summary["counts"].items() if v) or "no configs ran"
    console.print(f"{summary['status']}: {counts} ({summary['wall_time_s']:.2f} s, {summary['batches']} batches, "
                  f"{summary['executor']} executor)", highlight=False)  # fmt: skip
    console.print(f"sweep dir: {summary['sweep_dir']}", highlight=False, soft_wrap=True)


def typed_row(row: dict[str, str]) -> dict[str, Any]:
    """A results.csv row with its numbers as numbers (an integer stays one; nan and inf as
    summary.json writes them: json_number), a swept list or mapping as itself, an empty cell as None."""
    import json

    typed: dict[str, Any] = {}
    for key, text in row.items():
        if text is None or text == "":
            typed[key] = None
            continue
        try:
            typed[key] = int(text)
            continue
        except ValueError:
            pass
        try:
            typed[key] = json_number(float(text))
            continue
        except ValueError:
            pass
        if text in ("True", "False"):  # how results.csv writes a swept boolean
            typed[key] = text == "True"
            continue
        if text[:1] in "[{":
            try:
                typed[key] = json.loads(text)
                continue
            except ValueError:
                pass
        typed[key] = text
    return typed


# ---------------------------------------------------------------------------- gdrun runs

#: the listing's columns by terminal width: the id and name first; kind and time from 100
#: columns, the directory's name from 150 (--json and --csv always give every column)
DIR_ID = re.compile(r"-([0-9a-f]{6})$")  # a run directory's id
RUNS_COLUMNS = (("id", 0), ("name", 0), ("kind", 100), ("function", 0), ("optimizer", 0), ("lr", 0), ("status", 0),
                ("steps", 0), ("value", 0), ("started", 100), ("dir", 150))  # fmt: skip


def runs_table(rows: list[dict[str, Any]], console: Console, more: int = 0) -> None:
    """``gdrun runs``: one row per run or sweep, newest first; ``more`` rows were left out. Numbers,
    ids and statuses are never cut; a long name, function or directory ends in an ellipsis."""
    import os

    shown = [c for c, width in RUNS_COLUMNS if console.width >= width]
    this_year = time.strftime("%Y")

    def text(r: dict[str, Any], column: str) -> str:
        value = r.get(column)
        if column == "steps" and r["kind"] == "sweep":
            return f"{value or 0:,} cfg"
        if column in ("lr", "optimizer") and value is None and column in (r.get("swept") or []):
            return "swept"
        if column == "started" and value:
            return value[5:16] if value.startswith(this_year) else value[:10]
        if column == "dir":
            return os.path.basename(str(value))
        if column in ("lr", "value") and isinstance(value, (int, float)):
            return f"{value:.4g}"
        return "" if value is None else str(value)

    cells = [[text(r, c) for c in shown] for r in rows]
    narrow = console.width < 100  # one space between the columns, so eight of them fit in 80
    table = Table(box=None, header_style="bold", pad_edge=False, padding=(0, 1), collapse_padding=narrow)
    for j, column in enumerate(shown):
        widest = max([len(column), *(len(row[j]) for row in cells)])
        flexible = column in ("name", "function", "optimizer", "dir")  # a comparison lists its optimizers
        caps = {"name": 14, "function": 12, "optimizer": 12} if narrow else {"name": 24, "function": 20, "optimizer": 20}
        table.add_column(column, justify="right" if column in ("lr", "steps", "value") else "left", no_wrap=True,
                         overflow="ellipsis", min_width=len(column) if flexible else widest, max_width=caps.get(column),
                         style="dim" if column in ("id", "started") else None)  # fmt: skip
    status = shown.index("status")
    for row in cells:
        table.add_row(*(Text(t, style=STATUS_STYLE.get(t, "") if j == status else "") for j, t in enumerate(row)))
    console.print(table)
    if more:
        console.print("older runs not shown (--limit N shows N, --limit 0 all)", style="dim", highlight=False)


def _short_label(path: str) -> str:
    """A run's id (the end of its directory's name), with ``/ID`` for a config of a sweep: a name
    gdrun takes back (``gdrun show b89b3c``)."""
    import os

    head, tail = os.path.split(path.rstrip("/"))
    if tail.isdigit():
        return f"{_short_label(head)}/{tail}"
    match = DIR_ID.search(tail)
    return match.group(1) if match else tail


def comparison_table(comparison, console: Console) -> None:
    """``gdrun runs compare``: the config keys that differ, then the results, one column per run
    (headed by its id; the directories are listed above)."""
    labels = [_short_label(path) for path in comparison.runs]
    for label, path in zip(labels, comparison.runs):
        console.print(f"{label}  {path}", style="dim", highlight=False, soft_wrap=True)
    table = Table(box=None, header_style="bold", pad_edge=False, padding=(0, 2))
    table.add_column("", style="bold", no_wrap=True)
    for label in labels:
        table.add_column(label, overflow="fold")

    def cell(value: Any) -> str:
        if value is None:
            return "-"
        if isinstance(value, float):
            return fmt(value)
        return str(value)

    if comparison.config:
        table.add_row(Text("config", style="dim"), *([""] * len(comparison.runs)))
        for key, values in comparison.config.items():
            table.add_row(key, *map(cell, values))
    else:
        table.add_row(Text("config", style="dim"), *(["(the same)"] * len(comparison.runs)))
    table.add_row(Text("results", style="dim"), *([""] * len(comparison.runs)))
    for key, values in comparison.results.items():
        if key == "reason":
            continue
        table.add_row(key, *(Text(cell(v), style=STATUS_STYLE.get(v, "") if key == "status" else "") for v in values))
    console.print(table)
    if comparison.same:
        console.print(f"{len(comparison.same)} config keys are the same in all (--all shows them)", style="dim",
                      highlight=False)  # fmt: skip
