"""Login lockout on every door (pages, admin, token endpoint), by django-axes over Django's cache.

django-axes counts failed logins per client address and per username in the cache (Redis when
REDIS_URL is set, so every server process sees the same counts) and refuses a locked-out
username or address, whatever the password, until LOGIN_LOCKOUT_SECONDS after its last failure.
"""

from __future__ import annotations

import logging
import math

from asgiref.sync import iscoroutinefunction, sync_to_async
from axes.handlers.cache import AxesCacheHandler
from axes.helpers import get_cool_off
from axes.middleware import AxesMiddleware
from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS
from django.http import JsonResponse
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _
from rest_framework import status
from rest_framework.exceptions import APIException
from rest_framework.throttling import BaseThrottle

logger = logging.getLogger("inventory.accounts")


def client_address(request) -> str:
    """The client's address as TRUSTED_PROXIES proxies report it (DRF's NUM_PROXIES rule).

    With no trusted proxy it is the connection's own address; with N, the N-th address from the
    right of X-Forwarded-For, the one the outermost trusted proxy saw. Whatever a client writes
    in that header itself stays to the left and is never used.
    """
    return BaseThrottle().get_ident(request)


def lockout_key_address(request) -> str:
    """django-axes' address key: prefixed, so that a username spelled like an address never shares it."""
    return f"ip:{client_address(request)}"


def lockout_seconds(request=None) -> int:
    cool_off = get_cool_off(request)
    return math.ceil(cool_off.total_seconds()) if cool_off else 0


def lockout_message(request=None) -> str:
    minutes = max(1, math.ceil(lockout_seconds(request) / 60))
    return _("Demasiados intentos fallidos de inicio de sesión. Inténtalo de nuevo en %(minutes)s min.") % {
        "minutes": minutes
    }


class LoginLockedOut(APIException):
    """429 on the token endpoint, DRF-shaped, with Retry-After: the lockout's length."""

    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    default_code = "login_locked"

    def __init__(self, request=None):
        message = lockout_message(request)
        super().__init__({"detail": message, "code": self.default_code})
        self.wait = lockout_seconds(request)


def is_locked_out(request) -> bool:
    """True when the last authenticate() on this request was refused or counted past the limit."""
    return bool(getattr(request, "axes_locked_out", False))


def lockout_response(request, original_response=None, credentials=None):
    """django-axes' AXES_LOCKOUT_CALLABLE, for a lockout its middleware did not render itself."""
    if request.path.startswith("/api/"):
        return JsonResponse(
            {"detail": lockout_message(request), "code": LoginLockedOut.default_code},
            status=429,
            headers={"Retry-After": str(lockout_seconds(request))},
        )
    return TemplateResponse(
        request, "registration/login.html", {"lockout_message": lockout_message(request)}, status=429
    )


class LoginLockoutMiddleware(AxesMiddleware):
    """django-axes' middleware; a locked-out login page is that same page with the lockout's message (429)."""

    def __call__(self, request):
        if iscoroutinefunction(self):
            return self.__acall__(request)
        return self._answer(request, self.get_response(request))

    async def __acall__(self, request):
        response = await self.get_response(request)
        if not is_locked_out(request):
            return response
        return await sync_to_async(self._answer, thread_sensitive=True)(request, response)

    def _answer(self, request, response):
        if not settings.AXES_ENABLED or not is_locked_out(request):
            return response
        context = getattr(response, "context_data", None)
        form = (context or {}).get("form")
        if form is None or not hasattr(form, "errors"):
            return lockout_response(request)
        # The login page as it was answered (the site's or the admin's), its error now the lockout.
        form.errors[NON_FIELD_ERRORS] = form.error_class([lockout_message(request)])
        page = TemplateResponse(
            request,
            response.template_name,
            {**context, "lockout_message": lockout_message(request)},
            status=429,
        )
        page["Retry-After"] = str(lockout_seconds(request))
        return page.render()


class ResilientAxesCacheHandler(AxesCacheHandler):
    """django-axes' cache handler, failing open when the cache (Redis) is down: sign-in keeps working."""

    def get_failures(self, request, credentials=None) -> int:
        try:
            return super().get_failures(request, credentials)
        except Exception as exc:
            logger.warning("Lockout cache unavailable, not locking out: %r", exc)
            return 0

    def user_login_failed(self, sender, credentials, request=None, **kwargs):
        try:
            return super().user_login_failed(sender, credentials, request, **kwargs)
        except Exception as exc:
            logger.warning("Lockout cache unavailable, failure not counted: %r", exc)
