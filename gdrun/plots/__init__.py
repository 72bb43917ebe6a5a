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
* a tuned comparison (``gdrun compare``): the performance profile, the lr sensitivity and, for a
  2-D function, the tuned paths on the contour (:mod:`.comparison`);
* ``--terminal``: the curves drawn in the terminal with plotext (:mod:`.terminal`); a comparison's
  performance profile (:mod:`.comparison`);
* ``--animate``: a GIF of a fit or of a 2-D path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import GdrunError
from . import terminal as _text  # noqa: F401  loaded now: a first import later would set this package's ``terminal``
# to the module, hiding the function of that name below (a second ``gdrun plot --terminal`` in one process)

PLOT_FILE = "plot.png"  # what --plot writes into a run or sweep directory


def read(paths: list[Path]) -> list[Any]:
    """The records behind ``paths`` (run directories, a sweep directory, SWEEP_DIR/ID, a comparison
    directory), checked: one sweep or one comparison alone, or runs; each run with at least one
    recorded row. A comparison directory reads as a run without rows: its record gets kind "compare"."""
    from dataclasses import replace

    from ..runs import open_record

    records = [open_record(p) for p in paths]
    records = [replace(r, kind="compare") if r.kind == "run" and r.summary.get("kind") == "compare" else r
               for r in records]  # fmt: skip
    alone = [r for r in records if r.kind in ("sweep", "compare")]
    if alone and len(records) > 1:
        what = "sweep" if alone[0].kind == "sweep" else "comparison"
        raise GdrunError(f"plot one {what} at a time: {alone[0].path} is a {what}, "
                         f"and {len(records) - 1} more path(s) were given")  # fmt: skip
    for r in records:
        if r.kind not in ("sweep", "compare") and not _has_rows(r):
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
    if records[0].kind == "compare":
        from .comparison import figure as comparison_figure

        return comparison_figure(records[0].path)
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
    if len(records) != 1 or records[0].kind in ("sweep", "compare"):
        raise GdrunError("--animate draws one run: a fit, or a run of a 1-D or 2-D function")
    if not Path(out).parent.is_dir():
        raise GdrunError(f"cannot write the animation {out}: no such folder {Path(out).parent}")
    if records[0].summary.get("kind") == "fit":
        from .fits import animate_fit

        return animate_fit(records[0], out, every)
    from .runs import animate_path

    return animate_path(records[0], out)


def terminal(records: list[Any], width: int | None = None, height: int | None = None) -> str:
    """The curves of ``records`` drawn as text for a terminal (plotext); a comparison's profile."""
    if records[0].kind == "compare":
        from .comparison import terminal_text

        return terminal_text(records[0].path, width, height)
    from .terminal import draw

    return draw(records, width, height)


def save(fig, path: Path) -> Path:
    """Write ``fig`` as a PNG (atomically: a reader never sees half a picture)."""
    import io

    from ..runs import write_atomic

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=fig.get_dpi())
    try:
        write_atomic(path, buffer.getvalue())
    except OSError as exc:
        raise GdrunError(f"cannot write the picture {path}: {exc.strerror or exc}") from None
    return path


def write(paths: list[Path], out: Path, every: int | None = None) -> Path:
    """Read ``paths``, draw their natural picture and write it to ``out`` (a PNG)."""
    return save(figure(read(paths), every), out)


def after_run(paths: list[Path], out: Path, warn) -> Path | None:
    """``--plot``: the picture of runs that have just ended, or None. Drawing is not part of the
    run's verdict: a failure to draw is one warning line, and the run's exit code stands."""
    try:
        return write(paths, out)
    except GdrunError as exc:
        warn(f"no plot: {exc}")
    except Exception as exc:  # a bug in drawing must not turn a finished run into a crash
        warn(f"no plot: {type(exc).__name__}: {exc}")
    return None
