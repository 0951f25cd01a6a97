"""Fault tests: the Veeam client over real HTTP against the simulator's faults."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import httpx

from .conftest import Sim, series_of, value, veeam_source, write_config


def reason_of(text: str) -> str | None:
    """The one reason whose error series is 1, or None."""
    hot = [ln for ln in series_of(text, "backup_scrape_error") if ln.endswith(" 1.0")]
    assert len(hot) <= 1, hot
    return hot[0].split('"')[1] if hot else None


async def test_source_down_is_data_not_an_error(tmp_path: Path, exporters: Any) -> None:
    """Nothing listens: HTTP 200, up 0, reason unreachable, no job series."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound but not listening: connections are refused
        config = write_config(tmp_path, [veeam_source(f"http://127.0.0.1:{port}")])
        text = await exporters(config).scrape("acme-vbr", scrape_timeout=5)
    assert value(text, "backup_up") == 0
    assert reason_of(text) == "unreachable"
    assert series_of(text, "backup_job_last_result") == []


async def test_hanging_source_answers_within_the_deadline(acme: Sim, tmp_path: Path, exporters: Any) -> None:
    """A server that holds the token request for 20 s: the exporter answers 200 with
    reason deadline, not the server's 504 that an overrun deadline would give."""
    acme.fault(path="/api/oauth2/token", status=200, delay="20s")
    config = write_config(tmp_path, [veeam_source(acme.url)])
    exp = exporters(config)
    resp = await exp.get("/backup", {"target": "acme-vbr"}, scrape_timeout=1.5)
    assert resp.status_code == 200
    assert value(resp.text, "backup_up") == 0
    assert reason_of(resp.text) == "deadline"
    assert 'backup_exporter_probes_total{outcome="deadline"} 0.0' in (await exp.get("/metrics", {})).text


async def test_wrong_password(acme: Sim, tmp_path: Path, exporters: Any) -> None:
    config = write_config(tmp_path, [veeam_source(acme.url)], password="not-the-password")
    text = await exporters(config).scrape("acme-vbr")
    assert value(text, "backup_up") == 0
    assert reason_of(text) == "auth"
    assert value(text, 'backup_api_errors_total{status="401"}') == 1


async def test_expired_token_is_refreshed(acme: Sim, tmp_path: Path, exporters: Any) -> None:
    """The access token expires on the server's clock: 401, then the refresh grant."""
    config = write_config(tmp_path, [veeam_source(acme.url)])
    exp = exporters(config)
    assert value(await exp.scrape("acme-vbr"), "backup_up") == 1
    acme.advance("16m")
    text = await exp.scrape("acme-vbr")
    assert value(text, "backup_up") == 1
    assert value(text, 'backup_api_errors_total{status="401"}') == 1
    assert acme.grants() == ["password", "refresh_token"]


async def test_each_refresh_token_is_used_once(acme: Sim, tmp_path: Path, exporters: Any) -> None:
    """Two expiries, two refreshes: each uses the refresh token of the previous answer
    (the simulator refuses a spent one), never falling back to the password."""
    config = write_config(tmp_path, [veeam_source(acme.url)])
    exp = exporters(config)
    for _ in range(3):
        assert value(await exp.scrape("acme-vbr"), "backup_up") == 1
        acme.advance("16m")
    assert acme.grants() == ["password", "refresh_token", "refresh_token"]


def test_simulator_refuses_a_reused_refresh_token(acme: Sim) -> None:
    headers = {"x-api-version": "1.1-rev2"}
    first = acme.admin.post(
        "/api/oauth2/token",
        headers=headers,
        data={"grant_type": "password", "username": "svc-monitor", "password": "Sim-Passw0rd!"},
    ).json()
    refresh = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    assert acme.admin.post("/api/oauth2/token", headers=headers, data=refresh).status_code == 200
    again = acme.admin.post("/api/oauth2/token", headers=headers, data=refresh)
    assert again.status_code == 400
    assert again.json()["errorCode"] == "BadRequest"


