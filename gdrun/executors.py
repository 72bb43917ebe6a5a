"""Where a sweep's batches run: in this process, in a pool of processes, or on a dask cluster.

An executor takes the :class:`~gdrun.sweeps.BatchJob` list of a sweep and yields one
:class:`~gdrun.sweeps.BatchResult` per batch, in the order they finish; only the main process
writes the sweep directory. Every executor has the same interface as
:class:`~gdrun.sweeps.LocalExecutor`:

    name                       "local", "processes" or "dask"
    batch_limit(pending)       the most configs one batch may hold
    run(jobs, interrupt)       an iterator of results; stops early once ``interrupt.requested``
    close()                    gives back what the executor holds (processes, a cluster)

and the same behaviour on trouble: a batch that raises is reported as a failed batch (each of its
configs ``failed`` with the error) and the others go on. On Ctrl-C (``interrupt.requested``, set in
the main process) nothing more is submitted, batches that have not started are cancelled, batches
already running are told to stop at their next step (their unfinished configs come back
``interrupted``, as with the local executor), and every result already in is still yielded, so the
sweep can be resumed. Worker processes ignore SIGINT: a terminal sends it to the whole process
group, and stopping is the main process's to do.

``processes`` and ``dask`` split even one large group of configs over their workers (a batch
holds at most ``ceil(pending / workers)`` configs); configs of different structure run in
parallel as separate batches.

A script that runs a sweep with ``processes`` (or with a LocalCluster) must guard its entry point
with ``if __name__ == "__main__":``, as for any multiprocessing: the workers import the main module.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import multiprocessing.connection
import os
import re
import signal
import time
import uuid
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Iterator

from .errors import GdrunError, known
from .sweeps import MAX_BATCH, BatchJob, BatchResult, LocalExecutor, failed_result, run_batch

EXECUTORS = ("local", "processes", "dask")
#: how long connecting to a dask scheduler may take before it is an error
CONNECT_TIMEOUT_S = 10.0
#: after Ctrl-C, how long running batches get to stop at their next step and send their results back
STOP_GRACE_S = 10.0
#: how often the main process looks at the Ctrl-C flag while batches run elsewhere
POLL_S = 0.05
#: the modules a pool worker needs to run a batch, imported once by the fork server
WORKER_MODULES = ("gdrun.sweeps", "gdrun.runner", "gdrun.engine", "gdrun.optim", "gdrun.config", "gdrun.functions",
                  "gdrun.fitting", "gdrun.backends")  # fmt: skip


def get_executor(name: str, workers: int | None = None, scheduler: str | None = None):
    """The executor for ``--executor NAME [--workers N] [--scheduler ADDRESS]``."""
    known("executor", name, EXECUTORS)
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise GdrunError(f"--workers must be a whole number of at least 1, got {workers!r}")
    if scheduler is not None and name != "dask":
        raise GdrunError(f"--scheduler names a dask scheduler; it needs --executor dask (not {name})")
    if name == "local":
        if workers is not None:
            raise GdrunError("--workers is for --executor processes or dask; the local executor runs batches one "
                             "after another in this process")  # fmt: skip
        return LocalExecutor()
    if name == "processes":
        return ProcessExecutor(workers)
    if scheduler is not None and workers is not None:
        raise GdrunError("--workers sets the size of the LocalCluster that --executor dask starts without "
                         "--scheduler; an existing cluster at --scheduler runs batches on its own workers")  # fmt: skip
    return DaskExecutor(scheduler, workers)


def _split(pending: int, slots: int) -> int:
    """Configs per batch so that ``pending`` configs keep ``slots`` workers busy."""
    return max(1, min(MAX_BATCH, math.ceil(pending / max(1, slots))))


def _outcome(future: Any, job: BatchJob) -> BatchResult:
    """A finished future's result, or the failed result of its batch."""
    try:
        return future.result()
    except Exception as exc:  # the batch raised, its worker died, or it was cancelled
        return failed_result(job, exc)


# ---------------------------------------------------------------------------- processes


class _StopFlag:
    """The main process's Ctrl-C as a pool worker sees it: ``requested`` reads a shared event (at
    most every 20 ms, so the engine can ask at every step)."""

    def __init__(self, event: Any):
        self._event = event
        self._set = False
        self._next = 0.0

    @property
    def requested(self) -> bool:
        if not self._set:
            now = time.monotonic()
            if now >= self._next:
                self._next = now + 0.02
                self._set = self._event.is_set()
        return self._set


