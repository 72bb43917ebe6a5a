"""``gdrun functions``: the built-in functions as a table, or one of them in detail."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from .errors import unknown_name
from .functions import REGISTRY, BuiltinFunction


def _point(point: tuple[float, ...]) -> str:
    if len(point) > 4 and len(set(point)) == 1:
        return f"({point[0]:g}, ..., {point[0]:g})"
    return "(" + ", ".join(f"{p:.6g}" for p in point) + ")"


def _minima(fn: BuiltinFunction, dim: int) -> str:
    return "; ".join(f"f{_point(m.point)} = {m.value:.6g}" for m in fn.minima(dim))


def _domain(fn: BuiltinFunction, dim: int) -> str:
    """``[-5, 5]``, or each variable's own range where they differ."""
    if fn.bounds is None:
        return f"[{fn.domain[0]:g}, {fn.domain[1]:g}]"
    names = fn.make(dim).variables
    return ", ".join(f"{name} in [{low:g}, {high:g}]" for name, (low, high) in zip(names, fn.box(dim)))


def print_functions(console: Console | None = None) -> None:
    console = console or Console()
    table = Table(title="built-in functions", title_justify="left")
    for column in ("name", "dim", "formula", "known minimum", "domain"):
        table.add_column(column, overflow="fold", no_wrap=column == "name")
    for fn in sorted(REGISTRY.values(), key=lambda f: f.name):
        dim = fn.dimension(None)
        table.add_row(
            fn.name,
            str(fn.fixed_dim) if fn.fixed_dim else f"any (default {fn.default_dim})",
            fn.make(dim).formula,
            _minima(fn, dim),
            _domain(fn, dim),
        )
    console.print(table)
    console.print('Any expression works too, e.g. gdrun minimize "x**2 + 3*sin(y)". Details: gdrun functions NAME')


def print_function(name: str, dim: int | None = None, console: Console | None = None) -> None:
    console = console or Console()
    fn = REGISTRY.get(name.lower())
    if fn is None:
        raise unknown_name("function", name, REGISTRY)
    dim = fn.dimension(dim)
    objective = fn.make(dim)
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column(overflow="fold")
    grid.add_row("name", fn.name)
    grid.add_row("about", fn.description)
    grid.add_row("formula", objective.formula)
    grid.add_row("variables", ", ".join(objective.variables))
    grid.add_row("dimension", str(fn.fixed_dim) if fn.fixed_dim else f"free (--dim), default {fn.default_dim}")
    grid.add_row("domain", _domain(fn, dim) + ("" if fn.bounds else " for each variable"))
    grid.add_row("known minima", _minima(fn, dim))
    grid.add_row("default init", _point(tuple(fn.default_init(dim))))
    if fn.notes:
        grid.add_row("notes", fn.notes)
    console.print(grid)
