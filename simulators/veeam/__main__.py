"""Run the Veeam B&R REST API simulator.

    python -m mspwatch.simulators.veeam --listen 127.0.0.1:9419 \
        --scenario simulators/veeam/scenarios/acme.yaml [--clock now]

Bind it to loopback: the admin routes (clock, faults) have no authentication.
"""

from __future__ import annotations

import sys

from ..serve import run_simulator
from .app import VeeamSimulator


def main(argv: list[str] | None = None) -> int:
    return run_simulator(
        argv,
        module="mspwatch.simulators.veeam",
        doc=__doc__ or "",
        default_listen="127.0.0.1:9419",
        title="Veeam",
        build=VeeamSimulator,
    )


if __name__ == "__main__":
    sys.exit(main())
