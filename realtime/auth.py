"""WebSocket authentication and origin checks.

Browsers authenticate with their session cookie from an allowed origin. Clients that send no
`Origin` (scripts, mobile apps, protocol v1's Node.js clients) must use a token: a cookie alone
does not authenticate them, so a stolen cookie cannot be replayed from a script.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from channels.auth import AuthMiddleware
from channels.middleware import BaseMiddleware
from channels.security.websocket import WebsocketDenier
from channels.sessions import CookieMiddleware, SessionMiddleware
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.db import DatabaseError
from django.http.request import split_domain_port, validate_host
from django.utils.http import is_same_domain

from .db import hop


def _header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def token_from_scope(scope) -> str | None:
    """`Authorization: Token <key>` (or `Bearer <key>`), else `?token=<key>`."""
    authorization = _header(scope, b"authorization")
    if authorization:
        scheme, _, key = authorization.partition(" ")
        if scheme.lower() in {"token", "bearer"} and key.strip():
            return key.strip()
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    values = query.get("token")
    return values[0] if values else None


@hop
def user_for_token(key: str):
    """The token's active user while the token is valid (not revoked, not past API_TOKEN_TTL)."""
    from inventory.accounts.tokens import token_user

    return token_user(key) or AnonymousUser()


class TokenAuthMiddleware(BaseMiddleware):
    """Put the token's user in the scope; drop cookie identity for clients with no Origin."""

    async def __call__(self, scope, receive, send):
        key = token_from_scope(scope)
        if key:
            try:
                scope["user"] = await user_for_token(key)
            except DatabaseError:
                scope["user"], scope["database_unavailable"] = AnonymousUser(), True
        elif _header(scope, b"origin") is None:
            scope["user"] = AnonymousUser()
        return await super().__call__(scope, receive, send)


class ResilientAuthMiddleware(AuthMiddleware):
    """Channels' session authentication; an unreachable database is flagged, not a crash."""

    async def resolve_scope(self, scope):
        try:
            await super().resolve_scope(scope)
        except DatabaseError:
            scope["user"]._wrapped = AnonymousUser()
            scope["database_unavailable"] = True


def auth_stack(application):
    """Cookie session, then token authentication, around the application."""
    return CookieMiddleware(SessionMiddleware(ResilientAuthMiddleware(TokenAuthMiddleware(application))))


def _secure(scope) -> bool:
    """Django's HttpRequest.scheme for a socket: SECURE_PROXY_SSL_HEADER decides when it is present."""
    if settings.SECURE_PROXY_SSL_HEADER:
        header, secure_value = settings.SECURE_PROXY_SSL_HEADER
        value = _header(scope, header.removeprefix("HTTP_").replace("_", "-").lower().encode("latin-1"))
        if value is not None:
            return value.split(",", 1)[0].strip() == secure_value
    return scope.get("scheme") in {"wss", "https"}


def _host(scope) -> str | None:
    """Django's HttpRequest.get_host() for a socket: the Host header, if ALLOWED_HOSTS allows it."""
    host = _header(scope, b"x-forwarded-host") if settings.USE_X_FORWARDED_HOST else None
    host = host or _header(scope, b"host")
    if not host:
        return None
    allowed = settings.ALLOWED_HOSTS
    if settings.DEBUG and not allowed:
        allowed = [".localhost", "127.0.0.1", "[::1]"]
    domain, _port = split_domain_port(host)
    return host if domain and validate_host(domain, allowed) else None


def origin_allowed(scope, origin: str) -> bool:
    """Django's CSRF origin rule (CsrfViewMiddleware): scheme, host and port compared exactly.

    Allowed: the socket's own origin (its scheme and the Host it was opened on, if an allowed
    host), an origin listed in CSRF_TRUSTED_ORIGINS, or a subdomain its `*.` entries name. A
    wildcard in ALLOWED_HOSTS lets any Host in, but a page's origin must still be that Host.
    """
    host = _host(scope)
    if host is not None and origin == f"{'https' if _secure(scope) else 'http'}://{host}":
        return True
    trusted = settings.CSRF_TRUSTED_ORIGINS
    if origin in (entry for entry in trusted if "*" not in entry):
        return True
    try:
        parsed = urlsplit(origin)
    except ValueError:
        return False
    return any(
        is_same_domain(parsed.netloc, entry.split("://", 1)[1][1:])
        for entry in trusted
        if "://*." in entry and entry.split("://", 1)[0] == parsed.scheme
    )


class BrowserOriginValidator:
    """Refuse a browser socket from a foreign origin in the handshake (403); no `Origin` is not a browser."""

    def __init__(self, application):
        self.application = application

    async def __call__(self, scope, receive, send):
        origin = _header(scope, b"origin")
        if scope["type"] == "websocket" and origin is not None and not origin_allowed(scope, origin):
            denier = WebsocketDenier()
            return await denier(scope, receive, send)
        return await self.application(scope, receive, send)


def origin_validator(application):
    return BrowserOriginValidator(application)
