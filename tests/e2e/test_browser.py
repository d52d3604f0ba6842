"""The live-scan page in a real Chromium against a real daphne server."""

import os
import re
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from inventory import services
from inventory.access import Room
from inventory.models import Inventory, InventoryEvent, Scan
from inventory.reconciliation import services as reconciliation
from tests.e2e.conftest import in_thread
from tests.inventory.reconciliation_helpers import csv_bytes
from tests.servers import ROOT, start_server

pytestmark = [
    pytest.mark.browser,
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
]

ROOM = "/inventory/alfa-romeo/10/2025/"
SCREENSHOTS = ROOT / "test-results" / "screenshots"
DOCS_SCREENSHOTS = ROOT / "docs" / "screenshots"
OUTBOX_CODES = """() => Object.keys(localStorage)
    .filter((key) => key.startsWith("inventario:outbox:"))
    .flatMap((key) => JSON.parse(localStorage.getItem(key)))
    .map((item) => ({ id: item.id, code: item.code }))"""


def stored_codes():
    return in_thread(lambda: sorted(Scan.objects.values_list("code", flat=True)))


def wait_online(page, timeout=10000):
    expect(page.locator("#connection")).to_have_attribute("data-state", "online", timeout=timeout)


def scan(page, code):
    page.keyboard.type(code)  # into whatever has focus: the page keeps it on the scan field
    page.keyboard.press("Enter")


def row(page, code, state="confirmed"):
    return page.locator(f'#scan-list li[data-code="{code}"][data-state="{state}"]')


def listed_codes(page):
    return page.locator("#scan-list li").evaluate_all("rows => rows.map((row) => row.dataset.code)")


def count_sockets(page):
    opened = []
    page.on("websocket", lambda ws: opened.append(ws.url))
    return opened


def test_two_people_scan_remove_and_complete_together(open_page, ana, luis, alfa):
    ana_page = open_page(ana, ROOM)
    luis_page = open_page(luis, ROOM)
    wait_online(ana_page)
    wait_online(luis_page)
    expect(ana_page.locator("#people")).to_contain_text("Luis Pérez")
    expect(luis_page.locator("#people")).to_contain_text("Ana García")

    scan(ana_page, "VIN-0001")
    expect(row(ana_page, "VIN-0001")).to_be_visible()
    expect(row(luis_page, "VIN-0001")).to_be_visible(timeout=1000)
    expect(row(luis_page, "VIN-0001")).to_contain_text("Ana García")
    expect(luis_page.locator("#notices")).to_contain_text("Ana García escaneó VIN-0001")
    expect(ana_page.locator("#scan-feedback")).to_contain_text("VIN-0001 registrado")
    for page, mine in ((ana_page, "1"), (luis_page, "0")):
        expect(page.locator("#count-total")).to_have_text("1")
        expect(page.locator("#count-mine")).to_have_text(mine)

    # A duplicate is refused, naming who scanned it first.
    scan(luis_page, "VIN-0001")
    expect(row(luis_page, "VIN-0001", "failed")).to_contain_text("Ya lo escaneó Ana García.")
    expect(luis_page.locator("#scan-feedback")).to_contain_text("Ana García")
    assert stored_codes() == ["VIN-0001"]

    # A removal disappears for both.
    scan(luis_page, "VIN-0002")
    expect(row(luis_page, "VIN-0002")).to_be_visible()
    expect(row(ana_page, "VIN-0002")).to_be_visible(timeout=1000)
    row(ana_page, "VIN-0002").get_by_role("button", name="Eliminar VIN-0002").click()
    expect(ana_page.locator('#scan-list li[data-code="VIN-0002"]')).to_have_count(0)
    expect(luis_page.locator('#scan-list li[data-code="VIN-0002"]')).to_have_count(0, timeout=1000)
    expect(luis_page.locator("#notices")).to_contain_text("Ana García eliminó VIN-0002")
    expect(ana_page.locator("#scan-input")).to_be_focused()
    assert stored_codes() == ["VIN-0001"]

    # Completion ends every open session, and nobody reconnects.
    sockets = [count_sockets(page) for page in (ana_page, luis_page)]
    luis_page.get_by_role("button", name="Completar inventario").click()
    luis_page.get_by_role("dialog").get_by_role("button", name="Completar", exact=True).click()
    message = "Tu sesión ha sido terminada porque Luis Pérez completó el inventario."
    for page in (ana_page, luis_page):
        expect(page.locator("#terminated")).to_contain_text(message)
        expect(page.locator("#scan-input")).to_be_disabled()
        expect(page.locator("#complete-button")).to_be_disabled()
        expect(page.get_by_role("link", name="Volver a mis agencias").last).to_be_visible()
        expect(page.locator("#connection")).to_have_attribute("data-state", "closed")
    assert in_thread(lambda: Inventory.objects.get().status) == Inventory.Status.COMPLETED
    ana_page.wait_for_timeout(2000)
    assert sockets == [[], []]

    # Opening it again shows the completed inventory, read-only, without a socket.
    later = open_page(ana, ROOM)
    expect(later.locator("#terminated")).to_contain_text("El inventario ha sido completado por Luis Pérez.")
    expect(later.locator("#scan-input")).to_be_disabled()
    expect(row(later, "VIN-0001")).to_be_visible()


