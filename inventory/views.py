"""Pages: the index of the user's agencies and the live-scan page of one inventory."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.dates import MONTHS
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from . import access, formats, live, periods, selectors, services
from .exceptions import AgencyNotFound, InvalidInput
from .models import Agency, Inventory
from .reconciliation import access as reconciliation_access
from .reconciliation import selectors as reconciliation_selectors


@dataclass(frozen=True)
class InventoryEntry:
    inventory: Inventory

    @property
    def month_name(self) -> str:
        return MONTHS[self.inventory.month]


@dataclass
class AgencyCard:
    """One agency on the index: this month's inventory and the earlier ones."""

    agency: Agency
    month: int
    year: int
    current: Inventory | None = None
    past: list[InventoryEntry] = field(default_factory=list)

    @property
    def month_name(self) -> str:
        return MONTHS[self.month]

    @property
    def key(self) -> str:
        """How the agency appears in page URLs: its slug, or its name when it has none."""
        return self.agency.slug or self.agency.name


@login_required
def home(request):
    today = timezone.localdate()
    by_agency: dict[int, list[Inventory]] = defaultdict(list)
    # Aggregated querysets drop Meta.ordering: order them here, newest first.
    for inventory in selectors.inventories_visible_to(request.user).order_by("-year", "-month"):
        by_agency[inventory.agency_id].append(inventory)
    cards = []
    for agency in selectors.agencies_visible_to(request.user).filter(is_active=True):
        card = AgencyCard(agency=agency, month=today.month, year=today.year)
        for inventory in by_agency[agency.pk]:
            if (inventory.month, inventory.year) == (today.month, today.year):
                card.current = inventory
            elif (inventory.year, inventory.month) < (today.year, today.month):
                card.past.append(InventoryEntry(inventory))
            # Later months (opened ahead by a REST client or a tool) are not "earlier inventories".
        cards.append(card)
    return render(request, "home.html", {"cards": cards})


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def inventory_live(request, agency, month, year):
    """The live room; a GET changes nothing, a POST opens the room's inventory (as the socket does)."""
    try:
        room = access.room_resolve(request.user, agency=agency, month=month, year=year)
    except (AgencyNotFound, InvalidInput) as exc:  # an outsider gets what an unknown agency gets
        raise Http404(exc.message) from exc
    if request.method == "POST":
        return _open_room(request, room)
    inventory = selectors.inventory_find(room)
    if inventory is None:
        if not periods.room_openable(room):
            raise Http404(
                _("No hay inventario de %(room)s, y ese mes no puede abrirse.") % {"room": room.key}
            )
        return _render_live(request, _unopened(room), scans=[], reconciliation=_unopened_state(request, room))
    # Read the sequence before the scans: an event in between is replayed by `?since=` and
    # the client applies it idempotently, so the page never misses one.
    inventory = selectors.inventory_with_count(inventory)
    scans = [_scan_state(scan) for scan in selectors.scans_of(inventory)]
    # After the scans: a scan in between is replayed with its own figures, which then win.
    return _render_live(
        request, inventory, scans=scans, reconciliation=_reconciliation_state(request, inventory)
    )


def _open_room(request, room) -> JsonResponse:
    """Open the room's inventory (within the months that can be opened) and answer the page's config."""
    try:
        inventory = services.inventory_get_or_open(room=room)
    except InvalidInput as exc:
        return JsonResponse({"detail": exc.message, "code": exc.code}, status=exc.status)
    inventory = selectors.inventory_with_count(inventory)
    return JsonResponse(
        {**_live_config(request, inventory), "reconciliation": _reconciliation_state(request, inventory)}
    )


def _render_live(request, inventory: Inventory, *, scans: list, reconciliation: dict):
    context = {
        "inventory": inventory,
        "month_name": MONTHS[inventory.month],
        "scans": scans,
        "progress": reconciliation["progress"],
        "progress_percent": _percent(reconciliation["progress"]),
        "can_see_expected": reconciliation["canSeeExpected"],
        "report_url": reconciliation["reportUrl"],
        "live_config": {**_live_config(request, inventory), "reconciliation": reconciliation},
    }
    return render(request, "inventory/live.html", context)


def _unopened(room) -> Inventory:
    """The room before anyone opened it: an empty, open inventory that is not saved."""
    inventory = Inventory(agency=room.agency, month=room.month, year=room.year)
    inventory.scan_count = 0
    return inventory


def _unopened_state(request, room) -> dict:
    """The reconciliation of a room not opened yet: nothing expected, nothing counted, no URLs."""
    agency = room.agency
    figures = ("expected", "found", "missing", "unexpected", "flagged", "counted")
    return {
        "progress": dict.fromkeys(figures, 0),
        "blindCount": agency.blind_count,
        "canSeeExpected": False,  # there is no list before the inventory exists
        "locations": None,
        "progressUrl": None,
        "exceptionsUrl": None,
        "expectedUrl": None,
        "reportUrl": reverse("inventory-report", args=[agency.slug or agency.name, room.month, room.year]),
    }


def _percent(progress: dict) -> int:
    """Found of expected in whole percent, rounded down as the live page does."""
    expected = progress.get("expected") or 0
    return min(progress.get("found", 0) * 100 // expected, 100) if expected else 0


def _scan_state(scan) -> dict:
    """The scan in the one shape REST and the room's messages share."""
    return selectors.scan_data(scan)


def _reconciliation_state(request, inventory: Inventory) -> dict:
    """What `GET /api/inventories/{id}/progress/` answers, plus the URLs the page reads it from."""
    agency = inventory.agency
    can_see = reconciliation_access.can_see_expected(request.user, agency)
    return {
        **reconciliation_selectors.progress_state(inventory, can_see_expected=can_see),
        "progressUrl": reverse("inventory-progress", args=[inventory.pk]),
        # Each scan's match after the list changes: the `progress` message does not carry them.
        "exceptionsUrl": reverse("inventory-exceptions", args=[inventory.pk]),
        # Under blind counting the page must not even ask for the list.
        "expectedUrl": reverse("inventory-expected", args=[inventory.pk]) if can_see else None,
        "reportUrl": reverse(
            "inventory-report", args=[agency.slug or agency.name, inventory.month, inventory.year]
        ),
    }


def _live_config(request, inventory: Inventory) -> dict:
    """Everything the page's script needs to join the room and resync it."""
    return {
        "agency": inventory.agency.name,
        "month": str(inventory.month),
        "year": inventory.year,
        # None until the room is opened: the page then POSTs to its own address (`openUrl`).
        "inventoryId": inventory.pk,
        "openUrl": request.path,
        "csrfCookieName": settings.CSRF_COOKIE_NAME,
        "status": inventory.status,
        "lastSeq": inventory.last_seq,
        "completedBy": inventory.completed_by_name,
        **live.transport().page_config(),  # websocketPath, heartbeatMs
        "inventoryUrl": reverse("inventory-detail", args=[inventory.pk]) if inventory.pk else None,
        "scansUrl": reverse("inventory-scans", args=[inventory.pk]) if inventory.pk else None,
        "homeUrl": reverse("home"),
        "loginUrl": reverse("login"),
        "user": {"id": str(request.user.pk), "name": formats.display_name(request.user)},
    }
