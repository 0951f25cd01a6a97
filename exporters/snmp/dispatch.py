"""The exporter's default SNMP client: the fast codec for v1/v2c, pysnmp for v3."""

from __future__ import annotations

from .client import PysnmpClient, SnmpClient, SnmpSession
from .config import Auth, WalkOptions
from .fastclient import FastSnmpClient


class DispatchingClient:
    """The exporter's default client: the fast codec for v1/v2c, pysnmp for v3.

    pysnmp's engine is only built when the first v3 device is scraped.
    """

    def __init__(self) -> None:
        self.fast = FastSnmpClient()
        self._v3: SnmpClient | None = None

    async def session(self, host: str, port: int, auth: Auth, options: WalkOptions) -> SnmpSession:
        if auth.version in (1, 2):
            return await self.fast.session(host, port, auth, options)
        if self._v3 is None:
            self._v3 = PysnmpClient()
        return await self._v3.session(host, port, auth, options)

    def close(self) -> None:
        self.fast.close()
