"""The built-in test functions: formula, minima, gradients, domain and catalog, for every entry of
the registry (a new built-in is picked up by every test here; it needs an independent formula in
``REFERENCE`` below). Functions with a free dimension are checked at dims 2, 3 and 7.

What each listed minimum must satisfy: the value there is the listed one (numpy and torch), the
gradient there is zero (or, where the function has no gradient, it is not claimed), a local
refinement started next to it comes back to it, and no point of the domain goes lower (20,000
random points, the best refined with L-BFGS-B): the last is what catches a wrong table.
"""

from __future__ import annotations

import math
import re
from functools import lru_cache

import numpy as np
import pytest
import scipy.optimize

from gdrun.backends import get_backend
from gdrun.errors import GdrunError
from gdrun.functions import REGISTRY

FREE_DIMS = (2, 3, 7)


def dims_of(fn) -> list[int]:
    return [fn.fixed_dim] if fn.fixed_dim is not None else [d for d in FREE_DIMS if d >= fn.min_dim]


CASES = [pytest.param(name, dim, id=f"{name}-{dim}") for name in sorted(REGISTRY) for dim in dims_of(REGISTRY[name])]
BACKENDS = ("numpy", "torch")


def scale(value: float) -> float:
    """Tolerances are absolute near 0 and relative away from it."""
    return max(1.0, abs(value))


# ---------------------------------------------------------------------------- compiled once per session


@lru_cache(maxsize=None)
def backend(name: str):
    return get_backend(name)


@lru_cache(maxsize=None)
def objective(name: str, dim: int):
    return REGISTRY[name].make(dim)


