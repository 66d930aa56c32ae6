"""Load generator: streamed chat completions through the server, and the same turns direct."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from pool import Batch, run_bounded

MODEL = "qwen3.7-plus"
REQUEST_TIMEOUT = 60.0
NEW_CHAT_BODY = json.dumps(
    {"title": "New Chat", "models": [MODEL], "chat_mode": "normal", "chat_type": "t2t"}
).encode()
COMPLETION_BODY = json.dumps(
    {"stream": True, "incremental_output": True, "model": MODEL, "messages": [{"content": "bench"}]}
).encode()


@dataclass(frozen=True, slots=True)
class Sample:
    """One streamed answer as the client saw it."""

    ok: bool
    ttft: float | None = None  # seconds from sending to the first non-empty content delta
    chunks: int = 0  # data lines, [DONE] not counted
    error: str | None = None
    headers: float | None = None  # seconds from sending to the stream's response headers


@dataclass(slots=True)
class Scan:
    """What scanning an SSE body found."""

    ttft: float | None = None
    chunks: int = 0
    ended: bool = False
    error: str | None = None


def jwt_token() -> str:
    """A JWT-shaped token valid for a day: it routes requests to the intl backend."""

    def part(claims: dict[str, Any]) -> str:
        raw = json.dumps(claims, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    return f"{part({'alg': 'HS256'})}.{part({'exp': int(time.time()) + 86400})}.sig"


def chat_body(model: str) -> bytes:
    return json.dumps(
        {"model": model, "stream": True, "messages": [{"role": "user", "content": "bench"}]}
    ).encode()


def _has_content(frame: Any) -> bool:
    try:
        return bool(frame["choices"][0]["delta"]["content"])
    except (KeyError, IndexError, TypeError):
        return False


def _error_in(data: bytes) -> str | None:
    if b'"error"' not in data:
        return None
    frame = json.loads(data)
    if isinstance(frame, dict) and "error" in frame:
        return "error chunk: " + json.dumps(frame["error"])[:160]
    return None


async def scan_sse(
    lines: AsyncIterable[bytes], started: float, is_end: Callable[[bytes], bool]
) -> Scan:
    """Count data lines, time the first content delta, and spot the end and error chunks."""
    scan = Scan()
    async for line in lines:
        if not line.startswith(b"data:"):
            continue
        data = line[5:].strip()
        if is_end(data):
            scan.ended = True
            if data == b"[DONE]":
                continue
        scan.chunks += 1
        if scan.ttft is None and _has_content(json.loads(data)):
            scan.ttft = time.perf_counter() - started
        scan.error = scan.error or _error_in(data)
    return scan


def _is_done(data: bytes) -> bool:
    return data == b"[DONE]"


def _is_finished(data: bytes) -> bool:
    return b'"status": "finished"' in data


def _sample(scan: Scan, headers: float, end_name: str) -> Sample:
    error = scan.error
    if error is None and not scan.ended:
        error = f"stream ended without {end_name}"
    if error is None and scan.ttft is None:
        error = "no content delta"
    return Sample(error is None, scan.ttft, scan.chunks, error, headers)


def _failure(error: BaseException) -> Sample:
    text = str(error).strip().splitlines()[0][:160] if str(error).strip() else ""
    return Sample(False, error=f"{type(error).__name__}: {text}".rstrip(": "))


async def through_server(
    session: aiohttp.ClientSession, base: str, token: str, body: bytes
) -> Sample:
    """One streamed chat completion through a server (this one, or a peer)."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    started = time.perf_counter()
    try:
        url = base + "/v1/chat/completions"
        async with session.post(url, data=body, headers=headers) as reply:
            headers_at = time.perf_counter() - started
            if reply.status != 200:
                text = (await reply.read())[:160].decode(errors="replace")
                return Sample(False, error=f"HTTP {reply.status}: {text}")
            scan = await scan_sse(reply.content, started, _is_done)
    except Exception as error:
        return _failure(error)
    return _sample(scan, headers_at, "data: [DONE]")


async def direct(session: aiohttp.ClientSession, base: str, token: str, body: bytes) -> Sample:
    """The same turn straight to the bench upstream: chats/new, then the completion stream."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    started = time.perf_counter()
    try:
        url = base + "/api/v2/chats/new"
        async with session.post(url, data=NEW_CHAT_BODY, headers=headers) as reply:
            if reply.status != 200:
                return Sample(False, error=f"chats/new HTTP {reply.status}")
            chat_id = (await reply.json())["data"]["id"]
        url = f"{base}/api/v2/chat/completions?chat_id={chat_id}"
        async with session.post(url, data=COMPLETION_BODY, headers=headers) as reply:
            headers_at = time.perf_counter() - started
            if reply.status != 200:
                return Sample(False, error=f"completions HTTP {reply.status}")
            scan = await scan_sse(reply.content, started, _is_finished)
    except Exception as error:
        return _failure(error)
    return _sample(scan, headers_at, "the finished frame")


async def load_level(
    target: str,
    base: str,
    concurrency: int,
    count: int,
    deadline: float,
    model: str = MODEL,
    key: str | None = None,
) -> Batch[Sample]:
    """`count` turns against `base` with `concurrency` in flight.

    `target` "direct" makes the upstream calls itself; anything else is a server that speaks
    OpenAI Chat Completions, asked for `model` with `key` (default: a bench JWT).
    """
    one = direct if target == "direct" else through_server
    token = key or jwt_token()
    body = chat_body(model)
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        return await run_bounded(
            lambda: one(session, base, token, body), concurrency, count, deadline
        )
