"""The safe expression parser (gdrun.expr) and the symbolic derivatives built on it (gdrun.symbolic).

Covers: the syntax that is accepted and the tree it gives, printing round-trips, every kind of
rejected input (each a one-line GdrunError naming the problem, fast, never a RecursionError),
that no code path calls eval/exec/sympify/parse_expr, exact gradients against torch.autograd, and
the derivative cache (reused, corrupted entries ignored, a hit never imports sympy).
"""

from __future__ import annotations

import ast
import builtins
import json
import os
import random
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest

import gdrun
from gdrun import symbolic
from gdrun.errors import GdrunError
from gdrun.expr import FUNCTIONS, Namespace, Program, compile_program, compile_tree, format_tree, parse
from gdrun.symbolic import derivatives

X, Y = ("var", "x"), ("var", "y")


def num(v: float) -> tuple:
    return ("num", float(v))


# ---------------------------------------------------------------------------- accepted syntax


@pytest.mark.parametrize(
    "text, tree",
    [
        ("x", X),
        ("  x  ", X),
        ("x + y", ("add", X, Y)),
        ("x - y", ("sub", X, Y)),
        ("x * y", ("mul", X, Y)),
        ("x / y", ("div", X, Y)),
        ("x ** y", ("pow", X, Y)),
        ("x ^ y", ("pow", X, Y)),
        ("-x", ("neg", X)),
        ("--x", ("neg", ("neg", X))),
        ("+x", X),
        # precedence
        ("1 + 2*3", ("add", num(1), ("mul", num(2), num(3)))),
        ("(1 + 2)*3", ("mul", ("add", num(1), num(2)), num(3))),
        ("x*y + x/y", ("add", ("mul", X, Y), ("div", X, Y))),
        ("x*y**2", ("mul", X, ("pow", Y, num(2)))),
        ("-x**2", ("neg", ("pow", X, num(2)))),  # unary minus binds looser than power
        ("(-x)**2", ("pow", ("neg", X), num(2))),
        ("-x*y", ("mul", ("neg", X), Y)),
        ("x*-y", ("mul", X, ("neg", Y))),
        ("x - -y", ("sub", X, ("neg", Y))),
        # left-associative + - * /
        ("x - y - 1", ("sub", ("sub", X, Y), num(1))),
        ("x / y / 2", ("div", ("div", X, Y), num(2))),
        ("x - y + 1", ("add", ("sub", X, Y), num(1))),
        # right-associative power, and a negative exponent
        ("2**3**2", ("pow", num(2), ("pow", num(3), num(2)))),
        ("2^3^2", ("pow", num(2), ("pow", num(3), num(2)))),
        ("x**-1", ("pow", X, ("neg", num(1)))),
        ("x^-y^2", ("pow", X, ("neg", ("pow", Y, num(2))))),
        ("(x**y)**2", ("pow", ("pow", X, Y), num(2))),
        # numbers
        (".5*x", ("mul", num(0.5), X)),
        ("1e-3*x", ("mul", num(0.001), X)),
        ("1E3*x", ("mul", num(1000), X)),
        ("2.5e+2*x", ("mul", num(250), X)),
        ("2.*x", ("mul", num(2), X)),
        ("007 + x", ("add", num(7), X)),
        # constants
        ("pi*x", ("mul", ("const", "pi"), X)),
        ("e**x", ("pow", ("const", "e"), X)),
        ("e1 + x", ("add", ("var", "e1"), X)),  # only the bare name is the constant
        # functions
        ("sin(x)*cos(y)", ("mul", ("call", "sin", X), ("call", "cos", Y))),
        ("exp(-x**2)", ("call", "exp", ("neg", ("pow", X, num(2))))),
        ("sqrt(abs(x))", ("call", "sqrt", ("call", "abs", X))),
        ("log(1 + x)", ("call", "log", ("add", num(1), X))),
        ("sin(x)**2", ("pow", ("call", "sin", X), num(2))),
        ("-sin(x)", ("neg", ("call", "sin", X))),
    ],
)
def test_accepted_syntax(text, tree):
    assert parse(text).tree == tree


