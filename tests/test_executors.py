"""Executors: a process pool and a dask cluster give the sweep the same results as the local
executor; a batch that raises fails only its own configs; Ctrl-C stops a sweep early, resumably."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import yaml

from gdrun import engine
from gdrun.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, GdrunError
from gdrun.executors import DaskExecutor, ProcessExecutor, check_address, get_executor
from gdrun.sweeps import (
    DONE, METRIC_HEAD, METRIC_TAIL, METRICS_FILE, SUMMARY_FILE, SWEEP_FILE, LocalExecutor, SweepOptions,
    validate_configs, make_batches, read_metrics_file, read_results, run_sweep, validate_sweep,
)  # fmt: skip

REPO = Path(__file__).resolve().parents[1]
TIMING = ("batch", "batch_time_s")

# configs of different structure (function, optimizer) in one sweep: four groups of three learning rates;
# sgd on rosenbrock from (2.5, 2.5) diverges at the larger rates
MINIMIZE = (
    {"function": "x2", "lr": 0.1, "epochs": 60, "init": 2.5, "name": "mix"},
    {"kind": "grid",
     "params": {"function": ["x2", "rosenbrock"], "optimizer": ["sgd", "adam"], "lr": [0.001, 0.01, 0.1]}},
)
# a fit (E4's y = w*x) on numpy and torch, two optimizers, two learning rates
FIT = (
    {"fit": {"model": "w*x", "data": {"x": [1, 2, 3], "y": [2, 4, 6]}}, "optimizer": "sgd", "lr": 0.01, "epochs": 80,
     "init": {"w": 1.0}, "name": "fit"},
    {"kind": "grid", "params": {"backend": ["numpy", "torch"], "optimizer": ["sgd", "adam"], "lr": [0.01, 0.05]}},
)  # fmt: skip


class Flag:
    """Stands in for engine.Interrupt where an executor is driven directly."""

    def __init__(self, requested: bool = False):
        self.requested = requested


def sweep(tmp_path: Path, case, executor=None, progress=None, **options):
    base, declaration = case
    options = SweepOptions(runs_dir=tmp_path / "runs", executor=executor, **options)
    summary, code = run_sweep(base, validate_sweep(declaration), options, progress)
    return summary, code, Path(summary["sweep_dir"])


def table(path: Path) -> list[dict[str, str]]:
    """results.csv without its timing columns, in id order."""
    rows = [{k: v for k, v in r.items() if k not in TIMING} for r in read_results(path)]
    return sorted(rows, key=lambda r: int(r["id"]))


def metrics(path: Path) -> np.ndarray:
    """metrics.f64 as records ordered by (config, step)."""
    columns = yaml.safe_load((path / SWEEP_FILE).read_text())["metrics"]["columns"]
    records = read_metrics_file(path / METRICS_FILE, len(columns) - len(METRIC_HEAD) - len(METRIC_TAIL))
    return records[np.lexsort((records[:, 1], records[:, 0]))]


def assert_same_sweep(reference: Path, other: Path) -> None:
    """Same results.csv (but for timings) and the same metrics, config by config."""
    expected, got = table(reference), table(other)
    assert [r["id"] for r in got] == [r["id"] for r in expected]
    assert got == expected
    np.testing.assert_array_equal(metrics(other), metrics(reference))


@pytest.fixture(scope="module")
def local_reference(tmp_path_factory):
    """The local executor's sweeps, the reference every other executor must reproduce."""
    out = {}
    for label, case in (("minimize", MINIMIZE), ("fit", FIT)):
        summary, code, path = sweep(tmp_path_factory.mktemp(f"local-{label}"), case)
        assert code == EXIT_OK and summary["status"] == "completed"
        assert summary["batches"] == 4  # one batch per structure
        out[label] = path
    assert {r["status"] for r in read_results(out["minimize"])} >= {"diverged", "max_epochs"}
    return out


@pytest.fixture(scope="module")
def dask_cluster():
    """A real dask.distributed LocalCluster on loopback, started by the tests: 2 worker processes."""
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                       dashboard_address=None, scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                                       silence_logs=logging.ERROR)  # fmt: skip
    yield cluster
    cluster.close()


def _corrupt(config):
    """A config with a backend no worker has (a Config, or its plain dict)."""
    if isinstance(config, dict):
        return {**config, "backend": "no_such_backend"}
    return replace(config, backend="no_such_backend")


