"""gdrun on a CUDA device: the same numbers as on the CPU.

The tests marked ``cuda`` need a CUDA device and are skipped (with the reason below, shown by
``pytest -rs``) where torch sees none: CI has none. On a GPU machine run them with

    python -m pytest -q -rs -m cuda tests/

Float64 on the GPU is compared with float64 on the CPU (the torch backend on both): the
statuses and step counts must be the same and the numbers equal to 1e-12 relative. The sweeps'
learning rates are kept away from the edge of stability, where an ulp of difference between two
machines' kernels (a fused multiply-add here and not there) is amplified step after step; there,
numpy against torch on one CPU (a harder comparison: different gradient code) agrees to 5e-13.

Two tests run everywhere: the sweep command's one-line error for ``device: cuda`` on a machine
without CUDA (or, on a GPU machine, that the same sweep runs), and a check that every CUDA test
carries the marker and the skip reason CI shows.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from gdrun.sweeps import SweepOptions, read_results, run_sweep, validate_sweep

NO_CUDA = "no CUDA device here (CI has none); runs on a GPU machine"
HAS_CUDA = torch.cuda.is_available()


def needs_cuda(test):
    """Mark ``test`` as a CUDA test, skipped (with the reason CI shows) where there is no device."""
    return pytest.mark.cuda(pytest.mark.skipif(not HAS_CUDA, reason=NO_CUDA)(test))


RTOL = 1e-12
#: a diverged config's numbers are those of its blow-up (|value| past 1e100, growing like x**4 a
#: step), where relative differences grow fastest: its status and step are compared exactly, its
#: numbers to this
DIVERGED_RTOL = 1e-9
#: 40 start points on a grid over [-2, 2] x [-1, 3] (rosenbrock's usual picture)
STARTS = [[round(float(x), 6), round(float(y), 6)] for x in np.linspace(-2, 2, 8) for y in np.linspace(-1, 3, 5)]
#: (optimizer, its options, 25 learning rates): with the 40 starts, 1,000 configs each. SGD's
#: last five learning rates diverge from every start (so "diverged" is compared too).
SWEEPS = {
    "adam": ("adam", {}, {"logspace": [-4, -2.5, 25]}),
    "sgd-momentum": ("sgd", {"momentum": 0.9}, np.logspace(-6, -4.5, 20).tolist() + [0.01, 0.03, 0.1, 0.3, 1.0]),
}


def _sweep(tmp_path: Path, device: str, optimizer: str, options: dict, lrs, dtype: str = "float64",
           starts=STARTS, epochs: int = 100) -> dict[int, dict[str, str]]:  # fmt: skip
    base = {"name": f"{optimizer}-{device}-{dtype}", "function": "rosenbrock", "backend": "torch", "device": device,
            "dtype": dtype, "optimizer": optimizer, "optimizer_options": options, "epochs": epochs}  # fmt: skip
    spec = validate_sweep({"record_every": 10, "params": {"lr": lrs, "init": starts}})
    summary, code = run_sweep(base, spec, SweepOptions(runs_dir=tmp_path / device / dtype / optimizer))
    assert code == 0, summary
    rows = {int(r["id"]): r for r in read_results(Path(summary["sweep_dir"]))}
    assert len(rows) == summary["configs"], (len(rows), summary["configs"])
    return rows


def _close(a: float, b: float, scale: float, rtol: float) -> bool:
    if math.isnan(a) or math.isnan(b) or math.isinf(a) or math.isinf(b):
        return (math.isnan(a) and math.isnan(b)) or a == b
    return abs(a - b) <= rtol * max(abs(a), abs(b), scale)


def _compare(gpu: dict[int, dict[str, str]], cpu: dict[int, dict[str, str]], rtol: float) -> list[str]:
    """Differences between two sweeps' results.csv rows (an empty list when they agree): status
    and steps exactly, value and gradient norm to ``rtol`` relative, each parameter to ``rtol``
    relative to the size of the config's point (a coordinate passing near 0 has no relative
    precision of its own); a diverged config's numbers to DIVERGED_RTOL."""
    assert sorted(gpu) == sorted(cpu)
    params = [k for k in next(iter(cpu.values())) if k.startswith("param.")]
    bad = []
    for i in sorted(cpu):
        g, c = gpu[i], cpu[i]
        if (g["status"], g["steps"], g["updates"]) != (c["status"], c["steps"], c["updates"]):
            bad.append(f"config {i}: {g['status']} at {g['steps']} on cuda, {c['status']} at {c['steps']} on cpu")
            continue
        tol = max(rtol, DIVERGED_RTOL) if c["status"] == "diverged" else rtol
        for key in ("value", "grad_norm"):
            if not _close(float(g[key]), float(c[key]), 0.0, tol):
                bad.append(f"config {i} ({c['status']}): {key} {g[key]} on cuda, {c[key]} on cpu")
        size = max((abs(float(c[k])) for k in params if math.isfinite(float(c[k]))), default=0.0)
        for key in params:
            if not _close(float(g[key]), float(c[key]), size, tol):
                bad.append(f"config {i} ({c['status']}): {key} {g[key]} on cuda, {c[key]} on cpu")
    return bad


