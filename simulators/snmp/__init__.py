"""The simulated SNMP estate: real device recordings from snmpsim-data served by snmpsim.

Each device is reached with its community (v1/v2c) or SNMPv3 context name, which is the
recording's file name without extension, e.g. ``switch-cisco-c3560``.
"""

from __future__ import annotations

import bz2
import functools
import hashlib
import os
import shutil
import subprocess
import sys
import time
from importlib.resources import files
from pathlib import Path

from mspwatch.common.procs import exited, spawn, wait_until

# community -> recording in the snmpsim-data package (data/<family>/<file>.snmprec[.bz2]).
# Chosen to cover every device family an MSP runs; each one is a real device's walk.
RECORDINGS: dict[str, str] = {
    "switch-cisco-c3560": "network/switch/cisco-c3560.snmprec.bz2",
    "switch-hpe-procurve": "network/switch/hpe-procurve-516733-b21.snmprec.bz2",
    "switch-h3c-e528": "network/switch/h3c-e528-2.snmprec.bz2",
    "router-huawei-s5720": "network/router/huawei-s5720.snmprec.bz2",
    "router-juniper-mx960": "network/router/juniper-mx960-13-3r9-13.snmprec.bz2",
    "router-vyatta": "network/router/vyatta-unknown.snmprec.bz2",
    "firewall-paloalto-pa5000": "network/firewall/paloalto-pa-5000.snmprec.bz2",
    "firewall-fortinet": "network/firewall/fortinet-xcu.snmprec.bz2",
    "ups-eaton-93e": "UPS/eaton-93e-80.snmprec.bz2",
    "pdu-apc-ap8932": "UPS/apc-8932.snmprec",
    "wifi-aruba-7210": "network/wifi/aruba-7210.snmprec.bz2",
    "server-linux": "os/linux/unknown-002.snmprec.bz2",
    "server-windows-2003": "os/windows/server-2003-5-2.snmprec.bz2",
    "storage-isilon": "storage/isilon-onefs.snmprec.bz2",
}

# Subtrees of a recording that snmpsim does not serve: fortinet-xcu's fgIpSessTable (FORTINET-
# FORTIGATE-MIB 101.11.2.1, one row per open IP session) is 441,153 of its 454,490 lines. No
# profile reads it (the sessions are counted by fgSysSesCount), and snmpsim's index of it
# took 92 s of every fresh start (6 s without it, `make demo`'s first start and each test
# session's snmpsim).
LEFT_OUT: dict[str, tuple[str, ...]] = {"firewall-fortinet": ("1.3.6.1.4.1.12356.101.11.2.1.",)}

# Recordings of our own (simulators/snmp/recordings/): synthetic devices for cases the
# public recordings lack, each documented in its first lines.
SYNTHETIC_DIR = Path(__file__).parent / "recordings"

V3_USER = "mspwatch"
V3_AUTH_PROTO = "SHA256"
V3_PRIV_PROTO = "AES256BLMT"  # snmpsim's name for AES-256 with the Blumenthal key extension


def snmpsim_data_dir() -> Path:
    return Path(str(files("snmpsim_data"))) / "data"


def freeze_line(line: str) -> str:
    """Replace a snmpsim variation (``67:numeric|rate=100``) by a fixed value.

    Some recordings let values move (uptime, CPU); tests compare output byte for byte, so
    they serve the variation's starting point instead: initial, else offset, else min, else 0.
    """
    oid, _, rest = line.partition("|")
    tag, sep, spec = rest.partition("|")
    if ":" not in tag or not sep:
        return line
    base, _, module = tag.partition(":")
    params = dict(p.partition("=")[::2] for p in spec.split(","))
    if module == "writecache":
        return f"{oid}|{base}|{params.get('value', '')}"
    for key in ("initial", "offset", "min"):
        if params.get(key):
            return f"{oid}|{base}|{params[key]}"
    return f"{oid}|{base}|0"


