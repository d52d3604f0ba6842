"""Realtime figures: each instance counts its own; `aggregate()` gathers every instance.

With Redis, each instance publishes a snapshot of its figures every few seconds and marks itself
alive until a deadline. An instance past its deadline is gone: its last snapshot is kept, marked
as gone, for METRICS_GONE_RETENTION_SECONDS, so that counters summed over instances do not fall
when one dies (Prometheus would read that as a reset). Without Redis there is one instance.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import uuid
from collections import Counter, deque
from typing import Any

from asgiref.sync import async_to_sync, sync_to_async

from . import clock, protocol
from .conf import realtime_settings
from .redis_client import get_redis, key, redis_enabled
from .stats import percentile

logger = logging.getLogger("realtime.metrics")

INSTANCE_ID = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
LATENCY_SAMPLES = 2048
ROOM_PING_SAMPLES = 256
# The figures that only go up: summed over live and gone instances alike.
COUNTER_KEYS = ("messagesSent", "messagesReceived", "errors", "deliveries", "broadcastFailures", "gapsFilled")


class InstanceMetrics:
    """The figures of this process."""

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self.started = clock.now()
        self.connections = 0
        self.connections_total = 0
        self.rejections: Counter[str] = Counter()
        self.messages_sent = 0
        self.messages_received = 0
        self.errors = 0
        self.errors_by_code: Counter[str] = Counter()
        self.deliveries = 0
        # Room events that could not be handed to the channel layer (clients resume by seq).
        self.broadcast_failures = 0
        # Sequence gaps a consumer found and filled from the event log.
        self.gaps_filled = 0
        self.latency_count = 0
        self.latency_sum = 0.0
        self.latency_max = 0.0
        self.latency_samples: deque[float] = deque(maxlen=LATENCY_SAMPLES)
        self.users: Counter[str] = Counter()
        # WebSocket ping round trips (the transport's heartbeat), per instance and per room.
        self.ping = _Samples()
        self.room_sockets: Counter[str] = Counter()
        self.room_pings: dict[str, deque[float]] = {}

    def socket_opened(self, room: str) -> None:
        self.room_sockets[room] += 1

    def socket_closed(self, room: str) -> None:
        self.room_sockets[room] -= 1
        if self.room_sockets[room] <= 0:
            del self.room_sockets[room]
            self.room_pings.pop(room, None)

    def ping_round_trip(self, room: str, seconds: float) -> None:
        ms = max(seconds, 0.0) * 1000
        self.ping.add(ms)
        self.room_pings.setdefault(room, deque(maxlen=ROOM_PING_SAMPLES)).append(ms)

    def connected(self, user_id: str) -> None:
        self.connections += 1
        self.connections_total += 1
        self.users[user_id] += 1

    def disconnected(self, user_id: str) -> None:
        self.connections -= 1
        self.users[user_id] -= 1
        if self.users[user_id] <= 0:
            del self.users[user_id]

    def rejected(self, reason: str) -> None:
        self.rejections[reason] += 1

    def error(self, code: str) -> None:
        self.errors += 1
        self.errors_by_code[code] += 1

    def delivered(self, seconds: float) -> None:
        ms = max(seconds, 0.0) * 1000
        self.deliveries += 1
        self.latency_count += 1
        self.latency_sum += ms
        self.latency_max = max(self.latency_max, ms)
        self.latency_samples.append(ms)

    def snapshot(self) -> dict[str, Any]:
        return {
            "instance": INSTANCE_ID,
            "pid": os.getpid(),
            "startedAt": protocol.timestamp_from_epoch(self.started),
            "updatedAt": protocol.timestamp(),
            "activeConnections": self.connections,
            "connectionsTotal": self.connections_total,
            "userSessions": len(self.users),
            "rejections": dict(self.rejections),
            "messagesSent": self.messages_sent,
            "messagesReceived": self.messages_received,
            "errors": self.errors,
            "errorsByCode": dict(self.errors_by_code),
            "deliveries": self.deliveries,
            "broadcastFailures": self.broadcast_failures,
            "gapsFilled": self.gaps_filled,
            "latency": {
                "count": self.latency_count,
                "sum": round(self.latency_sum, 3),
                "max": round(self.latency_max, 3),
                "samples": [round(v, 3) for v in self.latency_samples],
            },
            "pingLatency": self.ping.snapshot(),
            # Keyed by the room as the socket's path names it (`alfa-romeo/10/2025`).
            "pingLatencyByRoom": {
                room: [round(v, 3) for v in pings] for room, pings in self.room_pings.items()
            },
        }


class _Samples:
    """A count, sum and maximum since start, and the most recent samples for quantiles."""

    def __init__(self):
        self.count = 0
        self.sum = 0.0
        self.max = 0.0
        self.samples: deque[float] = deque(maxlen=LATENCY_SAMPLES)

    def add(self, value: float) -> None:
        self.count += 1
        self.sum += value
        self.max = max(self.max, value)
        self.samples.append(value)

    def snapshot(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "sum": round(self.sum, 3),
            "max": round(self.max, 3),
            "samples": [round(v, 3) for v in self.samples],
        }


local = InstanceMetrics()


def latency_summary(snapshots: list[dict[str, Any]], field: str = "latency") -> dict[str, Any]:
    parts = [snap.get(field) or _NO_SAMPLES for snap in snapshots]
    return {
        "count": sum(part["count"] for part in parts),
        "sum": round(sum(part.get("sum", 0.0) for part in parts), 3),
        **samples_summary([v for part in parts for v in part["samples"]]),
        "max": max((part["max"] for part in parts if part["count"]), default=None),
    }


def samples_summary(samples: list[float]) -> dict[str, Any]:
    """p50, p95 and p99 of recent samples (nearest rank, realtime.stats), rounded to 3 places."""
    ordered = sorted(samples)

    def rank(pct: float) -> float | None:
        value = percentile(ordered, pct, presorted=True)
        return None if value is None else round(value, 3)

    return {"p50": rank(50), "p95": rank(95), "p99": rank(99)}


_NO_SAMPLES = {"count": 0, "sum": 0.0, "max": 0.0, "samples": []}


def _instances_key() -> str:
    return key("metrics", "instances")


def _gone_key() -> str:
    return key("metrics", "gone")


def _report_ttl() -> float:
    return max(2 * realtime_settings.heartbeat_seconds, 3 * report_interval())


def report_interval() -> float:
    return min(5.0, max(realtime_settings.heartbeat_seconds, 0.5))


async def publish_snapshot() -> None:
    """Store this instance's figures in Redis for the others to aggregate."""
    client = get_redis()
    now = clock.now()
    async with client.pipeline(transaction=True) as pipe:
        pipe.hset(_instances_key(), INSTANCE_ID, json.dumps(local.snapshot()))
        pipe.zadd(key("metrics", "alive"), {INSTANCE_ID: now + _report_ttl()})
        # Back from a pause long enough to be taken for dead: live again.
        pipe.hdel(_gone_key(), INSTANCE_ID)
        pipe.zrem(key("metrics", "gone", "until"), INSTANCE_ID)
        await pipe.execute()


