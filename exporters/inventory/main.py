"""``mspwatch inventory-exporter``: the inventory's state for the SLO rules.

GET /inventory                    every customer
GET /inventory?target=<customer>  one customer (a Prometheus shard scraping its own customers)

Serves which devices exist, which sites are in maintenance and whether each customer's
contract hours are running, from the same inventory file ``mspwatch targets`` reads
(``--inventory.file``, an alias of ``--config.file``). SIGHUP or POST /-/reload re-reads it;
a bad file keeps the previous one and names the file and field.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from prometheus_client.core import Metric

from mspwatch.exporters.core.cli import register_exporter
from mspwatch.exporters.core.deadline import Deadline
from mspwatch.exporters.core.probe import BadRequest, ProbeApp
from mspwatch.inventory import Inventory, load_inventory

from .mapping import families
from .state import inventory_state

DEFAULT_PORT = 9821


class InventoryReason(StrEnum):
    DEADLINE = "deadline"  # the only way a scrape of local state can fail...
    INTERNAL = "internal"  # ...but for a bug: the scrape crashed, see the exporter's log


class InventoryApp(ProbeApp[str | None]):
    namespace = "inventory"
    probe_path = "/inventory"
    reasons = InventoryReason
    subject = "inventory"
    up_help = "Whether the inventory state was computed (1) or not (0)."

    def __init__(self, inventory_file: Path, *, clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        self.inventory_file = inventory_file
        self._clock = clock
        self.inventory: Inventory = load_inventory(inventory_file)

    def reload(self) -> None:
        self.inventory = load_inventory(self.inventory_file)  # raises ConfigError, keeps the old

    def target(self, params: Mapping[str, str]) -> str | None:
        name = params.get("target", "").strip()
        if name and name not in {c.name for c in self.inventory.customers}:
            raise BadRequest(f"unknown customer {name!r}")
        return name or None

    async def scrape(self, target: str | None, deadline: Deadline) -> list[Metric]:
        now = datetime.fromtimestamp(self._clock(), UTC)
        return families(inventory_state(self.inventory, now, target))


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = register_exporter(
        sub,
        "inventory-exporter",
        help="serve the inventory's devices, maintenance windows and contract hours for the SLO rules",
        description=__doc__,
        default_port=DEFAULT_PORT,
        default_config="inventory.yml",
        build=InventoryApp,
    )
    parser.add_argument(
        "--inventory.file",
        dest="config_file",
        type=Path,
        metavar="FILE",
        help="the inventory YAML file (the same as --config.file; default: inventory.yml)",
    )
