"""Reading user input (issue 9, items 6, 7, 8 and 9 in part): one number parser, one YAML loader,
one file reader, and bounds on what a config may ask for. Through the CLI, each bad input is
exit 2 with one short line on stderr, no traceback and nothing under --runs-dir; each valid one
runs and is recorded as a number."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import yaml

from gdrun.config import load_yaml, validate
from gdrun.errors import GdrunError
from gdrun.fitting import read_csv
from gdrun.inputs import MAX_DIM, MAX_EPOCHS, MAX_POINTS, load_yaml_text, number, read_text
from gdrun.runs import read_run

BOMB = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
function: x2
"""


def bad_input(result, *needles: str, limit: int = 250) -> str:
    """Exit 2, one short line on stderr naming ``needles``, no traceback, no stdout, no run dir."""
    everything = result.out + result.err
    assert "Traceback" not in everything, everything[-2000:]
    assert result.code == 2, f"exit {result.code}; stderr {result.err[-500:]!r}"
    lines = result.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("gdrun: error: "), result.err[-500:]
    assert len(lines[0]) <= limit, f"error line of {len(lines[0])} characters"
    for needle in needles:
        assert needle.lower() in lines[0].lower(), f"{needle!r} not in {lines[0]!r}"
    assert result.out == ""
    assert not result.runs_dir.exists(), sorted(result.runs_dir.rglob("*"))
    return lines[0]


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def run_config(gdrun, tmp_path, text: str, *args: str):
    return gdrun("run", write(tmp_path, "c.yaml", text), *args)


def recorded(result) -> dict:
    assert result.code == 0, result.err
    return read_run(result.run_dirs()[0]).config


# ---------------------------------------------------------------------------- 6: numbers


def test_one_number_parser_accepts_numeric_text_and_refuses_the_rest():
    assert number("k", "1e-8") == 1e-8 and number("k", " 1_000 ", integer=True) == 1000 and number("k", 3) == 3.0
    assert number("k", 1e3, integer=True) == 1000 and type(number("k", 1e3, integer=True)) is int
    for bad, words in [(True, "number"), (None, "number"), ([1, 2], "a list"), ({"a": 1}, "a mapping"),
                       ("nan", "finite"), ("-inf", "finite"), (float("inf"), "finite"), ("٢", "number"),
                       ("１", "number"), ("0x10", "number"), ("1" * 200, "number"), (10**400, "finite")]:  # fmt: skip
        with pytest.raises(GdrunError, match=words):
            number("k", bad)
    with pytest.raises(GdrunError, match="at most 10"):
        number("k", "1e31", integer=True, high=10)
    with pytest.raises(GdrunError, match="whole number"):
        number("k", "2.5", integer=True)


def test_the_click_type_for_numeric_flags_uses_the_same_parser():
    import click

    from gdrun.inputs import click_number

    assert click_number().convert("1e-3", None, None) == 1e-3
    assert click_number(integer=True).convert("1e3", None, None) == 1000
    for bad in ("٠.١", "nan", "true"):
        with pytest.raises(click.BadParameter):
            click_number().convert(bad, None, None)


def test_yaml_reads_1e_minus_8_as_a_float_and_keeps_ints_and_text():
    data = load_yaml_text("a: 1e-8\nb: 10\nc: 1.0e5\nd: '1e3'\ne: x1e5\nf: 1_000\n", "t")
    assert data == {"a": 1e-8, "b": 10, "c": 1e5, "d": "1e3", "e": "x1e5", "f": 1000}
    assert type(data["b"]) is int


def test_the_readmes_cosine_schedule_with_1e_minus_4_runs(gdrun):
    result = gdrun("minimize", "x2", "--schedule", "cosine:T_max=3000:eta_min=1e-4", "--epochs", "3")
    assert recorded(result)["schedule"] == {"name": "cosine", "T_max": 3000, "eta_min": 1e-4}


def test_opt_eps_1e_minus_8_runs_and_is_recorded_as_a_number(gdrun):
    result = gdrun("minimize", "x2", "--optimizer", "adam", "--opt", "eps=1e-8", "--epochs", "3")
    assert recorded(result)["optimizer_options"]["eps"] == 1e-8


def test_yaml_eps_1e_minus_8_runs(gdrun, tmp_path):
    result = run_config(gdrun, tmp_path, "function: x2\noptimizer: adam\noptimizer_options: {eps: 1e-8}\nepochs: 3\n",
                        "--runs-dir", str(tmp_path / "runs"))  # fmt: skip
    assert recorded(result)["optimizer_options"]["eps"] == 1e-8


