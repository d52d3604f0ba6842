"""Configuration from the environment: defaults, production refusal, realtime settings, the pool."""

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from realtime.conf import DEFAULTS, ENV_ALIASES, env_name

ROOT = Path(__file__).resolve().parent.parent


def run_django(code: str, settings: str, **env) -> subprocess.CompletedProcess:
    environment = {
        k: v
        for k, v in os.environ.items()
        if k not in {"SECRET_KEY", "DEBUG", "HOST", "ASGI_SERVER"}
        and not k.startswith(("REALTIME_", "WEBSOCKET_"))
    }
    environment.update({"DJANGO_SETTINGS_MODULE": settings, **env})
    script = f"import django; django.setup(); from django.conf import settings; {code}"
    return subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60
    )


def test_protocol_defaults_apply_when_the_environment_is_silent():
    result = run_django("print(settings.REALTIME, settings.PORT)", "inventory_site.settings.local")
    assert result.returncode == 0, result.stderr
    for expected in (
        "'/ws/inventory'",
        "'MAX_CONNECTIONS_PER_ROOM': 50",
        "'RATE_LIMIT_MAX_MESSAGES': 100",
        "'HEARTBEAT_INTERVAL_MS': 30000",
        " 5000",
    ):
        assert expected in result.stdout


def test_protocol_variables_are_read_from_the_environment():
    result = run_django(
        "print(settings.REALTIME)",
        "inventory_site.settings.local",
        WEBSOCKET_PATH="/live",
        WEBSOCKET_MAX_CONNECTIONS_PER_ROOM="7",
        WEBSOCKET_RATE_LIMIT_MAX_MESSAGES="9",
        WEBSOCKET_HEARTBEAT_INTERVAL="1500",
    )
    assert "'/live'" in result.stdout and "7" in result.stdout and "1500" in result.stdout


@pytest.mark.parametrize(
    "key",
    [
        None,
        "too-short-0123456789",
        "change-me-to-50-random-characters-change-me-to-50-random",  # .env.example's placeholder
        "django-insecure-" + "abcdefghijklmnopqrstuvwxyz0123456789",
        "a" * 60,
    ],
)
def test_production_refuses_to_start_without_a_real_secret_key(key):
    result = run_django(
        "print('started')", "inventory_site.settings.production", **({"SECRET_KEY": key} if key else {})
    )
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_production_starts_with_a_random_key_and_never_debugs():
    key = "k8$Qz!v2@Lr#9wXe%Tn^6yBp&Hd*4uJm(Fs)7cGa_1oWi+3VtZ-5qYx=0hNb"
    result = run_django(
        "print(settings.DEBUG)", "inventory_site.settings.production", SECRET_KEY=key, DEBUG="true"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_production_passes_the_deploy_checklist():
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "inventory_site.settings.production",
        "SECRET_KEY": "x" * 20 + "a-long-random-production-secret-value-0123456789",
    }
    env.pop("DEBUG", None)
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


LOGGER_LEVEL = "import logging; print(logging.getLogger('realtime').getEffectiveLevel())"


def test_the_protocols_debug_switch_turns_on_realtime_debug_output():
    local = "inventory_site.settings.local"
    assert run_django(LOGGER_LEVEL, local, DEBUG="websocket:*").stdout.strip() == "10"
    assert run_django(LOGGER_LEVEL, local).stdout.strip() == "20"


def test_realtime_log_level_is_its_own_switch_and_wins_over_the_alias():
    local = "inventory_site.settings.local"
    assert run_django(LOGGER_LEVEL, local, REALTIME_LOG_LEVEL="warning").stdout.strip() == "30"
    assert run_django(LOGGER_LEVEL, local, REALTIME_LOG_LEVEL="DEBUG").stdout.strip() == "10"
    both = run_django(LOGGER_LEVEL, local, REALTIME_LOG_LEVEL="ERROR", DEBUG="websocket:*")
    assert both.stdout.strip() == "40"


def test_an_unknown_realtime_log_level_is_refused_by_name():
    result = run_django(LOGGER_LEVEL, "inventory_site.settings.local", REALTIME_LOG_LEVEL="loud")
    assert result.returncode != 0
    assert "REALTIME_LOG_LEVEL='LOUD'" in result.stderr


def test_every_realtime_setting_is_read_from_realtime_and_its_key():
    values = {key: ("/live" if isinstance(default, str) else 7) for key, default in DEFAULTS.items()}
    values["LOG_LEVEL"] = "WARNING"
    result = run_django(
        "print(repr(settings.REALTIME))",
        "inventory_site.settings.local",
        **{env_name(key): str(value) for key, value in values.items()},
    )
    assert result.returncode == 0, result.stderr
    assert ast.literal_eval(result.stdout.strip()) == values


