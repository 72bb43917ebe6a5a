"""The Python API: gdrun.minimize/fit/run/sweep/load, from a fresh interpreter and in-process."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import gdrun
from gdrun.runs import read_run

REPO = Path(__file__).resolve().parents[1]

FRESH = """
import json, sys
import gdrun

runs = sys.argv[1]
assert "gdrun.api" not in sys.modules and "torch" not in sys.modules  # import gdrun loads nothing heavy
a = gdrun.minimize("rosenbrock", lr=1e-3, epochs=300, init=[-1.2, 1.0], optimizer="sgd:momentum=0.9", runs_dir=runs)
b = gdrun.minimize("x**2 + 3*y**2", lr=0.1, epochs=100, init="x=1,y=-2", tol=1e-6, runs_dir=runs)
print(json.dumps([{"path": str(r.path), "status": r.status, "value": r.value, "params": r.params,
                   "names": r.names, "points": r.points.tolist(), "values": r.values.tolist(),
                   "steps": r.steps.tolist(), "exit_code": r.exit_code} for r in (a, b)]))
"""


def cli_json(*args: str) -> dict:
    done = subprocess.run([sys.executable, "-m", "gdrun", *args, "--json"], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_two_runs_in_a_fresh_interpreter_equal_the_command_lines(tmp_path):
    done = subprocess.run([sys.executable, "-c", FRESH, str(tmp_path / "api")], cwd=tmp_path, capture_output=True,
                          text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr
    a, b = json.loads(done.stdout)
    cli_a = cli_json("minimize", "rosenbrock", "--lr", "1e-3", "--epochs", "300", "--init", "-1.2,1", "--optimizer",
                     "sgd:momentum=0.9", "--runs-dir", str(tmp_path / "cli"))  # fmt: skip
    cli_b = cli_json("minimize", "x**2 + 3*y**2", "--lr", "0.1", "--epochs", "100", "--init", "x=1,y=-2", "--tol", "1e-6",
                     "--runs-dir", str(tmp_path / "cli"))  # fmt: skip
    for api, cli in ((a, cli_a), (b, cli_b)):
        assert api["status"] == cli["status"] and api["value"] == cli["value"] and api["params"] == cli["params"]
        metrics = read_run(cli["run_dir"]).metrics
        assert api["values"] == metrics["value"].tolist() and api["steps"] == metrics["step"].tolist()
        assert np.array_equal(np.array(api["points"]), np.column_stack([metrics[n] for n in api["names"]]))
        assert Path(api["path"]).parent == tmp_path / "api"
    assert a["names"] == ["x1", "x2"] and a["status"] == "max_epochs" and len(a["steps"]) == 301
    assert b["names"] == ["x", "y"] and b["status"] == "converged" and b["exit_code"] == 0


def test_calls_in_two_threads_do_not_see_each_other(tmp_path):
    """No global state: two runs at once give what each gives alone."""
    alone = [gdrun.minimize("x2", lr=lr, epochs=2000, runs_dir=tmp_path / "alone") for lr in (1e-3, 1.05)]
    together: dict[int, gdrun.RunResult] = {}

    def one(i: int, lr: float) -> None:
        together[i] = gdrun.minimize("x2", lr=lr, epochs=2000, runs_dir=tmp_path / "together")

    threads = [threading.Thread(target=one, args=(i, lr)) for i, lr in enumerate((1e-3, 1.05))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, run in enumerate(alone):
        assert together[i].status == run.status and np.array_equal(together[i].values, run.values)
        assert together[i].path != run.path and together[i].path.parent == tmp_path / "together"
    assert alone[1].status == "diverged" and alone[1].exit_code == 3


def test_bad_input_raises_a_typed_error_and_writes_nothing(tmp_path):
    runs = tmp_path / "runs"
    cases = [
        (lambda: gdrun.minimize("x2", learning_rate=0.1, runs_dir=runs), "unknown keyword argument 'learning_rate' (did you mean 'lr'?)"),
        (lambda: gdrun.minimize("x2", lr=-1, runs_dir=runs), "lr must be"),
        (lambda: gdrun.minimize("nosuchfunction(x)", runs_dir=runs), "nosuchfunction"),
        (lambda: gdrun.minimize("x2", optimizer="adamw2", runs_dir=runs), "did you mean 'adamw'?"),
        (lambda: gdrun.fit("w*x", runs_dir=runs), "fit needs data"),
        (lambda: gdrun.run(42, runs_dir=runs), "config must be a path"),
        (lambda: gdrun.sweep({"function": "x2"}, params={"lr": "logspace(-4,0"}, runs_dir=runs), "lr"),
    ]  # fmt: skip
    for call, message in cases:
        with pytest.raises(gdrun.InputError) as info:
            call()
        assert message in str(info.value) and "\n" not in str(info.value) and info.value.exit_code == 2
    assert not runs.exists()
    with pytest.raises(gdrun.RunNotFound, match="no runs in"):
        gdrun.load("last", runs_dir=runs)
    assert issubclass(gdrun.RunNotFound, gdrun.InputError) and issubclass(gdrun.InputError, gdrun.GdrunError)
    assert issubclass(gdrun.RunError, gdrun.GdrunError) and not issubclass(gdrun.RunError, gdrun.InputError)


def test_sweep_and_its_configs_with_the_parameters_real_names(tmp_path):
    runs = tmp_path / "runs"
    s = gdrun.sweep({"function": "booth", "epochs": 30, "init": [0, 0], "stop": {"diverge_above": 1e6}},
                    params={"lr": [0.01, 0.05, 0.2]}, record_every=1, runs_dir=runs)  # fmt: skip
    assert isinstance(s, gdrun.SweepResult) and len(s) == 3 and s.status == "completed" and s.exit_code == 0
    assert s.results["lr"].tolist() == [0.01, 0.05, 0.2] and s.results["id"].tolist() == [0, 1, 2]
    assert s.results["status"] == ["max_epochs", "max_epochs", "diverged"]
    config = s[1]
    assert config.names == ("x", "y") and config.status == "max_epochs" and config.config["lr"] == 0.05
    assert config.points.shape == (31, 2) and config.steps.tolist() == list(range(31))
    assert config.points[-1].tolist() == [config.params["x"], config.params["y"]]
    alone = gdrun.minimize("booth", lr=0.05, epochs=30, init=[0, 0], runs_dir=tmp_path / "alone")
    assert np.allclose(config.points, alone.points, rtol=1e-12, atol=0)
    assert [c.status for c in s] == s.results["status"]
    loaded = gdrun.load("last", runs_dir=runs)
    assert isinstance(loaded, gdrun.SweepResult) and loaded.path == s.path and loaded.best == s.best
    again = gdrun.load(f"{s.path}/2")
    assert again.status == "diverged" and again.path == s.path / "2"
    with pytest.raises(gdrun.InputError, match="has configs 0 to 2, not 5"):
        s[5]


def test_fit_run_and_load(tmp_path):
    runs = tmp_path / "runs"
    f = gdrun.fit("w*x + b", x=[1, 2, 3, 4], y=np.array([3, 5, 7, 9]), init={"w": 0, "b": 0}, lr=0.05, epochs=500,
                  runs_dir=runs)  # fmt: skip
    assert f.status == "max_epochs" and f.names == ("b", "w")  # natural order
    assert abs(f.params["w"] - 2) < 1e-3 and abs(f.params["b"] - 1) < 1e-3 and f.summary["r2"] > 0.999999
    config = tmp_path / "e1.yaml"
    config.write_text("function: x2\nlr: 0.1\nepochs: 10\nexpect:\n  status: max_epochs\n  value: {value: 0, atol: 1.0}\n")
    r = gdrun.run(config, runs_dir=runs)
    assert r.exit_code == 0 and [e["passed"] for e in r.expectations] == [True, True]
    failing = gdrun.run(config, runs_dir=runs, epochs=2)  # keywords override the file's keys, as --set does
    assert failing.exit_code == 1 and failing.config["epochs"] == 2 and not failing.expectations[1]["passed"]
    assert gdrun.load("e1", runs_dir=runs).path == failing.path  # a run's name: its newest run
    assert gdrun.load(f.path.name[-6:], runs_dir=runs).path == f.path  # its id


def test_to_pandas(tmp_path):
    pandas = pytest.importorskip("pandas", reason="the test extra installs pandas; RunResult.to_pandas needs it")
    r = gdrun.minimize("x2", lr=0.1, epochs=5, runs_dir=tmp_path)
    frame = r.to_pandas()
    assert isinstance(frame, pandas.DataFrame) and list(frame.columns) == ["step", "x", "value", "grad_norm", "lr"]
    assert frame["value"].tolist() == r.values.tolist()
    s = gdrun.sweep({"function": "x2", "epochs": 5}, params={"lr": [0.1, 0.2]}, runs_dir=tmp_path)
    table = s.to_pandas()
    assert table["lr"].tolist() == [0.1, 0.2] and table["status"].tolist() == ["max_epochs", "max_epochs"]
    fitted = gdrun.fit("w*x", pandas.DataFrame({"x": [1.0, 2.0], "y": [2.0, 4.0]}), epochs=3, runs_dir=tmp_path)
    assert fitted.status == "max_epochs" and fitted.summary["data_points"] == 2


def test_to_pandas_without_pandas_is_one_line(tmp_path, monkeypatch):
    r = gdrun.minimize("x2", lr=0.1, epochs=2, runs_dir=tmp_path)
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(gdrun.InputError, match=r"^to_pandas\(\) needs pandas: pip install pandas$"):
        r.to_pandas()


def test_display_prints_the_run_as_the_command_line_does(tmp_path, capsys):
    gdrun.minimize("x2", lr=0.1, epochs=3, runs_dir=tmp_path, display=True)
    shown = capsys.readouterr().out
    assert "max_epochs" in shown and "0.1" in shown
    gdrun.minimize("x2", lr=0.1, epochs=3, runs_dir=tmp_path)
    assert capsys.readouterr().out == ""


def test_the_readme_example_runs_and_draws(tmp_path):
    """The README's "From Python" block, pasted into a fresh interpreter."""
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## From Python"):]
    code = section[section.index("```python\n") + 10 : section.index("```\n", section.index("```python"))]
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                          env={**__import__("os").environ, "MPLBACKEND": "Agg"})  # fmt: skip
    assert done.returncode == 0, done.stderr
    status, value = done.stdout.split()[:2]
    promised = code.split("# max_epochs ")[1].split()[0]
    assert status == "max_epochs" and f"{float(value):.3g}" == promised
    from PIL import Image

    picture = np.asarray(Image.open(tmp_path / "rosenbrock.png").convert("L"), dtype=float)
    assert picture.shape[1] > picture.shape[0] > 300 and picture.std() > 10  # two panels drawn, not a blank canvas
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert gdrun.load(run_dir).status == "max_epochs"
