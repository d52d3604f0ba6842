"""With Redis or PostgreSQL down, every HTTP endpoint answers what a user can act on: 503 and why, never 500.

A real instance (`manage.py serve`) on a throwaway redis-server that the test stops, or on the
machine's PostgreSQL behind a TCP proxy that the test cuts. The body is DRF's error shape,
`{"detail": ..., "code": ...}`, in Spanish by default and in English with `Accept-Language: en`.
"""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit

import pytest
from channels.db import database_sync_to_async

from tests.conftest import token_for
from tests.faults import TcpProxy
from tests.servers import start_server
from tests.servers import test_database_url as database_url

from .conftest import session_cookie
from .wsclient import ahttp

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

ROOM = {"agency": "Alfa Romeo", "month": "10", "year": 2025}
ROOM_INFO = "/api/inventory/websocket/room-info/Alfa%20Romeo/10/2025"
LIVE_PAGE = "/inventory/Alfa%20Romeo/10/2025/"
# Endpoint -> (path, who asks).
READS = {
    "room-info": (ROOM_INFO, "ana"),
    "metrics": ("/api/inventory/websocket/metrics", "staff"),
    "prometheus": ("/metrics", "staff"),
}
REDIS_DOWN = {
    "es": "El servicio en vivo (Redis) no está disponible; inténtalo de nuevo en unos segundos.",
    "en": "The live service (Redis) is unavailable; try again in a few seconds.",
}
DATABASE_DOWN = {
    "es": "La base de datos no está disponible; no se guardó nada. Inténtalo de nuevo.",
    "en": "The database is unavailable; nothing was saved. Please try again.",
}


@pytest.fixture
def people(ana, staff):
    return {"ana": ana, "staff": staff}


@pytest.fixture
def tokens(people):
    return {name: token_for(user) for name, user in people.items()}


@pytest.fixture
def redis_server(own_redis, transactional_db):
    server = start_server(env={"REDIS_URL": own_redis.url})
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def database_proxy(require_postgres, transactional_db):
    from django.db import connection

    db = connection.settings_dict
    with TcpProxy(db.get("HOST") or "127.0.0.1", int(db.get("PORT") or 5432)) as proxy:
        yield proxy


@pytest.fixture
def proxied_server(database_proxy):
    url = urlsplit(database_url())
    credentials = url.netloc.rpartition("@")[0]
    url = url._replace(netloc=f"{credentials}@127.0.0.1:{database_proxy.port}").geturl()
    server = start_server(env={"DATABASE_URL": url})
    try:
        yield server
    finally:
        database_proxy.restore()
        server.stop()


def cookie_header(user, server) -> dict[str, str]:
    cookie = session_cookie(user, server)
    return {"Cookie": f"{cookie['name']}={cookie['value']}"}


async def rest_scan(server, token, code, headers=None):
    body = {**ROOM, "scanData": {"code": code, "id": str(uuid.uuid4())}}
    return await ahttp(server, "POST", "/api/inventory/save-scan", body, token, headers=headers)


async def test_with_redis_stopped_the_endpoints_that_need_it_answer_503_and_say_why(
    redis_server, own_redis, tokens, people
):
    server = redis_server
    status, body = await rest_scan(server, tokens["ana"], "VIN-BEFORE")  # the room's inventory exists
    assert status == 201, (status, body)
    for path, user in READS.values():  # all well first
        status, body = await ahttp(server, "GET", path, token=tokens[user])
        assert status == 200, (path, status, body)
    page = await database_sync_to_async(cookie_header)(people["ana"], server)

    own_redis.stop()
    for name, (path, user) in READS.items():
        for language, detail in REDIS_DOWN.items():
            status, body = await ahttp(
                server, "GET", path, token=tokens[user], headers={"Accept-Language": language}
            )
            assert (status, body) == (503, {"detail": detail, "code": "unavailable"}), (name, language)

    # What does not need Redis keeps working: writes are stored (live delivery waits), the page opens.
    status, body = await rest_scan(server, tokens["ana"], "VIN-DURING")
    assert status == 201, (status, body)
    status, body = await ahttp(server, "GET", LIVE_PAGE, headers=page)
    assert status == 200, (status, str(body)[:300])
    # The health checks keep their documented answers.
    status, body = await ahttp(server, "GET", "/health")
    assert (status, body["status"], body["channelLayer"]) == (200, "degraded", "down"), body
    status, body = await ahttp(server, "GET", "/health/detailed", token=tokens["staff"])
    assert (status, body["status"], body["channelLayer"]["ok"]) == (503, "degraded", False), body

    own_redis.start()
    status, body = await ahttp(server, "GET", ROOM_INFO, token=tokens["ana"])
    assert status == 200, (status, body)
    assert "Internal Server Error" not in server.output()


@pytest.mark.postgres
async def test_with_postgres_cut_every_endpoint_answers_503_and_says_why(
    proxied_server, database_proxy, tokens, people
):
    server = proxied_server
    page = await database_sync_to_async(cookie_header)(people["ana"], server)
    status, body = await rest_scan(server, tokens["ana"], "VIN-BEFORE")
    assert status == 201, (status, body)

    database_proxy.cut()
    for name, (path, user) in READS.items():
        for language, detail in DATABASE_DOWN.items():
            status, body = await ahttp(
                server, "GET", path, token=tokens[user], headers={"Accept-Language": language}
            )
            assert (status, body) == (503, {"detail": detail, "code": "database_unavailable"}), (
                name,
                language,
            )
    status, body = await rest_scan(server, tokens["ana"], "VIN-DURING", headers={"Accept-Language": "en"})
    assert (status, body) == (503, {"detail": DATABASE_DOWN["en"], "code": "database_unavailable"})
    # The live page: a page that says so (503), not the server error page.
    status, body = await ahttp(server, "GET", LIVE_PAGE, headers={**page, "Accept-Language": "en"})
    assert status == 503 and DATABASE_DOWN["en"] in body, (status, str(body)[:500])
    status, body = await ahttp(server, "GET", "/health")
    assert (status, body["status"], body["database"]) == (503, "error", "down"), body

    database_proxy.restore()
    status, body = await ahttp(server, "GET", ROOM_INFO, token=tokens["ana"])
    assert status == 200, (status, body)
