"""Optimizers as pairs of pure functions, generic over numpy arrays and torch tensors.

``init(params) -> state`` and ``update(grads, state, params, lr) -> (new_params, new_state)``,
with ``params``/``grads`` of shape ``(B, m)`` and ``lr`` of shape ``(B, 1)`` on the same backend
(or a Python float): one optimizer step for a whole batch of runs. Nothing passed in is modified.
The state is a NamedTuple: the step count, the optimizer's buffers (B, m), and the options (per-run
arrays moved to the params' backend by ``init``).

Each optimizer is one implementation of torch.optim's single-tensor reference loop
(``_single_tensor_*`` in torch/optim/*.py, torch 2.13): the same operations in the same order,
written with torch's tensor methods (``ops.add(x, y, alpha)`` for ``x.add_(y, alpha=alpha)``,
``ops.addcmul``, ``ops.addcdiv``, ``ops.lerp``), so a float64 trajectory matches torch.optim's to
rounding (the tests hold it to 1e-10):

* on torch tensors those are torch's own kernels (on a CPU with FMA, torch fuses ``add(alpha=)``,
  ``addcmul`` and ``lerp`` into fused multiply-adds), so a torch run is usually bit-identical;
* on numpy they are ``x + a * y``, ``x + v * t1 * t2``, ``x + v * t1 / t2`` (left to right), and
  ``lerp`` is ``x + w * (end - x)`` for ``|w| < 0.5``, else ``end - (end - x) * (1 - w)``;
  numpy has no fused multiply-add, hence an ulp of difference now and then;
* what torch computes with Python floats (bias corrections, step sizes) is computed with Python
  floats here; for per-run arrays, the powers (``beta1 ** step``...) are Python's too, once per
  distinct value (:func:`_per_value`), the rest is float64 array arithmetic (the same IEEE
  operations), and a result meets the run's arrays only after a cast to their dtype, as a Python
  float does: so a batched run equals the same runs one by one, bit for bit, in float32 as in float64;
* torch quirks kept: ``float / tensor`` is ``tensor.reciprocal() * float`` (RAdam, clipping);
  NAdam's ``mu_product`` lives in a float32 tensor (the default dtype) even for float64 params.

Options are Python floats, or arrays of shape ``(B, 1)`` holding one value per run of the batch
(a sweep over an option); flags (``nesterov``, ``amsgrad``, ...) are plain booleans. The defaults
are torch.optim's (see :data:`OPTIMIZER_OPTIONS`); the learning rate is always passed by the
engine (torch's default learning rates are in :data:`TORCH_DEFAULT_LR`, for reference only).

Torch is never imported here: a numpy run stays free of it. A torch tensor is recognised by the
module of its type, and the torch functions are fetched the first time one is seen.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import numpy as np

from .errors import GdrunError, check_option_names, closest, known
from .inputs import number, show


class Optimizer(NamedTuple):
    name: str
    init: Callable[[Any], Any]
    update: Callable[[Any, Any, Any, Any], tuple[Any, Any]]


# ----------------------------------------------------------------------------------- array helpers


def _is_torch(x) -> bool:
    return type(x).__module__.startswith("torch")


class _NumpyOps:
    """The operations the optimizers are written in, on numpy arrays; :class:`_TorchOps` is the
    same on torch tensors. ``add``, ``addcmul``, ``addcdiv`` and ``lerp`` are torch's tensor
    methods of those names; their ``alpha``/``value``/``weight`` is a float or a per-run array."""

    sqrt = staticmethod(np.sqrt)
    maximum = staticmethod(np.maximum)
    where = staticmethod(np.where)
    zeros_like = staticmethod(np.zeros_like)

    @staticmethod
    def copy(x):
        return x.copy()

    @staticmethod
    def cast(v, like):
        """``v`` in ``like``'s dtype (Python floats pass through, as torch's scalars do)."""
        return v.astype(like.dtype) if isinstance(v, np.ndarray) and v.dtype != like.dtype else v

    def add(self, x, other, alpha):
        return x + self.cast(alpha, x) * other

    def addcmul(self, x, t1, t2, value):
        return x + self.cast(value, x) * t1 * t2

    def addcdiv(self, x, t1, t2, value):
        return x + self.cast(value, x) * t1 / t2

    def lerp(self, start, end, weight):
        if isinstance(weight, float):
            return start + weight * (end - start) if abs(weight) < 0.5 else end - (end - start) * (1 - weight)
        weight = self.cast(weight, start)
        return np.where(np.abs(weight) < 0.5, start + weight * (end - start), end - (end - start) * (1 - weight))

    @staticmethod
    def bind(value: np.ndarray, like):
        """A per-run option (host float64 array) on ``like``'s backend, still float64."""
        return np.asarray(value, dtype=np.float64)

    @staticmethod
    def round_f32(v):
        """``v`` rounded to float32 and back to float64."""
        return v.astype(np.float32).astype(np.float64)

    @staticmethod
    def mask(value: np.ndarray, like):
        return np.asarray(value)


