"""Fault tests: signals at the file operations of a run, a sweep and a check; full disks; two
resumes of one sweep at once; a resume while the sweep still runs.

After every fault the property is the same: no traceback; every run or sweep directory under
--runs-dir opens through gdrun's own reader (``open_record``); its status is honest (``running``
only when the process is gone, and then the reader says it was cut off; a finished status agrees
with the last metrics row); metrics.csv holds whole rows only; and a resumed sweep ends with every
config in results.csv exactly once.

The faults are placed with a test hook of gdrun's file writer: ``GDRUN_FAULT_AFTER=N:SIGNAL`` makes
the process send itself SIGNAL after its Nth file operation (a file written whole, a block of rows,
a directory made). A full disk is a file-size limit (RLIMIT_FSIZE, everywhere) and a 256 KiB tmpfs
(where this process may mount one).

    python -m pytest -q tests/test_faults.py                     # CI: a few points of each, < 40 s
    GDRUN_FAULT_POINTS=all python -m pytest -q tests/test_faults.py   # every point, every signal
    python benchmarks/fault_campaign.py                          # the same, with the figures
"""

from __future__ import annotations

import csv
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from gdrun.runs import open_record, read_run
from gdrun.sweeps import config_count, read_results, read_sweep_file
from helpers import wait_for

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "e1_x2_lr0.1_converges.yaml"
STATUSES = ("converged", "max_epochs", "diverged", "failed", "interrupted")
SIGNALS = {"INT": signal.SIGINT, "TERM": signal.SIGTERM, "KILL": signal.SIGKILL}

#: (scenario, signal, file operation) points the CI run tries; GDRUN_FAULT_POINTS=all tries them all
CI_POINTS = [("run", "KILL", 1), ("run", "KILL", 2), ("run", "KILL", 4), ("run", "INT", 5), ("run", "TERM", 7),
             ("sweep", "KILL", 2), ("sweep", "INT", 6), ("sweep", "KILL", 8), ("check", "KILL", 6)]  # fmt: skip
#: the most file operations a scenario makes (points past its end just finish normally)
MAX_POINTS = {"run": 9, "fit": 9, "compare": 14, "sweep": 14, "check": 16}


def scenario_args(name: str, tmp: Path) -> list[str]:
    """The command of a fault scenario, writing under ``tmp / 'runs'``."""
    runs = str(tmp / "runs")
    if name == "run":
        return ["minimize", "x2", "--lr", "0.01", "--epochs", "300", "--quiet", "--runs-dir", runs]
    if name == "fit":
        return ["fit", "w*x + b", "--x", "1,2,3,4", "--y", "2,4,6,8", "--epochs", "300", "--quiet", "--runs-dir", runs]
    if name == "compare":
        return ["minimize", "x2", "--optimizer", "sgd,adam,rmsprop", "--epochs", "300", "--quiet", "--runs-dir", runs]
    if name == "sweep":
        return ["sweep", str(CONFIG), "-p", "optimizer=sgd,adam,rmsprop", "-p", "lr=0.01,0.1", "--set", "epochs=200",
                "--set", "expect=null", "--quiet", "--runs-dir", runs]  # fmt: skip
    if name == "check":
        folder = tmp / "configs"
        folder.mkdir(exist_ok=True)
        for source in ("e1_x2_lr0.1_converges.yaml", "e1_x2_lr1_oscillates.yaml"):
            shutil.copy(REPO / "configs" / source, folder / source)
        return ["check", str(folder), "--runs-dir", runs]
    raise ValueError(name)


def gdrun_process(args: list[str], fault: str | None = None, fsize: int | None = None, **popen) -> subprocess.Popen:
    """gdrun in a child process; ``fault`` is GDRUN_FAULT_AFTER, ``fsize`` a file-size limit in bytes."""
    env = {k: v for k, v in os.environ.items() if k != "GDRUN_FAULT_AFTER"}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    if fault:
        env["GDRUN_FAULT_AFTER"] = fault

    def limit() -> None:
        if fsize is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    return subprocess.Popen([sys.executable, "-m", "gdrun", *args], env=env, preexec_fn=limit, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **popen)  # fmt: skip


