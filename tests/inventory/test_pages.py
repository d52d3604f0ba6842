import json
import re

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from inventory import services
from inventory.models import Agency, Inventory
from inventory.reconciliation import services as reconciliation

from .reconciliation_helpers import BOOKS, csv_bytes

pytestmark = pytest.mark.django_db


def client_for(user=None, **headers) -> Client:
    client = Client(headers=headers)
    if user is not None:
        client.force_login(user)
    return client


def live_url(agency="alfa-romeo", month=10, year=2025) -> str:
    return reverse("inventory-live", args=[agency, month, year])


def json_script(html: str, element_id: str):
    match = re.search(rf'<script id="{element_id}" type="application/json">(.*?)</script>', html, re.S)
    assert match, f"no json_script #{element_id}"
    return json.loads(match.group(1))


def inventory_of(agency, month=10, year=2025) -> Inventory:
    """The room's inventory, whatever its month: as a database kept from earlier years holds it."""
    return Inventory.objects.get_or_create(agency=agency, month=month, year=year)[0]


def record(user, agency, code, month=10, year=2025):
    return services.scan_record(inventory=inventory_of(agency, month, year), user=user, code=code).scan


def month_from_now(months: int) -> tuple[int, int]:
    today = timezone.localdate()
    index = today.year * 12 + today.month - 1 + months
    return index % 12 + 1, index // 12


@pytest.mark.parametrize("url", ["/", "/inventory/alfa-romeo/10/2025/"])
def test_pages_require_login(url, alfa):
    response = client_for().get(url)
    assert response.status_code == 302
    assert response.url == f"{reverse('login')}?next={url}"


def test_login_page_signs_in_and_goes_home(ana):
    client = client_for()
    assert client.get(reverse("login")).status_code == 200
    response = client.post(reverse("login"), {"username": "ana", "password": "secret-pass-123"})
    assert response.status_code == 302
    assert response.url == reverse("home")


def test_login_page_explains_wrong_password(ana):
    response = client_for().post(reverse("login"), {"username": "ana", "password": "nope"})
    assert response.status_code == 200
    assert "Usuario o contraseña incorrectos" in response.content.decode()


def test_logout_signs_out(ana):
    client = client_for(ana)
    response = client.post(reverse("logout"))
    assert response.status_code == 302
    assert client.get("/").status_code == 302


def test_index_lists_only_the_users_agencies(luis, alfa, peugeot):
    html = client_for(luis).get("/").content.decode()
    assert "Alfa Romeo" in html
    assert "Peugeot" not in html
    today = timezone.localdate()
    assert live_url("alfa-romeo", today.month, today.year) in html


def test_index_shows_every_agency_to_staff(staff, alfa, peugeot):
    html = client_for(staff).get("/").content.decode()
    assert "Alfa Romeo" in html and "Peugeot Querétaro" in html


def test_index_shows_past_inventories_and_their_status(ana, alfa):
    record(ana, alfa, "VIN-1", month=9, year=2025)
    inventory = Inventory.objects.get(month=9, year=2025)
    services.inventory_complete(inventory=inventory, user=ana)
    html = client_for(ana).get("/").content.decode()
    assert live_url("alfa-romeo", 9, 2025) in html
    assert "Completado" in html
    assert "completado por Ana García" in html
    assert "1 vehículo" in html


def test_index_lists_past_inventories_newest_first(ana, alfa):
    for month in (3, 9, 5):
        record(ana, alfa, f"VIN-{month}", month=month, year=2024)
    html = client_for(ana).get("/").content.decode()
    positions = [html.index(live_url("alfa-romeo", month, 2024)) for month in (9, 5, 3)]
    assert positions == sorted(positions)


def test_index_explains_when_the_user_has_no_agency(outsider):
    html = client_for(outsider).get("/").content.decode()
    assert "Aún no perteneces a ninguna agencia" in html


def test_live_page_renders_the_room_for_a_member(ana, luis, alfa):
    record(luis, alfa, "VIN-1")
    record(ana, alfa, "VIN-2")
    response = client_for(ana).get(live_url())
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="scan-input"' in html
    scans = json_script(html, "initial-scans")
    assert [scan["code"] for scan in scans] == ["VIN-2", "VIN-1"]
    assert scans[0]["user"] == "Ana García" and scans[0]["userId"] == str(ana.pk)
    config = json_script(html, "live-config")
    inventory = Inventory.objects.get()
    assert config["agency"] == "Alfa Romeo"
    assert config["month"] == "10" and config["year"] == 2025
    assert config["inventoryId"] == inventory.pk
    assert config["lastSeq"] == inventory.last_seq == 2
    assert config["status"] == "open"
    assert config["websocketPath"] == "/ws/inventory"
    assert config["scansUrl"] == f"/api/inventories/{inventory.pk}/scans/"
    assert config["user"] == {"id": str(ana.pk), "name": "Ana García"}


