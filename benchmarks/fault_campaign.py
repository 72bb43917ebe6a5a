"""The fault campaign: the checks of tests/test_faults.py at every point, with figures.

For each scenario (a run, a fit, a comparison, a sweep, a check) it delivers SIGKILL, SIGTERM and
SIGINT after each of the scenario's file operations (the GDRUN_FAULT_AFTER hook), kills long
sweeps at random moments, fills the disk (file-size limits from a few KB up) under every scenario,
and runs pairs of resumes of one sweep at once. After each fault it opens every directory with
gdrun's reader and checks what tests/test_faults.py checks (readable, status honest, whole rows,
a resumed sweep holds every config exactly once), then prints the figures for docs/reliability.md.
The exit code is 1 when a problem was found, else 0.

    python benchmarks/fault_campaign.py                  # about 15 minutes on 2 cores
    python benchmarks/fault_campaign.py --random-kills 5 --seed 1
"""

from __future__ import annotations

import argparse
import random
import signal
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))  # the tests import their helpers module

from tests import test_faults as faults  # noqa: E402

DISK_LIMITS = (2_000, 6_000, 20_000, 60_000, 200_000)
DISK_SCENARIOS = {  # scenario -> the command made long enough to fill the limit
    "run": ["minimize", "x2", "--lr", "1e-9", "--epochs", "3000000", "--quiet"],
    "fit": ["fit", "w*x + b", "--x", "1,2,3,4", "--y", "2,4,6,8", "--lr", "1e-9", "--epochs", "3000000", "--quiet"],
    "compare": ["minimize", "x2", "--optimizer", "sgd,adam", "--lr", "1e-9", "--epochs", "3000000", "--quiet"],
}


def _traceback(err: str) -> str:
    """A problem line for a traceback: "Traceback" and its last lines."""
    return "Traceback: " + " | ".join(err.strip().splitlines()[-3:])


class Figures:
    def __init__(self) -> None:
        self.signals = self.dirs = self.tracebacks = self.problems = self.disk_full = self.resumes = self.refused = 0
        self.found: list[str] = []

    def add(self, problems: list[str]) -> None:
        self.problems += len(problems)
        self.tracebacks += sum("Traceback" in p for p in problems)
        self.found += problems
        for p in problems:
            print("  PROBLEM", p[:300], flush=True)

    def count_dirs(self, runs: Path) -> None:
        if runs.is_dir():
            self.dirs += sum(1 for p in runs.iterdir() if not p.name.startswith("."))


def signal_points(fig: Figures, tmp: Path) -> None:
    for scenario, top in faults.MAX_POINTS.items():
        for sig in ("KILL", "TERM", "INT"):
            for point in range(1, top + 1):
                case = Path(tempfile.mkdtemp(dir=tmp))
                args = faults.scenario_args(scenario, case)
                code, _, err = faults.run_gdrun(args, fault=f"{point}:{sig}")
                fig.signals += code in (-9, -15, 130)
                problems = [f"{scenario} SIG{sig} at {point}: {_traceback(err)}"] if "Traceback" in err else []
                problems += [f"{scenario} SIG{sig} at {point}: {p}" for p in faults.directory_problems(case / "runs")]
                fig.count_dirs(case / "runs")
                if scenario == "sweep":
                    problems += [f"{scenario} SIG{sig} at {point}: {p}" for p in faults.resume_problems(case / "runs", args)]
                    fig.resumes += 1
                fig.add(problems)
        print(f"{scenario}: signals at each file operation done", flush=True)


def random_kills(fig: Figures, tmp: Path, count: int, rng: random.Random) -> None:
    for i in range(count):
        case = Path(tempfile.mkdtemp(dir=tmp))
        runs = case / "runs"
        args = ["sweep", str(faults.CONFIG), "-p", "optimizer=sgd,adam,rmsprop,adagrad", "-p", "lr=0.001,0.01",
                "--set", "epochs=60000", "--set", "expect=null", "--quiet", "--runs-dir", str(runs)]  # fmt: skip
        proc = faults.gdrun_process(args)
        time.sleep(rng.uniform(0.3, 6.0))
        proc.send_signal(rng.choice([signal.SIGKILL, signal.SIGTERM, signal.SIGINT]))
        _, err = proc.communicate(timeout=300)
        fig.signals += proc.returncode in (-9, -15, 130)
        problems = [_traceback(err)] if "Traceback" in err else []
        problems += faults.directory_problems(runs) + faults.resume_problems(runs, args)
        fig.count_dirs(runs)
        fig.resumes += 1
        fig.add([f"random kill {i}: {p}" for p in problems])
    print("random kills done", flush=True)


