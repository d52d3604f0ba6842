"""The variance report page of one inventory."""

from __future__ import annotations

from itertools import groupby
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import render
from django.urls import reverse
from django.utils.dateparse import parse_datetime
from django.utils.dates import MONTHS

from inventory import selectors as inventory_selectors
from inventory.access import Room, agency_find
from inventory.exceptions import AgencyNotFound, InvalidInput
from inventory.periods import parse_month, parse_year

from . import access, selectors
from .chart import progress_chart
from .report import report_summary

# Each long list of the page (missing vehicles, unexpected scans) shows this many rows at a time:
# with 100,000 vehicles in the books, the whole list was a 46 MB page.
PAGE_SIZE = 100


@login_required
def inventory_report(request, agency, month, year):
    try:
        found = agency_find(agency)
        room = Room(agency=found, month=parse_month(month), year=parse_year(year))
    except (AgencyNotFound, InvalidInput) as exc:
        raise Http404(exc.message) from exc
    if not access.can_view(request.user, found):  # an outsider learns nothing: not even that it exists
        raise Http404(AgencyNotFound(agency).message)
    inventory = inventory_selectors.inventory_find(room)
    if inventory is None:
        raise Http404(room.key)
    report = report_summary(inventory, user=request.user)
    location = request.GET.get("location") or None
    missing = None
    locations = []
    if not report["expectedHidden"] and report["hasExpectedList"]:
        missing, locations = _missing_page(request, inventory, location)
    unexpected = Paginator(selectors.variance_scans(inventory), PAGE_SIZE).get_page(
        request.GET.get("unexpected_page")
    )
    api_url = reverse("inventory-report-api", args=[inventory.pk])
    is_manager = access.is_manager(request.user, found)
    context = {
        "inventory": inventory,
        "month_name": MONTHS[inventory.month],
        "report": report,
        "figures": report["figures"],
        "chart": progress_chart(report["timeline"], expected=report["figures"]["expected"]),
        "missing": missing,
        "missing_pages": _page_links(request, missing, "page") if missing else None,
        "locations": [place["location"] for place in locations],
        "location": location,
        "unexpected": [selectors.variance_scan_item(scan) for scan in unexpected],
        "unexpected_count": report["figures"]["unexpected"] + report["figures"]["flagged"],
        "unexpected_pages": _page_links(request, unexpected, "unexpected_page"),
        "is_manager": is_manager,
        # Managers explain variances and import the list on the page (static/js/report-page.js).
        "reasons": selectors.reasons() if is_manager else [],
        "report_config": {
            "isManager": is_manager,
            "exceptionsUrl": reverse("inventory-exceptions", args=[inventory.pk]),
            "expectedUrl": reverse("inventory-expected", args=[inventory.pk]),
            "csrfCookieName": settings.CSRF_COOKIE_NAME,
        },
        "started_at": parse_datetime(report["startedAt"]) if report["startedAt"] else None,
        "ended_at": parse_datetime(report["endedAt"]) if report["endedAt"] else None,
        "duration_minutes": round(report["durationSeconds"] / 60)
        if report["durationSeconds"] is not None
        else None,
        "downloads": {
            "csv": reverse("inventory-report-download", args=[inventory.pk, "csv"]),
            "xlsx": reverse("inventory-report-download", args=[inventory.pk, "xlsx"]),
            "json": api_url,
        },
        "live_url": reverse(
            "inventory-live", args=[found.slug or found.name, inventory.month, inventory.year]
        ),
    }
    return render(request, "inventory/report.html", context)


def _missing_page(request, inventory, location: str | None) -> tuple[dict[str, Any], list[dict]]:
    """One page of the missing vehicles, by location then file order, grouped under their location
    with its total; and every location of the list."""
    locations = selectors.locations_of(inventory)
    totals = {place["location"]: place["missing"] for place in locations}
    vehicles = selectors.missing_vehicles(inventory, location=location).order_by("location", "line", "pk")
    page = Paginator(vehicles, PAGE_SIZE).get_page(request.GET.get("page"))
    groups = [
        {
            "location": place,
            "total": totals.get(place, 0),
            "items": [selectors.missing_item(v) for v in items],
        }
        for place, items in groupby(page, key=lambda vehicle: vehicle.location)
    ]
    return {"page": page, "groups": groups}, locations


def _page_links(request, page, parameter: str) -> dict[str, Any] | None:
    """Where the previous and next pages of one list are, keeping the other list's page and filter."""
    page = page.get("page") if isinstance(page, dict) else page
    if page.paginator.num_pages <= 1:
        return None

    def link(number: int) -> str:
        query = request.GET.copy()
        query[parameter] = number
        return f"?{query.urlencode()}"

    return {
        "number": page.number,
        "count": page.paginator.num_pages,
        "previous": link(page.previous_page_number()) if page.has_previous() else None,
        "next": link(page.next_page_number()) if page.has_next() else None,
    }
