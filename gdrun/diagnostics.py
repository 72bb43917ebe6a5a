"""Why a run behaved as it did: stability theory for each optimizer, and the verdict on a run.

Pure functions of numbers: the learning rate, the optimizer and its options, the Hessian's
spectrum (see :mod:`gdrun.curvature`) and what the run recorded (a :class:`Trace`). Nothing here
knows about files or terminals; :mod:`gdrun.explain` gathers the inputs and shows the results.
The maths (bounds, rates, the edge of stability) is the standard one; each claim is tested by
running a quadratic on both sides of its bound.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

REGIMES = ("converging", "crawling", "oscillating", "diverging", "edge_of_stability", "undetermined")


@dataclass(frozen=True)
class Bound:
    """The largest stable learning rate theory gives for an optimizer at a curvature L, or why none."""

    largest_stable_lr: float | None
    rule: str  # the inequality, e.g. "lr < 2/L (plain gradient descent)"; "" when there is none
    why_none: str | None = None  # plain words when theory gives no bound (Adam...), or L <= 0


@dataclass
class Trace:
    """What a run recorded, as arrays: T rows in step order (rows may skip steps, as a sweep's
    record every 10th). Row 0 is the first recorded row (usually the start point)."""

    steps: np.ndarray  # (T,) int
    x: np.ndarray  # (T, n)
    value: np.ndarray  # (T,)
    grad_norm: np.ndarray  # (T,)
    lr: np.ndarray  # (T,)


@dataclass(frozen=True)
class Verdict:
    regime: str  # one of REGIMES
    sentence: str  # one sentence with its evidence: "oscillating: lr*L = 2.0, each step lands on the mirror point"
    facts: dict[str, Any] = field(default_factory=dict)  # the numbers behind it (JSON-ready)


# ------------------------------------------------------------------------------------ thresholds

#: A per-step contraction at or above this is "crawling": at 0.95 a run needs about 45 steps per
#: factor of 10, so a few hundred steps barely move it; below it, a run settles within a typical budget.
CRAWL_RATE = 0.95
#: |rate - 1| within this counts as "neither shrinking nor growing": below 1e-3 per step the size
#: changes by under 10% in 100 steps, which no recorded table shows as convergence or growth.
RATE_TOL = 1e-3
#: lr*L within this (relative) of the bound counts as "exactly at the bound", and a step within this
#: (relative) of minus the previous one lands "on the mirror point": rounding, not a regime.
EXACT_TOL = 1e-3
#: The tail over which the observed rate is measured: the last half of the recorded steps, so the
#: transient of the first steps (fast modes dying out, momentum filling up) does not count.
TAIL_FRACTION = 0.5
#: |grad| below this many ulps (of the trace's dtype) of its largest value is rounding noise: the
#: observed rate is measured on the rows above it (a float64 run that reached 1e-16 has stopped
#: shrinking because of rounding, not because it crawls).
ROUNDING_FLOOR = 1e4
#: Edge of stability (Cohen et al. 2021): the sharpness "hovers" at 2/lr when it stays within this
#: (relative) of it; their plots show excursions of a few percent around 2/lr.
EDGE_TOL = 0.05
#: ... over at least this many consecutive sharpness samples, and this fraction of all samples: one or
#: two samples near 2/lr are a sharpness passing through, not hovering.
EDGE_MIN_SAMPLES = 3
EDGE_MIN_FRACTION = 0.1
#: ... while the value rose from one recorded row to the next at least this many times (the
#: non-monotone descent that marks the regime; gradient descent on a stable quadratic never rises).
EDGE_MIN_RISES = 2
#: A spectrum's condition number above this is worth quoting the best plain-GD rate for; at 1 every
#: direction has the same curvature and lr = 1/L reaches the minimum in one step.
KAPPA_TOL = 1.0 + 1e-9
#: An eigenvalue within this fraction of lambda_max of zero is a flat direction (a valley of minima,
#: as xy = 1 for (xy - 1)^2): the gradient has no component along it, so it sets neither the rate of
#: |grad| nor a condition number. eigvalsh's rounding is about 1e-16 * lambda_max; 1e-8 is far above.
FLAT_TOL = 1e-8

#: Optimizers whose step is rescaled per coordinate by the run's own gradient history: no bound or
#: rate follows from lr and the Hessian alone. Each with the reason in one plain sentence.
ADAPTIVE = {
    "adam": "adam divides each coordinate's step by its running gradient size",
    "adamw": "adamw divides each coordinate's step by its running gradient size",
    "nadam": "nadam divides each coordinate's step by its running gradient size",
    "radam": "radam divides each coordinate's step by its running gradient size",
    "rmsprop": "rmsprop divides each coordinate's step by its running root-mean-square gradient",
    "adagrad": "adagrad divides each coordinate's step by the root of its summed squared gradients",
    "adadelta": "adadelta scales each coordinate's step by a ratio of running averages of past steps and gradients",
}
_NO_BOUND = ", so no bound follows from lr and the Hessian alone"


# ------------------------------------------------------------------------------------ helpers


def _scalar(value) -> Any:
    """One run's option: a float or bool as given; a per-run array with one distinct value as that value."""
    if isinstance(value, (np.ndarray, list)):
        distinct = np.unique(np.asarray(value, dtype=np.float64))
        if distinct.size != 1:
            raise ValueError(f"diagnostics judge one run at a time; got per-run values {distinct.tolist()}")
        return float(distinct[0])
    if isinstance(value, np.generic):
        return value.item()
    return value


