"""gdrun's optimizers against torch.optim (foreach=False: the single-tensor reference loops).

Every torch.optim run is a plain loop (zero_grad, loss, backward, [clip], step) on its own leaf
tensor; every gdrun run is ``update`` in a loop on a batch X (B, m), numpy arrays or torch
tensors. Both take their gradients from torch.autograd on the same objective, written here as
torch code, so only the optimizer differs. To keep the file fast, the loops of a test group run
side by side: each step, one autograd call per objective (and dtype) gives every loop its
gradient (the loss is the sum of the runs' independent terms, so each leaf gets its own).

Tolerances. float64: rtol 1e-10 with atol 1e-12. The runs are not bit-identical on numpy: on a
CPU with FMA, torch fuses ``add(alpha=)``, ``addcmul`` and ``lerp`` into fused multiply-adds,
which numpy cannot do, so the two differ by an ulp now and then (gdrun's torch runs call the
same kernels and are usually bit-identical). The functions, starts and learning rates are chosen
so that nothing amplifies those ulps: every run is still travelling after 200 steps, none sits in
the noise of a minimum (where Adam-like steps of size ~lr oscillate chaotically), and centered
RMSprop does not subtract nearly equal averages. atol 1e-12 (of coordinates of order 1) is for
coordinates that pass through or converge to 0, whose relative error means nothing there.
float32 runs are compared with float32 torch at rtol 1e-4, atol 1e-6 (see that test).
"""

from __future__ import annotations

import functools
import inspect
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from gdrun.errors import GdrunError
from gdrun.optim import OPTIMIZER_OPTIONS, OPTIMIZERS, clip_by_norm, clip_by_value, get_clip, get_optimizer

STEPS = 200
RTOL, ATOL = 1e-10, 1e-12

TORCH_OPTIMIZERS = {
    "sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "rmsprop": torch.optim.RMSprop,
    "adagrad": torch.optim.Adagrad, "nadam": torch.optim.NAdam, "radam": torch.optim.RAdam,
    "adadelta": torch.optim.Adadelta,
}  # fmt: skip


def rosenbrock(v):
    return (1 - v[..., 0]) ** 2 + 100 * (v[..., 1] - v[..., 0] ** 2) ** 2


def sincos(v):
    return torch.sin(v[..., 0]) * torch.cos(v[..., 1]) + 0.1 * (v[..., 0] ** 2 + v[..., 1] ** 2)


A = torch.tensor([1.0, 2.0, 0.5, 3.0, 1.5], dtype=torch.float64)


def quadratic5(v):
    return 0.5 * (A.to(v.dtype) * v**2).sum(-1) + 0.3 * v[..., 0] * v[..., 1] - v[..., 4]


START = {"rosenbrock": [-1.2, 1.0], "sincos": [-3.0, 3.5], "quadratic5": [1.0, -2.0, 3.0, 0.5, -1.0]}
STARTS = {  # for batches of three
    "rosenbrock": [[-1.2, 1.0], [0.5, -0.5], [-0.3, 1.4]],
    "quadratic5": [[1.0, -2.0, 3.0, 0.5, -1.0], [0.1, 0.2, -0.3, 2.0, 1.0], [-1.5, 1.0, 0.0, -2.0, 2.5]],
}
FUNCTIONS = {"rosenbrock": rosenbrock, "sincos": sincos, "quadratic5": quadratic5}

# learning rate per optimizer and function: moving well, and still moving after 200 steps
LR = {
    "sgd": {"rosenbrock": 1e-3, "sincos": 0.05, "quadratic5": 0.05},
    "adam": {"rosenbrock": 1e-2, "sincos": 1e-2, "quadratic5": 1e-2},
    "adamw": {"rosenbrock": 1e-2, "sincos": 1e-2, "quadratic5": 1e-2},
    "rmsprop": {"rosenbrock": 1e-3, "sincos": 1e-3, "quadratic5": 3e-3},
    "adagrad": {"rosenbrock": 0.1, "sincos": 0.05, "quadratic5": 0.05},
    "nadam": {"rosenbrock": 1e-2, "sincos": 1e-2, "quadratic5": 1e-2},
    "radam": {"rosenbrock": 3e-3, "sincos": 1e-2, "quadratic5": 1e-2},
    "adadelta": {"rosenbrock": 1.0, "sincos": 1.0, "quadratic5": 1.0},
}  # fmt: skip


