"""Sign-in on every door locks out after a few failures; API tokens expire and die with the password."""

from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from django.test import Client, override_settings
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from inventory.api.exceptions import ResilientScopedRateThrottle
from realtime.auth import user_for_token
from tests.conftest import token_for

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"
ADMIN_LOGIN = "/admin/login/"
TOKEN = "/api/auth/token/"
PASSWORD = "secret-pass-123"
LOCKED = "Demasiados intentos fallidos de inicio de sesión. Inténtalo de nuevo en 15 min."


def page_login(username, password, **meta):
    return Client().post(LOGIN, {"username": username, "password": password}, **meta)


def api_login(username, password, **meta):
    return APIClient().post(TOKEN, {"username": username, "password": password}, format="json", **meta)


# Login lockout (django-axes): per username and per client address, on every door.


def test_the_login_page_locks_a_username_out_after_five_failures_even_for_the_right_password(ana):
    for attempt in range(4):
        response = page_login("ana", f"wrong-{attempt}", REMOTE_ADDR=f"198.51.100.{attempt}")
        assert response.status_code == 200
        assert "Usuario o contraseña incorrectos" in response.text
    response = page_login("ana", "wrong-4", REMOTE_ADDR="198.51.100.4")
    assert response.status_code == 429
    assert LOCKED in response.text
    assert response["Retry-After"] == "900"

    right = page_login("ana", PASSWORD, REMOTE_ADDR="198.51.100.200")
    assert right.status_code == 429 and LOCKED in right.text
    assert "_auth_user_id" not in right.wsgi_request.session


def test_the_login_page_locks_an_address_out_whatever_usernames_it_tries(ana, luis):
    for attempt in range(5):
        page_login(f"user-{attempt}", "wrong", REMOTE_ADDR="203.0.113.9")
    assert page_login("ana", PASSWORD, REMOTE_ADDR="203.0.113.9").status_code == 429
    # The same account from another address is not locked out by someone else's failures.
    assert page_login("ana", PASSWORD, REMOTE_ADDR="203.0.113.10").status_code == 302


def test_a_username_spelled_like_an_address_does_not_lock_that_address_out(ana):
    for _attempt in range(5):
        page_login("203.0.113.50", "wrong", REMOTE_ADDR="198.51.100.1")
    assert page_login("ana", PASSWORD, REMOTE_ADDR="203.0.113.50").status_code == 302


def test_rotating_x_forwarded_for_does_not_escape_the_lockout_without_a_trusted_proxy(ana):
    for attempt in range(5):
        forged = f"10.9.9.{attempt}"
        page_login(f"user-{attempt}", "wrong", REMOTE_ADDR="203.0.113.9", HTTP_X_FORWARDED_FOR=forged)
    response = page_login("ana", PASSWORD, REMOTE_ADDR="203.0.113.9", HTTP_X_FORWARDED_FOR="10.9.9.77")
    assert response.status_code == 429


