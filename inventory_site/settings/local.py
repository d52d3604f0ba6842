"""Development on one machine: `make run`. DEBUG is on unless the environment turns it off."""

import os

from .base import *  # noqa: F403

# Also on for protocol v1's `DEBUG=websocket:*` (which only adds the realtime debug output).
DEBUG = os.environ.get("DEBUG", "true").lower() not in {"0", "false", "no", "off"}
