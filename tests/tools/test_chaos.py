"""The chaos run, CI-sized: two real instances behind the run's proxy, a Redis of its own, PostgreSQL
behind a cuttable proxy; a few faults while two rooms count, and nothing lost, doubled or reordered."""

from __future__ import annotations

import shutil

import pytest

from tools.chaos.command import chaos_run, parse_faults
from tools.chaos.report import seconds
from tools.chaos.run import ChaosSettings

from ..servers import LOG_DIR

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_unknown_faults_are_named():
    assert parse_faults("redis-restart, room-burst") == ("redis-restart", "room-burst")
    with pytest.raises(ValueError, match="unknown fault"):
        parse_faults("redis-restart,meteor")


def test_times_are_nearest_rank():
    assert seconds([3.0, 1.0, 2.0]) == {"count": 3, "p50": 2.0, "p99": 3.0, "max": 3.0}
    assert seconds([])["p50"] is None


def test_a_short_chaos_run_loses_nothing(require_postgres):
    if shutil.which("redis-server") is None:
        pytest.skip("needs redis-server")
    settings = ChaosSettings(
        rooms=2,
        clients=4,
        rate=4.0,
        heartbeat_ms=1000,
        steady_seconds=1.0,
        recovery_timeout=30.0,
        drain_timeout=15.0,
        faults=("instance-kill", "postgres-cut", "room-burst"),
        postgres_cut_seconds=2.0,
        log_dir=LOG_DIR / "chaos",
    )
    report = chaos_run(settings)
    print(*(f"CHAOS {row['name']}: {row}" for row in report["phases"]), sep="\n")
    assert report["ok"], report["failures"]
    names = [row["name"] for row in report["phases"]]
    assert names == ["steady", "instance-kill", "postgres-cut", "room-burst"]
    for row in report["phases"]:
        scans, deliveries = row["scans"], row["deliveries"]
        assert scans["sent"] > 0 and scans["stored"] == scans["sent"] == scans["acknowledged"]
        assert deliveries["expected"] == scans["stored"] * 4
        assert deliveries["received"] == deliveries["expected"]
        assert deliveries["lost"] == deliveries["duplicated"] == deliveries["out_of_order"] == 0
        assert deliveries["missing"] == scans["lost"] == scans["unconfirmed"] == 0
    kill, cut, burst = report["phases"][1:]
    # The killed instance's clients came back (through the proxy), and every client is live again.
    assert kill["drops"] > 0 and kill["live_again_seconds"]["count"] == kill["drops"]
    assert burst["drops"] == 4 and burst["live_again_seconds"]["count"] == 4
    for row in (kill, cut, burst):
        assert row["all_live_after"] is not None and row["presence_after"] is not None
    # Writes during the cut were refused, then retried with their ids and stored once.
    assert cut["errors"].get("error: database_unavailable", 0) > 0
