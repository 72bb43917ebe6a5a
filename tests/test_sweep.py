"""Sweeps: declaring, batching, results equal to runs one by one, failures, resume."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from helpers import run_config

from gdrun.errors import GdrunError
from gdrun.sweeps import (
    SweepOptions, expand, make_batches, open_config, parse_param_flag, read_results, run_sweep, validate_sweep,
    validate_configs,
)  # fmt: skip


def test_grid_is_the_cartesian_product_last_key_fastest():
    spec = validate_sweep({"params": {"lr": [0.1, 0.2], "init": [1, 2, 3]}})
    assert expand(spec).as_list() == [{"lr": a, "init": b} for a in (0.1, 0.2) for b in (1, 2, 3)]


def test_zip_aligns_lists_and_checks_lengths():
    spec = validate_sweep({"kind": "zip", "params": {"lr": [0.1, 0.2], "init": [1, 2]}})
    assert expand(spec).as_list() == [{"lr": 0.1, "init": 1}, {"lr": 0.2, "init": 2}]
    with pytest.raises(GdrunError, match="one length"):
        validate_sweep({"kind": "zip", "params": {"lr": [0.1, 0.2], "init": [1]}})


def test_random_is_seeded_and_uses_its_distributions():
    raw = {"kind": "random", "n": 500, "seed": 3,
           "params": {"lr": {"loguniform": [1e-4, 1]}, "init": {"uniform": [-5, 5]}, "optimizer": ["sgd", "adam"]}}  # fmt: skip
    first, again = expand(validate_sweep(raw)).as_list(), expand(validate_sweep(raw)).as_list()
    assert first == again and len(first) == 500
    lrs = np.array([c["lr"] for c in first])
    assert lrs.min() >= 1e-4 and lrs.max() <= 1 and np.median(np.log10(lrs)) == pytest.approx(-2, abs=0.4)
    assert {c["optimizer"] for c in first} == {"sgd", "adam"}
    assert all(-5 <= c["init"] <= 5 for c in first)
    assert expand(validate_sweep({**raw, "seed": 4})).as_list() != first


def test_range_helpers():
    spec = validate_sweep({"params": {"lr": {"logspace": [-3, 0, 4]}, "init": {"range": [-2, 3]},
                                      "epochs": {"linspace": [10, 20, 3]}}})  # fmt: skip
    values = expand(spec).as_list()
    assert sorted({c["lr"] for c in values}) == pytest.approx([1e-3, 1e-2, 1e-1, 1.0])
    assert sorted({c["init"] for c in values}) == [-2, -1, 0, 1, 2]
    assert sorted({c["epochs"] for c in values}) == [10.0, 15.0, 20.0]


def test_param_flags():
    assert parse_param_flag("lr=0.001,0.01,0.1") == ("lr", [0.001, 0.01, 0.1])
    assert parse_param_flag("lr=logspace(-4,0,5)") == ("lr", {"logspace": [-4.0, 0.0, 5.0]})
    assert parse_param_flag("optimizer=sgd,adam") == ("optimizer", ["sgd", "adam"])
    assert parse_param_flag("optimizer_options.betas=[0.9,0.99],[0.8,0.9]") == ("optimizer_options.betas", [[0.9, 0.99], [0.8, 0.9]])
    for bad, needle in [("lr", "KEY=VALUES"), ("lrr=1,2", "did you mean 'lr'"), ("lr=linspace(a,b,c)", "numbers")]:
        with pytest.raises(GdrunError, match=needle):
            parse_param_flag(bad)


@pytest.mark.parametrize(
    "raw,needle",
    [
        ({"params": {"lr": [0.1]}, "knd": "grid"}, "did you mean 'kind'"),
        ({"kind": "grd", "params": {"lr": [0.1]}}, "did you mean 'grid'"),
        ({"params": {}}, "at least one"),
        ({"kind": "random", "params": {"lr": [0.1]}}, "sweep.n"),
        ({"params": {"lr": []}}, "empty"),
        ({"params": {"lrr": [0.1]}}, "did you mean 'lr'"),
        ({"params": {"lr": {"linspace": [0, 1]}}}, "start, stop, count"),
        ({"kind": "random", "n": 3, "params": {"lr": {"loguniform": [0, 1]}}}, "positive low"),
        ({"params": {"lr": [0.1]}, "record_every": 0}, "record_every"),
    ],
)
def test_bad_declarations(raw, needle):
    with pytest.raises(GdrunError, match=needle) as info:
        validate_sweep(raw)
    assert "\n" not in str(info.value)


def test_an_invalid_expanded_config_is_named_before_anything_runs(tmp_path):
    spec = validate_sweep({"params": {"lr": [0.1, -1.0]}})
    with pytest.raises(GdrunError, match=r"sweep config 1 \(lr=-1.0\): lr must be positive"):
        run_sweep({"function": "x2"}, spec, SweepOptions(runs_dir=tmp_path))
    assert list(tmp_path.iterdir()) == []


def test_numbers_share_a_batch_structure_does_not():
    base = {"function": "rosenbrock", "epochs": 10}
    spec = validate_sweep({"params": {"optimizer": ["sgd", "adam"], "lr": [0.001, 0.01], "init": [0.5, -1]}})
    swept = validate_configs(base, spec)
    jobs = make_batches(swept, np.arange(swept.size), 10, 2, None)
    assert sorted(len(j.ids) for j in jobs) == [4, 4]  # one batch per optimizer, lr and init per run


def _results(path: Path) -> list[dict[str, str]]:
    return sorted(read_results(path), key=lambda r: int(r["id"]))


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_batched_results_equal_runs_one_by_one(tmp_path, backend):
    base = {"function": "rosenbrock", "backend": backend, "optimizer": "adam", "epochs": 200, "init": [-1.2, 1.0]}
    spec = validate_sweep({"params": {"lr": [0.001, 0.01, 0.05], "optimizer_options.betas": [[0.9, 0.999], [0.8, 0.99]],
                                      "init": [[-1.2, 1.0], [0.5, 0.5]]}, "record_every": 7})  # fmt: skip
    summary, code = run_sweep(base, spec, SweepOptions(runs_dir=tmp_path))
    assert code == 0 and summary["batches"] == 1
    sweep_dir = Path(summary["sweep_dir"])
    rows = _results(sweep_dir)
    assert len(rows) == 12
    for row, (overrides, config) in zip(rows, list(validate_configs(base, spec).items())):
        raw = {**base, "lr": config.lr, "init": list(config.init), "optimizer_options": dict(config.optimizer_options)}
        alone, collect, _ = run_config(raw)
        assert row["status"] == alone.status[0]
        # per-run option arrays (betas here) compute as a lone run's Python floats do: bit for bit
        np.testing.assert_array_equal([float(row["param.x1"]), float(row["param.x2"])], alone.x[0])
        assert float(row["value"]) == alone.value[0]
        # the compact metrics hold every 7th step and the last, equal to the single run's rows
        record = open_config(sweep_dir, int(row["id"]))
        steps = record.metrics["step"].astype(int)
        assert steps.tolist() == sorted(set(range(0, 201, 7)) | {200})
        np.testing.assert_array_equal(record.metrics["x1"], collect.x()[steps, 0])
        np.testing.assert_array_equal(record.metrics["value"], collect.value()[steps])


def test_each_config_keeps_its_own_status(tmp_path):
    spec = validate_sweep({"params": {"lr": [0.1, 0.5, 1.5, 3.0]}})
    summary, code = run_sweep({"function": "x2", "epochs": 2000, "stop": {"grad_norm_below": 1e-8}}, spec,
                              SweepOptions(runs_dir=tmp_path))  # fmt: skip
    rows = _results(Path(summary["sweep_dir"]))
    assert [r["status"] for r in rows] == ["converged", "converged", "diverged", "diverged"]
    assert code == 0  # diverging is a result, not a failure
    assert summary["counts"]["diverged"] == 2 and summary["counts"]["converged"] == 2
    assert int(rows[2]["steps"]) < int(rows[3]["steps"]) + 200  # each stopped on its own


def test_fit_sweeps_batch_too(tmp_path):
    base = {"fit": {"model": "a*x + b", "data": {"x": [1, 2, 3, 4], "y": [3, 5, 7, 9]}, "batch_size": 2,
                    "shuffle": True}, "seed": 1, "epochs": 50, "init": {"a": 0, "b": 0}}  # fmt: skip
    spec = validate_sweep({"params": {"lr": [0.01, 0.05], "init": [{"a": 0, "b": 0}, {"a": 1, "b": 1}]}})
    summary, code = run_sweep(base, spec, SweepOptions(runs_dir=tmp_path))
    assert summary["batches"] == 1
    for row in _results(Path(summary["sweep_dir"])):
        overrides = expand(spec).as_list()[int(row["id"])]
        alone, _, _ = run_config({**base, **overrides})
        assert float(row["param.a"]) == alone.x[0, 0] and float(row["param.b"]) == alone.x[0, 1]
        assert int(row["updates"]) == 100


def test_failed_batches_fail_fast_and_max_failures(tmp_path, monkeypatch):
    import gdrun.sweeps as sweep

    def run(self, jobs, interrupt, sink=None, preparer=None):  # every adam batch breaks, the others run
        for job in jobs:
            if job.config.optimizer == "adam":
                yield sweep.failed_result(job, RuntimeError("broken batch"))
            else:
                yield sweep.run_batch(job, interrupt, sink)

    monkeypatch.setattr(sweep.LocalExecutor, "run", run)
    spec = validate_sweep({"params": {"optimizer": ["adam", "sgd"], "lr": [0.01, 0.1]}})
    summary, code = run_sweep({"function": "x2", "epochs": 5}, spec, SweepOptions(runs_dir=tmp_path / "a"))
    assert code == 4 and summary["counts"]["failed"] == 2 and summary["counts"]["max_epochs"] == 2
    rows = _results(Path(summary["sweep_dir"]))
    assert {r["status"] for r in rows if r["optimizer"] == "adam"} == {"failed"}
    assert "broken batch" in rows[0]["reason"]
    summary, code = run_sweep({"function": "x2", "epochs": 5}, spec, SweepOptions(runs_dir=tmp_path / "b", fail_fast=True))
    assert summary["status"] == "stopped" and len(read_results(Path(summary["sweep_dir"]))) == 2
    summary, code = run_sweep({"function": "x2", "epochs": 5}, spec, SweepOptions(runs_dir=tmp_path / "c", max_failures=5))
    assert summary["status"] == "completed" and code == 4


def test_resume_runs_only_what_did_not_finish_and_refuses_a_changed_declaration(tmp_path):
    base = {"function": "x2", "epochs": 50}
    spec = validate_sweep({"params": {"lr": [0.01, 0.1, 0.2, 0.3]}})
    summary, _ = run_sweep(base, spec, SweepOptions(runs_dir=tmp_path))
    sweep_dir = Path(summary["sweep_dir"])
    complete = _results(sweep_dir)
    # forget two configs, as if the sweep had been killed before they finished
    with open(sweep_dir / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    with open(sweep_dir / "results.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, rows[0].keys())
        writer.writeheader()
        writer.writerows([rows[0], {**rows[2], "status": "interrupted"}])
    with open(sweep_dir / "metrics.f64", "ab") as f:
        f.write(b"\x00" * 13)  # a record cut short by the kill
    again, code = run_sweep(base, spec, SweepOptions(runs_dir=tmp_path, resume=str(sweep_dir)))
    assert code == 0 and again["resumed"] == 1
    resumed = _results(sweep_dir)
    assert [r["id"] for r in resumed] == ["0", "1", "2", "3"]
    strip = lambda rows: [{k: v for k, v in r.items() if k not in ("batch", "batch_time_s")} for r in rows]  # noqa: E731
    assert strip(resumed) == strip(complete)
    assert open_config(sweep_dir, 2).metrics["step"].tolist() == [0, 10, 20, 30, 40, 50]
    # by name
    again, _ = run_sweep({**base, "name": "named"}, spec, SweepOptions(runs_dir=tmp_path / "n"))
    run_sweep({**base, "name": "named"}, spec, SweepOptions(runs_dir=tmp_path / "n", resume="named"))
    changed = validate_sweep({"params": {"lr": [0.01, 0.1, 0.2, 0.4]}})
    with pytest.raises(GdrunError, match="declaration changed"):
        run_sweep(base, changed, SweepOptions(runs_dir=tmp_path, resume=str(sweep_dir)))


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_a_batch_of_learning_rates_and_starts_is_bit_for_bit_the_runs_one_by_one(tmp_path, backend):
    base = {"function": "(1-x)**2 + 100*(y-x**2)**2", "backend": backend, "optimizer": "sgd",
            "optimizer_options": {"momentum": 0.9}, "epochs": 300}  # fmt: skip
    spec = validate_sweep({"params": {"lr": [1e-4, 5e-4, 1e-3], "init": [[-1.2, 1.0], [0.3, -0.4]]}})
    summary, _ = run_sweep(base, spec, SweepOptions(runs_dir=tmp_path))
    for row, overrides in zip(_results(Path(summary["sweep_dir"])), expand(spec).as_list()):
        alone, _, _ = run_config({**base, **overrides})
        assert [float(row["param.x"]), float(row["param.y"])] == alone.x[0].tolist()
        assert float(row["value"]) == alone.value[0]