_worker_stop: Any = None  # in a pool worker: the pool's stop event


def _init_worker(stop: Any) -> None:
    """Pool worker start: Ctrl-C is the main process's to handle (a terminal sends it to the whole
    process group); the worker stops when the main process sets ``stop``."""
    global _worker_stop
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _worker_stop = stop


def _run_in_worker(job: BatchJob) -> BatchResult:
    return run_batch(job, _StopFlag(_worker_stop) if _worker_stop is not None else None)


def _pool_context(jobs: list[BatchJob]):
    """A fork server (clean, single-threaded, with gdrun already imported) where there is one;
    spawn elsewhere. Not fork: the main process may hold threads (torch, a progress display)."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    torch = any(_backend(job.config) == "torch" for job in jobs)
    ctx.set_forkserver_preload([*WORKER_MODULES, *(("torch",) if torch else ())])  # only if not yet started
    return ctx


def _submit(pool: ProcessPoolExecutor, job: BatchJob) -> Future:
    """Submit ``job``; the fork server and workers this may start are born with Ctrl-C blocked
    (they inherit the signal mask), so a Ctrl-C while they import gdrun cannot print a traceback
    there. The main process gets a Ctrl-C of that moment as soon as the mask is lifted."""
    if not hasattr(signal, "pthread_sigmask"):  # pragma: no cover (not POSIX)
        return pool.submit(_run_in_worker, job)
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        return pool.submit(_run_in_worker, job)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _backend(config: Any) -> Any:
    return config.get("backend") if isinstance(config, dict) else getattr(config, "backend", None)


class ProcessExecutor:
    """Batches in a pool of worker processes on this machine (``--executor processes --workers N``).

    For sweeps whose configs cannot share one batch (different functions, optimizers, backends), or
    one large batch worth splitting across cores. The pool lives for one ``run``.
    """

    name = "processes"

    def __init__(self, workers: int | None = None):
        if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
            raise GdrunError(f"--workers must be a whole number of at least 1, got {workers!r}")
        self.workers = workers or os.cpu_count() or 1
        self._pool: ProcessPoolExecutor | None = None
        self._stop: Any = None

    def batch_limit(self, pending: int) -> int:
        return _split(pending, self.workers)

    def _start(self, ctx, size: int) -> ProcessPoolExecutor:
        if self._stop is None:
            self._stop = ctx.Event()
        self._pool = ProcessPoolExecutor(size, mp_context=ctx, initializer=_init_worker, initargs=(self._stop,))
        return self._pool

    def run(self, jobs: list[BatchJob], interrupt) -> Iterator[BatchResult]:
        if not jobs or interrupt.requested:
            return
        ctx = _pool_context(jobs)
        size = min(self.workers, len(jobs))
        pool = self._start(ctx, size)
        queue = deque(jobs)
        running: dict[Future, BatchJob] = {}
        window = 2 * size  # submitted but unfinished: a worker never waits, Ctrl-C has little to cancel
        try:
            while (queue or running) and not interrupt.requested:
                while queue and len(running) < window:
                    job = queue.popleft()
                    try:
                        running[_submit(pool, job)] = job
                    except BrokenProcessPool:  # a worker died (killed, out of memory): a fresh pool for the rest
                        self._shutdown(grace=0.0)
                        pool = self._start(ctx, size)
                        running[_submit(pool, job)] = job
                done, _ = wait(running, timeout=POLL_S, return_when=FIRST_COMPLETED)
                for future in done:
                    yield _outcome(future, running.pop(future))
            if running:  # Ctrl-C: cancel what has not started; running batches stop at their next step
                self._stop.set()
                for future in list(running):
                    if future.cancel():
                        del running[future]
                deadline = time.monotonic() + STOP_GRACE_S
                while running and time.monotonic() < deadline:
                    done, _ = wait(running, timeout=POLL_S, return_when=FIRST_COMPLETED)
                    for future in done:  # a batch that raised now is not counted: it runs again on resume
                        running.pop(future)
                        if not future.cancelled() and future.exception() is None:
                            yield future.result()
        finally:
            self._shutdown(grace=2.0)

    def _shutdown(self, grace: float) -> None:
        """Stop the pool: idle workers exit at once; busy ones are told to stop and get ``grace``
        seconds, then are terminated."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        processes = list((getattr(pool, "_processes", None) or {}).values())
        if self._stop is not None:
            self._stop.set()
        pool.shutdown(wait=False, cancel_futures=True)
        waiting = {p.sentinel: p for p in processes}
        deadline = time.monotonic() + grace
        while waiting and time.monotonic() < deadline:
            for sentinel in multiprocessing.connection.wait(list(waiting), timeout=deadline - time.monotonic()):
                waiting.pop(sentinel)
        for p in waiting.values():
            p.terminate()
        for p in processes:
            p.join(timeout=2.0)
        self._stop = None

    def close(self) -> None:
        self._shutdown(grace=2.0)