async def test_refused_refresh_token_falls_back_to_password(
    acme: Sim, tmp_path: Path, exporters: Any
) -> None:
    """The server forgot every token (a restart): the refresh is refused (400), the client
    logs in with the password again and the scrape still succeeds."""
    config = write_config(tmp_path, [veeam_source(acme.url)])
    exp = exporters(config)
    assert value(await exp.scrape("acme-vbr"), "backup_up") == 1
    acme.post("/admin/revoke", {})
    text = await exp.scrape("acme-vbr")
    assert value(text, "backup_up") == 1
    assert value(text, 'backup_api_errors_total{status="400"}') == 1
    assert acme.grants() == ["password", "refresh_token", "password"]


async def test_paging_reads_past_the_first_page(acme: Sim, tmp_path: Path, exporters: Any) -> None:
    """310 sessions at 100 a page: four pages; the one session of "Weekly offsite" is on
    the last page and its duration and bytes are there."""
    config = write_config(tmp_path, [veeam_source(acme.url)])
    text = await exporters(config).scrape("acme-vbr")
    skips = [
        int(r["query"]["skip"])
        for r in acme.requests()
        if r["path"] == "/api/v1/sessions" and "createdAfterFilter" in r["query"] and r["status"] == 200
    ]
    assert skips == [0, 100, 200, 300]
    assert value(text, 'backup_job_last_duration_seconds{job_name="Weekly offsite"}') == 10800
    assert value(text, 'backup_job_last_transferred_bytes{job_name="Weekly offsite"}') == 53687091200


async def test_throttling_and_server_errors_are_retried(acme: Sim, tmp_path: Path, exporters: Any) -> None:
    """The scenario's one 429 (Retry-After: 1) and one 500 are retried: up 1, both counted."""
    config = write_config(tmp_path, [veeam_source(acme.url)])
    text = await exporters(config).scrape("acme-vbr")
    assert value(text, "backup_up") == 1
    assert value(text, 'backup_api_errors_total{status="429"}') == 1
    assert value(text, 'backup_api_errors_total{status="500"}') == 1
    assert value(text, "backup_scrape_retries") == 2


async def test_persistent_throttling_is_a_reason(acme: Sim, tmp_path: Path, exporters: Any) -> None:
    acme.fault(path="/api/v1/backupInfrastructure/repositories/states", status=429, count=10, retry_after=0)
    config = write_config(tmp_path, [veeam_source(acme.url)])
    text = await exporters(config).scrape("acme-vbr")
    assert value(text, "backup_up") == 0
    assert reason_of(text) == "throttled"


async def test_malformed_json(acme: Sim, tmp_path: Path, exporters: Any) -> None:
    acme.fault(path="/api/v1/jobs/states", status=200, body='{"data": [', count=5)
    config = write_config(tmp_path, [veeam_source(acme.url)])
    text = await exporters(config).scrape("acme-vbr")
    assert value(text, "backup_up") == 0
    assert reason_of(text) == "malformed"


async def test_unknown_enums_map_to_unknown_never_success(acme: Sim, tmp_path: Path, exporters: Any) -> None:
    """Job type KubernetesBackup2030 is kept as a label; result "Partial" is unknown."""
    config = write_config(tmp_path, [veeam_source(acme.url)])
    text = await exporters(config).scrape("acme-vbr")
    job = 'job_name="Cluster apps"'
    assert value(text, f'backup_job_last_result{{{job},result="unknown"}}') == 1
    assert value(text, f'backup_job_last_result{{{job},result="success"}}') == 0
    assert value(text, f"backup_job_last_success_timestamp_seconds{{{job}}}") == 0
    assert 'job_type="KubernetesBackup2030"' in text


async def test_agent_policy_success_with_failed_backup_is_failed(
    acme: Sim, tmp_path: Path, exporters: Any
) -> None:
    config = write_config(tmp_path, [veeam_source(acme.url)])
    text = await exporters(config).scrape("acme-vbr")
    assert value(text, 'backup_job_last_result{job_name="Laptops",result="failed"}') == 1
    assert value(text, 'backup_job_within_rpo{job_name="Laptops"}') == 0


