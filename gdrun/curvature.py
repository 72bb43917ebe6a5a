"""Second derivatives of what a run minimises: Hessians, Hessian-vector products, spectra.

One home for curvature. A :class:`Curvature` is built from a prepared run (a function to
minimise, or a fit's full-data loss as a function of its trainable parameters, frozen ones
excluded) on the run's own gradient source: symbolic (sympy, evaluated with numpy) for the numpy
backend, autograd for torch. Every method takes and returns float64 numpy arrays with a leading
batch axis, so a sweep's final points are analysed in one pass.

Small problems get the exact Hessian and all its eigenvalues (``numpy.linalg.eigvalsh``); above
:data:`DENSE_MAX` variables the extreme eigenvalues come from Lanczos on Hessian-vector products
(``scipy.sparse.linalg.eigsh``), a few dozen products each.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

DENSE_MAX = 200  # exact Hessian and eigvalsh up to this many variables; Lanczos above
LISTED_MAX = 10  # a spectrum lists every eigenvalue up to this many variables


@dataclass(frozen=True)
class Spectrum:
    """The Hessian's spectrum at one point. ``lambda_min``/``lambda_max`` are None where the
    Hessian is not finite there (a kink, as Ackley's at 0, or an overflow)."""

    lambda_min: float | None
    lambda_max: float | None
    eigenvalues: tuple[float, ...] | None  # ascending, all of them; None above LISTED_MAX variables or when not exact
    method: str  # how it was computed, e.g. "exact Hessian (symbolic)", "Lanczos on 40 Hessian-vector products (autograd)"

    @property
    def finite(self) -> bool:
        return self.lambda_min is not None and self.lambda_max is not None

    @property
    def condition_number(self) -> float | None:
        """lambda_max / lambda_min where both are positive; None otherwise (not convex here)."""
        if not self.finite or self.lambda_min <= 0 or self.lambda_max <= 0:
            return None
        return self.lambda_max / self.lambda_min

    def to_json(self) -> dict[str, Any]:
        return {
            "lambda_min": self.lambda_min,
            "lambda_max": self.lambda_max,
            "condition_number": self.condition_number,
            "eigenvalues": list(self.eigenvalues) if self.eigenvalues is not None else None,
            "method": self.method,
        }


def not_finite(method: str) -> Spectrum:
    return Spectrum(None, None, None, method)


def _finite_or_none(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


NOT_FINITE = "no Hessian here: not finite (not differentiable at this point?)"
NOT_FINITE_POINT = "no Hessian here: the point is not finite"
EXACT_MAX = 30  # symbolic second derivatives (n (n + 1) / 2 of them) up to this many variables
#: ...and up to this nesting depth: sympy's second derivative of sin(sin(...(x))) 50 deep takes
#: seconds, about as long as the run's own first derivative; deeper expressions use central
#: differences of the exact gradient (the same accuracy as above EXACT_MAX variables)
EXACT_DEPTH_MAX = 25
#: central-difference step, relative to max(1, |x|_inf): cbrt(eps) balances truncation (h**2) and rounding (eps / h)
FD_STEP = float(np.finfo(np.float64).eps) ** (1 / 3)
LANCZOS_TOL = 1e-8  # ARPACK's relative tolerance on each extreme eigenvalue
LANCZOS_MAXITER = 300  # restarts of ARPACK's implicitly restarted Lanczos (each ncv - 1 products at most)
LANCZOS_NCV = 40  # Lanczos vectors kept
POWER_STEPS = 48  # power iterations when Lanczos does not converge
_CHUNK_VALUES = 4_000_000  # numbers per chunk when a dense Hessian is built from hvps of identity columns


def _rows(X) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    return X[None, :] if X.ndim == 1 else X


def _full(value, shape: tuple[int, ...]) -> np.ndarray:
    """A derivative program's output (an array, or a plain number where the derivative is constant)
    broadcast to ``shape``."""
    return np.broadcast_to(np.asarray(value, dtype=np.float64), shape)


class Curvature:
    """Gradient, Hessian, Hessian-vector products and spectra of one objective (float64, batched).

    Subclasses provide ``_value_and_grad(X)`` and ``_operator(X)`` (a function V -> H(X) V for the
    whole batch, whatever can be shared between products prepared once); those with an exact dense
    Hessian override ``_dense(X)``."""

    names: tuple[str, ...]
    source: str  # "symbolic" or "autograd"
    label: str  # how the Hessian is obtained, for Spectrum.method: "symbolic", "autograd", ...
    exact: bool = True  # whether hessian() is exact (else central differences of an exact gradient)

    @property
    def n(self) -> int:
        return len(self.names)

    # -- the public interface
    def gradient(self, X) -> tuple[np.ndarray, np.ndarray]:
        """(B, n) -> value (B,), gradient (B, n)."""
        X = _rows(X)
        with np.errstate(all="ignore"):
            value, G = self._value_and_grad(X)
        return np.asarray(value, dtype=np.float64).reshape(len(X)), np.asarray(G, dtype=np.float64).reshape(X.shape)

    def hessian(self, X) -> np.ndarray:
        """(B, n) -> (B, n, n)."""
        X = _rows(X)
        with np.errstate(all="ignore"):
            return self._dense(X)

    def hvp(self, X, V) -> np.ndarray:
        """(B, n), (B, n) -> (B, n): H(X_b) @ V_b."""
        X = _rows(X)
        V = np.broadcast_to(_rows(V), X.shape)
        with np.errstate(all="ignore"):
            return np.asarray(self._operator(X)(V), dtype=np.float64)

    def spectra(self, X) -> list[Spectrum]:
        """One :class:`Spectrum` per row of ``X``."""
        X = _rows(X)
        out: list[Spectrum | None] = [None] * len(X)
        good = np.isfinite(X).all(1)
        for b in np.flatnonzero(~good):
            out[b] = not_finite(NOT_FINITE_POINT)
        rows = np.flatnonzero(good)
        if len(rows):
            if self.n <= DENSE_MAX:
                found = self._dense_spectra(X[rows])
            else:
                found = [self._lanczos(X[b]) for b in rows]
            for b, spectrum in zip(rows, found):
                out[b] = spectrum
        return out  # type: ignore[return-value]

    # -- dense
    def _dense(self, X) -> np.ndarray:
        """The Hessian from hvps of the identity's columns, all in one batch (chunked)."""
        B, n = X.shape
        H = np.empty((B, n, n))
        per_chunk = max(1, _CHUNK_VALUES // max(1, n * self._row_cost()))
        eye = np.eye(n)
        for start in range(0, B, per_chunk):
            part = X[start : start + per_chunk]
            Xr = np.repeat(part, n, axis=0)
            V = np.tile(eye, (len(part), 1))
            H[start : start + len(part)] = np.asarray(self._operator(Xr)(V)).reshape(len(part), n, n)
        return 0.5 * (H + H.transpose(0, 2, 1))

    def _row_cost(self) -> int:
        """Numbers one run's evaluation holds (n, or a fit's data points): bounds a chunk."""
        return self.n

    def _dense_spectra(self, X) -> list[Spectrum]:
        H = self.hessian(X)
        finite = np.isfinite(H).all((1, 2))
        exact = self.exact
        method = f"exact Hessian ({self.label})" if exact else f"Hessian by central differences ({self.label})"
        values = np.linalg.eigvalsh(H[finite]) if finite.any() else np.empty((0, self.n))
        listed = exact and self.n <= LISTED_MAX
        out, k = [], 0
        for ok in finite:
            if not ok:
                out.append(not_finite(NOT_FINITE))
                continue
            ev = values[k]
            k += 1
            out.append(Spectrum(_finite_or_none(ev[0]), _finite_or_none(ev[-1]),
                                tuple(float(v) for v in ev) if listed else None, method))  # fmt: skip
        return out

    # -- Lanczos
    def _lanczos(self, x: np.ndarray) -> Spectrum:
        """Extreme eigenvalues of H(x) (one point) by ARPACK's Lanczos on hvps."""
        from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigsh

        n = self.n
        with np.errstate(all="ignore"):
            op = self._operator(x[None, :])
        count = [0]

        def matvec(v):
            count[0] += 1
            with np.errstate(all="ignore"):
                hv = np.asarray(op(np.asarray(v, dtype=np.float64).reshape(1, n)), dtype=np.float64).reshape(n)
            if not np.isfinite(hv).all():
                raise _NotFinite
            return hv

        A = LinearOperator((n, n), matvec=matvec, dtype=np.float64)
        v0 = np.random.default_rng(0).standard_normal(n)  # fixed: the same answer every time
        ends: dict[str, float] = {}
        fallback = False
        try:
            if not np.isfinite(matvec(v0)).all():
                raise _NotFinite
            for which in ("LA", "SA"):
                try:
                    ends[which] = float(eigsh(A, k=1, which=which, v0=v0, ncv=min(n, LANCZOS_NCV),
                                              maxiter=LANCZOS_MAXITER, tol=LANCZOS_TOL, return_eigenvectors=False)[0])  # fmt: skip
                except ArpackNoConvergence as exc:
                    if len(exc.eigenvalues):
                        ends[which] = float(exc.eigenvalues[0])
                    else:
                        fallback = True
                        shift = ends.get("LA", 0.0) if which == "SA" else 0.0
                        ends[which] = _power(matvec, v0, shift)
        except _NotFinite:
            return not_finite(NOT_FINITE)
        method = f"Lanczos, {count[0]} Hessian-vector products ({self.label})"
        if fallback:
            method += "; not converged, partly a power-iteration estimate"
        low, high = _finite_or_none(ends["SA"]), _finite_or_none(ends["LA"])
        if low is None or high is None:
            return not_finite(NOT_FINITE)
        return Spectrum(min(low, high), max(low, high), None, method)

    # -- to be provided
    def _value_and_grad(self, X):  # pragma: no cover - abstract
        raise NotImplementedError

    def _operator(self, X):  # pragma: no cover - abstract
        raise NotImplementedError


def _tridiagonal_spectrum(diag: np.ndarray, off: np.ndarray | None) -> Spectrum:
    """The exact extreme eigenvalues of a diagonal (``off`` None) or symmetric tridiagonal matrix."""
    if off is None or not np.any(off):
        return Spectrum(float(diag.min()), float(diag.max()), None, "exact Hessian (symbolic, diagonal)")
    from scipy.linalg import eigh_tridiagonal

    n = len(diag)
    low = eigh_tridiagonal(diag, off, eigvals_only=True, select="i", select_range=(0, 0))[0]
    high = eigh_tridiagonal(diag, off, eigvals_only=True, select="i", select_range=(n - 1, n - 1))[0]
    return Spectrum(float(low), float(high), None, "exact Hessian (symbolic, tridiagonal)")


class _NotFinite(Exception):
    pass


def _power(matvec, v0: np.ndarray, shift: float) -> float:
    """The eigenvalue of H farthest from ``shift`` (the largest when shift is 0 and H >= 0, the
    smallest when shift is the largest), by POWER_STEPS power iterations on H - shift I."""
    v = v0 / np.linalg.norm(v0)
    estimate = 0.0
    for _ in range(POWER_STEPS):
        w = matvec(v) - shift * v
        estimate = float(v @ w)
        norm = np.linalg.norm(w)
        if norm == 0:
            break
        v = w / norm
    return estimate + shift


class _DenseExact(Curvature):
    """A curvature whose ``_dense`` is exact and cheap: hvps are H @ V."""

    def _operator(self, X):
        H = self._dense(X)
        return lambda V: np.einsum("bij,bj->bi", H, V)


# ---------------------------------------------------------------------------- symbolic: kinks


class _Kinks:
    """``abs(u)`` rewritten as ``u * _kI`` with ``_kI`` an input equal to sign(u): sympy's second
    derivative of abs is a DiracDelta, which has no value; this way the derivatives are those of
    each smooth piece, and at a kink (u == 0) ``_kI`` is nan for the Hessian (the gradient uses
    sign(0) = 0, as the run does)."""

    def __init__(self, trees: list[tuple]):
        self.found: dict[tuple, str] = {}  # rewritten argument -> its variable
        self.trees = [self._rewrite(t) for t in trees]
        self._compiled = None

    def _rewrite(self, node: tuple) -> tuple:
        tag = node[0]
        if tag == "call":
            arg = self._rewrite(node[2])
            if node[1] != "abs":
                return ("call", node[1], arg)
            name = self.found.setdefault(arg, f"_k{len(self.found)}")
            return ("mul", arg, ("var", name))
        if tag == "neg":
            return ("neg", self._rewrite(node[1]))
        if tag in ("add", "sub", "mul", "div", "pow"):
            return (tag, self._rewrite(node[1]), self._rewrite(node[2]))
        return node

    @property
    def names(self) -> list[str]:
        return list(self.found.values())

    def values(self, env: dict) -> dict:
        """The kink variables at ``env`` (in order: later arguments may use earlier ones)."""
        return self.evaluate(env)[0]

    def evaluate(self, env: dict, wrt: tuple[str, ...] = ()) -> tuple[dict, np.ndarray | bool]:
        """(the kink variables, sign(u) with sign(0) = 0, at ``env``; whether each run (rows of the
        leading axis) sits on a kink of an argument that depends on ``wrt``, a point without a Hessian)."""
        if not self.found:
            return {}, False
        from .expr import Namespace, compile_tree, free_variables

        if self._compiled is None:
            self._compiled = [(name, compile_tree(arg, Namespace(np)), free_variables(arg))
                              for arg, name in self.found.items()]  # fmt: skip
        env = dict(env)
        out = {}
        kinked: np.ndarray | bool = False
        for name, arg, uses in self._compiled:
            u = np.asarray(arg(env), dtype=np.float64)
            env[name] = out[name] = np.sign(u)
            if uses & set(wrt):
                at = u == 0
                kinked = kinked | (at.reshape(at.shape[0], -1).any(1) if at.ndim else bool(at))
        return out, kinked


def _poison(H: np.ndarray, kinked) -> np.ndarray:
    """``H`` with nan in the runs that sit on a kink."""
    if kinked is not False and np.any(kinked):
        H = np.array(H, dtype=np.float64)
        H[np.broadcast_to(kinked, H.shape[:1])] = np.nan
    return H


def _program(outputs: list[tuple], inputs: list[str], wrt: list[str], order: int = 2):
    """(kinks, run): the compiled derivative program of ``outputs`` with abs rewritten (see _Kinks)."""
    from .expr import Namespace, compile_program
    from .symbolic import derivatives

    kinks = _Kinks(outputs)
    program = derivatives(kinks.trees, [*inputs, *kinks.names], wrt=list(wrt), order=order)
    return kinks, compile_program(program, Namespace(np))


def _upper(values, n: int, shape: tuple[int, ...], reduce=None) -> np.ndarray:
    """A dense (B, n, n) from the upper triangle (row by row) of a program's second derivatives."""
    H = np.empty((shape[0], n, n))
    k = 0
    for i in range(n):
        for j in range(i, n):
            h = _full(values[k], shape) if reduce is None else reduce(values[k])
            H[:, i, j] = H[:, j, i] = h
            k += 1
    return H


# ---------------------------------------------------------------------------- symbolic: expressions


class _CentralDifferences(Curvature):
    """hvps by central differences of an exact gradient: (g(x + h u) - g(x - h u)) / 2h |v|, with
    u = v / |v| and h = cbrt(eps) max(1, |x|_inf). The error is about h**2 |third derivative| / 6 +
    eps |grad| / h: ~1e-11 of max(1, |x|)**2 |f'''| plus ~4e-11 of |grad| / max(1, |x|), so about
    1e-10 relative on well-scaled problems, and exact up to rounding on quadratics."""

    exact = False

    def _kink_rows(self, X) -> np.ndarray:
        return np.zeros(len(X), dtype=bool)

    def _operator(self, X):
        kinked = self._kink_rows(X)
        scale = FD_STEP * np.maximum(1.0, np.abs(X).max(1, initial=0.0))[:, None]

        def apply(V):
            norm = np.linalg.norm(V, axis=1)[:, None]
            U = V / np.where(norm == 0, 1.0, norm)
            both = self._value_and_grad(np.concatenate([X + scale * U, X - scale * U]))[1]
            HV = (both[: len(X)] - both[len(X) :]) / (2 * scale) * norm
            HV[kinked] = np.nan
            return HV

        return apply


class SymbolicExpression(Curvature):
    """An :class:`~gdrun.problems.ExpressionObjective` on exact symbolic derivatives."""

    source = "symbolic"
    label = "symbolic"

    def __init__(self, objective):
        self.objective = objective
        self.names = tuple(objective.variables)
        self.tree = objective.expression.tree
        self._run = None

    def _evaluate(self, X) -> tuple[list, np.ndarray | bool]:
        if self._run is None:
            self._kinks, self._run = _program([self.tree], list(self.names), list(self.names), order=2)
        env = {name: X[:, i] for i, name in enumerate(self.names)}
        signs, kinked = self._kinks.evaluate(env, self.names)
        return self._run({**env, **signs}), kinked

    def _value_and_grad(self, X):
        outs, _ = self._evaluate(X)
        B = len(X)
        return _full(outs[0], (B,)), np.stack([_full(g, (B,)) for g in outs[1 : 1 + self.n]], 1)

    def _dense(self, X):
        outs, kinked = self._evaluate(X)
        return _poison(_upper(outs[1 + self.n :], self.n, (len(X),)), kinked)

    def _operator(self, X):
        H = self._dense(X)
        return lambda V: np.einsum("bij,bj->bi", H, V)


class SymbolicExpressionLarge(_CentralDifferences):
    """An expression of more than EXACT_MAX variables (or nested deeper than EXACT_DEPTH_MAX): the
    run's own exact gradient program, hvps by central differences of it."""

    source = "symbolic"
    label = "central differences of the symbolic gradient"

    def __init__(self, objective):
        self.objective = objective
        self.names = tuple(objective.variables)
        self._vg = None
        self._kinks = _Kinks([objective.expression.tree])

    def _value_and_grad(self, X):
        if self._vg is None:
            self._vg = self.objective.numpy_value_and_grad()
        return self._vg(X)

    def _kink_rows(self, X):
        if not self._kinks.found:
            return np.zeros(len(X), dtype=bool)
        _, kinked = self._kinks.evaluate({name: X[:, i] for i, name in enumerate(self.names)}, self.names)
        return np.broadcast_to(kinked, (len(X),))


# ---------------------------------------------------------------------------- symbolic: separable


class SymbolicSeparable(Curvature):
    """A :class:`~gdrun.problems.SeparableObjective` ``outer(S_1..S_k, n)``, exact in any
    dimension: H = sum_j w_j Hess(S_j) + G^T W G, where w = d outer / dS, W = d2 outer / dS dS,
    G the gradients of the S_j (k x n) and Hess(S_j) diagonal (window 1) or tridiagonal (window 2)."""

    source = "symbolic"
    label = "symbolic"

    def __init__(self, objective):
        self.objective = objective
        self.names = tuple(objective.variables)
        self.k = len(objective.terms)
        self.window = objective.window
        self._runs = None

    def _compile(self):
        if self._runs is None:
            ab = ["a", "b"][: self.window]
            sums = [f"S{j + 1}" for j in range(self.k)]
            self._runs = (_program(list(self.objective.terms), ab, ab), _program([self.objective.outer], [*sums, "n"], sums))
        return self._runs

    def _parts(self, X):
        """value (B,), w (B, k), W (B, k, k), G (B, k, n), D (B, k, n) and O (B, k, n - 1): the
        diagonal and off-diagonal of each Hess(S_j)."""
        (term_kinks, terms), (outer_kinks, outer) = self._compile()
        B, n = X.shape
        k, window = self.k, self.window
        inputs = {"a": X} if window == 1 else {"a": X[:, :-1], "b": X[:, 1:]}
        shape = inputs["a"].shape
        signs, kinked = term_kinks.evaluate(inputs, ("a", "b"))
        outs = terms({**inputs, **signs})
        # outs: term_j, then d term_j / da (, / db), then per term the upper triangle: aa (, ab, bb)
        firsts, seconds = outs[k : k + k * window], outs[k + k * window :]
        per = window * (window + 1) // 2
        G = np.zeros((B, k, n))
        D = np.zeros((B, k, n))
        O = np.zeros((B, k, max(n - 1, 0)))
        sums = {}
        for j in range(k):
            sums[f"S{j + 1}"] = _full(outs[j], shape).sum(1)
            G[:, j, : shape[1]] += _full(firsts[j * window], shape)
            D[:, j, : shape[1]] += _full(seconds[j * per], shape)
            if window == 2:
                G[:, j, 1:] += _full(firsts[j * window + 1], shape)
                O[:, j, :] = _full(seconds[j * per + 1], shape)
                D[:, j, 1:] += _full(seconds[j * per + 2], shape)
        env = {**sums, "n": float(n)}
        signs, outer_kinked = outer_kinks.evaluate(env, tuple(sums))
        o = outer({**env, **signs})
        value = _full(o[0], (B,))
        w = np.stack([_full(v, (B,)) for v in o[1 : 1 + k]], 1)
        W = _poison(_upper(o[1 + k :], k, (B,)), kinked | outer_kinked)
        return value, w, W, G, D, O

    def _value_and_grad(self, X):
        value, w, _, G, _, _ = self._parts(X)
        return value, np.einsum("bj,bjn->bn", w, G)

    def _operator(self, X):
        _, w, W, G, D, O = self._parts(X)
        diag = np.einsum("bj,bjn->bn", w, D)
        off = np.einsum("bj,bjn->bn", w, O)
        low_rank = self.k > 1 or np.any(W != 0)

        def apply(V):
            HV = diag * V
            if self.window == 2:
                HV[:, :-1] += off * V[:, 1:]
                HV[:, 1:] += off * V[:, :-1]
            if low_rank:
                GV = np.einsum("bjn,bn->bj", G, V)
                HV += np.einsum("bjn,bj->bn", G, np.einsum("bjl,bl->bj", W, GV))
            return HV

        return apply

    def spectra(self, X) -> list[Spectrum]:
        """Above DENSE_MAX variables, where outer is linear in the sums (W = 0: sphere, rosenbrock,
        rastrigin...), the Hessian is diagonal or tridiagonal: its extreme eigenvalues exactly
        (LAPACK's tridiagonal solver, O(n) each); otherwise Lanczos."""
        X = _rows(X)
        if self.n <= DENSE_MAX:
            return super().spectra(X)
        good = np.isfinite(X).all(1)
        with np.errstate(all="ignore"):
            _, w, W, G, D, O = self._parts(np.where(good[:, None], X, 0.0))
            diag = np.einsum("bj,bjn->bn", w, D)
            off = np.einsum("bj,bjn->bn", w, O)
        out = []
        for b in range(len(X)):
            if not good[b]:
                out.append(not_finite(NOT_FINITE_POINT))
            elif not (np.isfinite(diag[b]).all() and np.isfinite(off[b]).all() and np.isfinite(W[b]).all()
                      and np.isfinite(G[b]).all()):  # fmt: skip
                out.append(not_finite(NOT_FINITE))
            elif np.any(W[b] != 0):
                out.append(self._lanczos(X[b]))
            else:
                out.append(_tridiagonal_spectrum(diag[b], off[b] if self.window == 2 else None))
        return out

    def _dense(self, X):
        _, w, W, G, D, O = self._parts(X)
        B, n = X.shape
        H = np.einsum("bjn,bjl,blm->bnm", G, W, G)
        idx = np.arange(n)
        H[:, idx, idx] += np.einsum("bj,bjn->bn", w, D)
        if self.window == 2 and n > 1:
            off = np.einsum("bj,bjn->bn", w, O)
            H[:, idx[:-1], idx[1:]] += off
            H[:, idx[1:], idx[:-1]] += off
        return H


# ---------------------------------------------------------------------------- symbolic: fits

def _loss_derivatives(name: str, r: np.ndarray, delta: float) -> tuple[np.ndarray, np.ndarray]:
    """l'(r) and l''(r) of a loss, elementwise (the caller takes the mean)."""
    if name == "mse":
        return 2.0 * r, np.full_like(r, 2.0)
    if name == "half_mse":
        return r, np.ones_like(r)
    if name == "mae":
        return np.sign(r), np.zeros_like(r)
    if name == "huber":
        return np.clip(r, -delta, delta), (np.abs(r) < delta).astype(np.float64)
    raise ValueError(f"unknown loss {name!r}")


class _FitBase:
    def _setup_fit(self, fit):
        from .fitting import get_loss

        self.fit = fit
        self.names = tuple(fit.params)
        self.loss = get_loss(fit.spec.loss)
        self.delta = float(fit.spec.huber_delta)
        self.columns = {k: np.asarray(fit.data[k], dtype=np.float64)[None, :] for k in fit.inputs}
        self.target = np.asarray(fit.data[fit.spec.target], dtype=np.float64)[None, :]

    def _row_cost(self) -> int:
        return self.n + self.target.shape[1]


class SymbolicFit(_FitBase, Curvature):
    """A fit's full-data loss mean_i l(m(p; x_i) - y_i) of its trainable parameters p, exact:
    H = mean_i( l''(r_i) grad m grad m^T + l'(r_i) Hess m )."""

    source = "symbolic"
    label = "symbolic"

    def __init__(self, fit):
        self._setup_fit(fit)
        self._run = None

    def _evaluate(self, X):
        if self._run is None:
            self._kinks, self._run = _program([self.fit.trainable_tree()], [*self.names, *self.fit.inputs],
                                              list(self.names), order=2)  # fmt: skip
        env = {**{p: X[:, i : i + 1] for i, p in enumerate(self.names)}, **self.columns}
        signs, self._kinked = self._kinks.evaluate(env, self.names)
        outs = self._run({**env, **signs})
        shape = (len(X), self.target.shape[1])
        r = _full(outs[0], shape) - self.target
        d1, d2 = _loss_derivatives(self.loss.name, r, self.delta)
        return outs, r, d1, d2, shape

    def _value_and_grad(self, X):
        outs, r, d1, _, shape = self._evaluate(X)
        value = self.loss.elementwise(r, np, self.delta).mean(1)
        G = np.stack([(d1 * _full(outs[1 + i], shape)).mean(1) for i in range(self.n)], 1)
        return value, G

    def _dense(self, X):
        outs, _, d1, d2, shape = self._evaluate(X)
        P = self.n
        firsts = [_full(outs[1 + i], shape) for i in range(P)]
        H = np.empty((len(X), P, P))
        k = 0
        for i in range(P):
            for j in range(i, P):
                h = (d2 * firsts[i] * firsts[j]).mean(1)
                second = outs[1 + P + k]
                if not (isinstance(second, float) and second == 0.0):
                    h = h + (d1 * _full(second, shape)).mean(1)
                H[:, i, j] = H[:, j, i] = h
                k += 1
        return _poison(H, self._kinked)

    def _operator(self, X):
        H = self._dense(X)
        return lambda V: np.einsum("bij,bj->bi", H, V)


class SymbolicFitLarge(_FitBase, _CentralDifferences):
    """A fit of more than EXACT_MAX trainable parameters: hvps by central differences of the exact
    gradient (see :class:`_CentralDifferences` for the accuracy)."""

    source = "symbolic"
    label = "central differences of the symbolic gradient"

    def __init__(self, fit):
        self._setup_fit(fit)
        self._vg = None

    def _value_and_grad(self, X):
        if self._vg is None:
            from .backends.numpy_backend import NumpyBackend

            problem = self.fit.problem(NumpyBackend("float64"), 0)
            self._vg = problem.value_and_grad
        return self._vg(X)


# ---------------------------------------------------------------------------- autograd


class Autograd(Curvature):
    """torch autograd on the CPU in float64 (whatever the run's device and dtype): gradients by
    ``torch.autograd.grad``, hvps by double backward on the batch (the runs are independent, so
    the Hessian of the batch's sum is block-diagonal), the dense Hessian from n hvps."""

    source = "autograd"
    label = "autograd"

    def __init__(self, names: tuple[str, ...], value_fn, row_cost: int | None = None, kinks=None):
        self.names = tuple(names)
        self.value_fn = value_fn  # torch (B, n) -> (B,)
        self._cost = row_cost
        self._kinks = kinks  # None, or X -> whether each run sits on a kink of abs (autograd would say 0 there)

    def _row_cost(self) -> int:
        return self._cost or self.n

    def _graph(self, X):
        import torch

        with torch.enable_grad():
            T = torch.tensor(X, dtype=torch.float64).requires_grad_(True)
            f = self.value_fn(T)
            if not isinstance(f, torch.Tensor):
                f = torch.as_tensor(f, dtype=torch.float64)
            f = f.expand(len(X)) if f.dim() == 0 else f
            if not f.requires_grad:
                return T, f, None
            (g,) = torch.autograd.grad(f.sum(), T, create_graph=True)
        return T, f, g

    def _value_and_grad(self, X):
        T, f, g = self._graph(X)
        G = np.zeros(X.shape) if g is None else g.detach().numpy().copy()
        return f.detach().numpy().copy(), G

    def _operator(self, X):
        import torch

        T, _, g = self._graph(X)
        kinked = False if self._kinks is None else self._kinks(X)

        def apply(V):
            if g is None or not g.requires_grad:
                return _poison(np.zeros(X.shape), kinked)
            with torch.enable_grad():
                (hv,) = torch.autograd.grad(g, T, grad_outputs=torch.tensor(np.ascontiguousarray(V), dtype=torch.float64),
                                            retain_graph=True, allow_unused=True)  # fmt: skip
            return _poison(np.zeros(X.shape) if hv is None else hv.numpy().copy(), kinked)

        return apply


def _torch_objective(objective) -> Autograd:
    import torch

    from .expr import Namespace, tree_size
    from .problems import SeparableObjective

    names = tuple(objective.variables)
    kinks, cost = None, None
    if not isinstance(objective, SeparableObjective):  # the built-in separable ones have no abs
        found = _Kinks([objective.expression.tree])
        if found.found:
            kinks = lambda X: found.evaluate({name: X[:, i] for i, name in enumerate(names)}, names)[1]  # noqa: E731
        # autograd keeps one array per operation of the expression (twice, for double backward):
        # a chunk of the dense Hessian is bounded by operations, not by variables
        cost = max(len(names), 4 * tree_size(objective.expression.tree))
    return Autograd(names, objective.value_fn(Namespace(torch)), row_cost=cost, kinks=kinks)


def _torch_fit(fit) -> Autograd:
    import torch

    from .expr import Namespace, compile_tree
    from .fitting import get_loss

    params = tuple(fit.params)
    model = compile_tree(fit.trainable_tree(), Namespace(torch))
    loss, delta = get_loss(fit.spec.loss), float(fit.spec.huber_delta)
    columns = {k: torch.tensor(np.asarray(fit.data[k], dtype=np.float64)[None, :]) for k in fit.inputs}
    target = torch.tensor(np.asarray(fit.data[fit.spec.target], dtype=np.float64)[None, :])

    def value(X):
        prediction = model({**{p: X[:, i : i + 1] for i, p in enumerate(params)}, **columns})
        prediction = torch.as_tensor(prediction, dtype=torch.float64).expand(X.shape[0], target.shape[1])
        return loss.torch(prediction, target, delta)

    found = _Kinks([fit.trainable_tree()])
    data = {k: np.asarray(fit.data[k], dtype=np.float64)[None, :] for k in fit.inputs}

    def kinks(X):
        return found.evaluate({**{p: X[:, i : i + 1] for i, p in enumerate(params)}, **data}, params)[1]

    return Autograd(params, value, row_cost=len(params) + target.shape[1], kinks=kinks if found.found else None)


# ---------------------------------------------------------------------------- entry points

SOURCES = ("symbolic", "autograd")


def _check_source(source: str) -> None:
    if source not in SOURCES:
        raise ValueError(f"source must be one of {', '.join(SOURCES)}, got {source!r}")


def objective_curvature(objective, source: str) -> Curvature:
    """The curvature of a :class:`~gdrun.problems.ExpressionObjective` or
    :class:`~gdrun.problems.SeparableObjective`, on ``source`` ("symbolic" or "autograd")."""
    from .problems import SeparableObjective

    _check_source(source)
    if source == "autograd":
        return _torch_objective(objective)
    if isinstance(objective, SeparableObjective):
        return SymbolicSeparable(objective)
    from .expr import tree_depth

    if len(objective.variables) <= EXACT_MAX and tree_depth(objective.expression.tree) <= EXACT_DEPTH_MAX:
        return SymbolicExpression(objective)
    return SymbolicExpressionLarge(objective)


def fit_curvature(fit, source: str) -> Curvature:
    """The curvature of a :class:`~gdrun.fitting.Fit`'s loss over ALL its data, as a function of its
    trainable parameters (frozen ones are constants)."""
    _check_source(source)
    if source == "autograd":
        return _torch_fit(fit)
    return SymbolicFit(fit) if len(fit.params) <= EXACT_MAX else SymbolicFitLarge(fit)


def for_prepared(prepared) -> Curvature:
    """The curvature of a :class:`~gdrun.runner.Prepared` run on its own gradient source:
    symbolic for the numpy backend, autograd for torch (on the CPU, in float64)."""
    source = "autograd" if prepared.backend.name == "torch" else "symbolic"
    if prepared.fit is not None:
        return fit_curvature(prepared.fit, source)
    return objective_curvature(prepared.function.objective, source)
