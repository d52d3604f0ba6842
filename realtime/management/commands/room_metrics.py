"""Print the live rooms' figures across every instance: rooms, connections, users, messages, latency.

Instances that died recently are listed with their last figures, marked as gone.
"""

import json
import time
import urllib.request

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from rich.console import Console
from rich.table import Table

from realtime import metrics


def _quantiles(summary: dict | None, keys=("p50", "p95", "p99")) -> str:
    summary = summary or {}
    return "/".join(str(summary.get(k)) for k in keys)


def render(figures, console: Console) -> None:
    latency = figures["deliveryLatencyMs"]
    ping = figures.get("pingLatencyMs") or {}
    summary = Table(title=f"Live rooms at {figures['timestamp']}", show_header=False)
    for label, value in [
        ("rooms", figures["activeRooms"]),
        ("connections", figures["activeConnections"]),
        ("users", figures["userSessions"]),
        ("messages sent", figures["messagesSent"]),
        ("messages received", figures["messagesReceived"]),
        ("errors", figures["errors"]),
        ("deliveries", latency["count"]),
        ("latency p50/p95/p99/max ms", _quantiles(latency, ("p50", "p95", "p99", "max"))),
        ("pings", ping.get("count", 0)),
        ("ping round trip p50/p95/p99/max ms", _quantiles(ping, ("p50", "p95", "p99", "max"))),
    ]:
        summary.add_row(label, str(value))
    console.print(summary)

    rooms = Table(title="Rooms")
    for column in ("room", "inventory", "connections", "ping p50/p95/p99 ms"):
        rooms.add_column(column)
    for room in figures["rooms"]:
        rooms.add_row(
            room.get("room") or "?",
            room["inventoryId"],
            str(room["connections"]),
            _quantiles(room.get("pingLatencyMs")),
        )
    console.print(rooms)

    # Live instances, then the last figures of those gone (kept a while, so totals do not fall).
    instances = Table(title="Instances")
    columns = (
        "instance",
        "state",
        "connections",
        "users",
        "sent",
        "received",
        "errors",
        "ping p50/p95/p99 ms",
    )
    for column in (*columns, "updated"):
        instances.add_column(column)
    gone = figures.get("goneInstances", [])
    for instance in [*figures["instances"], *gone]:
        state = f"gone at {instance.get('goneAt', '?')}" if instance.get("gone") else "live"
        instances.add_row(
            instance["instance"],
            state,
            str(instance["activeConnections"]),
            str(instance["userSessions"]),
            str(instance["messagesSent"]),
            str(instance["messagesReceived"]),
            str(instance["errors"]),
            _quantiles(instance.get("pingLatencyMs")),
            instance["updatedAt"],
        )
    console.print(instances)


class Command(BaseCommand):
    help = "Show rooms, connections, users and messages across every server instance."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="Print one JSON object.")
        parser.add_argument("--watch", type=float, metavar="SECONDS", help="Refresh every SECONDS.")
        parser.add_argument(
            "--url",
            help="Ask a running server instead of Redis (the default without REDIS_URL: "
            "http://localhost:$PORT).",
        )
        parser.add_argument("--token", help="A staff user's API token for --url (default: a superuser's).")

    def handle(self, *args, json: bool = False, watch: float | None = None, url=None, token=None, **options):
        as_json = json
        if not url and not settings.REDIS_URL:
            # Without Redis every figure lives in the server process: ask it over HTTP.
            url = f"http://localhost:{settings.PORT}"
        fetch = (lambda: _fetch(url, token or _staff_token())) if url else metrics.aggregate
        console = Console(file=self.stdout._out, width=None if self.stdout.isatty() else 140)
        while True:
            figures = fetch()
            if as_json:
                self.stdout.write(_json_dumps(figures))
            else:
                if watch:
                    console.clear()
                render(figures, console)
            if not watch:
                return
            try:
                time.sleep(watch)
            except KeyboardInterrupt:
                return


def _staff_token() -> str:
    from rest_framework.authtoken.models import Token

    user = get_user_model().objects.filter(is_superuser=True, is_active=True).order_by("pk").first()
    if user is None:
        raise CommandError(
            "No superuser to ask the server with: pass --token or create one (createsuperuser)."
        )
    return Token.objects.get_or_create(user=user)[0].key


def _fetch(url: str, token: str) -> dict:
    request = urllib.request.Request(
        url.rstrip("/") + "/api/inventory/websocket/metrics", headers={"Authorization": f"Token {token}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())
    except OSError as exc:
        raise CommandError(f"Could not read the metrics from {url}: {exc}") from exc


def _json_dumps(value) -> str:
    return json.dumps(value, ensure_ascii=False)
