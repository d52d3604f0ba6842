"""Browser fixtures: Debian's Chromium driven by Playwright, against a real daphne server.

Playwright's sync API runs an event loop in the test's thread. While it runs, Django refuses
ORM calls from that thread (and asgiref would hand them a connection of their own that nobody
closes), and `async_to_sync`, which the services use to broadcast after commit, refuses to run.
So Playwright starts only when the first page opens, and database work from then on goes
through `in_thread`.
"""

from __future__ import annotations

import os
import shutil
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connections
from django.test import Client

from tests.conftest import need
from tests.faults import RedisServer
from tests.servers import running_server

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
DESKTOP = {"width": 1280, "height": 800}
# Chromium with a camera that plays a video file (tests/e2e/fake_camera.py). Not with
# --use-fake-ui-for-media-stream, which grants every request: a context is given the camera with
# `permissions=["camera"]`, and without it the browser refuses, as when a counter says no.
FAKE_CAMERA_ARGS = ["--use-fake-device-for-media-stream"]


def in_thread(function, /, *args, **kwargs):
    """Run database work away from Playwright's event loop, closing its connection after."""

    def run():
        try:
            return function(*args, **kwargs)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run).result()


@pytest.fixture
def own_redis():
    """A redis-server of the test's own, on a free port: the test may stop or pause it."""
    need(shutil.which("redis-server") is not None, "needs redis-server on PATH")
    with RedisServer() as redis:
        yield redis


@pytest.fixture(scope="session")
def collected_static():
    """The test server runs with DEBUG off, so whitenoise serves what collectstatic gathered."""
    call_command("collectstatic", interactive=False, verbosity=0)


@pytest.fixture
def server(transactional_db, collected_static):
    with running_server() as server:
        yield server


@pytest.fixture
def open_page(server):
    """Open a page as a signed-in user in a fresh browser context; fail on any script error.

    `camera=FILE` opens it in a browser of its own whose camera plays that video (Y4M).
    """
    need(os.path.exists(CHROMIUM), f"needs Debian's Chromium at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    session = {}
    errors = []

    def browser(camera=None):
        if not session:
            session["playwright"] = sync_playwright().start()
        key = f"browser:{camera}"
        if key not in session:
            args = CHROMIUM_ARGS
            if camera is not None:
                args = [*args, *FAKE_CAMERA_ARGS, f"--use-file-for-fake-video-capture={camera}"]
            session[key] = session["playwright"].chromium.launch(executable_path=CHROMIUM, args=args)
        return session[key]

    def open_(user, path, *, viewport=DESKTOP, locale="es-MX", camera=None, **context_options):
        context = browser(camera).new_context(
            viewport=viewport, locale=locale, timezone_id="America/Mexico_City", **context_options
        )
        context.add_cookies([in_thread(session_cookie, user, server)])
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(f"{user.username}: {error}"))
        page.goto(server.http + path)
        return page

    yield open_
    if session:
        for key, value in session.items():
            if key.startswith("browser:"):
                value.close()
        session["playwright"].stop()
    assert not errors, errors


def session_cookie(user, server) -> dict:
    client = Client()
    client.force_login(user)
    name = settings.SESSION_COOKIE_NAME
    return {"name": name, "value": client.cookies[name].value, "url": server.http}
