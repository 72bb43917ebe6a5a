"""Run the engine in-process and collect whole trajectories (for oracle comparisons)."""

from __future__ import annotations

import numpy as np

from gdrun import engine
from gdrun.config import validate
from gdrun.optim import get_optimizer
from gdrun.runner import prepare


class Collect:
    """Engine observer keeping every reported row of every run of the batch."""

    def __init__(self):
        self.blocks = []

    def on_block(self, block):
        self.blocks.append(block)

    def x(self, member: int = 0) -> np.ndarray:
        rows = [b.x[: b.last[member] + 1, member] for b in self.blocks if b.last[member] >= 0]
        return np.concatenate(rows)

    def value(self, member: int = 0) -> np.ndarray:
        rows = [b.value[: b.last[member] + 1, member] for b in self.blocks if b.last[member] >= 0]
        return np.concatenate(rows)


def trajectory(function: str, backend: str = "numpy", lr=0.1, epochs: int = 10, init=None, dtype="float64", **extra):
    """Run one config (or a batch, when ``lr``/``init`` are lists of several) and return
    (outcome, Collect). ``init`` may be a list of start points for a batch."""
    raw = {"function": function, "backend": backend, "lr": lr if np.isscalar(lr) else lr[0], "epochs": epochs,
           "dtype": dtype, **extra}  # fmt: skip
    starts = None
    if init is not None and np.ndim(init) == 2:
        starts = np.asarray(init, dtype=float)
    elif init is not None:
        raw["init"] = init
    prepared = prepare(validate(raw))
    be = prepared.backend
    x0 = starts if starts is not None else prepared.init[None, :]
    lrs = np.broadcast_to(np.reshape(np.asarray(lr, dtype=float), (-1, 1)), (len(x0), 1))
    collect = Collect()
    outcome = engine.run(
        prepared.value_and_grad, be.asarray(x0), get_optimizer("sgd"), be.asarray(lrs),
        epochs, be, engine.StopRule(prepared.config.stop.grad_norm_below, prepared.config.stop.value_below,
                                    prepared.config.stop.diverge_above),
        (collect,), names=prepared.function.variables,
    )  # fmt: skip
    return outcome, collect
