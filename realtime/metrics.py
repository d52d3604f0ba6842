"""Realtime figures: each instance counts its own; `aggregate()` sums every live instance.

With Redis, each instance publishes a snapshot of its figures every few seconds under a key
that expires, so a dead instance drops out; without Redis there is one instance.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import time
import uuid
from collections import Counter, deque
from typing import Any

from asgiref.sync import async_to_sync, sync_to_async

from . import protocol
from .conf import realtime_settings
from .redis_client import get_redis, key, redis_enabled

logger = logging.getLogger("realtime.metrics")

INSTANCE_ID = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
LATENCY_SAMPLES = 2048


class InstanceMetrics:
    """The figures of this process."""

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self.started = time.time()
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
        }


local = InstanceMetrics()


def percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return round(ordered[index], 3)


def latency_summary(snapshots: list[dict[str, Any]]) -> dict[str, Any]:
    samples = [v for snap in snapshots for v in snap["latency"]["samples"]]
    return {
        "count": sum(snap["latency"]["count"] for snap in snapshots),
        "sum": round(sum(snap["latency"].get("sum", 0.0) for snap in snapshots), 3),
        "p50": percentile(samples, 0.50),
        "p95": percentile(samples, 0.95),
        "p99": percentile(samples, 0.99),
        "max": max((snap["latency"]["max"] for snap in snapshots if snap["latency"]["count"]), default=None),
    }


def _instances_key() -> str:
    return key("metrics", "instances")


def _report_ttl() -> float:
    return max(2 * realtime_settings.heartbeat_seconds, 3 * report_interval())


def report_interval() -> float:
    return min(5.0, max(realtime_settings.heartbeat_seconds, 0.5))


async def publish_snapshot() -> None:
    """Store this instance's figures in Redis for the others to aggregate."""
    client = get_redis()
    now = time.time()
    async with client.pipeline(transaction=True) as pipe:
        pipe.hset(_instances_key(), INSTANCE_ID, json.dumps(local.snapshot()))
        pipe.zadd(key("metrics", "alive"), {INSTANCE_ID: now + _report_ttl()})
        await pipe.execute()


async def instance_snapshots() -> list[dict[str, Any]]:
    if not redis_enabled():
        return [local.snapshot()]
    client = get_redis()
    now = time.time()
    alive_key = key("metrics", "alive")
    dead = await client.zrangebyscore(alive_key, "-inf", now)
    if dead:
        await client.hdel(_instances_key(), *dead)
        await client.zrem(alive_key, *dead)
    snapshots = {name: json.loads(value) for name, value in (await client.hgetall(_instances_key())).items()}
    if local.connections_total:  # this process serves sockets: its own figures are freshest
        snapshots[INSTANCE_ID] = local.snapshot()
    return sorted(snapshots.values(), key=lambda snap: snap["instance"])


async def aaggregate() -> dict[str, Any]:
    """Every figure, summed over the live instances; rooms and users from presence."""
    from .presence import get_presence

    snapshots = await instance_snapshots()
    rooms = await get_presence().rooms()
    users: set[str] = set()
    presence = get_presence()
    for room_id in rooms:
        users.update(conn.user_id for conn in await presence.connections(room_id))
    keys = await _room_keys(list(rooms))
    rejections: Counter[str] = Counter()
    errors_by_code: Counter[str] = Counter()
    for snap in snapshots:
        rejections.update(snap["rejections"])
        errors_by_code.update(snap["errorsByCode"])
    return {
        "activeConnections": sum(rooms.values()),
        "activeRooms": len(rooms),
        "userSessions": len(users),
        "messagesSent": sum(snap["messagesSent"] for snap in snapshots),
        "messagesReceived": sum(snap["messagesReceived"] for snap in snapshots),
        "errors": sum(snap["errors"] for snap in snapshots),
        "errorsByCode": dict(errors_by_code),
        "rejections": dict(rejections),
        "deliveries": sum(snap["deliveries"] for snap in snapshots),
        "broadcastFailures": sum(snap.get("broadcastFailures", 0) for snap in snapshots),
        "gapsFilled": sum(snap.get("gapsFilled", 0) for snap in snapshots),
        "deliveryLatencyMs": latency_summary(snapshots),
        "rooms": [
            {"room": keys.get(room_id), "inventoryId": str(room_id), "connections": n}
            for room_id, n in sorted(rooms.items())
        ],
        "instances": [
            {k: v for k, v in snap.items() if k != "latency"} | {"deliveryLatencyMs": latency_summary([snap])}
            for snap in snapshots
        ],
        "timestamp": protocol.timestamp(),
    }


@sync_to_async  # not database_sync_to_async: called from sync views too, it must not close their connection
def _room_keys(inventory_ids: list[int]) -> dict[int, str]:
    """Each live room's key (`Alfa Romeo/10/2025`), for people reading the figures."""
    from inventory.models import Inventory

    inventories = Inventory.objects.select_related("agency").filter(pk__in=inventory_ids)
    return {inventory.pk: inventory.room_key for inventory in inventories}


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
        await asyncio.sleep(report_interval())
