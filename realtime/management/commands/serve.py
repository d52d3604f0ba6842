"""Serve HTTP and WebSockets with daphne, configured from the settings (used by make run and the Procfile)."""

import math
import os

from django.conf import settings
from django.core.management.base import BaseCommand

from realtime.conf import realtime_settings
from realtime.transport import Daphne


class Command(BaseCommand):
    help = "Run daphne on $PORT with the heartbeat and frame limits from the settings."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("HOST", "0.0.0.0"))
        parser.add_argument("--port", type=int, default=settings.PORT)
        parser.add_argument("--proxy-headers", action="store_true", help="Trust X-Forwarded-* headers.")

    def handle(self, *args, host, port, proxy_headers, **options):
        heartbeat = max(1, math.ceil(realtime_settings.heartbeat_seconds))
        transport = str(realtime_settings.TRANSPORT_MAX_BYTES)
        argv = [
            "-b",
            host,
            "-p",
            str(port),
            # Ping every heartbeat; a socket that does not answer within another is closed.
            "--ping-interval",
            str(heartbeat),
            "--ping-timeout",
            str(heartbeat),
            # Consumers refresh group membership every heartbeat, so sockets may live for days.
            "--websocket_timeout",
            "-1",
            # The consumer refuses client frames over MAX_FRAME_BYTES itself (error, then 1009).
            "--websocket-max-message-size",
            transport,
            "--websocket-max-frame-size",
            transport,
        ]
        if proxy_headers:
            argv.append("--proxy-headers")
        argv.append("inventory_site.asgi:application")
        self.stdout.write(f"Serving on http://{'localhost' if host in ('0.0.0.0', '::') else host}:{port}/")
        Daphne().run(argv)