def full_disks(fig: Figures, tmp: Path) -> None:
    for limit in DISK_LIMITS:
        for scenario, command in DISK_SCENARIOS.items():
            case = Path(tempfile.mkdtemp(dir=tmp))
            code, _, err = faults.run_gdrun([*command, "--runs-dir", str(case / "runs")], fsize=limit)
            fig.disk_full += "disk full" in err
            problems = [_traceback(err)] if "Traceback" in err else []
            if code not in (0, 4) or len(err.strip().splitlines()) > len(command):
                problems.append(f"exit {code}: {err.strip()[-200:]}")
            problems += faults.directory_problems(case / "runs")
            fig.count_dirs(case / "runs")
            fig.add([f"{scenario} with {limit} bytes: {p}" for p in problems])
        case = Path(tempfile.mkdtemp(dir=tmp))
        args = faults.scenario_args("sweep", case)
        code, _, err = faults.run_gdrun(args, fsize=limit)
        fig.disk_full += "disk full" in err
        problems = ([_traceback(err)] if "Traceback" in err else []) + faults.directory_problems(case / "runs")
        problems += faults.resume_problems(case / "runs", args)
        fig.resumes += 1
        fig.count_dirs(case / "runs")
        fig.add([f"sweep with {limit} bytes: {p}" for p in problems])
    print("full disks done", flush=True)


def concurrent_resumes(fig: Figures, tmp: Path, count: int) -> None:
    for i in range(count):
        case = Path(tempfile.mkdtemp(dir=tmp))
        runs = case / "runs"
        args = ["sweep", str(faults.CONFIG), "-p", "optimizer=sgd,adam,rmsprop,adagrad", "-p", "lr=0.001,0.01",
                "--set", "epochs=30000", "--set", "expect=null", "--quiet", "--runs-dir", str(runs)]  # fmt: skip
        first = faults.gdrun_process(args)
        time.sleep(1.5 + 0.5 * (i % 4))
        first.kill()
        first.wait()
        paths = list(runs.glob("sweep-*"))
        if not paths:
            continue
        both = [faults.gdrun_process([*args, "--resume", str(paths[0])]) for _ in range(2)]
        outs = [p.communicate(timeout=300) for p in both]
        codes = sorted(p.returncode for p in both)
        fig.resumes += 2
        fig.refused += codes == [0, 2]
        problems = [f"exit codes {codes}"] if codes not in ([0, 0], [0, 2]) else []
        problems += [_traceback(err) for _, err in outs if "Traceback" in err]
        problems += faults.directory_problems(runs) + faults.resume_problems(runs, args)
        fig.count_dirs(runs)
        fig.add([f"concurrent resumes {i}: {p}" for p in problems])
    print("concurrent resumes done", flush=True)


def ctrl_c_pool(fig: Figures, tmp: Path, count: int) -> None:
    """Ctrl-C to the whole process group while the process pool's fork server imports gdrun."""
    import os

    for i in range(count):
        case = Path(tempfile.mkdtemp(dir=tmp))
        runs = case / "runs"
        args = ["sweep", str(faults.CONFIG), "-p", "optimizer=sgd,adam", "--set", "epochs=100000", "--set", "expect=null",
                "--executor", "processes", "--workers", "2", "--quiet", "--runs-dir", str(runs)]  # fmt: skip
        proc = faults.gdrun_process(args, start_new_session=True)
        deadline = time.time() + 60
        while not faults._fork_server_of(proc.pid) and proc.poll() is None and time.time() < deadline:
            time.sleep(0.01)
        time.sleep(0.1 * (i % 8))
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=120)
        fig.signals += 1
        problems = [_traceback(err)] if "Traceback" in err or "KeyboardInterrupt" in err else []
        problems += [f"exit {proc.returncode}"] if proc.returncode not in (0, 130) else []
        problems += faults.directory_problems(runs) + faults.resume_problems(runs, args)
        fig.resumes += 1
        fig.count_dirs(runs)
        fig.add([f"Ctrl-C at pool start {i}: {p}" for p in problems])
    print("Ctrl-C at pool start done", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--random-kills", type=int, default=40)
    parser.add_argument("--concurrent", type=int, default=10)
    parser.add_argument("--pool-interrupts", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    options = parser.parse_args()
    fig = Figures()
    started = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        signal_points(fig, Path(tmp))
        random_kills(fig, Path(tmp), options.random_kills, random.Random(options.seed))
        full_disks(fig, Path(tmp))
        concurrent_resumes(fig, Path(tmp), options.concurrent)
        ctrl_c_pool(fig, Path(tmp), options.pool_interrupts)
    print(f"signals delivered: {fig.signals}")
    print(f"full disks hit: {fig.disk_full}")
    print(f"resumes run: {fig.resumes} (a second resume at the same time refused: {fig.refused})")
    print(f"directories checked: {fig.dirs}")
    print(f"tracebacks found: {fig.tracebacks}")
    print(f"problems found (data lost, dishonest status, unreadable): {fig.problems}")
    print(f"time: {time.time() - started:.0f} s")
    return 1 if fig.problems else 0


if __name__ == "__main__":
    sys.exit(main())
