"""Backlog check: 1,000 TCP connects at once, a minimal request on each, counted.

A listen backlog too short for a burst shows up as connects that take a second or more (the
kernel drops the SYN and the client retries it after ~1 s) or that are refused or reset.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from stats import percentile

CONNECTS = 1000
WINDOW = 1.0  # seconds within which every connect should be accepted
TIMEOUT = 15.0  # seconds one connection may take in all


@dataclass(frozen=True, slots=True)
class Burst:
    """What a burst of connects to one server found."""

    name: str
    attempts: int
    connected_in_window: int  # TCP connect completed within WINDOW of the burst's start
    refused: int
    failed: int  # reset, timed out, or no HTTP status line
    answered: int  # an HTTP status line came back (any status)
    connect_p99_ms: float
    wall: float  # seconds from the first connect to the last answer

    @property
    def late(self) -> int:
        return self.attempts - self.connected_in_window - self.refused


@dataclass(frozen=True, slots=True)
class _One:
    connected_at: float | None
    refused: bool
    answered: bool


async def _one(host: str, port: int, request: bytes, started: float) -> _One:
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except ConnectionRefusedError:
        return _One(None, True, False)
    except OSError:
        return _One(None, False, False)
    connected = time.perf_counter() - started
    try:
        writer.write(request)
        await writer.drain()
        status = await reader.readline()
        return _One(connected, False, status.startswith(b"HTTP/1."))
    except OSError:
        return _One(connected, False, False)
    finally:
        writer.close()


async def _guarded(host: str, port: int, request: bytes, started: float) -> _One:
    try:
        return await asyncio.wait_for(_one(host, port, request, started), TIMEOUT)
    except TimeoutError:
        return _One(None, False, False)


async def burst(name: str, base: str, path: str, count: int = CONNECTS) -> Burst:
    """Open `count` connections to `base` at once; on each, `GET path` and read the status."""
    parts = urlsplit(base)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n".encode()
    started = time.perf_counter()
    results = await asyncio.gather(*(_guarded(host, port, request, started) for _ in range(count)))
    wall = time.perf_counter() - started
    times = [r.connected_at for r in results if r.connected_at is not None]
    in_window = sum(1 for t in times if t <= WINDOW)
    refused = sum(1 for r in results if r.refused)
    answered = sum(1 for r in results if r.answered)
    return Burst(
        name=name,
        attempts=count,
        connected_in_window=in_window,
        refused=refused,
        failed=count - answered - refused,
        answered=answered,
        connect_p99_ms=percentile(times, 99) * 1000,
        wall=wall,
    )


def somaxconn() -> int | None:
    """The kernel's cap on any listen backlog."""
    try:
        with open("/proc/sys/net/core/somaxconn") as file:
            return int(file.read().strip())
    except (OSError, ValueError):
        return None
