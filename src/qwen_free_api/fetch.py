"""Safe fetching of the image and document URLs that clients name (no door into private networks).

Each hop of a fetch resolves the host name once, refuses it unless every address is public
unicast (IPv4 addresses embedded in IPv6 are judged as the IPv4 address), then connects to
exactly one of those checked addresses. Redirects are followed here, at most
`max_redirects`, and every hop is checked again. Body size, total time and content type are
limited. Hosts on the allowlist skip only the address check.

The transport is a small HTTP/1.1 client on asyncio streams, not the curl_cffi seam
(upstreams/http.py). That seam shares a session, an outbound proxy and a DNS cache with the
upstream calls and would decompress bodies; here the socket opens to the address that was
checked, TLS still verifies and sends SNI for the name, no cookie jar, pool or proxy can be
involved, and every body byte is counted against the cap as it arrives. A browser TLS
fingerprint does not matter for arbitrary URLs. `resolve` and `open_stream` are the only I/O
seams; the tests replace them.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import posixpath
import re
import socket
import ssl
import urllib.parse
from collections.abc import Collection
from dataclasses import dataclass, field
from functools import cache
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

from qwen_free_api import __version__
from qwen_free_api.errors import BadRequest, PayloadTooLarge

IPAddress = IPv4Address | IPv6Address

USER_AGENT = f"qwen-free-api/{__version__}"
HEAD_LIMIT = 64 * 1024  # the most a status line, a header block or a chunk-size line may take
REDIRECTS = frozenset({301, 302, 303, 307, 308})
GENERIC_TYPES = frozenset(
    {"", "application/octet-stream", "binary/octet-stream", "application/unknown"}
)
MAGIC = {
    b"\x89PNG\r\n\x1a\n": "image/png",
    b"\xff\xd8\xff": "image/jpeg",
    b"GIF87a": "image/gif",
    b"GIF89a": "image/gif",
    b"%PDF-": "application/pdf",
}
CGNAT = IPv4Network("100.64.0.0/10")
NAT64 = IPv6Network("64:ff9b::/96")
# Not public, yet Python 3.11's `is_global` says they are.
NOT_GLOBAL = (IPv4Network("192.0.0.0/24"), IPv6Network("fec0::/10"), IPv6Network("64:ff9b:1::/48"))
CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,15}")
HOST_CHARS = re.compile(r"[a-z0-9._:%-]+")
PATH_SAFE = "/%!$&'()*+,;=:@-._~"


@dataclass(frozen=True, slots=True)
class FetchLimits:
    """What one fetch may cost, and which content types (prefixes) the caller takes."""

    max_bytes: int
    timeout: float  # seconds for everything: lookups, connects, redirects and the body
    max_redirects: int = 3
    accept: tuple[str, ...] = ("image/",)


@dataclass(frozen=True, slots=True)
class Fetched:
    data: bytes = field(repr=False)
    content_type: str
    final_url: str
    name: str


@dataclass(frozen=True, slots=True)
class Target:
    """One hop's URL, checked and split into what the connection needs."""

    url: str
    https: bool
    host: str  # lower-case ASCII (IDNA), without IPv6 brackets
    port: int
    path: str  # request target: path and query, percent-encoded


async def fetch(url: str, limits: FetchLimits, allowlist: Collection[str]) -> Fetched:
    """GET a user-supplied http(s) URL, refusing anything that could reach a private network."""
    allowed = {_bare(host) for host in allowlist}
    try:
        async with asyncio.timeout(limits.timeout):
            return await _follow(url, limits, allowed)
    except TimeoutError:
        raise BadRequest(f"fetching {_short(url)} timed out after {limits.timeout:g}s") from None


async def _follow(url: str, limits: FetchLimits, allowed: set[str]) -> Fetched:
    for _ in range(limits.max_redirects + 1):
        target = parse_target(url)
        addresses = await _checked_addresses(target, allowed)
        result = await _exchange(target, addresses, limits)
        if isinstance(result, Fetched):
            return result
        url = result
    raise BadRequest(f"{_short(url)} redirected more than {limits.max_redirects} times")


def parse_target(url: str) -> Target:
    try:
        parts = urllib.parse.urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise BadRequest(f"{_short(url)} is not a valid URL") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        what = f"{scheme}: URLs" if scheme else "URLs without a scheme"
        raise BadRequest(f"only http and https URLs can be fetched, not {what}")
    if "@" in parts.netloc:
        raise BadRequest("URLs with a user name or password are refused")
    host = _ascii_host(parts.hostname or "")
    if port == 0:
        raise BadRequest(f"{_short(url)} names port 0")
    path = urllib.parse.quote(parts.path or "/", safe=PATH_SAFE)
    if parts.query:
        path += "?" + urllib.parse.quote(parts.query, safe=PATH_SAFE + "?")
    clean = urllib.parse.urlunsplit((scheme, parts.netloc, parts.path or "/", parts.query, ""))
    return Target(clean, scheme == "https", host, port or (443 if scheme == "https" else 80), path)


