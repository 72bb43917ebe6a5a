"""Expectations in configs (expect:) and `gdrun check`: schema, tolerances, conditions, the table,
JSON and JUnit outputs, exit codes, and `gdrun run` honouring expect:."""

from __future__ import annotations

import json
import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from gdrun.check import load_config
from gdrun.expect import applicable, evaluate, matches, printed_tolerance, validate_expect
from gdrun.config import to_yaml, validate
from gdrun.errors import GdrunError

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data" / "check"
PASS, FAIL, ERROR = DATA / "pass", DATA / "fail", DATA / "error"


def check(gdrun, tmp_path, *args: str):
    return gdrun("check", *args, "--runs-dir", str(tmp_path / "runs"))


def summary(**values) -> dict:
    return {"status": "max_epochs", "iterations": 10, "params": {}, "value": 0.0, **values}


# ---------------------------------------------------------------------------- tolerances


@pytest.mark.parametrize(
    "text, tolerance",
    [("0.8053", 5e-5), ("7.5", 0.05), ("2.0000", 5e-5), ("1.99994", 5e-6), ("10", 0.5), ("-4.0025", 5e-5),
     ("4.1e-6", 5e-8), ("1.0e-12", 5e-13), ("1.5e+3", 50.0), (".25", 0.005), ("0.0000", 5e-5)],
)  # fmt: skip
def test_printed_tolerance_is_half_a_unit_of_the_last_written_decimal(text, tolerance):
    assert printed_tolerance(text) == pytest.approx(tolerance, rel=1e-12)


@pytest.mark.parametrize(
    "got, passed",
    [(0.80534, True), (0.8053, True), (0.80526, True), (0.80535, True), (0.80524, False), (0.80536, False),
     (float("nan"), False), ("inf", False), (None, False)],
)  # fmt: skip
def test_default_tolerance_is_to_the_printed_decimals(got, passed):
    # 0.8053 means "rounds to 0.8053": within 5e-5 (the boundary included); 0.80526 rounds to 0.8053 too
    rules = applicable(validate_expect({"params": {"x": 0.8053}}), {})
    results = {r.expectation: r for r in evaluate(rules, summary(params={"x": got}))}
    assert results["params.x"].passed is passed
    assert results["params.x"].atol == 5e-5 and results["params.x"].rtol == 0.0


def test_the_yaml_text_keeps_trailing_zeros(tmp_path):
    # "2.0000" loads as the float 2.0, whose repr has one decimal; the written text has four
    path = tmp_path / "w.yaml"
    path.write_text("function: x2\nexpect:\n  params: {x: 2.0000}\n  value: 4.1e-6\n  r2: 1.0\n")
    raw = load_config(path)
    expect = validate_expect(raw["expect"])
    assert expect["params"]["x"] == {"value": 2.0, "atol": 5e-5}
    assert expect["value"] == {"value": 4.1e-6, "atol": pytest.approx(5e-8, rel=1e-12)}  # PyYAML: "4.1e-6" is a string
    assert expect["r2"] == {"value": 1.0, "atol": 0.05}
    # a plain dict has no written text: repr of the float gives the decimals
    assert validate_expect({"params": {"x": 2.0000}})["params"]["x"] == {"value": 2.0, "atol": 0.05}


def test_own_tolerances_win_over_the_rules_and_the_rules_over_the_printed_decimals():
    expect = validate_expect({
        "atol": 1e-3,
        "params": {"x": 0.8053, "y": {"value": 1.5, "rtol": 1e-6}, "z": {"value": 0.5, "atol": 0}},
        "value": "1e-3",
    })  # fmt: skip
    assert expect["params"] == {"x": {"value": 0.8053, "atol": 1e-3}, "y": {"value": 1.5, "rtol": 1e-6},
                                "z": {"value": 0.5, "atol": 0.0}}  # fmt: skip
    assert expect["value"] == {"value": 1e-3, "atol": 1e-3}
    results = {r.expectation: r for r in evaluate([expect], summary(params={"x": 0.8062, "y": 1.5000016, "z": 0.5}))}
    assert results["params.x"].passed and not results["params.y"].passed and results["params.z"].passed
    exact = evaluate([expect], summary(params={"x": 0.8, "y": 1.5, "z": 0.5 + 1e-16}))
    assert [r.passed for r in exact if r.expectation == "params.z"] == [False]  # atol 0: exactly


