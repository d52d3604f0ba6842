import json
import uuid

import pytest
from django.urls import reverse

from inventory import services
from inventory.access import Room
from inventory.models import Agency, Inventory, Scan

pytestmark = pytest.mark.django_db

SAVE = "/api/inventory/save-scan"
FINISH = "/api/inventory/finish-session"
DELETE = "/api/inventory/delete-scanned-entry"


def scan_body(code="BARCODE123", agency="Alfa Romeo", month="10", year=2025, **scan):
    """Protocol v1's scan_added `data` object."""
    return {
        "agency": agency,
        "month": month,
        "year": year,
        "userId": "spoofed",
        "userName": "Someone Else",
        "scanData": {"code": code, "user": "Someone Else", "timestamp": "2025-01-15T10:30:00.000Z", **scan},
    }


def test_token_is_issued_for_valid_credentials(api_for, ana):
    response = api_for().post("/api/auth/token/", {"username": "ana", "password": "secret-pass-123"})
    assert response.status_code == 200
    assert len(response.json()["token"]) == 40


def test_token_is_refused_for_a_wrong_password(api_for, ana):
    response = api_for().post("/api/auth/token/", {"username": "ana", "password": "nope"})
    assert response.status_code == 400
    assert "nonFieldErrors" in response.json()


def test_a_revoked_token_no_longer_works(api_for, ana):
    client = api_for(ana)
    assert client.delete("/api/auth/token/").status_code == 204
    assert client.get("/api/agencies/").status_code == 401


