"""Health checks (realtime's own): `/health` for load balancers, `/health/detailed` for staff."""

import asyncio
import logging

from asgiref.sync import async_to_sync
from channels import DEFAULT_CHANNEL_LAYER
from channels.layers import channel_layers, get_channel_layer
from django.db import connection
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema, extend_schema_field
from rest_framework import permissions, serializers
from rest_framework.decorators import api_view, permission_classes
from rest_framework.response import Response

from . import metrics, protocol
from .api import MetricsOutput
from .permissions import CanViewRealtimeMetrics

logger = logging.getLogger("inventory.health")


def check_database() -> dict:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        return {"ok": True, "vendor": connection.vendor}
    except Exception as exc:  # any driver error means "down"
        logger.warning("Database check failed: %s", exc)
        return {"ok": False, "vendor": connection.vendor, "error": str(exc).strip()[:200]}


LAYER_TIMEOUT = 2.0


async def _layer_round_trip() -> None:
    """Send a message to a fresh channel and receive it, on a layer instance of the check's own.

    The process's shared layer is not used: with channels-redis' core layer, a receive on it queues
    behind the consumers' shared receive loop, so a busy instance would look down.
    """
    layer = channel_layers.make_backend(DEFAULT_CHANNEL_LAYER)
    try:
        channel = await layer.new_channel("health")
        await layer.send(channel, {"type": "health.check"})
        message = await layer.receive(channel)
        if message.get("type") != "health.check":
            raise RuntimeError(f"the layer returned {message!r}")
    finally:
        await _close(layer)


async def _close(layer) -> None:
    """Close the check's own connections (channels-redis), never touching what others stored."""
    if hasattr(layer, "close_pools"):  # core: flush() would delete every channel and group
        await layer.close_pools()
    elif type(layer).__name__ == "RedisPubSubChannelLayer":  # its flush() only closes its own
        await layer.flush()


def check_channel_layer() -> dict:
    layer = get_channel_layer()
    backend = f"{type(layer).__module__}.{type(layer).__name__}"
    try:
        async_to_sync(asyncio.wait_for)(_layer_round_trip(), timeout=LAYER_TIMEOUT)
        return {"ok": True, "backend": backend}
    except Exception as exc:
        logger.warning("Channel layer check failed: %r", exc)
        return {"ok": False, "backend": backend, "error": repr(exc)[:200]}


class HealthOutput(serializers.Serializer):
    status = serializers.CharField(
        help_text=_("ok, degraded (sin capa de canales) o error (sin base de datos).")
    )
    database = serializers.CharField(help_text=_("ok o down."))
    channelLayer = serializers.CharField(help_text=_("ok o down."))  # noqa: N815
    timestamp = serializers.CharField()


class CheckOutput(serializers.Serializer):
    ok = serializers.BooleanField()
    error = serializers.CharField(required=False, help_text=_("Por qué falló la comprobación."))


class DatabaseCheckOutput(CheckOutput):
    vendor = serializers.CharField()


class ChannelLayerCheckOutput(CheckOutput):
    backend = serializers.CharField()


class FiguresUnavailableOutput(CheckOutput):
    """The live figures could not be read (Redis down)."""


@extend_schema_field(
    PolymorphicProxySerializer(
        component_name="WebsocketFigures",
        serializers=[MetricsOutput, FiguresUnavailableOutput],
        resource_type_field_name=None,
    )
)
class WebsocketFiguresField(serializers.DictField):
    """The live figures, or why they could not be read."""


class HealthDetailedOutput(serializers.Serializer):
    status = serializers.CharField(help_text=_("ok o degraded."))
    timestamp = serializers.CharField()
    database = DatabaseCheckOutput()
    channelLayer = ChannelLayerCheckOutput()  # noqa: N815
    websocket = WebsocketFiguresField()


@extend_schema(responses={200: HealthOutput, 503: HealthOutput})
@api_view(["GET"])
@permission_classes([permissions.AllowAny])
def health(request):
    """Liveness for load balancers: 503 when the database is down; says which part is down."""
    database = check_database()["ok"]
    layer = check_channel_layer()["ok"]
    return Response(
        {
            "status": "ok" if database and layer else ("degraded" if database else "error"),
            "database": "ok" if database else "down",
            "channelLayer": "ok" if layer else "down",
            "timestamp": protocol.timestamp(),
        },
        # Without the channel layer the server still records scans: only live delivery waits.
        status=200 if database else 503,
    )


@extend_schema(responses={200: HealthDetailedOutput, 503: HealthDetailedOutput})
@api_view(["GET"])
@permission_classes([permissions.IsAuthenticated, CanViewRealtimeMetrics])
def health_detailed(request):
    """Each part checked for real: database, channel layer, and the live rooms' figures."""
    database = check_database()
    layer = check_channel_layer()
    ok = database["ok"] and layer["ok"]
    body = {
        "status": "ok" if ok else "degraded",
        "timestamp": protocol.timestamp(),
        "database": database,
        "channelLayer": layer,
        "websocket": _websocket_figures(),
    }
    return Response(body, status=200 if ok else 503)


def _websocket_figures() -> dict:
    try:
        return metrics.aggregate()
    except Exception as exc:  # Redis down: say so rather than fail the whole check
        return {"ok": False, "error": repr(exc)[:200]}
