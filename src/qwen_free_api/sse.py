"""Server-sent events: decode upstream byte streams, encode frames for clients.

The decoder is tolerant the way the Qwen backends need: `data:` with or without a space,
`\\r\\n` or `\\n`, comments, bare `[heartbeat]` lines, and bare JSON lines without any field
name. Bytes are split into lines before they are decoded, so a character split across
network reads survives (a newline byte never occurs inside a UTF-8 character).
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Event:
    """One decoded server-sent event."""

    data: str
    event: str = "message"


@dataclass(frozen=True, slots=True)
class Frame:
    """One event to send to a client; `event` is None for unnamed events."""

    data: str
    event: str | None = None


KEEPALIVE = b": keep-alive\n\n"
KEEPALIVE_FRAME = Frame("")  # an empty frame encodes as a keep-alive comment


def encode(frame: Frame) -> bytes:
    if not frame.data:
        return KEEPALIVE
    if frame.event is None:
        return b"data: " + frame.data.encode() + b"\n\n"
    return b"event: " + frame.event.encode() + b"\ndata: " + frame.data.encode() + b"\n\n"


class _Parser:
    """Line-level SSE state shared by the async decoder and `parse_text`."""

    __slots__ = ("data", "name")

    def __init__(self) -> None:
        self.name = "message"
        self.data: list[str] = []

    def line(self, line: str) -> Event | None:
        """Feed one line (without its newline); return an event when one completes."""
        if line.endswith("\r"):
            line = line[:-1]
        if not line:
            return self.dispatch()
        if line.startswith("data:"):
            value = line[5:]
            self.data.append(value[1:] if value.startswith(" ") else value)
        elif line.startswith("event:"):
            self.name = line[6:].strip() or "message"
        elif line.startswith("{") or line.startswith("<"):
            # A bare JSON or HTML body where SSE was expected: keep it as data.
            self.data.append(line)
        # Comments (":…"), "id:", "retry:" and bare "[heartbeat]" lines carry nothing for us.
        return None

    def dispatch(self) -> Event | None:
        if not self.data:
            self.name = "message"
            return None
        event = Event("\n".join(self.data), self.name)
        self.data, self.name = [], "message"
        return event


async def decode(chunks: AsyncIterable[bytes]) -> AsyncIterator[Event]:
    """Yield events from a byte stream as soon as each one is complete."""
    parser = _Parser()
    pending = b""  # the bytes after the last newline: an incomplete line
    async for chunk in chunks:
        data = pending + chunk if pending else chunk
        end = data.rfind(b"\n")
        if end < 0:
            pending = data
            continue
        pending = data[end + 1 :]
        for line in data[:end].decode("utf-8", "replace").split("\n"):
            event = parser.line(line)
            if event is not None:
                yield event
    for line in pending.decode("utf-8", "replace").split("\n"):
        event = parser.line(line)
        if event is not None:
            yield event
    event = parser.dispatch()
    if event is not None:
        yield event


def parse_text(text: str) -> list[Event]:
    """Decode a whole SSE body held in memory (tests and small bodies)."""
    parser = _Parser()
    events = [event for line in text.split("\n") if (event := parser.line(line)) is not None]
    last = parser.dispatch()
    return [*events, last] if last is not None else events
