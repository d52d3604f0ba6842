"""The reference client's resume URL and reconnect delays."""

from realtime.wire import CLOSE_SERVICE_RESTART, CLOSE_UNAVAILABLE
from tools.liveclient import reconnect_delay, with_since


def test_a_resuming_client_adds_since_to_the_room_url():
    assert with_since("ws://h/ws/inventory/a/1/2025", None) == "ws://h/ws/inventory/a/1/2025"
    assert with_since("ws://h/ws/inventory/a/1/2025", 7) == "ws://h/ws/inventory/a/1/2025?since=7"
    assert with_since("ws://h/x?token=t", 0) == "ws://h/x?token=t&since=0"


def test_the_client_backs_off_as_the_page_does_but_not_after_a_service_restart():
    for attempt in range(8):
        top = min(15.0, 0.5 * 2**attempt)
        for close_code in (None, CLOSE_UNAVAILABLE, 1006):
            assert top / 2 <= reconnect_delay(attempt, close_code=close_code) <= top
        assert reconnect_delay(attempt, close_code=CLOSE_SERVICE_RESTART) == 0
