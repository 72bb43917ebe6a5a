"""gdrun fit: the seed experiments E3 and E4, numpy against torch against a hand-written torch
loop, generated and CSV data, the CLI forms, stopping on the full-data loss, predictions and R^2.

Trajectory comparisons run in-process (``run_config``); a few tests go through the real CLI and
read the run directory back.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from gdrun.config import validate
from gdrun.fitting import load_data
from gdrun.runner import prepare
from gdrun.runs import read_run

from helpers import run_config

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"


def fit_cli(gdrun, tmp_path, *args: str):
    """``gdrun fit ...`` with its run directory under tmp_path (the fixture adds it only for run/minimize)."""
    return gdrun("fit", *args, "--runs-dir", str(tmp_path / "runs"))


def e4_batch_w() -> float:
    """w at the end of the E4 batch config, run in-process."""
    outcome, _, _ = run_config(yaml.safe_load((CONFIGS / "e4_fit_w_batch_gd.yaml").read_text()))
    return float(outcome.x[0, 0])


def row(metrics: dict, epoch: int) -> dict:
    (i,) = np.flatnonzero(metrics["epoch"] == epoch)
    return {k: v[i] for k, v in metrics.items()}


# ---------------------------------------------------------------------------- E3 and E4


def test_e3_linear_fit_with_frozen_params_reproduces_the_original(gdrun):
    r = gdrun("run", str(CONFIGS / "e3_linear_fit_frozen_params.yaml"), "--json")
    assert r.code == 0, r.err
    printed = json.loads(r.out)
    rec = r.record()
    s = rec.summary
    assert printed["params"] == s["params"]
    assert s["status"] == "max_epochs" and s["kind"] == "fit"
    assert s["backend"] == "torch" and s["dtype"] == "float32"
    # float32 torch reproduces the original bit for bit
    assert s["params"]["a"] == 1.5000202655792236
    assert s["params"]["c"] == 0.4999275505542755
    assert s["params"]["b"] == 0.5 and s["params"]["d"] == 0.5
    assert s["frozen"] == {"b": 0.5, "d": 0.5}
    assert s["init"] == {"a": 1.0, "c": 0.0}  # only the trained parameters move
    assert rec.config["init"] == {"a": 1.0, "b": 0.5, "c": 0.0, "d": 0.5}
    assert s["iterations"] == 5000 and s["updates"] == 5000 and s["batches_per_epoch"] == 1

    m = rec.metrics
    header = (rec.path / "metrics.csv").read_text().splitlines()[0]
    assert header == "epoch,step,a,c,value,grad_norm,lr"
    assert m["epoch"].tolist() == list(range(5001))
    assert (m["step"] == m["epoch"]).all()  # full batch: one update per epoch
    expected = {500: (0.0038, 1.5399, 0.3559), 1000: (0.0007, 1.5171, 0.4382), 2500: (0.0, 1.5014, 0.4951),
                5000: (0.0, 1.5, 0.4999)}  # fmt: skip
    for epoch, (loss, a, c) in expected.items():
        at = row(m, epoch)
        assert (round(at["value"], 4), round(at["a"], 4), round(at["c"], 4)) == (loss, a, c), epoch
    assert m["a"][-1] == s["params"]["a"] and m["c"][-1] == s["params"]["c"]
    assert m["value"][0] == pytest.approx(4.5)  # mean(((1 + 0.5) x + 0.5 - y)^2) at the init


def test_e4_batch_gradient_descent(gdrun):
    r = gdrun("run", str(CONFIGS / "e4_fit_w_batch_gd.yaml"), "--json")
    assert r.code == 0, r.err
    s = json.loads(r.out)
    w = s["params"]["w"]
    assert round(w, 5) == 1.99994
    (p,) = s["predictions"]
    assert p["at"] == {"x": 4.0}
    assert p["before"] == 4.0 and round(p["after"], 4) == 7.9998
    assert p["after"] == pytest.approx(4 * w, rel=1e-15)
    # the original's loop: w -= lr * mean(2 x (x w - y)), 100 times
    x, y, ref = np.array([1.0, 2.0, 3.0]), np.array([2.0, 4.0, 6.0]), 1.0
    for _ in range(100):
        ref -= 0.01 * np.mean(2 * x * (x * ref - y))
    assert w == pytest.approx(ref, rel=1e-12, abs=0)
    assert s["updates"] == 100 and s["batches_per_epoch"] == 1


def test_e4_per_sample_sgd_counts_updates(gdrun):
    r = gdrun("run", str(CONFIGS / "e4_fit_w_per_sample_sgd.yaml"), "--json")
    assert r.code == 0, r.err
    rec = r.record()
    s = rec.summary
    assert round(s["params"]["w"], 4) == 2.0
    assert round(s["predictions"][0]["after"], 4) == 8.0 and s["predictions"][0]["before"] == 4.0
    assert s["batch_size"] == 1 and s["batches_per_epoch"] == 3
    assert s["iterations"] == 100 and s["updates"] == 300
    m = rec.metrics
    assert m["epoch"].tolist() == list(range(101))
    assert m["step"].tolist() == [3 * e for e in range(101)]
    # one update per sample, in data order: the hand-written loop
    x, y, w = [1.0, 2.0, 3.0], [2.0, 4.0, 6.0], 1.0
    ws = [w]
    for _ in range(100):
        for xi, yi in zip(x, y):
            w -= 0.01 * 2 * xi * (xi * w - yi)
        ws.append(w)
    np.testing.assert_allclose(m["w"], ws, rtol=1e-12, atol=0)


# ---------------------------------------------------------------------------- numpy = torch = torch loop

X8 = [0.3, -1.2, 2.5, 0.9, -0.4, 1.7, -2.1, 3.3]
Z8 = [1.1, 0.2, -0.7, 2.4, -1.5, 0.6, 1.9, -0.8]
E8 = [0.05, -0.1, 0.02, 0.13, -0.07, 0.01, -0.04, 0.09]
Y8 = [1.5 * x - 2 * z + 0.7 + e for x, z, e in zip(X8, Z8, E8)]
DATA8 = {"x": X8, "z": Z8, "y": Y8}
INIT = {"a": 0.2, "b": -0.5, "c": 1.3, "d": 0.5}

LOSSES = {"mse": {"loss": "mse"}, "half_mse": {"loss": "half_mse"}, "mae": {"loss": "mae"},
          "huber": {"loss": "huber", "huber_delta": 0.5}}  # fmt: skip
BATCHING = {
    "full": {"batch_size": "full"},
    "per_sample": {"batch_size": 1},
    "shuffled_3": {"batch_size": 3, "shuffle": True},
    "drop_last_3_of_8": {"batch_size": 3, "drop_last": True},  # the short batch of 2 is dropped
    "drop_last_4_of_8": {"batch_size": 4, "drop_last": True},  # nothing to drop: two full batches
    "shuffled_drop_last_3": {"batch_size": 3, "shuffle": True, "drop_last": True},
}


def _two_inputs(p):
    return p["a"] * p["x"] + p["b"] * p["z"] + p["c"]


def _e3_shape(p):
    return p["a"] * p["x"] + p["b"] * p["x"] + p["c"] + p["d"]


MODELS = {  # name: (model, frozen parameters, the same model in torch over a dict of tensors / constants)
    "two_inputs": ("a*x + b*z + c", [], _two_inputs),
    "two_inputs_b_frozen": ("a*x + b*z + c", ["b"], _two_inputs),
    "e3_shape_b_d_frozen": ("a*x + b*x + c + d", ["b", "d"], _e3_shape),
}


def fit_config(model: str, freeze: list, loss: dict, batching: dict, backend: str, epochs: int = 15, lr: float = 0.05,
               seed: int = 7) -> dict:  # fmt: skip
    names = [n for n in "abcd" if n in model]
    return {
        "fit": {"model": model, "data": DATA8, "freeze": freeze, **loss, **batching},
        "backend": backend, "dtype": "float64", "optimizer": "sgd", "lr": lr, "epochs": epochs, "seed": seed,
        "init": {n: INIT[n] for n in names},
    }  # fmt: skip


def torch_loop(model_fn, trainable: list, frozen: dict, loss: dict, batching: dict, epochs: int, lr: float, seed: int):
    """The plain torch script: nn loss + optim.SGD over gdrun's mini-batches; frozen values are constants."""
    import torch

    dt = torch.float64
    cols = {k: torch.tensor(v, dtype=dt) for k, v in DATA8.items()}
    n = len(Y8)
    params = {k: torch.tensor(INIT[k], dtype=dt, requires_grad=True) for k in trainable}
    optimizer = torch.optim.SGD(list(params.values()), lr=lr)
    delta = loss.get("huber_delta", 1.0)
    criterion = {
        "mse": torch.nn.MSELoss(),
        "half_mse": lambda p, t: 0.5 * torch.nn.MSELoss()(p, t),
        "mae": torch.nn.L1Loss(),
        "huber": torch.nn.HuberLoss(delta=delta),
    }[loss["loss"]]
    size = n if batching["batch_size"] == "full" else batching["batch_size"]
    rows = [[INIT[k] for k in trainable]]
    for epoch in range(epochs):
        shuffled = batching.get("shuffle", False) and batching["batch_size"] != "full"
        order = np.random.default_rng([seed, epoch]).permutation(n) if shuffled else np.arange(n)
        for start in range(0, n, size):
            index = torch.as_tensor(order[start : start + size])
            if batching.get("drop_last", False) and len(index) < size:
                continue
            prediction = model_fn({**params, **frozen, **{k: v[index] for k, v in cols.items()}})
            value = criterion(prediction, cols["y"][index])
            optimizer.zero_grad()
            value.backward()
            optimizer.step()
        rows.append([params[k].item() for k in trainable])
    return np.array(rows)


