"""Create demo data for trying the product locally: only when DEBUG is on."""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from rest_framework.authtoken.models import Token

from inventory.models import Agency

DEMO_PASSWORD = "inventario-demo"
DEMO_USERS = [
    # username, first name, last name, staff
    ("admin", "Admin", "", True),
    ("ana", "Ana", "García", False),
    ("luis", "Luis", "Pérez", False),
]


class Command(BaseCommand):
    help = "Create the demo agency and users (only with DEBUG on), and print their credentials."

    def add_arguments(self, parser):
        parser.add_argument("--force", action="store_true", help="Run even when DEBUG is off.")

    def handle(self, *args, force=False, **options):
        if not settings.DEBUG and not force:
            self.stdout.write("DEBUG is off: no demo data created.")
            return
        User = get_user_model()
        agency, _ = Agency.objects.get_or_create(name="Alfa Romeo")
        Agency.objects.get_or_create(name="Peugeot Querétaro")
        lines = []
        for username, first, last, staff in DEMO_USERS:
            user, created = User.objects.get_or_create(
                username=username, defaults={"first_name": first, "last_name": last}
            )
            if created:
                user.set_password(DEMO_PASSWORD)
                user.is_staff = user.is_superuser = staff
                user.save()
            agency.members.add(user)
            token, _ = Token.objects.get_or_create(user=user)
            lines.append(
                f"  {username:<6} / {DEMO_PASSWORD}   token {token.key}" + ("   (admin)" if staff else "")
            )
        self.stdout.write(self.style.SUCCESS("Demo data ready: agency 'Alfa Romeo'. Sign in with:"))
        for line in lines:
            self.stdout.write(line)
