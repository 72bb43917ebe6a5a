"""Safe arithmetic expressions: parse, print, compile to numpy or torch.

User text is tokenised and parsed by the small recursive-descent parser below; it is
never handed to ``eval``, ``exec``, ``sympify`` or anything else that runs Python.
Only this syntax exists:

    numbers (1, 2.5, .5, 1e-3), names, pi, e, + - * / ** (also ^), unary minus,
    parentheses and calls of the functions in :data:`FUNCTIONS`.

A parsed expression is a tree of tuples (JSON-friendly, hashable):

    ("num", 2.0)  ("const", "pi")  ("var", "x")  ("tmp", 3)
    ("neg", a)  ("add", a, b)  ("sub", a, b)  ("mul", a, b)  ("div", a, b)  ("pow", a, b)
    ("call", "sin", a)

``("tmp", i)`` only appears in compiled programs (common subexpressions, see symbolic.py).

``detach(a)`` passes its value through and stops the gradient (torch's ``.detach()``): nothing
that reaches the output only through a detach has a gradient path (see :func:`gradient_paths`).

Intermediate names (``parse(text, let=[("z", "x + y"), ("f", "z**2")])``) are substituted into
the tree, so everything downstream sees one plain tree; the :class:`Expression` keeps each
definition too, for printing and for drawing the computation.
"""

from __future__ import annotations

import math
import operator
import re
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from .errors import GdrunError, closest

#: Functions a user may call, by name. ``sign`` is internal: it appears in derivatives of abs.
#: ``detach`` is the identity whose derivative is 0: no gradient flows back through it.
FUNCTIONS = ("sin", "cos", "tan", "exp", "log", "sqrt", "abs", "tanh", "sinh", "cosh", "detach")
INTERNAL_FUNCTIONS = FUNCTIONS + ("sign",)
CONSTANTS = {"pi": math.pi, "e": math.e}
#: Grid generators, allowed only where data columns are generated (``parse(text, grids=True)``):
#: name -> allowed numbers of (constant) arguments, as numpy's linspace/arange and Python's range.
GRIDS = {"linspace": (3,), "arange": (2, 3), "range": (2, 3)}
BINARY = ("add", "sub", "mul", "div", "pow")

MAX_LENGTH = 10_000
MAX_DEPTH = 100  # nesting levels; keeps the parser, sympy and every tree walk inside Python's recursion limit
_PYTHON_WORDS = {
    "and", "as", "assert", "async", "await", "break", "class", "continue", "def", "del", "elif",
    "else", "except", "finally", "for", "from", "global", "if", "import", "in", "is", "lambda",
    "nonlocal", "not", "or", "pass", "raise", "return", "try", "while", "with", "yield",
    "None", "True", "False",
}  # fmt: skip

_TOKEN = re.compile(
    r"\s*(?:(?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<op>\*\*|[-+*/^(),]))",
    re.ASCII,  # digits are 0-9 only: float() would read '٢' as 2
)


@dataclass(frozen=True)
class Expression:
    """A parsed expression: its source text, tree and free variables (natural order).

    With intermediate names (``let``), ``tree`` has every definition substituted and
    ``variables`` are its free variables; ``definitions`` holds each name with its own tree (which
    may use earlier names), in order, and ``body`` the expression's own tree (None without any).
    """

    text: str
    tree: tuple
    variables: tuple[str, ...]
    definitions: tuple[tuple[str, tuple], ...] = ()
    body: tuple | None = None

    def __str__(self) -> str:
        if not self.definitions:
            return format_tree(self.tree)
        where = ", ".join(f"{name} = {format_tree(tree)}" for name, tree in self.definitions)
        return f"{format_tree(self.body if self.body is not None else self.tree)} where {where}"


def quote(text: str, limit: int = 60) -> str:
    """``text`` quoted for an error message, cut short when long."""
    return repr(text) if len(text) <= limit else repr(text[:limit]) + "..."


def natural_key(name: str) -> tuple:
    """Sort key putting x2 before x10."""
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name))