@pytest.mark.parametrize("model_name", list(MODELS))
@pytest.mark.parametrize("batching_name", list(BATCHING))
@pytest.mark.parametrize("loss_name", list(LOSSES))
def test_numpy_torch_and_a_torch_loop_agree(loss_name, batching_name, model_name):
    model, freeze, model_fn = MODELS[model_name]
    loss, batching = LOSSES[loss_name], BATCHING[batching_name]
    runs = {}
    for backend in ("numpy", "torch"):
        outcome, collect, prepared = run_config(fit_config(model, freeze, loss, batching, backend))
        assert outcome.status == ["max_epochs"]
        runs[backend] = (collect.x(), collect.value(), prepared)
    (x_np, v_np, prepared), (x_torch, v_torch, _) = runs["numpy"], runs["torch"]
    trainable = [n for n in "abcd" if n in model and n not in freeze]
    assert list(prepared.names) == trainable
    assert x_np.shape == (16, len(trainable))
    np.testing.assert_allclose(x_np, x_torch, rtol=1e-12, atol=0)
    np.testing.assert_allclose(v_np, v_torch, rtol=1e-12, atol=0)
    frozen = {k: INIT[k] for k in freeze}
    reference = torch_loop(model_fn, trainable, frozen, loss, batching, epochs=15, lr=0.05, seed=7)
    np.testing.assert_allclose(x_torch, reference, rtol=1e-12, atol=0)


