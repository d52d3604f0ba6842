"""The benchmark's baseline: the live room written as a plain Channels app, to measure the product against.

A standalone `AsyncJsonWebsocketConsumer` with channels' default dispatch (its close_old_connections
thread hop per message), a channel of its own on the channel layer and the room's group
(`group_add` on connect, `group_discard` on disconnect). It has the product's URL, middleware and
authentication (realtime.routing.build_application), room resolution (inventory.access) and write
services (inventory.services), run through `database_sync_to_async`. Every committed domain event
(inventory.events) is rendered by the product's renderer (realtime.publisher.messages_of) and sent
with `channel_layer.group_send(group, {"type": "room.event", "message": ...})`; each socket's
`room_event` does `send_json`, so the JSON is encoded once per recipient. The product's own
publisher is unsubscribed here. Protocol v1 as far as the benchmark's clients use it: `presence`
after the join (kept in this process's memory), `user_joined`/`user_left`, `scan_added`/
`scan_removed`/`inventory_completed` with their seq, `resume` (and `?since=`), `ping`, errors.
No rate limits, revocation checks, fan-out or translations of its own.

Run it on the default channels-redis layer (REDIS_CHANNEL_LAYER=core), one process
(tools/bench/run.py, variant "baseline"). Not used by the product.
"""

import json
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "inventory_site.settings.production")
django_asgi_app = get_asgi_application()

from asgiref.sync import async_to_sync  # noqa: E402
from channels.db import database_sync_to_async  # noqa: E402
from channels.generic.websocket import AsyncJsonWebsocketConsumer  # noqa: E402
from channels.layers import get_channel_layer  # noqa: E402
from channels.routing import ProtocolTypeRouter  # noqa: E402

from inventory import access, events, services  # noqa: E402
from inventory.exceptions import InventoryCompleted, InventoryError, error_report  # noqa: E402
from realtime import commands, frames, joins, protocol, publisher, replay, routing  # noqa: E402
from realtime.groups import inventory_group_name  # noqa: E402

CLOSE_FOR_STATUS = {403: protocol.CLOSE_FORBIDDEN}
_NOT_JSON = object()
# This process's presence: inventory id -> user id -> {userId, userName, connections, since}.
_present: dict[int, dict[str, dict]] = {}


def publish(event: events.Event) -> None:
    """Send a committed event to its room's group, as a bare app does (rendered by the product)."""
    messages, close = publisher.messages_of(event)
    group = inventory_group_name(event.inventory.pk)
    layer = get_channel_layer()
    for message in messages:
        async_to_sync(layer.group_send)(group, {"type": "room.event", "message": message})
    if close:
        async_to_sync(layer.group_send)(group, {"type": "room.close"})


events.unsubscribe(publisher.publish)  # registered by realtime's AppConfig.ready
events.subscribe(publish)


@database_sync_to_async
def open_room(user, agency, month, year):
    room = access.room_resolve(user, agency=agency, month=month, year=year)
    return room, services.inventory_get_or_open(room=room)


@database_sync_to_async
def missed(inventory, since: int) -> list[dict]:
    """Every event after `since` from the log, or the room's snapshot if the log lacks some."""
    last = replay.inventory_state.func(inventory.pk).last_seq
    found = replay.events_after.func(inventory, since, until=last)
    if since <= last and [seq for seq, _ in found] == list(range(since + 1, last + 1)):
        return [message for _, message in found]
    return [replay.snapshot.func(inventory.pk)]


