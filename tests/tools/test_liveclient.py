"""The reference client's resume URL and reconnect delays."""

from realtime.wire import CLOSE_SERVICE_RESTART, CLOSE_UNAVAILABLE
from tools.liveclient import UNAVAILABLE_JITTER_SECONDS, reconnect_delay, unavailable_delay, with_since


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


def test_after_a_4503_the_client_waits_the_server_s_retry_after_spread_over_seconds():
    delays = [unavailable_delay(0, 3) for _ in range(200)]
    assert all(3 <= delay <= 3 + UNAVAILABLE_JITTER_SECONDS for delay in delays)
    assert max(delays) - min(delays) > 1  # spread out, not one instant for every client
    # Without a retryAfter (the relay lost Redis): the backoff, plus the same spread.
    assert all(0.25 <= unavailable_delay(0) <= 0.5 + UNAVAILABLE_JITTER_SECONDS for _ in range(50))
