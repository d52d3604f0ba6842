"""Domain errors: each carries a message the user can act on, a code and an HTTP status.

REST answers them with DRF's error shape; the socket answers them with protocol v1's `error`. Both
render an error through `error_report`, the one place that says what an exception tells the user.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import redis.exceptions
from django.db import DatabaseError, DataError, InterfaceError, OperationalError
from django.utils.translation import gettext as _

from .formats import timestamp


class InventoryError(Exception):
    status = 400
    code = "invalid"

    def __init__(self, message: str, *, code: str | None = None, **details: Any):
        super().__init__(message)
        self.message = str(message)
        self.details = details
        if code:
            self.code = code


class InvalidInput(InventoryError):
    status = 400
    code = "invalid"


def refused_value_message() -> str:
    """For a DataError: the database refused a value (a NUL character, a number out of range)."""
    return _("Un valor no es válido (carácter nulo o número fuera de rango).")


def database_down_message() -> str:
    """For a database that cannot be reached: nothing was written (every change is one transaction)."""
    return _("La base de datos no está disponible; no se guardó nada. Inténtalo de nuevo.")


def live_service_down_message() -> str:
    """For Redis that cannot be reached: what reads it (who is in a room, the live figures) waits."""
    return _("El servicio en vivo (Redis) no está disponible; inténtalo de nuevo en unos segundos.")


# Redis refused, reset, or did not answer in time (the pool's wait for a connection included).
REDIS_DOWN = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


class ErrorReport(NamedTuple):
    """What an error tells the client: a message, a machine-readable code, an HTTP status, details."""

    message: str
    code: str
    status: int
    details: dict[str, Any]


def error_report(exc: BaseException) -> ErrorReport | None:
    """The report of an error the client can act on; None for any other (a bug: an internal error).

    A domain error reports itself; a value the database refused is bad input (400); a database
    or a Redis that cannot be reached is a 503.
    """
    if isinstance(exc, InventoryError):
        return ErrorReport(exc.message, exc.code, exc.status, dict(exc.details))
    if isinstance(exc, DataError):
        return ErrorReport(refused_value_message(), "invalid", 400, {})
    if isinstance(exc, (OperationalError, InterfaceError)) or type(exc) is DatabaseError:
        return ErrorReport(database_down_message(), "database_unavailable", 503, {})
    if isinstance(exc, REDIS_DOWN):
        return ErrorReport(live_service_down_message(), "unavailable", 503, {})
    return None


class AgencyNotFound(InventoryError):
    status = 404
    code = "agency_not_found"

    def __init__(self, identifier: str):
        super().__init__(_("No existe la agencia «%(agency)s».") % {"agency": identifier})


class NotAMember(InventoryError):
    status = 403
    code = "forbidden"

    def __init__(self, agency):
        super().__init__(_("No perteneces a la agencia «%(agency)s».") % {"agency": agency.name})


class InventoryNotFound(InventoryError):
    status = 404
    code = "inventory_not_found"


class ScanNotFound(InventoryError):
    status = 404
    code = "scan_not_found"

    def __init__(self, code: str, *, message: str | None = None):
        super().__init__(
            message or _("El código %(code)s no está registrado en este inventario.") % {"code": code}
        )


class DuplicateScan(InventoryError):
    status = 409
    code = "duplicate_scan"

    def __init__(self, scan):
        super().__init__(
            _("El código %(code)s ya fue escaneado por %(name)s.")
            % {"code": scan.code, "name": scan.scanned_by_name},
            scannedBy=scan.scanned_by_name,
            scannedAt=timestamp(scan.scanned_at),
        )


class ScanIdConflict(InventoryError):
    status = 409
    code = "scan_id_conflict"

    def __init__(self, uid):
        super().__init__(_("El id de escaneo %(id)s ya se usó para otro código.") % {"id": uid})


class ScanRemoved(InventoryError):
    """A retried add of a scan that was stored and then removed: it is not stored again."""

    status = 409
    code = "scan_removed"

    def __init__(self, removed):
        super().__init__(
            _("El escaneo de %(code)s ya fue eliminado por %(name)s; no se vuelve a guardar.")
            % {"code": removed.code, "name": removed.removed_by_name},
            removedBy=removed.removed_by_name,
            removedAt=timestamp(removed.removed_at),
        )


class InventoryCompleted(InventoryError):
    status = 409
    code = "inventory_completed"

    def __init__(self, inventory):
        super().__init__(
            _("El inventario ya fue completado por %(name)s.") % {"name": inventory.completed_by_name},
            completedBy=inventory.completed_by_name,
        )
