"""Optimizers side by side: ``gdrun minimize rosenbrock --optimizer sgd,sgd:momentum=0.9,adam``.

Each variant is an ordinary run with its own run directory; the comparison ends with one table
ranked by final value, then by the steps needed to come within ``reach`` of the best known value.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Any

from rich.table import Table

from .config import Config, parse_spec, split_top_level, validate
from .errors import GdrunError
from .runs import read_run, summary_number


def optimizer_variant(label: str) -> tuple[str, float | None, dict[str, Any]]:
    """``"adam:lr=0.01:eps=1e-8"`` -> ("adam", 0.01, {"eps": 1e-8}): the optimizer, the variant's
    learning rate (None: the run's) and its other options, which are the optimizer's."""
    spec = parse_spec("--optimizer", label)
    name = spec.pop("name")
    return name, spec.pop("lr", None), spec


def variants(config: Config, text: str) -> list[tuple[str, Config]]:
    """``"sgd,sgd:momentum=0.9,adam:lr=0.01"`` -> one validated config per variant, with a label."""
    labels = [v for v in split_top_level(text) if v]
    if len(labels) < 2:
        raise GdrunError(f"a comparison needs at least two optimizers, got {text!r}")
    if len(set(labels)) != len(labels):
        raise GdrunError(f"the optimizer list names a variant twice: {text!r}")
    from .optim import OPTIMIZER_OPTIONS

    out = []
    for label in labels:
        name, lr, spec = optimizer_variant(label)
        defaults = OPTIMIZER_OPTIONS.get(name, {})  # spelled out, so variants of one optimizer share a batch
        options = {**defaults, **config.optimizer_options, **spec} if name == config.optimizer else {**defaults, **spec}
        raw = {**config.to_dict(), "optimizer": name, "optimizer_options": options, "lr": config.lr if lr is None else lr}
        raw["name"] = f"{config.name or 'compare'}-{name}"
        raw = {k: v for k, v in raw.items() if v is not None or k in ("init", "seed")}
        out.append((label, validate(raw)))
    return out


NOT_RUN = "not run"  # a variant a Ctrl-C stopped before it started: no run directory


def compare(runs: list[tuple[str, Config]], runs_dir: str | Path, output, reach: float, base: Path | None = None):
    """Run every variant (those of one optimizer kind as one batch), then rank them. One Ctrl-C
    stops the whole comparison: the running batch ends ``interrupted``, the rest do not start.
    Returns (ranking rows, exit code)."""
    from .display import report_console
    from .engine import Interrupt
    from .errors import EXIT_INTERRUPTED
    from .runner import execute_batch, prepare
    from .sweeps import structure

    console = output.console or report_console()
    groups: dict[str, list[int]] = {}
    for i, (_, config) in enumerate(runs):
        groups.setdefault(structure(config), []).append(i)
    by_variant: dict[int, dict] = {}
    with Interrupt() as interrupt:  # the runs' own Interrupts share its flag
        for _, config in runs:  # every variant's input is checked before any of them runs
            prepare(config, base)
        for members in groups.values():
            if interrupt.requested:
                break
            labels = ", ".join(runs[i][0] for i in members)
            if output.mode == "table":
                console.print(f"[bold]{labels}[/bold] ({'one batch' if len(members) > 1 else 'one run'}) ...", highlight=False)
            results = execute_batch([runs[i][1] for i in members], runs_dir, replace(output, mode="quiet", plot=False), base)
            for i, (summary, _) in zip(members, results):
                by_variant[i] = summary
                if output.mode == "table":
                    console.print(f"  {runs[i][0]}: {summary['status']}, f = {summary['value']}", highlight=False)
    skipped = [label for i, (label, _) in enumerate(runs) if i not in by_variant]
    if skipped and output.mode == "table":
        console.print(f"  {', '.join(skipped)}: {NOT_RUN} (interrupted)", highlight=False)
    summaries = [(label, by_variant.get(i)) for i, (label, _) in enumerate(runs)]
    rows = rank(summaries, reach)
    if output.mode == "json":
        import json

        interrupted = bool(skipped) or any(row["status"] == "interrupted" for row in rows)
        print(json.dumps({"reach": reach, "interrupted": interrupted, "ranking": rows}, indent=2))
    elif output.mode == "table":
        console.print(ranking_table(rows, reach))
    if output.plot:  # every variant on one picture, in the best variant's directory
        from pathlib import Path

        from .runner import plot_run

        ran = {id(s): Path(s["run_dir"]) for _, s in summaries if s is not None}
        best_first = [ran[id(by_variant[i])] for i in _ranked_members(rows, runs, by_variant)]
        plot_run(best_first, output, console)
    worst = max(_exit(s["status"]) for _, s in summaries if s is not None) if by_variant else EXIT_INTERRUPTED
    return rows, EXIT_INTERRUPTED if skipped else worst


def _ranked_members(rows: list[dict[str, Any]], runs: list, by_variant: dict[int, dict]) -> list[int]:
    """The variants that ran, in the ranking's order (best first)."""
    index = {label: i for i, (label, _) in enumerate(runs)}
    return [index[row["optimizer"]] for row in rows if index.get(row["optimizer"]) in by_variant]


def _exit(status: str) -> int:
    from .errors import STATUS_EXIT_CODES

    return STATUS_EXIT_CODES[status]


def _value(value: Any) -> float:
    """A summary's number, nan where there is none (ranks last)."""
    number = summary_number(value)
    return math.nan if number is None else number


def rank(summaries: list[tuple[str, dict | None]], reach: float) -> list[dict[str, Any]]:
    """One row per variant, best first: by final value, then steps to reach the best value.
    A variant without a summary (None) did not run: it ranks last, with no numbers."""
    values = [_value(s["value"]) if s is not None else math.nan for _, s in summaries]
    ran = [s for _, s in summaries if s is not None]
    known = [m["value"] for m in ((ran[0].get("known_minima") if ran else None) or [])]
    best = min(known) if known else min((v for v in values if math.isfinite(v)), default=math.nan)
    rows = []
    for (label, summary), value in zip(summaries, values):
        if summary is None:
            rows.append({"optimizer": label, "status": NOT_RUN, "value": None, "grad_norm": None, "steps": None,
                         "steps_to_reach": None, "wall_time_s": None, "run_dir": None})  # fmt: skip
            continue
        metrics = read_run(summary["run_dir"]).metrics
        reached = None
        if math.isfinite(best) and len(metrics.get("value", [])):
            hits = [int(step) for step, v in zip(metrics["step"], metrics["value"]) if v - best <= reach]
            reached = hits[0] if hits else None
        rows.append({
            "optimizer": label, "status": summary["status"], "value": summary["value"],
            "grad_norm": summary["grad_norm"], "steps": summary["iterations"], "steps_to_reach": reached,
            "wall_time_s": summary["wall_time_s"], "run_dir": summary["run_dir"],
        })  # fmt: skip
    rows.sort(key=lambda r: (r["status"] == NOT_RUN, not math.isfinite(_value(r["value"])), _value(r["value"]),
                             r["steps_to_reach"] if r["steps_to_reach"] is not None else math.inf))  # fmt: skip
    for i, row in enumerate(rows, 1):
        row["rank"] = i
    return rows


def ranking_table(rows: list[dict[str, Any]], reach: float) -> Table:
    table = Table(title=f"ranked by final f, then steps to come within {reach:g} of the best known f",
                  title_justify="left")  # fmt: skip
    widest = max((len(row["optimizer"]) for row in rows), default=9)
    for column in ("#", "optimizer", "status", "final f", "|grad|", f"steps to f*+{reach:g}", "time"):
        table.add_column(column, justify="left" if column in ("optimizer", "status") else "right", no_wrap=True,
                         min_width=widest if column == "optimizer" else None)  # fmt: skip
    for row in rows:
        reached = "-" if row["steps_to_reach"] is None else str(row["steps_to_reach"])
        if row["status"] == NOT_RUN:
            table.add_row(str(row["rank"]), row["optimizer"], row["status"], "-", "-", "-", "-")
            continue
        table.add_row(str(row["rank"]), row["optimizer"], row["status"], f"{_value(row['value']):.6g}",
                      f"{_value(row['grad_norm']):.3g}", reached, f"{row['wall_time_s']:.2f} s")  # fmt: skip
    return table
