"""Fitting model expressions to data: the data, the losses, and the fit as an engine problem.

A fit minimises ``loss(model(params; inputs) - target)`` averaged over the data (or over a
mini-batch). Free names of the model that are data columns are inputs; all others are
parameters. Frozen parameters are substituted into the model as constants, so the optimizer never
sees them (as torch.optim skips a parameter whose grad is None: no decay, no momentum).

On the numpy backend the gradient is exact: sympy differentiates the model by each parameter, and
the loss's derivative is chained in (see :data:`LOSSES`); on torch, autograd through the
torch.nn.functional loss does it.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from .errors import GdrunError, closest, known
from .inputs import MAX_DATA_VALUES, MAX_POINTS, number, open_text, show
from .expr import Expression, Namespace, compile_program, compile_tree, parse, quote, substitute

# ---------------------------------------------------------------------------- losses


@dataclass(frozen=True)
class Loss:
    """A loss of the residual r = prediction - target, as torch.nn defines it (mean reduction)."""

    name: str
    about: str

    def elementwise(self, r, xp, delta: float):
        if self.name == "mse":
            return r**2
        if self.name == "half_mse":
            return 0.5 * r**2
        if self.name == "mae":
            return xp.abs(r)
        a = xp.abs(r)
        return xp.where(a < delta, 0.5 * r**2, delta * (a - 0.5 * delta))

    def derivative(self, r, delta: float):
        """d loss / d r on numpy arrays (sign(0) = 0, as torch's L1Loss backward)."""
        if self.name == "mse":
            return 2.0 * r
        if self.name == "half_mse":
            return r
        if self.name == "mae":
            return np.sign(r)
        return np.clip(r, -delta, delta)

    def torch(self, prediction, target, delta: float):
        """The torch.nn.functional loss, one value per run of the batch."""
        import torch.nn.functional as F

        target = target.expand_as(prediction)
        if self.name == "mse":
            return F.mse_loss(prediction, target, reduction="none").mean(1)
        if self.name == "half_mse":
            return 0.5 * F.mse_loss(prediction, target, reduction="none").mean(1)
        if self.name == "mae":
            return F.l1_loss(prediction, target, reduction="none").mean(1)
        return F.huber_loss(prediction, target, reduction="none", delta=delta).mean(1)


LOSSES = {
    "mse": Loss("mse", "mean((pred - y)^2), as torch.nn.MSELoss"),
    "half_mse": Loss("half_mse", "0.5 * mse, the least-squares convention"),
    "mae": Loss("mae", "mean(|pred - y|), as torch.nn.L1Loss"),
    "huber": Loss("huber", "torch.nn.HuberLoss(delta): quadratic below delta, linear above"),
}


def get_loss(name: str) -> Loss:
    known("loss", name, LOSSES)
    return LOSSES[name]


# ---------------------------------------------------------------------------- the fit spec

FIT_KEYS = ("model", "data", "target", "inputs", "loss", "huber_delta", "batch_size", "shuffle", "drop_last",
            "freeze", "predict")  # fmt: skip


@dataclass(frozen=True)
class FitSpec:
    """The ``fit:`` part of a config, checked."""

    model: str
    data: Any  # a CSV path, or a mapping of column -> list / expression / {csv: ..., columns: ...}
    target: str = "y"
    inputs: list[str] | None = None
    loss: str = "mse"
    huber_delta: float = 1.0
    batch_size: int | str = "full"
    shuffle: bool = False
    drop_last: bool = False
    freeze: list[str] = field(default_factory=list)
    predict: Any = None


def validate_fit(raw: Any) -> FitSpec:
    if isinstance(raw, FitSpec):
        return raw
    if not isinstance(raw, dict):
        raise GdrunError(f"fit must be a mapping with keys {', '.join(FIT_KEYS)}, got {show(raw)}")
    for key in raw:
        if key not in FIT_KEYS:
            raise GdrunError(f"unknown key 'fit.{key}'{closest(str(key), FIT_KEYS)}; fit keys: {', '.join(FIT_KEYS)}")
    for key in ("model", "data"):
        if raw.get(key) in (None, "", {}, []):
            raise GdrunError(f"fit.{key} is required")
    values = dict(raw)
    if not isinstance(values["model"], str):
        raise GdrunError(f"fit.model must be an expression string, got {show(values['model'])}")
    get_loss(values.get("loss", "mse"))
    batch = values.get("batch_size", "full")
    if batch != "full":
        try:
            batch = number("fit.batch_size", batch, integer=True, low=1, high=MAX_POINTS)
        except GdrunError:
            raise GdrunError(f"fit.batch_size must be 'full' or a whole number from 1 to {MAX_POINTS:,}, "
                             f"got {show(batch)}") from None  # fmt: skip
    values["batch_size"] = batch
    for key in ("shuffle", "drop_last"):
        if not isinstance(values.get(key, False), bool):
            raise GdrunError(f"fit.{key} must be true or false, got {show(values[key])}")
    if "huber_delta" in values:
        values["huber_delta"] = number("fit.huber_delta", values["huber_delta"], positive=True)
    values["freeze"] = _names("fit.freeze", values.get("freeze"))
    if values.get("inputs") is not None:
        values["inputs"] = _names("fit.inputs", values["inputs"])
    if not isinstance(values.get("target", "y"), str):
        raise GdrunError(f"fit.target must be a column name, got {show(values['target'])}")
    values["predict"] = _predict(values.get("predict"))
    return FitSpec(**values)


def _names(key: str, value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise GdrunError(f"{key} must be a list of names, got {show(value)}")
    return value


def _predict(value: Any) -> Any:
    """``4``, ``"4,5"``, ``[4, 5]`` or ``{x: [1, 2], z: [3, 4]}`` -> list of floats or dict."""
    if value is None:
        return None
    if isinstance(value, str):
        value = [v for v in value.split(",") if v.strip()]
    if isinstance(value, dict):
        return {str(k): _floats(f"fit.predict.{k}", v) for k, v in value.items()}
    return _floats("fit.predict", value)


def _floats(key: str, value: Any) -> list[float]:
    items = value if isinstance(value, (list, tuple)) else [value]
    if len(items) > MAX_POINTS:
        raise GdrunError(f"{key} has {len(items):,} values, more than the limit of {MAX_POINTS:,}")
    out = [number(key, item) for item in items]
    if not out:
        raise GdrunError(f"{key} is empty")
    return out


# ---------------------------------------------------------------------------- data


def load_data(spec: Any, seed: int | None, base: Path | None = None) -> dict[str, np.ndarray]:
    """Columns (name -> float64 array, all of one length) from a fit's ``data`` spec.

    * ``"points.csv"`` or ``{csv: points.csv, columns: {x: time, y: value}}``: a CSV with a header;
    * ``{x: [1, 2, 3], y: [2, 4, 6]}``: inline lists;
    * ``{x: "range(-400, 400) / 400", y: "2*x**2 - 4*x + 3"}``:
      generated from grid expressions (``linspace``, ``arange``, ``range``) and earlier columns;
      ``noise: {std: 0.1, column: y, seed: 0}`` adds seeded Gaussian noise to a column (default y).
    """
    if isinstance(spec, (str, Path)):
        spec = {"csv": str(spec)}
    if not isinstance(spec, dict):
        raise GdrunError(f"fit.data must be a CSV path or a mapping of columns, got {show(spec)}")
    spec = dict(spec)
    noise = spec.pop("noise", None)
    columns: dict[str, np.ndarray] = {}
    if "csv" in spec:
        columns.update(read_csv(spec.pop("csv"), spec.pop("columns", None), base))
    for name, value in spec.items():
        if not isinstance(name, str) or not name.isidentifier() or name.startswith("_"):
            raise GdrunError(f"fit.data: {show(name)} is not a usable column name")
        columns[name] = _column(name, value, columns)
        total = sum(len(col) for col in columns.values())
        if total > MAX_DATA_VALUES:
            raise GdrunError(f"fit.data holds {total:,} values (columns x rows) with column '{name}', more than the "
                             f"limit of {MAX_DATA_VALUES:,}")  # fmt: skip
    if not columns:
        raise GdrunError("fit.data has no columns")
    lengths = {name: len(col) for name, col in columns.items()}
    if len(set(lengths.values())) > 1:
        raise GdrunError(f"fit.data columns differ in length: {', '.join(f'{k}={v}' for k, v in lengths.items())}")
    if next(iter(lengths.values())) == 0:
        raise GdrunError("fit.data is empty")
    if noise is not None:
        _add_noise(columns, noise, seed)
    for name, col in columns.items():
        if not np.isfinite(col).all():
            bad = int(np.flatnonzero(~np.isfinite(col))[0])
            raise GdrunError(f"fit.data column '{name}' has a non-finite value ({col[bad]}) at row {bad + 1}")
    return columns


def _column(name: str, value: Any, earlier: dict[str, np.ndarray]) -> np.ndarray:
    if isinstance(value, (list, tuple)):
        if len(value) > MAX_POINTS:
            raise GdrunError(f"fit.data column '{name}' has {len(value):,} values, more than the limit of {MAX_POINTS:,}")
        col = np.empty(len(value), dtype=np.float64)
        for i, item in enumerate(value):
            try:
                col[i] = number(f"fit.data column '{name}'", item)
            except GdrunError:
                if isinstance(item, float) or (isinstance(item, str) and item.strip().lower().lstrip("+-.") in
                                               ("nan", "inf", "infinity")):  # fmt: skip
                    col[i] = math.nan  # reported below, with its row, as every non-finite value is
                    continue
                raise GdrunError(f"fit.data column '{name}' has a non-numeric value {show(item)}") from None
        return col
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        raise GdrunError(f"fit.data column '{name}' must be a list or an expression, got the number {show(value)}")
    if not isinstance(value, str):
        raise GdrunError(f"fit.data column '{name}' must be a list or an expression, got {show(value)}")
    return evaluate_columns(value, earlier, f"fit.data.{name}")


def evaluate_columns(text: str, columns: dict[str, np.ndarray], what: str) -> np.ndarray:
    """Evaluate a data expression (grids allowed) over existing columns, with numpy."""
    expression = parse(text, grids=True)
    unknown = [v for v in expression.variables if v not in columns]
    if unknown:
        raise GdrunError(f"{what}: '{unknown[0]}' is not a column defined before it{closest(unknown[0], columns)}")
    grids: dict[str, np.ndarray] = {}

    def replace_grids(node: tuple) -> tuple:
        if node[0] == "grid":
            key = f"grid{len(grids)}"
            points = sum(len(g) for g in grids.values()) + grid_points(node[1], node[2], what)
            if points > MAX_POINTS:
                raise GdrunError(f"{what}: its grids make {points:,} points, more than the limit of {MAX_POINTS:,}")
            grids[key] = _grid(node[1], node[2], what)
            return ("var", key)
        if node[0] in ("num", "const", "var"):
            return node
        if node[0] == "call":
            return ("call", node[1], replace_grids(node[2]))
        return (node[0], *(replace_grids(child) for child in node[1:]))

    tree = replace_grids(expression.tree)
    env = {**columns, **grids}
    try:
        with np.errstate(all="ignore"):
            result = np.asarray(compile_tree(tree, Namespace(np))(env), dtype=np.float64)
    except ValueError:  # grids or columns of different lengths
        lengths = sorted({len(v) for v in env.values()})
        raise GdrunError(f"{what}: {quote(text)} combines columns or grids of different lengths "
                         f"({', '.join(map(str, lengths))})") from None  # fmt: skip
    if result.ndim == 0:
        raise GdrunError(f"{what}: {quote(text)} is a single number, not a column (use a list or a grid such as linspace)")
    return result


def grid_points(name: str, args: tuple[float, ...], what: str) -> int:
    """How many points ``name(*args)`` makes (checked before anything is allocated): at most
    MAX_POINTS, from finite arguments."""
    if not all(math.isfinite(a) for a in args):
        raise GdrunError(f"{what}: {name}() takes finite numbers, got {', '.join(f'{a:g}' for a in args)}")
    if name == "linspace":
        num = args[2]
        if num != int(num) or num < 1:
            raise GdrunError(f"{what}: linspace needs a positive whole number of points, got {num:g}")
        count = num
    else:
        step = args[2] if len(args) == 3 else 1.0
        if step == 0:
            raise GdrunError(f"{what}: {name}() step must not be zero")
        if name == "range" and any(a != int(a) for a in args):
            raise GdrunError(f"{what}: range() takes whole numbers; use arange() for fractions")
        count = max(0.0, (args[1] - args[0]) / step)
    if not count <= MAX_POINTS:
        raise GdrunError(f"{what}: {name}() would make {count:,.0f} points, more than the limit of {MAX_POINTS:,}")
    return math.ceil(count)


def _grid(name: str, args: tuple[float, ...], what: str) -> np.ndarray:
    grid_points(name, args, what)
    if name == "linspace":
        return np.linspace(args[0], args[1], int(args[2]))
    return np.arange(args[0], args[1], args[2] if len(args) == 3 else 1.0, dtype=np.float64)


def _add_noise(columns: dict[str, np.ndarray], noise: Any, seed: int | None) -> None:
    if not isinstance(noise, dict) or "std" not in noise:
        raise GdrunError(f"fit.data.noise must look like {{std: 0.1, column: y, seed: 0}}, got {show(noise)}")
    unknown = [k for k in noise if k not in ("std", "column", "seed")]
    if unknown:
        raise GdrunError(f"unknown key 'fit.data.noise.{str(unknown[0])[:60]}'; keys: std, column, seed")
    std = number("fit.data.noise.std", noise["std"], low=0)
    column = noise.get("column", "y")
    if not isinstance(column, str) or column not in columns:
        raise GdrunError(f"fit.data.noise.column {show(column)} is not a column{closest(str(column), columns)}")
    if noise.get("seed") is not None:
        seed = number("fit.data.noise.seed", noise["seed"], integer=True, low=0, high=2**64 - 1)
    rng = np.random.default_rng(seed)
    columns[column] = columns[column] + rng.normal(0.0, float(std), size=len(columns[column]))


def locate(path: Any, base: Path | None) -> Path:
    """A data file as given, or else next to the config file (``base``), made absolute."""
    file = Path(str(path))
    if base is not None and not file.is_absolute() and not file.exists() and (base / file).exists():
        file = base / file
    return file.resolve() if file.exists() else file


def with_located_data(spec: FitSpec, base: Path | None) -> FitSpec:
    """The spec with its CSV path made absolute, so a run's config.yaml re-runs from anywhere."""
    data = spec.data
    if isinstance(data, (str, Path)):
        return replace(spec, data=str(locate(data, base)))
    if isinstance(data, dict) and "csv" in data:
        return replace(spec, data={**data, "csv": str(locate(data["csv"], base))})
    return spec


def read_csv(path: Any, columns: Any, base: Path | None) -> dict[str, np.ndarray]:
    """Read numeric columns from a CSV file with a header row; ``columns`` maps names to headers.
    The file (a regular file of at most MAX_DATA_BYTES, see :func:`gdrun.inputs.open_text`) is
    streamed into float64 arrays, 8 bytes a value, at most MAX_POINTS rows."""
    from array import array

    if columns is not None and not isinstance(columns, dict):
        raise GdrunError(f"fit.data.columns must map names to CSV headers, got {show(columns)}")
    file = locate(path, base)
    try:
        with open_text(file, "data file") as f:
            reader = csv.reader(_lines(f, path))
            header = next((row for row in reader if any(cell.strip() for cell in row)), None)
            if header is None:
                raise GdrunError(f"data file {path} is empty")
            header = [h.strip() for h in header]
            wanted = {h: h for h in header if h.isidentifier()} if columns is None else \
                {str(k): str(v) for k, v in columns.items()}  # fmt: skip
            picks: list[tuple[str, int, str]] = []
            for name, head in wanted.items():
                if head not in header:
                    raise GdrunError(f"data file {path} has no column '{head}'{closest(head, header)}; "
                                     f"columns: {', '.join(header)}")  # fmt: skip
                if not name.isidentifier():
                    raise GdrunError(f"fit.data.columns: {show(name)} is not a usable column name")
                picks.append((name, header.index(head), head))
            values = {name: array("d") for name, _, _ in picks}
            rows = 0
            for row in reader:
                if not any(cell.strip() for cell in row):
                    continue
                if len(row) != len(header):
                    raise GdrunError(f"data file {path}: line {reader.line_num} has {len(row)} cells, the header has "
                                     f"{len(header)}")  # fmt: skip
                rows += 1
                if rows > MAX_POINTS:
                    raise GdrunError(f"data file {path} has more than {MAX_POINTS:,} rows (the limit of data points)")
                for name, j, head in picks:
                    cell = row[j].strip()
                    try:
                        values[name].append(_cell_number(cell))
                    except ValueError:
                        raise GdrunError(f"data file {path}: line {reader.line_num}, column '{head}': {show(cell)} "
                                         "is not a number") from None  # fmt: skip
    except UnicodeDecodeError:
        raise GdrunError(f"cannot read data file {path}: not UTF-8 text") from None
    except csv.Error as exc:
        raise GdrunError(f"data file {path}: {str(exc)[:100]}") from None
    if rows == 0:
        raise GdrunError(f"data file {path} has a header but no rows")
    return {name: np.frombuffer(column, dtype=np.float64) for name, column in values.items()}


def _lines(f, path: Any, limit: int = 1 << 20):
    """The lines of ``f``, none longer than ``limit`` characters (a file without line breaks is
    not read whole into one string)."""
    while line := f.readline(limit + 1):
        if len(line) > limit:
            raise GdrunError(f"data file {path} has a line longer than {limit:,} characters")
        yield line


def _cell_number(cell: str) -> float:
    """A CSV cell as a float: ASCII only (Python's float() also reads the digits of other scripts)."""
    if not cell.isascii():
        raise ValueError(cell)
    return float(cell)


# ---------------------------------------------------------------------------- the fit itself


@dataclass(frozen=True)
class Fit:
    """A model, its data and loss, resolved: parameters, inputs, frozen values."""

    spec: FitSpec
    model: Expression
    data: dict[str, np.ndarray]  # every column, including the target
    inputs: tuple[str, ...]
    params: tuple[str, ...]  # trainable, in natural order
    frozen: dict[str, float]

    @property
    def variables(self) -> tuple[str, ...]:
        return self.params

    def all_params(self, trained: dict[str, Any]) -> dict[str, Any]:
        """Every parameter, frozen ones included, in the model's order."""
        values = {**self.frozen, **trained}
        return {k: values[k] for k in self.model.variables if k in values}

    @property
    def formula(self) -> str:
        return str(self.model)

    @property
    def target(self) -> np.ndarray:
        return self.data[self.spec.target]

    @property
    def n_points(self) -> int:
        return len(self.target)

    def trainable_tree(self) -> tuple:
        return substitute(self.model.tree, {k: ("num", v) for k, v in self.frozen.items()})

    def n_batches(self) -> int:
        if self.spec.batch_size == "full":
            return 1
        size = min(self.spec.batch_size, self.n_points) if not self.spec.drop_last else self.spec.batch_size
        return self.n_points // size if self.spec.drop_last else math.ceil(self.n_points / size)

    def problem(self, backend, seed: int | None) -> "FitProblem":
        return FitProblem(self, backend, seed)

    def predict(self, params: dict[str, float], points: Any) -> tuple[list[dict[str, float]], list[float]]:
        """The model's output at ``points`` (list of values of the single input, or a mapping)."""
        if isinstance(points, dict):
            unknown = [k for k in points if k not in self.inputs]
            if unknown:
                raise GdrunError(f"fit.predict names '{unknown[0]}', which is not an input; inputs: {', '.join(self.inputs)}")
            missing = [k for k in self.inputs if k not in points]
            if missing:
                raise GdrunError(f"fit.predict gives no values for {', '.join(missing)}")
            lengths = {len(v) for v in points.values()}
            if len(lengths) > 1:
                raise GdrunError("fit.predict lists differ in length")
            cols = {k: np.array(v) for k, v in points.items()}
        else:
            if len(self.inputs) != 1:
                raise GdrunError(f"fit.predict must name the inputs ({', '.join(self.inputs)}), e.g. {{x: [1], z: [2]}}")
            cols = {self.inputs[0]: np.array(points)}
        env = {**cols, **{k: np.float64(v) for k, v in params.items()}}
        with np.errstate(all="ignore"):
            out = np.broadcast_to(compile_tree(self.model.tree, Namespace(np))(env), (len(next(iter(cols.values()))),))
        at = [{k: float(v[i]) for k, v in cols.items()} for i in range(len(out))]
        return at, [float(v) for v in out]

    def r2(self, params: dict[str, float]) -> float:
        """Coefficient of determination on the whole data set."""
        env = {**{k: self.data[k] for k in self.inputs}, **{k: np.float64(v) for k, v in params.items()}}
        with np.errstate(all="ignore"):
            prediction = compile_tree(self.model.tree, Namespace(np))(env)
        y = self.target
        ss_res = float(np.sum((prediction - y) ** 2))
        ss_tot = float(np.sum((y - y.mean()) ** 2))
        return 1.0 - ss_res / ss_tot if ss_tot > 0 else (1.0 if ss_res == 0 else -math.inf)


def resolve_fit(spec: FitSpec, seed: int | None, base: Path | None = None, init: Any = None, warn=None) -> Fit:
    """Check the model against the data: inputs, parameters, frozen names, the target."""
    model = parse(spec.model)
    data = load_data(spec.data, seed, base)
    if spec.target not in data:
        raise GdrunError(f"fit.target '{spec.target}' is not a data column{closest(spec.target, data)}; columns: {', '.join(data)}")
    if spec.target in model.variables:
        raise GdrunError(f"the model uses the target column '{spec.target}' as an input")
    if spec.inputs is not None:
        for name in spec.inputs:
            if name not in data:
                raise GdrunError(f"fit.inputs: '{name}' is not a data column{closest(name, data)}")
        inputs = tuple(n for n in model.variables if n in spec.inputs)
    else:
        inputs = tuple(n for n in model.variables if n in data)
    params_all = tuple(n for n in model.variables if n not in inputs)
    if not params_all:
        raise GdrunError(f"the model {spec.model!r} has no parameters to fit (every name is a data column)")
    for name in spec.freeze:
        if name not in params_all:
            raise GdrunError(f"fit.freeze: '{name}' is not a parameter{closest(name, params_all)}; parameters: {', '.join(params_all)}")
    trainable = tuple(n for n in params_all if n not in spec.freeze)
    if not trainable:
        raise GdrunError("fit.freeze freezes every parameter: nothing is left to fit")
    if spec.batch_size != "full" and spec.drop_last and spec.batch_size > len(data[spec.target]):
        raise GdrunError(f"batch_size {spec.batch_size} with drop_last leaves no batch for {len(data[spec.target])} points")
    if warn is not None and len(trainable) > len(data[spec.target]):
        points = len(data[spec.target])
        warn(f"{len(trainable)} parameters but only {points} data point{'s' if points != 1 else ''}: "
             "the fit cannot pin them all down")  # fmt: skip
    frozen = _frozen_values(spec.freeze, init)
    return Fit(spec, model, data, inputs, trainable, frozen)


def _frozen_values(names: list[str], init: Any) -> dict[str, float]:
    if not names:
        return {}
    if isinstance(init, dict):
        missing = [n for n in names if n not in init]
        if missing:
            raise GdrunError(f"frozen parameter {missing[0]} needs a value in init (it stays there)")
        return {n: float(init[n]) for n in names}
    if isinstance(init, float):
        return {n: init for n in names}
    raise GdrunError("frozen parameters need their values in init, e.g. init: {a: 1, b: 0.5}")


class FitProblem:
    """A fit bound to a backend: the engine's problem (full-data rows, mini-batch steps)."""

    def __init__(self, fit: Fit, backend, seed: int | None):
        self.fit = fit
        self.backend = backend
        self.seed = 0 if seed is None else seed  # shuffling: epoch e uses the generator seeded by (seed, e)
        spec = fit.spec
        self.n = fit.n_points
        self.loss = get_loss(spec.loss)
        self.delta = spec.huber_delta
        names = (*fit.inputs, spec.target)
        self.host = {k: fit.data[k][None, :] for k in names}  # (1, N) rows, broadcast against (B, 1) params
        self.columns = {k: backend.asarray(v) for k, v in self.host.items()}
        self.batch_size = spec.batch_size
        self.epoch_columns = self.columns
        self._evaluate = self._numpy_evaluator() if backend.name == "numpy" else self._torch_evaluator()

    # the engine's interface
    def value_and_grad(self, X):
        return self._evaluate(X, self.columns)

    def batches(self, epoch: int) -> list | None:
        spec = self.fit.spec
        if self.batch_size == "full":
            return None
        if spec.shuffle:
            order = np.random.default_rng([self.seed, epoch]).permutation(self.n)
            self.epoch_columns = {k: self._take(v, order) for k, v in self.columns.items()}
        size = self.batch_size
        stops = range(size, self.n + (1 if spec.drop_last else size), size)
        return [slice(stop - size, min(stop, self.n)) for stop in stops]

    def batch_value_and_grad(self, X, batch: slice):
        return self._evaluate(X, {k: v[:, batch] for k, v in self.epoch_columns.items()})

    def _take(self, row, order: np.ndarray):
        if self.backend.name == "numpy":
            return row[:, order]
        import torch

        return row[:, torch.as_tensor(order, device=row.device)]

    # evaluation
    def _numpy_evaluator(self):
        from .problems import per_run
        from .symbolic import derivatives

        fit = self.fit
        params, target = fit.params, fit.spec.target
        run = compile_program(derivatives([fit.trainable_tree()], [*params, *fit.inputs], wrt=list(params)), Namespace(np))
        loss, delta = self.loss, self.delta

        def evaluate(X, cols):
            outs = run({**{p: X[:, i : i + 1] for i, p in enumerate(params)}, **cols})
            r = outs[0] - cols[target]
            value = per_run(loss.elementwise(r, np, delta).mean(1), X)  # (1,) where the model ignores its parameters
            d = loss.derivative(r, delta)
            G = np.empty_like(X)
            for i in range(len(params)):
                dm = outs[1 + i]  # d model / d param i: an array, or a constant (a plain offset's 1)
                G[:, i] = (d * dm).mean(1) if isinstance(dm, np.ndarray) else d.mean(1) * dm
            return value, G

        return evaluate

    def _torch_evaluator(self):
        import torch

        fit = self.fit
        params, target = fit.params, fit.spec.target
        model = compile_tree(fit.trainable_tree(), Namespace(torch))
        loss, delta = self.loss, self.delta

        def evaluate(X, cols):
            with torch.enable_grad():
                X = X.detach().requires_grad_(True)
                prediction = model({**{p: X[:, i : i + 1] for i, p in enumerate(params)}, **cols})
                prediction = prediction.expand(X.shape[0], cols[target].shape[1])
                value = loss.torch(prediction, cols[target], delta)
                (G,) = torch.autograd.grad(value.sum(), X)
            return value.detach(), G

        return evaluate
