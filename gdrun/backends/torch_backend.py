"""torch backend: autograd gradients, torch tensors, CPU or CUDA."""

from __future__ import annotations

import numpy as np
import torch

from ..errors import GdrunError
from ..expr import Namespace


class TorchBackend:
    name = "torch"

    def __init__(self, device: str = "cpu", dtype: str = "float64"):
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if device == "cuda" and not torch.cuda.is_available():
            raise GdrunError("device 'cuda' was asked for but torch sees no CUDA device; use --device cpu or auto")
        self.device = device
        self.dtype_name = dtype
        self.dtype = getattr(torch, dtype)
        self.ns = Namespace(torch)
        self.xp = torch

    def asarray(self, values) -> torch.Tensor:
        if isinstance(values, torch.Tensor):  # a tensor (on the device, perhaps) is not taken through numpy:
            # np.array() of a CUDA tensor is an error, and a round trip via the host would be a sync
            return values.detach().to(device=self.device, dtype=self.dtype, copy=True)
        with np.errstate(over="ignore"):  # a start beyond float32 becomes inf, which the start check reports
            return torch.tensor(np.array(values, dtype=self.dtype_name), device=self.device)

    def to_numpy(self, array: torch.Tensor):
        return array.detach().cpu().numpy()

    def empty(self, shape: tuple[int, ...]) -> torch.Tensor:
        return torch.empty(shape, dtype=self.dtype, device=self.device)

    def stack(self, tensors: list) -> torch.Tensor:
        return torch.stack(tensors)

    def value_fn(self, objective):
        return objective.value_fn(self.ns)

    def value_and_grad_fn(self, objective):
        value = objective.value_fn(self.ns)

        def value_and_grad(X):
            with torch.enable_grad():
                X = X.detach().requires_grad_(True)
                f = value(X)
                (G,) = torch.autograd.grad(f.sum(), X)
            return f.detach(), G

        return value_and_grad

    def compute(self):
        return torch.no_grad()

    def versions(self) -> dict[str, str]:
        info = {"torch": torch.__version__}
        if self.device == "cuda":
            info["cuda"] = str(torch.version.cuda)
            info["gpu"] = torch.cuda.get_device_name()
        return info
