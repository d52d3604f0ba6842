"""Access taken away reaches the sockets already open: each revocation closes the affected ones."""

import pytest
from channels.db import database_sync_to_async
from django.test import Client as DjangoClient
from rest_framework.authtoken.models import Token

from inventory.models import Agency, Scan
from realtime import protocol
from realtime.wire import PRESENCE_CHATTER

from .helpers import connect_raw, joined, room_path

pytestmark = [pytest.mark.django_db(transaction=True)]

BROWSER = [(b"origin", b"http://localhost"), (b"host", b"localhost")]


def db(function, /, *args, **kwargs):
    return database_sync_to_async(function)(*args, **kwargs)


async def closed_by_server(client) -> tuple[dict, int]:
    """The error sent before the close (skipping chatter), and the close code."""
    while True:
        message = await client.receive()
        if message["type"] == "error":
            return message["data"], await client.closed_with()
        assert message["type"] in PRESENCE_CHATTER, message


async def still_open(client) -> bool:
    await client.send("ping", {"timestamp": "still-open"})
    return (await client.receive_type("pong"))["data"]["timestamp"] == "still-open"


async def session_socket(user, path=None):
    """A browser socket authenticated by a real session cookie; the Django test client holding it."""
    browser = DjangoClient()
    await db(browser.force_login, user)
    cookie = f"sessionid={browser.cookies['sessionid'].value}".encode()
    client, connected = await connect_raw(path or room_path(), headers=[(b"cookie", cookie), *BROWSER])
    assert connected
    assert (await client.receive())["type"] == "presence"
    return client, browser


@pytest.mark.parametrize(
    "remove",
    [
        lambda user, agency: agency.members.remove(user),
        lambda user, agency: user.agencies.remove(agency),
        lambda user, agency: agency.members.clear(),
        lambda user, agency: user.agencies.clear(),
        lambda user, agency: agency.members.set([]),
    ],
    ids=["remove", "reverse-remove", "clear", "reverse-clear", "set"],
)
async def test_removing_a_member_closes_their_sockets_in_that_agency_with_4403(luis, ana, alfa, remove):
    async with joined(luis) as luis_ws, joined(ana, room_path(agency="Peugeot Querétaro")) as ana_elsewhere:
        await db(remove, luis, alfa)
        error, close_code = await closed_by_server(luis_ws)
        assert error["code"] == "access_revoked"
        assert error["message"] == "Ya no tienes acceso a la agencia «Alfa Romeo»; la conexión se cerró."
        assert close_code == protocol.CLOSE_FORBIDDEN == 4403
        # Sockets in agencies the change did not touch stay open.
        assert await still_open(ana_elsewhere)


async def test_removal_from_one_agency_leaves_the_users_other_rooms_open(ana, peugeot):
    async with joined(ana) as in_alfa, joined(ana, room_path(agency="Peugeot Querétaro")) as in_peugeot:
        await db(peugeot.members.remove, ana)
        assert (await closed_by_server(in_peugeot))[1] == 4403
        assert await still_open(in_alfa)


async def test_deleting_the_token_closes_its_sockets_with_4401(ana):
    async with joined(ana) as token_ws:
        browser_ws, _browser = await session_socket(ana)
        await db(Token.objects.filter(user=ana).delete)
        error, close_code = await closed_by_server(token_ws)
        assert error["code"] == "unauthenticated"
        assert "token" in error["message"]
        assert close_code == 4401
        # The browser's session did not use that token.
        assert await still_open(browser_ws)
        await browser_ws.ws.disconnect()


async def test_logging_out_closes_that_sessions_sockets_with_4401(ana):
    async with joined(ana) as token_ws:
        browser_ws, browser = await session_socket(ana)
        other_ws, _other_browser = await session_socket(ana)
        response = await db(browser.post, "/accounts/logout/")
        assert response.status_code in (200, 302)
        error, close_code = await closed_by_server(browser_ws)
        assert error["message"] == "Tu sesión terminó; vuelve a iniciar sesión."
        assert close_code == 4401
        # Another session of the same user, and the token, are not that session.
        assert await still_open(other_ws)
        assert await still_open(token_ws)
        await other_ws.ws.disconnect()


async def test_changing_the_password_closes_every_socket_of_the_user_with_4401(ana, luis):
    async with joined(ana) as token_ws, joined(luis) as luis_ws:
        browser_ws, _browser = await session_socket(ana)

        def change_password():
            ana.set_password("a-new-secret-456")
            ana.save()

        await db(change_password)
        for client in (token_ws, browser_ws):
            error, close_code = await closed_by_server(client)
            assert error["message"] == "Tu contraseña cambió; vuelve a iniciar sesión."
            assert close_code == 4401
        assert await still_open(luis_ws)


async def test_deactivating_the_user_closes_their_sockets_with_4401(ana):
    async with joined(ana) as token_ws:
        browser_ws, _browser = await session_socket(ana)

        def deactivate():
            ana.is_active = False
            ana.save()

        await db(deactivate)
        for client in (token_ws, browser_ws):
            error, close_code = await closed_by_server(client)
            assert error["message"] == "Tu cuenta ya no está activa; la conexión se cerró."
            assert close_code == 4401


async def test_a_staff_user_who_loses_staff_loses_the_agencies_they_are_not_a_member_of(staff, alfa):
    async with joined(staff) as staff_ws:

        def demote():
            staff.is_staff = staff.is_superuser = False
            staff.save()

        await db(demote)
        assert (await closed_by_server(staff_ws))[1] == 4403


@pytest.mark.parametrize("through", ["user", "group"])
async def test_losing_the_permission_that_let_a_user_in_closes_the_socket_with_4403(make_user, alfa, through):
    from django.contrib.auth.models import Group, Permission

    def grant():
        user = make_user("auditor", first_name="Aída")
        permission = Permission.objects.get(codename="access_every_agency")
        if through == "user":
            user.user_permissions.add(permission)
            return user, lambda: user.user_permissions.remove(permission)
        group = Group.objects.create(name="Auditores")
        group.permissions.add(permission)
        user.groups.add(group)
        return user, lambda: group.permissions.clear()

    auditor, take_away = await db(grant)
    async with joined(auditor) as auditor_ws:  # not a member of Alfa Romeo: in by the permission
        await db(take_away)
        error, close_code = await closed_by_server(auditor_ws)
        assert error["code"] == "access_revoked" and close_code == 4403


async def test_a_save_that_changes_no_access_closes_nothing(ana):
    async with joined(ana) as client:

        def rename():
            ana.first_name = "Anita"
            ana.save()

        await db(rename)
        await db(ana.agencies.add, await db(Agency.objects.create, name="Citroën"))
        assert await still_open(client)


async def test_every_write_checks_membership_even_without_the_event(luis, alfa):
    async with joined(luis) as client:
        # A removal no signal reports (a bulk delete of the through rows): no event reaches the socket.
        await db(Agency.members.through.objects.filter(user_id=luis.pk, agency_id=alfa.pk).delete)
        assert await still_open(client)
        await client.send("scan_added", {"scanData": {"code": "AFTER-REMOVAL"}})
        error, close_code = await closed_by_server(client)
        assert error["code"] == "access_revoked"
        assert close_code == 4403
    assert not await db(Scan.objects.filter(code="AFTER-REMOVAL").exists)


def test_watching_users_for_revocations_costs_no_query(ana, luis, django_assert_num_queries):
    from django.contrib.auth import get_user_model

    with django_assert_num_queries(1):  # deferred fields stay deferred
        assert len(list(get_user_model().objects.only("username"))) == 2
