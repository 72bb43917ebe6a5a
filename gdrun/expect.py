"""Expectations: what a run must reach, written in its config (``expect:``): the schema, the
conditions (``when:``) and the checking of a finished run against them. ``gdrun check``
(:mod:`gdrun.check`) finds configs, runs them and reports.

A config's ``expect:`` part is one rule (a mapping) or a list of rules::

    expect:
      status: max_epochs                      # or a list: [converged, max_epochs]
      params: {x: 0.8053}                     # final parameters, to the printed decimals
      value: {value: 0.6485, atol: 1e-3}      # final f (a fit's loss; `loss:` is the same key)
      steps_at_most: 10                       # steps (a fit: epochs) done
      steps_at_least: 10
      r2: 0.9999                              # fits only
      predictions: [7.9998]                   # fits only: the model at fit.predict, in order
      regime: oscillating                     # the verdict of the diagnostics (or a list of regimes)
      gradient: {x: null, y: 27}              # the gradient at the final point; null: no path (detach)
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

import math
import re
from dataclasses import dataclass
from typing import Any

from .errors import GdrunError, closest
from .inputs import number as read_number
from .inputs import show
from .runs import summary_number

STATUSES = ("converged", "max_epochs", "diverged", "failed")
OK_STATUSES = ("converged", "max_epochs")  # what a rule without `status:` requires
CHECK_KEYS = ("status", "params", "value", "loss", "r2", "predictions", "steps_at_most", "steps_at_least", "regime",
              "gradient")  # fmt: skip
NO_PATH = ("none", "no path", "none (no path)")  # how an expectation may write "no gradient path" besides null
RULE_KEYS = ("when", *CHECK_KEYS, "atol", "rtol")
ENTRY_KEYS = ("value", "atol", "rtol")
CONDITIONS = ("equals", "below", "above", "at_most", "at_least", "in")
_DECIMAL = re.compile(r"^[+-]?(?:\d+(?:\.(\d*))?|\.(\d+))(?:[eE]([+-]?\d+))?$")


# ---------------------------------------------------------------------------- reading numbers


class Written(float):
    """A float that remembers how the YAML file wrote it ("2.0000" loads as 2.0)."""

    def __new__(cls, value: float, text: str) -> "Written":
        number = super().__new__(cls, value)
        number.text = text
        return number



def unwritten(value: Any) -> Any:
    """``value`` with every :class:`Written` float (and those inside lists and mappings) plain."""
    if isinstance(value, Written):
        return float(value)
    if isinstance(value, list):
        return [unwritten(v) for v in value]
    if isinstance(value, dict):
        return {k: unwritten(v) for k, v in value.items()}
    return value


def printed_tolerance(text: str) -> float:
    """Half a unit of the last decimal written: "0.8053" -> 5e-05, "7.5" -> 0.05, "4.1e-6" -> 5e-08."""
    match = _DECIMAL.match(text.strip().replace("_", ""))
    if match is None:  # cannot happen for what _expected_number accepts; be safe
        match = _DECIMAL.match(repr(float(text)))
    fraction = match.group(1) or match.group(2) or ""
    decimals = len(fraction) - int(match.group(3) or 0)
    return 0.5 * 10.0 ** (-decimals)


def _expected_number(key: str, value: Any) -> tuple[float, str]:
    """(number, the text it was written as), read by :func:`gdrun.inputs.number` (numeric text
    such as "1e-5" counts)."""
    result = read_number(key, value)
    if isinstance(value, Written):
        text = value.text
    elif isinstance(value, str):
        text = value.strip().replace("_", "")
    elif isinstance(value, int):
        text = str(value)
    else:
        text = repr(result)
    if _DECIMAL.match(text.replace("_", "")) is None:
        text = repr(result)
    return result, text


def _tolerance(key: str, value: Any) -> float:
    number, _ = _expected_number(key, value)
    if number < 0:
        raise GdrunError(f"{key} must not be negative, got {show(value)}")
    return number


def _count(key: str, value: Any) -> int:
    number, _ = _expected_number(key, value)
    if not number.is_integer() or number < 0:
        raise GdrunError(f"{key} must be a whole number of steps (0 or more), got {show(value)}")
    return int(number)


# ---------------------------------------------------------------------------- validation


def validate_expect(value: Any, keys: tuple[str, ...] | None = None) -> Any:
    """Check a config's ``expect:`` part and return its canonical form (None: no expectations).
    ``keys`` are the config keys a ``when:`` may name (None: any)."""
    if value is None:
        return None
    if isinstance(value, dict):
        return _rule("expect", value, keys)
    if isinstance(value, (list, tuple)):
        if not value:
            raise GdrunError("expect must not be an empty list")
        return [_rule(f"expect[{i}]", rule, keys) for i, rule in enumerate(value)]
    raise GdrunError(f"expect must be a mapping (status, params, value...) or a list of them, got {show(value)}")


def _rule(where: str, raw: Any, keys: tuple[str, ...] | None) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise GdrunError(f"{where} must be a mapping such as {{status: converged}}, got {show(raw)}")
    for key in raw:
        if key not in RULE_KEYS:
            raise GdrunError(f"unknown expectation '{where}.{key}'{closest(str(key), RULE_KEYS)}; "
                             f"expectations: {', '.join(k for k in RULE_KEYS if k != 'loss')}")  # fmt: skip
    if not any(raw.get(k) is not None for k in CHECK_KEYS):
        raise GdrunError(f"{where} expects nothing: give status, params, value, steps_at_most, steps_at_least, r2, "
                         "predictions, regime or gradient")  # fmt: skip
    if raw.get("value") is not None and raw.get("loss") is not None:
        raise GdrunError(f"give {where}.value or {where}.loss, not both (they are the same number)")
    default = {k: _tolerance(f"{where}.{k}", raw[k]) for k in ("atol", "rtol") if raw.get(k) is not None}
    rule: dict[str, Any] = {}
    if raw.get("when") is not None:
        rule["when"] = validate_when(f"{where}.when", raw["when"], keys)
    if raw.get("status") is not None:
        rule["status"] = _status(f"{where}.status", raw["status"])
    if raw.get("params") is not None:
        params = raw["params"]
        if not isinstance(params, dict) or not params:
            raise GdrunError(f"{where}.params must be a mapping of parameter names to values, e.g. {{x: 0.8053}}, "
                             f"got {show(params)}")  # fmt: skip
        rule["params"] = {str(k): _entry(f"{where}.params.{k}", v, default) for k, v in params.items()}
    for key in ("value", "loss", "r2"):
        if raw.get(key) is not None:
            rule["value" if key == "loss" else key] = _entry(f"{where}.{key}", raw[key], default)
    if raw.get("predictions") is not None:
        items = raw["predictions"]
        if not isinstance(items, (list, tuple)) or not items:
            raise GdrunError(f"{where}.predictions must be a list of values, one per fit.predict point, got {show(items)}")
        rule["predictions"] = [_entry(f"{where}.predictions[{i}]", v, default) for i, v in enumerate(items)]
    if raw.get("regime") is not None:
        rule["regime"] = _regime(f"{where}.regime", raw["regime"])
    if "gradient" in raw and raw["gradient"] is not None:
        gradient = raw["gradient"]
        if not isinstance(gradient, dict) or not gradient:
            raise GdrunError(f"{where}.gradient must be a mapping of variable names to values (null: no gradient path), "
                             f"e.g. {{x: null, y: 27}}, got {show(gradient)}")  # fmt: skip
        rule["gradient"] = {str(k): None if _no_path(v) else _entry(f"{where}.gradient.{k}", v, default)
                            for k, v in gradient.items()}  # fmt: skip
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


def _no_path(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip().lower() in NO_PATH)


def _regime(key: str, value: Any) -> str | list[str]:
    from .diagnostics import REGIMES

    return _one_of(key, value, REGIMES, "regime")


def _status(key: str, value: Any) -> str | list[str]:
    return _one_of(key, value, STATUSES, "status")


def _one_of(key: str, value: Any, choices: tuple[str, ...], what: str) -> str | list[str]:
    """A name of ``choices``, or a non-empty list of them (kept as a list)."""
    items = value if isinstance(value, (list, tuple)) else [value]
    if not items:
        raise GdrunError(f"{key} must name at least one {what}")
    for item in items:
        if not isinstance(item, str) or item not in choices:
            raise GdrunError(f"{key} must be one of {', '.join(choices)} (or a list of them), got {show(item)}"
                             f"{closest(str(item), choices)}")  # fmt: skip
    return items[0] if len(items) == 1 else list(items)


def validate_when(key: str, when: Any, keys: tuple[str, ...] | None = None) -> dict[str, Any]:
    """``{lr: {below: 0.5}, optimizer: sgd}``: every named config value must meet its condition.
    A condition is a plain value (equals) or a mapping of equals, below, above, at_most,
    at_least, in; nested keys are dotted (``stop.grad_norm_below``, ``optimizer_options.momentum``)."""
    if not isinstance(when, dict) or not when:
        raise GdrunError(f"{key} must be a mapping of config keys to conditions, e.g. {{lr: {{below: 0.5}}}}, got {show(when)}")
    checked: dict[str, Any] = {}
    for name, condition in when.items():
        head = str(name).partition(".")[0]
        if head == "expect" or (keys is not None and head not in keys):
            known = [k for k in keys or () if k != "expect"]
            raise GdrunError(f"{key} names '{name}', which is not a config key{closest(head, known)}")
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
                    raise GdrunError(f"{where}.in must be a non-empty list, got {show(operand)}")
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
    raise GdrunError(f"{key} must be a plain value (number, text, true/false, null), got {show(value)}")


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
        for name in rule.get("gradient", {}):
            if name not in prepared.names:
                raise GdrunError(f"expect.gradient names '{name}', which is not a variable the run moves"
                                 f"{closest(name, prepared.names)}; variables: {', '.join(prepared.names)}")  # fmt: skip
        if ("regime" in rule or "gradient" in rule) and prepared.config.explain is False:
            raise GdrunError("expect.regime and expect.gradient need the diagnostics, which explain: false turns off")
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
    kind: str  # "status", "regime", "number", "no path", "at_most" or "at_least"
    expected: Any  # a list of statuses, a number, or a step count
    got: Any
    passed: bool
    atol: float | None = None
    rtol: float | None = None
    note: str | None = None  # what explains the value got (a regime's verdict sentence)

    def expected_text(self) -> str:
        if self.kind in ("status", "regime"):
            return " or ".join(self.expected)
        if self.kind == "no path":
            return "None (no gradient path)"
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
        if not self.passed and self.note:
            text += f" ({self.note})"
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
        if "regime" in rule:
            wanted = rule["regime"] if isinstance(rule["regime"], list) else [rule["regime"]]
            diagnostics = summary.get("diagnostics") or {}
            got = diagnostics.get("regime", "not computed (explain: false)")
            results.append(Result(f"regime{tag}", "regime", wanted, got, got in wanted, note=diagnostics.get("verdict")))
        gradient, no_path = summary.get("gradient") or {}, summary.get("no_gradient_path") or []
        for name, entry in rule.get("gradient", {}).items():
            label = f"gradient.{name}{tag}"
            if entry is None:
                got = "no path" if name in no_path else gradient.get(name)
                results.append(Result(label, "no path", None, got, name in no_path))
            elif name in no_path:
                results.append(Result(label, "number", entry["value"], "no path", False, entry.get("atol", 0.0),
                                      entry.get("rtol", 0.0)))  # fmt: skip
            else:
                number(label, gradient.get(name), entry)
        steps = summary.get("iterations")
        if "steps_at_most" in rule:
            results.append(Result(f"steps_at_most{tag}", "at_most", rule["steps_at_most"], steps,
                                  steps is not None and steps <= rule["steps_at_most"]))  # fmt: skip
        if "steps_at_least" in rule:
            results.append(Result(f"steps_at_least{tag}", "at_least", rule["steps_at_least"], steps,
                                  steps is not None and steps >= rule["steps_at_least"]))  # fmt: skip
    return results


# ---------------------------------------------------------------------------- comparisons

#: a tuned comparison's rules (gdrun compare), each judged on the variant's held-out figures:
#:     expect:
#:       - {optimizer: adam, solved_at_least: 0.95, median_steps_at_most: 2000}
#:       - {optimizer: "sgd:momentum=0.9", rank_at_most: 2}
COMPARE_CHECKS = ("solved_at_least", "median_steps_at_most", "rank_at_most")


def validate_compare_expect(value: Any, labels: tuple[str, ...]) -> list[dict[str, Any]]:
    """A comparison's ``expect:`` part: a rule or a list of rules, each naming one of ``labels``."""
    rules = value if isinstance(value, list) else [value]
    checked = []
    for i, rule in enumerate(rules):
        where = f"expect[{i}]" if isinstance(value, list) else "expect"
        if not isinstance(rule, dict):
            raise GdrunError(f"{where} must be a mapping such as {{optimizer: adam, solved_at_least: 0.95}}, got {show(rule)}")
        for key in rule:
            if key not in ("optimizer", *COMPARE_CHECKS):
                raise GdrunError(f"unknown key '{where}.{key}'{closest(str(key), COMPARE_CHECKS)}; a comparison's rules "
                                 f"take optimizer, {', '.join(COMPARE_CHECKS)}")  # fmt: skip
        if rule.get("optimizer") not in labels:
            raise GdrunError(f"{where}.optimizer must name a compared variant ({', '.join(labels)}), "
                             f"got {show(rule.get('optimizer'))}")  # fmt: skip
        if not any(k in rule for k in COMPARE_CHECKS):
            raise GdrunError(f"{where} checks nothing: give {', '.join(COMPARE_CHECKS)}")
        out: dict[str, Any] = {"optimizer": rule["optimizer"]}
        if "solved_at_least" in rule:
            out["solved_at_least"] = read_number(f"{where}.solved_at_least", rule["solved_at_least"], low=0, high=1)
        for key in ("median_steps_at_most", "rank_at_most"):
            if key in rule:
                out[key] = read_number(f"{where}.{key}", rule[key], integer=True, low=0 if key.startswith("median") else 1)
        checked.append(out)
    return checked


