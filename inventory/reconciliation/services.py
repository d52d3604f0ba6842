"""Reconciliation writes: import the expected list, explain variances, keep refused duplicates.

Like inventory.services, every change is one transaction and announces itself after commit.
A `user` of None is a trusted operator (a management command); any other user must be a
manager of the agency.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO

from django.db import DatabaseError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from inventory import events, formats, locks
from inventory.exceptions import InvalidInput
from inventory.models import (
    DuplicateScanAttempt,
    ExpectedVehicle,
    Inventory,
    Scan,
    VarianceExplanation,
    VarianceReason,
)

from . import access, selectors
from .errors import ImportRejected, NotAManager, NotAVariance, RowError
from .expected_file import ParsedFile, read_expected_file
from .matching import classify, code_key

logger = logging.getLogger("inventory.reconciliation")

BATCH_SIZE = 1000
NOTE_MAX_LENGTH = 500

Progress = Callable[[str, int, int | None], None]


@dataclass(frozen=True)
class ImportResult:
    imported: int
    replaced: int
    rematched: int
    progress: dict[str, int]
    columns: dict[str, str]
    ignored: list[str]

    def as_data(self) -> dict:
        return {
            "imported": self.imported,
            "replaced": self.replaced,
            "rematched": self.rematched,
            "progress": self.progress,
            "columns": self.columns,
            "ignored": self.ignored,
        }


def _require_manager(user, inventory: Inventory) -> None:
    if user is not None and not access.is_manager(user, inventory.agency):
        raise NotAManager(inventory.agency)


def expected_import_file(
    *,
    inventory: Inventory,
    upload: IO[bytes] | bytes,
    filename: str = "",
    user=None,
    progress: Progress | None = None,
) -> ImportResult:
    """Read a CSV or XLSX file and replace the inventory's expected list with it, or refuse it whole."""
    _require_manager(user, inventory)
    on_read = (lambda done, total: progress("read", done, total)) if progress else None
    parsed = read_expected_file(upload, filename=filename, progress=on_read)
    try:
        return expected_import(inventory=inventory, parsed=parsed, user=user, progress=progress)
    finally:
        parsed.rows.close()


@transaction.atomic
def expected_import(
    *, inventory: Inventory, parsed: ParsedFile, user=None, progress: Progress | None = None
) -> ImportResult:
    """Replace the expected list with the parsed rows: all of them or, on any error, none."""
    _require_manager(user, inventory)
    if parsed.errors:
        raise ImportRejected(parsed.errors, error_count=parsed.error_count, lines=parsed.error_lines)
    if not parsed.rows:
        raise ImportRejected([RowError(None, _("El archivo no tiene vehículos."))])
    inventory = locks.lock(inventory)
    replaced, _counts = ExpectedVehicle.objects.filter(inventory=inventory).delete()
    total = len(parsed.rows)
    saved = 0
    for batch in parsed.rows.batches():  # a thousand rows at a time, read back from the spool
        ExpectedVehicle.objects.bulk_create(
            [ExpectedVehicle(inventory=inventory, **row.model_fields()) for row in batch]
        )
        saved += len(batch)
        if progress:
            progress("save", saved, total)
    rematched = scans_rematch(inventory=inventory)
    figures = progress_refresh(inventory=inventory)
    events.announce(
        inventory,
        events.PROGRESS_CHANGED,
        **events.progress_changed_facts(figures, cause="expected_imported"),
    )
    logger.info("Imported %s expected vehicles into %s (%s replaced)", total, inventory, replaced)
    return ImportResult(
        imported=total,
        replaced=replaced,
        rematched=rematched,
        progress=figures,
        columns=parsed.columns,
        ignored=parsed.ignored,
    )


@transaction.atomic
def expected_clear(*, inventory: Inventory, user=None) -> int:
    """Remove the inventory's expected list; its scans are no longer compared with anything."""
    _require_manager(user, inventory)
    inventory = locks.lock(inventory)
    removed, _counts = ExpectedVehicle.objects.filter(inventory=inventory).delete()
    scans_rematch(inventory=inventory)
    figures = progress_refresh(inventory=inventory)
    events.announce(
        inventory, events.PROGRESS_CHANGED, **events.progress_changed_facts(figures, cause="expected_cleared")
    )
    return removed