# ---------------------------------------------------------------------------- dask


def _import_distributed():
    try:
        import distributed
    except ImportError:
        raise GdrunError("--executor dask needs dask.distributed, an optional extra: pip install gdrun[dask]") from None
    return distributed


_ADDRESS = re.compile(r"^(?:(tcp|tls|ws|wss|ucx)://)?(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})$")


def check_address(address: str) -> str:
    """``tcp://HOST:PORT`` (``HOST:PORT`` means tcp), or a one-line error."""
    match = _ADDRESS.match(str(address).strip())
    if not match or not 0 < int(match.group(3)) < 65536:
        raise GdrunError(f"--scheduler must be a dask scheduler address like tcp://HOST:PORT, got {address!r}")
    scheme = match.group(1) or "tcp"
    return f"{scheme}://{match.group(2)}:{int(match.group(3))}"


def _probe_scheduler(address: str, timeout: float) -> None:
    """Ask ``address`` who it is, all within ``timeout`` seconds: a refused or unknown address, a
    server that never answers (a Client would wait on it forever) or one that is not a dask
    scheduler is a one-line error. Runs on its own event loop in a thread (the caller may have one)."""
    import asyncio
    import threading

    from distributed.comm import connect

    async def ask() -> Any:
        comm = await connect(address, timeout=timeout)
        try:
            await comm.write({"op": "identity", "reply": True})
            return await comm.read()
        finally:
            comm.abort()

    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["reply"] = asyncio.run(asyncio.wait_for(ask(), timeout))
        except BaseException as exc:  # noqa: BLE001 (reported below, in the caller's thread)
            box["error"] = exc

    thread = threading.Thread(target=target, name="gdrun-dask-probe", daemon=True)
    thread.start()
    thread.join(timeout + 2.0)
    reply, error = box.get("reply"), box.get("error")
    if reply is None:
        silent = error is None or isinstance(error, (TimeoutError, asyncio.TimeoutError))
        why = "no answer" if silent else _one_line(error)
        raise GdrunError(f"cannot reach a dask scheduler at {address} within {timeout:g} s ({why})")
    kind = reply.get("type") if isinstance(reply, dict) else None
    if kind != "Scheduler":
        raise GdrunError(f"{address} answered, but it is {'a ' + kind if kind else 'not a dask server'}, not a dask "
                         "scheduler (give the scheduler's address, e.g. tcp://HOST:8786)")  # fmt: skip


class _DaskStopFlag:
    """The main process's Ctrl-C as a batch on a dask worker sees it: a dask Event on the scheduler,
    asked at most every 0.25 s."""

    def __init__(self, name: str):
        self.name = name
        self._event: Any = None
        self._set = False
        self._next = 0.0

    @property
    def requested(self) -> bool:
        if not self._set:
            now = time.monotonic()
            if now >= self._next:
                self._next = now + 0.25
                try:
                    if self._event is None:
                        from distributed import Event

                        self._event = Event(self.name)
                    self._set = self._event.is_set()
                except Exception:  # the scheduler is out of reach: the batch goes on
                    pass
        return self._set


def _run_on_dask(job: BatchJob, stop: str) -> BatchResult:
    return run_batch(job, _DaskStopFlag(stop))


def dask_setup(worker: Any) -> None:
    """Preloaded by the dask workers of a LocalCluster gdrun starts: Ctrl-C in the terminal reaches
    every process of the group, and stopping is the main process's to do."""
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread (a worker in a thread): nothing to protect
        pass


