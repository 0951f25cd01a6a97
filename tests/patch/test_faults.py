"""Faults: each is an HTTP-200 scrape with ``patch_up 0`` and one bounded reason, or a
recovered scrape that says what it took; never a raise, a hang or a leaked secret."""

from __future__ import annotations

import logging
import threading

import pytest

from mspwatch.common.procs import free_port

from .conftest import SECRET, Sim, lines_of, ninja_client, scrape, value


def reason_of(text: str) -> str | None:
    firing = [ln for ln in lines_of(text, "patch_scrape_error") if ln.endswith(" 1.0")]
    assert len(firing) <= 1
    return firing[0].split('"')[1] if firing else None


def devices(text: str) -> int:
    return len(lines_of(text, "patch_device_compliant"))


async def test_source_down() -> None:
    class Closed(Sim):
        def __init__(self) -> None:
            self.url = f"http://127.0.0.1:{free_port()}"

        def now(self) -> float:
            return 1_770_000_000.0

    text = await scrape(Closed())
    assert value(text, "patch_up") == 0.0
    assert reason_of(text) == "unreachable"
    assert devices(text) == 0
    # The policy is still stated: the fleet-compliance rule never divides by nothing.
    assert value(text, "patch_policy_target_compliance_ratio") == 0.95


async def test_bad_credentials(fleet: Sim, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        text = await scrape(fleet, ninja_client(fleet, secret="wrong-Secret-zz9"), budget=10)
    assert value(text, "patch_up") == 0.0
    assert reason_of(text) == "auth"
    assert "wrong-Secret-zz9" not in caplog.text + text
    detail = [r.__dict__.get("detail") for r in caplog.records if r.getMessage() == "source down"]
    assert detail == ["token endpoint refused the client credentials: HTTP 401 invalid_client"]


async def test_token_expiry_renews_once(fleet: Sim, caplog: pytest.LogCaptureFixture) -> None:
    """A token the server forgot early (401) is replaced once; the scrape succeeds. The
    organisation id is cached, so the lists are the first calls of the second scrape."""
    client = ninja_client(fleet)
    try:
        with caplog.at_level(logging.DEBUG):
            await scrape(fleet, client)
            fleet.post("/admin/revoke", {})
            text = await scrape(fleet, client)
    finally:
        await client.aclose()
    assert value(text, "patch_up") == 1.0
    # Devices go first, alone: its 401 is repeated with a new token before the fan-out.
    assert value(text, "patch_scrape_retries") == 1.0
    tokens = [r["status"] for r in fleet.requests() if r["path"] == "/ws/oauth/token"]
    assert tokens == [200, 200]
    assert SECRET not in caplog.text + text


async def test_throttled_page_within_deadline(fleet: Sim) -> None:
    """A 429 with Retry-After 1 s on the second call to /v2/devices is waited out."""
    fleet.fault(path="/v2/devices", status=429, retry_after=1)
    text = await scrape(fleet, budget=10)
    assert value(text, "patch_up") == 1.0
    assert value(text, "patch_scrape_retries") == 1.0
    assert devices(text) == 10
    statuses = [r["status"] for r in fleet.requests() if r["path"] == "/v2/devices"]
    assert statuses == [429, 200]


async def test_throttled_beyond_deadline(fleet: Sim) -> None:
    fleet.fault(path="/v2/devices", status=429, retry_after=60)
    text = await scrape(fleet, budget=5)
    assert value(text, "patch_up") == 0.0
    assert reason_of(text) == "throttled"


async def test_expired_cursor_restarts(fleet: Sim) -> None:
    """The cursor of os-patches expires after its first page: the query starts over, once."""
    fleet.fault(path="/v2/queries/os-patches", expire_cursor=True)
    text = await scrape(fleet)
    assert value(text, "patch_up") == 1.0
    assert value(text, "patch_scrape_cursor_restarts") == 1.0
    assert value(text, 'patch_device_missing_updates{classification="security",device="acme-sql1"}') == 1.0
    calls = [
        (("cursor" in r["query"]), r["status"])
        for r in fleet.requests()
        if r["path"] == "/v2/queries/os-patches"
    ]
    assert calls == [(False, 200), (True, 400), (False, 200), (True, 200)]


async def test_cursor_keeps_expiring(fleet: Sim) -> None:
    fleet.fault(path="/v2/queries/os-patches", expire_cursor=True, count=10)
    text = await scrape(fleet)
    assert value(text, "patch_up") == 0.0
    assert reason_of(text) == "malformed"
    assert value(text, "patch_scrape_cursor_restarts") == 3.0


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v2/devices", "{not json"),
        ("/v2/devices", '{"devices": []}'),  # an object where the API returns an array
        ("/v2/queries/antivirus-status", '{"cursor": null}'),  # no results list
        ("/v2/devices", '[{"displayName": "no-id"}]'),
        ("/v2/activities", '[{"id": 1}]'),  # an array where the API returns an object
        ("/v2/activities", '{"lastActivityId": 3, "activities": [{"deviceId": 1}]}'),  # no id
    ],
)
async def test_malformed_answers(fleet: Sim, path: str, body: str) -> None:
    fleet.fault(path=path, status=200, body=body)
    text = await scrape(fleet)
    assert value(text, "patch_up") == 0.0
    assert reason_of(text) == "malformed"


