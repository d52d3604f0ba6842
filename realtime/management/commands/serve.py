"""Serve HTTP and WebSockets, configured from the settings (used by make run and the Procfile).

daphne is the default; uvicorn (`--server uvicorn`, or settings.ASGI_SERVER: `ASGI_SERVER=uvicorn`)
serves the same application with the same heartbeat and limits, and relays faster (docs/performance.md).

Either listens on 127.0.0.1 unless --host or settings.HOST ($HOST) says otherwise, and closes a
connection whose request headers are not complete within HTTP_HEADER_TIMEOUT (slowloris). In
production it expects a reverse proxy in front (the Procfile: a platform router or nginx) that
terminates TLS, sets X-Forwarded-For/-Proto (--proxy-headers), buffers request bodies and limits
their size: daphne reads a whole body before the application sees it and does not bound it.

On SIGTERM (or Ctrl-C) either stops gracefully (realtime/shutdown.py): no new connections, every
socket closed with 1012 so its client reconnects elsewhere at once, the requests and socket writes
in flight finished (at most SHUTDOWN_TIMEOUT seconds), then exit 0; 1 if something was still
running at the timeout. A second signal stops at once.
"""

import math

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from realtime import shutdown
from realtime.conf import realtime_settings

APPLICATION = "inventory_site.asgi:application"
SERVERS = ("daphne", "uvicorn")


class Command(BaseCommand):
    help = "Run daphne (or uvicorn) on $PORT with the heartbeat and frame limits from the settings."

    def add_arguments(self, parser):
        parser.add_argument(
            "--host",
            default=settings.HOST,
            help="The address to listen on (default: settings.HOST, from $HOST, else 127.0.0.1).",
        )
        parser.add_argument("--port", type=int, default=settings.PORT)
        parser.add_argument("--proxy-headers", action="store_true", help="Trust X-Forwarded-* headers.")
        parser.add_argument(
            "--server",
            choices=SERVERS,
            default=settings.ASGI_SERVER,
            help="The ASGI server (default: settings.ASGI_SERVER, $ASGI_SERVER, else daphne).",
        )

    def handle(self, *args, host, port, proxy_headers, server, **options):
        if server not in SERVERS:  # argparse checks --server, not a default from the environment
            raise CommandError(
                f"ASGI_SERVER={server!r} is not a server this command runs: use {' or '.join(SERVERS)}."
            )
        self.stdout.write(
            f"Serving with {server} on http://{'localhost' if host in ('0.0.0.0', '::') else host}:{port}/"
        )
        # Ping every heartbeat; a socket that does not answer within another is closed. The
        # transport accepts up to TRANSPORT_MAX_BYTES, so that the consumer refuses client frames
        # over MAX_FRAME_BYTES itself (error, then 1009) and big snapshots can be sent.
        heartbeat = max(1, math.ceil(realtime_settings.heartbeat_seconds))
        transport = realtime_settings.TRANSPORT_MAX_BYTES
        if server == "uvicorn":
            import uvicorn

            from realtime.uvicorn_http import GracefulServer, HeaderDeadlineH11Protocol

            config = uvicorn.Config(
                APPLICATION,
                host=host,
                port=port,
                # h11 with a deadline for each request's headers (HTTP_HEADER_TIMEOUT), as on daphne.
                http=HeaderDeadlineH11Protocol,
                timeout_keep_alive=max(1, math.ceil(settings.HTTP_HEADER_TIMEOUT)),
                ws="websockets-sansio",
                ws_max_size=transport,
                ws_ping_interval=heartbeat,
                ws_ping_timeout=heartbeat,
                proxy_headers=proxy_headers,
                # daphne's --proxy-headers trusts the proxy whatever its address; so does this.
                forwarded_allow_ips="*" if proxy_headers else None,
                lifespan="off",
                access_log=False,
                log_level="warning",
                timeout_graceful_shutdown=max(1, math.ceil(shutdown.timeout())),
            )
            server = GracefulServer(config)
            server.run()
            if not server.drained:
                raise CommandError(self._not_drained())
            return

        from realtime.daphne_server import Daphne

        argv = ["-b", host, "-p", str(port)]
        argv += ["--ping-interval", str(heartbeat), "--ping-timeout", str(heartbeat)]
        # Consumers refresh group membership every heartbeat, so sockets may live for days.
        argv += ["--websocket_timeout", "-1"]
        argv += ["--websocket-max-message-size", str(transport), "--websocket-max-frame-size", str(transport)]
        if proxy_headers:
            argv.append("--proxy-headers")
        daphne = Daphne()
        daphne.run([*argv, APPLICATION])
        if not daphne.server.drained:
            raise CommandError(self._not_drained())

    @staticmethod
    def _not_drained() -> str:
        return (
            f"Stopped with requests or socket writes still running after {shutdown.timeout():g} s "
            "(REALTIME_SHUTDOWN_TIMEOUT): whatever they had not committed was rolled back."
        )
