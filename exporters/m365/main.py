"""``mspwatch m365-exporter``: Microsoft 365 service health, licences and security posture.

GET /m365?target=<tenant name>

Graph is slow and rate-limited, so every signal of every tenant is refreshed in the
background on its own interval; a scrape only reads the latest data (with its age) and
answers well within the scrape deadline.
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
from mspwatch.exporters.core.server import BadRequest
from mspwatch.exporters.graph.auth import MsalTokenProvider
from mspwatch.exporters.graph.client import GraphClient, RequestStats, Sleep, make_http_client
from mspwatch.exporters.graph.config import GraphApp, GraphOptions
from mspwatch.inventory import M365Tenant

from .client import M365Source
from .collector import TenantCollector
from .config import M365Config, load_config
from .mapping import map_tenant

DEFAULT_PORT = 9818
log = logging.getLogger("mspwatch.m365")

# (tenant, app, graph options, shared HTTP client, request stats) -> source
SourceFactory = Callable[[M365Tenant, GraphApp, GraphOptions, httpx.AsyncClient, RequestStats], M365Source]


class _Families:
    """A one-shot collector handing pre-built families to a per-request registry."""

    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterable[Metric]:
        return self._families


def graph_source(
    retry_sleep: Sleep = asyncio.sleep,
) -> SourceFactory:
    """The real source: msal tokens + Graph over the shared HTTP client."""
    msal_threads = ThreadPoolExecutor(max_workers=32, thread_name_prefix="msal")

    def make(
        tenant: M365Tenant,
        app: GraphApp,
        options: GraphOptions,
        http: httpx.AsyncClient,
        stats: RequestStats,
    ) -> M365Source:
        tokens = MsalTokenProvider(tenant.tenant_id, app, options, msal_threads)
        return M365Source(GraphClient(http, tokens, options, stats, sleep=retry_sleep))

    return make


class M365App:
    """The exporter: one :class:`TenantCollector` per tenant, each with its own loop."""

    namespace = "m365"
    probe_path = "/m365"

    def __init__(
        self,
        config_file: Path,
        *,
        source_factory: SourceFactory | None = None,
        clock: Callable[[], float] = time.time,
        background: bool = True,
    ) -> None:
        self.config_file = config_file
        self.config, self.tenants = load_config(config_file)
        self._source_factory = source_factory or graph_source()
        self._clock = clock
        self._background = background
        self._http: httpx.AsyncClient | None = None
        self._slots: asyncio.Semaphore | None = None
        self._slots_size = self.config.max_concurrent_refreshes
        self.collectors: dict[str, TenantCollector] = {}
        self._keys: dict[str, tuple[object, ...]] = {}
        self._loops: dict[str, asyncio.Task[None]] = {}
        self._stats: dict[str, RequestStats] = {}  # kept across reloads: counters stay monotonic
        self._started = False
        self._closing: set[asyncio.Task[None]] = set()

    # --- lifecycle ----------------------------------------------------------------------

    def _key(self, cfg: M365Config, tenant: M365Tenant) -> tuple[object, ...]:
        # What needs a new collector (new credentials, new msal app); intervals and signals
        # are applied in place so a reload keeps the data already fetched.
        return (tenant.tenant_id, cfg.apps[tenant.app], cfg.graph)

    def _sync(self) -> None:
        """Make the collectors match the config: keep unchanged tenants, rebuild the rest."""
        cfg = self.config
        if self._http is None:
            # Never the bottleneck: at most one request per refresh slot is in flight.
            self._http = make_http_client(cfg.graph, cfg.max_concurrent_refreshes)
        if self._slots is None:
            self._slots = asyncio.Semaphore(cfg.max_concurrent_refreshes)
            self._slots_size = cfg.max_concurrent_refreshes
        wanted = {t.name: t for t in self.tenants}
        for name in list(self.collectors):
            if name not in wanted or self._keys[name] != self._key(cfg, wanted[name]):
                self._drop(name)
        for name, tenant in wanted.items():
            signals = tenant.signals if tenant.signals is not None else cfg.signals
            if name in self.collectors:
                self.collectors[name].reconfigure(
                    cfg.refresh, signals, cfg.max_concurrent_refreshes_per_tenant
                )
                continue
            stats = self._stats.setdefault(name, RequestStats())
            source = self._source_factory(tenant, cfg.apps[tenant.app], cfg.graph, self._http, stats)
            self.collectors[name] = TenantCollector(
                tenant,
                source,
                stats,
                cfg.refresh,
                signals,
                clock=self._clock,
                slots=self._slots,
                per_tenant=cfg.max_concurrent_refreshes_per_tenant,
            )
            self._keys[name] = self._key(cfg, tenant)
            if self._background and self._started:
                self._loops[name] = asyncio.ensure_future(self.collectors[name].run())
        for name in list(self._stats):
            if name not in wanted:
                del self._stats[name]

    def _drop(self, name: str) -> None:
        loop = self._loops.pop(name, None)
        if loop is not None:
            loop.cancel()
        self.collectors.pop(name).cancel()
        self._keys.pop(name, None)

    async def start(self) -> None:
        self._started = True
        self._sync()
        log.info("tenants loaded", extra={"tenants": len(self.collectors)})

    async def stop(self) -> None:
        tasks = list(self._loops.values())
        for collector in self.collectors.values():
            tasks += collector.tasks()
        for name in list(self.collectors):
            self._drop(name)
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._http is not None:
            await self._http.aclose()
            self._http = None
        self._started = False

    def reload(self) -> None:
        config, tenants = load_config(self.config_file)
        old_graph = self.config.graph
        self.config, self.tenants = config, tenants
        if config.graph != old_graph and self._http is not None:
            old_http, self._http = self._http, None
            for name in list(self.collectors):
                self._drop(name)
            closing = asyncio.get_running_loop().create_task(old_http.aclose())
            self._closing.add(closing)  # keep a reference until it is done
            closing.add_done_callback(self._closing.discard)
        if config.max_concurrent_refreshes != self._slots_size:
            self._slots = None  # collectors built from now on share the new limit
            for name in list(self.collectors):
                self._drop(name)
        if self._started:
            self._sync()

    async def refresh_all(self) -> None:
        """Refresh every signal of every tenant now and wait (tests, ``--once`` tooling)."""
        self._sync()
        await asyncio.gather(*(c.refresh_due(force=True) for c in self.collectors.values()))

    # --- probing ------------------------------------------------------------------------

    async def probe(self, params: Mapping[str, str], deadline: Deadline) -> CollectorRegistry:
        target = params.get("target", "").strip()
        if not target:
            raise BadRequest("'target' parameter must be specified")
        if not self.collectors:
            self._sync()
        collector = self.collectors.get(target)
        if collector is None:
            raise BadRequest(f"unknown target {target!r}: not a tenant in the configuration")
        # Only the very first scrape after start can wait, and never past the deadline.
        await collector.wait_first(deadline)
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Families(map_tenant(collector.view())))
        return registry


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "m365-exporter",
        help="serve Microsoft 365 service health, licences, Secure Score and MFA per tenant",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_exporter_flags(p, default_port=DEFAULT_PORT, default_config="m365.yml")
    p.set_defaults(func=lambda args: run_exporter(args, M365App))
