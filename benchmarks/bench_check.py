"""`gdrun check` on 50 small configs: whole-process wall time. Target: under 5 s.

Writes 50 configs with an expect: part to a temp dir (x2 and 2-3 variable quadratics with several
learning rates, numpy backend, 10 to 200 steps, and a few small fits), then times
``python -m gdrun check DIR --runs-dir TMP --junit TMP/report.xml`` as a subprocess from the repo
root: one untimed warm-up (fills gdrun's derivative cache and the OS file cache), then 3 timed
repeats; the median is reported with min and max. It reports and never fails (a missed target
prints MISS; the exit code stays 0).

    python benchmarks/bench_check.py
"""

from __future__ import annotations

import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
N_CONFIGS = 50
REPEATS = 3
TARGET_S = 5.0


def configs() -> list[dict]:
    """50 small configs, each with expectations that hold."""
    out = []
    for i in range(40):
        lr = 0.05 + 0.01 * (i % 10)
        epochs = (10, 50, 100, 200)[i % 4]
        function = ("x2", "x**2 + y**2", "x**2 + 2*y**2 + 3*z**2", "(x - 1)**2")[i // 10]
        config = {"function": function, "lr": lr, "epochs": epochs, "init": 1.5}
        if function == "x2":  # x_k = (1 - 2 lr)^k * 1.5, exactly known
            config["expect"] = {"status": "max_epochs", "steps_at_least": epochs,
                                "params": {"x": {"value": (1 - 2 * lr) ** epochs * 1.5, "rtol": 1e-9}}}  # fmt: skip
        else:
            config["expect"] = {"status": "max_epochs", "value": {"value": 0, "atol": 1.0}}
        out.append(config)
    for i in range(10):
        config = {"fit": {"model": "w*x + b", "data": {"x": [1, 2, 3, 4], "y": [3, 5, 7, 9]}, "predict": [5]},
                  "lr": 0.02 + 0.005 * i, "epochs": 100, "init": {"w": 1.0, "b": 0.0},
                  "expect": {"status": "max_epochs", "r2": {"value": 1, "atol": 0.1}}}  # fmt: skip
        out.append(config)
    assert len(out) == N_CONFIGS
    return out


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="gdrun-bench-check-"))
    env = {**os.environ, "GDRUN_CACHE_DIR": str(work / "cache")}
    try:
        folder = work / "configs"
        folder.mkdir()
        for i, config in enumerate(configs()):
            (folder / f"c{i:02d}.yaml").write_text(yaml.safe_dump(config, sort_keys=False))

        def once(tag: str) -> float:
            command = [sys.executable, "-m", "gdrun", "check", str(folder), "--runs-dir", str(work / f"runs-{tag}"),
                       "--junit", str(work / f"report-{tag}.xml")]  # fmt: skip
            started = time.perf_counter()
            done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
            wall = time.perf_counter() - started
            if done.returncode != 0:
                sys.exit(f"gdrun check exited {done.returncode}:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
            return wall

        once("warm-up")
        times = [once(str(k)) for k in range(REPEATS)]
        footer = [line for line in subprocess.run(
            [sys.executable, "-m", "gdrun", "check", str(folder), "--runs-dir", str(work / "runs-last")],
            cwd=REPO, env=env, capture_output=True, text=True).stdout.splitlines() if line.strip()][-1]  # fmt: skip
        median = statistics.median(times)
        print(f"gdrun check benchmark, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
        print(f"python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs")
        print(f"{N_CONFIGS} configs (40 minimize on numpy, 10 to 200 steps; 10 small fits, 100 epochs), "
              f"whole process, one warm-up, {REPEATS} repeats")  # fmt: skip
        print(f"  last run says: {footer}")
        print(f"  wall time: median {median:.2f} s  (min {min(times):.2f}, max {max(times):.2f}); "
              f"{1000 * median / N_CONFIGS:.0f} ms per config")  # fmt: skip
        verdict = "PASS" if median < TARGET_S else "MISS"
        print(f"  target: under {TARGET_S:g} s -> {median:.2f} s   {verdict}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
