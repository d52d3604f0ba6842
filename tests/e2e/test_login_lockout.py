"""The login lockout holds across server processes (Redis) and behind the Procfile's one proxy."""

import http.cookiejar
import json
import re
import urllib.error
import urllib.parse
import urllib.request

import pytest

from tests.servers import running_server

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PASSWORD = "secret-pass-123"


def ask_token(server, username, password, forwarded_for):
    """POST /api/auth/token/ as the proxy would pass it on: X-Forwarded-For ends with what it saw."""
    request = urllib.request.Request(
        f"{server.http}/api/auth/token/",
        data=json.dumps({"username": username, "password": password}).encode(),
        headers={"Content-Type": "application/json", "X-Forwarded-For": forwarded_for},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def sign_in_on_the_page(server, username, password, forwarded_for):
    """GET the login page for its CSRF token, then POST the form; the status and the page."""
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    headers = {"X-Forwarded-For": forwarded_for}
    with opener.open(urllib.request.Request(f"{server.http}/accounts/login/", headers=headers)) as page:
        csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.read().decode())[1]
    form = {"username": username, "password": password, "csrfmiddlewaretoken": csrf}
    request = urllib.request.Request(
        f"{server.http}/accounts/login/",
        data=urllib.parse.urlencode(form).encode(),
        headers={**headers, "Referer": f"{server.http}/accounts/login/"},
    )
    try:
        with opener.open(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_five_failures_lock_out_on_every_process_whatever_the_client_writes_in_x_forwarded_for(
    require_redis, ana, luis
):
    # Started as the Procfile starts them (no daphne --proxy-headers), behind one trusted proxy.
    env = {"TRUSTED_PROXIES": "1"}
    with running_server(env=env) as first, running_server(env=env) as second:
        answers = [
            ask_token((first, second)[n % 2], "ana", f"wrong-{n}", f"10.0.0.{n}, 203.0.113.9")[0]
            for n in range(5)
        ]
        assert answers == [400, 400, 400, 400, 429]
        status, body = ask_token(second, "ana", PASSWORD, "10.9.9.9, 198.51.100.20")
        assert (status, body["code"]) == (429, "login_locked")  # the username, from anywhere
        assert ask_token(first, "luis", PASSWORD, "8.8.8.8, 203.0.113.9")[0] == 429  # the address
        assert ask_token(first, "luis", PASSWORD, "203.0.113.9, 198.51.100.20")[0] == 200
        # The login page, served by daphne (Django's async middleware chain), says so too.
        status, page = sign_in_on_the_page(first, "ana", PASSWORD, "198.51.100.30")
        assert status == 429
        assert "Demasiados intentos fallidos de inicio de sesión. Inténtalo de nuevo en 15 min." in page
        assert sign_in_on_the_page(second, "luis", PASSWORD, "198.51.100.31")[0] == 200  # the home page
