"""Columnar sweeps: configs as columns, validated per group, batches cut to a size, streamed records,
and resume across batch boundaries after a SIGKILL."""

from __future__ import annotations

import csv
import io
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from gdrun.config import set_key, validate
from gdrun.errors import GdrunError
from gdrun.runs import open_record
from gdrun.sweeps import (
    METRICS_FILE, SWEEP_FILE, SweepOptions, expand, make_batches, open_config, read_metrics_file, read_results,
    run_sweep, validate_configs, validate_sweep,
)  # fmt: skip

REPO = Path(__file__).resolve().parents[1]


def _old_grid(params: dict[str, list]) -> list[dict]:
    return [dict(zip(params, row)) for row in itertools.product(*params.values())]


def test_a_grid_s_columns_are_the_cartesian_product_in_order():
    params = {"optimizer": ["sgd", "adam"], "lr": [0.1, 0.2, 0.3], "init": [[1, 2], [3, 4]]}
    expansion = expand(validate_sweep({"params": params}))
    assert expansion.size == 12 and expansion.as_list() == _old_grid(params)
    assert expansion.codes["init"].tolist() == [0, 1] * 6  # the last key varies fastest
    assert expansion.values["optimizer"] == ["sgd", "adam"]  # each value held once, not once per config


def test_random_columns_draw_what_a_per_config_expansion_drew():
    """The draws are the declaration's: one generator, key after key (choice, range, uniform)."""
    spec = validate_sweep({"kind": "random", "n": 50, "seed": 3, "params": {
        "optimizer": {"choice": ["sgd", "adam"]}, "epochs": {"range": [5, 9]}, "lr": {"loguniform": [1e-4, 1e-1]}}})
    rng = np.random.default_rng(3)
    optimizers = [["sgd", "adam"][i] for i in rng.integers(0, 2, size=50)]
    epochs = [[5, 6, 7, 8][i] for i in rng.integers(0, 4, size=50)]
    lrs = np.exp(rng.uniform(np.log(1e-4), np.log(1e-1), size=50)).tolist()
    assert expand(spec).as_list() == [{"optimizer": o, "epochs": e, "lr": lr} for o, e, lr in zip(optimizers, epochs, lrs)]


def test_every_config_built_from_columns_is_the_one_validated_alone():
    base = {"function": "rosenbrock", "epochs": 5, "init_range": [-1, 1], "optimizer_options": {"momentum": 0.5}}
    spec = validate_sweep({"params": {"optimizer": ["sgd", "rmsprop"], "lr": [0.01, 0.02],
                                      "optimizer_options.momentum": [0.0, 0.9], "epochs": [3, 4]}})  # fmt: skip
    sweep = validate_configs(base, spec)
    assert len(sweep.reps) == 4  # optimizer x epochs: the structural values; lr and momentum are per run
    for i, (overrides, config) in enumerate(sweep.items()):
        raw = dict(base)
        for key, value in overrides.items():
            raw = set_key(raw, key, value)
        alone = validate(raw)
        assert config == type(alone)(**{**alone.__dict__, "seed": i})  # a drawn start takes the config's number
        assert sweep.values(i) == config.to_dict()  # what expect's when: matches, without building the config


@pytest.mark.parametrize("params, base, message", [
    ({"lr": [0.1, 0.2, -1.0], "init": [1, 2]}, {"function": "x2"}, r"sweep config 4 \(lr=-1.0, init=1\): lr must be positive"),
    ({"optimizer": ["sgd", "adam"], "optimizer_options.momentum": [0.0, 0.5]}, {"function": "x2"},
     r"sweep config 2 \(optimizer=adam, optimizer_options.momentum=0.0\): .*momentum"),
    ({"init": [None, [1, 2]], "init_range": [None, [-1, 1]]}, {"function": "booth"},
     r"sweep config 3 .*either init or init_range"),
], ids=["per-run value", "value valid for one optimizer only", "two keys only wrong together"])  # fmt: skip
def test_an_invalid_config_is_named_by_its_number(tmp_path, params, base, message):
    with pytest.raises(GdrunError, match=message):
        run_sweep(base, validate_sweep({"params": params}), SweepOptions(runs_dir=tmp_path))
    assert list(tmp_path.iterdir()) == []


def test_sweep_yaml_records_the_declaration_not_each_config(tmp_path):
    spec = validate_sweep({"kind": "random", "n": 300, "seed": 1, "params": {"lr": {"loguniform": [1e-3, 1e-1]}}})
    summary, code = run_sweep({"function": "x2", "epochs": 5}, spec, SweepOptions(runs_dir=tmp_path))
    path = Path(summary["sweep_dir"])
    meta = yaml.safe_load((path / SWEEP_FILE).read_text())
    assert code == 0 and meta["configs"] == 300 and meta["format"] == 2
    assert meta["sweep"]["params"] == {"lr": {"loguniform": [1e-3, 1e-1]}} and (path / SWEEP_FILE).stat().st_size < 2000
    record = open_config(path, 123)  # the config is expanded again from the declaration
    assert record.config["lr"] == expand(spec).overrides(123)["lr"]
    row = next(r for r in read_results(path) if r["id"] == "123")
    assert record.summary["value"] == float(row["value"]) and len(record.metrics["step"]) == 2  # steps 0 and 5


