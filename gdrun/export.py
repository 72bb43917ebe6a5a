"""Exports of recorded runs to other tools: ``gdrun export tensorboard PATH... --logdir DIR``.

TensorBoard gets one folder per run under the logdir: ``<run dir name>/`` for a run,
``<sweep dir name>/<id>/`` for each config of a sweep that has run. Each folder holds one event
file with, at global step = the optimizer's updates (the ``step`` column of a run's metrics.csv):

    loss (fits) or value      the objective of that row
    grad_norm, lr             as recorded
    params/<name>             each parameter, by its real name
    epoch                     fits only (several updates per epoch with mini-batches or SGD)

plus, at step 0, the config as hyperparameters (the HPARAMS tab; with the run's ``status`` and
``kind``), the config as YAML text, and the status with its reason. TensorBoard keeps scalars as
float32: a value beyond its range reads back as inf; nan and inf are written as they are.

The writer is tensorboardX (the optional ``gdrun[tensorboard]`` extra), imported only here. Its
synchronous ``EventsWriter`` is used with its summary builders rather than ``SummaryWriter``:
``SummaryWriter`` writes from a background thread, so a write error (a full disk) kills that
thread and the next scalars wait forever on its queue; here the error reaches the caller.

A re-export of a run replaces its folder's earlier event files once the new one is complete; an
export that fails removes its own half-written file and leaves the earlier export in place.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from .errors import GdrunError
from .runs import COUNTER_COLUMNS, RunRecord, io_error

EVENTS_MARK = ".out.tfevents."  # what TensorBoard looks for in an event file's name
#: config keys that are not hyperparameters (the expectations of a seed config, display settings)
NOT_HPARAMS = ("expect", "every")
#: the longest list kept as a hyperparameter (as JSON text); inline data and longer lists are left to the config text
HPARAM_LIST_CHARS = 80
MISSING_WRITER = "gdrun export tensorboard needs tensorboardX: pip install 'gdrun[tensorboard]'"


def export_tensorboard(records: list[RunRecord], logdir: Path) -> list[Path]:
    """Write TensorBoard event files for ``records`` (runs, sweeps, sweep configs, as
    :func:`gdrun.runs.open_record` opened them) under ``logdir``; return the folders written, in
    order. A sweep's configs are read and written one at a time. Bad input (a logdir that is a
    file, nothing to export, two runs for one folder) is a one-line error before anything is written."""
    tbx = _writer_module()
    logdir = Path(logdir)
    if logdir.exists() and not logdir.is_dir():
        raise GdrunError(f"--logdir {logdir} is a file, not a folder")
    if not records:
        raise GdrunError("nothing to export: no run directories given")
    plan = _plan(records)
    try:
        logdir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise io_error(f"cannot create the logdir {logdir}", exc) from None
    written: dict[Path, None] = {}  # in order, each once
    for folder, given in plan:
        for name, record in _runs_of(given):
            target = logdir / folder / name if name else logdir / folder
            if target not in written:
                _write_run(tbx, record, target)
                written[target] = None
    return list(written)


def _writer_module():
    """tensorboardX's writer pieces, or the one-line error saying how to install them."""
    try:
        from tensorboardX import summary
        from tensorboardX.event_file_writer import EventsWriter
        from tensorboardX.proto.event_pb2 import Event
        from tensorboardX.proto.summary_pb2 import Summary
    except ImportError:
        raise GdrunError(MISSING_WRITER) from None
    return summary, EventsWriter, Event, Summary


def _plan(records: list[RunRecord]) -> list[tuple[str, RunRecord]]:
    """Each record's folder under the logdir; two different runs that would share a folder, a sweep
    with no config run yet or a record of an unknown kind is an error here, before any writing.
    A sweep config exported with its whole sweep is written once."""
    from .sweeps import iter_results

    plan: dict[str, tuple[Path, RunRecord]] = {}
    for record in records:
        if record.kind == "sweep":
            if next(iter_results(record.path), None) is None:
                raise GdrunError(f"nothing to export: no config of sweep {record.path} has run yet (run or resume it)")
            folder = record.path.name
        elif record.kind == "sweep config":
            folder = f"{record.path.parent.name}/{record.path.name}"
        elif record.kind == "run":
            folder = record.path.name
        else:
            raise GdrunError(f"cannot export {record.path}: a record of kind '{record.kind}'")
        source = record.path.resolve()
        if folder in plan and plan[folder][0] != source:
            raise GdrunError(f"{plan[folder][0]} and {record.path} would both export to {folder}: "
                             "export them to different logdirs")
        plan.setdefault(folder, (source, record))
    sweeps = {source for source, record in plan.values() if record.kind == "sweep"}
    return [(folder, record) for folder, (source, record) in plan.items()
            if not (record.kind == "sweep config" and source.parent in sweeps)]  # fmt: skip


def _runs_of(record: RunRecord) -> Iterator[tuple[str, RunRecord]]:
    """(subfolder, run) for a run or sweep config (``""``: the folder itself), or each config of a
    sweep that has run, opened one at a time (by id) so a large sweep is never all in memory."""
    if record.kind != "sweep":
        yield "", record
        return
    from .sweeps import iter_results, open_config

    ids = sorted({int(row["id"]) for row in iter_results(record.path)})
    for config_id in ids:
        yield str(config_id), open_config(record.path, config_id)