def test_too_long_code_is_refused_whole_and_a_stray_enter_is_ignored(open_page, ana, alfa):
    page = open_page(ana, ROOM)
    failed = []
    page.on("response", lambda response: response.status >= 400 and failed.append(response.url))
    wait_online(page)

    # A scanner that types 70 characters: refused as it is, never cut to 64 and stored.
    scan(page, "V" * 70)
    expect(page.locator("#scan-feedback")).to_contain_text("no puede tener más de 64 caracteres")
    expect(page.locator("#scan-list li")).to_have_count(0)
    assert stored_codes() == []

    # An empty Enter is ignored quietly: no browser validation bubble, no message.
    page.locator("#scan-input").fill("   ")
    page.keyboard.press("Enter")
    assert page.locator("#scan-input").evaluate("(field) => field.validationMessage") == ""
    scan(page, "V" * 64)
    expect(row(page, "V" * 64)).to_be_visible()
    assert stored_codes() == ["V" * 64]
    assert failed == []  # nor a missing favicon


def test_scanning_your_own_code_again_says_you_already_scanned_it(open_page, ana, luis, alfa):
    inventory = services.inventory_get_or_open(room=Room(agency=alfa, month=10, year=2025))
    services.scan_record(inventory=inventory, user=luis, code="LUIS-1")
    page = open_page(ana, ROOM)
    wait_online(page)
    scan(page, "ANA-1")
    expect(row(page, "ANA-1")).to_be_visible()

    scan(page, "ana-1")  # the server counts a code once whatever its letter case
    expect(row(page, "ana-1", "failed")).to_contain_text("Ya lo escaneaste tú.")
    expect(page.locator("#scan-feedback")).to_have_text("ana-1: Ya lo escaneaste tú.")
    scan(page, "LUIS-1")
    expect(row(page, "LUIS-1", "failed")).to_contain_text("Ya lo escaneó Luis Pérez.")
    assert stored_codes() == ["ANA-1", "LUIS-1"]


def test_english_page_says_in_english_who_completed_the_inventory(open_page, ana, luis, alfa):
    page = open_page(ana, ROOM, locale="en-US")
    luis_page = open_page(luis, ROOM)
    wait_online(page)
    wait_online(luis_page)
    expect(page.locator("#connection")).to_have_text("Online")

    luis_page.get_by_role("button", name="Completar inventario").click()
    luis_page.get_by_role("dialog").get_by_role("button", name="Completar", exact=True).click()
    expect(page.locator("#notices")).to_contain_text("The inventory has been completed by Luis Pérez.")
    expect(page.locator("#terminated")).to_contain_text(
        "Your session has been terminated because Luis Pérez completed the inventory."
    )
    # The Spanish page keeps protocol v1's words.
    expect(luis_page.locator("#notices")).to_contain_text("El inventario ha sido completado por Luis Pérez.")
    expect(luis_page.locator("#terminated")).to_contain_text(
        "Tu sesión ha sido terminada porque Luis Pérez completó el inventario."
    )
    for text in (page.locator("#notices").inner_text(), page.locator("#terminated").inner_text()):
        assert "completado" not in text and "terminada" not in text

    page.reload()
    expect(page.locator("#terminated")).to_contain_text("The inventory has been completed by Luis Pérez.")
    expect(page.locator("#scan-input")).to_be_disabled()