@pytest.mark.parametrize("fn", FUNCTIONS)
def test_every_function_is_accepted(fn):
    expr = parse(f"{fn}(x) + 1")
    assert expr.tree == ("add", ("call", fn, X), num(1))
    assert expr.variables == ("x",)


def test_function_list_is_the_documented_one():
    assert set(FUNCTIONS) == {"sin", "cos", "tan", "exp", "log", "sqrt", "abs", "tanh", "sinh", "cosh", "detach"}


def test_parsed_values_match_python_arithmetic():
    cases = {
        "1 + 2*3 - 4/8": 1 + 2 * 3 - 4 / 8,
        "2**3**2": 2.0**9,
        "2^3^2": 2.0**9,
        "-2**2": -4.0,
        "(-2)**2": 4.0,
        "2**-1": 0.5,
        "10 - 4 - 3": 3.0,
        "64 / 4 / 2": 8.0,
        ".5 + 1e-3": 0.501,
        "pi - e": np.pi - np.e,
        "sqrt(16) + abs(-3) + exp(0) + log(e) + sin(0) + cos(0) + tan(0) + tanh(0) + sinh(0) + cosh(0)": 11.0,
    }
    for text, expected in cases.items():
        value = compile_tree(parse(text).tree, Namespace(np))({})
        assert value == pytest.approx(expected, rel=1e-15), text


def test_variables_are_in_natural_order():
    assert parse("x10 + x2 + x1 + y + a").variables == ("a", "x1", "x2", "x10", "y")
    assert parse("b*a").variables == ("a", "b")
    assert parse("x*x + x").variables == ("x",)
    assert parse("pi*e + 1").variables == ()
    assert parse("sin(theta) + Theta").variables == ("Theta", "theta")  # case matters


def test_expression_str_is_the_formatted_tree():
    expr = parse("(x+y)  *  2")
    assert str(expr) == format_tree(expr.tree) == "(x + y)*2"
    assert expr.text == "(x+y)  *  2"


# ---------------------------------------------------------------------------- printing


ROUND_TRIP = [
    "x",
    "-x",
    "-(-x)",
    "-x**2",
    "(-x)**2",
    "x**-1",
    "x**(-y)",
    "2**3**2",
    "(2**3)**2",
    "x - (y - z)",
    "x - (y + z)",
    "(x - y) - z",
    "x/(y/z)",
    "x/(y*z)",
    "(x/y)/z",
    "x*(y/z)",
    "x*(y*z)",
    "(x*y)*z",
    "x + (y + z)",
    "x + (y - z)",
    "1e20 + (x + 1)",
    "(x + y)*(x - y)",
    "-(x + y)",
    "-(x*y)",
    "sin(x)**2 + cos(x)**2",
    "exp(-x**2)/sqrt(2*pi)",
    "(1-x)**2 + 100*(y-x**2)**2",
    "abs(x - y)**0.5 - log(1 + e**x)",
    "tanh(sinh(cosh(tan(x))))",
    ".5*x + 1e-3*y + 1e20*z + 1e-300",
    "123456789012345678901234 * x",
    "x^2^-y",
    "x - -y",
    "x * -y / -z",
]


@pytest.mark.parametrize("text", ROUND_TRIP)
def test_printing_round_trips(text):
    tree = parse(text).tree
    printed = format_tree(tree)
    assert parse(printed).tree == tree, f"{text!r} printed as {printed!r}"


@pytest.mark.parametrize("text", ROUND_TRIP)
def test_printing_is_stable(text):
    printed = format_tree(parse(text).tree)
    assert format_tree(parse(printed).tree) == printed


def _random_tree(rng: random.Random, depth: int) -> tuple:
    """Trees of the shapes the parser produces (no negative numbers, no temporaries)."""
    if depth == 0 or rng.random() < 0.25:
        k = rng.random()
        if k < 0.45:
            return ("var", rng.choice(["x", "y", "x2", "x10"]))
        if k < 0.55:
            return ("const", rng.choice(["pi", "e"]))
        return ("num", rng.choice([0.0, 1.0, 2.0, 0.5, 1e-3, 3.25, 1e20, 1e-300, 123456789.0]))
    k = rng.random()
    if k < 0.15:
        return ("neg", _random_tree(rng, depth - 1))
    if k < 0.3:
        return ("call", rng.choice(FUNCTIONS), _random_tree(rng, depth - 1))
    return (rng.choice(["add", "sub", "mul", "div", "pow"]), _random_tree(rng, depth - 1), _random_tree(rng, depth - 1))


