"""What the diagnostics (``explain``) add to a run: the same runs with them on and off, side by side.

    python benchmarks/bench_explain.py           # 9 repeats of the short run, 5 of the long one
    python benchmarks/bench_explain.py --quick   # 3 and 1

(a) A 10-step run, as a user starts it: whole-process wall time of
    ``python -m gdrun minimize x2 --lr 0.1 --epochs 10 --quiet`` against the same command with
    ``--set explain=false``.
(b) A 100,000-step run of the same function (lr 1e-5, every step written to metrics.csv), whole
    process, on and off.
(c) A sweep of 1,000 configs (lr x init on x2, 1000 steps): ``gdrun sweep`` with and without
    ``--explain`` (information only: a sweep explains per config only on request).

Each line also gives what the diagnostics cost inside the run (``diagnostics.wall_time_s`` in
summary.json, against the engine's ``wall_time_s``): the direct figure, free of process noise.

Target: (a) and (b) cost at most 20% more with the diagnostics on. The contestants are
interleaved (the starting one rotated each repeat) and medians are reported; the machine may be
shared and noisy. Nothing here asserts: a missed target prints MISS and the exit code stays 0.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TARGET = 1.20


DIAGNOSTICS_S: list[tuple[float, float]] = []  # (diagnostics wall_time_s, run wall_time_s) of the runs with them on


def timed(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "gdrun", *argv], cwd=REPO, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"gdrun {' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()[-300:]}")
    if argv[0] == "minimize" and argv[-1] == "--json":  # the summary tells what the diagnostics themselves cost
        summary = json.loads(done.stdout)
        if "diagnostics" in summary:
            DIAGNOSTICS_S.append((summary["diagnostics"]["wall_time_s"], summary["wall_time_s"]))
    return elapsed


def compare(label: str, argv: list[str], off: list[str], on: list[str], repeats: int, env: dict[str, str],
            target: float | None) -> None:  # fmt: skip
    """Time ``argv + on`` and ``argv + off`` alternately; print medians and their ratio."""
    timed(argv + on, env)  # warm-up: the derivative caches, the OS file cache
    timed(argv + off, env)
    times: dict[str, list[float]] = {"on": [], "off": []}
    for r in range(repeats):
        order = [("on", on), ("off", off)] if r % 2 == 0 else [("off", off), ("on", on)]
        for name, extra in order:
            times[name].append(timed(argv + extra, env))
    if DIAGNOSTICS_S:
        inside = statistics.median(d for d, _ in DIAGNOSTICS_S)
        engine = statistics.median(w for _, w in DIAGNOSTICS_S)
        print(f"{'':<44} measured inside the run: diagnostics {inside * 1e3:.1f} ms, the engine {engine * 1e3:.1f} ms")
        DIAGNOSTICS_S.clear()
    m_on, m_off = statistics.median(times["on"]), statistics.median(times["off"])
    ratio = m_on / m_off
    mark = "" if target is None else ("  PASS" if ratio <= target else "  MISS") + f" (target <= {target:.2f})"
    print(f"{label:<44} on {m_on:7.3f} s   off {m_off:7.3f} s   ratio {ratio:5.2f}{mark}")
    print(f"{'':<44} on min..max {min(times['on']):.3f}..{max(times['on']):.3f}, "
          f"off {min(times['off']):.3f}..{max(times['off']):.3f} ({repeats} repeats each)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    args = parser.parse_args()
    short, long = (3, 1) if args.quick else (9, 5)
    work = Path(tempfile.mkdtemp(prefix="gdrun-bench-explain-"))
    env = {**os.environ, "GDRUN_CACHE_DIR": str(work / "cache"), "GDRUN_RUNS_DIR": str(work / "runs")}
    try:
        print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs; median whole-process wall time")
        compare("(a) x2, 10 steps", ["minimize", "x2", "--lr", "0.1", "--epochs", "10", "--json"],
                ["--set", "explain=false"], [], short, env, TARGET)  # fmt: skip
        compare("(b) x2, 100,000 steps, every step recorded",
                ["minimize", "x2", "--lr", "1e-5", "--epochs", "100000", "--json"],
                ["--set", "explain=false"], [], long, env, TARGET)  # fmt: skip
        config = work / "sweep.yaml"
        config.write_text("function: x2\nepochs: 1000\nlr: 0.01\n")
        compare("(c) sweep, 1,000 configs x 1000 steps",
                ["sweep", str(config), "-p", "lr=logspace(-4,0.05,100)", "-p", "init=linspace(-5,5,10)", "--quiet"],
                [], ["--explain"], long, env, None)  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
