"""gdrun.config: defaults, value parsing, --set overrides, YAML round trips, and re-running a run."""

from __future__ import annotations

import math
from dataclasses import fields

import pytest
import yaml

from gdrun.config import KEYS, Config, Stop, apply_sets, load_yaml, parse_init, parse_range, to_yaml, validate
from gdrun.errors import GdrunError
from gdrun.runs import read_run


def one_line_error(fn, *args, needles=()) -> str:
    with pytest.raises(GdrunError) as info:
        fn(*args)
    message = str(info.value)
    assert message and "\n" not in message, repr(message)
    assert info.value.exit_code == 2
    for needle in needles:
        assert needle in message, f"{needle!r} not in {message!r}"
    return message


# ---------------------------------------------------------------------------- validate: defaults and types


def test_validate_defaults():
    config = validate({"function": "x2"})
    assert config == Config(function="x2")
    assert config.name is None
    assert config.dim is None
    assert config.backend == "numpy"
    assert config.device == "cpu"
    assert config.dtype == "float64"
    assert config.optimizer == "sgd"
    assert config.lr == 0.01 and isinstance(config.lr, float)
    assert config.epochs == 100 and isinstance(config.epochs, int)
    assert config.init is None
    assert config.init_range is None
    assert config.seed is None
    assert config.stop == Stop(grad_norm_below=None, value_below=None, diverge_above=1e100)
    assert config.every == 0


def test_keys_are_the_config_fields():
    assert KEYS == tuple(f.name for f in fields(Config))
    assert set(KEYS) == {
        "function", "fit", "name", "dim", "backend", "device", "dtype", "optimizer", "optimizer_options",
        "schedule", "clip_norm", "clip_value", "lr", "epochs", "init", "init_range", "seed", "stop", "every", "expect",
        "let", "explain",
    }  # fmt: skip


def test_validate_converts_types():
    config = validate(
        {
            "function": "x**2 + y**2",
            "name": 123,
            "dim": "2",
            "lr": "1e-3",  # PyYAML reads 1e-3 as a string
            "epochs": 10.0,
            "init": "x=1,y=2",
            "seed": " 7 ",
            "stop": {"grad_norm_below": "1e-6", "value_below": -5, "diverge_above": 1e10},
            "every": "3",
        }
    )
    assert config.name == "123"
    assert config.dim == 2
    assert config.lr == 0.001 and isinstance(config.lr, float)
    assert config.epochs == 10 and isinstance(config.epochs, int)
    assert config.init == {"x": 1.0, "y": 2.0}
    assert config.seed == 7
    assert config.stop == Stop(grad_norm_below=1e-6, value_below=-5.0, diverge_above=1e10)
    assert isinstance(config.stop.grad_norm_below, float)
    assert config.every == 3


def test_validate_does_not_modify_its_input():
    raw = {"function": "x2", "lr": "0.5", "stop": {"grad_norm_below": "1e-3"}}
    snapshot = {"function": "x2", "lr": "0.5", "stop": {"grad_norm_below": "1e-3"}}
    validate(raw)
    assert raw == snapshot


