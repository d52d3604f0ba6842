"""Who is connected to which room, across every server instance.

Each connection is an entry that expires unless its consumer refreshes it every heartbeat,
so the connections of an instance that died leave the room within two heartbeat intervals.
The Redis variant is shared by all instances; the in-memory one serves a single process.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from asgiref.sync import async_to_sync

from . import clock, protocol
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


ROOM_FULL = "room_full"
USER_LIMIT = "user_limit"


@dataclass(frozen=True)
class Admission:
    """The answer to a join: whether the connection has its place, and the entries that expired.

    `refused` says which limit refused it (`room_full`, `user_limit`); `others` counts the user's
    other live connections in the room; `returning` says the user's last connection closed within
    the grace period, so the room was never told the user left.
    """

    joined: bool
    expired: tuple[Connection, ...] = ()
    refused: str = ""
    others: int = 0
    returning: bool = False

    @property
    def first(self) -> bool:
        """The user's first connection in the room: the one to announce with `user_joined`."""
        return self.joined and not self.others and not self.returning


class MemoryPresence:
    """Presence for one process.

    Expired entries are removed only by `join` and `refresh`, which hand them back, so that the
    live consumer that finds them can tell the room who left.
    """

    def __init__(self):
        self._rooms: dict[int, dict[str, tuple[Connection, float]]] = defaultdict(dict)
        # Users whose last connection closed, by room: user id -> end of their grace period.
        self._leaving: dict[int, dict[str, float]] = defaultdict(dict)

    def _live(self, room_id: int) -> list[Connection]:
        now = clock.now()
        return [conn for conn, expiry in self._rooms.get(room_id, {}).values() if expiry > now]

    def _prune(self, room_id: int) -> tuple[Connection, ...]:
        now = clock.now()
        room = self._rooms.get(room_id, {})
        expired = tuple(room.pop(conn_id)[0] for conn_id in [c for c, (_, exp) in room.items() if exp <= now])
        if not room:
            self._rooms.pop(room_id, None)
        return expired

    async def join(self, room_id: int, conn: Connection, *, limit: int, user_limit: int = 0) -> Admission:
        expired = self._prune(room_id)
        room = self._rooms[room_id]
        others = sum(
            1
            for other, _ in room.values()
            if other.user_id == conn.user_id and other.connection_id != conn.connection_id
        )
        if conn.connection_id not in room:
            if user_limit > 0 and others >= user_limit:
                return Admission(False, expired, USER_LIMIT, others)
            if limit > 0 and len(room) >= limit:
                return Admission(False, expired, ROOM_FULL, others)
        room[conn.connection_id] = (conn, clock.now() + realtime_settings.presence_ttl_seconds)
        leaving = self._leaving.get(room_id, {}).pop(conn.user_id, None)
        return Admission(True, expired, "", others, leaving is not None and leaving > clock.now())

    async def refresh(
        self, room_id: int, conn: Connection, *, limit: int = 0, user_limit: int = 0
    ) -> Admission:
        """Keep a connection listed; one the store lost takes its place again within the limits."""
        expired = self._prune(room_id)
        room = self._rooms[room_id]
        if conn.connection_id not in room:
            admission = await self.join(room_id, conn, limit=limit, user_limit=user_limit)
            return Admission(admission.joined, expired + admission.expired, admission.refused)
        room[conn.connection_id] = (conn, clock.now() + realtime_settings.presence_ttl_seconds)
        return Admission(True, expired)

    async def leave(
        self, room_id: int, connection_id: str, *, user_id: str = "", grace_until: float = 0
    ) -> bool:
        """Remove a connection; True when it was the user's last one in the room.

        With a `grace_until` in the future, the user is marked as leaving until then: a join
        before it is a return, and `settle` after it says whether to announce the departure.
        """
        self._rooms.get(room_id, {}).pop(connection_id, None)
        live = self._live(room_id)
        if not live:
            self._rooms.pop(room_id, None)  # nobody left to tell about the expired ones
        if not user_id or any(conn.user_id == user_id for conn in live):
            return False
        if grace_until > clock.now():
            self._leaving[room_id][user_id] = grace_until
        return True

    async def settle(self, room_id: int, user_id: str, grace_until: float) -> bool:
        """After the grace period: True (once) when the user left and did not come back."""
        leaving = self._leaving.get(room_id, {})
        if leaving.get(user_id) != grace_until:
            return False
        del leaving[user_id]
        if not leaving:
            self._leaving.pop(room_id, None)
        return not any(conn.user_id == user_id for conn in self._live(room_id))

    async def connections(self, room_id: int) -> list[Connection]:
        return self._live(room_id)

    async def rooms(self) -> dict[int, int]:
        counts = {room_id: len(self._live(room_id)) for room_id in list(self._rooms)}
        for room_id in [room_id for room_id, count in counts.items() if not count]:
            del self._rooms[room_id]  # only expired entries left, and nobody live to tell
        return {room_id: count for room_id, count in counts.items() if count}

    async def clear(self) -> None:
        self._rooms.clear()
        self._leaving.clear()