# ---------------------------------------------------------------------------------- on a GPU


@needs_cuda
@pytest.mark.parametrize("which", list(SWEEPS))
def test_cuda_sweep_equals_cpu_sweep(tmp_path, which):
    """1,000 configs (25 learning rates x 40 start points) of rosenbrock, float64: the sweep on the
    GPU writes the results the same sweep writes on the CPU."""
    optimizer, options, lrs = SWEEPS[which]
    gpu = _sweep(tmp_path, "cuda", optimizer, options, lrs)
    cpu = _sweep(tmp_path, "cpu", optimizer, options, lrs)
    assert len(gpu) == 1000
    statuses = {s: sum(r["status"] == s for r in cpu.values()) for s in ("max_epochs", "converged", "diverged")}
    if which == "sgd-momentum":
        assert statuses["diverged"] >= 200, statuses  # the comparison covers diverged configs too
    bad = _compare(gpu, cpu, RTOL)
    assert not bad, f"{len(bad)} differences, the first: " + "; ".join(bad[:5])


@needs_cuda
def test_cuda_sweep_via_the_cli(gdrun, tmp_path):
    """``gdrun sweep CONFIG`` with ``device: cuda`` runs on the GPU and equals the CPU sweep."""
    runs = {}
    for device in ("cuda", "cpu"):
        config = tmp_path / f"{device}.yaml"
        config.write_text(json.dumps({  # JSON is YAML
            "function": "rosenbrock", "backend": "torch", "device": device, "optimizer": "adam", "epochs": 50,
            "sweep": {"params": {"lr": [0.0003, 0.001, 0.003], "init": STARTS[:10]}}}))  # fmt: skip
        r = gdrun("sweep", str(config), "--runs-dir", str(tmp_path / device), "--json")
        assert r.code == 0, r.err[-2000:]
        sweep_dir = next((tmp_path / device).glob("sweep-*"))
        runs[device] = {int(row["id"]): row for row in read_results(sweep_dir)}
    assert len(runs["cuda"]) == 30
    bad = _compare(runs["cuda"], runs["cpu"], RTOL)
    assert not bad, "; ".join(bad[:5])


@needs_cuda
@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_cuda_minimize_equals_cpu(gdrun, optimizer):
    """``gdrun minimize rosenbrock --backend torch --device cuda``: the run directory says cuda and
    its whole trajectory equals the CPU run's."""
    from gdrun.runs import read_run

    records, seen = {}, set()
    for device in ("cuda", "cpu"):
        r = gdrun("minimize", "rosenbrock", "--backend", "torch", "--device", device, "--optimizer", optimizer,
                  "--lr", "0.001", "--epochs", "300", "-q")  # fmt: skip
        assert r.code == 0, r.err[-2000:]
        (run_dir,) = set(r.run_dirs()) - seen  # the run directory this call made
        seen.add(run_dir)
        records[device] = read_run(run_dir)
    gpu, cpu = records["cuda"], records["cpu"]
    assert gpu.summary["device"] == "cuda" and cpu.summary["device"] == "cpu"
    assert "gpu" in gpu.summary["versions"] and "cuda" in gpu.summary["versions"]
    assert gpu.summary["status"] == cpu.summary["status"] == "max_epochs"
    assert gpu.summary["iterations"] == cpu.summary["iterations"] == 300
    for name in ("x1", "x2", "value", "grad_norm"):
        np.testing.assert_allclose(gpu.metrics[name], cpu.metrics[name], rtol=RTOL, atol=0, err_msg=name)
    for name, value in cpu.summary["params"].items():
        assert _close(gpu.summary["params"][name], value, 0.0, RTOL), (name, gpu.summary["params"][name], value)


