"""``mspwatch patch-exporter``: patch compliance per source, sources from the inventory.

GET /patch?target=<patch source name>
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
from prometheus_client.core import Metric

from mspwatch.exporters.core.cli import register_exporter
from mspwatch.exporters.core.deadline import Deadline
from mspwatch.exporters.core.http import RequestStats
from mspwatch.exporters.core.leases import Leases
from mspwatch.exporters.core.probe import BadRequest, ProbeApp
from mspwatch.exporters.graph.auth import MsalTokenProvider
from mspwatch.exporters.graph.client import GraphClient, make_http_client
from mspwatch.exporters.graph.config import GraphOptions
from mspwatch.inventory import IntuneSource, NinjaOneSource

from .config import ConfiguredSource, LoadedConfig, load_config
from .intune import IntuneClient
from .ninjaone import NinjaOneClient, NinjaOptions
from .records import SourceReason
from .scrape import PatchClient, scrape_source

DEFAULT_PORT = 9819

log = logging.getLogger("mspwatch.patch")


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
            scan_lookback=s.scan_lookback,
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


@dataclass(frozen=True)
class PatchTarget:
    """One request's source, with the config, client and Graph pool it was parsed against."""

    name: str
    configured: ConfiguredSource
    client: PatchClient
    graph: GraphPool | None


class PatchApp(ProbeApp[PatchTarget]):
    namespace = "patch"
    probe_path = "/patch"
    reasons = SourceReason
    subject = "patch source"
    up_help = "Whether the patch source answered this scrape (1) or not (0)."

    def __init__(
        self,
        config_file: Path,
        *,
        clock: Callable[[], float] = time.time,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__()
        self.config_file = config_file
        self._clock = clock
        self._transport = transport
        self.loaded: LoadedConfig = load_config(config_file)
        self._graph: GraphPool | None = None
        # Clients and Graph pools a reload replaced close after the last scrape using them.
        self._leases: Leases[PatchClient | GraphPool] = Leases(lambda r: r.aclose())
        self.clients: dict[str, PatchClient] = self._clients(self.loaded, {})

    def _clients(self, loaded: LoadedConfig, old: Mapping[str, PatchClient]) -> dict[str, PatchClient]:
        wants_graph = any(isinstance(cs.source, IntuneSource) for cs in loaded.sources.values())
        if self._graph is not None and (not wants_graph or self._graph.options != loaded.config.graph):
            self._leases.retire([self._graph])
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

    @property
    def max_in_flight(self) -> int:
        return self.loaded.config.max_sources_in_flight

    def reload(self) -> None:
        loaded = load_config(self.config_file)
        clients = self._clients(loaded, self.clients)
        retired = [c for c in self.clients.values() if c not in clients.values()]
        self.loaded, self.clients = loaded, clients
        # Scrapes that started before the reload finish with the clients they hold.
        self._leases.retire(retired)

    async def stop(self) -> None:
        await self._leases.close_all([*self.clients.values(), *([self._graph] if self._graph else [])])
        self._graph = None

    def target(self, params: Mapping[str, str]) -> PatchTarget:
        name = params.get("target", "").strip()
        if not name:
            raise BadRequest("'target' parameter must be specified")
        loaded, clients = self.loaded, self.clients  # one view of the config, reloads or not
        cs = loaded.sources.get(name)
        client = clients.get(name)
        if cs is None or client is None:
            raise BadRequest(f"unknown patch source {name!r}")
        return PatchTarget(name, cs, client, self._graph)

    async def scrape(self, target: PatchTarget, deadline: Deadline) -> list[Metric]:
        async with AsyncExitStack() as held:
            await held.enter_async_context(self._leases.hold(target.client))
            if target.graph is not None:
                await held.enter_async_context(self._leases.hold(target.graph))
            cs = target.configured
            return await scrape_source(target.name, target.client, cs.policy, cs.zone, deadline, self._clock)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    register_exporter(
        sub,
        "patch-exporter",
        help="serve patch compliance and endpoint protection metrics (NinjaOne, Intune), multi-target",
        description=__doc__,
        default_port=DEFAULT_PORT,
        default_config="patch.yml",
        build=PatchApp,
    )