def test_an_older_sweep_directory_that_lists_its_configs_still_shows_and_refuses_resume(tmp_path, gdrun):
    spec = validate_sweep({"params": {"lr": [0.1, 0.2]}})
    summary, _ = run_sweep({"function": "x2", "epochs": 3}, spec, SweepOptions(runs_dir=tmp_path))
    path = Path(summary["sweep_dir"])
    meta = yaml.safe_load((path / SWEEP_FILE).read_text())
    meta.update(configs=[{"lr": 0.1}, {"lr": 0.2}])
    del meta["format"]
    (path / SWEEP_FILE).write_text(yaml.safe_dump(meta))
    assert open_config(path, 1).config["lr"] == 0.2 and open_record(path).summary["configs"] == 2
    config = tmp_path / "x2.yaml"
    config.write_text("function: x2\nepochs: 3\nsweep:\n  params:\n    lr: [0.1, 0.2]\n")
    r = gdrun("sweep", str(config), "--resume", str(path), "--runs-dir", str(tmp_path))
    assert r.code == 2 and "made by an older gdrun" in r.err and len(r.err.strip().splitlines()) == 1


def _table(path: Path) -> dict[int, dict[str, str]]:
    return {int(r["id"]): {k: v for k, v in r.items() if k not in ("batch", "batch_time_s")} for r in read_results(path)}


def _records(path: Path) -> dict[int, np.ndarray]:
    records = read_metrics_file(path / METRICS_FILE, 2)
    return {int(i): records[records[:, 0] == i] for i in np.unique(records[:, 0])}


BASE = {"function": "rosenbrock", "optimizer": "adam", "epochs": 40, "init_range": [-2, 2]}
DECLARATION = {"record_every": 3, "params": {"lr": {"logspace": [-3, -1, 6]}, "seed": {"range": [0, 7]},
                                             "optimizer": ["adam", "sgd"]}}  # fmt: skip


def test_batches_cut_small_give_the_results_of_one_batch(tmp_path, monkeypatch):
    import gdrun.sweeps as sweep

    spec = validate_sweep(DECLARATION)
    whole, _ = run_sweep(BASE, spec, SweepOptions(runs_dir=tmp_path / "whole"))
    monkeypatch.setattr(sweep, "MAX_BATCH", 5)
    cut, _ = run_sweep(BASE, spec, SweepOptions(runs_dir=tmp_path / "cut"))
    assert whole["batches"] == 2 and cut["batches"] == 2 * 9  # 42 configs per optimizer, 5 at a time
    a, b = Path(whole["sweep_dir"]), Path(cut["sweep_dir"])
    assert _table(a) == _table(b) and len(_table(a)) == 84
    ra, rb = _records(a), _records(b)
    assert ra.keys() == rb.keys() and all(np.array_equal(ra[i], rb[i], equal_nan=True) for i in ra)
    assert all(len(r) == 15 for i, r in ra.items() if _table(a)[i]["status"] == "max_epochs")  # 0, 3, .. 39, 40


def test_make_batches_keeps_structures_apart_and_cuts_each():
    sweep = validate_configs(BASE, validate_sweep(DECLARATION))
    jobs = make_batches(sweep, np.arange(sweep.size), 3, 2, None, max_batch=10)
    assert [len(j) for j in jobs] == [10, 10, 10, 10, 2] * 2
    assert {j.config.optimizer for j in jobs[:5]} == {"adam"} and {j.config.optimizer for j in jobs[5:]} == {"sgd"}
    assert sorted(i for j in jobs for i in j.ids.tolist()) == list(range(84))


KILLED = """
import sys
import gdrun.engine
import gdrun.sweeps
gdrun.sweeps.MAX_BATCH = 4
gdrun.engine.MAX_BLOCK = 8  # blocks of 8 rows whatever the machine's speed: the file operations are the same
from gdrun.cli import main
main(sys.argv[1:])
"""