def test_canonical_form_round_trips_through_config_yaml():
    config = validate({"function": "x2", "expect": {"status": ["converged", "max_epochs"], "atol": 1e-4,
                       "params": {"x": 0.8053}, "loss": 0.5, "steps_at_most": 10.0}})  # fmt: skip
    assert config.expect == {"status": ["converged", "max_epochs"], "params": {"x": {"value": 0.8053, "atol": 1e-4}},
                             "value": {"value": 0.5, "atol": 1e-4}, "steps_at_most": 10}  # fmt: skip
    again = validate(yaml.safe_load(to_yaml(config)))
    assert again == config
    assert validate_expect(config.expect) == config.expect


# ---------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "expect, needles",
    [
        ({"staus": "converged"}, ["unknown expectation 'expect.staus'", "did you mean 'status'"]),
        ({"status": "convergd"}, ["expect.status", "converged"]),
        ({"status": []}, ["expect.status"]),
        ({"params": {"x": "abc"}}, ["expect.params.x", "number"]),
        ({"params": {"x": {"value": 1, "tol": 1}}}, ["expect.params.x.tol", "did you mean"]),
        ({"params": {"x": {"atol": 1}}}, ["expect.params.x", "needs a value"]),
        ({"params": {"x": 1, "y": float("nan")}}, ["expect.params.y", "finite"]),
        ({"params": [1, 2]}, ["expect.params", "mapping"]),
        ({"params": {"x": 1}, "atol": -1}, ["expect.atol", "negative"]),
        ({"params": {"x": {"value": 1, "rtol": "big"}}}, ["expect.params.x.rtol", "number"]),
        ({"steps_at_most": -1}, ["expect.steps_at_most", "whole number"]),
        ({"steps_at_least": 2.5}, ["expect.steps_at_least", "whole number"]),
        ({"steps_at_least": 10, "steps_at_most": 5}, ["steps_at_least", "above steps_at_most"]),
        ({"value": 1, "loss": 1}, ["expect.value or expect.loss"]),
        ({"atol": 1e-3}, ["expect expects nothing"]),
        ({}, ["expect expects nothing"]),
        ([], ["expect must not be an empty list"]),
        ("converged", ["expect must be a mapping"]),
        ({"predictions": 7.9998}, ["expect.predictions", "list"]),
        ([{"status": "converged"}, {"when": {"lrr": {"below": 1}}, "status": "diverged"}],
         ["expect[1].when", "'lrr'", "did you mean 'lr'"]),
        ([{"when": {"lr": {"smaller": 1}}, "status": "diverged"}], ["expect[0].when.lr.smaller", "below"]),
        ([{"when": {"lr": {"below": "x"}}, "status": "diverged"}], ["expect[0].when.lr.below", "number"]),
        ([{"when": {"optimizer": {"in": "sgd"}}, "status": "diverged"}], ["expect[0].when.optimizer.in", "list"]),
    ],
)  # fmt: skip
def test_bad_expectations_are_one_line_errors_naming_the_key(expect, needles):
    with pytest.raises(GdrunError) as info:
        validate({"function": "x2", "expect": expect})
    message = str(info.value)
    assert "\n" not in message and info.value.exit_code == 2
    for needle in needles:
        assert needle in message, message


# ---------------------------------------------------------------------------- conditions (for sweeps)

SWEEP_RULES = [
    {"when": {"lr": {"below": 0.5}}, "status": "converged"},
    {"when": {"lr": {"above": 1}, "optimizer": "sgd"}, "status": "diverged"},
    {"when": {"stop.grad_norm_below": {"at_most": 1e-6}, "backend": {"in": ["numpy", "torch"]}}, "steps_at_most": 50},
    {"status": ["converged", "max_epochs", "diverged"]},  # no when: every config
]


def values(**changes) -> dict:
    return {"lr": 0.1, "optimizer": "sgd", "backend": "numpy", "stop": {"grad_norm_below": None}, **changes}


