"""The live page when its server instance stops (SIGTERM, a deploy): it rejoins at once, without backoff."""

import signal

import pytest
from playwright.sync_api import expect

from tests.servers import start_server

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

ROOM = "/inventory/alfa-romeo/10/2025/"
# Every socket the page makes and every close it sees, with the time (ms), before the page's own
# listeners run: the page's reconnect then shows up as the next "open".
SOCKET_LOG = """
window.__sockets = [];
const NativeWebSocket = window.WebSocket;
window.WebSocket = class extends NativeWebSocket {
  constructor(...args) {
    super(...args);
    window.__sockets.push({ event: "open", at: performance.now() });
    this.addEventListener("close", (event) =>
      window.__sockets.push({ event: "close", code: event.code, at: performance.now() }));
  }
};
"""


def test_the_page_rejoins_at_once_when_its_server_restarts(open_page, server, ana, alfa):
    page = open_page(ana, ROOM)
    page.add_init_script(SOCKET_LOG)
    page.reload()
    expect(page.locator("#connection")).to_have_attribute("data-state", "online")

    server.process.send_signal(signal.SIGTERM)
    page.wait_for_function("() => window.__sockets.some((entry) => entry.event === 'close')")
    page.wait_for_function("() => window.__sockets.filter((entry) => entry.event === 'open').length >= 2")
    log = page.evaluate("window.__sockets")
    close = next(entry for entry in log if entry["event"] == "close")
    reopened = [entry for entry in log if entry["event"] == "open"][1]
    assert close["code"] == 1012, log
    # The first backoff waits 250-500 ms; after 1012 the page does not wait at all.
    assert reopened["at"] - close["at"] < 100, log
    assert server.process.wait(timeout=15) == 0, server.output()

    # Nothing answers on that address until the instance is back; then the page is online again.
    restarted = start_server(port=server.port)
    try:
        expect(page.locator("#connection")).to_have_attribute("data-state", "online", timeout=30000)
    finally:
        restarted.stop()
