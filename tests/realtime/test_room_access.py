"""Who may open which room on the socket, and how a room is named (issue 11, items 10, 16 and 17)."""

import pytest
from channels.db import database_sync_to_async
from django.utils import timezone

from inventory.models import Agency, Inventory, Scan
from realtime import protocol

from .helpers import connect_raw, joined, room_path, token_of

pytestmark = [pytest.mark.django_db(transaction=True)]


async def refusal(user, path) -> tuple[dict, int]:
    client, connected = await connect_raw(path, token=await token_of(user))
    assert connected
    error = await client.receive()
    assert error["type"] == "error"
    return error["data"], await client.closed_with()


@database_sync_to_async
def inventories() -> list[str]:
    return [inventory.room_key for inventory in Inventory.objects.select_related("agency")]


async def test_a_room_of_another_agency_is_refused_as_an_unknown_agency_is(luis, peugeot):
    theirs = await refusal(luis, room_path(agency="Peugeot Querétaro"))
    unknown = await refusal(luis, room_path(agency="Ferrari"))
    assert theirs[1] == unknown[1] == protocol.CLOSE_NOT_FOUND
    assert theirs[0]["code"] == unknown[0]["code"] == "agency_not_found"
    assert theirs[0]["message"] == "No existe la agencia «Peugeot Querétaro»."
    assert "perteneces" not in theirs[0]["message"]
    assert await inventories() == []


async def test_staff_without_permission_only_enter_their_own_agencies(make_user, alfa, peugeot):
    clerk = await database_sync_to_async(make_user)("clerk", agencies=[alfa])
    await database_sync_to_async(type(clerk).objects.filter(pk=clerk.pk).update)(is_staff=True)
    data, code = await refusal(clerk, room_path(agency="Peugeot Querétaro"))
    assert (data["code"], code) == ("agency_not_found", protocol.CLOSE_NOT_FOUND)
    async with joined(clerk) as client:
        await client.send("ping", {})
        await client.receive_type("pong")


@pytest.mark.parametrize("typed", ["Peugeot Queretaro", "peugeot-queretaro", "PEUGEOT QUERÉTARO"])
async def test_a_message_may_name_its_room_in_any_spelling_that_opened_it(ana, peugeot, typed):
    path = room_path(agency=typed)
    async with joined(ana, path) as client:
        await client.send(
            "scan_added", {"agency": typed, "month": "10", "year": 2025, "scanData": {"code": "P-1"}}
        )
        message = await client.receive_type("scan_added")
        assert message["data"]["agency"] == "Peugeot Querétaro"
    assert await database_sync_to_async(Scan.objects.filter(inventory__agency=peugeot).count)() == 1


async def test_a_spelling_that_resolves_to_another_agency_is_the_wrong_room(ana, alfa, peugeot):
    # "Peugeot  Queretaro!" slugifies to Peugeot Querétaro's slug, but it is another agency's name.
    other = await database_sync_to_async(Agency.objects.create)(name="Peugeot  Queretaro!")
    await database_sync_to_async(other.members.add)(ana)
    async with joined(ana, room_path(agency="Peugeot Querétaro")) as client:
        await client.send("scan_added", {"agency": "Peugeot  Queretaro!", "scanData": {"code": "P-1"}})
        assert (await client.receive_type("error"))["data"]["code"] == "wrong_room"
    assert await database_sync_to_async(Scan.objects.count)() == 0


def month_from_now(months: int) -> tuple[str, str]:
    today = timezone.localdate()
    index = today.year * 12 + today.month - 1 + months
    return str(index % 12 + 1), str(index // 12)


@pytest.mark.parametrize("months", [2, 12 * 70, -25])
async def test_a_socket_opens_no_month_outside_the_window(ana, months):
    month, year = month_from_now(months)
    data, code = await refusal(ana, room_path(month=month, year=year))
    assert code == protocol.CLOSE_NOT_FOUND
    assert "solo se abren los meses de" in data["message"]
    assert await inventories() == []


async def test_a_socket_joins_an_old_inventory_that_exists(ana, alfa):
    await database_sync_to_async(Inventory.objects.create)(agency=alfa, month=1, year=2020)
    async with joined(ana, room_path(month="1", year="2020")) as client:
        await client.send("ping", {})
        await client.receive_type("pong")
