"""Backends: where the arrays live and how gradients are obtained.

``numpy``: exact gradients derived symbolically (sympy), evaluated with numpy on the CPU.
``torch``: torch tensors and autograd, on the CPU or a CUDA device.

Both expose the same small interface the engine uses (see :class:`NumpyBackend`).
"""

from __future__ import annotations

from ..errors import GdrunError, known

BACKENDS = ("numpy", "torch")
DEVICES = ("cpu", "cuda", "auto")
DTYPES = ("float64", "float32")


def get_backend(name: str, device: str = "cpu", dtype: str = "float64"):
    """The backend called ``name`` on ``device`` with ``dtype``; one error for each bad choice."""
    known("backend", name, BACKENDS)
    known("device", device, DEVICES)
    known("dtype", dtype, DTYPES)
    if name == "numpy":
        if device == "cuda":
            raise GdrunError("the numpy backend runs on the CPU only; use --backend torch for --device cuda")
        from .numpy_backend import NumpyBackend

        return NumpyBackend(dtype)
    from .torch_backend import TorchBackend

    return TorchBackend(device, dtype)
