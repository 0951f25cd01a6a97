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
import ssl
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from prometheus_client.core import Metric

from mspwatch.common.config import ConfigError
from mspwatch.exporters.core.cli import register_exporter
from mspwatch.exporters.core.deadline import Deadline
from mspwatch.exporters.core.probe import BadRequest, ProbeApp, ProbeFailure
from mspwatch.exporters.graph.auth import MsalTokenProvider
from mspwatch.exporters.graph.client import GraphClient, RequestStats, Sleep, make_http_client
from mspwatch.exporters.graph.config import GraphApp, GraphOptions
from mspwatch.exporters.graph.errors import Reason
from mspwatch.inventory import M365Tenant

from .client import M365Client
from .config import M365Config, load_config
from .mapping import map_tenant
from .refresher import TenantRefresher

DEFAULT_PORT = 9818
log = logging.getLogger("mspwatch.m365")

# (tenant, app, graph options, shared HTTP client, request stats) -> client
ClientFactory = Callable[[M365Tenant, GraphApp, GraphOptions, httpx.AsyncClient, RequestStats], M365Client]


def graph_client(
    retry_sleep: Sleep = asyncio.sleep,
) -> ClientFactory:
    """The real client: msal tokens + Graph over the shared HTTP client."""
    msal_threads = ThreadPoolExecutor(max_workers=32, thread_name_prefix="msal")

    def make(
        tenant: M365Tenant,
        app: GraphApp,
        options: GraphOptions,
        http: httpx.AsyncClient,
        stats: RequestStats,
    ) -> M365Client:
        tokens = MsalTokenProvider(tenant.tenant_id, app, options, msal_threads)
        return M365Client(GraphClient(http, tokens, options, stats, sleep=retry_sleep))

    return make


def _http_client(config: M365Config, config_file: Path) -> httpx.AsyncClient:
    """The shared HTTP client; a CA bundle that cannot be loaded is a config error."""
    try:
        # Never the bottleneck: at most one request per refresh slot is in flight.
        return make_http_client(config.graph, config.max_concurrent_refreshes)
    except (OSError, ssl.SSLError, ValueError) as exc:
        raise ConfigError(
            f"{config_file}: graph.ca_file: cannot load {config.graph.ca_file}: "
            f"{getattr(exc, 'strerror', None) or exc}"
        ) from None


