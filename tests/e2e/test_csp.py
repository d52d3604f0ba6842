"""The Content-Security-Policy holds in a real Chromium: no page breaks it, Swagger UI still renders."""

import os

import pytest
from playwright.sync_api import expect

from tests.conftest import need
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, DESKTOP, in_thread, session_cookie
from tests.e2e.test_browser_reconciliation import REPORT, counted_books

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

ROOM = "/inventory/alfa-romeo/10/2025/"


@pytest.fixture
def visit(server):
    """Open a page (signed in as `user`, if given) and return it with every CSP complaint it logged."""
    need(os.path.exists(CHROMIUM), f"needs Debian's Chromium at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    session = {}

    def open_(user, path):
        # Started at the first page, after the test's own database work (see conftest's docstring).
        if not session:
            session["playwright"] = sync_playwright().start()
            session["browser"] = session["playwright"].chromium.launch(
                executable_path=CHROMIUM, args=CHROMIUM_ARGS
            )
        context = session["browser"].new_context(viewport=DESKTOP, locale="es-MX")
        if user is not None:
            context.add_cookies([in_thread(session_cookie, user, server)])
        page = context.new_page()
        complaints = []
        page.on(
            "console",
            lambda message: (
                complaints.append(message.text)
                if "Content Security Policy" in message.text or "Content-Security-Policy" in message.text
                else None
            ),
        )
        page.on("pageerror", lambda error: complaints.append(f"page error: {error}"))
        response = page.goto(server.http + path)
        assert response.ok, (path, response.status)
        assert "script-src 'self'" in response.headers["content-security-policy"]
        page.wait_for_load_state("networkidle")
        return page, complaints

    yield open_
    if session:
        session["browser"].close()
        session["playwright"].stop()


def test_the_live_page_report_admin_and_login_break_no_csp_rule(staff, luis, alfa, visit):
    counted_books(alfa, luis)
    live, complaints = visit(luis, ROOM)
    expect(live.locator("#connection")).to_have_attribute("data-state", "online", timeout=10000)
    expect(live.locator("#progress-fill")).to_be_visible()
    live.keyboard.type("VIN-CSP-1")
    live.keyboard.press("Enter")
    expect(live.locator('#scan-list li[data-code="VIN-CSP-1"][data-state="confirmed"]')).to_be_visible()
    assert complaints == []

    report, complaints = visit(staff, REPORT)
    expect(report.locator("#figure-unexplained")).to_be_visible()
    assert complaints == []

    for path in ("/admin/", f"/admin/auth/user/{luis.pk}/change/", "/admin/inventory/agency/add/"):
        admin, complaints = visit(staff, path)
        expect(admin.locator("#content")).to_be_visible()
        assert complaints == [], path

    login, complaints = visit(None, "/accounts/login/")
    expect(login.get_by_label("Usuario")).to_be_visible()
    assert complaints == []


def test_swagger_ui_renders_under_its_own_policy(staff, visit):
    docs, complaints = visit(staff, "/api/docs/")
    expect(docs.locator(".swagger-ui .info .title")).to_contain_text("Inventario en vivo API", timeout=10000)
    expect(docs.locator(".opblock").first).to_be_visible()
    assert complaints == []
