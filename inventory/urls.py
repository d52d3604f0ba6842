"""Page routes: sign in and out, the index, the live-scan page and the JavaScript catalog."""

from csp.decorators import csp_update
from django.contrib.auth import views as auth_views
from django.urls import path
from django.views.i18n import JavaScriptCatalog

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(redirect_authenticated_user=True),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    # The live page compiles the camera's barcode engine (our own static .wasm): WebAssembly only,
    # not eval() of JavaScript, and only on this page.
    path(
        "inventory/<str:agency>/<str:month>/<str:year>/",
        csp_update({"script-src": ["'wasm-unsafe-eval'"]})(views.inventory_live),
        name="inventory-live",
    ),
    path("jsi18n/", JavaScriptCatalog.as_view(), name="javascript-catalog"),
]
