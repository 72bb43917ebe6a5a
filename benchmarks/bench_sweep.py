"""Sweeps at array speed: gdrun sweep against the numpy you would write by hand, and against Hydra.

(a) 10,000 configs: 100 learning rates (logspace(-4, -1, 100)) x 100 start points (a 10 x 10 grid
    over [-2, 2] x [-1, 3]) of Adam on 2-D rosenbrock, 1,000 steps each, numpy backend, every 10th
    step kept. The whole ``python -m gdrun sweep CONFIG --quiet`` process against the whole
    hand-written numpy script (benchmarks/hand_sweep.py: the same maths in one (B, 2) array with
    in-place updates, every 10th step kept in preallocated arrays and saved). Targets: CPU time
    ratio <= 2.0 and peak memory ratio <= 2.0. The final points of both are compared.

(b) The same 200-learning-rate sweep on x2 (SGD, init 7.5, 100 steps, lr = logspace(-3, 0, 200),
    float64) three ways:
      - gdrun sweep, batched, local executor: in-process (run_sweep) and as the CLI (subprocess);
      - a Hydra multirun (``python job.py -m lr=...``, hydra-core's basic launcher, its default
        outputs under a temp dir), each job a 100-step seed-style torch.optim loop printing its
        final x; skipped, with the install line, if hydra-core is not importable;
      - a plain Python loop of the same seed-style torch.optim runs, one process.
    Ratios Hydra / gdrun (target >= 100x) and torch loop / gdrun. All of them must give the same
    final x (to 1e-10) for a few learning rates; the script checks and prints it.

(c) 100,000 configs (1,000 lrs x the same 100 starts) x 100 steps, as (a). Targets: CPU time ratio
    <= 3.0, gdrun's peak memory under 500 MB.

(d) 1,000,000 configs (1,000 lrs x 1,000 seeds drawing the start from [-2, 2]^2) x 100 steps in one
    command: peak memory under 4 GiB; then the same sweep SIGKILLed half-way and resumed with
    ``--resume``: every config in results.csv once, with its 11 records in metrics.f64.

(e) with --batch-sizes: the cost per config-step of one engine batch against its size (MAX_BATCH).

Contestants alternate between repeats and medians are reported (the machine is shared and
noisy); Hydra runs once (about 45 s). A missed target prints MISS; nothing is asserted and the
exit code stays 0. All temp dirs (cache, sweep directories, Hydra outputs) are removed at the end.

    python benchmarks/bench_sweep.py [--quick] [--repeats N] [--skip-hydra] [--skip-million] [--batch-sizes]

hydra-core is for this benchmark only (pip install hydra-core==1.3.8), not a gdrun dependency.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import importlib.util
import json
import math
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

from gdrun.sweeps import (  # noqa: E402
    SweepOptions, iter_results, read_metrics_file, read_results, run_sweep, validate_sweep,
)  # fmt: skip

TARGET_10K_CPU = 2.0  # gdrun sweep / hand-written numpy, CPU time of the whole processes
TARGET_10K_MEMORY = 2.0  # ... and their peak memory
TARGET_100K_CPU = 3.0
TARGET_100K_MB = 500.0
TARGET_1M_MB = 4096.0  # MiB
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


def rosenbrock_grid(n_lr: int, n_side: int, steps: int, name: str) -> dict:
    """The grid the hand script runs: lr i // starts, start i % starts (the last key varies fastest)."""
    starts = [[float(x), float(y)] for x in np.linspace(-2, 2, n_side) for y in np.linspace(-1, 3, n_side)]
    return {"name": name, "function": "rosenbrock", "backend": "numpy", "optimizer": "adam", "epochs": steps,
            "sweep": {"kind": "grid", "record_every": 10,
                      "params": {"lr": {"logspace": [-4, -1, n_lr]}, "init": starts}}}  # fmt: skip


