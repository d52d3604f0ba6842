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


@dataclass(frozen=True)
class Admission:
    """The answer to a join: whether the connection has its place, and the entries that expired."""

    joined: bool
    expired: tuple[Connection, ...] = ()


class MemoryPresence:
    """Presence for one process.

    Expired entries are removed only by `join` and `refresh`, which hand them back, so that the
    live consumer that finds them can tell the room who left.
    """

    def __init__(self):
        self._rooms: dict[int, dict[str, tuple[Connection, float]]] = defaultdict(dict)

    def _live(self, room_id: int) -> list[Connection]:
        now = time.time()
        return [conn for conn, expiry in self._rooms.get(room_id, {}).values() if expiry > now]

    def _prune(self, room_id: int) -> tuple[Connection, ...]:
        now = time.time()
        room = self._rooms.get(room_id, {})
        expired = tuple(room.pop(conn_id)[0] for conn_id in [c for c, (_, exp) in room.items() if exp <= now])
        if not room:
            self._rooms.pop(room_id, None)
        return expired

    async def join(self, room_id: int, conn: Connection, *, limit: int) -> Admission:
        expired = self._prune(room_id)
        room = self._rooms[room_id]
        if limit > 0 and conn.connection_id not in room and len(room) >= limit:
            return Admission(False, expired)
        room[conn.connection_id] = (conn, time.time() + realtime_settings.presence_ttl_seconds)
        return Admission(True, expired)

    async def refresh(self, room_id: int, conn: Connection) -> tuple[Connection, ...]:
        return (await self.join(room_id, conn, limit=0)).expired

    async def leave(self, room_id: int, connection_id: str) -> None:
        self._rooms.get(room_id, {}).pop(connection_id, None)
        if not self._live(room_id):
            self._rooms.pop(room_id, None)  # nobody left to tell about the expired ones

    async def connections(self, room_id: int) -> list[Connection]:
        return self._live(room_id)

    async def rooms(self) -> dict[int, int]:
        counts = {room_id: len(self._live(room_id)) for room_id in list(self._rooms)}
        for room_id in [room_id for room_id, count in counts.items() if not count]:
            del self._rooms[room_id]  # only expired entries left, and nobody live to tell
        return {room_id: count for room_id, count in counts.items() if count}

    async def clear(self) -> None:
        self._rooms.clear()


# Prune expired entries (returning them), then add the connection unless the room is full.
# Atomic in Redis, so the room limit holds across instances and each expired entry is handed
# to exactly one consumer.
_JOIN = """
local now, conn, info, expiry, limit, room = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5]), ARGV[6]
local result = {0}
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)
for _, c in ipairs(expired) do
  local gone = redis.call('HGET', KEYS[1], c)
  if gone then table.insert(result, gone) end
  redis.call('HDEL', KEYS[1], c)
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if limit > 0 and not redis.call('ZSCORE', KEYS[2], conn) and redis.call('ZCARD', KEYS[2]) >= limit then
  return result
end
redis.call('ZADD', KEYS[2], expiry, conn)
redis.call('HSET', KEYS[1], conn, info)
redis.call('ZADD', KEYS[3], 'GT', expiry, room)
local ttl = math.ceil(tonumber(expiry) - tonumber(now)) + 1
redis.call('EXPIRE', KEYS[1], ttl)
redis.call('EXPIRE', KEYS[2], ttl)
result[1] = 1
return result
"""

# The live entries of a room (read only: expired ones are left for a join or refresh to report).
_LIVE = """
local live = redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. ARGV[1], '+inf')
if #live == 0 then return {} end
return redis.call('HMGET', KEYS[1], unpack(live))
"""

# Remove a connection; drop the room when no live entry is left.
_LEAVE = """
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
if redis.call('ZCOUNT', KEYS[2], '(' .. ARGV[2], '+inf') == 0 then
  redis.call('DEL', KEYS[1], KEYS[2])
  redis.call('ZREM', KEYS[3], ARGV[3])
end
return 1
"""


class RedisPresence:
    """Presence shared by every instance through Redis."""

    def _keys(self, room_id: int) -> list[str]:
        return [key("presence", room_id), key("presence", room_id, "exp"), key("presence", "rooms")]

    async def join(self, room_id: int, conn: Connection, *, limit: int) -> Admission:
        now = time.time()
        expiry = now + realtime_settings.presence_ttl_seconds
        joined, *expired = await get_redis().eval(
            _JOIN, 3, *self._keys(room_id), now, conn.connection_id, conn.encode(), expiry, limit, room_id
        )
        return Admission(bool(joined), tuple(Connection.decode(info) for info in expired))

    async def refresh(self, room_id: int, conn: Connection) -> tuple[Connection, ...]:
        return (await self.join(room_id, conn, limit=0)).expired

    async def leave(self, room_id: int, connection_id: str) -> None:
        await get_redis().eval(_LEAVE, 3, *self._keys(room_id), connection_id, time.time(), room_id)

    async def connections(self, room_id: int) -> list[Connection]:
        values = await get_redis().eval(_LIVE, 3, *self._keys(room_id), time.time())
        return [Connection.decode(value) for value in values if value]

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