def parse(text: Any, grids: bool = False, let: Any = None) -> Expression:
    """Parse ``text`` into an :class:`Expression`, or raise a one-line :class:`GdrunError`.

    With ``grids``, calls such as ``range(-400, 400)`` or ``linspace(0, 1, 50)`` with constant
    arguments are allowed too; they become ``("grid", name, (args...))`` nodes.

    ``let`` gives intermediate names: (name, text) pairs, or a mapping, in order; each definition
    may use the variables and the names defined before it, and each must be used by the expression
    (directly or through a later definition).
    """
    if let:
        return _parse_with_definitions(text, grids, let)
    if not isinstance(text, str):
        raise GdrunError(f"expression must be a string, got {text!r}")
    if not text.strip():
        raise GdrunError("expression is empty")
    if len(text) > MAX_LENGTH:
        raise GdrunError(f"expression is longer than {MAX_LENGTH} characters")
    tree = _Parser(text, grids).parse()
    if tree_depth(tree) > MAX_DEPTH + 1:  # chains of powers (x**x**...) nest without brackets
        raise GdrunError(f"invalid expression {quote(text)}: nested deeper than {MAX_DEPTH} levels")
    check_finite_constants(tree, text)
    return Expression(text, tree, tuple(sorted(free_variables(tree), key=natural_key)))


#: The most operations an expression may have once its definitions are substituted (a chain of
#: definitions that each use the one before twice doubles the tree at every link).
MAX_NODES = 100_000


def _let_pairs(let: Any) -> list[tuple[str, str]]:
    """``let`` (a mapping, or a sequence of (name, text) pairs) as a list of pairs."""
    items = list(let.items()) if isinstance(let, dict) else list(let)
    pairs = []
    for item in items:
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise GdrunError(f"let must hold (name, expression) pairs, got {item!r}"[:200])
        pairs.append((item[0], item[1]))
    return pairs


def check_let_name(name: Any) -> str:
    """``name`` if it may be an intermediate name; a one-line GdrunError saying why not otherwise."""
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name, re.ASCII):
        raise GdrunError(f"let name {quote(str(name), 40)} is not a name (letters, digits and '_', not first a digit)")
    if name.startswith("_"):
        raise GdrunError(f"let name {name!r} may not start with '_'")
    if name in FUNCTIONS:
        raise GdrunError(f"let name {name!r} is a function; choose another name")
    if name in CONSTANTS:
        raise GdrunError(f"let name {name!r} is a constant ({name} = {CONSTANTS[name]!r}); choose another name")
    if name in _PYTHON_WORDS:
        raise GdrunError(f"let name {name!r} is a Python word; choose another name")
    return name


def _parse_with_definitions(text: Any, grids: bool, let: Any) -> Expression:
    pairs = _let_pairs(let)
    names: list[str] = []
    for name, _ in pairs:
        check_let_name(name)
        if name in names:
            raise GdrunError(f"let {name} is defined twice")
        names.append(name)
    defined = set(names)
    definitions: list[tuple[str, tuple]] = []
    for i, (name, definition) in enumerate(pairs):
        try:
            tree = parse(definition, grids).tree
        except GdrunError as exc:
            raise GdrunError(f"let {name}: {exc}") from None
        used = free_variables(tree) & defined
        if name in used:
            raise GdrunError(f"let {name} uses itself")
        later = [n for n in names[i + 1 :] if n in used]
        if later:
            raise GdrunError(f"let {name} uses {later[0]}, which is defined after it")
        definitions.append((name, tree))
    body = parse(text, grids).tree
    needed = free_variables(body) & defined
    for name, tree in reversed(definitions):
        if name in needed:
            needed |= free_variables(tree) & defined
    for name in names:
        if name not in needed:
            raise GdrunError(f"let {name} is not used by the expression")
    expanded: dict[str, tuple] = {}
    for name, tree in definitions:
        expanded[name] = substitute(tree, expanded)
    tree = substitute(body, expanded)
    if tree_size(tree) > MAX_NODES:
        raise GdrunError(f"invalid expression {quote(text)}: with its definitions substituted it has more than {MAX_NODES:,} operations")
    if tree_depth(tree) > MAX_DEPTH + 1:
        raise GdrunError(f"invalid expression {quote(text)}: with its definitions substituted it is nested deeper than {MAX_DEPTH} levels")
    check_finite_constants(tree, text)
    variables = tuple(sorted(free_variables(tree), key=natural_key))
    return Expression(text, tree, variables, tuple(definitions), body)


