"""`make demo` runs: the stack comes up on the simulated estate and Prometheus sees every
device with its customer and site labels."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

from mspwatch.demo import Ports


def _free_offset() -> int:
    """An offset that makes every demo port free on 127.0.0.1."""
    for offset in range(21000, 40000, 137):
        ports = Ports().shifted(offset)
        try:
            for port in (ports.prometheus, ports.snmp_exporter, ports.blackbox):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
        except OSError:
            continue
        return offset
    raise RuntimeError("no free port range")


def test_demo_check(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mspwatch.cli",
            "demo",
            "--check",
            f"--data.dir={tmp_path}",
            f"--port-offset={_free_offset()}",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "15 of 15 devices up" in proc.stdout
    assert "snmp_up{customer=acme-dental, site=hq, device=core-sw1} = 1" in proc.stdout
    # Every process the demo started is gone again.
    for line in proc.stdout.splitlines():
        if line.startswith("started ") and "(pid " in line:
            pid = int(line.split("(pid ")[1].split(")")[0])
            assert (
                not Path(f"/proc/{pid}").exists()
                or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()
            )