def test_offline_event_shows_offline_at_once_and_queued_scans_go_once_back_online(open_page, ana, alfa):
    page = open_page(ana, ROOM)
    scans_sent = []
    page.on(
        "websocket",
        lambda ws: ws.on(
            "framesent", lambda payload: '"scan_added"' in payload and scans_sent.append(payload)
        ),
    )
    wait_online(page)

    expect(page.locator("#people-stale")).to_be_hidden()
    page.context.set_offline(True)
    expect(page.locator("#connection")).to_have_attribute("data-state", "offline", timeout=1000)
    expect(page.locator("#connection")).to_have_text("Sin conexión")
    # Who was in the room is shown as last known, not as if it were live.
    expect(page.locator("#people")).to_have_class(re.compile(r"\bis-stale\b"))
    expect(page.locator("#people-stale")).to_have_text("Sin conexión: la lista se actualizará al reconectar.")
    scan(page, "QUEUED-1")
    expect(row(page, "QUEUED-1", "pending")).to_contain_text("En cola")
    expect(page.locator("#scan-feedback")).to_have_text("QUEUED-1 guardado: se enviará al reconectar.")
    expect(page.locator("#count-pending")).to_have_text("1")
    page.wait_for_timeout(1500)  # longer than the first reconnect delays: nothing is tried offline
    assert [item["code"] for item in page.evaluate(OUTBOX_CODES)] == ["QUEUED-1"]
    assert stored_codes() == []
    assert scans_sent == []

    page.context.set_offline(False)
    wait_online(page, timeout=3000)
    expect(page.locator("#people-stale")).to_be_hidden()
    expect(page.locator("#people")).not_to_have_class(re.compile(r"\bis-stale\b"))
    expect(page.locator("#people .person-name")).to_have_text(["Ana García"])
    expect(row(page, "QUEUED-1")).to_be_visible()
    expect(page.locator("#scan-feedback")).to_have_text("QUEUED-1 registrado")
    expect(page.locator("#count-pending")).to_have_text("0")
    assert stored_codes() == ["QUEUED-1"]
    assert len(scans_sent) == 1
    assert page.evaluate(OUTBOX_CODES) == []


def test_page_resyncs_after_the_server_restarts_and_sends_offline_scans_once(
    open_page, server, ana, luis, alfa
):
    page = open_page(ana, ROOM)
    wait_online(page)
    for code in ("BEFORE-1", "GONE-1"):
        scan(page, code)
        expect(row(page, code)).to_be_visible()

    server.stop()
    expect(page.locator("#connection")).to_have_attribute("data-state", "reconnecting")
    expect(page.locator("#connection")).to_contain_text("Reconectando")

    # While the page is away, Luis changes the inventory through the service layer.
    inventory = in_thread(Inventory.objects.get)
    in_thread(services.scan_record, inventory=inventory, user=luis, code="WHILE-AWAY")
    in_thread(services.scan_remove, inventory=inventory, user=luis, code="GONE-1")

    # Scans typed while the server is down wait in localStorage.
    for code in ("OFFLINE-1", "OFFLINE-2", "OFFLINE-3"):
        scan(page, code)
        expect(row(page, code, "pending")).to_be_visible()
    expect(page.locator("#count-pending")).to_have_text("3")
    outbox = page.evaluate(OUTBOX_CODES)
    assert [item["code"] for item in outbox] == ["OFFLINE-1", "OFFLINE-2", "OFFLINE-3"]
    # As if OFFLINE-1 had reached the server just before it went down, but its answer had not:
    # the retry carries the same id, so it must not count twice.
    in_thread(services.scan_record, inventory=inventory, user=ana, code="OFFLINE-1", scan_id=outbox[0]["id"])

    restarted = start_server(port=server.port)
    try:
        wait_online(page, timeout=30000)
        for code in ("BEFORE-1", "WHILE-AWAY", "OFFLINE-1", "OFFLINE-2", "OFFLINE-3"):
            expect(row(page, code)).to_be_visible()
        expect(page.locator('#scan-list li[data-code="GONE-1"]')).to_have_count(0)
        expect(page.locator("#count-pending")).to_have_text("0")
        expect(page.locator("#count-total")).to_have_text("5")

        stored = stored_codes()
        assert stored == ["BEFORE-1", "OFFLINE-1", "OFFLINE-2", "OFFLINE-3", "WHILE-AWAY"]
        assert sorted(listed_codes(page)) == stored
        assert in_thread(lambda: str(Scan.objects.get(code="OFFLINE-1").uid)) == outbox[0]["id"]
        added = in_thread(
            lambda: [
                event.facts["scan"]["code"]
                for event in InventoryEvent.objects.filter(type=InventoryEvent.Type.SCAN_ADDED)
            ]
        )
        assert sorted(added) == sorted([*stored, "GONE-1"])
        assert page.evaluate(OUTBOX_CODES) == []
    finally:
        restarted.stop()


