"""Reconciliation on the live-scan page, in a real Chromium against a real daphne server."""

import re

import pytest
from playwright.sync_api import expect

from inventory import services
from inventory.access import Room
from inventory.models import Agency, Inventory
from inventory.reconciliation import selectors as reconciliation_selectors
from inventory.reconciliation import services as reconciliation
from tests.conftest import token_for
from tests.e2e.conftest import in_thread
from tests.e2e.test_browser import ROOM, row, scan, wait_online
from tests.inventory.reconciliation_helpers import BOOKS, csv_bytes

pytestmark = [
    pytest.mark.browser,
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
]

# BOOKS: Patio A holds two VINs, Patio B one, the Taller one barcode.
IN_PATIO_A = "1HGCM82633A004352"
IN_PATIO_B = "11111111111111111"
IN_TALLER = "EXP-BARCODE-4"
MISREAD_VIN = "1HGCM82633A004353"  # the 9th character is not its check digit


def import_books(agency, rows=BOOKS) -> Inventory:
    inventory = services.inventory_get_or_open(room=Room(agency=agency, month=10, year=2025))
    reconciliation.expected_import_file(inventory=inventory, upload=csv_bytes(rows), filename="libros.csv")
    return inventory


def expect_found(page, found, expected, timeout=1000):
    bar = page.get_by_role("progressbar")
    expect(bar).to_have_attribute("aria-valuenow", str(found), timeout=timeout)
    expect(bar).to_have_attribute("aria-valuemax", str(expected), timeout=timeout)
    expect(bar).to_have_attribute("aria-valuetext", f"{found} de {expected} encontrados", timeout=timeout)
    expect(page.locator("#progress-text")).to_have_text(f"{found} de {expected} encontrados", timeout=timeout)


def missing_item(page, code):
    return page.locator(f'#missing-list li[data-code="{code}"]')


def fetched_urls(page):
    return page.evaluate("performance.getEntriesByType('resource').map((entry) => entry.name)")


def missing_codes(page):
    return page.locator("#missing-list li").evaluate_all("rows => rows.map((row) => row.dataset.code)")


