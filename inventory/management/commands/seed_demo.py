"""Create demo data for trying the product locally: only when DEBUG is on.

The demo users' password is generated on the first seed of each installation (never a constant
that every copy of the product shares), printed then, and kept in `DEMO_PASSWORD_FILE`
(gitignored, readable by its owner only) so that the README's terminal examples can read it.
"""

import os
import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from rest_framework.authtoken.models import Token

from inventory.models import Agency

# The password every installation had before it was generated: a demo user still on it gets a new one.
FORMER_DEMO_PASSWORD = "inventario-demo"
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
        password_file = Path(settings.DEMO_PASSWORD_FILE)
        password = _read_password(password_file)
        new_password = None
        lines = []
        for username, first, last, staff in DEMO_USERS:
            user, created = User.objects.get_or_create(
                username=username, defaults={"first_name": first, "last_name": last}
            )
            if created or user.check_password(FORMER_DEMO_PASSWORD) or not user.has_usable_password():
                if password is None:
                    password = new_password = secrets.token_urlsafe(12)
                    _write_password(password_file, password)
                user.set_password(password)
                if created:
                    user.is_staff = user.is_superuser = staff
                user.save()
            agency.members.add(user)
            token, _ = Token.objects.get_or_create(user=user)
            lines.append(f"  {username:<6}   token {token.key}" + ("   (admin)" if staff else ""))
        self.stdout.write(self.style.SUCCESS("Demo data ready: agency 'Alfa Romeo'. Sign in as:"))
        for line in lines:
            self.stdout.write(line)
        if new_password is not None:
            self.stdout.write(
                self.style.SUCCESS(f"Demo password (shown once, kept in {password_file}): {new_password}")
            )
        elif password is not None:
            self.stdout.write(f"Demo password: the one shown on the first run, kept in {password_file}.")
        else:
            self.stdout.write(f"{password_file} is gone: set a password with `manage.py changepassword ana`.")


def _read_password(path: Path) -> str | None:
    try:
        return path.read_text().strip() or None
    except FileNotFoundError:
        return None


def _write_password(path: Path, password: str) -> None:
    """Write the password readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write(password + "\n")