@pytest.mark.parametrize(
    "raw, needles",
    [
        ([("function", "x2")], ["mapping"]),
        ("function: x2", ["mapping"]),
        ({}, ["function"]),
        ({"function": ""}, ["function"]),
        ({"function": None}, ["function"]),
        ({"function": 3}, ["function"]),
        ({"function": "x2", "lrr": 1}, ["lrr", "did you mean 'lr'"]),
        ({"function": "x2", "Lr": 1}, ["Lr"]),
        ({"function": "x2", "lr": 0}, ["lr"]),
        ({"function": "x2", "lr": -0.1}, ["lr"]),
        ({"function": "x2", "lr": True}, ["lr"]),
        ({"function": "x2", "lr": "fast"}, ["lr", "fast"]),
        ({"function": "x2", "lr": float("nan")}, ["lr"]),
        ({"function": "x2", "lr": float("inf")}, ["lr"]),
        ({"function": "x2", "lr": [0.1]}, ["lr"]),
        ({"function": "x2", "epochs": -1}, ["epochs"]),
        ({"function": "x2", "epochs": 2.5}, ["epochs"]),
        ({"function": "x2", "epochs": "ten"}, ["epochs", "ten"]),
        ({"function": "x2", "epochs": True}, ["epochs"]),
        ({"function": "x2", "dim": 0}, ["dim"]),
        ({"function": "x2", "seed": -1}, ["seed"]),
        ({"function": "x2", "every": -1}, ["every"]),
        ({"function": "x2", "backend": "jax"}, ["backend", "jax"]),
        ({"function": "x2", "device": "gpu"}, ["device", "gpu"]),
        ({"function": "x2", "dtype": "float16"}, ["dtype", "float16"]),
        ({"function": "x2", "optimizer": "adamm"}, ["optimizer", "adamm", "did you mean 'adam'"]),
        ({"function": "x2", "optimizer_options": {"momentm": 0.9}}, ["momentm", "momentum"]),
        ({"function": "x2", "optimizer_options": [0.9]}, ["optimizer_options"]),
        ({"function": "x2", "optimizer": "adam", "optimizer_options": {"betas": [1.5, 0.9]}}, ["betas", "1.5"]),
        ({"function": "x2", "schedule": {"name": "stepp"}}, ["schedule", "stepp", "step"]),
        ({"function": "x2", "schedule": {"name": "step"}}, ["step_size"]),
        ({"function": "x2", "clip_norm": 0}, ["clip_norm"]),
        ({"function": "x2", "clip_norm": 1, "clip_value": 1}, ["clip_norm", "clip_value"]),
        ({"function": "x2", "fit": {"model": "a*x", "data": {"x": [1], "y": [2]}}}, ["function", "fit", "not both"]),
        ({"name": "x"}, ["function", "fit", "neither"]),
        ({"function": "x2", "stop": 1}, ["stop"]),
        ({"function": "x2", "stop": {"grad_norm": 1}}, ["stop.grad_norm", "grad_norm_below"]),
        ({"function": "x2", "stop": {"grad_norm_below": 0}}, ["grad_norm_below"]),
        ({"function": "x2", "stop": {"diverge_above": -1}}, ["diverge_above"]),
        ({"function": "x2", "stop": {"diverge_above": None}}, ["diverge_above"]),
        ({"function": "x2", "init": 1, "init_range": [0, 1]}, ["init", "init_range"]),
    ],
)
def test_validate_rejects(raw, needles):
    one_line_error(validate, raw, needles=needles)


def test_value_below_may_be_negative_or_zero():
    assert validate({"function": "x2", "stop": {"value_below": -1}}).stop.value_below == -1.0
    assert validate({"function": "x2", "stop": {"value_below": 0}}).stop.value_below == 0.0
    assert validate({"function": "x2", "stop": None}).stop == Stop()


# ---------------------------------------------------------------------------- parse_init and parse_range


@pytest.mark.parametrize(
    "value, expected",
    [
        ("7.5", 7.5),
        (" -7.5 ", -7.5),
        ("1e-3", 0.001),
        (7.5, 7.5),
        (3, 3.0),
        ("x=1,y=2", {"x": 1.0, "y": 2.0}),
        ("x = 1 , y = -2.5", {"x": 1.0, "y": -2.5}),
        ("x1=0.5", {"x1": 0.5}),
        ("1,2", [1.0, 2.0]),
        ("1, -2, 3e2", [1.0, -2.0, 300.0]),
        ([1, 2], [1.0, 2.0]),
        ((1, "2"), [1.0, 2.0]),
        ({"x": 1, "y": "2"}, {"x": 1.0, "y": 2.0}),
        ({"x": 1}, {"x": 1.0}),
        (None, None),
    ],
)
def test_parse_init(value, expected):
    result = parse_init(value)
    assert result == expected
    assert type(result) is type(expected)
    if isinstance(result, list):
        assert all(type(v) is float for v in result)
    if isinstance(result, dict):
        assert all(type(v) is float for v in result.values())


@pytest.mark.parametrize(
    "value", ["abc", "", "x=1,2", "=1", "x=", "1,a", "1,,2", [], [1, "a"], [True], True, "nan", "inf", {"x": "a"}, {"x": None}, [float("nan")]]
)
def test_parse_init_rejects(value):
    one_line_error(parse_init, value, needles=["init"])


