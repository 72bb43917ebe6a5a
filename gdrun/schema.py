"""The JSON Schema of a config file (``gdrun schema``), generated from the validator's own definitions.

Every config key's fragment comes from its :class:`gdrun.config.Field`, the same record whose check
:func:`gdrun.config.validate` runs; the names a nested part takes (stop rules, fit keys, optimizer
options, schedules, expectations, sweep keys) and every enum come from the registries the validators
read. So the schema and the validator cannot drift apart: a new key or choice shows up in both.

The schema describes what a file may hold, as far as JSON Schema can say it: types, names, enums,
bounds and the "not both" rules. What needs gdrun itself (an expression's syntax, a data file, the
order of milestones) is left to ``gdrun check``. Numbers may be written as numeric text (``"1e-3"``),
as the validator reads them. Nothing heavy is imported here (no torch, sympy or matplotlib).
"""

from __future__ import annotations

from typing import Any

from .inputs import ASCII_NUMBER, MAX_EPOCHS, MAX_POINTS, MAX_SWEEP_CONFIGS

DIALECT = "https://json-schema.org/draft/2020-12/schema"
_NUMBER = rf"\s*(?:{ASCII_NUMBER.pattern})\s*"  # what inputs.number reads as text
_NAME = r"[^,=]*[^\s,=][^,=]*"
_DEFINITION = rf"{_NAME}=[^,]*[^\s,][^,]*"  # NAME=EXPR: text on both sides of the first =
NUMERIC_TEXT = {"type": "string", "pattern": rf"^{_NUMBER}$",
                "description": "A number written as text, e.g. \"1e-3\"."}  # fmt: skip
_WHOLE = r"[0-9][0-9_]*(?:\.[0_]*)?|\.0[0_]*"  # no fraction but zeros
_EXPONENT = r"(?:[0-9][0-9_]*\.?[0-9_]*|\.[0-9][0-9_]*)[eE][+-]?[0-9]+"  # may be whole (1.5e1 is 15)
INTEGER_TEXT = {"type": "string", "pattern": rf"^\s*[+-]?(?:{_WHOLE}|{_EXPONENT})\s*$",
                "description": "A whole number written as text, e.g. \"1000\" or \"1e3\"."}  # fmt: skip
_TEXT = {"$ref": "#/$defs/numeric_text"}
_NULL = {"type": "null"}


def number(*, minimum: float | None = None, maximum: float | None = None, above: float | None = None,
           integer: bool = False, nullable: bool = False) -> dict[str, Any]:  # fmt: skip
    """A number (a whole one with ``integer``) in bounds, or numeric text (checked by form only:
    JSON Schema cannot read a string's value); ``above`` is an exclusive minimum."""
    own: dict[str, Any] = {"type": "integer" if integer else "number"}
    for word, bound in (("minimum", minimum), ("maximum", maximum), ("exclusiveMinimum", above)):
        if bound is not None:
            own[word] = bound
    return or_null({"anyOf": [own, {"$ref": "#/$defs/integer_text"} if integer else _TEXT]}, nullable)


def or_null(fragment: dict[str, Any], nullable: bool = True) -> dict[str, Any]:
    """``fragment``, or also null (where the validator takes None as "the default")."""
    if not nullable:
        return fragment
    if set(fragment) == {"anyOf"}:
        return {"anyOf": [*fragment["anyOf"], _NULL]}
    return {"anyOf": [fragment, _NULL]}


def one_or_list(names) -> dict[str, Any]:
    """One of ``names``, or a non-empty list of them."""
    enum = {"enum": list(names)}
    return {"anyOf": [enum, {"type": "array", "items": enum, "minItems": 1}]}


def _any_case(text: str) -> str:
    """A regex matching ``text`` in any case (ECMA 262 patterns have no inline flags)."""
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else ("\\" + c if c in "()" else c) for c in text)


def _not_both(a: str, b: str) -> dict[str, Any]:
    """Not both ``a`` and ``b`` given (null counts as not given)."""
    given = {"not": _NULL}
    return {"not": {"required": [a, b], "properties": {a: given, b: given}}}


# ---------------------------------------------------------------------------- the nested parts


def function() -> dict[str, Any]:
    return {"type": ["string", "null"]}