def test_printing_round_trips_random_trees():
    rng = random.Random(1234)
    checked = 0
    for _ in range(600):
        tree = _random_tree(rng, 4)
        printed = format_tree(tree)
        try:
            reparsed = parse(printed).tree
        except GdrunError as exc:  # a constant that overflows (1e20**1e20...) is rightly refused
            assert "overflows" in str(exc) or "not a finite real number" in str(exc)
            continue
        assert reparsed == tree, f"{tree!r} printed as {printed!r} parses back as {reparsed!r}"
        checked += 1
    assert checked > 500


# ---------------------------------------------------------------------------- rejections


def rejected(text, *needles: str) -> str:
    """Parse ``text``; it must raise a one-line GdrunError containing every needle. Returns it."""
    with pytest.raises(GdrunError) as info:
        parse(text)
    message = str(info.value)
    assert message.strip(), "empty message"
    assert "\n" not in message and "\r" not in message, f"message is not one line: {message!r}"
    assert len(message) < 400, f"message too long ({len(message)} chars)"
    for needle in needles:
        assert needle.lower() in message.lower(), f"{needle!r} not in {message!r}"
    assert info.value.exit_code == 2
    return message


@pytest.mark.parametrize(
    "text, needles",
    [
        ("__import__('os').system('id')", ["__import__", "_"]),
        ("x.real", ["'.'", "position 1"]),
        ("lambda x: x", ["lambda"]),
        ("[x for x in y]", ["'['"]),
        ("(x for x in y)", ["for"]),
        ("x if y else z", ["if"]),
        ("foo(x)", ["unknown function", "foo"]),
        ("pi(x)", ["unknown function", "pi"]),
        ("2x", ["2*x"]),
        ("3y + 1", ["3*y"]),
        ("(x", ["')'"]),
        ("((x + 1)", ["')'"]),
        ("x)", ["')'"]),
        ("sin(x", ["')'"]),
        ("x +", ["end"]),
        ("x *", ["end"]),
        ("x **", ["end"]),
        ("x ^", ["end"]),
        ("x + * y", ["'*'"]),
        ("()", ["')'"]),
        ("x, y", ["','"]),
        ("max(x, y)", []),
        ("x @ y", ["'@'"]),
        ("_x", ["_x", "'_'"]),
        ("x + _secret", ["_secret"]),
        ("x // y", ["'/'"]),
        ("x % y", ["'%'"]),
        ("x == y", ["'='"]),
        ("'x'", ["\"'\""]),
        ("x y", ["'y'"]),
        ("sin", ["sin", "argument"]),
        ("sin x", ["sin", "argument"]),
        ("1.2.3", ["'.'"]),
        ("1e400 * x", ["1e400"]),
        ("x\ny", ["'y'"]),
    ],
)
def test_rejected_syntax(text, needles):
    rejected(text, *needles)


def test_typo_in_function_name_suggests_the_function():
    message = rejected("sinn(x)", "sinn")
    assert "did you mean 'sin'" in message
    assert "did you mean" in rejected("expp(x)") and "'exp'" in rejected("expp(x)")
    assert "did you mean" not in rejected("foo(x)")  # nothing close: no suggestion, but the list
    assert "sin" in rejected("foo(x)")


@pytest.mark.parametrize("text", ["", "   ", "\t\n"])
def test_empty_expression(text):
    rejected(text, "empty")


@pytest.mark.parametrize("value", [None, 5, 2.5, b"x**2", ["x"], ("var", "x"), {"x": 1}])
def test_non_string_input(value):
    rejected(value, "string")


@pytest.mark.parametrize("text", ["9**9**9", "9^9^9", "x + 9**9**9", "x**9**9**9", "2**2**2**2**2*x", "10**400", "(10**200)**(10**200)*x"])
def test_huge_constant_powers_are_rejected_quickly(text):
    start = time.perf_counter()
    rejected(text, "overflow")
    assert time.perf_counter() - start < 0.5


