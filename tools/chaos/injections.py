"""The faults of the chaos run, in the order they are injected, each with its own recovery after."""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .run import ChaosRun


@dataclass(frozen=True)
class Fault:
    name: str
    title: str
    inject: Callable[[ChaosRun], Awaitable[None]]


async def redis_restart(run: ChaosRun) -> None:
    """Stop Redis (every connection drops, every key is gone) and start it again on the same port."""
    redis = run.cluster.redis
    await asyncio.to_thread(redis.stop)
    await asyncio.sleep(run.settings.redis_outage_seconds)
    await asyncio.to_thread(redis.start)


async def redis_pause(run: ChaosRun) -> None:
    """Redis answers nothing for longer than a heartbeat (DEBUG SLEEP); its connections stay open."""
    await asyncio.to_thread(run.cluster.redis.pause, run.settings.redis_pause_seconds)


async def instance_kill(run: ChaosRun) -> None:
    """SIGKILL the first instance (its clients reconnect through the proxy to the other); start it again."""
    instance = run.cluster.instances[0]
    await asyncio.to_thread(instance.kill)
    await asyncio.sleep(1.0)
    started = await asyncio.to_thread(instance.start)
    run.phase.notes.append(f"{instance.name} answered /health {started:.1f} s after its start")


async def postgres_cut(run: ChaosRun) -> None:
    """Every PostgreSQL connection reset and new ones refused, for a while."""
    proxy = run.cluster.postgres_proxy
    await asyncio.to_thread(proxy.cut)
    await asyncio.sleep(run.settings.postgres_cut_seconds)
    await asyncio.to_thread(proxy.restore)


async def rolling_deploy(run: ChaosRun) -> None:
    """Each instance in turn: SIGTERM (a graceful stop), start again, wait for /health."""
    for instance in run.cluster.instances:
        stopped = await asyncio.to_thread(instance.terminate)
        code = instance.process.returncode if instance.process else None
        started = await asyncio.to_thread(instance.start)
        run.phase.notes.append(
            f"{instance.name}: exited {stopped:.1f} s after SIGTERM (status {code}), "
            f"up again in {started:.1f} s"
        )


async def clients_drop(run: ChaosRun) -> None:
    """A share of the clients lose the network without a close frame; each scans once while offline."""
    clients = run.clients
    chosen = random.sample(clients, max(1, math.ceil(len(clients) * run.settings.drop_share)))
    for client in chosen:
        client.drop(offline_for=run.settings.offline_seconds)
    await asyncio.sleep(run.settings.offline_seconds / 2)
    for client in chosen:
        client.room.scan(run.phase.index, client)
    await asyncio.sleep(run.settings.offline_seconds / 2)
    run.phase.notes.append(f"{len(chosen)} clients offline for {run.settings.offline_seconds:g} s")


async def room_burst(run: ChaosRun) -> None:
    """Every client of the first room drops its socket and reconnects at the same moment."""
    room = run.rooms[0]
    for client in room.clients:
        client.drop(reconnect_now=True)
    run.phase.notes.append(f"{len(room.clients)} clients of {room.plan.key} reconnected at once")


FAULTS = {
    fault.name: fault
    for fault in (
        Fault("redis-restart", "Redis restarted", redis_restart),
        Fault("redis-pause", "Redis paused (DEBUG SLEEP)", redis_pause),
        Fault("instance-kill", "one instance SIGKILLed, started again", instance_kill),
        Fault("postgres-cut", "PostgreSQL connections cut", postgres_cut),
        Fault("rolling-deploy", "rolling deploy (SIGTERM, restart, each instance)", rolling_deploy),
        Fault("clients-drop", "clients dropped without a close frame", clients_drop),
        Fault("room-burst", "a room's clients reconnect at once", room_burst),
    )
}
