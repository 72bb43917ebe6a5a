"""Curvature: Hessians, Hessian-vector products and spectra on both gradient sources."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gdrun import curvature as C
from gdrun.config import validate
from gdrun.runner import prepare

SOURCES = ("symbolic", "autograd")
BACKEND = {"symbolic": "numpy", "autograd": "torch"}


def prepared(source: str, **raw):
    return prepare(validate({"backend": BACKEND[source], "lr": 0.1, **raw}))


def curvature(source: str, **raw) -> C.Curvature:
    cv = C.for_prepared(prepared(source, **raw))
    assert cv.source == source
    return cv


def fd_hessian(cv: C.Curvature, x: np.ndarray, h: float = 1e-5) -> np.ndarray:
    """Central differences of the gradient, column by column."""
    n = len(x)
    E = np.eye(n) * h
    plus = cv.gradient(x[None, :] + E)[1]
    minus = cv.gradient(x[None, :] - E)[1]
    H = (plus - minus) / (2 * h)
    return 0.5 * (H + H.T)


def torch_reference(raw: dict, x: np.ndarray) -> np.ndarray:
    p = prepare(validate({"backend": "torch", "lr": 0.1, **raw}))
    if p.fit is None:
        value = p.function.objective.value_fn(p.backend.ns)
    else:
        value = C.fit_curvature(p.fit, "autograd").value_fn
    return torch.autograd.functional.hessian(lambda t: value(t[None, :])[0], torch.tensor(x, dtype=torch.float64)).numpy()


EXPRESSIONS = [
    ("x**2", [0.7]),
    ("exp(x)*sin(y) + log(1 + x**2*y**2)", [0.3, -0.8]),
    ("x*y*z + (x - y)**3/z", [1.2, 0.4, 2.0]),
    ("sqrt(1 + x**2) * cosh(y) - tanh(x*y)", [0.5, -0.2]),
    ("(1-x)**2 + 100*(y-x**2)**2", [-1.2, 1.0]),
]


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("expr,point", EXPRESSIONS)
def test_expressions_against_torch_and_finite_differences(source, expr, point):
    cv = curvature(source, function=expr)
    x = np.array(point)
    H = cv.hessian(x[None, :])[0]
    ref = torch_reference({"function": expr}, x)
    np.testing.assert_allclose(H, ref, rtol=1e-12, atol=1e-12 * np.abs(ref).max())
    np.testing.assert_allclose(H, fd_hessian(cv, x), rtol=1e-6, atol=1e-6 * np.abs(ref).max())
    V = np.random.default_rng(0).standard_normal((1, len(x)))
    np.testing.assert_allclose(cv.hvp(x[None, :], V)[0], ref @ V[0], rtol=1e-11, atol=1e-11 * np.abs(ref).max())


SEPARABLE = ["sphere", "rosenbrock", "rastrigin", "ackley", "styblinski_tang"]


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("name", SEPARABLE)
@pytest.mark.parametrize("dim", [1, 2, 7])
def test_separable_builtins_against_torch(source, name, dim):
    if name == "rosenbrock" and dim == 1:
        return
    cv = curvature(source, function=name, dim=dim)
    x = np.random.default_rng(dim).uniform(-1, 1, dim)
    H = cv.hessian(x[None, :])[0]
    ref = torch_reference({"function": name, "dim": dim}, x)
    scale = np.abs(ref).max()
    np.testing.assert_allclose(H, ref, rtol=1e-11, atol=1e-12 * scale)
    np.testing.assert_allclose(H, fd_hessian(cv, x), rtol=1e-6, atol=1e-6 * scale)
    value, G = cv.gradient(x[None, :])
    p = prepared(source, function=name, dim=dim)
    f_run, g_run = p.problem.value_and_grad(p.backend.asarray(x[None, :]))
    np.testing.assert_allclose(G, p.backend.to_numpy(g_run), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(value, p.backend.to_numpy(f_run), rtol=1e-12)


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("name", SEPARABLE)
def test_large_dimension_lanczos_or_tridiagonal_matches_the_dense_answer(source, name):
    dim = 300
    cv = curvature(source, function=name, dim=dim)
    X = np.random.default_rng(5).uniform(-1, 1, (2, dim))
    spectra = cv.spectra(X)
    dense = np.linalg.eigvalsh(cv.hessian(X))
    for s, ev in zip(spectra, dense):
        assert s.finite and s.eigenvalues is None
        scale = max(abs(ev[0]), abs(ev[-1]))
        assert abs(s.lambda_min - ev[0]) <= 1e-6 * scale and abs(s.lambda_max - ev[-1]) <= 1e-6 * scale, (s, ev[[0, -1]])
        assert "Lanczos" in s.method or "exact" in s.method
    if source == "autograd" or name == "ackley":
        assert "Lanczos" in spectra[0].method
    else:
        assert "exact Hessian (symbolic" in spectra[0].method
    # the dense Hessians of both sources agree
    other = C.for_prepared(prepared("autograd" if source == "symbolic" else "symbolic", function=name, dim=dim))
    H2 = other.hessian(X[:1])
    np.testing.assert_allclose(cv.hessian(X[:1]), H2, rtol=1e-11, atol=1e-11 * np.abs(H2).max())


def test_lanczos_is_reproducible():
    cv = curvature("autograd", function="ackley", dim=300)
    X = np.random.default_rng(3).uniform(-1, 1, (1, 300))
    assert cv.spectra(X) == cv.spectra(X)


# ---------------------------------------------------------------------------- known values


@pytest.mark.parametrize("source", SOURCES)
def test_known_values(source):
    (s,) = curvature(source, function="x2").spectra([[3.0]])
    assert s.eigenvalues == (2.0,) and s.condition_number == 1.0
    assert s.method == f"exact Hessian ({'symbolic' if source == 'symbolic' else 'autograd'})"
    booth = curvature(source, function="booth")
    np.testing.assert_allclose(booth.hessian([[0.3, -2.0]])[0], [[10, 8], [8, 10]], rtol=1e-14)
    (s,) = booth.spectra([[0.0, 0.0]])
    np.testing.assert_allclose(s.eigenvalues, [2, 18], rtol=1e-14)
    assert s.condition_number == pytest.approx(9)
    rosen = curvature(source, function="rosenbrock")
    np.testing.assert_allclose(rosen.hessian([[1.0, 1.0]])[0], [[802, -400], [-400, 200]], rtol=1e-14)
    (s,) = rosen.spectra([[1.0, 1.0]])
    assert round(s.lambda_min, 4) == 0.3994 and round(s.lambda_max, 1) == 1001.6
    assert s.condition_number == pytest.approx(1001.6006392325123 / 0.3993607674876216)


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("dim", [1, 3, 1000])
def test_known_values_in_any_dimension(source, dim):
    ras = curvature(source, function="rastrigin", dim=dim).spectra(np.zeros((1, dim)))[0]
    assert ras.lambda_min == pytest.approx(2 + 40 * math.pi**2, rel=1e-12)
    assert ras.lambda_max == pytest.approx(2 + 40 * math.pi**2, rel=1e-12)
    sph = curvature(source, function="sphere", dim=dim).spectra(np.full((1, dim), 0.3))[0]
    assert sph.lambda_min == pytest.approx(2.0, rel=1e-12) and sph.lambda_max == pytest.approx(2.0, rel=1e-12)
    if dim <= C.LISTED_MAX:
        assert sph.eigenvalues == (2.0,) * dim
    if dim >= 2:
        ros = curvature(source, function="rosenbrock", dim=dim).spectra(np.ones((1, dim)))[0]
        if dim == 1000:
            assert ros.lambda_min == pytest.approx(0.498753117207, rel=1e-8)
            assert ros.lambda_max == pytest.approx(1801.99605215710, rel=1e-10)


def test_symbolic_large_expression_by_central_differences():
    n = 40
    text = " + ".join(f"x{i}**2*x{i + 1}" for i in range(1, n)) + " + " + " + ".join(f"exp(x{i}/10)" for i in range(1, n + 1))
    cv = curvature("symbolic", function=text)
    assert cv.n == n and not cv.exact
    x = np.random.default_rng(0).uniform(-1, 1, n)
    H = cv.hessian(x[None, :])[0]
    ref = torch_reference({"function": text}, x)
    np.testing.assert_allclose(H, ref, atol=1e-8 * np.abs(ref).max())
    (s,) = cv.spectra(x[None, :])
    assert "central differences" in s.method and s.eigenvalues is None
    ev = np.linalg.eigvalsh(ref)
    assert s.lambda_min == pytest.approx(ev[0], abs=1e-8) and s.lambda_max == pytest.approx(ev[-1], abs=1e-8)


# ---------------------------------------------------------------------------- fits

XS = {"x": [1, 2, 3], "y": [2, 4, 6]}
E5_DATA = {"x": "range(-400, 400) / 400", "y": "2*x**2 - 4*x + 3"}


@pytest.mark.parametrize("source", SOURCES)
def test_e4_fit(source):
    cv = curvature(source, fit={"model": "w*x", "data": XS}, init={"w": 1})
    assert cv.names == ("w",)
    (s,) = cv.spectra([[0.5]])
    assert s.eigenvalues[0] == pytest.approx(28 / 3, rel=1e-14)


@pytest.mark.parametrize("source", SOURCES)
def test_e5_fit_is_badly_conditioned(source):
    cv = curvature(source, fit={"model": "a*x**2 + b*x + c", "data": E5_DATA}, init={"a": 1, "b": 1, "c": 1})
    x = np.arange(-400, 400) / 400
    A = np.stack([x**2, x, np.ones_like(x)], 1)
    ref = 2 * A.T @ A / len(x)
    H = cv.hessian([[-1.8, -131.7, -2400.0]])[0]
    np.testing.assert_allclose(H, ref, rtol=1e-13, atol=1e-15)
    (s,) = cv.spectra([[2.0, -4.0, 3.0]])
    ev = np.linalg.eigvalsh(ref)
    np.testing.assert_allclose(s.eigenvalues, ev, rtol=1e-12)
    assert s.condition_number == pytest.approx(ev[-1] / ev[0], rel=1e-10) and s.condition_number > 10


FIT = {"model": "a*exp(-k*x) + c*sin(x)", "data": {"x": [0.0, 0.5, 1.0, 1.5, 2.0, 3.0], "y": [3.0, 2.1, 1.9, 1.2, 0.2, 0.1]}}


@pytest.mark.parametrize("loss", ["mse", "half_mse", "huber", "mae"])
@pytest.mark.parametrize("source", SOURCES)
def test_fit_losses_against_torch(loss, source):
    spec = {**FIT, "loss": loss, "huber_delta": 0.6}
    raw = {"fit": spec, "init": {"a": 1, "k": 1, "c": 0}}
    cv = curvature(source, **raw)
    p = np.array([2.5, 0.7, 0.3])
    H = cv.hessian(p[None, :])[0]
    ref = torch_reference(raw, p)
    np.testing.assert_allclose(H, ref, rtol=1e-12, atol=1e-12 * np.abs(ref).max())
    # the gradient is the run's own, over all data
    value, G = cv.gradient(p[None, :])
    pre = prepared(source, **raw)
    f_run, g_run = pre.problem.value_and_grad(pre.backend.asarray(p[None, :]))
    np.testing.assert_allclose(G, pre.backend.to_numpy(g_run), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(value, pre.backend.to_numpy(f_run), rtol=1e-12)
    if loss != "mae":  # mae's l'' is 0 away from r = 0 but the gradient jumps there
        np.testing.assert_allclose(H, fd_hessian(cv, p), rtol=1e-6, atol=1e-6 * np.abs(ref).max())


@pytest.mark.parametrize("source", SOURCES)
def test_fit_frozen_parameter_is_excluded(source):
    raw = {"fit": {**FIT, "freeze": ["k"]}, "init": {"a": 1, "k": 0.7, "c": 0}}
    cv = curvature(source, **raw)
    assert cv.names == ("a", "c")
    full = curvature(source, fit=FIT, init={"a": 1, "k": 0.7, "c": 0})
    assert full.names == ("a", "c", "k")
    H = cv.hessian([[2.5, 0.3]])[0]
    H_full = full.hessian([[2.5, 0.3, 0.7]])[0]
    np.testing.assert_allclose(H, H_full[:2, :2], rtol=1e-13)


# ---------------------------------------------------------------------------- not finite, batching


@pytest.mark.parametrize("source", SOURCES)
def test_not_finite(source):
    ackley = curvature(source, function="ackley", dim=3)
    at_zero, away = ackley.spectra([[0.0, 0.0, 0.0], [0.1, 0.2, 0.3]])
    assert not at_zero.finite and at_zero.condition_number is None and at_zero.eigenvalues is None
    assert "not finite" in at_zero.method and "not differentiable" in at_zero.method
    assert away.finite
    assert at_zero.to_json()["lambda_min"] is None
    big = curvature(source, function="ackley", dim=300).spectra(np.zeros((1, 300)))[0]
    assert not big.finite
    kink, smooth = curvature(source, function="abs(x) + y**2").spectra([[0.0, 1.0], [-2.0, 1.0]])
    assert not kink.finite and "not differentiable" in kink.method
    assert smooth.eigenvalues == (0.0, 2.0)
    (nan_point,) = curvature(source, function="x**2 + y**2").spectra([[math.nan, 1.0]])
    assert not nan_point.finite


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("raw", [
    {"function": "exp(x)*sin(y) + log(1 + x**2*y**2)"},
    {"function": "rosenbrock", "dim": 5},
    {"function": "ackley", "dim": 210},
    {"fit": FIT, "init": {"a": 1, "k": 1, "c": 0}},
])  # fmt: skip
def test_batch_equals_one_by_one(source, raw):
    cv = curvature(source, **raw)
    X = np.random.default_rng(9).uniform(-1, 1, (4, cv.n)) + 0.5
    together = cv.spectra(X)
    assert together == [cv.spectra(x[None, :])[0] for x in X]
    H = cv.hessian(X)
    np.testing.assert_allclose(H, np.concatenate([cv.hessian(x[None, :]) for x in X]), rtol=1e-14, atol=1e-14)
    V = np.random.default_rng(1).standard_normal(X.shape)
    np.testing.assert_allclose(cv.hvp(X, V), np.einsum("bij,bj->bi", H, V), rtol=1e-10, atol=1e-10 * np.abs(H).max())


def test_condition_number():
    assert C.Spectrum(2.0, 18.0, (2.0, 18.0), "m").condition_number == 9.0
    assert C.Spectrum(-1.0, 18.0, None, "m").condition_number is None
    assert C.Spectrum(0.0, 18.0, None, "m").condition_number is None
    assert C.not_finite("why").condition_number is None and not C.not_finite("why").finite


def test_gradient_source_of_a_torch_run_is_cpu_float64():
    cv = curvature("autograd", function="x**3 + y", dtype="float32")
    value, G = cv.gradient([[0.1, 2.0]])
    assert value.dtype == np.float64 and G.dtype == np.float64
    assert G[0, 0] == pytest.approx(3 * 0.01, rel=1e-15)
    assert cv.hessian([[0.1, 2.0]])[0, 0, 0] == pytest.approx(0.6, rel=1e-15)


def test_a_deeply_nested_expression_uses_central_differences_of_the_exact_gradient():
    """sin(sin(...(x))) 30 deep: no second sympy derivation (it takes seconds); the Hessian from
    central differences of the exact gradient still matches autograd closely."""
    from gdrun.curvature import EXACT_DEPTH_MAX, SymbolicExpressionLarge, objective_curvature
    from gdrun.functions import resolve

    depth = EXACT_DEPTH_MAX + 5
    objective = resolve("sin(" * depth + "x" + ")" * depth).objective
    symbolic = objective_curvature(objective, "symbolic")
    assert isinstance(symbolic, SymbolicExpressionLarge)
    X = np.array([[0.3], [1.1]])
    H = symbolic.hessian(X)
    expected = objective_curvature(objective, "autograd").hessian(X)
    assert np.allclose(H, expected, rtol=1e-6, atol=1e-9)
    assert "central differences" in symbolic.spectra(X)[0].method
