"""The admin routes both REST simulators share (mspwatch.simulators.admin), served in-process
by the real ASGI apps: same routes, same checks, each in its API's error shape."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from mspwatch.simulators.ninjaone.app import NinjaOneSimulator
from mspwatch.simulators.veeam.app import VeeamSimulator
from tests.conftest import ROOT

SIMS = {
    "veeam": lambda: VeeamSimulator(ROOT / "simulators" / "veeam" / "scenarios" / "acme.yaml"),
    "ninjaone": lambda: NinjaOneSimulator(ROOT / "simulators" / "ninjaone" / "scenarios" / "fleet.yaml"),
}
# Each API's own error document: Veeam {"errorCode", "message"}, NinjaOne {"errorMessage"}.
MESSAGE = {"veeam": "message", "ninjaone": "errorMessage"}


async def _call(app: Any, method: str, path: str, body: bytes = b"") -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sim") as client:
        return await client.request(method, path, content=body)


@pytest.mark.parametrize("name", sorted(SIMS))
async def test_clock_faults_log_and_reset(name: str) -> None:
    app = SIMS[name]()
    identity = (await _call(app, "GET", "/admin/identity")).json()
    assert identity["simulator"] == name
    start = (await _call(app, "GET", "/admin/clock")).json()["now"]
    moved = await _call(app, "POST", "/admin/clock", b'{"advance": "1h30m"}')
    assert moved.status_code == 200 and moved.json()["now"] != start
    faults = len(app.state.faults)
    added = await _call(app, "POST", "/admin/faults", b'{"path": "/x", "status": 503}')
    assert added.json() == {"faults": faults + 1}
    await _call(app, "GET", "/v2/devices" if name == "ninjaone" else "/api/v1/jobs/states")
    assert len((await _call(app, "GET", "/admin/requests")).json()["requests"]) == 1
    reset = await _call(app, "POST", "/admin/reset")
    assert reset.json() == {"now": start}
    assert len(app.state.faults) == faults
    assert (await _call(app, "GET", "/admin/requests")).json() == {"requests": []}
    assert (await _call(app, "POST", "/admin/revoke")).json() == {}


@pytest.mark.parametrize("name", sorted(SIMS))
@pytest.mark.parametrize(
    ("method", "path", "body", "status", "message"),
    [
        ("POST", "/admin/clock", b"{not json", 400, "admin: body is not JSON"),
        ("POST", "/admin/clock", b"[1]", 400, "admin: body must be an object"),
        ("POST", "/admin/clock", b"{}", 400, "admin: want set or advance"),
        ("POST", "/admin/clock", b'{"advance": "soon"}', 400, "admin: invalid duration 'soon'"),
        ("POST", "/admin/clock", b'{"advance": [1]}', 400, "admin: advance wants a duration"),
        ("POST", "/admin/faults", b'{"no_such_field": 1}', 400, "admin: "),
        ("GET", "/admin/nothing", b"", 404, "No admin route GET /admin/nothing"),
    ],
)
async def test_bad_admin_requests_are_refused(
    name: str, method: str, path: str, body: bytes, status: int, message: str
) -> None:
    resp = await _call(SIMS[name](), method, path, body)
    assert resp.status_code == status
    assert resp.json()[MESSAGE[name]].startswith(message)
