"""What a picture costs, as a user waits for it: whole processes, from start to the file written.

    python benchmarks/bench_plot.py           # 5 timed repeats of each part
    python benchmarks/bench_plot.py --quick   # 3

(a) The picture (PNG) of a 100,000-step run (``gdrun minimize x2 --lr 1e-5 --epochs 100000``, every
    step recorded: 100,001 rows). Target: under 2 s.
(b) The picture of a 10,000-config sweep (lr: logspace(-4,0.5,100) x init: linspace(-5,5,100) on x2,
    40 epochs). Target: under 3 s.
(c) The terminal drawing (plotext, 100 x 30, no colour: the output is a pipe) of the run of (a),
    ``gdrun plot RUN --terminal``. Target: under 2 s.

Each part runs as ``python -m gdrun plot ...`` where that command exists, otherwise as
``python -c`` calling ``gdrun.plots.read`` and ``figure`` + ``save`` (or ``terminal``): the same
work. Every process also reports whether torch was imported (it must not be: a picture needs
numpy and matplotlib only), and the PNG or text is checked to be there. The parts are interleaved
(the starting one rotated each repeat) after one untimed warm-up of each, and medians reported;
a part that fails prints an error line and the rest go on. Nothing here asserts: a missed target
prints MISS and the exit code stays 0. GDRUN_CACHE_DIR and the runs directory are temporary and
removed at the end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TARGETS = {"a": 2.0, "b": 3.0, "c": 2.0}
LABELS = {"a": "(a) picture of a 100,000-step run", "b": "(b) picture of a 10,000-config sweep",
          "c": "(c) terminal drawing of the run of (a)"}  # fmt: skip

PICTURE = """
import sys
from pathlib import Path
from gdrun.plots import figure, read, save
out = save(figure(read([Path(sys.argv[1])])), Path(sys.argv[2]))
assert out.stat().st_size > 1000, "empty picture"
print("TORCH", "torch" in sys.modules)
"""
TERMINAL = """
import sys
from pathlib import Path
from gdrun.plots import read, terminal
text = terminal(read([Path(sys.argv[1])]), 100, 30)
Path(sys.argv[2]).write_text(text)
assert len(text.splitlines()) == 30, "not 30 lines"
print("TORCH", "torch" in sys.modules)
"""


def gdrun(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gdrun", *argv], cwd=REPO, env=env, capture_output=True, text=True)


def has_plot_command(env: dict[str, str]) -> bool:
    done = gdrun(["plot", "--help"], env)
    return done.returncode == 0 and "Usage" in done.stdout


def command(part: str, path: Path, out: Path, cli: bool) -> list[str]:
    """The process that draws part ``part`` of ``path`` into ``out``."""
    if cli:  # the CLI prints no torch report: a wrapper imports it and checks afterwards
        argv = ["plot", str(path), "--terminal"] if part == "c" else ["plot", str(path), "--out", str(out)]
        wrapper = ("import runpy, sys; sys.argv = ['gdrun', *sys.argv[1:]]\n"
                   "try:\n    runpy.run_module('gdrun', run_name='__main__')\n"
                   "except SystemExit as e:\n    code = e.code\nelse:\n    code = 0\n"
                   "print('TORCH', 'torch' in sys.modules); sys.exit(code)")  # fmt: skip
        return [sys.executable, "-c", wrapper, *argv]
    return [sys.executable, "-c", TERMINAL if part == "c" else PICTURE, str(path), str(out)]


def timed(argv: list[str], out: Path, env: dict[str, str]) -> tuple[float, bool]:
    """Seconds for one process, and whether it imported torch; an error raises RuntimeError.
    ``gdrun plot --terminal`` prints its drawing: standard output is kept in ``out``."""
    out.unlink(missing_ok=True)
    terminal = "--terminal" in argv
    if terminal:  # a 100 x 30 drawing (two lines are left for the prompt)
        env = {**env, "COLUMNS": "100", "LINES": "32"}
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if terminal and done.returncode == 0:
        out.write_text("\n".join(line for line in done.stdout.splitlines() if not line.startswith("TORCH ")))
    if done.returncode != 0:
        raise RuntimeError((done.stderr.strip() or done.stdout.strip()).splitlines()[-1:] or [f"exit {done.returncode}"])
    if not out.exists() and "TORCH" in done.stdout:
        raise RuntimeError(["nothing was written"])
    torch = "TORCH True" in done.stdout
    return elapsed, torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 repeats instead of 5")
    args = parser.parse_args()
    repeats = 3 if args.quick else 5
    work = Path(tempfile.mkdtemp(prefix="gdrun-bench-plot-"))
    env = {**os.environ, "GDRUN_CACHE_DIR": str(work / "cache"), "GDRUN_RUNS_DIR": str(work / "runs")}
    env.pop("NO_COLOR", None)
    total = time.perf_counter()
    try:
        import matplotlib
        import plotext

        print(f"python {sys.version.split()[0]}, matplotlib {matplotlib.__version__}, plotext {plotext.__version__}, "
              f"{os.cpu_count()} CPUs; median whole-process wall time of {repeats} repeats, parts interleaved")  # fmt: skip
        started = time.perf_counter()
        made = gdrun(["minimize", "x2", "--lr", "1e-5", "--epochs", "100000", "--quiet", "--runs-dir", str(work / "runs")], env)
        config = work / "sweep.yaml"
        config.write_text("function: x2\nepochs: 40\nlr: 0.01\nname: bench\n")
        swept = gdrun(["sweep", str(config), "-p", "lr=logspace(-4,0.5,100)", "-p", "init=linspace(-5,5,100)", "--quiet",
                       "--runs-dir", str(work / "sweeps")], env)  # fmt: skip
        print(f"set-up: the run (exit {made.returncode}) and the sweep (exit {swept.returncode}) made in "
              f"{time.perf_counter() - started:.1f} s")  # fmt: skip
        runs = [p for p in (work / "runs").iterdir() if p.is_dir()] if (work / "runs").exists() else []
        sweeps = [p for p in (work / "sweeps").iterdir() if p.is_dir()] if (work / "sweeps").exists() else []
        paths = {"a": runs[0] if runs else None, "b": sweeps[0] if sweeps else None, "c": runs[0] if runs else None}
        cli = has_plot_command(env)
        print("drawn by: " + ("python -m gdrun plot" if cli else "python -c with gdrun.plots (no `gdrun plot` command yet)"))
        outs = {"a": work / "run.png", "b": work / "sweep.png", "c": work / "run.txt"}
        times: dict[str, list[float]] = {p: [] for p in paths}
        torch: dict[str, bool] = {p: False for p in paths}
        errors: dict[str, str] = {p: "no run directory was made" for p, path in paths.items() if path is None}
        parts = [p for p in paths if p not in errors]
        via_cli = {p: cli for p in paths}
        for r in range(repeats + 1):  # round 0: the untimed warm-up
            order = parts[r % len(parts):] + parts[: r % len(parts)] if parts else []
            for part in order:
                if part in errors:
                    continue
                try:
                    elapsed, imported = timed(command(part, paths[part], outs[part], via_cli[part]), outs[part], env)
                except RuntimeError as exc:
                    if not (via_cli[part] and r == 0):
                        errors[part] = " ".join(exc.args[0])
                        continue
                    via_cli[part] = False  # the command takes other options than guessed: draw through the API
                    print(f"{LABELS[part]}: `gdrun plot` failed ({' '.join(exc.args[0])[-200:]}); timed through the API")
                    try:
                        elapsed, imported = timed(command(part, paths[part], outs[part], False), outs[part], env)
                    except RuntimeError as again:
                        errors[part] = " ".join(again.args[0])
                        continue
                torch[part] |= imported
                if r:
                    times[part].append(elapsed)
        for part in paths:
            if part in errors:
                print(f"{LABELS[part]:<42} ERROR: {errors[part][-300:]}")
                continue
            m = statistics.median(times[part])
            mark = "PASS" if m < TARGETS[part] else "MISS"
            print(f"{LABELS[part]:<42} {m:6.3f} s (min {min(times[part]):.3f}, max {max(times[part]):.3f})   "
                  f"target < {TARGETS[part]:.0f} s {mark}   torch imported: {'yes MISS' if torch[part] else 'no PASS'}")  # fmt: skip
        if outs["c"].exists():
            print("\nthe drawing of (c):\n" + outs["c"].read_text())
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"total benchmark time {time.perf_counter() - total:.1f} s")


if __name__ == "__main__":
    main()
