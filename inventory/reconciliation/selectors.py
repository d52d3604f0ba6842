"""Reads: live progress, the expected list with its found/missing state, and the variances."""

from __future__ import annotations

from collections import Counter
from typing import Any

from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Subquery

from inventory.formats import timestamp
from inventory.models import (
    DuplicateScanAttempt,
    ExpectedVehicle,
    Inventory,
    Scan,
    ScanMatch,
    VarianceExplanation,
    VarianceReason,
)
from inventory.selectors import scan_data

# The kinds of variance: expected but never scanned, and scanned but not expected.
MISSING = "missing"
FOUND = "found"
VARIANCE_MATCHES = (ScanMatch.UNEXPECTED, ScanMatch.FLAGGED)


# The progress counters kept on the inventory row, by the name of their figure.
PROGRESS_FIELDS = {
    "expected": "progress_expected",
    "found": "progress_found",
    "unexpected": "progress_unexpected",
    "flagged": "progress_flagged",
    "counted": "progress_counted",
}
# What one scan of each match adds to the counters (and takes away when removed).
_MATCH_COUNTERS = {
    ScanMatch.EXPECTED: ("progress_counted", "progress_found"),
    ScanMatch.UNEXPECTED: ("progress_counted", "progress_unexpected"),
    ScanMatch.FLAGGED: ("progress_counted", "progress_flagged"),
}


def counters_of_match(match: str) -> tuple[str, ...]:
    """The counters one scan with this match counts in: always `counted`, and its match's.

    `found` counts distinct codes: the services refuse a second scan of a counted code in any case
    (inventory.services._scan_record), so one expected scan is one vehicle found.
    """
    return _MATCH_COUNTERS.get(match, ("progress_counted",))


def progress_recount(inventory_id: int, *, scans=None, expected_vehicles=None) -> dict[str, int]:
    """The counters as the rows say they are: the one definition of the figures.

    `scans` and `expected_vehicles` are the models' managers (a migration passes its historical ones).
    """
    scans = Scan.objects if scans is None else scans
    expected_vehicles = ExpectedVehicle.objects if expected_vehicles is None else expected_vehicles
    figures = scans.filter(inventory_id=inventory_id).aggregate(
        counted=Count("pk"),
        # Two scans of one VIN in different case are one vehicle found.
        found=Count("code_key", distinct=True, filter=Q(match=ScanMatch.EXPECTED)),
        unexpected=Count("pk", filter=Q(match=ScanMatch.UNEXPECTED)),
        flagged=Count("pk", filter=Q(match=ScanMatch.FLAGGED)),
    )
    figures["expected"] = expected_vehicles.filter(inventory_id=inventory_id).count()
    return {field: figures[name] for name, field in PROGRESS_FIELDS.items()}


# The room's figures, in the order every message and answer names them.
FIGURES = ("expected", "found", "missing", "unexpected", "flagged", "counted")


def progress_figures(counters: dict[str, int]) -> dict[str, int]:
    """The room's figures (expected, found, missing, unexpected, flagged, counted) from the counters."""
    expected, found = counters["progress_expected"], counters["progress_found"]
    return {
        "expected": expected,
        "found": found,
        "missing": max(expected - found, 0),
        "unexpected": counters["progress_unexpected"],
        "flagged": counters["progress_flagged"],
        "counted": counters["progress_counted"],
    }


def expected_has(inventory: Inventory, key: str) -> bool:
    return ExpectedVehicle.objects.filter(inventory=inventory, code_key=key).exists()


def progress_of(inventory: Inventory) -> dict[str, int]:
    """The room's figures, read from the inventory's counters: one row, however many scans."""
    counters = Inventory.objects.filter(pk=inventory.pk).values(*PROGRESS_FIELDS.values()).first()
    if counters is None:
        counters = dict.fromkeys(PROGRESS_FIELDS.values(), 0)
    return progress_figures(counters)


def summary_of(inventory: Inventory) -> dict[str, int]:
    """The figures `inventory_completed` carries: counted, found, missing, unexpected, flagged, expected."""
    return progress_of(inventory)


def duplicates_refused(inventory: Inventory) -> int:
    return DuplicateScanAttempt.objects.filter(inventory=inventory).count()


def _explanation(field: str):
    return Subquery(
        VarianceExplanation.objects.filter(
            inventory=OuterRef("inventory"), code_key=OuterRef("code_key")
        ).values(field)[:1]
    )