def name() -> dict[str, Any]:
    return {"type": ["string", "number", "null"]}


def flag() -> dict[str, Any]:
    return {"type": ["boolean", "null"]}


def init() -> dict[str, Any]:
    """A number, ``"x=1,y=2"``, ``"1,2"``, a list or a mapping name -> number (as parse_init reads)."""
    value = number()
    pairs, numbers = rf"{_NAME}={_NUMBER}", rf"{_NUMBER}(?:,{_NUMBER})+"
    return or_null({"anyOf": [
        value,
        {"type": "string", "pattern": rf"^(?:{pairs}(?:,{pairs})*|{numbers})$"},
        {"type": "array", "items": value, "minItems": 1},
        {"type": "object", "additionalProperties": value},
    ]})  # fmt: skip


def init_range() -> dict[str, Any]:
    value = number()
    return or_null({"anyOf": [{"type": "array", "items": value, "minItems": 2, "maxItems": 2},
                              {"type": "string", "pattern": rf"^{_NUMBER},{_NUMBER}$"}]})  # fmt: skip


def let() -> dict[str, Any]:
    """A mapping name -> expression, a list of ``"name=expr"`` (or pairs, or one-key mappings), or
    one string ``"z=x+y,f=z**2"`` (as parse_let reads)."""
    text = {"type": ["string", "number"]}
    part = rf"(?:\s*|{_DEFINITION})"
    item = {"anyOf": [{"type": "string", "pattern": rf"^{_DEFINITION}$"},
                      {"type": "object", "additionalProperties": text, "minProperties": 1, "maxProperties": 1},
                      {"type": "array", "prefixItems": [{"type": "string"}, text], "minItems": 2, "maxItems": 2}]}
    return or_null({"anyOf": [{"type": "object", "additionalProperties": text}, {"type": "array", "items": item},
                              {"type": "string", "pattern": rf"^{part}(?:,{part})*$"}]})  # fmt: skip


_SOME_LET = {"anyOf": [{"type": "string", "pattern": r"[^\s,]"}, {"type": "object", "minProperties": 1},
                       {"type": "array", "minItems": 1}]}  # a let that defines something


def _no_let_with(when: dict[str, Any]) -> dict[str, Any]:
    """No ``let`` where ``when`` holds (a fit, a built-in function)."""
    return {"not": {"required": ["let", *when.get("required", [])],
                    "properties": {"let": _SOME_LET, **when.get("properties", {})}}}  # fmt: skip


def stop() -> dict[str, Any]:
    from .config import STOP_KEYS

    bounds = {"grad_norm_below": number(above=0, nullable=True), "value_below": number(nullable=True),
              "loss_below": number(nullable=True), "diverge_above": number(above=0)}  # fmt: skip
    about = {"grad_norm_below": "Converged once the gradient norm is below this (default: off).",
             "value_below": "Converged once f (a fit: the full-data loss) is below this.",
             "loss_below": "Converged once the full-data loss is below this (the same rule as value_below).",
             "diverge_above": "Diverged once |f| or a |coordinate| exceeds this (default 1e100)."}  # fmt: skip
    properties = {key: {**bounds[key], "description": about[key]} for key in STOP_KEYS}
    return or_null({"type": "object", "properties": properties, "additionalProperties": False,
                    "not": {"required": ["loss_below", "value_below"]}})  # fmt: skip


def _option(default: Any) -> dict[str, Any]:
    """An optimizer option's values, by the type of its default: a flag, a pair (betas) or a number."""
    if isinstance(default, bool):
        return flag()
    if isinstance(default, tuple):
        return or_null({"type": "array", "items": number(), "minItems": len(default), "maxItems": len(default)})
    return number(nullable=True)


def optimizer_options() -> dict[str, Any]:
    """Every option some optimizer takes; :func:`optimizer_rules` narrows them to the optimizer's own."""
    from .optim import OPTIMIZER_OPTIONS

    union: dict[str, list] = {}
    for options in OPTIMIZER_OPTIONS.values():
        for key, default in options.items():
            kinds = union.setdefault(key, [])
            if _option(default) not in kinds:
                kinds.append(_option(default))
    properties = {key: kinds[0] if len(kinds) == 1 else {"anyOf": kinds} for key, kinds in union.items()}
    return or_null({"type": "object", "properties": properties, "additionalProperties": False})


