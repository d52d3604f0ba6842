"""Metrics timing on the fake clock: an instance that stops reporting is gone, then forgotten."""

import pytest

from realtime import metrics, protocol

HEARTBEAT_MS = 1000


@pytest.fixture(autouse=True)
def short_heartbeat(settings):
    settings.REALTIME = {
        **settings.REALTIME,
        "HEARTBEAT_INTERVAL_MS": HEARTBEAT_MS,
        "METRICS_GONE_RETENTION_SECONDS": 60,
    }


async def publish_as(instance: str, monkeypatch) -> None:
    """Publish this process's figures under another instance's name (one that may then die)."""
    monkeypatch.setattr(metrics, "INSTANCE_ID", instance)
    try:
        await metrics.publish_snapshot()
    finally:
        monkeypatch.undo()


def test_an_instance_starts_on_the_clock(fake_clock):
    metrics.local.reset()
    assert metrics.local.snapshot()["startedAt"] == protocol.timestamp_from_epoch(fake_clock.now())


async def test_an_instance_that_stops_reporting_is_kept_as_gone_then_forgotten(
    require_redis, fake_clock, monkeypatch
):
    metrics.local.messages_received = 3
    await publish_as("doomed", monkeypatch)
    live, gone = await metrics._all_snapshots()
    assert [snap["instance"] for snap in live] == ["doomed"] and gone == []

    ttl = metrics._report_ttl()
    fake_clock.advance(ttl - 0.1)
    assert [snap["instance"] for snap in (await metrics._all_snapshots())[0]] == ["doomed"]

    fake_clock.advance(0.2)  # past its deadline: gone, its counters still counted
    live, gone = await metrics._all_snapshots()
    assert live == []
    assert [(snap["instance"], snap["messagesReceived"]) for snap in gone] == [("doomed", 3)]

    fake_clock.advance(59.8)  # still within the retention
    assert len((await metrics._all_snapshots())[1]) == 1
    fake_clock.advance(0.3)
    assert await metrics._all_snapshots() == ([], [])


async def test_an_instance_back_from_a_pause_is_live_again(require_redis, fake_clock, monkeypatch):
    await publish_as("paused", monkeypatch)
    fake_clock.advance(metrics._report_ttl() + 1)
    assert [snap["instance"] for snap in (await metrics._all_snapshots())[1]] == ["paused"]
    await publish_as("paused", monkeypatch)
    live, gone = await metrics._all_snapshots()
    assert ([snap["instance"] for snap in live], gone) == (["paused"], [])


async def test_the_reporter_publishes_every_report_interval(require_redis, fake_clock):
    metrics.local.messages_sent = 1
    metrics.ensure_reporter()
    try:
        await fake_clock.run_for(0)
        assert [snap["messagesSent"] for snap in await metrics.instance_snapshots()] == [1]
        metrics.local.messages_sent = 2
        await fake_clock.run_for(metrics.report_interval() / 2)
        assert [snap["messagesSent"] for snap in await metrics.instance_snapshots()] == [1]
        await fake_clock.run_for(metrics.report_interval() / 2)
        assert [snap["messagesSent"] for snap in await metrics.instance_snapshots()] == [2]
    finally:
        metrics._reporter.cancel()
