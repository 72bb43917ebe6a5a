"""`gdrun compare` against a plain `gdrun sweep` of the same number of config-steps. Target: within 3x.

(A) ``python -m gdrun compare rosenbrock --optimizer <8 variants> --target 1e-6 --budget 50 --starts 32
    --heldout 32 --epochs 2000 --quiet --runs-dir TMP``, the 8 variants
    sgd, sgd:momentum=0.5, sgd:momentum=0.9, sgd:momentum=0.9:nesterov=true, adam, adamw, rmsprop,
    adagrad, each searching only the lr (50 settings on a log grid over 1e-5..1): per variant one
    engine batch of 50 x 32 = 1,600 tuning runs, then one of 32 held-out runs, 2,000 steps each on
    2-D rosenbrock. 8 x 1,600 = 12,800 tuning runs plus 8 x 32 = 256 held-out runs.
(B) ``python -m gdrun sweep CONFIG --quiet --runs-dir TMP --set expect=null``, CONFIG a temp YAML:
    rosenbrock, sgd, 2,000 epochs, init_range [-2.048, 2.048], a grid of lr = logspace(-5, 0, 50)
    x seed = range(0, 256): 12,800 configs, the config-steps of A's tuning. One engine batch.
(B') the same with lr = logspace(-5, 0, 51): 13,056 configs = 12,800 + 256, the config-steps of
    A's tuning plus its held-out re-runs (A's whole count).

All three run as whole processes from the repo root (CPU time = user + sys of the process, from
``wait4``); one small untimed warm-up of each first (fills gdrun's derivative cache in
GDRUN_CACHE_DIR, the bytecode cache and the OS file cache), then 3 repeats (1 with ``--quick``),
alternated with the starting one rotated each repeat; medians with min and max. Each run of A must
exit 0 with a comparison directory whose summary.json says completed with 8 variants, each holding
50 lrs x 32 tuning starts and 32 held-out results; each run of B must exit 0 with a completed sweep
of all its configs. Printed: the wall time of A, B and B', the ratios A / B (the issue's target:
<= 3.0) and A / B', and the config-steps per second of each. B's optimizer is plain SGD, the
cheapest update; A also runs Adam, RMSProp..., so the ratio includes their dearer updates.

It reports and never fails (a missed target prints MISS; the exit code stays 0). All temp dirs
(cache, configs, run directories) are removed at the end.

    python benchmarks/bench_compare.py           # full: about 1 minute on a 2-core box
    python benchmarks/bench_compare.py --quick   # 2 variants, 200 steps, 1 repeat: about 10 s
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
TARGET_RATIO = 3.0  # gdrun compare / gdrun sweep of the same config-steps, wall time
VARIANTS = ("sgd", "sgd:momentum=0.5", "sgd:momentum=0.9", "sgd:momentum=0.9:nesterov=true", "adam", "adamw",
            "rmsprop", "adagrad")  # fmt: skip
QUICK_VARIANTS = ("sgd", "adam")
INIT_RANGE = [-2.048, 2.048]  # rosenbrock's built-in domain


@dataclass(frozen=True)
class Sizes:
    variants: tuple[str, ...]
    budget: int  # lrs per variant
    starts: int  # tuning starts
    heldout: int  # held-out starts
    epochs: int

    @property
    def tuning_runs(self) -> int:
        return len(self.variants) * self.budget * self.starts

    @property
    def heldout_runs(self) -> int:
        return len(self.variants) * self.heldout


FULL = Sizes(VARIANTS, 50, 32, 32, 2000)
QUICK = Sizes(QUICK_VARIANTS, 50, 32, 32, 200)
WARM = Sizes(QUICK_VARIANTS, 2, 2, 2, 5)


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("ok" if ok else "MISS")


def show(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def run(cmd: list[str], env: dict) -> tuple[float, float, int, str]:
    """``cmd`` as a whole process from the repo root: (wall s, CPU s user + sys, exit status, output tail)."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = proc.stdout.read()  # --quiet: little or nothing; read before waiting so a full pipe never blocks it
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_utime + usage.ru_stime, proc.returncode, out.decode(errors="replace").strip()[-400:]


def compare_cmd(sizes: Sizes, runs: Path) -> list[str]:
    return [sys.executable, "-m", "gdrun", "compare", "rosenbrock", "--optimizer", ",".join(sizes.variants),
            "--target", "1e-6", "--budget", str(sizes.budget), "--starts", str(sizes.starts),
            "--heldout", str(sizes.heldout), "--epochs", str(sizes.epochs), "--quiet", "--runs-dir", str(runs)]  # fmt: skip


