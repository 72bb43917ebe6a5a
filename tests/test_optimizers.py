"""gdrun's optimizers against torch.optim (foreach=False, the single-tensor reference loops).

Both loops take their gradients from torch.autograd on the same objective (written here as torch
code), so only the optimizer differs. gdrun's update runs on numpy arrays and on torch tensors.

Tolerances: float64 trajectories agree to rtol 1e-10 (atol 0). They are not bit-identical
everywhere: torch's CPU lerp uses a fused multiply-add and numpy has none, and per-run option
arrays raise to powers with array pow instead of Python's; these one-ulp differences stay far
below 1e-10 over 200 steps on the functions and learning rates chosen (none of them chaotic).
float32 runs are compared with float32 torch at rtol 1e-4 (see test_float32_matches_float32_torch).
"""

from __future__ import annotations

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


FUNCTIONS = {"rosenbrock": (rosenbrock, [-1.2, 1.0]), "sincos": (sincos, [1.0, 2.0])}

# learning rate per optimizer and function: moving well, far from any instability
LR = {
    "sgd": {"rosenbrock": 1e-3, "sincos": 0.05, "quadratic5": 0.05},
    "adam": {"rosenbrock": 1e-2, "sincos": 0.05, "quadratic5": 0.05},
    "adamw": {"rosenbrock": 1e-2, "sincos": 0.05, "quadratic5": 0.05},
    "rmsprop": {"rosenbrock": 1e-3, "sincos": 1e-2, "quadratic5": 1e-2},
    "adagrad": {"rosenbrock": 0.1, "sincos": 0.1, "quadratic5": 0.1},
    "nadam": {"rosenbrock": 1e-2, "sincos": 0.05, "quadratic5": 0.05},
    "radam": {"rosenbrock": 1e-2, "sincos": 0.05, "quadratic5": 0.05},
    "adadelta": {"rosenbrock": 1.0, "sincos": 1.0, "quadratic5": 1.0},
}  # fmt: skip

GRID = [
    ("sgd", {}),
    ("sgd", {"momentum": 0.9}),
    ("sgd", {"momentum": 0.9, "dampening": 0.5}),
    ("sgd", {"momentum": 0.9, "nesterov": True}),
    ("sgd", {"weight_decay": 0.1}),
    ("sgd", {"momentum": 0.8, "weight_decay": 0.05, "nesterov": True}),
    ("adam", {}),
    ("adam", {"amsgrad": True}),
    ("adam", {"weight_decay": 0.1}),
    ("adam", {"weight_decay": 0.1, "amsgrad": True, "betas": (0.8, 0.99), "eps": 1e-6}),
    ("adam", {"weight_decay": 0.1, "decoupled_weight_decay": True}),
    ("adamw", {}),
    ("adamw", {"amsgrad": True}),
    ("adamw", {"weight_decay": 0.2, "betas": (0.85, 0.995), "eps": 1e-7}),
    ("rmsprop", {}),
    ("rmsprop", {"centered": True}),
    ("rmsprop", {"momentum": 0.9}),
    ("rmsprop", {"centered": True, "momentum": 0.5}),
    ("rmsprop", {"weight_decay": 0.1, "alpha": 0.9, "eps": 1e-6}),
    ("adagrad", {}),
    ("adagrad", {"lr_decay": 0.01}),
    ("adagrad", {"initial_accumulator_value": 0.1}),
    ("adagrad", {"weight_decay": 0.1, "eps": 1e-8, "lr_decay": 0.001}),
    ("nadam", {}),
    ("nadam", {"weight_decay": 0.1}),
    ("nadam", {"weight_decay": 0.1, "decoupled_weight_decay": True}),
    ("nadam", {"momentum_decay": 0.01, "betas": (0.8, 0.99), "eps": 1e-6}),
    ("radam", {}),
    ("radam", {"weight_decay": 0.1}),
    ("radam", {"weight_decay": 0.1, "decoupled_weight_decay": True}),
    ("radam", {"betas": (0.8, 0.99), "eps": 1e-6}),
    ("adadelta", {}),
    ("adadelta", {"rho": 0.95, "eps": 1e-5}),
    ("adadelta", {"weight_decay": 0.1}),
]


