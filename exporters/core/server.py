"""The HTTP side every exporter shares: routes, auth, exposition, reload.

Routes::

    /metrics        the exporter's own health (process, reloads, requests)
    /<probe path>   one target per request, a fresh registry each time (multi-target)
    /-/healthy      liveness
    /-/reload       POST or PUT: reload the config (SIGHUP does the same)
"""

from __future__ import annotations

import asyncio
import html
import logging
import signal
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import uvicorn
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    PlatformCollector,
    ProcessCollector,
    make_asgi_app,
)

from mspwatch.common.config import ConfigError

from .deadline import Deadline
from .probe import BadRequest, ProbeApp
from .webconfig import BasicAuth, WebConfig, ssl_context

log = logging.getLogger("mspwatch.server")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


@dataclass(frozen=True)
class ServerOptions:
    default_timeout: float = 10.0  # when Prometheus sends no scrape timeout header
    timeout_margin: float = 0.5  # answer this long before Prometheus gives up
    max_timeout: float = 120.0


class ExporterMetrics:
    """The exporter's own metrics, served on plain /metrics only."""

    def __init__(self, namespace: str, version: str) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        prefix = f"{namespace}_exporter"
        Gauge(f"{prefix}_build_info", "Build information.", ["version"], registry=self.registry).labels(
            version
        ).set(1)
        self.reload_ok = Gauge(
            f"{prefix}_config_last_reload_successful",
            "Whether the last configuration reload attempt was successful.",
            registry=self.registry,
        )
        self.reload_time = Gauge(
            f"{prefix}_config_last_reload_success_timestamp_seconds",
            "Timestamp of the last successful configuration reload.",
            registry=self.registry,
        )
        self.probes = Counter(
            f"{prefix}_probes",
            "Probe requests answered, by outcome (ok, bad_request, deadline, error).",
            ["outcome"],
            registry=self.registry,
        )
        self.unauthorized = Counter(
            f"{prefix}_unauthorized_requests",
            "Requests refused for missing or wrong basic-auth credentials.",
            registry=self.registry,
        )
        for outcome in ("ok", "bad_request", "deadline", "error"):
            self.probes.labels(outcome)

    def reloaded(self, ok: bool) -> None:
        self.reload_ok.set(1 if ok else 0)
        if ok:
            self.reload_time.set(time.time())


async def _respond(send: Send, status: int, body: str, content_type: str = "text/plain") -> None:
    headers = [(b"content-type", f"{content_type}; charset=utf-8".encode())]
    if status == 401:
        headers.append((b"www-authenticate", b'Basic realm="mspwatch"'))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body.encode()})


class ExporterServer:
    """An ASGI application binding one :class:`ProbeApp` to the standard routes."""

    def __init__(
        self,
        app: ProbeApp[Any],
        *,
        web: WebConfig,
        metrics: ExporterMetrics,
        options: ServerOptions | None = None,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.options = options or ServerOptions()
        self.auth = BasicAuth(web.basic_auth_users)
        self._own = make_asgi_app(metrics.registry)

    def reload(self) -> bool:
        """Reload the app's config, record the outcome, keep the old config on failure."""
        try:
            self.app.reload()
        except ConfigError as exc:
            log.error("config reload failed", extra={"err": str(exc)})
            self.metrics.reloaded(False)
            return False
        except Exception as exc:  # a check the config layer missed: still keep the old config
            log.error("config reload failed", extra={"err": f"{type(exc).__name__}: {exc}"[:300]})
            self.metrics.reloaded(False)
            return False
        log.info("config reloaded")
        self.metrics.reloaded(True)
        return True

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if not await self.auth.check(headers.get("authorization")):
            self.metrics.unauthorized.inc()
            await _respond(send, 401, "Unauthorized\n")
            return
        path = scope["path"]
        if path == "/metrics":
            await self._own(scope, receive, send)
        elif path == self.app.probe_path:
            await self._probe(scope, receive, send, headers)
        elif path == "/-/healthy":
            await _respond(send, 200, "Healthy\n")
        elif path == "/-/reload":
            if scope["method"] not in ("POST", "PUT"):
                await _respond(send, 405, "Only POST or PUT requests allowed\n")
            elif self.reload():
                await _respond(send, 200, "OK\n")
            else:
                await _respond(send, 500, "failed to reload config, see the exporter's log\n")
        elif path == "/":
            await _respond(send, 200, self._landing(), "text/html")
        else:
            await _respond(send, 404, "Not Found\n")

    async def _probe(self, scope: Scope, receive: Receive, send: Send, headers: Mapping[str, str]) -> None:
        opts = self.options
        deadline = Deadline.from_headers(
            headers,
            default=opts.default_timeout,
            margin=opts.timeout_margin,
            maximum=opts.max_timeout,
        )
        query = parse_qs(scope.get("query_string", b"").decode("utf-8", "replace"))
        params = {k: v[-1] for k, v in query.items() if k != "name[]"}
        try:
            # The app bounds its own work by the deadline; this is the last line of defence.
            async with asyncio.timeout(deadline.remaining() + opts.timeout_margin / 2):
                registry = await self.app.probe(params, deadline)
        except BadRequest as exc:
            self.metrics.probes.labels("bad_request").inc()
            await _respond(send, 400, f"{exc}\n")
            return
        except TimeoutError:
            self.metrics.probes.labels("deadline").inc()
            log.error("probe overran its deadline", extra={"params": _safe_params(params)})
            await _respond(send, 504, "probe exceeded the scrape deadline\n")
            return
        except Exception:  # a bug: say so and count it, keep serving other scrapes
            self.metrics.probes.labels("error").inc()
            log.exception("probe failed", extra={"params": _safe_params(params)})
            await _respond(send, 500, "internal error, see the exporter's log\n")
            return
        self.metrics.probes.labels("ok").inc()
        await make_asgi_app(registry)(scope, receive, send)

    def _landing(self) -> str:
        ns = html.escape(self.app.namespace)
        probe = html.escape(self.app.probe_path)
        return (
            f"<html><head><title>mspwatch {ns} exporter</title></head><body>"
            f"<h1>mspwatch {ns} exporter</h1><ul>"
            f'<li><a href="/metrics">/metrics</a>: the exporter\'s own metrics</li>'
            f"<li>{probe}?target=...: probe one target</li>"
            f'<li><a href="/-/healthy">/-/healthy</a></li></ul></body></html>\n'
        )


def _safe_params(params: Mapping[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(params.items()) if k in ("target", "module"))


def parse_listen_address(address: str) -> tuple[str, int]:
    """Split Prometheus-style ``host:port`` (``:9116`` means all interfaces)."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"--web.listen-address: invalid address {address!r}, want host:port")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)


async def serve(server: ExporterServer, *, listen_address: str, web: WebConfig) -> None:
    """Serve until SIGINT/SIGTERM; SIGHUP reloads."""
    host, port = parse_listen_address(listen_address)
    config = uvicorn.Config(
        server,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        lifespan="off",
        server_header=False,
        timeout_graceful_shutdown=5,
    )
    config.load()
    if web.tls_server_config is not None:
        config.ssl = ssl_context(web.tls_server_config)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGHUP, server.reload)
    await server.app.start()
    try:
        uv = uvicorn.Server(config)
        log.info(
            "listening",
            extra={"address": f"{host}:{port}", "tls": web.tls_server_config is not None},
        )
        await uv.serve()
    finally:
        loop.remove_signal_handler(signal.SIGHUP)
        await server.app.stop()
