"""The fast paths compute what the plain code computes, bit for bit.

* metrics.csv: the column-wise formatting writes the bytes the row-wise ``'%r'`` formatting wrote;
* optimizers: the numpy paths that write chains of operations into their own temporaries (large
  batches) give the arrays the plain expressions give, and modify nothing they are given;
* plain SGD's ``params - lr * grads`` is ``params + (-lr) * grads`` exactly, signed zeros included;
* compiled expressions: the closures that read their leaf operands directly evaluate the same
  operations in the same order as a plain recursive evaluation;
* a one-variable expression evaluated on X (B, 1) itself gives the values and gradients of its
  column.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gdrun import optim
from gdrun.engine import Block
from gdrun.expr import CONSTANTS, Namespace, compile_program, compile_tree, parse
from gdrun.functions import resolve
from gdrun.optim import get_optimizer
from gdrun.problems import ExpressionObjective
from gdrun.runs import MetricsWriter
from gdrun.symbolic import derivatives

# ------------------------------------------------------------------------------------ metrics.csv


def _old_rows(block: Block, member: int, epochs: bool) -> str:
    """The row-wise '%r' formatting MetricsWriter used before (the reference for the bytes)."""
    last = block.last[member]
    if last < 0:
        return ""
    b = member
    lr = block.lr[: last + 1, b]
    counters = [block.steps[: last + 1], block.updates[: last + 1]] if epochs else [block.steps[: last + 1]]
    columns = [*counters, block.x[: last + 1, b], block.value[: last + 1, b], block.grad_norm[: last + 1, b]]
    ints = "%d," * len(counters)
    cells = ",".join(["%r"] * (block.x.shape[2] + 2))
    if (lr == lr[0]).all():
        row_format = f"{ints}{cells},{float(lr[0])!r}\n"
    else:
        row_format, columns = f"{ints}{cells},%r\n", columns + [lr]
    rows = np.column_stack(columns).tolist()
    return "".join([row_format % tuple(r) for r in rows])


AWKWARD = [0.0, -0.0, np.nan, np.inf, -np.inf, 1e-300, 5e-324, 2.0**-1074, 1.7976931348623157e308, 3.0, 1e16, 1e15,
           1e22, 123456789012345678.0, 0.1, 1 / 3, -2.5, 1e-5, 1e-7, 0.0001, 7.5, 12345678901234567.0]  # fmt: skip


def _block(rng, T: int, B: int, n: int, dtype, lr_kind: str, last) -> Block:
    pool = np.array(AWKWARD + list(rng.normal(size=50) * 10.0 ** rng.integers(-30, 30, 50)))
    with np.errstate(over="ignore"):  # float32: the largest values become inf
        x = rng.choice(pool, size=(T, B, n)).astype(dtype)
        value = rng.choice(pool, size=(T, B)).astype(dtype)
    grad_norm = np.abs(rng.choice(pool, size=(T, B)))
    if lr_kind == "constant":
        lr = np.broadcast_to(np.full(B, 0.1), (T, B))
    elif lr_kind == "awkward":
        lr = rng.choice(pool, size=(T, B))
    else:  # a schedule: a few distinct values, one run constant over the block
        lr = np.repeat((0.05 * 0.9 ** np.arange(T))[:, None], B, axis=1)
        lr[:, 0] = 1e-3
    steps = np.arange(100, 100 + T)
    updates = steps * 3
    return Block(steps, updates, x, value, grad_norm, lr, np.asarray(last))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("lr_kind", ["constant", "awkward", "schedule"])
@pytest.mark.parametrize("epochs", [False, True])
def test_metrics_rows_are_the_bytes_of_the_old_formatting(tmp_path, dtype, lr_kind, epochs):
    rng = np.random.default_rng(7)
    T, B, n = 60, 3, 2
    names = ("x", "y")
    lasts = ([T - 1, 17, -1], [0, T - 1, 5])  # whole blocks, blocks cut short, a run with no row
    blocks = [_block(rng, T, B, n, dtype, lr_kind, last) for last in lasts]
    for member in range(B):
        path = tmp_path / f"m{member}.csv"
        writer = MetricsWriter(path, names, member=member, epochs=epochs)
        for block in blocks:
            writer.on_block(block)
        writer.close()
        header = ",".join([*(["epoch", "step"] if epochs else ["step"]), *names, "value", "grad_norm", "lr"]) + "\n"
        expected = header + "".join(_old_rows(block, member, epochs) for block in blocks)
        assert path.read_bytes() == expected.encode()


def test_metrics_rows_of_one_variable_and_a_varying_lr(tmp_path):
    T = 9
    x = np.array(AWKWARD[:T]).reshape(T, 1, 1)
    value = np.array(AWKWARD[-T:]).reshape(T, 1)
    lr = np.array([1e-5, 1e-5, 2e-5, -0.0, np.nan, np.inf, 3.0, 1e-300, 0.1]).reshape(T, 1)
    block = Block(np.arange(T), np.arange(T), x, value, np.abs(value), lr, np.array([T - 1]))
    path = tmp_path / "m.csv"
    writer = MetricsWriter(path, ("x",))
    writer.on_block(block)
    writer.close()
    assert path.read_text() == "step,x,value,grad_norm,lr\n" + _old_rows(block, 0, False)
    assert "nan" in path.read_text() and "-0.0" in path.read_text()


# ------------------------------------------------------------------------------------- optimizers

B_BIG = 3000  # (B, 2) = 6000 elements: above optim.INPLACE_FROM


def _per_run(rng, low, high, B):
    return rng.uniform(low, high, size=(B, 1))


def _cases(B: int):
    rng = np.random.default_rng(3)
    momentum = _per_run(rng, 0.5, 0.95, B)
    momentum[::4] = 0.0  # some runs without momentum
    return {
        "sgd": {},
        "sgd-momentum": {"name": "sgd", "momentum": 0.9},
        "sgd-nesterov": {"name": "sgd", "momentum": 0.9, "nesterov": True, "weight_decay": 0.01},
        "sgd-dampening-per-run-momentum": {"name": "sgd", "momentum": momentum, "dampening": 0.1},
        "adam": {},
        "adam-per-run-betas": {"name": "adam", "betas": (_per_run(rng, 0.1, 0.95, B), _per_run(rng, 0.9, 0.9999, B))},
        "adam-beta1-low": {"name": "adam", "betas": (0.3, 0.99)},  # lerp weight 0.7: its other branch
        "adam-amsgrad-decay": {"name": "adam", "amsgrad": True, "weight_decay": 0.01},
        "adamw": {"weight_decay": _per_run(rng, 0.0, 0.1, B)},
        "rmsprop": {},
        "rmsprop-centered-momentum": {"name": "rmsprop", "centered": True, "momentum": 0.9,
                                      "alpha": _per_run(rng, 0.9, 0.999, B)},
        "rmsprop-partial-momentum": {"name": "rmsprop", "momentum": momentum, "eps": _per_run(rng, 1e-10, 1e-6, B)},
        "adagrad": {},
        "adagrad-per-run": {"name": "adagrad", "lr_decay": _per_run(rng, 0.0, 0.1, B), "initial_accumulator_value": 0.1,
                            "weight_decay": 0.001},
        "nadam": {},
        "radam": {},
        "adadelta": {},
    }  # fmt: skip


def _trajectory(case: str, B: int, dtype, steps: int = 6):
    options = dict(_cases(B)[case])
    name = options.pop("name", case)
    optimizer = get_optimizer(name, **options)
    rng = np.random.default_rng(11)
    X = rng.normal(size=(B, 2)).astype(dtype)
    X[0] = [0.0, -0.0]
    lr = _per_run(rng, 1e-3, 1e-1, B).astype(dtype)
    state = optimizer.init(X)
    points, states = [], []
    for k in range(steps):
        G = (X * rng.normal(size=(B, 2)) + rng.normal(size=(B, 2))).astype(dtype)
        G[1] = [-0.0, 0.0]
        if k == 3:
            G[2] = [np.nan, np.inf]
        given = [X, G, lr, *(a for a in state if isinstance(a, np.ndarray))]
        copies = [a.copy() for a in given]
        new, state = optimizer.update(G, state, X, lr)
        assert new is not X and not np.shares_memory(new, X) and not np.shares_memory(new, G)
        for a, b in zip(given, copies):
            np.testing.assert_array_equal(a, b)  # nothing given was modified
        X = new
        points.append(X)
        states.append([a for a in state if isinstance(a, np.ndarray)])
    return points, states


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", list(_cases(4)))
def test_numpy_fast_paths_equal_the_plain_expressions(monkeypatch, case, dtype):
    taken = []
    fast = optim._fast
    monkeypatch.setattr(optim, "_fast", lambda params, grads: taken.append(fast(params, grads)) or taken[-1])
    with np.errstate(all="ignore"):
        fast_points, fast_states = _trajectory(case, B_BIG, dtype)
        if case.startswith(("sgd-", "adam", "rmsprop", "adagrad")):
            assert taken and all(taken)  # the fast paths were taken
        monkeypatch.setattr(optim, "INPLACE_FROM", 1 << 62)  # every update takes the plain expressions
        plain_points, plain_states = _trajectory(case, B_BIG, dtype)
    for a, b in zip(fast_points, plain_points):
        assert a.dtype == b.dtype == dtype
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(np.signbit(a), np.signbit(b))
    for sa, sb in zip(fast_states, plain_states):
        for a, b in zip(sa, sb):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("B", [1, 5000])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("lr_kind", ["array", "float"])
def test_plain_sgd_is_params_plus_minus_lr_times_grads(B, dtype, lr_kind):
    rng = np.random.default_rng(5)
    X = rng.normal(size=(B, 2)).astype(dtype)
    G = rng.normal(size=(B, 2)).astype(dtype)
    X[:, 0], G[:, 0] = 0.0, -0.0  # 0 + (-lr) * -0 and 0 - lr * -0: both +0
    X[: B // 2, 1], G[: B // 2, 1] = -0.0, 0.0  # -0 + (-lr) * 0 and -0 - lr * 0: both -0
    lr = rng.uniform(0.01, 0.1, size=(B, 1)).astype(dtype) if lr_kind == "array" else 0.05
    new, _ = get_optimizer("sgd").update(G, get_optimizer("sgd").init(X), X, lr)
    expected = X + ((-lr) * G)
    assert new.dtype == expected.dtype
    np.testing.assert_array_equal(new, expected)
    np.testing.assert_array_equal(np.signbit(new), np.signbit(expected))


@pytest.mark.parametrize("name", ["sgd", "adam", "rmsprop", "adagrad", "nadam", "radam", "adadelta"])
def test_a_python_int_lr_is_a_number_like_any_other(name):
    X = np.random.default_rng(1).normal(size=(B_BIG, 2))
    G = X * 0.5 + 0.25
    optimizer = get_optimizer(name)
    state = optimizer.init(X)
    np.testing.assert_array_equal(optimizer.update(G, state, X, 1)[0], optimizer.update(G, state, X, 1.0)[0])


def test_the_torch_path_is_unchanged():
    """A torch tensor never takes a numpy path (torch's own kernels: fused multiply-adds)."""
    X = torch.tensor([[1.0, -2.0]] * 5000, dtype=torch.float64)
    G = X * 0.5 + 0.25
    lr = torch.full((5000, 1), 0.1, dtype=torch.float64)
    for name in ("sgd", "adam", "rmsprop", "adagrad"):
        optimizer = get_optimizer(name)
        new, _ = optimizer.update(G, optimizer.init(X), X, lr)
        assert isinstance(new, torch.Tensor) and new.shape == X.shape


# ------------------------------------------------------------------------------- compiled programs


def _reference(node, env, ns):
    """A plain recursive evaluation: each operand evaluated, then the operation."""
    tag = node[0]
    if tag == "num":
        return float(node[1])
    if tag == "const":
        return CONSTANTS[node[1]]
    if tag in ("var", "tmp"):
        return env[node[1]]
    if tag == "neg":
        return -_reference(node[1], env, ns)
    if tag == "call":
        arg = _reference(node[2], env, ns)
        if isinstance(arg, float):
            return float(getattr(math, node[1])(arg)) if node[1] != "detach" else arg
        return ns.functions[node[1]](arg)
    a, b = _reference(node[1], env, ns), _reference(node[2], env, ns)
    if tag == "pow" and node[2][0] == "num" and float(node[2][1]) == 2.0:
        return a**2
    return {"add": _add, "sub": _sub, "mul": _mul, "div": _div, "pow": _pow}[tag](a, b)


def _run_reference(program, env, ns):
    env = dict(env)
    for i, temp in enumerate(program.temps):
        env[i] = _reference(temp, env, ns)
    return [_reference(node, env, ns) for node in program.outputs]


def _add(a, b):
    return a + b


def _sub(a, b):
    return a - b


def _mul(a, b):
    return a * b


def _div(a, b):
    return a / b


def _pow(a, b):
    return a**b


EXPRESSIONS = ["x*2", "2*x", "x*y", "x - 3", "3 - x", "x/y", "2/x", "-x", "-(x*y)", "sin(x)", "exp(x*y)", "x**3",
               "x**y", "2**x", "(x+1)**2", "pi*x + e", "x**2 + 3*y**2", "(x - y)/(x + y) - sqrt(abs(x))",
               "tanh(2) * x", "cos(x)**2.5 - log(abs(y) + 1)", "x + y*x - y/x + 2*pi - x**0.5"]  # fmt: skip


@pytest.mark.parametrize("text", EXPRESSIONS)
def test_compiled_trees_and_programs_evaluate_as_a_plain_recursion(text):
    tree = parse(text).tree
    rng = np.random.default_rng(2)
    env = {"x": rng.normal(size=7), "y": rng.normal(size=7)}
    env["x"][0], env["y"][1] = -0.0, 0.0
    with np.errstate(all="ignore"):
        got = compile_tree(tree, Namespace(np))(env)
        np.testing.assert_array_equal(got, _reference(tree, env, Namespace(np)))
        tenv = {k: torch.tensor(v) for k, v in env.items()}
        torch.testing.assert_close(compile_tree(tree, Namespace(torch))(tenv), _reference(tree, tenv, Namespace(torch)),
                                   rtol=0, atol=0, equal_nan=True)  # fmt: skip
        names = sorted(parse(text).variables)
        program = derivatives([tree], names)
        outs = compile_program(program, Namespace(np))(dict(env))
        ref = _run_reference(program, env, Namespace(np))
    assert len(outs) == len(ref) == 1 + len(names)
    for out, expected in zip(outs, ref):
        np.testing.assert_array_equal(out, expected)


def test_programs_of_many_outputs():
    tree = parse("x*y*z*w + sin(x) * y - z/w").tree
    program = derivatives([tree], ["w", "x", "y", "z"])
    env = {k: np.linspace(0.5, 2.0, 5) + i for i, k in enumerate("wxyz")}
    with np.errstate(all="ignore"):
        outs = compile_program(program, Namespace(np))(dict(env))
        ref = _run_reference(program, env, Namespace(np))
    assert len(outs) == len(ref) == 5
    for out, expected in zip(outs, ref):
        np.testing.assert_array_equal(out, expected)


# ------------------------------------------------------------------------------ one-variable objectives


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("text", ["x**2", "3*x + 1", "x - x", "x", "sin(x)*x", "x**2/2"])
def test_one_variable_objective_on_its_column(text, dtype):
    objective = ExpressionObjective(parse(text))
    vg = objective.numpy_value_and_grad()
    X = np.array([[7.5], [-0.0], [np.nan], [1e-300]], dtype=dtype)
    with np.errstate(all="ignore"):
        f, G = vg(X)
        x = X[:, 0]
        names = objective.variables
        program = derivatives([objective.expression.tree], list(names))
        ref = [np.broadcast_to(np.asarray(r, dtype=dtype), x.shape)
               for r in _run_reference(program, {names[0]: x}, Namespace(np))]  # fmt: skip
    assert f.shape == (4,) and G.shape == (4, 1)
    assert f.dtype == G.dtype == dtype
    np.testing.assert_array_equal(f, ref[0])
    np.testing.assert_array_equal(G[:, 0], ref[1])
    G2 = vg(X)[1]
    assert G2 is not G or np.shares_memory(G, X)  # a constant gradient is a new array every call


def test_builtin_x2_on_a_batch():
    vg = resolve("x2").objective.numpy_value_and_grad()
    X = np.array([[7.5], [-3.0], [0.0]])
    f, G = vg(X)
    np.testing.assert_array_equal(f, X[:, 0] ** 2)
    np.testing.assert_array_equal(G, 2.0 * X)


# ------------------------------------------------------------------------------- separable objectives


def _separable_reference(objective, X):
    """What SeparableObjective's numpy value-and-gradient computed before: zeros, then += each
    weighted contribution, and every sum a reduction."""
    ns = Namespace(np)
    ab = ["a", "b"][: objective.window]
    k = len(objective.terms)
    sum_names = [f"S{j + 1}" for j in range(k)]
    run_terms = compile_program(derivatives(list(objective.terms), ab), ns)
    run_outer = compile_program(derivatives([objective.outer], sum_names + ["n"], wrt=sum_names), ns)
    inputs = objective._inputs(X)
    outs = run_terms(inputs)
    sums = {name: np.broadcast_to(outs[j], inputs["a"].shape).sum(1) for j, name in enumerate(sum_names)}
    outer = run_outer({**sums, "n": float(objective.dim)})
    G = np.zeros_like(X)
    for j in range(k):
        weight = np.asarray(outer[1 + j])[..., None] if np.ndim(outer[1 + j]) else outer[1 + j]
        G[:, : X.shape[1] - objective.window + 1] += weight * outs[k + j * objective.window]
        if objective.window == 2:
            G[:, 1:] += weight * outs[k + j * objective.window + 1]
    value = outer[0]
    if not (type(value) is np.ndarray and value.shape == X.shape[:1]):
        value = np.broadcast_to(np.asarray(value, dtype=X.dtype), X.shape[:1]).copy()
    return value, G


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", ["sphere", "rosenbrock", "rastrigin", "ackley", "styblinski_tang"])
def test_separable_value_and_grad_equal_the_old_assembly(name, dtype):
    rng = np.random.default_rng(4)
    for dim in (1, 2, 3, 6):
        try:
            objective = resolve(name, dim).objective
        except Exception:  # rosenbrock needs 2 variables
            continue
        X = rng.normal(size=(50, dim)).astype(dtype)
        X[0] = 0.0
        X[1] = -0.0
        X[2, 0] = np.nan
        X[3, -1] = np.inf
        X[4] = 1.0
        with np.errstate(all="ignore"):
            f, G = objective.numpy_value_and_grad()(X)
            f0, G0 = _separable_reference(objective, X)
        assert f.dtype == f0.dtype and G.dtype == G0.dtype == dtype
        for a, b in ((f, f0), (G, G0)):
            np.testing.assert_array_equal(a, b)
            np.testing.assert_array_equal(np.signbit(a), np.signbit(b))