def test_progress_marks_and_missing_list_follow_the_count_on_every_page(open_page, staff, luis, alfa):
    import_books(alfa)
    manager_page = open_page(staff, ROOM)
    counter_page = open_page(luis, ROOM)
    pages = (manager_page, counter_page)
    for page in pages:
        wait_online(page)
        expect_found(page, 0, 4)
        expect(page.locator("#missing-count")).to_have_text("4")
        expect(page.locator("#missing-list li")).to_have_count(4)
    assert missing_codes(manager_page) == [IN_PATIO_A, "1M8GDM9AXKP042788", IN_PATIO_B, IN_TALLER]
    expect(missing_item(manager_page, IN_PATIO_A)).to_contain_text("Honda Accord 2003 Plata")
    expect(missing_item(manager_page, IN_PATIO_A)).to_contain_text("Stock S1 · Patio A")

    # A vehicle of the list: the bar moves on both pages within a second, and it is no longer missing.
    scan(counter_page, IN_PATIO_A)
    for page in pages:
        expect_found(page, 1, 4)
        expect(missing_item(page, IN_PATIO_A)).to_have_count(0, timeout=1000)
        expect(page.locator("#progress-missing")).to_have_text("3")
        expect(page.locator("#missing-count")).to_have_text("3")
        expect(row(page, IN_PATIO_A)).to_have_attribute("data-match", "expected")
        expect(row(page, IN_PATIO_A).locator(".scan-mark")).to_have_count(0)
    expect(counter_page.locator("#scan-feedback")).to_have_text(f"{IN_PATIO_A} registrado")

    # Not in the books: marked unexpected everywhere, and counted as such.
    scan(manager_page, "UNKNOWN-9")
    for page in pages:
        expect(row(page, "UNKNOWN-9")).to_have_attribute("data-match", "unexpected", timeout=1000)
        expect(row(page, "UNKNOWN-9").locator(".scan-mark")).to_have_text("No esperado")
        expect(page.locator("#progress-unexpected")).to_have_text("1")
        expect_found(page, 1, 4)
    expect(manager_page.locator("#scan-feedback")).to_contain_text("no está en la lista esperada")

    # A VIN that fails its check digit: kept, but flagged as a likely misread.
    scan(counter_page, MISREAD_VIN)
    for page in pages:
        expect(row(page, MISREAD_VIN)).to_have_attribute("data-match", "flagged", timeout=1000)
        expect(row(page, MISREAD_VIN).locator(".scan-mark")).to_have_text("VIN dudoso")
        expect(row(page, MISREAD_VIN)).to_contain_text("el VIN parece mal leído")
        expect(page.locator("#progress-flagged")).to_have_text("1")
    expect(counter_page.locator("#scan-feedback")).to_contain_text("el VIN parece mal leído")

    # Where to walk next: the locations with what is missing in each.
    select = manager_page.get_by_label("Ubicación")
    options = select.locator("option").all_inner_texts()
    assert options == ["Todas las ubicaciones (3)", "Patio A (1)", "Patio B (1)", "Taller (1)"]
    select.select_option(label="Taller (1)")
    expect(manager_page.locator("#missing-list li")).to_have_count(1)
    assert missing_codes(manager_page) == [IN_TALLER]
    # Without the location on each row: the filter already says it.
    expect(missing_item(manager_page, IN_TALLER)).to_contain_text("Fiat 500 2024 Azul")
    expect(missing_item(manager_page, IN_TALLER).locator(".missing-meta")).to_have_text("Stock S4")
    select.select_option(label="Patio B (1)")
    expect(manager_page.locator("#missing-list li")).to_have_count(1)
    assert missing_codes(manager_page) == [IN_PATIO_B]

    # Found in the location on screen: the list empties and says so; the counts follow.
    scan(counter_page, IN_PATIO_B)
    expect(manager_page.locator("#missing-list li")).to_have_count(0, timeout=1000)
    expect(manager_page.locator("#missing-status")).to_have_text("No falta ninguno en Patio B.")
    expect(select.locator("option:checked")).to_have_text("Patio B (0)")
    expect(select.locator("option").first).to_have_text("Todas las ubicaciones (2)")
    # Found in another location than the one on screen: the counts catch up from the server.
    scan(counter_page, IN_TALLER)
    expect(select.locator("option").last).to_have_text("Taller (0)")
    expect(select.locator("option").first).to_have_text("Todas las ubicaciones (1)")

    # Removing a found vehicle makes it missing again.
    select.select_option(index=0)
    expect(manager_page.locator("#missing-list li")).to_have_count(1)
    row(counter_page, IN_PATIO_A).get_by_role("button", name=f"Eliminar {IN_PATIO_A}").click()
    for page in pages:
        expect_found(page, 2, 4)
        expect(missing_item(page, IN_PATIO_A)).to_have_count(1)
    expect(manager_page.locator("#missing-count")).to_have_text("2")
    expect(select.locator("option").first).to_have_text("Todas las ubicaciones (2)")

    # Completion: the banner gives the final figures and the way to the variance report.
    manager_page.get_by_role("button", name="Completar inventario").click()
    manager_page.get_by_role("dialog").get_by_role("button", name="Completar", exact=True).click()
    for page in pages:
        banner = page.locator("#terminated")
        expect(banner).to_be_visible()
        figures = banner.locator("#terminated-summary .summary-figure")
        expect(figures).to_have_text(
            ["Contados4", "Encontrados2", "Faltan2", "No esperados1", "VIN dudosos1"], timeout=5000
        )
        report = banner.get_by_role("link", name="Ver informe de diferencias")
        expect(report).to_have_attribute("href", "/inventory/alfa-romeo/10/2025/report/")
    report.click()
    expect(counter_page.get_by_role("heading", name="Informe de diferencias")).to_be_visible()


def test_blind_counting_shows_the_counter_the_figures_but_not_what_is_missing(open_page, staff, luis, alfa):
    import_books(alfa)
    Agency.objects.filter(pk=alfa.pk).update(blind_count=True)
    counter_page = open_page(luis, ROOM)
    manager_page = open_page(staff, ROOM)
    for page in (counter_page, manager_page):
        wait_online(page)
        expect_found(page, 0, 4)
    expect(manager_page.locator("#missing-list li")).to_have_count(4)
    expect(counter_page.locator("#missing-panel")).to_have_count(0)

    scan(counter_page, IN_PATIO_A)
    scan(counter_page, "UNKNOWN-9")
    for page in (counter_page, manager_page):
        expect_found(page, 1, 4)
        expect(page.locator("#progress-missing")).to_have_text("3")
        # Each scan's own mark still tells the counter whether that vehicle is in the books.
        expect(row(page, "UNKNOWN-9")).to_have_attribute("data-match", "unexpected", timeout=1000)
    expect(missing_item(manager_page, IN_PATIO_A)).to_have_count(0)
    expect(counter_page.get_by_text("Faltan por encontrar")).to_have_count(0)
    assert not [url for url in fetched_urls(counter_page) if "/expected/" in url]
    assert [url for url in fetched_urls(manager_page) if "/expected/?state=missing" in url]


