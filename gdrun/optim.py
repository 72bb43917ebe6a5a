"""Optimizers as pairs of pure functions, generic over numpy arrays and torch tensors.

``init(params) -> state`` and ``update(grads, state, params, lr) -> (new_params, state)``, with
``params``/``grads`` of shape ``(B, n)`` and ``lr`` of shape ``(B, 1)``: one optimizer step for a
whole batch of runs. The maths follows torch.optim's single-tensor reference loops, which the
tests use as the oracle.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

from .errors import unknown_name


class Optimizer(NamedTuple):
    name: str
    init: Callable[[Any], Any]
    update: Callable[[Any, Any, Any, Any], tuple[Any, Any]]


def sgd() -> Optimizer:
    """Plain gradient descent: ``x <- x - lr * grad`` (torch.optim.SGD with its defaults)."""

    def init(params):
        return ()

    def update(grads, state, params, lr):
        return params - lr * grads, state

    return Optimizer("sgd", init, update)


OPTIMIZERS: dict[str, Callable[..., Optimizer]] = {"sgd": sgd}


def get_optimizer(name: str, **options) -> Optimizer:
    if name not in OPTIMIZERS:
        raise unknown_name("optimizer", name, OPTIMIZERS)
    return OPTIMIZERS[name](**options)
