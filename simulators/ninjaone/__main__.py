"""Run the NinjaOne API v2 simulator.

    python -m mspwatch.simulators.ninjaone --listen 127.0.0.1:9820 \
        --scenario simulators/ninjaone/scenarios/fleet.yaml [--clock now]

Bind it to loopback: the admin routes (clock, faults) have no authentication.
"""

from __future__ import annotations

import sys

from ..serve import run_simulator
from .app import NinjaOneSimulator


def main(argv: list[str] | None = None) -> int:
    return run_simulator(
        argv,
        module="mspwatch.simulators.ninjaone",
        doc=__doc__ or "",
        default_listen="127.0.0.1:9820",
        title="NinjaOne",
        build=NinjaOneSimulator,
    )


if __name__ == "__main__":
    sys.exit(main())
