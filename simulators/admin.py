"""What every REST simulator (Veeam, NinjaOne) shares besides its API: the scenario file, the
simulated clock, the faults, the request log, and the admin routes that drive them.

The admin routes are for tests and the demo; an exporter never calls them::

    GET  /admin/identity   {"simulator": "veeam", "pid": N}: who answers on the port
    GET  /admin/clock      {"now": ISO}
    POST /admin/clock      {"set": ISO} or {"advance": "16m" | seconds}
    POST /admin/faults     a fault, as in scenario files
    POST /admin/revoke     forget every token
    POST /admin/reset      reload the scenario file, clock included
    GET  /admin/requests   the request log; DELETE clears it

A simulator adds its own routes (Veeam's ``POST /admin/jobs/delete``) through ``extra``.
:func:`start_simulator` runs one as a process and :class:`AdminClient` drives it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from mspwatch.common.procs import free_port, spawn, wait_for_port
from mspwatch.simulators.veeam.scenario import parse_duration, resolve_when

# (method, path) -> the route, given the request's JSON object, returning the answer's.
Route = Callable[[dict[str, Any]], Any]


class AdminError(Exception):
    """An admin request that cannot be served; each simulator renders it in its API's shape."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class SimState:
    """A simulator's state: what its scenario file says, moved by its clock and the admin
    routes. Subclasses load their records in :meth:`load` (called at start and on reset)."""

    scenario_file: Path
    clock_override: str | None = None  # --clock: "now" or an ISO time instead of the file's
    running_clock: bool = False
    _base: float = 0.0  # simulated time at _anchor
    _anchor: float = 0.0  # real time when _base was set
    faults: list[Any] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.load()

    @property
    def now(self) -> float:
        """The simulated clock: frozen, or running with real time from its last setting."""
        if self.running_clock:
            return self._base + (time.time() - self._anchor)
        return self._base

    @now.setter
    def now(self, value: float) -> None:
        self._base, self._anchor = value, time.time()

    def start_clock(self, scenario_clock: str) -> float:
        """Set the clock from --clock, else the scenario's; return that one reading, so
        relative times in the scenario do not drift while it loads."""
        start = self.clock_override or scenario_clock
        self.running_clock = start == "now"
        self.now = resolve_when(start, 0.0)
        return self.now

    def load(self) -> None:
        """(Re)read the scenario file: records, clock, no faults."""
        raise NotImplementedError

    def add_fault(self, spec: dict[str, Any]) -> None:
        """Add a fault given as in scenario files; raise ValueError if it is not one."""
        raise NotImplementedError

    def revoke(self) -> None:
        """Forget every token the simulator issued."""
        raise NotImplementedError


def admin_answer(
    simulator: str,
    state: SimState,
    method: str,
    path: str,
    raw: bytes,
    *,
    iso: Callable[[float], str],
    extra: Mapping[tuple[str, str], Route] | None = None,
) -> Any:
    """The JSON answer (HTTP 200) of one admin request; raise :class:`AdminError` otherwise.

    ``iso`` writes the clock the way the simulated API writes times.
    """
    try:
        body = json.loads(raw) if raw else {}
    except json.JSONDecodeError:
        raise AdminError(400, "admin: body is not JSON") from None
    if not isinstance(body, dict):
        raise AdminError(400, "admin: body must be an object")
    route = (extra or {}).get((method, path))
    if route is not None:
        return route(body)
    if path == "/admin/identity":
        return {"simulator": simulator, "pid": os.getpid()}
    if path == "/admin/clock":
        if method == "POST":
            try:
                if "set" in body:
                    state.now = resolve_when(str(body["set"]), state.now)
                elif "advance" in body:
                    advance = parse_duration(body["advance"])
                    if isinstance(advance, bool) or not isinstance(advance, int | float):
                        raise AdminError(400, "admin: advance wants a duration (16m) or seconds")
                    state.now += float(advance)
                else:
                    raise AdminError(400, "admin: want set or advance")
            except ValueError as exc:
                raise AdminError(400, f"admin: {exc}") from None
        return {"now": iso(state.now)}
    if path == "/admin/faults" and method == "POST":
        try:
            state.add_fault(body)
        except ValueError as exc:
            raise AdminError(400, f"admin: {exc}") from None
        return {"faults": len(state.faults)}
    if path == "/admin/revoke" and method == "POST":
        state.revoke()
        return {}
    if path == "/admin/reset" and method == "POST":
        state.load()
        state.requests.clear()
        return {"now": iso(state.now)}
    if path == "/admin/requests":
        if method == "DELETE":
            state.requests.clear()
        return {"requests": state.requests}
    raise AdminError(404, f"No admin route {method} {path}")


def start_simulator(
    module: str, scenario: Path, log: Path, *extra: str, cwd: Path | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """Run ``python -m <module>`` on a free loopback port; its process and base URL once it
    listens. The caller stops it by PID (:func:`mspwatch.common.procs.stop_process`)."""
    port = free_port()
    args = [sys.executable, "-m", module, "--listen", f"127.0.0.1:{port}", "--scenario", str(scenario)]
    proc = spawn([*args, *extra], log, cwd=cwd)
    wait_for_port(port, proc=proc, log=log)
    return proc, f"http://127.0.0.1:{port}"


class AdminClient:
    """A running simulator: its process, its URL and its admin routes."""

    def __init__(self, proc: subprocess.Popen[bytes], url: str) -> None:
        self.proc = proc
        self.url = url
        self.admin = httpx.Client(base_url=url, timeout=10, trust_env=False)

    def post(self, path: str, body: dict[str, Any]) -> Any:
        resp = self.admin.post(path, json=body)
        resp.raise_for_status()
        return resp.json()

    def reset(self) -> None:
        """Back to the scenario's start: clock, faults, tokens, request log."""
        self.post("/admin/reset", {})

    def advance(self, span: str) -> None:
        self.post("/admin/clock", {"advance": span})

    def set_clock(self, iso: str) -> None:
        self.post("/admin/clock", {"set": iso})

    def fault(self, **spec: Any) -> None:
        self.post("/admin/faults", spec)

    def requests(self) -> list[dict[str, Any]]:
        return list(self.admin.get("/admin/requests").json()["requests"])

    def close(self) -> None:
        self.admin.close()