@pytest.mark.parametrize(
    "value, expected",
    [
        ("-1,1", (-1.0, 1.0)),
        (" -1000 , 1000 ", (-1000.0, 1000.0)),
        ("0,1e-3", (0.0, 0.001)),
        ([-1, 1], (-1.0, 1.0)),
        ((0, 2.5), (0.0, 2.5)),
        (["-1", "1"], (-1.0, 1.0)),
        (None, None),
    ],
)
def test_parse_range(value, expected):
    result = parse_range(value)
    assert result == expected
    if result is not None:
        assert isinstance(result, tuple) and all(type(v) is float for v in result)


@pytest.mark.parametrize("value", ["1", "2,1", "1,1", "a,b", "1,2,3", "", [1], [1, 2, 3], 5, "1,inf", "nan,1", {"low": 0, "high": 1}])
def test_parse_range_rejects(value):
    one_line_error(parse_range, value, needles=["init_range"])


# ---------------------------------------------------------------------------- apply_sets


def test_apply_sets_reads_yaml_scalars():
    data = apply_sets(
        {"function": "x2"},
        [
            "lr=0.05",
            "epochs=10",
            "name=my run",
            "seed=null",
            "init=[1, 2]",
            "dtype=float32",
            "every=",
            "init_range=-1,1",
        ],
    )
    assert data == {
        "function": "x2",
        "lr": 0.05,
        "epochs": 10,
        "name": "my run",
        "seed": None,
        "init": [1, 2],
        "dtype": "float32",
        "every": None,
        "init_range": "-1,1",
    }
    assert type(data["epochs"]) is int


def test_apply_sets_stop_keys_reach_into_stop_and_become_floats():
    assert yaml.safe_load("1e-6") == "1e-6"  # the PyYAML quirk this guards against
    raw = {"function": "x2", "stop": {"diverge_above": 1e6}}
    data = apply_sets(raw, ["stop.grad_norm_below=1e-6", "stop.value_below=-3"])
    assert data["stop"] == {"diverge_above": 1e6, "grad_norm_below": 1e-6, "value_below": -3}  # YAML 1.2 floats
    assert raw == {"function": "x2", "stop": {"diverge_above": 1e6}}, "apply_sets changed its input"
    config = validate(data)
    assert config.stop == Stop(grad_norm_below=1e-6, value_below=-3.0, diverge_above=1e6)
    assert type(config.stop.grad_norm_below) is float


def test_apply_sets_exponent_values_become_floats_after_validate():
    config = validate(apply_sets({"function": "x2"}, ["lr=1e-3", "stop.diverge_above=1e+50", "epochs=1000"]))
    assert config.lr == 0.001 and type(config.lr) is float
    assert config.stop.diverge_above == 1e50 and type(config.stop.diverge_above) is float
    assert config.epochs == 1000 and type(config.epochs) is int


def test_apply_sets_later_wins_and_whitespace_is_trimmed():
    data = apply_sets({"function": "x2", "lr": 0.1}, [" lr = 0.2", "lr=0.3"])
    assert data["lr"] == 0.3


def test_apply_sets_keeps_text_that_is_not_yaml():
    assert apply_sets({}, ["name=[1"])["name"] == "[1"
    assert apply_sets({}, ["function=x**2 + y**2"])["function"] == "x**2 + y**2"
    assert apply_sets({}, ["init=x=1,y=2"])["init"] == "x=1,y=2"


@pytest.mark.parametrize(
    "assignment, needles",
    [
        ("lr", ["--set", "KEY=VALUE", "'lr'"]),
        ("=1", ["--set"]),
        ("lrr=0.1", ["lrr", "did you mean 'lr'"]),
        ("init_rnage=0,1", ["init_rnage", "did you mean 'init_range'"]),
        ("stops=1", ["stops", "did you mean 'stop'"]),
    ],
)
def test_apply_sets_rejects(assignment, needles):
    one_line_error(apply_sets, {"function": "x2"}, [assignment], needles=needles)


def test_unknown_stop_key_from_set_is_rejected_by_validate():
    data = apply_sets({"function": "x2"}, ["stop.grad_norm=1e-6"])
    one_line_error(validate, data, needles=["stop.grad_norm", "did you mean 'grad_norm_below'"])


# ---------------------------------------------------------------------------- YAML round trip


