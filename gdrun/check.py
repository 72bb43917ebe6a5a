"""Expectations: what a run must reach, written in its config; ``gdrun check`` runs them all.

A config's ``expect:`` part is one rule (a mapping) or a list of rules::

    expect:
      status: max_epochs                      # or a list: [converged, max_epochs]
      params: {x: 0.8053}                     # final parameters, to the printed decimals
      value: {value: 0.6485, atol: 1e-3}      # final f (a fit's loss; `loss:` is the same key)
      steps_at_most: 10                       # steps (a fit: epochs) done
      steps_at_least: 10
      r2: 0.9999                              # fits only
      predictions: [7.9998]                   # fits only: the model at fit.predict, in order
      atol: 1e-4                              # tolerance of every number in this rule...
      rtol: 1e-6                              # ...that gives none of its own

    expect:                                   # rules that hold under a condition on the config
      - when: {lr: {below: 0.5}}
        status: converged
      - when: {lr: {above: 1}, optimizer: sgd}
        status: diverged

A number passes when ``|got - expected| <= atol + rtol * |expected|``. An entry's own
``atol``/``rtol`` win over the rule's; with neither, the tolerance is "to the printed decimals":
half a unit of the last decimal written (0.8053 -> 5e-5, 7.5 -> 0.05, 2.0000 -> 5e-5, 4.1e-6 ->
5e-8). Without ``status:``, a rule still requires the run to end converged or max_epochs.

Validation turns ``expect:`` into a canonical form in which every number carries its tolerance
(``{value: 0.8053, atol: 5.0e-05}``); that is what a run's config.yaml records, and it validates
to itself. Nothing here evaluates user text: numbers are read with ``float()``.
"""

from __future__ import annotations

import json
import math
import re
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterable

from .errors import EXIT_BAD_INPUT, EXIT_EXPECTATION, EXIT_INTERRUPTED, EXIT_OK, GdrunError, closest
from .runs import summary_number

STATUSES = ("converged", "max_epochs", "diverged", "failed")
OK_STATUSES = ("converged", "max_epochs")  # what a rule without `status:` requires
CHECK_KEYS = ("status", "params", "value", "loss", "r2", "predictions", "steps_at_most", "steps_at_least")
RULE_KEYS = ("when", *CHECK_KEYS, "atol", "rtol")
ENTRY_KEYS = ("value", "atol", "rtol")
CONDITIONS = ("equals", "below", "above", "at_most", "at_least", "in")
CONFIG_SUFFIXES = (".yaml", ".yml")
_DECIMAL = re.compile(r"^[+-]?(?:\d+(?:\.(\d*))?|\.(\d+))(?:[eE]([+-]?\d+))?$")


# ---------------------------------------------------------------------------- reading numbers


class Written(float):
    """A float that remembers how the YAML file wrote it ("2.0000" loads as 2.0)."""

    def __new__(cls, value: float, text: str) -> "Written":
        number = super().__new__(cls, value)
        number.text = text
        return number


def load_config(path: str | Path) -> dict[str, Any]:
    """:func:`gdrun.config.load_yaml`, with the numbers of ``expect:`` keeping their written
    decimals (so ``2.0000`` means to 4 decimals, not to 1)."""
    import yaml

    from .config import load_yaml

    raw = load_yaml(path)
    if raw.get("expect") is not None:

        class ExpectLoader(yaml.SafeLoader):
            pass

        def written_float(loader, node):
            return Written(loader.construct_yaml_float(node), str(node.value))

        ExpectLoader.add_constructor("tag:yaml.org,2002:float", written_float)
        again = yaml.load(Path(path).read_text(), Loader=ExpectLoader)  # noqa: S506 - a SafeLoader subclass
        raw["expect"] = again["expect"]
    return raw


def printed_tolerance(text: str) -> float:
    """Half a unit of the last decimal written: "0.8053" -> 5e-05, "7.5" -> 0.05, "4.1e-6" -> 5e-08."""
    match = _DECIMAL.match(text.strip().replace("_", ""))
    if match is None:  # cannot happen for what _expected_number accepts; be safe
        match = _DECIMAL.match(repr(float(text)))
    fraction = match.group(1) or match.group(2) or ""
    decimals = len(fraction) - int(match.group(3) or 0)
    return 0.5 * 10.0 ** (-decimals)


