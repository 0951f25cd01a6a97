"""The bit of ASGI the simulators share: lifespan, reading a request, sending an answer."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


@dataclass(frozen=True)
class RawRequest:
    method: str
    path: str
    query: dict[str, list[str]]  # every value of a repeated parameter, in order
    headers: dict[str, str]  # lower-case names
    body: bytes


async def read_request(scope: Scope, receive: Receive, send: Send) -> RawRequest | None:
    """The HTTP request of ``scope``; ``None`` for lifespan and other non-HTTP scopes
    (lifespan is answered here)."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return None
    if scope["type"] != "http":
        return None
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    return RawRequest(
        method=scope["method"],
        path=scope["path"],
        query=parse_qs(scope.get("query_string", b"").decode()),
        headers={k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]},
        body=body,
    )


async def respond(send: Send, status: int, body: bytes, content_type: str, headers: dict[str, str]) -> None:
    out = [(b"content-type", content_type.encode())]
    out += [(k.encode(), v.encode()) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": out})
    await send({"type": "http.response.body", "body": body})
