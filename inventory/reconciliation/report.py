"""The variance report of one inventory, as JSON-safe data (the page, REST and downloads share it)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.db.models import Count, Min, Q

from inventory.formats import room_fields, timestamp
from inventory.models import DuplicateScanAttempt, Inventory, Scan, ScanMatch, VarianceReason

from . import access, selectors

TIMELINE_POINTS = 200
CHUNK = 2000  # rows fetched at a time when a list is read through


def report_summary(inventory: Inventory, *, user) -> dict[str, Any]:
    """The report without its lists: figures, people, times, reasons' totals, the timeline.

    Every number is counted by the database (or in one pass over the scans' times): what it costs
    does not grow with the lists, which the page shows a page at a time and the downloads stream.
    """
    agency = inventory.agency
    show_expected = access.can_see_expected(user, agency)
    figures = selectors.progress_of(inventory)
    duplicates = list(
        DuplicateScanAttempt.objects.filter(inventory=inventory)
        .values("attempted_by_id", "attempted_by_name")
        .annotate(count=Count("pk"))
        .order_by()
    )
    timeline, started, last = _timeline(inventory, figures["counted"])
    ended = inventory.completed_at or last
    by_reason = selectors.explained_by_reason(inventory)
    explained = sum(by_reason.values())
    variances = figures["missing"] + figures["unexpected"] + figures["flagged"]
    return {
        "inventory": {
            "id": inventory.pk,
            **room_fields(inventory),
            "room": inventory.room_key,
            "status": inventory.status,
            "openedAt": timestamp(inventory.created_at),
            "completedAt": timestamp(inventory.completed_at) if inventory.completed_at else None,
            "completedBy": inventory.completed_by_name or None,
        },
        "startedAt": timestamp(started) if started else None,
        "lastScanAt": timestamp(last) if last else None,
        "endedAt": timestamp(ended) if ended else None,
        "durationSeconds": int((ended - started).total_seconds()) if started and ended else None,
        "figures": {
            **figures,
            "duplicatesRefused": sum(row["count"] for row in duplicates),
            "explained": explained,
            "unexplained": max(variances - explained, 0),
        },
        "hasExpectedList": figures["expected"] > 0,
        "blindCount": agency.blind_count,
        "expectedHidden": not show_expected,
        "counters": _counters(inventory, duplicates),
        "reasons": [
            {"value": choice.value, "label": str(choice.label), "count": by_reason.get(choice.value, 0)}
            for choice in VarianceReason
        ],
        "timeline": timeline,
        "generatedAt": timestamp(),
    }


def report_of(inventory: Inventory, *, user) -> dict[str, Any]:
    """Figures, people, times, variances with their reasons, and progress over time.

    With blind counting on, a non-manager gets `missing` and `found` as None (`expectedHidden`).
    """
    report = report_summary(inventory, user=user)
    show_expected = not report["expectedHidden"]
    variances = selectors.variances_of(inventory, include_missing=show_expected)
    generated = report.pop("generatedAt")
    return {
        **report,
        "missing": variances["missing"],
        "unexpected": variances["unexpected"],
        "found": _found(inventory) if show_expected else None,
        "generatedAt": generated,
    }


def detail_items(inventory: Inventory, *, show_expected: bool) -> Iterator[dict[str, Any]]:
    """Every vehicle of the report, read from the database a chunk at a time: found, missing, then
    unexpected and flagged scans (what the downloads list)."""
    if show_expected:
        for vehicle in selectors.found_vehicles(inventory).iterator(CHUNK):
            yield {
                **selectors.expected_vehicle_data(vehicle),
                "kind": selectors.FOUND,
                **_found_by(vehicle),
            }
        for vehicle in selectors.missing_vehicles(inventory).iterator(CHUNK):
            yield selectors.missing_item(vehicle)
    for scan in selectors.variance_scans(inventory).iterator(CHUNK):
        yield selectors.variance_scan_item(scan)


def _counters(inventory: Inventory, duplicates: list[dict]) -> list[dict[str, Any]]:
    """Who counted how many: scans by match, and refused duplicates, most scans first."""
    people: dict[Any, dict[str, Any]] = {}

    def person(user_id, name):
        key = user_id if user_id is not None else f"name:{name}"
        if key not in people:
            people[key] = {
                "userId": str(user_id) if user_id is not None else None,
                "userName": name,
                "scans": 0,
                "found": 0,
                "unexpected": 0,
                "flagged": 0,
                "duplicatesRefused": 0,
            }
        return people[key]

    rows = (
        Scan.objects.filter(inventory=inventory)
        .values("scanned_by_id", "scanned_by_name")
        .annotate(
            first=Min("scanned_at"),
            scans=Count("pk"),
            found=Count("pk", filter=Q(match=ScanMatch.EXPECTED)),
            unexpected=Count("pk", filter=Q(match=ScanMatch.UNEXPECTED)),
            flagged=Count("pk", filter=Q(match=ScanMatch.FLAGGED)),
        )
        .order_by("first")  # a person is named as on their first scan
    )
    for row in rows:
        entry = person(row["scanned_by_id"], row["scanned_by_name"])
        for figure in ("scans", "found", "unexpected", "flagged"):
            entry[figure] += row[figure]
    for row in duplicates:
        person(row["attempted_by_id"], row["attempted_by_name"])["duplicatesRefused"] += row["count"]
    return sorted(people.values(), key=lambda entry: (-entry["scans"], entry["userName"].lower()))


def _found_by(vehicle) -> dict[str, Any]:
    """Who scanned a found vehicle first and when, named as a scan names them (`user`, `timestamp`)."""
    return {"user": vehicle.found_by, "timestamp": timestamp(vehicle.found_at) if vehicle.found_at else None}


def _found(inventory: Inventory) -> list[dict[str, Any]]:
    return [
        {
            **selectors.expected_vehicle_data(vehicle),
            "kind": selectors.FOUND,
            **_found_by(vehicle),
        }
        for vehicle in selectors.expected_list(inventory, state=selectors.FOUND)
    ]


def _timeline(inventory: Inventory, counted: int) -> tuple[list[dict[str, Any]], Any, Any]:
    """Vehicles counted and found over time, from the scans still counted, at most ~200 points;
    and the first and last scan's times. One pass over the scans' times, a chunk at a time."""
    scans = (
        Scan.objects.filter(inventory=inventory)
        .order_by("scanned_at", "pk")
        .values_list("scanned_at", "match", "code_key")
    )
    step = max(1, counted // TIMELINE_POINTS)
    points: list[dict[str, Any]] = []
    found_keys: set[str] = set()
    first = moment = None
    index = 0
    for index, (moment, match, key) in enumerate(scans.iterator(CHUNK), start=1):
        if first is None:
            first = moment
            points.append({"time": timestamp(moment), "counted": 0, "found": 0})
        if match == ScanMatch.EXPECTED:
            found_keys.add(key)
        if index % step == 0:
            points.append({"time": timestamp(moment), "counted": index, "found": len(found_keys)})
    if index and index % step:
        points.append({"time": timestamp(moment), "counted": index, "found": len(found_keys)})
    return points, first, moment
