"""gdrun runs (listing, filters, --json, --csv), naming runs (last, last~N, names, prefixes) and
gdrun runs compare, through the real command line."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gdrun import history
from gdrun.errors import RunNotFound
from helpers import wait_for


@pytest.fixture
def runs(tmp_path, gdrun):
    """Five runs and a sweep, made one after the other: x2 lr 0.1, x2 lr 1.05 (diverged), rosenbrock
    with momentum, a fit, rosenbrock with adam; then a 4-config sweep."""
    folder = tmp_path / "runs"
    made = [
        gdrun("minimize", "x2", "--lr", "0.1", "--epochs", "20", "--quiet", "--tol", "1"),
        gdrun("minimize", "x2", "--lr", "1.05", "--epochs", "20", "--quiet", "--diverge-above", "1e3"),
        gdrun("minimize", "rosenbrock", "--lr", "0.001", "--epochs", "50", "--opt", "momentum=0.9", "--quiet"),
        gdrun("fit", "w*x", "--x", "1,2,3", "--y", "2,4,6", "--epochs", "30", "--quiet", "--runs-dir", str(folder)),
        gdrun("minimize", "rosenbrock", "--lr", "0.01", "--epochs", "50", "--optimizer", "adam", "--quiet"),
    ]
    assert [r.code for r in made] == [0, 3, 0, 0, 0], [r.err for r in made]
    config = tmp_path / "lrs.yaml"
    config.write_text("function: x2\nepochs: 10\nstop: {diverge_above: 100}\nsweep:\n  params:\n    lr: [0.1, 0.5, 1.0, 1.05]\n")
    assert gdrun("sweep", str(config), "--quiet", "--runs-dir", str(folder)).code == 0
    return folder


def names_in_order(folder: Path) -> list[str]:
    return [e.path.name for e in history.entries(folder)]


def test_listing_is_newest_first_with_one_row_per_run_and_sweep(runs, gdrun):
    r = gdrun("runs", "--json", "--runs-dir", str(runs))
    assert r.code == 0, r.err
    rows = json.loads(r.out)
    assert [row["kind"] for row in rows] == ["sweep", "minimize", "fit", "minimize", "minimize", "minimize"]
    assert [row["dir"] for row in rows] == [str(runs / n) for n in names_in_order(runs)]
    sweep, adam, fit, momentum, diverged, converged = rows
    assert sweep["steps"] == 4 and sweep["status"] == "completed" and sweep["swept"] == ["lr"] and sweep["lr"] is None
    assert sweep["value"] == json.loads((Path(sweep["dir"]) / "summary.json").read_text())["best"]["value"]
    assert adam["optimizer"] == "adam" and adam["lr"] == 0.01 and adam["function"] == "rosenbrock"
    assert fit["function"] == "w*x" and fit["steps"] == 30
    assert diverged["status"] == "diverged" and diverged["lr"] == 1.05
    summary = json.loads((Path(converged["dir"]) / "summary.json").read_text())
    assert converged["status"] == "converged" == summary["status"]
    assert converged["steps"] == summary["iterations"] and converged["value"] == summary["value"]
    assert converged["id"] == Path(converged["dir"]).name[-6:]


def test_filters_by_status_name_kind_text_and_time(runs, gdrun):
    def listed(*args: str) -> list[dict]:
        r = gdrun("runs", "--json", "--runs-dir", str(runs), *args)
        assert r.code == 0, r.err
        return json.loads(r.out)

    assert [r["lr"] for r in listed("--status", "diverged")] == [1.05]
    assert {r["status"] for r in listed("--status", "converged,diverged")} == {"converged", "diverged"}
    assert [r["optimizer"] for r in listed("--name", "rosen*")] == ["adam", "sgd"]
    assert len(listed("--name", "ROSEN")) == 2  # a part, any case
    assert [r["kind"] for r in listed("--kind", "fit")] == ["fit"]
    assert [r["optimizer"] for r in listed("adam")] == ["adam"]  # free text
    assert len(listed("--since", "1h")) == 6
    assert listed("--since", "2999-01-01") == []
    assert len(listed("--limit", "2")) == 2


def test_csv_and_table(runs, gdrun):
    r = gdrun("runs", "--csv", "--runs-dir", str(runs))
    rows = list(csv.DictReader(io.StringIO(r.out)))
    assert r.code == 0 and len(rows) == 6 and list(rows[0]) == list(history.COLUMNS)
    assert rows[1]["optimizer"] == "adam" and float(rows[1]["lr"]) == 0.01
    table = gdrun("runs", "--runs-dir", str(runs))
    assert table.code == 0 and table.err == ""
    lines = table.out.splitlines()
    assert lines[0].split()[:2] == ["id", "name"] and len(lines) == 7
    assert "swept" in lines[1] and "4 cfg" in lines[1] and "diverged" in lines[5]


def test_the_index_is_a_cache_that_follows_the_summaries(runs, gdrun):
    first = history.listing(runs)
    index = runs / history.INDEX_FILE
    cached = json.loads(index.read_text())["rows"]
    assert len(cached) == 6  # the hidden index is not itself listed
    assert history.listing(runs) == first
    run_dir = Path(first[1]["dir"])  # a summary changes (a run re-labelled): its row is read again
    summary = json.loads((run_dir / "summary.json").read_text())
    summary["status"] = "failed"
    (run_dir / "summary.json").write_text(json.dumps(summary))
    assert {r["dir"]: r["status"] for r in history.listing(runs)}[str(run_dir)] == "failed"
    index.write_text("{not json")  # a damaged index is ignored, then rewritten
    assert {r["dir"] for r in history.listing(runs)} == {r["dir"] for r in first}
    assert json.loads(index.read_text())["format"] == history.INDEX_FORMAT
    import shutil

    shutil.rmtree(first[0]["dir"])  # a removed run leaves the index too
    assert len(history.listing(runs)) == 5 and len(json.loads(index.read_text())["rows"]) == 5


def test_last_names_and_prefixes(runs, gdrun):
    order = names_in_order(runs)
    assert history.resolve("last", runs).name == order[0]
    assert history.resolve("last~1", runs).name == order[1]
    assert history.resolve("last~5", runs).name == order[5]
    assert history.resolve("fit", runs).name == order[2]  # a run name: its newest run
    assert history.resolve("rosenbrock", runs).name == order[1]
    assert history.resolve(order[3][:-3], runs).name == order[3]  # a unique prefix of the directory name
    assert history.resolve(order[4][-6:-2], runs).name == order[4]  # a prefix of its id
    assert history.resolve("last/2", runs) == runs / order[0] / "2"  # one config of the newest (a sweep)
    shown = gdrun("show", "last~1", "--runs-dir", str(runs))
    assert shown.code == 0 and "rosenbrock" in shown.out and order[1] in shown.out
    config = gdrun("show", "last/3", "--runs-dir", str(runs))
    assert config.code == 0 and "diverged" in config.out
    explained = gdrun("explain", "x2", "--runs-dir", str(runs), "--json")
    assert explained.code == 0 and json.loads(explained.out)["run_dir"] == str(runs / order[4])


@pytest.mark.parametrize("ref, message", [
    ("nope", "no run 'nope' in"),
    ("last~9", "last~9 goes back 9 but"),
    ("2026", "matches 5 runs"),
    ("last~1/3", "is not a sweep directory, so it has no config 3"),
    ("no/such/dir", "not a run directory: no/such/dir (there is no such folder)"),
])  # fmt: skip
def test_bad_references_are_one_line(runs, gdrun, ref, message):
    for command in (["show", ref], ["explain", ref], ["plot", ref], ["runs", "compare", ref, "last"]):
        r = gdrun(*command, "--runs-dir", str(runs))
        assert r.code == 2 and r.out == "", (command, r.out)
        assert len(r.err.strip().splitlines()) == 1 and message in r.err and "Traceback" not in r.err, (command, r.err)


def test_an_ambiguous_prefix_names_the_candidates(runs):
    stamps = {name[:15] for name in names_in_order(runs) if not name.startswith("sweep-")}
    prefix = os.path.commonprefix(sorted(names_in_order(runs)[1:]))
    with pytest.raises(RunNotFound, match=r"matches 5 runs .*give more of the name") as info:
        history.resolve(prefix, runs)
    assert "\n" not in str(info.value) and stamps


def test_an_empty_or_missing_runs_folder(tmp_path, gdrun):
    (tmp_path / "empty").mkdir()
    for folder in (tmp_path / "empty", tmp_path / "missing"):
        listed = gdrun("runs", "--runs-dir", str(folder))
        assert listed.code == 0 and listed.out == ""
        assert listed.err.strip() == f"gdrun: no runs in {folder} yet (start one with: gdrun minimize x2 --lr 0.1)"
        assert gdrun("runs", "--json", "--runs-dir", str(folder)).out.strip() == "[]"
        shown = gdrun("show", "last", "--runs-dir", str(folder))
        assert shown.code == 2 and len(shown.err.strip().splitlines()) == 1 and "no runs in" in shown.err
    assert not (tmp_path / "missing").exists()  # listing creates nothing


def test_unknown_status_kind_and_since_are_one_line(runs, gdrun):
    for args, message in ((["--status", "finished"], "unknown status 'finished'"), (["--kind", "run"], "unknown kind 'run'"),
                          (["--since", "last week"], "--since takes 30m"), (["--limit", "-1"], "--limit must be"),
                          (["--json", "--csv"], "choose one of"), (["--all"], "--all goes with")):  # fmt: skip
        r = gdrun("runs", *args, "--runs-dir", str(runs))
        assert r.code == 2 and len(r.err.strip().splitlines()) == 1 and message in r.err, (args, r.err)


def test_a_killed_run_and_a_half_written_one(tmp_path, gdrun):
    runs = tmp_path / "runs"
    proc = subprocess.Popen([sys.executable, "-m", "gdrun", "minimize", "x2", "--lr", "1e-9", "--epochs", "100000000",
                             "--quiet", "--runs-dir", str(runs)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        wait_for(lambda: any(f.stat().st_size > 5_000 for f in runs.glob("*/metrics.csv")))
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    (killed,) = runs.iterdir()
    torn = runs / "20260101-000000-torn-abcdef"  # a summary cut short (written by hand: gdrun writes it whole)
    torn.mkdir()
    (torn / "summary.json").write_text('{"status": "conv')
    damaged = runs / "sweep-20250101-000000-lrs-abcdef"  # a sweep whose sweep.yaml is not one
    damaged.mkdir()
    (damaged / "sweep.yaml").write_text("[1, 2")
    rows = json.loads(gdrun("runs", "--json", "--runs-dir", str(runs)).out)
    assert [r["status"] for r in rows] == ["cut_off", "unreadable", "unreadable"]
    assert "sweep.yaml" in rows[2]["reason"]
    assert rows[0]["steps"] == 0 and "has started" in rows[0]["reason"]
    listed = gdrun("runs", "--status", "cut_off", "--runs-dir", str(runs))
    assert listed.code == 0 and "cut_off" in listed.out and "torn" not in listed.out
    shown = gdrun("show", "last", "--runs-dir", str(runs))
    assert shown.code == 0 and "running (cut off)" in shown.out and killed.name in shown.out
    broken = gdrun("show", "torn", "--runs-dir", str(runs))
    assert broken.code == 2 and len(broken.err.strip().splitlines()) == 1 and "cannot read run directory" in broken.err
    assert not (runs / history.INDEX_FILE).exists() or "torn" not in (runs / history.INDEX_FILE).read_text()


# ---------------------------------------------------------------------------- compare


def test_compare_shows_the_keys_that_differ_and_the_results(runs, gdrun):
    r = gdrun("runs", "compare", "last~1", "last~3", "--json", "--runs-dir", str(runs))  # adam vs sgd with momentum
    assert r.code == 0, r.err
    c = json.loads(r.out)
    assert c["config"]["optimizer"] == ["adam", "sgd"]
    assert c["config"]["lr"] == [0.01, 0.001]
    assert c["config"]["optimizer_options.momentum"] == [None, 0.9]
    assert "function" not in c["config"] and "epochs" not in c["config"] and "function" in c["same"]
    summaries = [json.loads((Path(d) / "summary.json").read_text()) for d in c["runs"]]
    assert c["results"]["value"] == [s["value"] for s in summaries]
    assert c["results"]["params.x1"] == [s["params"]["x1"] for s in summaries]
    everything = json.loads(gdrun("runs", "compare", "last~1", "last~3", "--all", "--json", "--runs-dir", str(runs)).out)
    assert everything["config"]["function"] == ["rosenbrock", "rosenbrock"] and everything["config"]["epochs"] == [50, 50]
    table = gdrun("runs", "compare", "last~1", "last~3", "--runs-dir", str(runs))
    lines = table.out.splitlines()
    assert table.code == 0 and any(line.split()[:3] == ["optimizer", "adam", "sgd"] for line in lines)
    assert any(line.split()[:2] == ["optimizer_options.momentum", "-"] for line in lines)
    assert "config keys are the same in all (--all shows them)" in table.out


def test_compare_configs_of_a_sweep_with_runs(runs, gdrun):
    c = json.loads(gdrun("runs", "compare", "last/0", "last/3", "last~5", "--json", "--runs-dir", str(runs)).out)
    assert c["config"]["lr"] == [0.1, 1.05, 0.1]
    assert c["results"]["status"] == ["max_epochs", "diverged", "converged"]
    one = gdrun("runs", "compare", "last/0", "--runs-dir", str(runs))
    assert one.code == 2 and "needs two runs or more" in one.err
    whole = gdrun("runs", "compare", "last", "last~1", "--runs-dir", str(runs))
    assert whole.code == 2 and "is a sweep: compare its configs as" in whole.err and "/ID" in whole.err


def test_since_parses_durations_days_and_dates():
    from datetime import datetime

    now = datetime(2026, 12, 2, 21, 30)
    assert history.parse_since("30m", now) == datetime(2026, 12, 2, 21, 0)
    assert history.parse_since("2h", now) == datetime(2026, 12, 2, 19, 30)
    assert history.parse_since("1w", now) == datetime(2026, 11, 25, 21, 30)
    assert history.parse_since("today", now) == datetime(2026, 12, 2)
    assert history.parse_since("yesterday", now) == datetime(2026, 12, 1)
    assert history.parse_since("2026-12-01T10:00", now) == datetime(2026, 12, 1, 10)


def test_the_newest_of_one_second_is_the_last_written(tmp_path):
    """Directory names carry seconds; two runs in one second are told apart by their summaries' times."""
    runs = tmp_path / "runs"
    for name, delay in (("first", 0), ("second", 0.05)):
        folder = runs / f"20261202-100000-{name}-00000{len(name) % 10}"
        folder.mkdir(parents=True)
        time.sleep(delay)
        (folder / "summary.json").write_text('{"status": "converged"}')
    assert history.resolve("last", runs).name.split("-")[2] == "second"


def test_resume_takes_a_sweep_by_any_of_its_names(runs, gdrun, tmp_path):
    config = str(tmp_path / "lrs.yaml")
    for name in ("last", names_in_order(runs)[0][-6:]):
        r = gdrun("sweep", config, "--resume", name, "--json", "--runs-dir", str(runs))
        assert r.code == 0, r.err
        assert json.loads(r.out)["summary"]["resumed"] == 4  # all four already done: nothing ran again
    r = gdrun("sweep", config, "--resume", "last~1", "--runs-dir", str(runs))
    assert r.code == 2 and "no sweep to resume at 'last~1'" in r.err


def test_completion_offers_run_names(runs, monkeypatch):
    from gdrun.cli import complete_run

    order = names_in_order(runs)
    monkeypatch.setenv("GDRUN_RUNS_DIR", str(runs))
    offered = complete_run(None, "")
    assert offered[:2] == ["last", "last~1"] and order[0][-6:] in offered and "rosenbrock" in offered
    assert complete_run(None, "ros") == ["rosenbrock"]
    assert complete_run(None, "zzz") == []
