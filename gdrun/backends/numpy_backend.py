"""numpy backend: symbolic gradients, numpy arrays, CPU."""

from __future__ import annotations

import numpy as np

from ..expr import Namespace


class NumpyBackend:
    name = "numpy"
    device = "cpu"

    def __init__(self, dtype: str = "float64"):
        self.dtype_name = dtype
        self.dtype = np.dtype(dtype)
        self.ns = Namespace(np)
        self.xp = np

    def asarray(self, values) -> np.ndarray:
        with np.errstate(over="ignore"):  # a start beyond float32 becomes inf, which the start check reports
            return np.array(values, dtype=self.dtype)

    def to_numpy(self, array) -> np.ndarray:
        return np.asarray(array)

    def empty(self, shape: tuple[int, ...]) -> np.ndarray:
        return np.empty(shape, dtype=self.dtype)

    def stack(self, arrays: list) -> np.ndarray:
        return np.array(arrays)  # faster than np.stack for many small arrays

    def value_fn(self, objective):
        return objective.value_fn(self.ns)

    def value_and_grad_fn(self, objective):
        return objective.numpy_value_and_grad()

    def compute(self):
        """Context for the hot loop: overflow and nan are results here, not warnings."""
        return np.errstate(all="ignore")

    def versions(self) -> dict[str, str]:
        return {"numpy": np.__version__}
