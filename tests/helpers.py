"""Run the engine in-process and collect whole trajectories (for oracle comparisons)."""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np

from gdrun import engine
from gdrun.config import validate
from gdrun.runner import prepare


class Collect:
    """Engine observer keeping every reported row of every run of the batch."""

    def __init__(self):
        self.blocks = []

    def on_block(self, block):  # the engine reuses a block's buffers: keep copies
        self.blocks.append(replace(block, x=block.x.copy(), value=block.value.copy(), grad_norm=block.grad_norm.copy(),
                                   lr=block.lr.copy(), updates=block.updates.copy()))

    def x(self, member: int = 0) -> np.ndarray:
        rows = [b.x[: b.last[member] + 1, member] for b in self.blocks if b.last[member] >= 0]
        return np.concatenate(rows)

    def value(self, member: int = 0) -> np.ndarray:
        rows = [b.value[: b.last[member] + 1, member] for b in self.blocks if b.last[member] >= 0]
        return np.concatenate(rows)


def run_config(raw: dict, starts=None, lrs=None, **engine_options):
    """Run a raw config dict through prepare + engine; ``starts`` (B, n) and ``lrs`` (B,) make a
    batch. Returns (outcome, Collect, prepared)."""
    prepared = prepare(validate(raw))
    be = prepared.backend
    x0 = np.asarray(starts, dtype=float) if starts is not None else prepared.init[None, :]
    lr = np.broadcast_to(np.reshape(np.asarray(raw.get("lr", 0.01) if lrs is None else lrs, dtype=float), (-1, 1)),
                         (len(x0), 1))  # fmt: skip
    stop = prepared.config.stop
    collect = Collect()
    outcome = engine.run(
        prepared.problem, be.asarray(x0), prepared.optimizer, lr, prepared.config.epochs, be,
        engine.StopRule(stop.grad_norm_below, stop.value_below, stop.diverge_above), (collect,),
        names=prepared.names, schedule=prepared.schedule, clip=prepared.clip, **engine_options,
    )  # fmt: skip
    return outcome, collect, prepared


def trajectory(function: str, backend: str = "numpy", lr=0.1, epochs: int = 10, init=None, dtype="float64", **extra):
    """Run one config (or a batch, when ``lr``/``init`` are lists of several) and return
    (outcome, Collect). ``init`` may be a list of start points for a batch."""
    raw = {"function": function, "backend": backend, "lr": lr if np.isscalar(lr) else lr[0], "epochs": epochs,
           "dtype": dtype, **extra}  # fmt: skip
    starts = None
    if init is not None and np.ndim(init) == 2:
        starts = init
    elif init is not None:
        raw["init"] = init
    outcome, collect, _ = run_config(raw, starts=starts, lrs=None if np.isscalar(lr) else lr)
    return outcome, collect


def wait_for(predicate, timeout: float = 60) -> None:
    """Poll ``predicate`` until it holds (AssertionError after ``timeout`` seconds)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:g} s")