class _TorchOps:
    """torch's own kernels, so that a torch run computes what torch.optim does (on a CPU with
    FMA, torch fuses ``add(alpha=)``, ``addcmul`` and ``lerp`` into fused multiply-adds). A per-run
    ``alpha``/``value`` (a tensor, which those methods do not take) is folded into the first
    factor, which torch's kernels multiply first anyway."""

    def __init__(self):
        import torch

        self.torch = torch
        self.Tensor = torch.Tensor
        self.sqrt = torch.sqrt
        self.maximum = torch.maximum
        self.where = torch.where
        self.zeros_like = torch.zeros_like

    @staticmethod
    def copy(x):
        return x.clone()

    def cast(self, v, like):
        return v.to(like.dtype) if isinstance(v, self.Tensor) and v.dtype != like.dtype else v

    def add(self, x, other, alpha):
        if isinstance(alpha, self.Tensor):
            return self.torch.addcmul(x, self.cast(alpha, x), other)
        return self.torch.add(x, other, alpha=alpha)

    def addcmul(self, x, t1, t2, value):
        if isinstance(value, self.Tensor):
            return self.torch.addcmul(x, self.cast(value, x) * t1, t2)
        return self.torch.addcmul(x, t1, t2, value=value)

    def addcdiv(self, x, t1, t2, value):
        if isinstance(value, self.Tensor):
            return self.torch.addcdiv(x, self.cast(value, x) * t1, t2)
        return self.torch.addcdiv(x, t1, t2, value=value)

    def lerp(self, start, end, weight):
        return self.torch.lerp(start, end, self.cast(weight, start))

    def bind(self, value: np.ndarray, like):
        return self.torch.as_tensor(np.asarray(value, dtype=np.float64), device=like.device)

    def round_f32(self, v):
        return v.to(self.torch.float32).to(self.torch.float64)

    def mask(self, value: np.ndarray, like):
        return self.torch.as_tensor(np.asarray(value), device=like.device)


_NUMPY_OPS = _NumpyOps()
_TORCH_OPS: _TorchOps | None = None


def _ops(x):
    global _TORCH_OPS
    if _is_torch(x):
        if _TORCH_OPS is None:
            _TORCH_OPS = _TorchOps()
        return _TORCH_OPS
    return _NUMPY_OPS


def _round_f32(v, ops):
    """Round to float32 as a float32 torch tensor holding ``v`` would (a Python float stays one)."""
    if isinstance(v, float):
        return float(np.float32(v))
    return ops.round_f32(v)


def _bind(options: dict, params) -> dict:
    """The options for a run on ``params``' backend: floats stay, per-run arrays move there (still
    float64). Each per-run array's distinct values are also kept, under ``("distinct", key)``, for
    :func:`_per_value`."""
    ops = _ops(params)
    bound: dict = {}
    for key, value in options.items():
        if isinstance(value, np.ndarray):
            if value.shape[0] != params.shape[0]:
                raise GdrunError(f"option {key} has {value.shape[0]} values for a batch of {params.shape[0]} runs")
            bound[key] = ops.bind(value, params)
            distinct, inverse = np.unique(np.asarray(value, dtype=np.float64), return_inverse=True)
            bound[("distinct", key)] = (distinct.tolist(), inverse.reshape(value.shape), params)
        else:
            bound[key] = value
    return bound


def _per_value(options: dict, key: str, fn: Callable[[float], float]):
    """``fn`` of option ``key`` computed with Python floats, as torch computes its hyperparameter
    arithmetic (``beta1 ** step``): for a per-run option, once per distinct value, then spread over
    the runs as a float64 array on the run's backend. numpy's and torch's vectorised ``pow`` differ
    from Python's (libm's) in the last bit now and then; this keeps a batched run equal to a single one."""
    if ("distinct", key) not in options:
        return fn(options[key])
    distinct, inverse, like = options[("distinct", key)]
    return _ops(like).bind(np.array([fn(v) for v in distinct], dtype=np.float64)[inverse], like)


# ------------------------------------------------------------------------------- numpy fast paths
#
# The same arithmetic as the generic code on _NumpyOps, operation for operation, in fewer arrays:
# a large batch (a sweep) spends its time allocating and filling temporaries, so each chain of
# operations writes into one array it has just made (ufuncs with ``out=``). The params, grads and
# state arrays passed in are never written to; every array returned is new. With small arrays
# (one run) ``out=`` costs more than it saves, and those take the plain expressions.

#: Elements from which a chain of operations reuses its first result (below: plain expressions).
INPLACE_FROM = 4096


def _fast(params, grads) -> bool:
    """Whether ``update(grads, ..., params)`` may take a numpy fast path: numpy arrays of one shape
    and dtype, big enough for ``out=`` to pay."""
    return (type(params) is np.ndarray and type(grads) is np.ndarray and params.size >= INPLACE_FROM
            and grads.shape == params.shape and grads.dtype == params.dtype)  # fmt: skip


def _cast(v, like):
    """``_NumpyOps.cast``: a per-run array in ``like``'s dtype; a Python float as it is."""
    return v.astype(like.dtype) if type(v) is np.ndarray and v.dtype != like.dtype else v


def _fits(v, like) -> bool:
    """Whether ``like <op> v`` has ``like``'s shape and dtype, so that it may be written into
    ``like`` (a temporary of the caller): ``v`` a Python number, or an array of the same dtype of
    shape ``like.shape``, (B, 1) or ()."""
    if type(v) in (float, int):
        return True
    if not isinstance(v, (np.ndarray, np.generic)):
        return False
    return (v.dtype == like.dtype and (v.shape == like.shape or v.ndim == 0
            or (v.ndim == 2 and v.shape[1] == 1 and v.shape[0] == like.shape[0])))  # fmt: skip


#: Up to this many columns, a per-run operand (B, 1) meets a (B, n) array one column at a time:
#: numpy's broadcasting loop runs n elements per inner call (B calls), 3x slower for n = 2.
_COLUMNS = 8


