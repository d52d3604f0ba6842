"""Faults injected into real services while people scan: Redis restarted, PostgreSQL cut, an instance killed.

Each test builds every client's view of the room only from what the server sent it
(`scan_added`, `scan_removed`, `snapshot`), then compares it with the database, and prints
one `FAULT ...` line with its figures: scans sent, stored, delivered, lost and doubled.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import shutil
import time
import uuid
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pytest
from channels.db import database_sync_to_async
from websockets.exceptions import ConnectionClosed

from inventory.models import Inventory, InventoryEvent, Scan
from tests.conftest import need, token_for
from tests.e2e.wsclient import LiveClient
from tests.faults import RedisServer, TcpProxy
from tests.servers import start_server
from tests.servers import test_database_url as database_url
from tools.liveclient import Refused
from tools.tracking import DeliveryTracker

from .wsclient import ahttp, room_url

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

ROOM = {"agency": "Alfa Romeo", "month": "10", "year": 2025}
ROOM_INFO = "/api/inventory/websocket/room-info/Alfa%20Romeo/10/2025"
HEARTBEAT_MS = 1000
HEARTBEAT = {"WEBSOCKET_HEARTBEAT_INTERVAL": str(HEARTBEAT_MS)}


async def rest_scan(server, token, code, scan_id, timeout=15.0):
    body = {**ROOM, "scanData": {"code": code, "id": scan_id}}
    return await ahttp(server, "POST", "/api/inventory/save-scan", body, token, timeout=timeout)


async def rest_remove(server, token, code):
    body = {**ROOM, "code": code}
    return await ahttp(server, "DELETE", "/api/inventory/delete-scanned-entry", body, token)


async def eventually(check, timeout: float, what: str, interval: float = 0.1):
    """Poll a check (plain or async) until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s: {what} (last: {result!r})")
        await asyncio.sleep(interval)


# The clients: a view of the room built from what the server sent, and a phone that keeps it.


@dataclass
class RoomView:
    """A client's picture of the room, built only from the server's messages.

    The seq bookkeeping is the load test's (tools.tracking.DeliveryTracker, without resumes: a
    phone rejoins with ?since instead), keyed by seq: each event is delivered once, in order.
    """

    codes: dict[str, str] = field(default_factory=dict)  # code -> scan id
    tracker: DeliveryTracker = field(default_factory=lambda: DeliveryTracker(resume=False, start=0))
    delivered: int = 0  # scan events applied (each seq once, in order)
    doubled_codes: int = 0  # a code added twice
    snapshots: int = 0

    @property
    def seq(self) -> int:
        return self.tracker.last_seq

    @property
    def doubled(self) -> int:
        """An event seen again (or after a later one), or a code added twice."""
        return self.tracker.duplicated + self.tracker.out_of_order + self.doubled_codes

    @property
    def gaps(self) -> int:
        """An event skipped (seq jumped)."""
        return self.tracker.gaps

    def apply(self, message: dict) -> None:
        kind, data = message["type"], message["data"]
        if kind == "snapshot":
            self.codes = {scan["code"]: scan["id"] for scan in data["scans"]}
            self.tracker.observe_snapshot(data["seq"], {})
            self.snapshots += 1
            return
        if kind not in {"scan_added", "scan_removed"} or data.get("replayed"):
            return
        before = self.seq
        if not self.tracker.observe(data["seq"], str(data["seq"])).new or data["seq"] <= before:
            return  # seen again, or older than what the view already holds: counted as doubled
        self.delivered += 1
        code = data["scanData"]["code"]
        if kind == "scan_added":
            self.doubled_codes += code in self.codes
            self.codes[code] = data["scanData"]["id"]
        else:
            self.codes.pop(code, None)


