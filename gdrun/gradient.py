"""Explain one point of a function (``gdrun grad``): its value, every partial derivative and, if
asked, the Hessian, from the symbolic derivative (sympy, evaluated with numpy) and from torch
autograd side by side, with whether the two agree; and the computation drawn as a tree, each node
with its value and the gradient d out/d node that reaches it.

A variable with no gradient path (it reaches the output only through ``detach``) has no
derivative at all: ``None (no path)``, as torch reports it, which is not the same as a derivative
that is 0 (``0*x``). torch is imported only here, and only when a report is made.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import GdrunError, closest

#: Two numbers agree when they differ by at most RTOL times the largest magnitude in their group
#: (the value; the gradient; the Hessian), from either source; None agrees only with None.
RTOL = 1e-12
GRAPH_MAX_NODES = 400  # --graph draws at most this many nodes
NO_PATH = "None (no path)"
DETACHED = "no gradient flows back (detach)"
SOURCES = ("symbolic", "autograd")


@dataclass(frozen=True)
class GradientReport:
    """What ``gdrun grad`` found at one point; each ``by source`` mapping has "symbolic" and "autograd"."""

    function: str  # as given: a built-in name or the expression's text
    formula: str
    names: tuple[str, ...]
    point: tuple[float, ...]
    value: dict[str, float]  # by source
    gradient: dict[str, tuple[float | None, ...]]  # by source; None: no gradient path
    no_path: tuple[str, ...]  # the variables without a gradient path (symbolic: expr.gradient_paths)
    agree: dict[str, bool]  # "value", "gradient" (and "hessian")
    hessian: dict[str, np.ndarray] | None = None  # by source, (n, n)
    eigenvalues: dict[str, tuple[float, ...] | None] | None = None  # by source, ascending; None where not finite
    objective: Any = field(default=None, repr=False, compare=False)  # what was differentiated (for the drawing)

    def to_json(self) -> dict[str, Any]:
        def number(v):
            return None if v is None or not math.isfinite(v) else float(v)

        data: dict[str, Any] = {
            "function": self.function,
            "formula": self.formula,
            "variables": list(self.names),
            "at": dict(zip(self.names, self.point)),
            "value": {s: number(self.value[s]) for s in SOURCES},
            "gradient": {s: {k: number(g) for k, g in zip(self.names, self.gradient[s])} for s in SOURCES},
            "no_path": list(self.no_path),
            "agree": dict(self.agree),
            "rtol": RTOL,
        }
        if self.hessian is not None:
            data["hessian"] = {s: [[number(v) for v in row] for row in self.hessian[s]] for s in SOURCES}
            data["eigenvalues"] = {s: None if self.eigenvalues[s] is None else [number(v) for v in self.eigenvalues[s]]
                                   for s in SOURCES}  # fmt: skip
        return data


def resolve_for_grad(function: str, at: Any, let=(), dim: int | None = None):
    """The resolved function and the point (floats, one per variable) that ``--at`` names."""
    from .config import parse_init
    from .functions import REGISTRY, resolve

    try:
        point = parse_init(at)
    except GdrunError as exc:
        text = str(exc)
        raise GdrunError(text.replace("init.", "--at ", 1) if text.startswith("init.") else text.replace("init", "--at", 1)) from None
    builtin = REGISTRY.get(function.strip().lower()) if isinstance(function, str) else None
    if dim is None and builtin is not None and builtin.fixed_dim is None and isinstance(point, (list, dict)):
        dim = len(point)  # sphere --at 1,2,3 is 3-dimensional
    resolved = resolve(function, dim, let, trainable=False)
    return resolved, _point(resolved, point)


def _point(resolved, point: Any) -> list[float]:
    names = resolved.variables
    listed = ", ".join(names)
    if point is None:
        return [float(v) for v in resolved.default_init()]
    if isinstance(point, float):
        return [point] * len(names)
    if isinstance(point, list):
        if len(point) != len(names):
            raise GdrunError(f"--at gives {len(point)} number(s) for {len(names)} variable(s): {listed}")
        return point
    expression = getattr(resolved.objective, "expression", None)
    defined = {name for name, _ in expression.definitions} if expression is not None else set()
    for name in point:
        if name not in names:
            what = "an intermediate name (let), not a variable" if name in defined else "not a variable"
            raise GdrunError(f"--at names '{name}', which is {what}{closest(name, names)}; variables: {listed}")
    for name in names:
        if name not in point:
            raise GdrunError(f"--at gives no value for the variable '{name}'; variables: {listed}")
    return [point[name] for name in names]


def gradient_report(function: str, at: Any = None, let=(), dim: int | None = None, hessian: bool = False) -> GradientReport:
    """The value and gradient of ``function`` at ``at`` (``"x=2,y=3"``, ``"2,3"``, one number for
    every variable, or None for the function's default start point), from both sources."""
    from .expr import gradient_paths

    resolved, point = resolve_for_grad(function, at, let, dim)
    objective, names = resolved.objective, resolved.variables
    X = np.array([point], dtype=np.float64)
    expression = getattr(objective, "expression", None)
    paths = gradient_paths(expression.tree) if expression is not None else set(names)
    with np.errstate(all="ignore"):
        value, G = objective.numpy_value_and_grad()(X)
    symbolic = tuple(float(G[0, i]) if name in paths else None for i, name in enumerate(names))
    torch_value, torch_grad = _autograd(objective, point)
    values = {"symbolic": float(np.asarray(value).reshape(-1)[0]), "autograd": torch_value}
    gradients = {"symbolic": symbolic, "autograd": torch_grad}
    agree = {"value": _agree([values["symbolic"]], [values["autograd"]]), "gradient": _agree(symbolic, torch_grad)}
    hessians = eigenvalues = None
    if hessian:
        from .curvature import objective_curvature

        hessians = {s: objective_curvature(objective, s).hessian(X)[0] for s in SOURCES}
        eigenvalues = {s: _eigenvalues(hessians[s]) for s in SOURCES}
        agree["hessian"] = _agree(hessians["symbolic"].ravel(), hessians["autograd"].ravel())
    return GradientReport(function, objective.formula, tuple(names), tuple(point), values, gradients,
                          tuple(n for n in names if n not in paths), agree, hessians, eigenvalues, objective)  # fmt: skip


def _autograd(objective, point: list[float]) -> tuple[float, tuple[float | None, ...]]:
    """Value and gradient by torch autograd, one leaf tensor per variable, so that torch itself
    says None for a variable that does not reach the output (``allow_unused``)."""
    import torch

    from .expr import Namespace, compile_tree

    names = objective.variables
    with torch.enable_grad():
        leaves = [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in point]
        expression = getattr(objective, "expression", None)
        if expression is not None:
            out = compile_tree(expression.tree, Namespace(torch))(dict(zip(names, leaves)))
        else:  # a separable built-in: no detach inside, so every variable reaches it
            out = objective.value_fn(Namespace(torch))(torch.stack(leaves)[None, :]).sum()
        if not isinstance(out, torch.Tensor) or not out.requires_grad:
            grads = [None] * len(names)
        else:
            grads = torch.autograd.grad(out, leaves, allow_unused=True)
    value = float(out.detach()) if isinstance(out, torch.Tensor) else float(out)
    return value, tuple(None if g is None else float(g) for g in grads)


def _agree(a, b) -> bool:
    finite = [abs(v) for v in (*a, *b) if v is not None and math.isfinite(v)]
    scale = max(finite, default=0.0)
    return all(_close(x, y, scale) for x, y in zip(a, b))


def _close(a: float | None, b: float | None, scale: float) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= RTOL * max(abs(a), abs(b), scale)


def _eigenvalues(H: np.ndarray) -> tuple[float, ...] | None:
    if not np.isfinite(H).all():
        return None
    return tuple(float(v) for v in np.linalg.eigvalsh(H))


# ---------------------------------------------------------------------------- printing


def show_number(value: float | None, digits: int = 12) -> str:
    if value is None:
        return NO_PATH
    if value != value:
        return "nan"
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.{digits}g}"


