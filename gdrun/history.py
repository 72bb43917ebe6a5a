"""The runs folder as a history: list it, name a run in it, compare runs.

Every run and sweep directory's name starts with the time it was made
(``20261202-214943-x2-fa4b07``, ``sweep-20261202-...``), so the folder is ordered without opening
anything; a listing reads each directory's ``summary.json`` (and a sweep's ``sweep.yaml``), never
its metrics. A run is named by:

    a path            runs/20261202-214943-x2-fa4b07, or SWEEP_DIR/17 for one config of a sweep
    last, last~N      the newest run (or sweep), the one before it...
    a name            x2: the newest run of that name
    a prefix          of the directory name (20261202-2149) or of its id (fa4b07), if only one matches

and any of them may end in ``/ID`` for one config of a sweep (``last/17``). :func:`resolve` is the
one place these are read; show, explain, plot, export, ``runs compare`` and ``gdrun.load`` use it.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import stat
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Iterable, Iterator

from .errors import RunNotFound
from .runs import SUMMARY_FILE, safe_name
from .sweeps import SWEEP_FILE

#: a directory's name: optional sweep- prefix, time stamp, name, random id
DIR_NAME = re.compile(r"^(?:sweep-|compare-)?(?P<stamp>\d{8}-\d{6})-(?P<name>.*)-(?P<id>[0-9a-f]{6})$")
LAST = re.compile(r"^last(?:~(?P<back>\d+))?$")
#: the columns of a listing, in order (``gdrun runs --json`` keys, ``--csv`` header)
COLUMNS = ("id", "name", "kind", "function", "optimizer", "lr", "status", "steps", "value", "started", "wall_time_s",
           "dir")  # fmt: skip
REFERENCE_HELP = "a run directory, last, last~N, a run name, or a unique prefix of a directory name or id"


@dataclass(frozen=True)
class Entry:
    """One directory of the runs folder, known from its name and one stat: nothing read yet."""

    path: Path
    stamp: str  # YYYYmmdd-HHMMSS (from the name; the directory's time for one not named by gdrun)
    order: int  # ties within a second: when its summary was last written (ns)
    name: str  # the run's name as the directory spells it
    id: str  # the random six hex digits at the end ('' if none)
    sweep: bool
    key: tuple[int, int] | None  # summary.json's (mtime ns, size): a cached row is good while it holds

    @property
    def started(self) -> datetime:
        s = self.stamp
        return datetime(int(s[:4]), int(s[4:6]), int(s[6:8]), int(s[9:11]), int(s[11:13]), int(s[13:15]))


def _stat(path: str) -> os.stat_result | None:
    try:
        return os.stat(path)
    except OSError:
        return None


def entries(runs_dir: str | Path) -> list[Entry]:
    """The run and sweep directories under ``runs_dir``, newest first (hidden ``.creating-*``
    folders of runs being made, and folders that are neither, left out). One stat each."""
    found = []
    try:
        scan = os.scandir(runs_dir)
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as exc:
        raise RunNotFound(f"cannot read the runs folder {runs_dir}: {exc.strerror or exc}") from None
    with scan:
        for item in scan:
            if item.name.startswith(".") or not item.is_dir():
                continue
            summary = _stat(os.path.join(item.path, SUMMARY_FILE))
            sweep = item.name.startswith("sweep-") or summary is None
            if sweep and _stat(os.path.join(item.path, SWEEP_FILE)) is None:
                if summary is None:
                    continue  # neither a run nor a sweep
                sweep = False
            key = (summary.st_mtime_ns, summary.st_size) if summary is not None else None
            order = key[0] if key else 0
            match = DIR_NAME.match(item.name)
            if match:
                found.append(Entry(Path(item.path), match["stamp"], order, match["name"], match["id"], sweep, key))
            else:  # a copied or renamed run directory: its own time
                stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(item.stat().st_mtime))
                found.append(Entry(Path(item.path), stamp, order, item.name, "", sweep, key))
    found.sort(key=lambda e: (e.stamp, e.order), reverse=True)
    return found


def no_runs_message(runs_dir: str | Path) -> str:
    return f"no runs in {runs_dir} yet (start one with: gdrun minimize x2 --lr 0.1)"


# ---------------------------------------------------------------------------- naming a run


def resolve(ref: str | Path, runs_dir: str | Path = "runs") -> Path:
    """The directory (or ``SWEEP_DIR/ID``) that ``ref`` names; a :class:`RunNotFound` naming the
    problem otherwise (nothing there, two runs match a prefix, an empty runs folder)."""
    text = str(ref)
    path = Path(text)
    if path.exists():
        return path
    head, slash, tail = text.rstrip("/").rpartition("/")
    if slash and tail.isdigit():  # one config of a sweep: the sweep may itself be a reference
        sweep = resolve(head, runs_dir)
        if not (sweep / SWEEP_FILE).is_file():
            raise RunNotFound(f"{sweep} is not a sweep directory, so it has no config {tail}")
        return sweep / tail
    if "/" in text.rstrip("/") or text in ("", ".", ".."):
        raise RunNotFound(f"not a run directory: {text} (there is no such folder)")
    found = entries(runs_dir)
    if not found:
        raise RunNotFound(f"no run named {text!r}: {no_runs_message(runs_dir)}")
    last = LAST.match(text)
    if last:
        back = int(last["back"] or 0)
        if back >= len(found):
            raise RunNotFound(f"{text} goes back {back} but {runs_dir} holds {_count(len(found))}")
        return found[back].path
    named = [e for e in found if e.name == safe_name(text)]
    if named:
        return named[0].path  # the newest run of that name
    matches = [e for e in found if e.path.name.startswith(text) or (e.id and len(text) >= 3 and e.id.startswith(text))]
    if len(matches) == 1:
        return matches[0].path
    if matches:
        shown = ", ".join(e.path.name for e in matches[:3]) + (f" and {len(matches) - 3} more" if len(matches) > 3 else "")
        raise RunNotFound(f"{text!r} matches {len(matches)} runs in {runs_dir} ({shown}); give more of the name")
    from .errors import closest

    raise RunNotFound(f"no run {text!r} in {runs_dir}{closest(text, {e.name for e in found})}: give {REFERENCE_HELP} "
                      "('gdrun runs' lists them)")  # fmt: skip


def _count(n: int) -> str:
    return f"{n} run{'s' if n != 1 else ''}"


def open_ref(ref: str | Path, runs_dir: str | Path = "runs"):
    """The run record ``ref`` names (see :func:`resolve` and :func:`gdrun.runs.open_record`)."""
    from .runs import open_record

    return open_record(resolve(ref, runs_dir))


# ---------------------------------------------------------------------------- the listing


def row(entry: Entry) -> dict[str, Any]:
    """One line of ``gdrun runs``: what the directory's summary says (a sweep: its base config and
    best value). A directory that cannot be read is listed as ``unreadable``, with why."""
    from .errors import GdrunError

    try:
        return _sweep_row(entry) if entry.sweep else _run_row(entry)
    except (GdrunError, OSError, ValueError, TypeError, AttributeError, KeyError) as exc:  # a damaged file of any kind
        return _row(entry, status="unreadable", reason=str(exc).splitlines()[0] if str(exc) else type(exc).__name__)


def _read_json(path: Path) -> dict[str, Any]:
    """A summary, read as a regular file only (a FIFO put in its place is not waited on)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > 1 << 20:
            raise ValueError(f"{path.name} is not a regular file of at most 1 MiB")
        data = json.loads(os.read(fd, info.st_size + 1))
    finally:
        os.close(fd)
    if not isinstance(data, dict) or not isinstance(data.get("status"), str):
        raise ValueError(f"{path.name} is not a gdrun summary")
    return data