def tree_size(tree: tuple) -> int:
    """The number of nodes of ``tree`` written out, counted once per shared subtree (a tree built by
    substitution shares its parts, and writing it out may be exponentially larger)."""
    sizes: dict[int, int] = {}
    stack = [(tree, False)]
    while stack:
        node, done = stack.pop()
        if id(node) in sizes:
            continue
        tag = node[0]
        children = node[1:] if tag in BINARY or tag == "neg" else node[2:] if tag == "call" else ()
        if done:
            sizes[id(node)] = 1 + sum(sizes[id(c)] for c in children)
        else:
            stack.append((node, True))
            stack.extend((c, False) for c in children if id(c) not in sizes)
    return sizes[id(tree)]


class _Parser:
    def __init__(self, text: str, grids: bool = False):
        self.text = text
        self.grids = grids
        self.tokens = self._tokenize(text)
        self.pos = 0
        self.level = -1  # the whole expression is level 0; each bracket, call or operator nesting adds one

    def _fail(self, message: str) -> GdrunError:
        return GdrunError(f"invalid expression {quote(self.text)}: {message}")

    def _tokenize(self, text: str) -> list[tuple[str, str, int]]:
        tokens, i = [], 0
        while i < len(text):
            if text[i:].strip(" \t\n\r\f\v") == "":
                break
            m = _TOKEN.match(text, i)
            if not m:
                j = i + len(text[i:]) - len(text[i:].lstrip(" \t\n\r\f\v"))
                hint = (" (names may not start with '_')" if text[j] == "_"
                        else " (only ASCII letters, digits and operators)" if not text[j].isascii() else "")  # fmt: skip
                raise self._fail(f"unexpected character {text[j]!r} at position {j}{hint}")
            kind = m.lastgroup
            value = m.group(kind)
            start = m.start(kind)
            if kind == "name":
                if value.startswith("_"):
                    raise self._fail(f"name {value!r} at position {start}: names may not start with '_'")
                if value in _PYTHON_WORDS:
                    raise self._fail(f"{value!r} at position {start} is not allowed in an expression")
            if kind == "num" and i < len(text) and m.end() < len(text):
                nxt = text[m.end()]
                if nxt.isalpha() or nxt == "_" or nxt == ".":
                    raise self._fail(
                        f"unexpected {nxt!r} after the number {value!r} at position {m.end()}"
                        + (f" (write {value}*{nxt} for a product)" if nxt.isalpha() else "")
                    )
            tokens.append((kind, value, start))
            i = m.end()
        return tokens

    def _peek(self) -> tuple[str, str, int] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _take(self, value: str | None = None) -> tuple[str, str, int] | None:
        tok = self._peek()
        if tok is not None and (value is None or (tok[0] == "op" and tok[1] == value)):
            self.pos += 1
            return tok
        return None

    def _describe(self, tok) -> str:
        return "the end of the expression" if tok is None else f"{tok[1]!r} at position {tok[2]}"

    def parse(self) -> tuple:
        tree = self._sum()
        tok = self._peek()
        if tok is not None:
            raise self._fail(f"unexpected {self._describe(tok)}")
        return tree

    def _enter(self) -> None:
        self.level += 1
        if self.level > MAX_DEPTH:
            raise self._fail(f"nested deeper than {MAX_DEPTH} levels")

    def _sum(self) -> tuple:
        self._enter()
        first, rest = self._product(), []
        while (tok := self._peek()) is not None and tok[0] == "op" and tok[1] in "+-":
            self.pos += 1
            rest.append(("add" if tok[1] == "+" else "sub", self._product()))
        self.level -= 1
        return chain(first, rest)

    def _product(self) -> tuple:
        first, rest = self._unary(), []
        while (tok := self._peek()) is not None and tok[0] == "op" and tok[1] in ("*", "/"):
            self.pos += 1
            rest.append(("mul" if tok[1] == "*" else "div", self._unary()))
        return chain(first, rest)

    def _unary(self) -> tuple:
        if not (self._take("-") or self._take("+")):
            return self._power()
        negate = self.tokens[self.pos - 1][1] == "-"
        self._enter()
        tree = self._unary()
        self.level -= 1
        return ("neg", tree) if negate else tree

    def _power(self) -> tuple:
        base = self._atom()
        if self._take("**") or self._take("^"):
            self._enter()
            exponent = self._unary()  # right-associative: 2**3**2 == 2**9, and 2**-1 works
            self.level -= 1
            return ("pow", base, exponent)
        return base

    def _atom(self) -> tuple:
        tok = self._peek()
        if tok is None:
            raise self._fail("it ends where a number, name or '(' was expected")
        kind, value, start = tok
        self.pos += 1
        if kind == "num":
            number = float(value)
            if not math.isfinite(number):
                raise self._fail(f"number {quote(value, 20)} is too large")
            return ("num", number)
        if kind == "name":
            if self._take("("):
                if self.grids and value in GRIDS:
                    return self._grid(value)
                if value not in FUNCTIONS:
                    raise self._fail(
                        f"unknown function {value!r}{closest(value, FUNCTIONS)}; "
                        f"functions: {', '.join(FUNCTIONS)}"
                    )
                arg = self._sum()
                if not self._take(")"):
                    raise self._fail(f"expected ')' to close {value}( but found {self._describe(self._peek())}")
                return ("call", value, arg)
            if value in FUNCTIONS:
                raise self._fail(f"function {value!r} at position {start} needs an argument: {value}(...)")
            if value in CONSTANTS:
                return ("const", value)
            return ("var", value)
        if value == "(":
            tree = self._sum()
            if not self._take(")"):
                raise self._fail(f"expected ')' but found {self._describe(self._peek())}")
            return tree
        raise self._fail(f"unexpected {self._describe(tok)}")


    def _grid(self, name: str) -> tuple:
        args = [self._sum()]
        while self._take(","):
            args.append(self._sum())
        if not self._take(")"):
            raise self._fail(f"expected ')' to close {name}( but found {self._describe(self._peek())}")
        if len(args) not in GRIDS[name]:
            counts = " or ".join(str(c) for c in GRIDS[name])
            raise self._fail(f"{name}() takes {counts} arguments, got {len(args)}")
        values = [constant_value(arg, self.text) for arg in args]
        if any(v is None for v in values):
            raise self._fail(f"the arguments of {name}() must be numbers")
        return ("grid", name, tuple(values))