class BreakBatch:
    """Wraps an executor: the batch holding config ``victim`` carries an invalid config, so
    ``run_batch`` raises in the worker that runs it."""

    def __init__(self, inner, victim: int):
        self.inner, self.victim, self.name = inner, victim, inner.name
        self.broken: list[int] = []

    def batch_limit(self, pending: int) -> int:
        return self.inner.batch_limit(pending)

    def run(self, jobs, interrupt):
        for i, job in enumerate(jobs):
            if self.victim in job.ids:
                jobs[i] = replace(job, config=_corrupt(job.config))
                self.broken = list(job.ids)
        return self.inner.run(jobs, interrupt)

    def close(self) -> None:
        self.inner.close()


def assert_one_batch_failed(tmp_path: Path, executor, reference: Path) -> None:
    broken = BreakBatch(executor, victim=7)
    summary, code, path = sweep(tmp_path, MINIMIZE, broken)
    assert code == EXIT_FAILED and summary["status"] == "completed"
    rows = {int(r["id"]): r for r in table(path)}
    assert len(rows) == 12 and 7 in broken.broken
    for i, row in rows.items():
        if i in broken.broken:
            assert row["status"] == "failed" and row["reason"].startswith("InputError: ")
            assert "no_such_backend" in row["reason"]
    expected = {int(r["id"]): r for r in table(reference)}
    assert {i: r for i, r in rows.items() if i not in broken.broken} == {
        i: r for i, r in expected.items() if i not in broken.broken}
    assert summary["counts"]["failed"] == len(broken.broken) < 12


# ---------------------------------------------------------------------------- processes


def test_processes_give_the_local_results(tmp_path, local_reference):
    for label, case in (("fit", FIT), ("minimize", MINIMIZE)):
        summary, code, path = sweep(tmp_path / label, case, ProcessExecutor(2))
        assert code == EXIT_OK and summary["status"] == "completed" and summary["executor"] == "processes"
        assert summary["batches"] >= 4
        assert_same_sweep(local_reference[label], path)


def test_processes_split_one_group_across_workers():
    executor = ProcessExecutor(3)
    assert executor.batch_limit(10) == 4 and executor.batch_limit(0) == 1
    base, declaration = {"function": "x2", "epochs": 5}, {"params": {"lr": [0.01 * k for k in range(1, 11)]}}
    swept = validate_configs(base, validate_sweep(declaration))
    jobs = make_batches(swept, np.arange(swept.size), 10, 1, None, executor.batch_limit(swept.size))
    assert [len(j.ids) for j in jobs] == [4, 4, 2]


def test_processes_a_batch_that_raises_fails_only_its_configs(tmp_path, local_reference):
    assert_one_batch_failed(tmp_path, ProcessExecutor(2), local_reference["minimize"])


def _jobs(case, workers=1):
    base, declaration = case
    swept = validate_configs(base, validate_sweep(declaration))
    return make_batches(swept, np.arange(swept.size), 10, 2, None, ProcessExecutor(workers).batch_limit(swept.size))


def test_processes_interrupted_before_start_run_nothing():
    executor = ProcessExecutor(2)
    assert list(executor.run(_jobs(MINIMIZE), Flag(requested=True))) == []
    executor.close()


def test_processes_stop_a_running_batch_at_its_next_step():
    long = ({"function": "rosenbrock", "optimizer": "adam", "epochs": 10**8}, {"params": {"lr": [1e-4, 1e-3]}})
    flag = Flag()
    threading.Timer(1.0, setattr, (flag, "requested", True)).start()
    executor = ProcessExecutor(2)
    started = time.perf_counter()
    results = list(executor.run(_jobs(long, workers=2), flag))
    executor.close()
    assert time.perf_counter() - started < 15
    assert [s for r in results for s in r.status] == ["interrupted", "interrupted"]
    assert all(n < 10**8 for r in results for n in r.iterations)


class _Interrupts(list):
    """Patches engine.Interrupt (which run_sweep enters) and remembers each instance."""

    def install(self, monkeypatch, at_start: bool):
        instances = self

        class Recorded(engine.Interrupt):
            def __enter__(self):
                super().__enter__()
                self.requested = at_start
                instances.append(self)
                return self

        monkeypatch.setattr(engine, "Interrupt", Recorded)
        return self


