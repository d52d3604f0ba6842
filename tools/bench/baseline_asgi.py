"""The benchmark's baseline: the same room served the way a bare Channels app would serve it.

Same URL, authentication and services as the product, but every broadcast is relayed as a bare
consumer does it: channels' default dispatch (with its per-message close_old_connections thread
hop) and `send_json` per recipient, so the JSON is encoded once per socket. Run it on the default
channels-redis layer (REDIS_CHANNEL_LAYER=core). Not used by the product.
"""

import json
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "inventory_site.settings.production")
django_asgi_app = get_asgi_application()

from channels.consumer import AsyncConsumer  # noqa: E402
from channels.routing import ProtocolTypeRouter  # noqa: E402

from realtime import routing  # noqa: E402
from realtime.consumers import InventoryConsumer  # noqa: E402


class BareConsumer(InventoryConsumer):
    dispatch = AsyncConsumer.dispatch

    async def room_event(self, event):
        await self.send_json(json.loads(event["text"]))


routing.websocket_urlpatterns[0].callback = BareConsumer.as_asgi()
application = ProtocolTypeRouter({"http": django_asgi_app, "websocket": routing.build_application()})
