"""The loop over a batch of runs: step, record, stop.

State has a leading batch axis: ``X`` is ``(B, n)``, one row per run (one run is a batch of one).
Row ``k`` of a run is the point after ``k`` updates with its value, gradient norm and learning
rate; row 0 is the init point. Each step copies its point, value and gradient into block buffers
allocated once (reused block after block); every so often (blocks grow until one takes ~50 ms, up
to MAX_BLOCK_ELEMENTS numbers per buffer) the block is checked in one vectorised pass for the first
row at which each run stops, and handed to the observers (terminal, run directory, sweep records).
A block's arrays are views of those buffers: an observer copies what it keeps past ``on_block``.
A run that stops keeps being carried along by the array maths until the whole batch is done, but
nothing after its stop row is reported: its result is that row.

A run diverges when its point or value is no longer finite in the run's dtype (a float32 overflow
is inf), when its gradient is infinite at a finite point, or when they pass ``diverge_above``
(judged in that order); a nan gradient at a finite point with a finite value means the function
is not differentiable there: the run stops as converged and says so.
"""

from __future__ import annotations

import signal
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import numpy as np

STATUSES = ("converged", "max_epochs", "diverged", "interrupted", "failed")
FIRST_BLOCK = 8
MAX_BLOCK = 4096
MAX_BLOCK_ELEMENTS = 1 << 20  # rows * B * n held per block (8 MiB of float64 per buffer)
BLOCK_SECONDS = 0.05
SMALL_BATCH = 256  # runs x variables up to which a step's arrays are kept in lists (see run)


@dataclass(frozen=True)
class StopRule:
    """When a run stops before its last epoch."""

    grad_norm_below: float | None = None  # converged when the gradient norm falls below this
    value_below: float | None = None  # converged when the value falls below this
    diverge_above: float = 1e100  # diverged when |value| or any |coordinate| exceeds this


@dataclass
class Block:
    """Rows computed since the last check, as numpy arrays (T rows, B runs, n variables)."""

    steps: np.ndarray  # (T,) the row's epoch (for minimize: its step)
    updates: np.ndarray  # (T,) optimizer updates made before the row (differs from steps with mini-batches)
    x: np.ndarray  # (T, B, n)
    value: np.ndarray  # (T, B)
    grad_norm: np.ndarray  # (T, B)
    lr: np.ndarray  # (T, B)
    last: np.ndarray  # (B,) index of each run's last row to report in this block; -1 for none


class Observer(Protocol):
    def on_block(self, block: Block) -> None: ...


@dataclass
class Outcome:
    """Where each run of the batch ended."""

    status: list[str]
    reason: list[str]
    iterations: np.ndarray  # (B,) epochs (for minimize: steps) done before the final row
    updates: np.ndarray  # (B,) optimizer updates done before the final row
    x: np.ndarray  # (B, n)
    value: np.ndarray  # (B,)
    grad_norm: np.ndarray  # (B,)
    wall_time_s: float
    seen: np.ndarray  # (B,) whether any row was computed (False: failed before the first one)
    error: BaseException | None = field(default=None, repr=False)


class Interrupt:
    """Ctrl-C (SIGINT) or SIGTERM as a flag the loop reads between steps, so a run stops cleanly at a
    step boundary and says ``interrupted``: a CI job's timeout sends SIGTERM, and its run directory
    should say so rather than be cut off. A second signal raises KeyboardInterrupt at once.

    Interrupts nest: one entered while another is active shares the outer one's flag, so a
    comparison, a check or a sweep stops as a whole at the first Ctrl-C, not one run at a time.
    """

    _outermost: "Interrupt | None" = None  # the one that holds the signal handlers
    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self._requested = False
        self._previous: dict[int, Any] = {}
        self._outer: Interrupt | None = None

    @property
    def requested(self) -> bool:
        return self._outer.requested if self._outer is not None else self._requested

    @requested.setter
    def requested(self, value: bool) -> None:
        if self._outer is not None:
            self._outer.requested = value
        else:
            self._requested = value

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> "Interrupt":
        if Interrupt._outermost is not None:
            self._outer = Interrupt._outermost
        elif threading.current_thread() is threading.main_thread():
            self._previous = {signum: signal.signal(signum, self._handle) for signum in self.SIGNALS}
            Interrupt._outermost = self
        return self

    def __exit__(self, *exc) -> None:
        if Interrupt._outermost is self:  # an inner one keeps reading the outer flag after it exits
            for signum, previous in self._previous.items():
                signal.signal(signum, previous if previous is not None else signal.SIG_DFL)
            Interrupt._outermost, self._previous = None, {}