def optimizer_rules(default: str) -> list[dict[str, Any]]:
    """For each optimizer: its options only (``default`` is the optimizer of a config without one)."""
    from .optim import OPTIMIZER_OPTIONS

    rules = []
    for optimizer, options in OPTIMIZER_OPTIONS.items():
        when: dict[str, Any] = {"properties": {"optimizer": {"const": optimizer}}}
        if optimizer != default:
            when["required"] = ["optimizer"]
        own = {"type": "object", "properties": {k: _option(v) for k, v in options.items()},
               "additionalProperties": False}  # fmt: skip
        rules.append({"if": when, "then": {"properties": {"optimizer_options": or_null(own)}}})
    return rules


def schedule() -> dict[str, Any]:
    return or_null({"$ref": "#/$defs/schedule"})


def schedule_spec() -> dict[str, Any]:
    """A schedule: a name, or a mapping of its name and options (``$defs/schedule``, recursive:
    a sequential schedule lists schedules)."""
    from .schedules import REQUIRED, SCHEDULE_OPTIONS, SCHEDULES

    lists = {"milestones": {"type": "array", "items": number(minimum=1, integer=True), "minItems": 1},
             "schedules": {"type": "array", "items": {"$ref": "#/$defs/schedule"}, "minItems": 1}}  # fmt: skip
    rules = []
    for key, options in SCHEDULE_OPTIONS.items():
        properties: dict[str, Any] = {"name": {"const": key}}
        properties.update({option: or_null(lists.get(option, number())) for option in options})
        required = ["name", *(option for option, default in options.items() if default is REQUIRED)]
        rules.append({"if": {"properties": {"name": {"const": key}}},
                      "then": {"properties": properties, "required": required, "additionalProperties": False}})
    table = {"type": "object", "properties": {"name": {"enum": list(SCHEDULES)}}, "required": ["name"], "allOf": rules}
    bare = [key for key in SCHEDULES if REQUIRED not in SCHEDULE_OPTIONS[key].values()]  # a name alone: the defaults
    return {"anyOf": [{"enum": bare}, table]}


