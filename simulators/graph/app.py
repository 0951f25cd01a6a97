"""The Graph simulator as an ASGI app: token endpoint, Graph reads, a control API.

Identity platform (per tenant GUID or domain)::

    GET  /{tenant}/v2.0/.well-known/openid-configuration
    POST /{tenant}/oauth2/v2.0/token          client_credentials, secret or client assertion

Graph (the bearer token picks the tenant, as in Graph)::

    GET /v1.0/admin/serviceAnnouncement/healthOverviews
    GET /v1.0/admin/serviceAnnouncement/issues                     paged, absolute nextLinks
    GET /v1.0/subscribedSkus
    GET /v1.0/security/secureScores?$top=1
    GET /v1.0/reports/authenticationMethods/userRegistrationDetails  paged
    GET /v1.0/deviceManagement/managedDevices                     paged, $select
    GET /v1.0/deviceManagement/managedDevices/{id}/windowsProtectionState

Control (tests and the demo)::

    POST /_sim/clock?advance=SECONDS   move the simulated clock (timeline steps apply); with
                                       --clock-speed it also runs on its own
    GET  /_sim/requests                every request so far: tenant, endpoint, status
    GET  /_sim/identity                {"simulator": "graph", "pid": N}: who answers on the port
    POST /_sim/revoke                  revoke every token issued so far (Graph answers 401)
    POST /_sim/reset                   clock back to the start, counters and log cleared
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import logging
import os
import secrets
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from mspwatch.simulators.asgi import Receive, Scope, Send, read_request, respond

from .scenario import Data, Endpoint, Scenario, Tenant

log = logging.getLogger("mspwatch.simulator.graph")


GRAPH_PATHS: dict[str, Endpoint] = {
    "/v1.0/admin/serviceAnnouncement/healthOverviews": "healthOverviews",
    "/v1.0/admin/serviceAnnouncement/issues": "issues",
    "/v1.0/subscribedSkus": "subscribedSkus",
    "/v1.0/security/secureScores": "secureScores",
    "/v1.0/reports/authenticationMethods/userRegistrationDetails": "userRegistrationDetails",
    "/v1.0/deviceManagement/managedDevices": "managedDevices",
}
PROTECTION_PREFIX = "/v1.0/deviceManagement/managedDevices/"
PROTECTION_SUFFIX = "/windowsProtectionState"
DEFAULT_PAGE_SIZE = 100
TOKEN_LIFETIME = 3599  # seconds of real time, as msal caches by real time


@dataclass
class Response:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


def graph_error(status: int, code: str, message: str) -> Response:
    return Response(
        status,
        {
            "error": {
                "code": code,
                "message": message,
                "innerError": {"request-id": "00000000-0000-4000-8000-000000000000"},
            }
        },
    )


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class GraphSimulator:
    """State: the scenario, the simulated clock, issued tokens, request counters."""

    def __init__(
        self,
        scenario: Scenario,
        trusted_certs: list[x509.Certificate] | None = None,
        clock_speed: float = 0.0,
    ) -> None:
        # The clock is fixed now (a "now" start is the real time) and relative times resolved.
        self.scenario = scenario.started()
        self.offset = 0.0  # simulated seconds added by /_sim/clock
        # 0: the clock moves only when told (tests); 1: with real time; 60: a minute a second
        self.clock_speed = clock_speed
        self._started = time.monotonic()
        self.tokens: dict[str, tuple[Tenant, float]] = {}
        self.counts: Counter[tuple[str, str]] = Counter()
        self.requests: list[dict[str, Any]] = []
        self.trusted = {
            _b64url(c.fingerprint(_sha256())): c for c in (trusted_certs or [])
        }  # x5t#S256 -> certificate

    def elapsed(self) -> float:
        """Simulated seconds since the scenario's start."""
        return self.offset + (time.monotonic() - self._started) * self.clock_speed

    # --- ASGI ---------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = await read_request(scope, receive, send)
        if request is None:
            return
        response = await self.handle(
            request.method, request.path, request.query, request.headers, request.body
        )
        payload = json.dumps(response.body).encode()
        await respond(send, response.status, payload, "application/json", response.headers)

    def base_url(self, headers: dict[str, str]) -> str:
        return "https://" + headers.get("host", "127.0.0.1")

    async def handle(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        headers: dict[str, str],
        body: bytes,
    ) -> Response:
        if path.startswith("/_sim/"):
            return self._control(method, path, query)
        if path in GRAPH_PATHS:
            if method != "GET":
                return graph_error(405, "Request_BadRequest", "Only GET is supported.")
            return await self._graph(GRAPH_PATHS[path], query, headers)
        if path.startswith(PROTECTION_PREFIX) and path.endswith(PROTECTION_SUFFIX) and method == "GET":
            device_id = path[len(PROTECTION_PREFIX) : -len(PROTECTION_SUFFIX)]
            if device_id and "/" not in device_id:
                return await self._graph("windowsProtectionState", {**query, "_id": [device_id]}, headers)
        parts = path.strip("/").split("/")
        if len(parts) == 4 and parts[1:] == ["v2.0", ".well-known", "openid-configuration"]:
            return self._discovery(parts[0], headers)
        if len(parts) == 4 and parts[1:] == ["oauth2", "v2.0", "token"] and method == "POST":
            return await self._token(parts[0], parse_qs(body.decode()), headers)
        return graph_error(404, "UnknownError", "Resource not found.")

    # --- control ------------------------------------------------------------------------

    def _control(self, method: str, path: str, query: dict[str, list[str]]) -> Response:
        if path == "/_sim/clock":
            if method == "POST":
                self.offset += float(query.get("advance", ["0"])[0])
            now = self.scenario.clock + timedelta(seconds=self.elapsed())
            return Response(200, {"offset": self.elapsed(), "now": now.isoformat()})
        if path == "/_sim/requests":
            return Response(200, self.requests)
        if path == "/_sim/identity":
            return Response(200, {"simulator": "graph", "pid": os.getpid()})
        if path == "/_sim/revoke" and method == "POST":
            self.tokens.clear()  # every issued token now answers 401
            return Response(200, {"revoked": True})
        if path == "/_sim/reset" and method == "POST":
            self.offset = 0.0
            self._started = time.monotonic()
            self.counts.clear()
            self.requests.clear()
            self.tokens.clear()
            return Response(200, {"reset": True})
        return Response(404, {"error": "unknown control path"})

    def _record(self, tenant: Tenant | None, endpoint: str, status: int) -> None:
        self.requests.append(
            {"tenant": tenant.name if tenant else None, "endpoint": endpoint, "status": status}
        )

    async def _fault(self, tenant: Tenant, endpoint: Endpoint, paging: bool) -> Response | None:
        self.counts[(tenant.tenant_id, endpoint)] += 1
        count = self.counts[(tenant.tenant_id, endpoint)]
        for fault in tenant.faults:
            if not fault.matches(endpoint, count):
                continue
            if fault.delay:
                await asyncio.sleep(fault.delay)
            if fault.expired_skiptoken and paging:
                return graph_error(
                    400,
                    "Directory_ExpiredPageToken",
                    "The specified page token value has expired and can no longer be included "
                    "in your request.",
                )
            if fault.status is not None:
                resp = graph_error(
                    fault.status,
                    "TooManyRequests" if fault.status == 429 else "ServiceUnavailable",
                    "Simulated failure.",
                )
                if fault.retry_after is not None:
                    resp.headers["retry-after"] = fault.retry_after
                return resp
        return None

    # --- identity platform --------------------------------------------------------------

    def _discovery(self, key: str, headers: dict[str, str]) -> Response:
        tenant = self.scenario.tenant(key)
        if tenant is None:
            return Response(
                400,
                {
                    "error": "invalid_tenant",
                    "error_description": f"AADSTS90002: Tenant '{key}' not found.",
                    "error_codes": [90002],
                },
            )
        base = self.base_url(headers)
        return Response(
            200,
            {
                "issuer": f"{base}/{tenant.tenant_id}/v2.0",
                "token_endpoint": f"{base}/{tenant.tenant_id}/oauth2/v2.0/token",
                "authorization_endpoint": f"{base}/{tenant.tenant_id}/oauth2/v2.0/authorize",
                "token_endpoint_auth_methods_supported": [
                    "client_secret_post",
                    "private_key_jwt",
                    "client_secret_basic",
                ],
                "response_types_supported": ["code", "id_token", "code id_token"],
                "tenant_region_scope": "EU",
            },
        )

    async def _token(self, key: str, form: dict[str, list[str]], headers: dict[str, str]) -> Response:
        tenant = self.scenario.tenant(key)
        if tenant is None:
            return self._token_error(400, "invalid_tenant", 90002, "Tenant not found.")
        fault = await self._fault(tenant, "token", paging=False)
        if fault is not None:
            self._record(tenant, "token", fault.status)
            # As the identity platform words them: 500 server_error, 503 temporarily_unavailable.
            error = "server_error" if fault.status == 500 else "temporarily_unavailable"
            answer = self._token_error(fault.status, error, 50000, "Simulated.")
            answer.headers.update(fault.headers)
            return answer

        def field_(name: str) -> str:
            return form.get(name, [""])[0]

        if field_("grant_type") != "client_credentials":
            return self._token_error(400, "unsupported_grant_type", 70003, "Unsupported grant.")
        client = next((c for c in tenant.clients if c.client_id == field_("client_id")), None)
        if client is None:
            self._record(tenant, "token", 400)
            return self._token_error(
                400,
                "unauthorized_client",
                700016,
                "Application was not found in the directory. The admin has not consented.",
            )
        ok = False
        if field_("client_secret"):
            ok = client.secret is not None and secrets.compare_digest(field_("client_secret"), client.secret)
        elif field_("client_assertion"):
            audience = f"{self.base_url(headers)}/{tenant.tenant_id}/oauth2/v2.0/token"
            ok = self._assertion_ok(field_("client_assertion"), client.client_id, audience)
        if not ok or tenant.deny == 401:
            self._record(tenant, "token", 401)
            return self._token_error(
                401, "invalid_client", 7000215, "Invalid client secret or assertion provided."
            )
        token = "simtok." + secrets.token_urlsafe(24)
        self.tokens[token] = (tenant, time.monotonic() + TOKEN_LIFETIME)
        self._record(tenant, "token", 200)
        return Response(
            200,
            {"token_type": "Bearer", "expires_in": TOKEN_LIFETIME, "access_token": token},
        )

    def _token_error(self, status: int, error: str, code: int, text: str) -> Response:
        return Response(
            status,
            {"error": error, "error_description": f"AADSTS{code}: {text}", "error_codes": [code]},
        )

    def _assertion_ok(self, assertion: str, client_id: str, audience: str) -> bool:
        """Check a private_key_jwt assertion against the trusted certificates."""
        import jwt

        try:
            header = jwt.get_unverified_header(assertion)
        except jwt.PyJWTError:
            return False
        # base64url, with or without padding (msal keeps it)
        cert = self.trusted.get(str(header.get("x5t#S256", "")).rstrip("="))
        if cert is None:
            return False
        try:
            claims = jwt.decode(
                assertion,
                cert.public_key().public_bytes(
                    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
                ),
                algorithms=["PS256", "RS256"],
                audience=audience,
                issuer=client_id,
            )
        except (jwt.PyJWTError, binascii.Error, ValueError):
            return False
        return bool(claims.get("sub") == client_id)

    # --- Graph --------------------------------------------------------------------------

    async def _graph(
        self, endpoint: Endpoint, query: dict[str, list[str]], headers: dict[str, str]
    ) -> Response:
        auth = headers.get("authorization", "")
        entry = self.tokens.get(auth.removeprefix("Bearer ").strip()) if auth.startswith("Bearer ") else None
        if entry is None or entry[1] < time.monotonic():
            self._record(None, endpoint, 401)
            return graph_error(401, "InvalidAuthenticationToken", "Access token is empty or invalid.")
        tenant = entry[0]
        skiptoken = query.get("$skiptoken", [""])[0]
        fault = await self._fault(tenant, endpoint, paging=bool(skiptoken))
        if fault is not None:
            self._record(tenant, endpoint, fault.status)
            return fault
        if tenant.deny == 401:
            self._record(tenant, endpoint, 401)
            return graph_error(401, "InvalidAuthenticationToken", "Access token validation failure.")
        if tenant.deny == 403:
            self._record(tenant, endpoint, 403)
            return graph_error(
                403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation."
            )
        data = tenant.data_at(self.elapsed())
        if endpoint == "windowsProtectionState":
            return self._protection(tenant, data, query["_id"][0], headers)
        items = self._items(endpoint, data, tenant, query)
        size = tenant.page_size.get(endpoint, DEFAULT_PAGE_SIZE)
        start = _decode_skiptoken(skiptoken) if skiptoken else 0
        if start is None:
            self._record(tenant, endpoint, 400)
            return graph_error(400, "Request_BadRequest", "Invalid skip token.")
        page = items[start : start + size]
        select = query.get("$select", [""])[0]
        if select:
            fields = set(select.split(","))
            page = [{k: v for k, v in item.items() if k in fields} for item in page]
        body: dict[str, Any] = {
            "@odata.context": f"{self.base_url(headers)}/v1.0/$metadata#{endpoint}",
            "value": page,
        }
        if start + size < len(items):
            path = next(p for p, e in GRAPH_PATHS.items() if e == endpoint)
            token = _encode_skiptoken(start + size)
            # Graph carries the other query options over into the next link.
            options = f"$select={select}&" if select else ""
            body["@odata.nextLink"] = f"{self.base_url(headers)}{path}?{options}$skiptoken={token}"
        self._record(tenant, endpoint, 200)
        return Response(200, body)

    def _items(
        self, endpoint: Endpoint, data: Data, tenant: Tenant, query: dict[str, list[str]]
    ) -> list[dict[str, Any]]:
        if endpoint == "healthOverviews":
            return list(data.health or [])
        if endpoint == "issues":
            return list(data.issues or [])
        if endpoint == "subscribedSkus":
            return list(data.skus or [])
        if endpoint == "secureScores":
            if data.secure_score is None:
                return []
            created = (self.scenario.clock + timedelta(seconds=self.elapsed())).replace(
                hour=0, minute=0, second=0, microsecond=0
            )
            score = {
                "id": f"{tenant.tenant_id}_{created:%Y-%m-%d}",
                "azureTenantId": tenant.tenant_id,
                "createdDateTime": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "enabledServices": ["HasExchange", "HasSharePoint"],
                "controlScores": [],
                **data.secure_score,
            }
            top = int(query.get("$top", ["1"])[0] or 1)
            return [score][:top]
        if endpoint == "userRegistrationDetails":
            return _users(data, tenant)
        if endpoint == "managedDevices":
            return [
                {k: v for k, v in d.items() if k != "windowsProtectionState"}
                for d in data.managed_devices or []
            ]
        return []

    def _protection(self, tenant: Tenant, data: Data, device_id: str, headers: dict[str, str]) -> Response:
        """One device's Defender state; 404 for an unknown device or one without it."""
        for device in data.managed_devices or []:
            if device.get("id") == device_id and isinstance(device.get("windowsProtectionState"), dict):
                self._record(tenant, "windowsProtectionState", 200)
                body = {
                    "@odata.context": f"{self.base_url(headers)}/v1.0/$metadata#deviceManagement/"
                    f"managedDevices('{device_id}')/windowsProtectionState/$entity",
                    "@odata.type": "#microsoft.graph.windowsProtectionState",
                    "id": device_id,
                    **device["windowsProtectionState"],
                }
                return Response(200, body)
        self._record(tenant, "windowsProtectionState", 404)
        return graph_error(404, "ResourceNotFound", "The requested resource does not exist.")