def run_gdrun(args: list[str], fault: str | None = None, fsize: int | None = None, timeout: float = 120):
    """(exit code, stdout, stderr); a signal's death is its negative number."""
    proc = gdrun_process(args, fault, fsize)
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def directory_problems(runs: Path) -> list[str]:
    """What is wrong with the directories under ``runs`` after a fault (empty: all is well)."""
    problems = []
    if not runs.is_dir():
        return problems
    for path in sorted(runs.iterdir()):
        if path.name.startswith("."):  # a directory being created when the fault came: never half-visible
            if not path.name.startswith(".creating-"):
                problems.append(f"stray file {path.name}")
            continue
        try:
            record = open_record(path)
        except Exception as exc:  # noqa: BLE001 (each is a finding)
            problems.append(f"{path.name}: the reader failed: {type(exc).__name__}: {exc}")
            continue
        status = record.summary["status"]
        if record.kind == "sweep":
            problems += sweep_problems(path, record)
            continue
        if status == "running" and not record.cut_off:
            problems.append(f"{path.name}: says running, but its process is gone and the reader does not say cut off")
        if status not in (*STATUSES, "running"):
            problems.append(f"{path.name}: unknown status {status!r}")
        text = (path / "metrics.csv").read_bytes() if (path / "metrics.csv").exists() else b""
        if text and not text.endswith(b"\n"):
            problems.append(f"{path.name}: metrics.csv ends in a torn row")
        rows = list(csv.reader(text.decode().splitlines()))
        if rows and any(len(r) != len(rows[0]) for r in rows):
            problems.append(f"{path.name}: metrics.csv has rows of the wrong width")
        if not record.config:
            problems.append(f"{path.name}: config.yaml is empty")
        steps = record.metrics.get("epoch", record.metrics.get("step"))
        if status in ("converged", "max_epochs", "diverged") and (steps is None or not len(steps)
                                                                   or steps[-1] != record.summary["iterations"]):  # fmt: skip
            problems.append(f"{path.name}: {status} at {record.summary['iterations']}, but metrics.csv disagrees")
    return problems


def sweep_problems(path: Path, record) -> list[str]:
    problems = []
    meta = read_sweep_file(path)
    ids = [int(r["id"]) for r in read_results(path)]
    if len(ids) != len(set(ids)):
        problems.append(f"{path.name}: a config is in results.csv more than once")
    if any(not 0 <= i < config_count(meta) for i in ids):
        problems.append(f"{path.name}: results.csv names a config the sweep does not have")
    if record.summary["status"] == "running" and not record.cut_off:
        problems.append(f"{path.name}: says running, but its process is gone")
    return problems


def resume_problems(runs: Path, args: list[str]) -> list[str]:
    """Resume the sweep under ``runs`` (if the fault left one) and check every config ran once."""
    sweeps = [p for p in runs.glob("sweep-*")] if runs.is_dir() else []
    problems = []
    for path in sweeps:
        code, _, err = run_in_process([*args, "--resume", str(path)])
        if code not in (0, 4) or "Traceback" in err:
            problems.append(f"resume of {path.name}: exit {code}: {err.strip()[-300:]}")
            continue
        n = config_count(read_sweep_file(path))
        ids = sorted(int(r["id"]) for r in read_results(path))
        if ids != list(range(n)):
            problems.append(f"resume of {path.name}: results.csv holds configs {ids}, not each of 0..{n - 1} once")
        if open_record(path).summary["status"] != "completed":
            problems.append(f"resume of {path.name}: status {open_record(path).summary['status']}")
    return problems


