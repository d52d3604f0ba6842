"""Answer errors with DRF's error shape: `{"detail": ..., "code": ...}` and the right status."""

import logging
import sys

from django.conf import settings
from django.core.exceptions import (
    RequestDataTooBig,
    SuspiciousOperation,
    TooManyFieldsSent,
    TooManyFilesSent,
)
from django.db import DataError
from django.http import HttpResponse, JsonResponse
from django.template import loader
from django.utils.translation import gettext as _
from django.views import defaults
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import exception_handler as drf_exception_handler

from inventory.exceptions import InvalidInput, error_report

logger = logging.getLogger("inventory.api")


# Seconds a client is asked to wait before trying again when a store is down (503).
RETRY_AFTER = "5"


def exception_handler(exc, context):
    if isinstance(exc, SuspiciousOperation):
        return _client_error_response(exc)
    if isinstance(exc, InvalidInput) and "field" in exc.details:
        return Response({exc.details["field"]: [exc.message]}, status=exc.status)
    report = error_report(exc)
    if report is None:
        return drf_exception_handler(exc, context)
    if report.status == 503:
        _log_unavailable(exc)
        return Response(
            {"detail": report.message, "code": report.code},
            status=report.status,
            headers={"Retry-After": RETRY_AFTER},
        )
    if isinstance(exc, DataError):
        logger.info("Database refused a value: %s", exc)
    return Response({"detail": report.message, "code": report.code, **report.details}, status=report.status)


def _client_error_response(exc: SuspiciousOperation) -> Response:
    """A body Django refuses to read (too big, too many fields): the client's error, in DRF's shape.

    Logged as Django logs it (`django.security.<name>`), as one line: a client error has no traceback.
    """
    logging.getLogger(f"django.security.{type(exc).__name__}").warning("%s", exc)
    if isinstance(exc, RequestDataTooBig):
        return Response(
            {
                "detail": _("La solicitud es demasiado grande: el máximo es %(max)s bytes.")
                % {"max": settings.DATA_UPLOAD_MAX_MEMORY_SIZE},
                "code": "request_too_large",
            },
            status=413,
        )
    if isinstance(exc, (TooManyFieldsSent, TooManyFilesSent)):
        return Response(
            {"detail": _("La solicitud tiene demasiados campos o archivos."), "code": "too_many_fields"},
            status=400,
        )
    return Response({"detail": _("Solicitud incorrecta."), "code": "bad_request"}, status=400)


class ResilientScopedRateThrottle(ScopedRateThrottle):
    """DRF's scoped throttle, failing open when its cache (Redis) is down: writes keep working."""

    def allow_request(self, request, view):
        try:
            return super().allow_request(request, view)
        except Exception as exc:
            logger.warning("Throttle cache unavailable, not throttling: %r", exc)
            return True


def _log_unavailable(exc: BaseException) -> None:
    what = "Database" if error_report(exc).code == "database_unavailable" else "Redis"
    logger.error("%s unavailable: %r", what, exc)


def server_error(request):
    """handler500: a store that cannot be reached is a 503 that says so; anything else is Django's 500.

    For errors outside DRF's views (pages, middleware). Under /api/, or when JSON is asked for (the
    live page opening its room), DRF's error shape; otherwise a page that needs neither store.
    """
    exc = sys.exc_info()[1]
    report = error_report(exc) if exc is not None else None
    if report is None or report.status != 503:
        return defaults.server_error(request)
    _log_unavailable(exc)
    headers = {"Retry-After": RETRY_AFTER}
    if request.path.startswith("/api/") or "application/json" in request.headers.get("Accept", ""):
        return JsonResponse({"detail": report.message, "code": report.code}, status=503, headers=headers)
    # Rendered without the request: its context (the user, the session) would ask the database.
    page = loader.render_to_string("503.html", {"message": report.message})
    return HttpResponse(page, status=503, headers=headers)


def not_found(request, exception=None):
    """handler404: under /api/ a URL that matches no endpoint gets DRF's error shape, not a page."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": _("No encontrado."), "code": "not_found"}, status=404)
    return defaults.page_not_found(request, exception)