@lru_cache(maxsize=None)
def value_fn(name: str, dim: int, be: str):
    b = backend(be)
    f = b.value_fn(objective(name, dim))

    def value(X: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            return np.asarray(b.to_numpy(f(b.asarray(np.atleast_2d(X)))), dtype=float)

    return value


@lru_cache(maxsize=None)
def grad_fn(name: str, dim: int, be: str):
    b = backend(be)
    vg = b.value_and_grad_fn(objective(name, dim))

    def value_and_grad(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with np.errstate(all="ignore"):
            f, g = vg(b.asarray(np.atleast_2d(X)))
            return np.asarray(b.to_numpy(f), dtype=float), np.array(b.to_numpy(g), dtype=float)

    return value_and_grad


def scipy_fun(name: str, dim: int):
    """f and its gradient for scipy.optimize, from gdrun's numpy backend (a non-finite gradient,
    as at Ackley's cone tip, counts as 0 there: 0 is in its subdifferential)."""
    vg = grad_fn(name, dim, "numpy")

    def fun(x):
        f, g = vg(np.asarray(x, dtype=float)[None, :])
        return float(f[0]), np.nan_to_num(g[0], nan=0.0, posinf=0.0, neginf=0.0)

    return fun


def cube(fn, dim: int) -> np.ndarray:
    """(dim, 2) bounds: ``domain`` for every variable, the box the minima are claimed global on."""
    return np.array([fn.domain] * dim, dtype=float)


def random_points(fn, dim: int, count: int, seed: int) -> np.ndarray:
    lo, hi = cube(fn, dim).T
    return np.random.default_rng(seed).uniform(lo, hi, size=(count, dim))


# ---------------------------------------------------------------------------- independent formulas
# Typed from Wikipedia's "Test functions for optimization" and the SFU Virtual Library of
# Simulation Experiments (Surjanovic & Bingham), written differently where the registry's text
# allows (expanded polynomials, means instead of sums over n), so a typo in either shows.

PI = np.pi


def _xy(X):
    return X[:, 0], X[:, 1]


def _ackley(X):  # SFU, a = 20, b = 0.2, c = 2 pi
    a, b, c = 20.0, 0.2, 2 * PI
    return -a * np.exp(-b * np.sqrt(np.mean(X**2, axis=1))) - np.exp(np.mean(np.cos(c * X), axis=1)) + a + np.exp(1.0)


def _goldstein_price(X):  # Wikipedia
    x, y = _xy(X)
    first = 1 + (x + y + 1) ** 2 * (19 - 14 * x + 3 * x * x - 14 * y + 6 * x * y + 3 * y * y)
    second = 30 + (2 * x - 3 * y) ** 2 * (18 - 32 * x + 12 * x * x + 48 * y - 36 * x * y + 27 * y * y)
    return first * second


def _levi13(X):  # Wikipedia
    x, y = _xy(X)
    return (
        np.sin(3 * PI * x) ** 2
        + (x - 1) ** 2 * (1 + np.sin(3 * PI * y) ** 2)
        + (y - 1) ** 2 * (1 + np.sin(2 * PI * y) ** 2)
    )


REFERENCE = {
    "x2": lambda X: X[:, 0] ** 2,
    "sphere": lambda X: np.einsum("bi,bi->b", X, X),
    "rosenbrock": lambda X: scipy.optimize.rosen(X.T),
    "rastrigin": lambda X: 10 * X.shape[1] + np.sum(X**2 - 10 * np.cos(2 * PI * X), axis=1),
    "ackley": _ackley,
    "styblinski_tang": lambda X: 0.5 * np.sum(X**4 - 16 * X**2 + 5 * X, axis=1),
    "himmelblau": lambda X: (X[:, 0] ** 2 + X[:, 1] - 11) ** 2 + (X[:, 0] + X[:, 1] ** 2 - 7) ** 2,
    "beale": lambda X: sum((c - X[:, 0] * (1 - X[:, 1] ** k)) ** 2 for k, c in ((1, 1.5), (2, 2.25), (3, 2.625))),
    "booth": lambda X: (X[:, 0] + 2 * X[:, 1] - 7) ** 2 + (2 * X[:, 0] + X[:, 1] - 5) ** 2,
    "matyas": lambda X: 0.26 * (X[:, 0] ** 2 + X[:, 1] ** 2) - 0.48 * X[:, 0] * X[:, 1],
    "three_hump_camel": lambda X: (
        2 * X[:, 0] ** 2 - 1.05 * X[:, 0] ** 4 + X[:, 0] ** 6 / 6 + X[:, 0] * X[:, 1] + X[:, 1] ** 2
    ),
    "six_hump_camel": lambda X: (  # expanded, as in Jamil & Yang
        4 * X[:, 0] ** 2 - 2.1 * X[:, 0] ** 4 + X[:, 0] ** 6 / 3
        + X[:, 0] * X[:, 1] - 4 * X[:, 1] ** 2 + 4 * X[:, 1] ** 4
    ),
    "goldstein_price": _goldstein_price,
    "levi13": _levi13,
    "easom": lambda X: -np.cos(X[:, 0]) * np.cos(X[:, 1]) * np.exp(-((X[:, 0] - PI) ** 2) - (X[:, 1] - PI) ** 2),
    "mccormick": lambda X: np.sin(X[:, 0] + X[:, 1]) + (X[:, 0] - X[:, 1]) ** 2 - 1.5 * X[:, 0] + 2.5 * X[:, 1] + 1,
}


# ---------------------------------------------------------------------------- the registry's entries


@pytest.mark.parametrize("name, dim", CASES)
def test_entry_is_complete(name, dim):
    fn = REGISTRY[name]
    assert fn.description and fn.notes, f"{name}: describe it and say where its numbers come from in notes"
    lo, hi = fn.domain
    assert lo < hi
    assert fn.dimension(dim) == dim
    names = objective(name, dim).variables
    if fn.fixed_dim == 2:
        assert names == ("x", "y")
    if fn.fixed_dim is None:
        assert names == tuple(f"x{i + 1}" for i in range(dim))
    box = fn.box(dim)
    assert len(box) == dim
    for blo, bhi in box:
        assert lo <= blo < bhi <= hi, f"{name}: a variable's range {blo, bhi} is outside domain {fn.domain}"
    minima = fn.minima(dim)
    assert minima, f"{name}: no minimum listed"
    for m in minima:
        assert len(m.point) == dim and all(isinstance(p, float) for p in m.point) and isinstance(m.value, float)
        assert all(b0 <= p <= b1 for p, (b0, b1) in zip(m.point, box)), f"{name}: minimum {m.point} outside {box}"
    assert len({m.point for m in minima}) == len(minima), f"{name}: a minimum is listed twice"
    assert len({m.value for m in minima}) == 1, f"{name}: global minima must share one value"


@pytest.mark.parametrize("name", [n for n in sorted(REGISTRY) if REGISTRY[n].fixed_dim is None])
def test_free_dimension_limits(name):
    fn = REGISTRY[name]
    assert fn.dimension(None) == fn.default_dim >= fn.min_dim
    with pytest.raises(GdrunError, match=str(fn.min_dim)):
        fn.dimension(fn.min_dim - 1)


# ---------------------------------------------------------------------------- the minima


@pytest.mark.parametrize("be", BACKENDS)
@pytest.mark.parametrize("name, dim", CASES)
def test_value_at_each_minimum(name, dim, be):
    minima = REGISTRY[name].minima(dim)
    values = value_fn(name, dim, be)(np.array([m.point for m in minima]))
    for m, v in zip(minima, values):
        assert abs(v - m.value) <= 1e-12 * scale(m.value), f"{name} at {m.point}: {v!r}, listed {m.value!r}"


@pytest.mark.parametrize("be", BACKENDS)
@pytest.mark.parametrize("name, dim", CASES)
def test_gradient_at_each_minimum(name, dim, be):
    rng = np.random.default_rng(3)
    vg = grad_fn(name, dim, be)
    for m in REGISTRY[name].minima(dim):
        point = np.array(m.point)
        _, g = vg(point[None, :])
        if m.differentiable:
            assert np.all(np.abs(g[0]) <= 1e-8), f"{name}: gradient at {m.point} is {g[0]}"
            continue
        # Not differentiable (Ackley's cone tip): the symbolic gradient and autograd are nan (0/0)
        # there, and the gradients on either side of it disagree however close they are.
        assert not np.all(np.isfinite(g[0])), f"{name}: listed as not differentiable at {m.point}, gradient {g[0]}"
        u = rng.normal(size=dim)
        u /= np.linalg.norm(u)
        _, sides = vg(np.array([point + 1e-9 * u, point - 1e-9 * u]))
        assert np.all(np.isfinite(sides))
        assert np.linalg.norm(sides[0] - sides[1]) > 1e-3, f"{name}: looks differentiable at {m.point}"


@pytest.mark.parametrize("name, dim", CASES)
def test_refining_a_minimum_comes_back_to_it(name, dim):
    """BFGS at a tight tolerance, from a small step off each listed minimum, returns to it and finds
    nothing lower: the point is right to far better than the usual 4-6 printed decimals."""
    fun = scipy_fun(name, dim)
    rng = np.random.default_rng(5)
    for m in REGISTRY[name].minima(dim):
        start = np.array(m.point) + rng.uniform(-1e-3, 1e-3, size=dim)
        if m.differentiable:
            result = scipy.optimize.minimize(fun, start, jac=True, method="BFGS",
                                             options={"gtol": 1e-12, "maxiter": 10_000})  # fmt: skip
            assert np.max(np.abs(result.x - m.point)) < 1e-6, f"{name}: refined {m.point} to {result.x}"
        else:
            result = scipy.optimize.minimize(lambda x: fun(x)[0], start, method="Nelder-Mead",
                                             options={"xatol": 1e-12, "fatol": 1e-15, "maxiter": 20_000})  # fmt: skip
            assert np.max(np.abs(result.x - m.point)) < 1e-6, f"{name}: refined {m.point} to {result.x}"
        assert result.fun >= m.value - 1e-12 * scale(m.value), f"{name}: {result.fun!r} below {m.value!r} at {result.x}"


@pytest.mark.parametrize("name, dim", CASES)
def test_nothing_in_the_domain_is_lower(name, dim):
    """20,000 uniform points over the domain, then L-BFGS-B (kept in the domain) from the best few and
    some others; a refined point at the minimum value must be one of the listed minima."""
    fn = REGISTRY[name]
    listed = min(m.value for m in fn.minima(dim))
    X = random_points(fn, dim, 20_000, seed=dim)
    values = value_fn(name, dim, "numpy")(X)
    assert np.all(np.isfinite(values))
    tolerance = 1e-9 * scale(listed)
    i = int(np.argmin(values))
    assert values[i] >= listed - tolerance, f"{name}: f{tuple(X[i])} = {values[i]!r} < listed minimum {listed!r}"
    fun = scipy_fun(name, dim)
    bounds = cube(fn, dim)
    points = np.array([m.point for m in fn.minima(dim)])
    for start in np.concatenate([X[np.argsort(values)[:5]], X[:15]]):  # the best 5, and 15 anywhere
        result = scipy.optimize.minimize(fun, start, jac=True, method="L-BFGS-B", bounds=bounds,
                                         options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 5_000})  # fmt: skip
        below = f"{name}: f{tuple(result.x)} = {result.fun!r} < listed minimum {listed!r}"
        assert result.fun >= listed - tolerance, below
        if result.fun <= listed + tolerance:  # every global minimum found must be listed
            distance = np.min(np.max(np.abs(points - result.x), axis=1))
            assert distance < 1e-5, f"{name}: f{tuple(result.x)} = {result.fun!r} is a global minimum not listed"


# ---------------------------------------------------------------------------- formula and gradients


@pytest.mark.parametrize("be", BACKENDS)
@pytest.mark.parametrize("name, dim", CASES)
def test_formula_matches_an_independent_implementation(name, dim, be):
    assert name in REFERENCE, f"add an independent implementation of {name!r} to REFERENCE in {__file__}"
    X = random_points(REGISTRY[name], dim, 500, seed=11 + dim)
    expected = REFERENCE[name](X)
    actual = value_fn(name, dim, be)(X)
    err = np.abs(actual - expected) / np.maximum(1.0, np.abs(expected))
    worst = int(np.argmax(err))
    assert err[worst] <= 1e-12, f"{name} at {X[worst]}: gdrun {actual[worst]!r}, reference {expected[worst]!r}"


@pytest.mark.parametrize("name, dim", CASES)
def test_symbolic_gradient_matches_autograd(name, dim):
    X = random_points(REGISTRY[name], dim, 500, seed=17 + dim)
    f_np, g_np = grad_fn(name, dim, "numpy")(X)
    f_t, g_t = grad_fn(name, dim, "torch")(X)
    assert np.all(np.isfinite(g_np)) and np.all(np.isfinite(g_t))
    np.testing.assert_allclose(f_np, f_t, rtol=1e-12, atol=1e-12)
    err = np.linalg.norm(g_np - g_t, axis=1) / np.maximum(1.0, np.linalg.norm(g_t, axis=1))
    worst = int(np.argmax(err))
    assert err[worst] <= 1e-10, f"{name} at {X[worst]}: numpy {g_np[worst]}, torch {g_t[worst]}"


# ---------------------------------------------------------------------------- default start point


@pytest.mark.parametrize("name, dim", CASES)
def test_default_init_is_in_the_domain_and_not_a_minimum(name, dim):
    fn = REGISTRY[name]
    init = np.array(fn.default_init(dim), dtype=float)
    assert init.shape == (dim,)
    for x, (lo, hi) in zip(init, fn.box(dim)):
        assert lo <= x <= hi, f"{name}: default init {tuple(init)} outside {fn.box(dim)}"
    f, g = grad_fn(name, dim, "numpy")(init[None, :])
    listed = min(m.value for m in fn.minima(dim))
    assert f[0] > listed + 1e-6, f"{name}: the default init is already at the minimum value"
    assert np.linalg.norm(g[0]) > 1e-6, f"{name}: the default init is a stationary point"
    for m in fn.minima(dim):
        assert np.max(np.abs(init - m.point)) > 1e-3


# ---------------------------------------------------------------------------- gdrun functions


def squash(text: str) -> str:
    """Output without whitespace: rich folds long cells across lines anywhere."""
    return re.sub(r"\s+", "", text)


def test_functions_lists_every_builtin(gdrun, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")  # one line per function, so names are not folded
    result = gdrun("functions")
    assert result.code == 0, result.err
    assert result.err == ""
    listed = {line.split("│")[1].strip() for line in result.out.splitlines() if line.count("│") > 2}
    assert set(REGISTRY) <= listed, f"missing: {sorted(set(REGISTRY) - listed)}"


def shown(fn, dim: int, out: str) -> None:
    text = squash(out)
    objective_ = fn.make(dim)
    assert squash(objective_.formula) in text, f"formula of {fn.name} not shown"
    assert squash(f"[{fn.domain[0]:g}, {fn.domain[1]:g}]") in text, f"domain of {fn.name} not shown"
    for m in fn.minima(dim):
        assert f"{m.value:.6g}" in text, f"minimum value {m.value} of {fn.name} not shown"
        for p in set(m.point):
            assert f"{p:.6g}" in text, f"minimum point {m.point} of {fn.name} not shown"


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_functions_name_shows_formula_domain_and_minima(gdrun, name):
    fn = REGISTRY[name]
    result = gdrun("functions", name)
    assert result.code == 0, result.err
    assert result.err == ""
    shown(fn, fn.dimension(None), result.out)
    if fn.fixed_dim is None:
        result = gdrun("functions", name, "--dim", "7")
        assert result.code == 0, result.err
        shown(fn, 7, result.out)


TYPOS = [("rosenbrok", "rosenbrock"), ("levy13", "levi13"), ("six_hump", "six_hump_camel")]


@pytest.mark.parametrize("typo, meant", TYPOS)
def test_functions_unknown_name_suggests_the_closest(gdrun, typo, meant):
    result = gdrun("functions", typo)
    assert result.code == 2
    assert result.out == ""
    lines = result.err.splitlines()
    assert len(lines) == 1, result.err
    assert typo in lines[0] and f"did you mean '{meant}'" in lines[0], lines[0]


def test_functions_rejects_a_dimension_below_the_minimum(gdrun):
    result = gdrun("functions", "rosenbrock", "--dim", "1")
    assert result.code == 2
    assert len(result.err.splitlines()) == 1 and "rosenbrock" in result.err and "2" in result.err


def test_ackley_is_documented_as_not_differentiable_at_its_minimum():
    fn = REGISTRY["ackley"]
    assert not any(m.differentiable for m in fn.minima(2))
    assert "not differentiable" in fn.notes.lower()


def test_closed_forms_are_stored_to_full_precision():
    """McCormick's minimum is (1/2 - pi/3, -1/2 - pi/3) with f = -sqrt(3)/2 - pi/3; Styblinski-Tang's
    x_i is the root of 4x^3 - 32x + 5."""
    (mc,) = REGISTRY["mccormick"].minima(2)
    np.testing.assert_allclose(mc.point, (0.5 - math.pi / 3, -0.5 - math.pi / 3), rtol=4.5e-16, atol=0)
    assert abs(mc.value - (-math.sqrt(3) / 2 - math.pi / 3)) <= 4.5e-16
    (st,) = REGISTRY["styblinski_tang"].minima(3)
    x = st.point[0]
    assert abs(4 * x**3 - 32 * x + 5) < 1e-13
    assert abs(st.value - 3 * (x**4 - 16 * x**2 + 5 * x) / 2) < 1e-12
