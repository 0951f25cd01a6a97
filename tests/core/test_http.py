"""The core HTTP JSON client against a real loopback server: retries, Retry-After,
deadlines, the token hook, failure reasons and request counts."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from mspwatch.exporters.core.deadline import Deadline
from mspwatch.exporters.core.http import (
    Failure,
    HttpError,
    JsonClient,
    RequestStats,
    RetryPolicy,
)
from tests.netfaults import Silent

from .conftest import Answer, Served


class Tokens:
    """The auth hook: hands out token-1, token-2, ...; counts invalidations."""

    def __init__(self) -> None:
        self.issued = 0
        self.invalidated = 0

    async def token(self, deadline: Deadline) -> str:
        if self.issued == self.invalidated:
            self.issued += 1
        return f"token-{self.issued}"

    def invalidate(self) -> None:
        self.invalidated = self.issued


@pytest.fixture
async def client() -> AsyncIterator[Callable[..., JsonClient]]:
    made: list[JsonClient] = []

    def make(request_timeout: float = 5.0, **policy: int | float) -> JsonClient:
        c = JsonClient(
            httpx.AsyncClient(trust_env=False),
            request_timeout=request_timeout,
            policy=RetryPolicy(**policy),  # type: ignore[arg-type]
            owns_http=True,
        )
        made.append(c)
        return c

    yield make
    for c in made:
        await c.aclose()


async def fails(call: object) -> HttpError:
    with pytest.raises(HttpError) as err:
        async with asyncio.timeout(30):  # a safety net: a hang fails the test instead of blocking
            await call  # type: ignore[misc]
    return err.value


async def test_json_answer_and_counts(served: Served, client: Callable[..., JsonClient]) -> None:
    served.api.script("/a", Answer(body={"data": [1, 2]}))
    c = client()
    scrape = RequestStats()
    body = await c.get_json(
        f"{served.url}/a",
        Deadline.after(5),
        params={"skip": 0, "resultFilter": ["Success", "Warning"]},
        stats=scrape,
    )
    assert body == {"data": [1, 2]}
    (seen,) = served.api.requests("/a")
    assert seen.query == {"skip": ["0"], "resultFilter": ["Success", "Warning"]}
    for stats in (c.stats, scrape):
        assert (stats.requests, stats.retries, dict(stats.by_status)) == (1, 0, {"200": 1})


async def test_503_retry_after_one_second_is_honoured(
    served: Served, client: Callable[..., JsonClient]
) -> None:
    """Issue 8: a retry after ``503 Retry-After: 1`` comes about 1 s later, not 0.1 s."""
    served.api.script("/a", Answer(503, {"errorCode": "ServiceUnavailable"}, {"Retry-After": "1"}))
    c = client()
    assert await c.get_json(f"{served.url}/a", Deadline.after(10)) == {"ok": True}
    first, second = served.api.requests("/a")
    assert second.at - first.at >= 0.95
    assert (c.stats.retries, c.stats.by_status["503"], c.stats.by_status["200"]) == (1, 1, 1)


async def test_429_retry_after_as_http_date(served: Served, client: Callable[..., JsonClient]) -> None:
    served.api.script("/a", Answer(429, {}, {"Retry-After": "Thu, 01 Jan 1970 00:00:00 GMT"}))
    c = client()
    assert await c.get_json(f"{served.url}/a", Deadline.after(10)) == {"ok": True}
    assert len(served.api.requests("/a")) == 2
    assert (c.stats.throttled, c.stats.retries) == (1, 1)


async def test_5xx_without_retry_after_backs_off(served: Served, client: Callable[..., JsonClient]) -> None:
    served.api.script("/a", Answer(500), Answer(502))
    c = client(backoff=0.2)
    assert await c.get_json(f"{served.url}/a", Deadline.after(10)) == {"ok": True}
    a, b, d = served.api.requests("/a")
    assert b.at - a.at >= 0.19  # backoff 0.2
    assert d.at - b.at >= 0.39  # then doubled


@pytest.mark.parametrize(("status", "reason"), [(429, Failure.THROTTLED), (503, Failure.UNAVAILABLE)])
async def test_retry_after_past_the_deadline_fails_at_once(
    served: Served, client: Callable[..., JsonClient], status: int, reason: Failure
) -> None:
    served.api.script("/a", Answer(status, {}, {"Retry-After": "30"}))
    err = await fails(client().get_json(f"{served.url}/a", Deadline.after(3)))
    assert (err.reason, err.status, err.retry_after) == (reason, status, 30.0)
    assert len(served.api.requests("/a")) == 1  # no retry, no wait


@pytest.mark.parametrize(("status", "reason"), [(429, Failure.THROTTLED), (500, Failure.UNAVAILABLE)])
async def test_retries_are_bounded(
    served: Served, client: Callable[..., JsonClient], status: int, reason: Failure
) -> None:
    served.api.script("/a", *[Answer(status, {}, {"Retry-After": "0"})] * 5)
    c = client(max_retries=2)
    err = await fails(c.get_json(f"{served.url}/a", Deadline.after(10)))
    assert err.reason == reason
    assert len(served.api.requests("/a")) == 3
    assert (c.stats.requests, c.stats.retries) == (3, 2)


async def test_form_post_goes_through_the_same_policy(
    served: Served, client: Callable[..., JsonClient]
) -> None:
    """A token grant: 429 with Retry-After, waited out within the deadline."""
    served.api.script(
        "/token", Answer(429, {"error": "slow_down"}, {"Retry-After": "1"}), Answer(body={"t": 1})
    )
    c = client()
    resp = await c.send("POST", f"{served.url}/token", Deadline.after(10), form={"grant_type": "password"})
    assert resp.json() == {"t": 1}
    first, second = served.api.requests("/token")
    assert second.at - first.at >= 0.95
    assert second.body == b"grant_type=password"


async def test_401_renews_the_token_once(served: Served, client: Callable[..., JsonClient]) -> None:
    served.api.script("/a", Answer(401, {"errorCode": "Unauthorized"}))
    tokens = Tokens()
    c = client()
    assert await c.get_json(f"{served.url}/a", Deadline.after(5), auth=tokens) == {"ok": True}
    assert [s.headers["authorization"] for s in served.api.requests("/a")] == [
        "Bearer token-1",
        "Bearer token-2",
    ]
    assert (tokens.invalidated, c.stats.retries) == (1, 1)


async def test_401_twice_is_auth(served: Served, client: Callable[..., JsonClient]) -> None:
    served.api.script("/a", *[Answer(401, {"errorCode": "Unauthorized"})] * 3)
    err = await fails(client().get_json(f"{served.url}/a", Deadline.after(5), auth=Tokens()))
    assert (err.reason, err.status, err.code) == (Failure.AUTH, 401, "Unauthorized")
    assert len(served.api.requests("/a")) == 2


@pytest.mark.parametrize(
    ("status", "body", "reason", "code"),
    [
        (
            403,
            {"error": {"code": "Authorization_RequestDenied", "message": "m"}},
            Failure.FORBIDDEN,
            "Authorization_RequestDenied",
        ),
        (404, {"errorCode": "NotFound", "message": "m"}, Failure.PROTOCOL, "NotFound"),
        (400, {"error": "invalid_grant"}, Failure.PROTOCOL, "invalid_grant"),
        (302, b"", Failure.PROTOCOL, ""),
        (401, {"errorCode": "x" * 65}, Failure.AUTH, ""),  # an unbounded code is dropped
    ],
)
async def test_client_errors_are_not_retried(
    served: Served, client: Callable[..., JsonClient], status: int, body: object, reason: Failure, code: str
) -> None:
    served.api.script("/a", Answer(status, body))
    err = await fails(client().get_json(f"{served.url}/a", Deadline.after(5)))
    assert (err.reason, err.status, err.code) == (reason, status, code)
    assert len(served.api.requests("/a")) == 1


async def test_not_json_is_malformed(served: Served, client: Callable[..., JsonClient]) -> None:
    served.api.script("/a", Answer(200, b'{"data": ['))
    err = await fails(client().get_json(f"{served.url}/a", Deadline.after(5)))
    assert (err.reason, err.detail) == (Failure.MALFORMED, "/a: answer is not JSON")


async def test_refused_connection_is_retried_then_unreachable(client: Callable[..., JsonClient]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
        url = f"http://127.0.0.1:{s.getsockname()[1]}/a"
        c = client(backoff=0.01)
        err = await fails(c.get_json(url, Deadline.after(5)))
    assert err.reason == Failure.UNREACHABLE
    assert (c.stats.requests, c.stats.retries, c.stats.by_status["error"]) == (3, 2, 3)


async def test_tls_failure_is_not_retried(served: Served, client: Callable[..., JsonClient]) -> None:
    c = client()
    err = await fails(c.get_json(served.url.replace("http:", "https:") + "/a", Deadline.after(5)))
    assert err.reason == Failure.TLS
    assert c.stats.requests == 1


async def test_expired_deadline_sends_nothing(served: Served, client: Callable[..., JsonClient]) -> None:
    err = await fails(client().get_json(f"{served.url}/a", Deadline(0.0)))
    assert err.reason == Failure.DEADLINE
    assert served.api.requests("/a") == []


async def test_endpoint_that_never_answers_is_bounded_by_the_deadline(
    served: Served, client: Callable[..., JsonClient]
) -> None:
    """Accepts, never answers: ``deadline`` (request_timeout is far longer), the connection
    is closed afterwards, and no thread is left behind."""
    silent = Silent()
    url = await silent.start()
    try:
        c = client(request_timeout=60)
        await c.get_json(f"{served.url}/warm-up", Deadline.after(5))  # any lazy pools start now
        threads = set(threading.enumerate())
        err = await fails(c.get_json(f"{url}/hang", Deadline.after(1)))
        assert err.reason == Failure.DEADLINE
        assert silent.accepted == 1  # no retry after the deadline
        await c.aclose()
        async with asyncio.timeout(10):
            await silent.peer_closed.wait()
        # threads started meanwhile and still alive (others' threads may end: not ours)
        assert set(threading.enumerate()) - threads == set()
    finally:
        await silent.stop()


async def test_slow_answer_within_the_deadline_is_a_timeout(client: Callable[..., JsonClient]) -> None:
    """request_timeout well inside the deadline: ``timeout``, retried like a network error."""
    silent = Silent()
    url = await silent.start()
    try:
        c = client(request_timeout=0.3, max_retries=1, backoff=0.01)
        err = await fails(c.get_json(f"{url}/hang", Deadline.after(20)))
        assert err.reason == Failure.TIMEOUT
        assert silent.accepted == 2
        assert c.stats.by_status["error"] == 2
    finally:
        await silent.stop()


async def test_backoff_past_the_deadline_keeps_the_reason(
    served: Served, client: Callable[..., JsonClient]
) -> None:
    """No time left for the backoff: the 5xx's own reason, not a generic deadline."""
    served.api.script("/a", Answer(500))
    err = await fails(client(backoff=5).get_json(f"{served.url}/a", Deadline.after(2)))
    assert err.reason == Failure.UNAVAILABLE
    assert len(served.api.requests("/a")) == 1


def test_failure_values() -> None:
    assert [f.value for f in Failure] == [
        "unreachable",
        "timeout",
        "deadline",
        "tls",
        "throttled",
        "unavailable",
        "auth",
        "forbidden",
        "protocol",
        "malformed",
    ]
