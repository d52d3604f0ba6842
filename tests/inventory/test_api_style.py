"""One API style: every REST JSON body is camelCase with the socket's types, and every response is typed.

A tour of the endpoints (successes and errors) collects every JSON body; each key must be camelCase
and each `month` a string, as on the socket. The scan has one shape on REST and on the socket, and the
OpenAPI schema types every JSON response (schemathesis can check only what it types).
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from inventory import selectors, services
from inventory.access import Room
from inventory.models import CODE_MAX_LENGTH
from realtime import protocol

from .reconciliation_helpers import BOOKS, csv_bytes

pytestmark = pytest.mark.django_db

CAMEL = re.compile(r"^[a-z][a-zA-Z0-9]*$")
# Maps whose keys are data, not names: error codes, rejection reasons, room keys.
DATA_KEYS = {"errorsByCode", "rejections", "roomPingLatencyMs"}
SCAN_KEYS = ["code", "user", "timestamp", "id", "userId", "match"]


def not_camel(body: Any, path: str = "") -> list[str]:
    """The paths of every key of `body` that is not camelCase."""
    found = []
    if isinstance(body, dict):
        for key, value in body.items():
            if not CAMEL.match(str(key)):
                found.append(f"{path}.{key}")
            if key not in DATA_KEYS:
                found += not_camel(value, f"{path}.{key}")
    elif isinstance(body, list):
        for index, item in enumerate(body):
            found += not_camel(item, f"{path}[{index}]")
    return found


def months(body: Any) -> list[Any]:
    """Every value under a `month` key in `body` (not a field error's messages)."""
    if isinstance(body, dict):
        named = [v for k, v in body.items() if k == "month" and not isinstance(v, list)]
        return named + [m for v in body.values() for m in months(v)]
    if isinstance(body, list):
        return [m for item in body for m in months(item)]
    return []


@pytest.fixture
def bodies(api_for, alfa, ana, staff, manager) -> dict[str, Any]:
    """Every JSON body a tour of the API answers, by what was asked."""
    member, admin, boss = api_for(ana), api_for(staff), api_for(manager)
    room = {"agency": "Alfa Romeo", "month": "10", "year": 2025}
    seen: dict[str, Any] = {}

    def call(name, client, method, url, data=None, **kwargs):
        response = getattr(client, method)(url, data, format="json", **kwargs)
        if response.get("Content-Type", "").startswith("application/json"):
            seen[name] = response.json()
        return response

    opened = call("inventory open", member, "post", "/api/inventories/", room)
    inventory_id = opened.json()["id"]
    call("inventory open, int month", member, "post", "/api/inventories/", {**room, "month": 10})
    call("save-scan", member, "post", "/api/inventory/save-scan", {**room, "scanData": {"code": "ABC-1"}})
    call("save-scan again", member, "post", "/api/inventory/save-scan", {**room, "code": "abc-1"})
    call("save-scan invalid", member, "post", "/api/inventory/save-scan", {"agency": "Alfa Romeo"})
    call("save-scan too long", member, "post", "/api/inventory/save-scan", {**room, "code": "X" * 65})
    call("token refused", api_for(), "post", "/api/auth/token/", {"username": "ana", "password": "no"})
    call("inventories", member, "get", "/api/inventories/")
    call("inventory", member, "get", f"/api/inventories/{inventory_id}/")
    call("scans", member, "get", f"/api/inventories/{inventory_id}/scans/")
    call("agencies", admin, "get", "/api/agencies/")
    call("agency", admin, "get", "/api/agencies/alfa-romeo/")
    call("agency edited", admin, "patch", "/api/agencies/alfa-romeo/", {"isActive": True})
    call("room-info", member, "get", "/api/inventory/websocket/room-info/Alfa%20Romeo/10/2025")
    call("websocket metrics", admin, "get", "/api/inventory/websocket/metrics")
    call("health", api_for(), "get", "/health")
    call("health detailed", admin, "get", "/health/detailed")
    call("not found", member, "get", "/api/nowhere/")

    inventory = selectors.inventory_find(Room(alfa, 10, 2025))
    upload = SimpleUploadedFile("libros.csv", csv_bytes(BOOKS), content_type="text/csv")
    imported = boss.post(f"/api/inventories/{inventory_id}/expected/", {"file": upload}, format="multipart")
    seen["expected import"] = imported.json()
    call("save-scan unexpected", member, "post", "/api/inventory/save-scan", {**room, "code": "UNLISTED-1"})
    call("expected", boss, "get", f"/api/inventories/{inventory_id}/expected/")
    call("progress", member, "get", f"/api/inventories/{inventory_id}/progress/")
    call("exceptions", boss, "get", f"/api/inventories/{inventory_id}/exceptions/")
    explanation = {"code": "UNLISTED-1", "reason": "other", "note": "demo"}
    call("exceptions explained", boss, "put", f"/api/inventories/{inventory_id}/exceptions/", explanation)
    call("report", boss, "get", f"/api/inventories/{inventory_id}/report/")
    call("delete-scan", member, "delete", "/api/inventory/delete-scanned-entry", {**room, "code": "ABC-1"})
    call("expected cleared", boss, "delete", f"/api/inventories/{inventory_id}/expected/")
    call("finish-session", member, "post", "/api/inventory/finish-session", room)
    call("scan refused, completed", member, "post", "/api/inventory/save-scan", {**room, "code": "LATE"})
    assert inventory.pk == inventory_id
    return seen


def test_every_json_key_the_api_answers_is_camel_case(bodies):
    assert len(bodies) >= 29, sorted(bodies)
    offending = {name: keys for name, body in bodies.items() if (keys := not_camel(body))}
    assert offending == {}


def test_month_is_a_string_in_every_body_as_on_the_socket(bodies):
    found = {name: months(body) for name, body in bodies.items() if months(body)}
    assert {"inventory", "inventories", "room-info", "report", "finish-session"} <= set(found)
    assert all(isinstance(month, str) for values in found.values() for month in values), found


def test_the_inventory_reads_in_camel_case(bodies):
    inventory = bodies["inventory"]
    assert list(inventory) == [
        "id",
        "agency",
        "agencySlug",
        "month",
        "year",
        "room",
        "status",
        "scanCount",
        "createdAt",
        "completedAt",
        "completedBy",
        "lastSeq",
    ]
    assert (inventory["month"], inventory["year"], inventory["agencySlug"]) == ("10", 2025, "alfa-romeo")
    done = bodies["finish-session"]
    assert done["completedBy"] == "Ana García" and done["completedAt"].endswith("Z")


def test_the_code_is_limited_by_the_models_constant(bodies, api_for, ana, alfa):
    assert bodies["save-scan too long"]["code"] == [
        f"El código no puede tener más de {CODE_MAX_LENGTH} caracteres."
    ]
    room = {"agency": "Alfa Romeo", "month": "11", "year": 2025}  # October is completed
    padded = " " * 10 + "Y" * CODE_MAX_LENGTH + " " * 10  # the services trim it first
    response = api_for(ana).post("/api/inventory/save-scan", {**room, "code": padded}, format="json")
    assert response.status_code == 201 and response.json()["code"] == "Y" * CODE_MAX_LENGTH


def test_rest_and_the_socket_share_one_scan_shape(bodies, alfa, ana):
    saved = bodies["save-scan"]
    assert list(saved) == [*SCAN_KEYS, "inventoryId"]
    assert [list(scan) for scan in bodies["scans"]["results"]] == [[*SCAN_KEYS, "inventoryId"]]
    unexpected = bodies["exceptions"]["unexpected"][0]
    assert list(unexpected)[: len(SCAN_KEYS)] == SCAN_KEYS and unexpected["user"] == "Ana García"

    inventory = services.inventory_get_or_open(room=Room(alfa, 11, 2025))
    scan = services.scan_record(inventory=inventory, user=ana, code="SHAPE-1").scan
    assert list(selectors.scan_data(scan)) == SCAN_KEYS
    snapshot = protocol.snapshot(inventory, [scan], seq=inventory.last_seq)
    assert snapshot["data"]["scans"] == [selectors.scan_data(scan)]
    added = protocol.scan_added(scan)["data"]
    # The message carries the match beside the scan (protocol v1's scanData, with id and userId).
    assert added["scanData"] == {k: v for k, v in selectors.scan_data(scan).items() if k != "match"}
    assert "match" in added
    rest = {k: v for k, v in bodies["save-scan"].items() if k != "inventoryId"}
    assert set(rest) == set(selectors.scan_data(scan))
    uuid.UUID(rest["id"])


def test_the_openapi_schema_types_every_json_response(api_for):
    schema = api_for().get(reverse("schema"), {"format": "json"}).json()
    components = schema["components"]["schemas"]
    untyped = []
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for status, response in operation.get("responses", {}).items():
                for media, content in response.get("content", {}).items():
                    if "json" in media and not _typed(content.get("schema", {}), components):
                        untyped.append(f"{method.upper()} {path} {status}")
    assert untyped == []


def _typed(schema: dict, components: dict) -> bool:
    """A schema names its properties (or is a list or choice of such schemas)."""
    if "$ref" in schema:
        return _typed(components[schema["$ref"].rsplit("/", 1)[-1]], components)
    if schema.get("type") == "array":
        return _typed(schema.get("items", {}), components)
    if "oneOf" in schema or "anyOf" in schema:
        return all(_typed(option, components) for option in schema.get("oneOf", schema.get("anyOf")))
    if schema.get("type") == "object" or not schema:
        # FieldErrors (each invalid field with its messages) is the one open map, and only for errors.
        return (
            bool(schema.get("properties"))
            or schema.get("description") == "Each invalid field with its messages."
        )
    return True