class Phone:
    """One person's phone: scans over its socket, keeps what is unconfirmed, resumes with ?since."""

    def __init__(self, name: str, token: str):
        self.name = name
        self.token = token
        self.view = RoomView()
        self.outbox: dict[str, str] = {}  # scan id -> code, until the server confirms it
        self.sent: dict[str, str] = {}  # every scan id -> code this phone sent
        self.errors: list[dict] = []
        self.refusals: list[tuple[int | None, str]] = []  # (close code, error code or reason)
        self.closes: list[int | None] = []
        self.closed_at: list[float] = []  # time.monotonic() of each close
        self.connections = 0
        self.pongs = 0
        self.ws = None
        self._reader: asyncio.Task | None = None
        self._keeper: asyncio.Task | None = None

    @property
    def online(self) -> bool:
        return self.ws is not None and self._reader is not None and not self._reader.done()

    def __repr__(self) -> str:
        return (
            f"<{self.name} online={self.online} seq={self.view.seq} unconfirmed={len(self.outbox)} "
            f"closes={self.closes} refusals={self.refusals[-2:]} errors={self.errors[-2:]}>"
        )

    async def connect(self, server, *, timeout: float = 20) -> None:
        """Join with ?since=<last seq seen>, retrying refusals; then resend every unconfirmed scan."""
        deadline = time.monotonic() + timeout
        while not await self._try_connect(server):
            if time.monotonic() > deadline:
                pytest.fail(f"{self.name} could not rejoin in {timeout} s: {self.refusals[-3:]}")
            await asyncio.sleep(0.2)
        await self.resend()

    async def resend(self) -> None:
        """Send every unconfirmed scan again, with its id: the server stores each once."""
        for scan_id, code in list(self.outbox.items()):
            await self._send_scan(scan_id, code)

    async def _try_connect(self, server) -> bool:
        try:
            client = await LiveClient.open(room_url(server), self.token, timeout=5, since=self.view.seq)
        except Refused as exc:
            self.refusals.append((exc.close_code, exc.code or exc.reason))
            return False
        self.ws = client
        self.connections += 1
        self._reader = asyncio.create_task(self._read(client))
        return True

    async def _read(self, client: LiveClient) -> None:
        self.closes.append(await client.run(self._receive))
        self.closed_at.append(time.monotonic())

    def _receive(self, message: dict) -> None:
        self.view.apply(message)
        data = message["data"]
        if message["type"] == "scan_added":
            self.outbox.pop(data["scanData"]["id"], None)
        elif message["type"] == "snapshot":
            for scan in data["scans"]:
                self.outbox.pop(scan["id"], None)
        elif message["type"] == "error":
            self.errors.append(data)
        elif message["type"] == "pong":
            self.pongs += 1

    async def scan(self, code: str) -> None:
        """Scan a code: sent now if online, otherwise kept until the next connection."""
        scan_id = str(uuid.uuid4())
        self.outbox[scan_id] = code
        self.sent[scan_id] = code
        await self._send_scan(scan_id, code)

    async def _send_scan(self, scan_id: str, code: str) -> None:
        if not self.online:
            return
        message = {"type": "scan_added", "data": {**ROOM, "scanData": {"code": code, "id": scan_id}}}
        with contextlib.suppress(ConnectionClosed):
            await self.ws.send_message(message)

    async def wait_closed(self, timeout: float) -> int | None:
        """Wait until the server (or the network) closes this phone's socket; its close code."""
        await asyncio.wait_for(asyncio.shield(self._reader), timeout)
        return self.closes[-1]

    def stay_connected(self, server, *, timeout: float = 40) -> None:
        """Behave like the live page: whenever the socket drops, rejoin with ?since (in the background)."""

        async def keep() -> None:
            while True:
                if not self.online:
                    await self.connect(server, timeout=timeout)
                await asyncio.wait([self._reader])

        self._keeper = asyncio.create_task(keep())

    async def close(self) -> None:
        if self._keeper is not None:
            self._keeper.cancel()
            with contextlib.suppress(BaseException):
                await self._keeper
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._reader, 5)


# The database's truth, read by the test's own connection.


# database_sync_to_async closes the connection after each call: no session outlives the test.
@database_sync_to_async
def stored_codes() -> dict[str, str]:
    return {code: str(uid) for code, uid in Scan.objects.values_list("code", "uid")}


