"""The reference client's resume URL."""

from tools.liveclient import with_since


def test_a_resuming_client_adds_since_to_the_room_url():
    assert with_since("ws://h/ws/inventory/a/1/2025", None) == "ws://h/ws/inventory/a/1/2025"
    assert with_since("ws://h/ws/inventory/a/1/2025", 7) == "ws://h/ws/inventory/a/1/2025?since=7"
    assert with_since("ws://h/x?token=t", 0) == "ws://h/x?token=t&since=0"
