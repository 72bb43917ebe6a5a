"""gdrun.plots.terminal: the curves drawn as text (plotext), checked on runs made through the CLI."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gdrun.plots import read, terminal
from gdrun.plots.terminal import draw

ANSI = re.compile(r"\x1b\[")


def _lines(text: str) -> list[str]:
    return text.split("\n")


def _one(path: Path) -> Path:
    dirs = sorted(p for p in path.iterdir() if p.is_dir())
    assert len(dirs) == 1, dirs
    return dirs[0]


@pytest.fixture
def run_dir(gdrun, tmp_path) -> Path:
    assert gdrun("minimize", "x2", "--lr", "0.1", "--epochs", "30", "--quiet").code == 0
    return _one(tmp_path / "runs")


def test_one_run_has_the_size_title_labels_and_log_scale(run_dir):
    text = draw(read([run_dir]), 90, 26, color=False)
    lines = _lines(text)
    assert len(lines) == 26 and {len(line) for line in lines} == {90}
    assert not ANSI.search(text)
    assert "x2 · sgd lr=0.1 · max_epochs · converging" in lines[0]  # function, optimizer, lr, status, regime
    assert "step" in text and "|grad| against step" in text and "x against step" in text  # 1-D: the iterates too
    assert "value (log)" in text  # 56.25 down to ~1e-4: more than two decades, so log y
    assert re.search(r"\b0\.001\b|\b1e-\d", text)  # ticks at powers of ten


def test_small_height_puts_grad_on_the_right_axis(run_dir):
    text = draw(read([run_dir]), 70, 14, color=False)
    lines = _lines(text)
    assert len(lines) == 14 and {len(line) for line in lines} == {70}
    assert "▚ value" in text and "⢕ |grad|" in text  # a legend on the one plot
    assert lines[-1].rstrip().endswith("|grad| (log)")


def test_colour_on_request_and_plain_by_default_off_a_terminal(run_dir):
    records = read([run_dir])
    coloured = draw(records, 80, 20, color=True)
    assert ANSI.search(coloured)
    assert re.sub(r"\x1b\[[0-9;]*m", "", coloured) == draw(records, 80, 20, color=False)
    assert not ANSI.search(draw(records, 80, 20))  # pytest's stdout is not a terminal
    assert terminal(records, 80, 20) == draw(records, 80, 20)  # the package's entry point


def test_default_size_follows_the_terminal_capped(run_dir, monkeypatch):
    monkeypatch.setenv("COLUMNS", "500")
    monkeypatch.setenv("LINES", "300")
    lines = _lines(draw(read([run_dir]), color=False))
    assert len(lines) == 50 and {len(line) for line in lines} == {160}
    monkeypatch.setenv("COLUMNS", "72")
    monkeypatch.setenv("LINES", "24")
    lines = _lines(draw(read([run_dir]), color=False))
    assert len(lines) == 22 and {len(line) for line in lines} == {72}


def test_no_global_plotext_state(run_dir):
    import plotext

    records = read([run_dir])
    first = draw(records, 80, 20, color=False)
    plotext.figure.title("someone else's plot")
    assert draw(records, 80, 20, color=False) == first
    assert "someone else" not in first


def test_a_fit_draws_the_loss_against_epoch(gdrun, tmp_path):
    runs = tmp_path / "fits"
    assert gdrun("fit", "w*x", "--x", "1,2,3", "--y", "2,4,6", "--quiet", "--runs-dir", str(runs)).code == 0
    text = draw(read([_one(runs)]), 80, 24, color=False)
    assert "fit w*x · sgd lr=0.01" in text
    assert "loss" in text and "epoch" in text and "|grad| against epoch" in text


def test_several_runs_share_one_plot_with_a_legend(gdrun, tmp_path):
    for lr in ("0.1", "0.01"):
        assert gdrun("minimize", "x2", "--lr", lr, "--epochs", "30", "--quiet").code == 0
    assert gdrun("minimize", "x2", "--lr", "0.1", "--epochs", "30", "--optimizer", "adam", "--quiet").code == 0
    dirs = sorted(p for p in (tmp_path / "runs").iterdir() if p.is_dir())
    text = draw(read(dirs), 100, 30, color=False)
    assert "value against step: 3 runs of x2" in text
    for label in ("sgd lr=0.1", "sgd lr=0.01", "adam lr=0.1"):
        assert label in text
    # too many runs for the legend box: the legend goes under the plot, the size stays
    lines = _lines(draw(read(dirs * 3), 60, 16, color=False))
    assert len(lines) == 16 and {len(line) for line in lines} == {60}
    assert "sgd lr=0.01" in lines[-1] or "sgd lr=0.01" in lines[-2]


def test_a_sweep_draws_final_value_against_the_swept_key(gdrun, tmp_path):
    config = tmp_path / "sweep.yaml"
    config.write_text("function: x2\nepochs: 20\nlr: 0.1\n")
    runs = tmp_path / "sweeps"
    code = gdrun("sweep", str(config), "-p", "lr=logspace(-3,0.5,12)", "-p", "init=linspace(-5,5,3)", "--quiet",
                 "--runs-dir", str(runs), "--set", "stop.diverge_above=1e6").code  # fmt: skip
    assert code in (0, 1)
    records = read([_one(runs)])
    assert records[0].kind == "sweep"
    text = draw(records, 90, 24, color=False)
    lines = _lines(text)
    assert len(lines) == 24 and {len(line) for line in lines} == {90}
    assert "final value against lr, 36 configs" in text
    assert "lr (log)" in text  # logspace: log x
    assert "diverged (" in text and "at the top" in text  # lr above 1 on x2 diverges: drawn on the top edge
    assert "max_epochs (" in text


def test_a_long_run_is_decimated_and_quick(gdrun, tmp_path):
    assert gdrun("minimize", "x2", "--lr", "1e-5", "--epochs", "100000", "--quiet").code == 0
    records = read([_one(tmp_path / "runs")])
    assert len(records[0].metrics["step"]) == 100_001
    import plotext

    drawn: list[int] = []
    original = type(plotext.figure).signal

    def counting(self, *args, **kwargs):
        drawn.append(len(args[-1]))
        return original(self, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(type(plotext.figure), "signal", counting)
        text = draw(records, 100, 30, color=False)
    assert drawn and max(drawn) <= 2000  # a few points per column, not 100,001 (bench_plot.py times it)
    assert "100k" in text  # round step ticks


def test_no_torch_and_no_matplotlib(run_dir):
    code = (
        "import sys; from pathlib import Path; from gdrun.plots import read; from gdrun.plots.terminal import draw; "
        f"text = draw(read([Path({str(run_dir)!r})]), 80, 20, color=False); "
        "assert 'value' in text; print(sorted(m for m in ('torch', 'matplotlib') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_non_finite_values_are_left_out(run_dir):
    records = read([run_dir])
    records[0].metrics["value"] = records[0].metrics["value"].copy()
    records[0].metrics["value"][-5:] = np.inf
    records[0].metrics["grad_norm"] = records[0].metrics["grad_norm"].copy()
    records[0].metrics["grad_norm"][-5:] = np.nan
    lines = _lines(draw(records, 80, 20, color=False))
    assert len(lines) == 20