@database_sync_to_async
def check_event_log() -> int:
    """Every inventory's log has seq 1..last_seq without gaps, and replaying it gives its scans."""
    for inventory in Inventory.objects.all():
        events = list(InventoryEvent.objects.filter(inventory=inventory).order_by("seq"))
        assert [e.seq for e in events] == list(range(1, inventory.last_seq + 1)), "gap in the event log"
        replayed: dict[str, str] = {}
        for event in events:
            scan = event.facts.get("scan")
            if event.type == "scan_added":
                replayed[scan["code"]] = scan["id"]
            elif event.type == "scan_removed":
                replayed.pop(scan["code"], None)
        actual = {
            code: str(uid)
            for code, uid in Scan.objects.filter(inventory=inventory).values_list("code", "uid")
        }
        assert replayed == actual, "the event log and the scans disagree: something was half-written"
    return sum(Inventory.objects.values_list("last_seq", flat=True))


async def settle(phones: list[Phone], timeout: float = 15) -> dict[str, str]:
    """Wait until every phone's view equals the database and nothing is left unconfirmed."""
    truth: dict[str, str] = {}

    async def agreed():
        nonlocal truth
        truth = await stored_codes()
        return all(p.view.codes == truth and not p.outbox for p in phones)

    with contextlib.suppress(pytest.fail.Exception):
        await eventually(agreed, timeout, "every phone's view equals the database")
    return truth


def figures(
    name: str, phones: list[Phone], truth: dict[str, str], sent: dict[str, str], removed=(), **extra
) -> dict:
    """Count sent, stored, delivered, lost and doubled; print the one-line summary.

    lost: a scan sent (and not removed) missing from the database, a removed one still there, or
    any difference between a phone's view and the database. doubled: an event a phone received
    twice, or a code it saw added twice.
    """
    stored_ids = set(truth.values())
    lost = sum(1 for scan_id in sent if (scan_id in stored_ids) == (scan_id in removed))
    lost += sum(len(set(truth.items()) ^ set(p.view.codes.items())) for p in phones)
    result = {
        "sent": len(sent),
        "removed": len(removed),
        "stored": len(truth),
        "delivered": sum(p.view.delivered for p in phones),
        "lost": lost,
        "doubled": sum(p.view.doubled for p in phones),
        **extra,
    }
    print(f"FAULT {name}: " + " ".join(f"{key}={value}" for key, value in result.items()))
    return result


@pytest.fixture
def tokens(ana, luis, staff):
    return {"ana": token_for(ana), "luis": token_for(luis), "staff": token_for(staff)}


@pytest.fixture
def own_redis():
    """A redis-server of this test's own, on a free port; stopped at teardown whatever happened."""
    need(shutil.which("redis-server") is not None, "needs redis-server on PATH")
    redis = RedisServer()
    try:
        redis.start()
        yield redis
    finally:
        redis.close()


@pytest.fixture
def two_instances(own_redis, transactional_db):
    """Two daphne instances sharing the throwaway Redis and the test database."""
    servers = []
    try:
        for _ in range(2):
            servers.append(start_server(env={"REDIS_URL": own_redis.url, **HEARTBEAT}))
        yield servers
    finally:
        for server in servers:
            server.stop()


@pytest.fixture
def one_instance(own_redis, transactional_db):
    server = start_server(env={"REDIS_URL": own_redis.url, **HEARTBEAT})
    try:
        yield server
    finally:
        server.stop()


async def connected(server, token) -> int:
    status, info = await ahttp(server, "GET", ROOM_INFO, token=token)
    assert status == 200, info
    return info["connections"]


async def connections_drop_to(server, token, expected: int, *, since: float, within: float) -> float:
    """Poll room-info until it counts `expected` connections; seconds after `since` it was seen.

    Fails if a poll issued more than `within` seconds after `since` still counts more: a slow
    answer on a loaded machine does not count against the server.
    """
    while True:
        issued = time.monotonic()
        count = await connected(server, token)
        if count == expected:
            return time.monotonic() - since
        assert issued - since < within, f"room-info counts {count} connections, {expected} are live"
        await asyncio.sleep(0.1)