@pytest.mark.parametrize(
    "config, rules",
    [
        (values(lr=0.1), [0, 3]),
        (values(lr=0.5), [3]),  # below is strict
        (values(lr=0.7), [3]),
        (values(lr=2.0), [1, 3]),
        (values(lr=2.0, optimizer="adam"), [3]),
        (values(lr=2, stop={"grad_norm_below": 1e-6}), [1, 2, 3]),
        (values(lr=0.01, stop={"grad_norm_below": 1e-3}), [0, 3]),
        (values(lr=0.01, backend="jax", stop={"grad_norm_below": 1e-8}), [0, 3]),
        ({"lr": "1e-3"}, [0, 3]),  # numbers given as text compare as numbers
        ({}, [3]),  # a missing key meets no condition
    ],
)  # fmt: skip
def test_rules_apply_where_their_conditions_hold_on_plain_dicts(config, rules):
    expect = validate_expect(SWEEP_RULES)
    assert applicable(expect, config) == [expect[i] for i in rules]


def test_matches_conditions():
    assert matches({"lr": 0.1}, {"lr": 0.1}) and not matches({"lr": 0.1}, {"lr": 0.2})
    assert matches({"lr": {"at_least": 0.1, "at_most": 0.1}}, {"lr": 0.1})
    assert matches({"seed": None}, {"seed": None}) and matches({"seed": None}, {})
    assert matches({"optimizer_options.momentum": {"above": 0.5}}, {"optimizer_options": {"momentum": 0.9}})
    assert not matches({"optimizer_options.momentum": {"above": 0.5}}, {"optimizer_options": {}})
    assert matches({"init": [1, 2]}, {"init": [1.0, 2.0]}) and not matches({"init": [1, 2]}, {"init": [1.0]})
    assert matches({"name": {"in": ["a", "b"]}}, {"name": "b"}) and not matches({"name": "1"}, {"name": "1.0"})
    assert matches(None, {"lr": 1})


def test_several_rules_for_one_config_are_all_checked(gdrun, tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({
        "function": "x2", "lr": 0.1, "epochs": 10, "init": 7.5,
        "expect": [{"when": {"lr": {"below": 0.5}}, "params": {"x": 0.8053}},
                   {"when": {"lr": {"above": 0.5}}, "status": "diverged"},
                   {"steps_at_most": 10}],
    }))  # fmt: skip
    r = check(gdrun, tmp_path, str(path), "--json")
    assert r.code == 0, r.out + r.err
    (config,) = json.loads(r.out)["configs"]
    # rules 1 and 3 apply; neither names a status, so the run must end converged or max_epochs
    assert [e["expectation"] for e in config["expectations"]] == ["status", "params.x (rule 1)", "steps_at_most (rule 3)"]
    # with lr 1.5, rules 2 and 3 apply: x <- -2x diverges past the threshold, as expected
    r = gdrun("run", str(path), "--set", "lr=1.5", "--set", "stop.diverge_above=1e3", "--json")
    assert r.code == 0, r.err
    assert [e["expectation"] for e in json.loads(r.out)["expect"]] == ["status (rule 2)", "steps_at_most (rule 3)"]
    r = gdrun("run", str(path), "--set", "lr=1.5", "--set", "stop.diverge_above=1e300", "-q")
    assert r.code == 1 and "status (rule 2): expected diverged, got max_epochs" in r.err


# ---------------------------------------------------------------------------- gdrun check


def test_check_passes_on_good_configs_and_skips_those_without_expect(gdrun, tmp_path):
    r = check(gdrun, tmp_path, str(PASS))
    assert r.code == 0, r.out + r.err
    lines = r.out.splitlines()
    assert lines[0].split() == ["config", "expectation", "expected", "got", "result", "time"]
    assert "x2_lr0.1.yaml" in r.out and "params.x" in r.out and "0.8053 ± 5e-05" in r.out
    assert "FAIL" not in r.out and "ERROR" not in r.out
    assert "no_expect" not in r.out.replace("no expect:", "")  # skipped configs are counted, not listed
    assert re.search(r"4 configs checked: 4 passed, 0 failed, 0 errors; \d+/\d+ expectations held; "
                     r"1 skipped \(nothing to check\)", lines[-1]), lines[-1]  # fmt: skip
    assert not any(ch in r.out for ch in "│╭─\x1b")  # plain text when stdout is not a terminal
    assert len(list((tmp_path / "runs").iterdir())) == 4  # one run directory per checked config


