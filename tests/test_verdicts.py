"""Honest verdicts: overflow in the run's dtype, start points outside the domain, constant and
non-ASCII expressions, and the seed a shuffled fit draws (issue 9, items 1, 6, 7 and 9)."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import pytest

from gdrun.runs import read_run
from gdrun.sweeps import SweepOptions, read_results, run_sweep, validate_sweep


def _one_line_error(r, *needles: str) -> None:
    assert r.code == 2, (r.code, r.out, r.err)
    lines = r.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gdrun: error: "), r.err
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert "Traceback" not in r.err + r.out
    assert r.run_dirs() == []  # nothing written for bad input


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_a_float32_run_that_overflows_is_diverged_not_converged(gdrun, backend):
    r = gdrun("minimize", "x2", "--lr", "1.05", "--epochs", "20000", "--dtype", "float32", "--backend", backend, "--quiet")
    assert r.code == 3
    rec = r.record()
    s = rec.summary
    assert s["status"] == "diverged" and "overflowed float32" in s["reason"], s["reason"]
    # it stops at the first step whose value is inf in float32, not hundreds of steps later
    step = s["iterations"]
    assert rec.metrics["value"][-1] == np.inf and np.all(np.isfinite(rec.metrics["value"][:-1]))
    assert f"step {step}" in s["reason"] and 400 < step < 500
    assert np.isfinite(rec.metrics["x"]).all()


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_a_float32_gradient_that_overflows_is_diverged(gdrun, backend):
    # the value (1e15) is finite; its derivative -1e-10/x**2 is not, in float32 (x**2 underflows)
    r = gdrun("minimize", "1e-10/x", "--init", "1e-25", "--dtype", "float32", "--backend", backend, "--quiet")
    assert r.code == 3
    s = r.record().summary
    assert s["status"] == "diverged" and s["iterations"] == 0
    assert "gradient is infinite in float32 at step 0" in s["reason"], s["reason"]


def test_a_float32_gradient_norm_is_not_mistaken_for_a_kink(gdrun):
    # each component (1e20) is finite in float32, their squares are not: the norm is taken in float64
    r = gdrun("minimize", "1e20*x + 1e20*y", "--dtype", "float32", "--epochs", "3", "--lr", "1e-30", "--quiet")
    assert r.code == 0
    s = r.record().summary
    assert s["status"] == "max_epochs" and s["grad_norm"] == pytest.approx(np.sqrt(2) * 1e20, rel=1e-6)


def test_a_nan_gradient_at_a_finite_point_is_still_a_kink(gdrun):
    r = gdrun("minimize", "ackley", "--init", "0", "--dtype", "float32", "--quiet")
    s = r.record().summary
    assert r.code == 0 and s["status"] == "converged" and "not differentiable" in s["reason"]


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_a_start_point_that_overflows_is_bad_input(gdrun, backend):
    r = gdrun("minimize", "exp(x)", "--init", "800", "--dtype", "float32", "--epochs", "5", "--backend", backend)
    _one_line_error(r, "start point x = 800", "float32", "exp(x)", "inf")


def test_a_start_point_outside_the_domain_is_bad_input(gdrun):
    r = gdrun("minimize", "log(x)", "--init", "-1")
    _one_line_error(r, "the start point x = -1 is outside the domain of log(x) (its value there is nan)")
    r = gdrun("minimize", "x - log(x) + y**2", "--init", "x=2,y=2", "--quiet")  # a good one still runs
    assert r.code == 0


def test_a_fit_start_point_outside_the_domain_is_bad_input(gdrun, tmp_path):
    r = gdrun("fit", "log(a*x)", "--x", "1,2,3", "--y", "0,1,2", "--init", "a=-1", "--runs-dir", str(tmp_path / "runs"))
    _one_line_error(r, "the start point a = -1 is outside the domain of the model log(a*x) (its loss there is nan)")


def test_in_a_sweep_a_bad_start_point_is_that_config_s_verdict(tmp_path):
    spec = validate_sweep({"params": {"init": [2.0, -1.0, 3.0]}})
    summary, code = run_sweep({"function": "x - log(x)", "epochs": 20, "lr": 0.1}, spec, SweepOptions(runs_dir=tmp_path))
    rows = sorted(read_results(Path(summary["sweep_dir"])), key=lambda r: int(r["id"]))
    assert [r["status"] for r in rows] == ["max_epochs", "diverged", "max_epochs"]
    assert rows[1]["steps"] == "0"
    assert "the start point x = -1 is outside the domain of the function (its value there is nan)" in rows[1]["reason"]
    assert code == 0


@pytest.mark.parametrize("text", ["x**٢", "x + ٣*y", "x² + 1"])
def test_non_ascii_digits_are_rejected_in_one_line(gdrun, text):
    r = gdrun("minimize", text)
    _one_line_error(r, "unexpected character", "ASCII")


@pytest.mark.parametrize("text", ["x-x", "0*x", "y/y", "x - x + 1"])
def test_constant_expressions_run_on_numpy_as_on_torch(gdrun, text):
    results = []
    for backend in ("numpy", "torch"):
        r = gdrun("minimize", text, "--backend", backend, "--epochs", "5", "--json")
        assert r.code == 0, r.err
        results.append(json.loads(r.out))
    numpy_run, torch_run = results
    assert numpy_run["status"] == torch_run["status"] == "max_epochs"
    assert numpy_run["value"] == torch_run["value"] and numpy_run["params"] == torch_run["params"]


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_a_sum_of_a_thousand_squares_runs_and_fast(gdrun, backend):
    text = " + ".join(f"x{i}**2" for i in range(1, 1001))
    started = time.perf_counter()
    r = gdrun("minimize", text, "--init", "1", "--lr", "0.1", "--epochs", "50", "--backend", backend, "--json")
    assert time.perf_counter() - started < 30  # sympy's derivation included (a few seconds)
    assert r.code == 0, r.err
    s = json.loads(r.out)
    assert s["status"] == "max_epochs" and len(s["params"]) == 1000
    assert s["params"]["x1"] == s["params"]["x1000"] == pytest.approx(0.8**50, rel=1e-12)
    assert s["value"] == pytest.approx(1000 * 0.8**100, rel=1e-12)


def test_a_long_chain_keeps_its_meaning():
    from gdrun.expr import constant_value, parse

    rng = np.random.default_rng(0)
    for ops, n in (("+-", 1000), ("*/", 90)):  # a long sum is balanced; a product stays as written
        values = rng.uniform(1, 2, n).round(3)
        signs = rng.choice(list(ops), n - 1)
        text = str(values[0]) + "".join(f" {o} {v}" for o, v in zip(signs, values[1:]))
        want = values[0]
        for o, v in zip(signs, values[1:]):
            want = {"+": want + v, "-": want - v, "*": want * v, "/": want / v}[o]
        assert constant_value(parse(text).tree, text) == pytest.approx(want, rel=1e-12)


def test_the_derivatives_of_a_long_product_take_seconds_not_minutes(gdrun):
    text = "*".join(f"x{i}" for i in range(1, 100))  # 99 factors: sympy.diff alone took 11 s
    started = time.perf_counter()
    r = gdrun("minimize", text, "--init", "1", "--epochs", "3", "--json")
    assert r.code == 0, r.err
    assert time.perf_counter() - started < 15
    assert json.loads(r.out)["grad_norm"] is not None


def test_shuffle_without_seed_records_the_seed_it_drew(gdrun, tmp_path):
    args = ["fit", "a*x + b", "--x", "1,2,3,4,5,6", "--y", "3,5,7,9,11,13", "--batch-size", "2", "--shuffle",
            "--epochs", "3", "--lr", "0.01", "--quiet"]  # fmt: skip
    first = gdrun(*args, "--runs-dir", str(tmp_path / "one"))
    (run_dir,) = (tmp_path / "one").iterdir()
    s = read_run(run_dir).summary
    assert first.code == 0 and isinstance(s["seed"], int)
    again = gdrun(*args, "--seed", str(s["seed"]), "--runs-dir", str(tmp_path / "two"))
    assert again.code == 0
    (again_dir,) = (tmp_path / "two").iterdir()
    assert read_run(again_dir).summary["params"] == s["params"]  # the recorded seed reproduces the run
    config = (run_dir / "config.yaml").read_text()
    assert f"seed: {s['seed']}" in config


def test_a_run_directory_of_a_diverged_float32_run_reads_back(gdrun):
    r = gdrun("minimize", "1 - exp(x)", "--init", "80", "--dtype", "float32", "--epochs", "5", "--quiet")
    assert r.code == 3
    rec = read_run(r.run_dirs()[0])
    assert rec.summary["status"] == "diverged" and "value overflowed float32 at step 1" in rec.summary["reason"]


def test_a_function_of_a_constant_runs_on_torch(gdrun):
    """tanh(2) is a number, not a tensor: folded once, it runs on both backends alike."""
    results = [gdrun("minimize", "x**2 + tanh(2)", "--backend", backend, "--epochs", "3", "--json") for backend in ("numpy", "torch")]
    assert [r.code for r in results] == [0, 0], [r.err for r in results]
    values = [json.loads(r.out)["value"] for r in results]
    assert values[0] == values[1] == pytest.approx(0.98 ** 6 + math.tanh(2), rel=1e-12)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("function", ["x**2", "tanh(x)"])  # tanh stays finite at inf: the point itself must fit
def test_a_start_beyond_float32_is_one_line_without_a_warning(gdrun, backend, function):
    result = gdrun("minimize", function, "--backend", backend, "--dtype", "float32", "--init", "1e300")
    assert result.code == 2 and result.err.count("\n") == 1, result.err
    assert "the start point x = 1e+300" in result.err and "float32" in result.err, result.err
    assert not result.runs_dir.exists()


def test_the_printed_formula_parses_back_at_every_accepted_depth():
    from gdrun.expr import format_tree, parse

    for text in ("-" * 60 + "x", "-(-x)", "x - -y", "2*-x", "(-x)**2", "-x**2"):
        tree = parse(text).tree
        assert parse(format_tree(tree)).tree == tree, text