# 1. Redis stopped and started again while people scan.


async def test_redis_restart_loses_no_scan(two_instances, own_redis, tokens):
    a, b = two_instances
    phones = [Phone("ana@a", tokens["ana"]), Phone("luis@b", tokens["luis"]), Phone("ana@b", tokens["ana"])]
    homes = dict(zip(phones, (a, b, b), strict=True))
    sent: dict[str, str] = {}  # REST scans: id -> code
    rest_seconds: list[float] = []

    async def rest_round(prefix: str, i: int) -> None:
        for server, user in ((a, "ana"), (b, "luis")):
            scan_id = str(uuid.uuid4())
            sent[scan_id] = f"{prefix}-REST-{user}-{i}"
            started = time.monotonic()
            status, body = await rest_scan(server, tokens[user], sent[scan_id], scan_id)
            rest_seconds.append(time.monotonic() - started)
            assert status == 201, (status, body)

    try:
        for phone in phones:
            await phone.connect(homes[phone])
            phone.stay_connected(homes[phone])
        for i in range(5):
            for phone in phones:
                await phone.scan(f"BEFORE-{phone.name}-{i}")
            await rest_round("BEFORE", i)
        truth = await settle(phones)
        assert all(p.view.codes == truth for p in phones), "the room disagreed before any fault"

        own_redis.stop()
        stopped = time.monotonic()
        # Every phone notices, then keeps trying to rejoin its instance (refused until Redis is back).
        i = 0
        while time.monotonic() - stopped < 3 * HEARTBEAT_MS / 1000:  # an outage of a few heartbeats
            await rest_round("OUTAGE", i)  # REST writes are still stored: 201
            for phone in phones:  # phones scan offline; their scans wait in their outbox
                await phone.scan(f"OUTAGE-{phone.name}-{i}")
            i += 1
            await asyncio.sleep(0.1)
        for server in (a, b):
            status, health = await ahttp(server, "GET", "/health")
            assert status == 200, health
            assert (health["database"], health["channelLayer"]) == ("ok", "down"), health
        removed = {scan_id for scan_id, code in sent.items() if code.startswith("BEFORE-REST-ana")}
        for scan_id in removed:  # removals are stored too, and reach the phones when they resume
            status, body = await rest_remove(b, tokens["luis"], sent[scan_id])
            assert status == 200, (status, body)
        assert all(p.closes for p in phones), "a socket stayed open without its live relay"
        outage_closes = sorted({p.closes[0] for p in phones})
        refusals = {r for p in phones for r in p.refusals}
        assert refusals == {(4503, "unavailable")}, refusals

        own_redis.start()
        restarted = time.monotonic()
        await eventually(lambda: all(p.online for p in phones), 30, "every phone rejoined")
        rejoined = time.monotonic() - restarted
        for i in range(5):
            for phone in phones:
                await phone.scan(f"AFTER-{phone.name}-{i}")
            await rest_round("AFTER", i)
        truth = await settle(phones)
        total_seq = await check_event_log()

        for phone in phones:
            sent.update(phone.sent)
        result = figures(
            "redis-restart",
            phones,
            truth,
            sent,
            removed,
            outage_s=round(restarted - stopped, 1),
            rejoin_s=round(rejoined, 1),
            refused=sum(len(p.refusals) for p in phones),
            redropped=sum(1 for p in phones for moment in p.closed_at if moment > restarted),
            rest_max_s=round(max(rest_seconds), 2),
            closes=",".join(map(str, outage_closes)),
        )
        assert result["lost"] == 0 and result["doubled"] == 0, (result, phones, a.log, b.log)
        assert result["stored"] == result["sent"] - len(removed)
        assert total_seq == result["sent"] + len(removed)  # one event per scan and per removal
        assert all(p.view.gaps == 0 and p.view.seq == total_seq for p in phones)
        assert result["delivered"] == len(phones) * total_seq  # each event reached each phone once
        # Being told the live room is unavailable is fine; any other error is not.
        assert {e["code"] for p in phones for e in p.errors} <= {"unavailable"}, [p.errors for p in phones]
        assert max(rest_seconds) < 10, "a REST write waited on the dead Redis"
        logs = a.output() + b.output()
        assert "Could not broadcast" in logs and "Live relay unavailable, refusing" in logs
    finally:
        for phone in phones:
            await phone.close()


