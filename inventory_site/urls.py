from csp.decorators import csp_update
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # Swagger UI's script comes from its own URL (the split view); its page and widgets style
    # themselves inline, so only this page allows inline styles.
    path(
        "api/docs/",
        csp_update({"style-src": ["'unsafe-inline'"]})(
            SpectacularSwaggerSplitView.as_view(url_name="schema")
        ),
        name="api-docs",
    ),
    path("", include("realtime.urls")),  # room-info, metrics, health: realtime's own
    path("api/", include("inventory.api.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include("inventory.pwa")),  # /service-worker.js and /manifest.webmanifest
    path("", include("inventory.reconciliation.urls")),
    path("", include("inventory.urls")),
]

handler404 = "inventory.api.exceptions.not_found"
handler500 = "inventory.api.exceptions.server_error"
