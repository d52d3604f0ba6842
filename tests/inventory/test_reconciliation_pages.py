"""The variance report page and the admin's import page, links and explanations."""

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from inventory import services
from inventory.access import Room
from inventory.models import ExpectedVehicle, Inventory, VarianceExplanation
from inventory.reconciliation import services as reconciliation

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


CHART = re.compile(r'<div class="chart-frame">.*?</svg>', re.S)
SVG_NUMBER_ATTRIBUTE = re.compile(r'\b(x1|y1|x2|y2|x|y|width|height)="([^"]*)"')
PLAIN_NUMBER = re.compile(r"-?\d+(\.\d+)?")
PLAIN_POINTS = re.compile(r"-?\d+(\.\d+)?,-?\d+(\.\d+)?( -?\d+(\.\d+)?,-?\d+(\.\d+)?)*")


@pytest.mark.parametrize("language", ["es", "en"])
def test_the_chart_coordinates_are_plain_numbers_in_every_language(counted, ana, luis, language):
    # Spanish writes 216,0 where SVG needs 216.0: browsers then drop the line or the label.
    services.scan_record(inventory=counted, user=ana, code="EXP-BARCODE-4", scanned_at="2025-10-31T09:07:00Z")
    html = client_for(luis).get(REPORT, HTTP_ACCEPT_LANGUAGE=language).content.decode()
    chart = CHART.search(html).group(0)
    numbers = SVG_NUMBER_ATTRIBUTE.findall(chart)
    assert len(numbers) >= 8
    for name, value in numbers:
        assert PLAIN_NUMBER.fullmatch(value), f'{name}="{value}"'
    assert re.search(r'viewBox="0 0 \d+ \d+"', chart)
    points = re.findall(r'points="([^"]*)"', chart)
    assert len(points) == 3  # the area under the found line, the found line, the counted line
    for value in points:
        assert PLAIN_POINTS.fullmatch(value), value
    # Every point has two coordinates: a decimal comma would make it four numbers.
    assert all(len(pair.split(",")) == 2 for value in points for pair in value.split(" "))
    # The HTML labels are placed with plain percentages too.
    offsets = re.findall(r'style="top: ([^"%]*)%"', chart)
    assert len(offsets) == 3 and all(PLAIN_NUMBER.fullmatch(offset) for offset in offsets)


def test_the_home_page_links_every_past_inventory_to_its_report(counted, alfa, luis):
    Inventory.objects.create(agency=alfa, month=3, year=2024)  # before the months that open today
    html = client_for(luis).get(reverse("home")).content.decode()
    assert f'href="{REPORT}"' in html
    assert 'href="/inventory/alfa-romeo/3/2024/report/"' in html


def manager_forms(html):
    return html.count('class="explain-form"'), 'id="import-form"' in html


def test_counters_see_the_reasons_but_no_form(counted, luis):
    html = client_for(luis).get(REPORT).content.decode()
    assert manager_forms(html) == (0, False)
    assert "Sin explicar" in html
    assert 'id="report-config"' in html and '"isManager": false' in html


@pytest.mark.parametrize("who", ["staff", "agency_manager"])
def test_managers_get_a_reason_form_for_every_variance_and_the_import_form(
    counted, alfa, staff, make_user, who
):
    user = staff
    if who == "agency_manager":
        user = make_user("jefa")
        alfa.managers.add(user)
    reconciliation.variance_explain(
        inventory=counted, user=staff, code="UNLISTED-1", reason="other", note="Cortesía"
    )
    html = client_for(user).get(REPORT).content.decode()
    # Three missing vehicles and one unexpected scan.
    assert manager_forms(html) == (4, True)
    assert f'action="/api/inventories/{counted.pk}/expected/"' in html
    assert f'"exceptionsUrl": "/api/inventories/{counted.pk}/exceptions/"' in html
    assert '<option value="in_transit">En tránsito</option>' in html
    assert '<option value="other" selected>Otro</option>' in html
    assert 'value="Cortesía"' in html
    assert '<dd id="figure-unexplained" data-value="3">3</dd>' in html
    assert 'for="explain-u1-note"' in html and 'id="explain-u1-note"' in html
    assert 'src="/static/js/report-page.js"' in html and 'href="/static/css/report.css"' in html


