"""Every run explains itself: diagnostics in summary.json and the panel, ``gdrun explain``,
``expect: regime/gradient``, sweeps with ``--explain``. The verdicts are computed from each run's
own numbers: the tests pick runs on both sides of each bound."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from gdrun.explain import TAIL_ROWS, PathRecorder, path_from_trace
from tests.helpers import run_config

REPO = Path(__file__).resolve().parents[1]


def _summary(gdrun, *args: str) -> dict:
    r = gdrun("minimize", *args, "--json")
    assert r.code in (0, 3), r.err
    return json.loads(r.out)


@pytest.mark.parametrize(
    "lr, regime",
    [(0.1, "converging"), (0.01, "crawling"), (1.0, "oscillating"), (1.05, "diverging")],
)
@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_e1_four_lrs_four_verdicts(gdrun, lr, regime, backend):
    s = _summary(gdrun, "x2", "--lr", str(lr), "--epochs", "10", "--init", "7.5", "--backend", backend)
    d = s["diagnostics"]
    assert d["regime"] == regime, d["verdict"]
    assert d["verdict"].startswith(regime)
    assert d["largest_stable_lr"] == pytest.approx(1.0, rel=1e-12)  # x^2: L = 2, lr < 2/L
    assert d["lr_times_lambda_max"] == pytest.approx(2 * lr, rel=1e-12)
    assert d["start"]["eigenvalues"] == pytest.approx([2.0]) and d["final"]["lambda_max"] == pytest.approx(2.0)
    assert s["gradient"]["x"] == pytest.approx(2 * s["params"]["x"], rel=1e-12)


def test_e1_evidence_in_the_sentences(gdrun):
    assert "lr*L = 2" in _summary(gdrun, "x2", "--lr", "1", "--epochs", "10")["diagnostics"]["verdict"]
    crawl = _summary(gdrun, "x2", "--lr", "0.01", "--epochs", "10")["diagnostics"]["verdict"]
    assert "98%" in crawl and "steps" in crawl
    assert "2.1" in _summary(gdrun, "x2", "--lr", "1.05", "--epochs", "10")["diagnostics"]["verdict"]


@pytest.mark.parametrize(
    "function, init, bound, eigenvalues",
    [
        ("booth", "1,3", 1 / 9, [2.0, 18.0]),
        ("rosenbrock", "1,1", 0.001997, [0.3994, 1001.6]),
    ],
)
def test_largest_stable_lr_of_known_functions(gdrun, function, init, bound, eigenvalues):
    d = _summary(gdrun, function, "--init", init, "--lr", "1e-4", "--epochs", "2")["diagnostics"]
    assert d["largest_stable_lr"] == pytest.approx(bound, rel=1e-3)
    assert d["start"]["eigenvalues"] == pytest.approx(eigenvalues, rel=1e-4)
    assert d["start"]["condition_number"] == pytest.approx(eigenvalues[1] / eigenvalues[0], rel=1e-3)


def test_booth_on_both_sides_of_its_bound(gdrun):
    below = _summary(gdrun, "booth", "--lr", "0.1", "--epochs", "200")["diagnostics"]
    above = _summary(gdrun, "booth", "--lr", "0.12", "--epochs", "200")["diagnostics"]
    assert below["regime"] in ("converging", "crawling") and above["regime"] == "diverging"
    assert below["lr_times_lambda_max"] < 2 < above["lr_times_lambda_max"]


def test_momentum_bound_is_the_heavy_ball_one(gdrun):
    d = _summary(gdrun, "x2", "--opt", "momentum=0.9", "--lr", "0.5", "--epochs", "50")["diagnostics"]
    assert d["largest_stable_lr"] == pytest.approx(2 * 1.9 / 2)
    assert "momentum" in d["bound"]


def test_adam_says_plainly_there_is_no_bound(gdrun):
    d = _summary(gdrun, "x2", "--optimizer", "adam", "--lr", "0.1", "--epochs", "50")["diagnostics"]
    assert d["largest_stable_lr"] is None and d["no_bound_because"]
    assert d["regime"] in ("converging", "crawling", "oscillating")


def test_fit_diagnostics_are_for_the_trainable_parameters(gdrun):
    r = gdrun("run", str(REPO / "configs" / "e3_linear_fit_frozen_params.yaml"), "--quiet")
    assert r.code == 0, r.err
    s = r.record().summary
    d = s["diagnostics"]
    assert set(s["gradient"]) == {"a", "c"}  # b and d are frozen
    # loss = mean((a x + c + 1 - y)^2) over x = 1..5: H = 2 [[mean x^2, mean x], [mean x, 1]]
    x = np.arange(1.0, 6.0)
    H = 2 * np.array([[np.mean(x * x), np.mean(x)], [np.mean(x), 1.0]])
    assert d["start"]["eigenvalues"] == pytest.approx(np.linalg.eigvalsh(H).tolist(), rel=1e-6)
    assert d["largest_stable_lr"] == pytest.approx(2 / np.linalg.eigvalsh(H)[-1], rel=1e-6)


def test_explain_false_turns_them_off(gdrun):
    s = _summary(gdrun, "x2", "--lr", "0.1", "--set", "explain=false")
    assert "diagnostics" not in s and "gradient" not in s
    bad = gdrun("minimize", "x2", "--set", "explain=maybe")
    assert bad.code == 2 and "explain must be true or false" in bad.err


def test_the_panel_says_why(gdrun):
    r = gdrun("minimize", "x2", "--lr", "1", "--epochs", "4")
    assert r.code == 0
    assert "verdict: oscillating: lr*L = 2" in r.out
    assert "stable lr: below 1, from lr < 2/L" in r.out and "curvature: " in r.out


# ---------------------------------------------------------------------------- gdrun explain


def test_explain_a_run_directory(gdrun):
    run = gdrun("minimize", "x2", "--lr", "0.01", "--epochs", "10", "--quiet")
    run_dir = run.run_dirs()[0]
    r = gdrun("explain", str(run_dir))
    assert r.code == 0, r.err
    assert "verdict: crawling" in r.out and "any lr below 1 is stable here" in r.out
    j = gdrun("explain", str(run_dir), "--json")
    data = json.loads(j.out)
    assert data["diagnostics"]["regime"] == "crawling"
    assert data["diagnostics"]["verdict"] == run.record().summary["diagnostics"]["verdict"]  # the same analysis


def test_explain_a_config_of_a_sweep(gdrun, tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("function: x2\nepochs: 40\ninit: 7.5\n")
    s = gdrun("sweep", str(config), "-p", "lr=0.01,0.1,1,1.05", "--runs-dir", str(tmp_path / "runs"), "-q")
    assert s.code == 0, s.err
    (sweep_dir,) = (tmp_path / "runs").iterdir()
    regimes = []
    for i in range(4):
        r = gdrun("explain", f"{sweep_dir}/{i}", "--json")
        assert r.code == 0, r.err
        regimes.append(json.loads(r.out)["diagnostics"]["regime"])
    assert regimes == ["crawling", "converging", "oscillating", "diverging"]


def test_explain_errors_are_one_line(gdrun, tmp_path):
    r = gdrun("explain", str(tmp_path / "nowhere"))
    assert r.code == 2 and r.err.count("\n") == 1 and "not a run directory" in r.err
    config = tmp_path / "c.yaml"
    config.write_text("function: x2\nepochs: 5\n")
    gdrun("sweep", str(config), "-p", "lr=0.1,0.2", "--runs-dir", str(tmp_path / "runs"), "-q")
    (sweep_dir,) = (tmp_path / "runs").iterdir()
    r = gdrun("explain", str(sweep_dir))
    assert r.code == 2 and "is a sweep: explain one of its configs" in r.err


# ---------------------------------------------------------------------------- expect: regime, gradient


def _check(gdrun, tmp_path, text: str):
    config = tmp_path / "c.yaml"
    config.write_text(text)
    return gdrun("check", str(config), "--runs-dir", str(tmp_path / "runs"), "--json")


def test_expect_regime_passes_and_fails_with_the_verdict(gdrun, tmp_path):
    ok = _check(gdrun, tmp_path, "function: x2\nlr: 1\nepochs: 10\nexpect: {regime: oscillating}\n")
    assert ok.code == 0, ok.out + ok.err
    bad = _check(gdrun, tmp_path, "function: x2\nlr: 1\nepochs: 10\nexpect: {regime: [converging, crawling]}\n")
    assert bad.code == 1
    (failed,) = [e for e in json.loads(bad.out)["configs"][0]["expectations"] if not e["passed"]]
    assert failed["message"].startswith("regime: expected converging or crawling, got oscillating (oscillating: lr*L = 2")


@pytest.mark.parametrize(
    "text, message",
    [
        ("expect: {regime: wobbly}", "expect.regime must be one of converging, crawling"),
        ("expect: {gradient: 3}", "expect.gradient must be a mapping of variable names"),
        ("expect: {gradient: {q: 1}}", "expect.gradient names 'q', which is not a variable"),
        ("explain: false\nexpect: {regime: converging}", "need the diagnostics, which explain: false turns off"),
    ],
)
def test_expect_bad_input(gdrun, tmp_path, text, message):
    r = _check(gdrun, tmp_path, f"function: x2\nlr: 0.1\nepochs: 3\n{text}\n")
    assert r.code == 2, r.out + r.err
    assert message in r.out + r.err


@pytest.mark.parametrize("name", ["e2_autograd_full_graph", "e2_autograd_detached", "e1_x2_lr1.05_diverges"])
def test_the_new_seed_configs_pass(gdrun, tmp_path, name):
    r = gdrun("check", str(REPO / "configs" / f"{name}.yaml"), "--runs-dir", str(tmp_path / "runs"), "--json")
    assert r.code == 0, r.out + r.err


def test_e2_gradients_and_no_path_in_the_summary(gdrun):
    for backend in ("numpy", "torch"):
        full = gdrun("run", str(REPO / "configs" / "e2_autograd_full_graph.yaml"), "--set", f"backend={backend}",
                     "--set", "expect=null", "--json")  # fmt: skip
        detached = gdrun("run", str(REPO / "configs" / "e2_autograd_detached.yaml"), "--set", f"backend={backend}",
                         "--set", "expect=null", "--json")  # fmt: skip
        full, detached = json.loads(full.out), json.loads(detached.out)
        assert full["value"] == detached["value"] == 52.0
        assert full["gradient"] == {"x": 10.0, "y": 37.0} and full["no_gradient_path"] == []
        assert detached["gradient"] == {"x": None, "y": 27.0} and detached["no_gradient_path"] == ["x"]


def test_expect_gradient_none_is_not_zero(gdrun, tmp_path):
    zero = _check(gdrun, tmp_path, "function: 0*x + y**2\ninit: 1\nepochs: 0\nexpect: {gradient: {x: None}}\n")
    assert zero.code == 1
    (failed,) = [e for e in json.loads(zero.out)["configs"][0]["expectations"] if not e["passed"]]
    assert failed["message"] == "gradient.x: expected None (no gradient path), got 0"
    none = _check(gdrun, tmp_path, "function: detach(x) + y**2\ninit: 1\nepochs: 0\nexpect: {gradient: {x: 0}}\n")
    assert none.code == 1
    (failed,) = [e for e in json.loads(none.out)["configs"][0]["expectations"] if not e["passed"]]
    assert "got no path" in failed["message"]


# ---------------------------------------------------------------------------- sweeps


def test_sweep_explain_adds_the_columns_in_one_pass(gdrun, tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("function: x2\nepochs: 30\ninit: 7.5\n")
    r = gdrun("sweep", str(config), "-p", "lr=0.01,0.1,1,1.05", "--explain", "--runs-dir", str(tmp_path / "runs"))
    assert r.code == 0, r.err
    assert "regimes: " in r.out
    (sweep_dir,) = (tmp_path / "runs").iterdir()
    import csv

    rows = list(csv.DictReader((sweep_dir / "results.csv").open()))
    assert [row["regime"] for row in rows] == ["crawling", "converging", "oscillating", "diverging"]
    assert all(float(row["largest_stable_lr"]) == pytest.approx(1.0) for row in rows)
    assert rows[2]["verdict"].startswith("oscillating: lr*L = 2")


def test_sweep_without_explain_has_no_diagnostics(gdrun, tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("function: x2\nepochs: 5\n")
    gdrun("sweep", str(config), "-p", "lr=0.1,0.2", "--runs-dir", str(tmp_path / "runs"), "-q")
    (sweep_dir,) = (tmp_path / "runs").iterdir()
    assert "regime" not in (sweep_dir / "results.csv").read_text().splitlines()[0]


def test_a_sweep_expecting_regimes_explains_itself(gdrun, tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(
        "function: x2\nepochs: 30\ninit: 7.5\nsweep: {params: {lr: [0.1, 0.4, 1.0, 1.2]}}\n"
        "expect:\n  - when: {lr: {below: 1}}\n    regime: converging\n"
        "  - when: {lr: {above: 1}}\n    status: [max_epochs, diverged]\n    regime: diverging\n"
    )
    r = gdrun("check", str(config), "--runs-dir", str(tmp_path / "runs"), "--json")
    assert r.code == 0, r.out + r.err
    grad = tmp_path / "g.yaml"
    grad.write_text("function: x2\nepochs: 3\nsweep: {params: {lr: [0.1, 0.2]}}\nexpect: {gradient: {x: 0}}\n")
    r = gdrun("sweep", str(grad), "--runs-dir", str(tmp_path / "runs2"), "-q")
    assert r.code == 2 and "expect.gradient is checked on single runs" in r.err


# ---------------------------------------------------------------------------- the recorder


def test_path_recorder_keeps_each_runs_own_tail_across_blocks():
    """Runs of one batch that stop in different blocks (and one on a block's last row) keep their
    own last rows, equal to what the engine reported for them."""
    lrs = [1.2, 0.1, 0.3, 1.05]
    outcome, collect, prepared = run_config(
        {"function": "x2", "lr": 0.1, "epochs": 3000, "init": 7.5, "stop": {"grad_norm_below": 1e-6, "diverge_above": 1e6}},
        starts=[[7.5]] * 4, lrs=lrs,
    )  # fmt: skip
    recorder = PathRecorder(4, 3000)
    for block in collect.blocks:
        recorder.on_block(block)
    for b in range(4):
        expected = collect.x(b)
        trace = recorder.trace(b)
        assert np.array_equal(trace.x, expected[-TAIL_ROWS:]), b
        path = recorder.path(b)
        assert path.steps[0] == 0 and np.array_equal(path.x[0], expected[0])
        assert path.steps[-1] <= len(expected) - 1 and np.array_equal(path.x, expected[path.steps])
        values = collect.value(b)
        assert np.array_equal(path.value, values[path.steps])
        # the rises after each sample, up to the next one, as counted from every row the run reported
        picked = path.steps  # rows are steps here: every step is reported
        assert np.array_equal(path.rises, path_from_trace(np.arange(len(values)), expected, values, picked).rises)
    assert len(set(int(outcome.iterations[b]) for b in range(4))) == 4  # they stopped at four different rows


def test_a_slope_without_curvature_is_not_called_stalled(gdrun):
    d = _summary(gdrun, "x + y", "--epochs", "50")["diagnostics"]
    assert d["regime"] == "crawling" and "value keeps falling" in d["verdict"] and "no curvature" in d["verdict"]
    assert d["largest_stable_lr"] is None and "no positive curvature" in d["no_bound_because"]


def test_edge_of_stability_is_seen_over_the_whole_path(gdrun):
    """GD on 0.25 (x^2 y^2 - 1)^2 from (2, 0.1) at lr 0.3: the sharpness rises to 2/lr and hovers
    there while the value falls with short-term rises (Cohen et al. 2021); the run keeps only its
    last rows, so the rises come from the path's own count."""
    args = ("0.25*(x**2*y**2 - 1)**2", "--init", "x=2,y=0.1", "--lr", "0.3", "--epochs", "300")
    d = _summary(gdrun, *args)["diagnostics"]
    assert d["regime"] == "edge_of_stability", d["verdict"]
    assert d["facts"]["edge_sharpness"] == pytest.approx(2 / 0.3) and d["facts"]["value_rises"] >= 2
    sharp = d["sharpness"]["lambda_max"]
    assert sharp[0] < 0.9 * 2 / 0.3 and abs(sharp[-1] - 2 / 0.3) < 0.05 * 2 / 0.3
    r = gdrun("minimize", *args, "--quiet")
    explained = json.loads(gdrun("explain", str(r.run_dirs()[-1]), "--json").out)["diagnostics"]
    assert explained["regime"] == "edge_of_stability" and explained["verdict"] == d["verdict"]
    assert _summary(gdrun, *args[:-4], "--lr", "0.01", "--epochs", "300")["diagnostics"]["regime"] != "edge_of_stability"


def test_a_failure_of_the_diagnostics_never_fails_the_run(gdrun, monkeypatch):
    """The recorder runs inside the engine loop: if it breaks, the run still ends as it would have,
    and its diagnostics say why they are missing."""
    from gdrun import explain

    def broken(self, block):
        raise IndexError("a bug")

    monkeypatch.setattr(explain.PathRecorder, "_keep", broken)
    s = _summary(gdrun, "x2", "--lr", "0.1", "--epochs", "10")
    assert s["status"] == "max_epochs" and s["params"]["x"] == pytest.approx(0.8053, abs=5e-5)
    assert s["diagnostics"] == {"regime": "undetermined",
                                "verdict": "undetermined: the diagnostics could not record the run (IndexError: a bug)"}
