"""The deep fuzz campaign: the properties of tests/test_fuzz.py on thousands of inputs, with figures.

Runs each property of tests/test_fuzz.py (the expression parser, ``gdrun minimize EXPR``,
``gdrun run CONFIG`` with mutated configs, ``--set`` overrides, numbers spelt the usual ways) on hypothesis-generated
inputs, in-process, with the same time and memory bounds per input as the tests. Unlike the tests it
never stops at a failure: it groups the problems it finds by kind, keeps the shortest input of each
kind, and prints the figures (inputs tried, tracebacks, other problems, time). Seeded, so a run is
repeatable on the same code. It reports; the exit code is 1 when a problem was found, else 0.

    python benchmarks/fuzz_campaign.py                          # about 15 to 25 minutes on 2 cores
    python benchmarks/fuzz_campaign.py --scale 0.1              # a quick look
    python benchmarks/fuzz_campaign.py --seed 7 --report out.md # another draw; the problems as Markdown
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ["GDRUN_FUZZ"] = "deep"  # the long sums and deep nestings of the deep profile

from hypothesis import HealthCheck, given, seed, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from tests import test_fuzz as fuzz  # noqa: E402

#: property -> (inputs at --scale 1, strategy of the check's arguments, check)
CAMPAIGNS = {
    "parser": (30_000, st.tuples(fuzz.expressions), fuzz.check_parse),
    "minimize": (3_000, st.tuples(fuzz.expressions, fuzz.minimize_options), fuzz.check_minimize),
    "run config": (3_000, st.tuples(fuzz.mutated_configs(), st.sampled_from(fuzz.RUN_MODES)), fuzz.check_run),
    "--set": (1_500, st.tuples(fuzz.set_assignments), fuzz.check_sets),
    "numbers": (400, st.tuples(fuzz.number_spellings(), st.sampled_from(fuzz.NUMBER_PLACES)), fuzz.check_number),
}
TRACEBACK = re.compile(r"^(crash: (?!still running)|a traceback was printed|exit 4\b)")  # exit 4: error.txt holds one


def kind_of(problem: str) -> str:
    """A problem with its particulars (quoted text, numbers) blanked, to group alike ones."""
    problem = re.sub(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"", "'…'", problem)
    return re.sub(r"\d+(\.\d+)?", "N", problem)[:160]


def run_campaign(name: str, count: int, strategy, check, draw_seed: int) -> dict:
    """Feed ``count`` generated inputs to ``check``; the figures and the problems, by kind."""
    figures = {"name": name, "tried": 0, "tracebacks": 0, "with problems": 0, "kinds": {}}

    @seed(draw_seed)
    @settings(max_examples=count, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(strategy)
    def probe(args):
        figures["tried"] += 1
        try:
            found = check(*args)
        except Exception as exc:  # noqa: BLE001 - the harness's own failure is reported, not fatal
            found = [f"harness error: {type(exc).__name__}: {str(exc)[:200]}"]
        figures["with problems"] += bool(found)
        figures["tracebacks"] += any(TRACEBACK.match(p) for p in found)
        for problem in found:
            if kind_of(problem) not in figures["kinds"]:
                print(f"  {name}: new problem: {problem[:200]}", flush=True)
            kind = figures["kinds"].setdefault(kind_of(problem), {"count": 0, "problem": problem, "input": args})
            kind["count"] += 1
            if len(repr(args)) < len(repr(kind["input"])):
                kind["problem"], kind["input"] = problem, args

    start = time.perf_counter()
    probe()
    figures["seconds"] = time.perf_counter() - start
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every campaign's number of inputs")
    parser.add_argument("--seed", type=int, default=0, help="seed of the inputs drawn")
    parser.add_argument("--only", choices=sorted(CAMPAIGNS), action="append", help="run only these campaigns")
    parser.add_argument("--report", type=Path, help="also write the problems found, as Markdown, to this file")
    args = parser.parse_args()
    os.environ.setdefault("GDRUN_CACHE_DIR", tempfile.mkdtemp(prefix="gdrun-fuzz-cache-"))
    results = []
    for name, (count, strategy, check) in CAMPAIGNS.items():
        if args.only and name not in args.only:
            continue
        figures = run_campaign(name, max(1, round(count * args.scale)), strategy, check, args.seed)
        results.append(figures)
        print(f"{name:>10}: {figures['tried']:6d} inputs, {figures['tracebacks']:4d} with a traceback, "
              f"{figures['with problems']:4d} with any problem, {len(figures['kinds']):3d} kinds, "
              f"{figures['seconds']:7.1f} s", flush=True)  # fmt: skip
    lines = [f"# fuzz campaign, seed {args.seed}, scale {args.scale:g}", ""]
    for figures in results:
        lines.append(f"## {figures['name']}: {figures['tried']} inputs, {figures['tracebacks']} tracebacks, "
                     f"{figures['with problems']} with problems, {figures['seconds']:.0f} s")  # fmt: skip
        for kind in sorted(figures["kinds"].values(), key=lambda k: -k["count"]):
            lines += ["", f"- {kind['count']} x {kind['problem']}", f"  shortest input: `{kind['input']!r}`"[:1500]]
        lines.append("")
    total = sum(f["tried"] for f in results)
    tracebacks = sum(f["tracebacks"] for f in results)
    problems = sum(f["with problems"] for f in results)
    seconds = sum(f["seconds"] for f in results)
    print(f"     total: {total:6d} inputs, {tracebacks:4d} with a traceback, {problems:4d} with any problem, {seconds:.0f} s")
    if args.report:
        args.report.write_text("\n".join(lines) + "\n")
    else:
        print("\n".join(lines[2:]))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