def run_in_process(args: list[str]) -> tuple[int, str, str]:
    """gdrun's entry point in this process (no start-up cost); (exit code, stdout, stderr)."""
    import contextlib
    import io

    from gdrun.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(args)
        except SystemExit as exc:
            return int(exc.code or 0), out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()  # pragma: no cover


def fault_point(scenario: str, sig: str, point: int, tmp: Path) -> list[str]:
    """Deliver ``sig`` after file operation ``point`` of ``scenario``; the problems found after it."""
    args = scenario_args(scenario, tmp)
    code, out, err = run_gdrun(args, fault=f"{point}:{sig}")
    problems = [f"exit {code}: a traceback: {err.strip()[-400:]}"] if "Traceback" in err else []
    allowed = {"KILL": {-9}, "TERM": {-15, 130}, "INT": {130}}[sig] | {0, 1, 3}  # TERM: 130 where a run listens; 0/1/3: done first
    if code not in allowed:
        problems.append(f"exit {code} after SIG{sig}: {err.strip()[-300:]}")
    problems += directory_problems(tmp / "runs")
    if scenario == "sweep":
        problems += resume_problems(tmp / "runs", args)
    return [f"{scenario} SIG{sig} at file operation {point}: {p}" for p in problems]


def points() -> list[tuple[str, str, int]]:
    if os.environ.get("GDRUN_FAULT_POINTS") == "all":
        return [(s, sig, n) for s, top in MAX_POINTS.items() for sig in SIGNALS for n in range(1, top + 1)]
    return CI_POINTS


@pytest.mark.parametrize("scenario, sig, point", points(), ids=lambda v: str(v))
def test_a_signal_at_a_file_operation_leaves_honest_readable_directories(tmp_path, scenario, sig, point):
    assert fault_point(scenario, sig, point, tmp_path) == []


def test_sigterm_stops_a_run_as_ctrl_c_does(tmp_path):
    """A CI job's timeout sends SIGTERM: the run stops at a step boundary and says 'interrupted'."""
    runs = tmp_path / "runs"
    proc = gdrun_process(["minimize", "rosenbrock", "--lr", "1e-4", "--epochs", "100000000", "--quiet",
                          "--runs-dir", str(runs)])  # fmt: skip
    wait_for(lambda: any((p / "metrics.csv").is_file() and (p / "metrics.csv").stat().st_size > 1000
                         for p in runs.glob("*")))  # fmt: skip
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in err, err
    (run_dir,) = runs.iterdir()
    record = read_run(run_dir)
    assert record.summary["status"] == "interrupted" and not record.cut_off
    assert record.summary["iterations"] == record.metrics["step"][-1] > 0
    assert directory_problems(runs) == []


# ---------------------------------------------------------------------------- full disks


def test_a_full_disk_fails_the_run_in_one_line_and_keeps_whole_rows(tmp_path):
    """Item 3: the file-size limit stops metrics.csv; the run is 'failed', 'disk full', exit 4."""
    runs = tmp_path / "runs"
    code, out, err = run_gdrun(["minimize", "x2", "--lr", "1e-9", "--epochs", "100000000", "--quiet",
                                "--runs-dir", str(runs)], fsize=60_000)  # fmt: skip
    assert code == 4, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1 and "disk full" in err
    (run_dir,) = runs.iterdir()
    record = read_run(run_dir)
    assert record.summary["status"] == "failed" and record.summary["reason"].startswith("disk full")
    assert (run_dir / "metrics.csv").read_bytes().endswith(b"\n")
    assert record.summary["iterations"] == record.metrics["step"][-1] > 0  # where it got to, as recorded
    assert record.summary["params"]["x"] == record.metrics["x"][-1]
    assert directory_problems(runs) == []


