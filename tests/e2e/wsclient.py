"""Room URLs and HTTP calls for end-to-end tests; the WebSocket client is tools/liveclient.py."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from urllib.parse import quote

from tools import liveclient
from tools.liveclient import CHATTER


class LiveClient(liveclient.LiveClient):
    """The reference client, checking every message it reads against protocol v1 (realtime.wire)."""

    checked = True


__all__ = ["CHATTER", "LiveClient", "ahttp", "health_status", "http", "post_scan", "room_url"]


def room_url(server, agency="Alfa Romeo", month="10", year="2025", query="") -> str:
    url = server.ws(f"/ws/inventory/{quote(agency)}/{month}/{year}")
    return f"{url}?{query}" if query else url


# Blocking HTTP calls: from async tests, use `ahttp` (or asyncio.to_thread).


def http(server, method, path, body=None, token=None, headers=None, timeout=15.0):
    """Call the server; (status, JSON or text), or (None, why) when it does not answer."""
    request = urllib.request.Request(
        server.http + path,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={
            "Content-Type": "application/json",
            **({"Authorization": f"Token {token}"} if token else {}),
            **(headers or {}),
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    except (OSError, TimeoutError) as error:  # refused, reset or timed out: no answer
        return None, repr(error)
    try:
        return status, json.loads(raw or b"null")
    except ValueError:
        return status, raw.decode(errors="replace")


async def ahttp(*args, **kwargs):
    return await asyncio.to_thread(http, *args, **kwargs)


def post_scan(server, code: str, token: str) -> int:
    """POST /api/inventory/save-scan into Alfa Romeo 10/2025; the status."""
    body = {"agency": "Alfa Romeo", "month": "10", "year": 2025, "scanData": {"code": code}}
    return http(server, "POST", "/api/inventory/save-scan", body, token, timeout=10)[0]


def health_status(server) -> int:
    return http(server, "GET", "/health", timeout=5)[0]
