"""Reconciliation over REST: expected list, progress, variance reasons, the report and its downloads."""

import csv
import io

import pytest

from inventory import services
from inventory.access import Room
from inventory.exceptions import DuplicateScan
from inventory.models import ExpectedVehicle, VarianceExplanation
from inventory.reconciliation import services as reconciliation

from .reconciliation_helpers import BOOKS, csv_bytes, read_xlsx

pytestmark = pytest.mark.django_db


@pytest.fixture
def counted(alfa, ana, luis):
    """Alfa Romeo 10/2025: four vehicles in the books; two found, one unexpected, one misread VIN."""
    inventory = services.inventory_get_or_open(room=Room(alfa, 10, 2025))
    reconciliation.expected_import_file(inventory=inventory, upload=csv_bytes(BOOKS), filename="libros.csv")
    services.scan_record(
        inventory=inventory, user=ana, code="1hgcm82633a004352", scanned_at="2025-10-31T09:00:00Z"
    )
    services.scan_record(
        inventory=inventory, user=luis, code="1M8GDM9AXKP042788", scanned_at="2025-10-31T09:05:00Z"
    )
    services.scan_record(inventory=inventory, user=ana, code="UNLISTED-1", scanned_at="2025-10-31T09:10:00Z")
    services.scan_record(
        inventory=inventory, user=luis, code="1M8GDM9AKKP042788", scanned_at="2025-10-31T09:30:00Z"
    )
    with pytest.raises(DuplicateScan):
        services.scan_record(inventory=inventory, user=luis, code="1hgcm82633a004352")
    return inventory


def url(inventory, tail):
    return f"/api/inventories/{inventory.pk}/{tail}"


def test_members_list_the_expected_vehicles_with_their_state(api_for, counted, luis):
    body = api_for(luis).get(url(counted, "expected/")).json()
    assert body["count"] == 4
    states = {item["code"]: item["state"] for item in body["results"]}
    assert states == {
        "1HGCM82633A004352": "found",
        "1M8GDM9AXKP042788": "found",
        "11111111111111111": "missing",
        "EXP-BARCODE-4": "missing",
    }
    first = body["results"][0]
    assert first["foundBy"] == "Ana García" and first["stockNumber"] == "S1"
    assert first["description"] == "Honda Accord 2003 Plata" and first["location"] == "Patio A"


def test_the_missing_list_filters_by_location(api_for, counted, luis):
    client = api_for(luis)
    missing = client.get(url(counted, "expected/"), {"state": "missing"}).json()["results"]
    assert [item["code"] for item in missing] == ["11111111111111111", "EXP-BARCODE-4"]
    in_b = client.get(url(counted, "expected/"), {"state": "missing", "location": "patio b"}).json()
    assert [item["stockNumber"] for item in in_b["results"]] == ["S3"]
    found = client.get(url(counted, "expected/"), {"state": "found", "limit": 1}).json()
    assert found["count"] == 2 and len(found["results"]) == 1


def test_progress_gives_the_figures_and_locations(api_for, counted, luis):
    body = api_for(luis).get(url(counted, "progress/")).json()
    assert body["progress"] == {
        "expected": 4,
        "found": 2,
        "missing": 2,
        "unexpected": 1,
        "flagged": 1,
        "counted": 4,
    }
    assert body["duplicatesRefused"] == 1
    assert body["canSeeExpected"] is True and body["isManager"] is False
    assert body["locations"] == [
        {"location": "Patio A", "expected": 2, "missing": 0},
        {"location": "Patio B", "expected": 1, "missing": 1},
        {"location": "Taller", "expected": 1, "missing": 1},
    ]
    assert [reason["value"] for reason in body["reasons"]] == [
        "sold_not_delivered",
        "in_transit",
        "other_branch",
        "demo_or_loaner",
        "misread",
        "other",
    ]


@pytest.mark.parametrize(
    "tail",
    ["expected/", "progress/", "exceptions/", "report/", "report.csv", "report.xlsx", "report/?format=csv"],
)
def test_non_members_get_404_as_for_unknown_inventories(api_for, counted, outsider, tail):
    response = api_for(outsider).get(url(counted, tail))
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["code"] == "inventory_not_found"
    assert "Alfa" not in response.content.decode()
    assert api_for(outsider).get(f"/api/inventories/999999/{tail}").status_code == 404
    assert api_for().get(url(counted, tail)).status_code == 401


def test_only_managers_import_or_clear_the_list(api_for, counted, luis, manager):
    from django.core.files.uploadedfile import SimpleUploadedFile

    data = {"file": SimpleUploadedFile("l.csv", csv_bytes(BOOKS))}
    refused = api_for(luis).post(url(counted, "expected/"), data, format="multipart")
    assert refused.status_code == 403 and refused.json()["code"] == "manager_required"
    assert api_for(luis).delete(url(counted, "expected/")).status_code == 403
    cleared = api_for(manager).delete(url(counted, "expected/"))
    assert cleared.status_code == 200
    assert cleared.json()["removed"] == 4
    assert cleared.json()["progress"]["expected"] == 0
    assert not ExpectedVehicle.objects.exists()


