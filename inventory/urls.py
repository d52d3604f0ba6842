"""Page routes: sign in and out, the index, the live-scan page and the JavaScript catalog."""

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
    path("inventory/<str:agency>/<str:month>/<str:year>/", views.inventory_live, name="inventory-live"),
    path("jsi18n/", JavaScriptCatalog.as_view(), name="javascript-catalog"),
]
