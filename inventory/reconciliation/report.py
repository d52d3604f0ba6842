"""The variance report of one inventory, as JSON-safe data (the page, REST and downloads share it)."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from django.db.models import Count

from inventory.models import DuplicateScanAttempt, Inventory, Scan, ScanMatch, VarianceReason
from realtime.protocol import room_fields, timestamp

from . import access, selectors

TIMELINE_POINTS = 200


def report_of(inventory: Inventory, *, user) -> dict[str, Any]:
    """Figures, people, times, variances with their reasons, and progress over time.

    With blind counting on, a non-manager gets `missing` and `found` as None (`expectedHidden`).
    """
    agency = inventory.agency
    show_expected = access.can_see_expected(user, agency)
    figures = selectors.progress_of(inventory)
    scans = list(
        Scan.objects.filter(inventory=inventory)
        .order_by("scanned_at", "pk")
        .values("code_key", "match", "scanned_at", "scanned_by_id", "scanned_by_name")
    )
    duplicates = list(
        DuplicateScanAttempt.objects.filter(inventory=inventory)
        .values("attempted_by_id", "attempted_by_name")
        .annotate(count=Count("pk"))
    )
    variances = selectors.variances_of(inventory)
    every_variance = variances["missing"] + variances["unexpected"]
    explained = [item for item in every_variance if item["reason"]]
    started = scans[0]["scanned_at"] if scans else None
    last = scans[-1]["scanned_at"] if scans else None
    ended = inventory.completed_at or last
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
            "explained": len(explained),
            "unexplained": len(every_variance) - len(explained),
        },
        "hasExpectedList": figures["expected"] > 0,
        "blindCount": agency.blind_count,
        "expectedHidden": not show_expected,
        "counters": _counters(scans, duplicates),
        "reasons": _reason_totals(every_variance),
        "missing": variances["missing"] if show_expected else None,
        "unexpected": variances["unexpected"],
        "found": _found(inventory) if show_expected else None,
        "timeline": _timeline(scans),
        "generatedAt": timestamp(),
    }


def _counters(scans: list[dict], duplicates: list[dict]) -> list[dict[str, Any]]:
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

    for scan in scans:
        entry = person(scan["scanned_by_id"], scan["scanned_by_name"])
        entry["scans"] += 1
        if scan["match"] == ScanMatch.EXPECTED:
            entry["found"] += 1
        elif scan["match"] in (ScanMatch.UNEXPECTED, ScanMatch.FLAGGED):
            entry[scan["match"]] += 1
    for row in duplicates:
        person(row["attempted_by_id"], row["attempted_by_name"])["duplicatesRefused"] += row["count"]
    return sorted(people.values(), key=lambda entry: (-entry["scans"], entry["userName"].lower()))


def _reason_totals(variances: list[dict]) -> list[dict[str, Any]]:
    counts = Counter(item["reason"] for item in variances if item["reason"])
    return [
        {"value": choice.value, "label": str(choice.label), "count": counts.get(choice.value, 0)}
        for choice in VarianceReason
    ]


def _found(inventory: Inventory) -> list[dict[str, Any]]:
    return [
        {
            **selectors.expected_vehicle_data(vehicle),
            "kind": selectors.FOUND,
            "scannedBy": vehicle.found_by,
            "scannedAt": timestamp(vehicle.found_at) if vehicle.found_at else None,
        }
        for vehicle in selectors.expected_list(inventory, state=selectors.FOUND)
    ]


def _timeline(scans: list[dict]) -> list[dict[str, Any]]:
    """Vehicles counted and found over time, from the scans still counted, at most ~200 points."""
    if not scans:
        return []
    points = [{"time": timestamp(scans[0]["scanned_at"]), "counted": 0, "found": 0}]
    found_keys: set[str] = set()
    cumulative = []
    for index, scan in enumerate(scans, start=1):
        if scan["match"] == ScanMatch.EXPECTED:
            found_keys.add(scan["code_key"])
        cumulative.append((scan["scanned_at"], index, len(found_keys)))
    step = max(1, len(cumulative) // TIMELINE_POINTS)
    chosen = cumulative[step - 1 :: step]
    if chosen[-1] is not cumulative[-1]:
        chosen.append(cumulative[-1])
    points.extend(
        {"time": timestamp(moment), "counted": counted, "found": found} for moment, counted, found in chosen
    )
    return points


def group_by_location(items: list[dict] | None) -> dict[str, list[dict]]:
    """Variances under their location (the page lists missing vehicles by location)."""
    grouped: dict[str, list[dict]] = defaultdict(list)
    for item in items or []:
        grouped[item.get("location") or ""].append(item)
    return dict(sorted(grouped.items()))
