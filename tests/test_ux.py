"""What the user sees (issue 9, item 9): the help, suggestions, one optimizer variant, sweep --json
numbers, one Ctrl-C for a whole comparison or check, and a live table that fits the terminal."""

from __future__ import annotations

import ast
import json
import math
import os
import signal
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from rich.console import Console

from gdrun.config import validate
from gdrun.runner import Output, execute
from gdrun.runs import json_number, read_run
from helpers import wait_for

REPO = Path(__file__).resolve().parents[1]


def no_constants(token: str):
    raise AssertionError(f"not JSON: {token}")


# ---------------------------------------------------------------------------- the command line


def test_no_arguments_prints_the_whole_help_on_many_lines(gdrun):
    r = gdrun()
    assert r.code == 2  # no command ran: a CI step that lost its arguments must not pass
    lines = r.err.splitlines()
    assert len(lines) > 10 and lines[0].startswith("Usage: gdrun")
    assert "gdrun: error" not in r.err
    for command in ("minimize", "fit", "run", "check", "functions", "grad", "show", "explain", "plot", "sweep"):
        assert any(line.strip().startswith(command + " ") for line in lines), command


def test_an_unknown_command_is_suggested_once(gdrun):
    r = gdrun("minimze", "x2")
    assert r.code == 2
    assert r.err.count("\n") == 1 and r.err.startswith("gdrun: error: unknown command 'minimze'")
    assert r.err.lower().count("did you mean") == 1 and "did you mean 'minimize'?" in r.err
    assert "choices: check, compare, explain, export, fit, functions, grad, minimize, plot, run, runs, schema, show, sweep" in r.err


@pytest.mark.parametrize("typed, meant", [("list", "gdrun runs"), ("ls", "gdrun runs"), ("diff", "gdrun runs compare A B"),
                                          ("version", "gdrun --version")])  # fmt: skip
def test_other_tools_commands_point_to_gdruns(gdrun, typed, meant):
    r = gdrun(typed)
    assert r.code == 2 and r.err == f"gdrun: error: unknown command '{typed}' (did you mean '{meant}'?)\n"


def test_version_and_completion(gdrun):
    from gdrun import __version__

    r = gdrun("--version")
    assert r.code == 0 and r.out == f"gdrun {__version__}\n"
    script = gdrun("--show-completion", "bash")
    assert script.code == 0 and "_GDRUN_COMPLETE=complete_bash" in script.out and "complete " in script.out


def test_one_optimizer_variant_with_options_runs_as_the_readme_writes_it(gdrun):
    r = gdrun("minimize", "x2", "--optimizer", "adam:eps=0.001:lr=0.5", "--opt", "weight_decay=0.01", "--epochs", "3",
              "--quiet")  # fmt: skip
    assert r.code == 0, r.err
    rec = r.record()
    assert rec.summary["optimizer"] == "adam" and rec.summary["lr"] == 0.5
    assert rec.summary["optimizer_options"] == {"eps": 0.001, "weight_decay": 0.01}
    assert rec.config["optimizer"] == "adam" and rec.config["optimizer_options"]["eps"] == 0.001
    bad = gdrun("minimize", "x2", "--optimizer", "adam:bogus=1", "--quiet")
    assert bad.code == 2 and "unknown option 'bogus' for optimizer 'adam'" in bad.err and bad.err.count("\n") == 1


def test_sweep_json_prints_numbers_as_numbers(gdrun, tmp_path):
    config = tmp_path / "x2.yaml"
    config.write_text("function: x2\nepochs: 10\n")
    r = gdrun("sweep", str(config), "-p", "lr=0.01,0.1,3", "-p", "init=7.5,-3", "--json", "--runs-dir",
              str(tmp_path / "runs"))  # fmt: skip
    assert r.code == 0, r.err
    report = json.loads(r.out, parse_constant=no_constants)
    rows = report["results"]
    assert len(rows) == 6
    for row in rows:
        assert type(row["id"]) is int and type(row["steps"]) is int and type(row["updates"]) is int
        assert type(row["lr"]) in (int, float) and type(row["init"]) in (int, float) and type(row["batch"]) is int
        assert isinstance(row["status"], str) and isinstance(row["reason"], str)
        assert type(row["value"]) is float or row["value"] == json_number(math.inf)  # as summary.json writes it
    finished = [row for row in rows if row["status"] == "max_epochs"]
    assert finished and all(type(row["value"]) is float and type(row["param.x"]) is float for row in finished)
    assert sorted({row["lr"] for row in rows}) == [0.01, 0.1, 3]


