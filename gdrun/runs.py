"""Run directories: one self-describing folder per run.

    runs/<YYYYmmdd-HHMMSS>-<name>-<id>/
        config.yaml    the fully resolved config; ``gdrun run config.yaml`` repeats the run
        metrics.csv    step 0 is the init point, then one row per update
        summary.json   status, final point and value, versions, command line, git commit...
        error.txt      only when the run failed: the traceback

A run directory is created complete or not at all: it is built under a hidden name
(``.creating-<name>``) and renamed once config.yaml and the ``running`` summary are on disk.
Every file gdrun writes whole goes through :func:`write_atomic` (a temp file in the same folder,
fsync, rename), so a kill never leaves half a file; metrics.csv grows by whole rows only. The
``running`` summary records the process (pid, host), so a reader can tell a run still going from
one cut off by a kill, and is padded so the final summary fits in its place when the disk is full.
A full disk ends the run as ``failed`` with a reason starting "disk full:". A process killed
while it built a directory leaves only the hidden ``.creating-*`` folder, never a half run.

JSON has no nan or inf: gdrun writes them as null (the reason says what became non-finite);
readers still accept the "nan"/"inf" strings of older files. :func:`open_record` is the one
reader, for a run directory, a sweep directory or one config of a sweep (``SWEEP_DIR/ID``).
"""

from __future__ import annotations

import contextlib
import csv
import errno
import io
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .engine import Block
from .errors import EXIT_FAILED, GdrunError

CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.csv"
SUMMARY_FILE = "summary.json"
ERROR_FILE = "error.txt"
LOCK_FILE = ".lock"
#: errors that mean the disk (or the file-size limit, or a quota) is full
DISK_FULL = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)
#: spare room in the ``running`` summary, so the final one can replace it in place on a full disk
SUMMARY_RESERVE = 16384


def safe_name(name: str) -> str:
    """A directory-friendly version of ``name`` (letters, digits, '.', '_', '-'; at most 40)."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._-")
    return (cleaned or "run")[:40]


def create_run_dir(root: str | Path, name: str, prefix: str = "", fill=None) -> Path:
    """Make a new, never-shared run directory under ``root`` (``prefix`` marks sweeps), complete
    or not at all: ``fill(building, final)`` writes its first files into ``building`` (a hidden
    folder next to it), then the folder is renamed to ``final``. A full disk is a one-line error
    (exit 4); nothing is left behind."""
    root = Path(root)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise io_error(f"cannot create the runs directory {root}", exc) from None
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for _ in range(100):
        path = root / f"{prefix}{stamp}-{safe_name(name)}-{secrets.token_hex(3)}"
        building = root / f".creating-{path.name}"
        if path.exists():
            continue
        try:
            building.mkdir()  # exclusive: it reserves ``path`` (only this process renames to it)
        except FileExistsError:
            continue
        except OSError as exc:
            raise io_error(f"cannot create a run directory in {root}", exc) from None
        try:
            if fill is not None:
                fill(building, path)
            fault_point()
            os.rename(building, path)
            _fsync_dir(root)
        except BaseException as exc:
            shutil.rmtree(building, ignore_errors=True)
            if isinstance(exc, OSError):
                raise io_error(f"cannot create a run directory in {root}", exc) from None
            raise
        fault_point()
        return path
    raise GdrunError(f"cannot find a free run directory name in {root}")  # pragma: no cover


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` says the disk, a quota or the file-size limit is full."""
    return isinstance(exc, OSError) and exc.errno in DISK_FULL


def disk_full_reason(exc: OSError, path: str | Path | None = None) -> str:
    """The reason a run or sweep records when its disk filled up."""
    where = f" writing {Path(path).name}" if path is not None else ""
    return f"disk full{where}: {exc.strerror or exc} (free some space, then run it again)"


def io_error(what: str, exc: OSError) -> GdrunError:
    """``what`` failed: a one-line error; exit code 4 when the disk is full, else 2."""
    if is_disk_full(exc):
        return GdrunError(f"{what}: disk full ({exc.strerror or exc})", EXIT_FAILED)
    return GdrunError(f"{what}: {exc.strerror or exc}")


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


