"""Shared test helpers: run the real CLI entry point in-process and read what it wrote."""

from __future__ import annotations

from pathlib import Path

import pytest

from gdrun.cli import main
from gdrun.runs import RunRecord, read_run


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    """Keep the derivative cache of the test session out of the user's home."""
    mp = pytest.MonkeyPatch()
    mp.setenv("GDRUN_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    yield
    mp.undo()


class CliResult:
    def __init__(self, code: int, out: str, err: str, runs_dir: Path):
        self.code, self.out, self.err, self.runs_dir = code, out, err, runs_dir

    def run_dirs(self) -> list[Path]:
        return sorted(p for p in self.runs_dir.glob("*") if p.is_dir()) if self.runs_dir.exists() else []

    def record(self) -> RunRecord:
        dirs = self.run_dirs()
        assert len(dirs) == 1, f"expected one run directory, found {dirs}"
        return read_run(dirs[0])


@pytest.fixture
def gdrun(tmp_path, capsys):
    """``gdrun("minimize", "x2", ...)`` runs the console entry point; --runs-dir goes to tmp_path."""

    def invoke(*args: str) -> CliResult:
        runs_dir = tmp_path / "runs"
        argv = list(args)
        if argv and argv[0] in ("minimize", "run") and "--runs-dir" not in argv:
            argv += ["--runs-dir", str(runs_dir)]
        capsys.readouterr()
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        captured = capsys.readouterr()
        return CliResult(exit_info.value.code, captured.out, captured.err, runs_dir)

    return invoke