def test_expected_divergence_passes(gdrun, tmp_path):
    r = check(gdrun, tmp_path, str(PASS / "x2_diverges_as_expected.yaml"), "--json")
    assert r.code == 0, r.out
    (config,) = json.loads(r.out)["configs"]
    assert config["status"] == "diverged" and config["outcome"] == "passed"
    assert config["expectations"][0] == {"expectation": "status", "expected": ["diverged"], "got": "diverged",
                                         "passed": True, "message": "status: expected diverged, got diverged"}  # fmt: skip


def test_a_wrong_expectation_fails_with_exit_1(gdrun, tmp_path):
    r = check(gdrun, tmp_path, str(FAIL / "x2_wrong_value.yaml"))
    assert r.code == 1, r.out + r.err
    assert "FAIL" in r.out
    assert "params.x: expected 0.9 ± 0.05, got 0.805306368 (off by 0.0947)" in r.out
    assert "1 config checked: 0 passed, 1 failed, 0 errors; 2/3 expectations held" in r.out


def test_without_status_a_run_must_not_diverge(gdrun, tmp_path):
    r = check(gdrun, tmp_path, str(FAIL / "x2_unexpected_divergence.yaml"))
    assert r.code == 1
    assert "status: expected converged or max_epochs, got diverged (|value| = " in r.out


