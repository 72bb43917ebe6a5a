"""Bad data and bad models for ``gdrun fit`` and fit configs, through the real CLI entry point.

Each must: exit with code 2, print exactly one line on stderr starting with "gdrun: error:" that
names the problem, print no traceback (and nothing on stdout), and leave no run directory behind.
"""

from __future__ import annotations

import pytest
import yaml

GOOD = ["--x", "1,2,3", "--y", "2,4,6"]

CSV_FILES = {
    "good.csv": "time,value\n1,2\n2,4\n3,6\n",
    "bad_cell.csv": "time,value\n1,2\n2,abc\n3,6\n",
    "nan.csv": "time,value\n1,2\n2,nan\n3,6\n",
    "ragged.csv": "time,value\n1,2\n2\n3,6\n",
    "header_only.csv": "time,value\n",
}

INLINE = {"x": [1, 2, 3], "y": [2, 4, 6]}


def cli(gdrun, *args: str):
    """Run the CLI; an exception escaping ``main`` (a traceback for the user) fails the test."""
    try:
        return gdrun(*args)
    except Exception as exc:  # noqa: BLE001 - anything but SystemExit is a bug here
        escaped = f"{type(exc).__name__}: {str(exc)[:200]}"
    pytest.fail(f"gdrun {' '.join(args)[:80]!r} raised {escaped} (the user gets a traceback)", pytrace=False)


def assert_bad_input(result, *needles: str) -> str:
    everything = result.out + result.err
    assert "Traceback" not in everything, f"traceback printed:\n{everything}"
    assert result.code == 2, f"exit code {result.code!r}, expected 2; stderr: {result.err!r}"
    lines = result.err.splitlines()
    assert len(lines) == 1 and result.err.endswith("\n"), f"stderr is not exactly one line: {result.err!r}"
    line = lines[0]
    assert line.startswith("gdrun: error: "), line
    for needle in needles:
        assert needle.lower() in line.lower(), f"{needle!r} not named in {line!r}"
    assert result.out == "", f"stdout not empty: {result.out!r}"
    leftovers = sorted(p.name for p in result.runs_dir.rglob("*")) if result.runs_dir.exists() else []
    assert not result.runs_dir.exists(), f"runs directory created on bad input: {leftovers}"
    return line


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """tmp_path as the working directory, with the CSV files in it."""
    for name, text in CSV_FILES.items():
        (tmp_path / name).write_text(text)
    monkeypatch.chdir(tmp_path)
    return tmp_path


# ---------------------------------------------------------------------------- gdrun fit ...