def sweep_config(path: Path, sizes: Sizes, n_lr: int) -> Path:
    """n_lr log-spaced lrs x (variants x starts) seeds, plain SGD on rosenbrock, starts drawn from its domain."""
    raw = {"name": "bench-compare-baseline", "function": "rosenbrock", "backend": "numpy", "dtype": "float64",
           "optimizer": "sgd", "epochs": sizes.epochs, "init_range": INIT_RANGE,
           "sweep": {"kind": "grid", "params": {"lr": {"logspace": [-5, 0, n_lr]},
                                                "seed": {"range": [0, len(sizes.variants) * sizes.starts]}}}}  # fmt: skip
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def sweep_cmd(config: Path, runs: Path) -> list[str]:
    return [sys.executable, "-m", "gdrun", "sweep", str(config), "--quiet", "--runs-dir", str(runs), "--set", "expect=null"]


def check_compare(runs: Path, sizes: Sizes) -> tuple[str, float | None]:
    """'' when the comparison directory is complete (else what is wrong), and its own wall_time_s."""
    found = sorted(runs.glob("compare-*"))
    if len(found) != 1:
        return f"{len(found)} comparison directories", None
    summary = json.loads((found[0] / "summary.json").read_text())
    if summary.get("status") != "completed" or len(summary.get("variants", [])) != len(sizes.variants):
        return f"summary says {summary.get('status')} with {len(summary.get('variants', []))} variants", None
    for entry in summary["variants"]:
        data = np.load(found[0] / entry["file"])
        if (data["lrs"].shape != (sizes.budget,) or data["tuning_steps"].shape != (sizes.budget, sizes.starts)
                or data["heldout_final"].shape != (sizes.heldout,)):  # fmt: skip
            return f"{entry['label']}: {data['lrs'].shape[0]} lrs, tuning {data['tuning_steps'].shape}", None
    return "", float(summary["wall_time_s"])


