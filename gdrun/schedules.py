"""Learning-rate schedules with torch.optim.lr_scheduler's semantics, stepped once per epoch.

A schedule is a pair of pure functions: ``init(base_lr) -> state`` and
``step(state) -> (lr, new_state)``. ``base_lr`` and every ``lr`` are float64 numpy arrays of
shape (B, 1) on the host (the engine moves them to the backend). ``state.lr`` is the learning
rate of the coming epoch: after ``init`` the lr of epoch 0, and ``step`` is called once at the end
of every epoch, as ``scheduler.step()`` is after each epoch's ``optimizer.step()``.

Each schedule computes what the torch scheduler of the same kind does, with the same floating
point operations: the chainable form of ``get_lr`` (the new lr from the current one, not the
closed form ``base_lr * f(epoch)``), and the closed form only where torch uses it (when
SequentialLR hands over to its next scheduler). So lr sequences equal torch's to rounding.

=============  =====================================  ============================================
name           torch                                  options (default)
=============  =====================================  ============================================
constant       ConstantLR                             factor (1.0: a constant lr; torch's default
                                                      is 1/3), total_iters (5)
step           StepLR                                 step_size (required), gamma (0.1)
multistep      MultiStepLR                            milestones (required, increasing), gamma (0.1)
exponential    ExponentialLR                          gamma (required)
cosine         CosineAnnealingLR                      T_max (required), eta_min (0.0)
linear         LinearLR (warm-up)                     start_factor (1/3), end_factor (1.0),
                                                      total_iters (5)
sequential     SequentialLR                           schedules (required: a list of the above),
                                                      milestones (required: one fewer, increasing)
=============  =====================================  ============================================

Float options (gamma, eta_min, the factors) may be arrays (B, 1), one value per run of a batch;
integer options (epochs) are shared by the batch. Numpy only: torch is never imported here.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import Counter
from typing import Any, Callable, NamedTuple

import numpy as np

from .errors import GdrunError, check_option_names, known
from .inputs import ASCII_NUMBER, MAX_EPOCHS, number, show


class ScheduleState(NamedTuple):
    epoch: int  # torch's last_epoch: epochs stepped so far
    lr: np.ndarray  # (B, 1) the learning rate of the coming epoch
    base_lr: np.ndarray  # (B, 1) the starting learning rate (torch's base_lrs / initial_lr)


class Schedule(NamedTuple):
    name: str
    init: Callable[[np.ndarray], ScheduleState]
    step: Callable[[ScheduleState], tuple[np.ndarray, ScheduleState]]


class _Required:
    def __repr__(self) -> str:
        return "required"


#: Marks an option without a default in :data:`SCHEDULE_OPTIONS`.
REQUIRED: Any = _Required()

#: The options of each schedule and their defaults.
SCHEDULE_OPTIONS: dict[str, dict[str, Any]] = {
    "constant": {"factor": 1.0, "total_iters": 5},
    "step": {"step_size": REQUIRED, "gamma": 0.1},
    "multistep": {"milestones": REQUIRED, "gamma": 0.1},
    "exponential": {"gamma": REQUIRED},
    "cosine": {"T_max": REQUIRED, "eta_min": 0.0},
    "linear": {"start_factor": 1.0 / 3, "end_factor": 1.0, "total_iters": 5},
    "sequential": {"schedules": REQUIRED, "milestones": REQUIRED},
}


# ------------------------------------------------------------------------------------------ validation


def _fail(schedule: str, option: str, value, requirement: str) -> GdrunError:
    return GdrunError(f"invalid {option} {show(value)} for schedule '{schedule}': {requirement}")


def _float(schedule: str, option: str, value, test, requirement: str) -> float | np.ndarray:
    """A float option, or a float64 array (B, 1) of per-run values, passing ``test``."""
    from .optim import check_number

    return check_number(f"schedule '{schedule}'", option, value, (test, requirement))


def _int(schedule: str, option: str, value, least: int) -> int:
    """An integer option (an integral float or numeric text is taken) of at least ``least``
    and at most MAX_EPOCHS (every integer option counts epochs)."""
    try:
        value = number(option, value.item() if isinstance(value, np.generic) else value, integer=True)
    except GdrunError:
        raise _fail(schedule, option, value, f"must be an integer >= {least}") from None
    if value < least:
        raise _fail(schedule, option, value, f"must be an integer >= {least}")
    if value > MAX_EPOCHS:
        raise _fail(schedule, option, value, f"must be at most {MAX_EPOCHS:,} (epochs)")
    return value


def _milestones(schedule: str, value) -> list[int]:
    if isinstance(value, (str, bytes, dict)) or not isinstance(value, (list, tuple, np.ndarray)):
        raise _fail(schedule, "milestones", value, "must be a list of epochs")
    epochs = [_int(schedule, f"milestones[{i}]", v, 1) for i, v in enumerate(value)]
    if any(b <= a for a, b in zip(epochs, epochs[1:])):
        raise _fail(schedule, "milestones", list(value), "must increase")
    return epochs


def _positive(v):
    return v > 0


def _nonnegative(v):
    return v >= 0


def _unit(v):  # (0, 1]
    return (v > 0) & (v <= 1)


def _closed_unit(v):  # [0, 1]
    return (v >= 0) & (v <= 1)


# ------------------------------------------------------------------------------------------- the rules


class _Rule(NamedTuple):
    """One torch scheduler: ``get_lr(epoch, lr, base_lr, initial)`` is its chainable get_lr at
    ``last_epoch == epoch`` with the current lr ``lr`` (``initial``: torch's ``_is_initial``, the
    call made by the constructor); ``closed(epoch, base_lr)`` its ``_get_closed_form_lr``."""

    get_lr: Callable[[int, np.ndarray, np.ndarray, bool], np.ndarray]
    closed: Callable[[int, np.ndarray], np.ndarray]


def _constant_rule(factor, total_iters) -> _Rule:
    def get_lr(epoch, lr, base, initial):
        if epoch == 0:
            return lr * factor
        if epoch != total_iters:
            return lr
        return lr * (1.0 / factor)

    def closed(epoch, base):
        return base * (factor + (epoch >= total_iters) * (1 - factor))

    return _Rule(get_lr, closed)


def _step_rule(step_size, gamma) -> _Rule:
    def get_lr(epoch, lr, base, initial):
        if epoch == 0 or epoch % step_size != 0:
            return lr
        return lr * gamma

    def closed(epoch, base):
        return base * gamma ** (epoch // step_size)

    return _Rule(get_lr, closed)


def _multistep_rule(milestones, gamma) -> _Rule:
    counts = Counter(milestones)

    def get_lr(epoch, lr, base, initial):
        if epoch not in counts:
            return lr
        return lr * gamma ** counts[epoch]

    def closed(epoch, base):
        return base * gamma ** bisect_right(milestones, epoch)

    return _Rule(get_lr, closed)


def _exponential_rule(gamma) -> _Rule:
    def get_lr(epoch, lr, base, initial):
        if initial:
            return lr
        return lr * gamma

    def closed(epoch, base):
        return base * gamma**epoch

    return _Rule(get_lr, closed)


def _cosine_rule(T_max, eta_min) -> _Rule:
    def get_lr(epoch, lr, base, initial):
        # torch's branch for `_step_count == 1 and last_epoch > 0` serves schedulers built with
        # last_epoch >= 0 (resumed from a checkpoint); it is never taken when stepping from the start
        if initial:
            return lr
        if (epoch - 1 - T_max) % (2 * T_max) == 0:
            return lr + (base - eta_min) * (1 - math.cos(math.pi / T_max)) / 2
        return (1 + math.cos(math.pi * epoch / T_max)) / (1 + math.cos(math.pi * (epoch - 1) / T_max)) * (
            lr - eta_min
        ) + eta_min

    def closed(epoch, base):
        return eta_min + (base - eta_min) * (1 + math.cos(math.pi * epoch / T_max)) / 2

    return _Rule(get_lr, closed)


def _linear_rule(start_factor, end_factor, total_iters) -> _Rule:
    def get_lr(epoch, lr, base, initial):
        if epoch == 0:
            return lr * start_factor
        if initial or epoch > total_iters:
            return lr
        return lr * (
            1.0 + (end_factor - start_factor) / (total_iters * start_factor + (epoch - 1) * (end_factor - start_factor))
        )

    def closed(epoch, base):
        return base * (start_factor + (end_factor - start_factor) * min(total_iters, epoch) / total_iters)

    return _Rule(get_lr, closed)


def _base(base_lr, options: dict) -> np.ndarray:
    base = np.array(base_lr, dtype=np.float64)
    for key, value in options.items():
        if isinstance(value, np.ndarray) and (base.ndim != 2 or value.shape[0] != base.shape[0]):
            raise GdrunError(f"schedule option {key} has {value.shape[0]} values "
                             f"for learning rates of shape {base.shape}")  # fmt: skip
    return base


def _schedule(name: str, rule: _Rule, options: dict) -> Schedule:
    def init(base_lr) -> ScheduleState:
        base = _base(base_lr, options)
        return ScheduleState(0, rule.get_lr(0, base, base, True), base)

    def step(state: ScheduleState) -> tuple[np.ndarray, ScheduleState]:
        epoch = state.epoch + 1
        lr = rule.get_lr(epoch, state.lr, state.base_lr, False)
        return lr, ScheduleState(epoch, lr, state.base_lr)

    return Schedule(name, init, step)


# ---------------------------------------------------------------------------------------- schedules
#
# Each builder validates its options and returns (rule, the options that may be per-run arrays).


def _constant(factor=1.0, total_iters=5):
    """ConstantLR: ``factor * lr`` for the first ``total_iters`` epochs, then ``lr``; with the
    default factor 1.0, a constant learning rate."""
    factor = _float("constant", "factor", factor, _unit, "must be in (0, 1]")
    total_iters = _int("constant", "total_iters", total_iters, 0)
    return _constant_rule(factor, total_iters), {"factor": factor}


def _step(step_size, gamma=0.1):
    """StepLR: the lr times ``gamma`` every ``step_size`` epochs."""
    step_size = _int("step", "step_size", step_size, 1)
    gamma = _float("step", "gamma", gamma, _positive, "must be > 0")
    return _step_rule(step_size, gamma), {"gamma": gamma}


def _multistep(milestones, gamma=0.1):
    """MultiStepLR: the lr times ``gamma`` at each of the (increasing) ``milestones`` epochs."""
    milestones = _milestones("multistep", milestones)
    if not milestones:
        raise _fail("multistep", "milestones", [], "must list at least one epoch")
    gamma = _float("multistep", "gamma", gamma, _positive, "must be > 0")
    return _multistep_rule(milestones, gamma), {"gamma": gamma}


def _exponential(gamma):
    """ExponentialLR: the lr times ``gamma`` every epoch."""
    gamma = _float("exponential", "gamma", gamma, _positive, "must be > 0")
    return _exponential_rule(gamma), {"gamma": gamma}


def _cosine(T_max, eta_min=0.0):
    """CosineAnnealingLR: from the lr down to ``eta_min`` over ``T_max`` epochs along a half
    cosine (and back up over the next ``T_max``, as torch's does)."""
    T_max = _int("cosine", "T_max", T_max, 1)
    eta_min = _float("cosine", "eta_min", eta_min, _nonnegative, "must be >= 0")
    return _cosine_rule(T_max, eta_min), {"eta_min": eta_min}


def _linear(start_factor=1.0 / 3, end_factor=1.0, total_iters=5):
    """LinearLR: the lr times a factor going linearly from ``start_factor`` to ``end_factor``
    over ``total_iters`` epochs (a warm-up with the defaults), then constant."""
    start_factor = _float("linear", "start_factor", start_factor, _unit, "must be in (0, 1]")
    end_factor = _float("linear", "end_factor", end_factor, _closed_unit, "must be in [0, 1]")
    total_iters = _int("linear", "total_iters", total_iters, 1)
    return _linear_rule(start_factor, end_factor, total_iters), {"start_factor": start_factor, "end_factor": end_factor}


_BUILDERS = {"constant": _constant, "step": _step, "multistep": _multistep, "exponential": _exponential,
             "cosine": _cosine, "linear": _linear}  # fmt: skip


def _factory(name: str) -> Callable[..., Schedule]:
    build = _BUILDERS[name]

    def factory(**options) -> Schedule:
        return _schedule(name, *build(**options))

    factory.__name__ = factory.__qualname__ = name
    factory.__doc__ = build.__doc__
    return factory


def sequential(schedules, milestones) -> Schedule:
    """SequentialLR: ``schedules[i]`` (specs, as for :func:`get_schedule`) from epoch
    ``milestones[i - 1]`` (0 for the first); each restarts from its own epoch 0 at its milestone,
    with torch's closed form (from the base lr), then goes on from the current lr."""
    if isinstance(schedules, (str, bytes, dict)) or not isinstance(schedules, (list, tuple)) or not schedules:
        raise _fail("sequential", "schedules", schedules, "must be a non-empty list of schedules")
    milestones = _milestones("sequential", milestones)
    if len(milestones) != len(schedules) - 1:
        raise GdrunError(f"schedule 'sequential' needs one milestone fewer than schedules: "
                         f"got {len(schedules)} schedules and {len(milestones)} milestones")  # fmt: skip
    rules, options = [], {}
    for i, spec in enumerate(schedules):
        try:
            name, given = _spec(spec)
            if name == "sequential":
                raise GdrunError("a sequential schedule cannot contain another")
            _check_options(name, given)
            rule, per_run = _BUILDERS[name](**{k: v for k, v in given.items() if v is not None})
        except GdrunError as error:
            raise GdrunError(f"schedule 'sequential', schedules[{i}]: {error}") from None
        rules.append(rule)
        options.update({f"schedules[{i}].{k}": v for k, v in per_run.items()})

    def init(base_lr) -> ScheduleState:
        base = _base(base_lr, options)
        return ScheduleState(0, rules[0].get_lr(0, base, base, True), base)

    def step(state: ScheduleState) -> tuple[np.ndarray, ScheduleState]:
        epoch = state.epoch + 1
        idx = bisect_right(milestones, epoch)
        if idx > 0 and milestones[idx - 1] == epoch:  # the hand-over: torch's _update_lr(0), closed form
            lr = rules[idx].closed(0, state.base_lr)
        else:
            start = milestones[idx - 1] if idx > 0 else 0
            lr = rules[idx].get_lr(epoch - start, state.lr, state.base_lr, False)
        return lr, ScheduleState(epoch, lr, state.base_lr)

    return Schedule("sequential", init, step)


constant = _factory("constant")
step = _factory("step")
multistep = _factory("multistep")
exponential = _factory("exponential")
cosine = _factory("cosine")
linear = _factory("linear")

SCHEDULES: dict[str, Callable[..., Schedule]] = {
    "constant": constant, "step": step, "multistep": multistep, "exponential": exponential, "cosine": cosine,
    "linear": linear, "sequential": sequential,
}  # fmt: skip


def _spec(spec) -> tuple[str, dict]:
    """(name, options) of a spec: ``{"name": ..., **options}`` or a bare name."""
    if isinstance(spec, str):
        return spec, {}
    if not isinstance(spec, dict):
        raise GdrunError(f"a schedule is a name or a table with a name and its options, not {show(spec)}")
    if "name" not in spec:
        raise GdrunError(f"schedule {show(spec)} has no name; choices: {', '.join(sorted(SCHEDULES))}")
    options = dict(spec)
    name = options.pop("name")
    if not isinstance(name, str):
        raise GdrunError(f"a schedule's name must be text, one of {', '.join(sorted(SCHEDULES))}; got {show(name)}")
    for key in options:
        if not isinstance(key, str):
            raise GdrunError(f"schedule '{name}': option names are text, got {show(key)}")
    return name, options


def read_spec(spec) -> Any:
    """A schedule spec as a user wrote it, with its numbers read (``eta_min: "1e-4"`` -> 1e-4,
    the schedules of a sequential one too); names and ranges are checked by :func:`get_schedule`."""
    def read(key: str, value):
        if isinstance(value, str) and ASCII_NUMBER.fullmatch(value.strip()):
            return number(key, value)
        if isinstance(value, (list, tuple)):
            if key.rpartition(".")[2] != "milestones":  # per-run lists are for sweeps, not for users
                number(key, value)  # raises: "... must be a number, got a list"
            return [read(f"{key}[{i}]", v) for i, v in enumerate(value)]
        return value

    if isinstance(spec, str):
        return spec
    name, options = _spec(spec)
    if name == "sequential" and isinstance(options.get("schedules"), list):
        options["schedules"] = [read_spec(s) for s in options["schedules"]]
    return {"name": name, **{k: v if k == "schedules" else read(f"schedule.{k}", v) for k, v in options.items()}}


def _check_options(name: str, given: dict) -> None:
    known("schedule", name, SCHEDULES)
    options = SCHEDULE_OPTIONS[name]
    check_option_names(f"schedule '{name}'", given, options)
    for key, default in options.items():
        if default is REQUIRED and given.get(key) is None:
            raise GdrunError(f"schedule '{name}' needs {key}")


def get_schedule(spec) -> Schedule:
    """The schedule of ``spec``, e.g. ``{"name": "step", "step_size": 10, "gamma": 0.5}``, or
    ``{"name": "sequential", "schedules": [{"name": "linear", "total_iters": 5},
    {"name": "cosine", "T_max": 95}], "milestones": [5]}``; a bare name takes the defaults.
    Everything is validated here, with one-line GdrunErrors."""
    name, given = _spec(spec)
    _check_options(name, given)
    return SCHEDULES[name](**{k: v for k, v in given.items() if v is not None})
