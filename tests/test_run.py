"""Whole runs through the CLI: statuses and exit codes, the run directory, output modes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from gdrun.runs import create_run_dir, read_run

REPO = Path(__file__).resolve().parents[1]


def test_run_directory_contents(gdrun):
    r = gdrun("minimize", "x2", "--lr", "0.1", "--epochs", "10", "--quiet")
    assert r.code == 0 and r.out == "" and r.err == ""
    (run_dir,) = r.run_dirs()
    assert sorted(p.name for p in run_dir.iterdir()) == ["config.yaml", "metrics.csv", "summary.json"]
    assert run_dir.name.split("-")[2] == "x2"
    rec = read_run(run_dir)
    header = (run_dir / "metrics.csv").read_text().splitlines()[0]
    assert header == "step,x,value,grad_norm,lr"
    assert rec.metrics["step"].tolist() == list(range(11))
    assert rec.metrics["x"][0] == 7.5 and rec.metrics["value"][0] == 56.25 and rec.metrics["grad_norm"][0] == 15.0
    assert round(rec.metrics["x"][10], 4) == 0.8053
    s = rec.summary
    for key in ("status", "iterations", "params", "value", "backend", "device", "dtype", "seed", "wall_time_s",
                "versions", "command", "git_commit"):  # fmt: skip
        assert key in s
    assert s["status"] == "max_epochs" and s["iterations"] == 10
    assert s["params"]["x"] == rec.metrics["x"][10]
    assert s["backend"] == "numpy" and s["device"] == "cpu" and s["dtype"] == "float64"
    assert set(s["versions"]) >= {"python", "numpy", "torch"}
    assert s["command"].startswith("gdrun minimize x2 --lr 0.1")
    assert rec.config["lr"] == 0.1 and rec.config["init"] == {"x": 7.5} and rec.config["epochs"] == 10


def test_config_yaml_reruns_to_the_same_result(gdrun, tmp_path):
    first = gdrun("minimize", "x**2 + y**2", "--init-range", "-5,5", "--lr", "0.05", "--epochs", "20", "--quiet")
    rec = first.record()
    assert isinstance(rec.config["seed"], int)  # drawn, and recorded so the run can be repeated
    again = gdrun("run", str(rec.path / "config.yaml"), "--runs-dir", str(tmp_path / "again"), "--quiet")
    assert again.code == 0
    (other,) = (tmp_path / "again").iterdir()
    assert read_run(other).summary["params"] == rec.summary["params"]
    assert read_run(other).summary["init"] == rec.summary["init"]


def test_git_commit_is_recorded(gdrun, tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "x"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    monkeypatch.chdir(repo)
    r = gdrun("minimize", "x2", "--epochs", "1", "--quiet")
    assert r.record().summary["git_commit"] == head


def test_diverged_stops_at_once_and_says_why(gdrun):
    r = gdrun("minimize", "x2", "--lr", "1.5", "--epochs", "5000", "--quiet")
    assert r.code == 3
    rec = r.record()
    s = rec.summary
    assert s["status"] == "diverged"
    assert "step 164" in s["reason"] and "diverge_above" in s["reason"]
    assert s["iterations"] == 164 and rec.metrics["step"][-1] == 164


def test_non_finite_value_is_diverged(gdrun):
    r = gdrun("minimize", "sqrt(x)", "--init", "1", "--lr", "3", "--epochs", "10", "--quiet")
    assert r.code == 3
    s = r.record().summary
    assert s["status"] == "diverged" and "nan" in s["reason"] and "step 1" in s["reason"]
    assert s["value"] is None  # JSON has no NaN: null, and the reason says what became nan


def test_converged_with_tolerance(gdrun):
    r = gdrun("minimize", "x2", "--lr", "0.1", "--epochs", "1000", "--tol", "1e-6", "--quiet")
    assert r.code == 0
    s = r.record().summary
    first_below = next(k for k in range(1000) if 15 * 0.8**k < 1e-6)  # |grad| at step k is 15 * 0.8**k
    assert s["status"] == "converged" and s["iterations"] == first_below == 75
    assert "gradient norm" in s["reason"]


def test_failed_run_keeps_rows_and_writes_the_traceback(gdrun, monkeypatch):
    from gdrun.backends.numpy_backend import NumpyBackend

    original = NumpyBackend.value_and_grad_fn

    def breaking(self, objective):
        inner = original(self, objective)
        calls = {"n": 0}

        def value_and_grad(X):
            calls["n"] += 1
            if calls["n"] == 6:
                raise RuntimeError("boom")
            return inner(X)

        return value_and_grad

    monkeypatch.setattr(NumpyBackend, "value_and_grad_fn", breaking)
    r = gdrun("minimize", "x2", "--lr", "0.1", "--epochs", "10", "--quiet")
    assert r.code == 4
    rec = r.record()
    assert rec.summary["status"] == "failed" and "RuntimeError: boom" in rec.summary["reason"]
    assert rec.metrics["step"].tolist() == [0, 1, 2, 3, 4]
    assert "RuntimeError: boom" in (rec.path / "error.txt").read_text()


def _start(args, runs_dir, env=None):
    return subprocess.Popen(
        [sys.executable, "-m", "gdrun", *args, "--runs-dir", str(runs_dir)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO, env=env,
    )  # fmt: skip


def _wait_for_rows(runs_dir: Path, rows: int, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        files = list(runs_dir.glob("*/metrics.csv"))
        if files and files[0].stat().st_size > rows * 10:
            return
        time.sleep(0.05)
    raise AssertionError("the run did not start writing rows")


def test_ctrl_c_stops_cleanly_and_keeps_what_was_recorded(tmp_path):
    runs = tmp_path / "runs"
    proc = _start(["minimize", "x2", "--lr", "1e-9", "--epochs", "100000000", "--quiet"], runs)
    _wait_for_rows(runs, 1000)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    rec = read_run(next(runs.iterdir()))
    s = rec.summary
    assert s["status"] == "interrupted" and s["finished_at"]
    assert 0 < s["iterations"] < 100000000
    assert rec.metrics["step"][-1] == s["iterations"]  # every recorded row is whole and on disk
    assert rec.metrics["x"][-1] == s["params"]["x"]


def test_summary_says_running_while_the_run_goes(tmp_path):
    runs = tmp_path / "runs"
    proc = _start(["minimize", "x2", "--lr", "1e-9", "--epochs", "100000000", "--quiet"], runs)
    try:
        _wait_for_rows(runs, 100)
        summary = json.loads(next(runs.glob("*/summary.json")).read_text())
        assert summary["status"] == "running"
    finally:
        proc.kill()
        proc.wait()
    # killed hard: the directory is still readable and honest about not having finished
    assert read_run(next(runs.iterdir())).summary["status"] == "running"


def test_runs_never_share_a_directory(tmp_path):
    made: list[Path] = []

    def make():
        for _ in range(20):
            made.append(create_run_dir(tmp_path, "same"))

    threads = [threading.Thread(target=make) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(made) == 80 and len(set(made)) == 80


def test_parallel_processes_get_their_own_directories(tmp_path):
    runs = tmp_path / "runs"
    procs = [_start(["minimize", "x2", "--epochs", "3", "--quiet"], runs) for _ in range(4)]
    assert [p.wait(timeout=60) for p in procs] == [0, 0, 0, 0]
    assert len(list(runs.iterdir())) == 4


def test_runs_dir_moves_the_root(gdrun, tmp_path):
    r = gdrun("minimize", "x2", "--epochs", "2", "--quiet", "--runs-dir", str(tmp_path / "elsewhere" / "deep"))
    assert r.code == 0
    assert len(list((tmp_path / "elsewhere" / "deep").iterdir())) == 1


def test_json_prints_only_the_summary(gdrun):
    r = gdrun("minimize", "x2", "--lr", "0.1", "--epochs", "10", "--json")
    summary = json.loads(r.out)
    assert summary["status"] == "max_epochs" and round(summary["params"]["x"], 4) == 0.8053


def test_table_shows_every_nth_and_always_first_and_last(gdrun):
    r = gdrun("minimize", "x2", "--lr", "0.1", "--epochs", "12", "--every", "5")
    assert r.code == 0
    lines = r.out.splitlines()
    assert lines[0].split() == ["step", "x", "f", "|grad|", "lr"]
    steps = [int(line.split()[0]) for line in lines[1:] if line.strip() and line.split()[0].isdigit()]
    assert steps == [0, 5, 10, 12]
    assert "status: max_epochs" in r.out and "final point: x = 0.515396" in r.out
    assert not any(ch in r.out for ch in "│╭─\x1b")  # plain text when stdout is not a terminal


def test_table_shows_the_lr1_oscillation(gdrun):
    r = gdrun("run", str(REPO / "configs" / "e1_x2_lr1_oscillates.yaml"))
    xs = [line.split()[1] for line in r.out.splitlines()[1:12]]
    assert xs == ["7.5", "-7.5"] * 5 + ["7.5"]


def test_help_imports_neither_torch_nor_sympy():
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "gdrun", "--help"], capture_output=True, text=True, cwd=REPO
    )
    assert out.returncode == 0 and "minimize" in out.stdout
    imported = {line.split("|")[-1].strip() for line in out.stderr.splitlines() if line.startswith("import time:")}
    assert not {m for m in imported if m.split(".")[0] in ("torch", "sympy")}
    assert "typer" in imported  # the check itself sees imports


def test_numpy_run_with_warm_cache_imports_neither_torch_nor_sympy(tmp_path):
    env = {**os.environ, "GDRUN_CACHE_DIR": str(tmp_path / "cache")}
    args = [sys.executable, "-X", "importtime", "-m", "gdrun", "minimize", "x**2 + 3*y**2", "--epochs", "3", "-q",
            "--runs-dir", str(tmp_path / "runs")]  # fmt: skip
    cold = subprocess.run(args, capture_output=True, text=True, env=env)
    warm = subprocess.run(args, capture_output=True, text=True, env=env)
    assert cold.returncode == 0 and warm.returncode == 0

    def top(stderr):
        return {line.split("|")[-1].strip().split(".")[0] for line in stderr.splitlines() if line.startswith("import time:")}

    assert "sympy" in top(cold.stderr)  # the first run derives the gradient
    assert not top(warm.stderr) & {"sympy", "torch"}


def test_torch_backend_records_torch_version(gdrun):
    r = gdrun("minimize", "x2", "--backend", "torch", "--epochs", "3", "--quiet")
    s = r.record().summary
    assert s["backend"] == "torch" and s["versions"]["torch"].startswith("2.")


def test_show_prints_a_finished_run(gdrun):
    r = gdrun("minimize", "x2", "--lr", "0.1", "--epochs", "10", "--quiet")
    shown = gdrun("show", str(r.run_dirs()[0]))
    assert shown.code == 0 and "max_epochs" in shown.out and "x = 0.805306" in shown.out


def test_metrics_round_trip_exactly(gdrun):
    r = gdrun("minimize", "x**2 + y**2", "--init", "x=0.1,y=0.7", "--lr", "0.3", "--epochs", "5", "--quiet")
    rec = r.record()
    x = 0.1
    for k in range(6):
        assert rec.metrics["x"][k] == x
        x = x - 0.3 * (2 * x)
    assert np.all(rec.metrics["lr"] == 0.3)


def test_a_run_that_lands_where_the_gradient_is_undefined_says_so(gdrun):
    r = gdrun("minimize", "ackley", "--init", "0", "--lr", "0.1", "--epochs", "10")
    assert r.code == 0
    assert "nan" not in r.out
    assert "|grad|: undefined (not differentiable here)" in r.out
    s = r.record().summary
    assert s["status"] == "converged" and "not differentiable" in s["reason"] and s["iterations"] == 0
    # reached by steps: |(x, y)| has unit gradient, and five steps of 0.1 land exactly on the kink
    r = gdrun("minimize", "sqrt(x**2 + y**2)", "--init", "x=0.3,y=0.4", "--lr", "0.1", "--epochs", "10", "--json")
    s = json.loads(r.out)
    assert s["status"] == "converged" and s["iterations"] == 5 and s["params"] == {"x": 0.0, "y": 0.0}