def _sha256() -> Any:
    from cryptography.hazmat.primitives import hashes

    return hashes.SHA256()


def _encode_skiptoken(offset: int) -> str:
    return _b64url(f"sim:{offset}".encode())


def _decode_skiptoken(token: str) -> int | None:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    prefix, _, number = raw.partition(":")
    return int(number) if prefix == "sim" and number.isdigit() else None


def _users(data: Data, tenant: Tenant) -> list[dict[str, Any]]:
    spec = data.users
    if spec is None:
        return []
    domain = tenant.domains[0] if tenant.domains else "example.onmicrosoft.com"
    digest = hashlib.sha256(tenant.tenant_id.encode()).hexdigest()[:8]
    out = []
    for i in range(spec.total):
        is_admin = i < spec.admins
        if is_admin:
            registered = i < spec.admins_mfa_registered
        else:
            # Registered non-admins fill the places right after the admins.
            registered = i - spec.admins < spec.mfa_registered - spec.admins_mfa_registered
        out.append(
            {
                "id": f"{digest}-{i:06d}",
                "userPrincipalName": f"user{i:05d}@{domain}",
                "userType": "member",
                "isAdmin": is_admin,
                "isMfaRegistered": registered,
                "isMfaCapable": registered,
                "methodsRegistered": ["microsoftAuthenticatorPush"] if registered else [],
            }
        )
    return out
