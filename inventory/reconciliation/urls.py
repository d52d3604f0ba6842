"""Page route of the variance report; included by inventory_site.urls before inventory.urls."""

from django.urls import path

from . import views

urlpatterns = [
    path(
        "inventory/<str:agency>/<str:month>/<str:year>/report/",
        views.inventory_report,
        name="inventory-report",
    ),
]