SYS_UPTIME = "1.3.6.1.2.1.1.3.0"
DEFAULT_UPTIME = 40 * 86400 * 100  # ticks, for recordings whose uptime starts at 0 each run
# IF-MIB columns that count (bytes or packets), by whether they count bytes.
COUNTERS = {
    "1.3.6.1.2.1.2.2.1.10": True,  # ifInOctets
    "1.3.6.1.2.1.2.2.1.16": True,  # ifOutOctets
    "1.3.6.1.2.1.31.1.1.1.6": True,  # ifHCInOctets
    "1.3.6.1.2.1.31.1.1.1.10": True,  # ifHCOutOctets
    "1.3.6.1.2.1.2.2.1.11": False,  # ifInUcastPkts
    "1.3.6.1.2.1.2.2.1.17": False,  # ifOutUcastPkts
    "1.3.6.1.2.1.31.1.1.1.7": False,  # ifHCInUcastPkts
    "1.3.6.1.2.1.31.1.1.1.11": False,  # ifHCOutUcastPkts
}
IF_OPER_STATUS = "1.3.6.1.2.1.2.2.1.8"
IF_SPEED = "1.3.6.1.2.1.2.2.1.5"  # bit/s
IF_HIGH_SPEED = "1.3.6.1.2.1.31.1.1.1.15"  # Mbit/s
MEAN_PACKET_BYTES = 700
# Living values for our synthetic APC UPS: on mains (the test recording runs on battery).
LIVING_OVERRIDES = {
    "ups-apc-smart": {
        "1.3.6.1.4.1.318.1.1.1.4.1.1.0": "2|2",  # upsBasicOutputStatus: onLine
        "1.3.6.1.4.1.318.1.1.1.2.1.2.0": "67|0",  # upsBasicBatteryTimeOnBattery
        "1.3.6.1.4.1.318.1.1.1.3.2.1.0": "66|231",  # upsAdvInputLineVoltage
        "1.3.6.1.4.1.318.1.1.1.2.2.1.0": "66|100",  # upsAdvBatteryCapacity
    }
}


