"""gdrun plot and --plot from the command line: where pictures go, what is said, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _png_ok(path: Path) -> None:
    from PIL import Image

    image = Image.open(path)
    assert image.format == "PNG" and image.size[0] >= 400 and image.size[1] >= 200
    colours = image.convert("RGB").getcolors(maxcolors=1 << 20)
    assert colours is None or len(colours) > 20, "the picture is (nearly) blank"


def _run(gdrun, tmp_path, *args: str) -> Path:
    r = gdrun("minimize", *args, "--runs-dir", str(tmp_path / "runs"), "--quiet")
    assert r.code in (0, 3), r.err
    return max((tmp_path / "runs").iterdir(), key=lambda p: p.stat().st_mtime_ns)


def test_plot_a_run_writes_plot_png_in_its_directory(gdrun, tmp_path):
    run = _run(gdrun, tmp_path, "x2", "--lr", "1", "--epochs", "10")
    r = gdrun("plot", str(run))
    assert r.code == 0, r.err
    assert r.out.strip() == f"plot: {run / 'plot.png'}"
    _png_ok(run / "plot.png")
    out = tmp_path / "elsewhere.png"
    r = gdrun("plot", str(run), "-o", str(out))
    assert r.code == 0 and r.out.strip() == f"plot: {out}"
    _png_ok(out)


def test_plot_flag_on_minimize_fit_run_and_sweep(gdrun, tmp_path):
    r = gdrun("minimize", "booth", "--lr", "0.05", "--epochs", "50", "--plot", "--runs-dir", str(tmp_path / "a"))
    assert r.code == 0, r.err
    (run,) = (tmp_path / "a").iterdir()
    assert f"plot: {run / 'plot.png'}" in r.out
    _png_ok(run / "plot.png")
    r = gdrun("fit", "w*x", "--x", "1,2,3", "--y", "2,4,6", "--lr", "0.01", "--plot", "--quiet", "--runs-dir", str(tmp_path / "b"))
    assert r.code == 0 and r.out == "", r.err  # --quiet: the picture is written, nothing said
    (run,) = (tmp_path / "b").iterdir()
    _png_ok(run / "plot.png")
    r = gdrun("run", str(REPO / "configs" / "e1_x2_lr1_oscillates.yaml"), "--plot", "--json", "--runs-dir", str(tmp_path / "c"))
    assert r.code == 0, r.err
    json.loads(r.out)  # --json: stdout stays one JSON document; where the picture went is on stderr
    (run,) = (tmp_path / "c").iterdir()
    assert f"gdrun: plot: {run / 'plot.png'}" in r.err
    config = tmp_path / "s.yaml"
    config.write_text("function: x2\nepochs: 20\ninit: 7.5\n")
    r = gdrun("sweep", str(config), "-p", "lr=0.01,0.1,0.5,1.1", "--plot", "--runs-dir", str(tmp_path / "d"))
    assert r.code == 0, r.err
    (sweep_dir,) = (tmp_path / "d").iterdir()
    assert f"plot: {sweep_dir / 'plot.png'}" in r.out
    _png_ok(sweep_dir / "plot.png")


def test_a_comparison_is_drawn_once_in_the_best_variants_directory(gdrun, tmp_path):
    r = gdrun("minimize", "rosenbrock", "--optimizer", "sgd,adam:lr=0.02", "--lr", "0.001", "--epochs", "300",
              "--plot", "--runs-dir", str(tmp_path / "runs"))  # fmt: skip
    assert r.code == 0, r.err
    drawn = [d for d in (tmp_path / "runs").iterdir() if (d / "plot.png").exists()]
    assert len(drawn) == 1 and f"plot: {drawn[0] / 'plot.png'}" in r.out
    _png_ok(drawn[0] / "plot.png")


def test_plot_a_config_of_a_sweep_and_animate(gdrun, tmp_path):
    config = tmp_path / "s.yaml"
    config.write_text("function: booth\nepochs: 40\n")
    gdrun("sweep", str(config), "-p", "lr=0.01,0.05", "--runs-dir", str(tmp_path / "runs"), "-q")
    (sweep_dir,) = (tmp_path / "runs").iterdir()
    r = gdrun("plot", f"{sweep_dir}/1")
    assert r.code == 0, r.err
    assert r.out.strip() == f"plot: {sweep_dir / 'plot-1.png'}"
    run = _run(gdrun, tmp_path, "booth", "--lr", "0.05", "--epochs", "30")
    r = gdrun("plot", str(run), "--animate")
    assert r.code == 0, r.err
    from PIL import Image

    gif = Image.open(run / "plot.gif")
    assert gif.format == "GIF" and getattr(gif, "n_frames", 1) > 5


def test_thirty_variables_get_curves_not_an_error(gdrun, tmp_path):
    run = _run(gdrun, tmp_path, "sphere", "--dim", "30", "--lr", "0.1", "--epochs", "20")
    r = gdrun("plot", str(run))
    assert r.code == 0, r.err
    _png_ok(run / "plot.png")


@pytest.mark.parametrize(
    "args, message",
    [
        (["{missing}"], "not a run directory"),
        (["{run}", "--terminal", "-o", "x.png"], "--terminal draws in the terminal"),
        (["{run}", "--every", "0"], "--every must be a whole number"),
        (["{run}", "-o", "{tmp}/no/such/folder/p.png"], "cannot write the picture"),
        (["{run}", "{sweep}"], "plot one sweep at a time"),
        (["{empty}"], "has no recorded rows yet"),
    ],
)
def test_bad_input_is_one_line(gdrun, tmp_path, args, message):
    run = _run(gdrun, tmp_path, "x2", "--lr", "0.1", "--epochs", "5")
    config = tmp_path / "s.yaml"
    config.write_text("function: x2\nepochs: 5\n")
    gdrun("sweep", str(config), "-p", "lr=0.1,0.2", "--runs-dir", str(tmp_path / "sweeps"), "-q")
    (sweep_dir,) = (tmp_path / "sweeps").iterdir()
    empty = _run(gdrun, tmp_path, "x2", "--lr", "0.1", "--epochs", "5")
    metrics = empty / "metrics.csv"
    metrics.write_text(metrics.read_text().splitlines()[0] + "\n")  # killed before its first row
    fill = {"missing": tmp_path / "nowhere", "run": run, "tmp": tmp_path, "sweep": sweep_dir, "empty": empty}
    r = gdrun("plot", *(a.format(**fill) for a in args))
    assert r.code == 2, r.out + r.err
    assert r.err.count("\n") == 1 and message in r.err
    assert not list(tmp_path.glob("**/no/such"))


def test_a_picture_that_cannot_be_drawn_never_fails_the_run(gdrun, tmp_path, monkeypatch):
    from gdrun import plots

    def broken(records, every=None):
        raise ValueError("a bug in drawing")

    monkeypatch.setattr(plots, "figure", broken)
    r = gdrun("minimize", "x2", "--lr", "0.1", "--epochs", "10", "--plot", "--runs-dir", str(tmp_path / "runs"))
    assert r.code == 0
    assert "gdrun: warning: no plot: ValueError: a bug in drawing" in r.err
    (run,) = (tmp_path / "runs").iterdir()
    assert json.loads((run / "summary.json").read_text())["status"] == "max_epochs"


def test_plotting_never_loads_torch(tmp_path, gdrun):
    run = _run(gdrun, tmp_path, "booth", "--lr", "0.05", "--epochs", "30")
    code = ("import sys; from gdrun.cli import main\n"
            "try:\n    main(['plot', sys.argv[1]])\nexcept SystemExit as e:\n    assert e.code == 0, e.code\n"
            "print('torch' in sys.modules)")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code, str(run)], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "False"