def _expected_number(key: str, value: Any) -> tuple[float, str]:
    """(number, the text it was written as); numeric strings such as "1e-5" (which PyYAML reads
    as strings) count, read with float()."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise GdrunError(f"{key} must be a number, got {value!r}")
    if isinstance(value, str):
        text = value.strip()
        try:
            number = float(text)
        except ValueError:
            raise GdrunError(f"{key} must be a number, got {value!r}") from None
        if _DECIMAL.match(text.replace("_", "")) is None:
            text = repr(number)
    elif isinstance(value, Written):
        number, text = float(value), value.text
    elif isinstance(value, int):
        number, text = float(value), str(value)
    else:
        number = float(value)
        text = repr(number)
    if not math.isfinite(number):
        raise GdrunError(f"{key} must be a finite number, got {value!r}")
    return number, text


def _tolerance(key: str, value: Any) -> float:
    number, _ = _expected_number(key, value)
    if number < 0:
        raise GdrunError(f"{key} must not be negative, got {value!r}")
    return number


def _count(key: str, value: Any) -> int:
    number, _ = _expected_number(key, value)
    if not number.is_integer() or number < 0:
        raise GdrunError(f"{key} must be a whole number of steps (0 or more), got {value!r}")
    return int(number)


# ---------------------------------------------------------------------------- validation


def validate_expect(value: Any) -> Any:
    """Check a config's ``expect:`` part and return its canonical form (None: no expectations)."""
    if value is None:
        return None
    if isinstance(value, dict):
        return _rule("expect", value)
    if isinstance(value, (list, tuple)):
        if not value:
            raise GdrunError("expect must not be an empty list")
        return [_rule(f"expect[{i}]", rule) for i, rule in enumerate(value)]
    raise GdrunError(f"expect must be a mapping (status, params, value...) or a list of them, got {value!r}")