# Prune expired entries (returning them), then add the connection unless the user already has
# `user_limit` connections in the room or the room is full. Atomic in Redis, so both limits hold
# across instances and each expired entry is handed to exactly one consumer. A refresh (ARGV[9])
# of a connection still listed is counted against nothing; one the store lost (Redis restarted:
# every key is gone) takes its place again as a join does, within both limits.
# Returns {status (1 joined, 0 room full, -1 user limit), the user's other connections,
# returning (1: back within the grace period)}, then the expired entries.
_JOIN = """
local now, conn, info, expiry, limit, room = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5]), ARGV[6]
local user, user_limit, refresh = ARGV[7], tonumber(ARGV[8]), ARGV[9]
local result = {0, 0, 0}
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)
for _, c in ipairs(expired) do
  local gone = redis.call('HGET', KEYS[1], c)
  if gone then table.insert(result, gone) end
  redis.call('HDEL', KEYS[1], c)
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local known = redis.call('ZSCORE', KEYS[2], conn)
if refresh == '1' and known then user = '' end
if user ~= '' then
  local others = 0
  for _, c in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
    if c ~= conn then
      local entry = redis.call('HGET', KEYS[1], c)
      if entry and cjson.decode(entry)['user_id'] == user then others = others + 1 end
    end
  end
  result[2] = others
  if not known and user_limit > 0 and others >= user_limit then
    result[1] = -1
    return result
  end
end
if limit > 0 and not known and redis.call('ZCARD', KEYS[2]) >= limit then
  return result
end
redis.call('ZADD', KEYS[2], expiry, conn)
redis.call('HSET', KEYS[1], conn, info)
redis.call('ZADD', KEYS[3], 'GT', expiry, room)
local ttl = math.ceil(tonumber(expiry) - tonumber(now)) + 1
redis.call('EXPIRE', KEYS[1], ttl)
redis.call('EXPIRE', KEYS[2], ttl)
if user ~= '' then
  local leaving = redis.call('ZSCORE', KEYS[4], user)
  if leaving then
    if tonumber(leaving) > tonumber(now) then result[3] = 1 end
    redis.call('ZREM', KEYS[4], user)
  end
end
result[1] = 1
return result
"""

# The live entries of a room (read only: expired ones are left for a join or refresh to report).
_LIVE = """
local live = redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. ARGV[1], '+inf')
if #live == 0 then return {} end
return redis.call('HMGET', KEYS[1], unpack(live))
"""

# Whether a user has a live connection in the room (KEYS[1], KEYS[2]) at ARGV[1].
_HAS_USER = """
local function has_user(user, now)
  for _, c in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. now, '+inf')) do
    local entry = redis.call('HGET', KEYS[1], c)
    if entry and cjson.decode(entry)['user_id'] == user then return true end
  end
  return false
end
"""

