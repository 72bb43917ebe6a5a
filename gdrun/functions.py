"""Built-in objective functions: one registry, each entry with its formula, domain and known minima.

``resolve(name_or_expression, dim)`` is the single entry point: a registered name gives the
built-in, anything else is parsed as an expression (safely, see expr.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from .errors import GdrunError
from .expr import parse
from .problems import ExpressionObjective, SeparableObjective, separable

Objective = ExpressionObjective | SeparableObjective


@dataclass(frozen=True)
class Minimum:
    point: tuple[float, ...]
    value: float


@dataclass(frozen=True)
class BuiltinFunction:
    name: str
    description: str
    make: Callable[[int], Objective]
    #: ``None`` when the dimension is free (set with ``--dim``); otherwise the fixed dimension.
    fixed_dim: int | None
    minima: Callable[[int], list[Minimum]]
    default_init: Callable[[int], list[float]]
    domain: tuple[float, float]
    default_dim: int = 2
    notes: str = ""
    aliases: tuple[str, ...] = field(default=())

    def dimension(self, dim: int | None) -> int:
        if self.fixed_dim is not None:
            if dim is not None and dim != self.fixed_dim:
                raise GdrunError(f"function '{self.name}' is {self.fixed_dim}-dimensional; dim={dim} is not possible")
            return self.fixed_dim
        dim = self.default_dim if dim is None else dim
        if dim < 1:
            raise GdrunError(f"dim must be at least 1, got {dim}")
        return dim


REGISTRY: dict[str, BuiltinFunction] = {}


def register(fn: BuiltinFunction) -> BuiltinFunction:
    REGISTRY[fn.name] = fn
    return fn


def _expression(text: str) -> Callable[[int], ExpressionObjective]:
    objective = ExpressionObjective(parse(text))
    return lambda dim: objective


register(
    BuiltinFunction(
        name="x2",
        description="the parabola x^2, the first example of every course",
        make=_expression("x**2"),
        fixed_dim=1,
        minima=lambda dim: [Minimum((0.0,), 0.0)],
        default_init=lambda dim: [7.5],
        domain=(-10.0, 10.0),
    )
)
register(
    BuiltinFunction(
        name="sphere",
        description="sum of squares, convex in any dimension",
        make=lambda dim: separable(dim, ["a**2"], "S1"),
        fixed_dim=None,
        minima=lambda dim: [Minimum((0.0,) * dim, 0.0)],
        default_init=lambda dim: [1.0] * dim,
        domain=(-5.12, 5.12),
    )
)


@dataclass(frozen=True)
class ResolvedFunction:
    """An objective ready to run, with what is known about it."""

    name: str
    objective: Objective
    builtin: BuiltinFunction | None

    @property
    def variables(self) -> tuple[str, ...]:
        return self.objective.variables

    def default_init(self) -> list[float]:
        if self.builtin is not None:
            return self.builtin.default_init(len(self.variables))
        return [1.0] * len(self.variables)


def resolve(function: str, dim: int | None = None) -> ResolvedFunction:
    """A built-in by name, or else a parsed expression."""
    if not isinstance(function, str) or not function.strip():
        raise GdrunError(f"function must be a built-in name or an expression, got {function!r}")
    builtin = REGISTRY.get(function.strip().lower())
    if builtin is not None:
        return ResolvedFunction(builtin.name, builtin.make(builtin.dimension(dim)), builtin)
    expression = parse(function)
    if not expression.variables:
        raise GdrunError(f"expression {function!r} has no variables to optimise")
    if dim is not None and dim != len(expression.variables):
        raise GdrunError(
            f"dim={dim} does not match the expression {function!r}, which has "
            f"{len(expression.variables)} variable(s): {', '.join(expression.variables)}"
        )
    if _looks_like_name(function):
        from .errors import closest

        hint = closest(function.strip().lower(), REGISTRY)
        if hint:  # a lone unknown name that is close to a built-in is more likely a typo than f(x) = x
            raise GdrunError(f"unknown function '{function}'{hint}; built-ins: {', '.join(sorted(REGISTRY))}")
    return ResolvedFunction("expr", ExpressionObjective(expression), None)


def _looks_like_name(text: str) -> bool:
    return text.strip().isidentifier()
