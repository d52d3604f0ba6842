"""Answer errors with DRF's error shape: `{"detail": ..., "code": ...}` and the right status."""

import logging

from django.conf import settings
from django.core.exceptions import (
    RequestDataTooBig,
    SuspiciousOperation,
    TooManyFieldsSent,
    TooManyFilesSent,
)
from django.db import DataError
from django.http import JsonResponse
from django.utils.translation import gettext as _
from django.views import defaults
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import exception_handler as drf_exception_handler

from inventory.exceptions import InvalidInput, error_report

logger = logging.getLogger("inventory.api")


def exception_handler(exc, context):
    if isinstance(exc, SuspiciousOperation):
        return _client_error_response(exc)
    if isinstance(exc, InvalidInput) and "field" in exc.details:
        return Response({exc.details["field"]: [exc.message]}, status=exc.status)
    report = error_report(exc)
    if report is None:
        return drf_exception_handler(exc, context)
    if report.code == "database_unavailable":
        logger.error("Database unavailable: %s", exc)
        return Response(
            {"detail": report.message, "code": report.code},
            status=report.status,
            headers={"Retry-After": "5"},
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


def not_found(request, exception=None):
    """handler404: under /api/ a URL that matches no endpoint gets DRF's error shape, not a page."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": _("No encontrado."), "code": "not_found"}, status=404)
    return defaults.page_not_found(request, exception)