async def test_server_error_retried(fleet: Sim) -> None:
    """Two 503s are retried (max_retries 2); a third in a row fails the scrape."""
    fleet.fault(path="/v2/queries/os-patch-installs", status=503, count=2, retry_after=0)
    text = await scrape(fleet)
    assert value(text, "patch_up") == 1.0
    assert value(text, "patch_scrape_retries") == 2.0
    fleet.reset()
    fleet.fault(path="/v2/queries/os-patch-installs", status=503, count=3, retry_after=0)
    text = await scrape(fleet)
    assert reason_of(text) == "unavailable"


async def test_unknown_organization(fleet: Sim) -> None:
    text = await scrape(fleet, ninja_client(fleet, organization="Nobody Ltd"))
    assert reason_of(text) == "not_found"


async def test_unknown_enum_values(fleet: Sim) -> None:
    """A type and a severity NinjaOne does not document are counted, as other/unknown."""
    text = await scrape(fleet)
    dev = 'device="acme-ws-05"'
    assert value(text, f'patch_device_missing_updates{{classification="other",{dev}}}') == 1.0
    assert value(text, f'patch_device_missing_updates{{classification="driver",{dev}}}') == 1.0
    assert value(text, f'patch_device_missing_updates_by_severity{{{dev},severity="unknown"}}') == 2.0


async def test_hanging_endpoint_bounded(fleet: Sim) -> None:
    """An endpoint that accepts and never answers (within the scrape) ends at the deadline,
    with no thread left behind."""
    threads = threading.active_count()
    fleet.fault(path="/v2/queries/antivirus-status", delay=30)
    text = await scrape(fleet, budget=2)
    assert value(text, "patch_up") == 0.0
    assert reason_of(text) == "deadline"
    assert threading.active_count() == threads


async def test_hanging_activity_log_bounded(fleet: Sim) -> None:
    """The scan read is bounded like every other call, and a failed scrape keeps no half log."""
    fleet.fault(path="/v2/activities", delay=30)
    client = ninja_client(fleet)
    try:
        text = await scrape(fleet, client, budget=2)
        assert reason_of(text) == "deadline"
        text = await scrape(fleet, client)  # the log is read afresh from scan_lookback back
    finally:
        await client.aclose()
    assert value(text, "patch_up") == 1.0
    # (the simulator logs the held request only once it answers, after the test)
    reads = [r["query"] for r in fleet.requests() if r["path"] == "/v2/activities"]
    assert reads and all("after" in q and "newerThan" not in q for q in reads)
    assert value(text, 'patch_device_noncompliant{device="acme-ws-06",reason="not_scanned"}') == 1.0


async def test_endpoint_that_accepts_and_never_answers() -> None:
    """A listener that takes the connection and says nothing (not even to the token
    request) costs the scrape its deadline, no more, and leaves no thread behind."""
    import socket

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)  # the kernel completes the handshakes; nobody ever reads

        class Silent(Sim):
            def __init__(self) -> None:
                self.url = f"http://127.0.0.1:{listener.getsockname()[1]}"

            def now(self) -> float:
                return 1_770_000_000.0

        threads = threading.active_count()
        text = await scrape(Silent(), budget=1.5)
    assert value(text, "patch_up") == 0.0
    assert reason_of(text) == "deadline"  # not "timeout": the request timeout is 10 s
    assert threading.active_count() == threads


async def test_throttled_token_endpoint_within_deadline(fleet: Sim) -> None:
    """A 429 from the token endpoint is waited out like a data call's."""
    fleet.fault(path="/ws/oauth/token", status=429, retry_after=1)
    text = await scrape(fleet, budget=10)
    assert value(text, "patch_up") == 1.0
    assert [r["status"] for r in fleet.requests() if r["path"] == "/ws/oauth/token"] == [429, 200]
