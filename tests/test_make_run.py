"""`make run` is safe on a shared network: this machine only by default, a password of its own."""

import io
import re

import pytest
from django.contrib.auth import authenticate
from django.core.management import CommandError, call_command
from django.test import RequestFactory

from realtime.management.commands.serve import Command as Serve
from tests.servers import ROOT

pytestmark = [pytest.mark.django_db]


def signs_in(username, password) -> bool:
    """Whether the sign-in page would let this username and password in (axes needs the request)."""
    return (
        authenticate(RequestFactory().post("/accounts/login/"), username=username, password=password)
        is not None
    )


def seed_demo(settings, path) -> str:
    settings.DEBUG = True
    settings.DEMO_PASSWORD_FILE = str(path)
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def printed_password(output: str) -> str:
    return re.search(r"Demo password \(shown once, kept in .+\): (\S+)", output).group(1)


def test_demo_password_is_generated_printed_once_and_kept_for_the_readme(settings, tmp_path):
    output = seed_demo(settings, tmp_path / ".demo-password")
    password = printed_password(output)

    assert password != "inventario-demo" and len(password) >= 12
    assert (tmp_path / ".demo-password").read_text().strip() == password
    assert (tmp_path / ".demo-password").stat().st_mode & 0o077 == 0
    for username in ("admin", "ana", "luis"):
        assert signs_in(username, password)
        assert not signs_in(username, "inventario-demo")
    again = seed_demo(settings, tmp_path / ".demo-password")
    assert password not in again and "kept in" in again
    assert signs_in("ana", password)


def test_each_installation_gets_its_own_demo_password(settings, tmp_path, django_user_model):
    first = printed_password(seed_demo(settings, tmp_path / "one"))
    django_user_model.objects.all().delete()
    second = printed_password(seed_demo(settings, tmp_path / "two"))

    assert first != second


def test_a_demo_user_left_on_the_old_shared_password_gets_a_new_one(settings, tmp_path, django_user_model):
    django_user_model.objects.create_user(username="ana", password="inventario-demo")

    password = printed_password(seed_demo(settings, tmp_path / ".demo-password"))

    assert not signs_in("ana", "inventario-demo")
    assert signs_in("ana", password)


def test_serve_listens_on_this_machine_only_unless_host_says_otherwise(settings):
    settings.HOST = "127.0.0.1"  # base.py's default when $HOST is unset (tests/test_settings.py)
    assert Serve().create_parser("manage.py", "serve").parse_args([]).host == "127.0.0.1"
    settings.HOST = "0.0.0.0"
    assert Serve().create_parser("manage.py", "serve").parse_args([]).host == "0.0.0.0"


def test_serve_refuses_an_asgi_server_it_does_not_run(settings):
    settings.ASGI_SERVER = "gunicorn"
    with pytest.raises(CommandError, match="ASGI_SERVER='gunicorn' is not a server this command runs"):
        call_command("serve")


def test_the_procfile_still_listens_on_every_interface():
    web = next(line for line in (ROOT / "Procfile").read_text().splitlines() if line.startswith("web:"))
    assert "--host 0.0.0.0" in web