def _row(entry: Entry, **fields: Any) -> dict[str, Any]:
    started = entry.started.isoformat(sep=" ")
    base = {"id": entry.id, "name": entry.name, "kind": "sweep" if entry.sweep else "run", "function": None,
            "optimizer": None, "lr": None, "status": None, "steps": None, "value": None, "started": started,
            "wall_time_s": None, "dir": str(entry.path)}  # fmt: skip
    return {**base, **fields}


def _run_row(entry: Entry) -> dict[str, Any]:
    from .runs import process_gone, summary_number

    s = _read_json(entry.path / SUMMARY_FILE)
    status = s["status"]
    if status == "running" and process_gone(s):
        status = "cut_off"
    started = s.get("started_at")
    return _row(entry, name=s.get("name") or entry.name, kind=s.get("kind") or "run", function=s.get("function"),
                optimizer=s.get("optimizer"), lr=summary_number(s.get("lr")), status=status,
                steps=s.get("iterations"), value=summary_number(s.get("value")),
                started=_iso(started) if isinstance(started, str) else _row(entry)["started"],
                wall_time_s=summary_number(s.get("wall_time_s")), reason=s.get("reason"))  # fmt: skip


def _sweep_row(entry: Entry) -> dict[str, Any]:
    from .runs import process_gone, summary_number
    from .sweeps import config_count, read_sweep_file

    meta = read_sweep_file(entry.path)
    base = meta.get("base") or {}
    try:
        s = _read_json(entry.path / SUMMARY_FILE)
    except (OSError, ValueError):  # killed before its first summary
        s = {"status": "running"}
    status = s.get("status", "running")
    if status == "running" and (process_gone(s) or "pid" not in s):
        status = "cut_off"
    best = s.get("best") or {}
    swept = sorted((meta.get("sweep") or {}).get("params") or {}) if isinstance(meta.get("configs"), int) else []
    function = base.get("function") or (base.get("fit") or {}).get("model")
    lr = None if "lr" in swept else summary_number(base.get("lr", 0.01))
    return _row(entry, name=meta.get("name") or entry.name, function=function,
                optimizer=None if "optimizer" in swept else base.get("optimizer", "sgd"), lr=lr, status=status,
                steps=config_count(meta), value=summary_number(best.get("value")),
                wall_time_s=summary_number(s.get("wall_time_s")), swept=swept)  # fmt: skip