@pytest.mark.parametrize(
    "text",
    [
        "(" * 4000 + "x" + ")" * 4000,
        "-" * 9000 + "x",
        "x**" * 3000 + "x",
        "sin(" * 1500 + "x" + ")" * 1500,
        "(" * 300 + "x" + ")" * 299,  # deep *and* unbalanced
        "-(" * 3000 + "x",
    ],
    ids=["parens", "unary-minus", "power-chain", "calls", "unbalanced", "minus-paren"],
)
def test_very_deep_nesting_is_an_error_not_a_recursion_error(text):
    assert len(text) <= 10_000
    start = time.perf_counter()
    message = rejected(text)
    assert time.perf_counter() - start < 2
    assert len(message) < 200  # the message quotes only the start of the text


def test_moderate_nesting_is_fine():
    assert parse("(" * 100 + "x" + ")" * 100).tree == X
    assert parse("-" * 100 + "x").variables == ("x",)
    assert parse("sin(" * 50 + "x" + ")" * 50).variables == ("x",)


@pytest.mark.parametrize("kind", ["parens", "calls"])
def test_nesting_up_to_the_documented_limit_parses(kind):
    """MAX_DEPTH is the promised limit: a tree no deeper than it must parse, and redundant
    parentheses add no depth to the tree at all."""
    from gdrun.expr import MAX_DEPTH, tree_depth

    n = MAX_DEPTH - 10
    text = "(" * n + "x" + ")" * n if kind == "parens" else "sin(" * n + "x" + ")" * n
    expr = parse(text)
    assert tree_depth(expr.tree) <= MAX_DEPTH


@pytest.mark.parametrize("text", ["x" * 20_000, "x + " * 5_000 + "x", " " * 19_999 + "x"])
def test_very_long_input_is_rejected(text):
    start = time.perf_counter()
    message = rejected(text, "longer than")
    assert time.perf_counter() - start < 0.5
    assert len(message) < 200


# ---------------------------------------------------------------------------- no eval, anywhere


_FORBIDDEN = {"eval", "exec", "sympify", "parse_expr", "lambdify", "__import__", "S"}


def test_gdrun_source_never_names_eval_exec_or_sympify():
    """Static check: no gdrun module calls a function that can run text as code."""
    root = Path(gdrun.__file__).parent
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call):
                func = node.func
                name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
                assert name not in _FORBIDDEN, f"{path.name}:{node.lineno} calls {name}"


def test_parse_compile_and_derive_never_call_eval(monkeypatch, tmp_path):
    """Patch eval/exec/sympify/parse_expr to fail when called from gdrun, then do real work.

    A fresh cache directory makes sure sympy really derives (no cache hit)."""
    import sympy
    import sympy.parsing.sympy_parser as sympy_parser

    monkeypatch.setenv("GDRUN_CACHE_DIR", str(tmp_path))
    calls: list[tuple[str, str]] = []

    def guard(name, real):
        def wrapper(*args, **kwargs):
            caller = sys._getframe(1).f_globals.get("__name__", "")
            if caller.split(".")[0] == "gdrun":
                calls.append((name, caller))
                raise AssertionError(f"gdrun called {name}")
            return real(*args, **kwargs)  # python's import machinery and sympy internals may

        return wrapper

    monkeypatch.setattr(builtins, "eval", guard("eval", builtins.eval))
    monkeypatch.setattr(builtins, "exec", guard("exec", builtins.exec))
    monkeypatch.setattr(sympy, "sympify", guard("sympify", sympy.sympify))
    monkeypatch.setattr(sympy, "parse_expr", guard("parse_expr", sympy.parse_expr))
    monkeypatch.setattr(sympy_parser, "parse_expr", guard("parse_expr", sympy_parser.parse_expr))

    point = {"x": np.array([0.7, 1.3]), "y": np.array([0.4, 2.0])}
    for text in ["x**2 + y**2", "sin(x)*exp(y) + log(abs(x) + 1)", "sqrt(x**2 + 1)/tanh(y) + x**y", "2^x - cosh(x)*sinh(y) + tan(x/3) + pi*e*y"]:
        expr = parse(text)
        run = compile_program(derivatives([expr.tree], list(expr.variables)), Namespace(np))
        outs = run({v: point[v] for v in expr.variables})
        assert all(np.all(np.isfinite(o)) for o in outs)
    for text in ["__import__('os').system('id')", "lambda: 0", "x.__class__"]:
        with pytest.raises(GdrunError):
            parse(text)
    assert calls == []
    assert list(tmp_path.rglob("*.json")), "derivatives were not computed (the cache was not used)"


