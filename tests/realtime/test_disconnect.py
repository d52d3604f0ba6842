"""`disconnect` runs exactly once, however the socket ends: a client close, a refusal, a completion,
a flood, or the consumer's task cancelled (no websocket.disconnect at all)."""

import asyncio

import pytest
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.urls import re_path

from realtime.auth import auth_stack
from realtime.consumers import InventoryConsumer
from realtime.presence import get_presence

from .helpers import TIMEOUT, Client, room_path, token_of
from .test_membership import _alfa, open_inventory

pytestmark = [pytest.mark.django_db(transaction=True)]

calls: list[int] = []


class CountingConsumer(InventoryConsumer):
    async def disconnect(self, code):
        calls.append(code)
        await super().disconnect(code)


application = auth_stack(
    URLRouter(
        [
            re_path(
                r"^/?ws/inventory/(?P<agency>[^/]+)/(?P<month>[^/]+)/(?P<year>[^/]+)/?$",
                CountingConsumer.as_asgi(),
            )
        ]
    )
)


@pytest.fixture(autouse=True)
def _calls():
    calls.clear()
    yield


async def connect(user):
    headers = [(b"authorization", f"Token {await token_of(user)}".encode())]
    communicator = WebsocketCommunicator(application, room_path(), headers=headers)
    connected, _ = await communicator.connect(timeout=TIMEOUT)
    assert connected
    client = Client(communicator)
    assert (await client.receive())["type"] == "presence"
    return client


async def settled():
    for _ in range(20):
        await asyncio.sleep(0.05)


async def test_a_client_close_disconnects_once(ana):
    client = await connect(ana)
    await client.ws.disconnect()
    await settled()
    assert calls == [1000]


async def test_a_completion_disconnects_once(ana, luis):
    client = await connect(ana)
    await client.send("inventory_completed", {})
    assert await client.closed_with() == 1000
    await settled()
    assert len(calls) == 1


async def test_a_refusal_after_joining_disconnects_once(ana, settings):
    settings.REALTIME = {**settings.REALTIME, "RATE_LIMIT_MAX_MESSAGES": 1}
    client = await connect(ana)
    for _ in range(12):
        await client.ws.send_to(text_data="not json")
    assert await client.closed_with() == 4429
    await settled()
    assert len(calls) == 1


async def test_a_cancelled_consumer_disconnects_once_and_leaves_the_room(ana):
    client = await connect(ana)
    inventory = await open_inventory(await _alfa())
    assert [c.user_name for c in await get_presence().connections(inventory.pk)] == ["Ana García"]
    client.ws.future.cancel()  # the server drops the task: no websocket.disconnect ever comes
    await settled()
    assert calls == [1006]
    assert await get_presence().connections(inventory.pk) == []
