from django.urls import path, re_path
from rest_framework.routers import DefaultRouter

from . import reconciliation, views

router = DefaultRouter(trailing_slash=True)
router.register("agencies", views.AgencyViewSet, basename="agency")
router.register("inventories", views.InventoryViewSet, basename="inventory")

urlpatterns = [
    path("auth/token/", views.ObtainTokenView.as_view(), name="auth-token"),
    path("inventory/save-scan", views.SaveScanView.as_view(), name="save-scan"),
    path("inventory/finish-session", views.FinishSessionView.as_view(), name="finish-session"),
    path(
        "inventory/delete-scanned-entry",
        views.DeleteScannedEntryView.as_view(),
        name="delete-scanned-entry",
    ),
    # Reconciliation: expected list, progress, variance reasons, report (docs/reconciliation.md).
    path(
        "inventories/<int:pk>/expected/",
        reconciliation.ExpectedListView.as_view(),
        name="inventory-expected",
    ),
    path(
        "inventories/<int:pk>/progress/",
        reconciliation.ProgressView.as_view(),
        name="inventory-progress",
    ),
    path(
        "inventories/<int:pk>/exceptions/",
        reconciliation.VarianceView.as_view(),
        name="inventory-exceptions",
    ),
    path("inventories/<int:pk>/report/", reconciliation.ReportView.as_view(), name="inventory-report-api"),
    re_path(
        r"^inventories/(?P<pk>\d+)/report\.(?P<format>csv|xlsx|json)$",
        reconciliation.ReportView.as_view(),
        name="inventory-report-download",
    ),
    *router.urls,
]