#: chains of at least this many operations are built balanced (see :func:`chain`)
BALANCE_FROM = 32
_INVERSE = {"add": "sub", "sub": "add", "mul": "div", "div": "mul"}


def chain(first: tuple, rest: Sequence[tuple[str, tuple]]) -> tuple:
    """``first op1 t1 op2 t2 ...`` as a tree, the ops all "add"/"sub" or all "mul"/"div".

    A product, and a short sum, nest to the left, as written. A long sum (of 1,000 squares) is
    built balanced, so that its depth grows as log2 of its length and every tree walk, sympy and
    the evaluation stay far from Python's recursion limit: ``a - b + c - d`` becomes
    ``(a - b) + (c - d)`` (the same value, up to rounding). Products stay limited by the depth
    limit: the derivatives of a product of n variables have n**2 factors in all.
    """
    if len(rest) < BALANCE_FROM or rest[0][0] in ("mul", "div"):
        tree = first
        for op, term in rest:
            tree = (op, tree, term)
        return tree
    plus = "add" if rest[0][0] in ("add", "sub") else "mul"
    return _balanced([(plus, first), *rest], plus)


def _balanced(items: Sequence[tuple[str, tuple]], plus: str) -> tuple:
    """The balanced tree of ``items`` [(op, term)], whose first op is ``plus``."""
    if len(items) == 1:
        return items[0][1]
    mid = len(items) // 2
    op = items[mid][0]
    right = items[mid:] if op == plus else [(_INVERSE[o], t) for o, t in items[mid:]]  # a - (b - c) = a - b + c
    return (op, _balanced(items[:mid], plus), _balanced(right, plus))


