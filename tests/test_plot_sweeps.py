"""gdrun.plots for a sweep directory: the points, the diverged configs, the scales, the predicted
bound and the heat map, checked through matplotlib's objects against results.csv."""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from gdrun import plots  # noqa: E402
from gdrun.plots.common import STATUS_COLORS  # noqa: E402
from gdrun.plots.sweeps import EDGE_Y  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
X2_SWEEP = REPO / "configs" / "sweep_x2_which_lr_converges.yaml"
X2_RUN = REPO / "configs" / "e1_x2_lr0.1_converges.yaml"
RANDOM = """\
function: x2
optimizer: sgd
epochs: 60
init: 7.5
sweep:
  kind: random
  n: 120
  seed: 3
  params:
    lr: {loguniform: [0.01, 4]}
    optimizer_options.momentum: {uniform: [0, 0.9]}
"""


def make_sweep(gdrun, tmp_path: Path, config: Path, *args: str) -> Path:
    result = gdrun("sweep", str(config), *args, "--set", "expect=null", "--runs-dir", str(tmp_path / "runs"), "-q")
    assert result.code == 0, result.err
    (found,) = sorted((tmp_path / "runs").glob("sweep-*"))
    return found


def rows_of(sweep_dir: Path) -> list[dict[str, str]]:
    with open(sweep_dir / "results.csv", newline="") as f:
        return sorted(csv.DictReader(f), key=lambda r: int(r["id"]))


def draw(sweep_dir: Path):
    return plots.figure(plots.read([sweep_dir]))


def by_gid(fig, prefix: str) -> dict[str, object]:
    return {a.get_gid(): a for ax in fig.axes for a in ax.get_children() if str(a.get_gid() or "").startswith(prefix)}


def legend_texts(fig) -> list[str]:
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None] + list(fig.legends)
    return [t.get_text() for legend in legends for t in legend.get_texts()]


def one_number_sweep(gdrun, tmp_path: Path) -> Path:
    return make_sweep(gdrun, tmp_path, X2_SWEEP, "-p", "lr=logspace(-3,0.3,20)", "--explain")


def heat_map_sweep(gdrun, tmp_path: Path) -> Path:
    return make_sweep(gdrun, tmp_path, X2_SWEEP, "-p", "lr=logspace(-2,0.6,12)", "-p",
                      "optimizer_options.momentum=0,0.3,0.6,0.9", "--set", "epochs=60", "--explain")  # fmt: skip


# ---------------------------------------------------------------------------- one swept number


def test_one_number_points_statuses_scales_bound_and_regimes(gdrun, tmp_path):
    sweep_dir = one_number_sweep(gdrun, tmp_path)
    rows = rows_of(sweep_dir)
    fig = draw(sweep_dir)
    (ax,) = [a for a in fig.axes]
    series = by_gid(fig, "status:")
    statuses = {r["status"] for r in rows}
    assert "diverged" in statuses and "converged" in statuses and set(series) == {f"status:{s}" for s in statuses}
    for status in statuses - {"diverged"}:
        mine = [r for r in rows if r["status"] == status]
        offsets = np.asarray(series[f"status:{status}"].get_offsets())
        assert offsets[:, 0].tolist() == [float(r["lr"]) for r in mine]
        assert offsets[:, 1].tolist() == [float(r["value"]) for r in mine]
        assert np.allclose(series[f"status:{status}"].get_facecolor()[0][:3], _rgb(STATUS_COLORS[status]))
    # the diverged configs, exactly: red crosses at the top edge (y in axes coordinates)
    crosses = series["status:diverged"]
    offsets = np.asarray(crosses.get_offsets())
    assert offsets[:, 0].tolist() == [float(r["lr"]) for r in rows if r["status"] == "diverged"]
    assert np.all(offsets[:, 1] == EDGE_Y)
    assert np.allclose(crosses.get_edgecolor()[0][:3], _rgb(STATUS_COLORS["diverged"]))
    low, high = ax.get_xlim()
    assert low < min(offsets[:, 0]) and max(offsets[:, 0]) < high  # on the axes, not outside them
    # scales: lr is log-spaced over 3.3 decades, the finite values span many
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    # the predicted bound: lr = 2/L = 1 on x^2
    bound = by_gid(fig, "bound")["bound"]
    assert list(bound.get_xdata()) == [1.0, 1.0]
    assert "2/L = 1" in bound.get_label()
    texts = legend_texts(fig)
    assert any(t.startswith("converged (") for t in texts) and any(t.startswith("diverged (") for t in texts)
    assert any(t.startswith("predicted bound lr = 2/L = 1") for t in texts)
    regimes = by_gid(fig, "regime:")
    assert {"regime:crawling", "regime:converging", "regime:diverging"} <= set(regimes)
    diverging = np.asarray(regimes["regime:diverging"].get_offsets())[:, 0]
    assert diverging.tolist() == [float(r["lr"]) for r in rows if r["regime"] == "diverging"]
    assert "20 configs" in fig.get_suptitle() and "sweep_x2_which_lr_converges" in fig.get_suptitle()
    assert "2 diverged" in fig.get_suptitle() and "x2" in fig.get_suptitle()
    out = plots.save(fig, tmp_path / "one.png")
    assert _colours(out) > 20


