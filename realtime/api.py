"""Realtime's own HTTP views: who is in a room (room-info), the live figures (JSON and Prometheus)."""

from __future__ import annotations

from django.http import HttpResponse
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import permissions, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from inventory import access, selectors

from . import metrics, presence
from .permissions import CanViewRealtimeMetrics


class RoomUserOutput(serializers.Serializer):
    userId = serializers.CharField(allow_null=True)  # noqa: N815
    userName = serializers.CharField()  # noqa: N815
    connections = serializers.IntegerField()
    since = serializers.CharField()


class RoomInfoOutput(serializers.Serializer):
    room = serializers.CharField()
    agency = serializers.CharField()
    month = serializers.CharField()
    year = serializers.IntegerField()
    connections = serializers.IntegerField()
    users = RoomUserOutput(many=True)
    inventoryId = serializers.CharField(allow_null=True)  # noqa: N815
    status = serializers.CharField(allow_null=True)
    scanCount = serializers.IntegerField()  # noqa: N815
    lastSeq = serializers.IntegerField()  # noqa: N815
    maxConnections = serializers.IntegerField()  # noqa: N815
    timestamp = serializers.CharField()


class QuantilesOutput(serializers.Serializer):
    p50 = serializers.FloatField(allow_null=True)
    p95 = serializers.FloatField(allow_null=True)
    p99 = serializers.FloatField(allow_null=True)


class LatencyOutput(QuantilesOutput):
    count = serializers.IntegerField()
    sum = serializers.FloatField()
    max = serializers.FloatField(allow_null=True)


class RoomFiguresOutput(serializers.Serializer):
    room = serializers.CharField(allow_null=True)
    inventoryId = serializers.CharField()  # noqa: N815
    connections = serializers.IntegerField()
    pingLatencyMs = QuantilesOutput()  # noqa: N815


class CountersOutput(serializers.Serializer):
    activeConnections = serializers.IntegerField()  # noqa: N815
    userSessions = serializers.IntegerField()  # noqa: N815
    messagesSent = serializers.IntegerField()  # noqa: N815
    messagesReceived = serializers.IntegerField()  # noqa: N815
    errors = serializers.IntegerField()
    deliveries = serializers.IntegerField()
    broadcastFailures = serializers.IntegerField()  # noqa: N815
    gapsFilled = serializers.IntegerField()  # noqa: N815
    errorsByCode = serializers.DictField(child=serializers.IntegerField())  # noqa: N815
    rejections = serializers.DictField(child=serializers.IntegerField())
    deliveryLatencyMs = LatencyOutput()  # noqa: N815
    pingLatencyMs = LatencyOutput()  # noqa: N815


class InstanceFiguresOutput(CountersOutput):
    instance = serializers.CharField()
    pid = serializers.IntegerField()
    startedAt = serializers.CharField()  # noqa: N815
    updatedAt = serializers.CharField()  # noqa: N815
    connectionsTotal = serializers.IntegerField()  # noqa: N815
    roomPingLatencyMs = serializers.DictField(child=QuantilesOutput())  # noqa: N815
    gone = serializers.BooleanField(required=False, help_text=_("Solo en goneInstances."))


class MetricsOutput(CountersOutput):
    activeRooms = serializers.IntegerField()  # noqa: N815
    rooms = RoomFiguresOutput(many=True)
    instances = InstanceFiguresOutput(many=True)
    goneInstances = InstanceFiguresOutput(many=True)  # noqa: N815
    timestamp = serializers.CharField()


class RoomInfoView(APIView):
    """Who is in a room right now, across every server instance."""

    @extend_schema(responses={200: RoomInfoOutput})
    def get(self, request, agency, month, year):
        room = access.room_resolve(request.user, agency=agency, month=month, year=year)
        inventory = selectors.inventory_find(room)
        return Response(presence.room_info(room, inventory))


class MetricsView(APIView):
    """Realtime metrics aggregated across every server instance (`view_realtime_metrics`)."""

    permission_classes = [permissions.IsAuthenticated, CanViewRealtimeMetrics]

    @extend_schema(responses={200: MetricsOutput})
    def get(self, request):
        return Response(metrics.aggregate())


class PrometheusMetricsView(APIView):
    """The realtime metrics in Prometheus text format (`view_realtime_metrics`; scrape with a token)."""

    permission_classes = [permissions.IsAuthenticated, CanViewRealtimeMetrics]

    @extend_schema(responses={(200, "text/plain"): OpenApiTypes.STR})
    def get(self, request):
        from prometheus_client import CONTENT_TYPE_LATEST

        from .prometheus import exposition

        return HttpResponse(exposition(), content_type=CONTENT_TYPE_LATEST)