def test_live_page_accepts_the_agency_name(ana, alfa):
    inventory_of(alfa, 3, 2026)
    config = json_script(
        client_for(ana).get(live_url("Alfa Romeo", "03", 2026)).content.decode(), "live-config"
    )
    assert config["inventoryId"] == Inventory.objects.get(month=3, year=2026).pk


def test_live_page_of_a_completed_inventory_is_read_only(ana, alfa):
    record(ana, alfa, "VIN-1")
    services.inventory_complete(inventory=Inventory.objects.get(), user=ana)
    html = client_for(ana).get(live_url()).content.decode()
    assert "El inventario ya fue completado por Ana García." in html
    assert re.search(r'<input id="scan-input"[^>]*disabled', html)
    assert json_script(html, "live-config")["status"] == "completed"


@pytest.mark.parametrize("agency", ["alfa-romeo", "Alfa Romeo"])
def test_live_page_of_another_agency_is_not_found_and_names_nothing(outsider, alfa, agency):
    inventory_of(alfa)
    response = client_for(outsider).get(live_url(agency))
    unknown = client_for(outsider).get(live_url("no-such-agency"))
    assert response.status_code == unknown.status_code == 404
    html = response.content.decode()
    assert f"No existe la agencia «{agency}»." in html
    assert "perteneces" not in html and (agency == "Alfa Romeo" or "Alfa Romeo" not in html)
    assert Inventory.objects.count() == 1


def test_live_page_is_open_to_superusers_and_to_who_may_access_every_agency(staff, make_user, alfa):
    assert client_for(staff).get(live_url()).status_code == 200
    clerk = make_user("clerk")
    clerk.is_staff = True
    clerk.save()
    assert client_for(clerk).get(live_url()).status_code == 404  # staff, but no permission
    clerk.user_permissions.add(Permission.objects.get(codename="access_every_agency"))
    assert client_for(clerk).get(live_url()).status_code == 200


@pytest.mark.parametrize(
    ("agency", "month", "year"),
    [("nope", 10, 2025), ("alfa-romeo", 13, 2025), ("alfa-romeo", "x", 2025), ("alfa-romeo", 10, 1999)],
)
def test_live_page_is_not_found_for_unknown_agency_or_bad_month(ana, agency, month, year):
    response = client_for(ana).get(live_url(agency, month, year))
    assert response.status_code == 404
    assert not Inventory.objects.exists()


def test_a_page_visit_opens_nothing_it_shows_the_empty_room(ana, alfa):
    for month, year in (month_from_now(0), month_from_now(1), (10, 2025)):
        response = client_for(ana).get(live_url("alfa-romeo", month, year))
        assert response.status_code == 200
        config = json_script(response.content.decode(), "live-config")
        assert config["inventoryId"] is None and config["lastSeq"] == 0 and config["status"] == "open"
        assert config["openUrl"] == live_url("alfa-romeo", month, year)
        assert json_script(response.content.decode(), "initial-scans") == []
    assert not Inventory.objects.exists()


@pytest.mark.parametrize("months", [2, -25, -12 * 26])
def test_a_month_that_cannot_be_opened_is_not_found(ana, alfa, months):
    month, year = month_from_now(months)
    response = client_for(ana).get(live_url("alfa-romeo", month, year))
    assert response.status_code == 404
    assert "ese mes no puede abrirse" in response.content.decode()
    opened = client_for(ana).post(live_url("alfa-romeo", month, year))
    assert opened.status_code == 400
    assert opened.json()["code"] == "month_not_openable"
    assert "solo se abren los meses de" in opened.json()["detail"]
    assert not Inventory.objects.exists()


def test_an_existing_inventory_of_an_old_month_stays_readable(ana, alfa):
    record(ana, alfa, "VIN-OLD", month=1, year=2020)
    html = client_for(ana).get(live_url("alfa-romeo", 1, 2020)).content.decode()
    assert [scan["code"] for scan in json_script(html, "initial-scans")] == ["VIN-OLD"]