def test_behind_one_trusted_proxy_the_address_is_the_one_it_reports(ana, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    proxy = {"REMOTE_ADDR": "10.0.0.2"}
    for attempt in range(5):
        # A client writes what it likes on the left; the proxy appends the address it saw.
        page_login(f"user-{attempt}", "wrong", HTTP_X_FORWARDED_FOR=f"1.2.3.{attempt}, 203.0.113.9", **proxy)
    locked = page_login("ana", PASSWORD, HTTP_X_FORWARDED_FOR="9.9.9.9, 203.0.113.9", **proxy)
    assert locked.status_code == 429
    other_client = page_login("ana", PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.9, 203.0.113.10", **proxy)
    assert other_client.status_code == 302


def test_the_admin_login_locks_out_with_its_own_page_and_the_message(staff):
    for attempt in range(4):
        assert Client().post(ADMIN_LOGIN, {"username": "boss", "password": f"x{attempt}"}).status_code == 200
    response = Client().post(ADMIN_LOGIN, {"username": "boss", "password": PASSWORD})
    assert response.status_code == 302  # the fifth try is right: failures are what count
    for attempt in range(5):
        response = Client().post(ADMIN_LOGIN, {"username": "boss", "password": f"y{attempt}"})
    assert response.status_code == 429
    assert LOCKED in response.text and 'name="password"' in response.text


def test_the_token_endpoint_answers_429_with_the_lockout_and_retry_after(ana):
    for attempt in range(4):
        assert api_login("ana", f"wrong-{attempt}").status_code == 400
    response = api_login("ana", "wrong-4")
    assert response.status_code == 429
    assert response.json() == {"detail": LOCKED, "code": "login_locked"}
    assert response["Retry-After"] == "900"
    assert api_login("ana", PASSWORD).status_code == 429


def test_failures_on_the_page_count_at_the_token_endpoint_too(ana):
    for attempt in range(5):
        page_login("ana", f"wrong-{attempt}")
    assert api_login("ana", PASSWORD).json()["code"] == "login_locked"


def test_the_lockout_ends_after_its_cool_off(ana, settings):
    settings.AXES_COOLOFF_TIME = timedelta(seconds=3)
    for attempt in range(5):
        page_login("ana", f"wrong-{attempt}")
    assert page_login("ana", PASSWORD).status_code == 429
    import time

    time.sleep(3.5)
    assert page_login("ana", PASSWORD).status_code == 302


def test_the_token_endpoints_rate_limit_is_not_escaped_by_rotating_x_forwarded_for(ana, monkeypatch):
    # DRF reads the rates once, at import; the test settings raise them for the rest of the suite.
    monkeypatch.setattr(ResilientScopedRateThrottle, "THROTTLE_RATES", {"login": "3/min"})
    answers = [api_login("ana", PASSWORD, HTTP_X_FORWARDED_FOR=f"10.0.0.{n}").status_code for n in range(4)]
    assert answers == [200, 200, 200, 429]


# API tokens: revoked, expired, and ended by a password change or a deactivation. The socket's
# token authentication runs in another thread: these tests commit what it must see.
tokens_db = pytest.mark.django_db(transaction=True)


def authenticates(key: str) -> tuple[int, bool]:
    """The REST status for the key, and whether the socket's token authentication accepts it."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    status = client.get("/api/agencies/").status_code
    return status, async_to_sync(user_for_token)(key).is_authenticated


@tokens_db
def test_the_token_endpoint_gives_the_same_token_until_it_is_revoked(api_for, ana):
    first = api_login("ana", PASSWORD).json()["token"]
    assert api_login("ana", PASSWORD).json()["token"] == first
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {first}")
    assert client.delete(TOKEN).status_code == 204
    assert authenticates(first) == (401, False)
    assert api_login("ana", PASSWORD).json()["token"] != first


@tokens_db
def test_revoking_needs_the_token_itself(ana):
    key = token_for(ana)
    client = Client()
    client.force_login(ana)
    assert client.delete(TOKEN).status_code == 401
    assert authenticates(key) == (200, True)


@tokens_db
def test_a_password_change_ends_the_token(ana):
    key = token_for(ana)
    assert authenticates(key) == (200, True)
    ana.set_password("another-pass-456")
    ana.save()
    assert authenticates(key) == (401, False)
    assert not Token.objects.filter(user=ana).exists()


@tokens_db
def test_a_password_changed_in_the_admin_ends_the_token(ana, staff):
    key = token_for(ana)
    admin = Client()
    admin.force_login(staff)
    response = admin.post(
        f"/admin/auth/user/{ana.pk}/password/",
        {"password1": "another-pass-456", "password2": "another-pass-456", "usable_password": "true"},
    )
    assert response.status_code == 302, response.content
    assert authenticates(key) == (401, False)


@tokens_db
def test_a_password_hash_upgrade_at_login_keeps_the_token(ana, settings):
    key = token_for(ana)
    settings.PASSWORD_HASHERS = [
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
        "django.contrib.auth.hashers.MD5PasswordHasher",
    ]
    assert page_login("ana", PASSWORD).status_code == 302  # rehashed from MD5 to PBKDF2 on the way
    ana.refresh_from_db()
    assert ana.password.startswith("pbkdf2_sha256$")
    assert authenticates(key) == (200, True)


@tokens_db
def test_deactivation_ends_the_token_and_reactivation_does_not_bring_it_back(ana):
    key = token_for(ana)
    ana.is_active = False
    ana.save()
    ana.is_active = True
    ana.save()
    assert authenticates(key) == (401, False)


@tokens_db
def test_an_unrelated_save_keeps_the_token(ana):
    key = token_for(ana)
    ana.first_name = "Anita"
    ana.save()
    assert authenticates(key) == (200, True)


@tokens_db
def test_a_token_past_api_token_ttl_no_longer_authenticates_and_a_new_one_is_issued(ana, settings):
    settings.API_TOKEN_TTL = 3600
    key = token_for(ana)
    assert authenticates(key) == (200, True)
    Token.objects.filter(key=key).update(created=timezone.now() - timedelta(seconds=3601))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    response = client.get("/api/agencies/")
    assert response.status_code == 401
    assert response.json()["detail"] == "El token expiró. Pide uno nuevo con tu usuario y contraseña."
    assert async_to_sync(user_for_token)(key).is_authenticated is False
    fresh = api_login("ana", PASSWORD).json()["token"]
    assert fresh != key and authenticates(fresh) == (200, True)
    assert api_login("ana", PASSWORD).json()["token"] == fresh


@tokens_db
def test_without_api_token_ttl_a_token_does_not_expire(ana, settings):
    settings.API_TOKEN_TTL = None
    key = token_for(ana)
    Token.objects.filter(key=key).update(created=timezone.now() - timedelta(days=3650))
    assert authenticates(key) == (200, True)


def test_sign_in_keeps_working_without_counting_when_the_cache_is_down(ana, settings):
    dead = {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}
    # AXES_HANDLER too: django-axes builds its handler again, on the dead cache, and after, on ours.
    with override_settings(CACHES={"default": dead}, AXES_HANDLER=settings.AXES_HANDLER):
        for attempt in range(6):
            assert page_login("ana", f"wrong-{attempt}").status_code == 200
        assert page_login("ana", PASSWORD).status_code == 302