ROUND_TRIP_CONFIGS = [
    {"function": "rosenbrock", "optimizer": "adam", "optimizer_options": {"betas": [0.8, 0.99], "amsgrad": True},
     "schedule": {"name": "sequential", "schedules": [{"name": "linear", "total_iters": 5}, {"name": "cosine", "T_max": 50}],
                  "milestones": [5]}, "clip_norm": 2.0},
    {"function": "x2"},
    {"function": "x**2 + y**2", "init": "x=1,y=-2.5", "lr": 0.1, "epochs": 7},
    {"function": "(1-x)**2 + 100*(y-x**2)**2", "init": [-1, 2], "lr": 1e-3, "stop": {"grad_norm_below": 1e-8}},
    {"function": "sphere", "dim": 3, "init": 0.5, "backend": "torch", "device": "auto", "dtype": "float32"},
    {"function": "sphere", "init_range": "-5.12,5.12", "seed": 42, "every": 5},
    {"function": "x2", "name": "run: 1 # not a comment", "stop": {"value_below": -1e-300, "diverge_above": 1e300}},
    {"function": "x2", "name": "yes", "init": {"x": 1e-310}},
    {"function": "x2", "name": "1e3", "lr": 0.1 + 0.2},
    {"function": "x2", "name": "null"},
    {"function": "x2", "name": "ünïcødé ✓"},
    {"function": "sin(x) + 'y'"},  # validate does not parse the expression; the text must survive
]


@pytest.mark.parametrize("raw", ROUND_TRIP_CONFIGS)
def test_to_yaml_round_trip(raw):
    config = validate(raw)
    text = to_yaml(config)
    loaded = yaml.safe_load(text)
    assert isinstance(loaded, dict)
    assert set(loaded) == set(KEYS) - {"fit"}  # a function's config has no fit part (a fit's: no function, dim)
    again = validate(loaded)
    assert again == config
    assert to_yaml(again) == text


def test_to_yaml_round_trip_through_a_file(tmp_path):
    config = validate({"function": "x**2 + y**2", "init": "x=0.1,y=0.2", "stop": {"grad_norm_below": "1e-6"}})
    path = tmp_path / "config.yaml"
    path.write_text(to_yaml(config))
    assert validate(load_yaml(path)) == config