def check_sweep(runs: Path, configs: int) -> tuple[str, float | None]:
    found = sorted(runs.glob("sweep-*"))
    if len(found) != 1:
        return f"{len(found)} sweep directories", None
    summary = json.loads((found[0] / "summary.json").read_text())
    if summary.get("status") != "completed" or summary.get("configs") != configs:
        return f"summary says {summary.get('status')} with {summary.get('configs')} configs", None
    return "", float(summary["wall_time_s"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 variants (sgd, adam), 200 steps, 1 repeat")
    parser.add_argument("--repeats", type=int, default=None, help="timed repeats of each contestant (default 3)")
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    repeats = args.repeats or (1 if args.quick else 3)

    work = Path(tempfile.mkdtemp(prefix="gdrun-bench-compare-"))
    # the contestants cache their bytecode as an installed package does (an editable install under
    # PYTHONDONTWRITEBYTECODE=1 would compile gdrun's sources in every process, ~0.1 s each time)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["GDRUN_CACHE_DIR"] = str(work / "cache")
    started = time.perf_counter()
    try:
        V, E = len(sizes.variants), sizes.epochs
        n_b, n_b2 = sizes.tuning_runs, (sizes.budget + 1) * V * sizes.starts
        steps = {"A": (sizes.tuning_runs + sizes.heldout_runs) * E, "B": n_b * E, "B'": n_b2 * E}
        names = {"A": "A  gdrun compare", "B": "B  gdrun sweep", "B'": "B' gdrun sweep"}
        config_b = sweep_config(work / "b.yaml", sizes, sizes.budget)
        config_b2 = sweep_config(work / "b2.yaml", sizes, sizes.budget + 1)
        commands = {"A": lambda runs: compare_cmd(sizes, runs), "B": lambda runs: sweep_cmd(config_b, runs),
                    "B'": lambda runs: sweep_cmd(config_b2, runs)}  # fmt: skip
        checks = {"A": lambda runs: check_compare(runs, sizes), "B": lambda runs: check_sweep(runs, n_b),
                  "B'": lambda runs: check_sweep(runs, n_b2)}  # fmt: skip

        print(f"gdrun compare benchmark ({'quick' if args.quick else 'full'} mode), "
              f"{_dt.datetime.now(_dt.timezone.utc):%Y-%m-%d %H:%M UTC}")  # fmt: skip
        print(f"python {platform.python_version()}, numpy {np.__version__}, {platform.system()} {platform.machine()}, "
              f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")  # fmt: skip
        print("GDRUN_CACHE_DIR = a fresh temp dir; bytecode cached as in an installed package;")
        print("whole processes, cwd = repo root")
        print()
        print(f"A  gdrun compare rosenbrock --optimizer {','.join(sizes.variants)}")
        print(f"     --target 1e-6 --budget {sizes.budget} --starts {sizes.starts} --heldout {sizes.heldout} "
              f"--epochs {E} --quiet")  # fmt: skip
        print(f"   {V} variants x {sizes.budget} lrs x {sizes.starts} starts = {sizes.tuning_runs:,} tuning runs "
              f"+ {V} x {sizes.heldout} = {sizes.heldout_runs:,} held-out runs, {E:,} steps each")  # fmt: skip
        print(f"B  gdrun sweep: rosenbrock, sgd, {E:,} epochs, init_range {INIT_RANGE}, lr = logspace(-5, 0, "
              f"{sizes.budget}) x seed = range(0, {V * sizes.starts}) = {n_b:,} configs (A's tuning)")  # fmt: skip
        print(f"B' the same with lr = logspace(-5, 0, {sizes.budget + 1}) = {n_b2:,} configs "
              f"(A's tuning + held-out runs)")  # fmt: skip
        print(f"one small untimed warm-up of each; then {repeats} repeat(s), alternated (the first one rotated)")
        print()

        warm = {"A": compare_cmd(WARM, work / "warm"),
                "B": sweep_cmd(sweep_config(work / "warm.yaml", Sizes(WARM.variants, 2, 2, 2, 5), 2), work / "warm")}  # fmt: skip
        for key, cmd in warm.items():
            _, _, code, tail = run(cmd, env)
            if code != 0:
                print(f"   !! warm-up of {key} exited {code}: {tail}")
        shutil.rmtree(work / "warm", ignore_errors=True)

        keys = list(commands)
        walls: dict[str, list[float]] = {k: [] for k in keys}
        cpus: dict[str, list[float]] = {k: [] for k in keys}
        inner: dict[str, list[float]] = {k: [] for k in keys}
        problems: list[str] = []
        for r in range(repeats):
            for key in keys[r % len(keys):] + keys[: r % len(keys)]:
                runs = work / f"runs-{r}-{keys.index(key)}"
                wall, cpu, code, tail = run(commands[key](runs), env)
                why, own = checks[key](runs) if code == 0 else (f"exit {code}: {tail}", None)
                if why:
                    problems.append(f"{key}, repeat {r + 1}: {why}")
                else:
                    walls[key].append(wall)
                    cpus[key].append(cpu)
                    inner[key].append(own)
                shutil.rmtree(runs, ignore_errors=True)

        print(f"   {'contestant':<18} {'config-steps':>13} {'median s':>9} {'min s':>8} {'max s':>8} {'CPU s':>7} "
              f"{'in-run s':>9} {'M config-steps/s':>17}")  # fmt: skip
        med: dict[str, float] = {}
        for key in keys:
            if not walls[key]:
                print(f"   {names[key]:<18} {steps[key]:>13,} failed every repeat")
                continue
            med[key] = statistics.median(walls[key])
            print(f"   {names[key]:<18} {steps[key]:>13,} {med[key]:9.3f} {min(walls[key]):8.3f} {max(walls[key]):8.3f} "
                  f"{statistics.median(cpus[key]):7.2f} {statistics.median(inner[key]):9.3f} "
                  f"{steps[key] / med[key] / 1e6:17.2f}")  # fmt: skip
        print("   (CPU s: user + sys of the process, median; in-run s: the wall_time_s its summary.json reports)")
        for why in problems:
            print(f"   !! {why}")
        print()
        a, b, b2 = med.get("A"), med.get("B"), med.get("B'")
        ratio = a / b if a and b else None
        ratio2 = a / b2 if a and b2 else None
        per_step = (a / steps["A"]) / (b / steps["B"]) if a and b else None
        print(f"   RATIO A / B  (wall, raw)                 = {show(ratio):>5}   target <= {TARGET_RATIO:g}  "
              f"{verdict(None if ratio is None else ratio <= TARGET_RATIO)}")  # fmt: skip
        print(f"   RATIO A / B' (wall, same config-steps)   = {show(ratio2):>5}   target <= {TARGET_RATIO:g}  "
              f"{verdict(None if ratio2 is None else ratio2 <= TARGET_RATIO)}")  # fmt: skip
        print(f"   RATIO A / B  per config-step             = {show(per_step):>5}   "
              f"({steps['A']:,} vs {steps['B']:,} config-steps)")  # fmt: skip
        if a and b:
            print(f"   (for information) CPU A / B = {statistics.median(cpus['A']) / statistics.median(cpus['B']):.2f}; "
                  f"in-run A / B = {statistics.median(inner['A']) / statistics.median(inner['B']):.2f}")  # fmt: skip
        print()
        print(f"total benchmark time {time.perf_counter() - started:.1f} s")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
