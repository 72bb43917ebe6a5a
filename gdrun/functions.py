"""Built-in objective functions: one registry, each entry with its formula, domain and known minima.

``resolve(name_or_expression, dim, let)`` is the single entry point: a registered name gives the
built-in, anything else is parsed as an expression (safely, see expr.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable

from .errors import GdrunError
from .expr import gradient_paths, parse
from .inputs import MAX_DIM
from .problems import ExpressionObjective, SeparableObjective, separable

Objective = ExpressionObjective | SeparableObjective


@dataclass(frozen=True)
class Minimum:
    point: tuple[float, ...]
    value: float
    #: ``False`` where the function has no gradient at the minimum (Ackley at 0: the symbolic
    #: gradient and autograd both give nan there, 0/0).
    differentiable: bool = True


@dataclass(frozen=True)
class BuiltinFunction:
    name: str
    description: str
    make: Callable[[int], Objective]
    #: ``None`` when the dimension is free (set with ``--dim``); otherwise the fixed dimension.
    fixed_dim: int | None
    #: Every global minimum in the domain for the dimension asked (value and point to full double precision).
    minima: Callable[[int], list[Minimum]]
    default_init: Callable[[int], list[float]]
    #: One interval holding every variable's range; the minima are global over this whole cube.
    domain: tuple[float, float]
    default_dim: int = 2
    notes: str = ""
    aliases: tuple[str, ...] = field(default=())
    #: The usual per-variable ranges where they differ between variables (McCormick, six-hump
    #: camel); ``None`` when every variable ranges over ``domain``.
    bounds: tuple[tuple[float, float], ...] | None = None
    #: Smallest dimension that makes sense (Rosenbrock's sum over pairs needs 2).
    min_dim: int = 1

    def dimension(self, dim: int | None) -> int:
        if self.fixed_dim is not None:
            if dim is not None and dim != self.fixed_dim:
                raise GdrunError(f"function '{self.name}' is {self.fixed_dim}-dimensional; dim={dim} is not possible")
            return self.fixed_dim
        dim = self.default_dim if dim is None else dim
        if dim < self.min_dim:
            raise GdrunError(f"dim must be at least {self.min_dim} for '{self.name}', got {dim}")
        if dim > MAX_DIM:
            raise GdrunError(f"dim must be at most {MAX_DIM:,}, got {dim:,}")
        return dim

    def box(self, dim: int) -> list[tuple[float, float]]:
        """The usual range of each of the ``dim`` variables (``bounds``, else ``domain`` for all)."""
        if self.bounds is not None:
            return list(self.bounds)
        return [self.domain] * dim


REGISTRY: dict[str, BuiltinFunction] = {}


def register(fn: BuiltinFunction) -> BuiltinFunction:
    REGISTRY[fn.name] = fn
    return fn


def _expression(text: str) -> Callable[[int], ExpressionObjective]:
    objective = ExpressionObjective(parse(text))
    return lambda dim: objective


def _separable(terms: list[str], outer: str, window: int = 1) -> Callable[[int], SeparableObjective]:
    """An n-dimensional objective, one object per dimension (see problems.separable)."""
    return lru_cache(maxsize=16)(lambda dim: separable(dim, terms, outer, window))


def _minima(*minima: tuple[tuple[float, ...], float]) -> Callable[[int], list[Minimum]]:
    listed = [Minimum(tuple(float(p) for p in point), float(value)) for point, value in minima]
    return lambda dim: list(listed)


def _init(*point: float) -> Callable[[int], list[float]]:
    return lambda dim: [float(p) for p in point]


register(
    BuiltinFunction(
        name="x2",
        description="the parabola x^2, the first example of every course",
        make=_expression("x**2"),
        fixed_dim=1,
        minima=lambda dim: [Minimum((0.0,), 0.0)],
        default_init=lambda dim: [7.5],
        domain=(-10.0, 10.0),
        notes=(
            "One minimum f(0) = 0. Each gradient step multiplies x by 1 - 2 lr: lr 0.1 converges, lr 0.5 lands on 0 "
            "in one step, lr 1 oscillates between -x and x, lr > 1 diverges."
        ),
    )
)
register(
    BuiltinFunction(
        name="sphere",
        description="sum of squares, convex in any dimension",
        make=_separable(["a**2"], "S1"),
        fixed_dim=None,
        minima=lambda dim: [Minimum((0.0,) * dim, 0.0)],
        default_init=lambda dim: [1.0] * dim,
        domain=(-5.12, 5.12),
        notes="De Jong's F1. Convex, one minimum; the domain [-5.12, 5.12] is De Jong's (SFU uses the same).",
    )
)

# ---------------------------------------------------------------------------- n-dimensional

register(
    BuiltinFunction(
        name="rosenbrock",
        description="Rosenbrock's banana valley, sum over consecutive pairs (n >= 2)",
        make=_separable(["100*(b - a**2)**2 + (1 - a)**2"], "S1", window=2),
        fixed_dim=None,
        minima=lambda dim: [Minimum((1.0,) * dim, 0.0)],
        default_init=lambda dim: [-1.2 if i % 2 == 0 else 1.0 for i in range(dim)],
        domain=(-2.048, 2.048),
        min_dim=2,
        notes=(
            "The n-dimensional form sum_{i<n} 100(x_{i+1} - x_i^2)^2 + (1 - x_i)^2 (Wikipedia, SFU, scipy.optimize.rosen "
            "agree); one global minimum f(1, ..., 1) = 0. For n = 2 and 3 it is the only minimum; from n = 4 on there "
            "is also a local one, f = 3.70 at (-0.7757, 0.6131, 0.3821, 0.1460) for n = 4, f near 4 close to "
            "(-1, 1, ..., 1) for larger n (Wikipedia: exactly two minima for 4 <= n <= 7). Domain: De Jong's "
            "[-2.048, 2.048]; SFU gives [-5, 10], Wikipedia leaves it unbounded. Default init (-1.2, 1, -1.2, 1, ...) "
            "is Rosenbrock's (1960) classic start, repeated as More, Garbow & Hillstrom do for their extended form; "
            "gradient descent goes from it to (1, ..., 1) for n = 2 to 7."
        ),
    )
)
register(
    BuiltinFunction(
        name="rastrigin",
        description="a parabola covered in cosine ripples: about 10^n local minima",
        make=_separable(["a**2 - 10*cos(2*pi*a)"], "10*n + S1"),
        fixed_dim=None,
        minima=lambda dim: [Minimum((0.0,) * dim, 0.0)],
        default_init=lambda dim: [0.4] * dim,
        domain=(-5.12, 5.12),
        notes=(
            "f = 10n + sum(x_i^2 - 10 cos(2 pi x_i)); one global minimum f(0, ..., 0) = 0 (Wikipedia, SFU, scipy "
            "agree), a local minimum near every integer point. Plain gradient descent stops in whichever ripple it "
            "starts in: the default init 0.4 lies in the global minimum's basin (|x_i| < about 0.5); try "
            "--init 2.5 to see it get stuck."
        ),
    )
)
register(
    BuiltinFunction(
        name="ackley",
        description="Ackley's function: a nearly flat, rippled plateau around one deep funnel",
        make=_separable(["a**2", "cos(2*pi*a)"], "-20*exp(-0.2*sqrt(S1/n)) - exp(S2/n) + 20 + e"),
        fixed_dim=None,
        minima=lambda dim: [Minimum((0.0,) * dim, 0.0, differentiable=False)],
        default_init=lambda dim: [0.4] * dim,
        domain=(-32.768, 32.768),
        notes=(
            "f = -20 exp(-0.2 sqrt(sum x_i^2 / n)) - exp(sum cos(2 pi x_i) / n) + 20 + e, with a = 20, b = 0.2, "
            "c = 2 pi (SFU's recommended constants; Wikipedia gives the 2-D case). One global minimum f(0, ..., 0) = 0, "
            "where the function is NOT differentiable: sqrt(|x|^2) is a cone tip, so the gradient there is undefined "
            "and both the symbolic gradient and autograd give nan (0/0); near 0 the gradient norm stays about "
            "4/sqrt(n) instead of shrinking, so a --tol stop never triggers. In floating point the value at 0 is "
            "within 1e-15 of 0. With a fixed learning rate, descent ends bouncing around 0 at a distance of about lr "
            "instead of converging. Default init 0.4 lies in the global minimum's basin (each |x_i| < about 0.5); "
            "from 0.8 or farther gradient descent stops in a ripple. Domain [-32.768, 32.768] (SFU, Jamil & Yang); "
            "Wikipedia plots [-5, 5]. scipy's benchmark docstring for Easom shows Ackley's formula by mistake (its "
            "code is Easom)."
        ),
    )
)
_ST_X = -2.903534027771177  # root of 4x^3 - 32x + 5 = 0 (the nearest double; -2.9035340277711771 to 17 digits)
_ST_VALUE = -39.166165703771415463893  # (x^4 - 16x^2 + 5x)/2 at that root, per variable, 60-digit mpmath
register(
    BuiltinFunction(
        name="styblinski_tang",
        description="Styblinski-Tang: a quartic well per variable, the deeper one on the negative side",
        make=_separable(["a**4 - 16*a**2 + 5*a"], "S1/2"),
        fixed_dim=None,
        minima=lambda dim: [Minimum((_ST_X,) * dim, _ST_VALUE * dim)],
        default_init=lambda dim: [0.0] * dim,
        domain=(-5.0, 5.0),
        notes=(
            "f = sum(x_i^4 - 16 x_i^2 + 5 x_i) / 2. Global minimum at x_i = -2.903534027771177 (the root of "
            "4x^3 - 32x + 5, solved to 60 digits with mpmath and rounded), f = -39.166165703771415 n; the other well, "
            "x_i = 2.746803, is local (-25.029 per variable), so there are 2^n - 1 local minima. Sources disagree: "
            "scipy's benchmark lists x_i = -2.903534018185960 (1e-8 off) and its docstring drops the /2 that its code "
            "has; SFU (and benchmarkfcns, copying it) lists -39.16599 n at -2.903534, a value 1.8e-4 n ABOVE the "
            "true minimum; argmin rounds to -39.16616 n; Wikipedia only brackets the value "
            "between -39.16617 n and -39.16616 n. Default init 0 (not stationary: the 5x term tilts it toward the "
            "global well); --init 1 ends in the local well."
        ),
    )
)

# ---------------------------------------------------------------------------- two-dimensional

register(
    BuiltinFunction(
        name="himmelblau",
        description="Himmelblau's function: four equal global minima",
        make=_expression("(x**2 + y - 11)**2 + (x + y**2 - 7)**2"),
        fixed_dim=2,
        minima=_minima(
            ((3.0, 2.0), 0.0),
            ((-2.805118086952745, 3.131312518250573), 0.0),
            ((-3.779310253377747, -3.2831859912861696), 0.0),
            ((3.5844283403304917, -1.8481265269644036), 0.0),
        ),
        default_init=_init(0.0, 0.0),
        domain=(-5.0, 5.0),
        notes=(
            "Four global minima, all f = 0; (3, 2) is exact, the other three are roots of the gradient solved to 60 "
            "digits (mpmath) and rounded to double (Wikipedia gives them to 6 decimals: (-2.805118, 3.131312), "
            "(-3.779310, -3.283186), (3.584428, -1.848126), which agree). A local maximum f = 181.617 sits at "
            "(-0.270845, -0.923039). Domain [-5, 5]."
        ),
    )
)
register(
    BuiltinFunction(
        name="beale",
        description="Beale's function: flat plateaus and sharp ridges toward the corners",
        make=_expression("(1.5 - x + x*y)**2 + (2.25 - x + x*y**2)**2 + (2.625 - x + x*y**3)**2"),
        fixed_dim=2,
        minima=_minima(((3.0, 0.5), 0.0)),
        default_init=_init(1.0, 1.0),
        domain=(-4.5, 4.5),
        notes="One global minimum f(3, 0.5) = 0, exact. Domain [-4.5, 4.5] (Wikipedia, SFU, scipy agree).",
    )
)
register(
    BuiltinFunction(
        name="booth",
        description="Booth's function: a tilted quadratic bowl",
        make=_expression("(x + 2*y - 7)**2 + (2*x + y - 5)**2"),
        fixed_dim=2,
        minima=_minima(((1.0, 3.0), 0.0)),
        default_init=_init(0.0, 0.0),
        domain=(-10.0, 10.0),
        notes="Convex quadratic, one minimum f(1, 3) = 0, exact. Domain [-10, 10] (Wikipedia, SFU agree).",
    )
)
register(
    BuiltinFunction(
        name="matyas",
        description="Matyas' function: a nearly flat valley along x = y",
        make=_expression("0.26*(x**2 + y**2) - 0.48*x*y"),
        fixed_dim=2,
        minima=_minima(((0.0, 0.0), 0.0)),
        default_init=_init(1.0, 2.0),
        domain=(-10.0, 10.0),
        notes=(
            "Convex quadratic, one minimum f(0, 0) = 0. Its Hessian has eigenvalues 1.0 (across x = y) and 0.04 "
            "(along it), condition number 25: gradient descent zig-zags, then crawls along the valley. scipy's "
            "docstring calls it multimodal; it is not. Domain [-10, 10] (Wikipedia, SFU agree)."
        ),
    )
)
register(
    BuiltinFunction(
        name="three_hump_camel",
        description="three-hump camel: one global and two local minima",
        make=_expression("2*x**2 - 1.05*x**4 + x**6/6 + x*y + y**2"),
        fixed_dim=2,
        minima=_minima(((0.0, 0.0), 0.0)),
        default_init=_init(-1.0, -1.0),
        domain=(-5.0, 5.0),
        notes=(
            "One global minimum f(0, 0) = 0; two local minima f = 0.298638 at +-(1.747552, -0.873776). "
            "Domain [-5, 5] (Wikipedia, SFU agree)."
        ),
    )
)
register(
    BuiltinFunction(
        name="six_hump_camel",
        description="six-hump camel: two global minima among six",
        make=_expression("(4 - 2.1*x**2 + x**4/3)*x**2 + x*y + (-4 + 4*y**2)*y**2"),
        fixed_dim=2,
        minima=_minima(
            ((0.08984201310031806, -0.7126564030207396), -1.0316284534898774),
            ((-0.08984201310031806, 0.7126564030207396), -1.0316284534898774),
        ),
        default_init=_init(-1.0, -1.0),
        domain=(-3.0, 3.0),
        bounds=((-3.0, 3.0), (-2.0, 2.0)),
        notes=(
            "Two global minima, symmetric about the origin, f = -1.0316284534898774 (roots of the gradient solved to "
            "60 digits with mpmath and rounded; scipy's optimization routines agree). Sources disagree on the digits: "
            "scipy's benchmark lists (0.08984201368301331, -0.7126564032704135), about 6e-10 off, with value "
            "-1.031628453489877 in its docstring but -1.031628 in its code; SFU and Wikipedia-derived tables round to "
            "(0.0898, -0.7126), -1.0316; smoof's documentation prints x1^0.75 where x1^4/3 belongs. The origin is a "
            "saddle point. Usual domain x in [-3, 3], y in [-2, 2] (SFU); scipy uses [-5, 5] for both. The minima are "
            "global on the whole square [-3, 3]^2 (and [-5, 5]^2) too."
        ),
    )
)
register(
    BuiltinFunction(
        name="goldstein_price",
        description="Goldstein-Price: steep walls (values up to 1e6) around a minimum of 3",
        make=_expression(
            "(1 + (x + y + 1)**2*(19 - 14*x + 3*x**2 - 14*y + 6*x*y + 3*y**2))"
            "*(30 + (2*x - 3*y)**2*(18 - 32*x + 12*x**2 + 48*y - 36*x*y + 27*y**2))"
        ),
        fixed_dim=2,
        minima=_minima(((0.0, -1.0), 3.0)),
        default_init=_init(-1.0, 1.0),
        domain=(-2.0, 2.0),
        notes=(
            "One global minimum f(0, -1) = 3, exact; local minima f = 30 at (-0.6, -0.4), 84 at (1.8, 0.2) and 840 at "
            "(1.2, 0.8). Domain [-2, 2] (Wikipedia, SFU agree). SFU also lists a rescaled, log-transformed variant; "
            "this is the original. Values span 3 to 1e6 over the domain, so a learning rate that suits the walls "
            "crawls near the minimum: an adaptive optimizer helps. From the default init (-1, 1) descent reaches the "
            "global minimum; from (-0.5, 0.5) it ends in the local one at (-0.6, -0.4)."
        ),
    )
)
register(
    BuiltinFunction(
        name="levi13",
        description="Levi function N.13: ripples in x and y over a parabolic bowl",
        make=_expression("sin(3*pi*x)**2 + (x - 1)**2*(1 + sin(3*pi*y)**2) + (y - 1)**2*(1 + sin(2*pi*y)**2)"),
        fixed_dim=2,
        minima=_minima(((1.0, 1.0), 0.0)),
        default_init=_init(0.9, 1.7),
        domain=(-10.0, 10.0),
        notes=(
            "Levi (Levy) N.13: one global minimum f(1, 1) = 0 (exact up to sin(3 pi) rounding, about 1e-31). "
            "Domain [-10, 10] (Wikipedia, SFU, scipy agree). Many local minima: sin^2(3 pi x) ripples every 1/3 in x, "
            "(1 + sin^2(2 pi y)) ripples in y; the global minimum's basin for gradient descent is only about "
            "(0.84, 1.16) x (0.2, 1.8), and the default init (0.9, 1.7) lies in it. The curvature at (1, 1) is about "
            "180 across x, so plain gradient descent needs lr < 0.011 there."
        ),
    )
)
register(
    BuiltinFunction(
        name="easom",
        description="Easom's function: flat everywhere except a narrow well at (pi, pi)",
        make=_expression("-cos(x)*cos(y)*exp(-((x - pi)**2 + (y - pi)**2))"),
        fixed_dim=2,
        minima=_minima(((3.141592653589793, 3.141592653589793), -1.0)),
        default_init=_init(2.0, 2.0),
        domain=(-100.0, 100.0),
        notes=(
            "One global minimum f(pi, pi) = -1. -cos(x) cos(y) is negative in every cell where cos(x) and cos(y) have "
            "the same sign, so each such cell holds a shallow local minimum (e.g. f = -8.1e-5 at (1.305, 1.305)); the "
            "global well is the cell (pi/2, 3pi/2)^2, where the default init (2, 2) lies. Away from the well f and the "
            "gradient vanish (the gradient is 7e-4 at 3 units from (pi, pi), 3e-11 at 5, below 1e-20 at 8), so "
            "gradient descent from a random start in [-100, 100]^2 does not move. Domain [-100, 100] (Wikipedia, SFU, "
            "scipy agree); scipy's benchmark docstring shows Ackley's formula and minimum (0, 0) by mistake while its "
            "code is this function."
        ),
    )
)
_MC = (-0.5471975511965977, -1.5471975511965979)  # (1/2 - pi/3, -1/2 - pi/3), each correctly rounded
register(
    BuiltinFunction(
        name="mccormick",
        description="McCormick's function: a sine ridge on a tilted bowl",
        make=_expression("sin(x + y) + (x - y)**2 - 1.5*x + 2.5*y + 1"),
        fixed_dim=2,
        minima=_minima((_MC, -1.9132229549810364)),
        default_init=_init(0.0, 0.0),
        domain=(-3.0, 4.0),
        bounds=((-1.5, 4.0), (-3.0, 4.0)),
        notes=(
            "Global minimum in closed form: x = 1/2 - pi/3, y = -1/2 - pi/3, f = -sqrt(3)/2 - pi/3 = "
            "-1.9132229549810364 (the gradient vanishes where x - y = 1 and cos(x + y) = -1/2). The function is "
            "unbounded below outside the box (local minima 2 pi apart along x - y = 1, each pi lower), so the domain "
            "matters: x in [-1.5, 4], y in [-3, 4] (Wikipedia, SFU, scipy's docstring); scipy's code uses y in "
            "[-3, 3], and its docstring formula (-x + 2y) differs from its code (-1.5x + 2.5y). The minimum listed by "
            "scipy (-0.5471975602214493, -1.547197559268372) is 9e-9 off, and tables print -1.9133 or "
            "-1.913222954981037 (2 ulp off). The minimum is also global on the square [-3, 4]^2."
        ),
    )
)


@dataclass(frozen=True)
class ResolvedFunction:
    """An objective ready to run, with what is known about it."""

    name: str
    objective: Objective
    builtin: BuiltinFunction | None

    @property
    def variables(self) -> tuple[str, ...]:
        return self.objective.variables

    def default_init(self) -> list[float]:
        if self.builtin is not None:
            return self.builtin.default_init(len(self.variables))
        return [1.0] * len(self.variables)


def resolve(function: str, dim: int | None = None, let=(), *, trainable: bool = True) -> ResolvedFunction:
    """A built-in by name, or else a parsed expression, with the intermediate names ``let``
    ((name, text) pairs in order, see expr.parse; only for an expression).

    With ``trainable`` (what a run needs), an expression in which no variable has a gradient path
    (every one passes through ``detach``) is an error: there would be nothing to descend.
    """
    if not isinstance(function, str) or not function.strip():
        raise GdrunError(f"function must be a built-in name or an expression, got {function!r}")
    builtin = REGISTRY.get(function.strip().lower())
    if builtin is not None:
        if let:
            raise GdrunError(f"let defines names for an expression; '{builtin.name}' is a built-in function")
        return ResolvedFunction(builtin.name, builtin.make(builtin.dimension(dim)), builtin)
    expression = parse(function, let=let or None)
    # A variable with no gradient path (only through detach) gets gradient 0 in the engine's batched
    # array, where torch.optim would skip a parameter whose .grad is None. The two differ only with
    # weight_decay (torch leaves such a parameter alone; gdrun decays it): a known difference.
    if trainable and expression.variables and not gradient_paths(expression.tree):
        raise GdrunError(
            f"expression {function!r} has nothing to optimise: every variable passes through detach(), "
            "so no gradient reaches it"
        )
    if not expression.variables:
        raise GdrunError(f"expression {function!r} has no variables to optimise")
    if dim is not None and dim != len(expression.variables):
        raise GdrunError(
            f"dim={dim} does not match the expression {function!r}, which has "
            f"{len(expression.variables)} variable(s): {', '.join(expression.variables)}"
        )
    if _looks_like_name(function):
        from .errors import closest

        hint = closest(function.strip().lower(), REGISTRY)
        if hint:  # a lone unknown name that is close to a built-in is more likely a typo than f(x) = x
            raise GdrunError(f"unknown function '{function}'{hint}; built-ins: {', '.join(sorted(REGISTRY))}")
    return ResolvedFunction("expr", ExpressionObjective(expression), None)


def _looks_like_name(text: str) -> bool:
    return text.strip().isidentifier()
