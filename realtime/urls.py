"""Realtime's own HTTP endpoints, at the URLs protocol v1 gives them (included at the site's root)."""

from django.urls import path

from . import api, health

urlpatterns = [
    path(
        "api/inventory/websocket/room-info/<str:agency>/<str:month>/<str:year>",
        api.RoomInfoView.as_view(),
        name="room-info",
    ),
    path("api/inventory/websocket/metrics", api.MetricsView.as_view(), name="websocket-metrics"),
    path("health", health.health, name="health"),
    path("health/detailed", health.health_detailed, name="health-detailed"),
    path("metrics", api.PrometheusMetricsView.as_view(), name="prometheus-metrics"),
]
