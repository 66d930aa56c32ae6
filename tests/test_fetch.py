"""fetch.py never connects to a private address, and caps what a user URL may cost.

Real loopback listeners count every connection they accept; a spy on `fetch.open_stream`
records every connection attempt. A refused URL must leave both untouched. The resolver is
replaced by a table, so no test needs DNS or the internet.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from ipaddress import ip_address
from pathlib import Path

import pytest

from qwen_free_api import fetch
from qwen_free_api.errors import BadRequest, PayloadTooLarge
from qwen_free_api.fetch import FetchLimits, IPAddress, Target

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 40
ALLOW = ("allowed.test",)
IMAGES = FetchLimits(max_bytes=1000, timeout=30)
DOCUMENTS = FetchLimits(
    max_bytes=1000,
    timeout=30,
    accept=("text/", "application/pdf", "application/json", "application/vnd.openxmlformats"),
)

Script = Callable[["Listener", bytes, asyncio.StreamWriter], Awaitable[None]]


def response(
    body: bytes = PNG, *, status: str = "200 OK", headers: tuple[str, ...] = ("image/png",)
) -> bytes:
    """A raw HTTP/1.1 response; bare values in `headers` are content types."""
    lines = [f"HTTP/1.1 {status}"]
    lines += [h if ":" in h else f"Content-Type: {h}" for h in headers]
    if not any(h.lower().startswith(("content-length", "transfer-encoding")) for h in headers):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def reply(raw: bytes) -> Script:
    async def script(listener: Listener, request: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(raw)
        await writer.drain()

    return script


def stall(raw: bytes) -> Script:
    """Send `raw`, then hold the connection open until the test releases it."""

    async def script(listener: Listener, request: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(raw)
        await writer.drain()
        await listener.release.wait()

    return script


@dataclass
class Listener:
    """A loopback HTTP peer that counts connections and answers each with `script`."""

    script: Script = field(default_factory=lambda: reply(response()))
    connections: int = 0
    requests: list[bytes] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        self.connections += 1
        try:
            request = await reader.readuntil(b"\r\n\r\n")
            self.requests.append(request)
            await self.script(self, request, writer)
        except (OSError, asyncio.IncompleteReadError):
            pass  # the client hung up, as refusals do
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


ListenerFactory = Callable[..., Awaitable[Listener]]


@pytest.fixture
async def listen() -> AsyncIterator[ListenerFactory]:
    made: list[Listener] = []

    async def start(script: Script | None = None, tls: ssl.SSLContext | None = None) -> Listener:
        listener = Listener() if script is None else Listener(script)
        listener.server = await asyncio.start_server(listener.handle, "127.0.0.1", 0, ssl=tls)
        made.append(listener)
        return listener

    yield start
    for listener in made:
        listener.release.set()
        assert listener.server is not None
        listener.server.close()
        await listener.server.wait_closed()
        await asyncio.gather(*listener.tasks, return_exceptions=True)


@dataclass
class Net:
    """The fake name service and the record of every connection fetch.py attempted."""

    names: dict[str, list[list[str]]] = field(default_factory=dict)  # answers, in turn
    routes: dict[tuple[str, int], int] = field(default_factory=dict)  # public → loopback port
    lookups: list[str] = field(default_factory=list)
    connects: list[tuple[str, int, str]] = field(default_factory=list)


@pytest.fixture(autouse=True)
def net(monkeypatch: pytest.MonkeyPatch) -> Net:
    net = Net()
    real_resolve, real_open = fetch.resolve, fetch.open_stream

    async def resolve(host: str, port: int) -> list[IPAddress]:
        net.lookups.append(host)
        if host in net.names:
            answers = net.names[host]
            return [ip_address(a) for a in (answers.pop(0) if len(answers) > 1 else answers[0])]
        if host == "localhost" or host.isdigit():
            return await real_resolve(host, port)
        raise socket.gaierror(socket.EAI_NONAME, "no such name in the test resolver")

    async def open_stream(
        address: IPAddress, target: Target
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        net.connects.append((str(address), target.port, target.host))
        if (str(address), target.port) in net.routes:
            return await asyncio.open_connection("127.0.0.1", net.routes[str(address), target.port])
        if not address.is_loopback:
            raise OSError("the tests have no internet")
        return await real_open(address, target)

    monkeypatch.setattr(fetch, "resolve", resolve)
    monkeypatch.setattr(fetch, "open_stream", open_stream)
    net.names["allowed.test"] = [["127.0.0.1"]]
    return net


REFUSED = [
    ("http://127.0.0.1:{port}/a.png", "loopback"),
    ("http://localhost:{port}/a.png", "loopback"),
    ("http://evil.test:{port}/a.png", "loopback"),  # a name resolving to 127.0.0.1
    ("http://rebind.test:{port}/a.png", "loopback"),  # one public, one private answer
    ("http://2130706433:{port}/a.png", ""),  # 127.0.0.1 in decimal
    ("http://[::1]:{port}/", "loopback"),
    ("http://[::ffff:127.0.0.1]:{port}/", "loopback"),
    ("http://[::127.0.0.1]:{port}/", "loopback"),  # IPv4-compatible
    ("http://[2002:7f00:1::1]:{port}/", "loopback"),  # 6to4
    ("http://[64:ff9b::a00:1]/", "private"),  # NAT64 of 10.0.0.1
    ("http://10.0.0.1/", "private"),
    ("http://172.16.0.1/", "private"),
    ("http://192.168.1.1/", "private"),
    ("http://169.254.169.254/latest/meta-data/", "link-local"),
    ("http://0.0.0.0:{port}/", "unspecified"),
    ("http://100.64.0.1/", "CGNAT"),
    ("http://192.0.0.9/", "non-public"),
    ("http://240.0.0.1/", "reserved"),
    ("http://224.0.0.1/", "multicast"),
    ("http://[ff02::1]/", "multicast"),
    ("http://[fe80::1]/", "link-local"),
    ("http://[fc00::1]/", "private"),
    ("http://nowhere.test/", "could not resolve"),
    ("file:///etc/passwd", "only http and https"),
    ("ftp://example.com/a.png", "only http and https"),
    ("gopher://example.com/", "only http and https"),
    ("data:image/png;base64,iVBORw0KGgo=", "only http and https"),
    ("//example.com/a.png", "without a scheme"),
    ("http://user:pass@127.0.0.1:{port}/", "user name or password"),
    ("http://user:pass@allowed.test:{port}/", "user name or password"),  # even allowlisted
    ("http://[::1/", "not a valid URL"),
    ("http://allowed.test:0/", "port 0"),
]


@pytest.mark.parametrize(("template", "reason"), REFUSED)
async def test_refused_urls_connect_nowhere(
    template: str, reason: str, listen: ListenerFactory, net: Net
) -> None:
    listener = await listen()
    net.names["evil.test"] = [["127.0.0.1"]]
    net.names["rebind.test"] = [["93.184.216.34", "127.0.0.1"]]
    with pytest.raises(BadRequest) as refused:
        await fetch.fetch(template.format(port=listener.port), IMAGES, ALLOW)
    assert type(refused.value) is BadRequest
    assert reason in refused.value.message
    assert listener.connections == 0
    assert net.connects == []


@pytest.mark.parametrize(
    "address", ["93.184.216.34", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"]
)
def test_public_addresses_pass(address: str) -> None:
    assert fetch.address_problem(ip_address(address)) is None


async def test_fetches_an_image_from_an_allowlisted_host(listen: ListenerFactory, net: Net) -> None:
    listener = await listen()
    url = f"http://allowed.test:{listener.port}/pics/cat%20one.png?size=2"
    got = await fetch.fetch(url, IMAGES, ALLOW)
    assert (got.data, got.content_type, got.final_url, got.name) == (
        PNG,
        "image/png",
        url,
        "cat one.png",
    )
    assert net.lookups == ["allowed.test"]
    assert net.connects == [("127.0.0.1", listener.port, "allowed.test")]
    head = listener.requests[0].decode().lower()
    assert head.startswith("get /pics/cat%20one.png?size=2 http/1.1\r\n")
    assert f"host: allowed.test:{listener.port}\r\n" in head
    assert "user-agent: qwen-free-api/" in head
    assert "accept-encoding: identity" in head
    assert "cookie" not in head
    assert "authorization" not in head


async def test_allowlist_is_case_insensitive_and_takes_addresses(listen: ListenerFactory) -> None:
    listener = await listen()
    await fetch.fetch(f"http://ALLOWED.Test:{listener.port}/a.png", IMAGES, ["Allowed.TEST"])
    await fetch.fetch(f"http://127.0.0.1:{listener.port}/a.png", IMAGES, ["127.0.0.1"])
    assert listener.connections == 2


async def test_connects_to_the_address_it_checked(listen: ListenerFactory, net: Net) -> None:
    """DNS rebinding: a second lookup would say 127.0.0.1, but there is no second lookup."""
    listener = await listen()
    net.names["cdn.test"] = [["93.184.216.34"], ["127.0.0.1"]]
    net.routes["93.184.216.34", 80] = listener.port
    got = await fetch.fetch("http://cdn.test/cat.png", IMAGES, ())
    assert got.data == PNG
    assert net.lookups == ["cdn.test"]
    assert net.connects == [("93.184.216.34", 80, "cdn.test")]


async def test_follows_a_redirect(listen: ListenerFactory) -> None:
    async def script(listener: Listener, request: bytes, writer: asyncio.StreamWriter) -> None:
        if request.startswith(b"GET /old "):
            writer.write(response(b"", status="302 Found", headers=("Location: /new.png",)))
        else:
            writer.write(response())

    listener = await listen(script)
    got = await fetch.fetch(f"http://allowed.test:{listener.port}/old", IMAGES, ALLOW)
    assert got.final_url.endswith("/new.png")
    assert got.name == "new.png"
    assert listener.connections == 2


@pytest.mark.parametrize(
    "location",
    [
        "http://127.0.0.1:{other}/x.png",
        "http://localhost:{other}/x.png",
        "http://10.0.0.1/x.png",
        "http://169.254.169.254/latest/meta-data/",
        "file:///etc/passwd",
    ],
)
async def test_redirect_to_a_private_address_is_refused(
    location: str, listen: ListenerFactory, net: Net
) -> None:
    other = await listen()
    to = location.format(other=other.port)
    first = await listen(reply(response(b"", status="301 Moved", headers=(f"Location: {to}",))))
    with pytest.raises(BadRequest) as refused:
        await fetch.fetch(f"http://allowed.test:{first.port}/a.png", IMAGES, ALLOW)
    assert "refusing" in refused.value.message or "only http" in refused.value.message
    assert first.connections == 1
    assert other.connections == 0
    assert len(net.connects) == 1


async def test_too_many_redirects(listen: ListenerFactory) -> None:
    listener = await listen(reply(response(b"", status="307 Again", headers=("Location: /x",))))
    limits = FetchLimits(max_bytes=1000, timeout=30, max_redirects=2)
    with pytest.raises(BadRequest, match="redirected more than 2 times"):
        await fetch.fetch(f"http://allowed.test:{listener.port}/x", limits, ALLOW)
    assert listener.connections == 3


CHUNK = b"190\r\n" + b"x" * 400 + b"\r\n"  # 400 bytes


@pytest.mark.parametrize(
    "script",
    [
        stall(response(b"", headers=("image/png", "Content-Length: 5000"))),  # no body follows
        stall(response(CHUNK * 3, headers=("image/png", "Transfer-Encoding: chunked"))),
        reply(b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\n\r\n" + PNG + b"\x00" * 1000),
    ],
    ids=["content-length", "chunked", "until-close"],
)
async def test_oversized_bodies_are_refused_at_the_cap(
    script: Script, listen: ListenerFactory
) -> None:
    """The stalled servers never finish: only refusing at the cap ends these fetches in time."""
    listener = await listen(script)
    with pytest.raises(PayloadTooLarge, match="larger than the 1000 bytes"):
        await fetch.fetch(f"http://allowed.test:{listener.port}/big.png", IMAGES, ALLOW)


async def test_body_at_the_cap_and_chunked_bodies_are_read(listen: ListenerFactory) -> None:
    exact = PNG + b"\x00" * (1000 - len(PNG))
    listener = await listen(reply(response(exact)))
    assert (await fetch.fetch(f"http://allowed.test:{listener.port}/", IMAGES, ALLOW)).data == exact
    chunked = b"8;name=value\r\n" + PNG[:8] + b"\r\n" + f"{len(PNG) - 8:x}\r\n".encode()
    chunked += PNG[8:] + b"\r\n0\r\nX-Trailer: 1\r\n\r\n"
    listener = await listen(reply(response(chunked, headers=("Transfer-Encoding: chunked",))))
    got = await fetch.fetch(f"http://allowed.test:{listener.port}/", IMAGES, ALLOW)
    assert (got.data, got.content_type) == (PNG, "image/png")


async def drip(listener: Listener, request: bytes, writer: asyncio.StreamWriter) -> None:
    """A slowloris body: one byte at a time, for as long as the client keeps reading."""
    writer.write(response(b"", headers=("image/png", "Transfer-Encoding: chunked")))
    while not listener.release.is_set():
        writer.write(b"1\r\nx\r\n")
        await writer.drain()
        await asyncio.sleep(0.01)  # pacing of the peer, not synchronisation


@pytest.mark.parametrize(
    "script",
    [
        stall(b""),
        stall(response(PNG[:10], headers=("image/png", "Content-Length: 100"))),
        drip,
    ],
    ids=["no-headers", "stalled-body", "drip"],
)
async def test_slow_servers_time_out(script: Script, listen: ListenerFactory) -> None:
    listener = await listen(script)
    limits = FetchLimits(max_bytes=1000, timeout=0.5)
    with pytest.raises(BadRequest, match=r"timed out after 0\.5s"):
        await fetch.fetch(f"http://allowed.test:{listener.port}/slow.png", limits, ALLOW)
    listener.release.set()


@pytest.mark.parametrize(
    ("headers", "body", "expected"),
    [
        ((), PNG, "image/png"),
        (("application/octet-stream",), b"\xff\xd8\xff\xe0" + b"\x00" * 20, "image/jpeg"),
        (("",), b"GIF89a" + b"\x00" * 20, "image/gif"),
        ((), b"RIFF\x10\x00\x00\x00WEBPVP8 " + b"\x00" * 8, "image/webp"),
        ((), b"BM\x46\x00\x00\x00\x00\x00\x00\x00\x36\x00" + b"\x00" * 20, "image/bmp"),
        (("image/png; charset=binary",), PNG, "image/png"),
    ],
)
async def test_image_types_from_the_header_or_the_bytes(
    headers: tuple[str, ...], body: bytes, expected: str, listen: ListenerFactory
) -> None:
    listener = await listen(reply(response(body, headers=headers)))
    got = await fetch.fetch(f"http://allowed.test:{listener.port}/img", IMAGES, ALLOW)
    assert (got.content_type, got.data) == (expected, body)


@pytest.mark.parametrize(
    ("headers", "body", "reason"),
    [
        (("text/html",), b"<html>", "is text/html, not one of: image/"),
        ((), b"<html>", "no recognisable content type"),
        (("application/octet-stream",), b"%PDF-1.7", "is application/pdf"),
    ],
)
async def test_wrong_content_types_are_refused(
    headers: tuple[str, ...], body: bytes, reason: str, listen: ListenerFactory
) -> None:
    listener = await listen(reply(response(body, headers=headers)))
    with pytest.raises(BadRequest, match=reason):
        await fetch.fetch(f"http://allowed.test:{listener.port}/x", IMAGES, ALLOW)


async def test_a_declared_wrong_type_is_refused_before_the_body(listen: ListenerFactory) -> None:
    listener = await listen(stall(response(b"", headers=("text/html", "Content-Length: 500"))))
    with pytest.raises(BadRequest, match="is text/html"):
        await fetch.fetch(f"http://allowed.test:{listener.port}/x", IMAGES, ALLOW)


@pytest.mark.parametrize(
    ("headers", "body", "expected"),
    [
        (("text/plain; charset=utf-8",), b"hello", "text/plain"),
        (("application/octet-stream",), b"%PDF-1.7\n", "application/pdf"),
        (("application/json",), b"{}", "application/json"),
    ],
)
async def test_document_types(
    headers: tuple[str, ...], body: bytes, expected: str, listen: ListenerFactory
) -> None:
    listener = await listen(reply(response(body, headers=headers)))
    got = await fetch.fetch(f"http://allowed.test:{listener.port}/doc", DOCUMENTS, ALLOW)
    assert (got.content_type, got.data) == (expected, body)
    with pytest.raises(BadRequest, match="is image/png"):
        listener.script = reply(response())
        await fetch.fetch(f"http://allowed.test:{listener.port}/doc", DOCUMENTS, ALLOW)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (response(b"gone", status="404 Not Found", headers=("text/plain",)), "answered HTTP 404"),
        (response(PNG, headers=("image/png", "Content-Encoding: gzip")), "gzip-encoded"),
        (b"SSH-2.0-OpenSSH_9.6\r\n\r\n", "something other than HTTP"),
        (response(PNG, headers=("image/png", "Content-Length: 5, 6")), "malformed Content-Length"),
        (response(b"zz\r\n", headers=("image/png", "Transfer-Encoding: chunked")), "chunk size"),
        (response(PNG)[:-5], "before the body was complete"),
    ],
)
async def test_bad_answers_are_refused(raw: bytes, reason: str, listen: ListenerFactory) -> None:
    listener = await listen(reply(raw))
    with pytest.raises(BadRequest, match=reason):
        await fetch.fetch(f"http://allowed.test:{listener.port}/x", IMAGES, ALLOW)


async def test_interim_responses_are_skipped(listen: ListenerFactory) -> None:
    listener = await listen(reply(b"HTTP/1.1 100 Continue\r\n\r\n" + response()))
    got = await fetch.fetch(f"http://allowed.test:{listener.port}/x", IMAGES, ALLOW)
    assert got.data == PNG


async def test_nothing_listening_is_a_bad_request() -> None:
    with socket.socket() as bound:  # bound, not listening: connections are refused
        bound.bind(("127.0.0.1", 0))
        port = bound.getsockname()[1]
        with pytest.raises(BadRequest, match=r"could not connect to allowed\.test"):
            await fetch.fetch(f"http://allowed.test:{port}/x", IMAGES, ALLOW)


def tls_pair(tmp_path: Path, name: str) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context with a self-signed certificate for `name`, and a client that trusts it."""
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM)
    (tmp_path / "cert.pem").write_bytes(pem)
    (tmp_path / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    return server, ssl.create_default_context(cadata=pem.decode())


async def test_https_names_the_host_but_connects_to_the_checked_address(
    tmp_path: Path, listen: ListenerFactory, net: Net, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, client = tls_pair(tmp_path, "pics.test")
    names: list[str | None] = []
    server.sni_callback = lambda _sock, name, _ctx: names.append(name)
    monkeypatch.setattr(fetch, "tls_context", lambda: client)
    listener = await listen(tls=server)
    net.names["pics.test"] = [["127.0.0.1"]]
    net.names["other.test"] = [["127.0.0.1"]]
    allow = ("pics.test", "other.test")
    got = await fetch.fetch(f"https://pics.test:{listener.port}/a.png", IMAGES, allow)
    assert got.data == PNG
    assert names == ["pics.test"]
    assert net.connects == [("127.0.0.1", listener.port, "pics.test")]
    with pytest.raises(BadRequest, match=r"could not connect to other\.test"):
        await fetch.fetch(f"https://other.test:{listener.port}/a.png", IMAGES, allow)
