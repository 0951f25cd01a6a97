#!/usr/bin/env python3
"""SNMP benchmark: mspwatch's snmp-exporter vs snmp_exporter vs snmpbulkwalk on real agents.

Run as root with ``make bench`` (or ``.venv/bin/python benchmarks/snmp_bench.py --help``).
It never runs as part of ``make test``.

What it does, all on loopback inside a private network namespace:

1. creates the namespace and ``ip tuntap`` tap devices in it (the dummy module is missing on
   our machines), so net-snmp's ``snmpd`` has a large IF-MIB ifTable;
2. starts ``snmpd`` agents with their own config (read-only v2c community) on 127.0.0.1;
3. polls them, one scrape at a time, with mspwatch (fast client and, for reference, the
   pysnmp client), prometheus-snmp-exporter 0.21 (an ``if_mib`` module written here, walking
   the same IF-MIB columns as our ``interfaces`` profile) and ``snmpbulkwalk`` as the floor,
   and prints the process CPU per 1,000 values (from /proc around N scrapes; values counted
   from each scrape's output) and values per second;
4. does the same against snmpsim serving one real switch recording, for reference;
5. runs a throughput test: many concurrent scrapes of ~500-value devices against several
   agents, to show whether 1,000 devices x 500 values fit in a 60-second interval.

Every loop is bounded in count and time. Processes are stopped by PID and the namespace is
deleted at the end, also on errors and Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import bz2
import contextlib
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mspwatch.common.procs import CLK_TCK, Processes, cpu_seconds, wait_for_port  # noqa: E402

IF_TABLE = "1.3.6.1.2.1.2.2"
IF_X_TABLE = "1.3.6.1.2.1.31.1.1"
SNMPD_BASE_PORT = 11161
SNMPSIM_PORT = 11261
MSPWATCH_PORT = 19816
MSPWATCH_PYSNMP_PORT = 19817
MSPWATCH_PROFILED_PORT = 19818
SNMP_EXPORTER_PORT = 19116
SCRAPE_TIMEOUT = 30.0
SNMPSIM_RECORDING = "network/switch/cisco-n5000.snmprec.bz2"  # a switch with 60+ ports


# --- processes ------------------------------------------------------------------------------


def children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def run(args: list[str], timeout: float = 60) -> str:
    return subprocess.run(args, capture_output=True, check=True, timeout=timeout, text=True).stdout


def wait_udp_agent(port: int, community: str, proc: subprocess.Popen[bytes], timeout: float) -> None:
    """Wait until the agent answers a GET of sysUpTime (snmpget, bounded by ``timeout``)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"agent on port {port} exited with {proc.returncode}")
        res = subprocess.run(
            [
                "snmpget",
                "-v2c",
                "-c",
                community,
                "-t",
                "1",
                "-r",
                "0",
                "-On",
                f"127.0.0.1:{port}",
                "1.3.6.1.2.1.1.3.0",
            ],
            capture_output=True,
            timeout=10,
            check=False,
        )
        if res.returncode == 0:
            return
        time.sleep(0.3)
    raise TimeoutError(f"agent on port {port} did not answer within {timeout}s")


# --- HTTP scrapes ---------------------------------------------------------------------------


async def http_get(port: int, path: str) -> tuple[int, bytes]:
    """A minimal HTTP/1.0 GET, so the load generator costs little CPU."""
    async with asyncio.timeout(SCRAPE_TIMEOUT + 5):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(
                f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n"
                f"X-Prometheus-Scrape-Timeout-Seconds: {SCRAPE_TIMEOUT}\r\n\r\n".encode()
            )
            data = await reader.read()
        finally:
            writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def _mspwatch_ok(body: bytes) -> bool:
    """Up, and every walk of the interfaces profile complete (a lost datagram fails it)."""
    return _gauge(body, "snmp_up") == 1 and _gauge(body, 'snmp_profile_success{profile="interfaces"}') == 1


def _gauge(body: bytes, name: str) -> float:
    m = re.search(rb"^" + re.escape(name.encode()) + rb" (\S+)$", body, re.M)
    return float(m.group(1)) if m else float("nan")