def test_processes_interrupt_before_start_leaves_a_resumable_sweep(tmp_path, monkeypatch, local_reference):
    _Interrupts().install(monkeypatch, at_start=True)
    summary, code, path = sweep(tmp_path, MINIMIZE, ProcessExecutor(2))
    assert code == EXIT_INTERRUPTED and summary["status"] == "interrupted" and table(path) == []
    monkeypatch.undo()
    summary, code, _ = sweep(tmp_path, MINIMIZE, resume=str(path))
    assert code == EXIT_OK and summary["status"] == "completed" and summary["resumed"] == 0
    assert_same_sweep(local_reference["minimize"], path)


def test_processes_interrupt_while_running_stops_early_and_resumes(tmp_path, monkeypatch, local_reference):
    interrupts = _Interrupts().install(monkeypatch, at_start=False)

    def progress(n, counts):  # Ctrl-C as soon as the first batch is in
        interrupts[-1].requested = True

    summary, code, path = sweep(tmp_path, MINIMIZE, ProcessExecutor(1), progress=progress)
    assert code == EXIT_INTERRUPTED and summary["status"] == "interrupted" and summary["batches"] == 4
    rows = table(path)
    done = [r for r in rows if r["status"] in DONE]
    assert 3 <= len(done) < 12 and len(rows) <= 6  # the first batch, maybe the one running; never the rest
    monkeypatch.undo()
    summary, code, _ = sweep(tmp_path, MINIMIZE, ProcessExecutor(2), resume=str(path))
    assert code == EXIT_OK and summary["status"] == "completed" and summary["resumed"] == len(done)
    assert_same_sweep(local_reference["minimize"], path)


def test_ctrl_c_in_a_terminal_stops_a_process_sweep(tmp_path):
    """SIGINT to the whole process group, as a terminal sends it: the workers ignore it, the main
    process stops the sweep (exit 130, status interrupted), with no traceback."""
    script = tmp_path / "long_sweep.py"
    script.write_text(textwrap.dedent(f"""
        import sys
        from pathlib import Path
        from gdrun.executors import ProcessExecutor
        from gdrun.sweeps import SweepOptions, run_sweep, validate_sweep

        if __name__ == "__main__":
            runs = Path(sys.argv[1])
            warm = validate_sweep({{"params": {{"lr": [0.1]}}}})
            warm_options = SweepOptions(runs_dir=runs / "warm", executor=ProcessExecutor(1))
            run_sweep({{"function": "x2", "epochs": 3}}, warm, warm_options)  # starts the fork server
            spec = validate_sweep({{"params": {{"optimizer": ["sgd", "adam"], "lr": [1e-4, 1e-3]}}}})
            print("ready", flush=True)
            summary, code = run_sweep({{"function": "rosenbrock", "epochs": 10**8}}, spec,
                                      SweepOptions(runs_dir=runs / "long", executor=ProcessExecutor(2)))
            sys.exit(code)
    """))
    process = subprocess.Popen([sys.executable, str(script), str(tmp_path / "runs")], cwd=REPO, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)  # fmt: skip
    try:
        assert process.stdout.readline().strip() == "ready"
        time.sleep(2.0)  # the pool's workers are up (the fork server started in the warm-up)
        os.killpg(process.pid, signal.SIGINT)
        _, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == EXIT_INTERRUPTED, err
    assert "Traceback" not in err
    (path,) = (tmp_path / "runs" / "long").iterdir()
    summary = json.loads((path / SUMMARY_FILE).read_text())
    assert summary["status"] == "interrupted" and summary["counts"]["failed"] == 0
    assert {r["status"] for r in read_results(path)} <= {"interrupted"}


# ---------------------------------------------------------------------------- dask


def test_dask_on_an_existing_cluster_gives_the_local_results(tmp_path, local_reference, dask_cluster):
    address = dask_cluster.scheduler_address
    assert address.startswith("tcp://127.0.0.1:")
    for label, case in (("minimize", MINIMIZE), ("fit", FIT)):
        executor = get_executor("dask", scheduler=address)
        assert executor.batch_limit(12) == 6  # two single-threaded workers
        summary, code, path = sweep(tmp_path / label, case, executor)
        assert code == EXIT_OK and summary["status"] == "completed" and summary["executor"] == "dask"
        assert_same_sweep(local_reference[label], path)
        assert executor.client is None  # closed; the cluster is not ours to close
    assert len(dask_cluster.scheduler_info["workers"]) == 2