class Problem(Protocol):
    """What the engine minimises. ``value_and_grad`` evaluates the full objective (one row per
    epoch is judged on it); ``batches(epoch)`` lists the epoch's mini-batches, or returns None for
    one full-batch step, which reuses the row's gradient."""

    def value_and_grad(self, X: Any) -> tuple[Any, Any]: ...

    def batches(self, epoch: int) -> list | None: ...

    def batch_value_and_grad(self, X: Any, batch: Any) -> tuple[Any, Any]: ...


@dataclass(frozen=True)
class FullBatch:
    """A problem whose every epoch is one step on the whole objective (minimising a function)."""

    value_and_grad: Callable[[Any], tuple[Any, Any]]

    def batches(self, epoch: int) -> None:
        return None

    def batch_value_and_grad(self, X: Any, batch: Any) -> tuple[Any, Any]:  # pragma: no cover - never called
        return self.value_and_grad(X)


_allocator_tuned = False


def keep_freed_memory() -> None:
    """Ask glibc's malloc to keep freed memory for reuse (once per process, Linux only).

    Every array operation of a step allocates its result; for arrays of a few hundred KB glibc
    by default hands freed memory back to the OS and faults it in again at the next step, which
    costs as much as the arithmetic. Raising the mmap and trim thresholds keeps it in the heap.
    """
    global _allocator_tuned
    if _allocator_tuned:
        return
    _allocator_tuned = True
    try:
        import ctypes
        import sys

        if not sys.platform.startswith("linux"):
            return
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-1, 1 << 30)  # M_TRIM_THRESHOLD: keep up to 1 GiB of freed memory
        libc.mallopt(-3, 32 << 20)  # M_MMAP_THRESHOLD: arrays up to 32 MiB come from the heap
    except (OSError, AttributeError):  # not glibc: nothing to tune
        pass