@needs_cuda
def test_cuda_float32_runs(gdrun, tmp_path):
    """float32 on the GPU: a sweep and a single run finish, in float32, close to the CPU's float32
    (not bit for bit: float32 differences grow faster; stable learning rates only)."""
    lrs = [1e-4, 3e-4, 1e-3]
    gpu = _sweep(tmp_path, "cuda", "adam", {}, lrs, dtype="float32", starts=STARTS[:20], epochs=50)
    cpu = _sweep(tmp_path, "cpu", "adam", {}, lrs, dtype="float32", starts=STARTS[:20], epochs=50)
    assert {r["status"] for r in gpu.values()} == {"max_epochs"}
    bad = _compare(gpu, cpu, 1e-4)
    assert not bad, "; ".join(bad[:5])

    r = gdrun("minimize", "rosenbrock", "--backend", "torch", "--device", "cuda", "--dtype", "float32",
              "--optimizer", "adam", "--lr", "0.001", "--epochs", "100", "-q")  # fmt: skip
    assert r.code == 0, r.err[-2000:]
    record = r.record()
    assert record.summary["device"] == "cuda" and record.summary["dtype"] == "float32"
    assert record.summary["status"] == "max_epochs" and math.isfinite(record.summary["value"])


# ---------------------------------------------------------------------------------- everywhere


def test_sweep_on_cuda_is_one_line_without_a_device(gdrun, tmp_path):
    """``device: cuda`` in a sweep: on a machine without CUDA, exit 2 with one line naming cuda and
    nothing written (as ``gdrun minimize --device cuda`` does, see test_cli_errors); on a GPU
    machine, the same sweep runs."""
    runs = tmp_path / "runs"  # the directory the gdrun fixture checks
    whole = tmp_path / "on_cuda.yaml"
    whole.write_text("function: rosenbrock\nbackend: torch\ndevice: cuda\noptimizer: adam\nepochs: 5\n"
                     "sweep:\n  params:\n    lr: [0.001, 0.01]\n")  # fmt: skip
    mixed = tmp_path / "mixed.yaml"
    mixed.write_text("function: rosenbrock\nbackend: torch\noptimizer: adam\nepochs: 5\n")
    cases = [(whole, ()), (mixed, ("-p", "device=cpu,cuda", "-p", "lr=0.001,0.01"))]
    for config, extra in cases:
        r = gdrun("sweep", str(config), *extra, "--runs-dir", str(runs), "-q")
        if HAS_CUDA:
            assert r.code == 0, r.err[-2000:]
            continue
        everything = r.out + r.err
        assert "Traceback" not in everything, everything[-2000:]
        assert r.code == 2, (r.code, r.err)
        lines = r.err.splitlines()
        assert len(lines) == 1 and lines[0].startswith("gdrun: error: ") and "cuda" in lines[0].lower(), r.err
        assert r.out == ""
        assert not runs.exists(), sorted(p.name for p in runs.rglob("*"))
    if not HAS_CUDA:
        from gdrun.errors import GdrunError

        with pytest.raises(GdrunError, match="cuda"):  # the in-process entry point: the same error, nothing written
            run_sweep({"function": "x2", "backend": "torch", "device": "cuda"}, validate_sweep({"params": {"lr": [0.1]}}),
                      SweepOptions(runs_dir=runs))  # fmt: skip
        assert not runs.exists()


def test_every_cuda_test_is_marked_and_says_why_it_is_skipped():
    """Each test here that needs a device carries the ``cuda`` marker and skips with NO_CUDA, the
    line ``pytest -rs`` prints in CI; the marker is registered (no unknown-marker warning)."""
    import tomllib

    everywhere = {"test_sweep_on_cuda_is_one_line_without_a_device", "test_every_cuda_test_is_marked_and_says_why_it_is_skipped"}
    tests = {name: fn for name, fn in globals().items() if name.startswith("test_") and callable(fn)}
    assert len(tests) - len(everywhere) >= 4
    for name, fn in tests.items():
        marks = {m.name: m for m in getattr(fn, "pytestmark", [])}
        if name in everywhere:
            assert "cuda" not in marks and "skipif" not in marks, name
            continue
        assert "cuda" in marks, f"{name} lacks @pytest.mark.cuda"
        skip = marks.get("skipif")
        assert skip is not None and skip.args == (not HAS_CUDA,) and skip.kwargs.get("reason") == NO_CUDA, name
    pyproject = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml").read_text())
    markers = pyproject["tool"]["pytest"]["ini_options"]["markers"]
    assert any(m.split(":")[0].strip() == "cuda" for m in markers), markers
