"""Shared test helpers: golden files, promtool, a per-test process set (mspwatch.common.procs)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from mspwatch.common.procs import Processes

ROOT = Path(__file__).resolve().parent.parent


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-goldens",
        action="store_true",
        default=False,
        help="rewrite golden files from the current output (review the diff!)",
    )


@pytest.fixture
def update_goldens(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-goldens"))


def assert_golden(path: Path, actual: str, update: bool) -> None:
    """Compare ``actual`` with the golden file byte for byte; rewrite it with --update-goldens."""
    if update or not path.exists():
        if not update:
            pytest.fail(f"golden file {path} is missing; run pytest --update-goldens and review it")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8")
        return
    expected = path.read_text(encoding="utf-8")
    if actual != expected:
        import difflib

        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(keepends=True),
                actual.splitlines(keepends=True),
                fromfile=str(path),
                tofile="actual",
                n=2,
            )
        )
        pytest.fail(f"output differs from {path.name} (pytest --update-goldens rewrites it):\n{diff[:6000]}")


def require_tool(name: str) -> str:
    """Return the tool's path; a missing tool fails the test (CI installs it), never skips."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed; run `make deps` (scripts/install-system-deps.sh)")
    return path


def promtool_check_metrics(text: str) -> str:
    """Run ``promtool check metrics`` on exposition text; return its complaints ('' if none)."""
    promtool = require_tool("promtool")
    proc = subprocess.run(
        [promtool, "check", "metrics"],
        input=text.encode(),
        capture_output=True,
        timeout=60,
        check=False,
    )
    return (proc.stdout + proc.stderr).decode().strip()


@pytest.fixture
def start_process(tmp_path: Path) -> Iterator[object]:
    """Start processes for one test (``start(args, name, env)``); each is stopped by PID
    afterwards. Logs go to ``tmp_path/<name>.log``, the working directory is ``tmp_path``."""
    with Processes(tmp_path, cwd=tmp_path) as procs:
        yield lambda args, name, env=None: procs.start(name, args, env)
