"""Who may read the live figures (metrics, detailed health): realtime's HTTP views share it."""

from rest_framework import permissions


class CanViewRealtimeMetrics(permissions.BasePermission):
    """The live figures name every room: the `view_realtime_metrics` permission, not staff status alone."""

    def has_permission(self, request, view):
        return bool(request.user and request.user.has_perm("inventory.view_realtime_metrics"))
