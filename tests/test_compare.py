"""Optimizer options, schedules and clipping through the CLI, and the side-by-side comparison."""

from __future__ import annotations

import json

import numpy as np
import torch

ROSENBROCK = "(1-x)**2 + 100*(y-x**2)**2"


def test_optimizer_options_schedule_and_clip_reach_the_run(gdrun):
    r = gdrun("minimize", ROSENBROCK, "--init", "x=-1.2,y=1", "--optimizer", "adam", "--opt", "betas=[0.8,0.99]",
              "--opt", "amsgrad=true", "--schedule", "cosine:T_max=50:eta_min=0.001", "--clip-norm", "5",
              "--lr", "0.05", "--epochs", "50", "--backend", "torch", "--quiet")  # fmt: skip
    assert r.code == 0, r.err
    rec = r.record()
    assert rec.config["optimizer_options"] == {"betas": [0.8, 0.99], "amsgrad": True}
    assert rec.config["schedule"] == {"name": "cosine", "T_max": 50, "eta_min": 0.001}
    assert rec.config["clip_norm"] == 5.0
    # the same run by hand with torch.optim, lr_scheduler and clip_grad_norm_
    v = torch.tensor([-1.2, 1.0], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([v], lr=0.05, betas=(0.8, 0.99), amsgrad=True, foreach=False)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=50, eta_min=0.001)
    xs, lrs = [v.detach().clone()], [0.05]
    for _ in range(50):
        opt.zero_grad()
        ((1 - v[0]) ** 2 + 100 * (v[1] - v[0] ** 2) ** 2).backward()
        torch.nn.utils.clip_grad_norm_([v], 5.0)
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
        xs.append(v.detach().clone())
    expected = torch.stack(xs).numpy()
    np.testing.assert_allclose(np.column_stack([rec.metrics["x"], rec.metrics["y"]]), expected, rtol=1e-10)
    np.testing.assert_allclose(rec.metrics["lr"], lrs, rtol=1e-12)


def test_config_yaml_of_an_adam_run_reruns_identically(gdrun, tmp_path):
    first = gdrun("minimize", "x2", "--optimizer", "adamw", "--opt", "weight_decay=0.1", "--schedule",
                  "step:step_size=5:gamma=0.5", "--clip-value", "3", "--lr", "0.3", "--epochs", "20", "--quiet")  # fmt: skip
    rec = first.record()
    again = gdrun("run", str(rec.path / "config.yaml"), "--runs-dir", str(tmp_path / "again"), "--quiet")
    assert again.code == 0
    from gdrun.runs import read_run

    (other,) = (tmp_path / "again").iterdir()
    assert read_run(other).summary["params"] == rec.summary["params"]


def test_comparison_ranks_optimizers(gdrun):
    r = gdrun("minimize", ROSENBROCK, "--init", "x=-1.2,y=1", "--optimizer", "sgd,sgd:momentum=0.9,adam:lr=0.02",
              "--lr", "0.001", "--epochs", "2000", "--json")  # fmt: skip
    assert r.code == 0, r.err
    ranking = json.loads(r.out)["ranking"]
    assert [row["optimizer"] for row in ranking] == ["sgd:momentum=0.9", "adam:lr=0.02", "sgd"]
    assert [row["rank"] for row in ranking] == [1, 2, 3]
    values = [row["value"] for row in ranking]
    assert values == sorted(values)
    assert len(r.run_dirs()) == 3  # each variant is an ordinary run
    best = ranking[0]
    assert best["steps_to_reach"] is not None and best["steps_to_reach"] <= best["steps"]


def test_comparison_table_is_printed(gdrun):
    r = gdrun("minimize", "x2", "--optimizer", "sgd,adam:lr=0.5,rmsprop:lr=0.1", "--lr", "0.1", "--epochs", "50")
    assert r.code == 0
    assert "ranked by final f" in r.out
    for label in ("sgd", "adam:lr=0.5", "rmsprop:lr=0.1"):
        assert label in r.out


def test_comparison_with_a_diverging_variant_exits_3(gdrun):
    r = gdrun("minimize", "x2", "--optimizer", "sgd,sgd:lr=1.5", "--lr", "0.1", "--epochs", "300", "--json")
    assert r.code == 3
    ranking = json.loads(r.out)["ranking"]
    assert ranking[-1]["optimizer"] == "sgd:lr=1.5" and ranking[-1]["status"] == "diverged"


def test_bad_variants_are_one_line_errors_before_anything_runs(gdrun):
    for args, needle in [
        (["--optimizer", "sgd,adamm"], "adam"),
        (["--optimizer", "sgd,sgd"], "twice"),
        (["--optimizer", "sgd,adam:bettas=[0.9,0.9]"], "betas"),
        (["--optimizer", "sgd,adam:lr=-1"], "lr"),
        (["--opt", "momentum"], "--opt needs KEY=VALUE"),
        (["--schedule", "step:gamma"], "KEY=VALUE"),
        (["--reach", "0", "--optimizer", "sgd,adam"], "--reach"),
    ]:
        r = gdrun("minimize", "x2", *args)
        assert r.code == 2, (args, r.err)
        assert len(r.err.strip().splitlines()) == 1 and needle in r.err, (args, r.err)
        assert r.run_dirs() == [], args


def test_variants_of_one_optimizer_run_as_one_batch_and_equal_separate_runs(gdrun, tmp_path):
    r = gdrun("minimize", ROSENBROCK, "--init", "x=-1.2,y=1", "--optimizer", "sgd,sgd:momentum=0.9,sgd:lr=0.002",
              "--lr", "0.001", "--epochs", "500")  # fmt: skip
    assert "sgd, sgd:momentum=0.9, sgd:lr=0.002 (one batch)" in r.out
    from gdrun.runs import read_run

    records = [read_run(d) for d in r.run_dirs()]
    batched = {(rec.config["lr"], rec.config["optimizer_options"]["momentum"]): rec.summary["params"] for rec in records}
    assert len(batched) == 3
    for (lr, momentum), params in batched.items():
        alone = gdrun("minimize", ROSENBROCK, "--init", "x=-1.2,y=1", "--lr", str(lr), "--opt", f"momentum={momentum}",
                      "--epochs", "500", "--quiet", "--runs-dir", str(tmp_path / f"alone-{lr}-{momentum}"))  # fmt: skip
        assert alone.code == 0
        (single,) = (tmp_path / f"alone-{lr}-{momentum}").iterdir()
        assert read_run(single).summary["params"] == params  # bit for bit