@pytest.mark.parametrize("damage", ["pruned_log", "rewound_database"])
def test_page_resyncs_when_the_server_cannot_replay_what_it_missed(
    open_page, server, ana, luis, alfa, damage
):
    page = open_page(ana, ROOM)
    requests = []
    page.on("request", lambda request: requests.append(request.url))
    wait_online(page)
    for code in ("KEPT-1", "GONE-1"):
        scan(page, code)
        expect(row(page, code)).to_be_visible()

    server.stop()
    expect(page.locator("#connection")).to_have_attribute("data-state", "reconnecting")
    inventory = in_thread(Inventory.objects.get)
    in_thread(services.scan_record, inventory=inventory, user=luis, code="WHILE-AWAY")
    in_thread(services.scan_remove, inventory=inventory, user=luis, code="GONE-1")
    if damage == "pruned_log":
        # The log no longer holds what the page missed: the server answers with a snapshot.
        in_thread(InventoryEvent.objects.all().delete)
    else:
        # The database went back in time: the page's seq is ahead of the server's. The server
        # answers with a snapshot of what it really holds (since 061a2cd; it used to refuse the
        # `since`, and the page then refetched the list over REST).
        in_thread(InventoryEvent.objects.all().delete)
        in_thread(Inventory.objects.update, last_seq=0)

    restarted = start_server(port=server.port)
    try:
        page.evaluate("dispatchEvent(new Event('online'))")  # what the browser does when the network is back
        wait_online(page, timeout=30000)
        expect(row(page, "WHILE-AWAY")).to_be_visible()
        expect(page.locator('#scan-list li[data-code="GONE-1"]')).to_have_count(0)
        stored = stored_codes()
        assert stored == ["KEPT-1", "WHILE-AWAY"]
        assert sorted(listed_codes(page)) == stored
        # The snapshot carried the list: no need to fetch it over REST.
        assert not any(f"/api/inventories/{inventory.pk}/scans/" in url for url in requests)

        # The page goes on from the server's seq: someone else's next scan reaches it live.
        luis_page = open_page(luis, ROOM)
        wait_online(luis_page)
        scan(luis_page, "AFTER-1")
        expect(row(luis_page, "AFTER-1")).to_be_visible()
        expect(row(page, "AFTER-1")).to_be_visible(timeout=1000)
    finally:
        restarted.stop()


def test_markup_in_codes_and_names_renders_as_text(open_page, make_user, luis, alfa):
    name = "<script>alert('name')</script> <img src=x onerror=alert(1)>"
    code = '<script>alert("code")</script>'
    mallory = make_user("mallory", first_name=name, agencies=[alfa])
    dialogs = []
    mallory_page = open_page(mallory, ROOM)
    luis_page = open_page(luis, ROOM)
    for page in (mallory_page, luis_page):
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    wait_online(mallory_page)
    wait_online(luis_page)

    scan(mallory_page, code)
    expect(mallory_page.locator("#scan-list li .scan-code")).to_have_text(code)
    expect(luis_page.locator("#scan-list li .scan-code")).to_have_text(code, timeout=1000)
    expect(luis_page.locator("#scan-list li .scan-user")).to_have_text(name)
    expect(luis_page.locator("#people")).to_contain_text(name)
    expect(luis_page.locator("#notices")).to_contain_text(f"{name} escaneó {code}")
    for page in (mallory_page, luis_page):
        assert page.locator("main script:not([type]), main img, #notices script, #notices img").count() == 0
    mallory_page.goto(luis_page.url.split("/inventory/")[0] + "/")
    expect(mallory_page.locator(".whoami")).to_have_text(name)
    assert dialogs == []
    assert stored_codes() == [code]