def test_a_bad_config_is_an_error_of_its_own_and_the_others_still_run(gdrun, tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    for path in [*ERROR.glob("*.yaml"), PASS / "x2_lr0.1.yaml", FAIL / "x2_wrong_value.yaml"]:
        shutil.copy(path, folder / path.name)
    (folder / "broken.yml").write_text("function: x2\nlr: [oops\n")
    r = check(gdrun, tmp_path, str(folder), "--json")
    assert r.code == 2, r.out + r.err
    report = json.loads(r.out)
    outcomes = {Path(c["config"]).name: c["outcome"] for c in report["configs"]}
    assert outcomes == {"broken.yml": "error", "unknown_expectation.yaml": "error", "unknown_param.yaml": "error",
                        "x2_lr0.1.yaml": "passed", "x2_wrong_value.yaml": "failed"}  # fmt: skip
    errors = {Path(c["config"]).name: c["error"] for c in report["configs"] if c["error"]}
    assert errors["unknown_param.yaml"] == "expect.params names 'y', which is not a parameter; parameters: x"
    assert "expect.staus" in errors["unknown_expectation.yaml"] and "line 3" in errors["broken.yml"]
    assert all("\n" not in e for e in errors.values())
    assert report["exit_code"] == 2 and report["passed"] is False
    assert len(list((tmp_path / "runs").iterdir())) == 2  # configs with bad input leave no run directory
    table = check(gdrun, tmp_path, str(folder))
    assert table.code == 2
    assert "ERROR " + (folder / "unknown_param.yaml").as_posix() + ": expect.params names 'y'" in table.out


def test_bad_paths_are_bad_input(gdrun, tmp_path):
    r = check(gdrun, tmp_path, str(tmp_path / "nope"))
    assert r.code == 2 and "no such file or folder" in r.err and "\n" not in r.err.strip()
    (tmp_path / "empty").mkdir()
    r = check(gdrun, tmp_path, str(tmp_path / "empty"))
    assert r.code == 2 and "no config files" in r.err


def test_k_selects_configs_by_path_any_case(gdrun, tmp_path):
    r = check(gdrun, tmp_path, str(DATA), "-k", "X2_LR0.1", "--json")
    assert r.code == 0, r.out + r.err
    report = json.loads(r.out)
    assert [Path(c["config"]).name for c in report["configs"]] == ["x2_lr0.1.yaml"]
    assert report["counts"]["deselected"] == len(list(DATA.rglob("*.yaml"))) - 1
    r = check(gdrun, tmp_path, str(DATA), "-k", "lr0.1", "-k", "wrong", "--json")
    assert r.code == 1
    assert sorted(Path(c["config"]).name for c in json.loads(r.out)["configs"]) == ["x2_lr0.1.yaml", "x2_wrong_value.yaml"]
    r = check(gdrun, tmp_path, str(DATA), "-k", "nothing-like-this")
    assert r.code == 2 and "selects none" in r.err


def test_json_shape(gdrun, tmp_path):
    r = check(gdrun, tmp_path, str(PASS), str(FAIL / "x2_wrong_value.yaml"), "--json")
    assert r.code == 1
    report = json.loads(r.out)
    assert set(report) == {"passed", "exit_code", "interrupted", "counts", "time_s", "configs"}
    assert report["passed"] is False and report["exit_code"] == 1 and report["interrupted"] is False
    assert report["counts"] == {"configs": 6, "passed": 4, "failed": 1, "errors": 0, "skipped": 1, "interrupted": 0,
                                "not_run": 0, "deselected": 0, "expectations": 18, "expectations_failed": 1}  # fmt: skip
    by_name = {Path(c["config"]).name: c for c in report["configs"]}
    assert set(by_name["x2_lr0.1.yaml"]) == {"config", "name", "outcome", "time_s", "status", "reason", "error",
                                             "run_dir", "expectations"}  # fmt: skip
    assert by_name["no_expect.yaml"]["outcome"] == "skipped" and by_name["no_expect.yaml"]["expectations"] == []
    wrong = by_name["x2_wrong_value.yaml"]
    assert wrong["outcome"] == "failed" and Path(wrong["run_dir"]).is_dir()
    (x,) = [e for e in wrong["expectations"] if e["expectation"] == "params.x"]
    assert x["expected"] == 0.9 and x["atol"] == 0.05 and x["rtol"] == 0.0 and x["passed"] is False
    assert x["got"] == pytest.approx(0.8053063680000001, rel=1e-15)
    fit = by_name["fit_w_predictions.yaml"]
    assert [e["expectation"] for e in fit["expectations"]] == ["status", "params.w", "value", "r2", "predictions[x=4]"]


# ---------------------------------------------------------------------------- JUnit XML

# The Jenkins xunit plugin's junit-10.xsd (the schema CI readers accept), as data: for each element,
# the child elements and attributes it may have and the attributes it must have.
JUNIT_10 = {
    "testsuites": ({"testsuite"}, {"name", "time", "tests", "failures", "errors"}, set()),
    "testsuite": ({"testsuite", "properties", "testcase", "system-out", "system-err"},
                  {"name", "tests", "failures", "errors", "group", "time", "skipped", "timestamp", "hostname", "id",
                   "package", "file", "log", "url"}, {"name", "tests", "failures", "errors"}),
    "properties": ({"property"}, set(), set()),
    "property": (set(), {"name", "value"}, {"name", "value"}),
    "testcase": ({"skipped", "error", "failure", "rerunFailure", "rerunError", "flakyFailure", "flakyError",
                  "system-out", "system-err"}, {"name", "time", "classname", "group"}, {"name"}),
    "failure": (set(), {"type", "message"}, set()),
    "error": (set(), {"type", "message"}, set()),
    "skipped": (set(), {"type", "message"}, set()),
}  # fmt: skip
SUREFIRE_TIME = re.compile(r"(([0-9]{0,3},)*[0-9]{3}|[0-9]{0,3})*(\.[0-9]*)?")


def assert_valid_junit(root: ET.Element) -> None:
    """Validate against junit-10.xsd (structure, attributes, the time pattern), plus the counts."""
    assert root.tag in ("testsuites", "testsuite")
    for element in root.iter():
        assert element.tag in JUNIT_10, element.tag
        children, allowed, required = JUNIT_10[element.tag]
        assert {c.tag for c in element} <= children, (element.tag, [c.tag for c in element])
        assert set(element.attrib) <= allowed, (element.tag, element.attrib)
        assert required <= set(element.attrib), (element.tag, element.attrib)
        if element.tag in ("testsuites", "testsuite") and "time" in element.attrib:
            assert SUREFIRE_TIME.fullmatch(element.get("time")), element.get("time")
    for suite in root.iter("testsuite"):
        cases = suite.findall("testcase")
        assert int(suite.get("tests")) == len(cases)
        assert int(suite.get("failures")) == sum(c.find("failure") is not None for c in cases)
        assert int(suite.get("errors")) == sum(c.find("error") is not None for c in cases)
        assert int(suite.get("skipped")) == sum(c.find("skipped") is not None for c in cases)
        assert all(c.get("classname") for c in cases)
        float(suite.get("time"))
    if root.tag == "testsuites":
        for key in ("tests", "failures", "errors"):
            assert int(root.get(key)) == sum(int(s.get(key)) for s in root.findall("testsuite"))


def test_junit_xml_names_expected_and_got_and_validates(gdrun, tmp_path):
    report = tmp_path / "out" / "report.xml"
    folder = tmp_path / "cfgs"
    folder.mkdir()
    for path in [FAIL / "x2_wrong_value.yaml", PASS / "x2_lr0.1.yaml", PASS / "no_expect.yaml", ERROR / "unknown_param.yaml"]:
        shutil.copy(path, folder / path.name)
    r = check(gdrun, tmp_path, str(folder), "--junit", str(report))
    assert r.code == 2  # an error outranks a failure
    root = ET.parse(report).getroot()
    assert_valid_junit(root)
    assert root.tag == "testsuites" and root.get("name") == "gdrun check"
    suites = {Path(s.get("name")).name: s for s in root.findall("testsuite")}
    assert set(suites) == {"x2_wrong_value.yaml", "x2_lr0.1.yaml", "no_expect.yaml", "unknown_param.yaml"}
    wrong = suites["x2_wrong_value.yaml"]
    assert (wrong.get("tests"), wrong.get("failures"), wrong.get("errors"), wrong.get("skipped")) == ("3", "1", "0", "0")
    cases = {c.get("name"): c for c in wrong.findall("testcase")}
    assert set(cases) == {"status", "params.x", "steps_at_least"}  # one testcase per expectation
    assert all(c.get("classname") == wrong.get("name") for c in cases.values())
    failure = cases["params.x"].find("failure")
    assert failure.get("message") == "params.x: expected 0.9 ± 0.05, got 0.805306368 (off by 0.0947)"
    assert "expected 0.9" in failure.text and "got 0.805306368" in failure.text
    assert cases["status"].find("failure") is None
    error = suites["unknown_param.yaml"].find("testcase/error")
    assert error.get("message") == "expect.params names 'y', which is not a parameter; parameters: x"
    assert suites["unknown_param.yaml"].get("errors") == "1"
    assert suites["no_expect.yaml"].find("testcase/skipped") is not None
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("9", "1", "1")


def test_junit_xml_of_a_passing_check(gdrun, tmp_path):
    report = tmp_path / "report.xml"
    r = check(gdrun, tmp_path, str(PASS / "fit_w_predictions.yaml"), "--junit", str(report))
    assert r.code == 0
    root = ET.fromstring(report.read_text(encoding="utf-8"))
    assert_valid_junit(root)
    (suite,) = root.findall("testsuite")
    assert suite.get("failures") == "0" and suite.get("tests") == "5"
    properties = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert properties["status"] == "max_epochs" and Path(properties["run_dir"]).is_dir()


# ---------------------------------------------------------------------------- gdrun run with expect:


@pytest.mark.parametrize(
    "path, code",
    [(PASS / "x2_lr0.1.yaml", 0), (PASS / "x2_diverges_as_expected.yaml", 0), (PASS / "fit_w_predictions.yaml", 0),
     (FAIL / "x2_wrong_value.yaml", 1), (FAIL / "x2_unexpected_divergence.yaml", 1), (ERROR / "unknown_param.yaml", 2),
     (ERROR / "unknown_expectation.yaml", 2), (PASS / "no_expect.yaml", 0)],
    ids=lambda v: v.stem if isinstance(v, Path) else str(v),
)  # fmt: skip
def test_run_honours_expect(gdrun, path, code):
    r = gdrun("run", str(path))
    assert r.code == code, r.out + r.err
    if code == 2:
        assert r.run_dirs() == [] and "\n" not in r.err.strip()
    elif path.stem != "no_expect":
        assert ("FAIL expect" in r.out) is (code == 1)
        assert "pass expect status" in r.out or "FAIL expect status" in r.out


def test_run_json_and_quiet_with_expect(gdrun):
    r = gdrun("run", str(FAIL / "x2_wrong_value.yaml"), "--json")
    assert r.code == 1
    printed = json.loads(r.out)  # one JSON document: the summary, plus the expectations
    assert printed["status"] == "max_epochs" and printed["params"]["x"] == r.record().summary["params"]["x"]
    assert [(e["expectation"], e["passed"]) for e in printed["expect"]] == [
        ("status", True), ("params.x", False), ("steps_at_least", True)]  # fmt: skip
    r = gdrun("run", str(FAIL / "x2_wrong_value.yaml"), "-q")
    assert r.code == 1 and r.out == ""
    assert r.err.strip() == "gdrun: expectation failed: params.x: expected 0.9 ± 0.05, got 0.805306368 (off by 0.0947)"


def test_run_without_expectations_keeps_its_status_exit_code(gdrun):
    # --set expect=null drops the expectations: a divergence is exit 3 again
    r = gdrun("run", str(PASS / "x2_diverges_as_expected.yaml"), "--set", "expect=null", "-q")
    assert r.code == 3
    r = gdrun("run", str(FAIL / "x2_wrong_value.yaml"), "--set", "expect=null", "-q")
    assert r.code == 0


def test_the_run_directory_records_the_canonical_expectations(gdrun, tmp_path):
    first = gdrun("run", str(PASS / "x2_lr0.1.yaml"), "-q")
    assert first.code == 0
    saved = first.record().config["expect"]
    assert saved == {"status": "max_epochs", "params": {"x": {"value": 0.8053, "atol": 5e-05}},
                     "steps_at_least": 10, "steps_at_most": 10}  # fmt: skip
    again = gdrun("run", str(first.run_dirs()[0] / "config.yaml"), "--runs-dir", str(tmp_path / "again"), "-q")
    assert again.code == 0


# ---------------------------------------------------------------------------- folders


def test_default_folder_is_configs_and_the_runs_folder_is_not_searched(gdrun, tmp_path, monkeypatch):
    (tmp_path / "configs" / "sub").mkdir(parents=True)
    (tmp_path / "configs" / ".hidden").mkdir()
    shutil.copy(PASS / "x2_lr0.1.yaml", tmp_path / "configs" / "sub" / "a.yml")
    shutil.copy(FAIL / "x2_wrong_value.yaml", tmp_path / "configs" / ".hidden" / "b.yaml")
    (tmp_path / "configs" / "notes.txt").write_text("not a config")
    monkeypatch.chdir(tmp_path)
    r = gdrun("check", "--json", "--runs-dir", "configs/runs")
    assert r.code == 0, r.out + r.err
    assert [c["config"] for c in json.loads(r.out)["configs"]] == ["configs/sub/a.yml"]
    again = gdrun("check", "--json", "--runs-dir", "configs/runs")  # the run's config.yaml is a record, not a check
    assert [c["config"] for c in json.loads(again.out)["configs"]] == ["configs/sub/a.yml"]


# ---------------------------------------------------------------------------- the seed experiments


def test_every_seed_config_carries_expectations_and_they_hold(gdrun, tmp_path):
    """The project's own CI check: `gdrun check configs/`, every seed experiment to the printed decimals."""
    r = check(gdrun, tmp_path, str(REPO / "configs"), "--json")
    report = json.loads(r.out)
    failed = [e["message"] for c in report["configs"] for e in c["expectations"] if not e["passed"]]
    assert r.code == 0, (failed, [c["error"] for c in report["configs"] if c["error"]])
    assert report["counts"]["skipped"] == 0 and report["counts"]["configs"] == len(list((REPO / "configs").glob("*.yaml")))
    got = {Path(c["config"]).stem: {e["expectation"]: e for e in c["expectations"]} for c in report["configs"]}
    # a few of seed-experiments.md's numbers, checked to the printed decimals
    assert got["e1_x2_lr0.1_converges"]["params.x"]["expected"] == 0.8053
    assert got["e1_x2_lr0.1_converges"]["params.x"]["atol"] == 5e-5
    assert got["e3_linear_fit_frozen_params"]["params.a"]["expected"] == 1.5
    assert got["e3_linear_fit_frozen_params"]["params.a"]["atol"] == 5e-5  # 1.5000: four decimals
    assert got["e3_linear_fit_frozen_params"]["params.b"]["atol"] == 0  # frozen: exactly
    assert got["e4_fit_w_batch_gd"]["params.w"]["atol"] == 5e-6
    assert got["e4_fit_w_batch_gd"]["predictions[x=4]"]["expected"] == 7.9998
    assert got["e5_parabola_per_sample_stops_on_full_data_loss"]["status"]["got"] == "converged"
    assert got["e5_parabola_per_sample_stops_on_full_data_loss"]["params.a"]["expected"] == 2.0018
