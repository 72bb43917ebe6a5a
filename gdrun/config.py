"""The experiment config: schema, defaults, YAML loading, ``--set`` overrides and validation.

A config is a flat mapping whose keys are named as the CLI flags (``lr``, ``epochs``,
``init_range``...), plus the ``stop`` mapping. Every value is checked here, before anything runs
or is written, and a bad one is a one-line :class:`GdrunError` naming the key.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from .errors import GdrunError, closest

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
    expect: Any = None  # what the run must reach (gdrun check); canonical form of check.validate_expect

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if data["init_range"] is not None:
            data["init_range"] = list(data["init_range"])
        return data


KEYS = tuple(f.name for f in fields(Config))
NESTED_KEYS = ("stop", "optimizer_options", "schedule", "fit")  # --set stop.grad_norm_below=1e-6 reaches in


# ---------------------------------------------------------------------------- value checks


def _number(key: str, value: Any) -> float:
    if isinstance(value, bool):
        raise GdrunError(f"{key} must be a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise GdrunError(f"{key} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise GdrunError(f"{key} must be a finite number, got {value!r}")
    return number


def _integer(key: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool):
        raise GdrunError(f"{key} must be an integer, got {value!r}")
    if isinstance(value, str):
        text = value.strip()
        try:
            value = int(text)
        except ValueError:
            try:
                value = float(text)  # 1e3, which YAML reads as a string
            except ValueError:
                raise GdrunError(f"{key} must be an integer, got {value!r}") from None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int):
        raise GdrunError(f"{key} must be an integer, got {value!r}")
    if value < minimum:
        raise GdrunError(f"{key} must be at least {minimum}, got {value}")
    return value


def _choice(key: str, value: Any, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise GdrunError(f"{key} must be one of {', '.join(choices)}, got {value!r}{closest(str(value), choices)}")
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
                    raise GdrunError(f"init must look like x=1,y=2, got {value!r}")
                if name.strip() in pairs:
                    raise GdrunError(f"init gives {name.strip()} twice: {value!r}")
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


def parse_pairs(key: str, value: Any) -> dict[str, str]:
    """``"x=time,y=value"`` or a mapping -> {"x": "time", "y": "value"}."""
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items()}
    pairs: dict[str, str] = {}
    for part in str(value).split(","):
        name, sep, other = part.partition("=")
        if not sep or not name.strip() or not other.strip():
            raise GdrunError(f"{key} must look like x=HEAD,y=HEAD, got {value!r}")
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
    values are read as YAML (``betas=[0.9,0.99]``, ``nesterov=true``)."""
    import yaml

    name, *options = text.split(":")
    if not name.strip():
        raise GdrunError(f"{flag} needs NAME[:KEY=VALUE...], got {text!r}")
    spec: dict[str, Any] = {"name": name.strip()}
    for option in options:
        key, sep, value = option.partition("=")
        if not sep or not key.strip():
            raise GdrunError(f"{flag}: options look like KEY=VALUE, got {option!r} in {text!r}")
        try:
            spec[key.strip()] = yaml.safe_load(value) if value.strip() else None
        except yaml.YAMLError:
            raise GdrunError(f"{flag}: cannot read the value of {key.strip()!r} in {text!r}") from None
    return spec


def parse_range(value: Any) -> tuple[float, float] | None:
    """``"-1000,1000"`` or ``[-1000, 1000]`` -> (low, high) with low < high."""
    if value is None:
        return None
    parts = value.split(",") if isinstance(value, str) else value
    if not isinstance(parts, (list, tuple)) or len(parts) != 2:
        raise GdrunError(f"init_range must be two numbers LOW,HIGH, got {value!r}")
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
        raise GdrunError(f"stop must be a mapping with keys {', '.join(STOP_KEYS)}, got {value!r}")
    checked: dict[str, Any] = {}
    if "loss_below" in value and "value_below" in value:
        raise GdrunError("give stop.loss_below or stop.value_below, not both (they are the same rule)")
    for key, item in value.items():
        if key not in STOP_KEYS:
            raise GdrunError(f"unknown key 'stop.{key}'{closest(str(key), STOP_KEYS)}; stop keys: {', '.join(STOP_KEYS)}")
        if item is None and key != "diverge_above":
            checked[key] = None
            continue
        number = _number(f"stop.{key}", item)
        if key not in ("value_below", "loss_below") and number <= 0:
            raise GdrunError(f"stop.{key} must be positive, got {item!r}")
        checked[key] = number
    if "loss_below" in checked:  # the name a fit uses for the same rule
        checked["value_below"] = checked.pop("loss_below")
    return Stop(**checked)