# Remove a connection; drop the room when no live entry is left. Returns 1 when it was the
# user's last connection (ARGV[4]), marking the user as leaving until ARGV[5] if that is later.
_LEAVE = (
    _HAS_USER
    + """
local conn, now, room, user, grace_until = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
redis.call('HDEL', KEYS[1], conn)
redis.call('ZREM', KEYS[2], conn)
local last = 0
if user ~= '' and not has_user(user, now) then
  last = 1
  if tonumber(grace_until) > tonumber(now) then
    redis.call('ZADD', KEYS[4], grace_until, user)
    redis.call('EXPIRE', KEYS[4], math.ceil(tonumber(grace_until) - tonumber(now)) + 60)
  end
end
if redis.call('ZCOUNT', KEYS[2], '(' .. now, '+inf') == 0 then
  redis.call('DEL', KEYS[1], KEYS[2])
  redis.call('ZREM', KEYS[3], room)
end
return last
"""
)

# After a grace period: 1 (once) when the user is still marked as leaving since then and has no
# live connection: the room is to be told the user left.
_SETTLE = (
    _HAS_USER
    + """
local user, grace_until, now = ARGV[1], ARGV[2], ARGV[3]
local score = redis.call('ZSCORE', KEYS[4], user)
if not score or tonumber(score) ~= tonumber(grace_until) then return 0 end
redis.call('ZREM', KEYS[4], user)
if has_user(user, now) then return 0 end
return 1
"""
)


class RedisPresence:
    """Presence shared by every instance through Redis."""

    def _keys(self, room_id: int) -> list[str]:
        return [
            key("presence", room_id),
            key("presence", room_id, "exp"),
            key("presence", "rooms"),
            key("presence", room_id, "leaving"),
        ]

    async def join(self, room_id: int, conn: Connection, *, limit: int, user_limit: int = 0) -> Admission:
        return await self._join(room_id, conn, limit=limit, user_limit=user_limit)

    async def _join(
        self, room_id: int, conn: Connection, *, limit: int, user_limit: int, refresh: bool = False
    ) -> Admission:
        now = clock.now()
        expiry = now + realtime_settings.presence_ttl_seconds
        status, others, returning, *expired = await _run(
            _JOIN,
            *self._keys(room_id),
            now,
            conn.connection_id,
            conn.encode(),
            expiry,
            limit,
            room_id,
            conn.user_id,
            user_limit,
            "1" if refresh else "0",
        )
        refused = {0: ROOM_FULL, -1: USER_LIMIT}.get(int(status), "")
        return Admission(
            int(status) == 1,
            tuple(Connection.decode(info) for info in expired),
            refused,
            int(others),
            bool(returning),
        )

    async def refresh(
        self, room_id: int, conn: Connection, *, limit: int = 0, user_limit: int = 0
    ) -> Admission:
        """Keep a connection listed; one the store lost takes its place again within the limits."""
        return await self._join(room_id, conn, limit=limit, user_limit=user_limit, refresh=True)

    async def leave(
        self, room_id: int, connection_id: str, *, user_id: str = "", grace_until: float = 0
    ) -> bool:
        last = await _run(
            _LEAVE, *self._keys(room_id), connection_id, clock.now(), room_id, user_id, grace_until
        )
        return bool(last)

    async def settle(self, room_id: int, user_id: str, grace_until: float) -> bool:
        settled = await _run(_SETTLE, *self._keys(room_id), user_id, grace_until, clock.now())
        return bool(settled)

    async def connections(self, room_id: int) -> list[Connection]:
        values = await _run(_LIVE, *self._keys(room_id)[:2], clock.now(), keys=2)
        return [Connection.decode(value) for value in values if value]

    async def rooms(self) -> dict[int, int]:
        client = get_redis()
        now = clock.now()
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


async def _run(script: str, *keys_and_args, keys: int = 4):
    """Run a script by its SHA1 (EVALSHA), loading it once per Redis server (NOSCRIPT)."""
    runner = _scripts.get(script)
    if runner is None:
        runner = _scripts[script] = get_redis().register_script(script)
    return await runner(keys=list(keys_and_args[:keys]), args=list(keys_and_args[keys:]), client=get_redis())


_scripts: dict[str, Any] = {}

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
