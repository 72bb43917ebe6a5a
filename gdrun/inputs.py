"""Reading user input: the one number parser, the one YAML loader and the one file reader.

Every numeric value a user writes (config keys, optimizer and schedule options, ``--set``,
``--opt``, ``--schedule``, sweep values and distributions, stop rules, expectations) goes through
:func:`number`; every config (a file, or a ``--set``/``--opt`` value) through :func:`load_yaml_text`;
every file gdrun reads as input (configs, CSV data) through :func:`read_text` or :func:`open_text`.
Each bounds what it accepts and turns a bad input into a one-line :class:`GdrunError` that quotes
at most a short excerpt of it. The bounds (``MAX_*``, listed in the README's Guarantees) are far above what a real run needs.
"""

from __future__ import annotations

import io
import math
import os
import re
import reprlib
import stat
from pathlib import Path
from typing import Any

from .errors import GdrunError

MAX_CONFIG_BYTES = 1 << 20  # 1 MiB: a config file (larger data belongs in a CSV file)
MAX_DATA_BYTES = 1 << 30  # 1 GiB: a CSV data file
MAX_POINTS = 10_000_000  # rows of fit data (a CSV file, a list or a generated grid)
MAX_DATA_VALUES = 100_000_000  # numbers of fit data in all: columns x rows (800 MB)
MAX_YAML_DEPTH = 50  # nesting levels of a YAML document, aliases followed
MAX_YAML_NODES = 1_000_000  # values of a YAML document, each alias counted as what it stands for
MAX_DIM = 10_000  # dim: parameters of one run (its config.yaml records them all and stays under 1 MiB)
MAX_EPOCHS = 1_000_000_000  # epochs (steps) of one run
MAX_STATE = 100_000_000  # numbers in one batch's state: runs x parameters
MAX_SWEEP_CONFIGS = 1_000_000  # configs of one sweep
MAX_NUMBER_TEXT = 100  # characters of a number written as text

_REPR = reprlib.Repr()  # keyword arguments only from Python 3.12
_REPR.maxlevel, _REPR.maxlist, _REPR.maxtuple, _REPR.maxdict, _REPR.maxset = 3, 6, 6, 4, 6
_REPR.maxstring = _REPR.maxother = 60


def show(value: Any, limit: int = 60) -> str:
    """``value`` for an error message: its repr, cut short when long (never the whole of a big value)."""
    if isinstance(value, (list, tuple, dict, set)) and len(value) > limit:
        return f"a {type(value).__name__} of {len(value)} items"
    text = _REPR.repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def listing(names, limit: int = 8) -> str:
    """Names for an error message: all of a few, or the first ones and how many there are."""
    names = [str(n) for n in names]
    if len(names) <= limit:
        return ", ".join(names)
    return f"{', '.join(names[:limit - 2])}, ..., {names[-1]} ({len(names)} in all)"


# ---------------------------------------------------------------------------- numbers

ASCII_NUMBER = re.compile(r"[+-]?(?:[0-9][0-9_]*\.?[0-9_]*|\.[0-9][0-9_]*)(?:[eE][+-]?[0-9]+)?")
_ASCII_INTEGER = re.compile(r"[+-]?[0-9][0-9_]*")
_CONTAINERS = {list: "a list", tuple: "a list", dict: "a mapping", set: "a set"}