@dataclass
class Tool:
    """Something that scrapes one agent and says how many values it read."""

    name: str
    pid: int | None  # whose CPU to measure; None: child processes (snmpbulkwalk)

    def scrape(self, target: str, community: str) -> int:
        raise NotImplementedError


class MspwatchTool(Tool):
    def __init__(self, name: str, pid: int, port: int) -> None:
        super().__init__(name, pid)
        self.port = port

    def scrape(self, target: str, community: str) -> int:
        auth = "sim" if community != "public" else "public_v2"
        status, body = asyncio.run(
            http_get(self.port, f"/snmp?target={target}&auth={auth}&module=interfaces")
        )
        if status != 200 or not _mspwatch_ok(body):
            raise RuntimeError(f"{self.name}: scrape of {target} failed: {status} {body[:300]!r}")
        return int(_gauge(body, "snmp_scrape_values_returned"))


class SnmpExporterTool(Tool):
    def __init__(self, name: str, pid: int, port: int) -> None:
        super().__init__(name, pid)
        self.port = port

    def scrape(self, target: str, community: str) -> int:
        module = "if_mib" if community == "public" else "if_mib_sim"
        status, body = asyncio.run(http_get(self.port, f"/snmp?target={target}&module={module}"))
        if status != 200:
            raise RuntimeError(f"{self.name}: scrape of {target} failed: {status} {body[:300]!r}")
        return int(_gauge(body, "snmp_scrape_pdus_returned"))


class BulkwalkTool(Tool):
    def scrape(self, target: str, community: str) -> int:
        values = 0
        for table in (IF_TABLE, IF_X_TABLE):
            out = run(["snmpbulkwalk", "-v2c", "-c", community, "-Cr25", "-On", "-t", "5", target, table])
            values += out.count("\n")
        return values


@dataclass
class Result:
    agent: str
    tool: str
    scrapes: int
    values: int
    cpu: float
    wall: float
    others: float = 0.0  # cores busy with everything else on the machine meanwhile
    round: int = 0
    ratio: float | None = None  # median over rounds of CPU/value vs snmp_exporter's same round

    @property
    def cpu_ms_per_1000(self) -> float:
        return 1e6 * self.cpu / max(self.values, 1)

    @property
    def values_per_second(self) -> float:
        return self.values / max(self.wall, 1e-9)


def measure(tool: Tool, agent: str, target: str, community: str, scrapes: int, max_seconds: float) -> Result:
    """Warm up, then run up to ``scrapes`` sequential scrapes (at least 3, at most ``max_seconds``)."""
    for _ in range(2):
        tool.scrape(target, community)
    cpu0 = cpu_seconds(tool.pid) if tool.pid else children_cpu()
    busy0 = machine_busy()[0]
    start = time.monotonic()
    values = done = 0
    while done < scrapes and (done < 3 or time.monotonic() - start < max_seconds):
        values += tool.scrape(target, community)
        done += 1
    wall = time.monotonic() - start
    cpu = (cpu_seconds(tool.pid) if tool.pid else children_cpu()) - cpu0
    others = max(0.0, machine_busy()[0] - busy0 - cpu) / wall
    return Result(agent, tool.name, done, values, cpu, wall, others)


