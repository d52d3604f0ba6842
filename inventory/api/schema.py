"""The OpenAPI schema's error responses: drf-spectacular documents successes; this adds the errors.

Every error the API answers has DRF's shape, made by inventory.api.exceptions.exception_handler:
`{"detail": ..., "code": ...}` (plus details such as `scannedBy`), or, for invalid fields,
`{"<field>": ["<message>", ...]}`.
"""

from __future__ import annotations

WRITE_METHODS = {"post", "put", "patch", "delete"}

ERROR = {
    "type": "object",
    "properties": {
        "detail": {"type": "string", "description": "What went wrong, in the user's language."},
        "code": {"type": "string", "description": "Machine-readable: not_found, duplicate_scan..."},
    },
    "required": ["detail"],
    "additionalProperties": True,
}
FIELD_ERRORS = {
    "type": "object",
    "description": "Each invalid field with its messages.",
    "additionalProperties": True,
}
RESPONSES = {
    "400": ("Invalid input: the fields and what is wrong with each.", "ErrorOrFieldErrors"),
    "401": ("No valid credentials (token or session).", "Error"),
    "403": ("Not allowed: not a member of the agency, or not staff.", "Error"),
    "404": ("No such object, or not visible to you.", "Error"),
    "409": ("Conflicts with the current state: a duplicate scan, a completed one.", "Error"),
    "429": ("Too many requests: retry after the Retry-After header.", "Error"),
    "503": (
        "A store is unavailable (code database_unavailable: the database, nothing was saved; code "
        "unavailable: the live service, Redis): retry after the Retry-After header.",
        "Error",
    ),
}


def _statuses(path: str, method: str, operation: dict) -> list[str]:
    statuses = ["400"] if operation.get("parameters") or operation.get("requestBody") else []
    if {} not in operation.get("security", [{}]):  # authentication required
        statuses += ["401", "403"]
    if "{" in path or operation.get("parameters") or operation.get("requestBody"):
        statuses.append("404")  # what the path, the query or the body names may not exist
    if method in WRITE_METHODS:
        statuses += ["409", "429"]
    statuses.append("503")
    return statuses


def document_errors(result, generator, request, public):
    """POSTPROCESSING_HOOKS entry: add the error responses each operation can answer."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas["Error"] = ERROR
    schemas["FieldErrors"] = FIELD_ERRORS
    schemas["ErrorOrFieldErrors"] = {
        "anyOf": [{"$ref": "#/components/schemas/Error"}, {"$ref": "#/components/schemas/FieldErrors"}]
    }
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            for status in _statuses(path, method, operation):
                if status in responses:
                    continue
                description, schema = RESPONSES[status]
                responses[status] = {
                    "description": description,
                    "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
                }
    return result


# OpenAPI links: what a response lets a client do next with what it names. Documented for clients,
# and followed by the stateful schema test (tests/inventory/test_schema.py); schemathesis
# infers the plain ones (an inventory's `id` into `/api/inventories/{id}/...`) by itself.
_THE_SCAN = {
    "agency": "$request.body#/agency",
    "month": "$request.body#/month",
    "year": "$request.body#/year",
    "scanData": {"code": "$response.body#/code", "id": "$response.body#/id"},
}
_ITS_ROOM = {
    "agency": "$response.body#/agency",
    "month": "$response.body#/month",
    "year": "$response.body#/year",
}
LINKS = {
    ("/api/inventory/save-scan", "post", "201"): {
        "RemoveTheScan": (
            "api_inventory_delete_scanned_entry_destroy",
            _THE_SCAN,
            "Remove the scan just saved.",
        ),
        "RetryTheScan": (
            "api_inventory_save_scan_create",
            _THE_SCAN,
            "Send it again: answered 200, counted once.",
        ),
    },
    ("/api/inventory/delete-scanned-entry", "delete", "200"): {
        "RetryTheRemoval": (
            "api_inventory_delete_scanned_entry_destroy",
            _THE_SCAN,
            "Remove it again by its id: answered 200, changes nothing.",
        ),
        "ScanTheRemovedIdAgain": (
            "api_inventory_save_scan_create",
            _THE_SCAN,
            "Send the removed scan again: 409, it stays removed.",
        ),
    },
    ("/api/inventories/", "post", "201"): {
        "ScanInIt": ("api_inventory_save_scan_create", _ITS_ROOM, "Count a vehicle in the inventory opened."),
        "FinishIt": ("api_inventory_finish_session_create", _ITS_ROOM, "Complete the inventory opened."),
    },
}


def document_links(result, generator, request, public):
    """POSTPROCESSING_HOOKS entry: add LINKS to the responses they start from."""
    paths = result.get("paths", {})
    for (path, method, status), links in LINKS.items():
        response = paths.get(path, {}).get(method, {}).get("responses", {}).get(status)
        if response is None:
            continue
        response["links"] = {
            name: {"operationId": target, "requestBody": body, "description": description}
            for name, (target, body, description) in links.items()
        }
    return result
