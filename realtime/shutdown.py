"""A graceful stop (SIGTERM, or Ctrl-C), the same on daphne and uvicorn: its order, bound and last resort.

The order: stop listening -> close every socket with 1012 (Service Restart: its client reconnects
at once, elsewhere, and resumes with ?since) -> wait until the requests and socket writes in flight
have finished, at most SHUTDOWN_TIMEOUT seconds -> only then stop the event loop.

Why the loop must outlive the work: a sync view (a scan saved over REST, /health) runs in a worker
thread and reaches back into the server's loop with `async_to_sync` (the post-commit publish, the
channel-layer check). asgiref schedules that call on the loop and waits for it; on a loop that has
stopped, the call is never run, so the thread waits forever, and so does the interpreter's exit,
which joins every worker thread. daphne used to cancel the applications and stop the loop first.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading

from django.utils.translation import gettext as _

from .conf import realtime_settings

logger = logging.getLogger("realtime.shutdown")

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
# After the drain's timeout, how long the server may take to stop and the interpreter to exit.
EXIT_GRACE_SECONDS = 5.0


def timeout() -> float:
    """Seconds the work in flight may take to finish once the instance stops listening."""
    return max(0.0, float(realtime_settings.SHUTDOWN_TIMEOUT))


def abandoned_response() -> tuple[list[tuple[bytes, bytes]], bytes]:
    """Headers and body of the 503 a request still unanswered at the timeout gets (DRF's shape).

    In the site's language: the request's own is not at hand here. Nothing was confirmed; a write
    sent again with its id (a scan's `scanData.id`) is stored once whatever became of this one.
    """
    body = json.dumps(
        {
            "detail": _("El servidor se reinició antes de terminar; no se confirmó nada. Envíalo de nuevo."),
            "code": "unavailable",
        },
        ensure_ascii=False,
    ).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"retry-after", b"5"),
        (b"connection", b"close"),
    ]
    return headers, body


def exit_if_stuck() -> None:
    """Called as the stop begins: end the process (status 1) if it has not exited by the drain's
    timeout plus EXIT_GRACE_SECONDS.

    The last resort, for a worker thread still busy past the timeout (a write held by a lock): a
    request cancelled by the server waits for its thread (asgiref's ThreadSensitiveContext joins
    it), and so does the interpreter's exit. Its transaction, never committed, is rolled back by the
    database; its client got no answer, so nothing it was told is lost.
    """
    grace = timeout() + EXIT_GRACE_SECONDS

    def give_up() -> None:
        busy = [t.name for t in threading.enumerate() if t is not threading.current_thread() and not t.daemon]
        logger.error("Still not exited %.0f s after the stop began (threads: %s): exiting now", grace, busy)
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        os._exit(1)

    timer = threading.Timer(grace, give_up)
    timer.daemon = True
    timer.start()