def print_report(report: GradientReport, console) -> None:
    """The report as tables: value and partial derivatives, then the Hessian and its eigenvalues."""
    from rich.table import Table
    from rich.text import Text

    at = ", ".join(f"{n} = {show_number(v)}" for n, v in zip(report.names, report.point))
    console.print(Text(f"{report.formula}  at  {at}"))
    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("")
    for title in ("symbolic (numpy)", "autograd (torch)", "agree"):
        table.add_column(title, justify="right")
    table.add_row("value", show_number(report.value["symbolic"]), show_number(report.value["autograd"]),
                  _yes(_close(report.value["symbolic"], report.value["autograd"], abs(report.value["symbolic"]))))  # fmt: skip
    scale = max((abs(v) for s in SOURCES for v in report.gradient[s] if v is not None and math.isfinite(v)), default=0.0)
    for i, name in enumerate(report.names):
        a, b = report.gradient["symbolic"][i], report.gradient["autograd"][i]
        table.add_row(f"d/d{name}", show_number(a), show_number(b), _yes(_close(a, b, scale)))
    console.print(table)
    if report.hessian is not None:
        for source in SOURCES:
            title = "symbolic (numpy)" if source == "symbolic" else "autograd (torch)"
            console.print(Text(f"Hessian, {title}"))
            hessian = Table(box=None, header_style="bold", pad_edge=False)
            hessian.add_column("")
            for name in report.names:
                hessian.add_column(name, justify="right")
            for name, row in zip(report.names, report.hessian[source]):
                hessian.add_row(name, *(show_number(float(v)) for v in row))
            console.print(hessian)
            values = report.eigenvalues[source]
            shown = "not finite here" if values is None else ", ".join(show_number(v) for v in values)
            console.print(Text(f"eigenvalues ({source}): {shown}"))
    verdicts = ", ".join(f"{k} {'agree' if v else 'DIFFER'}" for k, v in report.agree.items())
    console.print(Text(f"symbolic vs autograd: {verdicts} (within {RTOL:g} of the largest magnitude of each)"))
    if report.no_path:
        console.print(Text(f"no gradient path (only through detach): {', '.join(report.no_path)}"))


