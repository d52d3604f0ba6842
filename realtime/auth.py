"""WebSocket authentication and origin checks.

Browsers authenticate with their session cookie from an allowed origin. Clients that send no
`Origin` (scripts, mobile apps, the seed's Node.js clients) must use a token: a cookie alone
does not authenticate them, so a stolen cookie cannot be replayed from a script.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from channels.auth import AuthMiddleware
from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware
from channels.security.websocket import OriginValidator
from channels.sessions import CookieMiddleware, SessionMiddleware
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.db import DatabaseError


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


@database_sync_to_async
def user_for_token(key: str):
    from rest_framework.authtoken.models import Token

    if "\x00" in key:  # no token has one, and PostgreSQL refuses it in a query
        return AnonymousUser()
    token = Token.objects.select_related("user").filter(key=key).first()
    if token is None or not token.user.is_active:
        return AnonymousUser()
    return token.user


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


class BrowserOriginValidator(OriginValidator):
    """Refuse foreign browser origins; allow clients that send no Origin at all."""

    def valid_origin(self, parsed_origin):
        if parsed_origin is None:
            return True
        return super().valid_origin(parsed_origin)


def origin_validator(application):
    allowed = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG and not allowed:
        allowed = [".localhost", "127.0.0.1", "[::1]"]
    return BrowserOriginValidator(application, allowed)