def test_a_loguniform_sweep_from_1e_minus_4_runs(gdrun, tmp_path):
    path = write(tmp_path, "s.yaml", "function: x2\nepochs: 2\nsweep:\n  kind: random\n  n: 3\n  seed: 1\n"
                                     "  params: {lr: {loguniform: [1e-4, 1]}}\n")  # fmt: skip
    result = gdrun("sweep", path, "--runs-dir", str(tmp_path / "runs"))
    assert result.code == 0, result.err
    (sweep_dir,) = (tmp_path / "runs").glob("sweep-*")
    rows = (sweep_dir / "results.csv").read_text().splitlines()
    assert len(rows) == 4 and all(1e-4 <= float(r.split(",")[1]) <= 1 for r in rows[1:])


def test_sweep_flag_values_in_exponent_form_are_numbers(gdrun, tmp_path):
    path = write(tmp_path, "base.yaml", "function: x2\nepochs: 2\n")
    result = gdrun("sweep", path, "-p", "lr=1e-4,1e-3", "--runs-dir", str(tmp_path / "runs"))
    assert result.code == 0, result.err
    (sweep_dir,) = (tmp_path / "runs").glob("sweep-*")
    rows = (sweep_dir / "results.csv").read_text().splitlines()[1:]
    assert sorted(float(r.split(",")[1]) for r in rows) == [1e-4, 1e-3]


@pytest.mark.parametrize("text, needles", [
    pytest.param("function: x2\nepochs: \"٥\"\n", ["epochs", "whole number"], id="unicode-digit-epochs"),
    pytest.param("function: x2\nlr: \"٠.١\"\n", ["lr", "number"], id="unicode-digit-lr"),
    pytest.param("function: x2\nlr: 0.1\nepochs: 3\nlr: 0.2\n", ["'lr'", "twice", "line 4"], id="duplicate-key"),
    pytest.param("function: x2\nstop:\n  grad_norm_below: 1\n  grad_norm_below: 2\n", ["grad_norm_below", "twice"],
                 id="duplicate-nested-key"),
    pytest.param("function: x2\nepochs: 1e31\n", ["epochs", f"{MAX_EPOCHS:,}"], id="epochs-1e31"),
    pytest.param("function: x2\noptimizer_options: {momentum: [1, 2]}\n", ["momentum", "a list"], id="momentum-list"),
    pytest.param("function: x2\noptimizer: adam\noptimizer_options: {betas: 0.9}\n", ["betas", "pair"], id="betas-scalar"),
    pytest.param("function: x2\nschedule: {name: exponential, gamma: [0.9, 0.8]}\n", ["gamma", "a list"],
                 id="schedule-list"),
    pytest.param("function: x2\nlr: .nan\n", ["lr", "finite"], id="nan"),
    pytest.param("function: x2\nseed: 99999999999999999999999\n", ["seed", "at most"], id="seed-too-big"),
    pytest.param("function: x2\nepochs: " + "9" * 5000 + "\n", ["invalid YAML value"], id="5000-digit-int"),
])  # fmt: skip
def test_wrong_numbers_are_bad_input_before_anything_runs(gdrun, tmp_path, text, needles):
    bad_input(run_config(gdrun, tmp_path, text, "--runs-dir", str(tmp_path / "runs")), *needles)


def test_momentum_list_was_exit_4_and_is_now_refused_by_validate():
    with pytest.raises(GdrunError, match="momentum"):
        validate({"function": "x2", "optimizer_options": {"momentum": [1, 2]}})


# ---------------------------------------------------------------------------- 7 and 9: YAML shapes and key names


