"""Create the chaos run's own database when it is missing: `python -m tools.chaos.database URL`."""

from __future__ import annotations

import sys
from urllib.parse import urlsplit, urlunsplit

import psycopg


def database_ensure(url: str) -> bool:
    """Create the database `url` names (on its server's `postgres` database); whether it was created."""
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if not name or not name.replace("_", "").isalnum():
        raise SystemExit(f"not a database name this creates: {name!r}")
    admin = urlunsplit(("postgresql", parts.netloc, "/postgres", "", ""))
    with psycopg.connect(admin, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            return False
        conn.execute(f'CREATE DATABASE "{name}"')
    return True


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: python -m tools.chaos.database postgres://user@host:port/name")
    if database_ensure(sys.argv[1]):
        print(f"created {urlsplit(sys.argv[1]).path.lstrip('/')}")
