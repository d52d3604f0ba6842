"""Who is connected to which room, across every server instance.

Each connection is an entry that expires unless its consumer refreshes it every heartbeat,
so the connections of an instance that died leave the room within two heartbeat intervals.
The Redis variant is shared by all instances; the in-memory one serves a single process.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from asgiref.sync import async_to_sync

from . import protocol
from .conf import realtime_settings
from .redis_client import get_redis, key, redis_enabled


@dataclass(frozen=True)
class Connection:
    connection_id: str
    user_id: str
    user_name: str
    since: float
    instance: str

    def encode(self) -> str:
        return json.dumps(self.__dict__)

    @classmethod
    def decode(cls, text: str) -> Connection:
        return cls(**json.loads(text))


def summarize_users(connections: list[Connection]) -> list[dict[str, Any]]:
    """One entry per user: id, name, how many connections, connected since."""
    users: dict[str, dict[str, Any]] = {}
    for conn in sorted(connections, key=lambda c: c.since):
        user = users.setdefault(
            conn.user_id,
            {"userId": conn.user_id, "userName": conn.user_name, "connections": 0, "since": conn.since},
        )
        user["connections"] += 1
    return [{**user, "since": protocol.timestamp_from_epoch(user["since"])} for user in users.values()]


class MemoryPresence:
    """Presence for one process."""

    def __init__(self):
        self._rooms: dict[int, dict[str, tuple[Connection, float]]] = defaultdict(dict)

    def _prune(self, room_id: int) -> dict[str, tuple[Connection, float]]:
        now = time.time()
        room = self._rooms.get(room_id, {})
        for conn_id in [c for c, (_, expiry) in room.items() if expiry <= now]:
            del room[conn_id]
        if not room:
            self._rooms.pop(room_id, None)
        return room

    async def join(self, room_id: int, conn: Connection, *, limit: int) -> bool:
        room = self._prune(room_id)
        if limit > 0 and conn.connection_id not in room and len(room) >= limit:
            return False
        self._rooms[room_id][conn.connection_id] = (
            conn,
            time.time() + realtime_settings.presence_ttl_seconds,
        )
        return True

    async def refresh(self, room_id: int, conn: Connection) -> None:
        await self.join(room_id, conn, limit=0)

    async def leave(self, room_id: int, connection_id: str) -> None:
        self._rooms.get(room_id, {}).pop(connection_id, None)
        self._prune(room_id)

    async def connections(self, room_id: int) -> list[Connection]:
        return [conn for conn, _ in self._prune(room_id).values()]

    async def rooms(self) -> dict[int, int]:
        for room_id in list(self._rooms):
            self._prune(room_id)
        return {room_id: len(room) for room_id, room in self._rooms.items()}

    async def clear(self) -> None:
        self._rooms.clear()


# Prune expired entries, then add the connection unless the room is full. Atomic in Redis,
# so the room limit holds across instances.
_JOIN = """
local now, conn, info, expiry, limit, room = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5]), ARGV[6]
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)
for _, c in ipairs(expired) do redis.call('HDEL', KEYS[1], c) end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if limit > 0 and not redis.call('ZSCORE', KEYS[2], conn) and redis.call('ZCARD', KEYS[2]) >= limit then
  return 0
end
redis.call('ZADD', KEYS[2], expiry, conn)
redis.call('HSET', KEYS[1], conn, info)
redis.call('ZADD', KEYS[3], 'GT', expiry, room)
local ttl = math.ceil(tonumber(expiry) - tonumber(now)) + 1
redis.call('EXPIRE', KEYS[1], ttl)
redis.call('EXPIRE', KEYS[2], ttl)
return 1
"""

# Remove the expired entries of a room and return the live ones.
_LIVE = """
local now = ARGV[1]
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)
for _, c in ipairs(expired) do redis.call('HDEL', KEYS[1], c) end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if redis.call('ZCARD', KEYS[2]) == 0 then
  redis.call('DEL', KEYS[1], KEYS[2])
  redis.call('ZREM', KEYS[3], ARGV[2])
  return {}
end
return redis.call('HVALS', KEYS[1])
"""


class RedisPresence:
    """Presence shared by every instance through Redis."""

    def _keys(self, room_id: int) -> list[str]:
        return [key("presence", room_id), key("presence", room_id, "exp"), key("presence", "rooms")]

    async def join(self, room_id: int, conn: Connection, *, limit: int) -> bool:
        now = time.time()
        expiry = now + realtime_settings.presence_ttl_seconds
        joined = await get_redis().eval(
            _JOIN, 3, *self._keys(room_id), now, conn.connection_id, conn.encode(), expiry, limit, room_id
        )
        return bool(joined)

    async def refresh(self, room_id: int, conn: Connection) -> None:
        await self.join(room_id, conn, limit=0)

    async def leave(self, room_id: int, connection_id: str) -> None:
        hash_key, exp_key, _rooms = self._keys(room_id)
        async with get_redis().pipeline(transaction=True) as pipe:
            await pipe.hdel(hash_key, connection_id).zrem(exp_key, connection_id).execute()
        await self.connections(room_id)  # drops the room when it is empty

    async def connections(self, room_id: int) -> list[Connection]:
        values = await get_redis().eval(_LIVE, 3, *self._keys(room_id), time.time(), room_id)
        return [Connection.decode(value) for value in values]

    async def rooms(self) -> dict[int, int]:
        client = get_redis()
        now = time.time()
        rooms_key = key("presence", "rooms")
        await client.zremrangebyscore(rooms_key, "-inf", now)
        counts = {}
        for room_id in await client.zrange(rooms_key, 0, -1):
            live = await self.connections(int(room_id))
            if live:
                counts[int(room_id)] = len(live)
        return counts

    async def clear(self) -> None:
        client = get_redis()
        async for name in client.scan_iter(match=key("presence", "*")):
            await client.delete(name)


_memory = MemoryPresence()
_redis = RedisPresence()


def get_presence() -> MemoryPresence | RedisPresence:
    return _redis if redis_enabled() else _memory


def room_info(room, inventory) -> dict[str, Any]:
    """The room as operators see it: key, connections, users, inventory id, status, scans."""
    from inventory.selectors import scan_count

    connections = async_to_sync(get_presence().connections)(inventory.pk) if inventory else []
    return {
        "room": room.key,
        "agency": room.agency.name,
        "month": str(room.month),
        "year": room.year,
        "connections": len(connections),
        "users": summarize_users(connections),
        "inventoryId": str(inventory.pk) if inventory else None,
        "status": inventory.status if inventory else None,
        "scanCount": scan_count(inventory) if inventory else 0,
        "lastSeq": inventory.last_seq if inventory else 0,
        "maxConnections": realtime_settings.MAX_CONNECTIONS_PER_ROOM,
        "timestamp": protocol.timestamp(),
    }
