"""Connection limits uvicorn lacks: header size, time to send the headers, time to send a body.

uvicorn's httptools protocol buffers request headers of any size and waits forever for a
client that trickles its request a byte at a time (slowloris). `http_protocol(settings)` is
that protocol with limits, all answered in the OpenAI error shape and followed by closing the
connection (no route, so no dialect, is known yet):

- a request line longer than QFA_MAX_HEADER_BYTES: 414; line and headers longer: 431;
- headers not complete QFA_HEADER_TIMEOUT seconds after the connection opened or the request
  began: 408;
- a body not complete QFA_BODY_TIMEOUT seconds after its headers: 408 if no answer has begun
  (the app sees the client leave), else the connection is just closed.

The body size cap is the app's (web.read_json), answered in each dialect's own shape.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from qwen_free_api.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Limits:
    max_header_bytes: int
    header_timeout: float
    body_timeout: float


class _Refused(Exception):
    """Raised inside a parser callback to stop parsing; `send_400_response` sends the status."""


def http_protocol(settings: Settings) -> type[asyncio.Protocol]:
    """uvicorn's httptools protocol class, with the limits of these settings."""
    limits = Limits(settings.max_header_bytes, settings.header_timeout, settings.body_timeout)
    return type("GuardedProtocol", (GuardedProtocol,), {"limits": limits})


class GuardedProtocol(HttpToolsProtocol):
    limits: ClassVar[Limits] = Limits(64 << 10, 10.0, 120.0)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._refusal: tuple[int, str] | None = None
        self._in_head = True  # between the end of a request and the end of the next headers
        self._head_bytes = 0  # request line and headers of the current request, as parsed
        self._raw_head_bytes = 0  # bytes received while still in the head (not yet parsed)

    # Timers

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.limits.header_timeout, "headers")

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm(self.limits.header_timeout, "headers")

    def on_headers_complete(self) -> None:
        self._in_head, self._head_bytes, self._raw_head_bytes = False, 0, 0
        self._arm(self.limits.body_timeout, "body")
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        self._in_head = True
        super().on_message_complete()

    def _arm(self, seconds: float, part: str) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._expired, seconds, part)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self, seconds: float, part: str) -> None:
        self._deadline = None
        if self.transport.is_closing() or self.transport.get_protocol() is not self:
            return
        log.info("closing a connection: the request %s took over %gs", part, seconds)
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            if cycle.response_started:  # too late for a status: just end the connection
                self.transport.close()
                return
            cycle.disconnected = True  # the app's next receive() is a disconnect
            cycle.message_event.set()
        self._send_and_close(408, f"the request {part} did not arrive within {seconds:g}s")

    # Sizes

    def data_received(self, data: bytes) -> None:
        was_in_head = self._in_head
        super().data_received(data)
        if self.transport.is_closing():
            return
        if was_in_head and self._in_head and self.cycle_idle():
            self._raw_head_bytes += len(data)  # all of it belongs to an unfinished head
            if self._raw_head_bytes > self.limits.max_header_bytes:
                self._send_and_close(431, self._too_large("the request headers are"))
                return
        if self._deadline is None and self.timeout_keep_alive_task is None and self.cycle_idle():
            self._arm(self.limits.header_timeout, "headers")  # bytes that begin no request

    def cycle_idle(self) -> bool:
        """No request is being read or answered on this connection."""
        return self.cycle is None or self.cycle.response_complete

    def on_url(self, url: bytes) -> None:
        self._count(len(url), 414, "the request line is")
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4, 431, "the request headers are")
        super().on_header(name, value)

    def _count(self, size: int, status: int, what: str) -> None:
        self._head_bytes += size
        if self._head_bytes > self.limits.max_header_bytes:
            self._refusal = (status, self._too_large(what))
            raise _Refused(what)

    def _too_large(self, what: str) -> str:
        return f"{what} longer than {self.limits.max_header_bytes} bytes"

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a parser error, which is how a size refusal stops the parser."""
        if self._refusal is None:
            super().send_400_response(msg)
            return
        self._send_and_close(*self._refusal)

    def _send_and_close(self, status: int, message: str) -> None:
        self._disarm()
        kind = "invalid_request_error"
        body = json.dumps({"error": {"message": message, "type": kind, "code": status}}).encode()
        head = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            head.extend([name, b": ", value, b"\r\n"])
        head.append(b"content-type: application/json\r\n")
        head.append(b"content-length: %d\r\nconnection: close\r\n\r\n" % len(body))
        self.transport.write(b"".join(head) + body)
        self.transport.close()
