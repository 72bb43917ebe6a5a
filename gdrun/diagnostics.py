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
