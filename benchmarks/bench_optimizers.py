"""Per-step cost of every optimizer on a 1,000-dimensional Rosenbrock, side by side.

For each optimizer: gdrun's engine on the numpy backend and on the torch backend (CPU, float64)
against the same optimizer from torch.optim in a bare loop (zero_grad, loss, backward, step). The
engine runs without recorders here (metrics.csv with 1,000 columns per step would measure the
CSV writer, not the optimizer); the bare loop records nothing either. Contestants alternate and
medians are compared, since the machine is shared and noisy.

Targets: gdrun torch no slower than the torch.optim loop; gdrun numpy within 2x of it.

    python benchmarks/bench_optimizers.py [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gdrun import engine  # noqa: E402
from gdrun.backends import get_backend  # noqa: E402
from gdrun.functions import resolve  # noqa: E402
from gdrun.optim import get_optimizer  # noqa: E402

DIM = 1000
VARIANTS = [  # (label, gdrun name, options, torch class, torch options, lr)
    ("sgd", "sgd", {}, torch.optim.SGD, {}, 1e-4),
    ("sgd momentum", "sgd", {"momentum": 0.9}, torch.optim.SGD, {"momentum": 0.9}, 1e-4),
    ("adam", "adam", {}, torch.optim.Adam, {}, 1e-3),
    ("adamw", "adamw", {}, torch.optim.AdamW, {}, 1e-3),
    ("rmsprop", "rmsprop", {}, torch.optim.RMSprop, {}, 1e-4),
    ("adagrad", "adagrad", {}, torch.optim.Adagrad, {}, 1e-2),
    ("nadam", "nadam", {}, torch.optim.NAdam, {}, 1e-3),
    ("radam", "radam", {}, torch.optim.RAdam, {}, 1e-3),
    ("adadelta", "adadelta", {}, torch.optim.Adadelta, {}, 1.0),
]


def start() -> np.ndarray:
    x = np.empty(DIM)
    x[0::2], x[1::2] = -1.2, 1.0
    return x


def gdrun_engine(backend_name: str, name: str, options: dict, lr: float, steps: int) -> float:
    backend = get_backend(backend_name)
    objective = resolve("rosenbrock", DIM).objective
    outcome = engine.run(backend.value_and_grad_fn(objective), backend.asarray(start()[None, :]),
                         get_optimizer(name, **options), np.array([[lr]]), steps, backend)  # fmt: skip
    assert outcome.status == ["max_epochs"], outcome.reason
    return outcome.wall_time_s / steps


def torch_loop(cls, options: dict, lr: float, steps: int) -> float:
    x = torch.tensor(start(), requires_grad=True)
    opt = cls([x], lr=lr, foreach=False, **options)
    begin = time.perf_counter()
    for _ in range(steps):
        opt.zero_grad()
        loss = (100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2).sum()
        loss.backward()
        opt.step()
    return (time.perf_counter() - begin) / steps


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="300 steps, 1 repeat")
    args = parser.parse_args()
    steps, repeats = (300, 1) if args.quick else (2000, 3)
    torch.set_num_threads(1)
    print(f"Rosenbrock, {DIM} dimensions, float64, CPU, {steps} steps, {repeats} alternating repeats; us per step (median)")
    print(f"    {'optimizer':14s} {'gdrun numpy':>12s} {'gdrun torch':>12s} {'torch.optim':>12s} {'torch/optim':>12s} {'numpy/optim':>12s}")
    misses = 0
    for label, name, options, cls, torch_options, lr in VARIANTS:
        times: dict[str, list[float]] = {"numpy": [], "torch": [], "optim": []}
        gdrun_engine("numpy", name, options, lr, 5)  # warm-up: derivative cache, first calls
        for _ in range(repeats):
            times["numpy"].append(gdrun_engine("numpy", name, options, lr, steps))
            times["torch"].append(gdrun_engine("torch", name, options, lr, steps))
            times["optim"].append(torch_loop(cls, torch_options, lr, steps))
        med = {k: statistics.median(v) * 1e6 for k, v in times.items()}
        r_torch, r_numpy = med["torch"] / med["optim"], med["numpy"] / med["optim"]
        ok = r_torch <= 1.0 and r_numpy <= 2.0
        misses += not ok
        print(f"    {label:14s} {med['numpy']:12.1f} {med['torch']:12.1f} {med['optim']:12.1f} {r_torch:12.2f} "
              f"{r_numpy:12.2f}  {'PASS' if ok else 'MISS'}")  # fmt: skip
    print("    targets: gdrun torch / torch.optim <= 1.00; gdrun numpy / torch.optim <= 2.00 (torch on 1 thread)")
    print(f"    {len(VARIANTS) - misses} of {len(VARIANTS)} optimizers meet both targets")