def test_linear_spacing_keeps_a_linear_axis_and_no_bound_without_diagnostics(gdrun, tmp_path):
    sweep_dir = make_sweep(gdrun, tmp_path, X2_SWEEP, "--set", "epochs=200")  # its own lr: linspace(0.05, 2, 40)
    fig = draw(sweep_dir)
    ax = fig.axes[0]
    assert ax.get_xscale() == "linear"
    assert not by_gid(fig, "bound") and not by_gid(fig, "regime:")
    diverged = [float(r["lr"]) for r in rows_of(sweep_dir) if r["status"] == "diverged"]
    assert np.asarray(by_gid(fig, "status:diverged")["status:diverged"].get_offsets())[:, 0].tolist() == diverged


def test_partial_results_draw_what_is_there_and_say_n_of_m(gdrun, tmp_path):
    sweep_dir = one_number_sweep(gdrun, tmp_path)
    copy = tmp_path / "partial" / sweep_dir.name
    shutil.copytree(sweep_dir, copy)
    lines = (copy / "results.csv").read_text().splitlines(keepends=True)
    (copy / "results.csv").write_text("".join(lines[:8]) + lines[8][:20])  # 7 rows, and one cut short
    fig = draw(copy)
    assert "7 of 20 configs" in fig.get_suptitle()
    kept = rows_of(sweep_dir)[:7]
    drawn = np.concatenate([np.asarray(c.get_offsets())[:, 0] for c in by_gid(fig, "status:").values()])
    assert sorted(drawn.tolist()) == sorted(float(r["lr"]) for r in kept)


def test_several_configs_per_value_are_grouped(gdrun, tmp_path):
    by_optimizer = make_sweep(gdrun, tmp_path / "a", X2_SWEEP, "-p", "lr=logspace(-3,0.3,8)", "-p", "optimizer=sgd,adam",
                              "--set", "epochs=100", "--explain")  # fmt: skip
    fig = draw(by_optimizer)
    lines = {line.get_label(): line for line in fig.axes[0].get_lines()}
    assert {"sgd", "adam"} <= set(lines)
    rows = rows_of(by_optimizer)
    sgd = [r for r in rows if r["optimizer"] == "sgd" and r["status"] != "diverged"]
    assert lines["sgd"].get_xdata().tolist() == [float(r["lr"]) for r in sgd]
    assert any(t.startswith("predicted bound (sgd) lr = 2/L = 1") for t in legend_texts(fig))  # adam has none
    assert len(rows) == 16 and "16 configs" in fig.get_suptitle()

    by_seed = make_sweep(gdrun, tmp_path / "b", X2_SWEEP, "-p", "lr=logspace(-3,-0.5,6)", "-p", "seed=0,1,2",
                         "--set", "init=null", "--set", "init_range=[-5,5]", "--set", "epochs=50")  # fmt: skip
    fig = draw(by_seed)
    ax = fig.axes[0]
    (median,) = [line for line in ax.get_lines() if line.get_label().startswith("median")]
    rows = rows_of(by_seed)
    lrs = sorted({float(r["lr"]) for r in rows})
    assert median.get_xdata().tolist() == lrs
    first = sorted(float(r["value"]) for r in rows if float(r["lr"]) == lrs[0])
    assert median.get_ydata()[0] == pytest.approx(first[1])  # the median of three seeds
    assert ax.collections and any(type(c).__name__ in ("FillBetweenPolyCollection", "PolyCollection") for c in ax.collections)