def test_load_yaml_reads_a_mapping(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("function: x2\nlr: 1e-3\nstop:\n  grad_norm_below: 1.0e-6\n")
    assert load_yaml(path) == {"function": "x2", "lr": 1e-3, "stop": {"grad_norm_below": 1e-6}}  # YAML 1.2 floats


def test_load_yaml_never_constructs_python_objects(tmp_path):
    path = tmp_path / "evil.yaml"
    path.write_text("function: !!python/object/apply:os.system ['echo hacked']\n")
    one_line_error(load_yaml, path, needles=["evil.yaml"])


@pytest.mark.parametrize(
    "content, needles",
    [
        (None, ["not found"]),
        ("", ["empty"]),
        ("function: [x2\n", ["c.yaml"]),
        ("- a\n- b\n", ["mapping", "list"]),
        ("just text\n", ["mapping", "str"]),
    ],
)
def test_load_yaml_errors(tmp_path, content, needles):
    path = tmp_path / "c.yaml"
    if content is not None:
        path.write_text(content)
    one_line_error(load_yaml, path, needles=needles)


# ---------------------------------------------------------------------------- a run's config.yaml re-runs


def _final_params(run_dir):
    record = read_run(run_dir)
    return record.summary["status"], record.summary["params"], record.summary["init"]


@pytest.mark.parametrize(
    "args",
    [
        ["x**2 + 3*y**2 + x*y", "--init", "x=1.5,y=-2", "--lr", "0.05", "--epochs", "25"],
        ["sphere", "--dim", "3", "--init-range=-2,2", "--lr", "0.1", "--epochs", "15"],
        ["x2", "--lr", "0.1", "--epochs", "10", "--set", "stop.grad_norm_below=1e-6"],
        ["(1-x)**2 + 100*(y-x**2)**2", "--init", "-1,2", "--lr", "1e-3", "--epochs", "30", "--backend", "torch"],
    ],
    ids=["expression", "init-range-drawn-seed", "builtin-with-stop", "torch"],
)
def test_run_config_yaml_reruns_to_the_same_params(gdrun, args):
    first = gdrun("minimize", *args, "-q")
    assert first.code == 0, first.err
    (run_dir,) = first.run_dirs()
    config_path = run_dir / "config.yaml"
    saved = yaml.safe_load(config_path.read_text())
    validate(saved)  # the saved config is itself a valid config

    second = gdrun("run", str(config_path), "-q")
    assert second.code == 0, second.err
    dirs = second.run_dirs()
    assert len(dirs) == 2
    (rerun_dir,) = [d for d in dirs if d != run_dir]
    status1, params1, init1 = _final_params(run_dir)
    status2, params2, init2 = _final_params(rerun_dir)
    assert init2 == init1
    assert params2 == params1  # exactly: same config, same start, same arithmetic
    assert status2 == status1
    assert all(isinstance(v, float) and math.isfinite(v) for v in params1.values())
    # and the re-run records the same config (so it can be re-run again)
    assert yaml.safe_load((rerun_dir / "config.yaml").read_text()) == saved


def test_fit_config_round_trips():
    raw = {"fit": {"model": "a*x + b", "data": {"x": [1, 2, 3], "y": [2, 4, 6]}, "batch_size": 2, "freeze": ["b"]},
           "init": {"a": 1, "b": 0.5}, "schedule": {"name": "step", "step_size": 3}}  # fmt: skip
    config = validate(raw)
    loaded = yaml.safe_load(to_yaml(config))
    assert "function" not in loaded and "dim" not in loaded
    assert validate(loaded) == config


# ---------------------------------------------------------------------------- let: intermediate names


@pytest.mark.parametrize(
    "value",
    [
        {"z": "x + y", "f": "z**2"},
        ["z=x + y", "f=z**2"],
        [["z", "x + y"], ["f", "z**2"]],
        [{"z": "x + y"}, {"f": "z**2"}],
        "z=x + y,f=z**2",
    ],
)
def test_let_forms_are_read_in_order(value):
    config = validate({"function": "f + y**3", "let": value})
    assert config.let == (("z", "x + y"), ("f", "z**2"))


def test_let_round_trips_through_yaml_and_set():
    import yaml

    from gdrun.config import apply_sets, to_yaml

    config = validate({"function": "f + y**3", "let": {"z": "x + y", "f": "z**2"}})
    text = to_yaml(config)
    assert "let: {z: x + y, f: z**2}" in text
    assert validate(yaml.safe_load(text)) == config
    assert "let: {}" in to_yaml(validate({"function": "x2"}))  # every key is written, as the others
    assert validate(apply_sets({"function": "f + y**3"}, ["let=[z=x + y, f=z**2]"])) == config
    assert validate(apply_sets({"function": "f + y**3"}, ["let={z: x + y, f: z**2}"])) == config
    assert validate(config.to_dict()) == config  # as compare.py re-validates


@pytest.mark.parametrize(
    "raw, needle",
    [
        ({"function": "rosenbrock", "let": {"z": "x"}}, "let defines names for an expression; 'rosenbrock' is a built-in"),
        ({"fit": {"model": "w*x", "data": {"x": [1, 2], "y": [2, 4]}}, "let": {"z": "x"}}, "does not go with fit"),
        ({"function": "z", "let": {"z": "x", "w": "y"}}, "let w is not used by the expression"),
        ({"function": "f", "let": ["f=z**2", "z=x"]}, "let f uses z, which is defined after it"),
        ({"function": "z", "let": ["z=x", "z=y"]}, "let z is defined twice"),
        ({"function": "z", "let": ["zx"]}, "let must look like NAME=EXPR"),
        ({"function": "z", "let": 5}, "let must be a mapping"),
        ({"function": "z", "let": {"z": "x +"}}, "let z: invalid expression 'x +'"),
        ({"function": "z", "let": {"where": "x"}}, "not used"),
    ],
)
def test_let_rejects(raw, needle):
    with pytest.raises(GdrunError) as info:
        validate(raw)
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_let_alias_is_suggested():
    with pytest.raises(GdrunError, match="did you mean 'let'"):
        validate({"function": "z", "where": {"z": "x"}})


def test_sweep_structure_includes_let():
    from gdrun.sweeps import structure

    a = validate({"function": "z**2", "let": {"z": "x + 1"}})
    b = validate({"function": "z**2", "let": {"z": "x + 2"}})
    assert structure(a) != structure(b)
