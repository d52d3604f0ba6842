"""Scanning with the phone's camera, in a real Chromium whose fake camera shows real barcodes.

Headless Chromium on Linux has no native BarcodeDetector, so these read through the vendored
polyfill (ZXing-C++ as WebAssembly, served from our static files under the page's CSP).
"""

import os
import shutil

import pytest
from playwright.sync_api import expect

from inventory import services
from inventory.access import Room
from inventory.models import Scan
from inventory.reconciliation import services as reconciliation
from tests.e2e.conftest import in_thread
from tests.e2e.fake_camera import labels_frame, write_y4m
from tests.e2e.test_browser import DOCS_SCREENSHOTS, ROOM, SCREENSHOTS, row, wait_online
from tests.inventory.reconciliation_helpers import csv_bytes

pytestmark = [
    pytest.mark.browser,
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
]

DOOR_JAMB_VIN = "1HGCM82633A004352"  # printed as I1HGCM82633A004352: the import marker
STICKER_VIN = "5YJ3E1EA7KF317000"  # fails the VIN check digit: flagged, as when typed
WASM = "/static/vendor/barcode-detector/zxing_reader.wasm"
PHONE = {
    "permissions": ["camera"],
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
}
# What the page played and vibrated, recorded as the page makes them.
RECORD_FEEDBACK = """
window.feedback = [];
const start = AudioScheduledSourceNode.prototype.start;
AudioScheduledSourceNode.prototype.start = function (...args) {
  window.feedback.push(["tone", this.frequency?.value]);
  return start.apply(this, args);
};
navigator.vibrate = (pattern) => (window.feedback.push(["vibrate", pattern]), true);
"""


@pytest.fixture(scope="module")
def labels_video(tmp_path_factory):
    frame = labels_frame(code39=f"I{DOOR_JAMB_VIN}", datamatrix=STICKER_VIN)
    return write_y4m(tmp_path_factory.mktemp("camera") / "labels.y4m", frame)


def sent_scans(page):
    frames = []
    page.on("websocket", lambda ws: ws.on("framesent", lambda f: '"scan_added"' in f and frames.append(f)))
    return frames


def stored_scans():
    return in_thread(lambda: sorted(Scan.objects.values_list("code", "scanned_by__username")))