def _ascii_host(host: str) -> str:
    try:
        ascii_host = host.encode("idna").decode("ascii") if host else ""
    except UnicodeError:
        ascii_host = ""
    if not HOST_CHARS.fullmatch(ascii_host):
        raise BadRequest(f"the URL's host {host!r} is missing or not a valid host name")
    return ascii_host.rstrip(".")


async def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address `host` has; the one DNS lookup a hop makes."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [ipaddress.ip_address(info[4][0]) for info in infos]


async def _checked_addresses(target: Target, allowed: set[str]) -> list[IPAddress]:
    try:
        found = [ipaddress.ip_address(target.host)]
    except ValueError:
        try:
            found = await resolve(target.host, target.port)
        except (OSError, UnicodeError) as error:
            raise BadRequest(f"could not resolve {target.host}: {error}") from None
    addresses = list(dict.fromkeys(_unmapped(address) for address in found))
    if not addresses:
        raise BadRequest(f"{target.host} has no address")
    if target.host not in allowed:
        for address in addresses:
            problem = address_problem(address)
            if problem is not None:
                raise BadRequest(f"refusing to fetch from {target.host}: {problem}")
    return addresses


def _unmapped(address: IPAddress) -> IPAddress:
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def address_problem(address: IPAddress) -> str | None:
    """Why `address` must not be connected to, or None for a public unicast address."""
    if isinstance(address, IPv6Address):
        inner = _embedded_ipv4(address)
        if inner is not None:
            problem = address_problem(inner)
            if problem is not None:
                return f"{problem}, inside the IPv6 address {address}"
            if address.ipv4_mapped is not None or address in NAT64:
                return None  # a public IPv4 address reached over IPv6
    checks = (
        (address.is_loopback, "loopback"),
        (address.is_link_local, "link-local"),
        (address.is_unspecified, "unspecified"),
        (address.is_multicast, "multicast"),
        (address in CGNAT, "shared (CGNAT)"),
        (address.is_reserved, "reserved"),
        (address.is_private, "private"),
        (not address.is_global or any(address in net for net in NOT_GLOBAL), "non-public"),
    )
    return next((f"{label} address {address}" for flagged, label in checks if flagged), None)


def _embedded_ipv4(address: IPv6Address) -> IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in NAT64 or 1 < int(address) < 1 << 32:  # NAT64 or IPv4-compatible (::a.b.c.d)
        return IPv4Address(int(address) & 0xFFFFFFFF)
    return None


@cache
def tls_context() -> ssl.SSLContext:
    return ssl.create_default_context()


