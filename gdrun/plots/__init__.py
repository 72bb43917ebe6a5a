"""Pictures of runs: ``gdrun plot PATH...`` and ``--plot``.

matplotlib is imported by this package only, and only by the commands that draw, with the Agg
backend through ``matplotlib.figure.Figure`` (no pyplot, no display, no global state); torch is
never imported here. One reader of run directories serves all of it (:func:`gdrun.runs.open_record`),
and the picture follows from what the directory holds:

* a run of a 1-D function: the curve f(x) with the iterates on it; of a 2-D function: the path on
  a filled contour; of more variables: the curves only (:mod:`.runs`);
* every run: value and |grad| against step, and lr when it changes (:mod:`.runs`);
* a fit with one input: the data with the model before and after, and at several epochs (:mod:`.fits`);
* several runs (a comparison): all paths on one contour, all curves on one axis (:mod:`.runs`);
* a sweep over one number: the final value against it, by status; over two: a heat map with the
  diverged region and the predicted bound where the diagnostics give one (:mod:`.sweeps`);
* ``--terminal``: the curves drawn in the terminal with plotext (:mod:`.terminal`);
* ``--animate``: a GIF of a fit or of a 2-D path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import GdrunError


def read(paths: list[Path]) -> list[Any]:
    """The records behind ``paths`` (run directories, a sweep directory, SWEEP_DIR/ID), checked:
    one sweep alone, or runs; each with at least one recorded row."""
    from ..runs import open_record

    records = [open_record(p) for p in paths]
    sweeps = [r for r in records if r.kind == "sweep"]
    if sweeps and len(records) > 1:
        raise GdrunError(f"plot one sweep at a time: {sweeps[0].path} is a sweep, and {len(records) - 1} more path(s) were given")
    for r in records:
        if r.kind != "sweep" and not _has_rows(r):
            raise GdrunError(f"{r.path} has no recorded rows yet (the run was stopped before its first step): nothing to plot")
    return records


def _has_rows(record) -> bool:
    steps = record.metrics.get("epoch", record.metrics.get("step"))
    return steps is not None and len(steps) > 0


def figure(records: list[Any], every: int | None = None):
    """The natural picture of ``records`` (see the module's docstring), as a matplotlib Figure."""
    if records[0].kind == "sweep":
        from .sweeps import sweep_figure

        return sweep_figure(records[0])
    if len(records) > 1:
        from .runs import overlay_figure

        return overlay_figure(records)
    if records[0].summary.get("kind") == "fit":
        from .fits import fit_figure

        return fit_figure(records[0], every)
    from .runs import run_figure

    return run_figure(records[0])


def animation(records: list[Any], out: Path, every: int | None = None) -> Path:
    """An animated GIF of a fit (the model epoch by epoch) or of a 2-D path, written to ``out``."""
    if len(records) != 1 or records[0].kind == "sweep":
        raise GdrunError("--animate draws one run (a fit, or a run of a 2-D function)")
    if records[0].summary.get("kind") == "fit":
        from .fits import animate_fit

        return animate_fit(records[0], out, every)
    from .runs import animate_path

    return animate_path(records[0], out)


def terminal(records: list[Any], width: int | None = None, height: int | None = None) -> str:
    """The curves of ``records`` drawn as text for a terminal (plotext)."""
    from .terminal import draw

    return draw(records, width, height)


def save(fig, path: Path) -> Path:
    """Write ``fig`` as a PNG (atomically: a reader never sees half a picture)."""
    import io

    from ..runs import write_atomic

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=fig.get_dpi())
    write_atomic(path, buffer.getvalue())
    return path
