"""The examples in the report modules' docstrings are true."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "availability",
    "charts",
    "contract",
    "frames",
    "incidents",
    "query",
    "risk",
    "mspwatch.simulators.history.write",  # the rule levels of the history backfill
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name if "." in name else f"mspwatch.reports.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