@pytest.mark.parametrize("text, needles", [
    pytest.param("function: x2\nstop: " + "[" * 200 + "]" * 200 + "\n", ["nested deeper than 50"], id="deep-flow"),
    pytest.param("function: x2\nname:\n" + "".join("  " * i + "- \n" for i in range(1, 80)), ["nested deeper"],
                 id="deep-block"),
    pytest.param("function: x2\ninit: &a [1, *a]\n", ["alias contains itself"], id="recursive-alias"),
    pytest.param("function: x2\nschedule: {name: []}\n", ["schedule", "name", "[]"], id="schedule-name-list"),
    pytest.param("function: x2\nschedule: {name: {a: 1}}\n", ["schedule", "name"], id="schedule-name-map"),
    pytest.param("function: x2\nlearning_rate: 0.1\n", ["learning_rate", "did you mean 'lr'"], id="learning_rate"),
    pytest.param("function: x2\nmax_iter: 10\n", ["max_iter", "did you mean 'epochs'"], id="max_iter"),
    pytest.param("function: x2\nsteps: 10\n", ["steps", "did you mean 'epochs'"], id="steps"),
    pytest.param("function: x2\niterations: 10\n", ["did you mean 'epochs'"], id="iterations"),
    pytest.param("function: x2\nx0: 1\n", ["x0", "did you mean 'init'"], id="x0"),
    pytest.param("function: x2\nstop: [" + ", ".join(["123456789"] * 5000) + "]\n", ["stop", "5000 items"],
                 id="short-excerpt"),
    pytest.param("function: x2\nlr: !!python/object:os.system x\n", ["constructor"], id="python-tag"),
])  # fmt: skip
def test_bad_yaml_shapes_and_key_names_are_one_line(gdrun, tmp_path, text, needles):
    bad_input(run_config(gdrun, tmp_path, text, "--runs-dir", str(tmp_path / "runs")), *needles)


def test_set_with_a_key_from_another_tool_suggests_gdruns(gdrun):
    bad_input(gdrun("minimize", "x2", "--set", "learning_rate=0.1"), "did you mean 'lr'")


def test_merge_keys_still_work(tmp_path):
    path = write(tmp_path, "m.yaml", "base: &b {momentum: 0.9}\nfunction: x2\noptimizer_options:\n  <<: *b\n"
                                     "  momentum: 0.5\n")  # fmt: skip
    raw = load_yaml(path)
    del raw["base"]
    assert validate(raw).optimizer_options["momentum"] == 0.5


# ---------------------------------------------------------------------------- 8: unbounded resources


def test_the_alias_bomb_fails_in_one_short_line_quickly_and_cheaply(tmp_path):
    """Under a 512 MiB address-space limit (the old loader took 1 GB and printed a 350 MB line)."""
    path = write(tmp_path, "bomb.yaml", BOMB)

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (512 << 20, 512 << 20))

    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "gdrun", "run", path, "--runs-dir", str(tmp_path / "runs")],
                            capture_output=True, text=True, timeout=60, preexec_fn=limit)  # fmt: skip
    assert time.monotonic() - started < 30
    assert result.returncode == 2 and result.stdout == "", result.stderr[-1000:]
    assert result.stderr.count("\n") == 1 and len(result.stderr) < 200, result.stderr[-1000:]
    assert "aliases" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "runs").exists()


