"""The installable app's manifest and service worker, as the browser fetches them."""

import json
import shutil

from django.test import Client

from inventory import pwa


def test_the_service_worker_is_served_at_the_root_uncached_with_the_shell_it_keeps(db):
    response = Client().get("/service-worker.js")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/javascript")
    assert "no-cache" in response["Cache-Control"]  # an update is seen on the next visit
    assert response["Service-Worker-Allowed"] == "/"
    first_line, source = response.content.decode().split("\n", 1)
    shell = json.loads(first_line.removeprefix("self.SHELL = ").removesuffix(";"))
    assert len(shell["version"]) == 16
    for path in (
        "/static/js/live-page.js",
        "/static/js/camera.js",
        "/static/css/app.css",
        "/static/vendor/barcode-detector/zxing_reader.wasm",
        "/static/icons/icon-192.png",
    ):
        assert path in shell["static"]
    assert "/static/js/service-worker.js" not in shell["static"]
    assert shell["catalog"] == "/jsi18n/"
    assert 'addEventListener("fetch"' in source


def test_the_manifest_makes_the_app_installable_in_the_page_language(db):
    manifest = Client().get("/manifest.webmanifest", HTTP_ACCEPT_LANGUAGE="en")
    assert manifest["Content-Type"] == "application/manifest+json"
    body = manifest.json()
    assert body["name"] == "Live inventory"
    assert body["start_url"] == "/" and body["display"] == "standalone"
    assert {icon["sizes"] for icon in body["icons"]} >= {"192x192", "512x512"}
    assert Client().get("/manifest.webmanifest").json()["name"] == "Inventario en vivo"


def test_a_post_to_the_service_worker_is_refused(db):
    assert Client().post("/service-worker.js").status_code == 405


def test_changing_a_shell_file_changes_the_cache_version(tmp_path, settings):
    """A new version is a new service worker: it installs a fresh cache and deletes the old ones."""
    static = tmp_path / "static"
    shutil.copytree(settings.BASE_DIR / "static", static)
    settings.STATICFILES_DIRS = [static]
    before = pwa.shell()
    assert pwa.shell()["version"] == before["version"]  # the same files, the same cache
    (static / "js" / "camera.js").write_text("// changed\n", encoding="utf-8")
    assert pwa.shell()["version"] != before["version"]