async def test_deleted_job_disappears(acme: Sim, tmp_path: Path, exporters: Any) -> None:
    config = write_config(tmp_path, [veeam_source(acme.url)])
    exp = exporters(config)
    assert 'job_name="SQL nightly"' in await exp.scrape("acme-vbr")
    acme.post("/admin/jobs/delete", {"name": "SQL nightly"})
    text = await exp.scrape("acme-vbr")
    assert value(text, "backup_up") == 1
    assert 'job_name="SQL nightly"' not in text
    assert value(text, "backup_jobs") == 9


async def test_running_session_without_end_time(acme: Sim, tmp_path: Path, exporters: Any) -> None:
    """A session without end time: running, and the last result is the previous run's."""
    config = write_config(tmp_path, [veeam_source(acme.url)])
    exp = exporters(config)
    text = await exp.scrape("acme-vbr")
    assert value(text, 'backup_job_running{job_name="Web farm"}') == 1
    assert value(text, 'backup_job_running{job_name="SQL nightly"}') == 0
    assert value(text, 'backup_job_last_result{job_name="Web farm",result="success"}') == 1


async def test_bad_requests(tmp_path: Path, exporters: Any) -> None:
    config = write_config(tmp_path, [veeam_source("http://127.0.0.1:9")])
    exp = exporters(config)
    missing = await exp.get("/backup", {})
    assert (missing.status_code, missing.text) == (400, "'target' parameter must be specified\n")
    unknown = await exp.get("/backup", {"target": "nope"})
    assert (unknown.status_code, unknown.text) == (400, "unknown backup source 'nope'\n")


async def test_concurrent_scrapes_share_one_login(acme: Sim, tmp_path: Path, exporters: Any) -> None:
    config = write_config(tmp_path, [veeam_source(acme.url)])
    exp = exporters(config)
    texts = await asyncio.gather(*(exp.scrape("acme-vbr") for _ in range(3)))
    assert all(value(t, "backup_up") == 1 for t in texts)
    assert acme.grants() == ["password"]


def test_simulator_requires_the_api_version_header(acme: Sim) -> None:
    resp = httpx.post(
        f"{acme.url}/api/oauth2/token",
        data={"grant_type": "password", "username": "svc-monitor", "password": "x"},
        trust_env=False,
    )
    assert resp.status_code == 400
    assert "x-api-version" in resp.json()["message"]


async def test_steady_scrape_reads_only_the_lists(acme: Sim, tmp_path: Path, exporters: Any) -> None:
    """First scrape: login, lists, per-job follow-ups and the faults' retries (21 requests).
    Next: job states, 4 pages of sessions, repositories; the follow-ups come from the cache."""
    config = write_config(tmp_path, [veeam_source(acme.url)])
    exp = exporters(config)
    first = await exp.scrape("acme-vbr")
    second = await exp.scrape("acme-vbr")
    assert value(first, "backup_scrape_requests") == 21
    assert value(second, "backup_scrape_requests") == 6
    steady = lambda t: [ln for ln in t.splitlines() if "scrape_" not in ln and "_total" not in ln]  # noqa: E731
    assert steady(first) == steady(second)


async def test_slow_request_is_a_timeout(acme: Sim, tmp_path: Path, exporters: Any) -> None:
    """Requests slower than request_timeout, well before the scrape deadline: timeout (a
    timed-out request is retried like a network error, so every attempt is made slow)."""
    acme.fault(path="/api/v1/jobs/states", status=200, delay="10s", count=10)
    config = write_config(tmp_path, [veeam_source(acme.url, request_timeout="500ms")])
    text = await exporters(config).scrape("acme-vbr", scrape_timeout=8)
    assert value(text, "backup_up") == 0
    assert reason_of(text) == "timeout"


async def test_transferred_bytes_can_be_turned_off(acme: Sim, tmp_path: Path, exporters: Any) -> None:
    config = write_config(tmp_path, [veeam_source(acme.url, transferred_bytes=False)])
    text = await exporters(config).scrape("acme-vbr")
    assert value(text, "backup_up") == 1
    assert series_of(text, "backup_job_last_transferred_bytes") == []
    assert not [r for r in acme.requests() if r["path"].endswith("/taskSessions")]