#: runs each command it reads (JSON) as a whole process and answers its CPU time, peak memory, wall
#: time and status. A child's peak memory (ru_maxrss) counts the memory of the process that forked
#: it, so the commands are started by this small launcher, not by the benchmark (torch makes it big).
LAUNCHER = r"""
import json, os, subprocess, sys, time
for line in sys.stdin:
    job = json.loads(line)
    started = time.perf_counter()
    proc = subprocess.Popen(job["cmd"], cwd=job["cwd"], env=job["env"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if job["kill_after"] is not None:
        try:
            proc.wait(job["kill_after"])
        except subprocess.TimeoutExpired:
            proc.kill()
    _, status, usage = os.wait4(proc.pid, 0)
    err = proc.stderr.read().decode(errors="replace")[-300:]
    print(json.dumps([usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, time.perf_counter() - started, status, err]),
          flush=True)
"""
_launcher: subprocess.Popen | None = None


def process(cmd: list[str], env: dict, kill_after: float | None = None) -> tuple[float, float, float, int, str]:
    """Run ``cmd`` as a whole process: (CPU seconds user+sys, peak resident MiB, wall s, exit status, stderr tail).
    With ``kill_after``, SIGKILL it after that many seconds."""
    global _launcher
    if _launcher is None:
        _launcher = subprocess.Popen([sys.executable, "-c", LAUNCHER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    _launcher.stdin.write(json.dumps({"cmd": cmd, "cwd": str(REPO), "env": env, "kill_after": kill_after}) + "\n")
    _launcher.stdin.flush()
    cpu, peak, wall, status, err = json.loads(_launcher.stdout.readline())
    return cpu, peak, wall, status, err


def gdrun_cmd(config: Path, runs: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "gdrun", "sweep", str(config), "--runs-dir", str(runs), "--quiet", *extra]


def hand_cmd(n_lr: int, n_side: int, steps: int, out: Path) -> list[str]:
    return [sys.executable, str(REPO / "benchmarks" / "hand_sweep.py"), str(n_lr), str(n_side), str(steps), "10", str(out)]


def agreement(sweep_dir: Path, hand_out: Path) -> tuple[float, float]:
    """The largest and the median relative difference between gdrun's final points and the hand script's."""
    rows = sorted(read_results(sweep_dir), key=lambda r: int(r["id"]))
    ours = np.array([[float(r["param.x1"]), float(r["param.x2"])] for r in rows])
    theirs = np.load(hand_out)["final"]
    if len(ours) != len(theirs):
        return math.inf, math.inf
    relative = np.abs(ours - theirs) / np.maximum(np.abs(theirs), 1e-300)
    return float(relative.max()), float(np.median(relative))


def side_by_side(label: str, n_lr: int, n_side: int, steps: int, repeats: int, work: Path, env: dict,
                 cpu_target: float, memory_target: float | None, memory_cap_mb: float | None) -> None:  # fmt: skip
    """gdrun sweep (CLI, whole process) against the hand script (whole process), alternated."""
    configs = n_lr * n_side * n_side
    config = write_config(work / f"{label}.yaml", rosenbrock_grid(n_lr, n_side, steps, label))
    runs, out = work / f"runs_{label}", work / f"hand_{label}.npz"
    process(gdrun_cmd(write_config(work / "warm.yaml", rosenbrock_grid(2, 2, 5, "warm")), work / "warm"), env)  # caches
    process(hand_cmd(2, 2, 5, work / "warm.npz"), env)
    results: dict[str, list[tuple[float, float, float]]] = {"gdrun sweep (CLI)": [], "hand-written numpy": []}
    worst = (math.inf, math.inf)
    for r in range(repeats):
        for name in (list(results) if r % 2 == 0 else list(results)[::-1]):
            if name.startswith("gdrun"):
                shutil.rmtree(runs, ignore_errors=True)
            cmd = gdrun_cmd(config, runs) if name.startswith("gdrun") else hand_cmd(n_lr, n_side, steps, out)
            cpu, peak, wall, status, err = process(cmd, env)
            if status != 0:
                print(f"    !! {name} failed (status {status}): {err}")
                continue
            results[name].append((cpu, peak, wall))
        if results["gdrun sweep (CLI)"] and out.exists():
            worst = agreement(latest_sweep(runs), out)
    print(f"    {'contestant':<22} {'CPU s':>8} {'wall s':>8} {'peak MiB':>9}   (medians of {repeats})")
    med = {}
    for name, rows in results.items():
        if rows:
            med[name] = tuple(statistics.median(v[i] for v in rows) for i in range(3))
            print(f"    {name:<22} {med[name][0]:8.3f} {med[name][2]:8.3f} {med[name][1]:9.1f}")
    if len(med) < 2:
        return
    (g_cpu, g_peak, g_wall), (h_cpu, h_peak, _) = med["gdrun sweep (CLI)"], med["hand-written numpy"]
    print(f"    final points, gdrun vs hand: relative difference at most {worst[0]:.2g}, median {worst[1]:.2g}")
    print("    (the two write the gradient with operations in another order; where Adam oscillates, the steps")
    print("    amplify that rounding: more so over 1,000 steps than over 100)")
    print(f"    RATIO CPU time    gdrun / hand = {g_cpu / h_cpu:5.2f}   target <= {cpu_target:g}  {verdict(g_cpu / h_cpu <= cpu_target)}")
    if memory_target is not None:
        print(f"    RATIO peak memory gdrun / hand = {g_peak / h_peak:5.2f}   target <= {memory_target:g}  "
              f"{verdict(g_peak / h_peak <= memory_target)}")  # fmt: skip
    if memory_cap_mb is not None:
        print(f"    peak memory of gdrun = {g_peak * 1.048576:.0f} MB   target < {memory_cap_mb:g} MB  "
              f"{verdict(g_peak * 1.048576 < memory_cap_mb)}")  # fmt: skip
    print(f"    ({configs * steps / g_wall / 1e6:.1f} million config-steps per second for gdrun, wall clock)")


def part_a(repeats: int, work: Path, env: dict) -> None:
    print("(a) 10,000 configs: 100 lrs (logspace(-4,-1,100)) x 100 start points (10 x 10 over [-2,2] x [-1,3]),")
    print("    Adam on 2-D rosenbrock, 1,000 steps, numpy, every 10th step kept; whole processes:")
    print("    python -m gdrun sweep CONFIG --quiet  vs  python benchmarks/hand_sweep.py 100 10 1000 10 OUT")
    side_by_side("rosen10k", 100, 10, 1000, repeats, work, env, TARGET_10K_CPU, TARGET_10K_MEMORY, None)


def part_c(repeats: int, work: Path, env: dict) -> None:
    print("(c) 100,000 configs: 1,000 lrs x the same 100 start points, Adam on rosenbrock, 100 steps; whole processes")
    side_by_side("rosen100k", 1000, 10, 100, repeats, work, env, TARGET_100K_CPU, None, TARGET_100K_MB)


MILLION = """\
name: rosen1m
function: rosenbrock
optimizer: adam
epochs: 100
init_range: [-2, 2]
sweep:
  record_every: 10
  params:
    lr: {logspace: [-4, -1, 1000]}
    seed: {range: [0, 1000]}
"""


def part_d(work: Path, env: dict) -> None:
    print("(d) 1,000,000 configs: 1,000 lrs x 1,000 seeds (start drawn from [-2, 2]^2), Adam on rosenbrock,")
    print("    100 steps, every 10th step kept; one command; then the same sweep SIGKILLed half-way and resumed")
    config = work / "rosen1m.yaml"
    config.write_text(MILLION)
    runs = work / "runs_d"
    cpu, peak, wall, status, err = process(gdrun_cmd(config, runs), env)
    ok = status == 0 and check_every_config_once(latest_sweep(runs), 1_000_000)
    print(f"    whole sweep: {wall:.1f} s wall, {cpu:.1f} s CPU, peak {peak:.0f} MiB; exit {status}; "
          f"every config once with 11 records: {'yes' if ok else 'NO ' + err}")  # fmt: skip
    print(f"    target: completes with peak memory under {TARGET_1M_MB / 1024:g} GiB  "
          f"{verdict(ok and peak < TARGET_1M_MB)}")  # fmt: skip
    shutil.rmtree(runs, ignore_errors=True)
    _, peak_a, wall_a, status_a, _ = process(gdrun_cmd(config, runs), env, kill_after=wall / 2)
    path = latest_sweep(runs)
    before = len(read_results(path))
    cpu_b, peak_b, wall_b, status_b, err_b = process(gdrun_cmd(config, runs, "--resume", "rosen1m"), env)
    ok = status_b == 0 and check_every_config_once(path, 1_000_000)
    print(f"    killed after {wall_a:.1f} s (status {status_a}) with {before:,} configs in results.csv; resumed: "
          f"{wall_b:.1f} s wall, peak {peak_b:.0f} MiB, exit {status_b}")  # fmt: skip
    print(f"    target: the resume finishes with every config once  {verdict(ok)}{'' if ok else ' ' + err_b}")
    shutil.rmtree(runs, ignore_errors=True)


def check_every_config_once(sweep_dir: Path, n: int) -> bool:
    ids = np.array([int(r["id"]) for r in iter_results(sweep_dir)])
    if len(ids) != n or not np.array_equal(np.sort(ids), np.arange(n)):
        return False
    records = read_metrics_file(sweep_dir / "metrics.f64", 2)
    counts = np.bincount(records[:, 0].astype(np.int64), minlength=n)
    return bool((counts == 11).all())


def part_e(work: Path) -> None:
    """Per config-step cost of one engine batch against its size (what MAX_BATCH is chosen from)."""
    from gdrun.config import validate
    from gdrun.sweeps import BatchJob, run_batch

    print("(e) one batch (run_batch, in-process, records dropped) of B configs of Adam on rosenbrock, 200 steps:")
    config = validate({"function": "rosenbrock", "optimizer": "adam", "epochs": 200, "lr": 0.001, "init": [-1.0, 1.5]})
    for size in (1_000, 4_000, 16_384, 64_000, 256_000):
        job = BatchJob.of_configs([config], record_every=10, width=2)
        job.ids = np.arange(size)
        job.per_run = {f: (values, np.zeros(size, dtype=np.int64)) for f, (values, _) in job.per_run.items()}
        best = math.inf
        for _ in range(3):
            started = time.perf_counter()
            run_batch(job, None, lambda records: None)
            best = min(best, time.perf_counter() - started)
        print(f"    B = {size:>7,}: {best / (size * 200) * 1e9:6.1f} ns per config-step")


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
    parser.add_argument("--repeats", type=int, default=None, help="repeats of each contestant (default 3)")
    parser.add_argument("--skip-hydra", action="store_true", help="leave the Hydra multirun out (it takes ~45 s)")
    parser.add_argument("--skip-million", action="store_true", help="leave part (d), the million configs, out (~45 s)")
    parser.add_argument("--batch-sizes", action="store_true", help="also part (e): cost per config-step against batch size")
    args = parser.parse_args()
    repeats = args.repeats or (1 if args.quick else 3)

    work = Path(tempfile.mkdtemp(prefix="gdrun-bench-sweep-"))
    os.environ["GDRUN_CACHE_DIR"] = str(work / "cache")
    # the contestants cache their bytecode as an installed package does (an editable install under
    # PYTHONDONTWRITEBYTECODE=1 would compile gdrun's sources in every process, ~0.1 s each time)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    started = time.perf_counter()
    try:
        import torch

        cli = cli_has_sweep(env)
        print(f"gdrun sweep benchmark ({'quick' if args.quick else 'full'} mode), "
              f"{_dt.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}")  # fmt: skip
        print(f"python {platform.python_version()}, numpy {np.__version__}, torch {torch.__version__}, "
              f"{platform.machine()}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")  # fmt: skip
        print("GDRUN_CACHE_DIR = a fresh temp dir; CPU time = user + sys of the whole process, peak = its max RSS;")
        print("bytecode cached as in an installed package (PYTHONDONTWRITEBYTECODE unset for the contestants)")
        print()
        part_a(repeats, work, env)
        print()
        part_b(repeats, work, env, cli, not args.skip_hydra)
        print()
        part_c(repeats, work, env)
        print()
        if not args.skip_million:
            part_d(work, env)
            print()
        if args.batch_sizes:
            part_e(work)
            print()
        print(f"total benchmark time {time.perf_counter() - started:.1f} s")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