def _share(*key: object) -> float:
    """A stable number in [0, 1) for ``key``: the same interface gets the same rate every run."""
    digest = hashlib.sha256(repr(key).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def live_lines(community: str, lines: list[str], since: float) -> list[str]:
    """Let a recording's uptime and interface counters move with the wall clock.

    snmpsim's ``numeric`` variation with ``atime`` computes ``initial + rate * now + offset``;
    ``offset = -rate * since`` makes each value the recorded one at ``since`` (the estate's
    first start, kept by the caller), so uptimes and counters keep counting across restarts
    instead of starting again (a restart is no reboot). Counters of interfaces that are up
    grow at 0.1-6 % of their speed, a different share per interface and direction; values
    wrap as the real ones do.

    >>> line = live_lines("sw", ["1.3.6.1.2.1.1.3.0|67|500"], since=1000.0)[0]
    >>> line
    '1.3.6.1.2.1.1.3.0|67:numeric|rate=100,atime=1,initial=500,offset=-100000,wrap=1'
    """
    values = {ln.partition("|")[0]: ln.rsplit("|", 1)[-1] for ln in lines}
    overrides = LIVING_OVERRIDES.get(community, {})
    out = []
    for line in lines:
        oid, _, rest = line.partition("|")
        tag, _, value = rest.partition("|")
        column, _, index = oid.rpartition(".")
        if oid in overrides:
            out.append(f"{oid}|{overrides[oid]}")
        elif oid == SYS_UPTIME and tag.partition(":")[0] == "67":
            initial = int(value) if value.isdigit() else DEFAULT_UPTIME
            out.append(
                f"{oid}|67:numeric|rate=100,atime=1,initial={initial},offset={-100 * since:.0f},wrap=1"
            )
        elif column in COUNTERS and tag in ("65", "70") and value.isdigit():
            if values.get(f"{IF_OPER_STATUS}.{index}") != "1":
                out.append(line)  # a down interface counts nothing
                continue
            high = values.get(f"{IF_HIGH_SPEED}.{index}", "")
            speed = int(high) * 1_000_000 if high.isdigit() and int(high) else 0
            low = values.get(f"{IF_SPEED}.{index}", "")
            speed = speed or (int(low) if low.isdigit() else 0) or 100_000_000
            rate = speed / 8 * (0.001 + 0.06 * _share(community, index, column) ** 2)
            if not COUNTERS[column]:
                rate /= MEAN_PACKET_BYTES
            rate = max(round(rate, 3), 0.001)
            out.append(
                f"{oid}|{tag}:numeric|rate={rate},atime=1,initial={value},offset={-rate * since:.0f},wrap=1"
            )
        else:
            out.append(line)
    return out


def prepare_data_dir(dest: Path, *, frozen: bool = False, living_since: float | None = None) -> Path:
    """Write the estate's recordings, uncompressed (snmpsim answers 50x faster) and without
    the subtrees in ``LEFT_OUT``, to ``dest``.

    ``frozen`` replaces the recordings' moving values by fixed ones (see :func:`freeze_line`);
    ``living_since`` lets uptimes and counters run with the wall clock from that Unix time
    (see :func:`live_lines`), as the demo does.
    """
    dest.mkdir(parents=True, exist_ok=True)
    src = snmpsim_data_dir()
    for community, rel in RECORDINGS.items():
        out = dest / f"{community}.snmprec"
        path = src / rel
        opener = bz2.open if path.suffix == ".bz2" else open
        with opener(path, "rt", encoding="utf-8", errors="surrogateescape") as fin:
            lines = fin.read().splitlines()
        if skip := LEFT_OUT.get(community):
            lines = [ln for ln in lines if not ln.startswith(skip)]
        if frozen:
            lines = [freeze_line(ln) for ln in lines]
        if living_since is not None:
            lines = live_lines(community, lines, living_since)
        _write_if_changed(out, "\n".join(lines) + "\n")
    for path in sorted(SYNTHETIC_DIR.glob("*.snmprec")):
        lines = [ln for ln in path.read_text().splitlines() if ln and not ln.startswith("#")]
        lines.sort(key=lambda ln: tuple(int(p) for p in ln.split("|", 1)[0].split(".")))
        if living_since is not None:
            lines = live_lines(path.stem, lines, living_since)
        _write_if_changed(dest / path.name, "\n".join(lines) + "\n")
    return dest


def _write_if_changed(path: Path, text: str) -> None:
    """Write ``text`` unless the file holds it already: snmpsim rebuilds its index (seconds to
    minutes) for every recording newer than the index, so an unchanged one keeps its mtime."""
    data = text.encode("utf-8", "surrogateescape")
    if not path.exists() or path.read_bytes() != data:
        path.write_bytes(data)


def snmpsim_command(
    data_dir: Path,
    cache_dir: Path,
    endpoints: list[str],
    auth_key: str,
    priv_key: str,
    logging_method: str = "null",
) -> list[str]:
    """The snmpsim command line serving ``data_dir`` on loopback ``host:port`` endpoints.

    ``logging_method``: snmpsim's, e.g. ``stdout``; only errors are logged (info is two lines
    per request).
    """
    exe = Path(sys.executable).parent / "snmpsim-command-responder"
    return [
        str(exe),
        f"--data-dir={data_dir}",
        f"--cache-dir={cache_dir}",
        *(f"--agent-udpv4-endpoint={endpoint}" for endpoint in endpoints),
        f"--v3-user={V3_USER}",
        f"--v3-auth-key={auth_key}",
        f"--v3-auth-proto={V3_AUTH_PROTO}",
        f"--v3-priv-key={priv_key}",
        f"--v3-priv-proto={V3_PRIV_PROTO}",
        f"--logging-method={logging_method}",
        "--log-level=error",
    ]


def snmpsim_env() -> dict[str, str]:
    # snmpsim refuses to run as root unless told; our tests and demo may run as root.
    return {**os.environ, "SNMPSIM_ALLOW_ROOT": "true"}


def start_snmpsim(
    data_dir: Path, cache_dir: Path, endpoints: list[str], auth_key: str, priv_key: str, log: Path
) -> subprocess.Popen[bytes]:
    """Start snmpsim on loopback endpoints (``127.0.0.1:1161``); the caller stops it by PID."""
    return spawn(snmpsim_command(data_dir, cache_dir, endpoints, auth_key, priv_key), log, env=snmpsim_env())


def recorded_sysname(recording: Path) -> str | None:
    """The sysName.0 a recording answers (``1.3.6.1.2.1.1.5.0|4|name`` or ``|4x|hex``)."""
    with recording.open(encoding="utf-8", errors="surrogateescape") as lines:
        for line in lines:
            oid, _, rest = line.rstrip("\n").partition("|")
            if oid == "1.3.6.1.2.1.1.5.0":
                tag, _, value = rest.partition("|")
                return bytes.fromhex(value).decode("utf-8", "replace") if tag == "4x" else value
    return None


def _answers(ask: list[str]) -> bool:
    return subprocess.run(ask, capture_output=True, check=False, timeout=30).returncode == 0


def wait_until_serving(
    proc: subprocess.Popen[bytes], endpoint: str, communities: list[str], timeout: float
) -> None:
    """Wait until snmpsim answers for every community (it opens a recording on first use,
    7 s for the largest), asking with net-snmp's snmpget, an independent client."""
    snmpget = shutil.which("snmpget")
    if snmpget is None:
        raise RuntimeError("snmpget not found: install the snmp package (make deps)")
    end = time.monotonic() + timeout  # one deadline for all the communities
    for community in communities:
        ask = [snmpget, "-v2c", "-c", community, "-t", "15", "-r", "0", endpoint, "1.3.6.1.2.1.1.3.0"]
        wait_until(
            f"snmpsim serving {community}",
            functools.partial(_answers, ask),
            max(0.0, end - time.monotonic()),
            interval=0.2,
            alive=exited(proc),
        )