async def instance_snapshots() -> list[dict[str, Any]]:
    return (await _all_snapshots())[0]


async def _all_snapshots() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The live instances' snapshots, and the last ones of instances gone within the retention."""
    if not redis_enabled():
        return [local.snapshot()], []
    client = get_redis()
    now = clock.now()
    alive_key, gone_until_key = key("metrics", "alive"), key("metrics", "gone", "until")
    dead = await client.zrangebyscore(alive_key, "-inf", now)
    if dead:
        last = await client.hmget(_instances_key(), dead)
        retention = realtime_settings.METRICS_GONE_RETENTION_SECONDS
        async with client.pipeline(transaction=True) as pipe:
            for name, value in zip(dead, last, strict=True):
                if value is not None and retention > 0:
                    pipe.hset(
                        _gone_key(), name, json.dumps(json.loads(value) | {"goneAt": protocol.timestamp()})
                    )
                    pipe.zadd(gone_until_key, {name: now + retention})
            pipe.hdel(_instances_key(), *dead)
            pipe.zrem(alive_key, *dead)
            await pipe.execute()
    expired = await client.zrangebyscore(gone_until_key, "-inf", now)
    if expired:
        await client.hdel(_gone_key(), *expired)
        await client.zrem(gone_until_key, *expired)
    snapshots = {name: json.loads(value) for name, value in (await client.hgetall(_instances_key())).items()}
    if local.connections_total:  # this process serves sockets: its own figures are freshest
        snapshots[INSTANCE_ID] = local.snapshot()
    gone = {name: json.loads(value) for name, value in (await client.hgetall(_gone_key())).items()}
    for name in snapshots:
        gone.pop(name, None)
    order = lambda snap: snap["instance"]  # noqa: E731
    return sorted(snapshots.values(), key=order), sorted(gone.values(), key=order)