def test_a_post_to_the_page_opens_the_room_and_answers_its_config(ana, alfa):
    client = client_for(ana)
    response = client.post(live_url())
    assert response.status_code == 200
    inventory = Inventory.objects.get(agency=alfa, month=10, year=2025)
    config = response.json()
    assert config["inventoryId"] == inventory.pk
    assert config["scansUrl"] == f"/api/inventories/{inventory.pk}/scans/"
    assert config["reconciliation"]["progressUrl"] == f"/api/inventories/{inventory.pk}/progress/"
    assert client.post(live_url()).json()["inventoryId"] == inventory.pk  # again: the same one
    assert Inventory.objects.count() == 1


def test_a_post_to_the_page_needs_the_csrf_token_and_membership(ana, outsider, alfa):
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(ana)
    assert strict.post(live_url()).status_code == 403
    assert client_for(outsider).post(live_url()).status_code == 404
    assert not Inventory.objects.exists()


def test_index_does_not_list_later_months_as_earlier_inventories(ana, alfa):
    record(ana, alfa, "VIN-AHEAD", month=6, year=2099)  # opened ahead by a REST client
    html = client_for(ana).get("/").content.decode()
    assert live_url("alfa-romeo", 6, 2099) not in html


def test_inactive_agency_is_not_found(ana, alfa):
    Agency.objects.filter(pk=alfa.pk).update(is_active=False)
    assert client_for(ana).get(live_url()).status_code == 404


def test_pages_are_in_english_for_an_english_browser(ana, alfa):
    client = client_for(ana, accept_language="en")
    home = client.get("/").content.decode()
    assert '<html lang="en">' in home
    assert "My agencies" in home
    live = client.get(live_url()).content.decode()
    assert "Complete inventory" in live
    assert "October 2025" in live
    assert "/jsi18n/" in live


def test_pages_are_in_spanish_by_default(ana, alfa):
    html = client_for(ana).get(live_url()).content.decode()
    assert '<html lang="es">' in html
    assert "Completar inventario" in html
    assert "Octubre 2025" in html


def test_language_switch_sets_the_language(ana):
    client = client_for(ana)
    response = client.post(reverse("set_language"), {"language": "en", "next": "/"})
    assert response.status_code == 302
    assert "My agencies" in client.get("/").content.decode()


def test_javascript_catalog_translates_the_page_strings():
    catalog = client_for(accept_language="en").get(reverse("javascript-catalog")).content.decode()
    assert "Reconectando" in catalog and "Reconnecting" in catalog


def test_user_text_is_escaped_in_the_html(make_user):
    agency = Agency.objects.create(name="<b>Agencia</b>", slug="agencia")
    user = make_user("xss", first_name="<script>alert(1)</script>", agencies=[agency])
    record(user, agency, "<img src=x onerror=alert(2)>")
    client = client_for(user)
    for url in ["/", live_url("agencia")]:
        html = client.get(url).content.decode()
        assert "<script>alert(1)" not in html
        assert "<img src=x" not in html
        assert "<b>Agencia" not in html
    html = client.get(live_url("agencia")).content.decode()
    assert "&lt;b&gt;Agencia&lt;/b&gt;" in html
    assert json_script(html, "initial-scans")[0]["code"] == "<img src=x onerror=alert(2)>"


def import_books(agency, month=10, year=2025) -> Inventory:
    inventory = inventory_of(agency, month, year)
    reconciliation.expected_import_file(inventory=inventory, upload=csv_bytes(BOOKS), filename="libros.csv")
    return inventory


