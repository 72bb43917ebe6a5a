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
