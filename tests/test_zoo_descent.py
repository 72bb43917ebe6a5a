"""From its default start, a suitable optimizer reaches a listed minimum of every zoo function."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import run_config

from gdrun.functions import REGISTRY

# function -> (optimizer, lr, epochs, dim, tolerance on the distance to a listed minimum)
SETTINGS = {
    "x2": ("sgd", 0.1, 200, None, 1e-8),
    "sphere": ("sgd", 0.1, 200, 3, 1e-8),
    "rosenbrock": ("adam", 0.02, 4000, 2, 1e-4),
    "rastrigin": ("sgd", 3e-3, 500, 3, 1e-8),
    "ackley": ("adam", 1e-3, 1000, 2, 1e-3),  # not differentiable at 0: descent ends within about lr of it
    "styblinski_tang": ("sgd", 0.01, 500, 3, 1e-8),
    "himmelblau": ("sgd", 1e-3, 5000, None, 1e-6),
    "beale": ("sgd", 0.03, 5000, None, 1e-6),
    "booth": ("sgd", 0.01, 5000, None, 1e-8),
    "matyas": ("sgd", 0.1, 5000, None, 1e-6),
    "three_hump_camel": ("sgd", 0.03, 500, None, 1e-8),
    "six_hump_camel": ("sgd", 0.01, 500, None, 1e-6),
    "goldstein_price": ("adam", 0.3, 1000, None, 1e-6),
    "levi13": ("sgd", 0.01, 1000, None, 1e-6),
    "easom": ("sgd", 0.1, 500, None, 1e-8),
    "mccormick": ("sgd", 0.1, 500, None, 1e-8),
}


def test_every_builtin_has_a_setting():
    assert set(SETTINGS) == set(REGISTRY)


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_descent_from_the_default_init_reaches_a_listed_minimum(name):
    optimizer, lr, epochs, dim, tol = SETTINGS[name]
    raw = {"function": name, "optimizer": optimizer, "lr": lr, "epochs": epochs}
    if dim is not None:
        raw["dim"] = dim
    outcome, _, prepared = run_config(raw)
    assert outcome.status[0] in ("max_epochs", "converged"), outcome.reason
    builtin = prepared.function.builtin
    minima = builtin.minima(len(prepared.names))
    distance = min(np.abs(outcome.x[0] - np.array(m.point)).max() for m in minima)
    assert distance < tol, (name, outcome.x[0], distance)
    best = min(m.value for m in minima)
    assert outcome.value[0] >= best - 1e-12 * max(1.0, abs(best))
