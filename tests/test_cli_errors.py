"""Every kind of bad input, through the real CLI entry point.

Each must: exit with code 2, print exactly one line on stderr starting with "gdrun: error:" that
names the problem, print no traceback (and nothing on stdout), and leave no run directory behind.
"""

from __future__ import annotations

import pytest


def cli(gdrun, *args: str):
    """Run the CLI; an exception escaping ``main`` (what a user sees as a traceback) fails the test
    with a short message (pytest rendering a deep RecursionError traceback takes many seconds)."""
    escaped = None
    try:
        return gdrun(*args)
    except Exception as exc:  # noqa: BLE001 - anything but SystemExit is a bug here
        escaped = f"{type(exc).__name__}: {str(exc)[:200]}"
    pytest.fail(f"gdrun {' '.join(args)[:80]!r} raised {escaped} (the user gets a traceback)", pytrace=False)


def assert_bad_input(result, *needles: str, code: int = 2) -> str:
    """The contract for bad input; returns the error line."""
    everything = result.out + result.err
    assert "Traceback" not in everything, f"traceback printed:\n{everything}"
    assert result.code == code, f"exit code {result.code!r}, expected {code}; stderr: {result.err!r}"
    lines = result.err.splitlines()
    assert len(lines) == 1 and result.err.endswith("\n"), f"stderr is not exactly one line: {result.err!r}"
    line = lines[0]
    assert line.startswith("gdrun: error: "), line
    assert len(line) > len("gdrun: error: ") + 5, line
    for needle in needles:
        assert needle.lower() in line.lower(), f"{needle!r} not named in {line!r}"
    assert result.out == "", f"stdout not empty: {result.out!r}"
    leftovers = sorted(p.name for p in result.runs_dir.rglob("*")) if result.runs_dir.exists() else []
    assert not result.runs_dir.exists(), f"runs directory created on bad input: {leftovers}"
    return line


# ---------------------------------------------------------------------------- gdrun minimize


MINIMIZE_CASES = [
    # (arguments after "minimize", words the message must contain)
    (["x2", "--lrr", "0.1"], ["--lrr", "--lr"]),
    (["x2", "--lr", "abc"], ["--lr", "abc"]),
    (["x2", "--lr", "-1"], ["lr", "-1"]),
    (["x2", "--lr", "0"], ["lr", "0"]),
    (["x2", "--lr", "nan"], ["lr", "nan"]),
    (["x2", "--lr", "inf"], ["lr", "inf"]),
    (["x2", "--lr", "-inf"], ["lr", "inf"]),
    (["x2", "--lr", "1e400"], ["lr"]),
    (["x2", "--epochs", "-3"], ["epochs", "-3"]),
    (["x2", "--epochs", "ten"], ["--epochs", "ten"]),
    (["x2", "--epochs", "1.5"], ["--epochs", "1.5"]),
    (["spher"], ["spher", "did you mean 'sphere'"]),
    (["x**"], ["invalid expression", "x**"]),
    (["2x + 1"], ["2*x"]),
    (["sinn(x)"], ["sinn", "did you mean 'sin'"]),
    (["__import__('os').system('id')"], ["__import__"]),
    (["x.real"], ["'.'"]),
    (["9**9**9 + x"], ["overflow"]),
    (["x" * 20_000], ["longer than"]),
    (["(" * 3000 + "x" + ")" * 3000], ["nested"]),
    (["2 + 3"], ["no variables"]),
    ([""], ["function"]),
    (["x2", "--backend", "jax"], ["--backend", "jax"]),
    (["x2", "--device", "tpu"], ["--device", "tpu"]),
    (["x2", "--dtype", "float16"], ["--dtype", "float16"]),
    (["x2", "--device", "cuda"], ["numpy", "cuda"]),
    (["x2", "--device", "cuda", "--backend", "numpy"], ["numpy", "cuda"]),
    (["x2", "--optimizer", "adamm"], ["optimizer", "adamm"]),
    (["x**2 + y**2", "--init", "x=1,z=2"], ["'z'", "x, y"]),
    (["x**2 + y**2", "--init", "x=1"], ["y"]),
    (["x**2 + y**2", "--init", "1,2,3"], ["init", "3", "2"]),
    (["sphere", "--dim", "3", "--init", "1,2"], ["init", "2", "3"]),
    (["x2", "--init", "abc"], ["init", "abc"]),
    (["x2", "--init", "x=1,=2"], ["init"]),
    (["x2", "--init", "1e400"], ["init"]),
    (["x2", "--init", "1", "--init-range", "-1,1"], ["init", "init_range"]),
    (["x2", "--init-range", "1"], ["init_range"]),
    (["x2", "--init-range", "2,1"], ["init_range", "2", "1"]),
    (["x2", "--init-range", "1,1"], ["init_range"]),
    (["x2", "--init-range", "a,b"], ["init_range", "a"]),
    (["x2", "--init-range", "1,2,3"], ["init_range"]),
    (["x2", "--init-range=-inf,0"], ["init_range", "inf"]),
    (["x2", "--init-range=-1e308,1e308"], ["init_range"]),
    (["x2", "--seed", "-1"], ["seed", "-1"]),
    (["x2", "--every", "-1"], ["every", "-1"]),
    (["x2", "--tol", "0"], ["grad_norm_below"]),
    (["x2", "--tol", "nan"], ["--tol", "nan"]),
    (["x2", "--diverge-above", "-1"], ["diverge_above"]),
    (["x2", "--set", "lr"], ["--set", "lr"]),
    (["x2", "--set", "=0.1"], ["--set"]),
    (["x2", "--set", "lrr=0.1"], ["lrr", "did you mean 'lr'"]),
    (["x2", "--set", "epoch=5"], ["epoch", "did you mean 'epochs'"]),
    (["x2", "--set", "epochs=ten"], ["epochs", "ten"]),
    (["x2", "--set", "lr=-0.1"], ["lr"]),
    (["x2", "--set", "stop.grad_norm=1e-6"], ["stop.grad_norm", "grad_norm_below"]),
    (["x2", "--set", "stop=5"], ["stop"]),
    (["x2", "--set", "function="], ["function"]),
    (["x2", "--dim", "3"], ["x2", "dim"]),
    (["sphere", "--dim", "0"], ["dim", "0"]),
    (["x + y", "--dim", "3"], ["dim", "x, y"]),
    (["x2", "--quiet", "--json"], ["--quiet", "--json"]),
    (["x2", "-q", "--json"], ["--quiet", "--json"]),
]


