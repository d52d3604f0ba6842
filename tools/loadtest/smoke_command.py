"""Smoke-check a running deployment's WebSocket protocol (protocol v1's `npm run test:websocket`)."""

from __future__ import annotations

import asyncio

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from inventory import periods
from realtime.conf import realtime_settings
from tools.loadtest import api, plan
from tools.loadtest.smoke import SmokeRun, SmokeSettings

STYLES = {"PASS": "SUCCESS", "FAIL": "ERROR", "SKIP": "WARNING"}


class Command(BaseCommand):
    help = (
        "Check a running server's WebSocket protocol: connection, each message type and its broadcast, "
        "room isolation, error handling and ping/pong. One PASS or FAIL line per check; exits non-zero "
        "on any failure. Works in a room nobody has opened yet (next month's, or the latest earlier one), "
        "removes its scan and deletes the inventories it opened when the token may (delete_inventory)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--url", default=f"http://localhost:{settings.PORT}", help="The server's root URL."
        )
        parser.add_argument("--token", required=True, help="An API token (POST /api/auth/token/).")
        parser.add_argument("--agency", help="Agency name or slug (default: the token's user's first).")
        parser.add_argument("--month", type=int, help="The room's month, with --year (default: next month).")
        parser.add_argument("--year", type=int, help="The room's year, with --month.")
        parser.add_argument(
            "--check-completion",
            action="store_true",
            help="Also complete the room's inventory (cannot be undone through the API).",
        )
        parser.add_argument("--timeout", type=float, default=5.0, help="Seconds to wait for each answer.")

    def handle(self, *args, url, token, agency, month, year, check_completion, timeout, **options):
        if month is not None and not 1 <= month <= 12:
            raise CommandError("--month must be 1-12.")
        http_url = plan.http_base_url(url)
        if not agency:
            try:
                agency = api.first_agency(http_url, token)
            except api.ApiError as exc:
                self._line("FAIL", "agency lookup", str(exc))
                raise CommandError("the smoke check could not start.", returncode=1) from None
            self._line("PASS", "agency lookup", f"using {agency}")
        smoke = SmokeRun(
            SmokeSettings(
                http_url=http_url,
                ws_base=plan.ws_base_url(url, realtime_settings.WEBSOCKET_PATH),
                token=token,
                agency=agency,
                month=month,
                year=year,
                months=tuple(periods.openable_months_newest_first()),
                check_completion=check_completion,
                timeout=timeout,
            ),
            report=self._line,
        )
        outcome = asyncio.run(smoke.run())
        for line in outcome.data_left:
            self.stdout.write(f"Data left: {line}")
        if outcome.failed:
            raise CommandError(f"{outcome.failed} check(s) failed.", returncode=1)
        self.stdout.write(self.style.SUCCESS("All checks passed."))

    def _line(self, status: str, name: str, detail: str) -> None:
        style = getattr(self.style, STYLES[status])
        self.stdout.write(f"{style(status)} {name}: {detail}")