class M365App(ProbeApp[TenantRefresher]):
    """The exporter: one :class:`TenantRefresher` per tenant, each with its own loop.

    A scrape reads the refresher's latest data; ``m365_up`` is 0 when the latest refresh of
    any signal failed, with every failing reason set in ``m365_scrape_error``.
    """

    namespace = "m365"
    probe_path = "/m365"
    reasons = Reason
    subject = "tenant"
    up_help = "Whether the latest background refresh of every signal of this tenant succeeded."
    error_help = (
        "1 for each reason the latest background refresh of a signal of this tenant failed "
        "(m365_up 0), 0 for the others"
    )

    def __init__(
        self,
        config_file: Path,
        *,
        client_factory: ClientFactory | None = None,
        clock: Callable[[], float] = time.time,
        background: bool = True,
    ) -> None:
        super().__init__()
        self.config_file = config_file
        self.config, self.tenants = load_config(config_file)
        self._client_factory = client_factory or graph_client()
        self._clock = clock
        self._background = background
        self._http: httpx.AsyncClient | None = None
        self._slots: asyncio.Semaphore | None = None
        self._slots_size = self.config.max_concurrent_refreshes
        self.refreshers: dict[str, TenantRefresher] = {}
        self._keys: dict[str, tuple[object, ...]] = {}
        self._built_on: dict[str, httpx.AsyncClient] = {}  # the transport each client uses
        self._loops: dict[str, asyncio.Task[None]] = {}
        self._stats: dict[str, RequestStats] = {}  # kept across reloads: counters stay monotonic
        self._started = False
        self._closing: set[asyncio.Task[None]] = set()

    # --- lifecycle ----------------------------------------------------------------------

    def _key(self, cfg: M365Config, tenant: M365Tenant) -> tuple[object, ...]:
        # What needs a new refresher (new credentials, new msal app); intervals, signals,
        # limits and Graph's transport are applied in place so a reload keeps the data.
        return (tenant.tenant_id, cfg.apps[tenant.app])

    def _sync(self) -> None:
        """Make the refreshers match the config: keep unchanged tenants, rebuild the rest."""
        cfg = self.config
        if self._http is None:
            self._http = _http_client(cfg, self.config_file)
        if self._slots is None or cfg.max_concurrent_refreshes != self._slots_size:
            # Refreshes holding the old semaphore release it; new ones share the new limit.
            self._slots = asyncio.Semaphore(cfg.max_concurrent_refreshes)
            self._slots_size = cfg.max_concurrent_refreshes
        wanted = {t.name: t for t in self.tenants}
        for name in list(self.refreshers):
            if name not in wanted or self._keys[name] != self._key(cfg, wanted[name]):
                self._drop(name)
        for name, tenant in wanted.items():
            signals = tenant.signals if tenant.signals is not None else cfg.signals
            stats = self._stats.setdefault(name, RequestStats())
            refresher = self.refreshers.get(name)
            if refresher is not None:
                if self._built_on.get(name) is not self._http:  # Graph's transport changed
                    # Refreshes under way keep the client they started with.
                    refresher.client = self._client_factory(
                        tenant, cfg.apps[tenant.app], cfg.graph, self._http, stats
                    )
                    self._built_on[name] = self._http
                refresher.reconfigure(
                    cfg.refresh, signals, cfg.max_concurrent_refreshes_per_tenant, self._slots
                )
                continue
            client = self._client_factory(tenant, cfg.apps[tenant.app], cfg.graph, self._http, stats)
            self.refreshers[name] = TenantRefresher(
                tenant,
                client,
                stats,
                cfg.refresh,
                signals,
                clock=self._clock,
                slots=self._slots,
                per_tenant=cfg.max_concurrent_refreshes_per_tenant,
            )
            self._built_on[name] = self._http
            self._keys[name] = self._key(cfg, tenant)
            if self._background and self._started:
                self._loops[name] = asyncio.ensure_future(self.refreshers[name].run())
        for name in list(self._stats):
            if name not in wanted:
                del self._stats[name]

    def _drop(self, name: str) -> None:
        loop = self._loops.pop(name, None)
        if loop is not None:
            loop.cancel()
        self.refreshers.pop(name).cancel()
        self._keys.pop(name, None)
        self._built_on.pop(name, None)

    async def start(self) -> None:
        self._started = True
        self._sync()
        log.info("tenants loaded", extra={"tenants": len(self.refreshers)})

    async def stop(self) -> None:
        tasks = list(self._loops.values())
        for refresher in self.refreshers.values():
            tasks += refresher.tasks()
        for name in list(self.refreshers):
            self._drop(name)
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._http is not None:
            await self._http.aclose()
            self._http = None
        if self._closing:
            await asyncio.gather(*list(self._closing), return_exceptions=True)
        self._started = False

    def reload(self) -> None:
        # Everything the new config needs is built before the swap: a CA bundle that cannot
        # be loaded raises here and the old config keeps serving.
        config, tenants = load_config(self.config_file)
        new_http = None
        if self._http is not None and config.graph != self.config.graph:
            new_http = _http_client(config, self.config_file)
        elif self._http is None:
            _http_client(config, self.config_file)  # checked now, built when first needed
        self.config, self.tenants = config, tenants
        if new_http is not None and self._http is not None:
            self._retire_http(self._http)
            self._http = new_http
        if self._started:
            self._sync()

    def _retire_http(self, old: httpx.AsyncClient) -> None:
        """Close the old transport once the refreshes already using it have ended."""
        running = [t for r in self.refreshers.values() for t in r.tasks() if not t.done()]

        async def close() -> None:
            if running:
                await asyncio.wait(running)  # never cancels them; each is bounded by its budget
            await old.aclose()

        closing = asyncio.get_running_loop().create_task(close())
        self._closing.add(closing)  # keep a reference until it is done
        closing.add_done_callback(self._closing.discard)

    async def refresh_all(self) -> None:
        """Refresh every signal of every tenant now and wait (tests, ``--once`` tooling)."""
        self._sync()
        await asyncio.gather(*(c.refresh_due(force=True) for c in self.refreshers.values()))

    # --- probing ------------------------------------------------------------------------

    def target(self, params: Mapping[str, str]) -> TenantRefresher:
        name = params.get("target", "").strip()
        if not name:
            raise BadRequest("'target' parameter must be specified")
        if not self.refreshers:
            self._sync()
        refresher = self.refreshers.get(name)
        if refresher is None:
            raise BadRequest(f"unknown target {name!r}: not a tenant in the configuration")
        return refresher

    async def scrape(self, target: TenantRefresher, deadline: Deadline) -> list[Metric]:
        # Only the very first scrape after start can wait, and never past the deadline.
        await target.wait_first(deadline)
        view = target.view()
        families = map_tenant(view)
        if not view.signals or not all(s.ok for s in view.signals.values()):
            failing = {s.reason for s in view.signals.values() if s.attempted and not s.ok}
            raise ProbeFailure(*sorted(r for r in failing if r is not None), families=families)
        return families


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    register_exporter(
        sub,
        "m365-exporter",
        help="serve Microsoft 365 service health, licences, Secure Score and MFA per tenant",
        description=__doc__,
        default_port=DEFAULT_PORT,
        default_config="m365.yml",
        build=M365App,
    )