def _rule(where: str, raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise GdrunError(f"{where} must be a mapping such as {{status: converged}}, got {raw!r}")
    for key in raw:
        if key not in RULE_KEYS:
            raise GdrunError(f"unknown expectation '{where}.{key}'{closest(str(key), RULE_KEYS)}; "
                             f"expectations: {', '.join(k for k in RULE_KEYS if k != 'loss')}")  # fmt: skip
    if not any(raw.get(k) is not None for k in CHECK_KEYS):
        raise GdrunError(f"{where} expects nothing: give status, params, value, steps_at_most, steps_at_least, r2 "
                         "or predictions")  # fmt: skip
    if raw.get("value") is not None and raw.get("loss") is not None:
        raise GdrunError(f"give {where}.value or {where}.loss, not both (they are the same number)")
    default = {k: _tolerance(f"{where}.{k}", raw[k]) for k in ("atol", "rtol") if raw.get(k) is not None}
    rule: dict[str, Any] = {}
    if raw.get("when") is not None:
        rule["when"] = validate_when(f"{where}.when", raw["when"])
    if raw.get("status") is not None:
        rule["status"] = _status(f"{where}.status", raw["status"])
    if raw.get("params") is not None:
        params = raw["params"]
        if not isinstance(params, dict) or not params:
            raise GdrunError(f"{where}.params must be a mapping of parameter names to values, e.g. {{x: 0.8053}}, "
                             f"got {params!r}")  # fmt: skip
        rule["params"] = {str(k): _entry(f"{where}.params.{k}", v, default) for k, v in params.items()}
    for key in ("value", "loss", "r2"):
        if raw.get(key) is not None:
            rule["value" if key == "loss" else key] = _entry(f"{where}.{key}", raw[key], default)
    if raw.get("predictions") is not None:
        items = raw["predictions"]
        if not isinstance(items, (list, tuple)) or not items:
            raise GdrunError(f"{where}.predictions must be a list of values, one per fit.predict point, got {items!r}")
        rule["predictions"] = [_entry(f"{where}.predictions[{i}]", v, default) for i, v in enumerate(items)]
    for key in ("steps_at_least", "steps_at_most"):
        if raw.get(key) is not None:
            rule[key] = _count(f"{where}.{key}", raw[key])
    if rule.get("steps_at_least", 0) > rule.get("steps_at_most", math.inf):
        raise GdrunError(f"{where}: steps_at_least ({rule['steps_at_least']}) is above steps_at_most "
                         f"({rule['steps_at_most']})")  # fmt: skip
    return rule


def _entry(key: str, item: Any, default: dict[str, float]) -> dict[str, float]:
    """``0.8053`` or ``{value: 0.8053, atol: 1e-4, rtol: 0}`` -> {value, atol and/or rtol}."""
    if isinstance(item, dict):
        for k in item:
            if k not in ENTRY_KEYS:
                raise GdrunError(f"unknown key '{key}.{k}'{closest(str(k), ENTRY_KEYS)}; an expected number is "
                                 "a value or {value, atol, rtol}")  # fmt: skip
        if item.get("value") is None:
            raise GdrunError(f"{key} needs a value, e.g. {{value: 0.8053, atol: 1.0e-4}}")
        number, text = _expected_number(f"{key}.value", item["value"])
        own = {k: _tolerance(f"{key}.{k}", item[k]) for k in ("atol", "rtol") if item.get(k) is not None}
    else:
        number, text = _expected_number(key, item)
        own = {}
    tolerance = own or dict(default) or {"atol": printed_tolerance(text)}
    return {"value": number, **tolerance}


def _status(key: str, value: Any) -> str | list[str]:
    items = value if isinstance(value, (list, tuple)) else [value]
    if not items:
        raise GdrunError(f"{key} must name at least one status")
    for item in items:
        if not isinstance(item, str) or item not in STATUSES:
            raise GdrunError(f"{key} must be one of {', '.join(STATUSES)} (or a list of them), got {item!r}"
                             f"{closest(str(item), STATUSES)}")  # fmt: skip
    return items[0] if len(items) == 1 else list(items)


def validate_when(key: str, when: Any) -> dict[str, Any]:
    """``{lr: {below: 0.5}, optimizer: sgd}``: every named config value must meet its condition.
    A condition is a plain value (equals) or a mapping of equals, below, above, at_most,
    at_least, in; nested keys are dotted (``stop.grad_norm_below``, ``optimizer_options.momentum``)."""
    from .config import KEYS

    if not isinstance(when, dict) or not when:
        raise GdrunError(f"{key} must be a mapping of config keys to conditions, e.g. {{lr: {{below: 0.5}}}}, got {when!r}")
    checked: dict[str, Any] = {}
    for name, condition in when.items():
        head = str(name).partition(".")[0]
        if head not in KEYS or head == "expect":
            keys = [k for k in KEYS if k != "expect"]
            raise GdrunError(f"{key} names '{name}', which is not a config key{closest(head, keys)}")
        where = f"{key}.{name}"
        if not isinstance(condition, dict):
            checked[str(name)] = _plain(where, condition)
            continue
        if not condition:
            raise GdrunError(f"{where} must name a condition: {', '.join(CONDITIONS)}")
        ops: dict[str, Any] = {}
        for op, operand in condition.items():
            if op not in CONDITIONS:
                raise GdrunError(f"unknown condition '{where}.{op}'{closest(str(op), CONDITIONS)}; "
                                 f"conditions: {', '.join(CONDITIONS)}")  # fmt: skip
            if op == "in":
                if not isinstance(operand, (list, tuple)) or not operand:
                    raise GdrunError(f"{where}.in must be a non-empty list, got {operand!r}")
                ops[op] = [_plain(f"{where}.in", v) for v in operand]
            elif op == "equals":
                ops[op] = _plain(f"{where}.equals", operand)
            else:
                ops[op], _ = _expected_number(f"{where}.{op}", operand)
        checked[str(name)] = ops
    return checked


def _plain(key: str, value: Any) -> Any:
    if isinstance(value, Written):
        return float(value)
    if isinstance(value, (list, tuple)):
        return [_plain(key, v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise GdrunError(f"{key} must be a plain value (number, text, true/false, null), got {value!r}")


# ---------------------------------------------------------------------------- conditions


def matches(when: dict[str, Any] | None, values: dict[str, Any]) -> bool:
    """Whether the config ``values`` (a plain, possibly nested dict) meet every condition."""
    for name, condition in (when or {}).items():
        value = lookup(values, name)
        ops = condition if isinstance(condition, dict) else {"equals": condition}
        for op, operand in ops.items():
            if op == "equals":
                ok = _same(value, operand)
            elif op == "in":
                ok = any(_same(value, item) for item in operand)
            else:
                number = summary_number(value)
                ok = number is not None and {
                    "below": number < operand, "above": number > operand,
                    "at_most": number <= operand, "at_least": number >= operand,
                }[op]  # fmt: skip
            if not ok:
                return False
    return True


def lookup(values: dict[str, Any], name: str) -> Any:
    """``values["stop"]["grad_norm_below"]`` for "stop.grad_norm_below"; None where missing."""
    if name in values:
        return values[name]
    node: Any = values
    for part in name.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _same(value: Any, expected: Any) -> bool:
    if isinstance(value, (list, tuple)) and isinstance(expected, (list, tuple)):
        return len(value) == len(expected) and all(_same(a, b) for a, b in zip(value, expected))
    a, b = summary_number(value), summary_number(expected)
    if a is not None and b is not None and not (isinstance(value, str) and isinstance(expected, str)):
        return a == b
    return value == expected


def applicable(expect: Any, values: dict[str, Any]) -> list[dict[str, Any]]:
    """The rules of a validated ``expect`` whose ``when`` the config ``values`` meet (a mapping
    with no ``when`` always applies). A sweep calls this with each of its configs' values."""
    if expect is None:
        return []
    rules = expect if isinstance(expect, list) else [expect]
    return [rule for rule in rules if matches(rule.get("when"), values)]


# ---------------------------------------------------------------------------- checking a run


def check_names(rules: list[dict[str, Any]], prepared) -> None:
    """Expectations about parameters or predictions the prepared config does not have are bad input."""
    fit = prepared.fit
    names = tuple(fit.all_params(dict.fromkeys(fit.params, 0.0))) if fit is not None else tuple(prepared.names)
    for rule in rules:
        for name in rule.get("params", {}):
            if name not in names:
                raise GdrunError(f"expect.params names '{name}', which is not a parameter{closest(name, names)}; "
                                 f"parameters: {', '.join(names)}")  # fmt: skip
        for key in ("r2", "predictions"):
            if key in rule and fit is None:
                raise GdrunError(f"expect.{key} needs a fit config (a minimize run has no {key})")
        if "predictions" in rule:
            points = fit.spec.predict
            if points is None:
                raise GdrunError("expect.predictions needs fit.predict (the points to predict at)")
            n = len(next(iter(points.values()))) if isinstance(points, dict) else len(points)
            if len(rule["predictions"]) != n:
                raise GdrunError(f"expect.predictions has {len(rule['predictions'])} value(s) but fit.predict has "
                                 f"{n} point(s)")  # fmt: skip


@dataclass
class Result:
    """One expectation checked against a finished run."""

    expectation: str  # "status", "params.x", "value", "predictions[x=4]", "steps_at_most"...
    kind: str  # "status", "number", "at_most" or "at_least"
    expected: Any  # a list of statuses, a number, or a step count
    got: Any
    passed: bool
    atol: float | None = None
    rtol: float | None = None

    def expected_text(self) -> str:
        if self.kind == "status":
            return " or ".join(self.expected)
        if self.kind in ("at_most", "at_least"):
            return f"{'<=' if self.kind == 'at_most' else '>='} {self.expected}"
        atol, rtol = self.atol or 0.0, self.rtol or 0.0
        if atol == 0 and rtol == 0:
            return f"{_g(self.expected)} exactly"
        parts = ([f"{atol:g}"] if atol else []) + ([f"{rtol:g} rel"] if rtol else [])
        shown = _g(self.expected)
        decimals = -math.log10(2 * atol) if atol and not rtol else None
        if decimals is not None and 0 < round(decimals) <= 15 and abs(decimals - round(decimals)) < 1e-9 \
                and "e" not in shown:
            shown = f"{self.expected:.{round(decimals)}f}"  # 2.0000 +- 5e-05, as it was written
        return f"{shown} ± {' + '.join(parts)}"

    def got_text(self) -> str:
        if not isinstance(self.got, float):
            return "none" if self.got is None else str(self.got)
        text = _g(self.got)
        if not self.passed and self.kind == "number" and math.isfinite(self.got):
            bound = (self.atol or 0.0) + (self.rtol or 0.0) * abs(self.expected)
            if abs(float(text) - self.expected) <= bound:  # 10 digits would hide why it failed
                text = repr(self.got)
        return text

    def message(self) -> str:
        text = f"{self.expectation}: expected {self.expected_text()}, got {self.got_text()}"
        if not self.passed and self.kind == "number" and isinstance(self.got, float) and math.isfinite(self.got):
            text += f" (off by {abs(self.got - self.expected):.3g})"
        return text

    def to_json(self) -> dict[str, Any]:
        data = {"expectation": self.expectation, "expected": self.expected, "got": _json(self.got),
                "passed": self.passed, "message": self.message()}  # fmt: skip
        if self.kind == "number":
            data.update(atol=self.atol, rtol=self.rtol)
        return data


def _g(value: Any) -> str:
    return f"{value:.10g}" if isinstance(value, float) else str(value)


def _json(value: Any) -> Any:
    return str(value) if isinstance(value, float) and not math.isfinite(value) else value


def _close(got: float | None, entry: dict[str, float]) -> bool:
    if got is None or not math.isfinite(got):
        return False
    bound = entry.get("atol", 0.0) + entry.get("rtol", 0.0) * abs(entry["value"])
    return abs(got - entry["value"]) <= bound * (1 + 1e-9)  # the slack absorbs binary rounding of the decimals


def evaluate(rules: list[dict[str, Any]], summary: dict[str, Any], expect: Any = None) -> list[Result]:
    """Check ``summary`` (a run's summary.json) against the applicable ``rules``. Given the whole
    ``expect`` they came from, a list of several rules, labels name each rule by its place in it
    ("params.x (rule 2)")."""
    results: list[Result] = []
    status = summary.get("status")
    places = [next((k for k, r in enumerate(expect) if r is rule), i) for i, rule in enumerate(rules)] \
        if isinstance(expect, list) else list(range(len(rules)))
    several = len(expect) > 1 if isinstance(expect, list) else len(rules) > 1
    suffix = (lambda i: f" (rule {places[i] + 1})") if several else (lambda i: "")
    if not any("status" in rule for rule in rules):
        results.append(Result("status", "status", list(OK_STATUSES), status, status in OK_STATUSES))

    def number(label: str, got: Any, entry: dict[str, float]) -> None:
        value = summary_number(got)
        results.append(Result(label, "number", entry["value"], value if value is not None else got, _close(value, entry),
                              entry.get("atol", 0.0), entry.get("rtol", 0.0)))  # fmt: skip

    for i, rule in enumerate(rules):
        tag = suffix(i)
        if "status" in rule:
            wanted = rule["status"] if isinstance(rule["status"], list) else [rule["status"]]
            results.append(Result(f"status{tag}", "status", wanted, status, status in wanted))
        params = summary.get("params") or {}
        for name, entry in rule.get("params", {}).items():
            number(f"params.{name}{tag}", params.get(name), entry)
        for key in ("value", "r2"):
            if key in rule:
                number(f"{key}{tag}", summary.get(key), rule[key])
        predictions = summary.get("predictions") or []
        for j, entry in enumerate(rule.get("predictions", [])):
            got = predictions[j] if j < len(predictions) else None
            at = ",".join(f"{k}={v:g}" for k, v in got["at"].items()) if got else str(j)
            number(f"predictions[{at}]{tag}", got["after"] if got else None, entry)
        steps = summary.get("iterations")
        if "steps_at_most" in rule:
            results.append(Result(f"steps_at_most{tag}", "at_most", rule["steps_at_most"], steps,
                                  steps is not None and steps <= rule["steps_at_most"]))  # fmt: skip
        if "steps_at_least" in rule:
            results.append(Result(f"steps_at_least{tag}", "at_least", rule["steps_at_least"], steps,
                                  steps is not None and steps >= rule["steps_at_least"]))  # fmt: skip
    return results


# ---------------------------------------------------------------------------- gdrun run CONFIG


def run_expecting(config, runs_dir: str | Path, output, base: Path | None = None) -> int:
    """``gdrun run`` for a config with ``expect:``: run it, then check and show the expectations.
    Exit code 0 when all hold (an expected divergence too), 1 when one fails, 130 interrupted."""
    from rich.console import Console

    from .runner import execute, prepare

    rules = applicable(config.expect, config.to_dict())
    if not rules:
        return execute(config, runs_dir, output, base)[1]
    check_names(rules, prepare(config, base))
    summary, code = execute(config, runs_dir, replace(output, mode="quiet") if output.mode == "json" else output, base)
    results = evaluate(rules, summary, config.expect)
    if output.mode == "json":
        print(json.dumps({**summary, "expect": [r.to_json() for r in results]}, indent=2))
    elif output.mode == "table":
        console = output.console or Console()
        for r in results:
            mark = "[green]pass[/green]" if r.passed else "[bold red]FAIL[/bold red]"
            line = f"expect {r.message()}"
            console.print(f"{mark} {line}" if console.is_terminal else f"{'pass' if r.passed else 'FAIL'} {line}",
                          highlight=False, soft_wrap=True, markup=console.is_terminal)  # fmt: skip
    else:
        for r in results:
            if not r.passed:
                print(f"gdrun: expectation failed: {r.message()}", file=sys.stderr)
    if summary["status"] == "interrupted":
        return EXIT_INTERRUPTED
    return EXIT_OK if all(r.passed for r in results) else EXIT_EXPECTATION


# ---------------------------------------------------------------------------- gdrun check


@dataclass
class ConfigResult:
    """One config file under ``gdrun check``."""

    config: str  # the path as found
    outcome: str  # "passed", "failed", "error" or "skipped"
    results: list[Result] = field(default_factory=list)
    time_s: float = 0.0
    name: str | None = None
    error: str | None = None  # the one-line message of a config that could not run
    reason: str | None = None  # the run's stop reason, or why it was skipped
    status: str | None = None  # the run's status
    run_dir: str | None = None
    started_at: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"config": self.config, "name": self.name, "outcome": self.outcome, "time_s": round(self.time_s, 6),
                "status": self.status, "reason": self.reason, "error": self.error, "run_dir": self.run_dir,
                "expectations": [r.to_json() for r in self.results]}  # fmt: skip


@dataclass
class Report:
    configs: list[ConfigResult]
    deselected: int = 0
    time_s: float = 0.0
    interrupted: bool = False

    def count(self, outcome: str) -> int:
        return sum(c.outcome == outcome for c in self.configs)

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return EXIT_INTERRUPTED
        if self.count("error"):
            return EXIT_BAD_INPUT
        return EXIT_EXPECTATION if self.count("failed") else EXIT_OK

    def counts(self) -> dict[str, int]:
        results = [r for c in self.configs for r in c.results]
        return {
            "configs": len(self.configs), "passed": self.count("passed"), "failed": self.count("failed"),
            "errors": self.count("error"), "skipped": self.count("skipped"), "deselected": self.deselected,
            "expectations": len(results), "expectations_failed": sum(not r.passed for r in results),
        }  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        return {"passed": self.exit_code == EXIT_OK, "exit_code": self.exit_code, "interrupted": self.interrupted,
                "counts": self.counts(), "time_s": round(self.time_s, 6),
                "configs": [c.to_json() for c in self.configs]}  # fmt: skip


def find_configs(paths: Iterable[str | Path], runs_dir: str | Path | None = None) -> list[Path]:
    """Config files named, or found in the folders named (recursively: *.yaml, *.yml), in order.
    Hidden folders and the runs folder (whose config.yaml files are records) are not searched."""
    found: list[Path] = []
    seen: set[Path] = set()
    skip = Path(runs_dir).resolve() if runs_dir is not None else None

    def add(path: Path) -> None:
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            found.append(path)

    for item in paths:
        path = Path(item)
        if path.is_file():
            add(path)
        elif path.is_dir():
            before = len(found)
            for candidate in sorted(path.rglob("*"), key=lambda p: p.as_posix()):
                inside = candidate.relative_to(path).parts
                if any(part.startswith(".") for part in inside[:-1]):
                    continue
                if skip is not None and (skip == candidate.resolve() or skip in candidate.resolve().parents):
                    continue
                if candidate.suffix.lower() in CONFIG_SUFFIXES and candidate.is_file():
                    add(candidate)
            if len(found) == before:
                raise GdrunError(f"no config files (*.yaml, *.yml) in {path}")
        else:
            raise GdrunError(f"no such file or folder: {path}")
    return found


def check_file(path: Path, runs_dir: str | Path, warn: Callable[[str], None] | None = None) -> ConfigResult:
    """Run one config file and check its expectations; bad input becomes an "error" result."""
    from .config import validate
    from .runner import Output, execute, prepare

    shown = path.as_posix()
    started = time.perf_counter()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
    result = ConfigResult(shown, "error", started_at=stamp, name=path.stem)
    try:
        raw = load_config(path)
        if raw.get("expect") is None:
            result.outcome, result.reason = "skipped", "no expect: part"
            return result
        raw.setdefault("name", path.stem if path.name != "config.yaml" else None)
        if "sweep" in raw:
            _check_sweep_file(path, raw, runs_dir, result)
            return result
        config = validate(raw)
        result.name = config.name or result.name
        rules = applicable(config.expect, config.to_dict())
        if not rules:
            result.outcome, result.reason = "skipped", "no expect: rule applies to this config"
            return result
        check_names(rules, prepare(config, path.parent))
        where = (lambda message: warn(f"{shown}: {message}")) if warn else None
        summary, _ = execute(config, runs_dir, Output(mode="quiet", command=("gdrun", "check", shown), warn=where),
                             path.parent)  # fmt: skip
    except GdrunError as exc:
        result.error = str(exc)
        return result
    finally:
        result.time_s = time.perf_counter() - started
    result.results = evaluate(rules, summary, config.expect)
    result.status, result.reason, result.run_dir = summary["status"], summary.get("reason"), summary.get("run_dir")
    result.outcome = "passed" if all(r.passed for r in result.results) else "failed"
    return result


def evaluate_sweep(expect: Any, sweep_dir: Path, items: list) -> list[Result]:
    """Check every config of a finished sweep against the rules whose ``when`` it meets.
    ``items`` are the sweep's (overrides, Config) pairs; each result names its config."""
    from .sweep import read_results

    results: list[Result] = []
    for row in sorted(read_results(sweep_dir), key=lambda r: int(r["id"])):
        i = int(row["id"])
        overrides, config = items[i]
        rules = applicable(expect, config.to_dict())
        if not rules:
            continue
        summary = {
            "status": row["status"], "iterations": int(row["steps"]), "value": summary_number(row["value"]),
            "params": {k[len("param."):]: float(v) for k, v in row.items() if k.startswith("param.") and v != ""},
        }  # fmt: skip
        label = f"config {i} ({', '.join(f'{k}={v}' for k, v in overrides.items())}): "
        for result in evaluate(rules, summary, expect):
            result.expectation = label + result.expectation
            results.append(result)
    return results


def _check_sweep_file(path: Path, raw: dict[str, Any], runs_dir: str | Path, result: "ConfigResult") -> None:
    """A config with a ``sweep:`` part: run the sweep (batched) and check each of its configs."""
    from .config import validate
    from .sweep import SweepOptions, expanded_configs, run_sweep, validate_sweep

    spec = validate_sweep(raw.pop("sweep") or {})
    validate(raw)  # the base config alone, for its one-line errors
    summary, _ = run_sweep(raw, spec, SweepOptions(runs_dir=Path(runs_dir), base_dir=str(path.parent),
                                                  command=("gdrun", "check", path.as_posix())))  # fmt: skip
    result.results = evaluate_sweep(validate(raw).expect, Path(summary["sweep_dir"]), expanded_configs(raw, spec))
    result.status = summary["status"] if summary["status"] == "interrupted" else None
    result.reason = f"sweep of {summary['configs']} configs in {summary['batches']} batch(es)"
    result.run_dir = summary["sweep_dir"]
    result.outcome = "passed" if all(r.passed for r in result.results) else "failed"


def check(paths: Iterable[str | Path], runs_dir: str | Path = "runs", patterns: Iterable[str] = (),
          warn: Callable[[str], None] | None = None, progress: Callable[[str], Any] | None = None) -> Report:  # fmt: skip
    """Find the configs, keep those ``patterns`` select (any; substring of the path, any case),
    run each one with expectations, and collect the results. Stops early on Ctrl-C."""
    started = time.perf_counter()
    files = find_configs(paths, runs_dir)
    patterns = [p.lower() for p in patterns]
    selected = [f for f in files if not patterns or any(p in f.as_posix().lower() for p in patterns)]
    if patterns and not selected:
        raise GdrunError(f"-k {' / '.join(repr(p) for p in patterns)} selects none of the {len(files)} config file(s)")
    report = Report([], deselected=len(files) - len(selected))
    for path in selected:
        if progress is not None:
            progress(path.as_posix())
        result = check_file(path, runs_dir, warn)
        report.configs.append(result)
        if result.status == "interrupted":
            report.interrupted = True
            break
    report.time_s = time.perf_counter() - started
    return report


# ---------------------------------------------------------------------------- output


def _rows(report: Report) -> list[tuple[str, str, str, str, str, str]]:
    rows = []
    for c in report.configs:
        if c.outcome == "skipped":
            continue
        first = True
        if c.outcome == "error":
            rows.append((c.config, "(config)", "-", "-", "ERROR", f"{c.time_s:.2f} s"))
            continue
        for r in c.results:
            rows.append((c.config if first else "", r.expectation, r.expected_text(), r.got_text(),
                         "pass" if r.passed else "FAIL", f"{c.time_s:.2f} s" if first else ""))  # fmt: skip
            first = False
    return rows


def footer(report: Report) -> str:
    n = report.counts()
    parts = [f"{n['passed']} passed", f"{n['failed']} failed", f"{n['errors']} error{'s' if n['errors'] != 1 else ''}"]
    extra = []
    if n["skipped"]:
        extra.append(f"{n['skipped']} skipped (nothing to check)")
    if n["deselected"]:
        extra.append(f"{n['deselected']} deselected by -k")
    checked = n["configs"] - n["skipped"]
    text = f"{checked} config{'s' if checked != 1 else ''} checked: {', '.join(parts)}"
    text += f"; {n['expectations'] - n['expectations_failed']}/{n['expectations']} expectations held"
    if extra:
        text += f"; {', '.join(extra)}"
    text += f"; {report.time_s:.2f} s"
    if report.interrupted:
        text += " (interrupted: the remaining configs did not run)"
    return text


def print_report(report: Report, console=None) -> None:
    """The results table (rich on a terminal, plain aligned text elsewhere), the failures and
    errors one per line, then a one-line footer."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    rows = _rows(report)
    titles = ("config", "expectation", "expected", "got", "result", "time")
    if rows and console.is_terminal:
        from rich import box
        from rich.text import Text

        table = Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False)
        for title in titles:  # a long path folds; the numbers never do
            table.add_column(title, justify="right" if title == "time" else "left", overflow="fold",
                             no_wrap=title != "config")  # fmt: skip
        style = {"pass": "green", "FAIL": "bold red", "ERROR": "bold red"}
        for row in rows:
            table.add_row(*(Text(cell) for cell in row[:4]), Text(row[4], style=style[row[4]]), Text(row[5]))
        console.print(table)
    elif rows:
        widths = [max(len(t), *(len(r[i]) for r in rows)) for i, t in enumerate(titles)]
        for row in (titles, *rows):
            cells = [cell.rjust(w) if i == 5 else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths))]
            console.print("  ".join(cells).rstrip(), highlight=False, soft_wrap=True, markup=False)
    for c in report.configs:
        if c.outcome == "error":
            console.print(f"ERROR {c.config}: {c.error}", highlight=False, soft_wrap=True, markup=False)
        for r in c.results:
            if not r.passed:
                why = f" ({c.reason})" if r.kind == "status" and c.reason else ""
                console.print(f"FAIL {c.config} {r.message()}{why}", highlight=False, soft_wrap=True, markup=False)
    console.print(footer(report), highlight=False, soft_wrap=True, markup=False)


def junit_xml(report: Report) -> str:
    """JUnit XML: one <testsuite> per config file, one <testcase> per expectation; a failed
    expectation is a <failure> naming expected and got, a config that could not run an <error>,
    a config without expectations one <skipped> testcase."""
    import socket
    import xml.etree.ElementTree as ET

    host = socket.gethostname() or "localhost"
    root = ET.Element("testsuites", name="gdrun check")
    for i, c in enumerate(report.configs):
        suite = ET.SubElement(root, "testsuite", name=c.config, id=str(i), package="gdrun.check", hostname=host,
                              timestamp=c.started_at, time=f"{c.time_s:.6f}")  # fmt: skip
        if c.run_dir or c.status:
            properties = ET.SubElement(suite, "properties")
            for key in ("name", "status", "reason", "run_dir"):
                if getattr(c, key) is not None:
                    ET.SubElement(properties, "property", name=key, value=str(getattr(c, key)))
        tests = failures = errors = skipped = 0
        if c.outcome == "error":
            case = ET.SubElement(suite, "testcase", name="config", classname=c.config, time=f"{c.time_s:.6f}")
            ET.SubElement(case, "error", message=c.error or "", type="GdrunError").text = c.error
            tests, errors = 1, 1
        elif c.outcome == "skipped":
            case = ET.SubElement(suite, "testcase", name="expect", classname=c.config, time="0")
            ET.SubElement(case, "skipped", message=c.reason or "skipped")
            tests, skipped = 1, 1
        for j, r in enumerate(c.results):
            case = ET.SubElement(suite, "testcase", name=r.expectation, classname=c.config,
                                 time=f"{c.time_s:.6f}" if j == 0 else "0")  # fmt: skip
            tests += 1
            if not r.passed:
                failures += 1
                detail = r.message() + (f"\nrun status: {c.status} ({c.reason})" if c.status else "")
                detail += f"\nrun dir: {c.run_dir}" if c.run_dir else ""
                ET.SubElement(case, "failure", message=r.message(), type="ExpectationFailed").text = detail
        suite.attrib.update(tests=str(tests), failures=str(failures), errors=str(errors), skipped=str(skipped))
        # attribute order as readers expect it: name, tests, failures, errors, skipped, time...
        ordered = {k: suite.attrib[k] for k in ("name", "tests", "failures", "errors", "skipped", "time", "timestamp",
                                                  "hostname", "id", "package")}  # fmt: skip
        suite.attrib.clear()
        suite.attrib.update(ordered)
    # junit-10.xsd (Jenkins) allows no "skipped" on <testsuites>; each <testsuite> has its own
    totals = {k: str(sum(int(s.get(k)) for s in root)) for k in ("tests", "failures", "errors")}
    root.attrib.update(totals, time=f"{report.time_s:.6f}")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def check_command(paths: list[Path], runs_dir: Path, patterns: list[str], junit: Path | None, as_json: bool) -> int:
    """``gdrun check``: run, report (table or JSON, and JUnit XML if asked), return the exit code."""
    from rich.console import Console

    console = Console()
    warn = lambda message: print(f"gdrun: warning: {message}", file=sys.stderr)  # noqa: E731
    if console.is_terminal and not as_json:
        with console.status("checking") as status:
            report = check(paths, runs_dir, patterns, warn, lambda name: status.update(f"checking {name}"))
    else:
        report = check(paths, runs_dir, patterns, warn)
    if junit is not None:
        try:
            junit.parent.mkdir(parents=True, exist_ok=True)
            junit.write_text(junit_xml(report), encoding="utf-8")
        except OSError as exc:
            raise GdrunError(f"cannot write the JUnit report {junit}: {exc.strerror or exc}") from None
    if as_json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        print_report(report, console)
    return report.exit_code


__all__ = ["validate_expect", "validate_when", "matches", "applicable", "evaluate", "check_names", "check",
           "check_file", "find_configs", "junit_xml", "load_config", "run_expecting", "printed_tolerance"]  # fmt: skip