def test_save_scan_stores_the_scan_as_the_authenticated_user(api_for, ana):
    response = api_for(ana).post(SAVE, scan_body(), format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["code"] == "BARCODE123"
    assert body["user"] == "Ana García"  # not the spoofed userName
    assert body["timestamp"] == "2025-01-15T10:30:00.000Z"
    scan = Scan.objects.get()
    assert scan.scanned_by.username == "ana"
    assert scan.inventory.room_key == "Alfa Romeo/10/2025"
    # Ids are strings, as the protocol carries them.
    assert (body["inventoryId"], body["userId"]) == (str(scan.inventory_id), str(scan.scanned_by_id))


@pytest.mark.parametrize("typed", ["Peugeot Queretaro", "peugeot queretaro", "PEUGEOT QUERETARO"])
def test_an_agency_name_typed_without_its_accents_is_found(api_for, ana, peugeot, typed):
    response = api_for(ana).post(SAVE, scan_body(agency=typed), format="json")
    assert response.status_code == 201, response.json()
    assert Scan.objects.get().inventory.agency == peugeot


@pytest.mark.parametrize("agency", ["Alfa Romeo", "alfa romeo", "alfa-romeo"])
def test_agency_is_matched_by_name_in_any_case_or_by_slug(api_for, ana, agency):
    assert api_for(ana).post(SAVE, scan_body(agency=agency), format="json").status_code == 201


def test_save_scan_accepts_code_at_top_level_and_the_whole_message(api_for, ana):
    client = api_for(ana)
    top = {"agency": "Peugeot Querétaro", "month": 3, "year": "2026", "code": "VIN-1"}
    assert client.post(SAVE, top, format="json").status_code == 201
    message = {"type": "scan_added", "data": scan_body(code="VIN-2")}
    assert client.post(SAVE, message, format="json").status_code == 201
    assert set(Scan.objects.values_list("code", flat=True)) == {"VIN-1", "VIN-2"}
    assert Inventory.objects.filter(agency__name="Peugeot Querétaro", month=3, year=2026).exists()


def test_duplicate_scan_is_409_naming_the_first_scanner(api_for, ana, luis):
    api_for(ana).post(SAVE, scan_body(), format="json")
    response = api_for(luis).post(SAVE, scan_body(), format="json")
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "duplicate_scan"
    assert body["scannedBy"] == "Ana García"
    assert "Ana García" in body["detail"]
    assert Scan.objects.count() == 1


def test_idempotency_key_header_stores_a_retried_scan_once(api_for, ana):
    client = api_for(ana)
    key = str(uuid.uuid4())
    first = client.post(SAVE, scan_body(), format="json", HTTP_IDEMPOTENCY_KEY=key)
    again = client.post(SAVE, scan_body(), format="json", HTTP_IDEMPOTENCY_KEY=key)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json() == again.json()
    assert first.json()["id"] == key
    assert Scan.objects.count() == 1


@pytest.mark.parametrize(
    "body,field",
    [
        (scan_body(code=""), "code"),
        (scan_body(code="x" * 65), "code"),
        (scan_body(month="13"), "month"),
        (scan_body(month="octubre"), "month"),
        (scan_body(year=1900), "year"),
        ({"agency": "Alfa Romeo", "month": "10", "year": 2025}, "code"),
        ({"month": "10", "year": 2025, "code": "A"}, "agency"),
        (scan_body(id="not-a-uuid"), "scanData"),
        (scan_body(timestamp="yesterday"), "timestamp"),
    ],
)
def test_bad_input_is_400_with_the_field_and_writes_nothing(api_for, ana, body, field):
    response = api_for(ana).post(SAVE, body, format="json")
    assert response.status_code == 400
    assert field in json.dumps(response.json())
    assert not Scan.objects.exists()


def test_unknown_agency_is_404(api_for, ana):
    response = api_for(ana).post(SAVE, scan_body(agency="Ferrari"), format="json")
    assert response.status_code == 404
    assert response.json()["code"] == "agency_not_found"


def test_another_agency_is_404_as_if_unknown_and_writes_nothing(api_for, outsider, ana):
    response = api_for(outsider).post(SAVE, scan_body(), format="json")
    unknown = api_for(outsider).post(SAVE, scan_body(agency="Ferrari"), format="json")
    assert response.status_code == unknown.status_code == 404
    assert response.json() == {**unknown.json(), "detail": "No existe la agencia «Alfa Romeo»."}
    assert not Scan.objects.exists()


def test_staff_may_scan_in_any_agency(api_for, staff, alfa):
    assert api_for(staff).post(SAVE, scan_body(), format="json").status_code == 201


def test_anonymous_is_401(api_for, alfa):
    assert api_for().post(SAVE, scan_body(), format="json").status_code == 401


def test_finish_session_completes_once_then_409(api_for, ana, luis):
    api_for(ana).post(SAVE, scan_body(), format="json")
    response = api_for(luis).post(
        FINISH, {"agency": "Alfa Romeo", "month": "10", "year": 2025}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["status"] == "completed"
    assert response.json()["completedBy"] == "Luis Pérez"
    assert response.json()["scanCount"] == 1
    again = api_for(ana).post(FINISH, {"agency": "Alfa Romeo", "month": "10", "year": 2025}, format="json")
    assert again.status_code == 409
    assert again.json()["completedBy"] == "Luis Pérez"
    late = api_for(ana).post(SAVE, scan_body(code="LATE"), format="json")
    assert late.status_code == 409
    assert late.json()["code"] == "inventory_completed"


def test_finish_session_of_a_room_never_opened_is_404(api_for, ana):
    response = api_for(ana).post(FINISH, {"agency": "Alfa Romeo", "month": "1", "year": 2024}, format="json")
    assert response.status_code == 404


def test_delete_scanned_entry_by_body_or_query(api_for, ana):
    client = api_for(ana)
    client.post(SAVE, scan_body(code="A1"), format="json")
    client.post(SAVE, scan_body(code="A2"), format="json")
    by_body = client.delete(
        DELETE, {"agency": "Alfa Romeo", "code": "A1", "month": "10", "year": 2025}, format="json"
    )
    assert by_body.status_code == 200 and by_body.json()["code"] == "A1"
    by_query = client.delete(f"{DELETE}?agency=Alfa%20Romeo&code=A2")
    assert by_query.status_code == 200, by_query.json()
    assert not Scan.objects.exists()


def test_delete_without_month_and_year_uses_the_open_inventory(api_for, ana, alfa):
    done = services.inventory_get_or_open(room=Room(alfa, 9, 2025))
    services.scan_record(inventory=done, user=ana, code="OLD")
    services.inventory_complete(inventory=done, user=ana)
    api_for(ana).post(SAVE, scan_body(code="OLD"), format="json")
    response = api_for(ana).delete(DELETE, {"agency": "Alfa Romeo", "code": "OLD"}, format="json")
    assert response.status_code == 200
    assert Scan.objects.filter(inventory=done).count() == 1
    assert not Scan.objects.filter(inventory__month=10).exists()


def test_delete_without_month_and_year_finds_the_open_inventory_that_counted_the_code(api_for, ana, alfa):
    october = services.inventory_get_or_open(room=Room(alfa, 10, 2025))
    services.scan_record(inventory=october, user=ana, code="IN-OCTOBER")
    Inventory.objects.create(agency=alfa, month=6, year=2099)  # a later room opened before the month rule
    client = api_for(ana)
    response = client.delete(DELETE, {"agency": "Alfa Romeo", "code": " IN-OCTOBER "}, format="json")
    assert response.status_code == 200, response.json()
    assert not Scan.objects.filter(inventory=october).exists()
    gone = client.delete(DELETE, {"agency": "Alfa Romeo", "code": "IN-OCTOBER"}, format="json")
    assert gone.status_code == 404
    assert "ningún inventario abierto de Alfa Romeo" in gone.json()["detail"]


def test_delete_without_month_and_year_of_a_code_in_two_open_inventories_asks_which(api_for, ana, alfa):
    for month in (10, 11):
        inventory = services.inventory_get_or_open(room=Room(alfa, month, 2025))
        services.scan_record(inventory=inventory, user=ana, code="TWICE")
    response = api_for(ana).delete(DELETE, {"agency": "Alfa Romeo", "code": "TWICE"}, format="json")
    assert response.status_code == 400
    assert "Alfa Romeo/11/2025, Alfa Romeo/10/2025" in json.dumps(response.json(), ensure_ascii=False)
    assert Scan.objects.filter(code="TWICE").count() == 2


def test_delete_unknown_code_is_404_and_bad_input_400(api_for, ana):
    client = api_for(ana)
    client.post(SAVE, scan_body(code="A1"), format="json")
    assert client.delete(DELETE, {"agency": "Alfa Romeo", "code": "ZZ"}, format="json").status_code == 404
    assert client.delete(DELETE, {"agency": "Alfa Romeo"}, format="json").status_code == 400
    only_month = {"agency": "Alfa Romeo", "code": "A1", "month": "10"}
    assert client.delete(DELETE, only_month, format="json").status_code == 400
    assert Scan.objects.count() == 1


def test_delete_on_a_completed_inventory_is_409(api_for, ana):
    client = api_for(ana)
    client.post(SAVE, scan_body(code="A1"), format="json")
    client.post(FINISH, {"agency": "Alfa Romeo", "month": "10", "year": 2025}, format="json")
    response = client.delete(
        DELETE, {"agency": "Alfa Romeo", "code": "A1", "month": 10, "year": 2025}, format="json"
    )
    assert response.status_code == 409
    assert Scan.objects.count() == 1


def test_room_info_for_members_only(api_for, ana, outsider):
    api_for(ana).post(SAVE, scan_body(), format="json")
    url = "/api/inventory/websocket/room-info/Alfa%20Romeo/10/2025"
    response = api_for(ana).get(url)
    assert response.status_code == 200
    body = response.json()
    assert body["room"] == "Alfa Romeo/10/2025"
    assert body["scanCount"] == 1 and body["status"] == "open"
    assert body["connections"] == 0 and body["users"] == []
    assert api_for(outsider).get(url).status_code == 404
    assert api_for(outsider).get(url).json()["code"] == "agency_not_found"
    assert api_for(ana).get("/api/inventory/websocket/room-info/Ferrari/10/2025").status_code == 404
    assert api_for(ana).get("/api/inventory/websocket/room-info/Alfa%20Romeo/13/2025").status_code == 400


def test_metrics_and_detailed_health_are_for_superusers_and_not_members(api_for, ana, staff):
    assert api_for(ana).get("/api/inventory/websocket/metrics").status_code == 403
    assert api_for(ana).get("/health/detailed").status_code == 403
    metrics = api_for(staff).get("/api/inventory/websocket/metrics").json()
    assert {"activeConnections", "activeRooms", "messagesSent", "deliveryLatencyMs"} <= set(metrics)
    detailed = api_for(staff).get("/health/detailed")
    assert detailed.status_code == 200
    body = detailed.json()
    assert body["database"]["ok"] and body["channelLayer"]["ok"]
    assert "websocket" in body


def test_health_is_public(api_for, db):
    response = api_for().get("/health")
    assert response.status_code == 200 and response.json()["status"] == "ok"


def test_staff_create_an_agency_with_just_a_name(api_for, staff, ana):
    response = api_for(staff).post(
        "/api/agencies/", {"name": "Fiat Puebla", "members": ["ana"]}, format="json"
    )
    assert response.status_code == 201, response.json()
    assert response.json()["slug"] == "fiat-puebla"
    assert Agency.objects.get(slug="fiat-puebla").members.filter(username="ana").exists()
    dup = api_for(staff).post("/api/agencies/", {"name": "FIAT puebla"}, format="json")
    assert dup.status_code == 400 and "name" in dup.json()


def test_an_agency_whose_slug_is_taken_gets_the_next_free_one(api_for, staff):
    first = api_for(staff).post("/api/agencies/", {"name": "Fiat Centro"}, format="json")
    second = api_for(staff).post("/api/agencies/", {"name": "Fiat  centro!"}, format="json")
    assert [r.status_code for r in (first, second)] == [201, 201]
    assert [r.json()["slug"] for r in (first, second)] == ["fiat-centro", "fiat-centro-2"]
    assert api_for(staff).get("/api/agencies/fiat-centro-2/").json()["name"] == "Fiat  centro!"


def test_a_name_that_is_another_agencys_slug_is_refused(api_for, staff, alfa, ana):
    """Else `alfa-romeo` names two agencies, and the live page's scans go to the other one."""
    response = api_for(staff).post("/api/agencies/", {"name": "ALFA-romeo"}, format="json")
    assert response.status_code == 400
    assert response.json()["name"] == ["«ALFA-romeo» es el slug de otra agencia; elige otro nombre."]
    renamed = api_for(staff).patch("/api/agencies/peugeot-queretaro/", {"name": "alfa-romeo"}, format="json")
    assert renamed.status_code == 400 and "name" in renamed.json()
    made = api_for(staff).post("/api/agencies/", {"name": "Otra", "slug": "alfa-romeo"}, format="json")
    assert made.status_code == 400
    assert (
        api_for(staff).patch("/api/agencies/alfa-romeo/", {"name": "fiat"}, format="json").status_code == 200
    )
    reslugged = api_for(staff).patch("/api/agencies/peugeot-queretaro/", {"slug": "fiat"}, format="json")
    assert reslugged.status_code == 400
    assert reslugged.json()["slug"] == ["«fiat» es el nombre de otra agencia; elige otro slug."]
    assert Agency.objects.count() == 2
    # A name whose slug is another's name gets the next free slug instead.
    assert api_for(staff).post("/api/agencies/", {"name": "Fiat!"}, format="json").json()["slug"] == "fiat-2"


def test_the_agency_named_in_a_room_is_always_the_same_one(api_for, ana, alfa):
    """Name, any case, slug and the name without accents all reach one agency, or none."""
    peugeot = Agency.objects.get(slug="peugeot-queretaro")
    spellings = ("Peugeot Querétaro", "PEUGEOT QUERÉTARO", "peugeot-queretaro", "Peugeot Queretaro")
    for number, typed in enumerate(spellings):
        body = scan_body(code=f"C-{number}", agency=typed)
        assert api_for(ana).post(SAVE, body, format="json").status_code == 201
    assert set(Scan.objects.values_list("inventory__agency", flat=True)) == {peugeot.pk}


@pytest.mark.parametrize("name", ["Ram/Dodge", "!!!", "   "])
def test_an_agency_name_that_cannot_name_a_room_is_refused(api_for, staff, name):
    response = api_for(staff).post("/api/agencies/", {"name": name}, format="json")
    assert response.status_code == 400 and "name" in response.json()
    assert not Agency.objects.filter(name=name.strip()).exists()


@pytest.mark.parametrize("query", ["limit=99999999999999999999", "offset=99999999999999999999", "limit=0"])
def test_lists_answer_any_page_bounds(api_for, ana, alfa, query):
    services.inventory_get_or_open(room=Room(alfa, 10, 2025))
    response = api_for(ana).get(f"/api/inventories/?{query}")
    assert response.status_code == 200
    assert response.json()["count"] == 1


def test_members_see_only_their_agencies_and_cannot_edit(api_for, ana, luis, staff):
    names = [a["name"] for a in api_for(luis).get("/api/agencies/").json()["results"]]
    assert names == ["Alfa Romeo"]
    assert api_for(luis).post("/api/agencies/", {"name": "Nueva"}, format="json").status_code == 403
    assert api_for(luis).patch("/api/agencies/alfa-romeo/", {"name": "X"}, format="json").status_code == 403
    edited = api_for(staff).patch("/api/agencies/alfa-romeo/", {"isActive": False}, format="json")
    assert edited.status_code == 200 and edited.json()["isActive"] is False


def test_inventories_filter_and_scans_listing(api_for, ana, luis, alfa, peugeot):
    for month in (9, 10):
        inventory = services.inventory_get_or_open(room=Room(alfa, month, 2025))
        services.scan_record(inventory=inventory, user=ana, code=f"C{month}")
    services.inventory_get_or_open(room=Room(peugeot, 10, 2025))
    client = api_for(ana)
    assert client.get("/api/inventories/").json()["count"] == 3
    october = client.get("/api/inventories/", {"agency": "Alfa Romeo", "month": 10}).json()["results"]
    assert [(i["room"], i["scanCount"]) for i in october] == [("Alfa Romeo/10/2025", 1)]
    assert client.get("/api/inventories/", {"status": "completed"}).json()["count"] == 0
    scans = client.get(f"/api/inventories/{october[0]['id']}/scans/").json()["results"]
    assert [s["code"] for s in scans] == ["C10"]
    # luis is not a member of Peugeot: he sees only Alfa Romeo's inventories.
    assert api_for(luis).get("/api/inventories/").json()["count"] == 2
    peugeot_id = Inventory.objects.get(agency=peugeot).pk
    assert api_for(luis).get(f"/api/inventories/{peugeot_id}/").status_code == 404


def test_open_an_inventory_by_post(api_for, ana):
    body = {"agency": "Alfa Romeo", "month": "11", "year": 2025}
    assert api_for(ana).post("/api/inventories/", body, format="json").status_code == 201
    assert api_for(ana).post("/api/inventories/", body, format="json").status_code == 200


def test_session_authenticated_writes_require_csrf(client, ana, alfa):
    from django.test import Client

    browser = Client(enforce_csrf_checks=True)
    browser.force_login(ana)
    response = browser.post(SAVE, scan_body(), content_type="application/json")
    assert response.status_code == 403
    assert not Scan.objects.exists()


def test_schema_and_docs_are_served(api_for, db):
    schema = api_for().get(reverse("schema"))
    assert schema.status_code == 200
    assert b"/api/inventory/save-scan" in schema.content
    assert api_for().get(reverse("api-docs")).status_code == 200


def test_rest_writes_are_throttled_per_user(api_for, ana, luis, monkeypatch):
    from rest_framework.throttling import SimpleRateThrottle

    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {"scan_write": "2/min", "login": "5/min"})
    client = api_for(ana)
    statuses = [client.post(SAVE, scan_body(code=f"T{n}"), format="json").status_code for n in range(3)]
    assert statuses == [201, 201, 429]
    assert "detail" in client.post(SAVE, scan_body(code="T9"), format="json").json()
    assert api_for(luis).post(SAVE, scan_body(code="L1"), format="json").status_code == 201
    assert Scan.objects.count() == 3


def test_database_errors_answer_503_and_write_nothing(api_for, ana, monkeypatch):
    from django.db import OperationalError

    def unreachable(**kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr("inventory.services.scan_record", unreachable)
    response = api_for(ana).post(SAVE, scan_body(), format="json")
    assert response.status_code == 503
    assert response.json()["code"] == "database_unavailable"
    assert response["Retry-After"] == "5"


# A removed scan stays removed (issue 11, item 14) and DELETE takes protocol v1's shape (item 20).


def removal_body(code="BARCODE123", **scan):
    """Protocol v1's scan_removed `data` object, with month and year."""
    return {**scan_body(code=code, **scan)}


def test_a_late_retry_of_a_removed_scan_is_409_scan_removed(api_for, ana, luis):
    scan_id = str(uuid.uuid4())
    first = api_for(ana).post(SAVE, scan_body(code="LATE-1", id=scan_id), format="json")
    assert first.status_code == 201
    assert api_for(luis).delete(DELETE, removal_body(code="LATE-1"), format="json").status_code == 200
    # The first answer was lost on the way: the client sends the same scan again.
    late = api_for(ana).post(SAVE, scan_body(code="LATE-1", id=scan_id), format="json")
    assert late.status_code == 409, late.json()
    body = late.json()
    assert body["code"] == "scan_removed" and body["removedBy"] == "Luis Pérez"
    assert "LATE-1" in body["detail"]
    assert not Scan.objects.exists()
    by_header = api_for(ana).post(SAVE, scan_body(code="LATE-1"), format="json", HTTP_IDEMPOTENCY_KEY=scan_id)
    assert by_header.status_code == 409 and not Scan.objects.exists()


def test_delete_takes_protocol_v1s_scan_removed_data_and_whole_message(api_for, ana):
    client = api_for(ana)
    for code in ("DEL-1", "DEL-2", "DEL-3"):
        client.post(SAVE, scan_body(code=code), format="json")
    data = client.delete(DELETE, removal_body(code="DEL-1"), format="json")
    assert data.status_code == 200, data.json()
    assert data.json()["code"] == "DEL-1"
    message = client.delete(
        DELETE, {"type": "scan_removed", "data": removal_body(code="DEL-2")}, format="json"
    )
    assert message.status_code == 200, message.json()
    wrapped = client.delete(
        DELETE, {"data": {"agency": "Alfa Romeo", "scanData": {"code": "DEL-3"}}}, format="json"
    )
    assert wrapped.status_code == 200, wrapped.json()
    assert not Scan.objects.exists()


def test_delete_by_scan_id_never_removes_a_later_rescan_of_the_code(api_for, ana, luis):
    client = api_for(ana)
    first = client.post(SAVE, scan_body(code="RE-1"), format="json").json()
    removal = removal_body(code="RE-1", id=first["id"])
    assert client.delete(DELETE, removal, format="json").json()["id"] == first["id"]
    rescan = api_for(luis).post(SAVE, scan_body(code="RE-1"), format="json").json()
    # The removal's answer was lost; the client retries it, with and without month and year.
    again = client.delete(DELETE, removal, format="json")
    assert again.status_code == 200 and again.json()["id"] == first["id"]
    flat = client.delete(f"{DELETE}?agency=alfa-romeo&id={first['id']}")
    assert flat.status_code == 200 and flat.json()["code"] == "RE-1", flat.json()
    assert list(Scan.objects.values_list("uid", flat=True)) == [uuid.UUID(rescan["id"])]
    # By the re-scan's id it goes; by an id never stored nothing does.
    gone = client.delete(DELETE, {"agency": "Alfa Romeo", "scanData": {"id": rescan["id"]}}, format="json")
    assert gone.status_code == 200 and not Scan.objects.exists()
    unknown = client.delete(DELETE, {"agency": "Alfa Romeo", "id": str(uuid.uuid4())}, format="json")
    assert unknown.status_code == 404


def test_delete_with_a_bad_scan_id_or_neither_code_nor_id_is_400(api_for, ana):
    client = api_for(ana)
    client.post(SAVE, scan_body(code="KEEP"), format="json")
    bad_id = client.delete(DELETE, removal_body(code="KEEP", id="nope"), format="json")
    assert bad_id.status_code == 400 and "id" in bad_id.json()["scanData"]
    neither = client.delete(DELETE, {"agency": "Alfa Romeo", "scanData": {}}, format="json")
    assert neither.status_code == 400 and "code" in neither.json()
    other = client.post(SAVE, scan_body(code="OTHER"), format="json").json()
    mismatch = client.delete(DELETE, removal_body(code="KEEP", id=other["id"]), format="json")
    assert mismatch.status_code == 409 and mismatch.json()["code"] == "scan_id_conflict"
    assert Scan.objects.count() == 2


def test_the_schema_documents_protocol_v1s_removal_body(api_for, db):
    schema = api_for().get("/api/schema/?format=json").json()
    operation = schema["paths"]["/api/inventory/delete-scanned-entry"]["delete"]
    body = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    fields = schema["components"]["schemas"][body]["properties"]
    assert {"agency", "month", "year", "code", "id", "scanData"} <= set(fields)
    scan_data_ref = fields["scanData"].get("$ref") or fields["scanData"]["allOf"][0]["$ref"]
    scan_data = schema["components"]["schemas"][scan_data_ref.rsplit("/", 1)[-1]]
    assert {"code", "id"} <= set(scan_data["properties"])
    assert {"agency", "code", "id"} <= {parameter["name"] for parameter in operation["parameters"]}


# Staff powers follow Django permissions (issue 11, item 8).


@pytest.fixture
def clerk(make_user, alfa):
    """Staff (may log in to the admin) with no permission, a member of Alfa Romeo only."""
    user = make_user("clerk", agencies=[alfa])
    user.is_staff = True
    user.save()
    return user


def grant(user, *codenames):
    from django.contrib.auth.models import Permission

    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return type(user).objects.get(pk=user.pk)  # a fresh permission cache


def test_staff_without_permissions_is_just_a_member(api_for, clerk, alfa, peugeot):
    client = api_for(clerk)
    assert client.post("/api/agencies/", {"name": "Nueva"}, format="json").status_code == 403
    assert client.patch("/api/agencies/alfa-romeo/", {"name": "X"}, format="json").status_code == 403
    joined = client.patch("/api/agencies/alfa-romeo/", {"members": ["clerk", "ana"]}, format="json")
    assert joined.status_code == 403
    assert client.delete("/api/agencies/alfa-romeo/").status_code == 403
    assert [a["name"] for a in client.get("/api/agencies/").json()["results"]] == ["Alfa Romeo"]
    assert client.get("/api/agencies/peugeot-queretaro/").status_code == 404
    # Peugeot's rooms are somebody else's: unknown to the clerk, like to any outsider.
    other = {"agency": "Peugeot Querétaro", "month": "10", "year": 2025}
    assert client.post(SAVE, scan_body(agency="Peugeot Querétaro"), format="json").status_code == 404
    assert client.post(FINISH, other, format="json").status_code == 404
    assert client.post("/api/inventories/", other, format="json").status_code == 404
    assert Agency.objects.get(pk=alfa.pk).name == "Alfa Romeo" and Agency.objects.count() == 2
    assert not Inventory.objects.filter(agency=peugeot).exists()
    # Their own agency works as for any member.
    assert client.post(SAVE, scan_body(), format="json").status_code == 201


def test_each_agency_power_is_its_django_permission(api_for, clerk, alfa, peugeot):
    assert (
        api_for(grant(clerk, "add_agency"))
        .post("/api/agencies/", {"name": "Nueva"}, format="json")
        .status_code
        == 201
    )
    clerk = grant(clerk, "change_agency")
    edited = api_for(clerk).patch("/api/agencies/peugeot-queretaro/", {"members": ["clerk"]}, format="json")
    assert edited.status_code == 200, edited.json()
    assert api_for(clerk).delete("/api/agencies/nueva/").status_code == 403
    assert api_for(grant(clerk, "delete_agency")).delete("/api/agencies/nueva/").status_code == 204


def test_the_access_every_agency_permission_opens_every_room(api_for, make_user, alfa, peugeot):
    roamer = grant(make_user("roamer"), "access_every_agency")
    assert api_for(roamer).post(SAVE, scan_body(agency="Peugeot Querétaro"), format="json").status_code == 201
    finish = {"agency": "Peugeot Querétaro", "month": "10", "year": 2025}
    assert api_for(roamer).post(FINISH, finish, format="json").status_code == 200
    assert {a["name"] for a in api_for(roamer).get("/api/agencies/").json()["results"]} == {
        "Alfa Romeo",
        "Peugeot Querétaro",
    }


# Nothing is told to outsiders (item 10).


@pytest.mark.parametrize(
    "path",
    [
        "/api/inventories/{id}/",
        "/api/inventories/{id}/scans/",
        "/api/inventories/{id}/progress/",
        "/api/inventories/{id}/expected/",
        "/api/inventories/{id}/exceptions/",
        "/api/inventories/{id}/report/",
        "/api/inventories/{id}/report.csv",
    ],
)
def test_an_inventory_of_another_agency_answers_as_one_that_does_not_exist(api_for, luis, peugeot, path):
    inventory = services.inventory_get_or_open(room=Room(peugeot, 10, 2025))
    theirs = api_for(luis).get(path.format(id=inventory.pk))
    unknown = api_for(luis).get(path.format(id=inventory.pk + 1000))
    assert theirs.status_code == unknown.status_code == 404
    assert "Peugeot" not in theirs.content.decode()
    if path == "/api/inventories/{id}/" or path.endswith("scans/"):
        assert theirs.json() == unknown.json()  # DRF's own "not found"
    else:
        assert theirs.json()["code"] == unknown.json()["code"] == "inventory_not_found"


# One rule for which months can be opened (item 17).


def month_from_now(months: int) -> tuple[str, int]:
    from django.utils import timezone

    today = timezone.localdate()
    index = today.year * 12 + today.month - 1 + months
    return str(index % 12 + 1), index // 12


@pytest.mark.parametrize("months", [2, -25, 12 * 70, -12 * 26])
def test_a_month_outside_the_open_window_is_refused_on_every_rest_door(api_for, ana, months):
    month, year = month_from_now(months)
    room = {"agency": "Alfa Romeo", "month": month, "year": year}
    for response in (
        api_for(ana).post("/api/inventories/", room, format="json"),
        api_for(ana).post(SAVE, scan_body(month=month, year=year), format="json"),
    ):
        assert response.status_code == 400
        assert "solo se abren los meses de" in response.json()["month"][0]
    assert not Inventory.objects.exists()


@pytest.mark.parametrize("months", [1, 0, -24])
def test_the_window_runs_from_two_years_back_to_next_month(api_for, ana, months):
    month, year = month_from_now(months)
    room = {"agency": "Alfa Romeo", "month": month, "year": year}
    assert api_for(ana).post("/api/inventories/", room, format="json").status_code == 201


def test_the_window_is_configurable(api_for, ana, settings):
    settings.INVENTORY_OPEN_MONTHS_AHEAD = 0
    settings.INVENTORY_OPEN_MONTHS_BACK = 0
    month, year = month_from_now(1)
    room = {"agency": "Alfa Romeo", "month": month, "year": year}
    assert api_for(ana).post("/api/inventories/", room, format="json").status_code == 400
    month, year = month_from_now(0)
    room = {"agency": "Alfa Romeo", "month": month, "year": year}
    assert api_for(ana).post("/api/inventories/", room, format="json").status_code == 201


def test_an_old_inventory_stays_readable_and_writable(api_for, ana, alfa):
    old = Inventory.objects.create(agency=alfa, month=1, year=2020)
    assert api_for(ana).get(f"/api/inventories/{old.pk}/").status_code == 200
    body = scan_body(code="LATE", month="1", year=2020)
    assert api_for(ana).post(SAVE, body, format="json").status_code == 201
    room = {"agency": "Alfa Romeo", "month": "1", "year": 2020}
    assert api_for(ana).post("/api/inventories/", room, format="json").status_code == 200


def test_importing_a_list_takes_a_manager_or_the_manage_every_agency_permission(api_for, clerk, alfa):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from .reconciliation_helpers import BOOKS, csv_bytes

    inventory = services.inventory_get_or_open(room=Room(alfa, 10, 2025))
    url = f"/api/inventories/{inventory.pk}/expected/"

    def upload():
        return {"file": SimpleUploadedFile("libros.csv", csv_bytes(BOOKS), content_type="text/csv")}

    assert api_for(clerk).post(url, upload(), format="multipart").status_code == 403
    assert not inventory.expected_vehicles.exists()
    manager = grant(clerk, "manage_every_agency")
    assert api_for(manager).post(url, upload(), format="multipart").status_code == 201


def test_an_empty_inventory_is_deleted_with_the_delete_inventory_permission(api_for, ana, alfa):
    empty = services.inventory_get_or_open(room=Room(alfa, 11, 2025))
    counted = services.inventory_get_or_open(room=Room(alfa, 10, 2025))
    services.scan_record(inventory=counted, user=ana, code="KEPT")
    assert api_for(ana).delete(f"/api/inventories/{empty.pk}/").status_code == 403
    ana = grant(ana, "delete_inventory")
    assert api_for(ana).delete(f"/api/inventories/{counted.pk}/").status_code == 400
    assert api_for(ana).delete(f"/api/inventories/{empty.pk}/").status_code == 204
    assert list(Inventory.objects.all()) == [counted]


def test_inventories_are_filtered_by_the_agency_as_a_room_names_it(api_for, ana, peugeot):
    services.inventory_get_or_open(room=Room(peugeot, 10, 2025))
    for typed in ("Peugeot Queretaro", "peugeot-queretaro", "PEUGEOT QUERÉTARO"):
        assert api_for(ana).get("/api/inventories/", {"agency": typed}).json()["count"] == 1
    assert api_for(ana).get("/api/inventories/", {"agency": "nope"}).json()["count"] == 0


def test_the_database_itself_refuses_a_name_that_is_another_agencys_slug(alfa, peugeot):
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        Agency.objects.create(name="Alfa-Romeo")  # past every validation: straight to the database
    with pytest.raises(IntegrityError), transaction.atomic():
        Agency.objects.filter(pk=peugeot.pk).update(slug="alfa romeo".replace(" ", "-"), name="X")
    with pytest.raises(IntegrityError), transaction.atomic():
        Agency.objects.filter(pk=peugeot.pk).update(name="ALFA-ROMEO")
    Agency.objects.filter(pk=peugeot.pk).update(name="Peugeot Centro")  # any other name is fine
    assert sorted(Agency.objects.values_list("name", flat=True)) == ["Alfa Romeo", "Peugeot Centro"]


def test_live_metrics_name_every_room_so_they_take_their_permission(api_for, clerk, db):
    urls = ("/api/inventory/websocket/metrics", "/metrics", "/health/detailed")
    for url in urls:
        assert api_for(clerk).get(url).status_code == 403
    watcher = grant(clerk, "view_realtime_metrics")
    for url in urls:
        assert api_for(watcher).get(url).status_code == 200
