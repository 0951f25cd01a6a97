"""Wait for an SNMP agent to answer, with net-snmp's snmpget (a real independent client)."""

from __future__ import annotations

import subprocess
import time

from tests.conftest import require_tool, wait_for_port


def wait_for_agent(port: int, community: str, proc: subprocess.Popen[bytes], timeout: float) -> None:
    snmpget = require_tool("snmpget")
    wait_for_port(port, udp=True, timeout=timeout, proc=proc)
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"agent exited with code {proc.returncode}")
        result = subprocess.run(
            [
                snmpget,
                "-v2c",
                "-c",
                community,
                "-t",
                "15",
                "-r",
                "0",
                f"127.0.0.1:{port}",
                "1.3.6.1.2.1.1.3.0",
            ],
            capture_output=True,
            check=False,
            timeout=30,
        )
        if result.returncode == 0:
            return
        time.sleep(0.2)
    raise TimeoutError(f"SNMP agent on port {port} did not answer within {timeout}s")
