"""A room's page opens with no signal (service worker), in a real Chromium against a real daphne server.

The test server is http://127.0.0.1:PORT, a secure context for the browser, so the service
worker registers as it would over HTTPS.
"""

import re
import shutil
import time

import pytest
from django.conf import settings
from playwright.sync_api import expect

from inventory import services
from inventory.access import Room
from inventory.models import Inventory, Scan
from tests.e2e.conftest import in_thread
from tests.e2e.fake_camera import labels_frame, write_y4m
from tests.e2e.test_browser import OUTBOX_CODES, ROOM, row, scan, wait_online
from tests.servers import start_server

pytestmark = [
    pytest.mark.browser,
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
]

CACHED_URLS = """async () => {
    const urls = [];
    for (const name of await caches.keys()) {
        if (!name.startsWith("inventario-")) continue;
        const cache = await caches.open(name);
        urls.push(...(await cache.keys()).map((request) => new URL(request.url).pathname));
    }
    return urls;
}"""
ENGINE = "/static/vendor/barcode-detector/zxing_reader.wasm"
KEPT_ROOMS = """() => Object.keys(localStorage).filter((key) => key.startsWith("inventario:room:"))"""


def kept_for_offline(page, timeout=15):
    """Wait until the service worker is active and has kept this page and the app's shell."""
    deadline = time.monotonic() + timeout
    while True:
        active = page.evaluate("navigator.serviceWorker.getRegistration().then((r) => Boolean(r?.active))")
        cached = page.evaluate(CACHED_URLS) if active else []
        if ROOM in cached and ENGINE in cached:
            return
        assert time.monotonic() < deadline, f"not kept for offline use: {cached}"
        page.wait_for_timeout(200)


def cache_names(page):
    return sorted(page.evaluate("caches.keys()"))


def kept_code(page, code):
    page.wait_for_function(
        "(code) => Object.keys(localStorage).some((key) => key.startsWith('inventario:room:')"
        " && localStorage.getItem(key).includes(code))",
        arg=code,
    )


def stored(code):
    return in_thread(
        lambda: list(Scan.objects.filter(code=code).values_list("scanned_by__username", flat=True))
    )


def test_a_room_opened_before_opens_offline_with_its_last_scans_and_sends_its_queue_once(
    open_page, ana, luis, alfa
):
    inventory = services.inventory_get_or_open(room=Room(agency=alfa, month=10, year=2025))
    services.scan_record(inventory=inventory, user=luis, code="SEEN-1")
    page = open_page(ana, ROOM)
    luis_page = open_page(luis, ROOM)
    wait_online(page)
    wait_online(luis_page)
    expect(page.locator("#people")).to_contain_text("Luis Pérez")
    kept_for_offline(page)
    # A scan after the page's HTML was kept: only the page's own record of the room has it.
    scan(luis_page, "LIVE-1")
    expect(row(page, "LIVE-1")).to_be_visible()
    kept_code(page, "LIVE-1")
    seq_before = in_thread(lambda: Inventory.objects.get().last_seq)

    # No signal: reopening the room shows it as it was last seen.
    page.context.set_offline(True)
    page.reload()
    for code in ("SEEN-1", "LIVE-1"):
        expect(row(page, code)).to_be_visible()
    expect(page.locator("#count-total")).to_have_text("2")
    expect(page.locator("#connection")).to_have_attribute("data-state", "offline")
    expect(page.locator("#connection")).to_have_text("Sin conexión")
    expect(page.locator("#people")).to_contain_text("Luis Pérez")
    expect(page.locator("#people")).to_have_class(re.compile(r"\bis-stale\b"))

    # A scan waits in the queue; meanwhile Luis goes on counting.
    sockets = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    sent = []
    page.on("websocket", lambda ws: ws.on("framesent", lambda f: "OFFLINE-1" in f and sent.append(f)))
    scan(page, "OFFLINE-1")
    expect(row(page, "OFFLINE-1", "pending")).to_contain_text("En cola")
    expect(page.locator("#scan-feedback")).to_have_text("OFFLINE-1 guardado: se enviará al reconectar.")
    scan(luis_page, "WHILE-AWAY")
    expect(row(luis_page, "WHILE-AWAY")).to_be_visible()
    page.wait_for_timeout(1000)
    assert stored("OFFLINE-1") == []

    # The signal returns: the queue goes once, and the page resumes from the seq it had.
    page.context.set_offline(False)
    wait_online(page)
    expect(row(page, "OFFLINE-1")).to_be_visible()
    expect(row(page, "WHILE-AWAY")).to_be_visible()
    expect(row(luis_page, "OFFLINE-1")).to_contain_text("Ana García", timeout=2000)
    expect(page.locator("#count-total")).to_have_text("4")
    expect(luis_page.locator("#count-total")).to_have_text("4")
    page.wait_for_timeout(500)
    assert stored("OFFLINE-1") == ["ana"]
    assert len(sent) == 1
    assert page.evaluate(OUTBOX_CODES) == []
    assert sockets[0].endswith(f"since={seq_before}")
    # Nothing from the API was kept: only pages and static files.
    cached = page.evaluate(CACHED_URLS)
    assert ROOM in cached and ENGINE in cached
    assert not [url for url in cached if url.startswith(("/api/", "/ws/", "/accounts/", "/admin/"))]


