"""Hostile clients against a real server process, over raw loopback sockets where needed.

Oversized and lying bodies, deep and huge JSON, bad UTF-8, oversized headers, slowloris
clients and path tricks: each gets a 4xx (in the route's dialect where a route is known) or a
closed connection, never a 500, a hang, a file or a traceback in the log. The SSRF matrix of
URL fetching is tests/test_fetch.py (test_refused_urls_connect_nowhere and the redirect,
oversized and slow-body cases there).
"""

from __future__ import annotations

import base64
import json
import select
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from qwen_free_api.testing import FakeUpstream
from served import Served, served

from support import CN_TICKET

CAP = 1_000_000
HEADER_CAP = 16_384
TIMEOUT = 2  # seconds the server gives slow clients (header and body timeouts)
WAIT = 30.0  # generous bound on anything the server is expected to do
AUTH = f"Authorization: Bearer {CN_TICKET}\r\n"
ROUTES = {
    "openai": "/v1/chat/completions",
    "responses": "/v1/responses",
    "anthropic": "/v1/messages",
    "gemini": "/v1beta/models/qwen:generateContent",
}


@pytest.fixture(scope="module")
def server(
    fake_server: tuple[FakeUpstream, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    limits = {"max_body_bytes": str(CAP), "max_header_bytes": str(HEADER_CAP)}
    limits |= {"header_timeout": str(TIMEOUT), "body_timeout": str(TIMEOUT)}
    with served(fake_server[1], tmp_path_factory.mktemp("hostile"), **limits) as process:
        yield process


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def connect(server: Served) -> socket.socket:
    sock = socket.create_connection((server.host, server.port), timeout=WAIT)
    sock.settimeout(WAIT)
    return sock


def read_answer(sock: socket.socket) -> Answer:
    """One HTTP response (with a Content-Length) read from the socket."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"the connection closed before a response: {data!r}"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        assert chunk, "the connection closed inside a response body"
        rest += chunk
    return Answer(int(lines[0].split()[1]), headers, rest[:length])


def closed_by_server(sock: socket.socket) -> bool:
    """Waits (up to WAIT) for the server to close the connection; extra bytes mean it did not."""
    try:
        return sock.recv(65536) == b""
    except ConnectionResetError:
        return True


def exchange(server: Served, raw: bytes) -> tuple[Answer, bool]:
    """Send `raw` in one write; the answer, and whether the server then closed the connection."""
    with connect(server) as sock:
        sock.sendall(raw)
        answer = read_answer(sock)
        return answer, answer.headers.get("connection") == "close" and closed_by_server(sock)


def post_head(path: str, length: int | None = None, extra: str = "") -> bytes:
    size = f"Content-Length: {length}\r\n" if length is not None else ""
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\n{AUTH}Content-Type: application/json\r\n"
    return f"{head}{size}{extra}\r\n".encode()


def assert_shape(dialect: str, answer: Answer, status: int) -> None:
    """The dialect's own error envelope, with the expected status."""
    assert answer.status == status, answer.body[:300]
    body = answer.json()
    if dialect == "anthropic":
        assert body["type"] == "error" and {"type", "message"} <= set(body["error"])
    elif dialect == "gemini":
        assert body["error"]["code"] == status and {"message", "status"} <= set(body["error"])
    else:
        assert {"message", "type", "code", "param"} <= set(body["error"])


def still_serving(server: Served) -> None:
    assert httpx.get(server.url + "/ping", timeout=WAIT).text == "pong"


# Bodies over the cap: refused before the client has sent them


@pytest.mark.parametrize("dialect", list(ROUTES))
def test_declared_body_over_the_cap_is_refused_before_it_is_sent(
    server: Served, dialect: str
) -> None:
    raw = post_head(ROUTES[dialect], 50 * CAP) + b'{"model": "' + b"x" * 1000
    answer, closed = exchange(server, raw)  # 1 KB of the declared 50 MB was sent
    assert_shape(dialect, answer, 413)
    assert closed


def test_chunked_body_over_the_cap_is_refused_at_the_cap(server: Served) -> None:
    chunk = b"x" * 65_536
    framed = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    with connect(server) as sock:
        sock.sendall(post_head(ROUTES["openai"], extra="Transfer-Encoding: chunked\r\n"))
        for _ in range(CAP // len(chunk) + 1):  # just past the cap; the body never ends
            sock.sendall(framed)
        answer = read_answer(sock)
        assert_shape("openai", answer, 413)
        assert closed_by_server(sock)


def test_a_body_at_the_cap_is_read(server: Served) -> None:
    padding = "x" * (CAP - 200)
    body = json.dumps({"model": "qwen", "messages": [{"role": "user", "content": padding}]})
    raw = post_head(ROUTES["anthropic"], len(body)) + body.encode()
    answer, _ = exchange(server, raw)
    assert_shape("anthropic", answer, 400)  # read whole, then refused: max_tokens is missing
    assert "max_tokens" in answer.json()["error"]["message"]


# Content-Length lies and broken framing


def test_content_length_shorter_than_the_body(server: Served) -> None:
    body = b'{"model":"qwen","messages":[{"role":"user","content":"hi"}]}'
    with connect(server) as sock:
        sock.sendall(post_head(ROUTES["openai"], 10) + body[:10])
        first = read_answer(sock)  # the declared 10 bytes are the whole body: not JSON
        assert_shape("openai", first, 400)
        assert "not valid JSON" in first.json()["error"]["message"]
        sock.sendall(body[10:])  # the rest of the real body arrives as the next "request"
        second = read_answer(sock)
        assert second.status == 400
        assert closed_by_server(sock)


def test_content_length_longer_than_the_body_times_out(server: Served) -> None:
    with connect(server) as sock:
        sock.sendall(post_head(ROUTES["gemini"], 5000) + b'{"contents": [')
        answer = read_answer(sock)  # the rest never comes: the body timeout ends the wait
        assert answer.status == 408
        assert answer.json()["error"]["code"] == 408
        assert closed_by_server(sock)
    still_serving(server)


@pytest.mark.parametrize(
    "framing",
    [
        "Content-Length: -5\r\n",
        "Content-Length: 12abc\r\n",
        "Content-Length: 5\r\nContent-Length: 6\r\n",
        "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
        "Transfer-Encoding: chunked\r\n",  # and then a chunk size that is not hex
    ],
)
def test_broken_framing_is_a_400_and_a_closed_connection(server: Served, framing: str) -> None:
    raw = post_head(ROUTES["openai"], extra=framing) + b"zz\r\nhello\r\n0\r\n\r\n"
    answer, _ = exchange(server, raw)
    assert answer.status == 400
    assert answer.headers.get("connection") == "close"


# Deep, huge and malformed JSON


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize(
    "body",
    [
        nested(100_000),
        '{"model": "qwen", "messages": ' + nested(200) + "}",
        '{"model": "qwen", "messages": [{"role": "user", "content": "hi"}], "tools": '
        + '{"a":' * 150
        + "1"
        + "}" * 150
        + "}",
        '{"model": "qwen", "temperature": NaN, "messages": []}',
        '{"model": "qwen", "n": ' + "9" * 5000 + "}",
        '{"model": "qwen", "messages": [' + "1," * 200_000 + "1]}",
    ],
    ids=["100k-brackets", "deep-messages", "deep-tools", "nan", "huge-integer", "huge-array"],
)
@pytest.mark.parametrize("dialect", list(ROUTES))
def test_deep_or_huge_json_is_a_400(server: Served, dialect: str, body: str) -> None:
    raw = post_head(ROUTES[dialect], len(body)) + body.encode()
    answer, _ = exchange(server, raw)
    assert_shape(dialect, answer, 400)


@pytest.mark.parametrize(
    "body",
    [
        b'{"model": "\xff\xfe", "messages": []}',
        b'{"model": "qwen", "messages": [{"role": "user", "content": "\xc3\x28"}]}',
        b'{"model": "qwen\xed\xa0\x80"}',  # an encoded surrogate
        b"\xef\xbb\xbf\xff",
        b"\x00\x00\x00{",
    ],
)
@pytest.mark.parametrize("dialect", list(ROUTES))
def test_invalid_utf8_is_a_400_in_the_dialect_shape(
    server: Served, dialect: str, body: bytes
) -> None:
    answer, _ = exchange(server, post_head(ROUTES[dialect], len(body)) + body)
    assert_shape(dialect, answer, 400)


def test_a_key_holding_deep_json_is_refused_not_a_crash(server: Served) -> None:
    """Seed mode reads JWT-shaped keys: a key whose parts decode to deep JSON is just a key."""
    part = base64.urlsafe_b64encode(nested(3000).encode()).rstrip(b"=").decode()
    headers = {"authorization": f"Bearer {part}.{part}.c2ln"}
    body = {"model": "qwen", "messages": [{"role": "user", "content": "hi"}]}
    answer = httpx.post(server.url + ROUTES["openai"], json=body, headers=headers, timeout=WAIT)
    assert answer.status_code < 500, answer.text  # not a JWT, so a cn ticket the fake takes


# Headers too large


@pytest.mark.parametrize(
    ("request_head", "status"),
    [
        (f"GET /ping HTTP/1.1\r\nHost: x\r\nX-Big: {'a' * 2 * HEADER_CAP}\r\n\r\n", 431),
        ("GET /ping HTTP/1.1\r\nHost: x\r\n" + "X-A: b\r\n" * 3000 + "\r\n", 431),
        (f"GET /{'a' * 2 * HEADER_CAP} HTTP/1.1\r\nHost: x\r\n\r\n", 414),
    ],
    ids=["one-big-header", "many-headers", "long-url"],
)
def test_headers_too_large_are_refused_and_the_connection_closed(
    server: Served, request_head: str, status: int
) -> None:
    answer, closed = exchange(server, request_head.encode())
    assert answer.status == status
    assert answer.json()["error"]["code"] == status
    assert closed
    still_serving(server)


def test_headers_trickled_past_the_cap_are_refused(server: Served) -> None:
    """Headers that never end, sent in pieces: refused once the cap is passed, not buffered."""
    with connect(server) as sock:
        sock.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\nX-Big: ")
        for _ in range(4 * HEADER_CAP // 1024):
            if select.select([sock], [], [], 0)[0]:
                break  # the server has answered: stop sending
            try:
                sock.sendall(b"a" * 1024)
            except (BrokenPipeError, ConnectionResetError):
                break
        answer = read_answer(sock)
        assert answer.status == 431  # not 408: the size refused it, before any timeout
        assert closed_by_server(sock)


# Slowloris: trickled headers and bodies time out without blocking anyone else


def trickle(server: Served, first: bytes, stop: threading.Event, closed: list[bool]) -> None:
    """Send `first`, then one byte at a time (none if `first` is empty) until the server closes
    the connection; record whether it did so with a 408 (or nothing)."""
    with connect(server) as sock:
        sock.sendall(first)
        sock.settimeout(0.2)  # pacing of this slow client, not synchronisation
        received = b""
        while not stop.is_set():
            try:
                if first:
                    sock.sendall(b"a")
                chunk = sock.recv(65536)
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                break
            if not chunk:
                break
            received += chunk
        closed.append(received.startswith(b"HTTP/1.1 408") or received == b"")


def test_slowloris_clients_are_timed_out_while_others_are_served(server: Served) -> None:
    stop = threading.Event()
    closed: list[bool] = []
    starts = [
        b"GET /ping HTTP/1.1\r\nHost: x\r\nX-Slow: ",  # headers that never end
        post_head(ROUTES["openai"], 10_000) + b'{"model": "',  # a body that never ends
        post_head(ROUTES["anthropic"], extra="Transfer-Encoding: chunked\r\n") + b"1\r\n{\r\n",
        b"",  # a connection that says nothing
    ]
    threads = [
        threading.Thread(target=trickle, args=(server, first, stop, closed)) for first in starts
    ]
    for thread in threads:
        thread.start()
    try:
        for _ in range(3):  # the server answers others while the slow clients hang on
            still_serving(server)
        for thread in threads:
            thread.join(WAIT)
    finally:
        stop.set()
        for thread in threads:
            thread.join(WAIT)
    assert closed == [True] * len(starts)  # every slow client was cut off by the server


# Path tricks


@pytest.mark.parametrize(
    "target",
    [
        "/v1/../admin",
        "/v1/%2e%2e/%2e%2e/etc/passwd",
        "/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/static/../../../../etc/passwd",
        "/..%2f..%2f..%2fetc%2fpasswd",
        "//v1//chat//completions",
        "/v1/chat/completions%00",
        "/v1/models/%00",
        "/v1/models/..%2f..%2fetc%2fpasswd",
        "/v1beta/models/%2e%2e%2f:generateContent",
        "/" + "a/" * 4000,
        "/%ff%fe",
        "/v1/accounts/..%2f..",
    ],
)
def test_path_tricks_are_4xx_never_a_file(server: Served, target: str) -> None:
    raw = f"GET {target} HTTP/1.1\r\nHost: x\r\n{AUTH}\r\n".encode()
    answer, _ = exchange(server, raw)
    assert answer.status in (400, 401, 404, 405), (answer.status, answer.body[:200])
    assert b"root:" not in answer.body
    assert set(answer.json()["error"]) >= {"message"}


@pytest.mark.parametrize(
    ("target", "dialect"),
    [
        ("/v1beta/models/a%0Ab:generateContent", "gemini"),  # no route pattern matches \n
        ("/v1/models/a%0Ab:countTokens", "gemini"),
        ("/v1/messages/nothing-here", "anthropic"),
        ("/v1/chat/nothing-here", "openai"),
    ],
)
def test_unknown_paths_of_a_dialect_answer_in_its_shape(
    server: Served, target: str, dialect: str
) -> None:
    answer, _ = exchange(server, post_head(target, 2) + b"{}")
    assert_shape(dialect, answer, 404)
