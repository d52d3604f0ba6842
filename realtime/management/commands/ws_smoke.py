"""`manage.py ws_smoke`: a thin wrapper; the smoke check lives outside the product app (tools/loadtest)."""

from tools.loadtest.smoke_command import Command

__all__ = ["Command"]