class DaskExecutor:
    """Batches on a dask.distributed cluster (``--executor dask``).

    With ``scheduler`` (``tcp://HOST:PORT``) batches go to that existing cluster, whose workers must
    have gdrun installed (and see the same paths, for fits that read CSV files). Without one, a
    LocalCluster of ``workers`` single-threaded worker processes starts on 127.0.0.1 (no dashboard)
    and closes with the executor.
    """

    name = "dask"

    def __init__(self, scheduler: str | None = None, workers: int | None = None, timeout: float = CONNECT_TIMEOUT_S):
        distributed = _import_distributed()
        if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
            raise GdrunError(f"--workers must be a whole number of at least 1, got {workers!r}")
        self.scheduler = scheduler
        self.cluster: Any = None
        self.client: Any = None
        self._futures: dict[Any, BatchJob] = {}
        if scheduler is not None:
            address = check_address(scheduler)
            _probe_scheduler(address, timeout)
            try:
                self.client = distributed.Client(address, timeout=timeout, set_as_default=False)
            except Exception as exc:
                raise GdrunError(f"cannot connect to the dask scheduler at {address}: {_one_line(exc)}") from None
            self._check_workers(address)
        else:
            try:
                # no dashboard, and the scheduler's small HTTP server (health checks) on a free loopback
                # port rather than 8787; the workers preload this module (dask_setup: ignore Ctrl-C)
                self.cluster = distributed.LocalCluster(
                    n_workers=workers or os.cpu_count() or 1, threads_per_worker=1, processes=True, host="127.0.0.1",
                    dashboard_address=None, scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                    silence_logs=logging.ERROR, preload=["gdrun.executors"],
                )  # fmt: skip
                self.client = distributed.Client(self.cluster, set_as_default=False)
            except Exception as exc:
                self.close()
                raise GdrunError(f"could not start a dask LocalCluster: {_one_line(exc)}") from None
        self._slots = max(1, sum(self.client.nthreads().values()))

    def _check_workers(self, address: str) -> None:
        from importlib.metadata import version

        try:
            self.client.run(version, "gdrun")
        except Exception as exc:
            self.close()
            raise GdrunError(f"the dask workers of {address} cannot run gdrun batches: install gdrun on them "
                             f"({_one_line(exc)})") from None  # fmt: skip

    def batch_limit(self, pending: int) -> int:
        return _split(pending, self._slots)

    def run(self, jobs: list[BatchJob], interrupt) -> Iterator[BatchResult]:
        distributed = _import_distributed()
        if not jobs or interrupt.requested:
            return
        token = uuid.uuid4().hex[:8]
        stop = distributed.Event(f"gdrun-stop-{token}", client=self.client)
        futures = self._futures
        for job in jobs:
            key = f"gdrun-batch-{token}-{job.batch}"
            futures[self.client.submit(_run_on_dask, job, stop.name, key=key, pure=False)] = job
        completed = distributed.as_completed(list(futures), loop=self.client.loop)
        try:
            while not completed.is_empty() and not interrupt.requested:
                ready = completed.next_batch(block=False)
                if not ready:
                    time.sleep(POLL_S)
                    continue
                for future in ready:
                    yield _outcome(future, futures.pop(future))
            if interrupt.requested and futures:
                # Ctrl-C: batches not yet on a worker are cancelled; running ones stop at their next
                # step and send back what they did (their configs 'interrupted')
                stop.set()
                busy = {key for keys in self.client.processing().values() for key in keys}
                for future in list(futures):
                    if future.key not in busy and future.status != "finished":
                        future.cancel()
                        del futures[future]
                deadline = time.monotonic() + STOP_GRACE_S
                while futures and time.monotonic() < deadline:
                    for future in [f for f in futures if f.done()]:
                        futures.pop(future)
                        if future.status == "finished":  # one that raised now runs again on resume
                            yield future.result()
                    time.sleep(POLL_S)
        finally:
            self._cancel()

    def _cancel(self) -> None:
        if self._futures and self.client is not None:
            try:
                self.client.cancel(list(self._futures), force=True)
            except Exception:
                pass
        self._futures.clear()

    def close(self) -> None:
        self._cancel()
        client, self.client = self.client, None
        cluster, self.cluster = self.cluster, None
        for thing in (client, cluster):
            if thing is not None:
                try:
                    thing.close(timeout=10)
                except Exception:
                    pass


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text and text[0] else type(exc).__name__