def _op(fn, a, b, out=None):
    """``fn(a, b)`` (a ufunc, into ``out`` when given), column by column when one operand is a
    per-run array (B, 1) and the other (B, n) has a few columns: the same operation on each
    element, so the same values."""
    if type(a) is np.ndarray and type(b) is np.ndarray and a.ndim == 2 and b.ndim == 2 and a.dtype == b.dtype:
        if a.shape[1] == 1 and 1 < b.shape[1] <= _COLUMNS and a.shape[0] == b.shape[0]:
            out = np.empty_like(b) if out is None else out
            a0 = a[:, 0]
            for j in range(b.shape[1]):
                fn(a0, b[:, j], out=out[:, j])
            return out
        if b.shape[1] == 1 and 1 < a.shape[1] <= _COLUMNS and a.shape[0] == b.shape[0]:
            out = np.empty_like(a) if out is None else out
            b0 = b[:, 0]
            for j in range(a.shape[1]):
                fn(a[:, j], b0, out=out[:, j])
            return out
    return fn(a, b) if out is None else fn(a, b, out=out)


def _descend(params, d, lr):
    """``ops.add(params, d, -lr)`` on numpy, ``params + (-lr) * d``, computed as ``params - lr * d``:
    the same value bit for bit (IEEE negation is exact: ``(-a) * b == -(a * b)`` and
    ``x + (-y) == x - y``, signed zeros included), without negating the lr array every step."""
    lr = _cast(lr, params)
    if d.size < INPLACE_FROM:
        return params - lr * d
    step = _op(np.multiply, lr, d)
    if step.shape == params.shape and step.dtype == params.dtype:
        return np.subtract(params, step, out=step)
    return params - step


def _momentum(buf, momentum, grad, scale):
    """``ops.add(buf * cast(momentum), grad, scale)``: ``buf * momentum + scale * grad``, in a new array."""
    momentum, scale = _cast(momentum, buf), _cast(scale, buf)
    if not (_fits(momentum, buf) and _fits(scale, buf)):
        return _NUMPY_OPS.add(buf * momentum, grad, scale)
    out = _op(np.multiply, buf, momentum)
    t = _op(np.multiply, scale, grad)
    return np.add(out, t, out=out)


def _lerp_np(start, end, weight):
    """``_NumpyOps.lerp(start, end, weight)`` in new arrays of its own (``start``/``end`` (B, m))."""
    d = np.subtract(end, start)
    if type(weight) is float:
        if abs(weight) < 0.5:
            np.multiply(weight, d, out=d)
            return np.add(start, d, out=d)
        np.multiply(d, 1 - weight, out=d)
        return np.subtract(end, d, out=d)
    weight = _cast(weight, start)
    if not _fits(weight, d):
        return _NUMPY_OPS.lerp(start, end, weight)
    near = _op(np.multiply, weight, d)
    np.add(start, near, out=near)
    _op(np.multiply, d, 1 - weight, out=d)
    np.subtract(end, d, out=d)
    np.copyto(d, near, where=np.abs(weight) < 0.5)
    return d


def _scaled_square_sum(avg, beta, grad, value):
    """``ops.addcmul(avg * cast(beta), grad, grad, value)``: ``avg * beta + value * grad * grad``."""
    beta, value = _cast(beta, avg), _cast(value, avg)
    if not (_fits(beta, avg) and _fits(value, avg)):
        return _NUMPY_OPS.addcmul(avg * beta, grad, grad, value)
    out = _op(np.multiply, avg, beta)
    t = _op(np.multiply, value, grad)
    np.multiply(t, grad, out=t)
    return np.add(out, t, out=out)


def _addcdiv_new(params, t1, t2, value):
    """``ops.addcdiv(params, t1, t2, value)``: ``params + value * t1 / t2``, in one new array."""
    value = _cast(value, params)
    if not _fits(value, params):
        return _NUMPY_OPS.addcdiv(params, t1, t2, value)
    t = _op(np.multiply, value, t1)
    np.divide(t, t2, out=t)
    return np.add(params, t, out=t)


def _root_plus(avg, divisor, eps):
    """``ops.sqrt(avg) / cast(divisor) + cast(eps)`` (divisor None: no division), in a new array."""
    out = np.sqrt(avg)
    if divisor is not None:
        divisor = _cast(divisor, avg)
        if not _fits(divisor, out):
            return out / divisor + _cast(eps, avg)
        _op(np.divide, out, divisor, out=out)
    eps = _cast(eps, avg)
    if not _fits(eps, out):
        return out + eps
    return _op(np.add, out, eps, out=out)


# ------------------------------------------------------------------------------------------- options