FIT_CASES = [
    # (arguments after "fit", words the message must contain)
    pytest.param(["w*x", "--data", "nope.csv"], ["not found", "nope.csv"], id="missing-csv"),
    pytest.param(["w*x", "--data", "good.csv", "--columns", "x=tme,y=value"], ["'tme'", "did you mean 'time'"],
                 id="missing-column"),
    pytest.param(["w*x", "--data", "bad_cell.csv", "--columns", "x=time,y=value"], ["line 3", "'value'", "abc"],
                 id="non-numeric-cell"),
    pytest.param(["w*x", "--data", "nan.csv", "--columns", "x=time,y=value"], ["'y'", "nan"], id="nan-in-csv"),
    pytest.param(["w*x", "--x", "1,nan,3", "--y", "2,4,6"], ["'x'", "nan"], id="nan-inline"),
    pytest.param(["w*x", "--data", "ragged.csv", "--columns", "x=time,y=value"], ["ragged.csv", "line 3", "cells"],
                 id="ragged-rows"),
    pytest.param(["w*x", "--data", "header_only.csv", "--columns", "x=time,y=value"], ["header_only.csv", "no rows"],
                 id="header-only"),
    pytest.param(["w*x", "--x", "", "--y", ""], ["empty"], id="empty-inline"),
    pytest.param(["w*x", "--x", "1,2,3", "--y", "2,4"], ["differ in length", "x=3", "y=2"], id="lengths-differ"),
    pytest.param(["w*x", "--x", "1,2,3", "--y", "2,four,6"], ["'y'", "four"], id="non-numeric-inline"),
    pytest.param(["w*x", *GOOD, "--loss", "hubr"], ["hubr", "did you mean 'huber'"], id="unknown-loss"),
    pytest.param(["w*x", *GOOD, "--batch-size", "0"], ["batch_size", "0"], id="batch-size-0"),
    pytest.param(["w*x", *GOOD, "--batch-size", "abc"], ["batch_size", "abc"], id="batch-size-abc"),
    pytest.param(["w*x", *GOOD, "--batch-size", "5", "--drop-last"], ["batch_size 5", "drop_last", "3 points"],
                 id="drop-last-leaves-nothing"),
    pytest.param(["w*x", *GOOD, "--freeze", "x", "--init", "w=1"], ["freeze", "'x'", "not a parameter"],
                 id="freeze-an-input"),
    pytest.param(["w*x + b", *GOOD, "--freeze", "bb", "--init", "w=1,b=0"], ["'bb'", "did you mean 'b'"],
                 id="freeze-a-typo"),
    pytest.param(["w*x", *GOOD, "--freeze", "w", "--init", "w=1"], ["freeze", "every parameter"], id="freeze-all"),
    pytest.param(["x", *GOOD], ["no parameters", "data column"], id="model-all-data"),
    pytest.param(["2*x + z", "--x", "1,2,3", "--col", "z=0,0,0", "--y", "2,4,6"], ["no parameters"],
                 id="model-all-data-two-inputs"),
    pytest.param(["w*x", *GOOD, "--target", "t"], ["target", "'t'", "columns: x, y"], id="target-missing"),
    pytest.param(["w*x + y", *GOOD], ["target", "'y'"], id="model-uses-target"),
    pytest.param(["w*x", "--x", "1,2,3", "--columns", "x=t"], ["--columns", "--data"], id="columns-without-data"),
    pytest.param(["w*x + b", *GOOD, "--freeze", "b"], ["frozen", "init"], id="frozen-no-init"),
    pytest.param(["w*x + b", *GOOD, "--freeze", "b", "--init", "w=1"], ["frozen parameter b", "init"],
                 id="frozen-missing-from-init"),
    pytest.param(["w*x", *GOOD, "--col", "z"], ["--col", "NAME="], id="col-without-values"),
    pytest.param(["w*x"], ["needs data"], id="no-data"),
]  # fmt: skip


@pytest.mark.parametrize("args, needles", FIT_CASES)
def test_bad_fit_command(gdrun, workdir, args, needles):
    result = cli(gdrun, "fit", *args, "--runs-dir", str(workdir / "runs"))
    assert_bad_input(result, *needles)


# ---------------------------------------------------------------------------- gdrun run config.yaml

