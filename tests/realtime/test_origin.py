"""Browser sockets: the Origin is compared exactly (scheme, host, port), as Django's CSRF check does."""

import pytest

from tests.realtime.helpers import connect_raw, room_path, token_of

pytestmark = [pytest.mark.django_db(transaction=True)]


async def opens(user, origin: str, host: str = "localhost:5000", **headers) -> bool:
    sent = [(b"origin", origin.encode()), (b"host", host.encode())]
    sent += [(name.replace("_", "-").encode(), value.encode()) for name, value in headers.items()]
    client, connected = await connect_raw(room_path(), token=await token_of(user), headers=sent)
    if connected:
        await client.ws.disconnect()
    return connected


async def test_the_pages_own_origin_opens_the_socket(ana):
    assert await opens(ana, "http://localhost:5000")


@pytest.mark.parametrize(
    "origin",
    [
        "https://localhost:5000",  # another scheme
        "http://localhost:5001",  # another port
        "http://localhost",  # no port: another origin
        "http://127.0.0.1:5000",  # an allowed host, but not the one the socket was opened on
        "http://evil.localhost:5000",
        "null",
    ],
)
async def test_any_other_origin_is_refused_even_on_an_allowed_host(ana, origin):
    assert not await opens(ana, origin)


async def test_a_wildcard_in_allowed_hosts_does_not_let_a_foreign_page_in(ana, settings):
    settings.ALLOWED_HOSTS = ["*"]
    assert not await opens(ana, "https://evil.example")
    assert not await opens(ana, "https://evil.example", host="evil.example")
    assert await opens(ana, "http://anything.example:8080", host="anything.example:8080")


async def test_a_host_outside_allowed_hosts_is_no_origin_of_ours(ana):
    assert not await opens(ana, "http://evil.example", host="evil.example")


async def test_behind_a_tls_proxy_the_page_is_https(ana, settings):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.ALLOWED_HOSTS = ["inventario.example"]
    proxied = {"x_forwarded_proto": "https"}
    assert await opens(ana, "https://inventario.example", host="inventario.example", **proxied)
    assert not await opens(ana, "http://inventario.example", host="inventario.example", **proxied)
    assert not await opens(ana, "https://inventario.example", host="inventario.example")


async def test_csrf_trusted_origins_are_allowed_exactly_and_by_subdomain_wildcard(ana, settings):
    settings.CSRF_TRUSTED_ORIGINS = ["https://app.example.com", "https://*.dealers.example"]
    assert await opens(ana, "https://app.example.com")
    assert not await opens(ana, "http://app.example.com")
    assert not await opens(ana, "https://app.example.com:8443")
    assert await opens(ana, "https://north.dealers.example")
    assert not await opens(ana, "http://north.dealers.example")
    assert not await opens(ana, "https://dealers.example.evil.com")


async def test_a_client_without_origin_is_not_a_browser_and_uses_its_token(ana):
    client, connected = await connect_raw(room_path(), token=await token_of(ana))
    assert connected
    assert (await client.receive())["type"] == "presence"
    await client.ws.disconnect()
