from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RealtimeConfig(AppConfig):
    name = "realtime"
    verbose_name = _("Live rooms")

    def ready(self):
        from . import revocation

        revocation.connect_signals()
