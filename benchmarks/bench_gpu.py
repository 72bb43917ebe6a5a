"""GPU sweeps: config-steps per second of gdrun sweep on a CUDA device, against the CPU and a hand loop.

The workload: Adam on 2-D rosenbrock, a grid of learning rates (logspace(-4, -1, L)) x start
points (S of them, on a grid over [-2, 2] x [-1, 3]), L x S = 10^4, 10^5 and 10^6 configs, 100
steps each (every 10th step recorded), float64. Config-steps per second = configs x steps / s.
Contestants, measured side by side in one run:

  gdrun cuda   run_sweep() in-process, backend torch, device cuda: the whole call (expanding the
               configs, batching, running, writing the sweep directory), and of it the batches
               alone (the sum of results.csv's batch_time_s, one per batch);
  gdrun cpu    the same sweep on the numpy backend (CPU); up to --cpu-max configs (default 10^5);
  hand cuda    what one would write by hand: X (B, 2) float64 on the GPU, autograd for the
               gradient, torch.optim.Adam's update written out as tensor maths with the learning
               rate as a (B, 1) column, every 10th step's x and value kept on the GPU and copied to
               the host at the end; torch.cuda.synchronize() before the clock stops.

Printed: a table (configs, contestant, seconds, config-steps/s), the time ratios gdrun cuda /
hand cuda and gdrun cuda / gdrun cpu, whether gdrun's CUDA results equal its CPU results (final
value and point of a few configs, to 1e-9 relative), whether the hand loop agrees with gdrun, and
the project's goal: 10^6 configs at >= 10^9 config-steps/s on one GPU (MET / NOT MET).

Each contestant has one small untimed warm-up (CUDA context, kernels, derivative cache). A size
whose run is projected (linearly from the size before) past --budget seconds is skipped and says
so, so the default run stays within ~4 minutes of device time; --quick (10^4 and 10^5 configs,
CPU at 10^4 only) within 1 minute. Nothing is asserted; the exit code is 0.

Without a CUDA device it prints "no CUDA device: nothing to measure" and, unless --no-smoke, runs
a tiny smoke of the same code paths on the CPU (the torch backend on device cpu standing in for
cuda; its figures are not a measurement).

    python benchmarks/bench_gpu.py [--quick] [--configs 1e4,1e5,1e6] [--steps 100] [--cpu-max 1e5]
                                   [--budget 90] [--no-smoke]
"""

from __future__ import annotations

import argparse
import csv
import datetime as _dt
import math
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from gdrun.sweeps import SweepOptions, run_sweep, validate_sweep  # noqa: E402

GOAL_CONFIGS = 1_000_000
GOAL_RATE = 1e9  # config-steps per second
RECORD_EVERY = 10
CHECK_RTOL = 1e-9
BETA1, BETA2, EPS = 0.9, 0.999, 1e-8  # torch.optim.Adam's defaults, gdrun's too


# ---------------------------------------------------------------------------------- the workload


def grid_shape(configs: int) -> tuple[int, int]:
    """(learning rates, start points) whose product is ``configs`` (rounded to a whole grid)."""
    lrs = 1000 if configs >= 1_000_000 else 100 if configs >= 10_000 else 10
    return lrs, max(1, round(configs / lrs))


def start_points(count: int) -> np.ndarray:
    """``count`` start points on a grid over [-2, 2] x [-1, 3] (as square as ``count`` allows)."""
    nx = max(d for d in range(1, int(math.isqrt(count)) + 1) if count % d == 0)
    ny = count // nx
    if nx == 1 and count > 3:  # a prime: a near-square grid, cut to count
        nx = ny = math.isqrt(count - 1) + 1
    xs, ys = np.meshgrid(np.linspace(-2, 2, nx), np.linspace(-1, 3, ny), indexing="ij")
    return np.round(np.stack([xs.ravel(), ys.ravel()], axis=1)[:count], 6)


