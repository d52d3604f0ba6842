"""The installable web app: its manifest and its service worker, both served from the site's root.

The service worker is static/js/service-worker.js, served at /service-worker.js so that its scope
covers every page, after a first line naming the application shell: the static files the live
page needs (as `{% static %}` names them, and as the JS modules' relative imports ask for them)
and a version that is the hash of their contents, so that any change installs a fresh cache.
"""

from __future__ import annotations

import hashlib
import json

from django.conf import settings
from django.contrib.staticfiles import finders
from django.http import HttpResponse, JsonResponse
from django.templatetags.static import static
from django.urls import path, reverse
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_GET

SERVICE_WORKER = "js/service-worker.js"
# Loaded by the live page (and the index); every module under js/ is added to these.
SHELL_FILES = (
    "css/app.css",
    "css/camera.css",
    "favicon.svg",
    "icons/icon-192.png",
    "icons/icon-512.png",
    "vendor/barcode-detector/ponyfill.js",
    "vendor/barcode-detector/zxing-exported.js",
    "vendor/barcode-detector/zxing_reader.wasm",
)
# The pages kept for offline use: the index and each room's live page (never its report).
PAGE_PATTERNS = (r"^/$", r"^/inventory/[^/]+/[^/]+/[^/]+/$")


def shell_files() -> tuple[str, ...]:
    """The static names of the application shell: SHELL_FILES and every module under js/."""
    modules = set()
    for finder in finders.get_finders():
        for relative, _storage in finder.list([]):
            name = relative.replace("\\", "/")
            if name.startswith("js/") and name.endswith(".js") and name != SERVICE_WORKER:
                modules.add(name)
    return (*SHELL_FILES, *sorted(modules))


def shell() -> dict:
    """What the service worker caches, and the version of that cache.

    Read on every request (about 1.2 MB hashed, a few milliseconds): a file edited under
    `make run` changes the version at once, so the browser never keeps serving the old one.
    """
    digest = hashlib.sha256()
    urls = []
    for name in (*shell_files(), SERVICE_WORKER):
        found = finders.find(name)
        if found is None:
            raise FileNotFoundError(f"static file {name!r} of the app shell is missing")
        with open(found, "rb") as file:
            digest.update(name.encode() + b"\0" + file.read())
        if name == SERVICE_WORKER:
            continue
        # The hashed name a template asks for, and the plain one a module's `import "./x.js"` asks for.
        for url in (static(name), f"{settings.STATIC_URL}{name}"):
            path_only = url if url.startswith("/") else f"/{url}"
            if path_only not in urls:
                urls.append(path_only)
    return {"version": digest.hexdigest()[:16], "static": urls, "pages": list(PAGE_PATTERNS)}


@require_GET
@cache_control(no_cache=True)
def service_worker(request):
    """The service worker, with the shell it caches; the browser checks it for updates on each visit."""
    with open(finders.find(SERVICE_WORKER), encoding="utf-8") as file:
        source = file.read()
    config = {**shell(), "catalog": reverse("javascript-catalog")}
    body = f"self.SHELL = {json.dumps(config)};\n{source}"
    response = HttpResponse(body, content_type="text/javascript; charset=utf-8")
    response["Service-Worker-Allowed"] = "/"
    return response


@require_GET
def web_manifest(request):
    """The web app manifest: installable, opening standalone on the index of the user's agencies."""
    manifest = {
        "name": _("Inventario en vivo"),
        "short_name": _("Inventario"),
        "description": _("Cuenta los vehículos de la agencia en equipo, en vivo, también sin señal."),
        "lang": get_language(),
        "start_url": reverse("home"),
        "scope": "/",
        "display": "standalone",
        "background_color": "#f4f6fa",
        "theme_color": "#2563eb",
        "icons": [
            {"src": static("icons/icon-192.png"), "sizes": "192x192", "type": "image/png"},
            {"src": static("icons/icon-512.png"), "sizes": "512x512", "type": "image/png"},
            {"src": static("favicon.svg"), "sizes": "any", "type": "image/svg+xml"},
        ],
    }
    return JsonResponse(manifest, content_type="application/manifest+json")


urlpatterns = [
    path("service-worker.js", service_worker, name="service-worker"),
    path("manifest.webmanifest", web_manifest, name="web-manifest"),
]
