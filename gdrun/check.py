"""``gdrun check``: find the configs with expectations (``expect:``), run them and report
(a table, JSON, JUnit XML). The expectation schema and its checking live in :mod:`gdrun.expect`.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from .errors import EXIT_BAD_INPUT, EXIT_EXPECTATION, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, GdrunError
from .expect import Result, applicable, check_names, evaluate
from .runs import summary_number, write_atomic

CONFIG_SUFFIXES = (".yaml", ".yml")


def load_config(path: str | Path) -> dict[str, Any]:
    """A config file, read by :func:`gdrun.config.load_yaml` (``expect:`` numbers keep their
    written decimals)."""
    from .config import load_yaml

    return load_yaml(path)


# ---------------------------------------------------------------------------- gdrun run CONFIG


def run_expecting(config, runs_dir: str | Path, output, base: Path | None = None) -> tuple[dict, list[Result], int]:
    """``gdrun run`` for a config with ``expect:``: run it, then check and show the expectations.
    Returns (summary, results, exit code): 0 when all hold (an expected divergence too), 1 when
    one fails, 130 interrupted."""
    from rich.console import Console

    from .runner import execute, prepare

    rules = applicable(config.expect, config.to_dict())
    if not rules:
        summary, code = execute(config, runs_dir, output, base)
        return summary, [], code
    check_names(rules, prepare(config, base))
    quiet = replace(output, mode="quiet", plot=False) if output.mode == "json" else output
    summary, code = execute(config, runs_dir, quiet, base)
    if output.plot and output.mode == "json":  # drawn here, so that it says where on stderr as --json does
        from .runner import plot_run

        plot_run(Path(summary["run_dir"]), output)
    results = evaluate(rules, summary, config.expect)
    if output.mode == "json":
        print(json.dumps({**summary, "expect": [r.to_json() for r in results]}, indent=2))
    elif output.mode == "table":
        console = output.console or Console()
        for r in results:
            mark = "[green]pass[/green]" if r.passed else "[bold red]FAIL[/bold red]"
            line = f"expect {r.message()}"
            console.print(f"{mark} {line}" if console.is_terminal else f"{'pass' if r.passed else 'FAIL'} {line}",
                          highlight=False, soft_wrap=True, markup=console.is_terminal)  # fmt: skip
    else:
        for r in results:
            if not r.passed:
                print(f"gdrun: expectation failed: {r.message()}", file=sys.stderr)
    if summary["status"] == "interrupted":
        return summary, results, EXIT_INTERRUPTED
    return summary, results, EXIT_OK if all(r.passed for r in results) else EXIT_EXPECTATION


# ---------------------------------------------------------------------------- gdrun check

NOT_RUN = "not run"  # the outcome of a config a Ctrl-C stopped gdrun check before
INTERRUPTED = "interrupted"  # the outcome of a config whose run a Ctrl-C cut off: nothing to judge
UNJUDGED = ("skipped", INTERRUPTED, NOT_RUN)  # outcomes without expectation results


@dataclass
class ConfigResult:
    """One config file under ``gdrun check``."""

    config: str  # the path as found
    outcome: str  # "passed", "failed", "error", "skipped", "interrupted" (its run was cut off) or "not run"
    results: list[Result] = field(default_factory=list)
    time_s: float = 0.0
    name: str | None = None
    error: str | None = None  # the one-line message of a config that could not run
    error_code: int = EXIT_BAD_INPUT  # its exit code: bad input, or 4 for a run that could not finish (disk full)
    reason: str | None = None  # the run's stop reason, or why it was skipped
    status: str | None = None  # the run's status
    run_dir: str | None = None
    started_at: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"config": self.config, "name": self.name, "outcome": self.outcome, "time_s": round(self.time_s, 6),
                "status": self.status, "reason": self.reason, "error": self.error, "run_dir": self.run_dir,
                "expectations": [r.to_json() for r in self.results]}  # fmt: skip


@dataclass
class Report:
    configs: list[ConfigResult]
    deselected: int = 0
    time_s: float = 0.0
    interrupted: bool = False

    def count(self, outcome: str) -> int:
        return sum(c.outcome == outcome for c in self.configs)

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return EXIT_INTERRUPTED
        errors = [c.error_code for c in self.configs if c.outcome == "error"]
        if errors:  # a run that could not finish (a full disk) is not the input's fault
            return EXIT_FAILED if EXIT_FAILED in errors else EXIT_BAD_INPUT
        return EXIT_EXPECTATION if self.count("failed") else EXIT_OK

    def counts(self) -> dict[str, int]:
        results = [r for c in self.configs for r in c.results]
        return {
            "configs": len(self.configs), "passed": self.count("passed"), "failed": self.count("failed"),
            "errors": self.count("error"), "skipped": self.count("skipped"),
            "interrupted": self.count(INTERRUPTED), "not_run": self.count(NOT_RUN),
            "deselected": self.deselected, "expectations": len(results),
            "expectations_failed": sum(not r.passed for r in results),
        }  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        return {"passed": self.exit_code == EXIT_OK, "exit_code": self.exit_code, "interrupted": self.interrupted,
                "counts": self.counts(), "time_s": round(self.time_s, 6),
                "configs": [c.to_json() for c in self.configs]}  # fmt: skip


def find_configs(paths: Iterable[str | Path], runs_dir: str | Path | None = None) -> list[Path]:
    """Config files named, or found in the folders named (recursively: *.yaml, *.yml), in order.
    Hidden folders, linked folders and the runs folder (whose config.yaml files are records) are
    not searched. A config file found that cannot be read (a broken link, a link loop) is kept:
    checking it reports the error."""
    found: list[Path] = []
    seen: set[str] = set()
    skip = _real(runs_dir) if runs_dir is not None else None

    def add(path: Path) -> None:
        key = _real(path)
        if key not in seen:
            seen.add(key)
            found.append(path)

    for item in paths:
        path = Path(item)
        if path.is_file():
            add(path)
        elif path.is_dir():
            before = len(found)
            for candidate in sorted(path.rglob("*"), key=lambda p: p.as_posix()):
                inside = candidate.relative_to(path).parts
                if any(part.startswith(".") for part in inside[:-1]):
                    continue
                real = _real(candidate)
                if skip is not None and (real == skip or real.startswith(skip.rstrip(os.sep) + os.sep)):
                    continue
                if candidate.suffix.lower() in CONFIG_SUFFIXES and (candidate.is_file() or candidate.is_symlink()):
                    add(candidate)
            if len(found) == before:
                raise GdrunError(f"no config files (*.yaml, *.yml) in {path}")
        elif path.is_symlink():
            raise GdrunError(f"cannot read {path}: a symbolic link to nothing (a missing target or a loop)")
        elif path.exists():
            add(path)  # a device or a pipe: checking it says why it cannot be read
        else:
            raise GdrunError(f"no such file or folder: {path}")
    return found


def _real(path: str | Path) -> str:
    """The absolute path with links resolved as far as they go (a link loop stays as it is)."""
    return os.path.realpath(path)


def check_file(path: Path, runs_dir: str | Path, warn: Callable[[str], None] | None = None) -> ConfigResult:
    """Run one config file and check its expectations; bad input becomes an "error" result."""
    from .config import validate
    from .runner import Output, execute, prepare

    shown = path.as_posix()
    started = time.perf_counter()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
    result = ConfigResult(shown, "error", started_at=stamp, name=path.stem)
    try:
        raw = load_config(path)
        if raw.get("expect") is None:
            result.outcome, result.reason = "skipped", "no expect: part"
            return result
        raw.setdefault("name", path.stem if path.name != "config.yaml" else None)
        if "sweep" in raw:
            _check_sweep_file(path, raw, runs_dir, result)
            return result
        if "compare" in raw:
            _check_compare_file(path, runs_dir, result)
            return result
        config = validate(raw)
        result.name = config.name or result.name
        rules = applicable(config.expect, config.to_dict())
        if not rules:
            result.outcome, result.reason = "skipped", "no expect: rule applies to this config"
            return result
        check_names(rules, prepare(config, path.parent))
        where = (lambda message: warn(f"{shown}: {message}")) if warn else None
        summary, _ = execute(config, runs_dir, Output(mode="quiet", command=("gdrun", "check", shown), warn=where),
                             path.parent)  # fmt: skip
    except GdrunError as exc:
        result.error, result.error_code = str(exc), exc.exit_code
        return result
    finally:
        result.time_s = time.perf_counter() - started
    result.results = evaluate(rules, summary, config.expect)
    result.status, result.reason, result.run_dir = summary["status"], summary.get("reason"), summary.get("run_dir")
    result.outcome = "passed" if all(r.passed for r in result.results) else "failed"
    return result


def evaluate_sweep(expect: Any, sweep_dir: Path, sweep, label_passed: bool = True) -> Iterator[tuple[int, Result]]:
    """Check every config of a finished sweep against the rules whose ``when`` it meets, reading
    results.csv one row at a time: (config number, result) in the file's order. ``sweep`` is the
    validated :class:`~gdrun.sweeps.Sweep`; a result names its config (a passed one only with
    ``label_passed``: a million configs' labels cost more than their checks)."""
    from .sweeps import iter_results

    rules_all = expect if isinstance(expect, list) else [expect] if expect is not None else []
    conditional = any(isinstance(rule, dict) and rule.get("when") for rule in rules_all)
    about_params = any(isinstance(rule, dict) and "params" in rule for rule in rules_all)
    unconditional = applicable(expect, {})
    for row in iter_results(sweep_dir):
        i = int(row["id"])
        rules = applicable(expect, sweep.values(i)) if conditional else unconditional
        if not rules:
            continue
        summary = {"status": row["status"], "iterations": int(row["steps"]), "value": summary_number(row["value"])}
        if about_params:
            summary["params"] = {k[len("param."):]: float(v) for k, v in row.items() if k.startswith("param.") and v != ""}
        if row.get("regime"):  # the sweep ran with --explain
            summary["diagnostics"] = {"regime": row["regime"], "verdict": row.get("verdict")}
        for result in evaluate(rules, summary, expect):
            if label_passed or not result.passed:
                overrides = sweep.expansion.overrides(i)
                result.expectation = f"config {i} ({', '.join(f'{k}={v}' for k, v in overrides.items())}): {result.expectation}"
            yield i, result


def _check_sweep_file(path: Path, raw: dict[str, Any], runs_dir: str | Path, result: "ConfigResult") -> None:
    """A config with a ``sweep:`` part: run the sweep (batched) and check each of its configs."""
    from .config import validate
    from .sweeps import SweepOptions, prepare_sweep, run_sweep, validate_sweep

    spec = validate_sweep(raw.pop("sweep") or {})
    validate(raw)  # the base config alone, for its one-line errors
    summary, _ = run_sweep(raw, spec, SweepOptions(runs_dir=Path(runs_dir), base_dir=str(path.parent),
                                                  command=("gdrun", "check", path.as_posix())))  # fmt: skip
    found = evaluate_sweep(validate(raw).expect, Path(summary["sweep_dir"]), prepare_sweep(raw, spec)[1])
    result.results = [r for _, r in sorted(found, key=lambda pair: pair[0])]  # by config, each config's rules in order
    result.status = summary["status"] if summary["status"] == "interrupted" else None
    result.reason = f"sweep of {summary['configs']} configs in {summary['batches']} batch(es)"
    result.run_dir = summary["sweep_dir"]
    result.outcome = "passed" if all(r.passed for r in result.results) else "failed"


def _check_compare_file(path: Path, runs_dir: str | Path, result: "ConfigResult") -> None:
    """A config with a ``compare:`` part: run the tuned comparison and check its rules."""
    from .compare import load_compare_config, run_comparison, validate_protocol
    from .expect import evaluate_compare, validate_compare_expect

    raw, expect = load_compare_config(path)
    protocol = validate_protocol(raw)
    rules = validate_compare_expect(expect, protocol.variants)
    summary, where = run_comparison(protocol, runs_dir, expect=expect)
    result.results = evaluate_compare(rules, summary) if summary["status"] == "completed" else []
    result.status = summary["status"] if summary["status"] == "interrupted" else None
    result.reason = f"{len(protocol.variants)} optimizers tuned on {protocol.starts} starts, ranked on {protocol.heldout}"
    result.run_dir = str(where)
    if summary["status"] == "interrupted":
        result.outcome = INTERRUPTED
    else:
        result.outcome = "passed" if all(r.passed for r in result.results) else "failed"


def check(paths: Iterable[str | Path], runs_dir: str | Path = "runs", patterns: Iterable[str] = (),
          warn: Callable[[str], None] | None = None, progress: Callable[[str], Any] | None = None) -> Report:  # fmt: skip
    """Find the configs, keep those ``patterns`` select (any; substring of the path, any case),
    run each one with expectations, and collect the results. A Ctrl-C stops it early: the report
    keeps what ran and lists the rest as "not run"."""
    from .engine import Interrupt

    started = time.perf_counter()
    files = find_configs(paths, runs_dir)
    patterns = [p.lower() for p in patterns]
    selected = [f for f in files if not patterns or any(p in f.as_posix().lower() for p in patterns)]
    if patterns and not selected:
        raise GdrunError(f"-k {' / '.join(repr(p) for p in patterns)} selects none of the {len(files)} config file(s)")
    report = Report([], deselected=len(files) - len(selected))
    with Interrupt() as interrupt:  # the runs' own Interrupts share its flag: one Ctrl-C stops the check
        for path in selected:
            if interrupt.requested:
                break
            if progress is not None:
                progress(path.as_posix())
            try:
                result = check_file(path, runs_dir, warn)
            except KeyboardInterrupt:  # a second Ctrl-C: this config did not finish either
                break
            report.configs.append(result)
            if result.status == "interrupted":  # a run cut short says nothing about its expectations
                result.outcome, result.results = INTERRUPTED, []
                break
    rest = selected[len(report.configs):]
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
    report.configs += [ConfigResult(p.as_posix(), NOT_RUN, name=p.stem, reason="gdrun check was interrupted first",
                                    started_at=stamp) for p in rest]  # fmt: skip
    report.interrupted = bool(rest) or any(c.outcome == INTERRUPTED for c in report.configs)
    report.time_s = time.perf_counter() - started
    return report


# ---------------------------------------------------------------------------- output


def _rows(report: Report) -> list[tuple[str, str, str, str, str, str]]:
    rows = []
    for c in report.configs:
        if c.outcome in UNJUDGED:
            continue
        first = True
        if c.outcome == "error":
            rows.append((c.config, "(config)", "-", "-", "ERROR", f"{c.time_s:.2f} s"))
            continue
        for r in c.results:
            rows.append((c.config if first else "", r.expectation, r.expected_text(), r.got_text(),
                         "pass" if r.passed else "FAIL", f"{c.time_s:.2f} s" if first else ""))  # fmt: skip
            first = False
    return rows


def footer(report: Report) -> str:
    n = report.counts()
    parts = [f"{n['passed']} passed", f"{n['failed']} failed", f"{n['errors']} error{'s' if n['errors'] != 1 else ''}"]
    extra = []
    if n["skipped"]:
        extra.append(f"{n['skipped']} skipped (nothing to check)")
    if n["deselected"]:
        extra.append(f"{n['deselected']} deselected by -k")
    checked = n["configs"] - n["skipped"] - n["interrupted"] - n["not_run"]
    text = f"{checked} config{'s' if checked != 1 else ''} checked: {', '.join(parts)}"
    text += f"; {n['expectations'] - n['expectations_failed']}/{n['expectations']} expectations held"
    if extra:
        text += f"; {', '.join(extra)}"
    text += f"; {report.time_s:.2f} s"
    if report.interrupted:
        cut = f"{n['interrupted']} config cut off, " if n["interrupted"] else ""
        text += f" (interrupted: {cut}{n['not_run']} config{'s' if n['not_run'] != 1 else ''} did not run)"
    return text


def print_report(report: Report, console=None) -> None:
    """The results table (rich on a terminal, plain aligned text elsewhere), the failures and
    errors one per line, then a one-line footer."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    rows = _rows(report)
    titles = ("config", "expectation", "expected", "got", "result", "time")
    if rows and console.is_terminal:
        from rich import box
        from rich.text import Text

        table = Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False)
        for title in titles:  # a long path folds; the numbers never do
            table.add_column(title, justify="right" if title == "time" else "left", overflow="fold",
                             no_wrap=title != "config")  # fmt: skip
        style = {"pass": "green", "FAIL": "bold red", "ERROR": "bold red"}
        for row in rows:
            table.add_row(*(Text(cell) for cell in row[:4]), Text(row[4], style=style[row[4]]), Text(row[5]))
        console.print(table)
    elif rows:
        widths = [max(len(t), *(len(r[i]) for r in rows)) for i, t in enumerate(titles)]
        for row in (titles, *rows):
            cells = [cell.rjust(w) if i == 5 else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths))]
            console.print("  ".join(cells).rstrip(), highlight=False, soft_wrap=True, markup=False)
    for c in report.configs:
        if c.outcome == "error":
            console.print(f"ERROR {c.config}: {c.error}", highlight=False, soft_wrap=True, markup=False)
        if c.outcome == INTERRUPTED:
            console.print(f"INTERRUPTED {c.config}: {c.reason} (not judged)", highlight=False, soft_wrap=True,
                          markup=False)  # fmt: skip
        for r in c.results:
            if not r.passed:
                why = f" ({c.reason})" if r.kind == "status" and c.reason else ""
                console.print(f"FAIL {c.config} {r.message()}{why}", highlight=False, soft_wrap=True, markup=False)
    console.print(footer(report), highlight=False, soft_wrap=True, markup=False)


def junit_xml(report: Report) -> str:
    """JUnit XML: one <testsuite> per config file, one <testcase> per expectation; a failed
    expectation is a <failure> naming expected and got, a config that could not run an <error>,
    a config without expectations one <skipped> testcase."""
    import socket
    import xml.etree.ElementTree as ET

    host = socket.gethostname() or "localhost"
    root = ET.Element("testsuites", name="gdrun check")
    for i, c in enumerate(report.configs):
        suite = ET.SubElement(root, "testsuite", name=c.config, id=str(i), package="gdrun.check", hostname=host,
                              timestamp=c.started_at, time=f"{c.time_s:.6f}")  # fmt: skip
        if c.run_dir or c.status:
            properties = ET.SubElement(suite, "properties")
            for key in ("name", "status", "reason", "run_dir"):
                if getattr(c, key) is not None:
                    ET.SubElement(properties, "property", name=key, value=str(getattr(c, key)))
        tests = failures = errors = skipped = 0
        if c.outcome == "error":
            case = ET.SubElement(suite, "testcase", name="config", classname=c.config, time=f"{c.time_s:.6f}")
            ET.SubElement(case, "error", message=c.error or "", type="GdrunError").text = c.error
            tests, errors = 1, 1
        elif c.outcome in UNJUDGED:
            case = ET.SubElement(suite, "testcase", name="expect", classname=c.config, time="0")
            reason = {"skipped": c.reason or "skipped", INTERRUPTED: f"{c.reason} (not judged)"}.get(
                c.outcome, f"{NOT_RUN}: {c.reason}")  # fmt: skip
            ET.SubElement(case, "skipped", message=reason)
            tests, skipped = 1, 1
        for j, r in enumerate(c.results):
            case = ET.SubElement(suite, "testcase", name=r.expectation, classname=c.config,
                                 time=f"{c.time_s:.6f}" if j == 0 else "0")  # fmt: skip
            tests += 1
            if not r.passed:
                failures += 1
                detail = r.message() + (f"\nrun status: {c.status} ({c.reason})" if c.status else "")
                detail += f"\nrun dir: {c.run_dir}" if c.run_dir else ""
                ET.SubElement(case, "failure", message=r.message(), type="ExpectationFailed").text = detail
        suite.attrib.update(tests=str(tests), failures=str(failures), errors=str(errors), skipped=str(skipped))
        # attribute order as readers expect it: name, tests, failures, errors, skipped, time...
        ordered = {k: suite.attrib[k] for k in ("name", "tests", "failures", "errors", "skipped", "time", "timestamp",
                                                  "hostname", "id", "package")}  # fmt: skip
        suite.attrib.clear()
        suite.attrib.update(ordered)
    # junit-10.xsd (Jenkins) allows no "skipped" on <testsuites>; each <testsuite> has its own
    totals = {k: str(sum(int(s.get(k)) for s in root)) for k in ("tests", "failures", "errors")}
    root.attrib.update(totals, time=f"{report.time_s:.6f}")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def check_command(paths: list[Path], runs_dir: Path, patterns: list[str], junit: Path | None, as_json: bool) -> int:
    """``gdrun check``: run, report (table or JSON, and JUnit XML if asked), return the exit code."""
    from rich.console import Console

    from .engine import Interrupt

    console = Console()
    warn = lambda message: print(f"gdrun: warning: {message}", file=sys.stderr)  # noqa: E731
    with Interrupt():  # a Ctrl-C while configs are found or loaded still ends with the report
        if console.is_terminal and not as_json:
            with console.status("checking") as status:
                report = check(paths, runs_dir, patterns, warn, lambda name: status.update(f"checking {name}"))
        else:
            report = check(paths, runs_dir, patterns, warn)
    if junit is not None:
        try:
            junit.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(junit, junit_xml(report))
        except OSError as exc:
            raise GdrunError(f"cannot write the JUnit report {junit}: {exc.strerror or exc}") from None
    if as_json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        print_report(report, console)
    return report.exit_code


__all__ = ["check", "check_file", "check_command", "evaluate_sweep", "find_configs", "junit_xml", "load_config",
           "run_expecting"]  # fmt: skip
