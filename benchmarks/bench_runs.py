"""`gdrun runs` over a folder of 10,000 run directories. Target: under 3 s, whole process.

Makes a few real runs (minimize, fit, a diverged one) and a real sweep with gdrun, then copies
them into 10,000 run directories with the names gdrun gives (a time stamp a few seconds apart, the
run's name, a fresh id) and their summaries' names and statuses varied, plus 20 sweeps. Then it
times, as whole processes from the repository root (one untimed warm-up, then the median of 3):

- ``gdrun runs --json``: every row. The first listing of a folder reads every summary.json and
  keeps the finished runs' rows in ``runs/.runs-index.json``; a later one reads the summaries
  whose size or time changed, and a stat of the rest. Both are timed (the first by removing the
  index before each repeat);
- ``gdrun runs --status diverged --csv``: a filter over every row;
- ``gdrun runs``: the table of the newest 50;
- ``gdrun show last`` and ``gdrun show <id prefix>``: naming a run among 10,000;
- side by side, the floor: a bare Python process that lists the folder and ``json.load``s every
  summary.json (what any listing must at least do).

It reports and never fails (a missed target prints MISS).

    python benchmarks/bench_runs.py [--runs 10000]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGET_S = 3.0
REPEATS = 3
FLOOR = """
import json, os, sys
rows = []
for item in os.scandir(sys.argv[1]):
    if item.is_dir() and not item.name.startswith("."):
        try:
            with open(os.path.join(item.path, "summary.json")) as f:
                rows.append(json.load(f))
        except OSError:
            pass
print(len(rows))
"""


def gdrun(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gdrun", *args], cwd=REPO, env=env, capture_output=True, text=True,
                          check=False)  # fmt: skip


def make_folder(root: Path, n: int, env: dict[str, str]) -> str:
    """``n`` run directories and 20 sweeps under ``root``; returns the id of one run in the middle."""
    seeds = root / "seeds"
    for args in (["minimize", "rosenbrock", "--lr", "0.001", "--epochs", "200"],
                 ["minimize", "x2", "--lr", "1.05", "--epochs", "50"],
                 ["fit", "w*x + b", "--x", "1,2,3,4", "--y", "3,5,7,9", "--epochs", "100"]):  # fmt: skip
        done = gdrun(*args, "--quiet", "--runs-dir", str(seeds), env=env)
        assert done.returncode in (0, 3), done.stderr
    done = gdrun("sweep", "configs/sweep_x2_which_lr_converges.yaml", "--quiet", "--runs-dir", str(seeds), env=env)
    assert done.returncode == 0, done.stderr
    runs = sorted(p for p in seeds.iterdir() if not p.name.startswith("sweep-"))
    sweep = next(p for p in seeds.iterdir() if p.name.startswith("sweep-"))
    folder = root / "runs"
    folder.mkdir()
    start = time.time() - n * 3
    middle = ""
    for i in range(n):
        source = runs[i % len(runs)]
        summary = json.loads((source / "summary.json").read_text())
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(start + 3 * i))
        name = f"{summary['name']}-{i % 97}"
        run_id = secrets.token_hex(3)
        target = folder / f"{stamp}-{name}-{run_id}"
        target.mkdir()
        for file in ("config.yaml", "metrics.csv"):
            shutil.copyfile(source / file, target / file)
        summary.update(name=name, run_dir=str(target), status=("converged", "max_epochs", "diverged")[i % 3])
        (target / "summary.json").write_text(json.dumps(summary, indent=2))
        if i == n // 2:
            middle = run_id
    for i in range(20):
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(start + 3 * i + 1))
        shutil.copytree(sweep, folder / f"sweep-{stamp}-lrs-{secrets.token_hex(3)}", ignore=shutil.ignore_patterns(".lock"))
    return middle


def timed(command: list[str], env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess]:
    started = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    return time.perf_counter() - started, done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    n = parser.parse_args().runs
    work = Path(tempfile.mkdtemp(prefix="gdrun-bench-runs-"))
    env = {**os.environ, "GDRUN_CACHE_DIR": str(work / "cache")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # an installed gdrun has its bytecode cached
    try:
        made = time.perf_counter()
        middle = make_folder(work, n, env)
        folder = str(work / "runs")
        print(f"gdrun runs over {n:,} run directories and 20 sweeps (made in {time.perf_counter() - made:.1f} s)")
        python = [sys.executable, "-m", "gdrun"]
        contestants = {
            "floor: list + json.load all": [sys.executable, "-c", FLOOR, folder],
            "gdrun runs --json, first (no index)": [*python, "runs", "--json", "--runs-dir", folder],
            "gdrun runs --json": [*python, "runs", "--json", "--runs-dir", folder],
            "gdrun runs --status diverged --csv": [*python, "runs", "--status", "diverged", "--csv", "--runs-dir", folder],
            "gdrun runs (newest 50)": [*python, "runs", "--runs-dir", folder],
            "gdrun show last": [*python, "show", "last", "--runs-dir", folder],
            f"gdrun show {middle[:4]} (id prefix)": [*python, "show", middle[:4], "--runs-dir", folder],
        }
        times: dict[str, list[float]] = {k: [] for k in contestants}
        for label, command in contestants.items():  # warm-up: the OS file cache, bytecode
            _, done = timed(command, env)
            if done.returncode != 0 and "matches" not in done.stderr:
                raise SystemExit(f"{label} failed: {done.stderr.strip()}")
        rows = json.loads(timed(contestants["gdrun runs --json"], env)[1].stdout)
        assert len(rows) == n + 20, len(rows)
        index = Path(folder) / ".runs-index.json"
        for _ in range(REPEATS):
            for label, command in contestants.items():  # alternated, so a noisy moment hits all alike
                if "no index" in label:
                    index.unlink(missing_ok=True)
                times[label].append(timed(command, env)[0])
        floor = statistics.median(times["floor: list + json.load all"])
        print(f"{'':40} {'median':>8} {'min':>7} {'max':>7} {'/floor':>7} {'target':>8}")
        for label, values in times.items():
            median = statistics.median(values)
            verdict = "" if label.startswith("floor") else ("ok" if median < TARGET_S else "MISS") + f" < {TARGET_S:g} s"
            print(f"{label:40} {median:7.2f}s {min(values):6.2f}s {max(values):6.2f}s {median / floor:7.2f} {verdict:>8}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