# ----------------------------------------------------------------------------------------- the loops


class Loops:
    """Optimizer loops run side by side; ``add_*`` returns the run's index into ``run()``'s list."""

    def __init__(self):
        self.runs: list[dict] = []

    def add_torch(self, function, x0, name, options, lr, dtype=torch.float64, clip=None) -> int:
        """A plain torch.optim loop on one leaf tensor (one run)."""
        x = torch.tensor(x0, dtype=dtype, requires_grad=True)
        opt = TORCH_OPTIMIZERS[name]([x], lr=lr, foreach=False, **options)
        self.runs.append({"kind": "torch.optim", "fn": function, "x": x, "opt": opt, "clip": clip,
                          "points": [x.detach().clone()]})  # fmt: skip
        return len(self.runs) - 1

    def add_gdrun(self, function, X0, optimizer, lrs, backend, dtype="float64", clip=None) -> int:
        """gdrun's update on a batch X0 (B, m) with learning rates ``lrs`` (B,)."""
        X = np.array(X0, dtype=dtype)
        lr = np.asarray(lrs, dtype=dtype).reshape(-1, 1)
        if backend == "torch":
            X, lr = torch.from_numpy(X), torch.from_numpy(lr)
        self.runs.append({"kind": backend, "fn": function, "X": X, "lr": lr, "opt": optimizer,
                          "state": optimizer.init(X), "clip": clip, "points": [X]})  # fmt: skip
        return len(self.runs) - 1

    def run(self, steps: int = STEPS) -> list[np.ndarray]:
        """The trajectories: (steps + 1, m) for torch.optim runs, (steps + 1, B, m) for gdrun's."""
        for _ in range(steps):
            self._gradients()
            for r in self.runs:
                if r["kind"] == "torch.optim":
                    if r["clip"] is not None:
                        mode, value = r["clip"]
                        if mode == "norm":
                            torch.nn.utils.clip_grad_norm_([r["x"]], value)
                        else:
                            torch.nn.utils.clip_grad_value_([r["x"]], value)
                    r["opt"].step()
                    r["points"].append(r["x"].detach().clone())
                else:
                    G = r.pop("G")
                    if r["clip"] is not None:
                        G = r["clip"](G)
                    r["X"], r["state"] = r["opt"].update(G, r["state"], r["X"], r["lr"])
                    r["points"].append(r["X"])
        out = []
        for r in self.runs:
            points = torch.stack(r["points"]).numpy() if r["kind"] != "numpy" else np.stack(r["points"])
            assert np.all(np.isfinite(points)), f"a {r['kind']} run diverged: choose another lr"
            out.append(points)
        return out

    def _gradients(self):
        """One autograd call per (objective, dtype) for every run's current point."""
        groups: dict = {}
        for r in self.runs:
            if r["kind"] == "torch.optim":
                r["opt"].zero_grad()
                leaf = r["x"]
            else:
                X = r["X"]
                leaf = torch.from_numpy(X) if isinstance(X, np.ndarray) else X.detach()
                r["leaf"] = leaf = leaf.requires_grad_(True)
            groups.setdefault((r["fn"], leaf.dtype), []).append(leaf)
        for (fn, _), leaves in groups.items():
            m = leaves[0].shape[-1]
            fn(torch.cat([leaf.reshape(-1, m) for leaf in leaves])).sum().backward()
        for r in self.runs:
            if r["kind"] != "torch.optim":
                leaf = r.pop("leaf")
                r["G"] = leaf.grad.numpy() if r["kind"] == "numpy" else leaf.grad


def _close(got, expected, rtol=RTOL, atol=ATOL):
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=atol)


# ------------------------------------------------------------------------------ every option, B = 1

