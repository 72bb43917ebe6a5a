"""Foundation benchmark for gdrun: start-up cost and per-step cost against plain numpy / torch.

    python benchmarks/bench_foundation.py           # full: 100,000-step runs, 3 repeats
    python benchmarks/bench_foundation.py --quick   # 20,000-step runs, 1 repeat

(a) Whole-process wall time of a 10-step run: ``gdrun minimize x2 --lr 0.1 --epochs 10 --quiet``
    (as ``sys.executable -m gdrun``) against the same experiment as a plain torch script
    (``python -c``). Targets: gdrun under 1 s, and faster than the torch script.
(b) Per-step cost of a long run with every step recorded: gdrun's numpy and torch backends (through
    ``gdrun.runner.execute``, per step = summary["wall_time_s"] / steps, which includes writing
    metrics.csv) against a bare numpy loop and a bare torch.optim loop that keep every step in
    memory. Targets: gdrun numpy within 2x of the bare numpy loop; gdrun torch no slower than the
    bare torch.optim loop.
(c) For information, the pieces of a gdrun numpy step of (b), each timed alone in-process: the
    compiled value-and-gradient, the optimizer update, and one metrics.csv row (formatting and
    write); what is left of (b)'s per-step time is the engine loop itself.

The machine this runs on may be shared and noisy, so the contestants are interleaved (alternated,
with the starting contestant rotated each repeat) and medians are reported. Nothing here asserts:
a missed target is reported as MISS and the exit code stays 0.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import gc
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

TORCH_SCRIPT = """\
import torch
x = torch.tensor([7.5], requires_grad=True)
opt = torch.optim.SGD([x], lr=0.1)
for step in range(10):
    opt.zero_grad()
    loss = (x**2).sum()
    loss.backward()
    opt.step()
    print(step + 1, x)
