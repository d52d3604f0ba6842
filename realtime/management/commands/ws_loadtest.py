"""`manage.py ws_loadtest`: a thin wrapper; the load test (tools/loadtest) lives outside the product app."""

from tools.loadtest.command import Command

__all__ = ["Command"]
