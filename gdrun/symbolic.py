"""Exact derivatives with sympy, turned back into gdrun's own expression trees.

``derivatives(outputs, inputs)`` returns a :class:`~gdrun.expr.Program` computing every output and
its partial derivative by every input, with common subexpressions shared. sympy is imported only
here, and only on a cache miss: the result is stored as JSON (trees, never code) under the cache
directory, so a repeated run starts without paying sympy's import.

``detach(a)`` becomes a sympy function whose derivative is 0 (first, second and any order), and
comes back as ``("call", "detach", a)``: the values keep it (the identity), the derivatives lose
every path through it.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from .expr import Program, chain, free_variables

CACHE_FORMAT = 3  # 2: long sums and products come back balanced (expr.chain); 3: detach


def cache_dir() -> Path:
    """``$GDRUN_CACHE_DIR``, else ``$XDG_CACHE_HOME/gdrun``, else ``~/.cache/gdrun``."""
    if os.environ.get("GDRUN_CACHE_DIR"):
        return Path(os.environ["GDRUN_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "gdrun"


def derivatives(outputs: list[tuple], inputs: list[str], wrt: list[str] | None = None, order: int = 1) -> Program:
    """A program whose outputs are ``outputs`` followed by d output_i / d w for w in ``wrt``
    (row-major: all partials of output 0, then of output 1, ...). ``wrt`` defaults to ``inputs``.

    With ``order=2`` the second partials follow: for each output, d2 output / d w_j d w_k for
    j <= k (the upper triangle of its Hessian, row by row)."""
    wrt = list(inputs if wrt is None else wrt)
    key = hashlib.sha256(
        json.dumps([CACHE_FORMAT, _sympy_version(), outputs, inputs, wrt] + ([order] if order != 1 else [])).encode()
    ).hexdigest()
    path = cache_dir() / "derivatives" / f"{key}.json"
    try:
        return Program.from_json(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError):
        pass
    try:
        program = _derive(outputs, inputs, wrt, order)
    except (RecursionError, ValueError) as exc:
        from .errors import GdrunError

        kind = "too deeply nested" if isinstance(exc, RecursionError) else str(exc)
        raise GdrunError(f"cannot differentiate the expression: {kind}") from None
    _store(path, program)
    return program


def _sympy_version() -> str:
    from importlib.metadata import version

    try:
        return version("sympy")
    except Exception:  # pragma: no cover - sympy is a dependency
        return "unknown"


def _store(path: Path, program: Program) -> None:
    """Write the cache entry atomically; a cache that cannot be written is simply skipped."""
    from .runs import write_atomic

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps(program.to_json()))
    except OSError:
        pass


def _derive(outputs: list[tuple], inputs: list[str], wrt: list[str], order: int = 1) -> Program:
    import sympy

    names = set(inputs)
    for out in outputs:
        names |= free_variables(out)
    symbols = {name: sympy.Symbol(name, real=True) for name in sorted(names)}
    exprs = [to_sympy(out, symbols) for out in outputs]
    by = [symbols[w] for w in wrt]
    grads = [g for e in exprs for g in _gradient(sympy, e, by)]
    seconds = []
    if order == 2:
        n = len(by)
        for i in range(len(exprs)):
            for j in range(n):
                seconds += _gradient(sympy, grads[i * n + j], by[j:])
    replacements, reduced = sympy.cse(exprs + grads + seconds, symbols=sympy.numbered_symbols("_cse"))
    temps_index = {sym: i for i, (sym, _) in enumerate(replacements)}
    convert = _FromSympy(sympy, temps_index)
    temps = tuple(convert(expr) for _, expr in replacements)
    return Program(tuple(inputs), temps, tuple(convert(expr) for expr in reduced))


def _gradient(sympy, expr, wrt: list) -> list:
    """The partial derivatives of ``expr`` by each symbol of ``wrt``, by the sum and product rules
    at the top: a sum term by term, a product factor by factor, each only by the symbols it has.
    ``sympy.diff`` of a sum of 1,000 squares by each of its 1,000 variables walks the whole sum
    1,000 times (minutes), and of a product of 99 variables takes 11 s; this takes a second."""
    terms = expr.args if isinstance(expr, sympy.Add) else (expr,)
    parts: dict = {w: [] for w in wrt}
    for term in terms:
        for w in term.free_symbols & parts.keys():
            if isinstance(term, sympy.Mul):
                factors = term.args
                parts[w] += [sympy.Mul(*factors[:i], sympy.diff(f, w), *factors[i + 1 :])
                             for i, f in enumerate(factors) if w in f.free_symbols]  # fmt: skip
            else:
                parts[w].append(sympy.diff(term, w))
    return [sympy.Add(*parts[w]) for w in wrt]


def to_sympy(tree: tuple, symbols: dict):
    """Convert a gdrun tree to a sympy expression (``symbols`` maps names to sympy symbols)."""
    import sympy

    tag = tree[0]
    if tag == "num":
        value = tree[1]
        return sympy.Integer(int(value)) if float(value).is_integer() and abs(value) < 2**53 else sympy.Float(value)
    if tag == "const":
        return {"pi": sympy.pi, "e": sympy.E}[tree[1]]
    if tag == "var":
        return symbols[tree[1]]
    if tag == "neg":
        return -to_sympy(tree[1], symbols)
    if tag == "call":
        fn = {"abs": sympy.Abs, "sign": sympy.sign, "detach": detach_function()}.get(tree[1]) or getattr(sympy, tree[1])
        return fn(to_sympy(tree[2], symbols))
    a, b = to_sympy(tree[1], symbols), to_sympy(tree[2], symbols)
    return {"add": lambda: a + b, "sub": lambda: a - b, "mul": lambda: a * b, "div": lambda: a / b, "pow": lambda: a**b}[tag]()


_DETACH = None


def detach_function():
    """The sympy function ``detach``: the identity in value, with derivative 0 (made once, on
    first use, so that sympy is imported only when needed)."""
    global _DETACH
    if _DETACH is None:
        import sympy

        class detach(sympy.Function):
            nargs = 1

            @classmethod
            def eval(cls, arg):
                if arg.is_number:  # a constant carries no gradient: detach(2) is 2
                    return arg
                if isinstance(arg, detach):  # detach(detach(a)) is detach(a)
                    return arg
                return None

            def fdiff(self, argindex=1):
                return sympy.S.Zero

            def _eval_is_real(self):
                return self.args[0].is_real

            def _eval_is_positive(self):
                return self.args[0].is_positive

            def _eval_is_negative(self):
                return self.args[0].is_negative

            def _eval_is_zero(self):
                return self.args[0].is_zero

        _DETACH = detach
    return _DETACH


class _FromSympy:
    """Convert sympy expressions back to gdrun trees (only the node kinds derivatives produce)."""

    def __init__(self, sympy, temps_index: dict):
        self.sp = sympy
        self.temps = temps_index
        self.functions = {
            sympy.sin: "sin", sympy.cos: "cos", sympy.tan: "tan", sympy.exp: "exp", sympy.log: "log",
            sympy.Abs: "abs", sympy.tanh: "tanh", sympy.sinh: "sinh", sympy.cosh: "cosh", sympy.sign: "sign",
            detach_function(): "detach",
        }  # fmt: skip

    def __call__(self, expr) -> tuple:
        sp = self.sp
        if expr in self.temps:
            return ("tmp", self.temps[expr])
        if isinstance(expr, sp.Symbol):
            return ("var", expr.name)
        if expr is sp.pi:
            return ("const", "pi")
        if expr is sp.E:
            return ("const", "e")
        if expr.is_Number:
            value = float(expr)
            if value != value or value in (float("inf"), float("-inf")):
                raise ValueError(f"derivative is not finite: {expr}")
            return ("num", value)
        if isinstance(expr, sp.Add):
            terms = [self(t) for t in expr.as_ordered_terms()]
            return chain(terms[0], [("sub", t[1]) if t[0] == "neg" else ("add", t) for t in terms[1:]])
        if isinstance(expr, sp.Mul):
            return self._mul(expr)
        if isinstance(expr, sp.Pow):
            base, exp = expr.args
            if exp == sp.Rational(1, 2):
                return ("call", "sqrt", self(base))
            if exp == -sp.Rational(1, 2):
                return ("div", ("num", 1.0), ("call", "sqrt", self(base)))
            if exp == -1:
                return ("div", ("num", 1.0), self(base))
            if base is sp.E:
                return ("call", "exp", self(exp))
            return ("pow", self(base), self(exp))
        fn = self.functions.get(expr.func)
        if fn is not None and len(expr.args) == 1:
            return ("call", fn, self(expr.args[0]))
        raise ValueError(f"cannot convert {expr!r} ({type(expr).__name__})")

    def _mul(self, expr) -> tuple:
        sp = self.sp
        coeff, factors = expr.as_coeff_mul()
        numer, denom = [], []
        for f in factors:
            if isinstance(f, sp.Pow) and f.args[1].is_Number and f.args[1] < 0:
                denom.append(self(f.args[0] ** -f.args[1]))
            else:
                numer.append(self(f))
        negative = coeff < 0
        coeff = abs(coeff)
        if coeff != 1 or not numer:
            if isinstance(coeff, sp.Rational) and coeff.q != 1 and coeff.p == 1:
                denom.insert(0, ("num", float(coeff.q)))
            else:
                numer.insert(0, self(coeff))
        first = numer[0] if numer else ("num", 1.0)
        tree = chain(first, [("mul", f) for f in numer[1:]] + [("div", d) for d in denom])
        return ("neg", tree) if negative else tree