# ---------------------------------------------------------------------------- two swept numbers


def test_heat_map_cells_diverged_region_and_bound(gdrun, tmp_path):
    sweep_dir = heat_map_sweep(gdrun, tmp_path)
    rows = rows_of(sweep_dir)
    fig = draw(sweep_dir)
    meshes = by_gid(fig, "")
    values, diverged = meshes["heatmap"], meshes["diverged-cells"]
    ax = values.axes
    lrs = sorted({float(r["lr"]) for r in rows})
    mus = sorted({float(r["optimizer_options.momentum"]) for r in rows})
    z = values.get_array().reshape(len(mus), len(lrs))
    marks = diverged.get_array().reshape(len(mus), len(lrs))
    expect_diverged = np.zeros((len(mus), len(lrs)), bool)
    for r in rows:
        i, j = mus.index(float(r["optimizer_options.momentum"])), lrs.index(float(r["lr"]))
        if r["status"] == "diverged":
            expect_diverged[i, j] = True
            assert z.mask[i, j]
        else:
            assert z[i, j] == float(r["value"])
    assert expect_diverged.any()
    assert np.array_equal(~np.ma.getmaskarray(marks), expect_diverged)  # exactly the diverged configs
    assert np.allclose(diverged.cmap(0.0)[:3], _rgb(STATUS_COLORS["diverged"]))
    assert ax.get_xscale() == "log" and ax.get_yscale() == "linear"
    assert type(values.norm).__name__ == "LogNorm"
    # the predicted bound: 2(1 + mu)/L = 1 + mu on x^2, for each momentum
    bound = by_gid(fig, "bound")["bound"]
    assert np.allclose(bound.get_ydata(), mus) and np.allclose(bound.get_xdata(), [1 + m for m in mus])
    texts = legend_texts(fig)
    assert f"diverged ({int(expect_diverged.sum())} cells)" in texts
    assert any(t.startswith("predicted bound lr = 2(1+mu)/L") for t in texts)
    assert "48 configs" in fig.get_suptitle()
    out = plots.save(fig, tmp_path / "heat.png")
    assert _colours(out) > 20

    # partial: the cells with no row yet are masked in both meshes, and the title says so
    copy = tmp_path / "partial" / sweep_dir.name
    shutil.copytree(sweep_dir, copy)
    lines = (copy / "results.csv").read_text().splitlines(keepends=True)
    kept = [lines[0]] + [line for line in lines[1:] if int(line.split(",")[0]) % 3 != 0]
    (copy / "results.csv").write_text("".join(kept))
    fig = draw(copy)
    assert "32 of 48 configs" in fig.get_suptitle()
    meshes = by_gid(fig, "")
    z = meshes["heatmap"].get_array().reshape(len(mus), len(lrs))
    marks = meshes["diverged-cells"].get_array().reshape(len(mus), len(lrs))
    for k in range(0, 48, 3):  # grid order: lr slowest, momentum fastest
        i, j = k % len(mus), k // len(mus)
        assert z.mask[i, j] and np.ma.getmaskarray(marks)[i, j]
    assert any(t.startswith("no result yet (16 cells)") for t in legend_texts(fig))