def number(key: str, value: Any, *, low: float | None = None, high: float | None = None, integer: bool = False,
           positive: bool = False) -> Any:  # fmt: skip
    """``value`` as a finite float (an int with ``integer``), or a one-line error naming ``key``.

    Accepted: ints, floats and numeric text such as ``"1e-8"`` (YAML 1.1 and ``--opt`` give such
    text) in ASCII digits. Refused: booleans, None, lists and mappings, nan and inf, digits of
    other scripts (``float("٢")`` is 2.0 in Python), and numbers outside ``[low, high]`` (or not
    above 0 with ``positive``). The error says what was expected."""
    kind = "a whole number" if integer else "a number"
    if isinstance(value, (bool, list, tuple, dict, set, bytes)) or value is None:
        raise GdrunError(f"{key} must be {kind}, got {_CONTAINERS.get(type(value)) or show(value)}")
    result: Any
    if isinstance(value, str):
        text = value.strip()
        if len(text) > MAX_NUMBER_TEXT or not ASCII_NUMBER.fullmatch(text):
            finite = text.lower().lstrip("+-.") not in ("nan", "inf", "infinity")
            raise GdrunError(f"{key} must be {kind if finite else 'a finite number'}, got {show(value)}")
        text = text.replace("_", "")
        result = int(text) if _ASCII_INTEGER.fullmatch(text) else float(text)
    elif isinstance(value, int):
        result = value
    else:
        try:
            result = float(value)
        except (TypeError, ValueError, OverflowError):
            raise GdrunError(f"{key} must be {kind}, got {show(value)}") from None
    if not integer or not isinstance(result, int):
        try:
            result = float(result)
        except OverflowError:
            result = math.inf
        if not math.isfinite(result):
            raise GdrunError(f"{key} must be a finite number, got {show(value)}")
    if integer and isinstance(result, float):
        if not result.is_integer():
            raise GdrunError(f"{key} must be a whole number, got {show(value)}")
        result = int(result)
    if positive and not result > 0:
        raise GdrunError(f"{key} must be positive, got {show(value)}")
    if low is not None and result < low:
        raise GdrunError(f"{key} must be at least {_bound(low)}, got {show(value)}")
    if high is not None and result > high:
        raise GdrunError(f"{key} must be at most {_bound(high)}, got {show(value)}")
    return result


def click_number(integer: bool = False):
    """A click parameter type that reads a flag's value with :func:`number`, for
    ``typer.Option(..., click_type=click_number())``: click's own FLOAT and INT take the digits of
    other scripts (``--lr ٠.١``) and nan."""
    import click

    class Number(click.ParamType):
        name = "integer" if integer else "float"

        def convert(self, value, param, ctx):
            try:
                return number("it", value, integer=integer)  # click says "Invalid value for '--lr': it ..."
            except GdrunError as exc:
                self.fail(str(exc), param, ctx)

    return Number()


def _bound(limit: float) -> str:
    return f"{limit:,}" if isinstance(limit, int) else f"{limit:g}"


# ---------------------------------------------------------------------------- files


