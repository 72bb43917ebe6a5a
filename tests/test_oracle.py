"""The backends against the oracles: torch.optim.SGD + torch.autograd, and each other.

Every trajectory is compared step by step. The objectives of the oracle loops are written
independently here (plain torch code), not taken from gdrun's parser.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers import trajectory

# (gdrun function, independent torch implementation, init, lr, epochs)
CASES = [
    ("x2", lambda v: v[0] ** 2, [7.5], 0.1, 50),
    ("x2", lambda v: v[0] ** 2, [-3.0], 0.01, 200),
    ("2*x**2", lambda v: 2 * v[0] ** 2, [123.25], 0.01, 300),
    ("x**2 + y**2 + z**2", lambda v: (v**2).sum(), [1.0, -2.0, 3.5], 0.05, 200),
    ("(1-x)**2 + 100*(y-x**2)**2", lambda v: (1 - v[0]) ** 2 + 100 * (v[1] - v[0] ** 2) ** 2, [-1.2, 1.0], 1e-3, 500),
    ("(x+y)**2 + y**3", lambda v: (v[0] + v[1]) ** 2 + v[1] ** 3, [0.5, 0.3], 0.01, 200),
    ("sin(x)*cos(y) + 0.1*(x**2 + y**2)", lambda v: torch.sin(v[0]) * torch.cos(v[1]) + 0.1 * (v**2).sum(), [1.0, 2.0], 0.1, 300),
    ("log(1 + exp(x)) + sqrt(1 + y**2) + abs(z - 1)", lambda v: torch.log(1 + torch.exp(v[0])) + torch.sqrt(1 + v[1] ** 2) + torch.abs(v[2] - 1), [2.0, -3.0, 4.0], 0.05, 200),
    ("sphere", lambda v: (v**2).sum(), [1.0, 2.0, -1.5, 0.5, 3.0], 0.1, 100),
]  # fmt: skip


def torch_optim_trajectory(fn, init, lr, epochs, dtype=torch.float64) -> np.ndarray:
    """The seed experiments' loop, verbatim: zero_grad, loss, backward, step."""
    x = torch.tensor(init, dtype=dtype, requires_grad=True)
    opt = torch.optim.SGD([x], lr=lr, foreach=False)
    points = [x.detach().clone()]
    for _ in range(epochs):
        opt.zero_grad()
        loss = fn(x)
        loss.backward()
        opt.step()
        points.append(x.detach().clone())
    return torch.stack(points).numpy()


def _init(function, init):
    if function == "sphere":
        return {"init": init, "dim": len(init)}
    return {"init": init}


@pytest.mark.parametrize("function,fn,init,lr,epochs", CASES, ids=[c[0] for c in CASES])
def test_torch_backend_reproduces_torch_optim_sgd(function, fn, init, lr, epochs):
    outcome, got = trajectory(function, "torch", lr=lr, epochs=epochs, **_init(function, init))
    expected = torch_optim_trajectory(fn, init, lr, epochs)
    assert outcome.status == ["max_epochs"]
    np.testing.assert_allclose(got.x(), expected, rtol=1e-12, atol=0)


@pytest.mark.parametrize("function,fn,init,lr,epochs", CASES, ids=[c[0] for c in CASES])
def test_numpy_backend_equals_torch_backend(function, fn, init, lr, epochs):
    _, numpy_run = trajectory(function, "numpy", lr=lr, epochs=epochs, **_init(function, init))
    _, torch_run = trajectory(function, "torch", lr=lr, epochs=epochs, **_init(function, init))
    np.testing.assert_allclose(numpy_run.x(), torch_run.x(), rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(numpy_run.value(), torch_run.value(), rtol=1e-12, atol=1e-300)


def test_float32_runs_close_to_float32_torch_optim():
    fn = lambda v: (1 - v[0]) ** 2 + 100 * (v[1] - v[0] ** 2) ** 2  # noqa: E731
    expected = torch_optim_trajectory(fn, [-1.2, 1.0], 1e-3, 200, dtype=torch.float32)
    for backend in ("torch", "numpy"):
        _, got = trajectory("(1-x)**2 + 100*(y-x**2)**2", backend, lr=1e-3, epochs=200, init=[-1.2, 1.0], dtype="float32")
        assert got.x().dtype == np.float32
        np.testing.assert_allclose(got.x(), expected, rtol=2e-4)


# -------------------------------------------------------------------------- E1 and E6, both backends


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_e1_numbers(backend):
    _, run = trajectory("x2", backend, lr=0.1, epochs=10, init=7.5)
    assert [round(v, 4) for v in run.x()[1:, 0]] == [6.0, 4.8, 3.84, 3.072, 2.4576, 1.9661, 1.5729, 1.2583, 1.0066, 0.8053]

    _, run = trajectory("x2", backend, lr=0.01, epochs=10, init=7.5)
    assert [round(v, 4) for v in run.x()[1:, 0]] == [7.35, 7.203, 7.0589, 6.9178, 6.7794, 6.6438, 6.5109, 6.3807, 6.2531, 6.128]

    _, run = trajectory("x2", backend, lr=0.01, epochs=200, init=7.5)
    assert round(run.x()[199, 0], 4) == 0.1346 and round(run.x()[200, 0], 4) == 0.1319

    _, run = trajectory("x2", backend, lr=1.0, epochs=10, init=7.5)
    assert run.x()[:, 0].tolist() == [7.5, -7.5] * 5 + [7.5]


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_e6_converges_to_zero_from_a_random_start(backend):
    outcome, _ = trajectory("2*x**2", backend, lr=0.01, epochs=1000, init_range=[-1000, 1000], seed=0)
    assert abs(outcome.x[0, 0]) < 1e-12
    outcome, _ = trajectory("x**2 + y**2 + z**2", backend, lr=0.01, epochs=2000, init_range=[-1000, 1000], seed=0)
    assert np.abs(outcome.x[0]).max() < 1e-10


def test_batch_of_runs_equals_runs_one_by_one():
    lrs = [0.01, 0.1, 0.5, 1.5]
    starts = [[7.5], [-2.0], [3.0], [1.0]]
    for backend in ("numpy", "torch"):
        batch, runs = trajectory("x2", backend, lr=lrs, epochs=300, init=starts)
        assert batch.status == ["max_epochs", "max_epochs", "max_epochs", "diverged"]
        for b, (lr, start) in enumerate(zip(lrs, starts)):
            single, alone = trajectory("x2", backend, lr=lr, epochs=300, init=start)
            assert single.status[0] == batch.status[b]
            assert single.iterations[0] == batch.iterations[b]
            np.testing.assert_array_equal(alone.x(), runs.x(b))


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here (CI has none); runs on a GPU machine")
def test_cuda_matches_cpu():
    for function, fn, init, lr, epochs in CASES:
        _, cpu = trajectory(function, "torch", lr=lr, epochs=epochs, **_init(function, init))
        _, gpu = trajectory(function, "torch", lr=lr, epochs=epochs, device="cuda", **_init(function, init))
        np.testing.assert_allclose(gpu.x(), cpu.x(), rtol=1e-10)
