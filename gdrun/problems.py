"""Objectives over a batch of parameter vectors.

Every objective maps ``X`` of shape ``(B, n)`` (B runs, n variables) to values of shape ``(B,)``.
Two forms exist:

* :class:`ExpressionObjective`: any expression over named variables (``"(x+y)**2 + y**3"``).
* :class:`SeparableObjective`: ``outer(S1, ..., Sk, n)`` with ``Sj = sum_i term_j(x_i[, x_i+1])``,
  the shape of n-dimensional test functions (sphere, rosenbrock, rastrigin, ackley...). It is
  evaluated with whole-array operations, so a 1,000-dimensional function costs a few array ops.

A backend asks an objective for ``value_fn(ns)`` (any array namespace; torch differentiates it
with autograd) or ``numpy_value_and_grad()`` (exact symbolic gradients, evaluated with numpy).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .expr import Expression, Namespace, compile_program, compile_tree, format_tree, substitute

ValueFn = Callable[[Any], Any]
ValueAndGradFn = Callable[[Any], tuple[Any, Any]]


@dataclass(frozen=True)
class ExpressionObjective:
    expression: Expression

    @property
    def variables(self) -> tuple[str, ...]:
        return self.expression.variables

    @property
    def formula(self) -> str:
        return str(self.expression)

    def value_fn(self, ns: Namespace) -> ValueFn:
        f = compile_tree(self.expression.tree, ns)
        names = self.variables
        return lambda X: f({name: X[:, i] for i, name in enumerate(names)})

    def numpy_value_and_grad(self) -> ValueAndGradFn:
        from .symbolic import derivatives

        names = self.variables
        run = compile_program(derivatives([self.expression.tree], list(names)), Namespace(np))
        n = len(names)
        if n == 1:  # the common teaching case: evaluated on X (B, 1) itself, no column views
            name = names[0]

            def value_and_grad_1d(X):
                f, g = run({name: X})  # elementwise: an array result has X's shape (B, 1)
                f = f.ravel() if type(f) is np.ndarray and f.shape == X.shape else per_run(f, X)
                return f, (g if type(g) is np.ndarray and g.shape == X.shape else _column(g, X))

            return value_and_grad_1d

        def value_and_grad(X):
            outs = run({name: X[:, i] for i, name in enumerate(names)})
            G = np.empty_like(X)
            for i in range(n):
                G[:, i] = outs[1 + i]
            return per_run(outs[0], X), G

        return value_and_grad


@dataclass(frozen=True)
class SeparableObjective:
    """``outer(S1..Sk, n)`` with ``Sj = sum over i of terms[j](a=x_i, b=x_{i+1})``.

    ``window`` is 1 (terms use ``a`` only, i = 1..n) or 2 (terms use ``a`` and ``b``, i = 1..n-1).
    """

    dim: int
    terms: tuple[tuple, ...]
    outer: tuple
    window: int = 1

    @property
    def variables(self) -> tuple[str, ...]:
        return tuple(f"x{i + 1}" for i in range(self.dim))

    @property
    def formula(self) -> str:
        index = {"a": ("var", "x_i"), "b": ("var", "x_(i+1)")}
        sums = {}
        for j, term in enumerate(self.terms):
            text = format_tree(substitute(term, index))
            sums[f"S{j + 1}"] = ("var", f"sum_i ({text})" if term[0] in ("add", "sub") else f"sum_i {text}")
        return format_tree(substitute(self.outer, sums))

    def _inputs(self, X) -> dict[str, Any]:
        if self.window == 1:
            return {"a": X}
        return {"a": X[:, :-1], "b": X[:, 1:]}

    def value_fn(self, ns: Namespace) -> ValueFn:
        terms = [compile_tree(t, ns) for t in self.terms]
        outer = compile_tree(self.outer, ns)
        n = float(self.dim)

        def value(X):
            inputs = self._inputs(X)
            sums = {f"S{j + 1}": term(inputs).sum(1) for j, term in enumerate(terms)}
            return outer({**sums, "n": n})

        return value

    def numpy_value_and_grad(self) -> ValueAndGradFn:
        from .symbolic import derivatives

        ns = Namespace(np)
        ab = ["a", "b"][: self.window]
        k = len(self.terms)
        sum_names = [f"S{j + 1}" for j in range(k)]
        run_terms = compile_program(derivatives(list(self.terms), ab), ns)
        run_outer = compile_program(derivatives([self.outer], sum_names + ["n"], wrt=sum_names), ns)
        n = float(self.dim)
        window = self.window

        def value_and_grad(X):
            inputs = self._inputs(X)
            shape = inputs["a"].shape
            outs = run_terms(inputs)  # term_1..term_k, then d term_j/da (, d term_j/db)
            sums = {name: _row_sums(outs[j], shape) for j, name in enumerate(sum_names)}
            outer = run_outer({**sums, "n": n})  # outer, then d outer / d S_j
            # G = 0, then G[:, :m] += weight * d term_j/da (and G[:, 1:] += weight * d term_j/db):
            # the first sum is written as 0 + contribution (0 + -0.0 is 0.0, as when adding to
            # zeros), and a weight of exactly 1.0 (a plain sum) multiplies nothing
            m = X.shape[1] - window + 1
            G = np.empty_like(X)
            G[:, m:] = 0
            first = True
            for j in range(k):
                weight = np.asarray(outer[1 + j])[..., None] if np.ndim(outer[1 + j]) else outer[1 + j]
                one = type(weight) is float and weight == 1.0
                part = outs[k + j * window] if one else weight * outs[k + j * window]
                if first:
                    np.add(part, 0, out=G[:, :m], casting="same_kind")
                    first = False
                else:
                    G[:, :m] += part
                if window == 2:
                    G[:, 1:] += outs[k + j * window + 1] if one else weight * outs[k + j * window + 1]
            return per_run(outer[0], X), G

        return value_and_grad


def _row_sums(term, shape):
    """``np.broadcast_to(term, shape).sum(1)``; for a single column, ``term[:, 0] + 0`` is the same
    value (numpy adds the one element to 0, so -0.0 becomes 0.0) without a reduction."""
    if type(term) is np.ndarray and term.shape == shape and shape[1] == 1:
        return np.add(term[:, 0], 0)
    return np.broadcast_to(term, shape).sum(1)


def _column(g, X):
    """A one-variable gradient that is not an array of X's shape (a constant: the derivative of
    ``3*x`` is 3) as an array (B, 1) in the runs' dtype."""
    if isinstance(g, np.ndarray):
        return np.array(np.broadcast_to(g, X.shape))
    return np.full_like(X, g)


def per_run(value, X):
    """``value`` as one value per run (B,): a constant (``x - x``, whose derivation leaves a number)
    is repeated in the runs' dtype. Called every step: the common case returns at once."""
    if type(value) is np.ndarray and value.shape == X.shape[:1]:
        return value
    return np.broadcast_to(np.asarray(value, dtype=X.dtype), X.shape[:1]).copy()


def separable(dim: int, terms: list[str], outer: str, window: int = 1) -> SeparableObjective:
    """Build a :class:`SeparableObjective` from expression strings (trusted, built-in text)."""
    from .expr import parse

    return SeparableObjective(dim, tuple(parse(t).tree for t in terms), parse(outer).tree, window)