# The showroom's books for the screenshots: 14 vehicles in four places.
SHOWROOM_BOOKS = [
    ["VIN", "Stock", "Marca", "Modelo", "Año", "Color", "Ubicación"],
    ["3VW2K7AJ5EM388202", "A-101", "Volkswagen", "Jetta", "2014", "Blanco", "Patio A"],
    ["1HGCM82633A004352", "A-102", "Honda", "Accord", "2003", "Plata", "Patio A"],
    ["ZAR94000007391145", "A-103", "Alfa Romeo", "Giulia", "2024", "Rojo", "Exhibición"],
    ["WP0ZZZ99ZTS392124", "A-104", "Porsche", "911", "2024", "Gris", "Exhibición"],
    ["ZFA3120000J000000", "A-105", "Fiat", "500", "2025", "Azul", "Patio B"],
    ["ZFA3120000J000001", "A-106", "Fiat", "500", "2025", "Verde", "Patio B"],
    ["ZAR94000007391201", "A-107", "Alfa Romeo", "Tonale", "2025", "Negro", "Exhibición"],
    ["ZAR94000007391202", "A-108", "Alfa Romeo", "Tonale", "2025", "Blanco", "Patio A"],
    ["ZAR94000007391203", "A-109", "Alfa Romeo", "Stelvio", "2024", "Azul", "Patio A"],
    ["ZAR94000007391204", "A-110", "Alfa Romeo", "Giulia", "2025", "Gris", "Patio B"],
    ["ZAR94000007391205", "A-111", "Alfa Romeo", "Junior", "2025", "Amarillo", "Taller"],
    ["ZAR94000007391206", "A-112", "Alfa Romeo", "Stelvio", "2025", "Rojo", "Patio B"],
    ["ZAR94000007391207", "A-113", "Alfa Romeo", "Giulia", "2023", "Blanco", "Taller"],
    ["ZAR94000007391208", "A-114", "Alfa Romeo", "Tonale", "2024", "Gris", "Patio A"],
]


def test_live_page_screenshots_on_desktop_and_phone(open_page, ana, luis, make_user, alfa):
    maria = make_user("maria", first_name="María", last_name="López", agencies=[alfa])
    inventory = services.inventory_get_or_open(room=Room(agency=alfa, month=10, year=2025))
    reconciliation.expected_import_file(
        inventory=inventory, upload=csv_bytes(SHOWROOM_BOOKS), filename="existencias.csv"
    )
    now = timezone.now()
    vins = [
        (luis, "3VW2K7AJ5EM388202"),
        (maria, "1HGCM82633A004352"),
        (ana, "ZAR94000007391145"),
        (luis, "WP0ZZZ99ZTS392124"),
        (maria, "JN1AZ4EH7DM123456"),  # not in the books
        (ana, "5YJ3E1EA7KF317000"),  # not in the books, and fails the VIN check: a likely misread
    ]
    for minutes, (user, vin) in enumerate(vins):
        services.scan_record(
            inventory=inventory,
            user=user,
            code=vin,
            scanned_at=(now - timedelta(minutes=40 - 7 * minutes)).isoformat(),
        )
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    luis_page = open_page(luis, ROOM)
    wait_online(luis_page)
    shots = {
        "live-desktop.png": {},
        "live-phone.png": {
            "viewport": {"width": 390, "height": 844},
            "device_scale_factor": 2,
            "is_mobile": True,
            "has_touch": True,
        },
    }
    for index, (filename, options) in enumerate(shots.items()):
        page = open_page(ana, ROOM, **options)
        wait_online(page)
        expect(page.locator("#people .person")).to_have_count(2)
        scan(page, f"ZFA3120000J{index:06d}")
        expect(row(page, f"ZFA3120000J{index:06d}")).to_be_visible()
        expect(page.locator("#scan-feedback")).to_contain_text("registrado")
        expect(page.locator("#progress-text")).to_have_text(f"{5 + index} de 14 encontrados")
        expect(page.locator("#missing-list li")).to_have_count(9 - index)
        expect(row(page, "5YJ3E1EA7KF317000")).to_have_attribute("data-match", "flagged")
        path = SCREENSHOTS / filename
        page.screenshot(path=str(path), animations="disabled")
        assert path.stat().st_size > 10_000
        if os.environ.get("UPDATE_SCREENSHOTS"):  # `make screenshots`: refresh the README's pictures
            shutil.copyfile(path, DOCS_SCREENSHOTS / filename)
        page.context.close()
    assert re.fullmatch(r"\d+", luis_page.locator("#count-total").inner_text())
    assert Path(DOCS_SCREENSHOTS / "live-phone.png").exists()


def test_reconnect_backoff_grows_exponentially_with_jitter_and_a_cap(open_page, ana, alfa):
    page = open_page(ana, ROOM)
    wait_online(page)
    delays = page.evaluate(
        """async () => {
            const { backoffDelay } = await import("/static/js/live-client.js");
            const low = [...Array(8).keys()].map((attempt) => backoffDelay(attempt, undefined, () => 0));
            const high = [...Array(8).keys()].map((attempt) => backoffDelay(attempt, undefined, () => 1));
            return { low, high };
        }"""
    )
    assert delays["high"] == [500, 1000, 2000, 4000, 8000, 15000, 15000, 15000]
    assert delays["low"] == [delay // 2 for delay in delays["high"]]