def fit() -> dict[str, Any]:
    """The ``fit:`` part: validate_fit's keys (:data:`gdrun.fitting.FIT_KEYS`), each described here."""
    from .fitting import FIT_KEYS, LOSSES

    names = or_null({"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]})
    points = {"anyOf": [number(), {"type": "array", "items": number(), "minItems": 1, "maxItems": MAX_POINTS}]}
    data = {"anyOf": [
        {"type": "string", "minLength": 1, "description": "A CSV file with a header row."},
        {"type": "object", "minProperties": 1, "description": "Columns: lists or expressions of earlier columns "
         "(linspace, arange, range), or {csv: FILE, columns: {x: HEAD, y: HEAD}}; noise: {std, column, seed}.",
         "properties": {"csv": {"type": "string"}, "columns": {"type": ["string", "object"]},
                        "noise": {"type": "object"}},
         "additionalProperties": {"type": ["array", "string"]}},
    ]}  # fmt: skip
    keys = {
        "model": {"type": "string", "minLength": 1,
                  "description": 'The model, e.g. "a*x**2 + b*x + c": data columns are inputs, '
                                 "other names parameters."},
        "data": data,
        "target": {"type": "string", "description": "The column to fit (default y)."},
        "inputs": {**names, "description": "The input columns (default: the model's names that are data columns)."},
        "loss": {"enum": list(LOSSES), "description": f"{', '.join(LOSSES)} (default mse)."},
        "huber_delta": {**number(above=0), "description": "Where the huber loss turns from quadratic to linear."},
        "batch_size": {"anyOf": [{"const": "full"}, *number(minimum=1, maximum=MAX_POINTS, integer=True)["anyOf"]],
                       "description": "full (default: plain GD), 1 (SGD) or N (mini-batches)."},
        "shuffle": {"type": "boolean", "description": "Reshuffle the data every epoch (seeded)."},
        "drop_last": {"type": "boolean", "description": "Drop the last, short mini-batch."},
        "freeze": {**names, "description": "Parameters kept at their init."},
        "predict": {**or_null({"anyOf": [*points["anyOf"],
                                         {"type": "string", "pattern": rf"^(?:\s*,)*{_NUMBER}(?:,(?:{_NUMBER}|\s*))*$"},
                                         {"type": "object", "additionalProperties": points}]}),
                    "description": "Print the model's output there, before and after."},
    }  # fmt: skip
    return {"type": "object", "properties": {key: keys[key] for key in FIT_KEYS}, "required": ["model", "data"],
            "additionalProperties": False}  # fmt: skip


def expect() -> dict[str, Any]:
    rule = {"$ref": "#/$defs/rule"}
    return or_null({"anyOf": [rule, {"type": "array", "items": rule, "minItems": 1}]})


def expect_rule() -> dict[str, Any]:
    """One rule of ``expect:`` (``$defs/rule``): :data:`gdrun.expect.RULE_KEYS`, the statuses and the
    regimes of the validator; a ``when:`` condition is a plain value or a mapping of conditions."""
    from .config import KEYS
    from .diagnostics import REGIMES
    from .expect import CHECK_KEYS, CONDITIONS, ENTRY_KEYS, NO_PATH, RULE_KEYS, STATUSES

    tolerance = number(minimum=0)
    entry = {"anyOf": [number(), {"type": "object", "properties": {k: number() if k == "value" else tolerance
                                                                     for k in ENTRY_KEYS},
                                  "required": ["value"], "additionalProperties": False}]}  # fmt: skip
    no_path = {"type": "string", "pattern": rf"^\s*(?:{'|'.join(_any_case(p) for p in NO_PATH)})\s*$"}
    plain = {"type": ["number", "string", "boolean", "null", "array"]}
    condition = {"anyOf": [plain, {"type": "object", "minProperties": 1, "additionalProperties": False,
                                   "properties": {op: {"type": "array", "minItems": 1} if op == "in"
                                                  else plain if op == "equals" else number() for op in CONDITIONS}}]}
    count = number(minimum=0, integer=True)
    keys = {
        "when": {"type": "object", "minProperties": 1, "additionalProperties": condition,
                 "propertyNames": {"pattern": rf"^(?:{'|'.join(k for k in KEYS if k != 'expect')})(?:\..*)?$"},
                 "description": "The rule holds where the config meets these conditions, e.g. {lr: {below: 0.5}}."},
        "status": {**one_or_list(STATUSES), "description": "How the run must end."},
        "params": {"type": "object", "minProperties": 1, "additionalProperties": entry,
                   "description": "Final parameters, to the printed decimals, e.g. {x: 0.8053}."},
        "value": {**entry, "description": "Final f (a fit's loss)."},
        "loss": {**entry, "description": "A fit's final loss (the same number as value)."},
        "r2": {**entry, "description": "A fit's R^2."},
        "predictions": {"type": "array", "items": entry, "minItems": 1,
                        "description": "The model at fit.predict, in order."},
        "steps_at_most": {**count, "description": "Steps (a fit: epochs) done, at most."},
        "steps_at_least": {**count, "description": "Steps (a fit: epochs) done, at least."},
        "regime": {**one_or_list(REGIMES), "description": "The verdict of the diagnostics."},
        "gradient": {"type": "object", "minProperties": 1, "additionalProperties": {"anyOf": [entry, _NULL, no_path]},
                     "description": "The gradient at the final point; null: no gradient path (detach)."},
        "atol": {**tolerance, "description": "Absolute tolerance of every number of this rule that gives none."},
        "rtol": {**tolerance, "description": "Relative tolerance of every number of this rule that gives none."},
    }  # fmt: skip
    properties = {key: {**or_null({k: v for k, v in keys[key].items() if k != "description"}),
                        "description": keys[key]["description"]} for key in RULE_KEYS}  # null: not given
    expects = [{"required": [key], "properties": {key: {"not": _NULL}}} for key in CHECK_KEYS]
    return {"type": "object", "properties": properties, "additionalProperties": False, "anyOf": expects,
            **_not_both("value", "loss")}  # fmt: skip


def sweep() -> dict[str, Any]:
    """The ``sweep:`` part of a ``gdrun sweep`` config: validate_sweep's keys, kinds, ranges and distributions."""
    from .config import KEYS, NESTED_KEYS
    from .sweeps import DISTRIBUTIONS, KINDS, RANGES, SWEEP_KEYS

    arguments = {"linspace": 3, "logspace": 3, "range": (2, 3), "uniform": 2, "loguniform": 2}
    forms: dict[str, Any] = {}
    for form in (*RANGES, *DISTRIBUTIONS):
        if form == "choice":
            forms[form] = {"type": "array", "minItems": 1}
        else:
            low, high = (arguments[form],) * 2 if isinstance(arguments[form], int) else arguments[form]
            forms[form] = {"type": "array", "items": number(), "minItems": low, "maxItems": high}
    values = {"anyOf": [{"type": "array", "minItems": 1},
                        {"type": "object", "properties": forms, "minProperties": 1, "maxProperties": 1,
                         "additionalProperties": False},
                        {"type": ["string", "number", "boolean", "null"]}]}  # fmt: skip
    nested = "|".join(NESTED_KEYS)
    keys = {
        "kind": {"enum": list(KINDS), "description": "grid (cartesian product, default), zip or random."},
        "params": {"type": "object", "minProperties": 1, "additionalProperties": values,
                   "propertyNames": {"anyOf": [{"enum": list(KEYS)},
                                               {"pattern": rf"^(?:{nested})\..+"}]},
                   "description": "Config keys (stop.x, optimizer_options.x... reach in) and their values: a list, "
                                  "{linspace|logspace: [start, stop, count]}, {range: [start, stop(, step)]}; "
                                  "random sweeps also {uniform|loguniform: [low, high]}, {choice: [...]}."},
        "n": {**number(minimum=1, maximum=MAX_SWEEP_CONFIGS, integer=True, nullable=True),
              "description": "Number of samples of a random sweep."},
        "seed": {**number(minimum=0, maximum=2**64 - 1, integer=True, nullable=True),
                 "description": "Seed of a random sweep's sampler."},
        "record_every": {**number(minimum=1, maximum=MAX_EPOCHS, integer=True),
                         "description": "Keep every Nth step of each config (default 10)."},
    }  # fmt: skip
    random = {"properties": {"kind": {"const": "random"}}, "required": ["kind"]}
    return {"type": "object", "properties": {key: keys[key] for key in SWEEP_KEYS}, "required": ["params"],
            "additionalProperties": False,
            "if": random, "then": {"required": ["n"], "properties": {"n": {"not": _NULL}}},
            "else": {"properties": {"n": _NULL}}}  # fmt: skip


SWEEP_DESCRIPTION = ("Declares a sweep (gdrun sweep): the config keys to vary (params), how (kind: grid, zip or "
                     "random, with n samples and a seed) and which steps to keep (record_every).")  # fmt: skip


def comparison() -> dict[str, dict[str, Any]]:
    """A ``gdrun compare`` config: ``part`` is its ``compare:`` part (the Protocol's fields), ``file``
    what the rest of such a file may hold (the function's keys, ``expect:`` rules on the variants)."""
    from .compare import CONFIG_KEYS, SEARCHES
    from .config import FIELDS
    from .expect import COMPARE_CHECKS

    part = {
        "optimizers": {"anyOf": [{"type": "string", "minLength": 1}, {"type": "array", "items": {"type": "string"},
                                                                      "minItems": 1}],
                       "description": "The variants: sgd,sgd:momentum=0.9,adam (a list too); an option given as "
                                      "LOW..HIGH is searched with the lr, lr=V fixes the lr."},
        "budget": {**number(minimum=1, integer=True), "description": "Settings tried per variant (default 50)."},
        "search": {"enum": list(SEARCHES), "description": "grid (log-spaced lr, default) or random (seeded)."},
        "lr_range": {"anyOf": [{"type": "string", "pattern": r"^\s*[^.\s]\S*\s*\.\.\s*\S+\s*$"},
                               {"type": "array", "items": number(above=0), "minItems": 2, "maxItems": 2}],
                     "description": "Where the lr is searched, LOW..HIGH (default 1e-5..1)."},
        "starts": {**number(minimum=1, integer=True), "description": "Tuning start points (default 32)."},
        "heldout": {**number(minimum=1, integer=True), "description": "Held-out start points (default 32)."},
        "seed": {**number(minimum=0, integer=True), "description": "Seed of the starts and of random search."},
        "target": {**number(above=0), "description": "Reached when f - f* is below this."},
        "target_fraction": {**number(above=0, maximum=1),
                            "description": "...or below this fraction of the start's f - f*."},
        "f_star": {**number(), "description": "The best value (default: a built-in's known minimum)."},
        "start_range": {**FIELDS["init_range"].schema(), "description": "Where starts are drawn, [LOW, HIGH]."},
    }  # fmt: skip
    top = {key: {**FIELDS[key].schema(), "description": FIELDS[key].description} for key in CONFIG_KEYS}
    checks = {"solved_at_least": number(minimum=0, maximum=1), "median_steps_at_most": number(minimum=0, integer=True),
              "rank_at_most": number(minimum=1, integer=True)}  # fmt: skip
    rule = {"type": "object", "required": ["optimizer"], "additionalProperties": False, "minProperties": 2,
            "properties": {"optimizer": {"type": "string", "description": "A compared variant, as listed."},
                           **{k: {**checks[k], "description": k.replace("_", " ")} for k in COMPARE_CHECKS}}}  # fmt: skip
    return {
        "part": {"type": "object", "required": ["optimizers"], "additionalProperties": False, "properties": part,
                 "description": "Declares a tuned comparison (gdrun compare): the variants, the budget, the starts "
                                "and the target; the file then holds only function, dim, let, backend, dtype, "
                                "epochs, name and expect: rules on the ranked variants."},
        "file": {"required": ["function"], "propertyNames": {"enum": [*top, "compare", "expect"]},
                 "properties": {"expect": {"anyOf": [rule, {"type": "array", "items": rule, "minItems": 1}]}}},
    }  # fmt: skip


# ---------------------------------------------------------------------------- the whole


def config_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a config file: :data:`gdrun.config.FIELDS` with their
    fragments and descriptions, the ``sweep:`` part of a sweep file, and the rules between keys."""
    from dataclasses import fields

    from .config import FIELDS, KEYS, Config
    from .functions import REGISTRY

    built_ins = "|".join(_any_case(name) for name in REGISTRY)
    defaults = {f.name: f.default for f in fields(Config) if isinstance(f.default, (str, int, float))}
    properties: dict[str, Any] = {}
    for key in KEYS:
        field = FIELDS[key]
        properties[key] = {**field.schema(), "description": field.description}
        if key in defaults:
            properties[key]["default"] = defaults[key]
    properties["sweep"] = {**sweep(), "description": SWEEP_DESCRIPTION}
    compare = comparison()
    properties["compare"] = compare["part"]
    run_expect = {k: v for k, v in properties["expect"].items() if k != "description"}
    properties["expect"] = {"description": properties["expect"]["description"] + " In a comparison's file: rules such "
                            "as {optimizer: adam, solved_at_least: 0.95} on the ranked variants."}  # fmt: skip
    what = {"oneOf": [{"required": ["function"], "properties": {"function": {"type": "string", "minLength": 1}}},
                      {"required": ["fit"], "properties": {"fit": {"type": "object"}}}]}  # fmt: skip
    rules = [
        {"if": {"required": ["sweep"]}, "else": {**what, "allOf": optimizer_rules(defaults["optimizer"])}},
        _not_both("init", "init_range"),
        _not_both("clip_norm", "clip_value"),
        _no_let_with({"required": ["fit"], "properties": {"fit": {"type": "object"}}}),
        _no_let_with({"required": ["function"], "properties": {"function": {"pattern": rf"^\s*(?:{built_ins})\s*$"}}}),
    ]
    return {
        "$schema": DIALECT,
        "title": "gdrun config",
        "description": "A config file of gdrun run and gdrun check; with a sweep: part, of gdrun sweep; with a "
                       "compare: part, of gdrun compare. Generated by 'gdrun schema' from the definitions gdrun's "
                       "validator uses.",
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
        "if": {"required": ["compare"]},  # a comparison's file, or a run's (and a sweep's)
        "then": compare["file"],
        "else": {"allOf": rules, "properties": {"expect": run_expect}},
        "$defs": {"numeric_text": NUMERIC_TEXT, "integer_text": INTEGER_TEXT, "schedule": schedule_spec(),
                  "rule": expect_rule()},
    }  # fmt: skip


__all__ = ["config_schema", "number", "or_null", "DIALECT"]
