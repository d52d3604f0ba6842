"""The operator commands against a real daphne: ws_loadtest counts deliveries, ws_smoke checks protocol."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission

from inventory import periods
from inventory.models import Agency, Inventory, Scan
from tests import servers
from tests.conftest import token_for
from tests.servers import ROOT, free_port, running_server

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def daphne(django_db_setup):
    """One server for the module; every test makes its own rooms, so they do not meet."""
    with running_server() as server:
        yield server


def manage(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run a management command as an operator would, on the server's (the test) database."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "inventory_site.settings.test",
        "DATABASE_URL": servers.test_database_url(),
        "PYTHONUNBUFFERED": "1",
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def loadtest(server, *args: str, url: str | None = None) -> tuple[subprocess.CompletedProcess, dict]:
    # A generous drain: it ends as soon as every delivery is in, and a loaded CI machine is slow.
    done = manage("ws_loadtest", "--url", url or server.http, "--json", "--drain-timeout", "20", *args)
    try:
        report = json.loads(done.stdout)
    except ValueError:
        server_log = server.output()[-3000:] if server else ""
        pytest.fail(f"no JSON report (exit {done.returncode}):\n{done.stdout}\n{done.stderr}\n{server_log}")
    return done, report


def summary(report: dict) -> str:
    """The parts of a report that explain a failed assertion."""
    keys = ("connections", "scans", "deliveries", "latency_ms", "errors", "server", "failures")
    return json.dumps({key: report.get(key) for key in keys})


def test_loadtest_delivers_every_scan_to_every_client_and_cleans_up(daphne):
    done, report = loadtest(daphne, "--rooms", "2", "--clients", "5", "--rate", "5", "--duration", "3")

    assert done.returncode == 0, summary(report)
    assert report["ok"] is True
    connections = report["connections"]
    assert (connections["attempted"], connections["accepted"], connections["refused_room_full"]) == (
        10,
        10,
        0,
    )
    assert (connections["refused_other"], connections["dropped"]) == ({}, {})
    assert report["scans"] == {"sent": 30, "stored": 30, "rejected": 0, "unconfirmed": 0}
    deliveries = report["deliveries"]
    assert (deliveries["expected"], deliveries["received"], deliveries["lost"]) == (150, 150, 0)
    assert (deliveries["duplicated"], deliveries["out_of_order"], deliveries["gaps"]) == (0, 0, 0)
    assert report["latency_ms"]["count"] == 150
    assert 0 < report["latency_ms"]["p50"] <= report["latency_ms"]["p99"] <= report["latency_ms"]["max"]
    assert report["errors"] == {}
    # It found the server by its port and measured it.
    assert report["server"]["available"] is True
    assert report["server"]["pid"] == daphne.process.pid
    assert report["data_left"] == []
    assert not Agency.objects.filter(name__startswith="Loadtest").exists()
    assert not get_user_model().objects.filter(username__startswith="loadtest-").exists()
    assert not Inventory.objects.exists()


def test_loadtest_over_rest_is_checked_the_same_way(daphne):
    done, report = loadtest(
        daphne,
        "--rooms",
        "2",
        "--clients",
        "3",
        "--rate",
        "4",
        "--duration",
        "1",
        "--via",
        "rest",
        "--procs",
        "2",
    )

    assert done.returncode == 0, summary(report)
    assert report["run"]["procs"] == 2
    assert report["scans"] == {"sent": 8, "stored": 8, "rejected": 0, "unconfirmed": 0}
    assert (report["deliveries"]["expected"], report["deliveries"]["lost"]) == (24, 0)
    assert len(report["client"]["workers"]) == 2


def test_loadtest_shows_clients_past_the_room_limit_refused_with_4429(daphne):
    done, report = loadtest(daphne, "--rooms", "1", "--clients", "60", "--rate", "2", "--duration", "1")

    assert done.returncode == 0, summary(report)
    assert report["connections"]["attempted"] == 60
    assert report["connections"]["accepted"] == 50
    assert report["connections"]["refused_room_full"] == 10
    assert report["connections"]["refused_other"] == {}
    assert report["deliveries"]["expected"] == 100
    assert report["deliveries"]["lost"] == 0


def test_loadtest_counts_rate_limited_scans_as_errors_not_losses():
    with running_server(env={"WEBSOCKET_RATE_LIMIT_MAX_MESSAGES": "5"}) as server:
        done, report = loadtest(server, "--rooms", "1", "--clients", "3", "--rate", "10", "--duration", "2")

    assert done.returncode == 0, summary(report)
    scans = report["scans"]
    # 20 scans against 5 a minute: at least 10 refused even if the run straddles two minutes.
    assert scans["sent"] == 20
    assert scans["rejected"] >= 10
    assert scans["stored"] + scans["rejected"] == 20
    assert report["errors"] == {"rate_limited": scans["rejected"]}
    assert report["deliveries"]["expected"] == 3 * scans["stored"]
    assert report["deliveries"]["lost"] == 0


def test_loadtest_with_an_existing_token_uses_the_latest_months_a_room_opens_in(daphne, ana, alfa):
    done, report = loadtest(
        daphne,
        *("--token", token_for(ana), "--agency", "Alfa Romeo"),
        *("--rooms", "2", "--clients", "3", "--rate", "2", "--duration", "1"),
    )

    assert done.returncode == 0, summary(report)
    assert report["run"]["mode"] == "token"
    assert report["deliveries"]["expected"] == 12
    assert report["deliveries"]["lost"] == 0
    next_month, this_month = periods.openable_months_newest_first()[:2]
    opened = set(Inventory.objects.values_list("month", "year"))
    assert opened == {next_month, this_month}
    assert Scan.objects.count() == 4
    assert "Alfa Romeo/{}/{}".format(*next_month) in report["data_left"][0]


def test_loadtest_with_a_token_refuses_more_rooms_than_months_that_open(daphne, ana, alfa):
    done = manage("ws_loadtest", "--url", daphne.http, "--token", token_for(ana), "--rooms", "27")
    assert done.returncode != 0
    assert "26 months a room can be opened in" in done.stderr
    assert not Inventory.objects.exists()


def test_loadtest_exits_non_zero_when_nobody_gets_in():
    done, report = loadtest(
        None, "--rooms", "1", "--clients", "2", "--duration", "1", url=f"http://127.0.0.1:{free_port()}"
    )

    assert done.returncode != 0
    assert report["connections"]["accepted"] == 0
    assert report["failures"] == ["no connection was accepted"]
    [(reason, count)] = report["connections"]["refused_other"].items()
    assert reason.startswith("ConnectionRefusedError") and count == 2
    assert not Agency.objects.exists()


def test_smoke_passes_against_the_server_and_leaves_nothing(daphne, ana, alfa):
    operator = ana
    operator.user_permissions.add(Permission.objects.get(codename="delete_inventory"))
    done = manage("ws_smoke", "--url", daphne.http, "--token", token_for(operator))

    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert sum(line.startswith("PASS ") for line in lines) == 10, done.stdout
    assert not [line for line in lines if line.startswith("FAIL ")]
    assert any(line.startswith("SKIP inventory_completed") for line in lines)
    # It counted in next month's room (a month the server opens) and deleted what it opened.
    next_month = "Alfa Romeo/{}/{}".format(*periods.openable_months_newest_first()[0])
    assert f"PASS connection: accepted in {next_month}" in done.stdout
    assert "Data left" not in done.stdout
    assert not Scan.objects.exists() and not Inventory.objects.exists()


def test_smoke_with_a_member_token_removes_its_scan_and_says_which_rooms_are_left(daphne, ana, alfa):
    counting = Inventory.objects.create(agency=alfa, month=10, year=2025)
    done = manage("ws_smoke", "--url", daphne.http, "--token", token_for(ana))

    assert done.returncode == 0, done.stdout + done.stderr
    assert not Scan.objects.exists()
    left = [line for line in done.stdout.splitlines() if line.startswith("Data left: inventory ")]
    assert len(left) == 2 and all("open, no scans (deleting it failed: " in line for line in left)
    assert Inventory.objects.filter(pk=counting.pk).exists()
    assert Inventory.objects.exclude(pk=counting.pk).count() == 2


def test_smoke_checks_completion_only_when_asked_and_says_which_room_it_completed(daphne, ana):
    done = manage(
        "ws_smoke",
        "--url",
        daphne.http,
        "--token",
        token_for(ana),
        "--agency",
        "alfa-romeo",
        "--check-completion",
    )

    assert done.returncode == 0, done.stdout + done.stderr
    assert "PASS inventory_completed -> session_terminated" in done.stdout
    completed = Inventory.objects.get(status=Inventory.Status.COMPLETED)
    assert f"Data left: inventory {completed.room_key}: completed" in done.stdout


def test_smoke_fails_against_a_wrong_url(ana):
    done = manage("ws_smoke", "--url", f"http://127.0.0.1:{free_port()}", "--token", token_for(ana))

    assert done.returncode != 0
    assert "FAIL agency lookup" in done.stdout
    assert "Connection refused" in done.stdout


def test_smoke_fails_with_a_bad_token(daphne, ana):
    done = manage("ws_smoke", "--url", daphne.http, "--token", "not-a-token", "--agency", "Alfa Romeo")

    assert done.returncode != 0
    assert "FAIL connection: refused with close code 4401 (unauthenticated: " in done.stdout
