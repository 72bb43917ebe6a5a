"""gdrun's learning-rate schedules against torch.optim.lr_scheduler.

The torch side steps a scheduler on a dummy optimizer whose param groups carry the base lrs
(one group per run of gdrun's batch), once per epoch after ``optimizer.step()``; the lr of epoch
k is the group's lr after k scheduler steps. gdrun's schedules use the same floating point
operations, so the sequences agree to 1e-12 relative (in practice exactly).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.optim import lr_scheduler as sched

from gdrun.errors import GdrunError
from gdrun.optim import get_optimizer
from gdrun.schedules import REQUIRED, SCHEDULE_OPTIONS, SCHEDULES, get_schedule

EPOCHS = 120
BASE_LRS = [0.1, 0.05, 0.3]

TORCH_SCHEDULERS = {
    "constant": sched.ConstantLR, "step": sched.StepLR, "multistep": sched.MultiStepLR,
    "exponential": sched.ExponentialLR, "cosine": sched.CosineAnnealingLR, "linear": sched.LinearLR,
}  # fmt: skip


def _torch_scheduler(optimizer, spec):
    options = {k: v for k, v in spec.items() if k != "name"}
    if spec["name"] == "sequential":
        schedulers = [_torch_scheduler(optimizer, s) for s in options["schedules"]]
        return sched.SequentialLR(optimizer, schedulers, milestones=options["milestones"])
    if spec["name"] == "constant":
        options.setdefault("factor", 1.0)  # gdrun's default: a constant lr
    return TORCH_SCHEDULERS[spec["name"]](optimizer, **options)


def torch_lrs(spec, base_lrs, epochs=EPOCHS) -> np.ndarray:
    """(epochs + 1, B): the lr of each epoch, one param group per base lr."""
    groups = [{"params": [torch.zeros(1, requires_grad=True)], "lr": lr} for lr in base_lrs]
    optimizer = torch.optim.SGD(groups, lr=base_lrs[0])
    scheduler = _torch_scheduler(optimizer, spec)
    lrs = [[g["lr"] for g in optimizer.param_groups]]
    for _ in range(epochs):
        optimizer.step()
        scheduler.step()
        lrs.append([g["lr"] for g in optimizer.param_groups])
    return np.array(lrs)


def gdrun_lrs(schedule, base_lrs, epochs=EPOCHS) -> np.ndarray:
    base = np.array(base_lrs, dtype=np.float64).reshape(-1, 1)
    state = schedule.init(base)
    lrs = [state.lr[:, 0]]
    for _ in range(epochs):
        lr, state = schedule.step(state)
        assert lr is state.lr and lr.shape == base.shape and lr.dtype == np.float64
        lrs.append(lr[:, 0])
    return np.array(lrs)


SPECS = [
    {"name": "constant"},
    {"name": "constant", "factor": 0.5, "total_iters": 10},
    {"name": "constant", "factor": 0.25, "total_iters": 0},
    {"name": "step", "step_size": 10, "gamma": 0.5},
    {"name": "step", "step_size": 7},
    {"name": "multistep", "milestones": [10, 30, 75], "gamma": 0.3},
    {"name": "exponential", "gamma": 0.97},
    {"name": "cosine", "T_max": 30, "eta_min": 1e-3},  # 120 epochs: down, up, down, up
    {"name": "cosine", "T_max": 3},
    {"name": "cosine", "T_max": 100},
    {"name": "linear"},
    {"name": "linear", "start_factor": 0.1, "end_factor": 0.9, "total_iters": 20},
    {"name": "linear", "start_factor": 1.0, "end_factor": 0.0, "total_iters": 100},
    {"name": "sequential", "schedules": [{"name": "linear", "start_factor": 0.1, "total_iters": 5},
                                         {"name": "cosine", "T_max": 95, "eta_min": 1e-4}], "milestones": [5]},
    {"name": "sequential", "schedules": [{"name": "linear", "start_factor": 0.01, "total_iters": 10},
                                         {"name": "cosine", "T_max": 50},
                                         {"name": "step", "step_size": 10, "gamma": 0.5}], "milestones": [10, 60]},
    {"name": "sequential", "schedules": [{"name": "constant", "factor": 0.5, "total_iters": 3},
                                         {"name": "exponential", "gamma": 0.9},
                                         {"name": "multistep", "milestones": [5, 20]}], "milestones": [8, 40]},
    {"name": "sequential", "schedules": [{"name": "cosine", "T_max": 10}, {"name": "linear"}], "milestones": [25]},
]  # fmt: skip


def _id(spec):
    if spec["name"] == "sequential":
        return "sequential-" + "-".join(s["name"] for s in spec["schedules"])
    return "-".join(str(v) for v in spec.values()).replace(" ", "")


@pytest.mark.parametrize("spec", SPECS, ids=[_id(s) for s in SPECS])
def test_lr_sequence_matches_torch(spec):
    expected = torch_lrs(spec, BASE_LRS)
    got = gdrun_lrs(get_schedule(spec), BASE_LRS)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=0)
    assert spec == {"name": "constant"} or not np.all(expected == BASE_LRS), "the schedule should change the lr"


def test_per_run_options_are_separate_torch_schedules():
    per_run = [{"name": "exponential", "gamma": g} for g in (0.9, 0.95, 0.99)]
    expected = np.concatenate([torch_lrs(s, [lr]) for s, lr in zip(per_run, BASE_LRS)], axis=1)
    got = gdrun_lrs(get_schedule({"name": "exponential", "gamma": np.array([[0.9], [0.95], [0.99]])}), BASE_LRS)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=0)

    per_run = [{"name": "cosine", "T_max": 40, "eta_min": e} for e in (0.0, 1e-3, 0.02)]
    expected = np.concatenate([torch_lrs(s, [lr]) for s, lr in zip(per_run, BASE_LRS)], axis=1)
    got = gdrun_lrs(get_schedule({"name": "cosine", "T_max": 40, "eta_min": [0.0, 1e-3, 0.02]}), BASE_LRS)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=0)


def test_init_and_step_are_pure():
    schedule = get_schedule({"name": "step", "step_size": 1, "gamma": 0.5})
    base = np.array([[0.1], [0.2]])
    state = schedule.init(base)
    lr, new = schedule.step(state)
    np.testing.assert_array_equal(base, [[0.1], [0.2]])
    np.testing.assert_array_equal(state.lr, [[0.1], [0.2]])
    np.testing.assert_array_equal(lr, [[0.05], [0.1]])
    assert (state.epoch, new.epoch) == (0, 1)


def test_sgd_momentum_with_cosine_schedule_matches_torch():
    """200 steps of SGD with momentum, the lr annealed by a cosine, against torch (rtol 1e-10)."""

    def fn(v):
        return (1 - v[..., 0]) ** 2 + 100 * (v[..., 1] - v[..., 0] ** 2) ** 2

    x0, base_lr, steps = [-1.2, 1.0], 1e-3, 200
    x = torch.tensor(x0, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([x], lr=base_lr, momentum=0.9, foreach=False)
    scheduler = sched.CosineAnnealingLR(opt, T_max=150, eta_min=1e-5)
    expected = [x.detach().clone()]
    for _ in range(steps):
        opt.zero_grad()
        fn(x).backward()
        opt.step()
        scheduler.step()
        expected.append(x.detach().clone())
    expected = torch.stack(expected).numpy()
    assert np.abs(expected[-1] - expected[0]).max() > 0.5

    for backend in ("numpy", "torch"):
        optimizer = get_optimizer("sgd", momentum=0.9)
        schedule = get_schedule({"name": "cosine", "T_max": 150, "eta_min": 1e-5})
        to = torch.from_numpy if backend == "torch" else np.asarray
        X = to(np.array([x0]))
        state, sstate = optimizer.init(X), schedule.init(np.array([[base_lr]]))
        points = [X]
        for _ in range(steps):
            leaf = (X.detach() if backend == "torch" else torch.from_numpy(X)).requires_grad_(True)
            (G,) = torch.autograd.grad(fn(leaf).sum(), leaf)
            X, state = optimizer.update(G if backend == "torch" else G.numpy(), state, X, to(sstate.lr))
            _, sstate = schedule.step(sstate)
            points.append(X)
        got = torch.stack(points).numpy() if backend == "torch" else np.stack(points)
        np.testing.assert_allclose(got[:, 0], expected, rtol=1e-10, atol=1e-12)


def test_options_table():
    assert set(SCHEDULE_OPTIONS) == set(SCHEDULES)
    assert SCHEDULE_OPTIONS["step"]["step_size"] is REQUIRED
    assert get_schedule("constant").name == "constant"
    assert get_schedule({"name": "linear"}).init(np.array([[0.3]])).lr[0, 0] == 0.3 * (1 / 3)


ERRORS = [
    ({"name": "stepp", "step_size": 3}, ["schedule", "stepp", "did you mean 'step'"]),
    ({"step_size": 3}, ["no name"]),
    ({"name": "step"}, ["step", "needs step_size"]),
    ({"name": "step", "step_size": 0}, ["step_size", "0", ">= 1"]),
    ({"name": "step", "step_size": 2.5}, ["step_size", "2.5", "integer"]),
    ({"name": "step", "step_size": 3, "gamma": 0}, ["gamma", "0", "> 0"]),
    ({"name": "step", "step_size": 3, "gamma": -0.5}, ["gamma", "-0.5"]),
    ({"name": "step", "step_size": 3, "gama": 0.5},
     ["unknown option 'gama'", "did you mean 'gamma'", "gamma, step_size"]),
    ({"name": "multistep", "milestones": [10, 5]}, ["milestones", "[10, 5]", "increase"]),
    ({"name": "multistep", "milestones": [0, 5]}, ["milestones[0]", "0"]),
    ({"name": "multistep", "milestones": 5}, ["milestones", "list"]),
    ({"name": "exponential"}, ["exponential", "needs gamma"]),
    ({"name": "exponential", "gamma": "fast"}, ["gamma", "'fast'", "number"]),
    ({"name": "exponential", "gamma": np.array([[0.9], [0.0]])}, ["gamma", "0", "> 0"]),
    ({"name": "cosine", "T_max": 0}, ["T_max", "0", ">= 1"]),
    ({"name": "cosine", "T_max": 10, "eta_min": -1e-3}, ["eta_min", "-0.001"]),
    ({"name": "linear", "start_factor": 0}, ["start_factor", "0", "(0, 1]"]),
    ({"name": "linear", "start_factor": 1.5}, ["start_factor", "1.5"]),
    ({"name": "linear", "end_factor": 1.2}, ["end_factor", "1.2", "[0, 1]"]),
    ({"name": "linear", "total_iters": 0}, ["total_iters", "0"]),
    ({"name": "constant", "factor": 0}, ["factor", "0", "(0, 1]"]),
    ({"name": "constant", "factor": 0.5, "total_iters": -1}, ["total_iters", "-1"]),
    ({"name": "sequential", "schedules": [{"name": "linear"}], "milestones": [5]},
     ["sequential", "1 schedules and 1 milestones"]),
    ({"name": "sequential", "schedules": [], "milestones": []}, ["schedules", "non-empty"]),
    ({"name": "sequential", "schedules": [{"name": "linear"}, {"name": "cosine"}], "milestones": [5]},
     ["schedules[1]", "cosine", "needs T_max"]),
    ({"name": "sequential", "schedules": [{"name": "linear"}, {"name": "step", "step_size": 1, "gamma": -1}],
      "milestones": [5]}, ["schedules[1]", "gamma", "-1"]),
    ({"name": "sequential", "schedules": ["linear", {"name": "sequential", "schedules": ["linear"], "milestones": []}],
      "milestones": [5]}, ["schedules[1]", "cannot contain"]),
    ({"name": "sequential", "schedules": ["linear", "constant"], "milestones": [5, 3]}, ["milestones"]),
    ({"name": "sequential", "schedules": ["linear", "constant"]}, ["needs milestones"]),
    (42, ["schedule", "42"]),
]  # fmt: skip


@pytest.mark.parametrize("spec,words", ERRORS, ids=[str(i) for i in range(len(ERRORS))])
def test_validation_errors(spec, words):
    with pytest.raises(GdrunError) as info:
        get_schedule(spec)
    message = str(info.value)
    assert "\n" not in message
    assert all(w in message for w in words), message


def test_per_run_options_must_fit_the_batch():
    schedule = get_schedule({"name": "exponential", "gamma": [0.9, 0.8]})
    with pytest.raises(GdrunError, match="2 values"):
        schedule.init(np.array([[0.1], [0.2], [0.3]]))
