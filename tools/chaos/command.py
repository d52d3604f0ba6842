"""`manage.py ws_loadtest --chaos` (and `make chaos`): start the run's own cluster, run, report."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import secrets
import sys
from typing import Any

from django.db import connection

from inventory.models import Scan
from tools.loadtest.accounts import accounts_create

from . import report
from .cluster import Cluster
from .injections import FAULTS
from .run import ChaosRun, ChaosSettings


def stored_scans(run_id: str) -> dict[str, set[str]]:
    """The ids of the run's scans the database holds, per room key."""
    stored: dict[str, set[str]] = {}
    rows = Scan.objects.filter(code__startswith=f"CH-{run_id}-").values_list(
        "uid", "inventory__agency__name", "inventory__month", "inventory__year"
    )
    for uid, agency, month, year in rows:
        stored.setdefault(f"{agency}/{month}/{year}", set()).add(str(uid))
    return stored


def _run_loop(coroutine) -> None:
    """On uvloop when installed, as the load test's workers: a thousand sockets in one process."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(coroutine)
    else:
        uvloop.run(coroutine)


def parse_faults(text: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in names if name not in FAULTS]
    if unknown:
        raise ValueError(f"unknown fault(s) {', '.join(unknown)}: choose from {', '.join(FAULTS)}")
    return names


def chaos_run(
    settings: ChaosSettings, *, keep: bool = False, command: str = "", say=lambda line: None
) -> dict[str, Any]:
    """Create the run's accounts, start the cluster, run every fault, and return the report."""
    if not connection.settings_dict["ENGINE"].endswith("postgresql"):
        raise ValueError("the chaos run needs PostgreSQL (DATABASE_URL): it cuts the servers' connections")
    run_id = secrets.token_hex(3)
    began = dt.datetime.now(dt.UTC)
    accounts = accounts_create(run_id=run_id, rooms=settings.rooms, clients=settings.clients)
    try:
        with Cluster(
            database=dict(connection.settings_dict),
            heartbeat_ms=settings.heartbeat_ms,
            log_dir=settings.log_dir,
        ) as cluster:
            say(f"cluster up: {', '.join(f'{i.name} on {i.port}' for i in cluster.instances)}, {cluster.url}")
            run = ChaosRun(settings, cluster, accounts.rooms, run_id, say=say)
            _run_loop(run.run())
            stored = stored_scans(run_id)
            # How the front proxy shared the connections (joins and REST calls) between the instances.
            shares = {
                instance.name: cluster.front.connections_by_target[("127.0.0.1", instance.port)]
                for instance in cluster.instances
            }
    finally:
        if not keep:
            accounts.remove()
    info = {
        "id": run_id,
        "command": command or " ".join(sys.argv),
        "started": began.isoformat(timespec="seconds"),
        "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "rooms": settings.rooms,
        "clients": settings.clients,
        "rate": settings.rate,
        "heartbeat_ms": settings.heartbeat_ms,
        "faults": list(settings.faults),
        "redis_pause_seconds": settings.redis_pause_seconds,
        "postgres_cut_seconds": settings.postgres_cut_seconds,
        "cores": os.cpu_count(),
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "logs": str(settings.log_dir),
        "connections_per_instance": shares,
    }
    return report.summarize(run, stored, info)
