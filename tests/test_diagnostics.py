"""Why a run behaved as it did (issue 10): stability bounds checked by running the real optimizer on
both sides of them, theory rates against observed ones, and the verdicts on real runs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gdrun.curvature import Spectrum
from gdrun.diagnostics import (ADAPTIVE, EDGE_TOL, REGIMES, Trace, best_gd, judge, observed_rate, stability_bound,
                               theory_rate)  # fmt: skip
from helpers import run_config

X2 = Spectrum(2.0, 2.0, (2.0,), "exact Hessian")
BOOTH = Spectrum(2.0, 18.0, (2.0, 18.0), "exact Hessian")


def run(function: str, lr: float, epochs: int, every: int = 1, **extra) -> tuple[Trace, str]:
    """A real run's recorded rows as a Trace (every ``every``-th step and the last, as a sweep
    records), and its status."""
    outcome, collect, _ = run_config({"function": function, "lr": lr, "epochs": epochs, "dtype": "float64", **extra})
    blocks = [b for b in collect.blocks if b.last[0] >= 0]
    cat = lambda field: np.concatenate([getattr(b, field)[: b.last[0] + 1] for b in blocks])  # noqa: E731
    steps = np.concatenate([b.steps[: b.last[0] + 1] for b in blocks])
    x, value, grad_norm, lrs = cat("x")[:, 0], cat("value")[:, 0], cat("grad_norm")[:, 0], cat("lr")[:, 0]
    keep = (steps % every == 0) | (np.arange(len(steps)) == len(steps) - 1)
    return Trace(steps[keep], x[keep], value[keep], grad_norm[keep], lrs[keep]), outcome.status[0]


def check_json(verdict) -> None:
    assert verdict.regime in REGIMES
    json.dumps(verdict.facts, allow_nan=False)  # JSON-ready: no nan, no numpy types


# ------------------------------------------------------------------------------------ bounds


BOUND_CASES = [  # options, the bound on lr * (L + weight_decay)
    ({}, 2.0),
    ({"weight_decay": 0.5}, 2.0),
    ({"momentum": 0.9}, 2 * 1.9),
    ({"momentum": 0.5, "dampening": 0.3}, 2 * 1.5 / 0.7),
    ({"momentum": 0.6, "weight_decay": 0.25}, 2 * 1.6),
    ({"momentum": 0.9, "nesterov": True}, 2 * 1.9 / 2.8),
    ({"momentum": 0.3, "nesterov": True}, 2 * 1.3 / 1.6),
]


@pytest.mark.parametrize("options,factor", BOUND_CASES)
def test_each_bound_holds_on_both_sides_in_a_real_run(options, factor):
    L, wd = 3.0, options.get("weight_decay", 0.0)  # f = 1.5 x^2
    bound = stability_bound("sgd", options, L)
    assert bound.largest_stable_lr == pytest.approx(factor / (L + wd), rel=1e-12) and bound.why_none is None
    assert bound.rule.startswith("lr < ")
    # theory: the spectral radius crosses 1 exactly at the bound
    assert theory_rate("sgd", options, bound.largest_stable_lr * (1 - 1e-6), [L]) < 1
    assert theory_rate("sgd", options, bound.largest_stable_lr * (1 + 1e-6), [L]) > 1
    # the real optimizer: bounded just below, growing just above
    ends = {}
    for side in (0.97, 1.03):
        trace, status = run("1.5*x**2", bound.largest_stable_lr * side, 1500, init=[1.0], optimizer_options=options)
        ends[side] = (status, float(np.max(np.abs(trace.x[-50:]))))
    assert ends[0.97][0] == "max_epochs" and ends[0.97][1] < 1e-3, ends
    assert ends[1.03][0] == "diverged" or ends[1.03][1] > 1e3, ends


def test_no_bound_without_positive_curvature_or_for_adaptive_methods():
    assert stability_bound("sgd", {}, None).why_none == "no Hessian at this point"
    for L in (0.0, -2.0):
        none = stability_bound("sgd", {"momentum": 0.9}, L)
        assert none.largest_stable_lr is None and "no positive curvature" in none.why_none
    assert stability_bound("sgd", {"momentum": 1.0}, 2.0).largest_stable_lr is None
    for name in ADAPTIVE:
        none = stability_bound(name, {}, 2.0)
        assert none.largest_stable_lr is None and none.rule == ""
        assert none.why_none.startswith(name) and "no bound follows from lr and the Hessian alone" in none.why_none
        assert theory_rate(name, {}, 0.1, [2.0]) is None


# ------------------------------------------------------------------------------------ rates


@pytest.mark.parametrize("function,lr,options,eigenvalues", [
    ("x**2", 0.1, {}, [2.0]),  # 0.8
    ("x**2", 0.1, {"momentum": 0.25}, [2.0]),  # heavy ball, real roots 0.685 and 0.365
    ("x**2", 0.025, {"momentum": 0.5, "nesterov": True}, [2.0]),  # nesterov, real roots
    ("x**2", 0.1, {"weight_decay": 1.0}, [2.0]),  # |1 - 0.1 (2 + 1)| = 0.7
    ("x**2 + 10*y**2", 2 / 22, {}, [2.0, 20.0]),  # kappa 10 at 2/(L + mu)
])  # fmt: skip
def test_theory_rate_is_the_observed_rate_on_quadratics(function, lr, options, eigenvalues):
    trace, _ = run(function, lr, 120, init=[1.0] * len(eigenvalues), optimizer_options=options)
    rate, first, last = observed_rate(trace)
    assert last > first
    assert rate == pytest.approx(theory_rate("sgd", options, lr, eigenvalues), rel=1e-6)


def test_best_gd_is_kappa_minus_one_over_kappa_plus_one():
    lr, rate = best_gd(2.0, 20.0)
    assert lr == pytest.approx(2 / 22) and rate == pytest.approx(9 / 11)
    assert theory_rate("sgd", {}, lr, [2.0, 20.0]) == pytest.approx(9 / 11)
    assert best_gd(0.0, 2.0) is None and best_gd(-1.0, 2.0) is None and best_gd(None, None) is None


# ------------------------------------------------------------------------------------ verdicts


def e1(lr: float, epochs: int = 10, every: int = 1):
    trace, status = run("x2", lr, epochs, every)
    verdict = judge(trace, status, "sgd", {}, X2, X2)
    check_json(verdict)
    return verdict


def test_e1_four_learning_rates_four_verdicts_with_their_evidence():
    verdicts = {lr: e1(lr) for lr in (1, 0.01, 0.1, 1.05)}
    assert {lr: v.regime for lr, v in verdicts.items()} == {
        1: "oscillating", 0.01: "crawling", 0.1: "converging", 1.05: "diverging"}
    assert verdicts[1].sentence.startswith("oscillating: lr*L = 2.0, each step lands on the mirror point")
    assert verdicts[1].facts["observed_rate"] == pytest.approx(1.0, abs=1e-12) and verdicts[1].facts["alternating"] is True
    crawl = verdicts[0.01]
    assert "each step keeps 98% of the distance" in crawl.sentence and "about 466 more steps" in crawl.sentence
    assert crawl.facts["steps_to_target"] == int(np.ceil(np.log(1e-3 / (2 * 7.5 * 0.98**10)) / np.log(0.98)))
    conv = verdicts[0.1]
    assert "0.8 per step" in conv.sentence and "theory max|1 - lr*lambda| = 0.8" in conv.sentence
    assert conv.facts["observed_rate"] == pytest.approx(0.8) and conv.facts["theory_rate"] == pytest.approx(0.8)
    assert verdicts[1.05].sentence.startswith("diverging: lr*L = 2.1 > 2")
    assert verdicts[1.05].facts["lr_times_lambda_max"] == pytest.approx(2.1) and verdicts[1.05].facts["bound"] == 1.0


def test_a_sweep_like_trace_every_10th_step_gets_the_same_regime():
    for lr, regime in ((1, "oscillating"), (0.01, "crawling"), (0.1, "converging"), (1.05, "diverging")):
        verdict = e1(lr, epochs=200, every=10)
        assert verdict.regime == regime, verdict.sentence
        assert verdict.facts["alternating"] is None  # not measurable on rows 10 steps apart
    assert e1(0.01, epochs=200, every=10).facts["observed_rate"] == pytest.approx(0.98)


def test_booth_on_both_sides_of_its_bound():
    sentences = {}
    for lr, regime in ((0.1, "converging"), (0.11, "oscillating"), (1 / 9, "oscillating"), (0.115, "diverging")):
        trace, status = run("booth", lr, 30)
        verdict = judge(trace, status, "sgd", {}, BOOTH, BOOTH)
        check_json(verdict)
        assert verdict.regime == regime, verdict.sentence
        sentences[lr] = verdict.sentence
    assert stability_bound("sgd", {}, 18.0).largest_stable_lr == pytest.approx(1 / 9)
    # lr = 0.1 = 2/(2 + 18) is the best plain GD can do: both directions shrink by 0.8
    assert "0.8 per step" in sentences[0.1] and "best plain GD can do here is 0.8 at lr = 0.1 (kappa = 9.0)" in sentences[0.1]
    assert "lr*L = 1.98, close to 2" in sentences[0.11] and "keeps 98% of the distance" in sentences[0.11]
    # at the bound the stiff direction flips with the same size; the soft one (0.78 per step) has not
    # died out by step 30, so the steps alternate without being exact mirror images yet
    assert sentences[1 / 9].startswith("oscillating: lr*L = 2.0, successive steps alternate")
    assert sentences[0.115].startswith("diverging: lr*L = 2.07 > 2")


def test_a_stop_rule_that_fired_is_converging_and_says_where():
    trace, status = run("x2", 0.1, 1000, stop={"grad_norm_below": 1e-6})
    assert status == "converged"
    verdict = judge(trace, status, "sgd", {}, X2, X2)
    assert verdict.regime == "converging"
    assert f"a stop rule fired at step {trace.steps[-1]}" in verdict.sentence and "0.8 per step" in verdict.sentence


def test_adaptive_optimizers_have_no_bound_but_a_verdict_from_the_trace():
    trace, status = run("x2", 0.5, 300, optimizer="adam")
    verdict = judge(trace, status, "adam", {}, X2, X2)
    check_json(verdict)
    assert verdict.regime in ("converging", "crawling", "oscillating")
    assert verdict.facts["bound"] is None and verdict.facts["theory_rate"] is None
    assert "no bound follows" in verdict.facts["why_no_bound"]
    # overflowing: the evidence is the trace's, not a bound
    trace, status = run("x2", 1e101, 5, optimizer="adam")
    assert status == "diverged"
    verdict = judge(trace, status, "adam", {}, X2, None)
    assert verdict.regime == "diverging" and "lr*L" not in verdict.sentence, verdict.sentence
    assert f"step {trace.steps[-1]}" in verdict.sentence


def test_undetermined_says_what_is_missing():
    trace, status = run("x2", 0.1, 0)
    verdict = judge(trace, status, "sgd", {}, X2, X2)
    assert verdict.regime == "undetermined" and "no steps" in verdict.sentence
    trace, status = run("ackley", 0.1, 10, init=[0.0, 0.0])  # a cone tip: no gradient at 0
    verdict = judge(trace, status, "sgd", {}, None, None)
    assert verdict.regime == "undetermined" and "not differentiable" in verdict.sentence
    check_json(verdict)
    trace, status = run("x2", 0.1, 10)
    verdict = judge(trace, status, "sgd", {}, None, None)
    assert verdict.regime == "undetermined" and "no Hessian spectrum" in verdict.sentence
    kink = Spectrum(None, None, None, "exact Hessian (not finite)")
    assert "not finite" in judge(trace, status, "sgd", {}, kink, kink).sentence


# ------------------------------------------------------------------------------------ edge of stability

# Zhu et al. 2022's minimal example, 1/4 (x^2 y^2 - 1)^2: from (2, 0.1) the sharpness is 0.03 and
# grows along the path to the minima (valley x y = +-1, sharpness 2 (x^2 + y^2)); at lr = 0.3 it
# stops at 2/lr = 6.67 and hovers there while the value falls with short-term rises.
VALLEY = "0.25*(x**2*y**2-1)**2"


def valley_hessian(p) -> np.ndarray:
    x, y = p
    u = x * x * y * y
    cross = 2 * x**3 * y**3 + 2 * (u - 1) * x * y
    return np.array([[2 * x * x * y**4 + (u - 1) * y * y, cross], [cross, 2 * x**4 * y * y + (u - 1) * x * x]])


def valley(lr: float, epochs: int, every: int = 1):
    trace, status = run(VALLEY, lr, epochs, every, init={"x": 2.0, "y": 0.1})
    spectra = [np.linalg.eigvalsh(valley_hessian(trace.x[i])) for i in (0, -1)]
    start, final = (Spectrum(float(e[0]), float(e[-1]), tuple(map(float, e)), "exact Hessian") for e in spectra)
    samples = np.unique(np.linspace(0, len(trace.steps) - 1, 32).astype(int))
    sharpness = (trace.steps[samples], np.array([np.linalg.eigvalsh(valley_hessian(trace.x[i]))[-1] for i in samples]))
    verdict = judge(trace, status, "sgd", {}, start, final, sharpness=sharpness)
    check_json(verdict)
    return verdict


@pytest.mark.parametrize("every", [1, 10])
def test_edge_of_stability_in_a_real_run(every):
    verdict = valley(0.3, 300, every)
    assert verdict.regime == "edge_of_stability", verdict.sentence
    assert verdict.facts["edge_sharpness"] == pytest.approx(2 / 0.3)
    assert verdict.facts["sharpness_first"] < (1 - EDGE_TOL) * 2 / 0.3  # it rose to the edge
    assert "2/lr = 6.67" in verdict.sentence and verdict.facts["value_final"] < verdict.facts["value_edge_start"]
    if every == 1:
        assert verdict.facts["value_rises"] >= 2


def test_no_edge_of_stability_where_there_is_none():
    # the same valley at a small lr: the sharpness never reaches 2/lr
    assert valley(0.01, 300).regime == "converging"
    # quadratics at and near their bound: the sharpness sits at 2/lr from the start, the value never rises
    for function, lr, spectrum, regime in (("x2", 1.0, X2, "oscillating"), ("booth", 0.11, BOOTH, "oscillating"),
                                           ("x2", 0.1, X2, "converging")):  # fmt: skip
        trace, status = run(function, lr, 60)
        sharpness = (trace.steps[::2], np.full(len(trace.steps[::2]), spectrum.lambda_max))
        assert judge(trace, status, "sgd", {}, spectrum, spectrum, sharpness=sharpness).regime == regime
