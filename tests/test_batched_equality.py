"""A batched sweep computes exactly what the same configs compute one by one (issue 9, item 5):
per-run optimizer options in float32 and float64, and fits whose frozen parameters differ."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from helpers import run_config

from gdrun.config import validate
from gdrun.sweeps import BatchJob, SweepOptions, expand, read_results, run_batch, run_sweep, validate_sweep

#: every numeric option of every optimizer, two values each (extra options that make it count)
SWEPT = [
    ("sgd", "momentum", [0.5, 0.9], {}),
    ("sgd", "dampening", [0.1, 0.3], {"momentum": 0.9}),
    ("sgd", "weight_decay", [0.01, 0.2], {"momentum": 0.5}),
    ("adam", "betas", [(0.8, 0.99), (0.9, 0.95)], {}),
    ("adam", "eps", [1e-8, 1e-3], {}),
    ("adam", "weight_decay", [0.01, 0.2], {"decoupled_weight_decay": True}),
    ("adamw", "betas", [(0.8, 0.99), (0.9, 0.95)], {"amsgrad": True}),
    ("adamw", "weight_decay", [0.01, 0.2], {}),
    ("rmsprop", "alpha", [0.9, 0.7], {"centered": True}),
    ("rmsprop", "eps", [1e-8, 1e-3], {}),
    ("rmsprop", "momentum", [0.5, 0.9], {}),
    ("rmsprop", "weight_decay", [0.01, 0.2], {}),
    ("adagrad", "lr_decay", [0.0001, 0.000231, 0.002848, 0.3], {}),
    ("adagrad", "initial_accumulator_value", [0.1, 0.7], {}),
    ("adagrad", "eps", [1e-10, 1e-3], {}),
    ("adagrad", "weight_decay", [0.01, 0.2], {}),
    ("nadam", "betas", [(0.8, 0.99), (0.9, 0.95)], {}),
    ("nadam", "momentum_decay", [0.004, 0.01], {}),
    ("nadam", "weight_decay", [0.01, 0.2], {"decoupled_weight_decay": True}),
    ("radam", "betas", [(0.8, 0.99), (0.9, 0.95)], {}),
    ("radam", "eps", [1e-8, 1e-3], {}),
    ("radam", "weight_decay", [0.01, 0.2], {"decoupled_weight_decay": True}),
    ("adadelta", "rho", [0.9, 0.5], {}),
    ("adadelta", "eps", [1e-6, 1e-3], {}),
    ("adadelta", "weight_decay", [0.01, 0.2], {}),
]


def _configs(optimizer: str, key: str, values: list, extra: dict, backend: str, dtype: str) -> list:
    return [validate({"function": "(1-x)**2 + 10*(y-x**2)**2", "init": {"x": -1.0, "y": 1.5}, "lr": 0.05,
                      "epochs": 100, "optimizer": optimizer, "optimizer_options": {key: v, **extra},
                      "backend": backend, "dtype": dtype}) for v in values]  # fmt: skip


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("optimizer, key, values, extra", SWEPT, ids=[f"{o}-{k}" for o, k, _, _ in SWEPT])
def test_a_batch_equals_its_runs_one_by_one_bit_for_bit(optimizer, key, values, extra, backend, dtype):
    configs = _configs(optimizer, key, values, extra, backend, dtype)
    job = BatchJob.of_configs(configs, record_every=1, width=2)  # one batch: the option is per run
    together = run_batch(job)
    for b, config in enumerate(configs):
        alone = run_batch(BatchJob.of_configs([config], ids=[b], record_every=1, width=2))
        mine = together.metrics[together.metrics[:, 0] == b]
        np.testing.assert_array_equal(mine, alone.metrics)  # every row: step, x, y, value, grad_norm, lr
        assert together.status[b] == alone.status[0] and np.array_equal(together.params[b], alone.params[0])


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_adagrad_lr_decay_in_float32_does_not_drift(backend):
    """The per-run decayed lr is divided in the run's dtype, as a lone run's Python float is."""
    values = [float(v) for v in np.round(np.logspace(-4, 0, 12), 6)]
    configs = [validate({"function": "(1-x)**2 + 10*(y-x**2)**2", "init": {"x": -1.0, "y": 1.5}, "lr": 0.05,
                         "epochs": 300, "optimizer": "adagrad", "optimizer_options": {"lr_decay": v},
                         "dtype": "float32", "backend": backend}) for v in values]  # fmt: skip
    together = run_batch(BatchJob.of_configs(configs, record_every=1, width=2))
    for b, config in enumerate(configs):
        alone = run_batch(BatchJob.of_configs([config], ids=[b], record_every=1, width=2))
        np.testing.assert_array_equal(together.metrics[together.metrics[:, 0] == b], alone.metrics)


def test_a_swept_option_matches_the_plain_single_run_too():
    """run_batch of one config is what ``gdrun minimize`` runs (same prepare, same engine)."""
    config = _configs("adagrad", "lr_decay", [0.3], {}, "numpy", "float32")[0]
    alone = run_batch(BatchJob.of_configs([config], record_every=1, width=2))
    raw = {"function": "(1-x)**2 + 10*(y-x**2)**2", "init": {"x": -1.0, "y": 1.5}, "lr": 0.05, "epochs": 100,
           "optimizer": "adagrad", "optimizer_options": {"lr_decay": 0.3}, "dtype": "float32"}  # fmt: skip
    outcome, collect, _ = run_config(raw)
    np.testing.assert_array_equal(alone.metrics[:, 3:5], collect.x())


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_a_fit_sweep_uses_each_config_s_own_frozen_values(tmp_path, backend):
    base = {"fit": {"model": "a*x + b", "data": {"x": [1, 2, 3, 4], "y": [3, 5, 7, 9]}, "freeze": ["b"]},
            "epochs": 30, "lr": 0.02, "backend": backend}  # fmt: skip
    inits = [{"a": 0.0, "b": 1.0}, {"a": 0.0, "b": 3.0}, {"a": 0.5, "b": 1.0}]
    spec = validate_sweep({"params": {"init": inits}})
    summary, code = run_sweep(base, spec, SweepOptions(runs_dir=tmp_path))
    assert code == 0
    rows = sorted(read_results(Path(summary["sweep_dir"])), key=lambda r: int(r["id"]))
    assert [float(r["param.b"]) for r in rows] == [1.0, 3.0, 1.0]  # results.csv shows each one's own
    for row in rows:
        overrides = expand(spec).as_list()[int(row["id"])]
        alone, _, _ = run_config({**base, **overrides})
        assert float(row["param.a"]) == alone.x[0, 0]
        assert float(row["value"]) == alone.value[0]
