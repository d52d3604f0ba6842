"""Answer domain errors with DRF's error shape: `{"detail": ..., "code": ...}` and the right status."""

from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from inventory.exceptions import InvalidInput, InventoryError


def exception_handler(exc, context):
    if isinstance(exc, InvalidInput) and "field" in exc.details:
        return Response({exc.details["field"]: [exc.message]}, status=exc.status)
    if isinstance(exc, InventoryError):
        return Response({"detail": exc.message, "code": exc.code, **exc.details}, status=exc.status)
    return drf_exception_handler(exc, context)