def _first_scan(field: str):
    return Subquery(
        Scan.objects.filter(inventory=OuterRef("inventory"), code_key=OuterRef("code_key"))
        .order_by("scanned_at", "pk")
        .values(field)[:1]
    )


def expected_list(
    inventory: Inventory,
    *,
    state: str | None = None,
    location: str | None = None,
    search: str | None = None,
) -> QuerySet[ExpectedVehicle]:
    """The expected list in file order, each with `found`, who found it and when, and its reason."""
    vehicles = ExpectedVehicle.objects.filter(inventory=inventory).annotate(
        found=Exists(Scan.objects.filter(inventory=OuterRef("inventory"), code_key=OuterRef("code_key"))),
        found_by=_first_scan("scanned_by_name"),
        found_at=_first_scan("scanned_at"),
        reason=_explanation("reason"),
        note=_explanation("note"),
    )
    if state == FOUND:
        vehicles = vehicles.filter(found=True)
    elif state == MISSING:
        vehicles = vehicles.filter(found=False)
    if location is not None:
        vehicles = vehicles.filter(location__iexact=location.strip())
    if search:
        term = search.strip()
        vehicles = vehicles.filter(
            Q(code__icontains=term) | Q(stock_number__icontains=term) | Q(description__icontains=term)
        )
    return vehicles.order_by("line", "pk")


def _scanned():
    return Exists(Scan.objects.filter(inventory=OuterRef("inventory"), code_key=OuterRef("code_key")))


def found_vehicles(inventory: Inventory) -> QuerySet[ExpectedVehicle]:
    """Vehicles of the list that were scanned, in file order, with who found them and when."""
    return (
        ExpectedVehicle.objects.filter(inventory=inventory)
        .filter(_scanned())
        .annotate(found_by=_first_scan("scanned_by_name"), found_at=_first_scan("scanned_at"))
        .order_by("line", "pk")
    )


def missing_vehicles(inventory: Inventory, *, location: str | None = None) -> QuerySet[ExpectedVehicle]:
    """Vehicles of the list never scanned, in file order, with their reason (`missing_item`)."""
    vehicles = ExpectedVehicle.objects.filter(inventory=inventory).exclude(_scanned())
    if location is not None:
        vehicles = vehicles.filter(location__iexact=location.strip())
    return vehicles.annotate(
        reason=_explanation("reason"),
        note=_explanation("note"),
        explained_by=_explanation("explained_by_name"),
    ).order_by("line", "pk")


def locations_of(inventory: Inventory) -> list[dict[str, Any]]:
    """Each location of the expected list with how many vehicles it holds and how many are missing."""
    found = Exists(Scan.objects.filter(inventory=OuterRef("inventory"), code_key=OuterRef("code_key")))
    rows = (
        ExpectedVehicle.objects.filter(inventory=inventory)
        .annotate(is_found=found)
        .values("location")
        .annotate(expected=Count("pk"), missing=Count("pk", filter=Q(is_found=False)))
        .order_by("location")
    )
    return [
        {"location": row["location"], "expected": row["expected"], "missing": row["missing"]} for row in rows
    ]


def progress_state(inventory: Inventory, *, can_see_expected: bool) -> dict[str, Any]:
    """The room's figures for one viewer: the progress, and the locations unless counting is blind
    for them. The live page's initial state and `GET /api/inventories/{id}/progress/` share it."""
    return {
        "progress": progress_of(inventory),
        "blindCount": inventory.agency.blind_count,
        "canSeeExpected": can_see_expected,
        "locations": locations_of(inventory) if can_see_expected else None,
    }


def explanations_of(inventory: Inventory) -> dict[str, VarianceExplanation]:
    return {item.code_key: item for item in VarianceExplanation.objects.filter(inventory=inventory)}


def variance_kind(inventory: Inventory, key: str) -> str | None:
    """Whether a code is a variance now: "missing", "unexpected", "flagged", or None."""
    scan_match = (
        Scan.objects.filter(inventory=inventory, code_key=key)
        .order_by("pk")
        .values_list("match", flat=True)
        .first()
    )
    if scan_match is not None:
        return scan_match if scan_match in VARIANCE_MATCHES else None
    if ExpectedVehicle.objects.filter(inventory=inventory, code_key=key).exists():
        return MISSING
    return None