GRID = [
    ("sgd", {}),
    ("sgd", {"momentum": 0.9}),
    ("sgd", {"momentum": 0.9, "dampening": 0.5, "weight_decay": 0.1}),
    ("sgd", {"momentum": 0.9, "nesterov": True}),
    ("sgd", {"momentum": 0.8, "weight_decay": 0.05, "nesterov": True}),
    ("adam", {}),
    ("adam", {"amsgrad": True}),
    ("adam", {"weight_decay": 0.1, "amsgrad": True, "betas": (0.8, 0.99), "eps": 1e-6}),
    ("adam", {"weight_decay": 0.1, "decoupled_weight_decay": True}),
    ("adamw", {}),
    ("adamw", {"weight_decay": 0.2, "amsgrad": True, "betas": (0.85, 0.995), "eps": 1e-7}),
    ("rmsprop", {}),
    ("rmsprop", {"centered": True}),
    ("rmsprop", {"momentum": 0.9}),
    ("rmsprop", {"centered": True, "momentum": 0.5, "weight_decay": 0.1}),
    ("rmsprop", {"alpha": 0.9, "eps": 1e-6, "weight_decay": 0.1}),
    ("adagrad", {}),
    ("adagrad", {"lr_decay": 0.01}),
    ("adagrad", {"initial_accumulator_value": 0.1, "weight_decay": 0.1, "eps": 1e-8, "lr_decay": 1e-3}),
    ("nadam", {}),
    ("nadam", {"weight_decay": 0.1}),
    ("nadam", {"weight_decay": 0.1, "decoupled_weight_decay": True, "momentum_decay": 0.01, "betas": (0.8, 0.99),
               "eps": 1e-6}),
    ("radam", {}),
    ("radam", {"weight_decay": 0.1}),
    ("radam", {"weight_decay": 0.1, "decoupled_weight_decay": True, "betas": (0.8, 0.99), "eps": 1e-6}),
    ("adadelta", {}),
    ("adadelta", {"rho": 0.95, "eps": 1e-5, "weight_decay": 0.1}),
]  # fmt: skip
GRID_FUNCTIONS = ("rosenbrock", "sincos")


def _id(name, options):
    return name + "".join(f"-{k}={v}" for k, v in options.items()).replace(" ", "")


@functools.cache
def grid_trajectories():
    """For each (case, function): the torch.optim run and gdrun's numpy and torch runs (B = 1)."""
    loops, index = Loops(), {}
    for case, (name, options) in enumerate(GRID):
        for function in GRID_FUNCTIONS:
            fn, x0, lr = FUNCTIONS[function], START[function], LR[name][function]
            index[case, function] = (
                loops.add_torch(fn, x0, name, options, lr),
                loops.add_gdrun(fn, [x0], get_optimizer(name, **options), [lr], "numpy"),
                loops.add_gdrun(fn, [x0], get_optimizer(name, **options), [lr], "torch"),
            )
    out = loops.run()
    return {key: [out[i] for i in ids] for key, ids in index.items()}


@pytest.mark.parametrize("function", GRID_FUNCTIONS)
@pytest.mark.parametrize("case", range(len(GRID)), ids=[_id(*c) for c in GRID])
def test_single_run_matches_torch(case, function):
    expected, numpy_run, torch_run = grid_trajectories()[case, function]
    assert np.abs(expected[-1] - expected[0]).max() > 1e-2, "the run should move"
    _close(numpy_run[:, 0], expected)
    _close(torch_run[:, 0], expected)


# ------------------------------------------------------------------- batches of three separate runs

RICH = {  # one combination per optimizer with most of its options on
    "sgd": {"momentum": 0.9, "weight_decay": 0.05, "nesterov": True},
    "adam": {"weight_decay": 0.1, "amsgrad": True, "betas": (0.8, 0.99)},
    "adamw": {"amsgrad": True},
    "rmsprop": {"centered": True, "momentum": 0.5, "weight_decay": 0.01},
    "adagrad": {"lr_decay": 0.01, "initial_accumulator_value": 0.1, "weight_decay": 0.01},
    "nadam": {"weight_decay": 0.1, "decoupled_weight_decay": True},
    "radam": {"weight_decay": 0.1},
    "adadelta": {"rho": 0.95, "weight_decay": 0.1},
}
BATCH_FUNCTIONS = ("rosenbrock", "quadratic5")
LR_FACTORS = (1.0, 0.5, 1.5)