def _id(name, options):
    return name + "".join(f"-{k}={v}" for k, v in options.items()).replace(" ", "")


# ----------------------------------------------------------------------------------------- the loops


def torch_trajectory(fn, x0, name, options, lr, steps=STEPS, dtype=torch.float64, clip=None) -> np.ndarray:
    """The plain torch.optim loop: zero_grad, loss, backward, (clip), step."""
    x = torch.tensor(x0, dtype=dtype, requires_grad=True)
    opt = TORCH_OPTIMIZERS[name]([x], lr=lr, foreach=False, **options)
    points = [x.detach().clone()]
    for _ in range(steps):
        opt.zero_grad()
        fn(x).backward()
        if clip is not None:
            mode, value = clip
            if mode == "norm":
                torch.nn.utils.clip_grad_norm_([x], value)
            else:
                torch.nn.utils.clip_grad_value_([x], value)
        opt.step()
        points.append(x.detach().clone())
    return torch.stack(points).numpy()


def _grad(fn, X):
    """torch.autograd's gradient of ``fn`` at every row of X (numpy in, numpy out; torch: torch)."""
    t = (torch.from_numpy(X) if isinstance(X, np.ndarray) else X.detach()).requires_grad_(True)
    (g,) = torch.autograd.grad(fn(t).sum(), t)
    return g.numpy() if isinstance(X, np.ndarray) else g


def gdrun_trajectory(fn, X0, optimizer, lrs, backend, steps=STEPS, dtype="float64", clip=None) -> np.ndarray:
    """gdrun's update on a batch X0 (B, m) with learning rates ``lrs`` (B,); (steps + 1, B, m)."""
    X0 = np.asarray(X0, dtype=dtype)
    lr = np.asarray(lrs, dtype=dtype).reshape(-1, 1)
    if backend == "torch":
        X0, lr = torch.from_numpy(X0), torch.from_numpy(lr)
    X, state = X0, optimizer.init(X0)
    points = [X]
    for _ in range(steps):
        G = _grad(fn, X)
        if clip is not None:
            G = clip(G)
        X, state = optimizer.update(G, state, X, lr)
        points.append(X)
    out = torch.stack(points).numpy() if backend == "torch" else np.stack(points)
    assert out.dtype == np.dtype(dtype)
    return out


def _close(got, expected, rtol=1e-10):
    assert np.all(np.isfinite(expected)), "the reference run diverged: choose another lr"
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=0)


# ------------------------------------------------------------------------------------ against torch


@pytest.mark.parametrize("function", FUNCTIONS)
@pytest.mark.parametrize("name,options", GRID, ids=[_id(*case) for case in GRID])
def test_single_run_matches_torch(name, options, function):
    fn, x0 = FUNCTIONS[function]
    lr = LR[name][function]
    expected = torch_trajectory(fn, x0, name, options, lr)
    assert np.abs(expected[-1] - expected[0]).max() > 1e-2, "the run should move"
    for backend in ("numpy", "torch"):
        got = gdrun_trajectory(fn, [x0], get_optimizer(name, **options), [lr], backend)
        _close(got[:, 0], expected)


# one rich combination per optimizer, for the batch tests
RICH = {
    "sgd": {"momentum": 0.9, "weight_decay": 0.05, "nesterov": True},
    "adam": {"weight_decay": 0.1, "amsgrad": True, "betas": (0.8, 0.99)},
    "adamw": {"amsgrad": True},
    "rmsprop": {"centered": True, "momentum": 0.5, "weight_decay": 0.01},
    "adagrad": {"lr_decay": 0.01, "initial_accumulator_value": 0.1, "weight_decay": 0.01},
    "nadam": {"weight_decay": 0.1, "decoupled_weight_decay": True},
    "radam": {"weight_decay": 0.1},
    "adadelta": {"rho": 0.95, "weight_decay": 0.1},
}
STARTS = {
    "rosenbrock": [[-1.2, 1.0], [0.5, -0.5], [-0.3, 1.4]],
    "quadratic5": [[1.0, -2.0, 3.0, 0.5, -1.0], [0.1, 0.2, -0.3, 2.0, 1.0], [-1.5, 1.0, 0.0, -2.0, 2.5]],
}
BATCH_FUNCTIONS = {"rosenbrock": rosenbrock, "quadratic5": quadratic5}


