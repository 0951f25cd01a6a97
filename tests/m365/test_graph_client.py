"""The Graph client against canned answers: paging, throttling, retries, restarts, errors."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from mspwatch.common.secrets import Secret
from mspwatch.exporters.core.deadline import Deadline
from mspwatch.exporters.graph.auth import MsalTokenProvider
from mspwatch.exporters.graph.client import GraphClient, RequestStats, retry_after_seconds
from mspwatch.exporters.graph.config import GraphApp, GraphOptions
from mspwatch.exporters.graph.errors import GraphError
from tests.netfaults import Silent

from .helpers import Sleeps

BASE = "https://graph.test"
ISSUES = f"{BASE}/v1.0/admin/serviceAnnouncement/issues"


class Tokens:
    def __init__(self) -> None:
        self.calls = 0
        self.invalidated = 0

    async def token(self, deadline: Deadline) -> str:
        self.calls += 1
        return "token-123"

    def invalidate(self) -> None:
        self.invalidated += 1


class Recorder:
    """A canned Graph: answers in order, remembers every URL asked for."""

    def __init__(self, answers: list[Callable[[httpx.Request], httpx.Response]]) -> None:
        self.answers = answers
        self.urls: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.headers["authorization"] == "Bearer token-123"
        self.urls.append(str(request.url))
        return self.answers[len(self.urls) - 1](request)


def page(
    values: list[dict[str, Any]], next_link: str | None = None
) -> Callable[[httpx.Request], httpx.Response]:
    body: dict[str, Any] = {"value": values}
    if next_link:
        body["@odata.nextLink"] = next_link
    return lambda _r: httpx.Response(200, json=body)


def error(
    status: int, code: str, headers: dict[str, str] | None = None
) -> Callable[[httpx.Request], httpx.Response]:
    return lambda _r: httpx.Response(
        status, json={"error": {"code": code, "message": "m", "innerError": {}}}, headers=headers
    )


def client(recorder: Recorder, sleeps: Sleeps, **options: Any) -> GraphClient:
    http = httpx.AsyncClient(transport=httpx.MockTransport(recorder))
    return GraphClient(http, Tokens(), GraphOptions(url=BASE, **options), RequestStats(), sleep=sleeps)


async def test_follows_next_links_as_given() -> None:
    nxt1 = f"{ISSUES}?$skiptoken=opaque%3D%3D1&extra=kept"
    nxt2 = f"{ISSUES}?$skiptoken=opaque2"
    rec = Recorder([page([{"id": "a"}], nxt1), page([{"id": "b"}], nxt2), page([{"id": "c"}])])
    rows = await client(rec, Sleeps()).list("admin/serviceAnnouncement/issues", Deadline.after(5))
    assert [r["id"] for r in rows] == ["a", "b", "c"]
    assert rec.urls == [ISSUES, nxt1, nxt2]


async def test_refuses_next_link_to_another_host() -> None:
    rec = Recorder([page([{"id": "a"}], "https://evil.test/v1.0/steal")])
    with pytest.raises(GraphError) as err:
        await client(rec, Sleeps()).list("admin/serviceAnnouncement/issues", Deadline.after(5))
    assert err.value.reason == "protocol"
    assert len(rec.urls) == 1


async def test_429_waits_for_retry_after_then_retries() -> None:
    sleeps = Sleeps()
    rec = Recorder([error(429, "TooManyRequests", {"Retry-After": "3"}), page([{"id": "a"}])])
    c = client(rec, sleeps)
    rows = await c.list("subscribedSkus", Deadline.after(10))
    assert rows == [{"id": "a"}]
    assert sleeps.calls == [3.0]
    assert c.stats.throttled == 1
    assert c.stats.by_status["429"] == 1
    assert c.stats.by_status["200"] == 1


async def test_429_beyond_the_deadline_gives_up_with_retry_after() -> None:
    sleeps = Sleeps()
    rec = Recorder([error(429, "TooManyRequests", {"Retry-After": "120"})])
    with pytest.raises(GraphError) as err:
        await client(rec, sleeps).list("subscribedSkus", Deadline.after(5))
    assert err.value.reason == "throttled"
    assert err.value.retry_after == 120.0
    assert sleeps.calls == []  # never slept past the deadline


async def test_503_is_retried_with_backoff() -> None:
    sleeps = Sleeps()
    rec = Recorder([error(503, "ServiceUnavailable"), error(503, "ServiceUnavailable"), page([])])
    c = client(rec, sleeps)
    assert await c.list("subscribedSkus", Deadline.after(10)) == []
    assert sleeps.calls == [0.25, 0.5]
    assert c.stats.retries == 2


async def test_503_until_retries_run_out() -> None:
    rec = Recorder([error(503, "ServiceUnavailable")] * 3)
    with pytest.raises(GraphError) as err:
        await client(rec, Sleeps(), max_retries=2).list("subscribedSkus", Deadline.after(10))
    assert err.value.reason == "unavailable"
    assert len(rec.urls) == 3


async def test_expired_skip_token_restarts_from_the_first_page() -> None:
    nxt = f"{ISSUES}?$skiptoken=t1"
    rec = Recorder(
        [
            page([{"id": "a"}], nxt),
            error(400, "Directory_ExpiredPageToken"),
            page([{"id": "a"}], nxt),
            page([{"id": "b"}]),
        ]
    )
    c = client(rec, Sleeps())
    rows = await c.list("admin/serviceAnnouncement/issues", Deadline.after(5))
    assert [r["id"] for r in rows] == ["a", "b"]  # no duplicates from the aborted pass
    assert rec.urls == [ISSUES, nxt, ISSUES, nxt]
    assert c.stats.restarts == 1


async def test_restarts_are_bounded() -> None:
    nxt = f"{ISSUES}?$skiptoken=t1"
    rec = Recorder([page([{"id": "a"}], nxt), error(400, "Directory_ExpiredPageToken")] * 2)
    with pytest.raises(GraphError) as err:
        await client(rec, Sleeps(), max_restarts=1).list(
            "admin/serviceAnnouncement/issues", Deadline.after(5)
        )
    assert err.value.reason == "protocol"


async def test_400_on_the_first_page_is_not_a_restart() -> None:
    rec = Recorder([error(400, "Directory_ExpiredPageToken")])
    with pytest.raises(GraphError) as err:
        await client(rec, Sleeps()).list("admin/serviceAnnouncement/issues", Deadline.after(5))
    assert err.value.reason == "protocol"


@pytest.mark.parametrize(
    ("status", "code", "reason"),
    [
        (403, "Authorization_RequestDenied", "forbidden"),
        (404, "ResourceNotFound", "protocol"),
    ],
)
async def test_client_errors_are_not_retried(status: int, code: str, reason: str) -> None:
    rec = Recorder([error(status, code)])
    with pytest.raises(GraphError) as err:
        await client(rec, Sleeps()).list("subscribedSkus", Deadline.after(5))
    assert err.value.reason == reason
    assert err.value.code == code
    assert len(rec.urls) == 1


async def test_network_errors_are_retried_then_reported() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    rec = Recorder([refuse] * 4)
    c = client(rec, Sleeps())
    with pytest.raises(GraphError) as err:
        await c.list("subscribedSkus", Deadline.after(10))
    assert err.value.reason == "network"
    assert c.stats.by_status["error"] == 4


async def test_not_json_is_a_protocol_error() -> None:
    rec = Recorder([lambda _r: httpx.Response(200, text="<html>")])
    with pytest.raises(GraphError) as err:
        await client(rec, Sleeps()).list("subscribedSkus", Deadline.after(5))
    assert err.value.reason == "protocol"


async def test_expired_deadline_sends_nothing() -> None:
    rec = Recorder([])
    with pytest.raises(GraphError) as err:
        await client(rec, Sleeps()).list("subscribedSkus", Deadline(0.0))
    assert err.value.reason == "deadline"
    assert rec.urls == []


def test_retry_after_forms() -> None:
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds("Mon, 02 Nov 2026 07:55:10 GMT", now=1_793_606_100.0) == 10.0
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None


async def test_401_fetches_a_new_token_once() -> None:
    tokens = Tokens()
    rec = Recorder([error(401, "InvalidAuthenticationToken"), page([{"id": "a"}])])
    http = httpx.AsyncClient(transport=httpx.MockTransport(rec))
    c = GraphClient(http, tokens, GraphOptions(url=BASE), RequestStats(), sleep=Sleeps())
    assert await c.list("subscribedSkus", Deadline.after(5)) == [{"id": "a"}]
    assert (tokens.invalidated, tokens.calls) == (1, 2)


async def test_401_twice_is_auth() -> None:
    tokens = Tokens()
    rec = Recorder([error(401, "InvalidAuthenticationToken")] * 2)
    http = httpx.AsyncClient(transport=httpx.MockTransport(rec))
    c = GraphClient(http, tokens, GraphOptions(url=BASE), RequestStats(), sleep=Sleeps())
    with pytest.raises(GraphError) as err:
        await c.list("subscribedSkus", Deadline.after(5))
    assert err.value.reason == "auth"
    assert len(rec.urls) == 2


class CountingProvider(MsalTokenProvider):
    """msal replaced by a counter: what the provider asks msal for, and when."""

    def __init__(self, result: dict[str, Any]) -> None:
        app = GraphApp(client_id="4f1c2d9e-0000-4000-8000-000000000001", client_secret=Secret("x"))
        self.sleeps = Sleeps()
        super().__init__("contoso.onmicrosoft.com", app, GraphOptions(), sleep=self.sleeps)
        self.result = result
        self.acquired = 0

    def _acquire(self, deadline: Deadline) -> dict[str, Any]:
        self.acquired += 1
        return self.result


async def test_fresh_token_is_held_and_dropped_on_invalidate() -> None:
    tokens = CountingProvider({"access_token": "t1", "expires_in": 3599})
    for _ in range(3):
        assert await tokens.token(Deadline.after(5)) == "t1"
    assert tokens.acquired == 1
    tokens.invalidate()
    await tokens.token(Deadline.after(5))
    assert tokens.acquired == 2


async def test_refused_credential_is_remembered() -> None:
    tokens = CountingProvider({"error": "invalid_client", "error_codes": [7000215]})
    for _ in range(3):
        with pytest.raises(GraphError) as err:
            await tokens.token(Deadline.after(5))
        assert err.value.reason == "auth"
        assert err.value.detail == "token endpoint refused: invalid_client (AADSTS7000215)"
    assert tokens.acquired == 1  # within token_failure_backoff the answer is reused


async def test_token_endpoint_trouble_is_unavailable_and_not_remembered() -> None:
    tokens = CountingProvider({"error": "temporarily_unavailable"})
    for _ in range(2):
        with pytest.raises(GraphError) as err:
            await tokens.token(Deadline.after(5))
        assert err.value.reason == "unavailable"
    # Each call tries 1 + max_retries times with a short backoff, then reports.
    assert tokens.acquired == 2 * 4
    assert tokens.sleeps.calls == [0.25, 0.5, 1.0] * 2


@pytest.mark.parametrize(("request_timeout", "reason"), [(60, "deadline"), (0.3, "network")])
async def test_graph_that_never_answers_is_bounded(request_timeout: float, reason: str) -> None:
    """Graph accepts the connection and never answers (not even the TLS handshake): the
    deadline (or the request timeout, retried once, then ``network``) bounds the call over
    real sockets; no thread is left behind."""
    silent = Silent()
    url = (await silent.start()).replace("http:", "https:")
    options = GraphOptions.model_validate(
        {"url": url, "request_timeout": f"{request_timeout}s", "max_retries": 1}
    )
    http = httpx.AsyncClient(trust_env=False)
    try:
        threads = set(threading.enumerate())
        c = GraphClient(http, Tokens(), options, RequestStats())
        with pytest.raises(GraphError) as err:
            async with asyncio.timeout(30):  # a safety net: a hang fails instead of blocking
                await c.list("subscribedSkus", Deadline.after(1.5))
        assert err.value.reason == reason
        assert silent.accepted == (1 if reason == "deadline" else 2)
        await http.aclose()
        assert set(threading.enumerate()) - threads == set()
    finally:
        await http.aclose()
        await silent.stop()