def test_a_list_imported_during_the_count_reaches_the_open_page(open_page, server, staff, alfa):
    inventory = services.inventory_get_or_open(room=Room(agency=alfa, month=10, year=2025))
    expected_url = f"{server.http}/api/inventories/{inventory.pk}/expected/"
    manager = {"Authorization": f"Token {token_for(staff)}"}
    page = open_page(staff, ROOM)
    wait_online(page)
    for code in ("UNLISTED-0", IN_PATIO_A, MISREAD_VIN):
        scan(page, code)
        expect(row(page, code)).to_be_visible()
    # No list yet: a plain counter, no bar, no missing list; only the misread VIN is marked.
    expect(page.locator("#progress-counted")).to_have_text("3 vehículos contados")
    expect(page.get_by_role("progressbar")).to_be_hidden()
    expect(page.locator("#missing-panel")).to_be_hidden()
    expect(row(page, "UNLISTED-0").locator(".scan-mark")).to_have_count(0)
    expect(row(page, MISREAD_VIN)).to_have_attribute("data-match", "flagged")

    # A manager imports the books through the API while the page is open (the server that
    # imports is the one that tells the room: this test has no shared channel layer).
    upload = {"name": "libros.csv", "mimeType": "text/csv", "buffer": csv_bytes(BOOKS)}
    response = page.request.post(expected_url, headers=manager, multipart={"file": upload})
    assert response.status == 201, response.text()
    expect_found(page, 1, 4)
    expect(page.locator("#missing-panel")).to_be_visible()
    expect(page.locator("#missing-list li")).to_have_count(3)
    expect(missing_item(page, IN_PATIO_A)).to_have_count(0)
    # The scans already counted are matched again.
    expect(row(page, "UNLISTED-0")).to_have_attribute("data-match", "unexpected")
    expect(row(page, IN_PATIO_A)).to_have_attribute("data-match", "expected")

    assert page.request.delete(expected_url, headers=manager).status == 200
    expect(page.locator("#progress-counted")).to_have_text("3 vehículos contados")
    expect(page.locator("#missing-panel")).to_be_hidden()
    expect(row(page, "UNLISTED-0").locator(".scan-mark")).to_have_count(0)
    expect(row(page, MISREAD_VIN)).to_have_attribute("data-match", "flagged")


def test_progress_speaks_english_through_the_javascript_catalog(open_page, staff, alfa):
    import_books(alfa)
    page = open_page(staff, ROOM, locale="en-US")
    wait_online(page)
    expect(page.locator("#progress-text")).to_have_text("0 of 4 found")
    scan(page, IN_PATIO_A)
    scan(page, "UNKNOWN-9")
    expect(page.locator("#progress-text")).to_have_text("1 of 4 found")
    expect(page.get_by_role("progressbar")).to_have_attribute("aria-valuetext", "1 of 4 found")
    expect(row(page, "UNKNOWN-9").locator(".scan-mark")).to_have_text("Unexpected")
    expect(page.get_by_label("Location").locator("option").first).to_have_text("All locations (3)")


def test_markup_in_the_books_renders_as_text(open_page, staff, alfa):
    location = "<b>Patio</b> <img src=x onerror=alert(1)>"
    description = '<script>alert("desc")</script>'
    import_books(
        alfa,
        rows=[
            ["VIN", "Descripción", "Ubicación", "Stock"],
            [IN_PATIO_A, description, location, "<i>S1</i>"],
            [IN_TALLER, "Fiat 500", "Taller", "S4"],
        ],
    )
    dialogs = []
    page = open_page(staff, ROOM)
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    wait_online(page)
    item = missing_item(page, IN_PATIO_A)
    expect(item.locator(".missing-description")).to_have_text(description)
    expect(item.locator(".missing-meta")).to_have_text(f"Stock <i>S1</i> · {location}")
    expect(page.get_by_label("Ubicación").locator("option").nth(1)).to_have_text(f"{location} (1)")
    assert (
        page.locator("#missing-panel script, #missing-panel img, #missing-panel b, #missing-panel i").count()
        == 0
    )
    assert dialogs == []