def test_the_report_figures(api_for, counted, luis):
    report = api_for(luis).get(url(counted, "report/")).json()
    assert report["figures"] == {
        "expected": 4,
        "counted": 4,
        "found": 2,
        "missing": 2,
        "unexpected": 1,
        "flagged": 1,
        "duplicatesRefused": 1,
        "explained": 0,
        "unexplained": 4,
    }
    assert report["inventory"]["room"] == "Alfa Romeo/10/2025" and report["inventory"]["status"] == "open"
    assert report["startedAt"] == "2025-10-31T09:00:00.000Z"
    assert report["endedAt"] == "2025-10-31T09:30:00.000Z"
    assert report["durationSeconds"] == 30 * 60
    assert [
        (p["userName"], p["scans"], p["found"], p["unexpected"], p["flagged"], p["duplicatesRefused"])
        for p in report["counters"]
    ] == [
        ("Ana García", 2, 1, 1, 0, 0),
        ("Luis Pérez", 2, 1, 0, 1, 1),
    ]
    assert [item["code"] for item in report["missing"]] == ["11111111111111111", "EXP-BARCODE-4"]
    assert [(item["code"], item["kind"]) for item in report["unexpected"]] == [
        ("UNLISTED-1", "unexpected"),
        ("1M8GDM9AKKP042788", "flagged"),
    ]
    assert [item["user"] for item in report["found"]] == ["Ana García", "Luis Pérez"]
    assert [(p["counted"], p["found"]) for p in report["timeline"]] == [
        (0, 0),
        (1, 1),
        (2, 2),
        (3, 2),
        (4, 2),
    ]


def test_the_report_of_a_completed_inventory_ends_at_completion(api_for, counted, luis):
    services.inventory_complete(inventory=counted, user=luis)
    report = api_for(luis).get(url(counted, "report/")).json()
    assert report["inventory"]["status"] == "completed"
    assert report["inventory"]["completedBy"] == "Luis Pérez"
    assert report["endedAt"] == report["inventory"]["completedAt"]


def test_managers_explain_variances_before_or_after_completion(api_for, counted, manager, luis):
    client = api_for(manager)
    body = [
        {"code": "11111111111111111", "reason": "in_transit", "note": "Llega el lunes"},
        {"code": "unlisted-1", "reason": "demo_or_loaner"},
    ]
    response = client.put(url(counted, "exceptions/"), body, format="json")
    assert response.status_code == 200, response.json()
    assert [item["reasonLabel"] for item in response.json()["results"]] == ["En tránsito", "Demo o préstamo"]
    services.inventory_complete(inventory=counted, user=luis)
    after = client.put(
        url(counted, "exceptions/"),
        {"code": "1M8GDM9AKKP042788", "reason": "misread", "note": ""},
        format="json",
    )
    assert after.status_code == 200
    report = api_for(luis).get(url(counted, "report/")).json()
    assert report["figures"]["explained"] == 3 and report["figures"]["unexplained"] == 1
    missing = {item["code"]: item for item in report["missing"]}
    assert missing["11111111111111111"]["reason"] == "in_transit"
    assert missing["11111111111111111"]["note"] == "Llega el lunes"
    assert missing["11111111111111111"]["explainedBy"] == "Gema Ruiz"
    assert missing["EXP-BARCODE-4"]["reason"] is None
    assert {r["value"]: r["count"] for r in report["reasons"]}["in_transit"] == 1
    listed = api_for(luis).get(url(counted, "exceptions/")).json()
    assert [item["reason"] for item in listed["unexpected"]] == ["demo_or_loaner", "misread"]
    # No reason clears the explanation.
    cleared = client.put(
        url(counted, "exceptions/"), {"code": "11111111111111111", "reason": None}, format="json"
    )
    assert cleared.status_code == 200 and cleared.json()["results"][0]["reason"] is None
    assert VarianceExplanation.objects.count() == 2


