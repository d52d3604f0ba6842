"""The few blocking REST calls the operator commands make before or after their sockets."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlencode


class ApiError(Exception):
    """A REST call failed; the message says how, for the operator."""


def call(base_url: str, token: str, method: str, path: str, payload: Any = None, timeout: float = 10) -> Any:
    data = json.dumps(payload).encode() if payload is not None else None
    request = urllib.request.Request(
        f"{base_url}{path}",
        data=data,
        method=method,
        headers={"Authorization": f"Token {token}", "Accept": "application/json"}
        | ({"Content-Type": "application/json"} if data else {}),
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", "replace")[:200]
        raise ApiError(f"{method} {path}: HTTP {exc.code} {detail}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ApiError(f"{method} {path}: cannot reach {base_url} ({reason})") from None
    return json.loads(body) if body else None


def first_agency(base_url: str, token: str) -> str:
    """The name of the first agency the token's user can see (GET /api/agencies/)."""
    body = call(base_url, token, "GET", "/api/agencies/?" + urlencode({"limit": 1}))
    agencies = body.get("results", []) if isinstance(body, dict) else body or []
    if not agencies:
        raise ApiError("the token's user sees no agency: pass --agency")
    return agencies[0]["name"]


def scan_delete(base_url: str, token: str, *, agency: str, month: int, year: int, code: str) -> None:
    """Remove a scan through the API (DELETE /api/inventory/delete-scanned-entry)."""
    call(
        base_url,
        token,
        "DELETE",
        "/api/inventory/delete-scanned-entry",
        {"agency": agency, "month": str(month), "year": year, "code": code},
    )


def inventories_of(base_url: str, token: str, *, agency: str) -> dict[tuple[int, int], int]:
    """The agency's inventories the token's user sees, (month, year) -> id (GET /api/inventories/)."""
    query = urlencode({"agency": agency, "limit": 1000})
    body = call(base_url, token, "GET", f"/api/inventories/?{query}")
    results = body.get("results", []) if isinstance(body, dict) else body or []
    return {(int(item["month"]), int(item["year"])): item["id"] for item in results}  # month is "10"


def inventory_delete(base_url: str, token: str, inventory_id: int) -> None:
    """Delete an inventory without scans (DELETE /api/inventories/{id}/: the delete_inventory permission)."""
    call(base_url, token, "DELETE", f"/api/inventories/{inventory_id}/")