REPORT = "/inventory/alfa-romeo/10/2025/report/"
PHONE = {"width": 390, "height": 844}


def counted_books(agency, counter) -> Inventory:
    """The books, one of them found and one vehicle that is not in them."""
    inventory = import_books(agency)
    services.scan_record(
        inventory=inventory, user=counter, code=IN_PATIO_A, scanned_at="2025-10-31T09:00:00Z"
    )
    services.scan_record(
        inventory=inventory, user=counter, code="UNKNOWN-9", scanned_at="2025-10-31T09:30:00Z"
    )
    return inventory


def variance_row(page, code):
    return page.locator(f'tr.variance-row[data-code="{code}"]')


def test_a_manager_explains_variances_on_the_report_without_reloading(open_page, staff, luis, alfa):
    inventory = counted_books(alfa, luis)
    page = open_page(staff, REPORT)
    unexplained = page.locator("#figure-unexplained")
    expect(unexplained).to_have_text("4")  # three missing, one unexpected
    page.evaluate("window.loadedOnce = true")

    taller = variance_row(page, IN_TALLER)
    taller.get_by_label(f"Motivo de {IN_TALLER}").select_option(label="En otra sucursal")
    taller.get_by_label(f"Nota de {IN_TALLER}").fill("En Puebla")
    taller.get_by_role("button", name=f"Guardar {IN_TALLER}").click()
    expect(taller.get_by_role("status")).to_have_text("Guardado: En otra sucursal.")
    expect(unexplained).to_have_text("3")
    expect(page.locator('#reasons-card tr[data-reason="other_branch"]')).to_contain_text("1")
    expect(page.locator("#reasons-card")).to_be_visible()

    # "Otro" needs a note: the server's refusal shows next to the row and nothing changes.
    unknown = variance_row(page, "UNKNOWN-9")
    unknown.get_by_label("Motivo de UNKNOWN-9").select_option(label="Otro")
    unknown.get_by_role("button", name="Guardar UNKNOWN-9").click()
    status = unknown.get_by_role("status")
    expect(status).to_have_text("Con el motivo «Otro», explica la diferencia en la nota.")
    expect(status).to_have_attribute("data-state", "error")
    expect(unknown.get_by_label("Nota de UNKNOWN-9")).to_have_attribute("aria-invalid", "true")
    expect(unexplained).to_have_text("3")
    unknown.get_by_label("Nota de UNKNOWN-9").fill("Unidad de cortesía <b>VIP</b>")
    unknown.get_by_role("button", name="Guardar UNKNOWN-9").click()
    expect(status).to_have_text("Guardado: Otro.")
    expect(unexplained).to_have_text("2")

    # Clearing a reason makes the variance unexplained again.
    taller.get_by_label(f"Motivo de {IN_TALLER}").select_option(value="")
    taller.get_by_role("button", name=f"Guardar {IN_TALLER}").click()
    expect(taller.get_by_role("status")).to_have_text("Guardado: sin explicar.")
    expect(unexplained).to_have_text("3")
    expect(page.locator('#reasons-card tr[data-reason="other_branch"]')).to_be_hidden()
    assert page.evaluate("window.loadedOnce") is True  # never reloaded

    def stored():
        variances = reconciliation_selectors.variances_of(inventory)
        every = variances["missing"] + variances["unexpected"]
        return {(item["code"], item["reason"], item["note"]) for item in every if item["reason"]}

    assert in_thread(stored) == {("UNKNOWN-9", "other", "Unidad de cortesía <b>VIP</b>")}
    # What was saved is there after a reload too, as text.
    page.reload()
    expect(unexplained).to_have_text("3")
    expect(variance_row(page, "UNKNOWN-9").get_by_label("Nota de UNKNOWN-9")).to_have_value(
        "Unidad de cortesía <b>VIP</b>"
    )


