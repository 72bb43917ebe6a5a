"""Backends: where the arrays live and how gradients are obtained.

``numpy``: exact gradients derived symbolically (sympy), evaluated with numpy on the CPU.
``torch``: torch tensors and autograd, on the CPU or a CUDA device.

Both expose the same small interface the engine uses (see :class:`NumpyBackend`).
"""

from __future__ import annotations

from ..errors import GdrunError, unknown_name

BACKENDS = ("numpy", "torch")
DEVICES = ("cpu", "cuda", "auto")
DTYPES = ("float64", "float32")


def get_backend(name: str, device: str = "cpu", dtype: str = "float64"):
    """The backend called ``name`` on ``device`` with ``dtype``; one error for each bad choice."""
    if name not in BACKENDS:
        raise unknown_name("backend", name, BACKENDS)
    if device not in DEVICES:
        raise unknown_name("device", device, DEVICES)
    if dtype not in DTYPES:
        raise unknown_name("dtype", dtype, DTYPES)
    if name == "numpy":
        if device == "cuda":
            raise GdrunError("the numpy backend runs on the CPU only; use --backend torch for --device cuda")
        from .numpy_backend import NumpyBackend

        return NumpyBackend(dtype)
    from .torch_backend import TorchBackend

    return TorchBackend(device, dtype)
