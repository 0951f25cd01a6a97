"""The installed shape: one import root, the same modules for the wheel, the tests and mypy;
docstring examples run; the CLI imports only the subcommand it runs."""

from __future__ import annotations

import doctest
import importlib
import os
import pkgutil
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import mspwatch

ROOT = Path(__file__).resolve().parents[2]


def source_modules() -> set[str]:
    """Every module under the ``mspwatch`` import root, found as the tests import them."""
    names = {"mspwatch"}
    for info in pkgutil.walk_packages(mspwatch.__path__, "mspwatch."):
        names.add(info.name)
    return names


def _module_of(path: str) -> str:
    parts = path.removesuffix(".py").split("/")
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def test_wheel_installs_only_the_mspwatch_import_root(tmp_path: Path) -> None:
    # Build from a copy of the tracked files, so the build leaves nothing in the checkout.
    src = tmp_path / "src"
    tracked = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, check=True, capture_output=True
    ).stdout.split(b"\0")
    for raw in filter(None, tracked):
        rel = raw.decode()
        target = src / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if (ROOT / rel).is_symlink():
            target.symlink_to(os.readlink(ROOT / rel))
        elif (ROOT / rel).is_file():
            shutil.copy2(ROOT / rel, target)
    out = tmp_path / "dist"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(out),
            str(src),
        ],
        check=True,
        capture_output=True,
    )
    (wheel_path,) = out.glob("mspwatch-*.whl")
    names = zipfile.ZipFile(wheel_path).namelist()
    roots = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert roots == {"mspwatch"}
    wheel_modules = {_module_of(n) for n in names if n.endswith(".py")}
    assert wheel_modules == source_modules()
    # data the code reads at run time travels with it
    assert "mspwatch/exporters/snmp/profiles/interfaces.yaml" in names
    # the dashboards (`mspwatch grafana push` reads them from the package) and the
    # provisioning files, byte for byte as committed, every one of them
    wheel = zipfile.ZipFile(wheel_path)
    shipped = {
        f"mspwatch/{rel}": (ROOT / rel).read_bytes()
        for rel in (r.decode() for r in filter(None, tracked))
        if rel.startswith(("dashboards/json/", "dashboards/provisioning/"))
    }
    assert len([n for n in shipped if n.endswith(".json")]) >= 10
    assert len([n for n in shipped if "/provisioning/" in n]) >= 2
    assert {n: wheel.read(n) for n in names if n in shipped} == shipped


def test_mypy_checks_every_module() -> None:
    # mypy's own source discovery from the [tool.mypy] config, as `make typecheck` runs it
    code = (
        "from mypy.main import process_options; sources, _ = process_options([]);"
        "print('\\n'.join(sorted(s.module for s in sources if (s.path or '').endswith('.py'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True, text=True)
    assert set(out.stdout.split()) == source_modules()


def test_docstring_examples_run() -> None:
    attempted = 0
    failures = []
    for name in sorted(source_modules()):
        if name.endswith("__main__"):
            continue
        module = importlib.import_module(name)
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
        attempted += result.attempted
        if result.failed:
            failures.append(name)
    assert failures == []
    assert attempted > 0


def test_exporter_command_imports_no_demo_or_simulator() -> None:
    code = (
        "import sys; from mspwatch.cli import build_parser; build_parser(['snmp-exporter']);"
        "print(sorted(m for m in sys.modules if m.startswith(('mspwatch.demo', 'mspwatch.simulators',"
        " 'mspwatch.reports', 'cryptography', 'msal'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True, text=True)
    assert out.stdout.strip() == "[]"


def test_help_texts_have_no_restructuredtext_markup() -> None:
    from mspwatch.cli import SUBCOMMANDS

    for name in SUBCOMMANDS:
        out = subprocess.run(
            [sys.executable, "-m", "mspwatch.cli", name, "--help"], cwd=ROOT, capture_output=True, text=True
        )
        assert out.returncode == 0, (name, out.stderr[-500:])
        assert "``" not in out.stdout and ":class:" not in out.stdout, name


def test_urllib3_is_not_replaced_by_urllib3_future() -> None:
    """grafana-client needs niquests, which needs urllib3-future; that project's wheel ships a
    .pth file that copies itself over ``urllib3`` at every interpreter start, so msal's
    requests (the Microsoft 365 and Intune token calls) would run on it and gain a watcher
    thread per tenant. Installed from its sdist with URLLIB3_NO_OVERRIDE=1 (Makefile,
    Dockerfile) it stays ``urllib3_future`` for niquests alone."""
    import urllib3
    import urllib3_future

    site = Path(urllib3.__file__).parents[1]
    assert not list(site.glob("urllib3_future*.pth")), "reinstall: see the Makefile's venv target"
    assert urllib3.__version__ != urllib3_future.__version__, urllib3.__version__