async def test_open_sockets_are_told_unavailable_when_redis_stops(one_instance, own_redis, tokens):
    phone = Phone("ana", tokens["ana"])
    try:
        await phone.connect(one_instance)
        own_redis.stop()
        assert await phone.wait_closed(timeout=10) == 4503
        assert [e["code"] for e in phone.errors] == ["unavailable"]
    finally:
        await phone.close()


async def test_no_ghost_connections_after_a_redis_restart(one_instance, own_redis, tokens):
    phones = [Phone("ana", tokens["ana"]), Phone("luis", tokens["luis"])]
    try:
        for phone in phones:
            await phone.connect(one_instance)
        own_redis.stop()
        for phone in phones:
            await phone.wait_closed(timeout=10)
        own_redis.start()
        for phone in phones:
            await phone.connect(one_instance, timeout=20)

        # Entries not refreshed expire two heartbeats after their last refresh.
        rejoined = time.monotonic()
        await connections_drop_to(
            one_instance, tokens["ana"], len(phones), since=rejoined, within=2 * HEARTBEAT_MS / 1000 + 1
        )
        status, metrics = await ahttp(
            one_instance, "GET", "/api/inventory/websocket/metrics", token=tokens["staff"]
        )
        assert [i["activeConnections"] for i in metrics["instances"]] == [len(phones)], metrics
    finally:
        for phone in phones:
            await phone.close()


# 2. PostgreSQL unreachable for a while, then reachable again.


@pytest.fixture
def postgres_proxy(require_postgres, transactional_db):
    """A TCP proxy in front of the machine's PostgreSQL; the test cuts and restores it."""
    from django.db import connection

    db = connection.settings_dict
    with TcpProxy(db.get("HOST") or "127.0.0.1", int(db.get("PORT") or 5432)) as proxy:
        yield proxy