@pytest.mark.parametrize(
    "n, batch_size, drop_last, batches",
    [(8, "full", False, 1), (8, 1, False, 8), (8, 3, False, 3), (8, 3, True, 2), (8, 4, False, 2), (8, 4, True, 2),
     (8, 8, True, 1), (8, 10, False, 1), (6, 2, True, 3), (7, 7, True, 1)],
)  # fmt: skip
def test_batches_per_epoch_and_update_count(n, batch_size, drop_last, batches):
    raw = {"fit": {"model": "w*x", "data": {"x": list(range(1, n + 1)), "y": [2.0 * i for i in range(1, n + 1)]},
                   "batch_size": batch_size, "drop_last": drop_last},
           "lr": 0.001, "epochs": 3, "init": {"w": 1.0}}  # fmt: skip
    outcome, collect, prepared = run_config(raw)
    assert prepared.fit.n_batches() == batches
    steps = prepared.problem.batches(0)
    made = 1 if steps is None else len(steps)
    assert made == batches, f"the engine gets {made} batch(es) per epoch, the summary says {batches}: {steps}"
    if steps is not None:
        used = sum(len(range(n)[s]) for s in steps)
        assert used == ((n // batch_size) * batch_size if drop_last else n)
    assert int(outcome.updates[0]) == 3 * batches


# ---------------------------------------------------------------------------- generated data (E5)


def test_e5_data_generation():
    raw = {"fit": {"model": "a*x**2 + b*x + c", "data": {"x": "range(-400, 400) / 400", "y": "2*x**2 - 4*x + 3"},
                   "batch_size": 16, "shuffle": True},
           "lr": 0.25, "epochs": 1, "seed": 0, "init": {"a": -11 / 6, "b": -395 / 3, "c": -2400}}  # fmt: skip
    prepared = prepare(validate(raw))
    fit = prepared.fit
    x = np.arange(-400, 400) / 400
    assert fit.data["x"].dtype == np.float64
    np.testing.assert_array_equal(fit.data["x"], x)
    np.testing.assert_array_equal(fit.data["y"], 2 * x**2 - 4 * x + 3)
    assert fit.n_points == 800 and fit.inputs == ("x",) and prepared.names == ("a", "b", "c")
    assert fit.n_batches() == 50


def test_grid_expressions():
    data = load_data(
        {"t": "linspace(0, 1, 5)", "u": "arange(0, 1.25, 0.25)", "v": "range(0, 10, 2)", "w": "range(3, 8)",
         "y": "t + 2*u - v"}, None)  # fmt: skip
    np.testing.assert_array_equal(data["t"], np.linspace(0, 1, 5))
    np.testing.assert_array_equal(data["u"], np.arange(0, 1.25, 0.25))
    np.testing.assert_array_equal(data["v"], np.arange(0, 10, 2, dtype=float))
    np.testing.assert_array_equal(data["w"], [3.0, 4.0, 5.0, 6.0, 7.0])
    np.testing.assert_array_equal(data["y"], data["t"] + 2 * data["u"] - data["v"])
    assert all(col.dtype == np.float64 for col in data.values())


def test_noise_is_seeded():
    spec = {"x": "linspace(0, 1, 200)", "y": "3*x + 1"}
    clean = 3 * np.linspace(0, 1, 200) + 1

    def noisy(noise, seed=None):
        return load_data({**spec, "noise": noise}, seed)

    first = noisy({"std": 0.1, "column": "y", "seed": 1})
    np.testing.assert_array_equal(first["y"], noisy({"std": 0.1, "column": "y", "seed": 1})["y"])
    np.testing.assert_array_equal(first["x"], np.linspace(0, 1, 200))  # only the named column is noisy
    assert not np.array_equal(first["y"], noisy({"std": 0.1, "column": "y", "seed": 2})["y"])
    assert 0.07 < np.std(first["y"] - clean) < 0.13
    # without its own seed, the noise follows the run's seed
    np.testing.assert_array_equal(noisy({"std": 0.1}, seed=5)["y"], noisy({"std": 0.1}, seed=5)["y"])
    assert not np.array_equal(noisy({"std": 0.1}, seed=5)["y"], noisy({"std": 0.1}, seed=6)["y"])
    # and through a config: the same seed gives the same data and the same fit
    raw = {"fit": {"model": "w*x + b", "data": {**spec, "noise": {"std": 0.1}}}, "seed": 3, "epochs": 5, "lr": 0.1}
    one, two = prepare(validate(raw)).fit.data["y"], prepare(validate(raw)).fit.data["y"]
    np.testing.assert_array_equal(one, two)
    assert not np.array_equal(one, prepare(validate({**raw, "seed": 4})).fit.data["y"])


# ---------------------------------------------------------------------------- CSV data and the CLI forms


def write_csv(path: Path, header: list[str], rows: list[list[float]]) -> Path:
    path.write_text(",".join(header) + "\n" + "".join(",".join(repr(v) for v in r) + "\n" for r in rows))
    return path


def test_csv_columns_by_name(tmp_path):
    rows = [[t, 10 * t, 2.5 * t + 1, 0.0] for t in (0.5, 1.0, 1.5, 2.0, 2.5)]
    csv = write_csv(tmp_path / "points.csv", ["time", "other", "value", "junk"], rows)
    raw = {"fit": {"model": "a*x + c", "data": {"csv": str(csv), "columns": {"x": "time", "y": "value"}}},
           "lr": 0.1, "epochs": 5, "init": {"a": 0.0, "c": 0.0}}  # fmt: skip
    prepared = prepare(validate(raw))
    assert sorted(prepared.fit.data) == ["x", "y"]
    np.testing.assert_array_equal(prepared.fit.data["x"], [r[0] for r in rows])
    np.testing.assert_array_equal(prepared.fit.data["y"], [r[2] for r in rows])
    # the same fit as the same numbers given inline
    inline = {**raw, "fit": {**raw["fit"], "data": {"x": [r[0] for r in rows], "y": [r[2] for r in rows]}}}
    np.testing.assert_array_equal(run_config(raw)[1].x(), run_config(inline)[1].x())


def test_relative_csv_path_resolves_next_to_the_config(gdrun, tmp_path, monkeypatch):
    folder = tmp_path / "experiment"
    folder.mkdir()
    write_csv(folder / "pts.csv", ["t", "v"], [[1.0, 2.0], [2.0, 4.0], [3.0, 6.0], [4.0, 8.0]])
    config = {"fit": {"model": "w*x", "data": {"csv": "pts.csv", "columns": {"x": "t", "y": "v"}}},
              "lr": 0.01, "epochs": 50, "init": {"w": 1.0}}  # fmt: skip
    (folder / "fit.yaml").write_text(yaml.safe_dump(config))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    r = gdrun("run", str(folder / "fit.yaml"), "--quiet")
    assert r.code == 0, r.err
    s = r.record().summary
    assert s["data_points"] == 4 and s["inputs"] == ["x"] and s["target"] == "y"
    assert s["params"]["w"] == pytest.approx(2.0, abs=1e-3)


def test_config_yaml_of_a_relative_csv_fit_reruns(gdrun, tmp_path, monkeypatch):
    """A run's config.yaml repeats the run (gdrun run <run>/config.yaml), also when the data came
    from a CSV path relative to the original config's folder."""
    folder = tmp_path / "experiment"
    folder.mkdir()
    write_csv(folder / "pts.csv", ["t", "v"], [[1.0, 2.0], [2.0, 4.0], [3.0, 6.0]])
    config = {"fit": {"model": "w*x", "data": {"csv": "pts.csv", "columns": {"x": "t", "y": "v"}}},
              "lr": 0.01, "epochs": 20, "init": {"w": 1.0}}  # fmt: skip
    (folder / "fit.yaml").write_text(yaml.safe_dump(config))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    first = gdrun("run", str(folder / "fit.yaml"), "--quiet")
    assert first.code == 0, first.err
    rec = first.record()
    again = gdrun("run", str(rec.path / "config.yaml"), "--runs-dir", str(tmp_path / "again"), "--quiet")
    assert again.code == 0, again.err
    (other,) = (tmp_path / "again").iterdir()
    assert read_run(other).summary["params"] == rec.summary["params"]


def test_inline_cli_fit_matches_the_e4_config(gdrun, tmp_path):
    r = fit_cli(gdrun, tmp_path, "w*x", "--x", "1,2,3", "--y", "2,4,6", "--init", "w=1", "--lr", "0.01",
                "--epochs", "100", "--predict", "4", "--json")  # fmt: skip
    assert r.code == 0, r.err
    s = json.loads(r.out)
    assert s["kind"] == "fit" and s["model"] == "w*x" and s["data_points"] == 3
    assert round(s["params"]["w"], 5) == 1.99994
    assert s["predictions"][0]["before"] == 4.0 and round(s["predictions"][0]["after"], 4) == 7.9998
    assert s["params"]["w"] == e4_batch_w()


def test_inline_cli_extra_column_and_csv_columns(gdrun, tmp_path):
    x, z = X8, Z8
    r = fit_cli(gdrun, tmp_path, "a*x + b*z + c", "--x", ",".join(map(repr, x)), "--col", "z=" + ",".join(map(repr, z)),
                "--y", ",".join(map(repr, Y8)), "--init", "a=0.2,b=-0.5,c=1.3", "--lr", "0.05", "--epochs", "15",
                "--batch-size", "3", "--shuffle", "--seed", "7", "--quiet")  # fmt: skip
    assert r.code == 0, r.err
    s = r.record().summary
    assert s["inputs"] == ["x", "z"] and s["batch_size"] == 3 and s["seed"] == 7
    outcome, _, _ = run_config(fit_config("a*x + b*z + c", [], LOSSES["mse"], BATCHING["shuffled_3"], "numpy"))
    assert [s["params"][k] for k in "abc"] == outcome.x[0].tolist()

    csv = write_csv(tmp_path / "d.csv", ["v", "t"], [[2.0 * t, t] for t in (1.0, 2.0, 3.0)])
    r = fit_cli(gdrun, tmp_path, "w*x", "--data", str(csv), "--columns", "x=t,y=v", "--init", "w=1", "--lr", "0.01",
                "--epochs", "100", "--json")  # fmt: skip
    assert r.code == 0, r.err
    s = json.loads(r.out)
    assert s["inputs"] == ["x"] and s["data_points"] == 3
    assert s["params"]["w"] == e4_batch_w()


# ---------------------------------------------------------------------------- stopping on the full-data loss


def full_mse(w: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.mean((w[:, None] * x[None, :] - y[None, :]) ** 2, axis=1)


def assert_stopped_at_first_row_below(metrics: dict, summary: dict, threshold: float):
    values = metrics["value"]
    assert summary["status"] == "converged"
    assert values[-1] < threshold
    assert (values[:-1] >= threshold).all()  # in particular the previous row
    assert len(values) >= 2 and values[-2] >= threshold
    assert summary["iterations"] == metrics["epoch"][-1]
    assert summary["value"] == values[-1]


def test_loss_below_in_a_config(gdrun, tmp_path):
    config = yaml.safe_load((CONFIGS / "e4_fit_w_batch_gd.yaml").read_text())
    config.update(epochs=1000, stop={"loss_below": 1e-5})
    config.pop("expect", None)  # the seed config's expectations are for its own 100 epochs
    path = tmp_path / "stop.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    r = gdrun("run", str(path), "--quiet")
    assert r.code == 0, r.err
    rec = r.record()
    assert_stopped_at_first_row_below(rec.metrics, rec.summary, 1e-5)
    assert rec.summary["iterations"] < 1000
    x, y = np.array([1.0, 2.0, 3.0]), np.array([2.0, 4.0, 6.0])
    np.testing.assert_allclose(rec.metrics["value"], full_mse(rec.metrics["w"], x, y), rtol=1e-12)


def test_loss_below_flag_judges_the_whole_data_not_a_batch(gdrun, tmp_path):
    # per-sample SGD on noisy data: each row's value is the loss over all points, and the stop rule
    # reads that value, not the loss of the last sample or batch
    xs, ys = [1.0, 2.0, 3.0, 4.0], [2.1, 3.9, 6.2, 7.8]
    x, y = np.array(xs), np.array(ys)
    best = np.sum(x * y) / np.sum(x * x)
    floor = float(full_mse(np.array([best]), x, y)[0])
    threshold = floor * 1.5
    r = fit_cli(gdrun, tmp_path, "w*x", "--x", ",".join(map(repr, xs)), "--y", ",".join(map(repr, ys)),
                "--batch-size", "1", "--init", "w=0", "--lr", "0.005", "--epochs", "500",
                "--loss-below", repr(threshold), "--quiet")  # fmt: skip
    assert r.code == 0, r.err
    rec = r.record()
    m = rec.metrics
    np.testing.assert_allclose(m["value"], full_mse(m["w"], x, y), rtol=1e-12)
    assert_stopped_at_first_row_below(m, rec.summary, threshold)
    # the loss of the last sample alone (what the E5 original tested) fell below it epochs earlier
    last_sample = (m["w"] * xs[-1] - ys[-1]) ** 2
    assert (last_sample[:-2] < threshold).any()
    assert (m["step"] == 4 * m["epoch"]).all()
    assert rec.config["stop"]["value_below"] == threshold


# ---------------------------------------------------------------------------- predictions and R^2


def test_predictions_with_two_inputs_and_r2(gdrun, tmp_path):
    config = {
        "fit": {"model": "a*x + b*z + c", "data": DATA8, "predict": {"x": [1, 2], "z": [3, 4]}},
        "lr": 0.05, "epochs": 200, "init": {"a": 0.2, "b": -0.5, "c": 1.3},
    }  # fmt: skip
    path = tmp_path / "predict.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    r = gdrun("run", str(path), "--json")
    assert r.code == 0, r.err
    s = json.loads(r.out)
    p = s["params"]
    model = lambda q, x, z: q["a"] * x + q["b"] * z + q["c"]  # noqa: E731
    predictions = s["predictions"]
    assert [q["at"] for q in predictions] == [{"x": 1.0, "z": 3.0}, {"x": 2.0, "z": 4.0}]
    for q in predictions:
        x, z = q["at"]["x"], q["at"]["z"]
        assert q["before"] == pytest.approx(model(config["init"], x, z), rel=1e-14)
        assert q["after"] == pytest.approx(model(p, x, z), rel=1e-14)
    x, z, y = (np.array(DATA8[k]) for k in ("x", "z", "y"))
    ss_res = np.sum((model(p, x, z) - y) ** 2)
    ss_tot = np.sum((y - y.mean()) ** 2)
    assert s["r2"] == pytest.approx(1 - ss_res / ss_tot, rel=1e-12)
    assert 0.99 < s["r2"] < 1.0
