"""WSGI entry point (HTTP only; the live rooms need the ASGI application)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "inventory_site.settings.local")

application = get_wsgi_application()