@functools.cache
def batch_trajectories():
    """Three torch.optim runs with three lrs and starts, and gdrun's batch of the three."""
    loops, index = Loops(), {}
    for name, options in RICH.items():
        for function in BATCH_FUNCTIONS:
            fn, starts = FUNCTIONS[function], STARTS[function]
            lrs = [LR[name][function] * f for f in LR_FACTORS]
            index[name, function] = (
                [loops.add_torch(fn, x0, name, options, lr) for x0, lr in zip(starts, lrs)],
                loops.add_gdrun(fn, starts, get_optimizer(name, **options), lrs, "numpy"),
                loops.add_gdrun(fn, starts, get_optimizer(name, **options), lrs, "torch"),
            )
    out = loops.run()
    return {key: (np.stack([out[i] for i in refs], axis=1), out[a], out[b]) for key, (refs, a, b) in index.items()}


@pytest.mark.parametrize("function", BATCH_FUNCTIONS)
@pytest.mark.parametrize("name", RICH)
def test_batch_with_different_lrs_is_separate_torch_runs(name, function):
    expected, numpy_run, torch_run = batch_trajectories()[name, function]
    _close(numpy_run, expected)
    _close(torch_run, expected)


# per-run option values (a sweep over an option puts them along the batch axis)
PER_RUN = {
    "sgd": [{"momentum": 0.0}, {"momentum": 0.5, "dampening": 0.2, "weight_decay": 0.1}, {"momentum": 0.9}],
    "adam": [{"betas": (0.9, 0.999), "eps": 1e-8}, {"betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.1},
             {"betas": (0.95, 0.9999), "eps": 1e-4, "weight_decay": 0.01}],
    "adamw": [{"betas": (0.9, 0.999), "weight_decay": 0.0}, {"betas": (0.7, 0.95), "weight_decay": 0.1},
              {"betas": (0.5, 0.999), "weight_decay": 0.3}],
    "rmsprop": [{"alpha": 0.99, "momentum": 0.0}, {"alpha": 0.9, "momentum": 0.9, "eps": 1e-6},
                {"alpha": 0.5, "momentum": 0.3, "weight_decay": 0.1}],
    "adagrad": [{"lr_decay": 0.0}, {"lr_decay": 0.01, "initial_accumulator_value": 0.5},
                {"lr_decay": 0.1, "eps": 1e-6, "weight_decay": 0.1}],
    "nadam": [{"momentum_decay": 4e-3}, {"momentum_decay": 0.01, "betas": (0.8, 0.99)},
              {"momentum_decay": 0.0, "weight_decay": 0.1}],
    "radam": [{"betas": (0.9, 0.999)}, {"betas": (0.9, 0.9)}, {"betas": (0.8, 0.99), "weight_decay": 0.05}],
    "adadelta": [{"rho": 0.9}, {"rho": 0.5, "eps": 1e-4}, {"rho": 0.99, "weight_decay": 0.1}],
}  # fmt: skip


def _stack_options(name, per_run):
    """Three runs' options as gdrun's per-run arrays (B, 1), defaults filled in."""
    full = [{**{k: v for k, v in OPTIMIZER_OPTIONS[name].items() if not isinstance(v, bool)}, **o} for o in per_run]
    stacked = {}
    for key in full[0]:
        if key == "betas":
            stacked[key] = tuple(np.array([[o["betas"][i]] for o in full]) for i in (0, 1))
        else:
            stacked[key] = np.array([[o[key]] for o in full])
    return stacked


@functools.cache
def per_run_trajectories():
    loops, index = Loops(), {}
    fn, starts = quadratic5, STARTS["quadratic5"]
    for name, per_run in PER_RUN.items():
        lrs = [LR[name]["quadratic5"] * f for f in LR_FACTORS]
        optimizer = get_optimizer(name, **_stack_options(name, per_run))
        index[name] = (
            [loops.add_torch(fn, x0, name, o, lr) for x0, o, lr in zip(starts, per_run, lrs)],
            loops.add_gdrun(fn, starts, optimizer, lrs, "numpy"),
            loops.add_gdrun(fn, starts, optimizer, lrs, "torch"),
        )
    out = loops.run()
    return {key: (np.stack([out[i] for i in refs], axis=1), out[a], out[b]) for key, (refs, a, b) in index.items()}


@pytest.mark.parametrize("name", PER_RUN)
def test_per_run_options_are_separate_torch_runs(name):
    expected, numpy_run, torch_run = per_run_trajectories()[name]
    _close(numpy_run, expected)
    _close(torch_run, expected)


# -------------------------------------------------------------------------------------------- float32


@functools.cache
def float32_trajectories():
    loops, index = Loops(), {}
    for name, options in RICH.items():
        for function in BATCH_FUNCTIONS:
            fn, x0, lr = FUNCTIONS[function], START[function], LR[name][function]
            index[name, function] = (
                loops.add_torch(fn, x0, name, options, lr, dtype=torch.float32),
                loops.add_gdrun(fn, [x0], get_optimizer(name, **options), [lr], "numpy", dtype="float32"),
                loops.add_gdrun(fn, [x0], get_optimizer(name, **options), [lr], "torch", dtype="float32"),
            )
    out = loops.run()
    return {key: [out[i] for i in ids] for key, ids in index.items()}


@pytest.mark.parametrize("function", BATCH_FUNCTIONS)
@pytest.mark.parametrize("name", RICH)
def test_float32_matches_float32_torch(name, function):
    """float32 against float32 torch: rtol 1e-4, atol 1e-6. torch computes its scalar
    coefficients (lr / bias_correction, 1 - lr * weight_decay, ...) in float64 and rounds them to
    float32 once, while gdrun's lr arrives as a float32 array (as the engine passes it), so those
    coefficients are float32 maths: an ulp (6e-8) here and there each step, which 200 steps
    accumulate to ~1e-5 at most on these runs."""
    expected, numpy_run, torch_run = float32_trajectories()[name, function]
    for got in (numpy_run, torch_run):
        assert got.dtype == np.float32
        np.testing.assert_allclose(got[:, 0], expected, rtol=1e-4, atol=1e-6)


def test_float32_stays_float32_with_per_run_options():
    loops = Loops()
    for name, per_run in PER_RUN.items():
        optimizer = get_optimizer(name, **_stack_options(name, per_run))
        for backend in ("numpy", "torch"):
            loops.add_gdrun(quadratic5, STARTS["quadratic5"], optimizer, [0.01] * 3, backend, dtype="float32")
    for points in loops.run(steps=5):
        assert points.dtype == np.float32


# ------------------------------------------------------------------------------------------ clipping

CLIPS = [
    ("sgd", {"momentum": 0.9}, ("norm", 1.0)),
    ("adam", {}, ("norm", 30.0)),
    ("rmsprop", {"centered": True}, ("value", 5.0)),
    ("adam", {"amsgrad": True}, ("value", 0.5)),
]


@functools.cache
def clip_trajectories():
    """Clipping then an optimizer step, on a batch of three Rosenbrock starts."""
    loops, index = Loops(), {}
    starts = STARTS["rosenbrock"]
    for case, (name, options, clip) in enumerate(CLIPS):
        lrs, optimizer, clipper = [LR[name]["rosenbrock"]] * 3, get_optimizer(name, **options), get_clip(*clip)
        index[case] = (
            [loops.add_torch(rosenbrock, x0, name, options, lr, clip=clip) for x0, lr in zip(starts, lrs)],
            loops.add_gdrun(rosenbrock, starts, optimizer, lrs, "numpy", clip=clipper),
            loops.add_gdrun(rosenbrock, starts, optimizer, lrs, "torch", clip=clipper),
        )
    out = loops.run()
    return {key: (np.stack([out[i] for i in refs], axis=1), out[a], out[b]) for key, (refs, a, b) in index.items()}


@pytest.mark.parametrize("case", range(len(CLIPS)), ids=[f"{n}-{c[0]}={c[1]}" for n, _, c in CLIPS])
def test_clipping_matches_torch(case):
    expected, numpy_run, torch_run = clip_trajectories()[case]
    _close(numpy_run, expected)
    _close(torch_run, expected)


def test_clipping_is_per_run():
    G = np.array([[3.0, 4.0], [0.3, 0.4], [-30.0, 40.0]])
    for grads in (G, torch.from_numpy(G)):
        out = np.asarray(clip_by_norm(grads, 1.0))
        np.testing.assert_allclose(np.linalg.norm(out, axis=1), [1.0, 0.5, 1.0], rtol=1e-6)
        np.testing.assert_array_equal(out[1], G[1])  # below the limit: untouched
        out = np.asarray(clip_by_value(grads, np.array([[1.0], [0.35], [35.0]])))
        np.testing.assert_array_equal(out, [[1.0, 1.0], [0.3, 0.35], [-30.0, 35.0]])
        assert float(np.abs(G).max()) == 40.0  # the input is left alone


@pytest.mark.parametrize("mode,value,words", [
    ("norm", 0.0, ["max_norm", "0", "> 0"]),
    ("value", -1.0, ["clip_value", "-1"]),
    ("value", "x", ["clip_value", "'x'"]),
    ("nrom", 1.0, ["clip mode", "nrom", "did you mean 'norm'"]),
])  # fmt: skip
def test_clip_errors(mode, value, words):
    with pytest.raises(GdrunError) as info:
        get_clip(mode, value)
    assert all(w in str(info.value) for w in words), str(info.value)


# ---------------------------------------------------------------------------------- interface, errors


def test_plain_sgd_needs_no_options():
    optimizer = get_optimizer("sgd")
    X, G = np.array([[1.0, 2.0]]), np.array([[0.5, -1.0]])
    new, _ = optimizer.update(G, optimizer.init(X), X, np.array([[0.1]]))
    np.testing.assert_array_equal(new, [[0.95, 2.1]])


@pytest.mark.parametrize("name", RICH)
def test_update_changes_nothing_it_is_given(name):
    optimizer = get_optimizer(name, **RICH[name])
    for X in (np.array([[1.0, -2.0]]), torch.tensor([[1.0, -2.0]], dtype=torch.float64)):
        G, lr = X * 0.5 + 0.25, X[:, :1] * 0 + 0.1
        state = optimizer.init(X)
        for _ in range(3):
            given = [X, G, lr, *(a for a in state if hasattr(a, "shape"))]
            copies = [a.copy() if isinstance(a, np.ndarray) else a.clone() for a in given]
            new, new_state = optimizer.update(G, state, X, lr)
            assert new is not X
            for a, b in zip(given, copies):
                assert (a == b).all()
            X, state = new, new_state


def test_defaults_are_torchs():
    assert set(OPTIMIZER_OPTIONS) == set(OPTIMIZERS) == set(TORCH_OPTIMIZERS)
    for name, options in OPTIMIZER_OPTIONS.items():
        torch_defaults = inspect.signature(TORCH_OPTIMIZERS[name]).parameters
        ours = inspect.signature(OPTIMIZERS[name]).parameters
        assert set(ours) == set(options)
        for option, default in options.items():
            assert torch_defaults[option].default == default, (name, option)
            assert ours[option].default == default, (name, option)
    assert OPTIMIZER_OPTIONS["adamw"]["weight_decay"] == 1e-2 and OPTIMIZER_OPTIONS["adam"]["weight_decay"] == 0


ERRORS = [
    ("sgd", {"momentum": -0.5}, ["momentum", "-0.5", "sgd", ">= 0"]),
    ("sgd", {"weight_decay": -1e-3}, ["weight_decay", "-0.001"]),
    ("sgd", {"nesterov": True}, ["nesterov", "momentum"]),
    ("sgd", {"nesterov": True, "momentum": 0.9, "dampening": 0.1}, ["nesterov", "dampening", "0.1"]),
    ("sgd", {"momentun": 0.9}, ["momentun", "did you mean 'momentum'", "dampening, momentum, nesterov, weight_decay"]),
    ("sgd", {"momentum": "fast"}, ["momentum", "'fast'", "number"]),
    ("sgd", {"momentum": True}, ["momentum", "True", "number"]),
    ("sgd", {"nesterov": "yes"}, ["nesterov", "'yes'", "true or false"]),
    ("sgd", {"momentum": np.array([[0.9], [-0.1]])}, ["momentum", "-0.1"]),
    ("sgd", {"momentum": np.zeros((2, 2))}, ["momentum", "(B, 1)"]),
    ("adam", {"betas": (1.0, 0.999)}, ["betas[0]", "1", "[0, 1)"]),
    ("adam", {"betas": (0.9, -0.1)}, ["betas[1]", "-0.1"]),
    ("adam", {"betas": 0.9}, ["betas", "pair"]),
    ("adam", {"eps": -1e-8}, ["eps", "-1e-08"]),
    ("adam", {"eps": float("nan")}, ["eps", "nan"]),
    ("adamw", {"weight_decay": -0.01}, ["weight_decay", "-0.01", "adamw"]),
    ("adamw", {"decoupled_weight_decay": False}, ["decoupled_weight_decay", "adamw"]),
    ("rmsprop", {"alpha": -0.9}, ["alpha", "-0.9"]),
    ("rmsprop", {"momentum": -1}, ["momentum", "-1"]),
    ("adagrad", {"lr_decay": -0.1}, ["lr_decay", "-0.1"]),
    ("adagrad", {"initial_accumulator_value": -1}, ["initial_accumulator_value", "-1"]),
    ("nadam", {"momentum_decay": -1e-3}, ["momentum_decay", "-0.001"]),
    ("radam", {"betas": (0.9, 1.5)}, ["betas[1]", "1.5"]),
    ("adadelta", {"rho": 1.1}, ["rho", "1.1", "[0, 1]"]),
    ("adadelta", {"lr": 1.0}, ["unknown option 'lr'", "adadelta"]),
    ("adamm", {}, ["optimizer", "adamm", "did you mean 'adam'"]),
]


@pytest.mark.parametrize("name,options,words", ERRORS, ids=[f"{n}-{list(o)}" for n, o, _ in ERRORS])
def test_validation_errors(name, options, words):
    with pytest.raises(GdrunError) as info:
        get_optimizer(name, **options)
    message = str(info.value)
    assert "\n" not in message
    assert all(w in message for w in words), message


def test_per_run_options_must_fit_the_batch():
    optimizer = get_optimizer("sgd", momentum=np.array([[0.9], [0.5]]))
    with pytest.raises(GdrunError, match="2 values for a batch of 3"):
        optimizer.init(np.zeros((3, 2)))


def test_numpy_runs_never_import_torch():
    code = textwrap.dedent("""
        import sys
        import numpy as np
        from gdrun.optim import OPTIMIZERS, get_optimizer, get_clip
        from gdrun.schedules import get_schedule
        X, G, lr = np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[0.1, -0.2], [0.3, 0.4]]), np.array([[0.1], [0.2]])
        for name in OPTIMIZERS:
            opt = get_optimizer(name, weight_decay=np.array([[0.0], [0.1]]))
            state = opt.init(X)
            for _ in range(3):
                X, state = opt.update(get_clip("norm", 1.0)(get_clip("value", 0.2)(G)), state, X, lr)
        schedule = get_schedule({"name": "sequential", "milestones": [3],
                                 "schedules": [{"name": "linear"}, {"name": "cosine", "T_max": 5}]})
        state = schedule.init(np.array([[0.1], [0.2]]))
        for _ in range(10):
            _, state = schedule.step(state)
        assert "torch" not in sys.modules, "torch was imported"
    """)
    subprocess.run([sys.executable, "-c", code], check=True)
