"""Sweeps: thousands of configs as one batched computation, against running them one by one.

(a) A 10,000-config grid: 100 learning rates (logspace(-4, -1, 100)) x 100 start points (a 10 x 10
    grid over [-2, 2] x [-1, 3]) of Adam on 2-D rosenbrock, 1,000 steps each, numpy backend,
    metrics recorded every 10th step. Wall time of ``run_sweep`` in-process (the whole call:
    expanding and validating the configs, batching, running, writing the sweep directory) and
    of ``python -m gdrun sweep CONFIG --quiet`` as a subprocess. Target: under 5 s.

(b) The same 200-learning-rate sweep on x2 (SGD, init 7.5, 100 steps, lr = logspace(-3, 0, 200),
    float64) three ways:
      - gdrun sweep, batched, local executor: in-process (run_sweep) and as the CLI (subprocess);
      - a Hydra multirun (``python job.py -m lr=...``, hydra-core's basic launcher, its default
        outputs under a temp dir), each job a 100-step seed-style torch.optim loop printing its
        final x; skipped, with the install line, if hydra-core is not importable;
      - a plain Python loop of the same seed-style torch.optim runs, one process.
    Ratios Hydra / gdrun (target >= 100x) and torch loop / gdrun. All of them must give the same
    final x (to 1e-10) for a few learning rates; the script checks and prints it.

Contestants alternate between repeats and medians are reported (the machine is shared and
noisy); Hydra runs once (about 45 s). A missed target prints MISS; nothing is asserted and the
exit code stays 0. All temp dirs (cache, sweep directories, Hydra outputs) are removed at the end.

    python benchmarks/bench_sweep.py [--quick] [--repeats N] [--skip-hydra]

hydra-core is for this benchmark only (pip install hydra-core==1.3.8), not a gdrun dependency.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import importlib.util
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from gdrun.sweep import SweepOptions, read_results, run_sweep, validate_sweep  # noqa: E402

TARGET_10K_S = 5.0
TARGET_HYDRA_RATIO = 100.0
X2_LRS = np.logspace(-3, 0, 200)
X2_STEPS, X2_INIT = 100, 7.5
CHECKED = (0, 40, 99, 150, 199)  # indices of the learning rates whose final x is compared


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("PASS" if ok else "MISS")


def fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def stats(times: list[float]) -> str:
    if not times:
        return f"{'-':>9} {'-':>8} {'-':>8} {0:>3}"
    return f"{statistics.median(times):9.3f} {min(times):8.3f} {max(times):8.3f} {len(times):>3}"


def write_config(path: Path, raw: dict) -> Path:
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def sweep_in_process(raw: dict, runs_dir: Path) -> tuple[float, dict]:
    base = {k: v for k, v in raw.items() if k != "sweep"}
    t0 = time.perf_counter()
    summary, code = run_sweep(base, validate_sweep(raw["sweep"]), SweepOptions(runs_dir=runs_dir))
    elapsed = time.perf_counter() - t0
    if code != 0:
        raise RuntimeError(f"run_sweep exited {code}: {summary}")
    return elapsed, summary


def sweep_cli(config: Path, runs_dir: Path, env: dict) -> tuple[float | None, str]:
    cmd = [sys.executable, "-m", "gdrun", "sweep", str(config), "--runs-dir", str(runs_dir), "--quiet"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        return None, f"exit {proc.returncode}: {(proc.stderr or proc.stdout).strip()[-300:]}"
    return elapsed, ""


def cli_has_sweep(env: dict) -> bool:
    proc = subprocess.run([sys.executable, "-m", "gdrun", "sweep", "--help"], cwd=REPO, env=env, capture_output=True,
                          text=True)  # fmt: skip
    return proc.returncode == 0


def latest_sweep(runs_dir: Path) -> Path:
    return sorted(runs_dir.glob("sweep-*"), key=lambda p: p.stat().st_mtime)[-1]


# ---------------------------------------------------------------------------------- part (a)


def rosenbrock_grid() -> dict:
    starts = [[round(float(x), 6), round(float(y), 6)] for x in np.linspace(-2, 2, 10) for y in np.linspace(-1, 3, 10)]
    return {"name": "rosen10k", "function": "rosenbrock", "backend": "numpy", "optimizer": "adam", "epochs": 1000,
            "sweep": {"kind": "grid", "record_every": 10,
                      "params": {"lr": {"logspace": [-4, -1, 100]}, "init": starts}}}  # fmt: skip


def part_a(repeats: int, work: Path, env: dict, cli: bool) -> None:
    raw = rosenbrock_grid()
    config = write_config(work / "rosen10k.yaml", raw)
    runs = work / "runs_a"
    print("(a) 10,000 configs: 100 lrs (logspace(-4,-1,100)) x 100 start points (10 x 10 over [-2,2] x [-1,3]),")
    print("    Adam on 2-D rosenbrock, 1,000 steps, numpy, record_every 10")
    print("    in-process: the whole run_sweep() call; CLI: python -m gdrun sweep CONFIG --quiet (subprocess)")
    warm = {**raw, "epochs": 5, "sweep": {"params": {"lr": [0.001, 0.01]}}}
    sweep_in_process(warm, work / "warm")  # fills the derivative cache; untimed
    if cli:
        sweep_cli(write_config(work / "warm.yaml", warm), work / "warm", env)
    print(f"    one small untimed warm-up of each; then {repeats} repeat(s), alternated")
    times: dict[str, list[float]] = {"gdrun sweep, in-process": [], "gdrun sweep, CLI": []}
    inside: list[float] = []
    failed: list[str] = []
    for r in range(repeats):
        order = list(times) if r % 2 == 0 else list(times)[::-1]
        for name in order:
            if name.endswith("CLI"):
                if not cli:
                    continue
                t, why = sweep_cli(config, runs, env)
                if t is None:
                    failed.append(why)
                    continue
                rows = read_results(latest_sweep(runs))
                if len(rows) != 10_000:
                    failed.append(f"CLI wrote {len(rows)} rows, not 10,000")
                times[name].append(t)
            else:
                t, summary = sweep_in_process(raw, runs)
                assert sum(summary["counts"].values()) == 10_000, summary["counts"]
                times[name].append(t)
                inside.append(summary["wall_time_s"])
                counts = summary["counts"]
            shutil.rmtree(runs, ignore_errors=True)
    print()
    print(f"    {'contestant':<28} {'median s':>9} {'min s':>8} {'max s':>8} {'n':>3}")
    for name, ts in times.items():
        if name.endswith("CLI") and not cli:
            print(f"    {name:<28} skipped: this gdrun has no 'sweep' command yet")
            continue
        print(f"    {name:<28} {stats(ts)}")
    for why in failed:
        print(f"    !! CLI failed: {why}")
    print(f"    (in-process: of which running the batches {statistics.median(inside):.3f} s (median), "
          f"the rest expanding, batching and writing; statuses {counts})")  # fmt: skip
    best = {name: statistics.median(ts) for name, ts in times.items() if ts}
    for name, value in best.items():
        print(f"    target: {name} under {TARGET_10K_S:g} s -> {value:.3f} s  {verdict(value < TARGET_10K_S)}")


# ---------------------------------------------------------------------------------- part (b)

HYDRA_JOB = '''\
import hydra
import torch
from omegaconf import DictConfig


@hydra.main(version_base=None, config_path="conf", config_name="config")
def main(cfg: DictConfig) -> None:
    x = torch.tensor([cfg.init], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([x], lr=cfg.lr)
    for step in range(cfg.steps):
        opt.zero_grad()
        loss = (x**2).sum()
        loss.backward()
        opt.step()
    print("RESULT", repr(float(cfg.lr)), repr(x.item()), flush=True)


if __name__ == "__main__":
    main()
'''


def torch_loop(lrs: np.ndarray) -> tuple[float, list[float]]:
    """The seed-style experiment, one torch.optim run per learning rate, in this process."""
    import torch

    t0 = time.perf_counter()
    finals = []
    for lr in lrs:
        x = torch.tensor([X2_INIT], dtype=torch.float64, requires_grad=True)
        opt = torch.optim.SGD([x], lr=float(lr))
        for step in range(X2_STEPS):
            opt.zero_grad()
            loss = (x**2).sum()
            loss.backward()
            opt.step()
        finals.append(x.item())
    return time.perf_counter() - t0, finals


def hydra_multirun(work: Path, lrs: np.ndarray) -> tuple[float | None, dict[float, float], str]:
    folder = work / "hydra"
    (folder / "conf").mkdir(parents=True)
    (folder / "job.py").write_text(HYDRA_JOB)
    (folder / "conf" / "config.yaml").write_text(f"lr: 0.1\nsteps: {X2_STEPS}\ninit: {X2_INIT}\n")
    cmd = [sys.executable, "job.py", "-m", "lr=" + ",".join(repr(float(v)) for v in lrs),
           f"hydra.sweep.dir={folder / 'multirun'}"]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("GDRUN_")}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=folder, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        return None, {}, f"exit {proc.returncode}: {(proc.stderr or proc.stdout).strip()[-400:]}"
    finals = {}
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            _, lr, x = line.split()
            finals[float(lr)] = float(x)
    return elapsed, finals, ""


def x2_config() -> dict:
    return {"name": "x2lr200", "function": "x2", "backend": "numpy", "dtype": "float64", "optimizer": "sgd",
            "init": X2_INIT, "epochs": X2_STEPS, "sweep": {"params": {"lr": {"logspace": [-3, 0, 200]}}}}  # fmt: skip


def finals_of(sweep_dir: Path) -> dict[float, float]:
    return {float(r["lr"]): float(r["param.x"]) for r in read_results(sweep_dir)}


def part_b(repeats: int, work: Path, env: dict, cli: bool, hydra: bool) -> None:
    raw = x2_config()
    config = write_config(work / "x2lr200.yaml", raw)
    runs = work / "runs_b"
    print(f"(b) x2, SGD, init {X2_INIT}, {X2_STEPS} steps, 200 learning rates logspace(-3, 0, 200), float64")
    print("    gdrun sweep (batched, local executor): in-process run_sweep() and the CLI (subprocess)")
    print("    Hydra multirun: python job.py -m lr=<200 values> (basic launcher, one seed-style torch.optim")
    print("                    loop per job, printing its final x), subprocess, run once")
    print("    torch loop: the same 200 seed-style torch.optim runs in a plain Python loop, in-process")
    sweep_in_process({**raw, "sweep": {"params": {"lr": [0.1]}}}, work / "warm")
    torch_loop(X2_LRS[:2])
    if cli:
        sweep_cli(write_config(work / "warm_b.yaml", {**raw, "sweep": {"params": {"lr": [0.1]}}}), work / "warm", env)
    print(f"    one small untimed warm-up of each gdrun/torch contestant; then {repeats} repeat(s), alternated")
    names = ["gdrun sweep, in-process", "gdrun sweep, CLI", "torch loop, in-process"]
    times: dict[str, list[float]] = {name: [] for name in names}
    finals: dict[str, dict[float, float]] = {}
    problems: list[str] = []
    for r in range(repeats):
        order = names[r % len(names):] + names[: r % len(names)]
        for name in order:
            if name == "gdrun sweep, in-process":
                t, summary = sweep_in_process(raw, runs)
                finals[name] = finals_of(Path(summary["sweep_dir"]))
            elif name == "gdrun sweep, CLI":
                if not cli:
                    continue
                t, why = sweep_cli(config, runs, env)
                if t is None:
                    problems.append(f"CLI failed: {why}")
                    continue
                finals[name] = finals_of(latest_sweep(runs))
            else:
                t, xs = torch_loop(X2_LRS)
                finals[name] = dict(zip(X2_LRS.tolist(), xs))
            times[name].append(t)
            shutil.rmtree(runs, ignore_errors=True)
    hydra_time = None
    if not hydra:
        print("    Hydra multirun: skipped (--skip-hydra)")
    elif importlib.util.find_spec("hydra") is None:
        print("    Hydra multirun: skipped, hydra-core is not installed here; for this benchmark only:")
        print("        pip install hydra-core==1.3.8")
    else:
        hydra_time, hydra_finals, why = hydra_multirun(work, X2_LRS)
        if hydra_time is None:
            problems.append(f"Hydra failed: {why}")
        else:
            times["Hydra multirun (200 jobs)"] = [hydra_time]
            finals["Hydra multirun (200 jobs)"] = hydra_finals
            if len(hydra_finals) != len(X2_LRS):
                problems.append(f"Hydra printed {len(hydra_finals)} results, not {len(X2_LRS)}")
    print()
    print(f"    {'contestant':<28} {'median s':>9} {'min s':>8} {'max s':>8} {'n':>3}")
    for name, ts in times.items():
        if name == "gdrun sweep, CLI" and not cli:
            print(f"    {name:<28} skipped: this gdrun has no 'sweep' command yet")
            continue
        print(f"    {name:<28} {stats(ts)}")
    for why in problems:
        print(f"    !! {why}")

    print()
    print("    final x after 100 steps, compared (gdrun in-process is the reference):")
    ref = finals.get("gdrun sweep, in-process", {})
    short = {"gdrun sweep, in-process": "gdrun", "gdrun sweep, CLI": "gdrun CLI",
             "torch loop, in-process": "torch loop", "Hydra multirun (200 jobs)": "Hydra"}
    header = "".join(f" {short[name]:>24}" for name in finals)
    print(f"    {'lr':>22}{header}")
    worst = 0.0
    for i in CHECKED:
        lr = float(X2_LRS[i])
        cells = []
        for name, values in finals.items():
            x = values.get(lr)
            cells.append(f" {fmt(x, '24.17g') if x is not None else '-':>24}")
            if x is None or lr not in ref:
                worst = float("inf")
            else:
                worst = max(worst, abs(x - ref[lr]))
        print(f"    {lr:>22.17g}{''.join(cells)}")
    exact = X2_INIT * (1 - 2 * X2_LRS[list(CHECKED)]) ** X2_STEPS
    print(f"    (closed form 7.5 * (1 - 2 lr)^100 at those lrs: {', '.join(f'{v:.6g}' for v in exact)})")
    print(f"    largest difference from gdrun: {worst:.3g}  -> agree to 1e-10: {'yes' if worst <= 1e-10 else 'NO'}")

    med = {name: statistics.median(ts) for name, ts in times.items() if ts}
    gdrun_in, gdrun_cli = med.get("gdrun sweep, in-process"), med.get("gdrun sweep, CLI")
    loop, hyd = med.get("torch loop, in-process"), med.get("Hydra multirun (200 jobs)")
    print()
    if hyd is not None:
        r_cli = hyd / gdrun_cli if gdrun_cli else None
        r_in = hyd / gdrun_in if gdrun_in else None
        print(f"    RATIO Hydra multirun / gdrun sweep CLI        = {fmt(r_cli, '8.1f')}x   (both whole processes)   "
              f"target >= {TARGET_HYDRA_RATIO:g}x  {verdict(None if r_cli is None else r_cli >= TARGET_HYDRA_RATIO)}")
        print(f"    RATIO Hydra multirun / gdrun sweep in-process = {fmt(r_in, '8.1f')}x   (the sweep itself)        "
              f"target >= {TARGET_HYDRA_RATIO:g}x  {verdict(None if r_in is None else r_in >= TARGET_HYDRA_RATIO)}")
        print(f"    (Hydra per job: {hyd / len(X2_LRS) * 1000:.0f} ms)")
    r_loop = loop / gdrun_in if loop and gdrun_in else None
    print(f"    RATIO torch loop / gdrun sweep in-process     = {fmt(r_loop, '8.1f')}x   (both in this process)")
    if loop and gdrun_cli:
        print(f"    (for information) torch loop in-process / gdrun sweep CLI = {loop / gdrun_cli:.2f}x")


# ----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 repeat of everything")
    parser.add_argument("--repeats", type=int, default=None, help="repeats of each gdrun/torch contestant (default 3)")
    parser.add_argument("--skip-hydra", action="store_true", help="leave the Hydra multirun out (it takes ~45 s)")
    args = parser.parse_args()
    repeats = args.repeats or (1 if args.quick else 3)

    work = Path(tempfile.mkdtemp(prefix="gdrun-bench-sweep-"))
    os.environ["GDRUN_CACHE_DIR"] = str(work / "cache")
    env = dict(os.environ)
    started = time.perf_counter()
    try:
        import torch

        cli = cli_has_sweep(env)
        print(f"gdrun sweep benchmark ({'quick' if args.quick else 'full'} mode), "
              f"{_dt.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}")  # fmt: skip
        print(f"python {platform.python_version()}, numpy {np.__version__}, torch {torch.__version__}, "
              f"{platform.machine()}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")  # fmt: skip
        print(f"GDRUN_CACHE_DIR = a fresh temp dir; gdrun CLI sweep command: {'yes' if cli else 'no'}")
        print()
        part_a(repeats, work, env, cli)
        print()
        part_b(repeats, work, env, cli, not args.skip_hydra)
        print()
        print(f"total benchmark time {time.perf_counter() - started:.1f} s")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