def scans_rematch(*, inventory: Inventory) -> int:
    """Match every scan of the inventory again after its expected list changed; return how many changed."""
    keys = set(ExpectedVehicle.objects.filter(inventory=inventory).values_list("code_key", flat=True))
    changed = []
    for scan in Scan.objects.filter(inventory=inventory).only("pk", "code_key", "match"):
        match = classify(scan.code_key, in_list=scan.code_key in keys, has_list=bool(keys))
        if match != scan.match:
            scan.match = match
            changed.append(scan)
    Scan.objects.bulk_update(changed, ["match"], batch_size=BATCH_SIZE)
    return len(changed)


def progress_refresh(*, inventory: Inventory) -> dict[str, int]:
    """Count the inventory's progress again from its rows and keep it on the inventory; its figures.

    For changes that touch the whole list anyway (an import re-matches every scan); a scan's add or
    removal moves the counters by one (inventory.services). Call it holding the inventory's lock.
    """
    counters = selectors.progress_recount(inventory.pk)
    Inventory.objects.filter(pk=inventory.pk).update(**counters)
    return selectors.progress_figures(counters)


def duplicate_attempt_record(*, inventory: Inventory, user, code: str, first_scanned_by_name: str) -> None:
    """Keep a refused duplicate scan for the report; never let the bookkeeping fail the refusal."""
    try:
        with transaction.atomic():
            DuplicateScanAttempt.objects.create(
                inventory_id=inventory.pk,
                code=code,
                attempted_by=user if user is not None and user.is_authenticated else None,
                attempted_by_name=formats.display_name(user),
                first_scanned_by_name=first_scanned_by_name,
            )
    except DatabaseError as exc:
        logger.warning("Could not record a refused duplicate of %s in %s: %r", code, inventory.pk, exc)


def clean_explanation(*, reason, note) -> str:
    """Check a reason and its note (the rules the admin form shows as field errors); the note."""
    note = note if isinstance(note, str) else ""
    if len(note) > NOTE_MAX_LENGTH:
        raise InvalidInput(
            _("La nota no puede tener más de %(max)s caracteres.") % {"max": NOTE_MAX_LENGTH}, field="note"
        )
    if reason in (None, ""):
        return note
    if reason not in VarianceReason.values:
        raise InvalidInput(
            _("Motivo desconocido. Motivos válidos: %(reasons)s.")
            % {"reasons": ", ".join(VarianceReason.values)},
            field="reason",
        )
    if reason == VarianceReason.OTHER and not note.strip():
        raise InvalidInput(_("Con el motivo «Otro», explica la diferencia en la nota."), field="note")
    return note


@transaction.atomic
def variance_explain(
    *, inventory: Inventory, user, code, reason, note: str = ""
) -> VarianceExplanation | None:
    """Give a missing or unexpected code a reason and a note (a manager's); no reason clears it."""
    if user is None or not access.is_manager(user, inventory.agency):
        raise NotAManager(inventory.agency)
    if not isinstance(code, str) or not code.strip():
        raise InvalidInput(_("Indica el código."), field="code")
    note = clean_explanation(reason=reason, note=note)
    key = code_key(code)
    inventory = locks.lock(inventory)
    if reason in (None, ""):
        VarianceExplanation.objects.filter(inventory=inventory, code_key=key).delete()
        return None
    if selectors.variance_kind(inventory, key) is None:
        raise NotAVariance(code.strip())
    explanation, _created = VarianceExplanation.objects.update_or_create(
        inventory=inventory,
        code_key=key,
        defaults={
            "code": code.strip(),
            "reason": reason,
            "note": note.strip(),
            "explained_by": user,
            "explained_by_name": formats.display_name(user),
            "explained_at": timezone.now(),
        },
    )
    return explanation