# ---------------------------------------------------------------------------- gradients vs autograd


GRADIENT_CASES = [
    "x**2 + 3*x*y + y**2",
    "abs(x - y) + abs(x)*y",
    "sqrt(x**2 + y**2 + 1) + sqrt(x)",
    "log(x)*y + log(1 + y**2)",
    "tan(x/3) + tan(y)/2",
    "tanh(x*y) - tanh(x)**2",
    "sinh(x)*cosh(y) - cosh(x*y) + sinh(y)**3",
    "x**y + y**x + 2**x",
    "x/(1 + y**2) - y/x + 1/(x*y)",
    "exp(-x**2)*sin(y) + cos(x*y)",
    "(1 - x)**2 + 100*(y - x**2)**2",
    "2^x*e^y + pi*x^3 - x^-2",
    "-(x - 2*y)**3/(x + y)",
]


@pytest.mark.parametrize("text", GRADIENT_CASES)
def test_symbolic_gradients_match_autograd(text):
    torch = pytest.importorskip("torch")
    expr = parse(text)
    names = list(expr.variables)
    rng = np.random.default_rng(zlib.crc32(text.encode()))
    points = {name: rng.uniform(0.3, 1.3, size=7) for name in names}  # inside every domain used

    outs = compile_program(derivatives([expr.tree], names), Namespace(np))(points)
    value = np.broadcast_to(outs[0], (7,))
    grads = [np.broadcast_to(g, (7,)) for g in outs[1:]]

    tensors = {name: torch.tensor(points[name], dtype=torch.float64, requires_grad=True) for name in names}
    t_value = compile_tree(expr.tree, Namespace(torch))(tensors)
    t_grads = torch.autograd.grad(t_value.sum(), [tensors[n] for n in names])

    np.testing.assert_allclose(value, t_value.detach().numpy(), rtol=1e-12, atol=1e-300)
    for name, g, tg in zip(names, grads, t_grads):
        np.testing.assert_allclose(g, tg.numpy(), rtol=1e-12, atol=1e-12, err_msg=f"d/d{name} of {text}")


def test_gradient_of_three_variables_and_constant_partials():
    expr = parse("x1*x2/x10 + sqrt(abs(x10)) + 5*x2")
    assert expr.variables == ("x1", "x2", "x10")
    program = derivatives([expr.tree], list(expr.variables))
    x1, x2, x10 = 0.5, -1.5, 2.0
    outs = compile_program(program, Namespace(np))({"x1": np.array(x1), "x2": np.array(x2), "x10": np.array(x10)})
    assert float(outs[0]) == pytest.approx(x1 * x2 / x10 + np.sqrt(x10) + 5 * x2, rel=1e-14)
    assert float(outs[1]) == pytest.approx(x2 / x10, rel=1e-14)
    assert float(outs[2]) == pytest.approx(x1 / x10 + 5, rel=1e-14)
    assert float(outs[3]) == pytest.approx(-x1 * x2 / x10**2 + 0.5 / np.sqrt(x10), rel=1e-14)


# ---------------------------------------------------------------------------- derivative cache


CACHED = "sin(x)*y**2 + log(1 + x**2)"


def _cache_files(root: Path) -> list[Path]:
    return sorted((root / "derivatives").glob("*.json"))


def _derive(text: str) -> tuple[Program, tuple]:
    expr = parse(text)
    return derivatives([expr.tree], list(expr.variables)), expr


def test_cache_is_written_and_read_back(monkeypatch, tmp_path):
    monkeypatch.setenv("GDRUN_CACHE_DIR", str(tmp_path))
    first, _ = _derive(CACHED)
    files = _cache_files(tmp_path)
    assert len(files) == 1
    assert Program.from_json(json.loads(files[0].read_text())) == first

    def no_sympy(*args, **kwargs):
        raise AssertionError("derived again although the cache holds the result")

    monkeypatch.setattr(symbolic, "_derive", no_sympy)
    second, _ = _derive(CACHED)
    assert second == first
    assert len(_cache_files(tmp_path)) == 1


