"""Helpers to run the SNMP exporter in-process against real agents."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from prometheus_client import generate_latest

from mspwatch.exporters.core.deadline import Deadline
from mspwatch.exporters.snmp.main import SnmpApp
from mspwatch.simulators.snmp import RECORDINGS

FROZEN_NOW = 1_790_000_000.0  # 2026-09-21T13:33:20Z: boot times in goldens are stable

SYNTHETIC = ["ups-apc-smart", "counter-wrap-before", "counter-wrap-after", "broken-values", "huge-table"]


def write_config(path: Path, extra: Mapping[str, Any] | None = None, **walk: Any) -> Path:
    """A config with one v2c auth per recording (the community selects the device)."""
    auths: dict[str, Any] = {name: {"version": 2, "community": name} for name in [*RECORDINGS, *SYNTHETIC]}
    auths.update(
        {
            "loop": {"version": 2, "community": "loop"},
            "slow": {"version": 2, "community": "slow"},
            "silent": {"version": 2, "community": "silent"},
        }
    )
    config: dict[str, Any] = {"auths": auths, "walk": {"timeout": "2s", "retries": 0, **walk}}
    config.update(extra or {})
    path.write_text(yaml.safe_dump(config))
    return path


async def scrape(
    app: SnmpApp, port: int, auth: str, *, budget: float = 30.0, module: str | None = None
) -> str:
    params = {"target": f"127.0.0.1:{port}", "auth": auth}
    if module:
        params["module"] = module
    registry = await app.probe(params, Deadline.after(budget))
    return generate_latest(registry).decode()


def normalise(text: str) -> str:
    """Blank out the one value that differs between runs: how long the scrape took."""
    return re.sub(r"^(snmp_scrape_duration_seconds) \S+$", r"\1 0.0", text, flags=re.M)


def value(text: str, series: str) -> float:
    """The value of one exact series line, e.g. ``snmp_up`` or ``x{a="b"}``."""
    for line in text.splitlines():
        name, _, val = line.rpartition(" ")
        if name == series:
            return float(val)
    raise AssertionError(f"series {series} not in output:\n{text[:3000]}")
