"""The variance report page of one inventory."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import render
from django.urls import reverse
from django.utils.dateparse import parse_datetime
from django.utils.dates import MONTHS

from inventory import rooms
from inventory import selectors as inventory_selectors
from inventory.exceptions import AgencyNotFound, InvalidInput

from . import access, selectors
from .chart import progress_chart
from .report import group_by_location, report_of


@login_required
def inventory_report(request, agency, month, year):
    try:
        found = rooms.agency_find(agency)
        room = rooms.Room(agency=found, month=rooms.parse_month(month), year=rooms.parse_year(year))
    except (AgencyNotFound, InvalidInput) as exc:
        raise Http404(exc.message) from exc
    if not access.can_view(request.user, found):  # an outsider learns nothing: not even that it exists
        raise Http404(AgencyNotFound(agency).message)
    inventory = inventory_selectors.inventory_find(room)
    if inventory is None:
        raise Http404(room.key)
    report = report_of(inventory, user=request.user)
    missing = report["missing"]
    locations = sorted({item["location"] for item in missing or []})
    location = request.GET.get("location")
    if location is not None and missing is not None:
        missing = [item for item in missing if item["location"] == location]
    api_url = reverse("inventory-report-api", args=[inventory.pk])
    is_manager = access.is_manager(request.user, found)
    context = {
        "inventory": inventory,
        "month_name": MONTHS[inventory.month],
        "report": report,
        "figures": report["figures"],
        "chart": progress_chart(report["timeline"], expected=report["figures"]["expected"]),
        "missing_by_location": group_by_location(missing) if missing is not None else None,
        "locations": locations,
        "location": location,
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
