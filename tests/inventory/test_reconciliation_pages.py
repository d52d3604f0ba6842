"""The variance report page and the admin's import page, links and explanations."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from inventory import services
from inventory.models import ExpectedVehicle, VarianceExplanation
from inventory.reconciliation import services as reconciliation
from inventory.rooms import Room

from .reconciliation_helpers import BOOKS, csv_bytes

pytestmark = pytest.mark.django_db

REPORT = "/inventory/alfa-romeo/10/2025/report/"


def client_for(user=None) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


@pytest.fixture
def counted(alfa, ana, luis):
    inventory = services.inventory_get_or_open(room=Room(alfa, 10, 2025))
    reconciliation.expected_import_file(inventory=inventory, upload=csv_bytes(BOOKS), filename="libros.csv")
    services.scan_record(
        inventory=inventory, user=ana, code="1HGCM82633A004352", scanned_at="2025-10-31T09:00:00Z"
    )
    services.scan_record(inventory=inventory, user=luis, code="UNLISTED-1", scanned_at="2025-10-31T09:20:00Z")
    return inventory


def test_report_url_is_named_by_room(counted):
    assert reverse("inventory-report", args=["alfa-romeo", 10, 2025]) == REPORT


def test_members_see_the_report_with_figures_chart_and_missing_by_location(counted, luis):
    response = client_for(luis).get(REPORT)
    assert response.status_code == 200
    html = response.content.decode()
    assert "Informe de diferencias" in html
    assert '<dd id="figure-expected">4</dd>' in html
    assert '<dd id="figure-found">1</dd>' in html
    assert '<dd id="figure-missing">3</dd>' in html
    assert '<dd id="figure-unexpected">1</dd>' in html
    assert "<svg" in html and 'class="line-counted"' in html and 'class="line-expected"' in html
    assert "Patio B" in html and "Taller" in html and "EXP-BARCODE-4" in html
    assert "UNLISTED-1" in html and "Sin explicar" in html
    assert f"/api/inventories/{counted.pk}/report.csv" in html
    assert f"/api/inventories/{counted.pk}/report.xlsx" in html
    assert "Luis Pérez" in html and "Ana García" in html


def test_the_missing_list_filters_by_location(counted, luis):
    html = client_for(luis).get(REPORT, {"location": "Taller"}).content.decode()
    assert "EXP-BARCODE-4" in html
    assert "11111111111111111" not in html


def test_non_members_get_403_and_strangers_the_login(counted, outsider):
    assert client_for(outsider).get(REPORT).status_code == 403
    anonymous = client_for().get(REPORT)
    assert anonymous.status_code == 302 and anonymous.url.startswith(reverse("login"))


def test_agency_managers_who_are_not_members_see_the_report(counted, make_user, alfa):
    boss = make_user("jefa")
    alfa.managers.add(boss)
    assert client_for(boss).get(REPORT).status_code == 200


def test_unknown_rooms_are_404(counted, luis):
    assert client_for(luis).get("/inventory/ferrari/10/2025/report/").status_code == 404
    assert client_for(luis).get("/inventory/alfa-romeo/13/2025/report/").status_code == 404
    assert client_for(luis).get("/inventory/alfa-romeo/9/2025/report/").status_code == 404


def test_blind_counting_hides_the_missing_list_on_the_page(counted, alfa, luis, staff):
    alfa.blind_count = True
    alfa.save()
    html = client_for(luis).get(REPORT).content.decode()
    assert "Conteo a ciegas" in html
    assert "EXP-BARCODE-4" not in html and "Patio B" not in html
    assert '<dd id="figure-missing">3</dd>' in html
    assert "EXP-BARCODE-4" in client_for(staff).get(REPORT).content.decode()


def test_a_report_without_scans_or_list_explains_itself(alfa, ana):
    services.inventory_get_or_open(room=Room(alfa, 10, 2025))
    html = client_for(ana).get(REPORT).content.decode()
    assert "Aún no hay escaneos." in html
    assert "no tiene lista esperada" in html


def test_the_admin_links_each_inventory_to_its_report_and_import(counted, staff):
    html = client_for(staff).get("/admin/inventory/inventory/").content.decode()
    assert REPORT in html
    assert f"/api/inventories/{counted.pk}/report.xlsx" in html
    import_url = reverse("admin:inventory_inventory_import_expected", args=[counted.pk])
    assert import_url in html
    assert "Importar lista (4 esperados)" in html
    change = client_for(staff).get(f"/admin/inventory/inventory/{counted.pk}/change/").content.decode()
    assert REPORT in change


def test_the_admin_imports_a_file_and_refuses_a_bad_one_whole(counted, staff):
    client = client_for(staff)
    import_url = reverse("admin:inventory_inventory_import_expected", args=[counted.pk])
    assert client.get(import_url).status_code == 200
    bad = SimpleUploadedFile("malo.csv", csv_bytes([["VIN", "Año"], ["A1", "2020"], ["", "2020"]]))
    refused = client.post(import_url, {"file": bad})
    assert refused.status_code == 200
    html = refused.content.decode()
    assert 'id="import-errors"' in html and "<td>3</td>" in html and "Falta el VIN" in html
    assert ExpectedVehicle.objects.filter(inventory=counted).count() == 4
    good = SimpleUploadedFile("nuevo.csv", csv_bytes([["Serie", "Ubicación"], ["UNLISTED-1", "Patio C"]]))
    response = client.post(import_url, {"file": good})
    assert response.status_code == 302
    assert list(ExpectedVehicle.objects.filter(inventory=counted).values_list("code", flat=True)) == [
        "UNLISTED-1"
    ]


def test_the_admin_clears_expected_lists_through_the_service(counted, staff):
    response = client_for(staff).post(
        "/admin/inventory/inventory/",
        {"action": "clear_expected_lists", "_selected_action": [counted.pk]},
    )
    assert response.status_code == 302
    assert not ExpectedVehicle.objects.exists()


def test_the_admin_explains_a_variance_and_refuses_a_code_that_is_not_one(counted, staff):
    client = client_for(staff)
    add = "/admin/inventory/varianceexplanation/add/"
    refused = client.post(
        add, {"inventory": counted.pk, "code": "1HGCM82633A004352", "reason": "misread", "note": ""}
    )
    assert refused.status_code == 200 and not VarianceExplanation.objects.exists()
    saved = client.post(
        add, {"inventory": counted.pk, "code": "exp-barcode-4", "reason": "other_branch", "note": "Puebla"}
    )
    assert saved.status_code == 302
    explanation = VarianceExplanation.objects.get()
    assert (explanation.code_key, explanation.reason, explanation.explained_by) == (
        "EXP-BARCODE-4",
        "other_branch",
        staff,
    )
    client.post(f"/admin/inventory/varianceexplanation/{explanation.pk}/delete/", {"post": "yes"})
    assert not VarianceExplanation.objects.exists()


def test_the_admin_lists_expected_vehicles_read_only_with_their_state(counted, staff):
    html = client_for(staff).get("/admin/inventory/expectedvehicle/").content.decode()
    assert "EXP-BARCODE-4" in html and "icon-yes" in html and "icon-no" in html
    assert client_for(staff).get("/admin/inventory/expectedvehicle/add/").status_code == 403