@pytest.mark.parametrize("point", [23, 36, 61])
def test_a_sigkill_mid_batch_then_resume_gives_every_config_once_with_its_own_records(tmp_path, point, monkeypatch):
    """Killed at a file operation inside a batch (records of unfinished configs are on disk),
    resumed with other batch boundaries: each config once, and exactly an uninterrupted run's records."""
    import gdrun.sweeps as sweep
    from gdrun.cli import main

    config = tmp_path / "s.yaml"
    config.write_text(yaml.safe_dump({**BASE, "name": "s", "sweep": DECLARATION}, sort_keys=False))
    reference, _ = run_sweep(BASE, validate_sweep(DECLARATION), SweepOptions(runs_dir=tmp_path / "ref"))
    runs = tmp_path / "runs"
    env = {**os.environ, "GDRUN_FAULT_AFTER": f"{point}:KILL"}
    proc = subprocess.run([sys.executable, "-c", KILLED, "sweep", str(config), "--runs-dir", str(runs), "--quiet"],
                          env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == -9, proc.stderr
    (path,) = runs.iterdir()
    before = read_results(path)
    assert 0 < len(before) < 84
    unfinished = set(_records(path)) - {int(r["id"]) for r in before}
    assert unfinished  # the kill came inside a batch: some configs have records but no result yet
    monkeypatch.setattr(sweep, "MAX_BATCH", 7)  # other cuts than the killed run's
    with pytest.raises(SystemExit) as stop:
        main(["sweep", str(config), "--runs-dir", str(runs), "--resume", "s", "--quiet"])
    assert stop.value.code == 0
    assert sorted(int(r["id"]) for r in read_results(path)) == list(range(84))
    assert _table(path) == _table(Path(reference["sweep_dir"]))
    mine, theirs = _records(path), _records(Path(reference["sweep_dir"]))
    assert mine.keys() == theirs.keys() and all(np.array_equal(mine[i], theirs[i], equal_nan=True) for i in mine)
    assert json.loads((path / "summary.json").read_text())["resumed"] == len(before)


def test_results_rows_quote_as_the_csv_module_does(tmp_path):
    spec = validate_sweep({"kind": "zip", "params": {"name": ['a "quoted", name', "plain"], "init": [[1, 2], [3, 4]]}})
    summary, code = run_sweep({"function": "booth", "epochs": 2}, spec, SweepOptions(runs_dir=tmp_path))
    text = (Path(summary["sweep_dir"]) / "results.csv").read_bytes().decode()
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows[1][1:3] == ['a "quoted", name', "[1, 2]"] and rows[2][1:3] == ["plain", "[3, 4]"]
    out = io.StringIO(newline="")
    csv.writer(out).writerows(rows)
    assert out.getvalue() == text  # byte for byte what csv.writer writes


@pytest.mark.parametrize("damage, words", [
    ({"configs": 5}, "declares 5 configs but its declaration makes 2"),
    ({"sweep": {"kind": "grid", "params": {"lr": []}}}, "declaration in sweep.yaml does not expand"),
    ({"sweep": None}, "incomplete or damaged"),
], ids=["count", "declaration", "missing"])  # fmt: skip
def test_a_damaged_declaration_is_one_line_when_shown(tmp_path, gdrun, damage, words):
    summary, _ = run_sweep({"function": "x2", "epochs": 3}, validate_sweep({"params": {"lr": [0.1, 0.2]}}),
                           SweepOptions(runs_dir=tmp_path))  # fmt: skip
    path = Path(summary["sweep_dir"])
    meta = yaml.safe_load((path / SWEEP_FILE).read_text())
    (path / SWEEP_FILE).write_text(yaml.safe_dump({**meta, **damage}))
    r = gdrun("show", f"{path}/1")
    assert r.code == 2 and words in r.err and len(r.err.strip().splitlines()) == 1 and "Traceback" not in r.err


@pytest.mark.parametrize("done, kept", [
    ([0, 1, 2, 3], [0, 1, 2, 3]),  # nothing goes
    ([0, 1], [0, 1]),  # a tail goes: the file is cut there
    ([0, 2, 3], [0, 2, 3]),  # one config in the middle goes (interrupted): the file is rewritten
    ([1, 3], [1, 3]),
    ([1], [1]),  # with slices of 6: the one to keep is in the slice where the first to go is
    ([], []),
])  # fmt: skip
@pytest.mark.parametrize("per_read", [3, 6, 5])
def test_resume_keeps_exactly_the_records_of_finished_configs(tmp_path, monkeypatch, done, kept, per_read):
    import gdrun.sweeps as sweep

    monkeypatch.setattr(sweep, "RECORDS_PER_READ", per_read)  # slices that split a config's records
    expansion = expand(validate_sweep({"params": {"lr": [0.1, 0.2, 0.3, 0.4]}}))
    records = np.array([[i, step, step, 1.0 * i, 2.0, 3.0, 0.1] for i in range(4) for step in range(3)])
    (tmp_path / METRICS_FILE).write_bytes(records.tobytes() + b"\0\0\0")  # and a record cut short
    rows = [[str(i), "0.1", "max_epochs" if i in done else "interrupted", "1.5"] for i in range(4)]
    (tmp_path / "results.csv").write_text("id,lr,status,value\n" + "".join(",".join(r) + "\n" for r in rows))
    directory = sweep.SweepDir(tmp_path, expansion, ["x"], 1)
    finished = directory.start()
    directory.close()
    assert np.flatnonzero(finished.done).tolist() == kept
    left = read_metrics_file(tmp_path / METRICS_FILE, 1)
    assert np.array_equal(left, records[np.isin(records[:, 0], kept)])
    assert (tmp_path / METRICS_FILE).stat().st_size == left.nbytes