def validate(raw: dict[str, Any]) -> Config:
    """Check every key and value of ``raw`` and return the :class:`Config`."""
    from .backends import BACKENDS, DEVICES, DTYPES
    from .check import validate_expect
    from .optim import OPTIMIZERS

    if not isinstance(raw, dict):
        raise GdrunError(f"a config must be a mapping of keys to values, got {type(raw).__name__}")
    if "sweep" in raw:
        raise GdrunError("this config declares a sweep: run it with 'gdrun sweep CONFIG'")
    for key in raw:
        if key not in KEYS:
            raise GdrunError(f"unknown config key '{key}'{closest(str(key), KEYS)}")
    has_function, has_fit = raw.get("function") not in (None, ""), raw.get("fit") is not None
    if has_function == has_fit:
        raise GdrunError(
            "a config needs 'function' (a built-in name or an expression to minimize) or 'fit' (a model and data), "
            + ("not both" if has_function else "and has neither")
        )
    values = dict(raw)
    if has_function and not isinstance(values["function"], str):
        raise GdrunError(f"function must be a string, got {values['function']!r}")
    if has_fit:
        from .fit import validate_fit

        values["fit"] = validate_fit(values["fit"])
    checks = {
        "name": lambda v: None if v is None else str(v),
        "dim": lambda v: None if v is None else _integer("dim", v, 1),
        "backend": lambda v: _choice("backend", v, BACKENDS),
        "device": lambda v: _choice("device", v, DEVICES),
        "dtype": lambda v: _choice("dtype", v, DTYPES),
        "optimizer": lambda v: _choice("optimizer", v, tuple(OPTIMIZERS)),
        "optimizer_options": _optimizer_options,
        "clip_norm": lambda v: _positive_or_none("clip_norm", v),
        "clip_value": lambda v: _positive_or_none("clip_value", v),
        "lr": _lr,
        "epochs": lambda v: _integer("epochs", v, 0),
        "init": parse_init,
        "init_range": parse_range,
        "seed": lambda v: None if v is None else _integer("seed", v, 0),
        "stop": _stop,
        "every": lambda v: _integer("every", v, 0),
        "expect": validate_expect,
    }
    for key, check in checks.items():
        if key in values:
            values[key] = check(values[key])
    if values.get("init") is not None and values.get("init_range") is not None:
        raise GdrunError("give either init or init_range, not both")
    if values.get("clip_norm") is not None and values.get("clip_value") is not None:
        raise GdrunError("give either clip_norm or clip_value, not both")
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


def _optimizer_options(value: Any) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise GdrunError(f"optimizer_options must be a mapping such as {{momentum: 0.9}}, got {value!r}")
    return {str(k): _tuple_lists(v) for k, v in value.items()}


def _tuple_lists(value: Any) -> Any:
    """YAML gives lists; options such as betas are pairs."""
    return tuple(value) if isinstance(value, list) else value


def _positive_or_none(key: str, value: Any) -> float | None:
    if value is None:
        return None
    number = _number(key, value)
    if number <= 0:
        raise GdrunError(f"{key} must be positive, got {value!r}")
    return number


def _lr(value: Any) -> float:
    lr = _number("lr", value)
    if lr <= 0:
        raise GdrunError(f"lr must be positive, got {value!r}")
    return lr


# ---------------------------------------------------------------------------- files and overrides


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML config file into a mapping (safe loader: YAML cannot run code)."""
    import yaml

    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise GdrunError(f"config file not found: {path}") from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as exc:
        raise GdrunError(f"cannot read config file {path}: {exc.__class__.__name__}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise GdrunError(f"{path}: {problem}{where}") from None
    if data is None:
        raise GdrunError(f"{path}: the config file is empty")
    if not isinstance(data, dict):
        raise GdrunError(f"{path}: a config must be a mapping of keys to values, got {type(data).__name__}")
    return data


def apply_sets(raw: dict[str, Any], assignments: list[str]) -> dict[str, Any]:
    """Apply ``key=value`` overrides; ``value`` is read as YAML, ``stop.key`` (and the other
    nested keys: ``optimizer_options.``, ``schedule.``, ``fit.``) reaches in."""
    import yaml

    data = dict(raw)
    for assignment in assignments:
        key, sep, text = assignment.partition("=")
        key = key.strip()
        if not sep or not key:
            raise GdrunError(f"--set needs KEY=VALUE, got {assignment!r}")
        try:
            value = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError:
            value = text
        head, dot, rest = key.partition(".")
        if not (dot and head in NESTED_KEYS and rest) and key not in KEYS:
            raise GdrunError(f"unknown config key '{key}'{closest(key, KEYS)}")
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
        del data["function"], data["dim"]
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=None)


__all__ = ["Config", "Stop", "validate", "load_yaml", "apply_sets", "to_yaml", "replace", "KEYS"]