@pytest.fixture
def proxied_server(request, postgres_proxy):
    """One daphne instance reaching the test database only through the proxy (more env: indirect param)."""
    url = urlsplit(database_url())
    credentials = url.netloc.rpartition("@")[0]
    url = url._replace(netloc=f"{credentials}@127.0.0.1:{postgres_proxy.port}").geturl()
    server = start_server(env={"DATABASE_URL": url, **HEARTBEAT, **getattr(request, "param", {})})
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.postgres
@pytest.mark.parametrize(
    "proxied_server", [{}, {"DATABASE_POOL": "false"}], indirect=True, ids=["pool", "no-pool"]
)
async def test_postgres_outage_answers_503_and_half_writes_nothing(proxied_server, postgres_proxy, tokens):
    """Writes during the cut are refused with `database_unavailable`; the first write after it succeeds.

    With the connection pool (the default) and without it. The first write issued once the database
    is back must succeed, not just some later one: psycopg_pool's reconnect backoff used to refuse
    writes for 13 s after the return. The 5 s bound on its answer is loose on purpose (a success
    takes milliseconds, a refusal the pool's 2 s): it catches a write held behind a reconnect pause,
    not a slow machine.
    """
    server, proxy = proxied_server, postgres_proxy
    phones = [Phone("ana", tokens["ana"]), Phone("luis", tokens["luis"])]
    rest: dict[str, tuple[str, str]] = {}  # scan id -> (user, code)
    answers: dict[str, list[int | None]] = {}  # scan id -> every status answered
    unexpected: list = []
    cut = asyncio.Event()
    cut_at = 0.0
    writers: list[asyncio.Task] = []

    async def post(scan_id: str) -> int | None:
        user, code = rest[scan_id]
        status, body = await rest_scan(server, tokens[user], code, scan_id)
        answers.setdefault(scan_id, []).append(status)
        told = status == 503 and isinstance(body, dict) and body.get("code") == "database_unavailable"
        told = told and bool(body.get("detail"))  # a message the user can act on
        if status not in (200, 201) and not told:
            unexpected.append((status, body))
        return status

    async def writer(user: str) -> None:
        """Scan over REST without pause, through the cut, until refused three times in a row."""
        refused_in_a_row = i = 0
        while refused_in_a_row < 3:
            assert not cut.is_set() or time.monotonic() - cut_at < 20, "writes kept succeeding after the cut"
            scan_id = str(uuid.uuid4())
            rest[scan_id] = (user, f"REST-{user}-{i}")
            status = await post(scan_id)
            refused_in_a_row = refused_in_a_row + 1 if status != 201 and cut.is_set() else 0
            i += 1

    try:
        for phone in phones:
            await phone.connect(server)
            for i in range(3):
                await phone.scan(f"WS-BEFORE-{phone.name}-{i}")
        writers = [asyncio.create_task(writer(user)) for user in ("ana", "luis")]
        await eventually(
            lambda: sum(201 in statuses for statuses in answers.values()) >= 10, 15, "ten REST writes first"
        )
        proxy.cut()  # connections in flight are reset, new ones refused
        cut_at = time.monotonic()
        cut.set()
        await asyncio.gather(*writers)

        status, health = await ahttp(server, "GET", "/health")
        assert status == 503 and health["database"] == "down", (status, health)
        for phone in phones:
            await phone.scan(f"WS-OUTAGE-{phone.name}")
        for phone in phones:
            await eventually(
                lambda phone=phone: any(e["code"] == "database_unavailable" for e in phone.errors),
                10,
                f"{phone.name} told the database is unavailable",
            )
            assert phone.online, "the socket was dropped instead of answered"
        assert {e["code"] for p in phones for e in p.errors} == {"database_unavailable"}
        assert not unexpected, unexpected
        # A removal is refused the same way, and done once the database is back.
        removed = {next(scan_id for scan_id, statuses in answers.items() if statuses[-1] == 201)}
        removal = rest[next(iter(removed))]
        status, body = await rest_remove(server, tokens[removal[0]], removal[1])
        assert status == 503 and isinstance(body, dict), (status, body)
        assert body["code"] == "database_unavailable", body

        # Nothing half-written: the log and the scans agree, every confirmed scan is stored.
        stored = set((await stored_codes()).values())
        await check_event_log()
        confirmed = {scan_id for scan_id, statuses in answers.items() if statuses[-1] in (200, 201)}
        assert confirmed <= stored
        refused = {scan_id for scan_id, statuses in answers.items() if statuses[-1] == 503}
        committed_yet_refused = len(refused & stored)  # the reply was lost, not the scan

        proxy.restore()
        restored_at = time.monotonic()
        first = next(iter(refused))

        status = await post(first)
        recovered = time.monotonic() - restored_at
        assert status in (200, 201), f"the first write after the database came back answered {status}"
        assert recovered < 5, f"the first write after the database came back took {recovered:.1f} s"
        for scan_id in refused - {first}:  # a client retries with the same id: stored once
            assert await post(scan_id) in (200, 201)
        assert (await rest_remove(server, tokens[removal[0]], removal[1]))[0] == 200
        for phone in phones:
            await phone.resend()
            await phone.scan(f"WS-AFTER-{phone.name}")
        truth = await settle(phones)
        total_seq = await check_event_log()
        status, health = await ahttp(server, "GET", "/health")
        assert status == 200 and health["database"] == "ok", health

        sent = {scan_id: code for scan_id, (_user, code) in rest.items()}
        for phone in phones:
            sent.update(phone.sent)
        result = figures(
            "postgres-outage",
            phones,
            truth,
            sent,
            removed,
            answered_503=sum(s.count(503) for s in answers.values()) + 1,
            committed_yet_503=committed_yet_refused,
            ws_errors=sum(len(p.errors) for p in phones),
            outage_s=round(restored_at - cut_at, 1),
            recovered_s=round(recovered, 1),
        )
        assert result["lost"] == 0 and result["doubled"] == 0, (result, phones)
        assert result["stored"] == result["sent"] - len(removed)
        assert total_seq == result["sent"] + len(removed)  # one event per scan and per removal
        assert not unexpected, unexpected
        assert "Database unavailable" in server.output()
    finally:
        for task in writers:
            task.cancel()
        proxy.restore()
        for phone in phones:
            await phone.close()


