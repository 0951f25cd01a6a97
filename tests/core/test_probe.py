"""The probe core: the outcome families, the deadline, the in-flight slot, the server's answer."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Mapping
from enum import StrEnum

import httpx
import pytest
from prometheus_client import generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric

from mspwatch.common.secrets import Secret
from mspwatch.exporters.core.deadline import Deadline
from mspwatch.exporters.core.probe import BadRequest, ProbeApp, ProbeFailure
from mspwatch.exporters.core.server import ExporterMetrics, ExporterServer, ServerOptions
from mspwatch.exporters.core.webconfig import WebConfig


class Reason(StrEnum):
    TIMEOUT = "timeout"
    AUTH = "auth"
    DEADLINE = "deadline"
    INTERNAL = "internal"


PASSWORD = "Sw0rdf1sh-in-a-bug"


def _family(name: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, f"{name} help.", value=value)


class FakeApp(ProbeApp[str]):
    """A prober whose behaviour the target names: ``ok``, ``timeout``, ``both``, ``hang``..."""

    namespace = "fake"
    probe_path = "/fake"
    reasons = Reason
    subject = "gadget"
    up_help = "1 if the gadget answered."

    def __init__(self, max_in_flight: int | None = None) -> None:
        super().__init__()
        self.limit = max_in_flight
        self.release = asyncio.Event()
        self.entered = asyncio.Event()
        self.scraped: list[str] = []

    @property
    def max_in_flight(self) -> int | None:
        return self.limit

    def target(self, params: Mapping[str, str]) -> str:
        target = params.get("target", "")
        if not target:
            raise BadRequest("'target' parameter must be specified")
        return target

    async def scrape(self, target: str, deadline: Deadline) -> list[Metric]:
        self.scraped.append(target)
        if target == "ok":
            return [_family("fake_things", 3)]
        if target == "timeout":
            raise ProbeFailure(Reason.TIMEOUT, detail="no answer", families=[_family("fake_requests", 2)])
        if target == "both":
            raise ProbeFailure(Reason.TIMEOUT, Reason.AUTH)
        if target == "unknown-yet":
            raise ProbeFailure()
        if target == "hang":  # ignores its deadline: the core must cut it off
            await asyncio.Event().wait()
        if target == "hold":
            self.entered.set()
            await self.release.wait()
            return [_family("fake_things", 1)]
        if target == "undeclared":
            raise ProbeFailure(_Other.X)
        if target == "bad":
            raise BadRequest("target 'bad' is not allowed")
        if target == "leaky":  # a bug whose message holds the credential it used
            raise ValueError(f"login with {Secret(PASSWORD)} refused")
        raise RuntimeError("a bug")


class _Other(StrEnum):
    X = "x"


def _text(registry: object) -> str:
    text = generate_latest(registry).decode()  # type: ignore[arg-type]
    return re.sub(r"^(fake_scrape_duration_seconds) \S+$", r"\1 0.0", text, flags=re.M)


def _errors(text: str) -> dict[str, float]:
    return {
        m[1]: float(m[2]) for m in re.finditer(r'^fake_scrape_error\{reason="(\w+)"\} (\S+)$', text, re.M)
    }


async def test_a_scrape_that_succeeds() -> None:
    text = _text(await FakeApp().probe({"target": "ok"}, Deadline.after(5)))
    assert text == (
        "# HELP fake_up 1 if the gadget answered.\n"
        "# TYPE fake_up gauge\n"
        "fake_up 1.0\n"
        "# HELP fake_scrape_error 1 for the reason the gadget could not be scraped (fake_up 0), "
        "0 for the others: timeout, auth, deadline, internal.\n"
        "# TYPE fake_scrape_error gauge\n"
        'fake_scrape_error{reason="timeout"} 0.0\n'
        'fake_scrape_error{reason="auth"} 0.0\n'
        'fake_scrape_error{reason="deadline"} 0.0\n'
        'fake_scrape_error{reason="internal"} 0.0\n'
        "# HELP fake_things fake_things help.\n"
        "# TYPE fake_things gauge\n"
        "fake_things 3.0\n"
        "# HELP fake_scrape_duration_seconds Time this scrape took.\n"
        "# TYPE fake_scrape_duration_seconds gauge\n"
        "fake_scrape_duration_seconds 0.0\n"
    )


async def test_a_failure_has_its_reason_and_keeps_its_families() -> None:
    text = _text(await FakeApp().probe({"target": "timeout"}, Deadline.after(5)))
    assert "fake_up 0.0" in text
    assert _errors(text) == {"timeout": 1.0, "auth": 0.0, "deadline": 0.0, "internal": 0.0}
    assert "fake_requests 2.0" in text
    assert "fake_scrape_duration_seconds" in text


async def test_several_reasons_or_none_yet() -> None:
    both = _text(await FakeApp().probe({"target": "both"}, Deadline.after(5)))
    assert _errors(both) == {"timeout": 1.0, "auth": 1.0, "deadline": 0.0, "internal": 0.0}
    pending = _text(await FakeApp().probe({"target": "unknown-yet"}, Deadline.after(5)))
    assert "fake_up 0.0" in pending
    assert set(_errors(pending).values()) == {0.0}


async def test_a_scrape_that_crashes_is_up_0_internal_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    text = _text(await FakeApp().probe({"target": "crash"}, Deadline.after(5)))
    assert "fake_up 0.0" in text
    assert _errors(text) == {"timeout": 0.0, "auth": 0.0, "deadline": 0.0, "internal": 1.0}
    assert "a bug" not in text  # the answer holds the bounded reason only
    crashed = [r for r in caplog.records if r.getMessage() == "scrape crashed"]
    assert len(crashed) == 1
    assert crashed[0].levelno == logging.ERROR
    assert crashed[0].exc_info is not None and str(crashed[0].exc_info[1]) == "a bug"  # the traceback
    assert [r.getMessage() for r in caplog.records] == ["scrape crashed"]


async def test_a_crash_logs_no_secret(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    text = _text(await FakeApp().probe({"target": "leaky"}, Deadline.after(5)))
    assert _errors(text)["internal"] == 1.0
    logged = caplog.text  # message and formatted traceback
    assert "login with <secret> refused" in logged
    assert PASSWORD not in logged and PASSWORD not in text


async def test_a_scrape_that_overruns_the_deadline_is_cut_off_as_deadline() -> None:
    text = _text(await FakeApp().probe({"target": "hang"}, Deadline.after(0.2)))
    assert "fake_up 0.0" in text
    assert _errors(text)["deadline"] == 1.0


async def test_no_slot_before_the_deadline_is_the_reason_deadline() -> None:
    app = FakeApp(max_in_flight=1)
    held = asyncio.ensure_future(app.probe({"target": "hold"}, Deadline.after(30)))
    await app.entered.wait()
    waiting = _text(await app.probe({"target": "ok"}, Deadline.after(0.2)))
    assert "fake_up 0.0" in waiting
    assert _errors(waiting)["deadline"] == 1.0
    assert app.scraped == ["hold"]  # the waiting scrape never ran
    app.release.set()
    assert "fake_up 1.0" in _text(await held)
    # the slot came back: the next scrape runs
    assert "fake_up 1.0" in _text(await app.probe({"target": "ok"}, Deadline.after(5)))


async def test_a_reload_that_changes_the_limit_applies_to_the_next_scrape() -> None:
    app = FakeApp(max_in_flight=1)
    held = asyncio.ensure_future(app.probe({"target": "hold"}, Deadline.after(30)))
    await app.entered.wait()
    app.limit = 2
    assert "fake_up 1.0" in _text(await app.probe({"target": "ok"}, Deadline.after(1)))
    app.release.set()
    await held


async def test_bad_requests_and_undeclared_reasons_raise() -> None:
    app = FakeApp()
    with pytest.raises(BadRequest, match="'target' parameter must be specified"):
        await app.probe({}, Deadline.after(5))
    with pytest.raises(BadRequest, match="not allowed"):
        await app.probe({"target": "bad"}, Deadline.after(5))
    with pytest.raises(TypeError, match="undeclared reason"):
        await app.probe({"target": "undeclared"}, Deadline.after(5))


def test_every_exporter_declares_the_core_reasons() -> None:
    class NoDeadline(StrEnum):
        TIMEOUT = "timeout"
        INTERNAL = "internal"

    class NoInternal(StrEnum):
        DEADLINE = "deadline"

    class Neither(StrEnum):
        TIMEOUT = "timeout"

    with pytest.raises(TypeError, match=r"^Broken\.reasons must declare 'deadline'$"):

        class Broken(FakeApp):
            reasons = NoDeadline

    with pytest.raises(TypeError, match=r"^Broken\.reasons must declare 'internal'$"):

        class Broken(FakeApp):  # type: ignore[no-redef]
            reasons = NoInternal

    with pytest.raises(TypeError, match=r"^Broken\.reasons must declare 'deadline', 'internal'$"):

        class Broken(FakeApp):  # type: ignore[no-redef]
            reasons = Neither


def test_outcome_metrics_document_the_core_families() -> None:
    assert [name for name, _label, _help in FakeApp.outcome_metrics()] == [
        "fake_up",
        "fake_scrape_error",
        "fake_scrape_duration_seconds",
    ]


# --- through the server: status codes and the probe outcome counter ----------------------


async def _get(server: ExporterServer, path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=server)
    async with httpx.AsyncClient(transport=transport, base_url="http://exporter") as client:
        return await client.get(path, headers={"X-Prometheus-Scrape-Timeout-Seconds": "5"})


def _server(app: FakeApp) -> ExporterServer:
    return ExporterServer(
        app, web=WebConfig(), metrics=ExporterMetrics("fake", "test"), options=ServerOptions()
    )


async def test_the_server_answers_each_outcome() -> None:
    server = _server(FakeApp())
    down = await _get(server, "/fake?target=timeout")
    assert down.status_code == 200  # a failing target is data
    assert "fake_up 0.0" in down.text
    assert (await _get(server, "/fake")).status_code == 400
    crashed = await _get(server, "/fake?target=crash")
    assert crashed.status_code == 200  # a crashed scrape is data too: up 0, reason internal
    assert "fake_up 0.0" in crashed.text
    assert 'fake_scrape_error{reason="internal"} 1.0' in crashed.text
    assert "a bug" not in crashed.text
    undeclared = await _get(server, "/fake?target=undeclared")  # a broken exporter: 500
    assert undeclared.status_code == 500
    own = (await _get(server, "/metrics")).text
    assert 'fake_exporter_probes_total{outcome="ok"} 2.0' in own
    assert 'fake_exporter_probes_total{outcome="bad_request"} 1.0' in own
    assert 'fake_exporter_probes_total{outcome="error"} 1.0' in own


class ReloadingApp(FakeApp):
    def __init__(self) -> None:
        super().__init__()
        self.fail: Exception | None = None
        self.generation = 0

    def reload(self) -> None:
        if self.fail is not None:
            raise self.fail
        self.generation += 1


async def test_a_reload_that_fails_in_any_way_keeps_the_old_config_and_says_0() -> None:
    from mspwatch.common.config import ConfigError

    app = ReloadingApp()
    server = _server(app)
    server.metrics.reloaded(True)
    for fault in (ConfigError("x.yml: walk.timeout: bad"), UnicodeDecodeError("utf-8", b"\xff", 0, 1, "bad")):
        app.fail = fault
        assert not server.reload()
        assert "fake_exporter_config_last_reload_successful 0.0" in (await _get(server, "/metrics")).text
        assert app.generation == 0
        assert "fake_up 1.0" in (await _get(server, "/fake?target=ok")).text  # still serving
    app.fail = None
    assert server.reload()
    assert "fake_exporter_config_last_reload_successful 1.0" in (await _get(server, "/metrics")).text


@pytest.mark.parametrize(
    "module",
    [
        "mspwatch.exporters.snmp.main",
        "mspwatch.exporters.backup.main",
        "mspwatch.exporters.m365.main",
        "mspwatch.exporters.patch.main",
        "mspwatch.exporters.inventory.main",
    ],
)
def test_every_exporter_is_a_probe_app_with_one_vocabulary(module: str) -> None:
    import importlib

    apps = [
        obj
        for obj in vars(importlib.import_module(module)).values()
        if isinstance(obj, type) and issubclass(obj, ProbeApp) and obj is not ProbeApp
    ]
    assert len(apps) == 1, apps
    app = apps[0]
    ns = app.namespace
    assert app.probe_path == f"/{ns}"
    assert {"deadline", "internal"} <= {r.value for r in app.reasons}
    assert [name for name, _label, _help in app.outcome_metrics()] == [
        f"{ns}_up",
        f"{ns}_scrape_error",
        f"{ns}_scrape_duration_seconds",
    ]
