"""The load test's own agencies, users and tokens: created for a run, removed after it.

This is test scaffolding, not product data, so it is written straight through the ORM in bulk
(a thousand users through the services would take longer than the run itself).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify
from rest_framework.authtoken.models import Token

from inventory.models import Agency, Inventory, Scan

from .plan import RoomPlan
from .publisher import run_code_prefix

AGENCY_PREFIX = "Loadtest"
USERNAME_PREFIX = "loadtest"


@dataclass
class LoadtestAccounts:
    run_id: str
    rooms: list[RoomPlan]
    agency_ids: list[int] = field(default_factory=list)
    user_ids: list[int] = field(default_factory=list)

    def stored_scans(self) -> dict[str, set[str]]:
        """The ids of the run's published scans the database holds, per room key: what was stored."""
        stored: dict[str, set[str]] = {}
        scans = Scan.objects.filter(
            inventory__agency_id__in=self.agency_ids, code__startswith=run_code_prefix(self.run_id)
        ).values_list("uid", "inventory__agency__name", "inventory__month", "inventory__year")
        for uid, agency, month, year in scans:
            stored.setdefault(f"{agency}/{month}/{year}", set()).add(str(uid))
        return stored

    @transaction.atomic
    def remove(self) -> None:
        """Delete the run's inventories (with their scans and events), agencies and users (with tokens)."""
        Inventory.objects.filter(agency_id__in=self.agency_ids).delete()
        Agency.objects.filter(pk__in=self.agency_ids).delete()
        get_user_model().objects.filter(pk__in=self.user_ids).delete()

    def describe(self) -> str:
        first, last = self.rooms[0].agency, self.rooms[-1].agency
        agencies = first if first == last else f"{first} .. {last}"
        return (
            f"agencies {agencies}, {len(self.user_ids)} users {USERNAME_PREFIX}-{self.run_id}-* "
            "with their tokens, and the scans counted in those agencies"
        )


@transaction.atomic
def accounts_create(*, run_id: str, rooms: int, clients: int) -> LoadtestAccounts:
    """One agency per room, this month; one member with a token per client."""
    User = get_user_model()
    now = timezone.now()
    width = max(2, len(str(rooms)))
    names = [f"{AGENCY_PREFIX} {run_id} {number:0{width}d}" for number in range(1, rooms + 1)]
    agencies = Agency.objects.bulk_create([Agency(name=name, slug=slugify(name)) for name in names])

    users = []
    for room in range(rooms):
        for client in range(clients):
            user = User(username=f"{USERNAME_PREFIX}-{run_id}-{room + 1:0{width}d}-{client + 1:03d}")
            user.first_name = "Loadtest"
            user.set_unusable_password()
            users.append(user)
    users = User.objects.bulk_create(users)
    tokens = Token.objects.bulk_create([Token(user=user, key=Token.generate_key()) for user in users])

    Membership = Agency.members.through
    Membership.objects.bulk_create(
        Membership(agency_id=agencies[position // clients].pk, user_id=user.pk)
        for position, user in enumerate(users)
    )
    plans = [
        RoomPlan(
            index=room,
            agency=agency.name,
            month=now.month,
            year=now.year,
            tokens=tuple(token.key for token in tokens[room * clients : (room + 1) * clients]),
        )
        for room, agency in enumerate(agencies)
    ]
    return LoadtestAccounts(
        run_id=run_id,
        rooms=plans,
        agency_ids=[agency.pk for agency in agencies],
        user_ids=[user.pk for user in users],
    )
