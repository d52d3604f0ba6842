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

import logging
import os
import signal
import sys
import threading

from .conf import realtime_settings

logger = logging.getLogger("realtime.shutdown")

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
# After the server has returned, how long the interpreter may take to exit (join its threads).
EXIT_GRACE_SECONDS = 5.0


def timeout() -> float:
    """Seconds the work in flight may take to finish once the instance stops listening."""
    return max(0.0, float(realtime_settings.SHUTDOWN_TIMEOUT))


def exit_if_stuck(grace: float = EXIT_GRACE_SECONDS) -> None:
    """End the process (status 1) if it has not exited `grace` seconds from now.

    The last resort once the server has returned: a worker thread still busy past the timeout
    (abandoned by the drain) would otherwise hold the interpreter's exit forever. Its transaction,
    never committed, is rolled back by the database; its client got no answer, so nothing it was
    told is lost.
    """

    def give_up() -> None:
        busy = [t.name for t in threading.enumerate() if t is not threading.current_thread() and not t.daemon]
        logger.error("Still not exited %.0f s after stopping (threads: %s): exiting now", grace, busy)
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        os._exit(1)

    timer = threading.Timer(grace, give_up)
    timer.daemon = True
    timer.start()