class BaselineConsumer(AsyncJsonWebsocketConsumer):
    room = inventory = group_name = None

    async def connect(self):
        try:
            await self.join()
        finally:
            joins.release(self.scope)  # the product's JoinGate: this socket's join is over

    async def join(self):
        self.user = self.scope.get("user")
        await self.accept()
        if self.user is None or not self.user.is_authenticated:
            return await self.refuse(
                protocol.CLOSE_UNAUTHENTICATED, "Authentication required", "unauthenticated"
            )
        kwargs = self.scope["url_route"]["kwargs"]
        try:
            room, inventory = await open_room(self.user, kwargs["agency"], kwargs["month"], kwargs["year"])
        except InventoryError as exc:
            return await self.refuse(
                CLOSE_FOR_STATUS.get(exc.status, protocol.CLOSE_NOT_FOUND), exc.message, exc.code
            )
        if not inventory.is_open:
            message = InventoryCompleted(inventory).message
            return await self.refuse(protocol.CLOSE_COMPLETED, message, "inventory_completed")
        self.room, self.inventory = room, inventory
        self.group_name = inventory_group_name(inventory.pk)
        await self.channel_layer.group_add(self.group_name, self.channel_name)
        users, user_id = _present.setdefault(inventory.pk, {}), str(self.user.pk)
        entry = users.setdefault(
            user_id,
            {
                "userId": user_id,
                "userName": protocol.display_name(self.user),
                "connections": 0,
                "since": protocol.timestamp(),
            },
        )
        entry["connections"] += 1
        if entry["connections"] == 1:
            await self.to_room(protocol.user_joined(inventory, self.user))
        await self.send_presence()
        since = replay.since_in_query(self.scope)
        if since is not None:
            for message in await missed(inventory, since):
                await self.send_json(message)

    async def disconnect(self, code):
        if self.group_name is None:
            return
        await self.channel_layer.group_discard(self.group_name, self.channel_name)
        users, user_id = _present.get(self.inventory.pk, {}), str(self.user.pk)
        entry = users.get(user_id)
        if entry is not None:
            entry["connections"] -= 1
            if entry["connections"] <= 0:
                del users[user_id]
                left = protocol.user_left(self.inventory, user_id=user_id, user_name=entry["userName"])
                await self.to_room(left)

    # Client messages.

    @classmethod
    async def decode_json(cls, text_data):
        try:
            return json.loads(text_data)
        except ValueError:
            return _NOT_JSON

    async def receive_json(self, content, **kwargs):
        if self.group_name is None:
            return
        if content is _NOT_JSON:
            return await self.error("Invalid JSON", "invalid_json")
        try:
            frame = frames.check(content)
        except frames.FrameError as exc:
            return await self.error(exc.message, exc.code, ref=exc.ref)
        data = frame.data
        try:
            if not isinstance(data, dict):
                return await self.error("data must be an object", "invalid_data", ref=frame.ref)
            await commands.check_own_room(self.room, data)
            await self.command(frame.type, data, frame.ref)
        except Exception as exc:
            report = error_report(exc)
            if report is None:
                raise
            echo = commands.scan_echo(frame.type, data)
            await self.error(report.message, report.code, ref=frame.ref, **report.details, **echo)

    async def command(self, kind: str, data: dict, ref: str | None) -> None:
        if kind == protocol.USER_JOINED:
            await self.send_presence(ref)
        elif kind == protocol.SCAN_ADDED:
            scan = commands._scan_data(data)
            result = await database_sync_to_async(services.scan_record)(
                inventory=self.inventory,
                user=self.user,
                code=scan.get("code"),
                scanned_at=scan.get("timestamp"),
                scan_id=scan.get("id"),
            )
            if not result.created:  # a retry: confirmed to its sender alone
                await self.reply(protocol.scan_added(result.scan), ref, replayed=True)
        elif kind == protocol.SCAN_REMOVED:
            scan = commands._scan_data(data)
            result = await database_sync_to_async(services.scan_remove)(
                inventory=self.inventory, user=self.user, code=scan.get("code"), scan_id=scan.get("id")
            )
            if not result.removed:
                await self.reply(
                    protocol.scan_removed(result.scan, user=result.removed_by), ref, replayed=True
                )
        elif kind == protocol.INVENTORY_COMPLETED:
            await database_sync_to_async(services.inventory_complete)(
                inventory=self.inventory, user=self.user
            )
        elif kind == protocol.PING:
            stamp = data.get("timestamp")
            await self.reply(protocol.pong(stamp if protocol.echoable(stamp) else None), ref)
        elif kind == protocol.RESUME:
            since = data.get("since")
            if isinstance(since, bool) or not isinstance(since, int) or since < 0:
                return await self.error("since must be a seq (an integer >= 0)", "invalid_data", ref=ref)
            for message in await missed(self.inventory, since):
                await self.reply(message, ref)

    # The room's group.

    async def to_room(self, message: dict) -> None:
        await self.channel_layer.group_send(self.group_name, {"type": "room.event", "message": message})

    async def room_event(self, event):
        await self.send_json(event["message"])

    async def room_close(self, event):
        await self.close(code=protocol.CLOSE_COMPLETED)

    # Replies.

    async def send_presence(self, ref: str | None = None) -> None:
        users = [dict(entry) for entry in _present.get(self.inventory.pk, {}).values()]
        await self.reply(protocol.presence(self.inventory, users), ref)

    async def reply(self, message: dict, ref: str | None = None, *, replayed: bool = False) -> None:
        if replayed:
            message["data"]["replayed"] = True
        await self.send_json({**message, "ref": ref} if ref is not None else message)

    async def error(self, message: str, code: str, *, ref: str | None = None, **details) -> None:
        await self.reply(protocol.error(message, code=code, **details), ref)

    async def refuse(self, close_code: int, message: str, code: str) -> None:
        await self.error(message, code)
        await self.close(code=close_code)


routing.websocket_urlpatterns[0].callback = BaselineConsumer.as_asgi()
application = ProtocolTypeRouter({"http": django_asgi_app, "websocket": routing.build_application()})
