"""A removed scan stays removed on the live page, in a real Chromium against a real daphne server."""

import pytest
from playwright.sync_api import expect

from inventory import services
from inventory.models import Inventory, Scan
from tests.e2e.conftest import in_thread
from tests.e2e.test_browser import OUTBOX_CODES, ROOM, row, scan, wait_online

pytestmark = [
    pytest.mark.browser,
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
]


def stored_scans():
    return in_thread(lambda: sorted((scan.code, str(scan.uid)) for scan in Scan.objects.all()))


def test_a_removal_resent_after_its_answer_was_lost_keeps_a_later_rescan(open_page, ana, luis, alfa):
    page = open_page(ana, ROOM)
    removals = []
    page.on(
        "websocket", lambda ws: ws.on("framesent", lambda f: '"scan_removed"' in f and removals.append(f))
    )
    wait_online(page)
    scan(page, "RE-1")
    expect(row(page, "RE-1")).to_be_visible()
    first = in_thread(lambda: str(Scan.objects.get().uid))

    page.context.set_offline(True)
    expect(page.locator("#connection")).to_have_attribute("data-state", "offline")
    row(page, "RE-1").get_by_role("button", name="Eliminar RE-1").click()
    expect(row(page, "RE-1", "removing")).to_be_visible()
    # As if the removal had reached the server but its answer had not; then Luis scans the code again.
    inventory = in_thread(Inventory.objects.get)
    in_thread(services.scan_remove, inventory=inventory, user=ana, code="RE-1", scan_id=first)
    rescan = in_thread(services.scan_record, inventory=inventory, user=luis, code="RE-1").scan

    page.context.set_offline(False)
    wait_online(page)
    expect(page.locator(f'#scan-list li[data-id="{rescan.uid}"][data-state="confirmed"]')).to_be_visible()
    expect(page.locator(f'#scan-list li[data-id="{first}"]')).to_have_count(0)
    expect(page.locator("#count-total")).to_have_text("1")
    page.wait_for_timeout(500)  # the resent removal's own answer
    assert removals and all(first in frame for frame in removals)  # sent with the scan's id
    assert stored_scans() == [("RE-1", str(rescan.uid))]
    assert page.evaluate(OUTBOX_CODES) == []
    expect(page.locator(f'#scan-list li[data-id="{rescan.uid}"][data-state="confirmed"]')).to_be_visible()


def test_a_scan_resent_after_it_was_removed_is_dropped_not_stored_again(open_page, ana, luis, alfa):
    page = open_page(ana, ROOM)
    wait_online(page)
    page.context.set_offline(True)
    expect(page.locator("#connection")).to_have_attribute("data-state", "offline")
    scan(page, "LATE-1")
    expect(row(page, "LATE-1", "pending")).to_be_visible()
    [queued] = page.evaluate(OUTBOX_CODES)
    # As if the scan had reached the server but its answer had not; then Luis removes it.
    inventory = in_thread(Inventory.objects.get)
    in_thread(services.scan_record, inventory=inventory, user=ana, code="LATE-1", scan_id=queued["id"])
    in_thread(services.scan_remove, inventory=inventory, user=luis, code="LATE-1")

    page.context.set_offline(False)
    wait_online(page)
    expect(page.locator('#scan-list li[data-code="LATE-1"]')).to_have_count(0)
    expect(page.locator("#count-pending")).to_have_text("0")
    expect(page.locator("#count-total")).to_have_text("0")
    page.wait_for_timeout(500)  # the resent scan's own answer
    assert stored_scans() == []
    assert page.evaluate(OUTBOX_CODES) == []
    expect(page.locator("#notices")).not_to_contain_text("eliminado")
