"""Publish a room's scans at a fixed rate, over the room's socket or over REST."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime

from .client import RoomState, SentScan, Sink
from .http_client import HttpClient
from .plan import RunSettings

SAVE_SCAN_PATH = "/api/inventory/save-scan"


def scan_code(run_id: str, room_index: int, order: int) -> str:
    """A code unique to this run, room and scan (codes are counted once per inventory)."""
    return f"{run_code_prefix(run_id)}{room_index:03d}-{order:05d}"


def run_code_prefix(run_id: str) -> str:
    """What every code this run publishes starts with."""
    return f"LT-{run_id}-"


def iso_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def scan_payload(room: RoomState, scan_id: str, code: str) -> dict:
    """Protocol v1's `scan_added` data, with the scan id the server broadcasts back."""
    plan = room.plan
    return {
        "agency": plan.agency,
        "month": str(plan.month),
        "year": plan.year,
        "scanData": {"code": code, "id": scan_id, "timestamp": iso_now()},
    }


async def publish_room(room: RoomState, settings: RunSettings, start_at: float, sink: Sink) -> None:
    """Send `rate * duration` scans from loop time `start_at`, one per 1/rate s, catching up if late.

    In a closed loop (REST) the rate is ignored: each scan is posted as soon as the last one is
    answered, until `duration` seconds have passed, so the scans per second are the server's.
    """
    publisher = room.publisher
    if publisher is None:
        return
    loop = asyncio.get_running_loop()
    interval = 1 / settings.rate
    rest = None
    if settings.via == "rest":
        rest = HttpClient(settings.http_url, headers={"Authorization": f"Token {publisher.token}"})
    closed = settings.closed_loop and rest is not None
    stop_at = start_at + settings.duration
    room.publishing = True
    try:
        order = 0
        while order < settings.scans_per_room or closed:
            if closed:
                if loop.time() >= stop_at:
                    return
            elif (delay := start_at + order * interval - loop.time()) > 0:
                await asyncio.sleep(delay)
            if not publisher.is_open:
                sink.errors["publisher_disconnected"] += 1
                return
            scan_id = str(uuid.uuid4())
            payload = scan_payload(room, scan_id, scan_code(settings.run_id, room.plan.index, order))
            now = time.perf_counter()
            room.sent[scan_id] = SentScan(order, now)
            sink.sent += 1
            if sink.first_send is None:
                sink.first_send = now
            if rest is None:
                await publisher.send_json({"type": "scan_added", "data": payload})
            else:
                await _post(rest, room, scan_id, payload, sink)
            order += 1
    finally:
        if rest is not None:
            await rest.close()


async def _post(rest: HttpClient, room: RoomState, scan_id: str, payload: dict, sink: Sink) -> None:
    try:
        response = await rest.request("POST", SAVE_SCAN_PATH, payload)
    except (OSError, TimeoutError, asyncio.IncompleteReadError) as exc:
        # Maybe stored, maybe not: the clients' receipts will tell.
        sink.errors[f"request_failed:{type(exc).__name__}"] += 1
        return
    if response.status in (200, 201):
        now = time.perf_counter()
        room.note_stored(scan_id, now)
        sink.answered += 1
        sink.last_answer = now
        return
    body = response.json()
    code = body.get("code") if isinstance(body, dict) else None
    kind = str(code or f"http_{response.status}")
    sink.errors[kind] += 1
    room.rejected[kind] += 1