def explanation_data(item: VarianceExplanation | None) -> dict[str, Any]:
    if item is None:
        return {"reason": None, "reasonLabel": None, "note": "", "explainedBy": None, "explainedAt": None}
    return {
        "reason": item.reason,
        "reasonLabel": str(VarianceReason(item.reason).label),
        "note": item.note,
        "explainedBy": item.explained_by_name,
        "explainedAt": timestamp(item.explained_at),
    }


def expected_vehicle_data(vehicle: ExpectedVehicle) -> dict[str, Any]:
    return {
        "code": vehicle.code,
        "stockNumber": vehicle.stock_number,
        "description": vehicle.label,
        "make": vehicle.make,
        "model": vehicle.model,
        "year": vehicle.year,
        "color": vehicle.color,
        "location": vehicle.location,
        "line": vehicle.line,
    }


def scan_variance_data(scan: Scan) -> dict[str, Any]:
    """A scan that is a variance, in the one scan shape (code, user, timestamp, id, userId, match)."""
    return scan_data(scan)


def variances_of(inventory: Inventory, *, include_missing: bool = True) -> dict[str, list[dict[str, Any]]]:
    """Every variance with its explanation: missing vehicles and unexpected or flagged scans."""
    explanations = explanations_of(inventory)
    missing = None
    if include_missing:
        missing = [
            {
                **expected_vehicle_data(vehicle),
                "kind": MISSING,
                **explanation_data(explanations.get(vehicle.code_key)),
            }
            for vehicle in expected_list(inventory, state=MISSING)
        ]
    unexpected = [
        {**scan_variance_data(scan), "kind": scan.match, **explanation_data(explanations.get(scan.code_key))}
        for scan in Scan.objects.filter(inventory=inventory, match__in=VARIANCE_MATCHES).order_by(
            "scanned_at", "pk"
        )
    ]
    return {"missing": missing, "unexpected": unexpected}


def variance_scans(inventory: Inventory) -> QuerySet[Scan]:
    """Unexpected and flagged scans in the order they were made, each with its reason and note."""
    return (
        Scan.objects.filter(inventory=inventory, match__in=VARIANCE_MATCHES)
        .annotate(
            reason=_explanation("reason"),
            note=_explanation("note"),
            explained_by=_explanation("explained_by_name"),
        )
        .order_by("scanned_at", "pk")
    )


def _annotated_explanation(item) -> dict[str, Any]:
    return {
        "reason": item.reason,
        "reasonLabel": str(VarianceReason(item.reason).label) if item.reason else None,
        "note": item.note or "",
        "explainedBy": item.explained_by,
    }


def missing_item(vehicle: ExpectedVehicle) -> dict[str, Any]:
    """A vehicle of `missing_vehicles(...)` as the report lists it (without `explainedAt`)."""
    return {**expected_vehicle_data(vehicle), "kind": MISSING, **_annotated_explanation(vehicle)}


def variance_scan_item(scan: Scan) -> dict[str, Any]:
    """A scan of `variance_scans(...)` as the report lists it (without `explainedAt`)."""
    return {**scan_variance_data(scan), "kind": scan.match, **_annotated_explanation(scan)}


def explained_by_reason(inventory: Inventory) -> Counter[str]:
    """How many variances (missing vehicles, unexpected and flagged scans) each reason explains."""
    listed = ExpectedVehicle.objects.filter(inventory=inventory, code_key=OuterRef("code_key"))
    scanned = Scan.objects.filter(inventory=inventory, code_key=OuterRef("code_key"))
    counts: Counter[str] = Counter()
    missing = (
        VarianceExplanation.objects.filter(inventory=inventory)
        .filter(Exists(listed))
        .exclude(Exists(scanned))
        .values_list("reason")
        .annotate(count=Count("pk"))
        .order_by()
    )
    scans = (
        VarianceExplanation.objects.filter(inventory=inventory)
        .annotate(count=Subquery(_variance_scans_of_key(inventory)))
        .values_list("reason", "count")
    )
    for reason, count in [*missing, *scans]:
        counts[reason] += count or 0
    return counts


def _variance_scans_of_key(inventory: Inventory):
    return (
        Scan.objects.filter(inventory=inventory, code_key=OuterRef("code_key"), match__in=VARIANCE_MATCHES)
        .order_by()
        .values("code_key")
        .annotate(count=Count("pk"))
        .values("count")
    )


def reasons() -> list[dict[str, str]]:
    return [{"value": choice.value, "label": str(choice.label)} for choice in VarianceReason]