def run(
    problem: Problem | Callable[[Any], tuple[Any, Any]],
    x0: Any,
    optimizer,
    lr: np.ndarray,
    epochs: int,
    backend,
    stop: StopRule = StopRule(),
    observers: tuple[Observer, ...] = (),
    interrupt: Interrupt | None = None,
    names: tuple[str, ...] | None = None,
    schedule=None,
    clip: Callable[[Any], Any] | None = None,
    labels: tuple[str, str] = ("step", "value"),
) -> Outcome:
    """Run ``epochs`` epochs of ``optimizer`` from ``x0`` (B, n, on the backend).

    ``lr`` is the host array (B, 1) of starting learning rates; ``schedule`` (see schedules.py)
    updates it after every epoch; ``clip`` transforms each gradient before its update. ``labels``
    name a row and its value in the reasons given for a stop (a fit says "epoch" and "loss").
    """
    keep_freed_memory()
    started = time.perf_counter()
    if callable(problem):
        problem = FullBatch(problem)
    interrupt = interrupt or Interrupt()
    B, n = x0.shape
    names = names or tuple(f"x{i + 1}" for i in range(n))
    update, full, batches, batch_value_and_grad = optimizer.update, problem.value_and_grad, problem.batches, problem.batch_value_and_grad
    lr_host = np.asarray(lr, dtype=np.float64).reshape(B, 1)
    schedule_state = schedule.init(lr_host) if schedule is not None else None
    if schedule_state is not None:
        lr_host = schedule_state.lr
    lr_now = backend.asarray(lr_host)
    lr_used = lr_host[:, 0]  # the lr of the epoch that produced the current point (row 0: the first)

    tracker = _Tracker(B, n, epochs, stop, names, labels)
    X, state = x0, optimizer.init(x0)
    epoch, updates, size = 0, 0, FIRST_BLOCK
    capacity = max(1, min(MAX_BLOCK, MAX_BLOCK_ELEMENTS // (B * n), epochs + 1))
    # each row's point, value and gradient, copied in as it is computed; reused block after block
    buffers = xs, fs, gs = backend.empty((capacity, B, n)), backend.empty((capacity, B)), backend.empty((capacity, B, n))
    ups = np.zeros(capacity, dtype=np.int64)
    lr_constant = schedule is None
    lrs = None if lr_constant else np.empty((capacity, B))
    whole = isinstance(problem, FullBatch)  # every epoch is one step on the row's own gradient
    # one run (or a few) on numpy with nothing but the update per row: each step's arrays go into
    # lists and the block's buffers are filled at once (a numpy item assignment per row costs more
    # than the arithmetic of such tiny arrays); bigger batches are copied into the buffers as they come
    plain = whole and lr_constant and clip is None and backend.name == "numpy" and B * n <= SMALL_BATCH
    error: BaseException | None = None
    with backend.compute():
        while epoch <= epochs and tracker.active.any():
            rows = min(size, capacity, epochs + 1 - epoch)
            done = 0
            block_start = time.perf_counter()
            try:
                if plain:  # row k is the point after k updates
                    kept: tuple[list, list, list] = ([], [], [])
                    keep_x, keep_f, keep_g = kept
                    for t in range(rows):
                        f, G = full(X)
                        keep_x.append(X)
                        keep_f.append(f)
                        keep_g.append(G)
                        if epoch + t < epochs:
                            X, state = update(G, state, X, lr_now)
                        if interrupt.requested:
                            break
                else:
                    for t in range(rows):
                        f, G = full(X)
                        xs[t] = X
                        fs[t] = f
                        gs[t] = G
                        ups[t] = updates
                        if not lr_constant:
                            lrs[t] = lr_used
                        done = t + 1
                        if epoch + t < epochs:
                            steps = None if whole else batches(epoch + t)
                            if steps is None:
                                X, state = update(clip(G) if clip else G, state, X, lr_now)
                                updates += 1
                            else:
                                for batch in steps:
                                    _, g = batch_value_and_grad(X, batch)
                                    X, state = update(clip(g) if clip else g, state, X, lr_now)
                                updates += len(steps)
                            if schedule is not None:
                                lr_used = lr_host[:, 0]
                                lr_host, schedule_state = schedule.step(schedule_state)
                                lr_now = backend.asarray(lr_host)
                        if interrupt.requested:
                            break
            except Exception as exc:  # reported as the 'failed' status, with the rows before it kept
                error = exc
            if plain:
                done = min(map(len, kept))
                _into(kept, buffers, done)
                ups[:done] = np.arange(epoch, epoch + done)
            lr_rows = np.broadcast_to(lr_used, (done, B)) if lr_constant else lrs[:done]
            block = tracker.check(epoch, ups[:done].copy(), *_block_arrays(backend, buffers, done, B, n), lr_rows)
            for observer in observers:
                observer.on_block(block)
            epoch += done
            if error is not None or interrupt.requested:
                break
            if time.perf_counter() - block_start < BLOCK_SECONDS:
                size = min(2 * size, MAX_BLOCK)
    return tracker.outcome(error, interrupt.requested, time.perf_counter() - started)


def _into(kept: tuple[list, list, list], buffers: tuple, rows: int) -> None:
    """Copy the first ``rows`` points, values and gradients of a block (numpy arrays) into its buffers."""
    for arrays, buffer in zip(kept, buffers):
        if rows:
            np.concatenate(arrays[:rows], out=buffer[:rows].reshape(-1, *buffer.shape[2:]))


def _block_arrays(backend, buffers, rows: int, B: int, n: int):
    """The block's first ``rows`` rows as numpy arrays: x (T,B,n), value (T,B), grad_norm (T,B).
    They are views of buffers the next block overwrites: an observer copies what it keeps."""
    if rows == 0:
        return np.empty((0, B, n)), np.empty((0, B)), np.empty((0, B))
    xs, fs, gs = buffers
    x = backend.to_numpy(xs[:rows])
    value = backend.to_numpy(fs[:rows])
    G = backend.to_numpy(gs[:rows]).astype(np.float64, copy=False)  # a float32 norm overflows early
    with np.errstate(over="ignore", invalid="ignore"):  # a diverging run's gradient overflows: its norm is inf
        if n == 1:
            grad_norm = np.abs(G[..., 0])
        elif n <= 4:  # a few columns: whole-column arithmetic beats a reduction over a short last axis
            grad_norm = G[..., 0] * G[..., 0]
            for i in range(1, n):
                grad_norm += G[..., i] * G[..., i]
            np.sqrt(grad_norm, out=grad_norm)
        else:
            grad_norm = np.sqrt(np.einsum("tbi,tbi->tb", G, G))
    return x, value, grad_norm


def point_text(names: tuple[str, ...], x, limit: int = 4) -> str:
    """``x = -1, y = 2`` for an error message; the first ``limit`` coordinates of a long point."""
    parts = [f"{name} = {float(v):g}" for name, v in zip(names[:limit], x[:limit])]
    return ", ".join(parts) + (f", ... ({len(names)} variables)" if len(names) > limit else "")


def start_fault(names: tuple[str, ...], x, value: float, dtype: str, of: str, value_label: str = "value") -> str | None:
    """Why a run cannot start at ``x`` where ``of`` has ``value``; None when the value is finite.
    The same words serve a single run (an input error, before anything is written) and a run of a
    sweep (diverged at its first row)."""
    if np.isnan(value):
        return f"the start point {point_text(names, x)} is outside the domain of {of} (its {value_label} there is nan)"
    if np.isinf(value):
        return f"the start point {point_text(names, x)} is outside the {dtype} range of {of} (its {value_label} there is {value})"
    return None


def _largest_magnitude(x: np.ndarray) -> np.ndarray:
    """max |x| over each row's coordinates (T, B), nan if any is nan."""
    if x.shape[2] > 4:
        return np.abs(x).max(axis=2)
    largest = np.abs(x[..., 0])
    for i in range(1, x.shape[2]):
        np.maximum(largest, np.abs(x[..., i]), out=largest)  # maximum, not fmax: a nan stays nan
    return largest


class _Tracker:
    """Finds the row at which each run stops and keeps each run's final row."""

    def __init__(self, B: int, n: int, epochs: int, stop: StopRule, names: tuple[str, ...], labels: tuple[str, str]):
        self.row_label, self.value_label = labels
        self.active = np.ones(B, dtype=bool)
        self.epochs = epochs
        self.stop = stop
        self.names = names
        self.status = [""] * B
        self.reason = [""] * B
        self.iterations = np.zeros(B, dtype=np.int64)
        self.updates = np.zeros(B, dtype=np.int64)
        self.x = np.full((B, n), np.nan)
        self.value = np.full(B, np.nan)
        self.grad_norm = np.full(B, np.nan)
        self.seen = np.zeros(B, dtype=bool)
        self.dtype = "float64"  # the run's, once a block is seen: named in the reasons for an overflow

    def check(self, start: int, updates, x, value, grad_norm, lr) -> Block:
        rows = len(value)
        steps = np.arange(start, start + rows)
        if rows == 0:
            return Block(steps, updates, x, value, grad_norm, lr, np.full(len(self.active), -1))
        stop = self.stop
        self.dtype = x.dtype.name
        with np.errstate(invalid="ignore", over="ignore"):
            # finite-ness first, in the run's dtype: a float32 value that overflowed is inf, and
            # inf passes any threshold that is itself rounded to float32 (1e100 is inf there)
            bound = np.float64(stop.diverge_above)  # compared in float64, whatever the run's dtype
            if self.active.all() and self._calm(x, value, grad_norm, bound):
                return self._advance(steps, updates, x, value, grad_norm, lr)
            largest = _largest_magnitude(x)  # nan where a coordinate is nan, inf where one is infinite
            finite = np.isfinite(largest) & np.isfinite(value)
            beyond = (largest > bound) | (np.abs(value) > bound)
            # an infinite gradient at a finite point: the next step would be infinite
            diverged = ~finite | beyond | (np.isinf(grad_norm) & finite)
            # a finite point and value with a nan gradient: the function is not differentiable
            # there (Ackley at its minimum, sqrt at 0); the run stops, and says so
            undefined = np.isnan(grad_norm) & ~diverged
            converged = undefined.copy()
            if stop.grad_norm_below is not None:
                converged |= grad_norm < stop.grad_norm_below
            if stop.value_below is not None:
                converged |= value < np.float64(stop.value_below)
        stopping = (diverged | converged) & self.active
        first = np.argmax(stopping, axis=0)
        stops = stopping.any(axis=0)
        last = np.where(stops, first, rows - 1)
        last[~self.active] = -1
        members = np.flatnonzero(self.active)  # whole-array bookkeeping: a sweep has thousands of runs
        rows_of = last[members]
        self.iterations[members] = steps[rows_of]
        self.updates[members] = updates[rows_of]
        self.x[members], self.value[members] = x[rows_of, members], value[rows_of, members]
        self.grad_norm[members] = grad_norm[rows_of, members]
        self.seen[members] = True
        for b in np.flatnonzero(stops):  # only the runs that stop here need words
            row = last[b]
            self.status[b] = "diverged" if diverged[row, b] else "converged"
            self.reason[b] = self._why(diverged[row, b], steps[row], x[row, b], value[row, b], grad_norm[row, b])
        self.active &= ~stops
        return Block(steps, updates, x, value, grad_norm, lr, last)

    def _calm(self, x: np.ndarray, value: np.ndarray, grad_norm: np.ndarray, bound: np.float64) -> bool:
        """Whether no run can stop in this block: every number finite and within bounds, no stop
        rule met (whole-array min and max, no temporaries; a nan anywhere fails every comparison)."""
        stop = self.stop
        if not (-bound <= x.min() and x.max() <= bound and -bound <= value.min() and value.max() <= bound
                and grad_norm.max() < np.inf):  # fmt: skip
            return False
        low = grad_norm.min()
        if not low >= 0 or (stop.grad_norm_below is not None and low < stop.grad_norm_below):
            return False
        return stop.value_below is None or bool(value.min() >= np.float64(stop.value_below))

    def _advance(self, steps, updates, x, value, grad_norm, lr) -> Block:
        """Every run goes on past this block: its last row is each run's latest."""
        self.iterations[:], self.updates[:] = steps[-1], updates[-1]
        self.x[:], self.value[:], self.grad_norm[:] = x[-1], value[-1], grad_norm[-1]
        self.seen[:] = True
        return Block(steps, updates, x, value, grad_norm, lr, np.full(len(self.active), len(steps) - 1))

    def _why(self, diverged: bool, step: int, x, value: float, grad_norm: float) -> str:
        stop, row, what = self.stop, self.row_label, self.value_label
        value = float(value)  # compared with the thresholds in float64, as in check
        if not diverged and not np.isfinite(grad_norm):
            return (f"the gradient is undefined at {row} {step}: the function is not differentiable at "
                    f"this point ({what} {value:.6g})")  # fmt: skip
        if not diverged:
            if stop.grad_norm_below is not None and grad_norm < stop.grad_norm_below:
                return f"gradient norm {grad_norm:.3g} < {stop.grad_norm_below:g} at {row} {step}"
            return f"{what} {value:.6g} < {stop.value_below:g} at {row} {step}"
        bad = [i for i, v in enumerate(x) if not np.isfinite(v)]
        if bad:
            name, v = self.names[bad[0]], x[bad[0]]
            return f"{name} became {v} at {row} {step}" + (f" (it overflowed {self.dtype})" if np.isinf(v) else "")
        if step == 0 and not np.isfinite(value):
            return start_fault(self.names, x, value, self.dtype, "the function" if what == "value" else "the model", what)
        if np.isnan(value):
            return f"the {what} became nan at {row} {step}"
        if np.isinf(value):
            return f"the {what} overflowed {self.dtype} at {row} {step} (it became {value})"
        if abs(value) > stop.diverge_above:
            return f"|{what}| = {abs(value):.3g} exceeded diverge_above = {stop.diverge_above:g} at {row} {step}"
        if np.isinf(grad_norm):
            return (f"the gradient is infinite in {self.dtype} at {row} {step}, at a finite point (it overflowed, or "
                    f"the function is not differentiable there)")  # fmt: skip
        i = int(np.argmax(np.abs(x)))
        return f"|{self.names[i]}| = {abs(x[i]):.3g} exceeded diverge_above = {stop.diverge_above:g} at {row} {step}"

    def outcome(self, error: BaseException | None, interrupted: bool, wall: float) -> Outcome:
        for b in np.flatnonzero(self.active):
            if error is not None:
                self.status[b] = "failed"
                self.reason[b] = f"{type(error).__name__}: {error}"
            elif interrupted and self.iterations[b] < self.epochs:
                self.status[b] = "interrupted"
                self.reason[b] = f"interrupted at {self.row_label} {self.iterations[b]}"
            else:
                self.status[b] = "max_epochs"
                self.reason[b] = f"reached the last epoch ({self.epochs})"
        return Outcome(self.status, self.reason, self.iterations, self.updates, self.x, self.value, self.grad_norm, wall,
                       self.seen, error)
