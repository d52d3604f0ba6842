"""Reconciliation errors: values the user can act on, answered like every InventoryError."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from inventory.exceptions import InventoryError

MAX_REPORTED_ERRORS = 500


@dataclass(frozen=True)
class RowError:
    """A problem in the imported file: its line (None for the file as a whole) and why."""

    line: int | None
    message: str


class ImportRejected(InventoryError):
    """The file was refused whole: nothing was imported."""

    status = 400
    code = "invalid_file"

    def __init__(self, errors: list[RowError], *, error_count: int | None = None, lines: int | None = None):
        # A reader keeps only the first problems of a file wrong throughout, and counts the rest.
        count = len({error.line for error in errors if error.line is not None}) if lines is None else lines
        message = (
            ngettext(
                "El archivo tiene %(count)d fila con errores; no se importó nada.",
                "El archivo tiene %(count)d filas con errores; no se importó nada.",
                count,
            )
            % {"count": count}
            if count
            else errors[0].message
        )
        # A file that is wrong throughout gets the first problems, and how many there are.
        shown = [asdict(error) for error in errors[:MAX_REPORTED_ERRORS]]
        super().__init__(
            message, errors=shown, errorCount=len(errors) if error_count is None else error_count
        )
        self.errors = errors


class NotAManager(InventoryError):
    status = 403
    code = "manager_required"

    def __init__(self, agency):
        super().__init__(
            _("Solo un gerente de %(agency)s puede hacer esto.") % {"agency": agency.name},
        )


class ExpectedListHidden(InventoryError):
    status = 403
    code = "blind_count"

    def __init__(self, agency):
        super().__init__(
            _("%(agency)s cuenta a ciegas: solo los gerentes ven la lista esperada.")
            % {"agency": agency.name},
        )


class NotAVariance(InventoryError):
    status = 400
    code = "not_a_variance"

    def __init__(self, code: str):
        super().__init__(
            _("El código %(code)s no es una diferencia de este inventario (ni faltante ni no esperado).")
            % {"code": code},
        )