def test_a_manager_can_explain_after_completion_too(counted, staff):
    services.inventory_complete(inventory=counted, user=staff)
    html = client_for(staff).get(REPORT).content.decode()
    assert manager_forms(html) == (4, True)


def test_the_missing_list_filters_by_location(counted, luis):
    html = client_for(luis).get(REPORT, {"location": "Taller"}).content.decode()
    assert "EXP-BARCODE-4" in html
    assert "11111111111111111" not in html


def test_non_members_get_404_and_strangers_the_login(counted, outsider):
    assert client_for(outsider).get(REPORT).status_code == 404
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


# Long lists come a page at a time: a 100,000-vehicle list was a 46 MB page.


@pytest.fixture
def long_lists(alfa, ana):
    """250 vehicles missing in two locations (200 in Patio A, 50 in Taller), 120 unexpected scans."""
    inventory = services.inventory_get_or_open(room=Room(alfa, 10, 2025))
    rows = [["VIN", "Ubicación"]] + [
        [f"MISS-{n:03d}", "Patio A" if n < 200 else "Taller"] for n in range(250)
    ]
    reconciliation.expected_import_file(inventory=inventory, upload=csv_bytes(rows), filename="libros.csv")
    for n in range(120):
        services.scan_record(inventory=inventory, user=ana, code=f"EXTRA-{n:03d}")
    return inventory


def missing_codes(html: str) -> list[str]:
    return re.findall(r"<code>(MISS-\d+)</code>", html)


def extra_codes(html: str) -> list[str]:
    return re.findall(r"<code>(EXTRA-\d+)</code>", html)


def test_the_missing_list_comes_a_page_at_a_time_with_its_totals(long_lists, ana):
    html = client_for(ana).get(REPORT).content.decode()
    assert missing_codes(html) == [f"MISS-{n:03d}" for n in range(100)]
    assert '<dd id="figure-missing">250</dd>' in html  # the figures count everything
    assert 'Patio A <span class="muted">(200)</span>' in html  # the location's total, not the page's
    assert "Página 1 de 3" in html and 'href="?page=2#missing"' in html
    last = client_for(ana).get(REPORT, {"page": 3}).content.decode()
    assert missing_codes(last) == [f"MISS-{n:03d}" for n in range(200, 250)]
    assert 'Taller <span class="muted">(50)</span>' in last
    # Filtered by location, the pages keep the filter; a page past the end is the last one.
    taller = client_for(ana).get(REPORT, {"location": "Patio A", "page": 2}).content.decode()
    assert missing_codes(taller) == [f"MISS-{n:03d}" for n in range(100, 200)]
    assert 'href="?location=Patio+A&amp;page=1#missing"' in taller
    assert missing_codes(client_for(ana).get(REPORT, {"page": 99}).content.decode())[0] == "MISS-200"
    assert client_for(ana).get(REPORT, {"page": "x"}).status_code == 200


def test_the_unexpected_list_comes_a_page_at_a_time(long_lists, ana):
    html = client_for(ana).get(REPORT).content.decode()
    assert extra_codes(html) == [f"EXTRA-{n:03d}" for n in range(100)]
    assert 'href="?unexpected_page=2#unexpected"' in html
    second = client_for(ana).get(REPORT, {"unexpected_page": 2, "page": 2}).content.decode()
    assert extra_codes(second) == [f"EXTRA-{n:03d}" for n in range(100, 120)]
    assert missing_codes(second)[0] == "MISS-100"  # each list keeps its own page
