"""Every page carries the Content-Security-Policy; production speaks JSON and redirects to HTTPS."""

import json

import pytest
from django.test import Client

from tests.test_settings import ROOT, run_django

STRONG_KEY = "k3y-" + "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def directives(response) -> dict[str, list[str]]:
    policy = response["Content-Security-Policy"]
    return {part.split()[0]: part.split()[1:] for part in policy.split(";") if part.strip()}


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/accounts/login/", "/", "/inventory/alfa-romeo/10/2025/", "/admin/"])
def test_every_page_carries_a_policy_with_no_inline_script(path, staff, alfa):
    client = Client()
    if path != "/accounts/login/":
        client.force_login(staff)
    response = client.get(path)
    assert response.status_code == 200
    policy = directives(response)
    # Only the live page may compile WebAssembly (the camera's barcode engine).
    wasm = ["'wasm-unsafe-eval'"] if path.startswith("/inventory/") else []
    assert policy["script-src"] == ["'self'", *wasm]
    assert policy["style-src"] == ["'self'"]
    assert policy["object-src"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]


@pytest.mark.django_db
def test_the_api_docs_allow_inline_styles_but_no_inline_script(staff):
    client = Client()
    client.force_login(staff)
    policy = directives(client.get("/api/docs/"))
    assert policy["style-src"] == ["'self'", "'unsafe-inline'"]
    assert policy["script-src"] == ["'self'"]


PRODUCTION_PROBE = """
from django.test import Client
from django.test.utils import setup_test_environment
import json
setup_test_environment()
client = Client(raise_request_exception=False)
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
answers = {}
for path in ("/health", "/health/detailed", "/api/agencies/"):
    response = client.get(path, HTTP_ACCEPT=BROWSER)
    answers[path] = [response.status_code, response.get("Location", ""), response.get("Content-Type", "")]
secure = client.get("/api/agencies/", HTTP_ACCEPT=BROWSER, HTTP_X_FORWARDED_PROTO="https")
answers["secure-api"] = [secure.status_code, "", secure.get("Content-Type", "")]
print(json.dumps(answers))
"""


def test_production_redirects_all_but_health_to_https_and_has_no_browsable_api(tmp_path):
    result = run_django(
        PRODUCTION_PROBE,
        "inventory_site.settings.production",
        SECRET_KEY=STRONG_KEY,
        ALLOWED_HOSTS="testserver",
        DATABASE_URL=f"sqlite:///{tmp_path / 'probe.sqlite3'}",
        REDIS_URL="",
    )
    assert result.returncode == 0, result.stderr
    answers = json.loads(result.stdout.strip().splitlines()[-1])
    assert answers["/health"][0] != 301
    assert answers["/health/detailed"][:2] == [301, "https://testserver/health/detailed"]
    assert answers["/api/agencies/"][:2] == [301, "https://testserver/api/agencies/"]
    # A browser asking over HTTPS still gets JSON: there is no browsable API.
    assert answers["secure-api"][0] == 401
    assert answers["secure-api"][2] == "application/json"


def test_the_procfile_does_not_let_daphne_take_the_client_address_from_the_client():
    # daphne's --proxy-headers makes the leftmost X-Forwarded-For entry, written by the client,
    # the connection's address; production reads it from TRUSTED_PROXIES (1) instead.
    web = next(line for line in (ROOT / "Procfile").read_text().splitlines() if line.startswith("web:"))
    assert "manage.py serve" in web and "settings.production" in web
    assert "--proxy-headers" not in web
    result = run_django(
        "print(settings.TRUSTED_PROXIES, settings.REST_FRAMEWORK['NUM_PROXIES'])",
        "inventory_site.settings.production",
        SECRET_KEY=STRONG_KEY,
    )
    assert result.stdout.split() == ["1", "1"], result.stderr