def _iso(text: str) -> str:
    """``2026-12-02T21:49:43+0000`` -> ``2026-12-02 21:49:43`` (the local time gdrun wrote)."""
    return text[:19].replace("T", " ")


@dataclass(frozen=True)
class Filters:
    """What ``gdrun runs`` keeps: any of ``status``, a ``name`` pattern (``*``, ``?``; plain text
    matches a part), runs made ``since`` a time, and free ``text`` anywhere in the row."""

    status: tuple[str, ...] = ()
    name: str | None = None
    since: datetime | None = None
    text: str | None = None
    kind: str | None = None

    def keeps_entry(self, entry: Entry) -> bool:
        return self.since is None or entry.started >= self.since

    def keeps(self, r: dict[str, Any]) -> bool:
        if self.status and r["status"] not in self.status:
            return False
        if self.kind and r["kind"] != self.kind:
            return False
        if self.name is not None and not _matches(self.name, str(r["name"])):
            return False
        if self.text is not None:
            haystack = " ".join(str(r[k]) for k in ("name", "kind", "function", "optimizer", "status", "dir")).lower()
            return self.text.lower() in haystack
        return True


def _matches(pattern: str, name: str) -> bool:
    if any(ch in pattern for ch in "*?["):
        return fnmatch.fnmatchcase(name.lower(), pattern.lower())
    return pattern.lower() in name.lower()


STATUSES = ("converged", "max_epochs", "diverged", "failed", "interrupted", "running", "cut_off", "completed",
            "stopped", "unreadable")  # fmt: skip
KINDS = ("minimize", "fit", "sweep", "compare")


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """``30m``, ``2h``, ``3d``, ``1w`` (ago), ``today``, ``yesterday``, ``2026-12-01`` or
    ``2026-12-01T10:00`` -> a local time."""
    now = now or datetime.now()
    value = text.strip().lower()
    ago = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(s|m|h|d|w)", value)
    if ago:
        seconds = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[ago[2]]
        return now - timedelta(seconds=float(ago[1]) * seconds)
    if value in ("today", "yesterday"):
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
        return midnight - timedelta(days=1 if value == "yesterday" else 0)
    try:
        return datetime.fromisoformat(text.strip())
    except ValueError:
        raise RunNotFound(f"--since takes 30m, 2h, 3d, 1w, today, yesterday or a date such as 2026-12-01, "
                          f"got {text!r}") from None  # fmt: skip


INDEX_FILE = ".runs-index.json"  # hidden: the listing skips it
INDEX_FORMAT = 1


class Index:
    """The rows of finished runs, kept in ``runs_dir/.runs-index.json`` so that listing 10,000 runs
    reads 10,000 stats, not 10,000 summaries. A row is used while its summary.json has the size and
    time it had when read; a running (or unreadable) run is always read afresh. Only a cache: a
    missing, damaged or read-only index just means reading the summaries."""

    def __init__(self, runs_dir: str | Path):
        self.path = Path(runs_dir) / INDEX_FILE
        self.rows: dict[str, list] = {}
        self.changed = False
        try:
            data = json.loads(self.path.read_bytes())
            if isinstance(data, dict) and data.get("format") == INDEX_FORMAT and isinstance(data.get("rows"), dict):
                self.rows = data["rows"]
        except (OSError, ValueError):
            pass

    def row(self, entry: Entry) -> dict[str, Any]:
        cached = self.rows.get(entry.path.name)
        if entry.key is not None and isinstance(cached, list) and len(cached) == 2 and cached[0] == list(entry.key):
            return {**cached[1], "dir": str(entry.path)}
        fresh = row(entry)
        if entry.key is not None and fresh["status"] not in ("running", "cut_off", "unreadable"):
            self.rows[entry.path.name] = [list(entry.key), {k: v for k, v in fresh.items() if k != "dir"}]
            self.changed = True
        return fresh

    def save(self, present: Iterable[Entry] | None = None) -> None:
        """Write the index if it learnt a row (``present``: every directory there is, to forget the rest)."""
        if present is not None:
            names = {e.path.name for e in present}
            gone = [name for name in self.rows if name not in names]
            for name in gone:
                del self.rows[name]
            self.changed = self.changed or bool(gone)
        if not self.changed:
            return
        from .runs import write_atomic

        try:
            write_atomic(self.path, json.dumps({"format": INDEX_FORMAT, "rows": self.rows}, separators=(",", ":")))
        except OSError:  # a read-only runs folder: list without an index
            pass