class Workload:
    def __init__(self, configs: int, steps: int):
        self.n_lr, self.n_start = grid_shape(configs)
        self.configs = self.n_lr * self.n_start
        self.steps = steps
        self.lrs = np.logspace(-4, -1, self.n_lr)
        self.starts = start_points(self.n_start)

    def spec(self):
        # grid order: the last key varies fastest, so config id = i_lr * n_start + i_start
        return validate_sweep({"record_every": RECORD_EVERY, "params": {
            "lr": {"logspace": [-4, -1, self.n_lr]}, "init": self.starts.tolist()}})  # fmt: skip

    def base(self, backend: str, device: str | None) -> dict:
        base = {"name": f"gpu{self.configs}", "function": "rosenbrock", "backend": backend, "optimizer": "adam",
                "epochs": self.steps, "dtype": "float64"}  # fmt: skip
        if device is not None:
            base["device"] = device
        return base

    def batch_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """(lr (B, 1), x0 (B, 2)) in the sweep's config order."""
        lr = np.repeat(self.lrs, self.n_start).reshape(-1, 1)
        x0 = np.tile(self.starts, (self.n_lr, 1))
        return lr, x0


def pick_ids(configs: int) -> list[int]:
    """A few configs spread over the sweep, compared between contestants."""
    return sorted({0, 1, configs // 7, configs // 3, configs // 2, (2 * configs) // 3, configs - 1})


# ---------------------------------------------------------------------------------- contestants


def read_results_columns(sweep_dir: Path) -> dict[str, np.ndarray]:
    """The few results.csv columns this benchmark needs, read with csv.reader (10^6 rows in seconds)."""
    want = ("id", "status", "value", "param.x1", "param.x2", "batch", "batch_time_s")
    with open(sweep_dir / "results.csv", newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        index = [header.index(name) for name in want]
        rows = [[row[i] for i in index] for row in reader if len(row) == len(header)]
    columns = dict(zip(want, map(list, zip(*rows)))) if rows else {name: [] for name in want}
    out = {"id": np.array(columns["id"], dtype=np.int64), "status": np.array(columns["status"], dtype=object)}
    for name in ("value", "param.x1", "param.x2", "batch_time_s"):
        out[name] = np.array(columns[name], dtype=np.float64)
    out["batch"] = np.array(columns["batch"], dtype=np.int64)
    order = np.argsort(out["id"])
    return {k: v[order] for k, v in out.items()}


def gdrun_sweep(work: Workload, backend: str, device: str | None, runs: Path) -> dict:
    """One timed run_sweep() call; its result columns read back afterwards (untimed)."""
    t0 = time.perf_counter()
    summary, code = run_sweep(work.base(backend, device), work.spec(), SweepOptions(runs_dir=runs))
    elapsed = time.perf_counter() - t0
    if code != 0:
        raise RuntimeError(f"run_sweep exited {code}: {summary.get('status')} {summary.get('counts')}")
    sweep_dir = Path(summary["sweep_dir"])
    cols = read_results_columns(sweep_dir)
    if len(cols["id"]) != work.configs:
        raise RuntimeError(f"results.csv has {len(cols['id'])} rows, not {work.configs}")
    _, first = np.unique(cols["batch"], return_index=True)
    batches_s = float(cols["batch_time_s"][first].sum())
    shutil.rmtree(sweep_dir, ignore_errors=True)  # a 10^6 sweep's metrics.f64 is ~700 MB
    return {"seconds": elapsed, "batches_s": batches_s, "batches": len(first), "cols": cols,
            "counts": {str(s): int(n) for s, n in zip(*np.unique(cols["status"], return_counts=True))}}  # fmt: skip


def hand_loop(work: Workload, device: str) -> dict:
    """The hand-written batched Adam loop on ``device`` (see the module docstring)."""
    import torch

    def sync():
        if device == "cuda":
            torch.cuda.synchronize()

    lr_host, x0_host = work.batch_arrays()
    sync()
    t0 = time.perf_counter()
    X = torch.as_tensor(x0_host, dtype=torch.float64, device=device)
    lr = torch.as_tensor(lr_host, dtype=torch.float64, device=device)
    exp_avg = torch.zeros_like(X)
    exp_avg_sq = torch.zeros_like(X)
    kept_x, kept_f = [], []

    def value(P):  # rosenbrock in 2-D: 100 (y - x^2)^2 + (1 - x)^2
        x, y = P[:, 0], P[:, 1]
        return 100 * (y - x**2) ** 2 + (1 - x) ** 2

    for step in range(work.steps + 1):
        with torch.enable_grad():
            P = X.detach().requires_grad_(True)
            f = value(P)
            (G,) = torch.autograd.grad(f.sum(), P)
        if step % RECORD_EVERY == 0 or step == work.steps:
            kept_x.append(X)
            kept_f.append(f.detach())
        if step == work.steps:
            break
        with torch.no_grad():  # torch.optim.Adam's single-tensor update, lr a (B, 1) column
            t = step + 1
            exp_avg = torch.lerp(exp_avg, G, 1 - BETA1)
            exp_avg_sq = torch.addcmul(exp_avg_sq * BETA2, G, G, value=1 - BETA2)
            step_size = lr / (1 - BETA1**t)
            denom = torch.sqrt(exp_avg_sq) / (1 - BETA2**t) ** 0.5 + EPS
            X = torch.addcdiv(X, -step_size * exp_avg, denom)
    xs = torch.stack(kept_x).cpu().numpy()
    fs = torch.stack(kept_f).cpu().numpy()
    sync()
    elapsed = time.perf_counter() - t0
    return {"seconds": elapsed, "x": xs[-1], "value": fs[-1], "rows": len(kept_x)}


# ---------------------------------------------------------------------------------- report


def rate(configs: int, steps: int, seconds: float | None) -> str:
    return "-" if not seconds else f"{configs * steps / seconds:12.3e}"


def fmt_s(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:9.3f}"


def worst_rel(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    both_nan = np.isnan(a) & np.isnan(b)
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = np.abs(a - b) / np.maximum(np.maximum(np.abs(a), np.abs(b)), 1e-300)
    rel[both_nan | (a == b)] = 0.0
    return float(np.nanmax(np.where(np.isnan(rel), np.inf, rel))) if rel.size else 0.0


def compare_to(reference: dict, other: dict, ids: list[int]) -> float:
    """Worst relative difference of value and point over ``ids``, between two gdrun sweeps."""
    keys = ("value", "param.x1", "param.x2")
    same_status = all(reference["cols"]["status"][i] == other["cols"]["status"][i] for i in ids)
    worst = max(worst_rel(reference["cols"][k][ids], other["cols"][k][ids]) for k in keys)
    return worst if same_status else math.inf


def compare_hand(reference: dict, hand: dict, ids: list[int]) -> float:
    cols = reference["cols"]
    return max(worst_rel(cols["value"][ids], hand["value"][ids]), worst_rel(cols["param.x1"][ids], hand["x"][ids, 0]),
               worst_rel(cols["param.x2"][ids], hand["x"][ids, 1]))  # fmt: skip


def run_all(sizes: list[int], steps: int, cpu_max: int, budget: float, gpu: str, work_dir: Path,
            label: str) -> list[dict]:  # fmt: skip
    """Every contestant at every size; returns the table's rows. ``gpu`` is the device of the
    'cuda' contestants ('cuda', or 'cpu' in the smoke)."""
    names = {"gdrun": f"gdrun {label}", "cpu": "gdrun cpu (numpy)", "hand": f"hand {label}"}
    warm = Workload(100, 5)
    gdrun_sweep(warm, "torch", gpu, work_dir / "warm")
    gdrun_sweep(warm, "numpy", None, work_dir / "warm")
    hand_loop(warm, gpu)
    print(f"one untimed warm-up of each contestant ({warm.configs} configs x {warm.steps} steps)")
    print()
    rows: list[dict] = []
    last: dict[str, tuple[int, float]] = {}

    def projected(key: str, configs: int) -> float | None:
        if key not in last:
            return None
        n, s = last[key]
        return s * configs / n

    header = f"{'configs':>9}  {'contestant':<22} {'seconds':>9} {'config-steps/s':>14}   notes"
    print(header)
    print("-" * len(header))
    for configs in sizes:
        work = Workload(configs, steps)
        ids = pick_ids(work.configs)
        results: dict[str, dict] = {}
        for key in ("gdrun", "cpu", "hand"):
            name = names[key]
            if key == "cpu" and work.configs > cpu_max:
                print(f"{work.configs:>9,}  {name:<22} {'-':>9} {'-':>14}   skipped: above --cpu-max {cpu_max:,.0f}")
                continue
            guess = projected(key, work.configs)
            if guess is not None and guess > budget:
                print(f"{work.configs:>9,}  {name:<22} {'-':>9} {'-':>14}   skipped: projected {guess:.0f} s "
                      f"> --budget {budget:g} s")  # fmt: skip
                continue
            try:
                if key == "hand":
                    res = hand_loop(work, gpu)
                else:
                    res = gdrun_sweep(work, "torch" if key == "gdrun" else "numpy", gpu if key == "gdrun" else None,
                                      work_dir / "runs")  # fmt: skip
            except Exception as exc:  # noqa: BLE001 - report and go on (out of memory, a bug): nothing is asserted
                print(f"{work.configs:>9,}  {name:<22} {'-':>9} {'-':>14}   FAILED: {type(exc).__name__}: {str(exc)[:200]}")
                continue
            results[key] = res
            last[key] = (work.configs, res["seconds"])
            note = ""
            if "batches_s" in res:
                note = (f"batches alone {res['batches_s']:.3f} s ({rate(work.configs, steps, res['batches_s']).strip()}/s, "
                        f"{res['batches']} batch{'es' if res['batches'] != 1 else ''}); {res['counts']}")  # fmt: skip
            print(f"{work.configs:>9,}  {name:<22} {fmt_s(res['seconds'])} {rate(work.configs, steps, res['seconds']):>14}   {note}")
            rows.append({"configs": work.configs, "key": key, **{k: v for k, v in res.items() if k not in ("cols", "x", "value")}})
        g, c, h = results.get("gdrun"), results.get("cpu"), results.get("hand")
        ratios = []
        if g and h:
            ratios.append(f"gdrun {label} / hand {label} = {g['seconds'] / h['seconds']:.2f}x the time "
                          f"(batches alone {g['batches_s'] / h['seconds']:.2f}x)")  # fmt: skip
        if g and c:
            ratios.append(f"gdrun {label} / gdrun cpu = {g['seconds'] / c['seconds']:.3f}x the time")
        for text in ratios:
            print(f"{'':>9}  ratio: {text}")
        if g and c:
            worst = compare_to(c, g, ids)
            ok = worst <= CHECK_RTOL
            print(f"{'':>9}  check: gdrun {label} equals gdrun cpu on configs {ids}: worst relative difference "
                  f"{worst:.2e} (value, x1, x2; statuses {'equal' if math.isfinite(worst) else 'DIFFER'}) -> "
                  f"{'yes' if ok else 'NO'} (to {CHECK_RTOL:g})")  # fmt: skip
        if g and h:
            worst = compare_hand(g, h, ids)
            print(f"{'':>9}  check: hand {label} agrees with gdrun {label} on those configs: worst relative difference "
                  f"{worst:.2e} -> {'yes' if worst <= CHECK_RTOL else 'NO'} (to {CHECK_RTOL:g})")  # fmt: skip
    return rows


def goal_line(rows: list[dict], steps: int, label: str) -> None:
    at = [r for r in rows if r["configs"] >= GOAL_CONFIGS]
    g = next((r for r in at if r["key"] == "gdrun"), None)
    h = next((r for r in at if r["key"] == "hand"), None)
    print()
    head = f"goal: {GOAL_CONFIGS:,} configs at >= {GOAL_RATE:.0e} config-steps/s on one GPU"
    if g is None:
        print(f"{head}: not measured (no gdrun {label} run at {GOAL_CONFIGS:,} configs)")
    else:
        whole = g["configs"] * steps / g["seconds"]
        batches = g["configs"] * steps / g["batches_s"] if g["batches_s"] else math.inf
        print(f"{head}:")
        print(f"    gdrun {label}, whole run_sweep call: {whole:.3e} config-steps/s -> {'MET' if whole >= GOAL_RATE else 'NOT MET'}")
        print(f"    gdrun {label}, the batches alone:    {batches:.3e} config-steps/s -> "
              f"{'MET' if batches >= GOAL_RATE else 'NOT MET'}")  # fmt: skip
    if h is not None:
        hand = h["configs"] * steps / h["seconds"]
        print(f"    (hand {label} loop, for scale:        {hand:.3e} config-steps/s)")


def parse_sizes(text: str) -> list[int]:
    try:
        sizes = [int(float(part)) for part in text.split(",") if part.strip()]
    except ValueError:
        raise SystemExit(f"--configs takes numbers such as 1e4,1e5,1e6, got {text!r}") from None
    if not sizes or any(s < 1 or s > GOAL_CONFIGS for s in sizes):
        raise SystemExit(f"--configs takes 1 to {GOAL_CONFIGS:,} configs per size, got {text!r}")
    return sizes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", default=None, help="sizes, comma-separated (default 1e4,1e5,1e6; --quick 1e4,1e5)")
    parser.add_argument("--steps", type=int, default=100, help="steps of every config (default 100)")
    parser.add_argument("--cpu-max", type=float, default=None, help="largest size the CPU runs (default 1e5; --quick 1e4)")
    parser.add_argument("--budget", type=float, default=90.0,
                        help="skip a contestant at a size projected to take longer than this many seconds (default 90)")
    parser.add_argument("--quick", action="store_true", help="10^4 and 10^5 configs, the CPU at 10^4 only (under a minute)")
    parser.add_argument("--no-smoke", action="store_true", help="without CUDA, skip the CPU smoke too")
    args = parser.parse_args()
    sizes = parse_sizes(args.configs or ("1e4,1e5" if args.quick else "1e4,1e5,1e6"))
    cpu_max = int(args.cpu_max if args.cpu_max is not None else (1e4 if args.quick else 1e5))
    if args.steps < 1:
        raise SystemExit("--steps must be at least 1")

    import torch

    work_dir = Path(tempfile.mkdtemp(prefix="gdrun-bench-gpu-"))
    os.environ["GDRUN_CACHE_DIR"] = str(work_dir / "cache")
    started = time.perf_counter()
    try:
        print(f"gdrun GPU sweep benchmark ({'quick' if args.quick else 'full'} mode), "
              f"{_dt.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}")  # fmt: skip
        print(f"python {platform.python_version()}, numpy {np.__version__}, torch {torch.__version__}, "
              f"{platform.machine()}, {os.cpu_count()} CPUs")  # fmt: skip
        if not torch.cuda.is_available():
            print("no CUDA device: nothing to measure")
            if args.no_smoke:
                return 0
            print()
            print("smoke: the same code paths on the CPU, tiny sizes (the torch backend on device cpu stands in for")
            print("cuda); these figures are not a measurement")
            rows = run_all([1_000, 2_000], 20, 2_000, 60.0, "cpu", work_dir, "torch-cpu")
            goal_line(rows, 20, "torch-cpu")
            print(f"\nsmoke done in {time.perf_counter() - started:.1f} s")
            return 0
        props = torch.cuda.get_device_properties(0)
        print(f"GPU: {torch.cuda.get_device_name(0)}, {props.total_memory / 2**30:.0f} GiB, CUDA {torch.version.cuda}")
        print(f"workload: Adam on 2-D rosenbrock, lr logspace(-4,-1,L) x S start points over [-2,2] x [-1,3], "
              f"{args.steps} steps, float64, record_every {RECORD_EVERY}")  # fmt: skip
        print(f"sizes {', '.join(f'{s:,}' for s in sizes)}; the CPU up to {cpu_max:,}; budget per run {args.budget:g} s")
        print()
        rows = run_all(sizes, args.steps, cpu_max, args.budget, "cuda", work_dir, "cuda")
        goal_line(rows, args.steps, "cuda")
        print(f"\ntotal benchmark time {time.perf_counter() - started:.1f} s")
        return 0
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