@pytest.mark.parametrize("args, needles", MINIMIZE_CASES, ids=[" ".join(a)[:40] or "empty" for a, _ in MINIMIZE_CASES])
def test_minimize_bad_input(gdrun, args, needles):
    assert_bad_input(cli(gdrun, "minimize", *args), *needles)


def test_unknown_command(gdrun):
    assert_bad_input(cli(gdrun, "minimise", "x2"), "minimise")


def test_missing_function_argument(gdrun):
    assert_bad_input(cli(gdrun, "minimize"), "function")


def test_torch_cuda_without_cuda(gdrun):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    assert_bad_input(cli(gdrun, "minimize", "x2", "--backend", "torch", "--device", "cuda"), "cuda")


def test_deep_but_accepted_expression_never_gives_a_traceback(gdrun):
    """An expression the parser accepts (tree depth below MAX_DEPTH) must either run or be a
    one-line error: never a RecursionError from the symbolic derivation."""
    result = cli(gdrun, "minimize", "sin(" * 150 + "x" + ")" * 150, "--epochs", "2", "-q")
    assert "Traceback" not in result.out + result.err, result.err[-2000:]
    assert result.code in (0, 2), f"exit code {result.code!r}; stderr tail: {result.err[-300:]!r}"
    if result.code == 2:
        assert_bad_input(result)


@pytest.mark.parametrize("expression", ["x/0", "x + log(0)", "x + 1/0"])
def test_infinite_constant_never_gives_a_traceback(gdrun, expression):
    """A well-formed expression whose symbolic derivative is not finite: either refused as bad
    input (exit 2, one line, no run directory) or recorded as a failed run (exit 4)."""
    result = cli(gdrun, "minimize", expression, "--epochs", "2", "-q")
    assert "Traceback" not in result.out + result.err, result.err[-2000:]
    assert result.code in (2, 4), f"exit code {result.code!r}; stderr tail: {result.err[-300:]!r}"
    if result.code == 2:
        assert_bad_input(result)
    else:
        assert result.record().summary["status"] == "failed"


# ---------------------------------------------------------------------------- gdrun run CONFIG


@pytest.fixture
def write(tmp_path):
    folder = tmp_path / "configs"
    folder.mkdir()

    def write_config(text: str | bytes, name: str = "config_under_test.yaml"):
        path = folder / name
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text)
        return path

    return write_config


def test_run_missing_file(gdrun, tmp_path):
    assert_bad_input(cli(gdrun, "run", str(tmp_path / "nope.yaml")), "not found", "nope.yaml")


def test_run_directory(gdrun, tmp_path):
    folder = tmp_path / "a_folder"
    folder.mkdir()
    assert_bad_input(cli(gdrun, "run", str(folder)), "a_folder")


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "---\n"])
def test_run_empty_file(gdrun, write, text):
    assert_bad_input(cli(gdrun, "run", str(write(text))), "empty")


@pytest.mark.parametrize(
    "text", ["function: x2\nlr: [1\n", "function: x2\n  lr: 0.1\n lr: 3\n", "function: 'x2\n", "function: x2\nfunction: {\n"]
)
def test_run_invalid_yaml(gdrun, write, text):
    assert_bad_input(cli(gdrun, "run", str(write(text))), "config_under_test.yaml")