@pytest.mark.parametrize("command", [
    ["fit", "w*x + b", "--x", "1,2,3,4", "--y", "2,4,6,8", "--lr", "1e-9", "--epochs", "100000000", "--quiet"],
    ["minimize", "x2", "--optimizer", "sgd,adam", "--lr", "1e-9", "--epochs", "100000000", "--quiet"],
], ids=["fit", "compare"])  # fmt: skip
def test_a_full_disk_fails_fits_and_comparisons_in_one_line(tmp_path, command):
    runs = tmp_path / "runs"
    code, out, err = run_gdrun([*command, "--runs-dir", str(runs)], fsize=60_000)
    assert code == 4 and "Traceback" not in err and len(err.strip().splitlines()) == 1 and "disk full" in err, err
    for run_dir in runs.iterdir():
        assert read_run(run_dir).summary["status"] == "failed"
    assert directory_problems(runs) == []


def test_a_full_disk_under_gdrun_check_is_exit_4_with_its_report(tmp_path):
    """A config whose run cannot finish (disk full) is an error of its own, and the check exits 4, not 2."""
    config = tmp_path / "long.yaml"
    config.write_text("function: x2\nlr: 1.0e-9\nepochs: 100000000\nexpect: {status: max_epochs}\n")
    runs = tmp_path / "runs"
    code, out, err = run_gdrun(["check", str(config), "--json", "--runs-dir", str(runs)], fsize=60_000)
    assert code == 4 and "Traceback" not in err, err
    report = json.loads(out)
    assert report["exit_code"] == 4 and report["counts"]["errors"] == 1
    assert "disk full" in report["configs"][0]["error"]
    assert directory_problems(runs) == []


def test_a_disk_too_full_for_a_run_directory_leaves_none(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    code, out, err = run_gdrun(["minimize", "x2", "--quiet", "--runs-dir", str(runs)], fsize=2_000)
    assert code == 4 and "Traceback" not in err and len(err.strip().splitlines()) == 1 and "disk full" in err
    assert list(runs.iterdir()) == []  # complete or not at all


def test_a_full_tmpfs_fails_the_run_in_one_line(tmp_path):
    mount = tmp_path / "small"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], capture_output=True)
    if made.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (the file-size-limit tests cover a full disk)")
    try:
        code, out, err = run_gdrun(["minimize", "x2", "--lr", "1e-9", "--epochs", "100000000", "--quiet",
                                    "--runs-dir", str(mount / "runs")])  # fmt: skip
        assert code == 4 and "Traceback" not in err and len(err.strip().splitlines()) == 1
        (run_dir,) = (mount / "runs").iterdir()
        record = read_run(run_dir)
        assert record.summary["status"] == "failed" and "disk full" in record.summary["reason"]
        assert directory_problems(mount / "runs") == []
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_a_full_disk_stops_a_sweep_which_then_resumes_every_config_once(tmp_path):
    runs = tmp_path / "runs"
    args = ["sweep", str(CONFIG), "-p", "lr=linspace(0.001,0.01,40)", "-p", "optimizer=sgd,adam,rmsprop,adagrad",
            "--set", "epochs=2000", "--set", "expect=null", "--record-every", "1", "--quiet", "--runs-dir", str(runs)]  # fmt: skip
    code, out, err = run_gdrun(args, fsize=700_000)
    assert code == 4, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1 and "disk full" in err
    (path,) = runs.iterdir()
    assert open_record(path).summary["status"] == "failed"
    assert len(read_results(path)) < 160 and directory_problems(runs) == []
    assert resume_problems(runs, args) == []


# ---------------------------------------------------------------------------- one sweep, two processes


def _stopped(proc: subprocess.Popen) -> bool:
    """Whether ``proc`` stopped itself (SIGSTOP at its fault point)."""
    try:
        return Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "T"
    except OSError:
        return False


