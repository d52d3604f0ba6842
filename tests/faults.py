"""Fault injection for end-to-end tests: tools.faults (a throwaway Redis server, a TCP proxy that can
be cut), with the servers' logs under test-results/servers/."""

from __future__ import annotations

from pathlib import Path

from tests.servers import LOG_DIR
from tools import faults
from tools.faults import TcpProxy, read_log

__all__ = ["RedisServer", "TcpProxy", "read_log"]


class RedisServer(faults.RedisServer):
    """tools.faults.RedisServer, logging where the other test servers log."""

    def __init__(self, port: int | None = None, *, log_dir: Path | None = None):
        super().__init__(port, log_dir=log_dir or LOG_DIR)