def test_a_fifo_as_config_does_not_hang(tmp_path):
    fifo = tmp_path / "c.yaml"
    os.mkfifo(fifo)
    result = subprocess.run([sys.executable, "-m", "gdrun", "run", str(fifo), "--runs-dir", str(tmp_path / "runs")],
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 2 and "not a regular file" in result.stderr and result.stderr.count("\n") == 1


@pytest.mark.parametrize("path, needles", [
    pytest.param("/dev/zero", ["/dev/zero", "not a regular file"], id="dev-zero"),
    pytest.param("/dev/urandom", ["not a regular file"], id="dev-urandom"),
    pytest.param("/proc/self/mem", ["/proc/self/mem", "cannot read"], id="proc-self-mem"),
])  # fmt: skip
def test_devices_and_proc_files_as_config(gdrun, path, needles):
    if not os.path.exists(path):
        pytest.skip(f"{path} does not exist here")
    bad_input(gdrun("run", path), *needles)


def test_a_symlink_loop_a_folder_and_a_missing_file_as_config(gdrun, tmp_path):
    loop = tmp_path / "loop.yaml"
    loop.symlink_to(loop)
    bad_input(gdrun("run", str(loop)), "loop.yaml", "symbolic link loop")
    (tmp_path / "dir.yaml").mkdir()
    bad_input(gdrun("run", str(tmp_path / "dir.yaml")), "folder")
    bad_input(gdrun("run", str(tmp_path / "nothere.yaml")), "not found")


def test_a_config_file_over_the_size_limit(gdrun, tmp_path):
    path = write(tmp_path, "big.yaml", "function: x2\n" + "#" * (1 << 20) + "\n")
    bad_input(gdrun("run", path), "larger than the limit of 1 MiB")


def test_read_text_refuses_non_utf8(tmp_path):
    (tmp_path / "c.yaml").write_bytes(b"function: x2\nname: \xff\n")
    with pytest.raises(GdrunError, match="not UTF-8"):
        read_text(tmp_path / "c.yaml")


def test_gdrun_check_of_a_folder_with_a_symlink_loop_and_a_linked_folder_loop(gdrun, tmp_path):
    folder = tmp_path / "configs"
    folder.mkdir()
    (folder / "ok.yaml").write_text("function: x2\nlr: 0.1\nepochs: 5\nexpect: {status: max_epochs}\n")
    (folder / "loop.yaml").symlink_to(folder / "loop.yaml")
    (folder / "again").symlink_to(folder)  # a folder loop
    result = gdrun("check", str(folder), "--runs-dir", str(tmp_path / "runs"), "--json")
    assert "Traceback" not in result.out + result.err and result.code == 2, result.err
    import json

    report = json.loads(result.out)
    outcomes = {Path(c["config"]).name: (c["outcome"], c["error"]) for c in report["configs"]}
    assert outcomes["ok.yaml"][0] == "passed"
    assert outcomes["loop.yaml"][0] == "error" and "symbolic link loop" in outcomes["loop.yaml"][1]
    assert len(report["configs"]) == 2


def test_gdrun_check_of_proc_self_mem_is_an_error_result(gdrun, tmp_path):
    if not os.path.exists("/proc/self/mem"):
        pytest.skip("no /proc here")
    result = gdrun("check", "/proc/self/mem", "--runs-dir", str(tmp_path / "runs"))
    assert result.code == 2 and "Traceback" not in result.out + result.err
    assert "cannot read config file /proc/self/mem" in result.out


@pytest.mark.parametrize("path", ["/dev/zero", "/dev/urandom"])
def test_devices_as_csv_data(gdrun, tmp_path, path):
    if not os.path.exists(path):
        pytest.skip(f"{path} does not exist here")
    bad_input(gdrun("fit", "w*x", "--data", path, "--runs-dir", str(tmp_path / "runs")), "not a regular file")


def test_a_huge_generated_range_is_refused_before_allocating(gdrun, tmp_path):
    text = "fit:\n  model: w*x\n  data: {x: 'range(0, 100000000)', y: '2*x'}\n"
    tracemalloc.start()
    try:
        bad_input(run_config(gdrun, tmp_path, text, "--runs-dir", str(tmp_path / "runs")), "range()",
                  f"{MAX_POINTS:,}")  # fmt: skip
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50 << 20, f"{peak / 2**20:.0f} MiB traced"


def test_many_grids_in_one_column_count_together(gdrun, tmp_path):
    grid = "linspace(0, 1, 6000000)"
    text = f"fit:\n  model: w*x\n  data: {{x: '{grid} + {grid}', y: '2*x'}}\n"
    bad_input(run_config(gdrun, tmp_path, text, "--runs-dir", str(tmp_path / "runs")), "grids make", "limit")


def test_dim_is_bounded(gdrun):
    bad_input(gdrun("minimize", "sphere", "--dim", str(MAX_DIM + 1)), "dim", f"{MAX_DIM:,}")


def test_a_sweep_is_bounded_before_it_expands(gdrun, tmp_path):
    path = write(tmp_path, "base.yaml", "function: x2\nepochs: 2\n")
    runs = str(tmp_path / "runs")
    bad_input(gdrun("sweep", path, "-p", "lr=linspace(0.1, 1, 1e9)", "--runs-dir", runs), "1,000,000")
    bad_input(gdrun("sweep", path, "-p", "lr=linspace(0.1, 1, 2000)", "-p", "init=linspace(1, 2, 2000)",
                    "--runs-dir", runs), "4,000,000 configs")  # fmt: skip


def test_a_csv_streams_into_arrays_at_a_few_bytes_a_row(tmp_path):
    rows = 200_000
    path = tmp_path / "d.csv"
    path.write_text("x,y\n" + "".join(f"{i}.5,{2 * i}.25\n" for i in range(rows)))
    tracemalloc.start()
    try:
        columns = read_csv(path, None, None)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert columns["x"].dtype == np.float64 and len(columns["y"]) == rows and columns["y"][-1] == 2 * (rows - 1) + 0.25
    assert peak / rows < 60, f"{peak / rows:.0f} bytes a row (was 330)"


def test_a_csv_with_unicode_digits_is_refused(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("x,y\n1,2\n٢,4\n", encoding="utf-8")
    with pytest.raises(GdrunError, match="line 3"):
        read_csv(path, None, None)


def test_a_csv_without_line_breaks_is_not_read_whole(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("x,y\n" + "1" * (2 << 20) + ",2\n")
    with pytest.raises(GdrunError, match="line longer than"):
        read_csv(path, None, None)


def test_yaml_1_1_still_reads_what_it_read(tmp_path):
    """Nothing valid before changes meaning, except 1e-8-style floats (text before, numbers now)."""
    text = "a: 1.5\nb: -3\nc: true\nd: null\ne: [1, 2]\nf: 0.1e+5\ng: .inf\n"
    assert load_yaml_text(text, "t") == yaml.safe_load(text)


# ---------------------------------------------------------------------------- found by the fuzz campaign


@pytest.mark.parametrize("args,needles", [
    (["--lr", "٠.١"], ["--lr", "must be a number"]),  # click's FLOAT took other scripts' digits
    (["--epochs", "٣"], ["--epochs"]),
    (["--lr", "nan"], ["--lr", "finite"]),
])  # fmt: skip
def test_numbers_on_flags_go_through_the_one_parser(gdrun, args, needles):
    bad_input(gdrun("minimize", "x2", *args), *needles)


def test_functions_dim_is_bounded_before_anything_is_built(gdrun):
    result = gdrun("functions", "sphere", "--dim", str(10**9))
    assert result.code == 2 and result.err.strip() == f"gdrun: error: dim must be at most {MAX_DIM:,}, got 1,000,000,000"


def test_a_list_where_a_loss_name_is_due_is_one_line(gdrun, tmp_path):
    path = write(tmp_path, "c.yaml", "fit: {model: w*x, data: {x: [1, 2, 3], y: [2, 4, 6]}, loss: []}\nepochs: 2\n")
    bad_input(gdrun("run", path), "unknown loss", "[]")


def test_an_unknown_key_with_a_newline_is_still_one_line(gdrun, tmp_path):
    path = write(tmp_path, "c.yaml", '"lr\\nepochs": 1\nfunction: x2\n')
    line = bad_input(gdrun("run", path), "unknown config key", r"lr\nepochs")
    assert "did you mean" in line


def test_an_init_naming_no_variable_lists_only_a_few_of_many(gdrun):
    expression = " + ".join(f"x{i}**2" for i in range(1, 151))
    line = bad_input(gdrun("minimize", expression, "--init", "x=2,y=-3"), "'x'", "150 in all")
    assert "x1, x2" in line and "x150" in line


def test_a_huge_number_in_an_expression_is_quoted_short(gdrun):
    bad_input(gdrun("minimize", "9" * 400 + "*x"), "too large")


def test_the_readme_states_the_limits_the_code_enforces():
    from gdrun import inputs

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    table = text[text.index("## Guarantees"):text.index("## Statuses and exit codes")]
    rows = {line.split("|")[1].strip(): line.split("|")[2].strip() for line in table.splitlines() if line.startswith("| ")}
    assert rows["a config file"] == f"{inputs.MAX_CONFIG_BYTES >> 20} MiB"
    assert rows["a CSV data file"].startswith(f"{inputs.MAX_DATA_BYTES >> 30} GiB")
    assert rows["data points of a fit (rows of a CSV, a list or a generated grid)"] == f"{inputs.MAX_POINTS:,}"
    assert rows["data values of a fit in all (columns x rows)"] == f"{inputs.MAX_DATA_VALUES:,}"
    assert rows["YAML nesting"] == f"{inputs.MAX_YAML_DEPTH} levels"
    assert rows["YAML values, each alias counted as what it stands for"] == f"{inputs.MAX_YAML_NODES:,}"
    assert rows["`dim`"] == f"{inputs.MAX_DIM:,}" and rows["`epochs`"] == f"{inputs.MAX_EPOCHS:,}"
    assert rows["a batch's state (runs x parameters)"] == f"{inputs.MAX_STATE:,}"
    assert rows["configs of one sweep"] == f"{inputs.MAX_SWEEP_CONFIGS:,}"
    from gdrun.expr import MAX_NODES

    assert rows["an expression with its `let` names substituted"] == f"{MAX_NODES:,} operations"