def test_a_resume_while_the_sweep_runs_is_refused_then_concurrent_resumes_run_each_config_once(tmp_path):
    """Item 2: one lock per sweep directory. A process paused (SIGSTOP) at a file operation holds
    the sweep while another tries it."""
    if not Path("/proc/self/stat").exists():
        pytest.skip("needs /proc to see a process stop")
    runs = tmp_path / "runs"
    args = ["sweep", str(CONFIG), "-p", "optimizer=sgd,adam,rmsprop,adagrad", "-p", "lr=0.01,0.1", "--set", "epochs=100",
            "--set", "expect=null", "--quiet", "--runs-dir", str(runs)]  # fmt: skip
    first = gdrun_process(args, fault="8:STOP")  # paused after its first batch
    try:
        wait_for(lambda: _stopped(first) or first.poll() is not None)
        (path,) = runs.glob("sweep-*")
        before = (path / "results.csv").read_bytes()
        code, _, err = run_gdrun([*args, "--resume", str(path)])  # while the first still holds it
        assert code == 2 and len(err.strip().splitlines()) == 1, err
        assert "in use by process" in err and str(first.pid) in err
        assert (path / "results.csv").read_bytes() == before  # the refused resume wrote nothing
    finally:
        first.kill()
        first.wait()
    assert open_record(path).cut_off
    paused = gdrun_process([*args, "--resume", str(path)], fault="5:STOP")
    try:
        wait_for(lambda: _stopped(paused) or paused.poll() is not None)
        code, _, err = run_gdrun([*args, "--resume", str(path)])  # two resumes at once
        assert code == 2 and "in use by process" in err, err
    finally:
        paused.send_signal(signal.SIGCONT)
    out, err = paused.communicate(timeout=120)
    assert paused.returncode == 0 and "Traceback" not in err, err
    assert sorted(int(r["id"]) for r in read_results(path)) == list(range(8))  # every config exactly once
    metrics_ids = np.unique(np.fromfile(path / "metrics.f64").reshape(-1, 3 + 1 + 3)[:, 0])
    assert metrics_ids.tolist() == list(range(8))
    assert open_record(path).summary["status"] == "completed"