@pytest.mark.parametrize("function", BATCH_FUNCTIONS)
@pytest.mark.parametrize("name", RICH)
def test_batch_with_different_lrs_is_separate_torch_runs(name, function):
    fn, starts, lr = BATCH_FUNCTIONS[function], STARTS[function], LR[name][function]
    lrs = [lr, lr * 0.5, lr * 1.5]
    expected = np.stack([torch_trajectory(fn, x0, name, RICH[name], r) for x0, r in zip(starts, lrs)], axis=1)
    for backend in ("numpy", "torch"):
        got = gdrun_trajectory(fn, starts, get_optimizer(name, **RICH[name]), lrs, backend)
        _close(got, expected)


# per-run option values (a sweep over an option puts them along the batch axis)
PER_RUN = {
    "sgd": [{"momentum": 0.0}, {"momentum": 0.5, "dampening": 0.2, "weight_decay": 0.1}, {"momentum": 0.9, "dampening": 0.0, "weight_decay": 0.0}],
    "adam": [{"betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0}, {"betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.1},
             {"betas": (0.95, 0.9999), "eps": 1e-4, "weight_decay": 0.01}],
    "adamw": [{"betas": (0.9, 0.999), "weight_decay": 0.0}, {"betas": (0.7, 0.9), "weight_decay": 0.1}, {"betas": (0.5, 0.999), "weight_decay": 0.3}],
    "rmsprop": [{"alpha": 0.99, "momentum": 0.0}, {"alpha": 0.9, "momentum": 0.9, "eps": 1e-6}, {"alpha": 0.5, "momentum": 0.3, "weight_decay": 0.1}],
    "adagrad": [{"lr_decay": 0.0}, {"lr_decay": 0.01, "initial_accumulator_value": 0.5}, {"lr_decay": 0.1, "eps": 1e-6, "weight_decay": 0.1}],
    "nadam": [{"momentum_decay": 4e-3}, {"momentum_decay": 0.01, "betas": (0.8, 0.99)}, {"momentum_decay": 0.0, "weight_decay": 0.1}],
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


@pytest.mark.parametrize("name", PER_RUN)
def test_per_run_options_are_separate_torch_runs(name):
    fn, starts, lr = quadratic5, STARTS["quadratic5"], LR[name]["quadratic5"]
    lrs = [lr, lr * 0.7, lr * 1.2]
    expected = np.stack([torch_trajectory(fn, x0, name, o, r) for x0, o, r in zip(starts, PER_RUN[name], lrs)], axis=1)
    optimizer = get_optimizer(name, **_stack_options(name, PER_RUN[name]))
    for backend in ("numpy", "torch"):
        _close(gdrun_trajectory(fn, starts, optimizer, lrs, backend), expected)


@pytest.mark.parametrize("name", RICH)
def test_float32_matches_float32_torch(name):
    """float32 against float32 torch: rtol 1e-4. torch rounds its float64 scalar coefficients
    (lr / bias_correction, ...) to float32 once, while gdrun's lr arrives as a float32 array and
    those coefficients are computed in float32: one-ulp (6e-8) differences a step, which 200
    steps grow to ~1e-5 at most here."""
    for function in ("rosenbrock", "quadratic5"):
        fn, starts, lr = BATCH_FUNCTIONS[function], STARTS[function], LR[name][function]
        expected = torch_trajectory(fn, starts[0], name, RICH[name], lr, dtype=torch.float32)
        for backend in ("numpy", "torch"):
            got = gdrun_trajectory(fn, starts[:1], get_optimizer(name, **RICH[name]), [lr], backend, dtype="float32")
            np.testing.assert_allclose(got[:, 0], expected, rtol=1e-4, atol=1e-6)


def test_float32_keeps_float32_with_per_run_options():
    optimizer = get_optimizer("adam", **_stack_options("adam", PER_RUN["adam"]))
    for backend in ("numpy", "torch"):
        got = gdrun_trajectory(quadratic5, STARTS["quadratic5"], optimizer, [0.05] * 3, backend, steps=20, dtype="float32")
        assert np.all(np.isfinite(got))


# ------------------------------------------------------------------------------------------ clipping


@pytest.mark.parametrize("clip", [("norm", 1.0), ("norm", 30.0), ("value", 5.0), ("value", 0.5)])
@pytest.mark.parametrize("name,options", [("sgd", {"momentum": 0.9}), ("adam", {}), ("rmsprop", {"centered": True})])
def test_clipping_matches_torch(name, options, clip):
    fn, starts = rosenbrock, STARTS["rosenbrock"]
    lr = LR[name]["rosenbrock"]
    expected = np.stack([torch_trajectory(fn, x0, name, options, lr, clip=clip) for x0 in starts], axis=1)
    for backend in ("numpy", "torch"):
        got = gdrun_trajectory(fn, starts, get_optimizer(name, **options), [lr] * 3, backend, clip=get_clip(*clip))
        _close(got, expected)


def test_clipping_is_per_run():
    G = np.array([[3.0, 4.0], [0.3, 0.4], [-30.0, 40.0]])
    for grads in (G, torch.from_numpy(G)):
        out = clip_by_norm(grads, 1.0)
        out = out.numpy() if isinstance(out, torch.Tensor) else out
        np.testing.assert_allclose(np.linalg.norm(out, axis=1), [1.0, 0.5, 1.0], rtol=1e-6)
        np.testing.assert_array_equal(out[1], G[1])  # below the limit: untouched
        out = clip_by_value(grads, np.array([[1.0], [0.35], [35.0]]))
        out = out.numpy() if isinstance(out, torch.Tensor) else out
        np.testing.assert_array_equal(out, [[1.0, 1.0], [0.3, 0.35], [-30.0, 35.0]])
        assert float(np.abs(G).max()) == 40.0  # the input is left alone


@pytest.mark.parametrize("mode,value,words", [
    ("norm", 0.0, ["max_norm", "0", "> 0"]), ("value", -1.0, ["clip_value", "-1"]), ("value", "x", ["clip_value", "'x'"]),
    ("nrom", 1.0, ["clip mode", "nrom", "norm"]),
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


@pytest.mark.parametrize("name,options", [(n, RICH[n]) for n in RICH])
def test_update_changes_nothing_it_is_given(name, options):
    optimizer = get_optimizer(name, **options)
    X, G, lr = np.array([[1.0, -2.0]]), np.array([[0.5, 0.25]]), np.array([[0.1]])
    state = optimizer.init(X)
    for _ in range(3):
        copies = [X.copy(), G.copy(), lr.copy()]
        before = [a.copy() if isinstance(a, np.ndarray) else a for a in state]
        new, new_state = optimizer.update(G, state, X, lr)
        assert new is not X
        for a, b in zip([X, G, lr], copies):
            np.testing.assert_array_equal(a, b)
        for a, b in zip(state, before):
            if isinstance(a, np.ndarray):
                np.testing.assert_array_equal(a, b)
        X, state = new, new_state


def test_defaults_are_torchs():
    assert set(OPTIMIZER_OPTIONS) == set(OPTIMIZERS) == set(TORCH_OPTIMIZERS)
    for name, options in OPTIMIZER_OPTIONS.items():
        torch_defaults = inspect.signature(TORCH_OPTIMIZERS[name]).parameters
        ours = inspect.signature(OPTIMIZERS[name]).parameters
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
                X2, state = opt.update(get_clip("norm", 1.0)(get_clip("value", 0.2)(G)), state, X, lr)
        schedule = get_schedule({"name": "sequential", "schedules": [{"name": "linear"}, {"name": "cosine", "T_max": 5}],
                                 "milestones": [3]})
        state = schedule.init(np.array([[0.1], [0.2]]))
        for _ in range(10):
            _, state = schedule.step(state)
        assert "torch" not in sys.modules, "torch was imported"
    """)
    subprocess.run([sys.executable, "-c", code], check=True)
