"""``mspwatch patch-exporter``: patch compliance per source, sources from the inventory.

GET /patch?target=<patch source name>
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from prometheus_client import CollectorRegistry
from prometheus_client.core import Metric

from mspwatch.exporters.core.cli import add_exporter_flags, run_exporter
from mspwatch.exporters.core.deadline import Deadline
from mspwatch.exporters.core.http import RequestStats
from mspwatch.exporters.core.server import BadRequest
from mspwatch.exporters.graph.auth import MsalTokenProvider
from mspwatch.exporters.graph.client import GraphClient, make_http_client
from mspwatch.exporters.graph.config import GraphOptions
from mspwatch.inventory import IntuneSource, NinjaOneSource

from .config import ConfiguredSource, LoadedConfig, load_config
from .intune import IntuneClient
from .ninjaone import NinjaOneClient, NinjaOptions
from .records import SourceData, SourceError, SourceReason
from .scrape import PatchClient, scrape_source

DEFAULT_PORT = 9819

log = logging.getLogger("mspwatch.patch")


class _Families:
    """A one-shot collector handing pre-built families to a per-request registry."""

    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterable[Metric]:
        return self._families


def make_client(
    cs: ConfiguredSource,
    loaded: LoadedConfig,
    graph: GraphPool | None = None,
    *,
    clock: Callable[[], float] = time.time,
    transport: httpx.AsyncBaseTransport | None = None,
) -> PatchClient:
    """Build the client for one configured source."""
    src = cs.source
    if isinstance(src, NinjaOneSource):
        assert cs.credentials is not None
        s = loaded.config.ninjaone
        options = NinjaOptions(
            page_size=s.page_size,
            request_timeout=s.request_timeout,
            max_retries=s.max_retries,
            install_lookback=s.install_lookback,
            max_cursor_restarts=s.max_cursor_restarts,
        )
        return NinjaOneClient(
            src.name,
            src.url,
            src.organization,
            cs.credentials.client_id,
            cs.credentials.client_secret,
            options,
            verify=loaded.tls,
            clock=clock,
            transport=transport,
        )
    assert isinstance(src, IntuneSource) and cs.tenant_id is not None and cs.app is not None
    assert graph is not None
    graph_options = loaded.config.graph
    stats = RequestStats()
    tokens = MsalTokenProvider(cs.tenant_id, cs.app, graph_options, graph.msal_threads)
    intune = loaded.config.intune
    return IntuneClient(
        src.name,
        GraphClient(graph.http, tokens, graph_options, stats),
        stats,
        intune.table(),
        protection_state_ttl=intune.protection_state_ttl,
        max_concurrent_requests=intune.max_concurrent_requests,
    )


class GraphPool:
    """What every Intune source shares: one HTTP pool and the threads msal blocks in."""

    def __init__(self, options: GraphOptions) -> None:
        self.options = options
        self.http = make_http_client(options)
        self.msal_threads = ThreadPoolExecutor(max_workers=16, thread_name_prefix="msal")

    async def aclose(self) -> None:
        await self.http.aclose()
        self.msal_threads.shutdown(wait=False, cancel_futures=True)


class PatchApp:
    namespace = "patch"
    probe_path = "/patch"

    def __init__(
        self,
        config_file: Path,
        *,
        clock: Callable[[], float] = time.time,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.config_file = config_file
        self._clock = clock
        self._transport = transport
        self.loaded: LoadedConfig = load_config(config_file)
        self._graph: GraphPool | None = None
        self._retired: list[PatchClient | GraphPool] = []
        self.clients: dict[str, PatchClient] = self._clients(self.loaded, {})
        self._in_flight: asyncio.Semaphore | None = None

    def _clients(self, loaded: LoadedConfig, old: Mapping[str, PatchClient]) -> dict[str, PatchClient]:
        wants_graph = any(isinstance(cs.source, IntuneSource) for cs in loaded.sources.values())
        if self._graph is not None and (not wants_graph or self._graph.options != loaded.config.graph):
            self._retired.append(self._graph)
            self._graph = None
        if wants_graph and self._graph is None:
            self._graph = GraphPool(loaded.config.graph)
        clients = {}
        cfg, was = loaded.config, self.loaded.config
        for name, cs in loaded.sources.items():
            prev = self.loaded.sources.get(name) if old else None
            same = (
                (cfg.ninjaone, cfg.intune, cfg.graph) == (was.ninjaone, was.intune, was.graph)
                and prev == cs
                and name in old
            )
            if same:
                clients[name] = old[name]  # keep its token, organisation id and caches
            else:
                clients[name] = make_client(
                    cs, loaded, self._graph, clock=self._clock, transport=self._transport
                )
        return clients

    def reload(self) -> None:
        loaded = load_config(self.config_file)
        clients = self._clients(loaded, self.clients)
        self._retired += [c for c in self.clients.values() if c not in clients.values()]
        self.loaded, self.clients = loaded, clients
        self._in_flight = None

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        for client in [*self.clients.values(), *self._retired, *([self._graph] if self._graph else [])]:
            await client.aclose()
        self._retired, self._graph = [], None

    async def probe(self, params: Mapping[str, str], deadline: Deadline) -> CollectorRegistry:
        target = params.get("target", "").strip()
        if not target:
            raise BadRequest("'target' parameter must be specified")
        cs = self.loaded.sources.get(target)
        client = self.clients.get(target)
        if cs is None or client is None:
            raise BadRequest(f"unknown patch source {target!r}")
        if self._in_flight is None:
            self._in_flight = asyncio.Semaphore(self.loaded.config.max_sources_in_flight)
        in_flight = self._in_flight
        try:
            # Waiting for a slot counts against this scrape's deadline.
            async with asyncio.timeout(deadline.remaining()):
                await in_flight.acquire()
        except TimeoutError:
            busy = _Failing(client.kind, SourceError(SourceReason.DEADLINE, "max_sources_in_flight reached"))
            families = await scrape_source(target, busy, cs.policy, cs.zone, deadline, self._clock)
        else:
            try:
                families = await scrape_source(target, client, cs.policy, cs.zone, deadline, self._clock)
            finally:
                in_flight.release()
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Families(families))
        return registry


class _Failing:
    """Stands in for a client when max_sources_in_flight left no slot before the deadline."""

    def __init__(self, kind: str, error: SourceError) -> None:
        self.kind = kind
        self._error = error

    async def fetch(self, deadline: Deadline, stats: RequestStats) -> SourceData:
        raise self._error

    async def aclose(self) -> None:
        return None


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "patch-exporter",
        help="serve patch compliance and endpoint protection metrics (NinjaOne, Intune), multi-target",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_exporter_flags(p, default_port=DEFAULT_PORT, default_config="patch.yml")
    p.set_defaults(func=lambda args: run_exporter(args, PatchApp))
