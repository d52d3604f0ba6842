from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RealtimeConfig(AppConfig):
    name = "realtime"
    verbose_name = _("Salas en vivo")

    def ready(self):
        from . import live_page, publisher, revocation

        revocation.connect_signals()
        publisher.connect()
        live_page.connect()