async def open_stream(
    address: IPAddress, target: Target
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Connect to exactly `address`; TLS still verifies the certificate for the host name."""
    tls = tls_context() if target.https else None
    return await asyncio.open_connection(
        str(address),
        target.port,
        ssl=tls,
        server_hostname=target.host if tls else None,
        limit=HEAD_LIMIT,
    )


async def _connect(
    target: Target, addresses: list[IPAddress]
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    failure: OSError | None = None
    for address in addresses:
        try:
            return await open_stream(address, target)
        except OSError as error:  # includes TLS failures
            failure = error
    raise BadRequest(f"could not connect to {target.host}: {failure}")


async def _exchange(
    target: Target, addresses: list[IPAddress], limits: FetchLimits
) -> Fetched | str:
    """One request on one connection: the fetched body, or where a redirect points."""
    reader, writer = await _connect(target, addresses)
    try:
        writer.write(_request(target))
        await writer.drain()
        status, headers = await _read_head(reader)
        if status in REDIRECTS and headers.get("location"):
            return urllib.parse.urljoin(target.url, headers["location"].strip())
        if status != 200:
            raise BadRequest(f"{_short(target.url)} answered HTTP {status}")
        return await _read_reply(reader, headers, target, limits)
    except OSError as error:  # resets, TLS errors mid-stream
        raise BadRequest(f"the connection to {target.host} failed: {error}") from None
    finally:
        writer.transport.abort()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


def _request(target: Target) -> bytes:
    host = f"[{target.host}]" if ":" in target.host else target.host
    port = "" if target.port == (443 if target.https else 80) else f":{target.port}"
    return (
        f"GET {target.path} HTTP/1.1\r\nHost: {host}{port}\r\nUser-Agent: {USER_AGENT}\r\n"
        "Accept: */*\r\nAccept-Encoding: identity\r\nConnection: close\r\n\r\n"
    ).encode("ascii")


async def _read_head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    while True:
        raw = await _read_until(reader, b"\r\n\r\n", "response headers")
        lines = raw.decode("latin-1").split("\r\n")
        version, _, rest = lines[0].partition(" ")
        code = rest[:3]
        if not version.startswith("HTTP/1.") or not code.isdigit():
            raise BadRequest(f"the server answered something other than HTTP: {lines[0][:80]!r}")
        if not 100 <= int(code) < 200 or int(code) == 101:
            return int(code), _headers(lines[1:])


def _headers(lines: list[str]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in lines:
        if not line:
            continue
        name, colon, value = line.partition(":")
        if not colon:
            raise BadRequest(f"malformed response header {line[:80]!r}")
        key = name.strip().lower()
        headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
    return headers


async def _read_until(reader: asyncio.StreamReader, end: bytes, what: str) -> bytes:
    try:
        return await reader.readuntil(end)
    except asyncio.LimitOverrunError:
        raise BadRequest(f"the server sent {what} longer than {HEAD_LIMIT} bytes") from None
    except asyncio.IncompleteReadError:
        raise BadRequest(f"the server closed the connection in the {what}") from None


async def _read_reply(
    reader: asyncio.StreamReader, headers: dict[str, str], target: Target, limits: FetchLimits
) -> Fetched:
    encoding = headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise BadRequest(f"{_short(target.url)} sent a {encoding}-encoded body, not supported")
    declared = headers.get("content-type", "").split(";")[0].strip().lower()
    if declared not in GENERIC_TYPES:
        _check_type(declared, limits.accept, target)
    data = await _read_body(reader, headers, limits.max_bytes)
    content_type = declared if declared not in GENERIC_TYPES else _sniff(data)
    _check_type(content_type, limits.accept, target)
    name = posixpath.basename(urllib.parse.unquote(urllib.parse.urlsplit(target.url).path))
    return Fetched(data, content_type, target.url, name)


def _check_type(content_type: str, accept: tuple[str, ...], target: Target) -> None:
    if not content_type:
        raise BadRequest(f"{_short(target.url)} sent no recognisable content type")
    if not content_type.startswith(accept):
        wanted = ", ".join(accept)
        raise BadRequest(f"{_short(target.url)} is {content_type}, not one of: {wanted}")


def _sniff(data: bytes) -> str:
    for magic, content_type in MAGIC.items():
        if data.startswith(magic):
            return content_type
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:2] == b"BM" and data[6:10] == b"\0\0\0\0" and len(data) >= 26:
        return "image/bmp"
    return ""


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str], cap: int) -> bytes:
    coding = headers.get("transfer-encoding", "").lower()
    if coding:
        if coding.split(",")[-1].strip() != "chunked":
            raise BadRequest(f"unsupported transfer encoding {coding!r}")
        return await _read_chunked(reader, cap)
    if "content-length" not in headers:
        return await _read_to_end(reader, cap)
    lengths = {value.strip() for value in headers["content-length"].split(",")}
    length = lengths.pop() if len(lengths) == 1 else ""
    if not length.isdigit():
        raise BadRequest(f"malformed Content-Length {headers['content-length'][:40]!r}")
    _check_size(int(length), cap)
    try:
        return await reader.readexactly(int(length))
    except asyncio.IncompleteReadError:
        raise BadRequest("the server closed the connection before the body was complete") from None


async def _read_chunked(reader: asyncio.StreamReader, cap: int) -> bytes:
    parts: list[bytes] = []
    size = 0
    while True:
        line = await _read_until(reader, b"\n", "chunk size")
        digits = line.split(b";", 1)[0].strip()
        if not CHUNK_SIZE.fullmatch(digits):
            raise BadRequest(f"malformed chunk size {digits[:20]!r}")
        if not int(digits, 16):
            break
        size += int(digits, 16)
        _check_size(size, cap)
        try:
            parts.append(await reader.readexactly(int(digits, 16)))
        except asyncio.IncompleteReadError:
            raise BadRequest("the server closed the connection inside a chunk") from None
        await _read_until(reader, b"\n", "chunk end")
    while (await _read_until(reader, b"\n", "trailers")).strip():
        pass
    return b"".join(parts)


async def _read_to_end(reader: asyncio.StreamReader, cap: int) -> bytes:
    parts: list[bytes] = []
    size = 0
    while chunk := await reader.read(64 * 1024):
        size += len(chunk)
        _check_size(size, cap)
        parts.append(chunk)
    return b"".join(parts)


def _check_size(size: int, cap: int) -> None:
    if size > cap:
        raise PayloadTooLarge(f"the fetched body is larger than the {cap} bytes allowed")


def _bare(host: str) -> str:
    return host.strip().strip("[]").lower().rstrip(".")


def _short(url: str) -> str:
    return url if len(url) <= 120 else url[:117] + "..."
