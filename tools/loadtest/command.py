"""Load-test a running server: rooms full of clients, scans at a fixed rate, every delivery checked."""

from __future__ import annotations

import json
import secrets
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from rich.console import Console

from inventory.periods import openable_months_newest_first
from realtime.conf import realtime_settings
from tools.chaos.injections import FAULTS
from tools.loadtest import api, plan, report, stats
from tools.loadtest.progress import LiveProgress, NoProgress
from tools.loadtest.runner import run_workers
from tools.sampler import ServerWatch


class Command(BaseCommand):
    help = (
        "Connect ROOMS x CLIENTS WebSocket clients to a running server, publish scans into every room "
        "at RATE per second, and check that every client receives every stored scan once and in order. "
        "Exits non-zero when a delivery was lost."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--url", default=f"http://localhost:{settings.PORT}", help="The server's root URL."
        )
        parser.add_argument("--rooms", type=int, default=20)
        parser.add_argument(
            "--clients", type=int, default=50, help="Clients per room (the publisher is one)."
        )
        parser.add_argument("--rate", type=float, default=1.0, help="Scans per second per room.")
        parser.add_argument("--duration", type=float, default=10.0, help="Seconds of publishing.")
        parser.add_argument("--via", choices=["ws", "rest"], default="ws", help="How scans are published.")
        parser.add_argument(
            "--closed-loop",
            action="store_true",
            help="With --via rest: each room posts its next scan as soon as the last one is answered, for "
            "--duration seconds (--rate is ignored), so requests per second are the server's capacity.",
        )
        parser.add_argument(
            "--prefill",
            type=int,
            default=0,
            metavar="N",
            help="Put N scans in every room's inventory (with their events and progress counters) before "
            "the clients connect: a write's cost on a full inventory. Not with --token.",
        )
        parser.add_argument("--procs", type=int, default=1, help="Worker processes sharing the rooms.")
        parser.add_argument(
            "--token",
            help="Use this existing token for every client (rooms are the months of --agency a room can "
            "be opened in, newest first) instead of creating the run's own agencies, users and tokens "
            "in the database. One user then holds every socket: the server needs "
            "WEBSOCKET_MAX_CONNECTIONS_PER_USER >= --clients and "
            "WEBSOCKET_CONNECT_RATE_PER_USER >= --rooms x --clients.",
        )
        parser.add_argument("--agency", help="With --token: the agency (default: the token's first).")
        parser.add_argument("--keep", action="store_true", help="Keep the run's agencies, users and scans.")
        parser.add_argument("--json", action="store_true", help="Print one JSON object instead of a table.")
        parser.add_argument("--server-pid", type=int, help="The server's pid, to report its CPU and memory.")
        parser.add_argument(
            "--connect-concurrency",
            type=int,
            default=50,
            help="Handshakes in flight at once; 0: every client at once (a reconnect storm after a deploy).",
        )
        parser.add_argument("--open-timeout", type=float, default=10.0)
        parser.add_argument(
            "--connect-retries",
            type=int,
            default=0,
            help="Try a handshake the server or the network dropped unanswered again, this many times, "
            "after the live client's backoff (0.25-0.5 s, doubling).",
        )
        parser.add_argument(
            "--quiet-seconds",
            type=float,
            default=0.5,
            help="Start publishing once no client has received anything for this long (the join is over).",
        )
        parser.add_argument(
            "--quiet-timeout",
            type=float,
            default=15.0,
            help="... or when the clients were never that quiet for this long after the last handshake.",
        )
        parser.add_argument(
            "--drain-timeout", type=float, default=5.0, help="Wait this long for late deliveries."
        )
        parser.add_argument("--no-resume", action="store_true", help="Count seq gaps without resuming.")
        parser.add_argument("--no-progress", action="store_true")
        chaos = parser.add_argument_group(
            "chaos run",
            "--chaos starts its own cluster (two `serve` processes behind a round-robin proxy, a Redis of "
            "its own, PostgreSQL behind a cuttable proxy; --url is not used), injects each fault in turn "
            "while every room counts at --rate, and reports per fault (docs/reliability.md, Chaos run).",
        )
        chaos.add_argument("--chaos", action="store_true", help="Run the chaos run instead of the load test.")
        chaos.add_argument(
            "--faults",
            default=",".join(FAULTS),
            help=f"The faults, in order, comma-separated (default: all: {','.join(FAULTS)}).",
        )
        chaos.add_argument(
            "--heartbeat-ms", type=int, default=2000, help="The servers' REALTIME_HEARTBEAT_INTERVAL_MS."
        )
        chaos.add_argument(
            "--steady",
            type=float,
            default=5.0,
            help="Seconds of counting before the first fault and after each recovery.",
        )
        chaos.add_argument(
            "--recovery-timeout",
            type=float,
            default=60.0,
            help="Give up waiting for a fault's recovery after this.",
        )
        chaos.add_argument(
            "--logs",
            default="/tmp/inventory-chaos",
            help="Where the servers and Redis log, and where the report is saved as chaos-<run id>.json.",
        )

    def handle(self, *args, **options):
        if options["chaos"]:
            return self._chaos(options)
        self._check(options)
        run_id = secrets.token_hex(3)
        http_url = plan.http_base_url(options["url"])
        ws_base = plan.ws_base_url(options["url"], realtime_settings.WEBSOCKET_PATH)
        console = Console(file=self.stdout._out, highlight=False)
        err_console = Console(stderr=True, highlight=False)

        accounts = None
        notes: list[str] = []
        if options["token"]:
            rooms = self._token_rooms(options, http_url, notes)
        else:
            from tools.loadtest.accounts import accounts_create

            accounts = accounts_create(run_id=run_id, rooms=options["rooms"], clients=options["clients"])
            rooms = accounts.rooms

        run_settings = plan.RunSettings(
            run_id=run_id,
            http_url=http_url,
            ws_base=ws_base,
            via=options["via"],
            rate=options["rate"],
            duration=options["duration"],
            rooms_total=len(rooms),
            resume=not options["no_resume"],
            connect_concurrency=-(-options["connect_concurrency"] // max(1, options["procs"])),
            closed_loop=options["closed_loop"],
            open_timeout=options["open_timeout"],
            connect_retries=options["connect_retries"],
            quiet_seconds=options["quiet_seconds"],
            quiet_timeout=options["quiet_timeout"],
            drain_timeout=options["drain_timeout"],
        )
        shares = plan.split_rooms(rooms, options["procs"])
        parts = urlsplit(http_url)
        server = ServerWatch.for_server(
            parts.hostname or "localhost",
            parts.port or (443 if parts.scheme == "https" else 80),
            options["server_pid"],
        )
        quiet = options["json"] or options["no_progress"] or not err_console.is_terminal
        progress = (
            NoProgress()
            if quiet
            else LiveProgress(
                err_console, connections=len(rooms) * options["clients"], duration=options["duration"]
            )
        )

        stored_in_db = None
        prefill_seconds = None
        try:
            if accounts is not None and options["prefill"]:
                from tools.loadtest.prefill import inventories_prefill

                prefill_seconds = inventories_prefill(accounts=accounts, scans_per_room=options["prefill"])
            with progress:
                outcome = run_workers(run_settings, shares, progress=progress, server=server)
            if accounts is not None:
                stored_in_db = accounts.stored_scans()
        finally:
            if accounts is not None and not options["keep"]:
                accounts.remove()

        result = stats.summarize(
            outcome.results,
            run=self._run_info(run_id, options, http_url, ws_base, rooms, shares),
            stored_in_db=stored_in_db,
            server=server.report({"connect": ("start", "ready"), "publish": ("ready", "end")}),
            main_cpu=outcome.main_cpu,
        )
        result["prefill"] = {
            "scans_per_room": options["prefill"],
            "seconds": round(prefill_seconds, 2) if prefill_seconds is not None else None,
        }
        result["data_left"] = self._data_left(accounts, options, rooms, result)
        notes += self._notes(result)
        if outcome.failures:
            result["worker_failures"] = {str(i): text for i, text in outcome.failures.items()}
            result["failures"].append(f"{len(outcome.failures)} worker(s) failed")
            result["ok"] = False
        result["notes"] = notes

        if options["json"]:
            self.stdout.write(json.dumps(result))
        else:
            report.render(console, result)
            for text in outcome.failures.values():
                err_console.print(text, markup=False)
        if not result["ok"]:
            raise CommandError("; ".join(result["failures"]), returncode=1)

    def _chaos(self, options) -> None:
        from tools.chaos import report as chaos_report
        from tools.chaos.command import chaos_run, parse_faults
        from tools.chaos.run import ChaosSettings

        try:
            settings = ChaosSettings(
                rooms=options["rooms"],
                clients=options["clients"],
                rate=options["rate"],
                heartbeat_ms=options["heartbeat_ms"],
                steady_seconds=options["steady"],
                recovery_timeout=options["recovery_timeout"],
                drain_timeout=max(options["drain_timeout"], 30.0),
                faults=parse_faults(options["faults"]),
                connect_concurrency=options["connect_concurrency"] or options["rooms"] * options["clients"],
                log_dir=Path(options["logs"]),
            )
            say = (lambda line: None) if options["no_progress"] else self._say
            result = chaos_run(settings, keep=options["keep"], say=say)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        saved = Path(options["logs"]) / f"chaos-{result['run']['id']}.json"
        saved.write_text(json.dumps(result, indent=1))
        if options["json"]:
            self.stdout.write(json.dumps(result))
        else:
            chaos_report.render(Console(file=self.stdout._out, highlight=False, width=200), result)
            self.stdout.write(f"JSON: {saved}; servers' and Redis' logs: {options['logs']}/")
        if not result["ok"]:
            raise CommandError("; ".join(result["failures"]), returncode=1)

    def _say(self, line: str) -> None:
        self.stderr.write(f"{time.strftime('%H:%M:%S')} {line}")

    def _check(self, options) -> None:
        for name in ("rooms", "clients", "procs"):
            if options[name] < 1:
                raise CommandError(f"--{name} must be at least 1.")
        if min(options[name] for name in ("connect_concurrency", "prefill", "connect_retries")) < 0:
            raise CommandError("--connect-concurrency, --connect-retries and --prefill cannot be negative.")
        if options["closed_loop"] and options["via"] != "rest":
            raise CommandError("--closed-loop publishes over REST: add --via rest.")
        if options["prefill"] and options["token"]:
            raise CommandError("--prefill fills the run's own inventories: not with --token.")
        if options["rate"] <= 0 or options["duration"] <= 0:
            raise CommandError("--rate and --duration must be positive.")
        months = len(openable_months_newest_first())
        if options["token"] and options["rooms"] > months:
            raise CommandError(
                f"With --token, rooms are the {months} months a room can be opened in "
                "(INVENTORY_OPEN_MONTHS_BACK and _AHEAD): too many rooms."
            )

    def _token_rooms(self, options, http_url: str, notes: list[str]) -> list[plan.RoomPlan]:
        """With one token: every client is the same user; the rooms are months of one agency."""
        agency = options["agency"]
        if not agency:
            try:
                agency = api.first_agency(http_url, options["token"])
            except api.ApiError as exc:
                raise CommandError(str(exc)) from None
        per_minute = 60 * options["rate"] * options["rooms"]
        limit = realtime_settings.RATE_LIMIT_MAX_MESSAGES
        if options["via"] == "ws" and 0 < limit < per_minute:
            notes.append(
                f"With one token every room's publisher is the same user: {per_minute:g} scans per minute "
                f"against a limit of {limit} per user (if the server's is the same) will be rate limited."
            )
        return [
            plan.RoomPlan(
                index=i,
                agency=agency,
                month=month,
                year=year,
                tokens=(options["token"],) * options["clients"],
            )
            for i, (month, year) in enumerate(openable_months_newest_first()[: options["rooms"]])
        ]

    def _run_info(self, run_id, options, http_url, ws_base, rooms, shares) -> dict:
        return {
            "id": run_id,
            "url": http_url,
            "ws_url": ws_base,
            "mode": "token" if options["token"] else "generated",
            "via": options["via"],
            "rooms": len(rooms),
            "clients": options["clients"],
            "rate": options["rate"],
            "duration": options["duration"],
            "closed_loop": options["closed_loop"],
            "connect_concurrency": options["connect_concurrency"],
            "connect_retries": options["connect_retries"],
            "prefill": options["prefill"],
            "scans_per_room": (
                None if options["closed_loop"] else plan.scans_per_room(options["rate"], options["duration"])
            ),
            "procs": len(shares),
            "python": sys.version.split()[0],
        }

    def _data_left(self, accounts, options, rooms, result) -> list[str]:
        if accounts is not None:
            return [accounts.describe()] if options["keep"] else []
        if not result["scans"]["stored"]:
            return []
        return [
            f"{result['scans']['stored']} scans (codes LT-{result['run']['id']}-*) in "
            + ", ".join(room.key for room in rooms)
        ]

    def _notes(self, result) -> list[str]:
        notes = []
        refused = result["connections"]["refused_other"]
        if any(reason.startswith("4401") for reason in refused) and result["run"]["mode"] == "generated":
            notes.append(
                "Hint: 4401 means the server does not know the run's tokens: run this command with the "
                "server's settings and DATABASE_URL, or pass --token."
            )
        if result["deliveries"]["late"] or result["scans"]["unconfirmed"]:
            notes.append(
                "The server had not handled every scan when the workers stopped waiting: it fell behind. "
                "Raise --drain-timeout to tell a slow server from a lossy one."
            )
        for line in result["data_left"]:
            notes.append(f"Data left behind: {line}.")
        return notes