def resolved_options(optimizer: str, options: dict | None) -> dict:
    """``options`` with the missing ones (or None) at torch.optim's defaults (:data:`OPTIMIZER_OPTIONS`)."""
    from .optim import OPTIMIZER_OPTIONS

    defaults = OPTIMIZER_OPTIONS.get(optimizer, {})
    given = {k: v for k, v in (options or {}).items() if v is not None}
    merged = {**defaults, **given}
    return {k: (tuple(_scalar(e) for e in v) if isinstance(defaults.get(k), tuple) else _scalar(v))
            for k, v in merged.items()}  # fmt: skip


def _clean(value):
    """JSON-ready: numpy scalars to Python, nan/inf to None, tuples to lists."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_clean(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    return value


def _num(v: float) -> str:
    """A number for a sentence: 3 significant digits, and a decimal point when it is a float ("2.0")."""
    s = f"{v:.3g}"
    return s if any(c in s for c in ".einf") else s + ".0"


def _near(v: float, other: float) -> str:
    """``v`` with enough digits (3 to 8) to tell it from ``other`` ("0.9995", not "1.0")."""
    for digits in range(3, 9):
        s = f"{v:.{digits}g}"
        if float(s) != other or v == other:
            break
    return s if any(c in s for c in ".einf") else s + ".0"


def _small(v: float) -> str:
    """A threshold as a person writes it: 1e-3, 0.05, 1e+06."""
    s = f"{v:.3g}"
    if "e" in s or (v != 0 and abs(v) < 0.01):
        mantissa, exponent = f"{v:.2e}".split("e")
        s = f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"
    return s


def _pct(rate: float) -> str:
    """A fraction as a percentage that never rounds a value below 1 up to 100%."""
    digits = 0
    while digits < 6 and rate < 1 and round(100 * rate, digits) >= 100:
        digits += 1
    return f"{100 * rate:.{digits}f}%"


def _sgd_kind(opts: dict) -> str:
    if opts.get("momentum", 0.0) == 0:
        return "gd"
    return "nesterov" if opts.get("nesterov") else "heavy_ball"


def _factor(opts: dict) -> tuple[float | None, str]:
    """The bound on lr*(L + weight_decay) for sgd, and how it reads ("2", "2(1 + 0.9) = 3.8"); None
    where no lr is stable (momentum >= 1, dampening >= 1)."""
    mu, tau = float(opts.get("momentum", 0.0)), float(opts.get("dampening", 0.0))
    kind = _sgd_kind(opts)
    if kind == "gd":
        return 2.0, "2"
    if mu >= 1:
        return None, "momentum >= 1 keeps the iteration from contracting at any lr"
    if kind == "nesterov":
        factor = 2 * (1 + mu) / (1 + 2 * mu)
        return factor, f"2(1 + mu)/(1 + 2mu) = {_num(factor)}"
    if tau >= 1:
        return None, "dampening >= 1 leaves the gradient no weight in the momentum buffer"
    factor = 2 * (1 + mu) / (1 - tau)
    text = f"2(1 + mu)/(1 - dampening) = {_num(factor)}" if tau != 0 else f"2(1 + mu) = {_num(factor)}"
    return factor, text


# ------------------------------------------------------------------------------------ theory


def stability_bound(optimizer: str, options: dict, lambda_max: float | None) -> Bound:
    """The largest stable lr on a quadratic whose largest Hessian eigenvalue is ``lambda_max``.

    torch.optim.SGD on f = lambda/2 x^2 (weight decay adds wd to the curvature: h = lambda + wd),
    with a = lr*h and c = 1 - dampening:

    * plain: x' = (1 - a) x, stable iff 0 < a < 2;
    * heavy ball (buf' = mu buf + c g, x' = x - lr buf'): x_{t+1} = (1 + mu - c a) x_t - mu x_{t-1},
      characteristic z^2 - (1 + mu - c a) z + mu; both roots inside the unit circle (Schur-Cohn:
      |mu| < 1, |1 + mu - c a| < 1 + mu) iff 0 < c a < 2(1 + mu);
    * nesterov (step g + mu buf'): on (x, lr*buf) the matrix [[1 - a(1 + mu), -mu^2], [a, mu]] has
      trace 1 + mu - a(1 + mu) and determinant mu(1 - a): stable iff 0 < a(1 + 2mu) < 2(1 + mu).
    """
    opts = resolved_options(optimizer, options)
    if optimizer in ADAPTIVE:
        return Bound(None, "", ADAPTIVE[optimizer] + _NO_BOUND)
    if optimizer != "sgd":
        return Bound(None, "", f"there is no stability theory here for optimizer '{optimizer}'")
    if lambda_max is None or not np.isfinite(lambda_max):
        return Bound(None, "", "no Hessian at this point")
    wd = float(opts["weight_decay"])
    h = float(lambda_max) + wd
    if h <= 0:
        return Bound(None, "", "the Hessian has no positive curvature here" + (" (with weight decay)" if wd else ""))
    factor, text = _factor(opts)
    if factor is None:
        return Bound(None, "", text)
    curvature = "(L + weight_decay)" if wd else "L"
    kind = {"gd": "plain gradient descent", "heavy_ball": "heavy ball, torch.optim.SGD's momentum",
            "nesterov": "nesterov momentum"}[_sgd_kind(opts)]  # fmt: skip
    mu, tau = float(opts["momentum"]), float(opts["dampening"])
    if _sgd_kind(opts) == "gd":
        formula = f"2/{curvature}"
    elif _sgd_kind(opts) == "nesterov":
        formula = f"2(1 + mu)/((1 + 2mu){curvature if wd else 'L'})"
    else:
        formula = f"2(1 + mu)/((1 - dampening){curvature})" if tau else f"2(1 + mu)/{curvature}"
    rule = f"lr < {formula} ({kind}, mu = {mu:g})" if mu else f"lr < {formula} ({kind})"
    return Bound(factor / h, rule)


def _multiplier(kind: str, opts: dict, lr: float, lam: float) -> complex:
    """The dominant eigenvalue of the linearised iteration along an eigenvector of curvature lam."""
    h = lam + float(opts.get("weight_decay", 0.0))
    a = lr * h
    if kind == "gd":
        return complex(1 - a)
    mu, c = float(opts["momentum"]), 1 - float(opts.get("dampening", 0.0))
    if kind == "heavy_ball":
        matrix = np.array([[1 + mu - c * a, -mu], [1.0, 0.0]])
    else:
        matrix = np.array([[1 - a * (1 + mu * c), -mu * mu], [c * a, mu]])
    roots = np.linalg.eigvals(matrix)
    return complex(roots[np.argmax(np.abs(roots))])


def _dominant(optimizer: str, options: dict, lr: float, eigenvalues) -> complex | None:
    if optimizer != "sgd" or eigenvalues is None:
        return None
    values = [float(v) for v in eigenvalues]
    if not values or not all(np.isfinite(values)):
        return None
    opts = resolved_options(optimizer, options)
    kind = _sgd_kind(opts)
    multipliers = [_multiplier(kind, opts, float(lr), lam) for lam in values]
    return max(multipliers, key=abs)


def theory_rate(optimizer: str, options: dict, lr: float, eigenvalues) -> float | None:
    """The contraction per step theory gives on a quadratic with these Hessian eigenvalues: the
    spectral radius of the linearised iteration (plain GD: max |1 - lr*(lambda + wd)|; momentum: the
    largest root modulus of the 2x2 iteration per eigenvalue). None for adaptive optimizers, or
    without eigenvalues. Passing only (lambda_min, lambda_max) is enough: the radius is largest at
    the ends of the spectrum."""
    m = _dominant(optimizer, options, lr, eigenvalues)
    return None if m is None else abs(m)


def best_gd(lambda_min, lambda_max) -> tuple[float, float] | None:
    """Plain GD's best constant lr on a quadratic, 2/(L + mu), and its rate (kappa - 1)/(kappa + 1);
    None unless 0 < mu <= L."""
    if lambda_min is None or lambda_max is None or not (0 < lambda_min <= lambda_max) or not np.isfinite(lambda_max):
        return None
    kappa = lambda_max / lambda_min
    return 2.0 / (lambda_max + lambda_min), (kappa - 1) / (kappa + 1)


# ------------------------------------------------------------------------------------ the run


def observed_rate(trace: Trace) -> tuple[float | None, int | None, int | None]:
    """The contraction of |grad| per step over the tail of the run (the last :data:`TAIL_FRACTION`
    of its steps, at least its last two usable rows), and the steps it spans: exp of the
    least-squares slope of log|grad| against the step, so rows that skip steps count their gaps and
    an oscillating norm averages out. 0.0 when |grad| reached exactly 0; None with fewer than two
    rows of finite, positive |grad|."""
    steps = np.asarray(trace.steps, dtype=np.float64).ravel()
    g = np.asarray(trace.grad_norm, dtype=np.float64).ravel()
    usable = np.isfinite(g)
    if not usable.any():
        return None, None, None
    last = int(np.flatnonzero(usable)[-1])
    if g[last] == 0:
        first_zero = int(np.flatnonzero(usable & (g == 0))[0])
        return 0.0, int(steps[0]), int(steps[first_zero])
    x = np.asarray(trace.x)
    eps = np.finfo(x.dtype if x.dtype.kind == "f" else np.float64).eps
    floor = ROUNDING_FLOOR * eps * float(np.max(g[usable]))  # below it |grad| is rounding, not descent
    rows = np.flatnonzero(usable & (g > floor))
    if len(rows) < 2:
        return None, None, None
    span = steps[rows[-1]] - steps[rows[0]]
    tail = rows[steps[rows] >= steps[rows[-1]] - TAIL_FRACTION * span]
    if len(tail) < 2:
        tail = rows[-2:]
    slope = np.polyfit(steps[tail], np.log(g[tail]), 1)[0]
    return float(np.exp(slope)), int(steps[tail[0]]), int(steps[tail[-1]])


def _alternation(x: np.ndarray, steps: np.ndarray, tail_from: int | None) -> tuple[bool | None, bool | None]:
    """(whether successive steps point in opposite directions, whether each is exactly minus the
    one before) over the tail; measurable only on consecutive rows (None where none are)."""
    steps = np.asarray(steps)
    if len(steps) < 3:
        return None, None
    i = np.arange(len(steps) - 2)
    ok = (np.diff(steps)[:-1] == 1) & (np.diff(steps)[1:] == 1)
    if tail_from is not None:
        ok &= steps[:-2] >= tail_from
    finite = np.isfinite(x).all(axis=1)
    ok &= finite[:-2] & finite[1:-1] & finite[2:]
    consecutive = i[ok]
    if not len(consecutive):
        return None, None
    d0 = x[consecutive + 1] - x[consecutive]
    d1 = x[consecutive + 2] - x[consecutive + 1]
    size = np.linalg.norm(d0, axis=1)
    if (size == 0).any():
        return False, False
    flips = np.einsum("ij,ij->i", d0, d1) < 0
    mirrors = np.linalg.norm(d0 + d1, axis=1) <= EXACT_TOL * size
    return bool(flips.all()), bool(mirrors.all())


def _steps_to(rate: float | None, g: float, target: float) -> int | None:
    if rate is None or not np.isfinite(g):
        return None
    if g <= target:
        return 0
    if rate <= 0:
        return 1
    if rate >= 1:
        return None
    return int(np.ceil(np.log(target / g) / np.log(rate)))


def _spectrum(s) -> tuple[float | None, float | None, Any]:
    """(lambda_min, lambda_max, eigenvalues or the two ends) of a Spectrum, Nones where there is none."""
    if s is None or not s.finite:
        return None, None, None
    eig = s.eigenvalues if s.eigenvalues is not None else (s.lambda_min, s.lambda_max)
    return float(s.lambda_min), float(s.lambda_max), eig


def _edge_of_stability(steps, value, lrs, opts: dict, sharpness) -> dict | None:
    """The evidence for the edge of stability (Cohen et al. 2021), or None: the sharpness samples
    came to factor/lr (2/lr for plain GD) and stayed within :data:`EDGE_TOL` of it over a stretch,
    while the value rose now and then from one row to the next and still fell overall."""
    factor, text = _factor(opts)
    if sharpness is None or factor is None:
        return None
    s_steps = np.asarray(sharpness[0], dtype=np.float64).ravel()
    s_lam = np.asarray(sharpness[1], dtype=np.float64).ravel()
    keep = np.isfinite(s_steps) & np.isfinite(s_lam)
    s_steps, s_lam = s_steps[keep], s_lam[keep]
    order = np.argsort(s_steps, kind="stable")
    s_steps, s_lam = s_steps[order], s_lam[order]
    n = len(s_steps)
    if n < EDGE_MIN_SAMPLES:
        return None
    row = np.clip(np.searchsorted(steps, s_steps, side="right") - 1, 0, len(steps) - 1)
    edge = factor / lrs[row] - float(opts.get("weight_decay", 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        near = np.abs(s_lam / edge - 1) <= EDGE_TOL
    best, run, end = 0, 0, -1
    for i, ok in enumerate(near):
        run = run + 1 if ok else 0
        if run > best:
            best, end = run, i
    if best < max(EDGE_MIN_SAMPLES, int(np.ceil(EDGE_MIN_FRACTION * n))):
        return None
    begin = end - best + 1
    if abs(s_lam[0] / edge[0] - 1) <= EDGE_TOL:  # it sat there from the start: a quadratic at its bound
        return None
    if len(sharpness) >= 4:  # the path's own record: the value at each sample, and its rises up to the next one
        s_value = np.asarray(sharpness[2], dtype=np.float64).ravel()[keep][order]
        s_rises = np.asarray(sharpness[3], dtype=np.int64).ravel()[keep][order]
        finite_rows = np.flatnonzero(np.isfinite(value))
        if not len(finite_rows) or not np.isfinite(s_value[begin]):
            return None
        rises, measurable = int(s_rises[begin:].sum()), True
        value_start, value_final = float(s_value[begin]), float(value[finite_rows[-1]])
    else:
        rows = np.flatnonzero((steps >= s_steps[begin]) & np.isfinite(value))
        if len(rows) < 2:
            return None
        rises = int(np.sum(np.diff(value[rows]) > 0))
        measurable = bool(np.any(np.diff(steps[rows]) == 1))  # rows that skip steps can hide the rises
        value_start, value_final = float(value[rows[0]]), float(value[rows[-1]])
    if (measurable and rises < EDGE_MIN_RISES) or not value_final < value_start:
        return None
    return {
        "edge_sharpness": float(edge[end]), "edge_rule": text.split(" = ")[0] + "/lr",
        "edge_from_step": int(s_steps[begin]), "edge_to_step": int(s_steps[end]), "edge_samples": best,
        "sharpness_samples": n, "sharpness_first": float(s_lam[0]), "sharpness_first_step": int(s_steps[0]),
        "value_rises": rises if measurable else None, "value_edge_start": value_start, "value_final": value_final,
    }  # fmt: skip


def _verdict(regime: str, sentence: str, facts: dict) -> Verdict:
    assert regime in REGIMES
    facts = {**facts, "regime": regime}
    return Verdict(regime, sentence, _clean(facts))


def judge(trace: Trace, status: str, optimizer: str, options: dict, start, final, sharpness=None,
          grad_target: float = 1e-3) -> Verdict:  # fmt: skip
    """Why the run behaved as it did: its regime, one sentence with the evidence, and the numbers.

    ``start``/``final`` are :class:`gdrun.curvature.Spectrum` objects (or None) at the run's first
    and last point; ``sharpness`` is ``(steps, lambda_max)`` sampled along the path (or None), or
    ``(steps, lambda_max, value, rises)`` with the value at each sample and how often the value rose
    from one step to the next between it and the next sample (the whole path, when ``trace`` is
    only the run's last rows);
    ``status`` is the run's (converged, diverged, max_epochs, interrupted, failed).
    """
    opts = resolved_options(optimizer, options)
    steps = np.asarray(trace.steps, dtype=np.int64).ravel()
    T = len(steps)
    value = np.asarray(trace.value, dtype=np.float64).ravel()
    g = np.asarray(trace.grad_norm, dtype=np.float64).ravel()
    lrs = np.asarray(trace.lr, dtype=np.float64).ravel()
    x = np.asarray(trace.x, dtype=np.float64).reshape(T, -1) if T else np.zeros((0, 0))
    facts: dict[str, Any] = {"optimizer": optimizer, "status": status, "grad_target": grad_target}
    if T and np.isnan(g[-1]) and np.isfinite(value[-1]) and np.isfinite(x[-1]).all():
        facts.update(steps=int(steps[-1] - steps[0]), undefined_at_step=int(steps[-1]), value_final=float(value[-1]))
        return _verdict("undetermined", f"undetermined: the gradient is undefined at step {steps[-1]}, where the "
                                        f"value is {value[-1]:.6g}: the function is not differentiable there, so "
                                        "there is no rate or curvature to judge", facts)  # fmt: skip
    if T == 0 or steps[-1] <= steps[0]:
        facts["steps"] = 0
        return _verdict("undetermined", "undetermined: the run took no steps (epochs 0), so there is no behaviour "
                                        "to explain", facts)  # fmt: skip

    lr = float(lrs[-1])
    theory_on = optimizer == "sgd"
    wd = float(opts.get("weight_decay", 0.0)) if theory_on else 0.0
    mu0, L0, _ = _spectrum(start)
    mu1, L1, eig1 = _spectrum(final)
    finite = np.isfinite(value) & np.isfinite(x).all(axis=1)
    last = int(np.flatnonzero(finite)[-1]) if finite.any() else 0
    rate, tail_from, tail_to = observed_rate(trace)
    alternating, mirror = _alternation(x, steps, tail_from)
    g_last = float(g[last])
    facts.update(lr=lr, steps=int(steps[-1]), lambda_min_start=mu0, lambda_max_start=L0, lambda_min_final=mu1,
                 lambda_max_final=L1, condition_number_final=final.condition_number if final is not None else None,
                 observed_rate=rate, rate_from_step=tail_from, rate_to_step=tail_to, alternating=alternating,
                 grad_norm_final=g_last, value_final=float(value[last]), value_start=float(value[0]))  # fmt: skip

    diverging_now = status == "diverged"
    growing = rate is not None and rate > 1 + RATE_TOL
    rising = bool(value[last] > value[0]) and bool(value[last] >= value[tail_row(steps, tail_from)])
    L = (L0 if L0 is not None else L1) if (diverging_now or (growing and rising)) else (L1 if L1 is not None else L0)
    bound = stability_bound(optimizer, opts, L)
    factor, factor_text = _factor(opts) if theory_on else (None, "")
    a = lr * (L + wd) if (theory_on and L is not None) else None
    curv = "lr*(L + weight_decay)" if wd else "lr*L"
    facts.update(lambda_max=L, lr_times_lambda_max=lr * L if L is not None else None, bound=bound.largest_stable_lr,
                 bound_rule=bound.rule or None, why_no_bound=bound.why_none, bound_factor=factor)  # fmt: skip
    flat = 0
    if eig1 is not None and L1 is not None and L1 > 0:
        kept = [v for v in eig1 if abs(v) > FLAT_TOL * L1]
        flat = len(eig1) - len(kept)
        eig1 = kept or None
    facts["flat_directions_final"] = flat
    dominant = _dominant(optimizer, opts, lr, eig1)
    theory = abs(dominant) if dominant is not None else None
    facts["theory_rate"] = theory
    steps_to = _steps_to(rate, g_last, grad_target)
    facts["steps_to_target"] = steps_to
    best = best_gd(mu1 if not flat else None, L1) if theory_on else None
    facts["best_lr"], facts["best_rate"] = best if best is not None else (None, None)
    kind = _sgd_kind(opts) if theory_on else None
    theory_words = ""
    if theory is not None:
        theory_words = (f"theory max|1 - lr*lambda| = {_near(theory, 1.0)}" if kind == "gd" and not wd else
                        f"theory {_near(theory, 1.0)} (the linearised {'nesterov' if kind == 'nesterov' else 'momentum' if kind == 'heavy_ball' else 'weight-decayed'} iteration's spectral radius)")  # fmt: skip
    at = (lambda: f"{curv} = {_near(a, factor) if factor else _num(a)}") if a is not None else (lambda: "")

    # -- diverging: the run said so, or |grad| and the value both grow
    if diverging_now or (growing and rising):
        evidence = _growth(steps, value, x, last, rate)
        facts["diverged_at_step"] = int(steps[-1]) if diverging_now else None
        if a is not None and factor is not None and a > factor * (1 + EXACT_TOL):
            return _verdict("diverging", f"diverging: {at()} > {factor_text}; {evidence}", facts)
        lam_min = min(v for v in (mu0, mu1, 0.0) if v is not None)
        if lam_min < 0 and value[last] < value[0]:
            return _verdict("diverging", f"diverging: {evidence}: the Hessian has negative curvature "
                                         f"(lambda_min = {_num(lam_min)}), so there is no minimum below to settle in", facts)  # fmt: skip
        if a is not None and factor is not None:
            return _verdict("diverging", f"diverging: {evidence}, although {at()} < {factor_text} at the start: "
                                         "the curvature along the path grew past the bound", facts)  # fmt: skip
        why = f" ({ADAPTIVE[optimizer]}, so no bound from lr and the Hessian applies)" if optimizer in ADAPTIVE else ""
        return _verdict("diverging", f"diverging: {evidence}{why}", facts)

    # -- undetermined: no gradient, or no curvature to set lr against
    if theory_on and L0 is None and L1 is None:
        missing = "no Hessian spectrum was given" if start is None and final is None else \
            "the Hessian is not finite at the start or the final point"
        seen = f"; observed: |grad| x{_num(rate)} per step" if rate is not None else ""
        return _verdict("undetermined", f"undetermined: {missing}, so lr*L cannot be set against the bound{seen}", facts)

    shrink = f"|grad| shrinks {_near(rate, 1.0)} per step" if rate is not None else ""
    best_words = ""
    if best is not None and L1 / mu1 > KAPPA_TOL:
        best_words = f"; the best plain GD can do here is {_near(best[1], 1.0)} at lr = {_num(best[0])} (kappa = {_num(L1 / mu1)})"
    to_go = f"about {steps_to} more steps to reach |grad| < {_small(grad_target)}" if steps_to else ""

    # -- converging: a stop rule fired
    if status == "converged":
        said = f"; {shrink} over steps {tail_from}-{tail_to}" if rate is not None and rate > 0 else ""
        said += f", {theory_words}" if said and theory_words else ""
        return _verdict("converging", f"converging: a stop rule fired at step {steps[last]} with |grad| = "
                                      f"{g_last:.3g} and value {value[last]:.6g}{said}", facts)  # fmt: skip

    # -- edge of stability: sharpness pinned at the bound while the value falls non-monotonically
    edge = _edge_of_stability(steps, value, lrs, opts, sharpness) if theory_on else None
    if edge is not None:
        facts.update(edge)
        moved = "rose" if edge["sharpness_first"] < edge["edge_sharpness"] else "fell"
        return _verdict("edge_of_stability",
                        f"edge_of_stability: the sharpness {moved} from {_num(edge['sharpness_first'])} to "
                        f"{edge['edge_rule']} = {_num(edge['edge_sharpness'])} and stayed within {EDGE_TOL:.0%} of it "
                        f"from step {edge['edge_from_step']} to {edge['edge_to_step']} ({edge['edge_samples']} of "
                        f"{edge['sharpness_samples']} samples), while the value fell from {edge['value_edge_start']:.3g} "
                        f"to {edge['value_final']:.3g} " + (f"with {edge['value_rises']} short-term rises" if edge["value_rises"] is not None
                        else "(its short-term rises are not measurable on rows that skip steps)"), facts)  # fmt: skip

    if rate is None:
        return _verdict("undetermined", "undetermined: too few recorded rows with a finite gradient to measure a rate", facts)
    if rate == 0 or g_last <= grad_target:
        if g_last == 0:
            where = f"is exactly 0 from step {tail_to}" + (f" ({at()})" if a is not None else "")
        else:
            where = f"= {g_last:.3g} < {_small(grad_target)} by step {steps[last]}; it shrank {_near(rate, 1.0)} per step"
            where += (f", {theory_words}" if theory_words else "") + best_words
        return _verdict("converging", f"converging: |grad| {where}", facts)
    if growing:  # |grad| grows while the value falls: not settled anywhere yet
        neg = f" (lambda_min = {_num(mu1)} < 0 at the final point)" if mu1 is not None and mu1 < 0 else ""
        return _verdict("undetermined", f"undetermined: |grad| grows {_num(rate)} per step while the value falls "
                                        f"(from {value[0]:.3g} to {value[last]:.3g}): the run is still speeding up, "
                                        f"leaving a saddle or a flat region{neg}, so it has no rate yet", facts)  # fmt: skip

    # alternation: measured on consecutive rows, else what theory says the slowest mode does
    flips = alternating
    if flips is None and dominant is not None:
        flips = dominant.real < 0 or abs(dominant.imag) > 1e-12
    exact = mirror if mirror is not None else (dominant is not None and abs(dominant + 1) <= EXACT_TOL)
    facts["alternating_from"] = "trace" if alternating is not None else ("theory" if dominant is not None else None)
    if abs(rate - 1) <= RATE_TOL:
        if flips and exact:
            tail = f"{at()}, each step lands on the mirror point" if a is not None else "each step lands on the mirror point"
            return _verdict("oscillating", f"oscillating: {tail} (|grad| stays {g_last:.3g})", facts)
        if flips:
            return _verdict("oscillating", f"oscillating: {at() + ', ' if a is not None else ''}successive steps "
                                           f"alternate and |grad| stays about {g_last:.3g} ({_num(rate)} per step)", facts)  # fmt: skip
        first = tail_row(steps, tail_from)
        if value[last] < value[first] - 1e-9 * max(1.0, abs(value[first])):  # a slope with nothing to settle in
            flat = f" (lambda_max = {_num(L1)})" if L1 is not None else ""
            return _verdict("crawling", f"crawling: |grad| stays about {g_last:.3g} while the value keeps falling "
                                        f"(from {value[first]:.6g} to {value[last]:.6g} over steps {tail_from}-{tail_to}): "
                                        f"no curvature pulls the run toward a minimum{flat}", facts)  # fmt: skip
        return _verdict("crawling", f"crawling: |grad| stays about {g_last:.3g} ({_num(rate)} per step over steps "
                                    f"{tail_from}-{tail_to}): the run has stalled"
                                    + (f"; {theory_words}" if theory_words else ""), facts)  # fmt: skip
    if rate >= CRAWL_RATE:
        if flips:
            near = f"{at()}, close to {factor_text}: " if a is not None and factor is not None else ""
            return _verdict("oscillating", f"oscillating: {near}each step overshoots the minimum and keeps "
                                           f"{_pct(rate)} of the distance; {to_go}", facts)  # fmt: skip
        return _verdict("crawling", f"crawling: each step keeps {_pct(rate)} of the distance; {to_go}"
                                    + (f" ({theory_words})" if theory_words else ""), facts)  # fmt: skip
    said = f"converging: {shrink}" + (f", {theory_words}" if theory_words else "") + best_words
    if flips and alternating:
        said += "; successive steps alternate (it overshoots and still shrinks)"
    return _verdict("converging", said + (f"; {to_go}" if to_go else ""), facts)


def tail_row(steps: np.ndarray, tail_from: int | None) -> int:
    """The first row at or after step ``tail_from`` (0 without one)."""
    if tail_from is None:
        return 0
    return int(min(np.searchsorted(steps, tail_from, side="left"), len(steps) - 1))


def _growth(steps, value, x, last: int, rate: float | None) -> str:
    """The trace's evidence of divergence, in words."""
    end = len(steps) - 1
    if not np.isfinite(value[end]) or not np.isfinite(x[end]).all():
        what = "the value" if not np.isfinite(value[end]) else "the point"
        became = "overflowed" if (np.isinf(value[end]) or np.isinf(x[end]).any()) else "became nan"
        return f"{what} {became} at step {steps[end]} (it was {value[last]:.3g} at step {steps[last]})"
    grew = f"the value went from {value[0]:.3g} to {value[last]:.3g} by step {steps[last]}"
    if rate is not None and rate > 1:
        grew += f", |grad| growing {_num(rate)} per step"
    return grew
