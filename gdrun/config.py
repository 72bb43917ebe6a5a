"""The experiment config: schema, defaults, YAML loading, ``--set`` overrides and validation.

A config is a flat mapping whose keys are named as the CLI flags (``lr``, ``epochs``,
``init_range``...), plus the ``stop`` mapping. Every value is checked here, before anything runs
or is written, and a bad one is a one-line :class:`GdrunError` naming the key.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Callable, Iterable

from . import schema
from .backends import BACKENDS, DEVICES, DTYPES
from .errors import GdrunError, closest
from .expect import unwritten, validate_expect
from .inputs import MAX_DIM, MAX_EPOCHS, load_yaml_file, load_yaml_text, number, show, yaml_value

STOP_KEYS = ("grad_norm_below", "value_below", "loss_below", "diverge_above")


@dataclass(frozen=True)
class Stop:
    grad_norm_below: float | None = None
    value_below: float | None = None
    diverge_above: float = 1e100


@dataclass(frozen=True)
class Config:
    function: str | None = None  # what to minimise: a built-in name or an expression...
    fit: Any = None  # ...or a model to fit to data (a fit.FitSpec)
    let: tuple[tuple[str, str], ...] = ()  # intermediate names of the function's expression: (name, text), in order
    name: str | None = None
    dim: int | None = None
    backend: str = "numpy"
    device: str = "cpu"
    dtype: str = "float64"
    optimizer: str = "sgd"
    optimizer_options: dict = field(default_factory=dict)  # e.g. {momentum: 0.9}; torch.optim's defaults
    schedule: Any = None  # e.g. {name: step, step_size: 10, gamma: 0.5}; None: a constant lr
    clip_norm: float | None = None  # clip each gradient to this 2-norm (torch's clip_grad_norm_)
    clip_value: float | None = None  # clip each gradient component to [-v, v] (clip_grad_value_)
    lr: float = 0.01
    epochs: int = 100
    init: Any = None  # number, list, or mapping name -> number; None: the function's default init
    init_range: tuple[float, float] | None = None
    seed: int | None = None
    stop: Stop = field(default_factory=Stop)
    every: int = 0  # show every Nth step; 0 = about 20 rows
    expect: Any = None  # what the run must reach (gdrun check); canonical form of expect.validate_expect
    explain: bool | None = None  # diagnostics (why the run went so); None: on for a run, off per config of a sweep

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if data["init_range"] is not None:
            data["init_range"] = list(data["init_range"])
        data["let"] = dict(self.let)  # name -> text, in order: YAML and JSON hold it, validate reads it back
        return data


KEYS = tuple(f.name for f in fields(Config))
NESTED_KEYS = ("stop", "optimizer_options", "schedule", "fit")  # --set stop.grad_norm_below=1e-6 reaches in
#: keys other tools use for gdrun's: the suggestion for an unknown config key
KEY_ALIASES = {
    "learning_rate": "lr", "learningrate": "lr", "step_size": "lr",
    "steps": "epochs", "n_steps": "epochs", "num_steps": "epochs", "max_steps": "epochs", "iterations": "epochs",
    "iters": "epochs", "n_iter": "epochs", "max_iter": "epochs", "maxiter": "epochs", "max_iters": "epochs",
    "num_iterations": "epochs", "n_epochs": "epochs", "num_epochs": "epochs", "max_epochs": "epochs",
    "x0": "init", "x_0": "init", "initial": "init", "initial_point": "init", "start": "init", "starting_point": "init",
    "params": "init", "optim": "optimizer", "opt": "optimizer", "method": "optimizer", "solver": "optimizer",
    "options": "optimizer_options", "optimizer_kwargs": "optimizer_options", "opt_options": "optimizer_options",
    "momentum": "optimizer_options.momentum", "weight_decay": "optimizer_options.weight_decay",
    "betas": "optimizer_options.betas", "eps": "optimizer_options.eps", "nesterov": "optimizer_options.nesterov",
    "scheduler": "schedule", "lr_schedule": "schedule", "lr_scheduler": "schedule",
    "random_seed": "seed", "rng_seed": "seed", "random_state": "seed", "tol": "stop.grad_norm_below",
    "gtol": "stop.grad_norm_below", "tolerance": "stop.grad_norm_below", "ftol": "stop.value_below",
    "target": "stop.value_below", "fun": "function", "func": "function", "objective": "function", "f": "function",
    "precision": "dtype", "framework": "backend", "engine": "backend", "grad_clip": "clip_norm",
    "max_grad_norm": "clip_norm", "clip_grad_norm": "clip_norm", "clip_grad_value": "clip_value",
    "dimension": "dim", "dims": "dim", "n_dim": "dim", "ndim": "dim", "log_every": "every", "print_every": "every",
    "expected": "expect", "expectations": "expect",
    "where": "let", "define": "let", "defines": "let", "definitions": "let", "defs": "let", "intermediates": "let",
}  # fmt: skip


def suggest_key(key: Any, keys: tuple[str, ...] = KEYS) -> str:
    """`` (did you mean 'lr'?)`` for an unknown config key: the gdrun name of a key other tools
    use (learning_rate, max_iter, x0...), else the closest spelling, else ``''``."""
    alias = KEY_ALIASES.get(str(key).strip().lower().replace("-", "_"), "")
    if alias.partition(".")[0] in keys:
        return f" (did you mean '{alias}'?)"
    return closest(str(key), keys)


# ---------------------------------------------------------------------------- value checks


def _number(key: str, value: Any) -> float:
    return number(key, value)


def _integer(key: str, value: Any, minimum: int, maximum: int | None = None) -> int:
    return number(key, value, integer=True, low=minimum, high=maximum)


def _choice(key: str, value: Any, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise GdrunError(f"{key} must be one of {', '.join(choices)}, got {show(value)}{closest(str(value), choices)}")
    return value


def parse_init(value: Any) -> Any:
    """``7.5``, ``"x=1,y=2"``, ``"1,2"``, ``[1, 2]`` or ``{x: 1, y: 2}`` -> float, list or dict."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if "=" in text:
            pairs = {}
            for part in text.split(","):
                name, sep, number = part.partition("=")
                if not sep or not name.strip():
                    raise GdrunError(f"init must look like x=1,y=2, got {show(value)}")
                if name.strip() in pairs:
                    raise GdrunError(f"init gives {name.strip()} twice: {show(value)}")
                pairs[name.strip()] = number
            value = pairs
        elif "," in text:
            value = text.split(",")
        else:
            return _number("init", text)
    if isinstance(value, dict):
        return {str(k): _number(f"init.{k}", v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        if not value:
            raise GdrunError("init must not be an empty list")
        return [_number("init", v) for v in value]
    return _number("init", value)


def parse_let(value: Any) -> tuple[tuple[str, str], ...]:
    """The intermediate names of ``let``, in order, as (name, text) pairs, from a mapping
    (``{z: x + y, f: z**2}``), a list of ``"name=expr"`` strings (or of pairs, or of one-key
    mappings), or one string ``"z=x+y,f=z**2"`` (expressions have no commas). The names and
    expressions themselves are checked by expr.parse."""
    if value is None:
        return ()
    if isinstance(value, str):
        value = [part for part in value.split(",") if part.strip()]
    if isinstance(value, dict):
        items = list(value.items())
    elif isinstance(value, (list, tuple)):
        items = []
        for item in value:
            if isinstance(item, str):
                name, sep, text = item.partition("=")
                if not sep or not name.strip() or not text.strip():
                    raise GdrunError(f"let must look like NAME=EXPR, got {show(item)}")
                items.append((name.strip(), text.strip()))
            elif isinstance(item, dict) and len(item) == 1:
                items.append(next(iter(item.items())))
            elif isinstance(item, (list, tuple)) and len(item) == 2:
                items.append((item[0], item[1]))
            else:
                raise GdrunError(f"let must look like NAME=EXPR, got {show(item)}")
    else:
        raise GdrunError(f"let must be a mapping of names to expressions or a list of NAME=EXPR, got {show(value)}")
    pairs = []
    for name, text in items:
        if isinstance(text, (int, float)) and not isinstance(text, bool):
            text = repr(text)
        if not isinstance(name, str) or not isinstance(text, str):
            raise GdrunError(f"let must map names to expressions, got {show(name)}: {show(text)}")
        pairs.append((name.strip(), text))
    return tuple(pairs)


def _check_let(function: Any, has_fit: bool, let: tuple[tuple[str, str], ...]) -> None:
    """``let`` goes with an expression to minimize: not a fit, not a built-in; its names and
    expressions are parsed now (no sympy), so a bad one stops the run before anything is written."""
    if has_fit:
        raise GdrunError("let defines names for the function's expression; it does not go with fit")
    from .functions import REGISTRY

    if function.strip().lower() in REGISTRY:
        raise GdrunError(f"let defines names for an expression; '{function.strip()}' is a built-in function")
    from .expr import parse

    _check_once(("let", function, let), lambda: parse(function, let=let))


def parse_pairs(key: str, value: Any) -> dict[str, str]:
    """``"x=time,y=value"`` or a mapping -> {"x": "time", "y": "value"}."""
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items()}
    pairs: dict[str, str] = {}
    for part in str(value).split(","):
        name, sep, other = part.partition("=")
        if not sep or not name.strip() or not other.strip():
            raise GdrunError(f"{key} must look like x=HEAD,y=HEAD, got {show(value)}")
        pairs[name.strip()] = other.strip()
    return pairs


def split_top_level(text: str, sep: str = ",") -> list[str]:
    """Split at ``sep`` outside brackets: "sgd,adam:betas=[0.9,0.99]" -> ["sgd", "adam:betas=[0.9,0.99]"]."""
    parts, depth, current = [], 0, ""
    for ch in text:
        depth += ch in "[({" and 1 or (-1 if ch in "])}" else 0)
        if ch == sep and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    return [p.strip() for p in parts]


def parse_spec(flag: str, text: str) -> dict[str, Any]:
    """``"step:step_size=10:gamma=0.5"`` -> {"name": "step", "step_size": 10, "gamma": 0.5};
    values are read as YAML (``betas=[0.9,0.99]``, ``nesterov=true``, ``eps=1e-8``)."""
    name, *options = text.split(":")
    if not name.strip():
        raise GdrunError(f"{flag} needs NAME[:KEY=VALUE...], got {show(text)}")
    spec: dict[str, Any] = {"name": name.strip()}
    for option in options:
        key, sep, value = option.partition("=")
        if not sep or not key.strip():
            raise GdrunError(f"{flag}: options look like KEY=VALUE, got {show(option)} in {show(text)}")
        try:
            spec[key.strip()] = load_yaml_text(value, flag) if value.strip() else None
        except GdrunError:
            raise GdrunError(f"{flag}: cannot read the value of {show(key.strip())} in {show(text)}") from None
    return spec


def parse_range(value: Any) -> tuple[float, float] | None:
    """``"-1000,1000"`` or ``[-1000, 1000]`` -> (low, high) with low < high."""
    if value is None:
        return None
    parts = value.split(",") if isinstance(value, str) else value
    if not isinstance(parts, (list, tuple)) or len(parts) != 2:
        raise GdrunError(f"init_range must be two numbers LOW,HIGH, got {show(value)}")
    low, high = (_number("init_range", p) for p in parts)
    if not low < high:
        raise GdrunError(f"init_range needs LOW < HIGH, got {low:g},{high:g}")
    if not math.isfinite(high - low):
        raise GdrunError(f"init_range is too wide to draw from: {low:g},{high:g}")
    return (low, high)


def _stop(value: Any) -> Stop:
    if isinstance(value, Stop):
        return value
    if value is None:
        return Stop()
    if not isinstance(value, dict):
        raise GdrunError(f"stop must be a mapping with keys {', '.join(STOP_KEYS)}, got {show(value)}")
    checked: dict[str, Any] = {}
    if "loss_below" in value and "value_below" in value:
        raise GdrunError("give stop.loss_below or stop.value_below, not both (they are the same rule)")
    for key, item in value.items():
        if key not in STOP_KEYS:
            raise GdrunError(f"unknown key 'stop.{str(key)[:60]}'{closest(str(key), STOP_KEYS)}; stop keys: {', '.join(STOP_KEYS)}")
        if item is None and key != "diverge_above":
            checked[key] = None
            continue
        bound = _number(f"stop.{key}", item)
        if key not in ("value_below", "loss_below") and bound <= 0:
            raise GdrunError(f"stop.{key} must be positive, got {show(item)}")
        checked[key] = bound
    if "loss_below" in checked:  # the name a fit uses for the same rule
        checked["value_below"] = checked.pop("loss_below")
    return Stop(**checked)


def validate(raw: dict[str, Any]) -> Config:
    """Check every key and value of ``raw`` (each with its :data:`FIELDS` check) and return the :class:`Config`."""
    if not isinstance(raw, dict):
        raise GdrunError(f"a config must be a mapping of keys to values, got {type(raw).__name__}")
    if "sweep" in raw:
        raise GdrunError("this config declares a sweep: run it with 'gdrun sweep CONFIG'")
    if "compare" in raw:
        raise GdrunError("this config declares a comparison: run it with 'gdrun compare CONFIG'")
    for key in raw:
        if key not in KEYS:
            raise GdrunError(f"unknown config key {show(str(key))}{suggest_key(key)}")
    has_function, has_fit = raw.get("function") not in (None, ""), raw.get("fit") is not None
    if has_function == has_fit:
        raise GdrunError(
            "a config needs 'function' (a built-in name or an expression to minimize) or 'fit' (a model and data), "
            + ("not both" if has_function else "and has neither")
        )
    values = dict(raw)
    for key, definition in FIELDS.items():
        if key in values:
            values[key] = definition.check(key, values[key], values)
    if values.get("init") is not None and values.get("init_range") is not None:
        raise GdrunError("give either init or init_range, not both")
    if values.get("clip_norm") is not None and values.get("clip_value") is not None:
        raise GdrunError("give either clip_norm or clip_value, not both")
    if values.get("let"):
        _check_let(values.get("function"), has_fit, values["let"])
    config = Config(**values)
    _check_once(("optimizer", config.optimizer, config.optimizer_options), lambda: build_optimizer(config))
    _check_once(("schedule", config.schedule), lambda: build_schedule(config))
    return config


_CHECKED: set[str] = set()


def _check_once(what: tuple, check) -> None:
    """Run ``check`` (which raises on a bad value) once per distinct ``what``: a sweep validates
    thousands of configs that share an optimizer and a schedule."""
    key = repr(what)
    if key not in _CHECKED:
        check()  # unknown or invalid options are one-line errors now, not mid-run
        _CHECKED.add(key)


def build_optimizer(config: Config):
    from .optim import get_optimizer

    return get_optimizer(config.optimizer, **config.optimizer_options)


def build_schedule(config: Config):
    """The schedule of ``config``, or None for a constant learning rate."""
    if config.schedule is None:
        return None
    from .schedules import get_schedule

    return get_schedule(config.schedule)


def build_clip(config: Config):
    """``grads -> grads`` clipping of ``config``, or None."""
    from .optim import get_clip

    if config.clip_norm is not None:
        return get_clip("norm", config.clip_norm)
    if config.clip_value is not None:
        return get_clip("value", config.clip_value)
    return None


def _optimizer_options(value: Any, optimizer: str) -> dict:
    """The options as numbers (``"1e-8"`` read), pairs (betas) as tuples, flags as booleans."""
    from .optim import read_options

    if value is None:
        return {}
    if not isinstance(value, dict):
        raise GdrunError(f"optimizer_options must be a mapping such as {{momentum: 0.9}}, got {show(value)}")
    return read_options(optimizer, {str(k): v for k, v in value.items()})


def _schedule(value: Any) -> Any:
    """The schedule spec with its numbers read (``eta_min=1e-4``); checked by build_schedule."""
    from .schedules import read_spec

    return None if value is None else read_spec(value)


def _name(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise GdrunError(f"name must be text, got {show(value)}")
    return str(value)


def _flag_or_none(key: str, value: Any) -> bool | None:
    if value is not None and not isinstance(value, bool):
        raise GdrunError(f"{key} must be true or false, got {show(value)}")
    return value


# ---------------------------------------------------------------------------- the keys: one definition each


@dataclass(frozen=True)
class Field:
    """One config key: the check :func:`validate` runs on its value and the JSON Schema fragment of
    the values it takes (``gdrun schema``), side by side so that the two cannot drift apart."""

    check: Callable[[str, Any, dict[str, Any]], Any]  # (key, value, the values read so far) -> the value read
    schema: Callable[[], dict[str, Any]]
    description: str


def choice(choices: Callable[[], Iterable[str]], description: str) -> Field:
    """One of a registry's names; ``choices`` is called when needed, so no registry loads early."""
    return Field(lambda key, value, _: _choice(key, value, tuple(choices())), lambda: {"enum": list(choices())},
                 description)  # fmt: skip


def whole(low: int, high: int, description: str, nullable: bool = False) -> Field:
    """A whole number in ``[low, high]`` (None too with ``nullable``)."""
    def check(key: str, value: Any, _) -> int | None:
        return None if nullable and value is None else _integer(key, value, low, high)

    return Field(check, lambda: schema.number(minimum=low, maximum=high, integer=True, nullable=nullable), description)


def positive(description: str, nullable: bool = False) -> Field:
    """A number above 0 (None too with ``nullable``)."""
    def check(key: str, value: Any, _) -> float | None:
        return None if nullable and value is None else number(key, value, positive=True)

    return Field(check, lambda: schema.number(above=0, nullable=nullable), description)


def _plain(read: Callable[[Any], Any], fragment: Callable[[], dict[str, Any]], description: str) -> Field:
    """A key read by ``read(value)`` alone."""
    return Field(lambda _, value, __: read(value), fragment, description)


def _function(key: str, value: Any, _) -> Any:
    if value not in (None, "") and not isinstance(value, str):
        raise GdrunError(f"function must be a string, got {show(value)}")
    return value


def _fit(value: Any) -> Any:
    from .fitting import validate_fit

    return None if value is None else validate_fit(value)


def _options_of_optimizer(_, value: Any, values: dict[str, Any]) -> dict:
    return _optimizer_options(value, values.get("optimizer", Config.optimizer))


def _optimizers() -> tuple[str, ...]:
    from .optim import OPTIMIZERS

    return tuple(OPTIMIZERS)


#: Every config key, in the order :func:`validate` checks them (function and fit first: the rest may depend on them).
FIELDS: dict[str, Field] = {
    "function": Field(_function, schema.function,
                      'What to minimize: a built-in name (see "gdrun functions") or an expression such as '
                      '"x**2 + y**2".'),
    "fit": _plain(_fit, schema.fit, "A model to fit to data (instead of a function): model, data, loss, batch_size..."),
    "name": _plain(_name, schema.name, "Name of the run (default: the function's, or 'fit')."),
    "dim": whole(1, MAX_DIM, "Dimension of a built-in that has a free one (sphere...).", nullable=True),
    "backend": choice(lambda: BACKENDS, "numpy: symbolic gradients; torch: autograd (default numpy)."),
    "device": choice(lambda: DEVICES, "torch device: cpu, cuda or auto (default cpu)."),
    "dtype": choice(lambda: DTYPES, "float64 (default) or float32."),
    "optimizer": choice(_optimizers, "Optimizer (default sgd)."),
    "optimizer_options": Field(_options_of_optimizer, schema.optimizer_options,
                               "Options of the optimizer, e.g. {momentum: 0.9}; torch.optim's defaults."),
    "clip_norm": positive("Clip each gradient to this 2-norm (torch's clip_grad_norm_).", nullable=True),
    "clip_value": positive("Clip each gradient component to [-v, v] (clip_grad_value_).", nullable=True),
    "lr": positive("Learning rate (default 0.01)."),
    "epochs": whole(0, MAX_EPOCHS, "Number of epochs; for minimize, of updates (default 100)."),
    "init": _plain(parse_init, schema.init,
                   "Start point: 7.5 (every variable), x=1,y=2 or 1,2, a list, or a mapping of names to numbers."),
    "init_range": _plain(parse_range, schema.init_range,
                         "Draw the start point uniformly from [LOW, HIGH): [LOW, HIGH] or LOW,HIGH."),
    "seed": whole(0, 2**64 - 1, "Seed for init_range and shuffling (default: drawn, and recorded).", nullable=True),
    "stop": _plain(_stop, schema.stop, "When a run stops before its last epoch: grad_norm_below, value_below "
                   "(loss_below) to converge, diverge_above to diverge."),
    "schedule": _plain(_schedule, schema.schedule, "Learning-rate schedule, stepped per epoch: a name or a mapping "
                       "such as {name: step, step_size: 10, gamma: 0.5}; none: a constant lr."),
    "every": whole(0, MAX_EPOCHS, "Show every Nth row (default 0: about 20 rows). metrics.csv keeps all."),
    "expect": _plain(lambda value: validate_expect(value, KEYS), schema.expect,
                     "What the run must reach (gdrun check): a rule such as {status: converged, params: {x: 0}}, "
                     "or a list of rules with when: conditions."),
    "let": _plain(parse_let, schema.let, "Intermediate names the expression uses, in order, e.g. {z: x + y, f: z**2} "
                  "(later ones may use earlier ones)."),
    "explain": Field(lambda key, value, _: _flag_or_none(key, value), schema.flag,
                     "Diagnose the run (regime, sharpness, largest stable lr); default: on for a run, off for the "
                     "configs of a sweep."),
}  # fmt: skip


# ---------------------------------------------------------------------------- files and overrides


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML config file into a mapping with :func:`gdrun.inputs.load_yaml_file` (a regular
    file of bounded size; safe, bounded YAML with 1.2 floats and no duplicate keys). The numbers of
    ``expect:`` keep their written decimals (``2.0000`` means to 4 decimals, not to 1)."""
    data = load_yaml_file(path, written=True)
    if data is None:
        raise GdrunError(f"{path}: the config file is empty")
    if not isinstance(data, dict):
        raise GdrunError(f"{path}: a config must be a mapping of keys to values, got {type(data).__name__}")
    return {key: value if key == "expect" else unwritten(value) for key, value in data.items()}


def apply_sets(raw: dict[str, Any], assignments: list[str]) -> dict[str, Any]:
    """Apply ``key=value`` overrides; ``value`` is read as YAML, ``stop.key`` (and the other
    nested keys: ``optimizer_options.``, ``schedule.``, ``fit.``) reaches in."""
    data = dict(raw)
    for assignment in assignments:
        key, sep, text = assignment.partition("=")
        key = key.strip()
        if not sep or not key:
            raise GdrunError(f"--set needs KEY=VALUE, got {show(assignment)}")
        value = yaml_value(text, f"--set {key}")
        head, dot, rest = key.partition(".")
        if not (dot and head in NESTED_KEYS and rest) and key not in KEYS:
            raise GdrunError(f"unknown config key {show(key)}{suggest_key(key)}")
        data = set_key(data, key, value)
    return data


def set_key(raw: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    """``raw`` with ``key`` set to ``value``; ``stop.x``, ``optimizer_options.x``... reach in."""
    data = dict(raw)
    head, dot, rest = key.partition(".")
    if dot and head in NESTED_KEYS and rest:
        data[head] = {**(data.get(head) or {}), rest: value}
    else:
        data[key] = value
    return data


def to_yaml(config: Config) -> str:
    import yaml

    data = config.to_dict()
    data["optimizer_options"] = {k: list(v) if isinstance(v, tuple) else v for k, v in data["optimizer_options"].items()}
    if data["fit"] is None:
        del data["fit"]
    else:
        del data["function"], data["dim"], data["let"]
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=None)


__all__ = ["Config", "Stop", "Field", "FIELDS", "validate", "load_yaml", "apply_sets", "to_yaml", "replace", "KEYS"]