def test_run_invalid_utf8(gdrun, write):
    assert_bad_input(cli(gdrun, "run", str(write(b"function: x2\nname: \xff\xfe\n"))), "config_under_test.yaml")


@pytest.mark.parametrize("text", ["- function\n- x2\n", "x2\n", "42\n"])
def test_run_not_a_mapping(gdrun, write, text):
    assert_bad_input(cli(gdrun, "run", str(write(text))), "mapping")


@pytest.mark.parametrize(
    "text, needles",
    [
        ("function: x2\nlrr: 0.1\n", ["lrr", "did you mean 'lr'"]),
        ("function: x2\ninit_rang: [0, 1]\n", ["init_rang", "did you mean 'init_range'"]),
        ("function: x2\nepochs: ten\n", ["epochs", "ten"]),
        ('function: x2\nepochs: "ten"\n', ["epochs", "ten"]),
        ("function: x2\nepochs: 1.5\n", ["epochs", "1.5"]),
        ("function: x2\nepochs: true\n", ["epochs"]),
        ("function: x2\nlr: fast\n", ["lr", "fast"]),
        ("function: x2\nlr: .nan\n", ["lr"]),
        ("function: x2\nlr: [0.1]\n", ["lr"]),
        ("lr: 0.1\n", ["function"]),
        ("function:\n", ["function"]),
        ("function: 5\n", ["function"]),
        ("function: [x2]\n", ["function"]),
        ("function: x2\nstop:\n  grad_norm: 1e-6\n", ["stop.grad_norm", "grad_norm_below"]),
        ("function: x2\nstop:\n  bogus: 1\n", ["stop.bogus"]),
        ("function: x2\nstop: 5\n", ["stop"]),
        ("function: x2\nstop:\n  grad_norm_below: -1\n", ["grad_norm_below"]),
        ("function: x2\nbackend: jax\n", ["backend", "jax"]),
        ("function: x2\ndevice: tpu\n", ["device", "tpu"]),
        ("function: x2\ndtype: float16\n", ["dtype", "float16"]),
        ("function: x2\ndevice: cuda\n", ["numpy", "cuda"]),
        ("function: x2\ndim: 3\n", ["x2", "dim"]),
        ("function: x2\ninit: {y: 1}\n", ["'y'"]),
        ("function: x2\ninit: [1, 2]\n", ["init"]),
        ("function: x2\ninit: []\n", ["init"]),
        ("function: x2\ninit: 1\ninit_range: [0, 1]\n", ["init", "init_range"]),
        ("function: x2\ninit_range: [1, 0]\n", ["init_range"]),
        ("function: x2\ninit_range: 5\n", ["init_range"]),
        ("function: spher\n", ["spher", "sphere"]),
        ("function: 'x**'\n", ["x**"]),
        ("function: x2\nseed: -5\n", ["seed"]),
    ],
)
def test_run_bad_config(gdrun, write, text, needles):
    assert_bad_input(cli(gdrun, "run", str(write(text))), *needles)


def test_run_bad_set_override(gdrun, write):
    path = str(write("function: x2\nlr: 0.1\n"))
    assert_bad_input(cli(gdrun, "run", path, "--set", "lrr=1"), "lrr", "did you mean 'lr'")
    assert_bad_input(cli(gdrun, "run", path, "--set", "lr"), "--set")
    assert_bad_input(cli(gdrun, "run", path, "--set", "stop.grad_norm=1"), "grad_norm_below")
    assert_bad_input(cli(gdrun, "run", path, "--quiet", "--json"), "--quiet", "--json")


def test_run_without_config_argument(gdrun):
    assert_bad_input(cli(gdrun, "run"), "config")


# ---------------------------------------------------------------------------- gdrun show


def test_show_folder_that_is_not_a_run_directory(gdrun, tmp_path):
    folder = tmp_path / "not_a_run"
    folder.mkdir()
    (folder / "config.yaml").write_text("function: x2\n")
    result = cli(gdrun, "show", str(folder))
    assert_bad_input(result, "not a run directory", "not_a_run")


def test_show_missing_folder(gdrun, tmp_path):
    assert_bad_input(cli(gdrun, "show", str(tmp_path / "missing")), "missing")


def test_show_broken_summary(gdrun, tmp_path):
    folder = tmp_path / "broken_run"
    folder.mkdir()
    (folder / "summary.json").write_text('{"status": "conv')
    assert_bad_input(cli(gdrun, "show", str(folder)), "broken_run")


# ---------------------------------------------------------------------------- the contract holds for good input too


def test_good_input_is_not_an_error(gdrun):
    """A control for the tests above: the same helper conditions are false for a good run."""
    result = cli(gdrun, "minimize", "X2 ", "--lr", "0.1", "--epochs", "3", "-q")
    assert result.code == 0, result.err
    assert result.err == ""
    assert len(result.run_dirs()) == 1