def _write_run(tbx, record: RunRecord, folder: Path) -> None:
    """One run's event file in ``folder``; the earlier event files there go once it is complete.
    On any error (or Ctrl-C) the half-written file goes instead, and the error is one line."""
    summary, EventsWriter, Event, Summary = tbx
    writer, done, earlier = None, False, None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        earlier = _event_files(folder)
        # a suffix of our own: a re-export within the same second must not truncate the earlier file
        writer = EventsWriter(str(folder / "events"), f".{os.getpid()}-{secrets.token_hex(3)}.gdrun")
        now = time.time()
        for step, values in _head(summary, record):
            writer.write_event(Event(wall_time=now, step=step, summary=Summary(value=values)))
        for step, values in _rows(summary, record):
            writer.write_event(Event(wall_time=now, step=step, summary=Summary(value=values)))
        writer.close()  # flushes and fsyncs: the file is whole on disk before the earlier ones go
        done = True
    except OSError as exc:
        raise io_error(f"cannot write TensorBoard events to {folder}", exc) from None
    finally:
        if not done and earlier is not None:  # the file of ours goes, even one opened but never written
            try:
                if writer is not None:
                    writer.close()
            except Exception:  # already closed, or the disk is the problem: the file goes anyway
                pass
            _remove(p for p in _event_files(folder) if p not in earlier)
    _remove(earlier)


def _event_files(folder: Path) -> list[Path]:
    """The event files directly in ``folder`` (none when it cannot be listed)."""
    try:
        return [p for p in folder.iterdir() if EVENTS_MARK in p.name and p.is_file()]
    except OSError:
        return []


def _remove(paths) -> None:
    for path in paths:
        try:
            path.unlink(missing_ok=True)
        except OSError:
            pass


def _head(summary, record: RunRecord) -> Iterator[tuple[int, list]]:
    """The step-0 events: hyperparameters (a session of TensorBoard's hparams plugin), the config as
    YAML text, and the status with its reason."""
    import yaml

    kind = record.summary.get("kind") or ("fit" if record.config.get("fit") else "minimize")
    hparams = {**_hparams(record.config), "status": str(record.summary.get("status", "?")), "kind": str(kind)}
    # Only the session start and end: with no experiment summary of its own, TensorBoard builds the
    # experiment from every run's session, so runs of different configs (a minimize and a fit, or
    # several exports into one logdir) all show their hyperparameters, and the metrics are the
    # runs' scalars.
    _experiment, start, end = summary.hparams(hparams, {})
    yield 0, [*start.value, *end.value]
    config_text = yaml.safe_dump(record.config, sort_keys=False, default_flow_style=False)
    yield 0, [*summary.text("config", _code_block(config_text)).value]
    status = f"**{record.summary.get('status', '?')}**: {record.summary.get('reason') or ''}".rstrip(": ")
    yield 0, [*summary.text("status", status).value]


def _rows(summary, record: RunRecord) -> Iterator[tuple[int, list]]:
    """One event per recorded row, all its scalars together, at global step = optimizer updates."""
    metrics = record.metrics
    fit = record.summary.get("kind") == "fit" or "epoch" in metrics
    if "updates" in metrics:  # a sweep config: ``step`` counts epochs, ``updates`` the optimizer's steps
        steps, epochs = metrics["updates"], (metrics["step"] if fit else None)
    else:  # a run: ``step`` counts updates; a fit has an ``epoch`` column as well
        steps, epochs = metrics.get("step"), metrics.get("epoch")
    if steps is None or not len(steps):
        return
    columns = [("loss" if fit else "value", metrics["value"]), ("grad_norm", metrics["grad_norm"]),
               ("lr", metrics["lr"])]
    columns += [(f"params/{name}", column) for name, column in metrics.items() if name not in COUNTER_COLUMNS]
    if epochs is not None:
        columns.append(("epoch", epochs))
    tags = [tag for tag, _ in columns]
    table = np.column_stack([column for _, column in columns]).tolist()
    for step, row in zip(steps.astype(np.int64).tolist(), table):
        yield step, [value for tag, x in zip(tags, row) for value in summary.scalar(tag, x).value]


def _hparams(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """The config flattened to dotted names (``fit.batch_size``, ``init.w``) with the values the
    hparams plugin takes: numbers, strings, booleans; a short list as JSON text. None (unset) and
    long lists (inline data) are left out: the config text has them."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if not prefix and key in NOT_HPARAMS:
            continue
        if isinstance(value, dict):
            flat.update(_hparams(value, f"{name}."))
        elif isinstance(value, (bool, str)):
            flat[name] = value
        elif isinstance(value, (int, float, np.integer, np.floating)):
            flat[name] = float(value)
        elif isinstance(value, (list, tuple)):
            text = json.dumps(value, default=str)
            if len(text) <= HPARAM_LIST_CHARS:
                flat[name] = text
    return flat


def _code_block(text: str) -> str:
    """``text`` as a Markdown code block (TensorBoard's text tab renders Markdown)."""
    return "\n".join("    " + line for line in text.rstrip("\n").splitlines())


__all__ = ["export_tensorboard", "MISSING_WRITER"]