def _open_regular(path: str | Path, what: str, limit: int) -> int:
    """A file descriptor of ``path`` if it is a regular file of at most ``limit`` bytes (as far as
    its size is known); a one-line error otherwise. Never blocks (a FIFO), never follows a loop."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise GdrunError(f"{what} not found: {path}") from None
    except OSError as exc:
        raise GdrunError(f"cannot read {what} {path}: {_why(exc)}") from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise GdrunError(f"cannot read {what} {path}: it is a folder, not a file")
        if not stat.S_ISREG(info.st_mode):
            raise GdrunError(f"cannot read {what} {path}: not a regular file (a device, pipe or socket)")
        if info.st_size > limit:
            raise GdrunError(f"{what} {path} is larger than the limit of {_size(limit)}")
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _why(exc: OSError) -> str:
    import errno

    if exc.errno == errno.ELOOP:
        return "a symbolic link loop"
    return exc.strerror or exc.__class__.__name__


def _size(limit: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if limit >= size and limit % size == 0:
            return f"{limit // size} {unit}"
    return f"{limit} bytes"


class _Bounded(io.RawIOBase):
    """A raw file that refuses to deliver more than ``limit`` bytes (a /proc file's size is 0,
    a file may grow while read)."""

    def __init__(self, fd: int, path: str | Path, what: str, limit: int):
        self._file = io.FileIO(fd, "rb", closefd=True)
        self._path, self._what, self._limit, self._read = path, what, limit, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        try:
            n = self._file.readinto(buffer)
        except OSError as exc:
            raise GdrunError(f"cannot read {self._what} {self._path}: {_why(exc)}") from None
        self._read += n or 0
        if self._read > self._limit:
            raise GdrunError(f"{self._what} {self._path} is larger than the limit of {_size(self._limit)}")
        return n

    def close(self) -> None:
        self._file.close()
        super().close()


def open_text(path: str | Path, what: str = "data file", limit: int = MAX_DATA_BYTES, newline: str | None = "") -> io.TextIOWrapper:
    """A UTF-8 text stream of the regular file ``path``, read lazily and refused past ``limit``
    bytes; see :func:`read_text`. Decoding errors surface as ``UnicodeDecodeError`` on read."""
    fd = _open_regular(path, what, limit)
    return io.TextIOWrapper(io.BufferedReader(_Bounded(fd, path, what, limit)), encoding="utf-8-sig", newline=newline)


def read_text(path: str | Path, what: str = "config file", limit: int = MAX_CONFIG_BYTES) -> str:
    """The text of ``path`` (UTF-8), if it is a regular file of at most ``limit`` bytes. A missing
    file, a folder, a device (/dev/zero), a FIFO, a symlink loop, an unreadable /proc file or a
    file that is not UTF-8 text is a one-line error; nothing past ``limit + 1`` bytes is read."""
    fd = _open_regular(path, what, limit)
    with io.FileIO(fd, "rb", closefd=True) as raw:
        chunks, total = [], 0
        try:
            while total <= limit:
                chunk = raw.read(min(1 << 20, limit + 1 - total))
                if not chunk:
                    break
                chunks.append(chunk)
                total += len(chunk)
        except OSError as exc:
            raise GdrunError(f"cannot read {what} {path}: {_why(exc)}") from None
    if total > limit:
        raise GdrunError(f"{what} {path} is larger than the limit of {_size(limit)}")
    try:
        return b"".join(chunks).decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise GdrunError(f"cannot read {what} {path}: not UTF-8 text (byte {exc.start + 1})") from None


# ---------------------------------------------------------------------------- YAML

_FLOAT_TAG = "tag:yaml.org,2002:float"
#: YAML 1.2's floats: 1e-8 and 1.0e5 are numbers (YAML 1.1 wants 1.0e+5 and reads 1e-8 as text)
_FLOAT_12 = re.compile(
    r"^(?:[-+]?(?:[0-9][0-9_]*)?\.?[0-9_]*(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
)
_loaders: dict[bool, type] = {}


def _loader(written: bool) -> type:
    """The safe loader class: libyaml's where present, YAML 1.2 floats, no duplicate keys; with
    ``written``, floats are :class:`gdrun.expect.Written` (they keep their text, for tolerances)."""
    if written in _loaders:
        return _loaders[written]
    import yaml
    from yaml.constructor import ConstructorError
    from yaml.nodes import MappingNode

    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class Loader(base):  # type: ignore[misc, valid-type]
        yaml_implicit_resolvers = {
            first: [(tag, rx) for tag, rx in resolvers if tag != _FLOAT_TAG]
            for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
        }

        def construct_mapping(self, node, deep=False):
            if isinstance(node, MappingNode):
                seen: set = set()
                for key_node, _ in node.value:
                    if key_node.tag == "tag:yaml.org,2002:merge":
                        continue
                    key = self.construct_object(key_node, deep=True)
                    try:
                        if key in seen:
                            raise ConstructorError(None, None, f"the key {show(key, 40)} is given twice",
                                                   key_node.start_mark)  # fmt: skip
                        seen.add(key)
                    except TypeError:  # an unhashable key: the base class says so
                        pass
            return super().construct_mapping(node, deep)

    # after the int resolver, so 10 stays an int; a plain "." or "_" is no number
    Loader.add_implicit_resolver(_FLOAT_TAG, _FLOAT_12, list("-+0123456789."))

    def float_12(loader, node):
        text = str(node.value)
        if not re.search(r"[0-9]|inf|nan", text, re.IGNORECASE):
            return loader.construct_yaml_str(node)
        value = loader.construct_yaml_float(node)
        if written:
            from .expect import Written

            return Written(value, text)
        return value

    Loader.add_constructor(_FLOAT_TAG, float_12)
    _loaders[written] = Loader
    return Loader


def load_yaml_text(text: str, source: str, written: bool = False) -> Any:
    """Parse one YAML document safely (no code runs, no Python objects), or raise one line naming
    ``source`` and the line. Bounded: nesting depth (:data:`MAX_YAML_DEPTH`) and the number of
    values with every alias expanded (:data:`MAX_YAML_NODES`), so an alias bomb fails at once."""
    import yaml

    loader = _loader(written)(text)
    try:
        _check_depth(text, source)
        node = loader.get_single_node()
        if node is None:
            return None
        _check_size(node, source)
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise GdrunError(f"{source}: {_short(problem)}{where}") from None
    except (ValueError, OverflowError, TypeError) as exc:  # e.g. an int of 5,000 digits
        raise GdrunError(f"{source}: invalid YAML value ({_short(str(exc), 60)})") from None
    finally:
        loader.dispose()


def _short(text: str, limit: int = 100) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit] + "..."


def _check_depth(text: str, source: str) -> None:
    """Refuse nesting deeper than MAX_YAML_DEPTH before anything recursive sees the document
    (libyaml's composer would crash the process, PyYAML's raise RecursionError)."""
    import yaml

    depth = 0
    for event in yaml.parse(text, Loader=_loader(False)):
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > MAX_YAML_DEPTH:
                raise GdrunError(f"{source}: nested deeper than {MAX_YAML_DEPTH} levels at line "
                                 f"{event.start_mark.line + 1}")  # fmt: skip
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1


def _check_size(root, source: str) -> None:
    """Refuse a document whose values, aliases expanded, exceed MAX_YAML_NODES or nest deeper
    than MAX_YAML_DEPTH, and an alias that contains itself; each node is visited once."""
    sizes: dict[int, tuple[int, int]] = {}  # id(node) -> (values, depth) below and including it
    busy: set[int] = set()

    def visit(node, depth: int) -> tuple[int, int]:
        key = id(node)
        if key in sizes:
            count, height = sizes[key]
        else:
            if key in busy:
                raise GdrunError(f"{source}: an alias contains itself at line {node.start_mark.line + 1}")
            if depth > MAX_YAML_DEPTH:
                raise GdrunError(f"{source}: nested deeper than {MAX_YAML_DEPTH} levels (aliases followed) at line "
                                 f"{node.start_mark.line + 1}")  # fmt: skip
            busy.add(key)
            count, height = 1, 1
            children = node.value if isinstance(node.value, list) else []
            for child in children:
                for item in child if isinstance(child, tuple) else (child,):
                    c, h = visit(item, depth + 1)
                    count, height = count + c, max(height, h + 1)
                    if count > MAX_YAML_NODES:
                        raise GdrunError(f"{source}: more than {MAX_YAML_NODES:,} values once its aliases are expanded "
                                         f"(line {node.start_mark.line + 1})")  # fmt: skip
            busy.discard(key)
            sizes[key] = (count, height)
        if depth + height - 1 > MAX_YAML_DEPTH:
            raise GdrunError(f"{source}: nested deeper than {MAX_YAML_DEPTH} levels (aliases followed) at line "
                             f"{node.start_mark.line + 1}")  # fmt: skip
        return count, height

    visit(root, 1)


def load_yaml_file(path: str | Path, written: bool = False) -> Any:
    """The YAML document of a config file, read with :func:`read_text`."""
    return load_yaml_text(read_text(path, "config file"), str(path), written)


def yaml_value(text: str, source: str) -> Any:
    """A value written on the command line (``--set lr=1e-3``, ``--opt betas=[0.9,0.99]``): YAML,
    or the text itself where it is not valid YAML."""
    if not text.strip():
        return None
    try:
        return load_yaml_text(text, source)
    except GdrunError:
        return text


__all__ = ["number", "click_number", "show", "read_text", "open_text", "load_yaml_text", "load_yaml_file", "yaml_value"]