def test_a_manager_imports_the_list_on_the_report_and_sees_bad_lines(open_page, staff, luis, alfa):
    services.inventory_get_or_open(room=Room(agency=alfa, month=10, year=2025))
    page = open_page(staff, REPORT)
    expect(page.get_by_text("no tiene lista esperada")).to_be_visible()
    upload = page.get_by_label("Archivo")
    bad = csv_bytes([["VIN", "Año"], ["A1", "2020"], ["", "2020"], ["A1", "1800"]])
    upload.set_input_files({"name": "malo.csv", "mimeType": "text/csv", "buffer": bad})
    page.get_by_role("button", name="Importar", exact=True).click()
    expect(page.locator("#import-status")).to_contain_text("no se importó nada")
    lines = page.locator("#import-errors tbody tr")
    expect(lines.first).to_contain_text("3")
    expect(lines.first).to_contain_text("Falta el VIN")
    assert lines.locator("td.num").all_inner_texts()[:2] == ["3", "4"]

    upload.set_input_files({"name": "libros.csv", "mimeType": "text/csv", "buffer": csv_bytes(BOOKS)})
    page.get_by_role("button", name="Importar", exact=True).click()
    expect(page.locator("#figure-expected")).to_have_text("4", timeout=5000)
    expect(page.locator("tr.variance-row")).to_have_count(4)
    expect(page.locator("#import-errors")).to_be_hidden()


def test_counters_see_no_forms_and_phones_get_legible_stacked_tables(open_page, staff, luis, alfa):
    counted_books(alfa, luis)
    counter = open_page(luis, REPORT, viewport=PHONE)
    expect(counter.get_by_role("heading", name="Informe de diferencias")).to_be_visible()
    expect(counter.locator(".explain-form, #import-form")).to_have_count(0)

    manager = open_page(staff, REPORT, viewport=PHONE)
    expect(manager.locator(".explain-form")).to_have_count(4)
    for page in (counter, manager):
        # Nothing scrolls the page sideways; the chart's labels keep a readable size.
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        sizes = page.locator(".chart .tick").evaluate_all(
            "ticks => ticks.map((tick) => parseFloat(getComputedStyle(tick).fontSize))"
        )
        assert len(sizes) == 5 and min(sizes) >= 11, sizes
        # The variance rows are stacked, each value with its column's name.
        cell = page.locator(f'tr.variance-row[data-code="{IN_TALLER}"] td').first
        assert cell.evaluate("cell => getComputedStyle(cell).display") == "grid"
    expect(manager.locator(".scroll-box").first).to_have_attribute(
        "data-overflowing", re.compile("true|false")
    )


def test_the_report_speaks_english_to_managers(open_page, staff, luis, alfa):
    counted_books(alfa, luis)
    page = open_page(staff, REPORT, locale="en-US")
    unknown = variance_row(page, "UNKNOWN-9")
    expect(unknown.locator("select option").first).to_have_text(re.compile(r"\S"))
    unknown.locator("select").select_option(value="misread")
    unknown.locator("button[type=submit]").click()
    expect(unknown.locator(".explain-status")).to_have_attribute("data-state", "saved")
    expect(page.locator("#figure-unexplained")).to_have_text("3")


def test_a_long_missing_list_comes_a_page_at_a_time_and_each_page_can_be_explained(open_page, staff, alfa):
    rows = [["VIN", "Ubicación"]] + [[f"MISS-{n:03d}", "Patio A"] for n in range(150)]
    inventory = in_thread(import_books, alfa, rows)
    page = open_page(staff, REPORT)
    missing = page.locator("#missing tr.variance-row")
    expect(missing).to_have_count(100)
    expect(page.locator("#missing")).to_contain_text("Patio A (150)")
    expect(page.locator("#figure-unexplained")).to_have_text("150")
    page.locator("#missing").get_by_role("link", name="Siguiente").click()
    expect(page).to_have_url(re.compile(r"\?page=2#missing$"))
    expect(missing).to_have_count(50)
    expect(missing.first).to_have_attribute("data-code", "MISS-100")
    expect(page.locator("#missing")).to_contain_text("Página 2 de 2")
    last = variance_row(page, "MISS-149")
    last.get_by_label("Motivo de MISS-149").select_option(label="En tránsito")
    last.get_by_role("button", name="Guardar MISS-149").click()
    expect(last.get_by_role("status")).to_have_text("Guardado: En tránsito.")
    expect(page.locator("#figure-unexplained")).to_have_text("149")

    def reasons():
        return [
            item["code"]
            for item in reconciliation_selectors.variances_of(inventory)["missing"]
            if item["reason"]
        ]

    assert in_thread(reasons) == ["MISS-149"]
