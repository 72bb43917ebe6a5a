"""E5 of the seed experiments: a parabola fitted from far off, per sample and in mini-batches."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import run_config

from gdrun.config import load_yaml

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
TARGET = np.array([2.0, -4.0, 3.0])


def e5(name: str, **changes) -> dict:
    raw = load_yaml(CONFIGS / name)
    raw.update(changes)
    return raw


def test_the_schedule_reproduces_the_originals_halving():
    """lr = 0.5 / 2**((epoch+1)//10) on half the MSE gradient == the config's lr on the MSE."""
    outcome, collect, prepared = run_config(e5("e5_parabola_per_sample_sgd.yaml", epochs=30))
    lrs = np.concatenate([b.lr[: b.last[0] + 1, 0] for b in collect.blocks])
    original = [0.5 / 2 ** ((epoch + 1) // 10) / 2 for epoch in range(30)]  # /2: MSE gradient is twice
    assert lrs[1:].tolist() == original  # row k+1 shows the lr of epoch k


def test_per_sample_run_to_the_end_reaches_the_target():
    outcome, collect, _ = run_config(e5("e5_parabola_per_sample_sgd.yaml"))
    assert outcome.status == ["max_epochs"]
    np.testing.assert_allclose(outcome.x[0], TARGET, atol=1e-10)
    np.testing.assert_allclose(collect.x()[50], TARGET, atol=1e-8)  # by epoch 50


def test_per_sample_passes_through_the_originals_wrong_answer_and_does_not_stop_there():
    outcome, collect, prepared = run_config(e5("e5_parabola_per_sample_stops_on_full_data_loss.yaml"))
    x = collect.x()
    # after 13 epochs the trajectory is exactly the point where the original's single-sample rule stopped
    np.testing.assert_allclose(x[13], [3.4755, -6.0452, 3.5727], atol=1e-4)
    assert collect.value()[13] == pytest.approx(2.73, abs=0.01)  # the MSE over all 800 points there
    # gdrun's rule judges the whole data set: it goes on, and stops only once that is below 1e-5
    assert outcome.status == ["converged"]
    assert outcome.iterations[0] == 25
    assert collect.value()[-1] < 1e-5 <= collect.value()[-2]
    assert np.abs(outcome.x[0] - TARGET).max() < 0.01
    assert np.abs(outcome.x[0] - [3.4755, -6.0452, 3.5727]).max() > 1


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_minibatch_reaches_the_target(backend):
    outcome, collect, _ = run_config(e5("e5_parabola_minibatch_16.yaml", backend=backend))
    x, loss = collect.x(), collect.value()
    np.testing.assert_allclose(x[10], TARGET, atol=1e-5)  # to 1e-5 by epoch 10
    assert outcome.status == ["converged"] and loss[-1] < 1e-12
    np.testing.assert_allclose(outcome.x[0], TARGET, atol=1e-4)


def test_numpy_and_torch_agree_on_e5():
    _, numpy_run, _ = run_config(e5("e5_parabola_per_sample_sgd.yaml", epochs=15))
    _, torch_run, _ = run_config(e5("e5_parabola_per_sample_sgd.yaml", epochs=15, backend="torch"))
    np.testing.assert_allclose(numpy_run.x(), torch_run.x(), rtol=1e-12)


def test_torch_path_equals_a_hand_written_torch_loop_with_lr_scheduler():
    """torch.nn.MSELoss + torch.optim.SGD + torch.optim.lr_scheduler.MultiStepLR, by hand."""
    raw = e5("e5_parabola_minibatch_16.yaml", epochs=12, backend="torch")
    raw.pop("stop")
    _, got, _ = run_config(raw)
    x = torch.tensor(np.arange(-400, 400) / 400)
    y = 2 * x**2 - 4 * x + 3
    params = [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in (-11 / 6, -395 / 3, -2400.0)]
    opt = torch.optim.SGD(params, lr=0.25, foreach=False)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[9, 19, 29, 39, 49, 59, 69, 79, 89, 99], gamma=0.5)
    loss_fn = torch.nn.MSELoss()
    expected = [torch.stack([p.detach() for p in params]).numpy().copy()]
    for epoch in range(12):
        order = torch.as_tensor(np.random.default_rng([0, epoch]).permutation(800))
        for start in range(0, 800, 16):
            idx = order[start : start + 16]
            a, b, c = params
            opt.zero_grad()
            loss_fn(a * x[idx] ** 2 + b * x[idx] + c, y[idx]).backward()
            opt.step()
        sched.step()
        expected.append(torch.stack([p.detach() for p in params]).numpy().copy())
    np.testing.assert_allclose(got.x(), np.array(expected), rtol=1e-12)