def medians(results: Sequence[Result]) -> list[Result]:
    """Per agent and tool, the round with the median CPU per value (rounds damp the noise).

    The ratio to snmp_exporter is the median of per-round ratios: within a round the tools
    run back to back, so a change in the machine's other load hits both sides alike.
    """
    peer = {(r.agent, r.round): r.cpu_ms_per_1000 for r in results if r.tool == "snmp_exporter 0.21"}
    groups: dict[tuple[str, str], list[Result]] = {}
    for r in results:
        groups.setdefault((r.agent, r.tool), []).append(r)
    out = []
    for rs in groups.values():
        rs = sorted(rs, key=lambda r: r.cpu_ms_per_1000)
        ratios = sorted(r.cpu_ms_per_1000 / peer[r.agent, r.round] for r in rs if (r.agent, r.round) in peer)
        mid = rs[(len(rs) - 1) // 2]
        if ratios:
            mid.ratio = ratios[(len(ratios) - 1) // 2]
        out.append(mid)
    return out


# --- configs --------------------------------------------------------------------------------


def interface_columns() -> tuple[list[str], list[str]]:
    """The IF-MIB columns our ``interfaces`` profile reads: (metric columns, label columns)."""
    from mspwatch.exporters.snmp.profile import load_profiles, oid_str

    table = load_profiles([])["interfaces"].tables[0]
    metrics: list[str] = []
    labels: list[str] = []
    for spec in table.metrics:
        metrics.append(oid_str(spec.sources[0].oid))  # the 64-bit column where there is one
        labels += [oid_str(o) for ls in spec.labels.values() for o in ls.oids]
    labels += [oid_str(o) for ls in table.labels.values() for o in ls.oids]
    metrics = list(dict.fromkeys(metrics))
    return metrics, [c for c in dict.fromkeys(labels) if c not in metrics]


def snmp_exporter_config(path: Path) -> None:
    """An 0.21-format module walking the same columns, numeric OIDs, ifName lookup."""
    metrics, labels = interface_columns()
    text_types = {
        "1.3.6.1.2.1.2.2.1.2": "DisplayString",
        "1.3.6.1.2.1.31.1.1.1.1": "DisplayString",
        "1.3.6.1.2.1.31.1.1.1.18": "DisplayString",
        "1.3.6.1.2.1.2.2.1.6": "PhysAddress48",
    }
    lines = []
    for module, community in (("if_mib", "public"), ("if_mib_sim", "bench")):
        lines += [
            f"{module}:",
            "  version: 2",
            "  max_repetitions: 25",
            "  retries: 0",
            "  timeout: 10s",
            "  auth:",
            f"    community: {community}",
            "  walk:",
            *[f"  - {c}" for c in [*metrics, *labels]],
            "  metrics:",
        ]
        for col in [*metrics, *labels]:
            name = "c_" + col.replace(".", "_")
            kind = text_types.get(
                col, "counter" if col.split(".")[-1] not in ("3", "5", "7", "8", "15") else "gauge"
            )
            lines += [
                f"  - name: {name}",
                f"    oid: {col}",
                f"    type: {kind}",
                f"    help: column {col}",
                "    indexes:",
                "    - labelname: ifIndex",
                "      type: gauge",
                "    lookups:",
                "    - labels: [ifIndex]",
                "      labelname: ifName",
                "      oid: 1.3.6.1.2.1.31.1.1.1.1",
                "      type: DisplayString",
            ]
    path.write_text("\n".join(lines) + "\n")


def mspwatch_config(path: Path, max_devices_in_flight: int = 64) -> None:
    path.write_text(
        "auths:\n"
        "  public_v2: {version: 2, community: public}\n"
        "  sim: {version: 2, community: bench}\n"
        "walk: {timeout: 10s, retries: 0, max_repetitions: 25, max_concurrent_walks: 4}\n"
        f"max_devices_in_flight: {max_devices_in_flight}\n"
    )


def snmpd_start(procs: Processes, tmp: Path, index: int) -> int:
    port = SNMPD_BASE_PORT + index
    conf = tmp / f"snmpd-{index}.conf"
    # One agent stands in for many devices in the throughput run: give its socket the room
    # that many separate agents would have, so bursts are not dropped at the agent.
    conf.write_text("rocommunity public 127.0.0.1\nserverRecvBuf 4194304\n")
    name = f"snmpd-{index}"
    proc = procs.start(
        name,
        ["snmpd", "-f", "-C", "-c", str(conf), "-Lo", "-I", "-smux", f"udp:127.0.0.1:{port}"],
        env={"SNMP_PERSISTENT_DIR": str(tmp / f"snmpd-{index}-state"), "MIBS": ""},
    )
    wait_udp_agent(port, "public", proc, timeout=30)
    return proc.pid


def set_taps(have: int, want: int) -> int:
    """Add tap devices bt<have>..bt<want-1> in one ``ip -batch`` run."""
    if want <= have:
        return have
    batch = "".join(f"tuntap add dev bt{i} mode tap\nlink set bt{i} up\n" for i in range(have, want))
    subprocess.run(["ip", "-batch", "-"], input=batch.encode(), check=True, timeout=120)
    return want


# --- the run inside the namespace -----------------------------------------------------------


def print_table(results: Sequence[Result], header: bool = True) -> None:
    ref = {r.agent: r.cpu_ms_per_1000 for r in results if r.tool == "snmp_exporter 0.21"}
    head = (
        f"{'agent':<24} {'tool':<22} {'scrapes':>7} {'values/scrape':>13} "
        f"{'CPU ms/1000 values':>18} {'values/s':>9} {'vs snmp_exporter':>16} {'other load':>10}"
    )
    if header:
        print(head)
        print("-" * len(head))
    for r in results:
        if r.ratio is not None:
            ratio = r.ratio
        else:
            ratio = r.cpu_ms_per_1000 / ref[r.agent] if r.agent in ref else float("nan")
        print(
            f"{r.agent:<24} {r.tool:<22} {r.scrapes:>7} {r.values // max(r.scrapes, 1):>13} "
            f"{r.cpu_ms_per_1000:>18.1f} {r.values_per_second:>9.0f} {ratio:>15.2f}x {r.others:>5.1f} cores"
        )
    sys.stdout.flush()


async def _throughput(
    port: int, path_for: list[str], scrapes: int, concurrency: int, max_seconds: float
) -> tuple[int, int, int]:
    """Run ``scrapes`` scrapes, ``concurrency`` at a time; return (ok, failed, values)."""
    queue = list(range(scrapes))
    ok = failed = values = 0
    stop_at = time.monotonic() + max_seconds

    async def worker() -> None:
        nonlocal ok, failed, values
        while queue and time.monotonic() < stop_at:
            i = queue.pop()
            try:
                status, body = await http_get(port, path_for[i % len(path_for)])
            except (OSError, TimeoutError):
                failed += 1
                continue
            up = 1.0 if _mspwatch_ok(body) else 0.0
            got = _gauge(body, "snmp_scrape_values_returned")
            if got != got:  # snmp_exporter
                got = _gauge(body, "snmp_scrape_pdus_returned")
                up = 1.0 if status == 200 else 0.0
            if status == 200 and up == 1:
                ok += 1
                values += int(got)
            else:
                failed += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return ok, failed, values


def throughput(
    tool: str,
    pid: int,
    port: int,
    paths: list[str],
    agents: list[int],
    scrapes: int,
    concurrency: int,
    max_seconds: float,
) -> None:
    agent_cpu0 = sum(cpu_seconds(p) for p in agents)
    cpu0 = cpu_seconds(pid)
    drops0 = udp_receive_drops()
    busy0 = machine_busy()
    start = time.monotonic()
    ok, failed, values = asyncio.run(_throughput(port, paths, scrapes, concurrency, max_seconds))
    wall = time.monotonic() - start
    cpu = cpu_seconds(pid) - cpu0
    agent_cpu = sum(cpu_seconds(p) for p in agents) - agent_cpu0
    drops = udp_receive_drops() - drops0
    busy = machine_busy()
    others = (busy[0] - busy0[0]) - cpu - agent_cpu  # CPU of everything else on the machine
    per = values / max(ok, 1)
    need = 1000 * 500 / max(values / wall, 1e-9)
    print(
        f"{tool:<22} {ok:>5} ok {failed:>4} failed ({drops} datagrams dropped)  {per:>4.0f} values/scrape\n"
        f"    wall {wall:5.1f} s, {values / wall:>6.0f} values/s -> 1,000 x 500 values in {need:4.1f} s\n"
        f"    exporter CPU {cpu:5.1f} s ({100 * cpu / wall:3.0f}% of one core, "
        f"{1e6 * cpu / max(values, 1):4.1f} ms/1000 values -> 1,000 x 500 values cost "
        f"{cpu * 500_000 / max(values, 1):4.1f} CPU-s a minute); agents CPU {agent_cpu:4.1f} s; "
        f"the rest of the machine {max(others, 0):4.1f} CPU-s ({busy[1] - busy0[1]:.0f} s steal)"
    )
    sys.stdout.flush()


def udp_receive_drops() -> int:
    """UDP datagrams dropped for a full receive buffer in this namespace (agents or us)."""
    lines = [ln.split() for ln in Path("/proc/net/snmp").read_text().splitlines() if ln.startswith("Udp:")]
    return int(lines[1][lines[0].index("RcvbufErrors")])


def machine_busy() -> tuple[float, float]:
    """(busy CPU seconds of the whole machine, steal seconds) from /proc/stat."""
    f = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    busy = f[0] + f[1] + f[2] + f[5] + f[6]  # user nice system irq softirq
    return busy / CLK_TCK, (f[7] if len(f) > 7 else 0) / CLK_TCK


def profile_run(procs: Processes, tmp: Path, target: str, scrapes: int) -> None:
    """Scrape a cProfile'd exporter and print where its time goes."""
    import pstats

    out = tmp / "exporter.prof"
    proc = procs.start(
        "mspwatch-profiled",
        [
            sys.executable,
            __file__,
            "serve",
            "--client",
            "fast",
            "--cprofile",
            str(out),
            f"--config.file={tmp / 'mspwatch.yml'}",
            f"--web.listen-address=127.0.0.1:{MSPWATCH_PROFILED_PORT}",
            "--log.level=warning",
        ],
    )
    wait_for_port(MSPWATCH_PROFILED_PORT, proc=proc, log=procs.log("mspwatch-profiled"))
    tool = MspwatchTool("profiled", proc.pid, MSPWATCH_PROFILED_PORT)
    for _ in range(scrapes):
        tool.scrape(target, "public")
    procs.stop("mspwatch-profiled", signal.SIGINT)  # uvicorn re-raises it; run_exporter returns
    stats = pstats.Stats(str(out))
    stats.sort_stats("tottime").print_stats(30)
    stats.sort_stats("cumulative").print_stats(40)


def inner(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="mspwatch-bench-"))
    procs = Processes(tmp)
    try:
        _inner(args, tmp, procs)
    finally:
        procs.stop_all()
        if args.keep:
            print(f"logs kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def _inner(args: argparse.Namespace, tmp: Path, procs: Processes) -> None:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True, timeout=30)
    mspwatch_config(tmp / "mspwatch.yml", args.max_devices_in_flight)
    snmp_exporter_config(tmp / "snmp_exporter.yml")
    common = ["--log.level=warning", f"--config.file={tmp / 'mspwatch.yml'}"]
    fast = procs.start(
        "mspwatch-fast",
        [
            sys.executable,
            __file__,
            "serve",
            "--client",
            "fast",
            *common,
            f"--web.listen-address=127.0.0.1:{MSPWATCH_PORT}",
        ],
    )
    slow = procs.start(
        "mspwatch-pysnmp",
        [
            sys.executable,
            __file__,
            "serve",
            "--client",
            "pysnmp",
            *common,
            f"--web.listen-address=127.0.0.1:{MSPWATCH_PYSNMP_PORT}",
        ],
    )
    peer = procs.start(
        "snmp_exporter",
        [
            "prometheus-snmp-exporter",
            f"--config.file={tmp / 'snmp_exporter.yml'}",
            f"--web.listen-address=127.0.0.1:{SNMP_EXPORTER_PORT}",
            "--log.level=warn",
        ],
    )
    for p, port in ((fast, MSPWATCH_PORT), (slow, MSPWATCH_PYSNMP_PORT), (peer, SNMP_EXPORTER_PORT)):
        wait_for_port(port, proc=p)
    tools: list[Tool] = [
        MspwatchTool("mspwatch (fast client)", fast.pid, MSPWATCH_PORT),
        SnmpExporterTool("snmp_exporter 0.21", peer.pid, SNMP_EXPORTER_PORT),
        BulkwalkTool("snmpbulkwalk", None),
    ]
    if not args.skip_pysnmp:
        tools.insert(1, MspwatchTool("mspwatch (pysnmp)", slow.pid, MSPWATCH_PYSNMP_PORT))

    results: list[Result] = []
    taps = 0
    levels = sorted({*args.interfaces, *([args.throughput_interfaces] if args.throughput else [])})
    for level in levels:
        taps = set_taps(taps, level)
        for i in range(args.agents):
            procs.stop(f"snmpd-{i}")  # restart, so the agent sees every interface at once
        agents = [snmpd_start(procs, tmp, i) for i in range(args.agents)]
        target = f"127.0.0.1:{SNMPD_BASE_PORT}"
        agent = f"snmpd, {level} taps + lo"
        if level in args.interfaces:
            for _round in range(args.rounds):  # tools interleaved, so load changes hit all
                for tool in tools:
                    scrapes = args.scrapes if level < 200 else max(3, args.scrapes // 3)
                    if tool.name == "mspwatch (pysnmp)":
                        scrapes = max(3, scrapes // 4)
                    results.append(measure(tool, agent, target, "public", scrapes, args.max_seconds))
                    results[-1].round = _round
                    print_table([results[-1]], header=False)
        if args.profile and level == max(args.interfaces):
            profile_run(procs, tmp, target, args.scrapes)
        if args.throughput and level == args.throughput_interfaces:
            print(
                f"\n## throughput: {args.throughput_scrapes} scrapes, {args.concurrency} at a time, "
                f"{args.agents} snmpd agents with {level} taps + lo"
            )
            ports = [SNMPD_BASE_PORT + i for i in range(args.agents)]
            ours = [f"/snmp?target=127.0.0.1:{p}&auth=public_v2&module=interfaces" for p in ports]
            theirs = [f"/snmp?target=127.0.0.1:{p}&module=if_mib" for p in ports]
            for name, pid, port, paths in (
                ("mspwatch (fast client)", fast.pid, MSPWATCH_PORT, ours),
                ("snmp_exporter 0.21", peer.pid, SNMP_EXPORTER_PORT, theirs),
            ):
                asyncio.run(_throughput(port, paths, 2 * len(paths), len(paths), 30))  # warm up
                throughput(
                    name,
                    pid,
                    port,
                    paths,
                    agents,
                    args.throughput_scrapes,
                    args.concurrency,
                    args.throughput_seconds,
                )
            print()

    if not args.skip_snmpsim:
        results += snmpsim_run(procs, tmp, tools, args)
    print(
        "\n## CPU per 1,000 values, one scrape at a time (process CPU from /proc; values from each "
        f"output); the median of {args.rounds} rounds, the ratio is the median of per-round ratios"
    )
    print_table(medians(results))


def snmpsim_run(procs: Processes, tmp: Path, tools: list[Tool], args: argparse.Namespace) -> list[Result]:
    from mspwatch.simulators.snmp import snmpsim_data_dir

    data = tmp / "snmpsim-data"
    data.mkdir()
    with (
        bz2.open(snmpsim_data_dir() / SNMPSIM_RECORDING, "rb") as fin,
        (data / "bench.snmprec").open("wb") as fout,
    ):
        shutil.copyfileobj(fin, fout)
    exe = Path(sys.executable).parent / "snmpsim-command-responder"
    proc = procs.start(
        "snmpsim",
        [
            str(exe),
            f"--data-dir={data}",
            f"--cache-dir={tmp / 'snmpsim-cache'}",
            f"--agent-udpv4-endpoint=127.0.0.1:{SNMPSIM_PORT}",
            "--logging-method=null",
        ],
        env={"SNMPSIM_ALLOW_ROOT": "true"},
    )
    wait_udp_agent(SNMPSIM_PORT, "bench", proc, timeout=120)
    agent = f"snmpsim {Path(SNMPSIM_RECORDING).name.split('.')[0]}"
    out = []
    for tool in tools:
        r = measure(
            tool, agent, f"127.0.0.1:{SNMPSIM_PORT}", "bench", max(3, args.scrapes // 4), args.max_seconds
        )
        out.append(r)
        print_table([r], header=False)
    procs.stop("snmpsim")
    return out


# --- the exporter under test, as a child process ---------------------------------------------


def serve(argv: list[str]) -> int:
    """Run mspwatch's snmp-exporter with the chosen client (and optionally under cProfile)."""
    from mspwatch.exporters.core.cli import add_exporter_flags, run_exporter
    from mspwatch.exporters.snmp.client import PysnmpClient
    from mspwatch.exporters.snmp.dispatch import DispatchingClient
    from mspwatch.exporters.snmp.main import SnmpApp

    parser = argparse.ArgumentParser(prog="snmp_bench.py serve")
    parser.add_argument("--client", choices=["fast", "pysnmp"], default="fast")
    parser.add_argument("--cprofile", type=Path, default=None)
    add_exporter_flags(parser, default_port=MSPWATCH_PORT, default_config="snmp.yml")
    args = parser.parse_args(argv)
    factory = DispatchingClient if args.client == "fast" else PysnmpClient
    if args.cprofile is None:
        return run_exporter(args, lambda path: SnmpApp(path, client_factory=factory))
    import cProfile

    prof = cProfile.Profile()
    prof.enable()
    try:
        return run_exporter(args, lambda path: SnmpApp(path, client_factory=factory))
    finally:
        prof.disable()
        prof.dump_stats(str(args.cprofile))


# --- the namespace, from outside -------------------------------------------------------------


@contextlib.contextmanager
def namespace(name: str) -> Iterator[None]:
    subprocess.run(["ip", "netns", "add", name], check=True, timeout=30)
    try:
        yield
    finally:
        # Anything still running in our namespace was started by this run: stop it by PID.
        for _ in range(3):
            pids = [int(p) for p in run(["ip", "netns", "pids", name], timeout=30).split()]
            if not pids:
                break
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.5)
        subprocess.run(["ip", "netns", "del", name], check=False, timeout=30)


def outer(args: argparse.Namespace, argv: list[str]) -> int:
    if os.geteuid() != 0:
        print("the benchmark needs root (network namespace, tap devices)", file=sys.stderr)
        return 2
    for tool in ("ip", "snmpd", "snmpbulkwalk", "snmpget", "prometheus-snmp-exporter"):
        if shutil.which(tool) is None:
            print(f"{tool} is missing: run `make deps`", file=sys.stderr)
            return 2
    name = f"mspwatch-bench-{os.getpid()}"

    def interrupted(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    with namespace(name):
        print(f"# {time.strftime('%Y-%m-%d %H:%M:%S')}  {os.cpu_count()} CPUs  namespace {name}")
        print(f"# command: {' '.join(['benchmarks/snmp_bench.py', *argv])}\n")
        sys.stdout.flush()
        proc = subprocess.run(
            ["ip", "netns", "exec", name, sys.executable, __file__, "--inner", *argv], check=False
        )
        return proc.returncode


def main(argv: list[str]) -> int:
    if argv[:1] == ["serve"]:
        return serve(argv[1:])
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--interfaces",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[60, 500],
        help="tap devices for the per-value comparison (default: 60,500)",
    )
    parser.add_argument(
        "--scrapes", type=int, default=40, help="scrapes per measurement (fewer for big tables)"
    )
    parser.add_argument("--max-seconds", type=float, default=40.0, help="time cap per measurement")
    parser.add_argument(
        "--agents", type=int, default=8, help="snmpd agents (ports) for the throughput run (default: 8)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="repeat each comparison, report the median")
    parser.add_argument("--no-throughput", dest="throughput", action="store_false")
    parser.add_argument(
        "--throughput-interfaces",
        type=int,
        default=25,
        help="tap devices for the throughput run: 25 + lo gives about 500 values a scrape",
    )
    parser.add_argument("--throughput-scrapes", type=int, default=1000)
    parser.add_argument(
        "--throughput-seconds", type=float, default=120.0, help="time cap of the throughput run"
    )
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--max-devices-in-flight", type=int, default=64)
    parser.add_argument("--skip-snmpsim", action="store_true")
    parser.add_argument("--skip-pysnmp", action="store_true", help="do not measure the pysnmp client")
    parser.add_argument("--profile", action="store_true", help="cProfile the exporter on the largest table")
    parser.add_argument("--keep", action="store_true", help="keep configs and logs")
    args = parser.parse_args(argv)
    if args.inner:
        inner(args)
        return 0
    return outer(args, [a for a in argv if a != "--inner"])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
