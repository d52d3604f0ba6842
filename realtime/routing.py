"""WebSocket routes: `{WEBSOCKET_PATH}/{agency}/{month}/{year}`; anything else is a 4404."""

import re

from django.urls import re_path

from .auth import auth_stack, origin_validator
from .conf import realtime_settings
from .consumers import InventoryConsumer, UnknownPathConsumer

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

    return origin_validator(auth_stack(URLRouter(websocket_urlpatterns)))


websocket_application = build_application()
