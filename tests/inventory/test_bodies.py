"""Bad request bodies get DRF-shaped 4xx answers, never a 500, and are logged without a traceback."""

import logging

import pytest

from inventory import services
from inventory.access import Room

pytestmark = pytest.mark.django_db

# ~200 KB of JSON nested deeper than Python's json can decode.
DEEP_ARRAY = "[" * 100_000 + "]" * 100_000
DEEP_OBJECT = '{"a":' * 40_000 + "1" + "}" * 40_000


@pytest.fixture
def logged(caplog):
    """Every record of the loggers a request goes through (they do not propagate to the root)."""
    names = ["django", "django.request", "django.security", "inventory"]
    for name in names:
        logging.getLogger(name).addHandler(caplog.handler)
    yield caplog
    for name in names:
        logging.getLogger(name).removeHandler(caplog.handler)


@pytest.fixture
def inventory(alfa):
    return services.inventory_get_or_open(room=Room(alfa, 10, 2025))


def write_endpoints(inventory):
    return [
        ("post", "/api/auth/token/", None),
        ("post", "/api/inventory/save-scan", "staff"),
        ("post", "/api/inventory/finish-session", "staff"),
        ("delete", "/api/inventory/delete-scanned-entry", "staff"),
        ("post", "/api/agencies/", "staff"),
        ("post", f"/api/inventories/{inventory.pk}/expected/", "staff"),
        ("put", f"/api/inventories/{inventory.pk}/exceptions/", "staff"),
    ]


def assert_no_traceback(logged):
    assert not [r for r in logged.records if r.exc_info or r.levelno >= logging.ERROR], [
        (r.name, r.getMessage()) for r in logged.records
    ]


@pytest.mark.parametrize("body", [DEEP_ARRAY, DEEP_OBJECT], ids=["array", "object"])
def test_json_nested_too_deep_is_a_400_on_every_endpoint_anonymous_included(
    api_for, staff, inventory, logged, body
):
    for method, path, who in write_endpoints(inventory):
        client = api_for(staff if who else None)
        response = getattr(client, method)(path, body, content_type="application/json")

        assert response.status_code == 400, (path, response.status_code)
        assert response["Content-Type"] == "application/json", path
        assert "anidados" in response.json()["detail"], path
    assert_no_traceback(logged)


def test_a_body_over_the_size_limit_is_a_json_413(api_for, staff, inventory, logged, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    body = '{"username": "' + "a" * 20_000 + '", "password": "x"}'
    for method, path, who in write_endpoints(inventory):
        client = api_for(staff if who else None)
        response = getattr(client, method)(path, body, content_type="application/json")

        assert response.status_code == 413, (path, response.status_code)
        assert response.json() == {
            "detail": "La solicitud es demasiado grande: el máximo es 10000 bytes.",
            "code": "request_too_large",
        }, path
    # A form over the limit too.
    response = api_for().post("/api/auth/token/", {"username": "a" * 20_000, "password": "x"})
    assert response.status_code == 413 and response.json()["code"] == "request_too_large"
    assert_no_traceback(logged)
    assert any(r.name == "django.security.RequestDataTooBig" for r in logged.records)


def test_too_many_form_fields_is_a_json_400(api_for, logged, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 10
    response = api_for().post("/api/auth/token/", {f"f{i}": "x" for i in range(20)})

    assert response.status_code == 400
    assert response.json()["code"] == "too_many_fields"
    assert_no_traceback(logged)


def test_json_nested_within_reason_still_works(api_for, staff, inventory):
    nested = {"code": "NESTED-1", "extra": [[[[{"a": [1]}]]]]}
    response = api_for(staff).post(
        "/api/inventory/save-scan",
        {"agency": "Alfa Romeo", "month": 10, "year": 2025, "scanData": nested},
        format="json",
    )

    assert response.status_code == 201, response.content