def test_live_page_includes_the_initial_progress_and_each_scans_match(ana, alfa):
    inventory = import_books(alfa)
    record(ana, alfa, "1hgcm82633a004352")  # in the books, whatever its case
    record(ana, alfa, "UNLISTED-1")
    record(ana, alfa, "1HGCM82633A004353")  # a VIN whose check digit fails: likely misread
    html = client_for(ana).get(live_url()).content.decode()

    matches = {scan["code"]: scan["match"] for scan in json_script(html, "initial-scans")}
    assert matches == {
        "1hgcm82633a004352": "expected",
        "UNLISTED-1": "unexpected",
        "1HGCM82633A004353": "flagged",
    }
    state = json_script(html, "live-config")["reconciliation"]
    assert state["progress"] == {
        "expected": 4,
        "found": 1,
        "missing": 3,
        "unexpected": 1,
        "flagged": 1,
        "counted": 3,
    }
    assert state["canSeeExpected"] is True and state["blindCount"] is False
    assert state["locations"] == [
        {"location": "Patio A", "expected": 2, "missing": 1},
        {"location": "Patio B", "expected": 1, "missing": 1},
        {"location": "Taller", "expected": 1, "missing": 1},
    ]
    assert state["progressUrl"] == f"/api/inventories/{inventory.pk}/progress/"
    assert state["expectedUrl"] == f"/api/inventories/{inventory.pk}/expected/"
    assert state["reportUrl"] == "/inventory/alfa-romeo/10/2025/report/"

    # The figures are on the page before any script runs.
    assert "1 de 4 encontrados" in html
    assert '<span id="progress-percent" class="progress-percent" aria-hidden="true">25 %</span>' in html
    assert re.search(r'role="progressbar"[^>]*aria-valuemax="4" aria-valuenow="1"', html, re.S)
    assert '<dd id="progress-missing">3</dd>' in html
    assert '<dd id="progress-unexpected">1</dd>' in html
    assert '<dd id="progress-flagged">1</dd>' in html
    assert 'data-has-list="true"' in html and 'data-missing="shown"' in html
    assert 'id="missing-panel"' in html and 'href="/inventory/alfa-romeo/10/2025/report/"' in html


def test_live_page_without_an_expected_list_is_a_plain_counter(ana, alfa):
    record(ana, alfa, "VIN-1")
    record(ana, alfa, "1HGCM82633A004353")  # flagged even without a list
    html = client_for(ana).get(live_url()).content.decode()
    assert [scan["match"] for scan in json_script(html, "initial-scans")] == ["flagged", None]
    state = json_script(html, "live-config")["reconciliation"]
    assert state["progress"]["expected"] == 0 and state["progress"]["counted"] == 2
    assert state["locations"] == []
    assert 'data-has-list="false"' in html and 'data-missing="hidden"' in html
    assert "2 vehículos contados" in html


def test_blind_counting_keeps_the_figures_but_not_the_missing_list_from_counters(luis, staff, alfa):
    import_books(alfa)
    Agency.objects.filter(pk=alfa.pk).update(blind_count=True)
    html = client_for(luis).get(live_url()).content.decode()
    state = json_script(html, "live-config")["reconciliation"]
    assert state["canSeeExpected"] is False and state["blindCount"] is True
    assert state["expectedUrl"] is None and state["locations"] is None
    assert state["progress"]["missing"] == 4
    assert 'id="missing-panel"' not in html and 'data-missing="hidden"' in html
    assert "0 de 4 encontrados" in html
    # Managers (staff here) always see the list.
    manager_html = client_for(staff).get(live_url()).content.decode()
    assert json_script(manager_html, "live-config")["reconciliation"]["canSeeExpected"] is True
    assert 'id="missing-panel"' in manager_html


def test_completed_live_page_shows_the_final_figures_and_links_the_report(ana, alfa):
    inventory = import_books(alfa)
    record(ana, alfa, "1HGCM82633A004352")
    record(ana, alfa, "UNLISTED-1")
    services.inventory_complete(inventory=inventory, user=ana)
    html = client_for(ana).get(live_url()).content.decode()
    summary = re.search(r'<dl id="terminated-summary"[^>]*>(.*?)</dl>', html, re.S).group(1)
    figures = dict(re.findall(r'data-figure="(\w+)">(\d+)<', summary))
    assert figures == {"counted": "2", "found": "1", "missing": "3", "unexpected": "1", "flagged": "0"}
    assert re.search(r'id="terminated-report"[^>]*href="/inventory/alfa-romeo/10/2025/report/"', html)


def test_live_page_progress_is_in_english_for_an_english_browser(ana, alfa):
    import_books(alfa)
    html = client_for(ana, accept_language="en").get(live_url()).content.decode()
    assert "0 of 4 found" in html
    assert "Variance report" in html


@pytest.mark.parametrize(("found", "expected", "shown"), [(11, 12, 91), (0, 12, 0), (12, 12, 100), (3, 0, 0)])
def test_the_first_percentage_is_rounded_down_as_the_live_page_rounds_it(found, expected, shown):
    from inventory.views import _percent

    assert _percent({"found": found, "expected": expected}) == shown
