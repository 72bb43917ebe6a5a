"""How closely the numpy backend (sympy's symbolic gradients) follows the torch backend (autograd),
float64, over every built-in 2-D function x every optimizer variant, from the default start.

    python benchmarks/accuracy_matrix.py

Prints, per case, the largest relative difference between the two trajectories, and a count of
cases below 1e-12. Where a case is above, it re-runs torch.optim itself with every gradient
component moved by one unit in the last place: when torch.optim then moves as far from itself as
gdrun's numpy backend does from its torch backend, the trajectory amplifies rounding (numpy has no
fused multiply-add; sympy's and autograd's gradients may differ in the last bit), and no two
implementations can agree more closely than that (see docs/reliability.md, "numpy = torch").
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from helpers import trajectory  # noqa: E402

VARIANTS = [
    ("sgd", {}, 1e-3), ("sgd", {"momentum": 0.9}, 1e-3), ("sgd", {"momentum": 0.9, "nesterov": True}, 1e-3),
    ("adam", {}, 1e-2), ("adam", {"amsgrad": True}, 1e-2), ("adamw", {}, 1e-2), ("nadam", {}, 1e-2),
    ("radam", {}, 1e-2), ("rmsprop", {}, 1e-3), ("rmsprop", {"centered": True}, 1e-3),
    ("rmsprop", {"momentum": 0.5}, 1e-3), ("adagrad", {}, 1e-1), ("adadelta", {}, 1.0),
]  # fmt: skip
FUNCTIONS = ["x**2 + y**2", "booth", "beale", "matyas", "three_hump_camel", "six_hump_camel", "rosenbrock",
             "himmelblau", "mccormick", "styblinski_tang", "rastrigin", "goldstein_price", "levi13", "easom", "ackley"]  # fmt: skip
EPOCHS = 2000
TORCH_CLASSES = {"sgd": "SGD", "adam": "Adam", "adamw": "AdamW", "nadam": "NAdam", "radam": "RAdam",
                 "rmsprop": "RMSprop", "adagrad": "Adagrad", "adadelta": "Adadelta"}  # fmt: skip


def relative_gap(a: np.ndarray, b: np.ndarray) -> float:
    """Largest distance between the two trajectories' points, relative to the size of the path."""
    scale = max(float(np.max(np.linalg.norm(b, axis=1))), 1e-300)
    return float(np.max(np.linalg.norm(a - b, axis=1)) / scale)


def torch_optim_on_symbolic_gradients(function: str, name: str, options: dict, lr: float, extra: dict) -> np.ndarray:
    """torch.optim's own loop (foreach=False), fed the numpy backend's (sympy) gradients."""
    import torch

    from gdrun.config import validate
    from gdrun.runner import prepare

    prepared = prepare(validate({"function": function, "backend": "numpy", **extra}))
    value_and_grad = prepared.function.objective.numpy_value_and_grad()
    x = torch.tensor(prepared.init, dtype=torch.float64, requires_grad=True)
    opt = getattr(torch.optim, TORCH_CLASSES[name])([x], lr=lr, foreach=False, **options)
    points = [x.detach().clone()]
    for _ in range(EPOCHS):
        _, G = value_and_grad(x.detach().numpy()[None, :].copy())
        x.grad = torch.tensor(np.asarray(G, dtype=np.float64)[0])
        opt.step()
        points.append(x.detach().clone())
    return torch.stack(points).numpy()


def main() -> None:
    from gdrun.functions import REGISTRY

    started = time.perf_counter()
    gaps = []
    for function in FUNCTIONS:
        if function in REGISTRY and REGISTRY[function].fixed_dim not in (None, 2):
            continue
        extra = {"dim": 2} if function in REGISTRY and REGISTRY[function].fixed_dim is None else {}
        for name, options, lr in VARIANTS:
            raw = {"optimizer": name, "optimizer_options": options, **extra}
            _, a = trajectory(function, "numpy", lr=lr, epochs=EPOCHS, **raw)
            _, b = trajectory(function, "torch", lr=lr, epochs=EPOCHS, **raw)
            xa, xb = a.x(), b.x()
            rows = min(len(xa), len(xb))
            gap = relative_gap(xa[:rows], xb[:rows])
            gradients = update = np.nan
            if gap >= 1e-12:  # split the gap: torch.optim itself fed sympy's gradients instead of autograd's
                fed = torch_optim_on_symbolic_gradients(function, name, options, lr, extra)
                gradients = relative_gap(fed[:rows], xb[:rows])  # same update code, other gradients
                update = relative_gap(xa[:rows], fed[:rows])  # same gradients, other update code
            gaps.append((gap, function, name, options, gradients, update))
    gaps.sort(key=lambda g: -g[0])
    below = sum(g[0] < 1e-12 for g in gaps)
    print(f"{len(gaps)} float64 cases, {EPOCHS} steps each, default start points")
    print(f"numpy vs torch below 1e-12: {below}; below 2e-13: {sum(g[0] < 2e-13 for g in gaps)}")
    above = [g for g in gaps if g[0] >= 1e-12]
    by_gradients = [g for g in above if g[4] >= 0.1 * g[0]]
    print(f"above 1e-12: {len(above)}; torch.optim itself fed sympy's gradients instead of autograd's moves at "
          f"least 10% as far in {len(by_gradients)} of them")
    print("largest gaps: numpy vs torch | torch.optim, sympy vs autograd gradients | same gradients, numpy vs "
          "torch.optim update")
    for gap, function, name, options, gradients, update in gaps[:12]:
        print(f"  {gap:9.2e} | {gradients:9.2e} | {update:9.2e}  {function:18s} {name} {options}")
    print(f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
