"""gdrun.schema: the JSON Schema of a config file accepts every shipped config, refuses what the
validator refuses, and is generated from the validator's own definitions (keys, enums, option names)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from gdrun.config import FIELDS, KEYS, STOP_KEYS, load_yaml, to_yaml, validate
from gdrun.errors import GdrunError
from gdrun.inputs import load_yaml_text
from gdrun.schema import DIALECT, config_schema

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
CONFIG_FILES = sorted(p for p in CONFIGS.rglob("*") if p.suffix in (".yaml", ".yml"))
SCHEMA = config_schema()
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def gdrun_accepts(raw: dict) -> bool:
    """Whether gdrun's validator takes ``raw``; a sweep's, as gdrun sweep does: each config it makes."""
    from gdrun.sweeps import validate_configs, validate_sweep

    raw = dict(raw)
    try:
        if "compare" in raw:
            from gdrun.compare import compare_config, validate_protocol
            from gdrun.expect import validate_compare_expect

            settings, expect = compare_config(raw)
            protocol = validate_protocol(settings)
            if expect is not None:
                validate_compare_expect(expect, protocol.variants)
        elif "sweep" in raw:
            validate_configs(raw, validate_sweep(raw.pop("sweep")))
        else:
            validate(raw)
    except GdrunError:
        return False
    return True


def schema_errors(raw: dict) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}" for e in VALIDATOR.iter_errors(raw)]


# ---------------------------------------------------------------------------- the schema itself


def test_schema_is_a_valid_draft_2020_12_schema():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == DIALECT == "https://json-schema.org/draft/2020-12/schema"
    assert SCHEMA["title"] and SCHEMA["type"] == "object" and SCHEMA["additionalProperties"] is False
    assert "$id" not in json.dumps(SCHEMA)
    assert json.loads(json.dumps(SCHEMA, indent=2)) == SCHEMA  # what gdrun schema prints is the whole of it
    assert config_schema() == SCHEMA  # pure: the same every time


def test_every_key_has_a_short_description():
    for key, fragment in SCHEMA["properties"].items():
        text = fragment["description"]
        assert text and "\n" not in text and len(text) <= 240, key


def test_schema_import_is_light():
    code = ("import sys, gdrun.schema; gdrun.schema.config_schema(); "
            "print([m for m in ('torch', 'sympy', 'matplotlib') if m in sys.modules])")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# ---------------------------------------------------------------------------- the shipped configs


def test_configs_folder_has_yaml_files():
    assert len(CONFIG_FILES) >= 10
    assert any("sweep" in load_yaml(p) for p in CONFIG_FILES)


@pytest.mark.parametrize("path", CONFIG_FILES, ids=lambda p: p.relative_to(CONFIGS).as_posix())
def test_config_file_validates_against_the_schema(path):
    raw = load_yaml(path)
    assert schema_errors(raw) == []
    assert gdrun_accepts(raw)


@pytest.mark.parametrize("path", CONFIG_FILES, ids=lambda p: p.relative_to(CONFIGS).as_posix())
def test_a_runs_config_yaml_validates_against_the_schema(path):
    """The canonical config a run records (every key, expect: with its tolerances) fits the schema too."""
    raw = load_yaml(path)
    if "compare" in raw:
        pytest.skip("a comparison records its protocol in compare.yaml, not a config.yaml")
    raw.pop("sweep", None)
    assert schema_errors(load_yaml_text(to_yaml(validate(raw)), "config.yaml")) == []


# ---------------------------------------------------------------------------- bad configs fail both

X2 = {"function": "x2"}
FIT = {"fit": {"model": "w*x", "data": {"x": [1, 2], "y": [2, 4]}}}
SWEEP = {**X2, "sweep": {"params": {"lr": [0.01, 0.1]}}}
BAD = {
    "unknown key": {**X2, "learning_rate": 0.1},
    "unknown backend": {**X2, "backend": "jax"},
    "unknown device": {**X2, "device": "tpu"},
    "unknown dtype": {**X2, "dtype": "float16"},
    "unknown optimizer": {**X2, "optimizer": "adamw2"},
    "negative lr": {**X2, "lr": -1},
    "zero lr": {**X2, "lr": 0},
    "lr as a word": {**X2, "lr": "fast"},
    "lr as a list": {**X2, "lr": [0.1]},
    "fractional epochs": {**X2, "epochs": 1.5},
    "fractional epochs as text": {**X2, "epochs": "1.5"},
    "negative epochs": {**X2, "epochs": -1},
    "too many epochs": {**X2, "epochs": 10**10},
    "boolean epochs": {**X2, "epochs": True},
    "dim 0": {**X2, "dim": 0},
    "negative seed": {**X2, "seed": -1},
    "explain as text": {**X2, "explain": "yes"},
    "name as a list": {**X2, "name": ["a"]},
    "neither function nor fit": {"lr": 0.1},
    "function and fit": {**X2, **FIT},
    "function not text": {"function": 3},
    "init and init_range": {**X2, "init": 1, "init_range": [-1, 1]},
    "clip_norm and clip_value": {**X2, "clip_norm": 1, "clip_value": 1},
    "negative clip_norm": {**X2, "clip_norm": -1},
    "init_range of three": {**X2, "init_range": [1, 2, 3]},
    "init of words": {**X2, "init": "x=a"},
    "empty init list": {**X2, "init": []},
    "unknown stop key": {**X2, "stop": {"tol": 1e-6}},
    "negative grad_norm_below": {**X2, "stop": {"grad_norm_below": -1}},
    "loss_below and value_below": {**X2, "stop": {"loss_below": 1, "value_below": 1}},
    "option of another optimizer": {**X2, "optimizer": "sgd", "optimizer_options": {"betas": [0.9, 0.99]}},
    "unknown option": {**X2, "optimizer": "adam", "optimizer_options": {"momentum": 0.9}},
    "default optimizer's options": {**X2, "optimizer_options": {"amsgrad": True}},
    "flag option as a number": {**X2, "optimizer": "adam", "optimizer_options": {"amsgrad": 1}},
    "betas of three": {**X2, "optimizer": "adam", "optimizer_options": {"betas": [0.9, 0.99, 0.999]}},
    "unknown schedule": {**X2, "schedule": "warmup"},
    "schedule without its required option": {**X2, "schedule": {"name": "step"}},
    "bare name of a schedule that needs options": {**X2, "schedule": "cosine"},
    "schedule with another's option": {**X2, "schedule": {"name": "step", "step_size": 2, "T_max": 3}},
    "schedule option as a word": {**X2, "schedule": {"name": "exponential", "gamma": "half"}},
    "let with fit": {**FIT, "let": {"z": "w*x"}},
    "let with a built-in": {**X2, "let": {"z": "x + 1"}},
    "let without =": {"function": "z", "let": ["z"]},
    "fit without data": {"fit": {"model": "w*x"}},
    "unknown fit key": {"fit": {**FIT["fit"], "epochs": 3}},
    "unknown loss": {"fit": {**FIT["fit"], "loss": "cross_entropy"}},
    "batch_size 0": {"fit": {**FIT["fit"], "batch_size": 0}},
    "batch_size as a word": {"fit": {**FIT["fit"], "batch_size": "half"}},
    "shuffle as text": {"fit": {**FIT["fit"], "shuffle": "yes"}},
    "predict as words": {"fit": {**FIT["fit"], "predict": "a,b"}},
    "unknown expectation": {**X2, "expect": {"state": "converged"}},
    "unknown status": {**X2, "expect": {"status": "finished"}},
    "unknown regime": {**X2, "expect": {"regime": "chaotic"}},
    "expects nothing": {**X2, "expect": {"atol": 1}},
    "empty expect list": {**X2, "expect": []},
    "value and loss": {**X2, "expect": {"value": 1, "loss": 1}},
    "negative atol": {**X2, "expect": {"value": 1, "atol": -1}},
    "unknown entry key": {**X2, "expect": {"value": {"value": 1, "tol": 1}}},
    "entry without value": {**X2, "expect": {"value": {"atol": 1}}},
    "unknown condition": {**X2, "expect": {"when": {"lr": {"under": 1}}, "status": "converged"}},
    "condition on no config key": {**X2, "expect": {"when": {"rate": 1}, "status": "converged"}},
    "gradient as a word": {**X2, "expect": {"gradient": {"x": "zero"}}},
    "unknown sweep key": {**X2, "sweep": {"params": {"lr": [0.1]}, "repeat": 2}},
    "unknown sweep kind": {**X2, "sweep": {"params": {"lr": [0.1]}, "kind": "latin"}},
    "sweep without params": {**X2, "sweep": {"kind": "grid"}},
    "sweep of no config key": {**X2, "sweep": {"params": {"learning_rate": [0.1]}}},
    "random sweep without n": {**X2, "sweep": {"params": {"lr": {"uniform": [0.1, 1]}}, "kind": "random"}},
    "grid sweep with n": {**X2, "sweep": {"params": {"lr": [0.1]}, "n": 3}},
    "unknown range": {**X2, "sweep": {"params": {"lr": {"geomspace": [0.1, 1, 3]}}}},
    "linspace of two": {**X2, "sweep": {"params": {"lr": {"linspace": [0.1, 1]}}}},
    "record_every 0": {**X2, "sweep": {"params": {"lr": [0.1]}, "record_every": 0}},
}  # fmt: skip


@pytest.mark.parametrize("raw", BAD.values(), ids=BAD.keys())
def test_bad_config_fails_the_schema_and_gdrun(raw):
    assert schema_errors(raw), "the schema accepts it"
    assert not gdrun_accepts(raw), "gdrun accepts it"


GOOD = {
    "lr as text": {**X2, "lr": "1e-3"},
    "epochs as text": {**X2, "epochs": " 1_000 "},
    "epochs with an exponent": {**X2, "epochs": "1e3"},
    "epochs as a whole float": {**X2, "epochs": 10.0},
    "init as pairs": {"function": "x**2 + y**2", "init": "x=1, y=2"},
    "init as a list in text": {"function": "x**2 + y**2", "init": "1,2"},
    "init_range as text": {**X2, "init_range": "-1,1"},
    "seed of 64 bits": {**X2, "seed": 2**64 - 1},
    "nulls take the defaults": {**X2, "dim": None, "seed": None, "init": None, "schedule": None, "expect": None,
                                "explain": None, "clip_norm": None, "optimizer_options": None, "stop": None},
    "options of the optimizer": {**X2, "optimizer": "adam",
                                 "optimizer_options": {"betas": [0.9, "0.99"], "eps": "1e-8"}},
    "sgd's options by default": {**X2, "optimizer_options": {"momentum": 0.9, "nesterov": True}},
    "bare schedule name": {**X2, "schedule": "linear"},
    "sequential schedule": {**X2, "schedule": {"name": "sequential", "milestones": [5],
                                               "schedules": [{"name": "linear", "total_iters": 5}, "constant"]}},
    "let as text": {"function": "f", "let": "z=x+1, f=z**2"},
    "let as a list": {"function": "f", "let": ["z=x+1", {"f": "z**2"}]},
    "fit with the CLI's forms": {"fit": {**FIT["fit"], "batch_size": "full", "freeze": "", "inputs": "x",
                                         "predict": "3, 4", "loss": "huber", "huber_delta": "0.5"}},
    "fit from a CSV file": {"fit": {"model": "w*x", "data": {"csv": "points.csv", "columns": {"x": "t", "y": "v"}}}},
    "expect with every key": {**X2, "expect": {"status": ["converged", "max_epochs"], "params": {"x": "0.0"},
                                               "value": {"value": 0, "atol": 1e-9}, "steps_at_most": "100",
                                               "regime": "converging", "gradient": {"x": "None (no path)"},
                                               "rtol": 0, "when": {"optimizer_options.momentum": {"in": [0, 0.9]}}}},
    "random sweep": {**X2, "sweep": {"kind": "random", "n": 5, "seed": 0,
                                     "params": {"lr": {"loguniform": [1e-3, 1]}, "optimizer": ["sgd", "adam"]}}},
    "sweep over a nested key": {**X2, "sweep": {"params": {"stop.grad_norm_below": [1e-6, 1e-8],
                                                           "seed": {"range": [0, 3]}}}},
    "sweep over the optimizer with another's options": {**X2, "optimizer_options": {"betas": [0.8, 0.9]},
                                                        "sweep": {"params": {"optimizer": ["adam", "nadam"]}}},
}  # fmt: skip


@pytest.mark.parametrize("raw", GOOD.values(), ids=GOOD.keys())
def test_good_config_passes_the_schema_and_gdrun(raw):
    assert schema_errors(raw) == []
    assert gdrun_accepts(raw)


# ---------------------------------------------------------------------------- one source: keys and enums


def test_schema_keys_are_the_config_keys():
    assert set(FIELDS) == set(KEYS)
    assert list(SCHEMA["properties"]) == [*KEYS, "sweep", "compare"]
    for key in KEYS:
        assert SCHEMA["properties"][key]["description"].startswith(FIELDS[key].description)  # expect: adds a comparison's rules


def test_schema_enums_are_the_validators_registries():
    from gdrun.backends import BACKENDS, DEVICES, DTYPES
    from gdrun.diagnostics import REGIMES
    from gdrun.expect import CONDITIONS, ENTRY_KEYS, RULE_KEYS, STATUSES
    from gdrun.fitting import FIT_KEYS, LOSSES
    from gdrun.optim import OPTIMIZER_OPTIONS, OPTIMIZERS
    from gdrun.schedules import SCHEDULE_OPTIONS, SCHEDULES
    from gdrun.sweeps import DISTRIBUTIONS, KINDS, RANGES, SWEEP_KEYS

    props, defs = SCHEMA["properties"], SCHEMA["$defs"]
    for key, registry in {"backend": BACKENDS, "device": DEVICES, "dtype": DTYPES, "optimizer": OPTIMIZERS}.items():
        assert props[key]["enum"] == list(registry)
    assert list(props["stop"]["anyOf"][0]["properties"]) == list(STOP_KEYS)
    assert list(props["fit"]["properties"]) == list(FIT_KEYS)
    assert props["fit"]["properties"]["loss"]["enum"] == list(LOSSES)
    options = props["optimizer_options"]["anyOf"][0]["properties"]
    assert set(options) == {name for table in OPTIMIZER_OPTIONS.values() for name in table}
    by_optimizer = {rule["if"]["properties"]["optimizer"]["const"]: rule["then"]["properties"]["optimizer_options"]
                    for rule in SCHEMA["else"]["allOf"][0]["else"]["allOf"]}  # fmt: skip
    assert {k: list(v["anyOf"][0]["properties"]) for k, v in by_optimizer.items()} == \
        {k: list(v) for k, v in OPTIMIZER_OPTIONS.items()}  # fmt: skip
    bare, table = defs["schedule"]["anyOf"]
    assert table["properties"]["name"]["enum"] == list(SCHEDULES) and set(bare["enum"]) < set(SCHEDULES)
    per_schedule = {rule["if"]["properties"]["name"]["const"]: rule["then"]["properties"] for rule in table["allOf"]}
    assert {k: [o for o in v if o != "name"] for k, v in per_schedule.items()} == \
        {k: list(v) for k, v in SCHEDULE_OPTIONS.items()}  # fmt: skip
    rule = defs["rule"]["properties"]
    assert list(rule) == list(RULE_KEYS)
    assert rule["status"]["anyOf"][0]["enum"] == list(STATUSES)
    assert rule["regime"]["anyOf"][0]["enum"] == list(REGIMES)
    entry = rule["value"]["anyOf"][1]
    assert list(entry["properties"]) == list(ENTRY_KEYS)
    condition = rule["when"]["anyOf"][0]["additionalProperties"]["anyOf"][1]
    assert list(condition["properties"]) == list(CONDITIONS)
    sweep = props["sweep"]
    assert list(sweep["properties"]) == list(SWEEP_KEYS) and sweep["properties"]["kind"]["enum"] == list(KINDS)
    assert list(sweep["properties"]["params"]["additionalProperties"]["anyOf"][1]["properties"]) == \
        [*RANGES, *DISTRIBUTIONS]  # fmt: skip


def test_a_registry_change_reaches_the_schema_and_the_validator(monkeypatch):
    """The enum and the validator's choices are one tuple: change it and both follow."""
    import gdrun.config

    monkeypatch.setattr(gdrun.config, "DTYPES", ("float64", "float32", "bfloat16"))
    assert config_schema()["properties"]["dtype"]["enum"] == ["float64", "float32", "bfloat16"]
    with pytest.raises(GdrunError, match="bfloat16"):
        validate({**X2, "dtype": "float16"})


