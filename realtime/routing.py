"""WebSocket routes: `{WEBSOCKET_PATH}/{agency}/{month}/{year}`; anything else is a 4404."""

import re

from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.urls import re_path
from django.utils import translation
from django.utils.translation import gettext as _

from . import broadcast, metrics, protocol
from .auth import auth_stack, origin_validator
from .conf import realtime_settings
from .consumers import InventoryConsumer
from .joins import JoinGate
from .language import language_of


class UnknownPathConsumer(AsyncJsonWebsocketConsumer):
    """A socket opened on a path that names no room: explain the right one and close with 4404."""

    channel_layer_alias = None

    async def connect(self):
        await self.accept()
        path = realtime_settings.WEBSOCKET_PATH.rstrip("/")
        with translation.override(language_of(self.scope)):
            message = _("Ruta WebSocket desconocida: conecta a %(path)s/{agencia}/{mes}/{año}.") % {
                "path": path
            }
        metrics.local.rejected("not_found")
        metrics.local.error("not_found")
        await self.send(text_data=broadcast.encode(protocol.error(message, code="not_found")))
        await self.close(code=protocol.CLOSE_NOT_FOUND)


_path = re.escape(realtime_settings.WEBSOCKET_PATH.strip("/"))

websocket_urlpatterns = [
    re_path(
        rf"^/?{_path}/(?P<agency>[^/]+)/(?P<month>[^/]+)/(?P<year>[^/]+)/?$",
        InventoryConsumer.as_asgi(),
    ),
    # Any other path gets an explained 4404 instead of an error inside the server.
    re_path(r"", UnknownPathConsumer.as_asgi()),
]


def build_application():
    from channels.routing import URLRouter

    return origin_validator(JoinGate(auth_stack(URLRouter(websocket_urlpatterns))))


websocket_application = build_application()
