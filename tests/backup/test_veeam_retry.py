"""Issue 8 regressions: the Veeam client waits out Retry-After within the deadline (token
endpoint and data calls, 429 and 5xx), fails at once when it lies beyond, and a server that
accepts and never answers costs no more than the deadline."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from tests.netfaults import Silent

from .conftest import Sim, value, veeam_source, write_config

REPOS = "/api/v1/backupInfrastructure/repositories/states"


def reason_of(text: str) -> str | None:
    hot = [ln for ln in text.splitlines() if ln.startswith("backup_scrape_error{") and ln.endswith(" 1.0")]
    assert len(hot) <= 1, hot
    return hot[0].split('"')[1] if hot else None


def arrivals(sim: Sim, path: str) -> list[tuple[int, float]]:
    """(status, arrival on the simulator's clock) of every request to ``path``."""
    return [(r["status"], r["received"]) for r in sim.requests() if r["path"] == path]


async def test_token_endpoint_429_is_waited_out(acme: Sim, tmp_path: Path, exporters: Any) -> None:
    """429 Retry-After: 1 from the token endpoint with most of the deadline left: the grant
    waits a second and the scrape succeeds (it used to fail at once as throttled)."""
    acme.fault(path="/api/oauth2/token", status=429, retry_after=1)
    config = write_config(tmp_path, [veeam_source(acme.url)])
    text = await exporters(config).scrape("acme-vbr", scrape_timeout=20)
    assert value(text, "backup_up") == 1
    (s1, t1), (s2, t2) = arrivals(acme, "/api/oauth2/token")
    assert (s1, s2) == (429, 200)
    assert t2 - t1 >= 0.95
    assert acme.grants() == ["password", "password"]
    # the scenario's own 429 on the job states, and this one
    assert value(text, 'backup_api_errors_total{status="429"}') == 2


async def test_503_retry_after_is_honoured(acme: Sim, tmp_path: Path, exporters: Any) -> None:
    """503 Retry-After: 1: the retry comes a second later (it used to come after 0.1 s)."""
    acme.fault(path=REPOS, status=503, retry_after=1)
    config = write_config(tmp_path, [veeam_source(acme.url)])
    text = await exporters(config).scrape("acme-vbr", scrape_timeout=20)
    assert value(text, "backup_up") == 1
    (s1, t1), (s2, t2) = arrivals(acme, REPOS)
    assert (s1, s2) == (503, 200)
    assert t2 - t1 >= 0.95
    assert value(text, 'backup_api_errors_total{status="503"}') == 1


@pytest.mark.parametrize(("status", "reason"), [(429, "throttled"), (503, "server_error")])
async def test_retry_after_past_the_deadline_fails_at_once(
    acme: Sim, tmp_path: Path, exporters: Any, status: int, reason: str
) -> None:
    """Retry-After: 30 with a 5 s deadline: no wait, no retry, the bounded reason."""
    acme.fault(path=REPOS, status=status, retry_after=30, count=5)
    config = write_config(tmp_path, [veeam_source(acme.url)])
    text = await exporters(config).scrape("acme-vbr", scrape_timeout=5)
    assert value(text, "backup_up") == 0
    assert reason_of(text) == reason
    assert [s for s, _ in arrivals(acme, REPOS)] == [status]


@pytest.mark.parametrize("request_timeout", ["60s", "500ms"])
async def test_server_that_never_answers(tmp_path: Path, exporters: Any, request_timeout: str) -> None:
    """Accepts the connection, never answers: HTTP 200 within the deadline with reason
    deadline (request_timeout beyond it) or timeout (well inside it); no thread left behind."""
    silent = Silent()
    url = await silent.start()
    try:
        config = write_config(tmp_path, [veeam_source(url, request_timeout=request_timeout)])
        exp = exporters(config)
        threads = set(threading.enumerate())
        text = await exp.scrape("acme-vbr", scrape_timeout=3)
        assert value(text, "backup_up") == 0
        assert reason_of(text) == ("deadline" if request_timeout == "60s" else "timeout")
        await exp.close()
        # threads started meanwhile and still alive (others' threads may end: not ours)
        assert set(threading.enumerate()) - threads == set()
    finally:
        await silent.stop()
