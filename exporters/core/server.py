"""The HTTP side every exporter shares: routes, auth, exposition, reload.

Routes::

    /metrics        the exporter's own health (process, reloads, requests)
    /<probe path>   one target per request, a fresh registry each time (multi-target)
    /-/healthy      liveness
    /-/reload       POST or PUT: reload the config (SIGHUP does the same)
"""

from __future__ import annotations

import asyncio
import gzip
import html
import logging
import re
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
)
from prometheus_client.exposition import choose_encoder, generate_latest, gzip_accepted
from uvicorn.protocols.http.h11_impl import H11Protocol

from mspwatch.common.config import ConfigError

from .deadline import Deadline
from .exposition import render_text
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
    # A connection must deliver a request's headers this soon after it opens or after its
    # last answer (Go's ReadHeaderTimeout): idle and half-sent requests do not hold sockets.
    read_header_timeout: float = 10.0
    max_connections: int = 512  # beyond this, new connections are closed at once


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
    await _send(send, status, body.encode(), headers)


async def _send(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


# A version client_python can compare with (1, 0, 0): dotted ASCII numbers only.
_VERSION = re.compile(r"^[0-9]{1,9}(\.[0-9]{1,9}){0,2}$")


def _header(scope: Scope, name: bytes) -> str:
    """Every value of one request header, comma-joined; latin-1 decodes any byte."""
    return ",".join(v.decode("latin-1") for k, v in scope["headers"] if k.lower() == name)


def _comparable_versions(accept: str) -> str:
    """Drop the media ranges whose ``version`` client_python cannot compare.

    client_python compares ``version=x.y`` with ``(1, 0, 0)`` and raises ``TypeError``; such a
    range is as good as absent, so the client gets the next acceptable or the default format.

    >>> _comparable_versions("text/plain; version=x.y, application/openmetrics-text; version=1.0.0")
    ' application/openmetrics-text; version=1.0.0'
    """
    kept = []
    for media_range in accept.split(","):
        # Tokenised exactly as client_python's _get_version reads it.
        versions = [
            tok.strip().split("=", 1)[1]
            for tok in media_range.split(";")
            if "=" in tok and tok.strip().split("=", 1)[0] == "version"
        ]
        if all(_VERSION.match(v) for v in versions):
            kept.append(media_range)
    return ",".join(kept)


def exposition(registry: CollectorRegistry, scope: Scope) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """Render a registry as client_python's own ASGI app does, for any request headers.

    The format follows ``Accept`` (Prometheus text or OpenMetrics), ``name[]`` filters the
    families and ``Accept-Encoding: gzip`` compresses; a malformed header gets the default
    text format instead of an exception. Returns the body and the response headers::

        (b'# HELP snmp_up ...', [(b'content-type', b'text/plain; version=0.0.4; charset=utf-8')])
    """
    encoder, content_type = choose_encoder(_comparable_versions(_header(scope, b"accept")))
    query = parse_qs(scope.get("query_string", b"").decode("utf-8", "replace"))
    names = query.get("name[]")
    if encoder is generate_latest and not names:
        body = render_text(registry.collect())  # the same bytes, a fraction of the CPU
    else:
        body = encoder(registry.restricted_registry(names) if names else registry)
    headers = [(b"content-type", content_type.encode("latin-1"))]
    if gzip_accepted(_header(scope, b"accept-encoding")):
        body = gzip.compress(body)
        headers.append((b"content-encoding", b"gzip"))
    return body, headers


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
            await _send(send, 200, *exposition(self.metrics.registry, scope))
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
        try:
            # Rendered before the outcome is counted: a collector failing here is an error.
            body, response_headers = exposition(registry, scope)
        except Exception:
            self.metrics.probes.labels("error").inc()
            log.exception("rendering the probe failed", extra={"params": _safe_params(params)})
            await _respond(send, 500, "internal error, see the exporter's log\n")
            return
        self.metrics.probes.labels("ok").inc()
        await _send(send, 200, body, response_headers)

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
    if not sep or not re.fullmatch(r"[0-9]{1,5}", port) or not 0 < int(port) < 65536:
        raise ConfigError(f"--web.listen-address: invalid address {address!r}, want host:port")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)


def guarded_protocol(read_header_timeout: float, max_connections: int) -> type[H11Protocol]:
    """uvicorn's h11 protocol with a read-header timeout and a connection cap.

    uvicorn arms its keep-alive timer only after an answer and disarms it on any byte, so a
    client that connects and sends nothing, or half a request line, would hold its socket
    forever. Here every connection gets ``read_header_timeout`` to deliver a request's headers,
    once when it opens and again after each answer; a request being answered is never cut.
    """

    class GuardedH11Protocol(H11Protocol):
        _read_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            if len(self.connections) > max_connections:
                log.warning("too many connections, closing a new one", extra={"limit": max_connections})
                transport.close()
                return
            self._arm_read_timer()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._arm_read_timer()

        def connection_lost(self, exc: Exception | None) -> None:
            if self._read_timer is not None:
                self._read_timer.cancel()
            super().connection_lost(exc)

        def _arm_read_timer(self) -> None:
            if self._read_timer is not None:
                self._read_timer.cancel()
            self._read_timer = self.loop.call_later(read_header_timeout, self._read_timeout)

        def _read_timeout(self) -> None:
            # A request being answered re-arms the timer when its answer is complete.
            answering = self.cycle is not None and not self.cycle.response_complete
            if not answering and not self.transport.is_closing():
                self.transport.close()  # no request headers in time: as Go's http.Server does

    return GuardedH11Protocol


async def serve(server: ExporterServer, *, listen_address: str, web: WebConfig) -> None:
    """Serve until SIGINT/SIGTERM; SIGHUP reloads."""
    host, port = parse_listen_address(listen_address)
    opts = server.options
    config = uvicorn.Config(
        server,
        host=host,
        port=port,
        http=guarded_protocol(opts.read_header_timeout, opts.max_connections),
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
