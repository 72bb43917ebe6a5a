"""Pictures of minimize runs (gdrun.plots.runs): what each figure holds, read back through its
matplotlib objects (artists found by gid, axes by label)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import gdrun.plots as plots
from gdrun.errors import GdrunError
from gdrun.plots.common import label_of
from gdrun.runs import RunRecord, open_record

ROOT = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------------------- helpers


def _figure(paths):
    return plots.figure(plots.read([Path(p) for p in paths]))


def _axes(fig, label):
    found = [ax for ax in fig.axes if ax.get_label() == label]
    return found[0] if found else None


def _lines(ax, gid):
    return [line for line in ax.get_lines() if line.get_gid() == gid]


def _xy(line):
    return np.asarray(line.get_xdata(), dtype=float), np.asarray(line.get_ydata(), dtype=float)


def _title(fig):
    return fig.get_suptitle()


_SEEN: set[Path] = set()


def _one_run(gdrun, *args):
    """The run directory that ``gdrun minimize ARGS --quiet`` wrote."""
    r = gdrun("minimize", *args, "--quiet")
    assert r.code in (0, 3), r.err  # 3: diverged
    new = [d for d in r.run_dirs() if d not in _SEEN]
    _SEEN.update(new)
    assert len(new) == 1, new
    return new[0]


def _metrics(path):
    return open_record(path).metrics


# ----------------------------------------------------------------------------------------- 1-D runs


def test_e1_lr1_bounce_on_the_curve(gdrun):
    run = _one_run(gdrun, "x2", "--lr", "1", "--epochs", "10")
    fig = _figure([run])
    m = _metrics(run)
    ax = _axes(fig, "function")
    (path,) = _lines(ax, "path")
    x, y = _xy(path)
    np.testing.assert_array_equal(x, m["x"])  # every iterate, in order
    np.testing.assert_array_equal(y, m["value"])
    assert set(np.round(x, 12)) == {7.5, -7.5}  # the bounce
    assert path.get_marker() == "o"
    (start,), (end,) = _lines(ax, "start"), _lines(ax, "end")
    assert _xy(start)[0][0] == 7.5 and _xy(end)[0][0] == m["x"][-1]
    assert start.get_marker() != end.get_marker()
    (curve,) = _lines(ax, "curve")
    cx, cy = _xy(curve)
    assert cx.min() < -7.5 and cx.max() > 7.5 and cx.min() <= 0 <= cx.max()  # iterates and the minimum, with a margin
    np.testing.assert_allclose(cy, cx**2)
    (minima,) = _lines(ax, "minima")
    assert list(_xy(minima)[0]) == [0.0]
    assert ax.get_xlabel() == "x"
    title = _title(fig)
    for word in ("x2", "sgd", "lr=1.0", "max_epochs", "oscillating"):
        assert word in title
    # a constant value and |grad|: linear, and no lr axis without a schedule
    assert _axes(fig, "value").get_yscale() == "linear" and _axes(fig, "grad").get_yscale() == "linear"
    assert _axes(fig, "lr") is None
    assert _axes(fig, "grad").get_xlabel() == "step"


def test_e1_lr001_crawl(gdrun):
    run = _one_run(gdrun, "x2", "--lr", "0.01", "--epochs", "10")
    fig = _figure([run])
    ax = _axes(fig, "function")
    x, _ = _xy(_lines(ax, "path")[0])
    assert len(x) == 11 and np.all(np.diff(x) < 0) and x.min() > 6  # a crawl: small steps down one side
    lo, hi = ax.get_xlim()
    assert lo < 0 < 7.5 < hi  # the range still holds the minimum
    assert "crawling" in _title(fig)


def test_negative_values_stay_linear_and_wide_positive_ones_go_log(gdrun):
    run = _one_run(gdrun, "x**2 - 10", "--init", "x=30", "--lr", "0.1", "--epochs", "60")
    fig = _figure([run])
    assert _metrics(run)["value"].min() < 0
    assert _axes(fig, "value").get_yscale() == "linear"
    assert _axes(fig, "grad").get_yscale() == "log"  # 60 -> 1e-4: positive, many decades
    assert not _lines(_axes(fig, "function"), "minima")  # an expression lists no known minimum


def test_schedule_gets_an_lr_axis(gdrun):
    run = _one_run(gdrun, "x2", "--lr", "0.1", "--epochs", "40", "--schedule", "step:step_size=10:gamma=0.5")
    fig = _figure([run])
    ax_lr = _axes(fig, "lr")
    assert ax_lr is not None
    (lr,) = _lines(ax_lr, "lr")
    assert set(_xy(lr)[1]) == {0.1, 0.05, 0.025, 0.0125}


# ----------------------------------------------------------------------------------------- 2-D runs


def test_rosenbrock_contour(gdrun):
    run = _one_run(gdrun, "rosenbrock", "--lr", "0.001", "--epochs", "300")
    fig = _figure([run])
    m = _metrics(run)
    ax = _axes(fig, "function")
    x, y = _xy(_lines(ax, "path")[0])
    np.testing.assert_array_equal(x, m["x1"])  # short: all of them
    np.testing.assert_array_equal(y, m["x2"])
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("x1", "x2")
    (start,), (end,) = _lines(ax, "start"), _lines(ax, "end")
    assert tuple(np.ravel(_xy(start))) == (m["x1"][0], m["x2"][0])
    assert tuple(np.ravel(_xy(end))) == (m["x1"][-1], m["x2"][-1])
    (minima,) = _lines(ax, "minima")
    assert tuple(np.ravel(_xy(minima))) == (1.0, 1.0)
    (xlo, xhi), (ylo, yhi) = ax.get_xlim(), ax.get_ylim()
    assert xlo < min(x.min(), 1.0) and xhi > max(x.max(), 1.0)  # the path and the minimum, with a margin
    assert ylo < min(y.min(), 1.0) and yhi > max(y.max(), 1.0)
    (contour,) = [c for c in ax.collections if c.get_gid() == "contour"]
    assert type(contour.norm).__name__ == "LogNorm"  # rosenbrock spans decades over the region
    levels = np.asarray(contour.levels)
    assert np.allclose(np.diff(np.log(levels)), np.log(levels[1] / levels[0]))  # log-spaced
    assert _axes(fig, "colorbar") is not None
    assert _axes(fig, "value").get_yscale() == "linear"  # 24 -> 3: under two decades
    assert _axes(fig, "grad").get_yscale() == "log"  # 233 -> 1.7


def test_a_quadratic_bowl_gets_linear_levels(gdrun):
    run = _one_run(gdrun, "sphere", "--dim", "2", "--init", "3", "--lr", "0.1", "--epochs", "20")
    ax = _axes(_figure([run]), "function")
    (contour,) = [c for c in ax.collections if c.get_gid() == "contour"]
    assert type(contour.norm).__name__ != "LogNorm"
    assert np.allclose(np.diff(contour.levels), contour.levels[1] - contour.levels[0])


def test_more_variables_curves_only(gdrun):
    run = _one_run(gdrun, "sphere", "--dim", "30", "--init", "1", "--lr", "0.1", "--epochs", "30")
    fig = _figure([run])
    assert _axes(fig, "function") is None
    assert not any(c.get_gid() == "contour" for ax in fig.axes for c in ax.collections)
    assert "30 variables: no contour" in _title(fig)
    assert _lines(_axes(fig, "value"), "value") and _lines(_axes(fig, "grad"), "grad")
    assert _axes(fig, "value").get_xlabel() == "step"
    with pytest.raises(GdrunError, match="--animate draws fits and runs of 1-D or 2-D functions"):
        plots.animation(plots.read([run]), run / "path.gif")


# ------------------------------------------------------------------------------------- diverged runs


def test_diverged_above_threshold_marks_the_last_row(gdrun):
    run = _one_run(gdrun, "x2", "--lr", "1.05", "--epochs", "2000")
    fig = _figure([run])
    m = _metrics(run)
    assert "diverged" in _title(fig) and "diverging" in _title(fig)
    ax_v = _axes(fig, "value")
    (mark,) = _lines(ax_v, "last_finite")
    assert _xy(mark)[0][0] == m["step"][-1]
    assert ax_v.get_yscale() == "log"
    plots.save(fig, run / "plot.png")  # huge but finite: still draws


def test_diverged_to_nan_is_clipped_to_finite_rows(gdrun):
    run = _one_run(gdrun, "log(x) + x**2", "--init", "x=1", "--lr", "1", "--epochs", "20")
    m = _metrics(run)
    assert not np.isfinite(m["value"][-1])
    fig = _figure([run])
    assert "last finite row" in _title(fig)
    ax = _axes(fig, "function")
    for line in _lines(ax, "path") + _lines(_axes(fig, "value"), "value"):
        assert np.isfinite(_xy(line)[1]).all()
    assert _xy(_lines(ax, "end")[0])[0][0] == m["x"][0]  # the only finite row
    plots.save(fig, run / "plot.png")


# ---------------------------------------------------------------------------------------- overlays


def test_comparison_on_one_contour(gdrun):
    r = gdrun("minimize", "rosenbrock", "--optimizer", "sgd,sgd:momentum=0.9,adam:lr=0.02", "--lr", "0.001",
              "--epochs", "400", "--quiet")  # fmt: skip
    dirs = r.run_dirs()
    assert len(dirs) == 3
    records = plots.read(dirs)
    fig = plots.figure(records)
    ax = _axes(fig, "function")
    paths = _lines(ax, "path")
    assert len(paths) == 3
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    variants = [label_of(rec) for rec in records]
    assert len(set(variants)) == 3 and all(v in legend for v in variants)  # one entry per variant
    assert sum(entry in variants for entry in legend) == 3
    for line, rec in zip(paths, records):
        x, y = _xy(line)
        np.testing.assert_array_equal(x, rec.metrics["x1"])
        np.testing.assert_array_equal(y, rec.metrics["x2"])
        assert line.get_label() == label_of(rec)
    values = _lines(_axes(fig, "value"), "value")
    assert len(values) == 3 and len({line.get_color() for line in values}) == 3
    assert len({line.get_color() for line in paths}) == 3
    out = plots.save(fig, r.runs_dir / "compare.png")
    _assert_not_blank(out, fig)


def test_overlay_same_labels_uses_names_and_different_functions_curves_only(gdrun):
    a = _one_run(gdrun, "x2", "--lr", "0.1", "--epochs", "10", "--init", "3", "--name", "from3")
    b = _one_run(gdrun, "x2", "--lr", "0.1", "--epochs", "10", "--init", "-2", "--name", "fromm2")
    fig = _figure([a, b])
    ax = _axes(fig, "function")  # one 1-D function: one curve, both runs on it
    assert len(_lines(ax, "curve")) == 1 and len(_lines(ax, "path")) == 2
    assert {line.get_label() for line in _lines(ax, "path")} == {"from3", "fromm2"}
    c = _one_run(gdrun, "rosenbrock", "--lr", "0.001", "--epochs", "20", "--name", "ros")
    fig = _figure([a, c])
    assert _axes(fig, "function") is None
    legend = [t.get_text() for t in _axes(fig, "value").get_legend().get_texts()]
    assert legend == ["from3", "ros"]
    assert "different functions" in _title(fig)


# -------------------------------------------------------------------------------------- sweep config


def test_sweep_config(gdrun, tmp_path):
    config = tmp_path / "ros.yaml"
    config.write_text(textwrap.dedent("""\
        function: rosenbrock
        epochs: 300
        lr: 0.001
        sweep:
          params:
            lr: [0.0005, 0.001]
        """))  # fmt: skip
    r = gdrun("sweep", str(config), "--runs-dir", str(tmp_path / "runs"), "--quiet")
    assert r.code == 0, r.err
    (sweep_dir,) = r.run_dirs()
    record = open_record(sweep_dir / "1")
    assert record.kind == "sweep config"
    fig = _figure([sweep_dir / "1"])
    ax = _axes(fig, "function")
    x, y = _xy(_lines(ax, "path")[0])
    np.testing.assert_array_equal(x, record.metrics["x1"])  # every 10th step, as recorded
    np.testing.assert_array_equal(y, record.metrics["x2"])
    assert list(record.metrics["step"][:3]) == [0, 10, 20]
    assert tuple(np.ravel(_xy(_lines(ax, "minima")[0]))) == (1.0, 1.0)  # the built-in's, though the summary lists none
    assert "config 1" in _title(fig)


# ---------------------------------------------------------------------------- decimation and speed


def _synthetic(count: int) -> RunRecord:
    """A 2-D rosenbrock run of ``count`` rows with known extremes, without running it."""
    steps = np.arange(count, dtype=float)
    t = steps / count
    x1 = -1.2 + 2.2 * t + 0.05 * np.sin(40 * np.pi * t)
    x2 = 1.0 - 0.5 * np.sin(np.pi * t)
    x1[count // 3] = -1.4  # an isolated extreme
    x2[2 * count // 3] = 1.3
    value = (1 - x1) ** 2 + 100 * (x2 - x1**2) ** 2
    metrics = {"step": steps, "x1": x1, "x2": x2, "value": value, "grad_norm": value + 1.0, "lr": np.full(count, 1e-3)}
    config = {"function": "rosenbrock", "optimizer": "sgd", "lr": 0.001}
    summary = {"status": "max_epochs", "kind": "minimize", "function": "rosenbrock", "name": "synthetic",
               "known_minima": [{"point": [1.0, 1.0], "value": 0.0}]}  # fmt: skip
    return RunRecord(Path("synthetic"), config, summary, metrics)


def test_long_runs_are_decimated(tmp_path):
    count = 100_000
    record = _synthetic(count)
    fig = plots.figure([record])  # its speed is measured by benchmarks/bench_plot.py, not asserted here
    plots.save(fig, tmp_path / "long.png")
    x, y = _xy(_lines(_axes(fig, "function"), "path")[0])
    assert 100 < len(x) <= 5000  # bounded
    m = record.metrics
    assert (x[0], y[0]) == (m["x1"][0], m["x2"][0]) and (x[-1], y[-1]) == (m["x1"][-1], m["x2"][-1])
    assert x.min() == -1.4 and y.max() == 1.3  # the extremes stay
    assert x.max() == m["x1"].max() and y.min() == m["x2"].min()
    steps = _xy(_lines(_axes(fig, "value"), "value")[0])[0]
    assert len(steps) <= 5000 and steps[0] == 0 and steps[-1] == count - 1
    _assert_not_blank(tmp_path / "long.png", fig)


# ------------------------------------------------------------------------------ GIF, PNG, no torch


def test_animation_gif(gdrun, tmp_path):
    run = _one_run(gdrun, "rosenbrock", "--lr", "0.001", "--epochs", "40")
    out = plots.animation(plots.read([run]), tmp_path / "path.gif")
    from PIL import Image

    with Image.open(out) as im:
        assert im.format == "GIF" and im.n_frames > 5
        assert im.n_frames <= 100
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp file left
    one_d = _one_run(gdrun, "x2", "--lr", "0.3", "--epochs", "10")
    with Image.open(plots.animation(plots.read([one_d]), tmp_path / "x2.gif")) as im:
        assert im.n_frames == 11


def _assert_not_blank(path: Path, fig) -> None:
    from PIL import Image

    with Image.open(path) as im:
        width, height = fig.get_size_inches() * fig.get_dpi()
        assert im.size == (round(width), round(height))
        assert len(im.convert("RGB").getcolors(maxcolors=1 << 20) or []) > 50


def test_png_is_not_blank(gdrun):
    run = _one_run(gdrun, "x2", "--lr", "1", "--epochs", "10")
    fig = _figure([run])
    _assert_not_blank(plots.save(fig, run / "plot.png"), fig)


def test_plotting_never_imports_torch(gdrun):
    run = _one_run(gdrun, "rosenbrock", "--lr", "0.001", "--epochs", "20")
    code = textwrap.dedent(f"""\
        import sys
        from pathlib import Path
        import gdrun.plots as plots
        records = plots.read([Path({str(run)!r})])
        plots.save(plots.figure(records), Path({str(run / 'p.png')!r}))
        plots.animation(records, Path({str(run / 'p.gif')!r}))
        assert "torch" not in sys.modules, "torch was imported"
        print("ok")
        """)  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