def tree_depth(tree: tuple) -> int:
    """Depth of ``tree``, computed without recursion (the tree may be very deep)."""
    deepest, stack = 0, [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        tag = node[0]
        children = node[1:] if tag in BINARY or tag == "neg" else node[2:] if tag == "call" else ()
        stack.extend((child, depth + 1) for child in children)
    return deepest


def gradient_paths(tree: tuple) -> set[str]:
    """Names of the variables that reach the output of ``tree`` along a path that does not pass
    through a ``detach``: the ones with a gradient (x in ``detach(x + y)**2 + y**3`` has none)."""
    tag = tree[0]
    if tag == "var":
        return {tree[1]}
    if tag in BINARY:
        return gradient_paths(tree[1]) | gradient_paths(tree[2])
    if tag == "neg":
        return gradient_paths(tree[1])
    if tag == "call":
        return set() if tree[1] == "detach" else gradient_paths(tree[2])
    return set()


def free_variables(tree: tuple) -> set[str]:
    """Names of the variables in ``tree``."""
    tag = tree[0]
    if tag == "var":
        return {tree[1]}
    if tag in BINARY:
        return free_variables(tree[1]) | free_variables(tree[2])
    if tag == "neg":
        return free_variables(tree[1])
    if tag == "call":
        return free_variables(tree[2])
    return set()


def check_finite_constants(tree: tuple, text: str) -> None:
    """Reject constant parts that are not finite real numbers (``1/0``, ``log(0)``, ``sqrt(-1)``),
    and constant powers that overflow (``9**9**9``) before anything tries to evaluate them exactly
    (sympy would compute the integer 9**387420489)."""
    constant_value(tree, text)


def constant_value(node: tuple, text: str) -> float | None:
    """The value of ``node`` if it is constant (None if it has variables); a constant part that is
    not a finite real number is a GdrunError (``text`` is quoted in it)."""
    tag = node[0]
    if tag == "num":
        return node[1]
    if tag == "const":
        return CONSTANTS[node[1]]
    if tag in ("var", "tmp", "grid"):
        return None
    parts = [constant_value(child, text) for child in (node[2:] if tag == "call" else node[1:])]
    if any(p is None for p in parts):
        return None
    try:
        result = _SCALAR_OPS[node[1] if tag == "call" else tag](*parts)
    except OverflowError:
        raise GdrunError(f"invalid expression {quote(text)}: the constant {format_tree(node)} overflows") from None
    except (ZeroDivisionError, ValueError):
        result = math.nan
    if isinstance(result, complex) or not math.isfinite(result):
        raise GdrunError(f"invalid expression {quote(text)}: the constant {format_tree(node)} is not a finite real number")
    return result


_SCALAR_OPS: dict[str, Callable[..., float]] = {
    "neg": lambda a: -a,
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
    "pow": math.pow,
    "sin": math.sin,
    "cos": math.cos,
    "tan": math.tan,
    "exp": math.exp,
    "log": math.log,
    "sqrt": math.sqrt,
    "abs": abs,
    "tanh": math.tanh,
    "sinh": math.sinh,
    "cosh": math.cosh,
    "sign": lambda a: float((a > 0) - (a < 0)),
    "detach": lambda a: a,
}

# ---------------------------------------------------------------------------- printing

_PRECEDENCE = {"add": 1, "sub": 1, "mul": 2, "div": 2, "neg": 3, "pow": 4}
_SYMBOL = {"add": " + ", "sub": " - ", "mul": "*", "div": "/", "pow": "**"}


def format_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else repr(float(value))


def format_tree(tree: tuple) -> str:
    """Print ``tree`` with the fewest parentheses that keep its meaning."""
    tag = tree[0]
    if tag == "num":
        text = format_number(tree[1])
        return f"({text})" if tree[1] < 0 else text
    if tag in ("const", "var"):
        return tree[1]
    if tag == "tmp":
        return f"_t{tree[1]}"
    if tag == "call":
        return f"{tree[1]}({format_tree(tree[2])})"
    if tag == "grid":
        return f"{tree[1]}({', '.join(format_number(a) for a in tree[2])})"
    if tag == "neg":
        return "-" + _wrap(tree[1], 3, strict=False)  # --x parses back as it prints, one level a sign
    prec = _PRECEDENCE[tag]
    if tag == "pow":  # right-associative
        left = _wrap(tree[1], prec, strict=True)
        right = _wrap(tree[2], prec, strict=False)
    else:
        left = _wrap(tree[1], prec, strict=False)
        right = _wrap(tree[2], prec, strict=True)  # the tree is left-nested: x + (y + z) keeps its brackets
    return left + _SYMBOL[tag] + right


def _wrap(tree: tuple, prec: int, strict: bool) -> str:
    inner = _PRECEDENCE.get(tree[0], 5)
    text = format_tree(tree)
    if inner < prec or (strict and inner == prec):
        return f"({text})"
    return text


# ---------------------------------------------------------------------------- compiling


@dataclass(frozen=True)
class Program:
    """Straight-line code: ``temps`` are evaluated in order (each may use earlier ``("tmp", i)``),
    then ``outputs``. Inputs are ``("var", name)`` for names in ``inputs``."""

    inputs: tuple[str, ...]
    temps: tuple[tuple, ...]
    outputs: tuple[tuple, ...]

    def to_json(self) -> dict:
        return {"inputs": list(self.inputs), "temps": list(self.temps), "outputs": list(self.outputs)}

    @classmethod
    def from_json(cls, data: dict) -> "Program":
        def tup(node):
            return tuple(tup(x) if isinstance(x, list) else x for x in node)

        program = cls(
            tuple(data["inputs"]),
            tuple(tup(t) for t in data["temps"]),
            tuple(tup(t) for t in data["outputs"]),
        )
        for node in program.temps + program.outputs:
            _validate(node)
        return program


def _validate(node: Any) -> None:
    """Check that a tree (e.g. one read back from the derivative cache) only uses known nodes."""
    ok = isinstance(node, tuple) and node and node[0] in _NODE_ARITY and len(node) == _NODE_ARITY[node[0]]
    if ok and node[0] == "call":
        ok = node[1] in INTERNAL_FUNCTIONS and _validate(node[2]) is None
    elif ok and node[0] in BINARY:
        ok = _validate(node[1]) is None and _validate(node[2]) is None
    elif ok and node[0] == "neg":
        _validate(node[1])
    elif ok and node[0] == "num":
        ok = isinstance(node[1], (int, float))
    elif ok and node[0] == "const":
        ok = node[1] in CONSTANTS
    elif ok and node[0] in ("var", "tmp"):
        ok = isinstance(node[1], (str, int))
    if not ok:
        raise ValueError(f"not an expression node: {node!r}")


_NODE_ARITY = {"num": 2, "const": 2, "var": 2, "tmp": 2, "neg": 2, "call": 3, **{b: 3 for b in BINARY}}


class Namespace:
    """The array functions a compiled expression calls (numpy's or torch's)."""

    def __init__(self, module: Any):
        self.module = module
        self.functions = {name: getattr(module, name) for name in INTERNAL_FUNCTIONS if name != "detach"}
        self.functions["detach"] = detach


def detach(value: Any) -> Any:
    """The value, cut from the autograd graph: a tensor's ``.detach()``; numpy arrays and numbers
    (which carry no graph) pass through as they are."""
    method = getattr(value, "detach", None)
    return method() if method is not None else value


def compile_program(program: Program, ns: Namespace) -> Callable[[dict[str, Any]], list[Any]]:
    """Turn ``program`` into ``run(inputs) -> outputs`` evaluating with ``ns``'s functions.

    ``inputs`` maps each input name to an array; arithmetic broadcasts as numpy/torch do.
    """
    temps = [_compile(node, ns) for node in program.temps]
    outputs = [_compile(node, ns) for node in program.outputs]
    run_outputs = _run_all(outputs)
    if not temps:
        return run_outputs

    def run(inputs: dict[str, Any]) -> list[Any]:
        env: dict[Any, Any] = dict(inputs)
        for i, temp in enumerate(temps):
            env[i] = temp(env)
        return run_outputs(env)

    return run


def _run_all(outputs: list[Callable[[dict], Any]]) -> Callable[[dict], list[Any]]:
    """``env -> [out(env) for out in outputs]``, unrolled for the usual one to three outputs (the
    loop of a list comprehension costs as much as a small array operation)."""
    if len(outputs) == 1:
        (o0,) = outputs
        return lambda env: [o0(env)]
    if len(outputs) == 2:
        o0, o1 = outputs
        return lambda env: [o0(env), o1(env)]
    if len(outputs) == 3:
        o0, o1, o2 = outputs
        return lambda env: [o0(env), o1(env), o2(env)]
    return lambda env: [out(env) for out in outputs]


def compile_tree(tree: tuple, ns: Namespace) -> Callable[[dict[str, Any]], Any]:
    """Compile one tree into ``f(inputs) -> array``."""
    return _compile(tree, ns)


_OPERATORS = {"add": operator.add, "sub": operator.sub, "mul": operator.mul, "div": operator.truediv}


def _leaf(node: tuple) -> tuple[str, Any] | None:
    """``("const", value)`` for a number or constant, ``("key", name)`` for a variable or
    temporary: a leaf a closure can use directly, without a call of its own; None otherwise."""
    tag = node[0]
    if tag == "num":
        return ("const", float(node[1]))
    if tag == "const":
        return ("const", CONSTANTS[node[1]])
    if tag in ("var", "tmp"):
        return ("key", node[1])
    return None


def _compile(node: tuple, ns: Namespace) -> Callable[[dict], Any]:
    """A closure ``env -> value`` for ``node``. An operation whose operands are leaves (numbers,
    variables, temporaries) reads them itself: the same operations in the same order, with fewer
    Python calls (a small expression costs about as much in calls as in array arithmetic)."""
    tag = node[0]
    leaf = _leaf(node)
    if leaf is not None:
        kind, value = leaf
        if kind == "const":
            return lambda env: value
        return lambda env: env[value]
    if tag == "neg":
        inner = _leaf(node[1])
        if inner is not None and inner[0] == "key":
            key = inner[1]
            return lambda env: -env[key]
        a = _compile(node[1], ns)
        return lambda env: -a(env)
    if tag == "call":
        folded = constant_value(node, format_tree(node))
        if folded is not None:  # tanh(2): torch's functions take tensors, not Python numbers
            return lambda env: folded
        fn = ns.functions[node[1]]
        inner = _leaf(node[2])
        if inner is not None and inner[0] == "key":
            key = inner[1]
            return lambda env: fn(env[key])
        a = _compile(node[2], ns)
        return lambda env: fn(a(env))
    if tag == "pow":
        if node[2][0] == "num":
            exponent = float(node[2][1])
            base = _leaf(node[1])
            if base is not None and base[0] == "key":
                key = base[1]
                if exponent == 2.0:
                    return lambda env: env[key] ** 2
                return lambda env: env[key] ** exponent
            a = _compile(node[1], ns)
            if exponent == 2.0:
                return lambda env: a(env) ** 2
            return lambda env: a(env) ** exponent
        a, b = _compile(node[1], ns), _compile(node[2], ns)
        return lambda env: a(env) ** b(env)
    if tag not in _OPERATORS:
        raise ValueError(f"unknown node {tag!r}")
    return _binary(_OPERATORS[tag], node[1], node[2], ns)


def _binary(op: Callable[[Any, Any], Any], left: tuple, right: tuple, ns: Namespace) -> Callable[[dict], Any]:
    """``op(left, right)`` (``operator.add`` is ``+`` itself), reading leaf operands directly."""
    ka, kb = _leaf(left), _leaf(right)
    if ka is not None and kb is not None:
        (kind_a, a), (kind_b, b) = ka, kb
        if kind_a == "key" and kind_b == "key":
            return lambda env: op(env[a], env[b])
        if kind_a == "key":
            return lambda env: op(env[a], b)
        if kind_b == "key":
            return lambda env: op(a, env[b])
        return lambda env: op(a, b)
    if ka is not None:
        kind_a, a = ka
        g = _compile(right, ns)
        if kind_a == "key":
            return lambda env: op(env[a], g(env))
        return lambda env: op(a, g(env))
    if kb is not None:
        kind_b, b = kb
        f = _compile(left, ns)
        if kind_b == "key":
            return lambda env: op(f(env), env[b])
        return lambda env: op(f(env), b)
    f, g = _compile(left, ns), _compile(right, ns)
    return lambda env: op(f(env), g(env))


def substitute(tree: tuple, mapping: dict[str, tuple]) -> tuple:
    """Replace variables by trees (used to build n-dimensional built-ins from templates)."""
    tag = tree[0]
    if tag == "var" and tree[1] in mapping:
        return mapping[tree[1]]
    if tag in BINARY:
        return (tag, substitute(tree[1], mapping), substitute(tree[2], mapping))
    if tag == "neg":
        return ("neg", substitute(tree[1], mapping))
    if tag == "call":
        return ("call", tree[1], substitute(tree[2], mapping))
    return tree


def sum_trees(trees: Sequence[tuple]) -> tuple:
    return chain(trees[0], [("add", t) for t in trees[1:]])