@contextlib.contextmanager
def atomic_file(path: str | Path, text: bool = False):
    """A file written whole or not at all: the open file (text: UTF-8, newlines as written) is a
    temp file in the same folder, fsynced and renamed to ``path`` when the block ends; an error
    leaves the old file. The one way gdrun writes a file whole (config, summaries, sweep.yaml,
    results, reports); a large one can be streamed into it."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(3)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o644)
        with open(fd, "w", newline="", encoding="utf-8") if text else open(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fault_point()


def write_atomic(path: str | Path, data: str | bytes) -> None:
    """Write a whole file or leave the old one (see :func:`atomic_file`)."""
    with atomic_file(path) as f:
        f.write(data.encode("utf-8") if isinstance(data, str) else bytes(data))


def append_whole(path: str | Path, data: bytes) -> None:
    """Append ``data`` to a file whole or not at all (a failed write is cut back), then fsync."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
    try:
        size = os.fstat(fd).st_size
        try:
            _write_all(fd, data)
            os.fsync(fd)
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, size)
            raise
    finally:
        os.close(fd)
    fault_point()


def json_text(data: Any, reserve: int = 0) -> str:
    """``data`` as JSON; nan and inf become null (JSON has neither), numpy numbers plain ones;
    ``reserve`` trailing spaces leave room for a later :func:`write_json` in place."""
    text = json.dumps(_finite(data), indent=2, allow_nan=False, default=_json_default) + "\n"
    return text + (" " * reserve + "\n" if reserve else "")


def write_json(path: str | Path, data: Any, reserve: int = 0) -> None:
    """Write ``data`` as JSON atomically. When the disk is full, a file written earlier with a
    ``reserve`` big enough is overwritten in place instead (no new space needed)."""
    text = json_text(data, reserve)
    try:
        write_atomic(path, text)
    except OSError as exc:
        if not is_disk_full(exc) or not _overwrite_in_place(Path(path), text.rstrip() + "\n"):
            raise


def _overwrite_in_place(path: Path, text: str) -> bool:
    blob = text.encode("utf-8")
    try:
        size = path.stat().st_size
        if len(blob) > size:
            return False
        with open(path, "r+b") as f:
            f.write(blob[:-1].ljust(size - 1) + b"\n")  # same size: no new block is needed
            f.flush()
            os.fsync(f.fileno())
    except OSError:
        return False
    fault_point()
    return True