@pytest.mark.postgres
@pytest.mark.parametrize("proxied_server", [{"DATABASE_POOL_MIN": "4"}], indirect=True, ids=["pool-of-4"])
async def test_the_first_write_after_a_restart_while_idle_succeeds(proxied_server, postgres_proxy, tokens):
    """PostgreSQL goes away and comes back while nobody writes: the next write succeeds.

    Every connection idle in the pool died in the cut and nothing noticed. The pool checks a
    connection as it lends it; it used to try the dead ones one by one with a growing pause between
    (0 s, 1 s, 2 s), so with three or more of them the first write waited out the pool's 2 s and
    answered 503. No write during the cut: it would find the dead connections itself. The 5 s bound
    is as loose as in the outage test above.
    """
    server, proxy = proxied_server, postgres_proxy
    status, body = await rest_scan(server, tokens["ana"], "IDLE-BEFORE", str(uuid.uuid4()))
    assert status == 201, (status, body)
    await eventually(lambda: proxy.connections_total >= 4, 10, "the pool's four connections")
    proxy.cut()
    await asyncio.sleep(1)
    proxy.restore()
    restored_at = time.monotonic()
    status, body = await rest_scan(server, tokens["ana"], "IDLE-AFTER", str(uuid.uuid4()))
    answered = time.monotonic() - restored_at
    print(f"FAULT postgres-restart-while-idle: status={status} answered_s={answered:.2f}")
    assert status == 201, (status, body)
    assert answered < 5, f"the first write after the database came back took {answered:.1f} s"
    assert {"IDLE-BEFORE", "IDLE-AFTER"} <= set(await stored_codes())


@pytest.mark.postgres
async def test_a_database_lost_while_joining_refuses_with_4503_and_leaves_no_ghost(
    proxied_server, postgres_proxy, tokens
):
    """PostgreSQL vanishes after the k-th connection of a join: refused (4503) or served, never dropped."""
    outcomes = {}
    for budget in range(6):  # the join (token, room, state, resume) opens fewer than six connections
        postgres_proxy.cut_after(budget)
        probe = Phone("ana", tokens["ana"])
        try:
            if not await probe._try_connect(proxied_server):
                outcomes[budget] = probe.refusals[-1]
                continue
            await probe.ws.send("ping")
            await eventually(lambda probe=probe: probe.pongs or not probe.online, 10, "pong or close")
            outcomes[budget] = "served" if probe.pongs else (probe.closes[-1], "dropped after joining")
        finally:
            await probe.close()
            postgres_proxy.restore()
    print("join outcomes by connections allowed:", outcomes)
    assert set(outcomes.values()) <= {"served", (4503, "database_unavailable")}, outcomes
    closed = time.monotonic()
    await connections_drop_to(
        proxied_server, tokens["ana"], 0, since=closed, within=2 * HEARTBEAT_MS / 1000 + 1
    )


# 3. One of two instances killed (SIGKILL) while both serve the room.


