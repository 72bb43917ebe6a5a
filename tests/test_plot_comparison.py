"""gdrun.plots for a tuned comparison directory (``gdrun compare``): the performance profile, the lr
sensitivity and the tuned paths, checked through matplotlib's objects against the arrays they are
drawn from, on a synthetic directory written to the on-disk contract."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from gdrun import plots  # noqa: E402
from gdrun.plots.comparison import lr_slice, median_steps, profile, read_comparison  # noqa: E402

EPOCHS = 400
STARTS = [[-1.5, 2.0], [-1.0, 0.5], [1.6, 2.2], [0.0, -0.5], [-0.5, 1.5], [1.2, 0.2]]
HELDOUT = [[-1.2, 1.8], [0.8, -0.4], [-0.3, 0.9], [1.4, 1.0], [-1.6, 0.4], [0.5, 2.0], [0.2, 0.3], [-0.8, -0.2]]
LRS = np.geomspace(1e-4, 1e-2, 7)


def _grad(p: np.ndarray) -> np.ndarray:
    x, y = p[..., 0], p[..., 1]
    return np.stack([-2 * (1 - x) - 400 * x * (y - x**2), 200 * (y - x**2)], axis=-1)


def _paths(kind: str, lr: float, starts: np.ndarray) -> np.ndarray:
    """Real descent on rosenbrock from ``starts``, so the paths on the contour look like paths."""
    p, m, v = starts.astype(np.float64), np.zeros_like(starts, dtype=np.float64), np.zeros_like(starts, dtype=np.float64)
    out = [p.copy()]
    for t in range(1, EPOCHS + 1):
        g = _grad(p)
        if kind == "adam":
            m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g**2
            p = p - lr * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
        else:
            m = (0.9 if kind == "momentum" else 0.0) * m + g
            p = p - lr * m
        out.append(p.copy())
    return np.stack(out, axis=1)  # (P, T+1, 2)


def _steps(rng, medians: list[float], count: int) -> np.ndarray:
    """Steps to target around each candidate's median (inf: never), -1 where not reached."""
    rows = []
    for med in medians:
        if not np.isfinite(med):
            rows.append(np.full(count, -1))
            continue
        s = np.round(med * rng.lognormal(0.0, 0.25, count)).astype(np.int64)
        rows.append(np.where(s <= EPOCHS, s, -1))
    return np.array(rows, dtype=np.int64)


VARIANTS = [  # label, optimizer, medians per lr candidate, tuned index, option names, options, rank, path kind
    ("sgd", "sgd", [np.inf, np.inf, 380, 250, 170, np.inf, np.inf], 4, [], None, 3, "sgd"),
    ("sgd:momentum=0.9", "sgd", [np.inf, 300, 120, 60, np.inf, np.inf, np.inf], 3, [], None, 2, "momentum"),
    ("adam", "adam", [np.inf, 350, 200, 90, 40, 25, np.inf] + [np.inf, np.inf, 300, 150, 70, 45, np.inf], 5, ["beta1"],
     [[0.9]] * 7 + [[0.5]] * 7, 1, "adam"),
]  # fmt: skip