CONFIG_CASES = [
    pytest.param({"fit": {"model": "w*x", "data": {"x": "linspace(0, 1, 5)", "y": "2*x + q"}}},
                 ["fit.data.y", "'q'", "not a column"], id="expression-undefined-column"),
    pytest.param({"fit": {"model": "w*x", "data": {"y": "2*x", "x": "linspace(0, 1, 5)"}}},
                 ["fit.data.y", "'x'", "defined before"], id="expression-column-defined-later"),
    pytest.param({"fit": {"model": "w*x", "data": {"x": "range(1.5, 3)", "y": "2*x"}}},
                 ["range()", "whole numbers"], id="range-fraction"),
    pytest.param({"fit": {"model": "w*x", "data": {"x": "linspace(0, 1, 2.5)", "y": "2*x"}}},
                 ["linspace", "2.5"], id="linspace-fraction"),
    pytest.param({"fit": {"model": "w*x", "data": {"x": "linspace(0, 1, 5)", "y": "2*x",
                                                       "noise": {"std": 0.1, "colum": "y"}}}},
                 ["noise.colum"], id="noise-unknown-key"),
    pytest.param({"fit": {"model": "w*x", "data": INLINE, "loss": "msee"}}, ["msee", "did you mean 'mse'"],
                 id="unknown-loss"),
    pytest.param({"fit": {"model": "w*x", "data": INLINE, "batch_size": 0}}, ["batch_size", "0"], id="batch-size-0"),
    pytest.param({"fit": {"model": "w*x", "data": INLINE, "batch_size": "abc"}}, ["batch_size", "abc"],
                 id="batch-size-abc"),
    pytest.param({"fit": {"model": "w*x", "data": INLINE, "huber_delta": 0}}, ["huber_delta", "0"],
                 id="huber-delta-0"),
    pytest.param({"fit": {"model": "w*x", "data": INLINE, "los": "mse"}}, ["fit.los", "did you mean 'loss'"],
                 id="unknown-fit-key"),
    pytest.param({"function": "x2", "fit": {"model": "w*x", "data": INLINE}}, ["function", "fit", "not both"],
                 id="fit-and-function"),
    pytest.param({"lr": 0.1}, ["function", "fit", "neither"], id="neither"),
    pytest.param({"fit": {"model": "w*x", "data": INLINE, "predict": {"q": [1]}}}, ["predict", "'q'", "not an input"],
                 id="predict-unknown-input"),
    pytest.param({"fit": {"model": "a*x + b*z", "data": {"x": [1, 2], "z": [3, 4], "y": [1, 2]},
                          "predict": {"x": [1]}}}, ["predict", "z"], id="predict-missing-input"),
    pytest.param({"fit": {"model": "a*x + b*z", "data": {"x": [1, 2], "z": [3, 4], "y": [1, 2]}, "predict": [1]}},
                 ["predict", "x", "z"], id="predict-list-with-two-inputs"),
    pytest.param({"fit": {"model": "a*x + b", "data": INLINE, "freeze": ["b"]}, "init": {"a": 1}},
                 ["frozen parameter b", "init"], id="frozen-missing-from-init"),
    pytest.param({"fit": {"model": "a*x + b", "data": INLINE, "freeze": ["c"]}, "init": {"a": 1, "b": 0}},
                 ["freeze", "'c'", "not a parameter"], id="freeze-non-parameter"),
    pytest.param({"fit": {"model": "w*x", "data": {"csv": "good.csv", "columns": {"x": "time", "y": "valu"}}}},
                 ["'valu'", "did you mean 'value'"], id="csv-column-typo"),
    pytest.param({"fit": {"model": "w*x", "data": "missing.csv"}}, ["not found", "missing.csv"], id="missing-csv"),
    pytest.param({"fit": {"model": "w*x", "data": "good.csv"}}, ["target", "'y'", "columns: time, value"],
                 id="csv-without-target-column"),
    pytest.param({"fit": {"model": "w*x", "data": {"x": [], "y": []}}}, ["empty"], id="empty-inline"),
]  # fmt: skip


@pytest.mark.parametrize("config, needles", CONFIG_CASES)
def test_bad_fit_config(gdrun, workdir, config, needles):
    path = workdir / "bad.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    result = cli(gdrun, "run", str(path), "--runs-dir", str(workdir / "runs"))
    assert_bad_input(result, *needles)


# ---------------------------------------------------------------------------- a warning, not an error


def test_more_parameters_than_data_points_warns_but_runs(gdrun, workdir):
    result = cli(gdrun, "fit", "a*x + b", "--x", "1", "--y", "2", "--epochs", "5", "--quiet",
                 "--runs-dir", str(workdir / "runs"))  # fmt: skip
    assert result.code == 0, result.err
    assert "Traceback" not in result.err
    lines = result.err.splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("gdrun: warning: ")
    assert "2 parameters" in lines[0] and "1 data point" in lines[0]
    record = result.record()
    assert record.summary["status"] == "max_epochs" and record.summary["data_points"] == 1


def test_enough_data_points_give_no_warning(gdrun, workdir):
    result = cli(gdrun, "fit", "a*x + b", *GOOD, "--epochs", "5", "--quiet", "--runs-dir", str(workdir / "runs"))
    assert result.code == 0 and result.err == ""