"""


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("PASS" if ok else "MISS")


def median(xs: list[float]) -> float | None:
    return statistics.median(xs) if xs else None


def fmt(value: float | None, spec: str) -> str:
    if value is None:
        width = spec.split(".")[0]
        return "-".rjust(int(width) if width.isdigit() else 1)
    return format(value, spec)


# ---------------------------------------------------------------------------------- part (a)


def part_a(repeats: int, work: Path, env: dict[str, str]) -> None:
    runs_dir = work / "runs_a"
    contestants = {
        "gdrun minimize (numpy)": [sys.executable, "-m", "gdrun", "minimize", "x2", "--lr", "0.1", "--epochs", "10",
                                   "--quiet", "--runs-dir", str(runs_dir)],
        "plain torch script": [sys.executable, "-c", TORCH_SCRIPT],
    }  # fmt: skip
    names = list(contestants)
    times: dict[str, list[float]] = {name: [] for name in names}
    failed: dict[str, str] = {}

    def once(name: str) -> float | None:
        t0 = time.perf_counter()
        proc = subprocess.run(contestants[name], cwd=REPO, env=env, capture_output=True, text=True)
        elapsed = time.perf_counter() - t0
        if proc.returncode != 0:
            failed[name] = f"exit {proc.returncode}: {(proc.stderr or proc.stdout).strip()[-300:]}"
            return None
        return elapsed

    print("(a) Whole-process wall time, 10-step x2 run, lr 0.1 (subprocess, cwd = repo root)")
    print("    one untimed warm-up of each first (fills gdrun's derivative cache in GDRUN_CACHE_DIR")
    print(f"    and the OS file cache); then {repeats} timed repeats each, alternating the two.")
    for name in names:  # warm-up, untimed
        once(name)
    for r in range(repeats):
        order = names if r % 2 == 0 else names[::-1]
        for name in order:
            t = once(name)
            if t is not None:
                times[name].append(t)
    shutil.rmtree(runs_dir, ignore_errors=True)

    print()
    print(f"    {'contestant':<26} {'median s':>9} {'min s':>8} {'max s':>8} {'n':>3}")
    for name in names:
        ts = times[name]
        print(f"    {name:<26} {fmt(median(ts), '9.3f')} {fmt(min(ts) if ts else None, '8.3f')} "
              f"{fmt(max(ts) if ts else None, '8.3f')} {len(ts):>3}")  # fmt: skip
    for name, why in failed.items():
        print(f"    !! {name} failed: {why}")
    g, t = median(times[names[0]]), median(times[names[1]])
    ratio = g / t if g is not None and t else None
    print()
    print(f"    RATIO gdrun / torch script = {fmt(ratio, '.2f')}")
    print(f"    target: gdrun under 1 s                    -> {fmt(g, '.3f')} s   {verdict(None if g is None else g < 1.0)}")
    print(f"    target: gdrun faster than the torch script -> ratio {fmt(ratio, '.2f')}  "
          f"{verdict(None if ratio is None else ratio < 1.0)}")  # fmt: skip


# ---------------------------------------------------------------------------------- part (b)


LR = 1e-5
INIT = 7.5


def gdrun_run(backend: str, steps: int, runs_dir: Path) -> tuple[float, float, str | None]:
    """(engine seconds, execute() seconds, problem or None) for one gdrun run through execute()."""
    from gdrun.config import validate
    from gdrun.runner import Output, execute

    config = validate({"function": "x2", "lr": LR, "epochs": steps, "init": INIT, "backend": backend})
    t0 = time.perf_counter()
    summary, code = execute(config, runs_dir, Output(mode="quiet"))
    outer = time.perf_counter() - t0
    problem = None
    run_dir = Path(summary["run_dir"])
    with open(run_dir / "metrics.csv") as f:
        rows = sum(1 for _ in f) - 1
    if code != 0 or summary["status"] != "max_epochs" or rows != steps + 1:
        problem = f"exit {code}, status {summary['status']}, {rows} metrics rows (expected {steps + 1})"
    shutil.rmtree(run_dir, ignore_errors=True)
    return summary["wall_time_s"], outer, problem


def bare_numpy(steps: int) -> float:
    """The same experiment as a bare numpy loop keeping every step in preallocated arrays."""
    import numpy as np

    t0 = time.perf_counter()
    xs = np.empty((steps + 1, 1))
    fs = np.empty((steps + 1, 1))
    gs = np.empty((steps + 1, 1))
    x = np.array([INIT])
    lr = LR
    for k in range(steps + 1):  # row 0 is the init point; the last row gets no update (as gdrun)
        f = x**2
        g = 2 * x
        xs[k] = x
        fs[k] = f
        gs[k] = np.abs(g)
        if k < steps:
            x = x - lr * g
    elapsed = time.perf_counter() - t0
    assert abs(xs[-1, 0] - INIT * (1 - 2 * LR) ** steps) < 1e-9  # sanity of the loop itself
    return elapsed


def bare_torch(steps: int) -> float:
    """The same experiment as a bare torch.optim loop recording x.item() and loss.item() each step."""
    import torch

    t0 = time.perf_counter()
    x = torch.tensor([INIT], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([x], lr=LR)
    xs: list[float] = []
    fs: list[float] = []
    for k in range(steps + 1):  # same row count and gradient evaluations as gdrun
        opt.zero_grad()
        loss = (x**2).sum()
        loss.backward()
        xs.append(x.item())
        fs.append(loss.item())
        if k < steps:
            opt.step()
    elapsed = time.perf_counter() - t0
    assert abs(xs[-1] - INIT * (1 - 2 * LR) ** steps) < 1e-9
    return elapsed


def part_b(steps: int, repeats: int, work: Path) -> None:
    runs_dir = work / "runs_b"
    runs_dir.mkdir()
    names = ["gdrun numpy", "bare numpy loop", "gdrun torch", "bare torch.optim loop"]
    per_step: dict[str, list[float]] = {name: [] for name in names}
    outer_per_step: dict[str, list[float]] = {"gdrun numpy": [], "gdrun torch": []}
    problems: list[str] = []

    def once(name: str) -> None:
        gc.collect()
        if name.startswith("gdrun"):
            engine_s, outer_s, problem = gdrun_run(name.split()[1], steps, runs_dir)
            if problem:
                problems.append(f"{name}: {problem}")
            per_step[name].append(engine_s / steps * 1e6)
            outer_per_step[name].append(outer_s / steps * 1e6)
        elif name == "bare numpy loop":
            per_step[name].append(bare_numpy(steps) / steps * 1e6)
        else:
            per_step[name].append(bare_torch(steps) / steps * 1e6)

    print(f"(b) Per-step cost, x2, lr {LR:g}, init {INIT}, {steps:,} steps, every step recorded "
          f"({steps + 1:,} rows), float64, in-process")  # fmt: skip
    print("    gdrun: execute(config, runs_dir, Output(mode='quiet')); per step = wall_time_s / steps")
    print("           (the engine's time, including writing metrics.csv; 'execute' column: the whole call,")
    print("           with config/summary files, git rev-parse and backend set-up)")
    print("    bare numpy: x shape (1,), f = x**2, g = 2*x, x/f/|g| into preallocated arrays, x = x - lr*g")
    print("    bare torch.optim: SGD, zero_grad / loss / backward / x.item(), loss.item() into lists / step")
    print(f"    one small untimed warm-up of each; then {repeats} repeat(s); each gdrun contestant runs back to back")
    print("    with its bare loop (which goes first alternates), and a RATIO is the median of those pairs' ratios")
    # warm-up: imports, derivative cache, torch's first-call costs; not timed
    gdrun_run("numpy", 200, runs_dir)
    gdrun_run("torch", 200, runs_dir)
    bare_numpy(200)
    bare_torch(200)
    pairs = [("gdrun numpy", "bare numpy loop"), ("gdrun torch", "bare torch.optim loop")]
    for r in range(repeats):
        for pair in pairs:  # back to back: a shared machine's slow spells hit both alike
            for name in pair if r % 2 == 0 else pair[::-1]:
                once(name)
    shutil.rmtree(runs_dir, ignore_errors=True)

    med = {name: median(per_step[name]) for name in names}
    print()
    print(f"    {'contestant':<24} {'median us/step':>15} {'min':>8} {'max':>8} {'execute us/step':>16}")
    for name in names:
        xs = per_step[name]
        outer = median(outer_per_step[name]) if name in outer_per_step else None
        print(f"    {name:<24} {fmt(med[name], '15.2f')} {fmt(min(xs), '8.2f')} {fmt(max(xs), '8.2f')} "
              f"{fmt(outer, '16.2f')}")  # fmt: skip
    for problem in problems:
        print(f"    !! {problem}")
    r_np = median([g / b for g, b in zip(per_step["gdrun numpy"], per_step["bare numpy loop"])])
    r_t = median([g / b for g, b in zip(per_step["gdrun torch"], per_step["bare torch.optim loop"])])
    print()
    print(f"    RATIO gdrun numpy / bare numpy loop       = {r_np:.2f}   target <= 2.00  {verdict(r_np <= 2.0)}")
    print(f"    RATIO gdrun torch / bare torch.optim loop = {r_t:.2f}   target <= 1.00  {verdict(r_t <= 1.0)}")
    print(f"    (for information) gdrun torch / gdrun numpy = {med['gdrun torch'] / med['gdrun numpy']:.2f}")


# ---------------------------------------------------------------------------------- part (c)


def part_c(work: Path) -> None:
    """Per-call cost of the pieces of a gdrun numpy step of (b): best of 5 timings of many calls."""
    import timeit

    import numpy as np

    from gdrun.engine import Block
    from gdrun.functions import resolve
    from gdrun.optim import get_optimizer
    from gdrun.runs import MetricsWriter

    X, lr = np.array([[INIT]]), np.array([[LR]])
    value_and_grad = resolve("x2").objective.numpy_value_and_grad()
    sgd = get_optimizer("sgd")
    state = sgd.init(X)
    _, G = value_and_grad(X)
    rows = 4096  # one full block, as the engine hands it over, with the values of (b)'s run
    x = INIT * (1 - 2 * LR) ** np.arange(rows)
    block = Block(np.arange(rows), np.arange(rows), x.reshape(rows, 1, 1), (x * x).reshape(rows, 1),
                  np.abs(2 * x).reshape(rows, 1), np.broadcast_to(np.array([LR]), (rows, 1)), np.array([rows - 1]))  # fmt: skip
    writer = MetricsWriter(work / "pieces.csv", ("x",))

    def best(fn, number: int) -> float:
        return min(timeit.repeat(fn, number=number, repeat=5)) / number * 1e6

    pieces = [
        ("value_and_grad (x**2 and 2*x, compiled)", best(lambda: value_and_grad(X), 20_000), "call"),
        ("optimizer update (plain SGD)", best(lambda: sgd.update(G, state, X, lr), 20_000), "call"),
        ("metrics.csv row (format and write)", best(lambda: writer.on_block(block), 3) / rows, "row"),
    ]
    writer.close()
    print("(c) Pieces of a gdrun numpy step of (b), B = 1, each timed alone in-process (best of 5);")
    print("    the rest of (b)'s gdrun numpy us/step is the engine loop itself")
    print()
    for name, us, unit in pieces:
        print(f"    {name:<42} {us:7.2f} us/{unit}")
    print(f"    {'sum of the pieces':<42} {sum(us for _, us, _ in pieces):7.2f} us/step")


# ---------------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="20,000 steps and 1 repeat in (b); 3 repeats in (a)")
    args = parser.parse_args()
    steps, repeats_b, repeats_a = (20_000, 1, 3) if args.quick else (100_000, 3, 7)

    work = Path(tempfile.mkdtemp(prefix="gdrun-bench-"))
    cache = work / "cache"
    os.environ["GDRUN_CACHE_DIR"] = str(cache)  # for the in-process runs of (b) too
    env = dict(os.environ)
    started = time.perf_counter()
    try:
        import numpy
        import torch

        print(f"gdrun foundation benchmark ({'quick' if args.quick else 'full'} mode), "
              f"{_dt.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}")  # fmt: skip
        print(f"python {platform.python_version()}, numpy {numpy.__version__}, torch {torch.__version__}, "
              f"{platform.machine()}, {os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}")  # fmt: skip
        print(f"GDRUN_CACHE_DIR = a fresh temp dir ({cache})")
        print()
        part_a(repeats_a, work, env)
        print()
        part_b(steps, repeats_b, work)
        print()
        part_c(work)
        print()
        print(f"total benchmark time {time.perf_counter() - started:.1f} s")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