def _finite(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    return value


class DirLock:
    """An exclusive lock on a directory (``fcntl.flock`` on its lock file), held while one process
    writes it; the OS releases it when the process ends, even on SIGKILL. The lock file names the
    holder, so a second process gets a one-line error saying who."""

    def __init__(self, directory: Path):
        import fcntl

        self.path = Path(directory) / LOCK_FILE
        try:
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
        except OSError as exc:
            raise io_error(f"cannot lock {directory}", exc) from None
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.read(self.fd, 200).decode("utf-8", "replace").strip() or "another process"
            os.close(self.fd)
            raise GdrunError(f"{directory} is in use by {holder}; a sweep directory is run by one process at a "
                             "time: wait for it to finish, or stop it, then resume") from None  # fmt: skip
        info = process_info()
        with contextlib.suppress(OSError):  # who holds it: a courtesy for the error above
            os.ftruncate(self.fd, 0)
            os.pwrite(self.fd, f"process {info['pid']} on {info['host']} (since {time.strftime('%H:%M:%S')})".encode(), 0)

    def release(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)  # closing the descriptor releases the lock
            self.fd = -1


_fault_count = 0


def fault_point() -> None:
    """A test hook for the fault tests: with ``GDRUN_FAULT_AFTER=N:SIGNAL`` in the environment,
    this process sends itself SIGNAL (INT, TERM, KILL) after its Nth file operation."""
    global _fault_count
    spec = os.environ.get("GDRUN_FAULT_AFTER")
    if not spec:
        return
    _fault_count += 1
    count, _, name = spec.partition(":")
    if count.isdigit() and _fault_count == int(count):
        os.kill(os.getpid(), getattr(signal, f"SIG{name or 'KILL'}", signal.SIGKILL))


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def json_number(value: float) -> float | None:
    """A number for JSON, which has no nan/inf: those become None (null); the reason says which."""
    value = float(value)
    return value if np.isfinite(value) else None


def summary_number(value: Any) -> float | None:
    """A number as summary.json or results.csv holds it ("nan"/"inf" strings of older files too);
    None if it is none (null: not finite, or not computed)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


class MetricsWriter:
    """Streams one run's rows to metrics.csv as blocks arrive (an observer of the engine)."""

    def __init__(self, path: Path, names: tuple[str, ...], member: int = 0, epochs: bool = False):
        self.path = path
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0), 0o644)
        self.size = 0  # bytes of whole rows on disk
        self.names = names
        self.last: dict[str, Any] | None = None  # the last row on disk: what a run cut short by a full disk reached
        self.member = member
        self.epochs = epochs  # fits: an epoch column, and step counts the optimizer's updates
        self.width = len(names) + 2  # the formatted columns after the counters: variables, value, grad_norm
        counters = ["epoch", "step"] if epochs else ["step"]
        self._append(",".join([*counters, *names, "value", "grad_norm", "lr"]) + "\n")

    def _append(self, text: str) -> None:
        """Whole rows or nothing: a failed write (a full disk) is cut back to the last whole row."""
        blob = text.encode()
        try:
            _write_all(self.fd, blob)
        except OSError:
            try:
                os.ftruncate(self.fd, self.size)
            except OSError:
                pass
            raise
        self.size += len(blob)
        fault_point()

    def on_block(self, block: Block) -> None:
        last = block.last[self.member]
        if last < 0:
            return
        b, rows = self.member, last + 1
        # Column by column: integers as str, floats as repr (the shortest decimal that reads back
        # exactly), every value taken as float64 (a float32 run's values are written as the float64
        # numbers they are); formatting is most of the cost of this file. A learning rate that is
        # constant over the block is formatted once.
        counters = [block.steps[:rows], block.updates[:rows]] if self.epochs else [block.steps[:rows]]
        x = block.x[:rows, b]
        columns = [map(str, c.tolist()) for c in counters]
        columns += [self._reprs(x[:, i]) for i in range(x.shape[1])]
        columns += [self._reprs(block.value[:rows, b]), self._reprs(block.grad_norm[:rows, b])]
        lr = block.lr[:rows, b]
        columns.append([repr(float(lr[0]))] * rows if (lr == lr[0]).all() else self._reprs(lr))
        self._append("\n".join(map(",".join, zip(*columns))) + "\n")
        self.last = {"iterations": int(block.steps[last]), "updates": int(block.updates[last]),
                     "params": dict(zip(self.names, block.x[last, b].tolist())),
                     "value": float(block.value[last, b]), "grad_norm": float(block.grad_norm[last, b])}  # fmt: skip

    @staticmethod
    def _reprs(column: np.ndarray):
        """The cells of a float column: ``repr`` of each value as a float64 (what ``'%r' %`` wrote)."""
        return map(float.__repr__, column.astype(np.float64, copy=False).tolist())

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def git_commit(cwd: str | Path | None = None) -> str | None:
    """The commit checked out in ``cwd`` (default: the working directory), or None."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


#: metrics columns that are counters or outcomes; the others are the parameters, by name
COUNTER_COLUMNS = ("epoch", "step", "updates", "value", "grad_norm", "lr")


@dataclass
class RunRecord:
    """A run directory (or a sweep directory, or one config of a sweep) read back: what
    ``gdrun show`` and the tests use."""

    path: Path
    config: dict[str, Any]
    summary: dict[str, Any]
    metrics: dict[str, np.ndarray]  # column name (the parameters' real names) -> values
    cut_off: bool = False  # status 'running', but the process that ran it is gone
    kind: str = "run"  # "run", "sweep" or "sweep config"


def process_info() -> dict[str, Any]:
    """What a ``running`` summary records so a reader can tell whether its process still lives."""
    return {"pid": os.getpid(), "host": socket.gethostname()}


def process_gone(summary: dict[str, Any]) -> bool:
    """True when the summary's process (pid on this host) no longer exists; False while it lives,
    and when that cannot be told (another host, no pid recorded)."""
    pid = summary.get("pid")
    if isinstance(pid, bool) or not isinstance(pid, int) or summary.get("host") != socket.gethostname():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # it exists, owned by someone else
        return False
    return _zombie(pid)


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def open_record(path: str | Path) -> RunRecord:
    """The one reader: a run directory, a sweep directory or ``SWEEP_DIR/ID`` as a RunRecord, or
    a one-line error."""
    path = Path(path)
    from .sweeps import SWEEP_FILE, open_config, open_sweep

    if (path / SWEEP_FILE).is_file():
        return open_sweep(path)
    if not (path / SUMMARY_FILE).exists() and path.name.isdigit() and (path.parent / SWEEP_FILE).is_file():
        return open_config(path.parent, int(path.name))
    return read_run(path)


def read_run(path: str | Path) -> RunRecord:
    """Read a run directory back; a missing or broken file is a one-line error. A run still
    ``running`` (or cut off by a kill) shows its last recorded row as its current point."""
    import yaml

    path = Path(path)
    if not (path / SUMMARY_FILE).is_file():
        raise GdrunError(f"not a run directory (no {SUMMARY_FILE}): {path}")
    try:
        summary = json.loads(read_small(path / SUMMARY_FILE))
        if not isinstance(summary, dict) or not isinstance(summary.get("status"), str):
            raise ValueError(f"{SUMMARY_FILE} is not a gdrun summary")
        config = yaml.safe_load(read_small(path / CONFIG_FILE)) if (path / CONFIG_FILE).exists() else {}
        metrics = read_metrics(path / METRICS_FILE) if (path / METRICS_FILE).exists() else {}
    except (ValueError, OSError, yaml.YAMLError) as exc:
        raise GdrunError(f"cannot read run directory {path}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    cut_off = summary["status"] == "running" and process_gone(summary)
    if summary["status"] == "running":
        summary = _with_last_row(summary, metrics, cut_off)
    return RunRecord(path, config if isinstance(config, dict) else {}, summary, metrics, cut_off)


def read_small(path: Path, limit: int | None = 64 << 20) -> str:
    """A file gdrun wrote, read back with the one safe reader (:func:`gdrun.inputs.read_text`): a
    device, a FIFO or a folder is refused without being read (or waited on); at most ``limit``
    bytes (None: no practical bound, for metrics and results). Problems are ValueError or OSError
    (FileNotFoundError for a missing file), for the callers to word."""
    from .inputs import read_text

    if not path.exists():
        raise FileNotFoundError(f"{path.name} not found")
    try:
        return read_text(path, path.name, limit if limit is not None else 1 << 62)
    except GdrunError as exc:
        raise ValueError(str(exc)) from None


def read_metrics(path: Path) -> dict[str, np.ndarray]:
    """metrics.csv as columns; an empty file has none, and a row cut short by a kill is dropped."""
    text = read_small(path, limit=None)
    if not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]  # a torn last row (or a torn header)
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if not header:
        return {}
    rows = [row for row in reader if len(row) == len(header)]
    columns = list(zip(*rows)) or [()] * len(header)
    return {name: np.array(col, dtype=float) for name, col in zip(header, columns)}


def _with_last_row(summary: dict[str, Any], metrics: dict[str, np.ndarray], cut_off: bool) -> dict[str, Any]:
    """A ``running`` summary brought up to its last recorded row, its reason saying why."""
    summary = dict(summary)
    steps = metrics.get("step")
    counter = "epoch" if "epoch" in metrics else "step"
    last = None
    if steps is not None and len(steps):
        last = {k: float(v[-1]) for k, v in metrics.items()}
        summary["iterations"] = int(last[counter])
        summary["updates"] = int(last["step"])
        params = dict(summary.get("params") or {})
        summary["params"] = {k: (last[k] if k in last else v) for k, v in params.items()}
        summary["value"] = json_number(last["value"])
        summary["grad_norm"] = json_number(last["grad_norm"])
    where = f"{counter} {int(last[counter])}, the last recorded row" if last else "before its first row"
    if cut_off:
        why = f"cut off at {where}: process {summary['pid']} on {summary['host']} is gone (killed, or the machine stopped)"
    elif summary.get("pid"):
        why = f"still running (process {summary['pid']} on {summary.get('host')}); shown at {where}"
    else:  # written by an older gdrun, which did not record its process
        why = f"not finished: still running, or cut off at {where} (no process recorded to tell which)"
    summary["reason"] = why
    return summary