def test_realtime_key_wins_over_the_protocols_name():
    result = run_django(
        "print(settings.REALTIME['WEBSOCKET_PATH'], settings.REALTIME['HEARTBEAT_INTERVAL_MS'])",
        "inventory_site.settings.local",
        WEBSOCKET_PATH="/old",
        REALTIME_WEBSOCKET_PATH="/new",
        WEBSOCKET_HEARTBEAT_INTERVAL="1500",
    )
    assert result.stdout.split() == ["/new", "1500"]


def test_protocol_v1s_environment_names_are_all_aliases():
    """Protocol v1 documented these names for deployments: they keep working."""
    names = {alias for aliases in ENV_ALIASES.values() for alias in aliases}
    assert {
        "WEBSOCKET_PATH",
        "WEBSOCKET_MAX_CONNECTIONS_PER_ROOM",
        "WEBSOCKET_RATE_LIMIT_MAX_MESSAGES",
        "WEBSOCKET_HEARTBEAT_INTERVAL",
    } <= names
    assert set(ENV_ALIASES) <= set(DEFAULTS)


def readme_settings_rows() -> list[list[str]]:
    text = (ROOT / "README.md").read_text()
    return [
        [cell.strip() for cell in line.strip().strip("|").split("|")]
        for line in text.splitlines()
        if line.startswith("| `")
    ]


def test_readmes_settings_table_agrees_with_the_realtime_defaults():
    rows = readme_settings_rows()
    documented = {name for row in rows for name in re.findall(r"`REALTIME_(\w+)`", row[0])}
    assert documented == set(DEFAULTS)
    for key, default in DEFAULTS.items():
        (row,) = [row for row in rows if f"`{env_name(key)}`" in row[0]]
        for alias in ENV_ALIASES.get(key, ()):
            assert f"`{alias}`" in row[0], (key, alias)
        assert row[1].split()[0].strip("`") == str(default), (key, row[1])
    assert any("`DEBUG=websocket:*`" in row[0] for row in rows if "`REALTIME_LOG_LEVEL`" in row[0])


def test_env_example_names_the_realtime_settings():
    text = (ROOT / ".env.example").read_text()
    for key in DEFAULTS:
        assert env_name(key) in text, key


def test_host_and_asgi_server_come_from_the_environment_through_the_settings():
    code = "print(settings.HOST, settings.ASGI_SERVER)"
    assert run_django(code, "inventory_site.settings.local").stdout.split() == ["127.0.0.1", "daphne"]
    result = run_django(code, "inventory_site.settings.local", HOST="0.0.0.0", ASGI_SERVER="uvicorn")
    assert result.stdout.split() == ["0.0.0.0", "uvicorn"]


def test_the_apps_read_the_environment_only_through_the_settings():
    """inventory/ and realtime/ read configuration from django.conf.settings, never os.environ."""
    offenders = [
        f"{path.relative_to(ROOT)}:{number}"
        for package in ("inventory", "realtime")
        for path in sorted((ROOT / package).rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"\bos\.(environ|getenv)\b|\bgetenv\(|from os import .*\b(environ|getenv)\b", line)
    ]
    assert offenders == []


def test_debug_websocket_switch_keeps_local_debug_on():
    result = run_django("print(settings.DEBUG)", "inventory_site.settings.local", DEBUG="websocket:*")
    assert result.stdout.strip() == "True"


POSTGRES_URL = "postgres://someone@db.example:5432/inventory"  # parsed only: nothing connects
DATABASE = "d = settings.DATABASES['default']; print(d['ENGINE'], d.get('OPTIONS', {}).get('pool'))"


def test_postgresql_gets_the_recovering_pool_by_default(monkeypatch):
    monkeypatch.delenv("DATABASE_POOL", raising=False)
    result = run_django(DATABASE, "inventory_site.settings.local", DATABASE_URL=POSTGRES_URL)
    assert result.returncode == 0, result.stderr
    engine, pool = result.stdout.split(" ", 1)
    assert engine == "inventory_site.postgresql"
    assert ast.literal_eval(pool) == {"min_size": 2, "max_size": 20, "timeout": 2, "reconnect_timeout": 0.5}


def test_postgresql_connects_give_up_after_five_seconds():
    """libpq would wait forever for a database that vanished without resetting the connection."""
    code = "print(settings.DATABASES['default']['OPTIONS']['connect_timeout'])"
    for pool in ("true", "false"):
        result = run_django(
            code, "inventory_site.settings.local", DATABASE_URL=POSTGRES_URL, DATABASE_POOL=pool
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "5"


def test_database_pool_false_turns_the_pool_off():
    result = run_django(
        DATABASE, "inventory_site.settings.local", DATABASE_URL=POSTGRES_URL, DATABASE_POOL="false"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["django.db.backends.postgresql", "None"]


def test_sqlite_has_no_pool():
    result = run_django(DATABASE, "inventory_site.settings.local", DATABASE_URL="sqlite:///db.sqlite3")
    assert result.stdout.split() == ["django.db.backends.sqlite3", "None"]
