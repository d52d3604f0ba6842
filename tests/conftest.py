"""Shared fixtures: users, agencies, API clients, real services and clean realtime state."""

from __future__ import annotations

import os

import pytest
from asgiref.sync import async_to_sync
from channels.layers import channel_layers
from django.conf import settings
from django.core.cache import cache
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from inventory.models import Agency
from realtime import clock, metrics, presence
from tests.fakeclock import FakeClock

# Under CI a missing service is a failure, except in the pass that deliberately runs on the
# embedded default (.ci/run sets EMBEDDED_DEFAULT=1 there).
STRICT = bool(os.environ.get("CI")) and not os.environ.get("EMBEDDED_DEFAULT")


def need(condition: bool, reason: str) -> None:
    """Skip a test that needs a real service that is not configured; fail instead under CI."""
    if condition:
        return
    if STRICT:
        pytest.fail(f"{reason} (CI must run this test)")
    pytest.skip(reason)


@pytest.fixture
def require_redis():
    need(bool(settings.REDIS_URL), "needs REDIS_URL: a real Redis")


@pytest.fixture
def require_postgres():
    need(settings.DATABASES["default"]["ENGINE"].endswith("postgresql"), "needs DATABASE_URL on PostgreSQL")


async def _clear_realtime():
    await presence.get_presence().clear()
    if settings.REDIS_URL:
        from realtime.redis_client import get_redis, key

        client = get_redis()
        async for name in client.scan_iter(match=key("*")):
            await client.delete(name)
        await client.aclose()


@pytest.fixture(autouse=True)
def clean_realtime_state(settings):
    """Every test starts with no presence, no rate-limit windows, zeroed metrics and a new layer.

    Each async test runs on its own event loop; a channel layer kept from an earlier test may
    still hold a receive lock bound to that loop's dead task, so every test builds its own.
    """
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK}
    channel_layers.backends.clear()
    cache.clear()
    async_to_sync(_clear_realtime)()
    metrics.local.reset()
    yield
    cache.clear()


@pytest.fixture
def make_user(django_user_model):
    def make(username, *, first_name="", last_name="", staff=False, agencies=()):
        user = django_user_model.objects.create_user(
            username=username, password="secret-pass-123", first_name=first_name, last_name=last_name
        )
        user.is_staff = user.is_superuser = staff
        user.save()
        for agency in agencies:
            agency.members.add(user)
        return user

    return make


@pytest.fixture
def alfa(db):
    return Agency.objects.create(name="Alfa Romeo")


@pytest.fixture
def peugeot(db):
    return Agency.objects.create(name="Peugeot Querétaro")


@pytest.fixture
def manager(make_user, alfa):
    """Gema, a manager of Alfa Romeo: imports its expected list and explains its variances."""
    user = make_user("gerente", first_name="Gema", last_name="Ruiz", agencies=[alfa])
    alfa.managers.add(user)
    return user


@pytest.fixture
def ana(make_user, alfa, peugeot):
    return make_user("ana", first_name="Ana", last_name="García", agencies=[alfa, peugeot])


@pytest.fixture
def luis(make_user, alfa):
    return make_user("luis", first_name="Luis", last_name="Pérez", agencies=[alfa])


@pytest.fixture
def outsider(make_user, db):
    return make_user("otto", first_name="Otto")


@pytest.fixture
def staff(make_user, db):
    return make_user("boss", first_name="Jefa", staff=True)


def token_for(user) -> str:
    return Token.objects.get_or_create(user=user)[0].key


@pytest.fixture
def api_for():
    def client_for(user=None):
        client = APIClient()
        if user is not None:
            client.credentials(HTTP_AUTHORIZATION=f"Token {token_for(user)}")
        return client

    return client_for


@pytest.fixture
def server(transactional_db):
    """One real daphne process (`manage.py serve`) serving the test database."""
    from tests.servers import running_server

    with running_server() as live:
        yield live


def pytest_sessionfinish(session):
    """Django deletes the SQLite test database but not the WAL files beside it: remove those too."""
    test_name = settings.DATABASES["default"].get("TEST", {}).get("NAME")
    if test_name and settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        for suffix in ("-wal", "-shm"):
            if os.path.exists(test_name + suffix):
                os.remove(test_name + suffix)


@pytest.fixture(scope="session", autouse=True)
def end_stray_database_sessions(django_db_setup, django_db_blocker):
    """Before Django drops the PostgreSQL test database, end the sessions other threads left open.

    Threads a test starts (the concurrency tests' writers, the executor behind an async test's
    ORM calls) keep their own connection; one still open makes DROP DATABASE fail, and the test
    database would be left behind on the server after every run.
    """
    yield
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


@pytest.fixture
def fake_clock():
    """realtime's clock, stopped at the current time: the test moves it with `advance` / `run_for`."""
    with clock.use(FakeClock()) as fake:
        yield fake