def make_comparison(root: Path, *, dim: int = 2, finished: int = 3, status: str = "completed") -> Path:
    """A comparison directory per the contract (summary.json, variant-K.npz); only the first
    ``finished`` variants have written their arrays."""
    rng = np.random.default_rng(7)
    path = root / "compare-20250101-120000-rosen-abc123"
    path.mkdir(parents=True)
    names = ["x1", "x2"] if dim == 2 else [f"x{i + 1}" for i in range(dim)]
    entries = []
    for k, (label, optimizer, medians, tuned, option_names, options, rank, kind) in enumerate(VARIANTS):
        lrs = np.concatenate([LRS] * (len(medians) // len(LRS)))
        entry = {"label": label, "optimizer": optimizer, "file": f"variant-{k}.npz"}
        if k < finished:
            tuning = _steps(rng, medians, len(STARTS))
            heldout = _steps(rng, [medians[tuned]] * len(HELDOUT), 1)[:, 0]
            heldout[1] = -1  # one held-out start not solved
            paths = _paths(kind, float(lrs[tuned]) * {"adam": 2, "sgd": 0.4}.get(kind, 1), np.array(HELDOUT[:3])) if dim == 2 \
                else np.zeros((0, 0, 0))  # fmt: skip
            if kind == "sgd" and dim == 2:  # its third held-out path diverges: 1e300, then inf
                paths[2, 40:] = paths[2, 40] * 10.0 ** np.minimum(np.arange(len(paths[2]) - 40), 300)[:, None]
                paths[2, 80:] = np.inf
            np.savez(path / entry["file"], lrs=lrs, option_names=np.array(option_names, dtype=str),
                     options=np.array(options if options else np.zeros((len(lrs), 0)), dtype=np.float64),
                     tuning_steps=tuning, tuning_final=np.where(tuning >= 0, 1e-7, 1e-2), tuned=np.array(tuned),
                     heldout_steps=heldout, heldout_final=np.where(heldout >= 0, 1e-7, 1e-2), heldout_paths=paths)  # fmt: skip
            solved = np.where(heldout >= 0, heldout, np.inf)
            entry |= {"tuned": {"lr": float(lrs[tuned]), **({"beta1": options[tuned][0]} if options else {})}, "rank": rank,
                      "heldout": {"success_rate": float((heldout >= 0).mean()), "median_steps": float(np.median(solved)),
                                  "q25_steps": None, "q75_steps": None, "median_final": 1e-7},
                      "sensitivity": {"lr_low": float(lrs[tuned] / 2.5), "lr_high": float(lrs[tuned])}}  # fmt: skip
        entries.append(entry)
    summary = {"kind": "compare", "status": status, "name": "rosen", "function": "rosenbrock", "dim": dim, "names": names,
               "target": 1e-6, "f_star": 0.0, "epochs": EPOCHS, "variants": entries}  # fmt: skip
    (path / "summary.json").write_text(json.dumps(summary))
    (path / "compare.yaml").write_text(json.dumps({"function": "rosenbrock", "starts": STARTS, "heldout_starts": HELDOUT}))
    return path


def draw(path: Path):
    return plots.figure(plots.read([path]))


def axis(fig, label: str):
    (found,) = [ax for ax in fig.axes if ax.get_label() == label]
    return found


def gids(ax, prefix: str) -> dict[str, object]:
    return {str(a.get_gid()): a for a in ax.get_children() if str(a.get_gid() or "").startswith(prefix)}


def npz(path: Path, k: int) -> dict[str, np.ndarray]:
    with np.load(path / f"variant-{k}.npz") as z:
        return {key: z[key] for key in z.files}


# ---------------------------------------------------------------------------- through the CLI


def test_plot_command_writes_a_picture_that_is_not_blank(gdrun, tmp_path):
    from PIL import Image

    path = make_comparison(tmp_path / "runs")
    result = gdrun("plot", str(path))
    assert result.code == 0, result.err
    assert f"plot: {path / 'plot.png'}" in result.out
    with Image.open(path / "plot.png") as image:
        assert image.size == (1800, 560)
        pixels = np.asarray(image.convert("RGB"), dtype=np.int64)
    assert pixels.std() > 20  # not blank
    colours = {tuple(c) for c in pixels.reshape(-1, 3)[::7].tolist()}
    assert (31, 119, 180) in colours and (255, 127, 14) in colours  # the variants' colours C0 and C1 are drawn


def test_terminal_prints_the_profile_and_a_line_per_variant_by_rank(gdrun, tmp_path):
    path = make_comparison(tmp_path / "runs")
    result = gdrun("plot", str(path), "--terminal")
    assert result.code == 0, result.err
    text = plots.terminal(plots.read([path]), 100, 30)
    lines = text.split("\n")
    assert len(lines) == 30 and {len(line) for line in lines} == {100}
    assert "rosenbrock: performance profile on 8 held-out starts, target f - f* < 1e-06" in lines[0]
    assert "fraction at target" in text and "steps" in text
    ranked = lines[-3:]
    assert [line.split()[1] for line in ranked] == ["adam", "sgd:momentum=0.9", "sgd"]
    adam = json.loads((path / "summary.json").read_text())["variants"][2]["heldout"]
    assert ranked[0].rstrip().endswith(f"{100 * adam['success_rate']:.0f}% solved, median {adam['median_steps']:.0f} steps")
    assert "performance profile" in result.out


def test_a_comparison_is_plotted_alone_and_not_animated(gdrun, tmp_path):
    path = make_comparison(tmp_path / "runs")
    result = gdrun("plot", str(path), str(path))
    assert result.code != 0 and "plot one comparison at a time" in result.err
    result = gdrun("plot", str(path), "--animate")
    assert result.code != 0 and "--animate draws one run" in result.err


# ---------------------------------------------------------------------------- the panels


def test_profile_lines_are_the_fractions_of_heldout_starts_solved(tmp_path):
    path = make_comparison(tmp_path)
    ax = axis(draw(path), "profile")
    lines = gids(ax, "profile:")
    assert set(lines) == {"profile:sgd", "profile:sgd:momentum=0.9", "profile:adam"}
    for k, (label, *_rest) in enumerate(VARIANTS):
        steps = npz(path, k)["heldout_steps"]
        x, y = lines[f"profile:{label}"].get_data()
        assert x[0] == 0 and x[-1] == EPOCHS and np.all(np.diff(x) > 0)
        expected = [np.mean((steps >= 0) & (steps <= v)) for v in x]
        assert np.allclose(y, expected)
        assert y[-1] == pytest.approx((steps >= 0).mean())  # the right end is the success rate
        assert lines[f"profile:{label}"].get_drawstyle() == "steps-post"
    assert ax.get_ylim()[0] <= 0 and ax.get_ylim()[1] >= 1


def test_legend_follows_rank_and_names_the_tuned_lr_and_option(tmp_path):
    path = make_comparison(tmp_path)
    ax = axis(draw(path), "profile")
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert texts == ["adam (lr 0.00464, beta1 0.9)", "sgd:momentum=0.9 (lr 0.001)", "sgd (lr 0.00215)"]


def test_sensitivity_draws_the_lr_slice_through_the_tuned_point(tmp_path):
    path = make_comparison(tmp_path)
    ax = axis(draw(path), "sensitivity")
    assert ax.get_xscale() == "log"
    lines = gids(ax, "sensitivity:")
    (level,) = gids(ax, "not-reached").values()
    not_reached = level.get_ydata()[0]
    assert not_reached > EPOCHS
    for k, (label, *_rest) in enumerate(VARIANTS):
        data = npz(path, k)
        x, y = lines[f"sensitivity:{label}"].get_data()
        keep = np.ones(len(data["lrs"]), bool) if not data["options"].size else data["options"][:, 0] == 0.9
        assert np.allclose(x, np.sort(data["lrs"][keep]))  # adam: only the beta1=0.9 candidates
        medians = median_steps(data["tuning_steps"][keep])
        assert np.allclose(y, np.where(np.isfinite(medians), medians, not_reached))
        star = gids(ax, "tuned:")[f"tuned:{label}"]
        assert star.get_xdata()[0] == pytest.approx(data["lrs"][int(data["tuned"])])
        assert f"range:{label}" in gids(ax, "range:")
    assert len(lr_slice(read_comparison(path).variants[2])) == 7


def test_contour_panel_with_paths_starts_and_minimum_for_2d_only(tmp_path):
    path = make_comparison(tmp_path / "two")
    fig = draw(path)
    ax = axis(fig, "paths")
    assert "contour" in {str(c.get_gid()) for c in ax.get_children()}
    for k, (label, *_rest) in enumerate(VARIANTS):
        first = npz(path, k)["heldout_paths"][0]
        line = gids(ax, "path:")[f"path:{label}"]
        x, y = line.get_data()
        assert (x[0], y[0]) == tuple(first[0]) and (x[-1], y[-1]) == tuple(first[-1])
    assert set(gids(ax, "diverging:")) == {"diverging:sgd:2"}  # the path that diverged ends in an X...
    assert -3 < ax.get_xlim()[0] < ax.get_xlim()[1] < 3 and -3 < ax.get_ylim()[0] < ax.get_ylim()[1] < 4  # ...in view
    (starts,) = gids(ax, "starts").values()
    assert len(starts.get_xdata()) == 3  # the first three held-out starts, shared by the variants
    (minima,) = gids(ax, "minima").values()
    assert list(minima.get_xdata()) == [1.0] and list(minima.get_ydata()) == [1.0]
    assert len(fig.axes) == 4  # profile, sensitivity, paths and its colorbar
    flat = draw(make_comparison(tmp_path / "five", dim=5))
    assert [ax.get_label() for ax in flat.axes] == ["profile", "sensitivity"]


def test_title_says_what_was_compared(tmp_path):
    text = draw(make_comparison(tmp_path))._suptitle.get_text()
    assert text == "rosenbrock: 3 variants tuned on 6 starts, ranked on 8 held-out starts, target f - f* < 1e-06"


def test_an_incomplete_comparison_draws_what_exists(tmp_path, gdrun):
    path = make_comparison(tmp_path / "runs", finished=2, status="running")
    fig = draw(path)
    assert "(incomplete: 2 of 3 variants finished, running)" in fig._suptitle.get_text()
    ax = axis(fig, "profile")
    x, _ = gids(ax, "profile:sgd")["profile:sgd"].get_data()
    assert len(x) > 2
    assert not len(gids(ax, "profile:sgd")["profile:sgd"].get_xdata()) == 0
    assert len(gids(ax, "profile:adam")["profile:adam"].get_xdata()) == 0  # a legend entry only
    assert "adam (not finished)" in [t.get_text() for t in ax.get_legend().get_texts()]
    assert set(gids(axis(fig, "sensitivity"), "sensitivity:")) == {"sensitivity:sgd", "sensitivity:sgd:momentum=0.9"}
    assert gdrun("plot", str(path)).code == 0
    result = gdrun("plot", str(path), "--terminal")
    assert result.code == 0 and "(incomplete)" in result.out and "adam (not finished)" in result.out


def test_profile_steps_function():
    x, y = profile(np.array([5, -1, 0, 5, 12]), 20)
    assert x.tolist() == [0, 5, 12, 20] and y.tolist() == [0.2, 0.6, 0.8, 0.8]
    x, y = profile(np.array([-1, -1]), 10)
    assert x.tolist() == [0, 10] and y.tolist() == [0, 0]
