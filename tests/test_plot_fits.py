"""gdrun.plots.fits: the picture and the GIF of a fit, checked through matplotlib's objects.

The seed configs (E3, E4, E5) run once per module through the real CLI entry point, in-process;
the figures are built from the run directories with gdrun.plots.read + gdrun.plots.figure, as
``gdrun plot`` does. Every artist looked for carries a gid (see gdrun/plots/fits.py).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import gdrun.plots as plots
from gdrun.cli import main
from gdrun.runs import read_metrics

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"


def cli(*argv: str) -> int:
    with pytest.raises(SystemExit) as exit_info:
        main(list(argv))
    return exit_info.value.code


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """name -> run directory of the seed configs (E3 on numpy: the frozen parameters are what
    matters here, and torch's import would double the module's time)."""
    root = tmp_path_factory.mktemp("runs")
    out = {}
    for name, extra in [("e3_linear_fit_frozen_params", ["--set", "backend=numpy", "--set", "dtype=float64"]),
                        ("e4_fit_w_batch_gd", []), ("e5_parabola_minibatch_16", []),
                        ("e5_parabola_per_sample_sgd", [])]:  # fmt: skip
        assert cli("run", str(CONFIGS / f"{name}.yaml"), "--runs-dir", str(root / name), "--quiet", *extra) == 0
        (out[name],) = [p for p in (root / name).iterdir() if p.is_dir()]
    return out


def picture(path: Path, every: int | None = None):
    records = plots.read([path])
    return records[0], plots.figure(records, every)


def by_gid(ax, prefix: str) -> list:
    return [a for a in ax.get_children() if (a.get_gid() or "").startswith(prefix)]


def one(ax, gid: str):
    (artist,) = [a for a in ax.get_children() if a.get_gid() == gid]
    return artist


def panels(fig):
    """(left, right, twin lr axis or None)."""
    axes = fig.get_axes()
    left = next(ax for ax in axes if by_gid(ax, "data") or by_gid(ax, "identity"))
    right = next(ax for ax in axes if by_gid(ax, "loss"))
    twins = [ax for ax in axes if by_gid(ax, "lr")]
    return left, right, twins[0] if twins else None


def curves(ax) -> list[tuple[int, object]]:
    """The curves between before and after: (epoch, Line2D), in drawing order."""
    return [(int(line.get_gid().split(":")[1]), line) for line in by_gid(ax, "epoch:")]


def darkness(color) -> float:
    from matplotlib.colors import to_rgb

    r, g, b = to_rgb(color)
    return 1.0 - (0.299 * r + 0.587 * g + 0.114 * b)


# ---------------------------------------------------------------------------- one input


def test_e3_data_points_and_frozen_parameters(runs):
    record, fig = picture(runs["e3_linear_fit_frozen_params"])
    left, _, _ = panels(fig)
    data = one(left, "data")
    assert np.array_equal(data.get_xdata(), [1, 2, 3, 4, 5])
    assert np.array_equal(data.get_ydata(), [3, 5, 7, 9, 11])
    # before: a = 1, c = 0 from the first row, b = d = 0.5 frozen: 1.5 x + 0.5
    before = one(left, "before")
    x = np.asarray(before.get_xdata())
    assert x[0] == 1 and x[-1] == 5 and len(x) >= 100
    assert np.allclose(before.get_ydata(), 1.5 * x + 0.5)
    # after: the last row's a and c, with b and d at 0.5 (never in metrics.csv)
    a, c = record.metrics["a"][-1], record.metrics["c"][-1]
    assert "b" not in record.metrics and "d" not in record.metrics
    assert np.allclose(one(left, "after").get_ydata(), (a + 0.5) * x + c + 0.5)
    assert np.allclose(one(left, "after").get_ydata(), 2 * x + 1, atol=1e-3)  # y = 2x + 1
    assert "b = 0.5, d = 0.5 frozen" in left.get_title()
    assert not by_gid(left, "offframe")  # the start is close: every curve is framed
    # converged long before epoch 1000: the legend says the curves in between lie on the final one
    assert [e for e, _ in curves(left)] == [1000, 2000, 3000, 4000]
    assert one(left, "hidden").get_label() == "epochs 1000\u20134000: on the final curve"


def test_e4_final_curve_is_the_fitted_model_and_before_uses_the_init(runs):
    record, fig = picture(runs["e4_fit_w_batch_gd"])
    left, _, _ = panels(fig)
    after, before = one(left, "after"), one(left, "before")
    x = np.asarray(after.get_xdata())
    assert record.summary["params"]["w"] == pytest.approx(1.99994, abs=5e-6)
    assert np.allclose(after.get_ydata(), record.summary["params"]["w"] * x)
    assert np.allclose(after.get_ydata(), 1.99994 * x, atol=1e-5 * 3)
    assert np.allclose(before.get_ydata(), 1.0 * x)  # init w = 1
    assert before.get_linestyle() == "--" and after.get_linestyle() == "-"
    assert "after (epoch 100)" in after.get_label() and "before (epoch 0)" in before.get_label()


def test_default_curves_are_round_epochs_fading_to_dark(runs):
    _, fig = picture(runs["e4_fit_w_batch_gd"])
    left, right, _ = panels(fig)
    drawn = curves(left)
    assert [e for e, _ in drawn] == [20, 40, 60, 80]  # with 0 (before) and 100 (after): 6 curves
    for e, line in drawn:
        w = read_metrics(runs["e4_fit_w_batch_gd"] / "metrics.csv")["w"][e]
        assert np.allclose(line.get_ydata(), w * np.asarray(line.get_xdata()))
    dark = [darkness(line.get_color()) for _, line in drawn] + [darkness(one(left, "after").get_color())]
    assert all(a < b for a, b in zip(dark, dark[1:]))
    # the loss panel marks the same epochs, first and last included
    marks = one(right, "loss-marks").get_offsets()
    assert list(np.asarray(marks)[:, 0]) == [0, 20, 40, 60, 80, 100]
    # a colorbar says which epochs
    assert any(ax.get_ylabel() == "epoch of the curve" for ax in fig.get_axes())


@pytest.mark.parametrize("every, expected", [(10, list(range(10, 100, 10))), (30, [30, 60, 90]), (100, [])])
def test_every_n_epochs(runs, every, expected):
    _, fig = picture(runs["e4_fit_w_batch_gd"], every)
    left, _, _ = panels(fig)
    assert [e for e, _ in curves(left)] == expected


def test_every_on_a_run_that_stopped_early_keeps_the_last_epoch(runs):
    _, fig = picture(runs["e5_parabola_minibatch_16"], 4)  # converged at epoch 11
    left, _, _ = panels(fig)
    assert [e for e, _ in curves(left)] == [4, 8]
    assert "epoch 11" in one(left, "after").get_label()


def test_e5_frame_holds_the_data_not_the_wild_start(runs):
    for name in ("e5_parabola_per_sample_sgd", "e5_parabola_minibatch_16"):
        record, fig = picture(runs[name])
        left, _, _ = panels(fig)
        y = np.asarray(one(left, "data").get_ydata())
        assert y.min() == pytest.approx(1.0, abs=0.01) and y.max() == pytest.approx(9.0)
        lo, hi = left.get_ylim()
        assert lo <= y.min() and hi >= y.max()
        assert hi - lo < 2 * (y.max() - y.min())  # not stretched to the start at -2400
        before = np.asarray(one(left, "before").get_ydata())
        assert before.min() < -2000  # the init a = -1.83, b = -131.7, c = -2400 is drawn...
        note = one(left, "offframe:below")  # ... and said to leave the frame
        assert re.match(r"epochs? 0\b", note.get_text()) and "below the frame" in note.get_text()
        x = np.asarray(one(left, "data").get_xdata())
        assert len(x) == 800 and x[0] == -1 and x[-1] == pytest.approx(399 / 400)


# ---------------------------------------------------------------------------- the loss panel


def test_loss_curve_equals_metrics_with_log_scale(runs):
    for name in ("e4_fit_w_batch_gd", "e5_parabola_per_sample_sgd"):
        _, fig = picture(runs[name])
        _, right, _ = panels(fig)
        metrics = read_metrics(runs[name] / "metrics.csv")
        loss = one(right, "loss")
        assert np.array_equal(loss.get_xdata(), metrics["epoch"])
        assert np.array_equal(loss.get_ydata(), metrics["value"])
        assert right.get_yscale() == "log"


def test_lr_twin_axis_only_when_lr_changes(runs):
    _, fig = picture(runs["e5_parabola_per_sample_sgd"])
    _, _, twin = panels(fig)
    assert twin is not None
    lr = one(twin, "lr")
    halvings = np.unique(np.round(np.log2(0.25 / np.asarray(lr.get_ydata()))))
    assert list(halvings) == list(range(11))  # 0.25 halved at 10 milestones
    assert twin.get_yscale() == "log"
    _, fig = picture(runs["e4_fit_w_batch_gd"])
    _, right, twin = panels(fig)
    assert twin is None and len(fig.get_axes()) == 3  # left, its colorbar, the loss


def test_a_long_fit_is_decimated_and_keeps_first_and_last(gdrun, tmp_path):
    result = gdrun("fit", "w*x + c", "--x", "1,2,3,4", "--y", "3,5,7,9", "--init", "w=0,c=0", "--lr", "0.001",
                   "--epochs", "10000", "--runs-dir", str(tmp_path / "runs"), "--quiet")  # fmt: skip
    assert result.code == 0
    (path,) = result.run_dirs()
    metrics = read_metrics(path / "metrics.csv")
    assert len(metrics["epoch"]) == 10001
    records = plots.read([path])  # its speed is measured by benchmarks/bench_plot.py, not asserted here
    fig = plots.figure(records)
    plots.save(fig, tmp_path / "long.png")
    left, right, twin = panels(fig)
    loss = one(right, "loss")
    x, y = np.asarray(loss.get_xdata()), np.asarray(loss.get_ydata())
    assert len(x) <= 4100 and x[0] == 0 and x[-1] == 10000
    assert y[0] == metrics["value"][0] and y[-1] == metrics["value"][-1]
    assert np.array_equal(y, metrics["value"][x.astype(int)])
    assert [e for e, _ in curves(left)] == [2000, 4000, 6000, 8000]
    assert twin is None


def test_flat_loss_stays_linear(gdrun, tmp_path):
    result = gdrun("fit", "w*x", "--x", "1,2,3", "--y", "2,4,6", "--init", "w=1.9", "--lr", "0.0001", "--epochs", "5",
                   "--runs-dir", str(tmp_path / "runs"), "--quiet")  # fmt: skip
    (path,) = result.run_dirs()
    _, fig = picture(path)
    _, right, _ = panels(fig)
    assert right.get_yscale() == "linear"


# ---------------------------------------------------------------------------- several inputs


def test_several_inputs_predicted_against_target(gdrun, tmp_path):
    result = gdrun("fit", "a*x + b*z", "--x", "1,2,3,4", "--col", "z=1,0,2,1", "--y", "2,4,7,9", "--init", "a=0,b=0",
                   "--lr", "0.02", "--epochs", "300", "--runs-dir", str(tmp_path / "runs"), "--quiet")  # fmt: skip
    assert result.code == 0
    (path,) = result.run_dirs()
    record, fig = picture(path)
    left, right, _ = panels(fig)
    before, after, identity = one(left, "before"), one(left, "after"), one(left, "identity")
    target = np.array([2, 4, 7, 9.0])
    assert np.array_equal(before.get_xdata(), target) and np.array_equal(after.get_xdata(), target)
    assert np.allclose(before.get_ydata(), 0.0)  # a = b = 0
    a, b = record.summary["params"]["a"], record.summary["params"]["b"]
    assert np.allclose(after.get_ydata(), a * np.array([1, 2, 3, 4]) + b * np.array([1, 0, 2, 1]))
    ix, iy = identity.get_xdata(), identity.get_ydata()
    assert np.array_equal(ix, iy)
    assert "predicted" in left.get_ylabel() and "target" in left.get_xlabel()
    assert one(right, "loss") is not None
    assert "a*x + b*z" in fig.get_suptitle()


# ---------------------------------------------------------------------------- title, PNG, GIF, torch


def test_title_names_model_optimizer_status_r2_and_regime(runs):
    record, fig = picture(runs["e5_parabola_minibatch_16"])
    title = fig.get_suptitle()
    for part in ("a*x**2 + b*x + c", "sgd", "lr=0.25", "multistep", "converged", "R\u00b2 = 1.0000"):
        assert part in title, part
    regime = record.summary["diagnostics"]["regime"]
    assert regime and title.endswith(regime)


def test_png_is_not_blank(runs, tmp_path):
    from PIL import Image

    _, fig = picture(runs["e3_linear_fit_frozen_params"])
    out = plots.save(fig, tmp_path / "e3.png")
    with Image.open(out) as image:
        assert image.size[0] >= 800 and image.size[1] >= 300
        colors = image.convert("RGB").getcolors(maxcolors=1 << 20)
    assert len(colors) > 50


def test_gif_of_a_fit(runs, tmp_path):
    from PIL import Image

    records = plots.read([runs["e5_parabola_minibatch_16"]])
    out = plots.animation(records, tmp_path / "e5.gif")
    assert out == tmp_path / "e5.gif" and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    with Image.open(out) as image:
        assert image.format == "GIF" and image.n_frames >= 10  # 12 epochs (identical pause frames merge)
        assert image.size[0] >= 600
        first = np.asarray(image.convert("RGB"))
        image.seek(image.n_frames - 1)
        last = np.asarray(image.convert("RGB"))
    assert (first != last).any()


def test_gif_frames_are_capped_and_every_thins_them(runs, tmp_path):
    from PIL import Image

    from gdrun.plots.fits import MAX_FRAMES, _frame_rows

    epochs = np.arange(10001)
    rows = _frame_rows(epochs, None)
    assert len(rows) <= MAX_FRAMES and rows[0] == 0 and rows[-1] == 10000
    assert list(_frame_rows(np.arange(101), 25)) == [0, 25, 50, 75, 100]
    records = plots.read([runs["e4_fit_w_batch_gd"]])
    out = plots.animation(records, tmp_path / "e4.gif", every=25)
    with Image.open(out) as image:
        assert 2 <= image.n_frames <= 5


def test_several_inputs_gif(gdrun, tmp_path):
    from PIL import Image

    result = gdrun("fit", "a*x + b*z", "--x", "1,2,3,4", "--col", "z=1,0,2,1", "--y", "2,4,7,9", "--init", "a=0,b=0",
                   "--lr", "0.02", "--epochs", "20", "--runs-dir", str(tmp_path / "runs"), "--quiet")  # fmt: skip
    (path,) = result.run_dirs()
    out = plots.animation(plots.read([path]), tmp_path / "multi.gif")
    with Image.open(out) as image:
        assert image.n_frames > 5


def test_a_torch_run_is_drawn_without_importing_torch(runs, tmp_path):
    """E3's record says backend torch; drawing it rebuilds the model with numpy only."""
    import shutil

    import yaml

    copy = tmp_path / "e3-torch"
    shutil.copytree(runs["e3_linear_fit_frozen_params"], copy)
    config = yaml.safe_load((copy / "config.yaml").read_text())
    config.update(backend="torch", dtype="float32")
    (copy / "config.yaml").write_text(yaml.safe_dump(config))
    code = ("import sys; from pathlib import Path; import gdrun.plots as p; r = p.read([Path(sys.argv[1])]); "
            "p.save(p.figure(r), Path(sys.argv[2])); assert 'torch' not in sys.modules, 'torch imported'")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code, str(copy), str(tmp_path / "t.png")], capture_output=True, text=True,
                          timeout=60, cwd=REPO)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "t.png").stat().st_size > 10_000


def test_a_diverged_fit_frames_the_data_and_notes_the_curves_that_left(gdrun, tmp_path):
    result = gdrun("fit", "w*x", "--x", "1,2,3", "--y", "2,4,6", "--init", "w=0", "--lr", "1", "--epochs", "400",
                   "--runs-dir", str(tmp_path / "runs"), "--quiet")  # fmt: skip
    assert result.code == 3
    (path,) = result.run_dirs()
    record, fig = picture(path)
    assert record.summary["status"] == "diverged" and "diverged" in fig.get_suptitle()
    left, _, _ = panels(fig)
    lo, hi = left.get_ylim()
    assert lo < 2 and hi > 6 and hi - lo < 10  # the data, not the final w*x with |w| ~ 1e50
    assert by_gid(left, "offframe")