@pytest.mark.parametrize("text", ["1", " 10 ", "+3", "1_000", "10.", "10.0", "1.0_0", ".0", "1e3", "1.5e1", "2E+2",
                                  "1e-3", "1.5", "-.5", "1e", "e3", "ten", "nan", "inf", "1,000", "0x10"])
def test_whole_numbers_as_text_never_refused_where_gdrun_takes_them(text):
    """The schema cannot read a text's value: it may take what gdrun refuses ("1e-3" epochs), never the reverse."""
    taken = gdrun_accepts({**X2, "epochs": text})
    assert not taken or not schema_errors({**X2, "epochs": text})
    if text in ("1.5", "-.5", "1e", "e3", "ten", "nan", "inf", "1,000", "0x10"):
        assert not taken and schema_errors({**X2, "epochs": text})


def test_a_comparison_file_fits_its_own_part_of_the_schema():
    from dataclasses import fields

    from gdrun.compare import CONFIG_KEYS, Protocol

    good = {"function": "rosenbrock", "epochs": 100, "compare": {"optimizers": "sgd,adam", "target": 1e-6},
            "expect": [{"optimizer": "adam", "solved_at_least": 0.9}]}  # fmt: skip
    assert schema_errors(good) == [] and gdrun_accepts(good)
    part = SCHEMA["properties"]["compare"]["properties"]
    assert set(part) == {f.name for f in fields(Protocol)} - {"variants", *CONFIG_KEYS} | {"optimizers"}
    for bad in ({**good, "lr": 0.1},  # a run's key in a comparison's file
                {**good, "compare": {"optimizers": "sgd", "budgets": 5}},
                {**good, "compare": {"optimizers": "sgd", "search": "bayes"}},
                {**good, "expect": {"optimizer": "adam", "solved": 0.9}},
                {**good, "expect": {"optimizer": "adam", "solved_at_least": 1.5}}):  # fmt: skip
        assert schema_errors(bad) != [] and not gdrun_accepts(bad), bad


def test_the_schema_command_prints_it(gdrun):
    r = gdrun("schema")
    assert r.code == 0 and r.err == ""
    assert json.loads(r.out) == config_schema()