def test_random_sweep_over_two_numbers_is_a_scatter(gdrun, tmp_path):
    config = tmp_path / "random.yaml"
    config.write_text(RANDOM)
    sweep_dir = make_sweep(gdrun, tmp_path, config, "--explain")
    rows = rows_of(sweep_dir)
    fig = draw(sweep_dir)
    points = by_gid(fig, "values")["values"]
    good = [r for r in rows if r["status"] != "diverged"]
    offsets = np.asarray(points.get_offsets())
    assert offsets[:, 0].tolist() == [float(r["lr"]) for r in good]
    assert offsets[:, 1].tolist() == [float(r["optimizer_options.momentum"]) for r in good]
    assert np.asarray(points.get_array()).tolist() == [float(r["value"]) for r in good]
    bad = [float(r["lr"]) for r in rows if r["status"] == "diverged"]
    crosses = by_gid(fig, "status:diverged")
    assert (np.asarray(crosses["status:diverged"].get_offsets())[:, 0].tolist() if crosses else []) == bad
    assert points.axes.get_xscale() == "log" and points.axes.get_yscale() == "linear"
    bound = by_gid(fig, "bound")["bound"]
    assert np.allclose(bound.get_xdata(), 1 + np.asarray(bound.get_ydata()))
    assert "random over lr, optimizer_options.momentum" in fig.get_suptitle()


def test_three_swept_numbers_draw_the_best_two_with_a_note(gdrun, tmp_path):
    sweep_dir = make_sweep(gdrun, tmp_path, X2_SWEEP, "-p", "lr=logspace(-2,0.5,6)", "-p",
                           "optimizer_options.momentum=0,0.5", "-p", "init=1,5,7", "--set", "epochs=40")  # fmt: skip
    fig = draw(sweep_dir)
    values = by_gid(fig, "heatmap")["heatmap"]
    assert values.get_array().shape in ((3, 6), (18,))  # init (3 values) beats momentum (2) as the second axis
    assert values.axes.get_ylabel() == "init" and values.axes.get_xlabel() == "lr"
    assert "median over optimizer_options.momentum (2 values)" in fig.get_suptitle()


# ---------------------------------------------------------------------------- no swept number


def test_optimizer_only_sweep_is_a_bar_chart(gdrun, tmp_path):
    sweep_dir = make_sweep(gdrun, tmp_path, X2_RUN, "-p", "optimizer=sgd,adam,rmsprop", "--set", "epochs=30")
    rows = rows_of(sweep_dir)
    fig = draw(sweep_dir)
    ax = fig.axes[0]
    bars = [p for p in ax.patches if str(p.get_gid() or "").startswith("status:")]
    assert len(bars) == 3
    tops = sorted(p.get_y() + p.get_height() for p in bars)
    assert tops == pytest.approx(sorted(float(r["value"]) for r in rows))
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels == ["0: sgd", "1: adam", "2: rmsprop"]
    assert "3 configs" in fig.get_suptitle()
    assert _colours(plots.save(fig, tmp_path / "bars.png")) > 10


# ---------------------------------------------------------------------------- speed, and no torch


def test_ten_thousand_configs_make_one_heat_map(gdrun, tmp_path):
    sweep_dir = make_sweep(gdrun, tmp_path, X2_SWEEP, "-p", "lr=logspace(-4,0.5,100)", "-p", "init=linspace(-5,5,100)",
                           "--set", "epochs=5")  # fmt: skip
    records = plots.read([sweep_dir])
    plots.save(plots.figure(records), tmp_path / "warm.png")  # fonts and caches
    fig = plots.figure(records)  # its speed is measured by benchmarks/bench_plot.py, not asserted here
    plots.save(fig, tmp_path / "big.png")
    assert by_gid(fig, "heatmap")["heatmap"].get_array().size == 10_000
    assert "10000 configs" in fig.get_suptitle()


def test_drawing_a_sweep_never_imports_torch(gdrun, tmp_path):
    sweep_dir = one_number_sweep(gdrun, tmp_path)
    code = ("import sys; from pathlib import Path; from gdrun import plots; "
            f"plots.save(plots.figure(plots.read([Path({str(sweep_dir)!r})])), Path({str(tmp_path / 'p.png')!r})); "
            "assert 'torch' not in sys.modules, 'torch was imported'")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


# ---------------------------------------------------------------------------- helpers


def _rgb(color: str) -> tuple[float, float, float]:
    from matplotlib.colors import to_rgb

    return to_rgb(color)


def _colours(png: Path) -> int:
    from PIL import Image

    image = Image.open(png).convert("RGB")
    assert image.size[0] >= 400 and image.size[1] >= 300
    return len(image.getcolors(maxcolors=1 << 20) or [])