def test_dask_a_batch_that_raises_fails_only_its_configs(tmp_path, local_reference, dask_cluster):
    assert_one_batch_failed(tmp_path, DaskExecutor(dask_cluster.scheduler_address), local_reference["minimize"])


def test_dask_interrupt_stops_running_batches(dask_cluster):
    executor = DaskExecutor(dask_cluster.scheduler_address)
    assert list(executor.run(_jobs(MINIMIZE), Flag(requested=True))) == []
    long = ({"function": "rosenbrock", "optimizer": "adam", "epochs": 10**8}, {"params": {"lr": [1e-4, 1e-3]}})
    flag = Flag()
    threading.Timer(5.0, setattr, (flag, "requested", True)).start()  # both batches running by then, even on a loaded box
    started = time.perf_counter()
    results = list(executor.run(_jobs(long, workers=2), flag))
    executor.close()
    assert time.perf_counter() - started < 20
    assert [s for r in results for s in r.status] == ["interrupted", "interrupted"]


def test_dask_without_an_address_starts_and_closes_a_local_cluster(tmp_path, local_reference):
    pytest.importorskip("distributed")
    executor = get_executor("dask", workers=1)
    cluster = executor.cluster
    assert cluster is not None and cluster.scheduler_address.startswith("tcp://127.0.0.1:")
    summary, code, path = sweep(tmp_path, FIT, executor)
    assert code == EXIT_OK and summary["executor"] == "dask"
    assert_same_sweep(local_reference["fit"], path)
    assert executor.cluster is None and cluster.status.name == "closed"


# ---------------------------------------------------------------------------- choosing one


def _error(call) -> str:
    with pytest.raises(GdrunError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message
    return message


def test_registry_and_its_errors():
    assert isinstance(get_executor("local"), LocalExecutor)
    assert get_executor("processes", workers=3).workers == 3
    assert get_executor("processes").workers == (os.cpu_count() or 1)
    assert "did you mean 'processes'" in _error(lambda: get_executor("proceses"))
    assert "choices: dask, local, processes" in _error(lambda: get_executor("ray"))
    assert "--workers must be" in _error(lambda: get_executor("processes", workers=0))
    assert "--workers is for" in _error(lambda: get_executor("local", workers=2))
    assert "needs --executor dask" in _error(lambda: get_executor("processes", scheduler="tcp://127.0.0.1:8786"))
    assert "LocalCluster" in _error(lambda: get_executor("dask", workers=2, scheduler="tcp://127.0.0.1:8786"))


def test_scheduler_addresses():
    assert check_address("tcp://10.0.0.5:8786") == "tcp://10.0.0.5:8786"
    assert check_address("node12:8786") == "tcp://node12:8786"
    for bad in ("8786", "tcp://host", "http://host:8786", "tcp://host:99999", "tcp://a b:1"):
        assert "like tcp://HOST:PORT" in _error(lambda: check_address(bad))


def test_dask_unreachable_scheduler_is_one_line_soon():
    pytest.importorskip("distributed")
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = time.perf_counter()
    message = _error(lambda: DaskExecutor(f"tcp://127.0.0.1:{port}", timeout=1))
    assert time.perf_counter() - started < 10
    assert message.startswith(f"cannot reach a dask scheduler at tcp://127.0.0.1:{port} within 1 s")
    with socket.socket() as silent:  # accepts connections, never answers (a Client would wait forever)
        silent.bind(("127.0.0.1", 0))
        silent.listen(5)
        address = "tcp://127.0.0.1:%d" % silent.getsockname()[1]
        started = time.perf_counter()
        message = _error(lambda: DaskExecutor(address, timeout=1))
        assert time.perf_counter() - started < 10
        assert message.startswith(f"cannot reach a dask scheduler at {address} within 1 s")
    assert "like tcp://HOST:PORT" in _error(lambda: get_executor("dask", scheduler="not an address"))


def test_dask_missing_is_one_line_naming_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    assert "pip install gdrun[dask]" in _error(lambda: get_executor("dask"))
