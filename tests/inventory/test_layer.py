"""The inventory is the bottom layer above mspwatch.common: it imports nothing else of ours."""

from __future__ import annotations

import ast
from pathlib import Path

import mspwatch.inventory

PACKAGE = Path(mspwatch.inventory.__file__).parent


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_the_inventory_imports_only_common() -> None:
    modules = sorted(PACKAGE.glob("*.py"))
    assert len(modules) >= 8
    for path in modules:
        ours = {name for name in _imports(path) if name.split(".")[0] == "mspwatch"}
        assert {name for name in ours if not name.startswith("mspwatch.common")} == set(), path.name


def test_the_check_sees_a_violation(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from mspwatch.exporters.snmp import config\n", encoding="utf-8")
    assert _imports(bad) == {"mspwatch.exporters.snmp"}
