"""Hostile expected lists against a real daphne: each is refused with a 400 naming the limit, and
the server's memory (resident memory of the daphne process) stays within 50 MB of where it started."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid

import pytest

from inventory import services
from inventory.access import Room
from inventory.models import ExpectedVehicle
from tests.conftest import token_for
from tests.inventory.reconciliation_helpers import csv_bytes, xlsx_bomb, zip_with_entries
from tools.sampler import rss_kb

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

RSS_GROWTH_BOUND_MB = 50


def rss_mb(pid: int) -> float:
    kb = rss_kb(pid)
    assert kb, f"no resident memory for {pid}"
    return kb / 1024


def post_file(server, token: str, inventory_id: int, name: str, data: bytes) -> tuple[int, dict]:
    boundary = uuid.uuid4().hex
    body = b"".join(
        [
            f"--{boundary}\r\n".encode(),
            f'Content-Disposition: form-data; name="file"; filename="{name}"\r\n'.encode(),
            b"Content-Type: application/octet-stream\r\n\r\n",
            data,
            f"\r\n--{boundary}--\r\n".encode(),
        ]
    )
    request = urllib.request.Request(
        f"{server.http}/api/inventories/{inventory_id}/expected/",
        data=body,
        method="POST",
        headers={
            "Authorization": f"Token {token}",
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            "Accept": "application/json",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def hostile_files() -> list[tuple[str, str, bytes, str]]:
    """(what, file name, content, what the refusal must name)."""
    many_rows = csv_bytes([["VIN"]] + [[f"C{number:07d}"] for number in range(150_000)])
    return [
        ("XLSX whose shared strings expand to 200 MiB", "bomba.xlsx", xlsx_bomb(200 * 1024 * 1024), "64 MB"),
        ("zip of 5,000 entries", "partes.xlsx", zip_with_entries(5000), "1000"),
        ("CSV of one 15 MiB line", "linea.csv", b"VIN,Notas\nA1," + b"x" * (15 * 1024 * 1024), "65536"),
        ("CSV of 150,000 rows", "filas.csv", many_rows, "100000"),
        ("CSV of 21 MiB", "grande.csv", b"VIN\n" + b"A1234567\n" * (21 * 1024 * 1024 // 9), "20 MB"),
    ]


def test_hostile_lists_are_refused_naming_the_limit_and_memory_stays_bounded(server, staff, alfa):
    inventory = services.inventory_get_or_open(room=Room(alfa, 10, 2025))
    token = token_for(staff)
    pid = server.process.pid
    # Warm up: one good import, so that the code that reads files is loaded before measuring.
    status, body = post_file(server, token, inventory.pk, "lista.csv", csv_bytes([["VIN"], ["WARM-1"]]))
    assert status == 201, body
    figures = []
    for what, name, data, limit in hostile_files():
        before = rss_mb(pid)
        status, body = post_file(server, token, inventory.pk, name, data)
        after = rss_mb(pid)
        figures.append(f"{what} ({len(data) // 1024} KiB): {status}, RSS {before:.0f} -> {after:.0f} MB")
        assert status == 400, (what, body)
        assert body["code"] == "invalid_file", (what, body)
        assert limit in body["detail"] or limit in body["errors"][0]["message"], (what, body)
        # daphne holds a request's whole body in memory before the application sees it (a 20 MiB
        # upload costs ~40 MB that the allocator keeps): the bound is per file.
        assert after - before <= RSS_GROWTH_BOUND_MB, figures
    print("\n".join(figures))  # the figures for docs/reliability.md (pytest -s)
    assert list(ExpectedVehicle.objects.values_list("code", flat=True)) == ["WARM-1"]