def test_cache_key_depends_on_the_expression(monkeypatch, tmp_path):
    monkeypatch.setenv("GDRUN_CACHE_DIR", str(tmp_path))
    _derive("x**2 + y")
    _derive("x**2 + y")
    _derive("x**3 + y")
    assert len(_cache_files(tmp_path)) == 2


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        "",
        "[1, 2, 3]",
        '"a string"',
        '{"inputs": ["x", "y"]}',
        '{"inputs": ["x", "y"], "temps": 5, "outputs": []}',
        # valid JSON naming a function that is not an expression function: must not be trusted
        '{"inputs": ["x", "y"], "temps": [], "outputs": [["call", "__import__", ["var", "x"]]]}',
        '{"inputs": ["x", "y"], "temps": [], "outputs": [["eval", ["var", "x"]]]}',
        '{"inputs": ["x", "y"], "temps": [], "outputs": [["num", "1"]]}',
        "TRUNCATED",
    ],
    ids=["bad-json", "empty", "list", "string", "missing-keys", "bad-temps", "bad-function", "bad-node", "bad-number", "truncated"],
)
def test_corrupted_cache_entry_is_ignored_and_recomputed(monkeypatch, tmp_path, content):
    monkeypatch.setenv("GDRUN_CACHE_DIR", str(tmp_path))
    good, expr = _derive(CACHED)
    (path,) = _cache_files(tmp_path)
    valid_text = path.read_text()
    path.write_text(valid_text[: len(valid_text) // 2] if content == "TRUNCATED" else content)

    derived = []
    real_derive = symbolic._derive
    monkeypatch.setattr(symbolic, "_derive", lambda *a: derived.append(a) or real_derive(*a))
    again, _ = _derive(CACHED)
    assert again == good
    assert len(derived) == 1, "the corrupted entry was not recomputed"
    assert Program.from_json(json.loads(path.read_text())) == good, "the cache entry was not repaired"
    run = compile_program(again, Namespace(np))
    outs = run({"x": np.array(0.3), "y": np.array(2.0)})
    assert float(outs[0]) == pytest.approx(np.sin(0.3) * 4 + np.log(1.09), rel=1e-14)


def test_unwritable_cache_directory_is_skipped(monkeypatch, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("GDRUN_CACHE_DIR", str(blocker))
    program, _ = _derive("x**2 + y**2")
    assert len(program.outputs) == 3


_CHILD = """
import json, sys
import numpy as np
from gdrun.expr import parse
from gdrun.problems import ExpressionObjective
value_and_grad = ExpressionObjective(parse(sys.argv[1])).numpy_value_and_grad()
value, grad = value_and_grad(np.array([[0.5, 1.5], [-1.0, 2.0]]))
print(json.dumps({"sympy": "sympy" in sys.modules, "value": value.tolist(), "grad": grad.tolist()}))
"""


def _child(cache: Path, text: str) -> dict:
    env = {**os.environ, "GDRUN_CACHE_DIR": str(cache)}
    out = subprocess.run([sys.executable, "-c", _CHILD, text], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_cache_hit_does_not_import_sympy(monkeypatch, tmp_path):
    from gdrun.problems import ExpressionObjective

    monkeypatch.setenv("GDRUN_CACHE_DIR", str(tmp_path))
    value_and_grad = ExpressionObjective(parse(CACHED)).numpy_value_and_grad()  # fills the cache
    value, grad = value_and_grad(np.array([[0.5, 1.5], [-1.0, 2.0]]))
    assert len(_cache_files(tmp_path)) == 1

    child = _child(tmp_path, CACHED)
    assert child["sympy"] is False, "sympy was imported although the derivatives were cached"
    np.testing.assert_array_equal(child["value"], value)
    np.testing.assert_array_equal(child["grad"], grad)


def test_cache_miss_does_import_sympy(tmp_path):
    """The control for the test above: without a cache entry the child needs sympy."""
    child = _child(tmp_path, "x**2*y + y")
    assert child["sympy"] is True
    np.testing.assert_allclose(child["grad"], [[1.5, 1.25], [-4.0, 2.0]], rtol=1e-15)
    assert len(_cache_files(tmp_path)) == 1


# ---------------------------------------------------------------------------- detach and intermediate names (let)


def test_detach_passes_the_value_and_stops_the_gradient():
    from gdrun.expr import gradient_paths

    tree = parse("detach(x + y)**2 + y**3").tree
    assert gradient_paths(tree) == {"y"}
    assert gradient_paths(parse("0*x + y").tree) == {"x", "y"}  # a path whose derivative is 0
    assert gradient_paths(parse("detach(x) + detach(y)").tree) == set()
    assert parse("detach(x)").variables == ("x",)
    assert compile_tree(parse("detach(2) + x").tree, Namespace(np))({"x": 1.0}) == 3.0  # folded: 2


def test_detach_derivatives_are_zero_to_second_order_and_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GDRUN_CACHE_DIR", str(tmp_path))
    tree = parse("detach(x + y)**2 + y**3").tree
    for _ in range(2):  # the second comes from the cache (Program.from_json accepts detach)
        program = derivatives([tree], ["x", "y"], order=2)
        value, gx, gy, hxx, hxy, hyy = compile_program(program, Namespace(np))({"x": 2.0, "y": 3.0})
        assert (value, gx, gy, hxx, hxy, hyy) == (52.0, 0.0, 27.0, 0.0, 0.0, 18.0)
    assert len(list((tmp_path / "derivatives").glob("*.json"))) == 1
    assert symbolic.CACHE_FORMAT >= 3


def test_detach_on_torch_matches_the_e2_numbers():
    torch = pytest.importorskip("torch")
    for text, expected in (("(x + y)**2 + y**3", (10.0, 37.0)), ("detach(x + y)**2 + y**3", (None, 27.0))):
        x = torch.tensor(2.0, dtype=torch.float64, requires_grad=True)
        y = torch.tensor(3.0, dtype=torch.float64, requires_grad=True)
        out = compile_tree(parse(text).tree, Namespace(torch))({"x": x, "y": y})
        grads = torch.autograd.grad(out, [x, y], allow_unused=True)
        assert float(out.detach()) == 52.0
        assert tuple(None if g is None else float(g) for g in grads) == expected


def test_let_substitutes_in_order_and_prints_its_definitions():
    e = parse("f + y**3", let=[("z", "x + y"), ("f", "z**2")])
    assert e.tree == parse("(x + y)**2 + y**3").tree
    assert e.variables == ("x", "y")
    assert e.definitions == (("z", parse("x + y").tree), ("f", parse("z**2").tree))
    assert str(e) == "f + y**3 where z = x + y, f = z**2"
    assert parse("f + y**3", let={"z": "x + y", "f": "z**2"}) == e
    assert str(parse("(x + y)**2")) == "(x + y)**2"


@pytest.mark.parametrize(
    "let, needle",
    [
        ([("1z", "x")], "let name '1z' is not a name"),
        ([("z-1", "x")], "is not a name"),
        ([("_z", "x")], "let name '_z' may not start with '_'"),
        ([("sin", "x")], "let name 'sin' is a function"),
        ([("detach", "x")], "let name 'detach' is a function"),
        ([("pi", "x")], "let name 'pi' is a constant"),
        ([("e", "x")], "let name 'e' is a constant"),
        ([("lambda", "x")], "let name 'lambda' is a Python word"),
        ([("z", "x"), ("z", "y")], "let z is defined twice"),
        ([("f", "z**2"), ("z", "x")], "let f uses z, which is defined after it"),
        ([("z", "z + 1")], "let z uses itself"),
        ([("w", "x"), ("z", "y")], "let w is not used by the expression"),
        ([("z", "x +")], "let z: invalid expression 'x +'"),
        ([("z0", "x*x")] + [(f"z{i}", f"z{i - 1}*z{i - 1}") for i in range(1, 25)], "more than 100,000 operations"),
    ],
)
def test_let_rejects(let, needle):
    with pytest.raises(GdrunError) as info:
        parse("z" if let[-1][0] != "z24" else "z24", let=let)
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_a_definition_used_only_by_a_later_definition_counts_as_used():
    e = parse("f", let=[("z", "x"), ("f", "z*2")])
    assert e.tree == parse("x*2").tree