def listing(runs_dir: str | Path, filters: Filters = Filters(), limit: int | None = None) -> list[dict[str, Any]]:
    """The rows of ``gdrun runs``, newest first, filtered; at most ``limit`` of them."""
    found = entries(runs_dir)
    index = Index(runs_dir)
    rows = []
    for entry in found:
        if limit is not None and len(rows) >= limit:
            break
        if not filters.keeps_entry(entry):
            continue
        r = index.row(entry)
        if filters.keeps(r):
            rows.append(r)
    index.save(found if limit is None and filters.since is None else None)
    return rows


# ---------------------------------------------------------------------------- comparing runs


def config_values(record) -> dict[str, Any]:
    """A run's (or a sweep config's) config as flat ``key: value`` pairs (``optimizer_options.momentum``,
    ``stop.grad_norm_below``), with every default filled in, so two runs compare key by key."""
    import yaml

    from .config import to_yaml, validate
    from .errors import GdrunError

    raw = dict(record.config)
    try:
        full = yaml.safe_load(to_yaml(validate(raw)))
    except GdrunError:  # written by another gdrun: compare what it says
        full = raw
    return dict(_flat(full))


def _flat(data: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(data, dict) and prefix.partition(".")[0] != "expect":
        for key, value in data.items():  # an empty mapping (no options) has no keys to compare
            yield from _flat(value, f"{prefix}{key}.")
    else:
        yield prefix[:-1], data


RESULT_KEYS = ("status", "reason", "iterations", "value", "grad_norm", "r2", "wall_time_s")


def result_values(record) -> dict[str, Any]:
    """What a run reached, flat: status, steps, value, |grad|, the final parameters."""
    s = record.summary
    status = "cut_off" if record.cut_off else s.get("status")
    out = {k: s.get(k) for k in RESULT_KEYS if k in s}
    out["status"] = status
    out.update({f"params.{k}": v for k, v in (s.get("params") or {}).items()})
    return out


@dataclass
class Comparison:
    """Runs side by side: ``config`` and ``results`` map a key to one value per run."""

    runs: list[str]
    config: dict[str, list[Any]]
    results: dict[str, list[Any]]
    same: list[str]  # config keys every run shares (left out of ``config`` unless all were asked for)

    def to_json(self) -> dict[str, Any]:
        return {"runs": self.runs, "config": self.config, "results": self.results, "same": self.same}


def compare(refs: Iterable[str | Path], runs_dir: str | Path = "runs", everything: bool = False) -> Comparison:
    """The config keys that differ between the runs ``refs`` name (all of them with
    ``everything``) and their results, side by side."""
    records = []
    for ref in refs:
        record = open_ref(ref, runs_dir)
        if record.kind == "sweep":
            raise RunNotFound(f"{record.path} is a sweep: compare its configs as {record.path}/ID "
                              f"(IDs 0 to {record.summary['configs'] - 1})")  # fmt: skip
        records.append(record)
    if len(records) < 2:
        raise RunNotFound("runs compare needs two runs or more, e.g. gdrun runs compare last last~1")
    configs = [config_values(r) for r in records]
    keys = list(dict.fromkeys(k for c in configs for k in c))
    table = {k: [c.get(k) for c in configs] for k in keys}
    same = [k for k, values in table.items() if all(v == values[0] for v in values)]
    shown = table if everything else {k: v for k, v in table.items() if k not in same}
    results = [result_values(r) for r in records]
    result_keys = list(dict.fromkeys(k for r in results for k in r))
    return Comparison([str(r.path) for r in records], shown, {k: [r.get(k) for r in results] for k in result_keys}, same)