def _yes(ok: bool) -> str:
    return "yes" if ok else "NO"


# ---------------------------------------------------------------------------- the computation as a tree


@dataclass
class _Node:
    label: str
    value: Any  # a tensor, or a float for a constant
    use: Any = None  # the tensor whose .grad is d out / d this node along this edge
    children: tuple = ()
    detach: bool = False
    total: Any = None  # a let name used more than once: the tensor whose .grad sums all its uses
    constant: bool = False


_OPS = {"add": "+", "sub": "-", "mul": "*", "div": "/", "pow": "**", "neg": "neg"}


def computation_tree(report: GradientReport):
    """The computation at the report's point as a ``rich.tree.Tree``, micrograd-style: each node's
    operation (or name), its value and the gradient d out/d node that reaches it along its edge,
    from torch autograd (each use of a variable is its own ``.clone()``, so it shows the gradient
    along that edge; the variable's total is the table's). A let name is a named node at its first
    use and a reference at later ones."""
    import torch
    from rich.text import Text
    from rich.tree import Tree

    from .expr import Namespace, constant_value, format_tree, substitute, sum_trees, tree_size

    objective = report.objective
    expression = getattr(objective, "expression", None)
    if expression is not None:
        body = expression.body if expression.body is not None else expression.tree
        definitions = dict(expression.definitions)
    else:  # a separable built-in, written out
        k = objective.dim - objective.window + 1
        sums = {f"S{j + 1}": sum_trees([substitute(term, {"a": ("var", f"x{i + 1}"), "b": ("var", f"x{i + 2}")})
                                        for i in range(k)]) for j, term in enumerate(objective.terms)}  # fmt: skip
        body, definitions = substitute(objective.outer, {**sums, "n": ("num", float(objective.dim))}), {}
    size = tree_size(body) + sum(tree_size(t) for t in definitions.values())
    if size > GRAPH_MAX_NODES:
        raise GdrunError(f"--graph draws at most {GRAPH_MAX_NODES} nodes; this computation has {size}")
    ns = Namespace(torch)
    uses = _uses(body, definitions)
    seen: dict[str, Any] = {}

    def grad_node(tensor):
        if isinstance(tensor, torch.Tensor) and tensor.requires_grad:
            tensor.retain_grad()
        return tensor

    def build(node: tuple, leaves: dict) -> _Node:
        tag = node[0]
        if constant_value(node, format_tree(node)) is not None:
            value = constant_value(node, format_tree(node))
            return _Node(format_tree(node), value, constant=True)
        if tag == "var" and node[1] in definitions:
            name = node[1]
            if name in seen:
                total = seen[name]
                use = grad_node(total.clone()) if isinstance(total, torch.Tensor) else total
                return _Node(f"{name}, see above", use, use)
            inner = build(definitions[name], leaves)
            total = inner.use if inner.use is not None else inner.value
            seen[name] = total
            use = grad_node(total.clone()) if isinstance(total, torch.Tensor) else total
            return _Node(f"{name} = {format_tree(definitions[name])}", use, use, inner.children, inner.detach,
                         total if uses.get(name, 0) > 1 else None)  # fmt: skip
        if tag == "var":
            use = grad_node(leaves[node[1]].clone())
            return _Node(node[1], use, use)
        if tag == "call":
            child = build(node[2], leaves)
            arg = child.value
            if node[1] == "detach":
                return _Node(f"[detach] {format_tree(node)}", ns.functions["detach"](arg), None, (child,), detach=True)
            out = grad_node(ns.functions[node[1]](arg))
            return _Node(f"[{node[1]}] {format_tree(node)}", out, out, (child,))
        if tag == "neg":
            child = build(node[1], leaves)
            out = grad_node(-child.value)
            return _Node(f"[neg] {format_tree(node)}", out, out, (child,))
        left, right = build(node[1], leaves), build(node[2], leaves)
        a, b = left.value, right.value
        out = {"add": lambda: a + b, "sub": lambda: a - b, "mul": lambda: a * b, "div": lambda: a / b,
               "pow": lambda: a**b}[tag]()  # fmt: skip
        out = grad_node(out)
        return _Node(f"[{_OPS[tag]}] {format_tree(node)}", out, out, (left, right))

    names = objective.variables
    with torch.enable_grad():
        leaves = {n: torch.tensor(v, dtype=torch.float64, requires_grad=True) for n, v in zip(names, report.point)}
        root = build(body, leaves)
        out = root.value
        if isinstance(out, torch.Tensor) and out.requires_grad:
            out.backward()

    def line(node: _Node, label: str | None = None) -> Text:
        label = node.label if label is None else label
        text = Text(label)
        if node.constant:
            value = float(node.value)
            if label != show_number(value):
                text.append(f"  value {show_number(value, 6)}")
            return text
        text.append(f"  value {show_number(_float(node.value), 6)}", style="cyan")
        if node.detach:
            text.append(f"  {DETACHED}", style="yellow")
            return text
        tensor = node.use if node.use is not None else node.value
        grad = tensor.grad if isinstance(tensor, torch.Tensor) and tensor.requires_grad else None
        if grad is None:
            text.append(f"  grad {NO_PATH}", style="dim")
        else:
            text.append(f"  grad {show_number(_float(grad), 6)}", style="green")
        if node.total is not None and isinstance(node.total, torch.Tensor) and node.total.grad is not None:
            name = node.label.split(" = ")[0]
            text.append(f"  (d out/d{name} = {show_number(_float(node.total.grad), 6)} over all {uses[name]} uses)")
        return text

    def add(parent, node: _Node) -> None:
        branch = parent.add(line(node))
        for child in node.children:
            add(branch, child)

    label = root.label if root.label.split(" = ")[0] in definitions else format_tree(body)
    tree = Tree(line(root, "out = " + label))
    for child in root.children:
        add(tree, child)
    return tree


def _float(value) -> float:
    """A tensor's (or a number's) value as a float."""
    detach = getattr(value, "detach", None)
    return float(detach() if detach is not None else value)


def _uses(body: tuple, definitions: dict[str, tuple]) -> dict[str, int]:
    """How many times each let name is used (in the body and in the definitions the drawing expands)."""
    counts: dict[str, int] = {}

    def walk(node: tuple, expand: bool) -> None:
        tag = node[0]
        if tag == "var" and node[1] in definitions:
            counts[node[1]] = counts.get(node[1], 0) + 1
            if counts[node[1]] == 1:
                walk(definitions[node[1]], True)
            return
        children = node[1:] if tag in _OPS else node[2:] if tag == "call" else ()
        for child in children:
            walk(child, expand)

    walk(body, True)
    return counts