def test_camera_reads_a_vin_label_and_a_data_matrix_once_and_a_second_camera_is_refused(
    open_page, labels_video, ana, luis, alfa
):
    inventory = services.inventory_get_or_open(room=Room(agency=alfa, month=10, year=2025))
    books = [["VIN", "Ubicación"], [DOOR_JAMB_VIN, "Patio A"], ["ZFA3120000J000000", "Patio B"]]
    reconciliation.expected_import_file(inventory=inventory, upload=csv_bytes(books), filename="libros.csv")
    ana_page = open_page(ana, ROOM, camera=labels_video, **PHONE)
    luis_page = open_page(luis, ROOM, camera=labels_video, permissions=["camera"])
    for page in (ana_page, luis_page):
        page.add_init_script(RECORD_FEEDBACK)
    luis_page.reload()
    engine = []
    ana_page.on("response", lambda response: engine.append(response) if "barcode" in response.url else None)
    ana_page.reload()
    ana_sent = sent_scans(ana_page)
    wait_online(ana_page)
    wait_online(luis_page)

    ana_page.get_by_role("button", name="Escanear con cámara").click()
    expect(ana_page.locator("#camera-video")).to_be_visible()
    expect(ana_page.locator("#camera-torch")).to_be_hidden()  # the fake camera has no torch
    expect(ana_page.locator("#scan-input")).not_to_be_focused()  # no keyboard over the camera
    # Both labels reach Luis's page, counted once, the VIN without its "I".
    expect(row(luis_page, DOOR_JAMB_VIN)).to_contain_text("Ana García", timeout=20000)
    expect(row(luis_page, STICKER_VIN)).to_contain_text("Ana García", timeout=10000)
    expect(row(ana_page, STICKER_VIN)).to_have_attribute("data-match", "flagged")
    expect(luis_page.locator("#progress-text")).to_have_text("1 de 2 encontrados")
    # The labels stay in view: nothing is sent again while they do.
    ana_page.wait_for_timeout(2000)
    expect(ana_page.locator("#count-total")).to_have_text("2")
    expect(luis_page.locator("#count-total")).to_have_text("2")
    assert len(ana_sent) == 2
    assert stored_scans() == [(DOOR_JAMB_VIN, "ana"), (STICKER_VIN, "ana")]
    # The engine came from our own static files, the .wasm as application/wasm.
    wasm = [response for response in engine if response.url.endswith(".wasm")]
    assert [response.url for response in wasm] == [luis_page.url.split("/inventory/")[0] + WASM]
    assert wasm[0].headers["content-type"] == "application/wasm"
    # The camera view on a phone, for the README (`make screenshots` copies it to docs/).
    expect(ana_page.locator("#camera-status")).to_contain_text("Leído:")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shot = SCREENSHOTS / "live-camera-phone.png"
    ana_page.screenshot(path=str(shot), animations="disabled")
    assert shot.stat().st_size > 10_000
    if os.environ.get("UPDATE_SCREENSHOTS"):
        shutil.copyfile(shot, DOCS_SCREENSHOTS / shot.name)
    feedback = ana_page.evaluate("window.feedback")
    assert feedback.count(["tone", 1760]) == 2  # one beep per new code
    assert feedback.count(["vibrate", 80]) == 2

    # Closing the camera releases it: every track stopped.
    ana_page.evaluate(
        """() => { window.tracks = document.getElementById("camera-video").srcObject.getTracks(); }"""
    )
    ana_page.get_by_role("button", name="Cerrar cámara").click()
    expect(ana_page.locator("#camera-video")).to_be_hidden()
    assert ana_page.evaluate("window.tracks.map((track) => track.readyState)") == ["ended"]

    # Luis's camera reads the same labels: refused, naming who counted them first.
    luis_page.get_by_role("button", name="Escanear con cámara").click()
    refused = "Ya lo escaneó Ana García."
    expect(row(luis_page, DOOR_JAMB_VIN, "failed")).to_contain_text(refused, timeout=20000)
    expect(row(luis_page, STICKER_VIN, "failed")).to_contain_text(refused)
    expect(luis_page.locator("#camera-status")).to_contain_text("ya estaba contado")
    # Told apart by ear and by hand: two low beeps and a triple buzz, never the new-code beep.
    feedback = luis_page.evaluate("window.feedback")
    assert feedback.count(["tone", 330]) == 4
    assert feedback.count(["vibrate", [70, 60, 70, 60, 70]]) == 2
    assert ["tone", 1760] not in feedback
    assert stored_scans() == [(DOOR_JAMB_VIN, "ana"), (STICKER_VIN, "ana")]


@pytest.mark.parametrize(
    ("locale", "message"),
    [
        ("es-MX", "No hay permiso para usar la cámara."),
        ("en-US", "There is no permission to use the camera."),
    ],
)
def test_a_refused_camera_says_so_and_a_browser_without_one_shows_no_button(
    open_page, labels_video, ana, alfa, locale, message
):
    # Not granted: the browser refuses, as when the counter answered "Block" to its question.
    page = open_page(ana, ROOM, camera=labels_video, locale=locale)
    wait_online(page)
    page.locator("#camera-open").click()
    expect(page.locator("#camera-status")).to_contain_text(message)
    expect(page.locator("#camera-status")).to_have_attribute("data-kind", "error")
    expect(page.locator("#camera-video")).to_be_hidden()

    # Chromium without a camera: no button to press in vain; typing still works.
    plain = open_page(ana, ROOM, locale=locale)
    wait_online(plain)
    expect(plain.locator("#camera-open")).to_be_hidden()
    expect(plain.locator("#scan-input")).to_be_focused()
