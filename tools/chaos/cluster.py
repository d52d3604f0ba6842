"""What the chaos run breaks: two server processes as the Procfile starts them, a throwaway Redis,
PostgreSQL behind a cuttable proxy, and a round-robin TCP proxy in front of the servers.

Everything listens on loopback and belongs to the run: the machine's own Redis is never touched,
and PostgreSQL is only ever cut at the run's own proxy.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import string
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from tools.faults import RedisServer, TcpProxy, free_port

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = "inventory_site.settings.production"
HEALTH_TIMEOUT = 60.0


def database_url_via(settings_dict: dict, host: str, port: int) -> str:
    """The URL of the database `settings_dict` names, reached at host:port instead."""
    user = settings_dict.get("USER") or "postgres"
    password = f":{settings_dict['PASSWORD']}" if settings_dict.get("PASSWORD") else ""
    return f"postgres://{user}{password}@{host}:{port}/{settings_dict['NAME']}"


def answers_health(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
            return answer.status == 200
    except OSError:
        return False


@dataclass
class Instance:
    """One `manage.py serve` process (the Procfile's web command, on loopback)."""

    name: str
    port: int
    env: dict[str, str]
    log_dir: Path
    process: subprocess.Popen | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def log(self) -> Path:
        return self.log_dir / f"server-{self.name}-{self.port}.log"

    def start(self, timeout: float = HEALTH_TIMEOUT) -> float:
        """Start the process and wait for /health; the seconds it took."""
        began = time.monotonic()
        self.starts += 1
        with open(self.log, "ab") as out:
            out.write(f"\n--- start {self.starts} at {time.strftime('%H:%M:%S')} ---\n".encode())
            out.flush()
            self.process = subprocess.Popen(
                [sys.executable, "manage.py", "serve", "--host", "127.0.0.1", f"--settings={SETTINGS}"],
                cwd=ROOT,
                env=self.env | {"PORT": str(self.port)},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = began + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}: see {self.log}")
            if answers_health(self.url):
                return time.monotonic() - began
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not answer /health within {timeout:g} s: see {self.log}")

    def kill(self) -> None:
        """SIGKILL: nothing is closed or cleaned up."""
        if self.running:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def terminate(self, timeout: float = 30.0) -> float:
        """SIGTERM (a graceful stop, as a platform's deploy sends it); the seconds until it exited."""
        began = time.monotonic()
        if self.running:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return time.monotonic() - began


@dataclass
class Cluster:
    """Redis, the PostgreSQL proxy, two instances and the front proxy, started and stopped together."""

    database: dict  # Django's settings_dict of the database the servers share
    heartbeat_ms: int
    log_dir: Path
    instances_count: int = 2
    extra_env: dict[str, str] = field(default_factory=dict)
    redis: RedisServer | None = None
    postgres_proxy: TcpProxy | None = None
    front: TcpProxy | None = None
    instances: list[Instance] = field(default_factory=list)

    @property
    def url(self) -> str:
        """Where clients connect: the front proxy."""
        return f"http://127.0.0.1:{self.front.port}"

    def start(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.redis = RedisServer(log_dir=self.log_dir)
        self.redis.start()
        self.postgres_proxy = TcpProxy(
            self.database.get("HOST") or "127.0.0.1", int(self.database.get("PORT") or 5432)
        ).start()
        env = self.server_env()
        ports = [free_port() for _ in range(self.instances_count)]
        self.instances = [
            Instance(f"i{number + 1}", port, env, self.log_dir) for number, port in enumerate(ports)
        ]
        for instance in self.instances:
            instance.start()
        targets = [("127.0.0.1", port) for port in ports]
        self.front = TcpProxy(*targets[0], more_targets=targets[1:]).start()

    def server_env(self) -> dict[str, str]:
        key = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(50))
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": SETTINGS,
            "SECRET_KEY": key,
            # Plain HTTP on loopback: no TLS proxy in front of the run's own balancer.
            "SECURE_SSL_REDIRECT": "false",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DATABASE_URL": database_url_via(self.database, "127.0.0.1", self.postgres_proxy.port),
            "REDIS_URL": self.redis.url,
            "REALTIME_HEARTBEAT_INTERVAL_MS": str(self.heartbeat_ms),
            "PYTHONUNBUFFERED": "1",
            **self.extra_env,
        }
        env.pop("DEBUG", None)
        return env

    def close(self) -> None:
        for instance in self.instances:
            with contextlib.suppress(Exception):
                instance.terminate(timeout=10)
        for part in (self.front, self.postgres_proxy, self.redis):
            if part is not None:
                with contextlib.suppress(Exception):
                    part.close()

    def __enter__(self) -> Cluster:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()