async def aaggregate() -> dict[str, Any]:
    """Every figure: counters summed over live and recently gone instances; rooms and users from presence."""
    from .presence import get_presence

    snapshots, gone = await _all_snapshots()
    rooms = await get_presence().rooms()
    users: set[str] = set()
    presence = get_presence()
    for room_id in rooms:
        users.update(conn.user_id for conn in await presence.connections(room_id))
    keys = await _room_keys(list(rooms))
    ping_rooms = await _canonical_rooms(sorted({room for snap in snapshots for room in _room_pings(snap)}))
    counted = snapshots + gone
    rejections: Counter[str] = Counter()
    errors_by_code: Counter[str] = Counter()
    for snap in counted:
        rejections.update(snap["rejections"])
        errors_by_code.update(snap["errorsByCode"])
    room_samples: dict[str, list[float]] = {}
    for snap in snapshots:
        for room, samples in _room_pings(snap).items():
            room_samples.setdefault(ping_rooms.get(room, room), []).extend(samples)
    return {
        "activeConnections": sum(rooms.values()),
        "activeRooms": len(rooms),
        "userSessions": len(users),
        **{name: sum(snap.get(name, 0) for snap in counted) for name in COUNTER_KEYS},
        "errorsByCode": dict(errors_by_code),
        "rejections": dict(rejections),
        "deliveryLatencyMs": _counted_latency(snapshots, gone, "latency"),
        "pingLatencyMs": _counted_latency(snapshots, gone, "pingLatency"),
        "rooms": [
            {
                "room": keys.get(room_id),
                "inventoryId": str(room_id),
                "connections": n,
                "pingLatencyMs": samples_summary(room_samples.get(keys.get(room_id), [])),
            }
            for room_id, n in sorted(rooms.items())
        ],
        "instances": [_instance_figures(snap, ping_rooms) for snap in snapshots],
        "goneInstances": [_instance_figures(snap, ping_rooms) | {"gone": True} for snap in gone],
        "timestamp": protocol.timestamp(),
    }


def _counted_latency(live: list[dict], gone: list[dict], field: str) -> dict[str, Any]:
    """Count and sum over every instance counted; quantiles of the live ones' recent samples only."""
    quantiles = samples_summary([v for snap in live for v in (snap.get(field) or _NO_SAMPLES)["samples"]])
    return latency_summary(live + gone, field) | quantiles


def _room_pings(snap: dict[str, Any]) -> dict[str, list[float]]:
    return snap.get("pingLatencyByRoom") or {}


def _instance_figures(snap: dict[str, Any], ping_rooms: dict[str, str]) -> dict[str, Any]:
    """One instance's figures for people: latency summarised, its rooms' ping round trips by room key."""
    by_room: dict[str, list[float]] = {}
    for room, samples in _room_pings(snap).items():
        by_room.setdefault(ping_rooms.get(room, room), []).extend(samples)
    return {k: v for k, v in snap.items() if k not in ("latency", "pingLatency", "pingLatencyByRoom")} | {
        "deliveryLatencyMs": latency_summary([snap]),
        "pingLatencyMs": latency_summary([snap], "pingLatency"),
        "roomPingLatencyMs": {room: samples_summary(samples) for room, samples in sorted(by_room.items())},
    }


@sync_to_async  # not database_sync_to_async: called from sync views too, it must not close their connection
def _room_keys(inventory_ids: list[int]) -> dict[int, str]:
    """Each live room's key (`Alfa Romeo/10/2025`), for people reading the figures."""
    from inventory.models import Inventory

    inventories = Inventory.objects.select_related("agency").filter(pk__in=inventory_ids)
    return {inventory.pk: inventory.room_key for inventory in inventories}


@sync_to_async
def _canonical_rooms(paths: list[str]) -> dict[str, str]:
    """Each socket path's room (`alfa-romeo/10/2025`) under its room key (`Alfa Romeo/10/2025`)."""
    from inventory.access import agency_find
    from inventory.exceptions import InventoryError
    from inventory.periods import ascii_int

    canonical = {}
    for path in paths:
        agency, month, year = path.split("/")
        try:
            name = agency_find(agency).name
        except InventoryError:
            continue
        month_number, year_number = ascii_int(month), ascii_int(year)
        if month_number is not None and year_number is not None:
            canonical[path] = f"{name}/{month_number}/{year_number}"
    return canonical


def aggregate() -> dict[str, Any]:
    return async_to_sync(aaggregate)()


_reporter: asyncio.Task | None = None


def ensure_reporter() -> None:
    """Start this process's snapshot publisher once, on the serving loop."""
    global _reporter
    if not redis_enabled() or (_reporter is not None and not _reporter.done()):
        return
    _reporter = asyncio.get_running_loop().create_task(_report_forever())


async def _report_forever() -> None:
    while True:
        try:
            await publish_snapshot()
        except Exception as exc:  # Redis down: keep serving, try again next round
            logger.warning("Could not publish metrics to Redis: %r", exc)
        await clock.sleep(report_interval())