def test_with_the_network_up_the_page_is_never_the_kept_copy(open_page, ana, luis, alfa):
    inventory = services.inventory_get_or_open(room=Room(agency=alfa, month=10, year=2025))
    page = open_page(ana, ROOM)
    wait_online(page)
    kept_for_offline(page)
    page.reload()  # now through the service worker
    wait_online(page)
    in_thread(services.scan_record, inventory=inventory, user=luis, code="SERVER-1")

    response = page.reload()
    assert response.from_service_worker
    # The HTML itself is the server's answer of now: it lists the new scan.
    assert "SERVER-1" in page.locator("#initial-scans").text_content()
    expect(row(page, "SERVER-1")).to_be_visible()


def test_signing_out_forgets_the_kept_pages_and_rooms(open_page, ana, alfa):
    page = open_page(ana, ROOM)
    wait_online(page)
    scan(page, "MINE-1")
    expect(row(page, "MINE-1")).to_be_visible()
    kept_for_offline(page)
    kept_code(page, "MINE-1")

    page.get_by_role("button", name="Salir").click()
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
    page.wait_for_load_state()
    # No page is kept (the sign-in page may fetch the stylesheet again: it is the same for all).
    assert [url for url in page.evaluate(CACHED_URLS) if not url.startswith("/static/")] == []
    assert page.evaluate(KEPT_ROOMS) == []

    # With no signal, the room is not there to be read by whoever holds the phone next.
    page.context.set_offline(True)
    page.goto(page.url.split("/accounts/")[0] + ROOM)
    expect(page.locator("body")).to_contain_text("Sin conexión")
    expect(page.locator("body")).not_to_contain_text("MINE-1")


def test_a_new_release_installs_a_fresh_cache_and_deletes_the_old_ones(open_page, ana, alfa, tmp_path):
    static = tmp_path / "static"
    shutil.copytree(settings.BASE_DIR / "static", static)
    release = start_server(
        env={"DJANGO_SETTINGS_MODULE": "tests.e2e.static_copy_settings", "TEST_STATIC_DIR": str(static)}
    )
    try:
        page = open_page(ana, "/")  # signed in: the session cookie holds for every port of 127.0.0.1
        page.goto(release.http + ROOM)
        wait_online(page)
        kept_for_offline(page)
        old = cache_names(page)
        assert len(old) == 2  # the shell's and the pages', of one version
        page.evaluate("caches.open('another-app')")  # not ours: left alone

        with open(static / "js" / "camera.js", "a", encoding="utf-8") as file:
            file.write("// the next release\n")
        page.reload()  # the browser checks the worker on each visit, and finds a new one
        deadline = time.monotonic() + 15
        while not (set(cache_names(page)).isdisjoint(old) and ROOM in page.evaluate(CACHED_URLS)):
            assert time.monotonic() < deadline, cache_names(page)
            page.wait_for_timeout(200)
        new = cache_names(page)
        assert len(new) == 3 and "another-app" in new
        assert ENGINE in page.evaluate(CACHED_URLS)  # the shell, fetched again for the new version

        # And the room still opens with no signal, from the new caches.
        page.context.set_offline(True)
        page.reload()
        expect(page.locator("#connection")).to_have_attribute("data-state", "offline")
        expect(page.locator("#scan-input")).to_be_enabled()
    finally:
        release.stop()


def test_a_phone_with_no_signal_reads_labels_with_the_camera_and_they_count_once_when_it_returns(
    open_page, ana, luis, alfa, tmp_path
):
    video = write_y4m(tmp_path / "labels.y4m", labels_frame(code39="I1HGCM82633A004352", datamatrix="A-101"))
    phone = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
    page = open_page(ana, ROOM, camera=video, permissions=["camera"], **phone)
    luis_page = open_page(luis, ROOM)
    wait_online(page)
    wait_online(luis_page)
    kept_for_offline(page)

    # At the far end of the lot: the page reopens from the phone, the engine too.
    page.context.set_offline(True)
    page.reload()
    expect(page.locator("#connection")).to_have_attribute("data-state", "offline")
    page.get_by_role("button", name="Escanear con cámara").click()
    for code in ("1HGCM82633A004352", "A-101"):
        expect(row(page, code, "pending")).to_contain_text("En cola", timeout=20000)
    expect(page.locator("#count-pending")).to_have_text("2")
    page.get_by_role("button", name="Cerrar cámara").click()
    assert stored("1HGCM82633A004352") == []

    # Signal again: each label counted once, and Luis sees them.
    page.context.set_offline(False)
    wait_online(page)
    for code in ("1HGCM82633A004352", "A-101"):
        expect(row(page, code)).to_be_visible()
        expect(row(luis_page, code)).to_contain_text("Ana García", timeout=2000)
        assert stored(code) == ["ana"]
    expect(page.locator("#count-pending")).to_have_text("0")
    expect(luis_page.locator("#count-total")).to_have_text("2")