def test_display_does_not_import_the_sweep_machinery():
    """display is a view: it imports no module that imports it back (display -> sweep -> runner -> display)."""
    tree = ast.parse((REPO / "gdrun" / "display.py").read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not imported & {"sweep", "runner", "executors", "compare", "check"}, imported


# ---------------------------------------------------------------------------- the live table


def _table_text(tmp_path, width: int, **config) -> str:
    console = Console(width=width, force_terminal=True, record=True, color_system=None, file=open(os.devnull, "w"))
    raw = {"function": "sphere", "lr": 0.1, "epochs": 30, **config}
    summary, code = execute(validate(raw), tmp_path / "runs", Output(mode="table", console=console))
    assert code == 0
    return console.export_text()


@pytest.mark.parametrize("width, shown", [(80, 2), (120, 5)])
def test_a_20_dimensional_run_fits_the_terminal_and_names_what_it_left_out(tmp_path, width, shown):
    text = _table_text(tmp_path, width, dim=20)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= width
    table = text[: text.index("╭")]  # the rows, above the closing panel
    assert "…" not in table  # no number is cut short
    header = next(line for line in lines if line.lstrip().startswith("step"))
    assert header.split() == ["step", *(f"x{i}" for i in range(1, shown + 1)), "f", "|grad|", "lr"]
    note = f"not shown: x{shown + 1}, ..., x20 ({20 - shown} of 20 variables; metrics.csv has them all)"
    assert note in text
    assert lines.index(next(line for line in lines if note in line)) == lines.index(header) - 1


@pytest.mark.parametrize("dim", [1, 3])
def test_small_runs_show_every_variable_as_before(tmp_path, dim):
    text = _table_text(tmp_path, 120, dim=dim)
    header = next(line for line in text.splitlines() if line.lstrip().startswith("step"))
    assert header.split() == ["step", *(f"x{i}" for i in range(1, dim + 1)), "f", "|grad|", "lr"]
    assert "not shown" not in text and "…" not in text[: text.index("╭")]
    assert "   0             1" in text  # 12-wide number columns, as before


def test_the_sweep_table_leaves_out_parameters_rather_than_cut_numbers(tmp_path):
    from gdrun.display import sweep_report

    row = {"id": "0", "lr": "0.1", "optimizer": "adam", "status": "max_epochs", "reason": "r", "steps": "10",
           "updates": "10", "value": "0.0232557123", "grad_norm": "0.304997123", "batch": "0", "batch_time_s": "0.1",
           **{f"param.{name}": "-0.0762492123" for name in "wxyz"}}  # fmt: skip
    summary = {"status": "completed", "counts": {"max_epochs": 1}, "wall_time_s": 0.1, "batches": 1,
               "executor": "local", "sweep_dir": "runs/sweep"}  # fmt: skip
    for width, shown in ((80, 0), (120, 3)):
        console = Console(width=width, force_terminal=True, record=True, color_system=None, file=open(os.devnull, "w"))
        sweep_report(summary, [row], "table", console)
        text = console.export_text()
        assert max(len(line) for line in text.splitlines()) <= width and "…" not in text
        assert "0.0232557" in text and "0.304997" in text
        names = [f"param.{name}" for name in "wxyz"]
        assert all(name in text for name in names[:shown])
        listed = ", ".join(names[shown:]) if 4 - shown <= 3 else "param.w, ..., param.z"
        assert f"not shown: {listed} ({4 - shown} of 4 parameters; results.csv has them all)" in text


# ---------------------------------------------------------------------------- one Ctrl-C stops it all


def test_one_ctrl_c_stops_a_whole_comparison(tmp_path):
    runs = tmp_path / "runs"
    proc = subprocess.Popen(
        [sys.executable, "-m", "gdrun", "minimize", "rosenbrock", "--optimizer", "sgd,adam,rmsprop", "--lr", "1e-9",
         "--epochs", "10000000", "--json", "--runs-dir", str(runs)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
    )  # fmt: skip
    try:
        wait_for(lambda: any(f.stat().st_size > 2000 for f in runs.glob("*/metrics.csv")))
        proc.send_signal(signal.SIGINT)  # once
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    report = json.loads(out)
    assert report["interrupted"] is True
    statuses = {row["optimizer"]: row["status"] for row in report["ranking"]}
    assert set(statuses) == {"sgd", "adam", "rmsprop"}
    assert statuses["sgd"] == "interrupted" and statuses["adam"] == statuses["rmsprop"] == "not run"
    dirs = sorted(runs.iterdir())
    assert len(dirs) == 1  # the variants that never started left no directory
    for row in report["ranking"]:
        if row["run_dir"] is not None:
            rec = read_run(row["run_dir"])
            assert rec.summary["status"] == row["status"] == "interrupted" and rec.summary["finished_at"]
            assert rec.metrics["step"][-1] == rec.summary["iterations"] == row["steps"]


def test_a_ctrl_c_outside_a_run_still_ends_the_check_with_its_report(gdrun, tmp_path, monkeypatch):
    """The Ctrl-C lands while a config is loaded, not inside a run: the JSON and JUnit reports
    still come, with what ran, the config it cut off and the rest marked not run."""
    import gdrun.check as check_module

    folder = tmp_path / "configs"
    folder.mkdir()
    for name in ("a", "b", "c"):
        (folder / f"{name}.yaml").write_text("function: x2\nlr: 0.1\nepochs: 5\nexpect:\n  status: max_epochs\n")
    real = check_module.check_file

    def check_file(path, *args, **kwargs):
        if path.stem == "b":
            os.kill(os.getpid(), signal.SIGINT)  # a real Ctrl-C, before b's run starts
        return real(path, *args, **kwargs)

    monkeypatch.setattr(check_module, "check_file", check_file)
    junit = tmp_path / "report.xml"
    r = gdrun("check", str(folder), "--json", "--junit", str(junit), "--runs-dir", str(tmp_path / "runs"))
    assert r.code == 130, r.err
    report = json.loads(r.out)
    assert report["interrupted"] is True and report["exit_code"] == 130 and report["passed"] is False
    outcomes = {Path(c["config"]).stem: (c["outcome"], c["status"]) for c in report["configs"]}
    assert outcomes == {"a": ("passed", "max_epochs"), "b": ("interrupted", "interrupted"), "c": ("not run", None)}
    assert report["counts"]["interrupted"] == 1 and report["counts"]["not_run"] == 1
    b = next(c for c in report["configs"] if c["config"].endswith("b.yaml"))
    assert b["expectations"] == [] and read_run(b["run_dir"]).summary["status"] == "interrupted"
    suites = {Path(s.get("name")).stem: s for s in ET.parse(junit).getroot()}
    assert suites["c"].find("testcase/skipped").get("message") == "not run: gdrun check was interrupted first"
    assert "not judged" in suites["b"].find("testcase/skipped").get("message")
    assert suites["a"].get("failures") == "0" and suites["c"].get("timestamp")
    table = gdrun("check", str(folder), "--runs-dir", str(tmp_path / "runs2"))
    assert table.code == 130
    assert "(interrupted: 1 config cut off, 1 config did not run)" in table.out
    assert "INTERRUPTED " in table.out and "FAIL" not in table.out


@pytest.mark.parametrize("width", [80, 120])
def test_a_long_final_point_wraps_between_pairs(width):
    from gdrun.display import summary_panel

    params = {f"x{i}": 0.00123794 for i in range(1, 21)}
    summary = {"status": "max_epochs", "reason": "reached the last epoch (30)", "params": params, "value": 3.06e-05,
               "function": "sphere",
               "grad_norm": 0.011, "iterations": 30, "wall_time_s": 0.01, "run_dir": "runs/x", "finished_at": "now"}  # fmt: skip
    console = Console(width=width, force_terminal=True, color_system=None, record=True)
    summary_panel(summary, console)
    text = console.export_text()
    inside = [line.strip("│ ").rstrip() for line in text.splitlines()]
    assert all(len(line) <= width for line in text.splitlines())
    assert not any(line.endswith("=") for line in inside), text
    shown = " ".join(inside)
    assert all(f"x{i} = 0.00123794" in shown for i in range(1, 21)), text