def test_a_half_written_sweep_file_is_a_one_line_error_on_resume(tmp_path, gdrun):
    runs = tmp_path / "runs"
    args = ["sweep", str(CONFIG), "-p", "lr=0.01,0.1", "--set", "expect=null", "--quiet", "--runs-dir", str(runs)]
    assert gdrun(*args).code == 0
    (path,) = runs.glob("sweep-*")
    text = (path / "sweep.yaml").read_text()
    for damaged in (text[: len(text) // 3], "", "configs: [\n"):
        (path / "sweep.yaml").write_text(damaged)
        r = gdrun(*args, "--resume", str(path))
        assert r.code == 2 and len(r.err.strip().splitlines()) == 1 and "sweep.yaml" in r.err, r.err
        assert "Traceback" not in r.err


# ---------------------------------------------------------------------------- what a reader sees


def test_show_of_a_run_killed_mid_way_shows_its_last_row_and_says_cut_off(tmp_path):
    """Item 9: not the start point and "f: None"."""
    runs = tmp_path / "runs"
    proc = gdrun_process(["minimize", "x2", "--lr", "1e-9", "--epochs", "100000000", "--quiet", "--runs-dir", str(runs)])
    try:
        wait_for(lambda: any(f.stat().st_size > 20_000 for f in runs.glob("*/metrics.csv")))
    finally:
        proc.kill()
        proc.wait()
    (run_dir,) = runs.iterdir()
    record = read_run(run_dir)
    assert record.cut_off and record.summary["status"] == "running"
    assert record.summary["iterations"] == record.metrics["step"][-1] > 100
    assert record.summary["params"]["x"] == record.metrics["x"][-1] != 7.5
    assert "cut off" in record.summary["reason"] and str(proc.pid) in record.summary["reason"]
    code, out, err = run_in_process(["show", str(run_dir)])
    assert code == 0 and "running (cut off)" in out and "cut off at step" in out and "None" not in out


def test_show_of_a_run_without_rows_or_with_a_torn_row(gdrun):
    r = gdrun("minimize", "x2", "--epochs", "5", "--quiet")
    (run_dir,) = r.run_dirs()
    metrics = run_dir / "metrics.csv"
    whole = metrics.read_text()
    metrics.write_text(whole + "6,0.1,0.0")  # a torn last row: dropped
    assert read_run(run_dir).metrics["step"].tolist() == [0, 1, 2, 3, 4, 5]
    metrics.write_text("")  # zero bytes: no rows, no StopIteration
    assert read_run(run_dir).metrics == {}
    shown = gdrun("show", str(run_dir))
    assert shown.code == 0 and "max_epochs" in shown.out, shown.err


def test_show_of_a_sweep_directory_prints_the_sweep(gdrun, tmp_path):
    runs = tmp_path / "runs"
    assert gdrun("sweep", str(CONFIG), "-p", "lr=0.01,0.1", "--set", "expect=null", "--quiet", "--runs-dir", str(runs)).code == 0
    (path,) = runs.glob("sweep-*")
    r = gdrun("show", str(path))
    assert r.code == 0 and "completed" in r.out and f"gdrun show {path}/ID" in r.out, r.err


def test_non_finite_numbers_are_json_null_and_old_strings_still_read(gdrun, tmp_path):
    r = gdrun("minimize", "sqrt(x)", "--init", "1", "--lr", "3", "--epochs", "10", "--quiet")  # nan at step 1
    (run_dir,) = r.run_dirs()
    text = (run_dir / "summary.json").read_text()
    summary = json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in summary.json"))
    assert summary["status"] == "diverged" and '"inf"' not in text and '"-inf"' not in text and '"nan"' not in text
    assert summary["value"] is None and summary["grad_norm"] is None
    # a summary from an older gdrun, numbers as strings, still reads and shows
    summary.update(value="inf", grad_norm="nan", params={"x": "-inf"})
    (run_dir / "summary.json").write_text(json.dumps(summary))
    shown = gdrun("show", str(run_dir))
    assert shown.code == 0 and "Traceback" not in shown.err


def _fork_server_of(pid: int) -> bool:
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        return any(b"forkserver" in Path(f"/proc/{c}/cmdline").read_bytes() for c in children)
    except OSError:
        return False


def test_ctrl_c_while_the_process_pool_starts_prints_no_traceback(tmp_path):
    """Item 7: the fork server and workers are born with Ctrl-C blocked."""
    runs = tmp_path / "runs"
    args = ["sweep", str(CONFIG), "-p", "optimizer=sgd,adam", "--set", "epochs=100000", "--set", "expect=null",
            "--executor", "processes", "--workers", "2", "--quiet", "--runs-dir", str(runs)]  # fmt: skip
    if not Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children").exists():
        pytest.skip("needs /proc to see the fork server start")
    proc = gdrun_process(args, start_new_session=True)
    try:
        wait_for(lambda: _fork_server_of(proc.pid))
        time.sleep(0.3)  # it is importing gdrun now
        os.killpg(proc.pid, signal.SIGINT)  # as a terminal does: to the whole process group
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130 and "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert directory_problems(runs) == []


def test_a_kill_between_runs_of_a_batch_leaves_every_directory_honest(tmp_path):
    """A comparison writes several run directories; a kill after each file operation of it."""
    problems = []
    for point in (3, 9):
        case = tmp_path / str(point)
        code, _, err = run_gdrun(["minimize", "x2", "--optimizer", "sgd,adam", "--epochs", "50", "--quiet",
                                  "--runs-dir", str(case / "runs")], fault=f"{point}:KILL")  # fmt: skip
        problems += ["Traceback"] if "Traceback" in err else []
        problems += directory_problems(case / "runs")
    assert problems == []


def test_runs_started_together_never_collide(tmp_path):
    runs = tmp_path / "runs"
    procs = [gdrun_process(["minimize", "x2", "--epochs", "5", "--quiet", "--runs-dir", str(runs)]) for _ in range(3)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0]
    assert len([p for p in runs.iterdir() if not p.name.startswith(".")]) == 3 and directory_problems(runs) == []