def test_explaining_is_for_managers_and_only_for_variances(api_for, counted, manager, luis, staff):
    one = {"code": "11111111111111111", "reason": "in_transit"}
    refused = api_for(luis).put(url(counted, "exceptions/"), one, format="json")
    assert refused.status_code == 403 and refused.json()["code"] == "manager_required"
    assert api_for(staff).put(url(counted, "exceptions/"), one, format="json").status_code == 200
    client = api_for(manager)
    found = client.put(
        url(counted, "exceptions/"), {"code": "1HGCM82633A004352", "reason": "other"}, format="json"
    )
    assert found.status_code == 400
    no_note = client.put(
        url(counted, "exceptions/"), {"code": "EXP-BARCODE-4", "reason": "other"}, format="json"
    )
    assert no_note.status_code == 400 and no_note.json()["field"] == "note"
    unknown = client.put(
        url(counted, "exceptions/"), {"code": "EXP-BARCODE-4", "reason": "lost"}, format="json"
    )
    assert unknown.status_code == 400 and "reason" in unknown.json()
    # One bad item in a list saves none of them.
    mixed = [
        {"code": "EXP-BARCODE-4", "reason": "sold_not_delivered"},
        {"code": "NOT-THERE", "reason": "misread"},
    ]
    response = client.put(url(counted, "exceptions/"), mixed, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "not_a_variance" and response.json()["item"] == 1
    assert not VarianceExplanation.objects.filter(code="EXP-BARCODE-4").exists()


def test_blind_counting_hides_the_expected_list_from_counters_but_not_from_managers(
    api_for, counted, alfa, luis, manager
):
    alfa.blind_count = True
    alfa.save()
    counter = api_for(luis)
    hidden = counter.get(url(counted, "expected/"))
    assert hidden.status_code == 403 and hidden.json()["code"] == "blind_count"
    report = counter.get(url(counted, "report/")).json()
    assert report["expectedHidden"] is True
    assert report["missing"] is None and report["found"] is None
    assert report["figures"]["missing"] == 2  # the numbers stay visible
    assert [item["code"] for item in report["unexpected"]] == ["UNLISTED-1", "1M8GDM9AKKP042788"]
    progress = counter.get(url(counted, "progress/")).json()
    assert progress["canSeeExpected"] is False and progress["locations"] is None
    assert progress["progress"]["missing"] == 2
    assert counter.get(url(counted, "exceptions/")).json()["missing"] is None
    content = counter.get(url(counted, "report.csv")).getvalue().decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(content)))
    assert {row[0] for row in rows[1:]} == {"No esperado", "VIN dudoso"}
    boss = api_for(manager)
    assert boss.get(url(counted, "expected/")).json()["count"] == 4
    assert len(boss.get(url(counted, "report/")).json()["missing"]) == 2


def test_the_csv_download_parses_back(api_for, counted, luis):
    response = api_for(luis).get(url(counted, "report.csv"))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"] == 'attachment; filename="diferencias-alfa-romeo-2025-10.csv"'
    content = response.getvalue()
    assert content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))
    assert rows[0][:3] == ["Estado", "VIN o código", "No. de stock"]
    by_code = {row[1]: row for row in rows[1:]}
    assert len(by_code) == 6
    assert by_code["1HGCM82633A004352"][0] == "Encontrado"
    assert by_code["1HGCM82633A004352"][9] == "Ana García"
    assert by_code["11111111111111111"][0] == "Faltante" and by_code["11111111111111111"][8] == "Patio B"
    assert by_code["UNLISTED-1"][0] == "No esperado"
    assert by_code["1M8GDM9AKKP042788"][0] == "VIN dudoso"
    same = api_for(luis).get(url(counted, "report/"), {"format": "csv"})
    assert same.status_code == 200 and same.getvalue() == content


def test_the_xlsx_download_parses_back(api_for, counted, luis):
    response = api_for(luis).get(url(counted, "report.xlsx"))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    sheets = read_xlsx(response.getvalue())
    assert list(sheets) == ["Resumen", "Detalle", "Personas"]
    summary = {row[0]: row[1] for row in sheets["Resumen"]}
    assert summary["Esperados"] == 4 and summary["Contados"] == 4 and summary["Encontrados"] == 2
    assert summary["Faltantes"] == 2 and summary["No esperados"] == 1 and summary["VIN dudosos"] == 1
    assert summary["Duplicados rechazados"] == 1 and summary["Agencia"] == "Alfa Romeo"
    assert sheets["Detalle"][0][0] == "Estado" and len(sheets["Detalle"]) == 7
    assert sheets["Personas"][1:] == [["Ana García", 2, 1, 1, 0, 0], ["Luis Pérez", 2, 1, 0, 1, 1]]
    assert api_for(luis).get(url(counted, "report/"), {"format": "xlsx"}).status_code == 200


def test_downloads_never_turn_a_scanned_code_into_a_formula(api_for, counted, ana):
    services.scan_record(inventory=counted, user=ana, code='=HYPERLINK("http://x")')
    content = api_for(ana).get(url(counted, "report.csv")).getvalue().decode("utf-8-sig")
    assert "'=HYPERLINK" in content
    sheets = read_xlsx(api_for(ana).get(url(counted, "report.xlsx")).getvalue())
    codes = [row[1] for row in sheets["Detalle"][1:]]
    assert '=HYPERLINK("http://x")' in codes


def test_the_report_endpoints_are_in_the_schema(api_for, db):
    schema = api_for().get("/api/schema/").content
    for path in (
        b"/api/inventories/{id}/expected/",
        b"/api/inventories/{id}/report/",
        b"/api/inventories/{id}/exceptions/",
    ):
        assert path in schema