async def test_a_killed_instance_loses_no_scan(two_instances, tokens):
    a, b = two_instances
    survivors = [Phone("ana@a", tokens["ana"]), Phone("luis@a", tokens["luis"])]
    victims = [Phone("luis@b", tokens["luis"]), Phone("ana@b", tokens["ana"])]
    phones = survivors + victims
    sent: dict[str, str] = {}  # REST scans: id -> code
    stop = asyncio.Event()
    rounds = 0

    async def keep_scanning() -> None:
        """The survivors and a REST client on the live instance scan all along."""
        nonlocal rounds
        while not stop.is_set():
            i = rounds
            for phone in survivors:
                await phone.scan(f"DURING-{phone.name}-{i}")
            scan_id = str(uuid.uuid4())
            sent[scan_id] = f"DURING-REST-{i}"
            status, body = await rest_scan(a, tokens["ana"], sent[scan_id], scan_id)
            assert status == 201, (status, body)
            rounds += 1
            await asyncio.sleep(0.05)

    scanning = None
    try:
        for phone, server in zip(phones, (a, a, b, b), strict=True):
            await phone.connect(server)
        for i in range(5):
            for phone in phones:
                await phone.scan(f"BEFORE-{phone.name}-{i}")
        await settle(phones)
        assert await connected(a, tokens["ana"]) == len(phones)

        scanning = asyncio.create_task(keep_scanning())
        await asyncio.to_thread(b.kill)  # SIGKILL: nothing is cleaned up
        killed = time.monotonic()
        for phone in victims:  # the network tells them at once; they keep scanning offline
            await phone.wait_closed(timeout=10)
            await phone.scan(f"OFFLINE-{phone.name}")

        # The dead instance's connections leave room-info and the metrics within two heartbeats.
        left_after = await connections_drop_to(
            a, tokens["ana"], len(survivors), since=killed, within=2 * HEARTBEAT_MS / 1000 + 0.5
        )
        status, info = await ahttp(a, "GET", ROOM_INFO, token=tokens["ana"])
        assert sorted((u["userName"], u["connections"]) for u in info["users"]) == [
            ("Ana García", 1),
            ("Luis Pérez", 1),
        ], info
        status, metrics = await ahttp(a, "GET", "/api/inventory/websocket/metrics", token=tokens["staff"])
        assert status == 200 and metrics["activeConnections"] == len(survivors), metrics

        # The survivors kept working: what they scanned after the kill is confirmed to them.
        async def survivors_confirmed():
            after = sum(1 for p in survivors for code in p.sent.values() if code.startswith("DURING"))
            return after >= 10 and all(len(p.outbox) <= 1 for p in survivors)

        await eventually(survivors_confirmed, 10, "the survivors' scans are confirmed")
        # Someone removes a scan the victims saw: they must learn it when they resume.
        removed = {next(iter(victims[0].sent))}
        status, body = await rest_remove(a, tokens["luis"], victims[0].sent[next(iter(removed))])
        assert status == 200, (status, body)

        # The victims rejoin the live instance with ?since, and resend what they scanned offline.
        status, info = await ahttp(a, "GET", ROOM_INFO, token=tokens["ana"])
        resumed = info["lastSeq"] - min(p.view.seq for p in victims)  # events made while away
        for phone in victims:
            await phone.connect(a, timeout=20)
        back_at = rounds
        await eventually(lambda: rounds >= back_at + 5, 10, "more scans while everyone is back")
        stop.set()
        await scanning
        truth = await settle(phones)
        total_seq = await check_event_log()

        for phone in phones:
            sent.update(phone.sent)
        result = figures(
            "instance-kill",
            phones,
            truth,
            sent,
            removed,
            left_presence_s=round(left_after, 1),
            resumed=resumed,
        )
        assert result["lost"] == 0 and result["doubled"] == 0, (result, phones)
        assert result["stored"] == result["sent"] - len(removed)
        assert total_seq == result["sent"] + len(removed)  # one event per scan and per removal
        assert all(p.view.gaps == 0 and p.view.seq == total_seq and p.view.snapshots == 0 for p in phones)
        assert result["delivered"] == len(phones) * total_seq  # each event reached each phone once
        assert not [e for p in phones for e in p.errors], [p.errors for p in phones]
    finally:
        stop.set()
        if scanning is not None:
            with contextlib.suppress(BaseException):
                await scanning
        for phone in phones:
            await phone.close()
