"""Run directories: one self-describing folder per run.

    runs/<YYYYmmdd-HHMMSS>-<name>-<id>/
        config.yaml    the fully resolved config; ``gdrun run config.yaml`` repeats the run
        metrics.csv    step 0 is the init point, then one row per update
        summary.json   status, final point and value, versions, command line, git commit...
        error.txt      only when the run failed: the traceback

The summary is written first with status ``running`` and replaced (atomically) at the end, so
a directory always holds a readable summary whose status is honest.
"""

from __future__ import annotations

import csv
import json
import os
import re
import secrets
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .engine import Block
from .errors import GdrunError

CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.csv"
SUMMARY_FILE = "summary.json"
ERROR_FILE = "error.txt"


def safe_name(name: str) -> str:
    """A directory-friendly version of ``name`` (letters, digits, '.', '_', '-'; at most 40)."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._-")
    return (cleaned or "run")[:40]


def create_run_dir(root: str | Path, name: str, prefix: str = "") -> Path:
    """Make a new, never-shared run directory under ``root`` (``prefix`` marks sweeps)."""
    root = Path(root)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GdrunError(f"cannot create the runs directory {root}: {exc.strerror or exc}") from None
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for _ in range(100):
        path = root / f"{prefix}{stamp}-{safe_name(name)}-{secrets.token_hex(3)}"
        try:
            path.mkdir()  # exclusive: two processes can never get the same directory
            return path
        except FileExistsError:
            continue
        except OSError as exc:
            raise GdrunError(f"cannot create a run directory in {root}: {exc.strerror or exc}") from None
    raise GdrunError(f"cannot find a free run directory name in {root}")  # pragma: no cover


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=_json_default) + "\n")
    os.replace(tmp, path)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def json_number(value: float) -> float | str:
    """JSON has no nan/inf: write them as strings ("nan", "inf", "-inf")."""
    value = float(value)
    return value if np.isfinite(value) else str(value)


def summary_number(value: Any) -> float | None:
    """A number as summary.json or results.csv holds it (json_number's strings too); None if it is none."""
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


class MetricsWriter:
    """Streams one run's rows to metrics.csv as blocks arrive (an observer of the engine)."""

    def __init__(self, path: Path, names: tuple[str, ...], member: int = 0, epochs: bool = False):
        self.file = open(path, "w", newline="")
        self.member = member
        self.epochs = epochs  # fits: an epoch column, and step counts the optimizer's updates
        self.width = len(names) + 2  # the formatted columns after the counters: variables, value, grad_norm
        counters = ["epoch", "step"] if epochs else ["step"]
        self.file.write(",".join([*counters, *names, "value", "grad_norm", "lr"]) + "\n")
        self.file.flush()

    def on_block(self, block: Block) -> None:
        last = block.last[self.member]
        if last < 0:
            return
        b = self.member
        lr = block.lr[: last + 1, b]
        counters = [block.steps[: last + 1], block.updates[: last + 1]] if self.epochs else [block.steps[: last + 1]]
        columns = [*counters, block.x[: last + 1, b], block.value[: last + 1, b], block.grad_norm[: last + 1, b]]
        ints = "%d," * len(counters)
        # %r writes the shortest decimal that reads back exactly; formatting floats is most of the
        # cost of this file, so a learning rate that is constant over the block is formatted once.
        cells = ",".join(["%r"] * self.width)
        if (lr == lr[0]).all():
            row_format = f"{ints}{cells},{float(lr[0])!r}\n"
        else:
            row_format, columns = f"{ints}{cells},%r\n", columns + [lr]
        rows = np.column_stack(columns).tolist()
        self.file.write("".join([row_format % tuple(r) for r in rows]))
        self.file.flush()

    def close(self) -> None:
        self.file.close()


def git_commit(cwd: str | Path | None = None) -> str | None:
    """The commit checked out in ``cwd`` (default: the working directory), or None."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


@dataclass
class RunRecord:
    """A run directory read back: what ``gdrun show`` and the tests use."""

    path: Path
    config: dict[str, Any]
    summary: dict[str, Any]
    metrics: dict[str, np.ndarray]


def read_run(path: str | Path) -> RunRecord:
    """Read a run directory back; a missing or broken file is a one-line error."""
    import yaml

    path = Path(path)
    if not (path / SUMMARY_FILE).is_file():
        raise GdrunError(f"not a run directory (no {SUMMARY_FILE}): {path}")
    try:
        summary = json.loads((path / SUMMARY_FILE).read_text())
        config = yaml.safe_load((path / CONFIG_FILE).read_text()) if (path / CONFIG_FILE).exists() else {}
        metrics: dict[str, np.ndarray] = {}
        if (path / METRICS_FILE).exists():
            with open(path / METRICS_FILE, newline="") as f:
                reader = csv.reader(f)
                header = next(reader)
                columns = list(zip(*reader)) or [()] * len(header)
            metrics = {name: np.array(col, dtype=float) for name, col in zip(header, columns)}
    except (ValueError, OSError, yaml.YAMLError) as exc:
        raise GdrunError(f"cannot read run directory {path}: {exc}") from None
    return RunRecord(path, config, summary, metrics)