#: The options of each optimizer and their defaults (torch.optim's).
OPTIMIZER_OPTIONS: dict[str, dict[str, Any]] = {
    "sgd": {"momentum": 0.0, "dampening": 0.0, "weight_decay": 0.0, "nesterov": False},
    "adam": {"betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0, "amsgrad": False,
             "decoupled_weight_decay": False},
    "adamw": {"betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 1e-2, "amsgrad": False},
    "rmsprop": {"alpha": 0.99, "eps": 1e-8, "weight_decay": 0.0, "momentum": 0.0, "centered": False},
    "adagrad": {"lr_decay": 0.0, "weight_decay": 0.0, "initial_accumulator_value": 0.0, "eps": 1e-10},
    "nadam": {"betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0, "momentum_decay": 4e-3,
              "decoupled_weight_decay": False},
    "radam": {"betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0, "decoupled_weight_decay": False},
    "adadelta": {"rho": 0.9, "eps": 1e-6, "weight_decay": 0.0},
}  # fmt: skip

def variant_label(optimizer: str, options: dict | None) -> str:
    """``"sgd:momentum=0.9"``: the optimizer with the options that differ from its defaults, as a
    comparison writes a variant (and pictures and explanations name it)."""
    defaults = OPTIMIZER_OPTIONS.get(optimizer, {})
    shown = "".join(f":{k}={v}" for k, v in (options or {}).items() if v is not None and _differs(v, defaults.get(k)))
    return f"{optimizer}{shown}"


def _differs(value: Any, default: Any) -> bool:
    if isinstance(value, (list, tuple)) and isinstance(default, (list, tuple)):
        return list(value) != list(default)
    return value != default


#: torch.optim's default learning rates, for reference (gdrun's lr comes from the config).
TORCH_DEFAULT_LR = {"sgd": 1e-3, "adam": 1e-3, "adamw": 1e-3, "rmsprop": 1e-2, "adagrad": 1e-2, "nadam": 2e-3,
                    "radam": 1e-3, "adadelta": 1.0}  # fmt: skip

# (test, what it requires): torch's checks, plus finiteness
_GE0 = (lambda v: v >= 0, "must be >= 0")
_BETA = (lambda v: (v >= 0) & (v < 1), "must be in [0, 1)")
_UNIT = (lambda v: (v >= 0) & (v <= 1), "must be in [0, 1]")
_FINITE = (lambda v: v == v, "must be a number")

_CHECKS = {
    "momentum": _GE0, "dampening": _FINITE, "weight_decay": _GE0, "eps": _GE0, "alpha": _GE0, "lr_decay": _GE0,
    "initial_accumulator_value": _GE0, "momentum_decay": _GE0, "rho": _UNIT, "betas": _BETA,
}  # fmt: skip


def _fail(owner: str, option: str, value, requirement: str) -> GdrunError:
    return GdrunError(f"invalid {option} {show(value)} for {owner}: {requirement}")


def check_number(owner: str, option: str, value, check) -> float | np.ndarray:
    """A validated numeric option of ``owner`` ("optimizer 'sgd'", "schedule 'step'"): a Python
    float, or a float64 array (B, 1) of per-run values; ``check`` is (test, requirement)."""
    test, requirement = check
    if not isinstance(value, (np.ndarray, list, tuple)):  # one value; arrays and lists hold per-run values
        try:
            value = number(option, value.item() if isinstance(value, np.generic) else value)
        except GdrunError:
            raise _fail(owner, option, value, "must be a number") from None
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise _fail(owner, option, value, "must be a number") from None
    if array.ndim == 1:
        array = array.reshape(-1, 1)
    if array.ndim not in (0, 2) or (array.ndim == 2 and (array.shape[1] != 1 or array.shape[0] == 0)):
        raise GdrunError(f"invalid {option} for {owner}: must be a number or one number per run (shape (B, 1)), "
                         f"not an array of shape {array.shape}")  # fmt: skip
    ok = np.isfinite(array) & test(array)
    if not np.all(ok):
        bad = float(array[~ok].flat[0])
        raise _fail(owner, option, int(bad) if bad.is_integer() else bad, requirement)
    return float(array) if array.ndim == 0 else array


def _flag(owner: str, option: str, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise _fail(owner, option, value, "must be true or false")
    return bool(value)


def read_options(optimizer: str, given: dict) -> dict:
    """The options a user wrote for ``optimizer`` (a config, ``--opt``, a sweep), read: a number
    (numeric text such as "1e-8" too) where one number is due, a pair where a pair is (betas), a
    flag as true/false; a list where one number is due is an error now, not mid-run. Names and
    ranges are checked by :func:`get_optimizer`; an unknown optimizer is left to it."""
    defaults, owner = OPTIMIZER_OPTIONS.get(optimizer), f"optimizer '{optimizer}'"
    if defaults is None:
        return dict(given)
    check_option_names(owner, given, defaults)
    values: dict = {}
    for key, value in given.items():
        default = defaults[key]
        if value is None:
            values[key] = None
        elif isinstance(default, bool):
            values[key] = _flag(owner, key, value)
        elif isinstance(default, tuple):
            if not isinstance(value, (list, tuple)) or len(value) != len(default):
                raise _fail(owner, key, value, "must be a pair (beta1, beta2)")
            values[key] = tuple(number(f"optimizer_options.{key}[{i}]", v) for i, v in enumerate(value))
        else:
            values[key] = number(f"optimizer_options.{key}", value)
    return values


def _options(optimizer: str, given: dict) -> dict:
    """``given`` checked against ``optimizer``'s options, with the defaults filled in."""
    defaults, owner = OPTIMIZER_OPTIONS[optimizer], f"optimizer '{optimizer}'"
    for key in given:
        if key not in defaults:
            names = sorted(defaults)
            raise GdrunError(f"unknown option '{key}' for optimizer '{optimizer}'{closest(key, names)}; "
                             f"options: {', '.join(names)}")  # fmt: skip
    values = {}
    for key, default in defaults.items():
        value = given.get(key)
        if value is None:
            value = default
        if isinstance(default, bool):
            values[key] = _flag(owner, key, value)
        elif key == "betas":
            if isinstance(value, (str, bytes, dict)) or not hasattr(value, "__len__") or len(value) != 2:
                raise _fail(owner, key, value, "must be a pair (beta1, beta2)")
            values["beta1"] = check_number(owner, "betas[0]", value[0], _BETA)
            values["beta2"] = check_number(owner, "betas[1]", value[1], _BETA)
        else:
            values[key] = check_number(owner, key, value, _CHECKS[key])
    sizes = {v.shape[0] for v in values.values() if isinstance(v, np.ndarray)}
    if len(sizes) > 1:
        raise GdrunError(f"optimizer '{optimizer}': per-run options of different lengths {sorted(sizes)}")
    return values


def _nonzero(v) -> bool:
    """Whether an option (float or per-run array) is nonzero for some run: torch's ``if v != 0``."""
    return bool(np.any(v != 0))


# ------------------------------------------------------------------------------------------ optimizers
#
# Each update is torch's _single_tensor_* loop body with the in-place tensor methods spelled as
# ops.<method> (``x.add_(y, alpha=a)`` -> ``ops.add(x, y, a)``, ``x.mul_(b)`` -> ``x * b``, ...).


class SGDState(NamedTuple):
    step: int
    momentum_buffer: Any  # (B, m), or None before the first step and without momentum
    options: dict


def sgd(momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False) -> Optimizer:
    """torch.optim.SGD: ``x <- x - lr * d`` where ``d`` is the gradient (plus ``weight_decay * x``),
    or its momentum buffer ``b <- momentum * b + (1 - dampening) * d`` (``b = d`` at the first
    step), or for nesterov ``d + momentum * b``."""
    o = _options("sgd", dict(momentum=momentum, dampening=dampening, weight_decay=weight_decay, nesterov=nesterov))
    nesterov = o.pop("nesterov")
    if nesterov:
        for option, bad in (("momentum", o["momentum"] <= 0), ("dampening", o["dampening"] != 0)):
            if np.any(bad):
                value = float(np.asarray(o[option])[bad].flat[0]) if isinstance(bad, np.ndarray) else o[option]
                raise GdrunError(f"optimizer 'sgd': nesterov needs momentum > 0 and dampening 0, "
                                 f"got {option} {value!r}")  # fmt: skip
    has_decay, has_momentum = _nonzero(o["weight_decay"]), _nonzero(o["momentum"])
    partial = has_momentum and not bool(np.all(o["momentum"] != 0))  # some runs without momentum
    if partial:
        o["use_momentum"] = np.asarray(o["momentum"] != 0)
    plain = not (has_decay or has_momentum)  # plain gradient descent

    def init(params):
        options = _bind(o, params)
        if partial:
            options["use_momentum"] = _ops(params).mask(o["use_momentum"], params)
        return SGDState(0, None, options)

    def update(grads, state, params, lr):
        if plain and type(params) is np.ndarray:
            return _descend(params, grads, lr), state
        ops, opt = _ops(params), state.options
        if plain:
            return ops.add(params, grads, -lr), state
        momentum = opt["momentum"]
        grad = grads
        if has_decay:
            grad = ops.add(grad, params, opt["weight_decay"])
        buf = state.momentum_buffer
        fast = _fast(params, grad)
        if has_momentum:
            if buf is None:
                buf = ops.copy(grad)
            elif fast:
                buf = _momentum(buf, momentum, grad, 1 - opt["dampening"])
            else:
                buf = ops.add(buf * ops.cast(momentum, buf), grad, 1 - opt["dampening"])
            moved = ops.add(grad, buf, momentum) if nesterov else buf
            grad = ops.where(opt["use_momentum"], moved, grad) if partial else moved
        if fast:
            return _descend(params, grad, lr), SGDState(state.step + 1, buf, opt)
        return ops.add(params, grad, -lr), SGDState(state.step + 1, buf, opt)

    return Optimizer("sgd", init, update)


class AdamState(NamedTuple):
    step: int
    exp_avg: Any
    exp_avg_sq: Any
    max_exp_avg_sq: Any  # None without amsgrad
    options: dict


def _adam(name: str, given: dict, decoupled: bool | None = None) -> Optimizer:
    o = _options(name, given)
    amsgrad = o.pop("amsgrad")
    decoupled = o.pop("decoupled_weight_decay") if decoupled is None else decoupled
    has_decay = _nonzero(o["weight_decay"])

    def init(params):
        zeros = _ops(params).zeros_like(params)
        return AdamState(0, zeros, zeros, zeros if amsgrad else None, _bind(o, params))

    def update(grads, state, params, lr):
        ops, opt = _ops(params), state.options
        c = lambda v: ops.cast(v, params)  # noqa: E731
        beta1, beta2, eps = opt["beta1"], opt["beta2"], opt["eps"]
        step = state.step + 1
        grad = grads
        if has_decay:
            if decoupled:
                params = params * c(1 - lr * c(opt["weight_decay"]))
            else:
                grad = ops.add(grad, params, opt["weight_decay"])
        fast = _fast(params, grad)
        if fast:
            exp_avg = _lerp_np(state.exp_avg, grad, 1 - beta1)
            exp_avg_sq = _scaled_square_sum(state.exp_avg_sq, beta2, grad, 1 - beta2)
        else:
            exp_avg = ops.lerp(state.exp_avg, grad, 1 - beta1)
            exp_avg_sq = ops.addcmul(state.exp_avg_sq * c(beta2), grad, grad, 1 - beta2)
        bias_correction1 = 1 - _per_value(opt, "beta1", lambda b: b ** float(step))
        step_size = lr / c(bias_correction1)
        bias_correction2_sqrt = _per_value(opt, "beta2", lambda b: (1 - b ** float(step)) ** 0.5)
        max_exp_avg_sq = state.max_exp_avg_sq
        if amsgrad:
            max_exp_avg_sq = ops.maximum(max_exp_avg_sq, exp_avg_sq)
        second = max_exp_avg_sq if amsgrad else exp_avg_sq
        if fast:
            denom = _root_plus(second, bias_correction2_sqrt, eps)
            params = _addcdiv_new(params, exp_avg, denom, -step_size)
        else:
            denom = ops.sqrt(second) / c(bias_correction2_sqrt) + c(eps)
            params = ops.addcdiv(params, exp_avg, denom, -step_size)
        return params, AdamState(step, exp_avg, exp_avg_sq, max_exp_avg_sq, opt)

    return Optimizer(name, init, update)


def adam(betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False, decoupled_weight_decay=False) -> Optimizer:
    """torch.optim.Adam (``decoupled_weight_decay=True`` makes it AdamW)."""
    return _adam("adam", dict(betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                              decoupled_weight_decay=decoupled_weight_decay))  # fmt: skip


def adamw(betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False) -> Optimizer:
    """torch.optim.AdamW: Adam with decoupled weight decay ``x <- x * (1 - lr * weight_decay)``,
    whose default weight_decay is 1e-2."""
    return _adam("adamw", dict(betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad), decoupled=True)


class RMSpropState(NamedTuple):
    step: int
    square_avg: Any
    grad_avg: Any  # None unless centered
    momentum_buffer: Any  # None without momentum
    options: dict


def rmsprop(alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False) -> Optimizer:
    """torch.optim.RMSprop."""
    o = _options("rmsprop", dict(alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum, centered=centered))
    centered = o.pop("centered")
    has_decay, has_momentum = _nonzero(o["weight_decay"]), _nonzero(o["momentum"])
    partial = has_momentum and not bool(np.all(o["momentum"] > 0))
    if partial:
        o["use_momentum"] = np.asarray(o["momentum"] > 0)

    def init(params):
        ops = _ops(params)
        zeros = ops.zeros_like(params)
        options = _bind(o, params)
        if partial:
            options["use_momentum"] = ops.mask(o["use_momentum"], params)
        return RMSpropState(0, zeros, zeros if centered else None, zeros if has_momentum else None, options)

    def update(grads, state, params, lr):
        ops, opt = _ops(params), state.options
        alpha = opt["alpha"]
        grad = grads
        if has_decay:
            grad = ops.add(grad, params, opt["weight_decay"])
        fast = _fast(params, grad)
        if fast:
            square_avg = _scaled_square_sum(state.square_avg, alpha, grad, 1 - alpha)
        else:
            square_avg = ops.addcmul(state.square_avg * ops.cast(alpha, params), grad, grad, 1 - alpha)
        grad_avg = state.grad_avg
        if centered:
            grad_avg = _lerp_np(grad_avg, grad, 1 - alpha) if fast else ops.lerp(grad_avg, grad, 1 - alpha)
            variance = ops.addcmul(square_avg, grad_avg, grad_avg, -1.0)
            avg = _root_plus(variance, None, opt["eps"]) if fast else ops.sqrt(variance) + ops.cast(opt["eps"], params)
        elif fast:
            avg = _root_plus(square_avg, None, opt["eps"])
        else:
            avg = ops.sqrt(square_avg) + ops.cast(opt["eps"], params)
        buf = state.momentum_buffer
        if has_momentum:
            buf = ops.addcdiv(buf * ops.cast(opt["momentum"], params), grad, avg, 1.0)
            moved = _descend(params, buf, lr) if fast else ops.add(params, buf, -lr)
            if partial:
                moved = ops.where(opt["use_momentum"], moved, ops.addcdiv(params, grad, avg, -lr))
            params = moved
        elif fast:
            params = _addcdiv_new(params, grad, avg, -lr)
        else:
            params = ops.addcdiv(params, grad, avg, -lr)
        return params, RMSpropState(state.step + 1, square_avg, grad_avg, buf, opt)

    return Optimizer("rmsprop", init, update)


class AdagradState(NamedTuple):
    step: int
    sum: Any
    options: dict


def adagrad(lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10) -> Optimizer:
    """torch.optim.Adagrad: ``lr / (1 + (step - 1) * lr_decay)`` over the root of the summed squares."""
    o = _options("adagrad", dict(lr_decay=lr_decay, weight_decay=weight_decay,
                                 initial_accumulator_value=initial_accumulator_value, eps=eps))  # fmt: skip
    has_decay = _nonzero(o["weight_decay"])

    def init(params):
        options = _bind(o, params)
        ops = _ops(params)
        return AdagradState(0, ops.zeros_like(params) + ops.cast(options["initial_accumulator_value"], params), options)

    def update(grads, state, params, lr):
        ops, opt = _ops(params), state.options
        step = state.step + 1
        grad = grads
        if has_decay:
            grad = ops.add(grad, params, opt["weight_decay"])
        clr = lr / ops.cast(1 + (float(step) - 1) * opt["lr_decay"], params)
        if _fast(params, grad):  # 1.0 * grad is grad exactly: the sum of squares takes two operations
            state_sum = np.multiply(grad, grad)
            np.add(state.sum, state_sum, out=state_sum)
            std = _root_plus(state_sum, None, opt["eps"])
            params = _addcdiv_new(params, grad, std, -clr)
        else:
            state_sum = ops.addcmul(state.sum, grad, grad, 1.0)
            std = ops.sqrt(state_sum) + ops.cast(opt["eps"], params)
            params = ops.addcdiv(params, grad, std, -clr)
        return params, AdagradState(step, state_sum, opt)

    return Optimizer("adagrad", init, update)


class NAdamState(NamedTuple):
    step: int
    exp_avg: Any
    exp_avg_sq: Any
    mu_product: Any  # float, or (B, 1) float64 per run; always a float32 value (see nadam)
    options: dict


def nadam(
    betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, momentum_decay=4e-3, decoupled_weight_decay=False
) -> Optimizer:
    """torch.optim.NAdam.

    torch keeps the running product of the momentum coefficients (``mu_product``) in a tensor of
    the default dtype, float32, whatever the parameters' dtype: it is rounded to float32 after
    every multiplication here too, or float64 trajectories would drift from torch's by ~1e-8.
    """
    o = _options("nadam", dict(betas=betas, eps=eps, weight_decay=weight_decay, momentum_decay=momentum_decay,
                               decoupled_weight_decay=decoupled_weight_decay))  # fmt: skip
    decoupled = o.pop("decoupled_weight_decay")
    has_decay = _nonzero(o["weight_decay"])

    def init(params):
        zeros = _ops(params).zeros_like(params)
        return NAdamState(0, zeros, zeros, 1.0, _bind(o, params))

    def update(grads, state, params, lr):
        ops, opt = _ops(params), state.options
        c = lambda v: ops.cast(v, params)  # noqa: E731
        beta1, beta2 = opt["beta1"], opt["beta2"]
        step = float(state.step + 1)
        bias_correction2 = 1 - _per_value(opt, "beta2", lambda b: b**step)
        grad = grads
        if has_decay:
            if decoupled:
                params = params * c(1 - lr * c(opt["weight_decay"]))
            else:
                grad = ops.add(grad, params, opt["weight_decay"])
        mu = beta1 * (1.0 - 0.5 * _per_value(opt, "momentum_decay", lambda m: 0.96 ** (step * m)))
        mu_next = beta1 * (1.0 - 0.5 * _per_value(opt, "momentum_decay", lambda m: 0.96 ** ((step + 1) * m)))
        # float32 maths: the product of two float32 values is exact in float64, then rounded once
        mu_product = _round_f32(state.mu_product * _round_f32(mu, ops), ops)
        exp_avg = ops.lerp(state.exp_avg, grad, 1 - beta1)
        exp_avg_sq = ops.addcmul(state.exp_avg_sq * c(beta2), grad, grad, 1 - beta2)
        denom = ops.sqrt(exp_avg_sq / c(bias_correction2))
        mu_product_next = mu_product * mu_next
        denom = denom + c(opt["eps"])
        params = ops.addcdiv(params, grad, denom, -lr * c(1.0 - mu) / c(1.0 - mu_product))
        params = ops.addcdiv(params, exp_avg, denom, (-lr * c(mu_next)) / c(1.0 - mu_product_next))
        return params, NAdamState(int(step), exp_avg, exp_avg_sq, mu_product, opt)

    return Optimizer("nadam", init, update)


class RAdamState(NamedTuple):
    step: int
    exp_avg: Any
    exp_avg_sq: Any
    options: dict


def radam(betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, decoupled_weight_decay=False) -> Optimizer:
    """torch.optim.RAdam: the adaptive step only once the variance is tractable (rho_t > 5).

    torch divides ``bias_correction2 ** 0.5`` (a float) by a tensor, which torch evaluates as
    ``tensor.reciprocal() * float``; so does this implementation.
    """
    o = _options("radam", dict(betas=betas, eps=eps, weight_decay=weight_decay,
                               decoupled_weight_decay=decoupled_weight_decay))  # fmt: skip
    decoupled = o.pop("decoupled_weight_decay")
    has_decay = _nonzero(o["weight_decay"])

    def init(params):
        zeros = _ops(params).zeros_like(params)
        return RAdamState(0, zeros, zeros, _bind(o, params))

    def update(grads, state, params, lr):
        ops, opt = _ops(params), state.options
        c = lambda v: ops.cast(v, params)  # noqa: E731
        beta1, beta2 = opt["beta1"], opt["beta2"]
        step = float(state.step + 1)
        grad = grads
        if has_decay:
            if decoupled:
                params = params * c(1 - lr * c(opt["weight_decay"]))
            else:
                grad = ops.add(grad, params, opt["weight_decay"])
        exp_avg = ops.lerp(state.exp_avg, grad, 1 - beta1)
        exp_avg_sq = ops.addcmul(state.exp_avg_sq * c(beta2), grad, grad, 1 - beta2)
        bias_correction1 = 1 - _per_value(opt, "beta1", lambda b: b**step)
        bias_corrected_exp_avg = exp_avg / c(bias_correction1)
        plain = bias_corrected_exp_avg * c(lr)

        def rectification(b2: float) -> float:
            """torch's ``rect`` for beta2 ``b2``; 0.0 while the variance is not tractable (rho_t <= 5)."""
            rho_inf = 2 / (1 - b2) - 1
            rho_t = rho_inf - 2 * step * (b2**step) / (1 - b2**step)
            if not rho_t > 5.0:
                return 0.0
            return ((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5

        rect = _per_value(opt, "beta2", rectification)
        if isinstance(rect, float) and rect == 0.0:
            return ops.add(params, plain, -1.0), RAdamState(int(step), exp_avg, exp_avg_sq, opt)
        bias_correction2_sqrt = _per_value(opt, "beta2", lambda b: (1 - b**step) ** 0.5)
        adaptive_lr = (1.0 / (ops.sqrt(exp_avg_sq) + c(opt["eps"]))) * c(bias_correction2_sqrt)
        rectified = plain * adaptive_lr * c(rect)
        if not isinstance(rect, float):  # per-run beta2: some runs may rectify, others not yet
            rectified = ops.where(rect > 0, rectified, plain)
        return ops.add(params, rectified, -1.0), RAdamState(int(step), exp_avg, exp_avg_sq, opt)

    return Optimizer("radam", init, update)


class AdadeltaState(NamedTuple):
    step: int
    square_avg: Any
    acc_delta: Any
    options: dict


def adadelta(rho=0.9, eps=1e-6, weight_decay=0.0) -> Optimizer:
    """torch.optim.Adadelta (torch's default lr is 1.0; here the lr is the run's, as always)."""
    o = _options("adadelta", dict(rho=rho, eps=eps, weight_decay=weight_decay))
    has_decay = _nonzero(o["weight_decay"])

    def init(params):
        zeros = _ops(params).zeros_like(params)
        return AdadeltaState(0, zeros, zeros, _bind(o, params))

    def update(grads, state, params, lr):
        ops, opt = _ops(params), state.options
        c = lambda v: ops.cast(v, params)  # noqa: E731
        rho, eps = opt["rho"], opt["eps"]
        grad = grads
        if has_decay:
            grad = ops.add(grad, params, opt["weight_decay"])
        square_avg = ops.addcmul(state.square_avg * c(rho), grad, grad, 1 - rho)
        std = ops.sqrt(square_avg + c(eps))
        delta = ops.sqrt(state.acc_delta + c(eps)) / std * grad
        acc_delta = ops.addcmul(state.acc_delta * c(rho), delta, delta, 1 - rho)
        params = ops.add(params, delta, -lr)
        return params, AdadeltaState(state.step + 1, square_avg, acc_delta, opt)

    return Optimizer("adadelta", init, update)


OPTIMIZERS: dict[str, Callable[..., Optimizer]] = {
    "sgd": sgd, "adam": adam, "adamw": adamw, "rmsprop": rmsprop, "adagrad": adagrad, "nadam": nadam,
    "radam": radam, "adadelta": adadelta,
}  # fmt: skip


def get_optimizer(name: str, **options) -> Optimizer:
    """The optimizer ``name`` with ``options`` (validated now, with one-line GdrunErrors).
    An option given as None takes its default."""
    known("optimizer", name, OPTIMIZERS)
    check_option_names(f"optimizer '{name}'", options, OPTIMIZER_OPTIONS[name])
    return OPTIMIZERS[name](**{k: v for k, v in options.items() if v is not None})


# -------------------------------------------------------------------------------------------- clipping


def _bound(value, grads):
    """A clipping threshold (float, or per-run array (B, 1)) usable with ``grads``."""
    if isinstance(value, np.ndarray) and _is_torch(grads):
        return _ops(grads).bind(value, grads).to(grads.dtype)
    return _ops(grads).cast(value, grads)


def clip_by_norm(grads, max_norm):
    """torch.nn.utils.clip_grad_norm_ for each run: its row's 2-norm ``total`` scales the row by
    ``min(max_norm / (total + 1e-6), 1)``. ``max_norm`` is a float or one per run (B, 1).
    (torch evaluates ``float / tensor`` as ``tensor.reciprocal() * float``; so does this.)"""
    max_norm = _bound(max_norm, grads)
    if _is_torch(grads):
        import torch

        total = torch.linalg.vector_norm(grads, 2, dim=1, keepdim=True)
        return grads * torch.clamp((1.0 / (total + 1e-6)) * max_norm, max=1.0)
    total = np.sqrt(np.sum(grads * grads, axis=1, keepdims=True))
    return grads * np.minimum((1.0 / (total + 1e-6)) * max_norm, 1.0)


def clip_by_value(grads, clip_value):
    """torch.nn.utils.clip_grad_value_: each component clamped to ``[-clip_value, clip_value]``."""
    clip_value = _bound(clip_value, grads)
    if _is_torch(grads):
        import torch

        return torch.clamp(grads, min=-clip_value, max=clip_value)
    return np.minimum(np.maximum(grads, -clip_value), clip_value)


CLIP_MODES = ("norm", "value")


def get_clip(mode: str, value) -> Callable[[Any], Any]:
    """``grads -> clipped grads`` for the engine: mode ``norm`` (clip_grad_norm_, ``value`` is the
    max norm) or ``value`` (clip_grad_value_); ``value`` > 0, a float or one per run (B, 1)."""
    known("clip mode", mode, CLIP_MODES)
    option = "max_norm" if mode == "norm" else "clip_value"
    bound = check_number("gradient clipping", option, value, (lambda v: v > 0, "must be > 0"))
    if mode == "norm":
        return lambda grads: clip_by_norm(grads, bound)
    return lambda grads: clip_by_value(grads, bound)


# -------------------------------------------------------------------------------------------- batches


def per_run(values: list) -> Any:
    """One value if every run has the same, else a (B, 1) array."""
    if all(v == values[0] for v in values):
        return values[0]
    return np.array(values, dtype=np.float64).reshape(-1, 1)


def per_run_option(values: list) -> Any:
    """One option's value in each run: as :func:`per_run`, a tuple option (betas) element by element."""
    if isinstance(values[0], (tuple, list)):
        return tuple(per_run([v[i] for v in values]) for i in range(len(values[0])))
    return per_run(values)


def per_run_options(options: list[dict[str, Any]]) -> dict[str, Any]:
    return {key: per_run_option([o.get(key) for o in options]) for key in options[0]}
