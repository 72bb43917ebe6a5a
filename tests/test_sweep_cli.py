"""gdrun sweep through the command line: plan, run, show, JSON, and resume after SIGINT and SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gdrun.sweeps import read_results

REPO = Path(__file__).resolve().parents[1]
SLOW_SWEEP = """\
function: x2
lr: 0.001
init: 7.5
sweep:
  params:
    epochs: [20000, 20001, 20002, 20003, 20004, 20005, 20006, 20007, 20008, 20009, 20010, 20011]
    lr: [0.00001, 0.00002]
  record_every: 1000
"""


def test_plan_prints_the_configs_and_runs_nothing(gdrun, tmp_path):
    r = gdrun("sweep", str(REPO / "configs" / "e1_x2_lr0.1_converges.yaml"), "-p", "lr=0.001,0.01,0.1,1",
              "-p", "init=7.5,-3", "--plan", "--json", "--runs-dir", str(tmp_path / "runs"))  # fmt: skip
    assert r.code == 0
    plan = json.loads(r.out)
    assert len(plan) == 8 and plan[0] == {"id": 0, "lr": 0.001, "init": 7.5} and plan[-1] == {"id": 7, "lr": 1, "init": -3}
    assert not (tmp_path / "runs").exists()


def test_sweep_runs_writes_its_directory_and_shows_a_config(gdrun, tmp_path):
    runs = tmp_path / "runs"
    r = gdrun("sweep", str(REPO / "configs" / "e1_x2_lr0.1_converges.yaml"), "-p", "lr=0.01,0.1,1.5",
              "--set", "epochs=400", "--set", "expect=null", "--runs-dir", str(runs), "--json")  # fmt: skip
    assert r.code == 0, r.err
    out = json.loads(r.out)
    sweep_dir = Path(out["summary"]["sweep_dir"])
    assert sorted(p.name for p in sweep_dir.iterdir()) == [".lock", "metrics.f64", "results.csv", "summary.json", "sweep.yaml"]
    assert [row["status"] for row in out["results"]] == ["max_epochs", "max_epochs", "diverged"]
    assert out["summary"]["counts"]["diverged"] == 1
    shown = gdrun("show", str(sweep_dir / "1"))
    assert shown.code == 0 and "max_epochs" in shown.out
    missing = gdrun("show", str(sweep_dir / "9"))
    assert missing.code == 2 and "configs 0 to 2" in missing.err


def test_bad_sweep_input_is_one_line(gdrun, tmp_path):
    config = REPO / "configs" / "e1_x2_lr0.1_converges.yaml"
    for args, needle in [
        (["-p", "lrr=1,2"], "did you mean 'lr'"),
        (["-p", "lr=0.1,-1"], "sweep config 1"),
        (["--kind", "grd", "-p", "lr=1"], "grid"),
        (["--kind", "random", "-p", "lr=1"], "sweep.n"),
        ([], "at least one"),
        (["-p", "lr=1", "--executor", "slurm"], "executor"),
        (["-p", "lr=1", "--resume", "nothing-here"], "no sweep to resume"),
    ]:
        r = gdrun("sweep", str(config), *args, "--runs-dir", str(tmp_path / "runs"))
        assert r.code == 2, (args, r.err)
        assert len(r.err.strip().splitlines()) == 1 and needle in r.err, (args, r.err)
    r = gdrun("run", str(_write(tmp_path, SLOW_SWEEP)))
    assert r.code == 2 and "gdrun sweep" in r.err


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "slow_sweep.yaml"
    path.write_text(text)
    return path


def _start(config: Path, runs: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "gdrun", "sweep", str(config), "--runs-dir", str(runs), "-q", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)  # fmt: skip


def _wait_for_results(runs: Path, rows: int, timeout: float = 120) -> Path:
    deadline = time.time() + timeout
    while time.time() < deadline:
        dirs = list(runs.glob("sweep-*"))
        if dirs and len(read_results(dirs[0])) >= rows:
            return dirs[0]
        time.sleep(0.05)
    raise AssertionError("the sweep did not get going")


def _comparable(path: Path) -> list[dict[str, str]]:
    rows = sorted(read_results(path), key=lambda r: int(r["id"]))
    return [{k: v for k, v in r.items() if k not in ("batch", "batch_time_s")} for r in rows]


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGKILL], ids=["sigint", "sigkill"])
def test_a_stopped_sweep_resumes_to_the_same_results(tmp_path, how):
    config = _write(tmp_path, SLOW_SWEEP)
    whole = tmp_path / "whole"
    assert _start(config, whole).wait(timeout=300) == 0
    expected = _comparable(next(whole.iterdir()))
    assert len(expected) == 24

    runs = tmp_path / "runs"
    proc = _start(config, runs)
    sweep_dir = _wait_for_results(runs, 4)
    os.kill(proc.pid, how)
    proc.communicate(timeout=120)
    if how == signal.SIGINT:
        assert proc.returncode == 130
        assert json.loads((sweep_dir / "summary.json").read_text())["status"] == "interrupted"
    done_before = len(read_results(sweep_dir))
    assert 4 <= done_before < 24 + 2  # interrupted rows may be there too; they run again

    resumed = _start(config, runs, "--resume", str(sweep_dir))
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read()
    assert _comparable(sweep_dir) == expected  # every config exactly once, same numbers
