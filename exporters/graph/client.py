"""Microsoft Graph REST reads: paging and page-token restarts, over the core HTTP client.

- ``@odata.nextLink`` is followed exactly as given (an absolute URL; its ``$skiptoken`` is
  opaque and never rebuilt), and never to another host than the first page's;
- an expired skip token (``Directory_ExpiredPageToken``) restarts the listing from the
  first page, a bounded number of times;
- throttling, retries and deadlines are the core's (:mod:`mspwatch.exporters.core.http`):
  429 waits for ``Retry-After`` when the deadline allows it, else fails as ``throttled``
  and tells the caller when to come back; 5xx and network errors are retried with backoff
  (``Retry-After`` honoured); a 401 fetches a new token once; every request is bounded by
  the request timeout and by the caller's deadline.

Tokens and response bodies never reach a log line or an exception message.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
import ssl
from collections.abc import Mapping
from typing import Any, Protocol
from urllib.parse import urlencode, urlsplit

import httpx

from mspwatch.exporters.core.deadline import Deadline
from mspwatch.exporters.core.http import (
    Failure,
    HttpError,
    JsonClient,
    RequestStats,
    RetryPolicy,
    Sleep,
    retry_after_seconds,
)

from .auth import TokenProvider
from .config import GraphOptions
from .errors import GraphError, Reason

__all__ = [
    "COMMON_STATUSES",
    "Graph",
    "GraphClient",
    "Record",
    "RequestStats",
    "Sleep",
    "make_http_client",
    "retry_after_seconds",
]

log = logging.getLogger("mspwatch.graph")

Record = dict[str, Any]

# Error codes Graph uses when a page token can no longer be used.
EXPIRED_PAGE_TOKEN_CODES = frozenset(
    {"directory_expiredpagetoken", "expiredpagetoken", "skiptokenexpired", "syncstatenotfound"}
)
# Status codes the request counter always shows (zero rather than nothing).
COMMON_STATUSES = ("200", "400", "401", "403", "404", "429", "500", "503", "error")
# The core's reasons in Graph's words (the m365_scrape_error{reason} values).
_REASONS: dict[Failure, Reason] = {
    Failure.UNREACHABLE: Reason.NETWORK,
    Failure.TIMEOUT: Reason.NETWORK,
    Failure.TLS: Reason.NETWORK,
    Failure.DEADLINE: Reason.DEADLINE,
    Failure.THROTTLED: Reason.THROTTLED,
    Failure.UNAVAILABLE: Reason.UNAVAILABLE,
    Failure.AUTH: Reason.AUTH,
    Failure.FORBIDDEN: Reason.FORBIDDEN,
    Failure.PROTOCOL: Reason.PROTOCOL,
    Failure.MALFORMED: Reason.PROTOCOL,
}


class Graph(Protocol):
    """What a collector needs from Graph; tests put a recording fake behind it."""

    async def list(
        self, path: str, deadline: Deadline, params: Mapping[str, str] | None = None
    ) -> list[Record]:
        """GET a collection and every following page."""
        ...

    async def get(self, path: str, deadline: Deadline, params: Mapping[str, str] | None = None) -> Record:
        """GET one object (or one page, no paging)."""
        ...


class _ExpiredPageToken(Exception):
    pass


def make_http_client(options: GraphOptions, max_connections: int = 64) -> httpx.AsyncClient:
    """One pooled HTTP client shared by every tenant (size the pool to the concurrency)."""
    verify: ssl.SSLContext | bool = True
    if options.ca_file is not None:
        # The bundle replaces the system's CAs, as it does for msal's requests session.
        verify = ssl.create_default_context(cafile=str(options.ca_file))
    return httpx.AsyncClient(
        verify=verify,
        timeout=options.request_timeout,
        follow_redirects=False,
        limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections // 2),
        headers={"Accept": "application/json", "User-Agent": "mspwatch"},
    )


class GraphClient:
    """Read-only Graph calls for one tenant."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        tokens: TokenProvider,
        options: GraphOptions,
        stats: RequestStats | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._tokens = tokens
        self._options = options
        self.stats = stats if stats is not None else RequestStats()
        # A thin wrapper per tenant around the shared pool: the tenant's counts, the policy.
        self._json = JsonClient(
            http,
            request_timeout=options.request_timeout,
            policy=RetryPolicy(max_retries=options.max_retries),
            stats=self.stats,
            sleep=sleep,
        )
        self._base = options.url + "/v1.0"

    def url(self, path: str, params: Mapping[str, str] | None = None) -> str:
        url = self._base + "/" + path.lstrip("/")
        if params:
            url += "?" + urlencode(dict(params), safe="$,")
        return url

    async def list(
        self, path: str, deadline: Deadline, params: Mapping[str, str] | None = None
    ) -> list[Record]:
        first = self.url(path, params)
        for attempt in range(self._options.max_restarts + 1):
            try:
                return await self._pages(first, deadline)
            except _ExpiredPageToken:
                self.stats.restarts += 1
                log.info(
                    "page token expired, restarting from the first page",
                    extra={"path": path, "attempt": attempt + 1},
                )
        raise GraphError(Reason.PROTOCOL, f"{path}: page token kept expiring")

    async def get(self, path: str, deadline: Deadline, params: Mapping[str, str] | None = None) -> Record:
        body = await self._get(self.url(path, params), deadline, paging=False)
        return body

    async def _pages(self, first: str, deadline: Deadline) -> builtins.list[Record]:
        records: builtins.list[Record] = []
        url: str | None = first
        pages = 0
        origin = urlsplit(first)
        while url is not None:
            pages += 1
            if pages > self._options.max_pages:
                raise GraphError(Reason.PROTOCOL, f"more than {self._options.max_pages} pages")
            body = await self._get(url, deadline, paging=pages > 1)
            value = body.get("value")
            if not isinstance(value, list):
                raise GraphError(Reason.PROTOCOL, "collection without a 'value' list")
            records.extend(v for v in value if isinstance(v, dict))
            next_link = body.get("@odata.nextLink")
            if next_link is None:
                url = None
            elif isinstance(next_link, str):
                # Follow as given, but never send the token to another host.
                nxt = urlsplit(next_link)
                if (nxt.scheme, nxt.netloc) != (origin.scheme, origin.netloc):
                    raise GraphError(Reason.PROTOCOL, "nextLink points to another host")
                url = next_link
            else:
                raise GraphError(Reason.PROTOCOL, "nextLink is not a string")
        return records

    async def _get(self, url: str, deadline: Deadline, *, paging: bool) -> Record:
        """One GET with the core's retries; returns the JSON object."""
        try:
            body = await self._json.get_json(url, deadline, auth=self._tokens)
        except HttpError as exc:
            if paging and exc.status in (400, 410) and exc.code.lower() in EXPIRED_PAGE_TOKEN_CODES:
                raise _ExpiredPageToken() from None
            raise GraphError(
                _REASONS[exc.reason],
                exc.detail,
                status=exc.status,
                code=exc.code,
                retry_after=exc.retry_after,
            ) from None
        if not isinstance(body, dict):
            raise GraphError(Reason.PROTOCOL, "answer is not a JSON object", status=200)
        return body
