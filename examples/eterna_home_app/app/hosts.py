"""The Host header check, with IPv6 literals.

Starlette's ``TrustedHostMiddleware`` cuts the Host header at its first colon, so ``[fd24:e7e4:6::11]:8000`` (what
Prometheus and the deploy's readiness check send to an app on an IPv6 address) becomes ``[`` and is refused with 400.
``TrustedHosts`` keeps that middleware's behaviour (exact names, ``*.domain`` suffixes, 400 "Invalid host header")
and reads the host part of the header as RFC 3986 does: a bracketed IPv6 literal, else everything before the port.
"""

from __future__ import annotations

from fastapi.middleware.trustedhost import TrustedHostMiddleware
from starlette.datastructures import Headers
from starlette.responses import PlainTextResponse
from starlette.types import Receive, Scope, Send


def host_of(header: str) -> str:
    """The host part of a Host header value, without the port and, for an IPv6 literal, without its brackets.

    :param header: the Host header (``name``, ``name:port``, ``[v6]``, ``[v6]:port``).
    :returns: the host in lower case; ``""`` for an empty or malformed value (an unclosed bracket).
    """
    header = header.strip().lower()
    if header.startswith("["):
        end = header.find("]")
        return header[1:end] if end > 0 else ""
    return header.split(":", 1)[0]


class TrustedHosts(TrustedHostMiddleware):
    """``TrustedHostMiddleware`` whose host comparison understands bracketed IPv6 literals (see :func:`host_of`).

    Allowed IPv6 addresses are listed without brackets (``::1``, ``fd24:e7e4:6::11``); no www redirect.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.allow_any or scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        host = host_of(Headers(scope=scope).get("host", ""))
        allowed = [pattern.strip("[]").lower() for pattern in self.allowed_hosts]
        if host and any(host == p or (p.startswith("*.") and host.endswith(p[1:])) for p in allowed):
            await self.app(scope, receive, send)
            return
        await PlainTextResponse("Invalid host header", status_code=400)(scope, receive, send)