def evaluate_compare(rules: list[dict[str, Any]], summary: dict[str, Any]) -> list[Result]:
    """Each rule against the finished comparison's held-out figures (``summary["variants"]``)."""
    by_label = {v["label"]: v for v in summary.get("variants", [])}
    results = []
    for rule in rules:
        variant = by_label.get(rule["optimizer"], {})
        heldout = variant.get("heldout") or {}
        for key in COMPARE_CHECKS:
            if key not in rule:
                continue
            expected = rule[key]
            got = {"solved_at_least": heldout.get("success_rate"), "median_steps_at_most": heldout.get("median_steps"),
                   "rank_at_most": variant.get("rank")}[key]  # fmt: skip
            at_least = key == "solved_at_least"
            passed = got is not None and (got >= expected if at_least else got <= expected)
            results.append(Result(f"{rule['optimizer']}: {key.replace('_at_least', '').replace('_at_most', '')}",
                                  "at_least" if at_least else "at_most", expected,
                                  None if got is None else float(got), passed))  # fmt: skip
    return results


__all__ = ["STATUSES", "OK_STATUSES", "Written", "unwritten", "validate_expect", "validate_when", "matches", "lookup", "applicable",
           "check_names", "Result", "evaluate", "printed_tolerance", "validate_compare_expect", "evaluate_compare"]  # fmt: skip
